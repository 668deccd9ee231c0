//! The embedded broker seen from a raw STOMP client.

mod common;

use std::time::Duration;

use common::{RawClient, WAIT, json_body, start_sim, start_sim_with};
use serde_json::json;
use soar_sim::{InvocationEvent, InvokeRequest, SimConfig};
use soar_stomp::{Command, Frame, Item};

const Q: &str = "actions.201.fn_hello";

#[tokio::test]
async fn bad_credentials_get_an_error_and_the_connection_closes() {
    let sim = start_sim().await;
    let (mut c, frame) = RawClient::connect_as(&sim, "nobody", "wrong", "0,0").await;
    assert_eq!(frame.command, Command::Error);
    assert_eq!(
        frame.get("message"),
        Some("User name [nobody] or password is invalid.")
    );
    c.expect_closed().await;
    sim.wait_connections(0, WAIT).await.unwrap();
    // Wrong credentials are a refusal, not a protocol violation.
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
}

#[tokio::test]
async fn email_and_password_are_accepted_and_heart_beats_are_negotiated() {
    let sim = start_sim().await;
    let c = sim.config().clone();
    let (_client, connected) = RawClient::connect_as(&sim, &c.email, &c.password, "0,15000").await;
    assert_eq!(connected.command, Command::Connected);
    assert_eq!(connected.get("version"), Some("1.2"));
    assert_eq!(connected.get("heart-beat"), Some("15000,0"));
    assert!(connected.get("server").unwrap().starts_with("soar-sim/"));

    let (_client, connected) = RawClient::connect_as(&sim, &c.email, &c.password, "5000,0").await;
    assert_eq!(connected.get("heart-beat"), Some("0,5000"));
}

#[tokio::test]
async fn connect_without_host_is_accepted_but_recorded() {
    let sim = start_sim().await;
    let mut c = RawClient::open(&sim).await;
    c.send(
        Frame::new(Command::Stomp)
            .header("accept-version", "1.1,1.2")
            .header("login", sim.config().api_key_id.clone())
            .header("passcode", sim.config().api_key_secret.clone()),
    )
    .await;
    assert_eq!(c.next_frame().await.command, Command::Connected);
    let v = sim.violations();
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(v[0].contains("without the host header"), "{v:?}");
}

#[tokio::test]
async fn frames_before_connect_are_violations() {
    let sim = start_sim().await;
    let mut c = RawClient::open(&sim).await;
    c.send(
        Frame::new(Command::Subscribe)
            .header("destination", Q)
            .header("id", "1"),
    )
    .await;
    let frames = c.expect_closed().await;
    assert_eq!(frames.first().map(|f| f.command), Some(Command::Error));
    let v = sim.violations();
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(v[0].contains("SUBSCRIBE frame before CONNECT"), "{v:?}");
}

#[tokio::test]
async fn invoke_delivers_a_message_with_every_platform_header() {
    let sim = start_sim().await;
    sim.register_function("fn_hello", "fn_hello");
    let (mut c, _) = RawClient::connect(&sim).await;
    c.subscribe(Q, 10).await;
    sim.wait_subscribed(Q, WAIT).await.unwrap();
    let subs = sim.subscriptions();
    assert_eq!(subs.len(), 1);
    assert_eq!(subs[0].ack, "client-individual");
    assert_eq!(subs[0].prefetch, Some(10));

    let inv = sim
        .invoke_with(InvokeRequest {
            function: "fn_hello".into(),
            inputs: json!({"name": "World"}),
            incident: Some(json!({"id": 2095, "name": "Inc"})),
            ..InvokeRequest::default()
        })
        .await
        .unwrap();
    let m = c.next_frame().await;
    assert_eq!(m.command, Command::Message);
    assert_eq!(m.get("destination"), Some("/queue/actions.201.fn_hello"));
    assert_eq!(m.get("subscription"), Some(Q));
    assert_eq!(m.get("message-id"), Some(inv.message_id()));
    assert!(inv.message_id().starts_with("ID:soar-sim-"));
    assert!(m.get("ack").is_some_and(|a| !a.is_empty()));
    assert_eq!(m.get("reply-to"), Some("/queue/acks.201.fn_hello"));
    assert_eq!(m.get("correlation-id"), Some(inv.correlation_id()));
    assert!(inv.correlation_id().starts_with("invid:"));
    assert!(m.get("Co3ContextToken").is_some_and(|t| !t.is_empty()));
    assert_eq!(m.get("Co3MessagePayload"), Some("ActionDataDTO"));
    assert_eq!(m.get("Co3ContentType"), Some("application/json"));
    assert!(m.get("timestamp").unwrap().parse::<u64>().is_ok());
    assert_eq!(m.get("expires"), Some("0"));
    assert_eq!(m.get("priority"), Some("4"));
    assert_eq!(m.get("persistent"), Some("true"));
    assert_eq!(m.get("redelivered"), None);

    let body = json_body(&m);
    assert_eq!(body["function"]["name"], "fn_hello");
    assert!(body["function"]["id"].is_i64());
    assert!(body["function"]["display_name"].is_string());
    assert!(body["function"]["uuid"].is_string());
    assert_eq!(body["inputs"], json!({"name": "World"}));
    assert!(body["workflow"]["programmatic_name"].is_string());
    assert!(body["workflow_instance"]["workflow_instance_id"].is_u64());
    assert!(body["principal"]["name"].is_string());
    assert_eq!(body["incident"]["id"], 2095);
    assert_eq!(inv.deliveries(), 1);
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
}

