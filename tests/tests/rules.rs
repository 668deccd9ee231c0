//! Rules through the host: every condition method of automatic rules, and manual rules whose
//! conditions decide where they are offered. Each rule sends its rule message to fn_hello's
//! destination; fn_hello (through the real host) answers it. Nothing fires when a condition
//! does not hold.

use std::time::Duration;

use serde_json::{Value, json};
use soar_engine::testkit::{self, Run, TestHost};
use soar_sim::Sim;

use fn_hello as _;

const WAIT: Duration = Duration::from_secs(30);

/// One automatic rule per condition method. Each also requires its `[tag]` in the incident
/// name (or the artifact value), so that every case triggers its own rule only.
const RULES_YAML: &str = r#"
message_destinations:
  - name: fn_hello
    display_name: Hello
incident_fields:
  - {name: hello_score, type: number}
rules:
  - {name: "m equals", type: automatic, object_type: incident, destinations: [fn_hello],
     conditions: [{field: incident.name, method: contains, value: "[equals]"}, {field: incident.severity_code, method: equals, value: High}]}
  - {name: "m not_equals", type: automatic, object_type: incident, destinations: [fn_hello],
     conditions: [{field: incident.name, method: contains, value: "[not_equals]"}, {field: incident.severity_code, method: not_equals, value: Low}]}
  - {name: "m contains", type: automatic, object_type: incident, destinations: [fn_hello],
     conditions: [{field: incident.name, method: contains, value: "[contains]"}, {field: incident.description, method: contains, value: botnet}]}
  - {name: "m not_contains", type: automatic, object_type: incident, destinations: [fn_hello],
     conditions: [{field: incident.name, method: contains, value: "[not_contains]"}, {field: incident.description, method: not_contains, value: botnet}]}
  - {name: "m has_a_value", type: automatic, object_type: incident, destinations: [fn_hello],
     conditions: [{field: incident.name, method: contains, value: "[has_a_value]"}, {field: incident.description, method: has_a_value}]}
  - {name: "m not_has_a_value", type: automatic, object_type: incident, destinations: [fn_hello],
     conditions: [{field: incident.name, method: contains, value: "[not_has_a_value]"}, {field: incident.description, method: not_has_a_value}]}
  - {name: "m gt", type: automatic, object_type: incident, destinations: [fn_hello],
     conditions: [{field: incident.name, method: contains, value: "[gt]"}, {field: incident.properties.hello_score, method: gt, value: 5}]}
  - {name: "m lt", type: automatic, object_type: incident, destinations: [fn_hello],
     conditions: [{field: incident.name, method: contains, value: "[lt]"}, {field: incident.properties.hello_score, method: lt, value: 5}]}
  - {name: "m changed", type: automatic, object_type: incident, destinations: [fn_hello],
     conditions: [{field: incident.name, method: contains, value: "[changed]"}, {field: incident.description, method: changed}]}
  - {name: "m changed_to", type: automatic, object_type: incident, destinations: [fn_hello],
     conditions: [{field: incident.name, method: contains, value: "[changed_to]"}, {field: incident.plan_status, method: changed_to, value: C}]}
  - {name: "m object_added", type: automatic, object_type: artifact, destinations: [fn_hello],
     conditions: [{field: artifact.value, method: contains, value: "object-added"}, {method: object_added}]}
  - {name: "m object_removed", type: automatic, object_type: artifact, destinations: [fn_hello],
     conditions: [{field: artifact.value, method: contains, value: "object-removed"}, {method: object_removed}]}
  - {name: "m manual", type: manual, object_type: incident, destinations: [fn_hello],
     conditions: [{field: incident.severity_code, method: equals, value: High}]}
"#;

