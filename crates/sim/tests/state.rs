//! State persistence: a simulator started again on the same state file has everything back, with
//! the same ids; a corrupt or foreign file is a clear error at start.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{Api, RawClient, WAIT, fixture, json_body, start_sim_with};
use reqwest::StatusCode;
use serde_json::{Value, json};
use soar_sim::{Sim, SimConfig, SimError, ThreatService};

fn config(path: &Path) -> SimConfig {
    SimConfig {
        state_file: Some(path.to_path_buf()),
        ..SimConfig::default()
    }
}

/// The export without its timestamp.
fn export(sim: &Sim) -> Value {
    let mut x = sim.export();
    x["export_date"] = Value::Null;
    x
}

#[tokio::test]
async fn everything_is_back_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sim-state.json");

    let sim = start_sim_with(config(&path)).await;
    assert_eq!(sim.state_file(), Some(path.as_path()));
    // Written at start already.
    assert!(path.exists());
    let api = Api::new(&sim);
    api.import(&fixture()).await;
    let dest = sim.message_destination("fn_hello").unwrap();
    let mut granted = dest.clone();
    granted["api_keys"] = json!(["sim-api-key-id"]);
    granted["users"] = json!([1]);
    let (s, _) = api
        .put(
            &format!("/rest/orgs/201/message_destinations/{}", dest["id"]),
            &granted,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let ws = sim.add_workspace("SOC Team").unwrap();
    sim.create_artifact_type(json!({"programmatic_name": "url_string", "name": "URL String"}))
        .unwrap();
    sim.add_threat_service(ThreatService {
        name: "cts".into(),
        url: "http://127.0.0.1:9/cts/x".into(),
        user: Some("u".into()),
        password: Some("p".into()),
    })
    .unwrap();
    let inc = sim
        .create_incident(
            json!({"name": "Persisted", "severity_code": "High", "workspace": "SOC Team",
                                "properties": {"hello_last_echo": "e"}}),
        )
        .unwrap();
    let id = inc["id"].as_i64().unwrap();
    sim.add_note(id, "first note").unwrap();
    sim.add_artifact(id, json!({"type": "URL String", "value": "x/y"}))
        .unwrap();
    let closed = sim.create_incident(json!({"name": "Closed"})).unwrap()["id"]
        .as_i64()
        .unwrap();
    sim.close_incident(closed, "Resolved", "done").unwrap();
    // The lookup against the closed port fails quickly; wait so that its outcome is saved.
    sim.wait_threat_lookups_idle(WAIT).await.unwrap();

    let before = (
        sim.incident(id).unwrap(),
        sim.incident(closed).unwrap(),
        sim.notes(id),
        sim.artifacts(id),
        sim.threat_lookups(),
        sim.import_records(),
        export(&sim),
        sim.message_destination("fn_hello").unwrap(),
        sim.workspaces(),
        sim.artifact_types(),
        sim.threat_services(),
    );
    let (_, functions_before) = api.get("/rest/orgs/201/functions").await;
    let (_, actions_before) = api.get("/rest/orgs/201/actions").await;
    let (_, fields_before) = api.get("/rest/orgs/201/types/__function/fields").await;
    let counter = sim.invocation_counter();
    sim.shutdown().await;
    drop(sim);

    let text = std::fs::read_to_string(&path).unwrap();
    let saved: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(saved["format"], "soar-sim-state");
    assert_eq!(saved["version"], 1);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the state file holds passwords: {mode:o}");
    }

    let sim = start_sim_with(config(&path)).await;
    let api = Api::new(&sim);
    let after = (
        sim.incident(id).unwrap(),
        sim.incident(closed).unwrap(),
        sim.notes(id),
        sim.artifacts(id),
        sim.threat_lookups(),
        sim.import_records(),
        export(&sim),
        sim.message_destination("fn_hello").unwrap(),
        sim.workspaces(),
        sim.artifact_types(),
        sim.threat_services(),
    );
    assert_eq!(after.0, before.0);
    assert_eq!(after.1, before.1);
    assert_eq!(after.2, before.2);
    assert_eq!(after.3, before.3);
    assert_eq!(after.4, before.4);
    assert_eq!(after.5, before.5);
    assert_eq!(after.6, before.6);
    assert_eq!(after.7, before.7);
    assert_eq!(after.7["api_keys"], json!(["sim-api-key-id"]));
    assert_eq!(after.8, before.8);
    assert_eq!(after.9, before.9);
    assert_eq!(after.10, before.10);
    assert_eq!(after.10[0].password.as_deref(), Some("p"));
    assert_eq!(after.0["workspace"], ws["id"]);
    assert!(sim.invocation_counter() >= counter);
    let (_, functions_after) = api.get("/rest/orgs/201/functions").await;
    let (_, actions_after) = api.get("/rest/orgs/201/actions").await;
    let (_, fields_after) = api.get("/rest/orgs/201/types/__function/fields").await;
    assert_eq!(functions_after, functions_before);
    assert_eq!(actions_after, actions_before);
    assert_eq!(fields_after, fields_before);
    let (s, got) = api.get(&format!("/rest/orgs/201/incidents/{id}")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(got, before.0);

    // New objects get new ids, never reused ones.
    let newer = sim.create_incident(json!({"name": "Newer"})).unwrap()["id"]
        .as_i64()
        .unwrap();
    assert!(newer > closed);
    let note = sim.add_note(id, "second note").unwrap();
    assert!(note["id"].as_i64().unwrap() > before.2[0]["id"].as_i64().unwrap());

    // The background writer saves changes without a shutdown (bounded wait).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(&path).unwrap();
        if text.contains("second note") {
            break;
        }
        assert!(Instant::now() < deadline, "the state file was not updated");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Dropping the last handle writes it too.
    sim.delete_incident(newer).unwrap();
    drop(sim);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(!text.contains("\"Newer\""));
    // No temporary files are left behind: the state file and the directory kept beside it.
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["sim-state.json", "sim-state.json.d"]);
}

