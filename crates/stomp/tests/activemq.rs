//! Checks against a real ActiveMQ 5.17 over STOMP+SSL (see specs/dependencies.md §6), started
//! by `.ci/run` (scripts/activemq.sh), which exports `SOAR_TEST_ACTIVEMQ_HOST/PORT/CAFILE/LOGIN/
//! PASSCODE`. Without them the test is skipped, unless `SOAR_TEST_REQUIRE_EXTERNAL=1` (CI).

use std::time::Duration;

use soar_stomp::{AckMode, ClientConfig, Command, Event, Frame, Session, StompError, Subscription};
use soar_tls::CaSource;
use tokio::sync::mpsc;

const WAIT: Duration = Duration::from_secs(15);

fn broker_config() -> Option<ClientConfig> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let Some(host) = var("SOAR_TEST_ACTIVEMQ_HOST") else {
        if var("SOAR_TEST_REQUIRE_EXTERNAL").as_deref() == Some("1") {
            panic!("SOAR_TEST_REQUIRE_EXTERNAL=1 but SOAR_TEST_ACTIVEMQ_HOST is not set");
        }
        return None;
    };
    let port = var("SOAR_TEST_ACTIVEMQ_PORT").expect("SOAR_TEST_ACTIVEMQ_PORT");
    let mut config = ClientConfig::new(host, port.parse().expect("port"));
    let ca = CaSource::from_setting(var("SOAR_TEST_ACTIVEMQ_CAFILE").as_deref());
    config.tls = Some(soar_tls::client_config(&ca).expect("TLS config"));
    config.server_name = Some("localhost".into());
    config.login = Some(var("SOAR_TEST_ACTIVEMQ_LOGIN").unwrap_or_else(|| "testkey".into()));
    config.passcode =
        Some(var("SOAR_TEST_ACTIVEMQ_PASSCODE").unwrap_or_else(|| "testsecret".into()));
    config.heart_beat = (1000, 1000);
    config.connect_timeout = Duration::from_secs(10);
    Some(config)
}

async fn event(events: &mut mpsc::Receiver<Event>) -> Event {
    tokio::time::timeout(WAIT, events.recv())
        .await
        .expect("timed out waiting for an event")
        .expect("event channel open")
}

#[tokio::test]
async fn activemq_round_trip() {
    let Some(config) = broker_config() else {
        eprintln!("skipped: no ActiveMQ configured (SOAR_TEST_ACTIVEMQ_*)");
        return;
    };
    let queue = format!("soar-stomp-test.{}", std::process::id());
    let sub = Subscription::new(queue.as_str(), AckMode::ClientIndividual)
        .header("activemq.prefetchSize", "20");
    let (session, mut events) = Session::start(config.clone(), vec![sub]);
    match event(&mut events).await {
        Event::Connected {
            server, heart_beat, ..
        } => {
            assert!(server.unwrap_or_default().starts_with("ActiveMQ"));
            assert_eq!(heart_beat, (1000, 1000));
        }
        other => panic!("expected Connected, got {other:?}"),
    }
    let body = b"{\"binary\":\"a\0b\"}".to_vec();
    let send = Frame::new(Command::Send)
        .header("destination", format!("/queue/{queue}"))
        .header("correlation-id", "invid:1")
        .header("odd", "a:b\\c")
        .with_body(body.clone());
    tokio::time::timeout(WAIT, session.send_with_receipt(send))
        .await
        .expect("receipt in time")
        .expect("receipt");
    let Event::Message { frame, tag } = event(&mut events).await else {
        panic!("expected a message")
    };
    assert_eq!(frame.body, body);
    assert_eq!(frame.get("odd"), Some("a:b\\c"));
    assert_eq!(frame.get("correlation-id"), Some("invid:1"));
    assert!(
        tag.ack.contains(':'),
        "ActiveMQ ack ids contain ':' ({})",
        tag.ack
    );
    session.ack(&tag).await.expect("ack");
    tokio::time::timeout(WAIT, session.unsubscribe_all())
        .await
        .expect("in time")
        .expect("unsubscribe");
    tokio::time::timeout(WAIT, session.disconnect())
        .await
        .expect("in time")
        .expect("disconnect");

    let mut bad = config;
    bad.passcode = Some("wrong".into());
    let (_session, mut events) = Session::start(bad, vec![]);
    match event(&mut events).await {
        Event::Fatal(StompError::Refused { message }) => {
            assert!(message.contains("password is invalid"), "{message}")
        }
        other => panic!("expected Fatal(Refused), got {other:?}"),
    }
}