#[tokio::test]
async fn replies_and_ack_are_recorded_in_order() {
    let sim = start_sim().await;
    sim.register_function("fn_hello", "fn_hello");
    let (mut c, _) = RawClient::connect(&sim).await;
    c.subscribe(Q, 5).await;
    let inv = sim.invoke("fn_hello", json!({})).await.unwrap();
    let m = c.next_frame().await;
    c.reply(
        &m,
        json!({"message_type": 0, "message": "step 1", "complete": false}),
    )
    .await;
    c.reply(
        &m,
        json!({"message_type": 0, "message": "step 2", "complete": false}),
    )
    .await;
    c.ack(&m).await;
    c.reply(
        &m,
        json!({"message_type": 0, "message": "Completed", "complete": true, "results": {"value": 42}}),
    )
    .await;

    let fin = inv.final_reply(WAIT).await.unwrap();
    assert_eq!(fin.message, "Completed");
    assert_eq!(fin.results, Some(json!({"value": 42})));
    inv.wait_acked(WAIT).await.unwrap();
    let kinds: Vec<String> = inv
        .events()
        .iter()
        .map(|e| match e {
            InvocationEvent::Delivered { .. } => "delivered".to_string(),
            InvocationEvent::Status(r) => format!("status:{}", r.message),
            InvocationEvent::Final(r) => format!("final:{}", r.message),
            InvocationEvent::Acked => "acked".to_string(),
            InvocationEvent::Nacked => "nacked".to_string(),
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "delivered",
            "status:step 1",
            "status:step 2",
            "acked",
            "final:Completed"
        ]
    );
    assert!(matches!(
        inv.next_event(WAIT).await.unwrap(),
        InvocationEvent::Delivered {
            redelivered: false,
            ..
        }
    ));
    let stats = sim.stats();
    assert_eq!(stats.delivered, 1);
    assert_eq!(stats.acked, 1);
    assert_eq!(stats.replies, 3);
    assert_eq!(stats.max_unacked_per_subscription, 1);
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
}

#[tokio::test]
async fn prefetch_bounds_unacked_messages() {
    let sim = start_sim().await;
    sim.register_function("fn_hello", "fn_hello");
    let (mut c, _) = RawClient::connect(&sim).await;
    c.subscribe(Q, 2).await;
    let mut invs = Vec::new();
    for i in 0..5 {
        invs.push(sim.invoke("fn_hello", json!({ "i": i })).await.unwrap());
    }
    // Delivery happens synchronously when a message is published, so this is exact.
    assert_eq!(sim.stats().delivered, 2);
    assert_eq!(sim.queued(Q), 3);
    let m1 = c.next_frame().await;
    let m2 = c.next_frame().await;
    assert_eq!(json_body(&m1)["inputs"]["i"], 0);
    assert_eq!(json_body(&m2)["inputs"]["i"], 1);

    // Each ACK makes room for exactly one more, which arrives before the ACK's RECEIPT.
    let mut in_flight = vec![m1, m2];
    let mut seen = 2;
    while let Some(m) = in_flight.first().cloned() {
        in_flight.remove(0);
        let id = m.get("ack").unwrap().to_string();
        let before = c
            .call(Frame::new(Command::Ack).header("id", id.clone()), &id)
            .await;
        if seen < 5 {
            assert_eq!(before.len(), 1, "{before:?}");
            assert_eq!(json_body(&before[0])["inputs"]["i"], seen);
            seen += 1;
            in_flight.extend(before);
        } else {
            assert!(before.is_empty(), "{before:?}");
        }
    }
    for inv in &invs {
        inv.wait_acked(WAIT).await.unwrap();
    }
    let stats = sim.stats();
    assert_eq!(stats.delivered, 5);
    assert_eq!(stats.acked, 5);
    assert_eq!(stats.max_unacked_per_subscription, 2);
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
}

