//! fn_hello through the real engine: the simulated platform, `host customize`, REST login, STOMP
//! over TLS and the dispatcher, as an operator's platform would drive it. (Its unit tests in
//! src/lib.rs run the handlers with the SDK's fake context instead.)

use std::time::Duration;

use serde_json::json;
use soar_engine::testkit::{Run, TestHost, wait_until};

use fn_hello as _;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workflow_call_and_a_note_rule_through_the_platform() {
    let host = TestHost::start_with_sections(
        vec![Run::Registered("fn_hello")],
        "[fn_hello]\nmax_delay_ms = 100\n",
    )
    .await
    .unwrap();
    // A function call: status messages then the result, in ResultPayload 2.0.
    let reply = host
        .call(
            "fn_hello",
            json!({"hello_text": "hi", "hello_delay_ms": 10}),
        )
        .await
        .unwrap();
    assert_eq!(reply.message_type, 0, "{reply:?}");
    let results = reply.results.unwrap();
    assert_eq!(results["content"]["text"], "hi");
    assert_eq!(results["metrics"]["package"], "fn-hello");
    // The section is read: a delay beyond max_delay_ms is an error reply.
    let reply = host
        .call("fn_hello", json!({"hello_delay_ms": 101}))
        .await
        .unwrap();
    assert_eq!(reply.message_type, 1);
    assert!(
        reply.message.contains("max_delay_ms in [fn_hello]"),
        "{reply:?}"
    );
    // A note that mentions hello: the automatic rule's message reaches the rule handler.
    let sim = host.sim();
    let incident = sim.create_incident(json!({"name": "Greetings"})).unwrap();
    let id = incident["id"].as_i64().unwrap();
    sim.add_note(id, "hello there").unwrap();
    let status = wait_until(
        "the rule's action status",
        Duration::from_secs(20),
        || async {
            sim.action_status(id).into_iter().find(|a| {
                a.rule.as_deref() == Some(fn_hello::NOTE_RULE) && a.message.contains("saw note")
            })
        },
    )
    .await
    .unwrap();
    let expected = format!("on incident {id}: hello there");
    assert!(status.message.ends_with(&expected), "{status:?}");
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
    host.stop().await.unwrap();
}
