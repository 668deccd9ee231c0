//! External-broker mode against a real ActiveMQ (Debian's `activemq` package).
//!
//! The test starts a private broker instance (plain STOMP on an ephemeral loopback port, simple
//! authentication) when `/usr/share/activemq/bin/activemq.jar` and `java` are installed, and is
//! skipped with a message otherwise.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::WAIT;
use serde_json::json;
use soar_sim::{BrokerMode, ExternalBroker, SimConfig, SimError};
use soar_stomp::{AckMode, ClientConfig, Command, Event, Frame, Session, Subscription};
use tokio::sync::mpsc;

const JAR: &str = "/usr/share/activemq/bin/activemq.jar";
const LOGIN: &str = "testkey";
const PASSCODE: &str = "testsecret";

struct ActiveMq {
    _child: tokio::process::Child,
    _dir: tempfile::TempDir,
    port: u16,
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

async fn start_activemq() -> Option<ActiveMq> {
    if !Path::new(JAR).exists() {
        return None;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    for d in ["conf", "data", "tmp"] {
        std::fs::create_dir_all(dir.path().join(d)).expect("mkdir");
    }
    let port = free_port();
    let xml = format!(
        r#"<beans xmlns="http://www.springframework.org/schema/beans"
  xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
  xsi:schemaLocation="http://www.springframework.org/schema/beans http://www.springframework.org/schema/beans/spring-beans-2.0.xsd
  http://activemq.apache.org/schema/core http://activemq.apache.org/schema/core/activemq-core.xsd">
  <bean class="org.springframework.beans.factory.config.PropertyPlaceholderConfigurer"/>
  <broker xmlns="http://activemq.apache.org/schema/core" useJmx="false" persistent="false"
          brokerName="soarsim" dataDirectory="${{activemq.data}}">
    <plugins>
      <simpleAuthenticationPlugin anonymousAccessAllowed="false">
        <users><authenticationUser username="{LOGIN}" password="{PASSCODE}" groups="users,admins"/></users>
      </simpleAuthenticationPlugin>
    </plugins>
    <transportConnectors>
      <transportConnector name="stomp" uri="stomp://127.0.0.1:{port}?transport.maximumConnections=100"/>
    </transportConnectors>
  </broker>
</beans>"#
    );
    let conf = dir.path().join("conf");
    std::fs::write(conf.join("activemq.xml"), xml).expect("write activemq.xml");
    let base = dir.path().display().to_string();
    let child = tokio::process::Command::new("java")
        .args([
            "-Xms64M",
            "-Xmx256M",
            "--add-reads=java.xml=java.logging",
            "--add-opens",
            "java.base/java.security=ALL-UNNAMED",
            "--add-opens",
            "java.base/java.net=ALL-UNNAMED",
            "--add-opens",
            "java.base/java.lang=ALL-UNNAMED",
            "--add-opens",
            "java.base/java.util=ALL-UNNAMED",
            "--add-opens",
            "java.naming/javax.naming.spi=ALL-UNNAMED",
            "--add-opens",
            "java.base/java.util.concurrent=ALL-UNNAMED",
            &format!("-Dactivemq.classpath={base}/conf"),
            "-Dactivemq.home=/usr/share/activemq",
            &format!("-Dactivemq.base={base}"),
            &format!("-Dactivemq.conf={base}/conf"),
            &format!("-Dactivemq.data={base}/data"),
            &format!("-Djava.io.tmpdir={base}/tmp"),
            "-jar",
            JAR,
            "start",
            &format!("xbean:file:{base}/conf/activemq.xml"),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn();
    let Ok(child) = child else {
        eprintln!("java could not be started");
        return None;
    };
    // Readiness: the STOMP port accepts connections (bounded poll of an external process).
    let ready = tokio::time::timeout(Duration::from_secs(90), async {
        loop {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(
        ready.is_ok(),
        "ActiveMQ did not open port {port} within 90 s"
    );
    Some(ActiveMq {
        _child: child,
        _dir: dir,
        port,
    })
}

async fn next_event(events: &mut mpsc::Receiver<Event>) -> Event {
    tokio::time::timeout(WAIT, events.recv())
        .await
        .expect("timed out waiting for a session event")
        .expect("session ended")
}

#[tokio::test]
async fn invocations_and_replies_travel_through_an_external_activemq() {
    let Some(amq) = start_activemq().await else {
        eprintln!("skipped: ActiveMQ ({JAR}) is not installed");
        return;
    };
    let sim = common::start_sim_with(SimConfig {
        broker: BrokerMode::External(ExternalBroker {
            host: "127.0.0.1".into(),
            port: amq.port,
            login: Some(LOGIN.into()),
            passcode: Some(PASSCODE.into()),
            ..ExternalBroker::default()
        }),
        ..SimConfig::default()
    })
    .await;
    sim.register_function("fn_hello", "fn_hello");
    assert_eq!(sim.stomp_port(), amq.port);
    assert!(
        sim.app_config()
            .contains(&format!("stomp_port={}\n", amq.port))
    );

    // The "host": a session subscribed to the function's queue on the same broker.
    let mut config = ClientConfig::new("127.0.0.1", amq.port);
    config.login = Some(LOGIN.into());
    config.passcode = Some(PASSCODE.into());
    config.connect_timeout = WAIT;
    let sub = Subscription::new("actions.201.fn_hello", AckMode::ClientIndividual)
        .header("activemq.prefetchSize", "5");
    let (host, mut events) = Session::start(config, vec![sub]);
    assert!(matches!(
        next_event(&mut events).await,
        Event::Connected { .. }
    ));

    let inv = tokio::time::timeout(WAIT, sim.invoke("fn_hello", json!({"text": "hi"})))
        .await
        .expect("invoke timed out")
        .unwrap();
    let (frame, tag) = match next_event(&mut events).await {
        Event::Message { frame, tag } => (frame, tag),
        other => panic!("unexpected event {other:?}"),
    };
    assert_eq!(
        frame.get("destination"),
        Some("/queue/actions.201.fn_hello")
    );
    assert_eq!(frame.get("reply-to"), Some("/queue/acks.201.fn_hello"));
    assert_eq!(frame.get("correlation-id"), Some(inv.correlation_id()));
    assert_eq!(frame.get("Co3MessagePayload"), Some("ActionDataDTO"));
    assert!(frame.get("message-id").is_some());
    let body: serde_json::Value = serde_json::from_slice(&frame.body).unwrap();
    assert_eq!(body["function"]["name"], "fn_hello");
    assert_eq!(body["inputs"]["text"], "hi");

    let reply = |body: serde_json::Value| {
        Frame::new(Command::Send)
            .header("destination", frame.get("reply-to").unwrap())
            .header("correlation-id", frame.get("correlation-id").unwrap())
            .with_body(serde_json::to_vec(&body).unwrap())
    };
    host.send_with_receipt(reply(
        json!({"message_type": 0, "message": "working", "complete": false}),
    ))
    .await
    .unwrap();
    host.ack(&tag).await.unwrap();
    host.send_with_receipt(reply(
        json!({"message_type": 0, "message": "Completed", "complete": true, "results": {"echo": "hi"}}),
    ))
    .await
    .unwrap();

    let fin = inv.final_reply(WAIT).await.unwrap();
    assert_eq!(fin.results, Some(json!({"echo": "hi"})));
    assert_eq!(inv.statuses().len(), 1);
    assert!(matches!(
        inv.wait_acked(WAIT).await,
        Err(SimError::Unsupported(_))
    ));
    assert_eq!(sim.stats().replies, 2);
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
    host.disconnect().await.unwrap();
    sim.shutdown().await;
}
