//! Optional checks against a real ActiveMQ (see specs/dependencies.md §6). They run only when
//! `SOAR_STOMP_TEST_BROKER=host:port` is set; `SOAR_STOMP_TEST_CAFILE` (PEM, or `false`) turns
//! on TLS, and `SOAR_STOMP_TEST_LOGIN` / `SOAR_STOMP_TEST_PASSCODE` default to the recipe's
//! `testkey` / `testsecret`.

use std::time::Duration;

use soar_stomp::{AckMode, ClientConfig, Command, Event, Frame, Session, StompError, Subscription};
use soar_tls::CaSource;
use tokio::sync::mpsc;

const WAIT: Duration = Duration::from_secs(15);

fn broker_config() -> Option<ClientConfig> {
    let broker = std::env::var("SOAR_STOMP_TEST_BROKER").ok()?;
    let (host, port) = broker
        .rsplit_once(':')
        .expect("SOAR_STOMP_TEST_BROKER is host:port");
    let mut config = ClientConfig::new(host, port.parse().expect("port"));
    if let Ok(ca) = std::env::var("SOAR_STOMP_TEST_CAFILE") {
        let ca = CaSource::from_setting(Some(&ca));
        config.tls = Some(soar_tls::client_config(&ca).expect("TLS config"));
        config.server_name = Some("localhost".into());
    }
    let env = |name, default: &str| std::env::var(name).unwrap_or_else(|_| default.to_owned());
    config.login = Some(env("SOAR_STOMP_TEST_LOGIN", "testkey"));
    config.passcode = Some(env("SOAR_STOMP_TEST_PASSCODE", "testsecret"));
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
        eprintln!("SOAR_STOMP_TEST_BROKER not set; skipping the ActiveMQ test");
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
