//! The soar-stomp `Session` client (what the host uses) against the embedded broker.

mod common;

use common::{WAIT, start_sim};
use serde_json::json;
use soar_sim::Sim;
use soar_stomp::{AckMode, ClientConfig, Command, Event, Frame, Session, Subscription};
use tokio::sync::mpsc;

const Q: &str = "actions.201.fn_hello";

fn session(sim: &Sim) -> (Session, mpsc::Receiver<Event>) {
    let mut config = ClientConfig::new("localhost", sim.stomp_port());
    config.tls = Some(sim.client_tls_config());
    config.login = Some(sim.config().api_key_id.clone());
    config.passcode = Some(sim.config().api_key_secret.clone());
    config.heart_beat = (0, 15_000);
    config.connect_timeout = WAIT;
    let sub = Subscription::new(Q, AckMode::ClientIndividual).header("activemq.prefetchSize", "4");
    Session::start(config, vec![sub])
}

async fn next_event(events: &mut mpsc::Receiver<Event>) -> Event {
    tokio::time::timeout(WAIT, events.recv())
        .await
        .expect("timed out waiting for a session event")
        .expect("session ended")
}

/// Serves one message like a host: status, final reply (with receipt), then ACK.
async fn serve_one(session: &Session, events: &mut mpsc::Receiver<Event>) -> Frame {
    let (frame, tag) = loop {
        match next_event(events).await {
            Event::Message { frame, tag } => break (frame, tag),
            Event::Connected { .. } | Event::Disconnected { .. } => {}
            other => panic!("unexpected event {other:?}"),
        }
    };
    let reply = |body: serde_json::Value| {
        Frame::new(Command::Send)
            .header("destination", frame.get("reply-to").unwrap())
            .header("correlation-id", frame.get("correlation-id").unwrap())
            .with_body(serde_json::to_vec(&body).unwrap())
    };
    session
        .send(reply(
            json!({"message_type": 0, "message": "working", "complete": false}),
        ))
        .await
        .unwrap();
    session
        .send_with_receipt(reply(
            json!({"message_type": 0, "message": "Completed", "complete": true, "results": {"ok": true}}),
        ))
        .await
        .unwrap();
    session.ack(&tag).await.unwrap();
    frame
}

#[tokio::test]
async fn a_session_client_serves_invocations_and_survives_a_dropped_connection() {
    let sim = start_sim().await;
    sim.register_function("fn_hello", "fn_hello");
    let (session, mut events) = session(&sim);
    match next_event(&mut events).await {
        Event::Connected { server, .. } => assert!(server.unwrap().starts_with("soar-sim/")),
        other => panic!("expected Connected, got {other:?}"),
    }
    let subs = sim.subscriptions();
    assert_eq!(subs.len(), 1);
    assert_eq!(subs[0].destination, Q);
    assert_eq!(subs[0].prefetch, Some(4));

    let inv = sim.invoke("fn_hello", json!({"x": 1})).await.unwrap();
    serve_one(&session, &mut events).await;
    let fin = inv.final_reply(WAIT).await.unwrap();
    assert_eq!(fin.results, Some(json!({"ok": true})));
    inv.wait_acked(WAIT).await.unwrap();
    assert_eq!(inv.statuses().len(), 1);

    // Drop the connection while a message is in flight; the session reconnects and resubscribes,
    // the broker redelivers with the same message-id.
    let inv2 = sim.invoke("fn_hello", json!({"x": 2})).await.unwrap();
    let first = match next_event(&mut events).await {
        Event::Message { frame, .. } => frame,
        other => panic!("unexpected event {other:?}"),
    };
    assert_eq!(first.get("message-id"), Some(inv2.message_id()));
    sim.drop_connections();
    let again = serve_one(&session, &mut events).await;
    assert_eq!(again.get("message-id"), Some(inv2.message_id()));
    assert_eq!(again.get("redelivered"), Some("true"));
    inv2.final_reply(WAIT).await.unwrap();
    inv2.wait_acked(WAIT).await.unwrap();
    assert_eq!(inv2.deliveries(), 2);

    session.disconnect().await.unwrap();
    sim.wait_connections(0, WAIT).await.unwrap();
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
}