/// What happens to the incident(s) of one case.
enum Action {
    Create(Value),
    CreateThenUpdate(Value, Value),
    CreateThenClose(Value),
    AddArtifact(&'static str),
    AddThenRemoveArtifact(&'static str),
}

async fn perform(sim: &Sim, host: &TestHost, tag: &str, action: &Action) -> i64 {
    let named = |fields: &Value| {
        let mut incident = fields.clone();
        incident["name"] = json!(format!("case {tag}"));
        incident
    };
    let id = match action {
        Action::Create(f) | Action::CreateThenUpdate(f, _) | Action::CreateThenClose(f) => {
            sim.create_incident(named(f)).unwrap()["id"]
                .as_i64()
                .unwrap()
        }
        Action::AddArtifact(_) | Action::AddThenRemoveArtifact(_) => {
            sim.create_incident(named(&json!({}))).unwrap()["id"]
                .as_i64()
                .unwrap()
        }
    };
    sim.wait_rules_idle(WAIT).await.unwrap();
    match action {
        Action::Create(_) => {}
        Action::CreateThenUpdate(_, changes) => {
            sim.update_incident(id, changes.clone()).unwrap();
        }
        Action::CreateThenClose(_) => {
            sim.close_incident(id, "Resolved", "done").unwrap();
        }
        Action::AddArtifact(value) => {
            sim.add_artifact(id, json!({"type": "String", "value": value}))
                .unwrap();
        }
        Action::AddThenRemoveArtifact(value) => {
            let artifact = sim
                .add_artifact(id, json!({"type": "String", "value": value}))
                .unwrap();
            sim.wait_rules_idle(WAIT).await.unwrap();
            let rest = rest_client(host).await;
            rest.delete(&format!("/incidents/{id}/artifacts/{}", artifact["id"]))
                .await
                .unwrap();
        }
    }
    sim.wait_rules_idle(WAIT).await.unwrap();
    id
}

async fn rest_client(host: &TestHost) -> soar_rest::RestClient {
    let config = soar_engine::config::AppConfig::load(host.config_path()).unwrap();
    let opts = soar_engine::config::ResilientOptions::from_config(&config).unwrap();
    soar_rest::RestClient::connect(soar_engine::app::rest_config(&opts).unwrap())
        .await
        .unwrap()
}

/// The rule messages fn_hello answered for this incident, by rule.
async fn fired(sim: &Sim, incident_id: i64) -> Vec<String> {
    let mut names = Vec::new();
    for run in sim
        .rule_runs()
        .into_iter()
        .filter(|r| r.incident_id == incident_id)
    {
        // Until its replies are in the action status.
        run.wait(WAIT).await.unwrap();
        for message in &run.messages {
            let reply = message.final_reply(WAIT).await.unwrap();
            assert_eq!(reply.message_type, 0, "{}", reply.message);
        }
        names.push(run.rule.clone());
    }
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_condition_method_fires_its_rule_only_when_it_holds() {
    let host = TestHost::start(vec![Run::Registered(fn_hello::NAME)])
        .await
        .unwrap();
    let sim = host.sim();
    testkit::customize_sim(sim, &testkit::definitions_from_yaml(RULES_YAML))
        .await
        .unwrap();
    use Action::*;
    let cases: Vec<(&str, Action, Action)> = vec![
        (
            "equals",
            Create(json!({"severity_code": "High"})),
            Create(json!({"severity_code": "Low"})),
        ),
        (
            "not_equals",
            Create(json!({"severity_code": "High"})),
            Create(json!({"severity_code": "Low"})),
        ),
        (
            "contains",
            Create(json!({"description": "a botnet"})),
            Create(json!({"description": "quiet"})),
        ),
        (
            "not_contains",
            Create(json!({"description": "quiet"})),
            Create(json!({"description": "a botnet"})),
        ),
        (
            "has_a_value",
            Create(json!({"description": "x"})),
            Create(json!({})),
        ),
        (
            "not_has_a_value",
            Create(json!({})),
            Create(json!({"description": "x"})),
        ),
        (
            "gt",
            Create(json!({"properties": {"hello_score": 7}})),
            Create(json!({"properties": {"hello_score": 3}})),
        ),
        (
            "lt",
            Create(json!({"properties": {"hello_score": 3}})),
            Create(json!({"properties": {"hello_score": 7}})),
        ),
        (
            "changed",
            CreateThenUpdate(json!({"description": "a"}), json!({"description": "b"})),
            CreateThenUpdate(
                json!({"description": "a"}),
                json!({"severity_code": "High"}),
            ),
        ),
        (
            "changed_to",
            CreateThenClose(json!({})),
            CreateThenUpdate(json!({}), json!({"severity_code": "High"})),
        ),
        (
            "object_added",
            AddArtifact("object-added 1"),
            AddArtifact("unrelated 1"),
        ),
        (
            "object_removed",
            AddThenRemoveArtifact("object-removed 1"),
            AddArtifact("object-removed 2"),
        ),
    ];
    for (method, positive, negative) in &cases {
        let rule = format!("m {method}");
        let yes = perform(sim, &host, &format!("[{method}] yes"), positive).await;
        assert_eq!(
            fired(sim, yes).await,
            std::slice::from_ref(&rule),
            "{method}: the rule fires when it holds"
        );
        let no = perform(sim, &host, &format!("[{method}] no"), negative).await;
        assert_eq!(
            fired(sim, no).await,
            Vec::<String>::new(),
            "{method}: nothing fires when it does not hold"
        );
    }
    // The rule message fn_hello received carries the rule's object.
    let run = sim
        .rule_runs()
        .into_iter()
        .find(|r| r.rule == "m object_added")
        .unwrap();
    let delivered = run.messages[0].final_reply(WAIT).await.unwrap();
    assert!(delivered.complete);
    assert_eq!(sim.violations(), Vec::<String>::new());
    host.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_rules_run_where_their_conditions_hold() {
    let host = TestHost::start(vec![Run::Registered(fn_hello::NAME)])
        .await
        .unwrap();
    let sim = host.sim();
    testkit::customize_sim(sim, &testkit::definitions_from_yaml(RULES_YAML))
        .await
        .unwrap();
    let high = sim
        .create_incident(json!({"name": "manual high", "severity_code": "High"}))
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let low = sim
        .create_incident(json!({"name": "manual low", "severity_code": "Low"}))
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let run = sim
        .run_manual_rule("m manual", high, json!({"note": "from the test"}))
        .await
        .unwrap();
    run.wait(WAIT).await.unwrap();
    let reply = run.messages[0].final_reply(WAIT).await.unwrap();
    assert_eq!(reply.message_type, 0);
    let err = sim
        .run_manual_rule("m manual", low, json!({}))
        .await
        .expect_err("not offered on a Low incident");
    assert!(err.to_string().contains("conditions do not hold"), "{err}");
    host.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fn_hello_answers_its_note_rule_and_ignores_other_notes() {
    let host = TestHost::start(vec![Run::Registered(fn_hello::NAME)])
        .await
        .unwrap();
    let sim = host.sim();
    let id = sim.create_incident(json!({"name": "notes"})).unwrap()["id"]
        .as_i64()
        .unwrap();
    sim.wait_rules_idle(WAIT).await.unwrap();
    sim.add_note(id, "nothing to see").unwrap();
    sim.wait_rules_idle(WAIT).await.unwrap();
    assert!(fired(sim, id).await.is_empty());
    let note = sim.add_note(id, "Well, hello there").unwrap();
    sim.wait_rules_idle(WAIT).await.unwrap();
    assert_eq!(fired(sim, id).await, [fn_hello::NOTE_RULE]);
    let status: Vec<String> = sim
        .action_status(id)
        .into_iter()
        .map(|a| a.message)
        .collect();
    let expected = format!(
        "fn_hello saw note {} on incident {id}: Well, hello there",
        note["id"]
    );
    assert!(
        status.contains(&expected),
        "{status:?} {:?} {:?}",
        sim.action_status(id),
        sim.rule_runs()
            .iter()
            .map(|r| (r.rule.clone(), r.incident_id, r.messages.len()))
            .collect::<Vec<_>>()
    );
    host.stop().await.unwrap();
}