#[tokio::test]
async fn dropped_connections_get_redeliveries_with_the_same_message_id() {
    let sim = start_sim().await;
    sim.register_function("fn_hello", "fn_hello");
    let (mut c, _) = RawClient::connect(&sim).await;
    c.subscribe(Q, 5).await;
    let a = sim.invoke("fn_hello", json!({"n": "a"})).await.unwrap();
    let b = sim.invoke("fn_hello", json!({"n": "b"})).await.unwrap();
    let ma = c.next_frame().await;
    let _mb = c.next_frame().await;
    c.ack(&ma).await;

    sim.drop_connections();
    assert_eq!(sim.connections(), 0);
    c.expect_closed().await;
    assert_eq!(sim.queued(Q), 1);

    let (mut c2, _) = RawClient::connect(&sim).await;
    c2.subscribe(Q, 5).await;
    let again = c2.next_frame().await;
    assert_eq!(again.get("message-id"), Some(b.message_id()));
    assert_eq!(again.get("redelivered"), Some("true"));
    assert_eq!(json_body(&again)["inputs"]["n"], "b");
    c2.ack(&again).await;
    b.wait_acked(WAIT).await.unwrap();
    assert_eq!(b.deliveries(), 2);
    assert_eq!(a.deliveries(), 1);
    assert!(b.events().contains(&InvocationEvent::Delivered {
        connection_id: 2,
        redelivered: true
    }));
    assert_eq!(sim.stats().redelivered, 1);
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
}

#[tokio::test]
async fn unknown_or_foreign_ack_ids_are_violations_and_the_connection_survives() {
    let sim = start_sim().await;
    sim.register_function("fn_hello", "fn_hello");
    let (mut c1, _) = RawClient::connect(&sim).await;
    c1.subscribe(Q, 5).await;
    sim.invoke("fn_hello", json!({})).await.unwrap();
    let m = c1.next_frame().await;

    let (mut c2, _) = RawClient::connect(&sim).await;
    // Unknown id: ERROR (no RECEIPT), connection stays open.
    c2.send(
        Frame::new(Command::Ack)
            .header("id", "no-such-ack")
            .header("receipt", "r1"),
    )
    .await;
    let e = c2.next_frame().await;
    assert_eq!(e.command, Command::Error);
    assert_eq!(e.get("receipt-id"), Some("r1"));
    // Another connection's delivery.
    c2.send(Frame::new(Command::Ack).header("id", m.get("ack").unwrap()))
        .await;
    let e = c2.next_frame().await;
    assert_eq!(e.command, Command::Error);
    // Still usable.
    c2.subscribe("actions.201.other", 1).await;

    let v = sim.violations();
    assert_eq!(v.len(), 2, "{v:?}");
    assert!(v[0].contains("unknown id no-such-ack"), "{v:?}");
    assert!(v[1].contains("delivered on connection 1"), "{v:?}");

    // The rightful owner can still ACK it; a second ACK is a violation.
    c1.ack(&m).await;
    c1.send(Frame::new(Command::Ack).header("id", m.get("ack").unwrap()))
        .await;
    assert_eq!(c1.next_frame().await.command, Command::Error);
    assert!(sim.violations()[2].contains("already acknowledged"));
}

