//! Manual rules and the workflow engine running the hand-written export fixture, with a raw
//! STOMP client playing the integration host.

mod common;

use std::time::Duration;

use common::{Api, RawClient, WAIT, fixture, json_body, start_sim};
use serde_json::{Value, json};
use soar_sim::{ActionState, Sim, SimError, WorkflowStatus};
use soar_stomp::Command;

const Q: &str = "actions.201.fn_hello";

/// A sim with `export` imported, an incident, and a raw client subscribed to fn_hello's queue.
async fn setup(export: &Value) -> (Sim, RawClient, i64) {
    let sim = start_sim().await;
    Api::new(&sim).import(export).await;
    let (mut client, connected) = RawClient::connect(&sim).await;
    assert_eq!(connected.command, Command::Connected);
    client.subscribe(Q, 10).await;
    sim.wait_subscribed(Q, WAIT).await.unwrap();
    let inc = sim
        .create_incident(json!({"name": "Phish \"x\"", "severity_code": "High"}))
        .unwrap();
    (sim, client, inc["id"].as_i64().unwrap())
}

fn with_xml(edit: impl Fn(&str) -> String) -> Value {
    let mut x = fixture();
    let xml = x["workflows"][0]["content"]["xml"]
        .as_str()
        .unwrap()
        .to_string();
    x["workflows"][0]["content"]["xml"] = json!(edit(&xml));
    x
}

#[tokio::test]
async fn a_manual_rule_runs_the_exported_workflow() {
    let (sim, mut client, id) = setup(&fixture()).await;
    let run = sim
        .run_manual_rule(
            "Example: Say hello",
            id,
            json!({"hello_note": "from the rule"}),
        )
        .await
        .unwrap();
    assert!(run.messages.is_empty());
    let instances = run.workflow_instances();
    assert_eq!(instances.len(), 1);
    assert_eq!(instances[0].0, "example_hello");

    let m = client.next_frame().await;
    assert_eq!(m.command, Command::Message);
    let body = json_body(&m);
    assert_eq!(body["function"]["name"], "fn_hello");
    assert_eq!(body["function"]["display_name"], "Hello: echo");
    assert_eq!(body["function"]["uuid"], fixture()["functions"][0]["uuid"]);
    assert!(body["function"]["id"].is_i64());
    assert_eq!(
        body["inputs"],
        json!({
            "hello_mode": {"id": 302, "name": "Quiet"},
            "hello_delay_ms": 0,
            "hello_tags": [{"id": 303, "name": "a"}, {"id": 304, "name": "b"}],
            "incident_id": id,
            "hello_text": "Phish \"x\"",
            "hello_comment": "from the rule",
        })
    );
    assert_eq!(body["workflow"]["programmatic_name"], "example_hello");
    assert_eq!(body["workflow"]["name"], "Example: Hello");
    assert!(body["workflow"]["workflow_id"].is_i64());
    assert_eq!(
        body["workflow_instance"]["workflow_instance_id"],
        instances[0].1
    );
    assert_eq!(body["incident"]["id"], id);
    assert_eq!(body["incident"]["severity_code"], 6);
    assert_eq!(body["object_type"], 0);
    assert_eq!(body["object"]["id"], id);
    assert!(body["principal"]["name"].is_string());

    client.ack(&m).await;
    client
        .reply(
            &m,
            json!({"message_type": 0, "message": "working", "complete": false}),
        )
        .await;
    client
        .reply(
            &m,
            json!({"message_type": 0, "message": "done", "complete": true,
                   "results": {"content": {"text": "Hello, Phish!", "mode": "Quiet"}}}),
        )
        .await;
    let runs = run.wait(WAIT).await.unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].status, WorkflowStatus::Completed);
    assert_eq!(runs[0].instance_id, instances[0].1);
    let inv = runs[0].invocation.as_ref().expect("invocation");
    assert_eq!(inv.message_id(), m.get("message-id").unwrap());

    let inc = sim.incident(id).unwrap();
    assert_eq!(inc["properties"]["hello_last_echo"], "Hello, Phish!");
    let notes = sim.notes(id);
    assert_eq!(notes.len(), 1);
    assert_eq!(
        notes[0]["text"],
        "fn_hello echoed: Hello, Phish! <Quiet> {ok} \"q\" & None"
    );

    let status = sim.action_status(id);
    assert_eq!(status.len(), 1, "{status:?}");
    assert_eq!(status[0].state, ActionState::Complete);
    assert_eq!(status[0].function.as_deref(), Some("fn_hello"));
    assert_eq!(status[0].workflow.as_deref(), Some("example_hello"));
    assert_eq!(status[0].rule.as_deref(), Some("Example: Say hello"));
    assert_eq!(status[0].message, "done");

    let (_, wi) = Api::new(&sim)
        .get(&format!(
            "/rest/orgs/201/workflow_instances/{}",
            instances[0].1
        ))
        .await;
    assert_eq!(wi["status"], "completed");
    assert!(wi["end_date"].is_i64());
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
}

