//! The threat-service web server holds against hostile and slow clients: 400 for what is not
//! an artifact, 413 for a big body, 408 for a slow one, slow headers closed, a connection cap
//! that keeps a crowd of idle clients from costing a socket each, and a retryable answer (303,
//! tried again on each poll) when TruSTAR fails instead of "no hits".

use std::time::{Duration, Instant};

use soar_engine::testkit::{Run, TestHost, TestOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use trustar_emulator::{TrustarConfig, TrustarEmulator};

use fn_trustar as _;

const WAIT: Duration = Duration::from_secs(20);

/// The host serving fn_trustar's threat service on a free port with a 1 s timeout and at most
/// `cap` connections; its base URL.
async fn start(emu: &TrustarEmulator, cap: usize) -> (TestHost, u16) {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = probe.local_addr().unwrap().port();
    drop(probe);
    let enclave = &emu.enclave_ids()[0];
    let sections = format!(
        "[trustar]\nqueue = trustar\n\n\
         [trustar_threat_source]\nurl = {url}\nuser_api_key = {key}\nuser_api_secret = {secret}\n\
         enclave_ids_for_search = {enclave}\n\n\
         [webserver]\nserver = 127.0.0.1\nport = {port}\ntimeout = 1\nmax_connections = {cap}\n\n\
         [custom_threat_service]\nanswer_within_ms = 300\nfirst_retry_secs = 1\nlater_retry_secs = 1\n",
        url = emu.url(),
        key = emu.api_key(),
        secret = emu.api_secret(),
    );
    let host = TestHost::start_with(
        vec![Run::Registered("fn_trustar")],
        TestOptions {
            sections,
            ..TestOptions::default()
        },
    )
    .await
    .unwrap();
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        assert!(start.elapsed() < WAIT, "the threat service did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (host, port)
}

/// Sends `request` on a new connection and reads the answer until the server closes it (or
/// `WAIT`); the status line and the whole text.
async fn exchange(port: u16, request: &[u8]) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    s.write_all(request).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(WAIT, s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

/// The status and JSON body of an HTTP answer.
fn json_of(answer: &str) -> (u16, serde_json::Value) {
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = answer.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, serde_json::from_str(body).unwrap_or_default())
}

fn post(content_type: &str, body: &[u8]) -> Vec<u8> {
    [
        format!(
            "POST /cts/trustar HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
             Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
        body,
    ]
    .concat()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_big_and_slow_requests_are_refused() {
    let emu = TrustarEmulator::start(TrustarConfig::default())
        .await
        .unwrap();
    let (host, port) = start(&emu, 20).await;

    let answer = exchange(port, &post("application/json", b"nope!")).await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("not an artifact JSON object"), "{answer}");
    let answer = exchange(port, &post("application/json", b"[1, 2]")).await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");

    // The multipart form is read by a real parser: the artifact part, wherever it is.
    let form = "--XyZ\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\nx\r\n\
                --XyZ\r\nContent-Disposition: form-data; name=\"artifact\"\r\n\r\n\
                {\"type\":\"net.name\",\"value\":\"localhost\"}\r\n--XyZ--\r\n";
    let answer = exchange(
        port,
        &post("multipart/form-data; boundary=XyZ", form.as_bytes()),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let form = "--XyZ\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\nx\r\n--XyZ--\r\n";
    let answer = exchange(
        port,
        &post("multipart/form-data; boundary=XyZ", form.as_bytes()),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("no 'artifact' part"), "{answer}");

    // Over max_body_bytes (64 KiB by default).
    let big = format!(
        "{{\"type\":\"net.ip\",\"value\":\"{}\"}}",
        "1".repeat(100_000)
    );
    let answer = exchange(port, &post("application/json", big.as_bytes())).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");

    // A body that does not come: 408 after the timeout.
    let mut head = post("application/json", &[b'x'; 100]);
    head.truncate(head.len() - 90);
    let answer = exchange(port, &head).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");

    // Headers that do not come: the connection is closed.
    let started = Instant::now();
    let answer = exchange(port, b"POST /cts/trustar HTTP/1.1\r\nHost: x\r\n").await;
    assert!(
        started.elapsed() < WAIT,
        "a client sending half its headers kept its connection"
    );
    assert!(!answer.contains("200"), "{answer}");
    host.stop().await.unwrap();
}

/// Open sockets of this process (the test's clients and the server's connections both count).
fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crowd_of_idle_clients_costs_only_the_cap() {
    let emu = TrustarEmulator::start(TrustarConfig::default())
        .await
        .unwrap();
    let cap = 10;
    let (host, port) = start(&emu, cap).await;
    let before = open_fds();
    let mut idle = Vec::new();
    for _ in 0..200 {
        idle.push(TcpStream::connect(("127.0.0.1", port)).await.unwrap());
    }
    // Give the accept loop its chance to take all it would.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let opened = open_fds() - before;
    assert!(
        opened <= 200 + cap + 5,
        "{opened} descriptors for 200 idle clients (cap {cap})"
    );
    // They are closed after the header timeout, a cap's worth at a time, and a real request
    // is served after them.
    drop(idle);
    let answer = exchange(
        port,
        &post(
            "application/json",
            br#"{"type":"net.name","value":"localhost"}"#,
        ),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    host.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_lookup_is_retried_not_answered_with_no_hits() {
    let emu = TrustarEmulator::start(TrustarConfig::default())
        .await
        .unwrap();
    emu.set_priority("203.0.113.66", Some("IP"), "HIGH");
    let (host, port) = start(&emu, 20).await;
    emu.set_unavailable(true);
    let (status, body) = json_of(
        &exchange(
            port,
            &post(
                "application/json",
                br#"{"type": "net.ip", "value": "203.0.113.66"}"#,
            ),
        )
        .await,
    );
    assert_eq!(status, 303, "TruSTAR down: poll again, not 'no hits'");
    let id = body["id"].as_str().unwrap().to_string();
    let get = format!("GET /cts/trustar/{id} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let poll = || async { json_of(&exchange(port, get.as_bytes()).await) };
    assert_eq!(poll().await.0, 303);
    emu.set_unavailable(false);
    // Each poll tries the lookup again; once TruSTAR answers, the hit comes.
    let start = Instant::now();
    let hits = loop {
        let (status, body) = poll().await;
        if status == 200 {
            break body["hits"].clone();
        }
        assert_eq!(status, 303);
        assert!(start.elapsed() < WAIT, "the retried lookup never answered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(hits.as_array().map(Vec::len), Some(1), "{hits}");
    host.stop().await.unwrap();
}