#[tokio::test]
async fn reply_mistakes_are_violations() {
    let sim = start_sim().await;
    sim.register_function("fn_hello", "fn_hello");
    let (mut c, _) = RawClient::connect(&sim).await;
    c.subscribe(Q, 5).await;
    let inv = sim.invoke("fn_hello", json!({})).await.unwrap();
    let m = c.next_frame().await;
    let fin = json!({"message_type": 0, "message": "done", "complete": true});
    c.reply(&m, fin.clone()).await;
    c.reply(&m, fin).await;
    // No correlation-id.
    c.call(
        Frame::new(Command::Send)
            .header("destination", "/queue/acks.201.fn_hello")
            .with_body("{}"),
        "r2",
    )
    .await;
    // Not an acks queue.
    c.call(
        Frame::new(Command::Send)
            .header("destination", "/queue/actions.201.fn_hello")
            .header("correlation-id", inv.correlation_id())
            .with_body("{}"),
        "r3",
    )
    .await;
    // Not JSON.
    c.call(
        Frame::new(Command::Send)
            .header("destination", "acks.201.fn_hello")
            .header("correlation-id", inv.correlation_id())
            .with_body("not json"),
        "r4",
    )
    .await;
    c.ack(&m).await;
    assert_eq!(inv.final_reply(WAIT).await.unwrap().message, "done");
    let v = sim.violations();
    assert_eq!(v.len(), 4, "{v:?}");
    assert!(v[0].contains("second final reply"), "{v:?}");
    assert!(v[1].contains("no correlation-id"), "{v:?}");
    assert!(v[2].contains("non-acks destination"), "{v:?}");
    assert!(v[3].contains("not UTF-8 JSON"), "{v:?}");
}

#[tokio::test]
async fn subscribe_without_prefetch_and_nack_are_violations() {
    let sim = start_sim().await;
    sim.register_function("fn_hello", "fn_hello");
    let (mut c, _) = RawClient::connect(&sim).await;
    c.call(
        Frame::new(Command::Subscribe)
            .header("destination", format!("/queue/{Q}"))
            .header("id", "s1")
            .header("ack", "client-individual"),
        "sub",
    )
    .await;
    let inv = sim.invoke("fn_hello", json!({})).await.unwrap();
    let m = c.next_frame().await;
    assert_eq!(m.get("subscription"), Some("s1"));
    // NACK: redelivered on the same connection, with redelivered:true.
    let before = c
        .call(
            Frame::new(Command::Nack).header("id", m.get("ack").unwrap()),
            "nack",
        )
        .await;
    assert_eq!(before.len(), 1);
    assert_eq!(before[0].get("redelivered"), Some("true"));
    assert_eq!(before[0].get("message-id"), Some(inv.message_id()));
    assert!(inv.events().contains(&InvocationEvent::Nacked));
    let v = sim.violations();
    assert_eq!(v.len(), 2, "{v:?}");
    assert!(v[0].contains("without activemq.prefetchSize"), "{v:?}");
    assert!(v[1].contains("NACK"), "{v:?}");
}

#[tokio::test]
async fn deliver_twice_sends_a_duplicate_with_a_new_ack_id() {
    let sim = start_sim().await;
    sim.register_function("fn_hello", "fn_hello");
    let (mut c, _) = RawClient::connect(&sim).await;
    c.subscribe(Q, 5).await;
    sim.deliver_twice(1);
    let inv = sim.invoke("fn_hello", json!({})).await.unwrap();
    let first = c.next_frame().await;
    let dup = c.next_frame().await;
    assert_eq!(first.get("message-id"), dup.get("message-id"));
    assert_ne!(first.get("ack"), dup.get("ack"));
    assert_eq!(dup.get("redelivered"), Some("true"));
    assert_eq!(inv.deliveries(), 2);
    // Acking the latest delivery settles the message; the other ack id is then stale.
    c.ack(&dup).await;
    inv.wait_acked(WAIT).await.unwrap();
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
    c.send(Frame::new(Command::Ack).header("id", first.get("ack").unwrap()))
        .await;
    assert_eq!(c.next_frame().await.command, Command::Error);
    assert_eq!(sim.violations().len(), 1);
    // The next delivery is single again.
    sim.invoke("fn_hello", json!({})).await.unwrap();
    let next = c.next_frame().await;
    assert_eq!(next.get("redelivered"), None);
    assert_eq!(sim.stats().delivered, 3);
}

#[tokio::test]
async fn round_robin_across_subscriptions_of_one_queue() {
    let sim = start_sim().await;
    sim.register_function("fn_hello", "fn_hello");
    let (mut c1, _) = RawClient::connect(&sim).await;
    let (mut c2, _) = RawClient::connect(&sim).await;
    c1.subscribe(Q, 10).await;
    c2.subscribe(Q, 10).await;
    for _ in 0..4 {
        sim.invoke("fn_hello", json!({})).await.unwrap();
    }
    let a = [c1.next_frame().await, c1.next_frame().await];
    let b = [c2.next_frame().await, c2.next_frame().await];
    let ids: std::collections::HashSet<_> = a
        .iter()
        .chain(b.iter())
        .map(|m| m.get("message-id").unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 4);
}