#[tokio::test]
async fn a_failing_function_fails_the_workflow_without_post_processing() {
    let (sim, mut client, id) = setup(&fixture()).await;
    let run = sim
        .run_manual_rule("Example: Say hello", id, Value::Null)
        .await
        .unwrap();
    let m = client.next_frame().await;
    assert_eq!(json_body(&m)["inputs"]["hello_comment"], Value::Null);
    client.ack(&m).await;
    client
        .reply(
            &m,
            json!({"message_type": 1, "message": "fn_hello failed: boom", "complete": true}),
        )
        .await;
    let runs = run.wait(WAIT).await.unwrap();
    assert_eq!(
        runs[0].status,
        WorkflowStatus::Failed("fn_hello failed: boom".into())
    );
    assert!(sim.notes(id).is_empty());
    assert_eq!(sim.incident(id).unwrap()["properties"], json!({}));
    let status = sim.action_status(id);
    assert_eq!(status.len(), 1);
    assert_eq!(status[0].state, ActionState::Error);
    assert_eq!(status[0].message, "fn_hello failed: boom");
    let (_, wi) = Api::new(&sim)
        .get(&format!(
            "/rest/orgs/201/workflow_instances/{}",
            runs[0].instance_id
        ))
        .await;
    assert_eq!(wi["status"], "failed");
    assert_eq!(wi["terminate_reason"], "fn_hello failed: boom");
}

#[tokio::test]
async fn a_failing_post_processing_line_fails_the_workflow_naming_it() {
    // Beyond the interpreter's grammar: Python runs it where installed, and either way the
    // workflow fails naming the line.
    let x = with_xml(|xml| {
        xml.replace(
            "incident.properties.hello_last_echo = results.content.text",
            "raise ValueError('no echo')",
        )
    });
    let (sim, mut client, id) = setup(&x).await;
    let run = sim
        .run_manual_rule("Example: Say hello", id, json!({}))
        .await
        .unwrap();
    let m = client.next_frame().await;
    client.ack(&m).await;
    client
        .reply(
            &m,
            json!({"message_type": 0, "message": "ok", "complete": true, "results": {}}),
        )
        .await;
    let runs = run.wait(WAIT).await.unwrap();
    let WorkflowStatus::Failed(msg) = &runs[0].status else {
        panic!("{:?}", runs[0].status);
    };
    assert!(
        msg.contains("post-processing script line 2") && msg.contains("raise ValueError"),
        "{msg}"
    );
    assert!(sim.notes(id).is_empty());
    let status = sim.action_status(id);
    assert_eq!(status.last().unwrap().state, ActionState::Error);
    assert_eq!(status.last().unwrap().message, *msg);
}

