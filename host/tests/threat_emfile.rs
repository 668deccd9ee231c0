//! The threat-service server (HTTPS, `secure = 1`) out of file descriptors (EMFILE): `host run`
//! under a low `RLIMIT_NOFILE` (prlimit) gets more connections than it may open. Its accept loop pauses
//! instead of spinning (before: 85% of a core and 6 million warning lines), other invocations
//! go on, and once the crowd is gone the service answers again.

mod common;

use std::time::{Duration, Instant};

use common::{WAIT, setup, sigterm};
use serde_json::json;
use tokio::net::TcpStream;

/// User plus system CPU time of a process, from /proc.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    Duration::from_millis(ticks * 10)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_descriptors_the_threat_service_pauses_and_recovers() {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = probe.local_addr().unwrap().port();
    drop(probe);
    let certs = tempfile::tempdir().unwrap();
    let ck =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let pem = certs.path().join("threat.pem");
    std::fs::write(
        &pem,
        format!("{}{}", ck.cert.pem(), ck.signing_key.serialize_pem()),
    )
    .unwrap();
    let extra = format!(
        "\n[trustar]\nqueue = trustar\n\n\
         [trustar_threat_source]\nurl = http://127.0.0.1:9/\nuser_api_key = k\nuser_api_secret = s\n\
         enclave_ids_for_search = e1\n\n\
         [webserver]\nserver = 127.0.0.1\nport = {port}\ntimeout = 5\nmax_connections = 1000\n\
         secure = 1\ncertfile = {}\n",
        pem.display()
    );
    let s = setup(&extra).await;
    let mut child = tokio::process::Command::new("prlimit")
        .args([
            "--nofile=96:96",
            "--",
            env!("CARGO_BIN_EXE_host"),
            "run",
            "--config-file",
        ])
        .arg(&s.config)
        .env("HOME", s.dir.path())
        .env("APP_LOCK_FILE", s.dir.path().join("lock"))
        .env_remove("APP_CONFIG_FILE")
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let pid = child.id().unwrap();
    let queue = format!("actions.{}.fn_hello", s.sim.org_id());
    s.sim.wait_subscribed(&queue, WAIT).await.unwrap();
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        assert!(started.elapsed() < WAIT, "the threat service did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // More connections than the host may open descriptors for; they stay idle.
    let mut crowd = Vec::new();
    for _ in 0..300 {
        crowd.push(TcpStream::connect(("127.0.0.1", port)).await.unwrap());
    }
    let cpu_before = cpu_time(pid);
    let window = Instant::now();
    // Meanwhile the host serves its other work.
    let inv = s
        .sim
        .invoke("fn_hello", json!({"hello_text": "still here"}))
        .await
        .unwrap();
    assert_eq!(inv.final_reply(WAIT).await.unwrap().message_type, 0);
    tokio::time::sleep(Duration::from_secs(2).saturating_sub(window.elapsed())).await;
    let spent = cpu_time(pid) - cpu_before;
    assert!(
        spent < Duration::from_millis(600),
        "the host used {spent:?} of CPU in 2 s while out of descriptors (a spinning accept loop)"
    );
    drop(crowd);

    // The service answers again.
    let tls = soar_tls::client_config(&soar_tls::CaSource::File(pem.clone())).unwrap();
    let client = reqwest::Client::builder()
        .tls_backend_preconfigured((*tls).clone())
        .build()
        .unwrap();
    let url = format!("https://127.0.0.1:{port}/cts/trustar");
    let started = Instant::now();
    let status = loop {
        let r = client
            .post(&url)
            .json(&json!({"type": "net.name", "value": "localhost"}))
            .send()
            .await;
        match r {
            Ok(r) if r.status() == 200 => break 200,
            _ if started.elapsed() > WAIT => break 0,
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    };
    assert_eq!(status, 200, "the threat service did not answer again");
    sigterm(&child);
    let _ = tokio::time::timeout(WAIT, child.wait()).await;
    let log = std::fs::read_to_string(s.dir.path().join("logs/app.log")).unwrap_or_default();
    let warnings = log.matches("cannot accept connections").count();
    assert!(
        (1..50).contains(&warnings),
        "{warnings} accept warnings in app.log"
    );
}