#[tokio::test]
async fn raw_and_rule_messages() {
    let sim = start_sim().await;
    sim.add_rule(17, "Lookup Value", &["fn_hello"]);
    let (mut c, _) = RawClient::connect(&sim).await;
    c.subscribe(Q, 5).await;

    let raw = sim
        .send_raw(
            "fn_hello",
            vec![
                ("correlation-id".into(), "custom:1".into()),
                ("x-test".into(), "1".into()),
            ],
            bytes::Bytes::from_static(b"{not json"),
        )
        .await
        .unwrap();
    assert_eq!(raw.correlation_id(), "custom:1");
    let m = c.next_frame().await;
    assert_eq!(m.body.as_ref(), b"{not json");
    assert_eq!(m.get("correlation-id"), Some("custom:1"));
    assert_eq!(m.get("reply-to"), Some("/queue/acks.201.fn_hello"));
    assert_eq!(m.get("x-test"), Some("1"));
    assert_eq!(m.get("Co3MessagePayload"), None);
    c.ack(&m).await;

    let rule = sim
        .send_rule_message("fn_hello", "Lookup Value", json!({"incident": {"id": 5}}))
        .await
        .unwrap();
    let m = c.next_frame().await;
    let body = json_body(&m);
    assert_eq!(body["action_id"], 17);
    assert_eq!(body["object_type"], 0);
    assert_eq!(body["incident"]["id"], 5);
    assert!(body.get("function").is_none());
    c.reply(
        &m,
        json!({"message_type": 0, "message": "ok", "complete": true}),
    )
    .await;
    c.ack(&m).await;
    rule.final_reply(WAIT).await.unwrap();

    assert!(matches!(
        sim.send_rule_message("fn_hello", "No Such Rule", json!({}))
            .await,
        Err(soar_sim::SimError::UnknownRule(_))
    ));
    assert!(matches!(
        sim.invoke("fn_unknown", json!({})).await,
        Err(soar_sim::SimError::UnknownFunction(_))
    ));
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
}

#[tokio::test]
async fn server_heart_beats_arrive_and_silent_clients_are_dropped() {
    let sim = start_sim_with(SimConfig {
        heart_beat_ms: 50,
        ..SimConfig::default()
    })
    .await;
    let c = sim.config().clone();
    let (mut quiet, connected) =
        RawClient::connect_as(&sim, &c.api_key_id, &c.api_key_secret, "0,50").await;
    assert_eq!(connected.get("heart-beat"), Some("50,0"));
    assert_eq!(quiet.next_item().await.unwrap().unwrap(), Item::HeartBeat);

    // A client promising heart-beats every 100 ms and then silent is closed after ~200 ms.
    let (mut silent, connected) =
        RawClient::connect_as(&sim, &c.api_key_id, &c.api_key_secret, "100,0").await;
    assert_eq!(connected.get("heart-beat"), Some("0,100"));
    silent.expect_closed().await;
    sim.wait_connections(1, WAIT).await.unwrap();
}

#[tokio::test]
async fn garbage_and_malformed_frames_do_not_stop_the_broker() {
    let sim = start_sim().await;
    sim.register_function("fn_hello", "fn_hello");
    let (mut good, _) = RawClient::connect(&sim).await;
    let (mut bad, _) = RawClient::connect(&sim).await;
    // A malformed frame from a client: violation, ERROR, close.
    bad.send_raw(b"BOGUS\n\n\0").await;
    bad.expect_closed().await;
    sim.wait_connections(1, WAIT).await.unwrap();
    let v = sim.violations();
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(v[0].contains("malformed frame"), "{v:?}");

    // Garbage from the server reaches the client as a skipped frame.
    sim.send_garbage(b"NOT-A-COMMAND\n\n\0").await;
    let item = good.next_item().await;
    assert!(
        matches!(&item, Some(Ok(Item::Rejected(r))) if r.problem.contains("NOT-A-COMMAND")),
        "{item:?}"
    );

    // Others are still served.
    let (mut c, _) = RawClient::connect(&sim).await;
    c.subscribe(Q, 1).await;
    sim.invoke("fn_hello", json!({})).await.unwrap();
    assert_eq!(c.next_frame().await.command, Command::Message);
}