#[tokio::test]
async fn running_work_is_marked_interrupted_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    let sim = start_sim_with(config(&path)).await;
    sim.register_function("fn_hello", "fn_hello");
    sim.add_rule(61, "Notify", &["fn_hello"]);
    let id = sim.create_incident(json!({"name": "r"})).unwrap()["id"]
        .as_i64()
        .unwrap();
    sim.run_manual_rule("Notify", id, json!({})).await.unwrap();
    assert_eq!(
        sim.action_status(id)[0].state,
        soar_sim::ActionState::Pending
    );
    sim.shutdown().await;
    drop(sim);

    let sim = start_sim_with(config(&path)).await;
    let status = sim.action_status(id);
    assert_eq!(status[0].state, soar_sim::ActionState::Error);
    assert!(status[0].message.contains("restarted"), "{status:?}");
    // The rule is still there and runs again.
    sim.run_manual_rule("Notify", id, json!({})).await.unwrap();
}

async fn start_error(path: &Path) -> String {
    match Sim::start(config(path)).await {
        Err(e @ SimError::State { .. }) => e.to_string(),
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("started with {}", path.display()),
    }
}

#[tokio::test]
async fn a_corrupt_or_foreign_state_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("corrupt.json");
    let shown = path.display().to_string();

    std::fs::write(&path, "{\"format\": \"soar-sim-state\", \"incid").unwrap();
    let e = start_error(&path).await;
    assert!(e.contains(&shown) && e.contains("not valid JSON"), "{e}");
    // Left as it was.
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "{\"format\": \"soar-sim-state\", \"incid"
    );

    std::fs::write(&path, "{\"incidents\": []}").unwrap();
    let e = start_error(&path).await;
    assert!(
        e.contains(&shown) && e.contains("not a soar-sim state file"),
        "{e}"
    );

    std::fs::write(
        &path,
        json!({"format": "soar-sim-state", "version": 1, "org_id": 201, "incidents": "x"})
            .to_string(),
    )
    .unwrap();
    let e = start_error(&path).await;
    assert!(e.contains("not a valid soar-sim state"), "{e}");

    std::fs::write(
        &path,
        json!({"format": "soar-sim-state", "version": 1, "org_id": 201,
               "incidents": [{"name": "no id"}]})
        .to_string(),
    )
    .unwrap();
    let e = start_error(&path).await;
    assert!(e.contains("without an integer id"), "{e}");

    std::fs::write(
        &path,
        json!({"format": "soar-sim-state", "version": 9, "org_id": 201}).to_string(),
    )
    .unwrap();
    assert!(start_error(&path).await.contains("version 9"));

    std::fs::write(
        &path,
        json!({"format": "soar-sim-state", "version": 1, "org_id": 202}).to_string(),
    )
    .unwrap();
    let e = start_error(&path).await;
    assert!(e.contains("org 202"), "{e}");

    // A path that cannot be written is an error at start.
    let e = start_error(&dir.path().join("missing-dir/state.json")).await;
    assert!(e.contains("cannot be written"), "{e}");

    // A minimal valid file is fine.
    std::fs::write(
        &path,
        json!({"format": "soar-sim-state", "version": 1, "org_id": 201}).to_string(),
    )
    .unwrap();
    let sim = Sim::start(config(&path)).await.unwrap();
    assert!(sim.incident(1).is_none());
    assert_eq!(sim.workspaces().len(), 1);
}

