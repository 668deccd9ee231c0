//! Scenarios (a)–(d) of the runtime issue, written once and run against the embedded broker of
//! the simulated platform and against a real ActiveMQ.

use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use serde_json::json;
use soar_engine::testkit::{Run, TestHost, TestOptions};
use soar_sim::{InvocationEvent, SimConfig};

use crate::Probe;

pub const WAIT: Duration = Duration::from_secs(30);

/// Starts a host with `fn_hello` and the probe on `sim`.
pub async fn start(sim: SimConfig, num_workers: usize, probe: Arc<Probe>) -> TestHost {
    let options = TestOptions {
        sim,
        resilient: format!("num_workers = {num_workers}\n"),
        sections: String::new(),
        ..TestOptions::default()
    };
    TestHost::start_with(
        vec![
            Run::Registered(fn_hello::NAME),
            Run::Adhoc(Box::new(crate::probe_component(probe))),
        ],
        options,
    )
    .await
    .expect("host starts against the simulated platform")
}

/// (a) One invocation: status messages in order, then the final reply (§5.2 shape), then the ACK.
/// `ack_observable` is false for an external broker, where the platform cannot see ACKs.
pub async fn one_invocation(host: &TestHost, ack_observable: bool) {
    let inv = host
        .invoke(
            "fn_hello",
            json!({"hello_text": "hi", "incident_id": 2095, "sel": {"id": 3, "name": "A"}}),
        )
        .await
        .unwrap();
    let reply = inv.final_reply(WAIT).await.unwrap();
    if ack_observable {
        inv.wait_acked(WAIT).await.unwrap();
    }
    let events = inv.events();
    let kinds: Vec<String> = events
        .iter()
        .filter_map(|e| match e {
            InvocationEvent::Status(r) => Some(format!("status:{}", r.message)),
            InvocationEvent::Final(_) => Some("final".into()),
            InvocationEvent::Acked => Some("ack".into()),
            _ => None,
        })
        .collect();
    let mut expected = vec![
        "status:fn_hello: echoing 'hi'".to_string(),
        "status:fn_hello: done".to_string(),
        "final".to_string(),
    ];
    if ack_observable {
        expected.push("ack".into());
    }
    assert_eq!(kinds, expected);
    assert_eq!(reply.message_type, 0);
    assert!(reply.complete);
    assert_eq!(reply.message, "Completed");
    let results = reply.results.expect("results");
    assert_eq!(results["version"], json!(2.0));
    assert_eq!(results["success"], json!(true));
    assert_eq!(results["reason"], json!(null));
    assert_eq!(results["content"]["text"], json!("hi"));
    assert_eq!(results["content"]["incident_id"], json!(2095));
    assert_eq!(
        results["inputs"]["sel"],
        json!("A"),
        "select normalised to its name"
    );
    assert_eq!(results["metrics"]["package"], json!("fn-hello"));
    assert!(results["metrics"]["execution_time_ms"].is_u64());
    // The body is the whole reply the platform stores.
    assert_eq!(reply.body["complete"], json!(true));
}

/// (b) A handler error gives a message_type 1 reply a person can act on; the next call works.
pub async fn error_then_success(host: &TestHost) {
    let inv = host
        .invoke("fn_hello", json!({"hello_text": "x", "hello_fail": true}))
        .await
        .unwrap();
    let reply = inv.final_reply(WAIT).await.unwrap();
    assert_eq!(reply.message_type, 1);
    assert!(reply.complete);
    assert!(
        reply.message.contains("hello_fail is true")
            && reply.message.contains("set hello_fail to false"),
        "{}",
        reply.message
    );
    assert!(reply.results.is_none());
    let inv = host
        .invoke("fn_hello", json!({"hello_text": "after"}))
        .await
        .unwrap();
    let reply = inv.final_reply(WAIT).await.unwrap();
    assert_eq!(reply.message_type, 0);
    assert_eq!(reply.results.unwrap()["content"]["text"], json!("after"));
}

/// (c) `n` concurrent invocations: each completes exactly once; no more than `workers` run at once.
pub async fn many_concurrent(host: &TestHost, probe: &Probe, n: usize, workers: usize) {
    let invocations = join_all((0..n).map(|i| {
        host.invoke(
            "probe_fn",
            json!({"probe_id": format!("c{i}"), "probe_delay_ms": 2}),
        )
    }))
    .await;
    let replies = join_all(
        invocations
            .iter()
            .map(|inv| inv.as_ref().unwrap().final_reply(Duration::from_secs(120))),
    )
    .await;
    for (i, r) in replies.into_iter().enumerate() {
        let r = r.unwrap_or_else(|e| panic!("invocation {i}: {e}"));
        assert_eq!(r.message_type, 0, "invocation {i}: {}", r.message);
        assert_eq!(
            r.results.unwrap()["content"]["probe_id"],
            json!(format!("c{i}"))
        );
    }
    let runs = probe.runs();
    assert_eq!(runs.len(), n);
    assert!(runs.values().all(|&c| c == 1), "some ran twice: {runs:?}");
    assert!(
        probe.max_running() <= workers,
        "{} ran at once with num_workers = {workers}",
        probe.max_running()
    );
    for inv in &invocations {
        let finals = inv
            .as_ref()
            .unwrap()
            .events()
            .iter()
            .filter(|e| matches!(e, InvocationEvent::Final(_)))
            .count();
        assert_eq!(finals, 1);
    }
}

/// (d) The connection drops mid-load (`cut` is called once some invocations completed): the
/// host reconnects and resubscribes, every invocation completes, none runs twice.
pub async fn drop_mid_load(host: &TestHost, probe: &Probe, n: usize, cut: impl Fn()) {
    let invocations: Vec<_> = join_all((0..n).map(|i| {
        host.invoke(
            "probe_fn",
            json!({"probe_id": format!("d{i}"), "probe_delay_ms": 20}),
        )
    }))
    .await
    .into_iter()
    .map(|r| r.unwrap())
    .collect();
    // Cut once a fifth has completed, so that some are running and some are still queued.
    invocations[n / 5].final_reply(WAIT).await.unwrap();
    cut();
    for (i, inv) in invocations.iter().enumerate() {
        let r = inv
            .final_reply(Duration::from_secs(120))
            .await
            .unwrap_or_else(|e| panic!("invocation {i} never completed: {e}"));
        assert_eq!(r.message_type, 0, "invocation {i}: {}", r.message);
    }
    let runs = probe.runs();
    assert_eq!(runs.len(), n, "every id ran");
    let twice: Vec<_> = runs.iter().filter(|(_, c)| **c > 1).collect();
    assert!(twice.is_empty(), "ran more than once: {twice:?}");
}