#[tokio::test]
async fn frame_delay_holds_messages_back() {
    let sim = start_sim().await;
    sim.register_function("fn_hello", "fn_hello");
    let (mut c, _) = RawClient::connect(&sim).await;
    c.subscribe(Q, 5).await;
    sim.set_frame_delay(Duration::from_millis(200));
    let started = tokio::time::Instant::now();
    sim.invoke("fn_hello", json!({})).await.unwrap();
    c.next_frame().await;
    assert!(started.elapsed() >= Duration::from_millis(200));
}

#[tokio::test]
async fn disconnect_gets_a_receipt_and_returns_unacked_messages() {
    let sim = start_sim().await;
    sim.register_function("fn_hello", "fn_hello");
    let (mut c, _) = RawClient::connect(&sim).await;
    c.subscribe(Q, 5).await;
    let inv = sim.invoke("fn_hello", json!({})).await.unwrap();
    c.next_frame().await;
    c.send(Frame::new(Command::Disconnect).header("receipt", "bye"))
        .await;
    let r = c.next_frame().await;
    assert_eq!(r.command, Command::Receipt);
    assert_eq!(r.get("receipt-id"), Some("bye"));
    c.expect_closed().await;
    assert_eq!(sim.queued(Q), 1);
    assert_eq!(inv.deliveries(), 1);
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
}

fn finals(inv: &soar_sim::Invocation) -> usize {
    inv.events()
        .iter()
        .filter(|e| matches!(e, InvocationEvent::Final(_)))
        .count()
}

