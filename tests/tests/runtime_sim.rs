//! The host against the simulated platform over TLS: scenarios (a)–(g) of the runtime issue.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use e2e::scenarios::{self, WAIT};
use e2e::{Probe, probe_component};
use serde_json::json;
use soar_engine::testkit::{Run, TestHost, TestOptions};
use soar_sim::{InvocationEvent, Mangle, SimConfig};

use fn_hello as _;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_invocation_status_final_then_ack() {
    let host = scenarios::start(SimConfig::default(), 5, Arc::default()).await;
    scenarios::one_invocation(&host, true).await;
    assert_eq!(host.sim().violations(), Vec::<String>::new());
    host.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn b_error_reply_then_next_invocation_succeeds() {
    let host = scenarios::start(SimConfig::default(), 5, Arc::default()).await;
    scenarios::error_then_success(&host).await;
    assert_eq!(host.sim().violations(), Vec::<String>::new());
    host.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c_thousand_concurrent_invocations_with_ten_workers() {
    let probe = Arc::new(Probe::default());
    let host = scenarios::start(SimConfig::default(), 10, probe.clone()).await;
    scenarios::many_concurrent(&host, &probe, 1000, 10).await;
    let stats = host.sim().stats();
    assert!(
        stats.max_unacked_per_subscription <= 10,
        "the broker saw {} unacked messages on one subscription (prefetch 10)",
        stats.max_unacked_per_subscription
    );
    assert_eq!(host.sim().violations(), Vec::<String>::new());
    host.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn d_connection_dropped_mid_load() {
    let probe = Arc::new(Probe::default());
    let host = scenarios::start(SimConfig::default(), 10, probe.clone()).await;
    let sim = host.sim().clone();
    scenarios::drop_mid_load(&host, &probe, 200, || sim.drop_connections()).await;
    assert!(
        host.sim().stats().redelivered > 0,
        "the drop caused redeliveries"
    );
    // The final reply and the ACK are one transaction: a reply lost with the connection was
    // never applied, and is sent (once) on redelivery.
    assert_eq!(host.sim().violations(), Vec::<String>::new());
    host.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e_malformed_bodies_and_frames_do_not_stop_the_host() {
    let host = scenarios::start(SimConfig::default(), 5, Arc::default()).await;
    let sim = host.sim();
    // Not JSON at all.
    let inv = sim
        .send_raw("fn_hello", vec![], Bytes::from_static(b"{not json"))
        .await
        .unwrap();
    let reply = inv.final_reply(WAIT).await.unwrap();
    assert_eq!(reply.message_type, 1);
    assert!(
        reply.message.contains("not valid UTF-8 JSON"),
        "{}",
        reply.message
    );
    inv.wait_acked(WAIT).await.unwrap();
    // Not UTF-8.
    let inv = sim
        .send_raw("fn_hello", vec![], Bytes::from_static(b"\xff\xfe{}"))
        .await
        .unwrap();
    assert_eq!(inv.final_reply(WAIT).await.unwrap().message_type, 1);
    // A function this host does not serve: the error names it and the enabled components.
    // A function defined on the platform for this destination, but served by no component here.
    let elsewhere = soar_engine::testkit::definitions_from_yaml(
        r#"
message_destinations:
  - name: fn_hello
functions:
  - name: fn_elsewhere
    destination: fn_hello
    inputs: []
"#,
    );
    soar_engine::testkit::customize_sim(sim, &elsewhere)
        .await
        .unwrap();
    let inv = sim.invoke("fn_elsewhere", json!({})).await.unwrap();
    let reply = inv.final_reply(WAIT).await.unwrap();
    assert_eq!(reply.message_type, 1);
    assert!(
        reply.message.contains("fn_elsewhere") && reply.message.contains("fn_hello, probe"),
        "{}",
        reply.message
    );
    inv.wait_acked(WAIT).await.unwrap();
    // Garbage on the wire: skipped up to its NUL; the host keeps serving.
    sim.send_garbage(b"\x00\x01NOT-A-COMMAND\nheader\n\n\x00")
        .await;
    let inv = host
        .invoke("fn_hello", json!({"hello_text": "still here"}))
        .await
        .unwrap();
    let reply = inv.final_reply(WAIT).await.unwrap();
    assert_eq!(
        reply.results.unwrap()["content"]["text"],
        json!("still here")
    );
    host.stop().await.unwrap();
}

/// Poison frames (a bad header escape, a header that is not UTF-8, a bad or lying
/// content-length, a frame over `stomp_max_frame_size`): each is answered once with an error
/// that says what is wrong and acknowledged; the connection stays up and a valid message
/// queued right behind it is answered at once (before: the connection dropped, the poison came
/// back 16 times and the message behind waited 30 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2_poison_frames_are_answered_once_and_hold_up_no_one() {
    let options = TestOptions {
        resilient: "num_workers = 5\nstomp_max_frame_size = 65536\n".into(),
        ..TestOptions::default()
    };
    let host = TestHost::start_with(vec![Run::Registered(fn_hello::NAME)], options)
        .await
        .unwrap();
    let sim = host.sim();
    let connections = sim.stats().connections_accepted;
    let body = Bytes::from_static(br#"{"function": {"name": "fn_hello"}, "inputs": {}}"#);
    let big = Bytes::from(format!(
        r#"{{"function": {{"name": "fn_hello"}}, "inputs": {{"hello_text": "{}"}}}}"#,
        "x".repeat(100_000)
    ));
    let cases = [
        (
            Some(Mangle::BadEscape),
            body.clone(),
            "invalid escape sequence",
        ),
        (Some(Mangle::NotUtf8), body.clone(), "not valid UTF-8"),
        (
            Some(Mangle::BadContentLength),
            body.clone(),
            "invalid content-length",
        ),
        (
            Some(Mangle::ShortContentLength),
            body.clone(),
            "not followed by a NUL",
        ),
        (None, big, "exceeds the maximum frame size of 65536 bytes"),
    ];
    for (mangle, body, problem) in cases {
        let poison = match mangle {
            Some(m) => sim.send_mangled("fn_hello", body, m).await.unwrap(),
            None => sim.send_raw("fn_hello", vec![], body).await.unwrap(),
        };
        let behind = host
            .invoke("fn_hello", json!({"hello_text": "behind"}))
            .await
            .unwrap();
        let reply = behind
            .final_reply(Duration::from_secs(5))
            .await
            .unwrap_or_else(|e| panic!("the message behind a {problem} frame: {e}"));
        assert_eq!(reply.message_type, 0, "{reply:?}");
        let reply = poison.final_reply(WAIT).await.unwrap();
        assert_eq!(reply.message_type, 1, "{reply:?}");
        assert!(
            reply.message.contains("could not read this message")
                && reply.message.contains(problem),
            "{problem}: {}",
            reply.message
        );
        poison.wait_acked(WAIT).await.unwrap();
        let finals = poison
            .events()
            .iter()
            .filter(|e| matches!(e, InvocationEvent::Final(_)))
            .count();
        assert_eq!(finals, 1, "{problem}");
    }
    assert_eq!(
        sim.stats().connections_accepted,
        connections,
        "no reconnect"
    );
    assert_eq!(sim.stats().redelivered, 0);
    assert_eq!(sim.violations(), Vec::<String>::new());
    host.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f_wrong_ca_names_the_cafile_and_cafile_false_connects() {
    // A CA that did not sign the simulated platform's certificate.
    let other = soar_sim::Sim::start(SimConfig::default()).await.unwrap();
    let wrong_ca = other.ca_file().display().to_string();
    let options = TestOptions {
        resilient: format!("cafile = {wrong_ca}\n"),
        start_timeout: Duration::from_secs(20),
        ..TestOptions::default()
    };
    let err = TestHost::start_with(vec![Run::Registered(fn_hello::NAME)], options)
        .await
        .expect_err("a wrong CA must not connect");
    let text = format!("{err:#}");
    assert!(
        text.contains("certificate") || text.contains("UnknownIssuer"),
        "{text}"
    );
    assert!(
        text.contains("cafile"),
        "the error names the setting: {text}"
    );

    // The same wrong CA for STOMP only: the error names stomp_cafile.
    let options = TestOptions {
        resilient: format!("stomp_cafile = {wrong_ca}\n"),
        ..TestOptions::default()
    };
    let err = TestHost::start_with(vec![Run::Registered(fn_hello::NAME)], options)
        .await
        .expect_err("a wrong STOMP CA must not connect");
    let text = format!("{err:#}");
    assert!(
        text.contains("stomp_cafile") && text.contains("certificate"),
        "{text}"
    );

    // cafile=false, and no stomp_cafile: neither REST nor STOMP verifies.
    let options = TestOptions {
        resilient: "cafile = false\nstomp_cafile =\n".into(),
        ..TestOptions::default()
    };
    let host = TestHost::start_with(vec![Run::Registered(fn_hello::NAME)], options)
        .await
        .expect("cafile=false connects without verification");
    let inv = host
        .invoke("fn_hello", json!({"hello_text": "insecure"}))
        .await
        .unwrap();
    assert_eq!(inv.final_reply(WAIT).await.unwrap().message_type, 0);
    host.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trap_exception_turns_errors_into_results() {
    let options = TestOptions {
        resilient: "trap_exception = True\n".into(),
        ..TestOptions::default()
    };
    let host = TestHost::start_with(vec![Run::Registered(fn_hello::NAME)], options)
        .await
        .unwrap();
    let inv = host
        .invoke("fn_hello", json!({"hello_fail": true}))
        .await
        .unwrap();
    let reply = inv.final_reply(WAIT).await.unwrap();
    assert_eq!(reply.message_type, 0);
    let results = reply.results.unwrap();
    assert_eq!(results["success"], json!(false));
    assert!(results["reason"].as_str().unwrap().contains("hello_fail"));
    let statuses: Vec<String> = inv
        .events()
        .iter()
        .filter_map(|e| match e {
            soar_sim::InvocationEvent::Status(r) => Some(r.message.clone()),
            _ => None,
        })
        .collect();
    assert!(
        statuses
            .iter()
            .any(|s| s
                .starts_with("Error running 'fn_hello'. Config 'trap_exception' set to 'True'")),
        "{statuses:?}"
    );
    host.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_receipts_are_waited_for_and_never_cause_a_second_reply() {
    let probe = Arc::new(Probe::default());
    let options = TestOptions {
        // A RECEIPT later than stomp_timeout: the old host sent its reply again on this timeout.
        resilient: "stomp_timeout = 1\nnum_workers = 5\n".into(),
        ..TestOptions::default()
    };
    let host = TestHost::start_with(
        vec![Run::Adhoc(Box::new(probe_component(probe.clone())))],
        options,
    )
    .await
    .unwrap();
    host.sim()
        .set_commit_receipt_delay(Duration::from_millis(2500));
    let mut invocations = Vec::new();
    for i in 0..10 {
        let inputs = json!({"probe_id": format!("slow{i}")});
        invocations.push(host.invoke("probe_fn", inputs).await.unwrap());
    }
    for inv in &invocations {
        inv.final_reply(WAIT).await.unwrap();
        inv.wait_acked(WAIT).await.unwrap();
    }
    // One more, after the held RECEIPTs have all arrived: the host is still the same.
    host.sim().set_commit_receipt_delay(Duration::ZERO);
    let last = host
        .invoke("probe_fn", json!({"probe_id": "last"}))
        .await
        .unwrap();
    last.final_reply(WAIT).await.unwrap();
    for inv in &invocations {
        let finals = inv
            .events()
            .iter()
            .filter(|e| matches!(e, soar_sim::InvocationEvent::Final(_)))
            .count();
        assert_eq!(finals, 1, "{}", inv.message_id());
        assert_eq!(inv.deliveries(), 1);
    }
    assert_eq!(host.sim().violations(), Vec::<String>::new());
    host.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redelivered_message_is_not_run_twice() {
    let probe = Arc::new(Probe::default());
    let host = TestHost::start(vec![Run::Adhoc(Box::new(probe_component(probe.clone())))])
        .await
        .unwrap();
    host.sim().deliver_twice(1);
    let inv = host
        .invoke(
            "probe_fn",
            json!({"probe_id": "twice", "probe_delay_ms": 50}),
        )
        .await
        .unwrap();
    inv.final_reply(WAIT).await.unwrap();
    inv.wait_acked(WAIT).await.unwrap();
    assert_eq!(inv.deliveries(), 2, "the platform delivered it twice");
    assert_eq!(probe.runs().get("twice"), Some(&1));
    host.stop().await.unwrap();
}

/// A threat service that answers every artifact with one hit naming its value.
struct Echo;

impl soar_sdk::ThreatService for Echo {
    async fn search(
        &self,
        artifact: soar_sdk::ThreatArtifact,
    ) -> Result<Vec<soar_sdk::Hit>, soar_sdk::FunctionError> {
        Ok(vec![soar_sdk::Hit::new().string("Seen", artifact.value)])
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn threat_services_are_served_while_the_host_runs() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let component = soar_sdk::Component::new()
        .function("probe_fn", |_inputs: soar_sdk::Inputs| async {
            Ok(soar_sdk::FunctionResult::new(json!({})))
        })
        .threat_service("echo", Echo);
    let options = TestOptions {
        sections: format!(
            "[webserver]\nserver = 127.0.0.1\nport = {port}\n\n[custom_threat_service]\nurlbase = /x/cts/\n"
        ),
        ..TestOptions::default()
    };
    let host = TestHost::start_with(
        vec![Run::Adhoc(Box::new(soar_engine::testkit::adhoc(
            "probe",
            component,
            e2e::PROBE_YAML,
        )))],
        options,
    )
    .await
    .unwrap();
    let http = reqwest::Client::builder()
        .tls_backend_preconfigured(rustls::ClientConfig::clone(
            &soar_tls::client_config(&soar_tls::CaSource::Insecure).unwrap(),
        ))
        .build()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/x/cts/echo");
    let answer: serde_json::Value = http
        .post(&url)
        .json(&json!({"type": "net.ip", "value": "192.0.2.1"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        answer["hits"],
        json!([{"props": [{"type": "string", "name": "Seen", "value": "192.0.2.1"}]}])
    );
    let unknown = http
        .post(format!("http://127.0.0.1:{port}/x/cts/other"))
        .json(&json!({"type": "net.ip", "value": "192.0.2.1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    host.stop().await.unwrap();
    assert!(
        http.post(&url).json(&json!({})).send().await.is_err(),
        "the server stops with the host"
    );
}