#[tokio::test]
async fn a_pre_processing_error_fails_before_anything_is_sent() {
    let x = with_xml(|xml| {
        xml.replace(
            "inputs.hello_text = incident.name",
            "inputs.not_an_input = incident.name",
        )
    });
    let (sim, _client, id) = setup(&x).await;
    let run = sim
        .run_manual_rule("Example: Say hello", id, json!({}))
        .await
        .unwrap();
    let runs = run.wait(WAIT).await.unwrap();
    let WorkflowStatus::Failed(msg) = &runs[0].status else {
        panic!("{:?}", runs[0].status);
    };
    assert!(msg.contains("not_an_input"), "{msg}");
    assert!(runs[0].invocation.is_none());
    assert_eq!(sim.queued(Q), 0);
    assert_eq!(sim.stats().delivered, 0);

    // A post-processing that writes a field that does not exist fails too.
    let x = with_xml(|xml| xml.replace("hello_last_echo = results", "nope_field = results"));
    let (sim, mut client, id) = setup(&x).await;
    let run = sim
        .run_manual_rule("Example: Say hello", id, json!({}))
        .await
        .unwrap();
    let m = client.next_frame().await;
    client.ack(&m).await;
    client
        .reply(
            &m,
            json!({"message_type": 0, "message": "ok", "complete": true, "results": {}}),
        )
        .await;
    let runs = run.wait(WAIT).await.unwrap();
    let WorkflowStatus::Failed(msg) = &runs[0].status else {
        panic!("{:?}", runs[0].status);
    };
    assert!(msg.contains("nope_field"), "{msg}");
}

#[tokio::test]
async fn a_rule_with_destinations_sends_a_rule_message() {
    let (sim, mut client, id) = setup(&fixture()).await;
    let run = sim
        .run_manual_rule("Example: Notify", id, json!({"hello_note": "n"}))
        .await
        .unwrap();
    assert!(run.workflow_instances().is_empty());
    assert_eq!(run.messages.len(), 1);
    let m = client.next_frame().await;
    let body = json_body(&m);
    assert!(body.get("function").is_none(), "{body}");
    let (_, actions) = Api::new(&sim).get("/rest/orgs/201/actions").await;
    let rule_id = actions["entities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "Example: Notify")
        .unwrap()["id"]
        .clone();
    assert_eq!(body["action_id"], rule_id);
    assert_eq!(body["object_type"], 0);
    assert_eq!(body["operation_type"], Value::Null);
    assert_eq!(body["incident"]["id"], id);
    assert_eq!(body["properties"], json!({"hello_note": "n"}));
    assert!(body["principal"]["name"].is_string());
    assert_eq!(sim.action_status(id)[0].state, ActionState::Pending);
    client.ack(&m).await;
    client
        .reply(
            &m,
            json!({"message_type": 0, "message": "noted", "complete": true}),
        )
        .await;
    assert!(run.wait(WAIT).await.unwrap().is_empty());
    let status = sim.action_status(id);
    assert_eq!(status.len(), 1);
    assert_eq!(status[0].destination.as_deref(), Some("fn_hello"));
    assert_eq!(status[0].rule.as_deref(), Some("Example: Notify"));
    assert_eq!(status[0].state, ActionState::Complete);
    assert_eq!(status[0].message, "noted");
}

#[tokio::test]
async fn bad_rule_runs_are_errors_and_silence_times_out() {
    let (sim, mut client, id) = setup(&fixture()).await;
    assert!(matches!(
        sim.run_manual_rule("Nope", id, json!({})).await,
        Err(SimError::UnknownRule(_))
    ));
    assert!(matches!(
        sim.run_manual_rule("Example: Say hello", 424242, json!({}))
            .await,
        Err(SimError::UnknownIncident(424242))
    ));
    let mut x = fixture();
    x["actions"][0]["type"] = json!(0);
    Api::new(&sim).import(&x).await;
    let err = sim
        .run_manual_rule("Example: Say hello", id, json!({}))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("not a manual incident rule"),
        "{err}"
    );

    Api::new(&sim).import(&fixture()).await;
    sim.set_workflow_timeout(Duration::from_millis(300));
    let run = sim
        .run_manual_rule("Example: Say hello", id, json!({}))
        .await
        .unwrap();
    let _unanswered = client.next_frame().await;
    let runs = run.wait(WAIT).await.unwrap();
    let WorkflowStatus::Failed(msg) = &runs[0].status else {
        panic!("{:?}", runs[0].status);
    };
    assert!(msg.contains("no final reply"), "{msg}");
    assert_eq!(sim.action_status(id)[0].state, ActionState::TimedOut);
}