fn final_reply_in(tx: &str, message: &Frame) -> Frame {
    Frame::new(Command::Send)
        .header("destination", message.get("reply-to").expect("reply-to"))
        .header(
            "correlation-id",
            message.get("correlation-id").expect("correlation-id"),
        )
        .header("transaction", tx)
        .with_body(r#"{"message_type":0,"message":"Completed","complete":true}"#)
}

fn ack_in(tx: &str, message: &Frame) -> Frame {
    Frame::new(Command::Ack)
        .header("id", message.get("ack").expect("ack"))
        .header("transaction", tx)
}

#[tokio::test]
async fn a_transaction_applies_its_reply_and_ack_at_commit_or_never() {
    let sim = start_sim().await;
    sim.register_function("fn_hello", "fn_hello");
    let (mut c, _) = RawClient::connect(&sim).await;
    c.subscribe(Q, 5).await;
    let a = sim.invoke("fn_hello", json!({"n": "a"})).await.unwrap();
    let b = sim.invoke("fn_hello", json!({"n": "b"})).await.unwrap();
    let ma = c.next_frame().await;
    let mb = c.next_frame().await;

    // a: committed, so both take effect.
    c.send(Frame::new(Command::Begin).header("transaction", "t1"))
        .await;
    c.send(final_reply_in("t1", &ma)).await;
    c.send(ack_in("t1", &ma)).await;
    assert!(finals(&a) == 0, "nothing applies before COMMIT");
    let before = c
        .call(
            Frame::new(Command::Commit).header("transaction", "t1"),
            "c1",
        )
        .await;
    assert!(before.is_empty(), "{before:?}");
    a.wait_acked(WAIT).await.unwrap();
    assert_eq!(finals(&a), 1);

    // b: the connection is lost before COMMIT, so neither happens and b comes back.
    c.send(Frame::new(Command::Begin).header("transaction", "t2"))
        .await;
    c.send(final_reply_in("t2", &mb)).await;
    c.send(ack_in("t2", &mb)).await;
    sim.drop_connections();
    c.expect_closed().await;
    assert!(finals(&b) == 0);
    let (mut c2, _) = RawClient::connect(&sim).await;
    c2.subscribe(Q, 5).await;
    let again = c2.next_frame().await;
    assert_eq!(again.get("message-id"), Some(b.message_id()));
    assert_eq!(again.get("redelivered"), Some("true"));

    // ABORT discards; an unknown transaction is refused and recorded.
    c2.send(Frame::new(Command::Begin).header("transaction", "t3"))
        .await;
    c2.send(ack_in("t3", &again)).await;
    c2.call(Frame::new(Command::Abort).header("transaction", "t3"), "a3")
        .await;
    assert_eq!(sim.queued(Q), 0, "still in flight, not acknowledged");
    c2.send(
        Frame::new(Command::Commit)
            .header("transaction", "nope")
            .header("receipt", "c4"),
    )
    .await;
    let refused = c2.next_frame().await;
    assert_eq!(refused.command, Command::Error);
    assert_eq!(refused.get("receipt-id"), Some("c4"));
    let v = sim.violations();
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(v[0].contains("COMMIT of an unknown transaction"), "{v:?}");
    assert_eq!(finals(&b), 0);
}

#[tokio::test]
async fn an_ack_in_an_open_transaction_frees_its_prefetch_slot_until_an_abort() {
    let sim = start_sim().await;
    sim.register_function("fn_hello", "fn_hello");
    let (mut c, _) = RawClient::connect(&sim).await;
    c.subscribe(Q, 1).await;
    let a = sim.invoke("fn_hello", json!({"n": "a"})).await.unwrap();
    let b = sim.invoke("fn_hello", json!({"n": "b"})).await.unwrap();
    let ma = c.next_frame().await;
    assert_eq!(sim.queued(Q), 1, "the prefetch of 1 holds b back");

    // As ActiveMQ: the ACK in the open transaction makes room; b comes before the COMMIT.
    c.send(Frame::new(Command::Begin).header("transaction", "t1"))
        .await;
    let before = c
        .call(ack_in("t1", &ma).header("receipt", "r1"), "r1")
        .await;
    assert_eq!(before.len(), 1, "{before:?}");
    assert_eq!(before[0].get("message-id"), Some(b.message_id()));
    let mb = before[0].clone();
    assert_eq!(finals(&a), 0);
    assert_eq!(sim.stats().acked, 0, "acknowledged only at COMMIT");

    // ABORT: a counts against the prefetch again, so c waits although b's slot is the only one.
    c.call(Frame::new(Command::Abort).header("transaction", "t1"), "a1")
        .await;
    let cc = sim.invoke("fn_hello", json!({"n": "c"})).await.unwrap();
    assert_eq!(sim.queued(Q), 1);

    // Both acknowledged and committed: c is delivered, and a and b are done.
    c.send(Frame::new(Command::Begin).header("transaction", "t2"))
        .await;
    c.send(ack_in("t2", &ma)).await;
    c.send(ack_in("t2", &mb)).await;
    let before = c
        .call(
            Frame::new(Command::Commit).header("transaction", "t2"),
            "c2",
        )
        .await;
    assert_eq!(before.len(), 1, "{before:?}");
    assert_eq!(before[0].get("message-id"), Some(cc.message_id()));
    a.wait_acked(WAIT).await.unwrap();
    b.wait_acked(WAIT).await.unwrap();
    let stats = sim.stats();
    assert_eq!((stats.acked, stats.max_unacked_per_subscription), (2, 1));
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
}

#[tokio::test]
async fn commit_receipts_can_be_held_back_without_holding_other_frames() {
    let sim = start_sim().await;
    sim.register_function("fn_hello", "fn_hello");
    let (mut c, _) = RawClient::connect(&sim).await;
    c.subscribe(Q, 5).await;
    sim.set_commit_receipt_delay(Duration::from_secs(3600));
    let a = sim.invoke("fn_hello", json!({})).await.unwrap();
    let ma = c.next_frame().await;
    c.send(ack_in("t1", &ma).header("receipt", "held")).await;
    // Refused (no such transaction): the ERROR carries the receipt id and is not held back.
    let error = c.next_frame().await;
    assert_eq!(error.command, Command::Error);
    // Other receipts are not held.
    let before = c
        .call(Frame::new(Command::Begin).header("transaction", "t2"), "b")
        .await;
    assert!(before.is_empty(), "{before:?}");
    c.send(ack_in("t2", &ma)).await;
    c.send(
        Frame::new(Command::Commit)
            .header("transaction", "t2")
            .header("receipt", "r"),
    )
    .await;
    a.wait_acked(WAIT).await.unwrap();
    // A new message still arrives at once although the COMMIT's RECEIPT is held.
    let _b = sim.invoke("fn_hello", json!({})).await.unwrap();
    let next = c.next_frame().await;
    assert_eq!(next.command, Command::Message);
}