/// Waits until `port` can be bound on 127.0.0.1 again (the stopped simulator let it go).
async fn wait_free(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpListener::bind(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "port {port} still taken");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn certificates_and_ports_are_kept_beside_the_state_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sim-state.json");
    let sim = start_sim_with(config(&path)).await;
    let (rest, stomp) = (sim.rest_port(), sim.stomp_port());
    let ca_file = sim.ca_file().to_path_buf();
    let ca = std::fs::read_to_string(&ca_file).unwrap();
    assert_eq!(ca_file, dir.path().join("sim-state.json.d/ca.pem"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let key = dir.path().join("sim-state.json.d/server-key.pem");
        let mode = std::fs::metadata(key).unwrap().permissions().mode();
        assert_eq!(
            mode & 0o077,
            0,
            "the server key is the owner's alone: {mode:o}"
        );
    }
    sim.shutdown().await;
    drop(sim);
    wait_free(rest).await;
    wait_free(stomp).await;

    // Started again: the same CA (an app.config's cafile still verifies) and the same ports.
    let sim = start_sim_with(config(&path)).await;
    assert_eq!((sim.rest_port(), sim.stomp_port()), (rest, stomp));
    assert_eq!(sim.ca_file(), ca_file.as_path());
    assert_eq!(std::fs::read_to_string(&ca_file).unwrap(), ca);
    let api = Api::new(&sim);
    let (status, _) = api.get("/rest/const").await;
    assert_eq!(status, StatusCode::OK);
    sim.shutdown().await;
    drop(sim);
    wait_free(rest).await;
    wait_free(stomp).await;

    // A port taken meanwhile: another one, and the other port is kept.
    let _taken = std::net::TcpListener::bind(("127.0.0.1", rest)).unwrap();
    let sim = start_sim_with(config(&path)).await;
    assert_ne!(sim.rest_port(), rest);
    assert_eq!(sim.stomp_port(), stomp);
    sim.shutdown().await;
}

#[tokio::test]
async fn queued_and_unacknowledged_messages_are_back_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sim-state.json");
    let sim = start_sim_with(config(&path)).await;
    sim.register_function("fn_hello", "fn_hello");
    let queue = format!("/queue/actions.{}.fn_hello", sim.org_id());
    // A consumer answers and acknowledges the first message, then answers the second only
    // (its final reply is recorded, its ACK never comes); two more wait behind it.
    let (mut client, _) = RawClient::connect(&sim).await;
    client.subscribe(&queue, 1).await;
    let mut sent = vec![sim.invoke("fn_hello", json!({"n": 0})).await.unwrap()];
    let first = client.next_frame().await;
    let final_reply = json!({"message_type": 0, "message": "done", "complete": true});
    client.reply(&first, final_reply.clone()).await;
    client.ack(&first).await;
    for i in 1..4 {
        sent.push(sim.invoke("fn_hello", json!({"n": i})).await.unwrap());
    }
    let second = client.next_frame().await;
    client.reply(&second, final_reply.clone()).await;
    let (rest, stomp) = (sim.rest_port(), sim.stomp_port());
    sim.shutdown().await;
    drop((client, sim));
    wait_free(rest).await;
    wait_free(stomp).await;

    let sim = start_sim_with(config(&path)).await;
    sim.register_function("fn_hello", "fn_hello");
    assert_eq!(sim.queued(&queue), 3, "the acknowledged message is gone");
    assert!(sim.invocation(sent[0].correlation_id()).is_none());
    let second_again = sim.invocation(sent[1].correlation_id()).unwrap();
    assert_eq!(second_again.deliveries(), 1);
    assert_eq!(
        second_again.final_reply(WAIT).await.unwrap().message,
        "done"
    );

    // Delivered again in their order, the one in flight first and marked redelivered.
    let (mut client, _) = RawClient::connect(&sim).await;
    client.subscribe(&queue, 3).await;
    let frames = [
        client.next_frame().await,
        client.next_frame().await,
        client.next_frame().await,
    ];
    let ids: Vec<_> = frames
        .iter()
        .map(|f| f.get("message-id").unwrap())
        .collect();
    let expected: Vec<_> = sent[1..].iter().map(|i| i.message_id()).collect();
    assert_eq!(ids, expected);
    assert_eq!(frames[0].get("redelivered"), Some("true"));
    assert_eq!(frames[1].get("redelivered"), None);
    assert_eq!(json_body(&frames[2])["inputs"]["n"], 3);

    // The restored invocations still see a second final reply as one.
    client.reply(&frames[0], final_reply.clone()).await;
    client.reply(&frames[1], final_reply).await;
    for f in &frames {
        client.ack(f).await;
    }
    let third = sim.invocation(sent[2].correlation_id()).unwrap();
    assert_eq!(third.final_reply(WAIT).await.unwrap().message, "done");
    third.wait_acked(WAIT).await.unwrap();
    let violations = sim.violations();
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert!(
        violations[0].contains("second final reply"),
        "{violations:?}"
    );
    sim.shutdown().await;
    drop(sim);
    let saved: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(saved["queued"], json!([]));
}
