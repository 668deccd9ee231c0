//! Automatic rules: each condition method on incidents, notes and artifacts; the rule messages
//! and workflows they start; artifacts, closing and deleting incidents over REST.

mod common;

use std::collections::BTreeSet;

use common::{Api, RawClient, WAIT, fixture, json_body, start_sim};
use reqwest::StatusCode;
use serde_json::{Value, json};
use soar_sim::{Sim, WorkflowStatus};

fn auto_rule(name: &str, object_type: &str, conditions: Value, logic: &str) -> Value {
    let conditions: Vec<Value> = conditions
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            json!({"field_name": c[0], "method": c[1], "value": c[2], "type": null, "evaluation_id": null})
        })
        .collect();
    json!({
        "automations": [], "conditions": conditions, "enabled": true, "export_key": name,
        "logic_type": logic, "message_destinations": ["fn_hello"], "name": name,
        "object_type": object_type, "tags": [], "timeout_seconds": 86400, "type": 0,
        "uuid": uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, name.as_bytes()).to_string(),
        "view_items": [], "workflows": [],
    })
}

fn export_with(rules: Vec<Value>) -> Value {
    let mut x = fixture();
    x["actions"].as_array_mut().unwrap().extend(rules);
    x
}

/// Names of the rules run since `before` runs.
async fn fired_since(sim: &Sim, before: &mut usize) -> BTreeSet<String> {
    sim.wait_rules_idle(WAIT).await.unwrap();
    let runs = sim.rule_runs();
    let names = runs[*before..].iter().map(|r| r.rule.clone()).collect();
    *before = runs.len();
    names
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

#[tokio::test]
async fn each_condition_method_fires_only_when_it_holds() {
    let sim = start_sim().await;
    let rules = vec![
        auto_rule(
            "A",
            "incident",
            json!([[null, "object_added", null]]),
            "all",
        ),
        auto_rule(
            "B",
            "incident",
            json!([["incident.severity_code", "equals", "High"]]),
            "all",
        ),
        auto_rule(
            "C",
            "incident",
            json!([["incident.name", "contains", "DoS"]]),
            "all",
        ),
        auto_rule(
            "D",
            "incident",
            json!([
                ["incident.name", "not_contains", "zzz"],
                ["incident.description", "changed", null]
            ]),
            "all",
        ),
        auto_rule(
            "E",
            "incident",
            json!([["incident.description", "changed", null]]),
            "all",
        ),
        auto_rule(
            "F",
            "incident",
            json!([["incident.plan_status", "changed_to", "C"]]),
            "all",
        ),
        auto_rule(
            "G",
            "incident",
            json!([["incident.properties.hello_last_echo", "has_a_value", null]]),
            "all",
        ),
        auto_rule(
            "H",
            "incident",
            json!([["incident.severity_code", "gt", 5]]),
            "all",
        ),
        auto_rule(
            "I",
            "incident",
            json!([["incident.severity_code", "lt", 5]]),
            "all",
        ),
        auto_rule(
            "J",
            "incident",
            json!([
                ["incident.severity_code", "not_equals", "High"],
                ["incident.reporter", "changed", null]
            ]),
            "all",
        ),
        auto_rule(
            "K",
            "incident",
            json!([
                ["incident.reporter", "not_has_a_value", null],
                ["incident.city", "changed", null]
            ]),
            "all",
        ),
        auto_rule(
            "L",
            "incident",
            json!([
                ["incident.city", "equals", "Paris"],
                ["incident.zip", "equals", "75000"]
            ]),
            "any",
        ),
        auto_rule(
            "M",
            "note",
            json!([["note.text", "contains", "URGENT"]]),
            "all",
        ),
        auto_rule(
            "N",
            "artifact",
            json!([
                [null, "object_added", null],
                ["artifact.value", "contains", "evil"]
            ]),
            "all",
        ),
        auto_rule(
            "O",
            "artifact",
            json!([[null, "object_removed", null]]),
            "all",
        ),
        auto_rule(
            "P",
            "incident",
            json!([[null, "object_removed", null]]),
            "all",
        ),
    ];
    Api::new(&sim).import(&export_with(rules)).await;
    let mut n = 0;

    let inc = sim
        .create_incident(json!({"name": "DoS attack", "severity_code": "High"}))
        .unwrap();
    let id = inc["id"].as_i64().unwrap();
    assert_eq!(fired_since(&sim, &mut n).await, set(&["A", "B", "C", "H"]));

    sim.update_incident(id, json!({"description": "d1"}))
        .unwrap();
    assert_eq!(
        fired_since(&sim, &mut n).await,
        set(&["B", "C", "D", "E", "H"])
    );

    sim.update_incident(id, json!({"severity_code": "Low", "name": "quiet"}))
        .unwrap();
    assert_eq!(fired_since(&sim, &mut n).await, set(&["I"]));

    sim.update_incident(id, json!({"reporter": "Bob"})).unwrap();
    assert_eq!(fired_since(&sim, &mut n).await, set(&["I", "J"]));

    sim.update_incident(id, json!({"city": "Paris"})).unwrap();
    assert_eq!(fired_since(&sim, &mut n).await, set(&["I", "L"]));

    sim.update_incident(id, json!({"reporter": "", "city": "Lyon"}))
        .unwrap();
    assert_eq!(fired_since(&sim, &mut n).await, set(&["I", "J", "K"]));

    sim.update_incident(id, json!({"properties": {"hello_last_echo": "e"}}))
        .unwrap();
    assert_eq!(fired_since(&sim, &mut n).await, set(&["G", "I"]));

    // Closing needs a resolution.
    assert!(
        sim.update_incident(id, json!({"plan_status": "C"}))
            .unwrap_err()
            .to_string()
            .contains("resolution_id")
    );
    assert_eq!(fired_since(&sim, &mut n).await, set(&[]));
    let closed = sim.close_incident(id, "Resolved", "done").unwrap();
    assert_eq!(closed["plan_status"], "C");
    assert_eq!(closed["resolution_id"], 10);
    assert!(closed["end_date"].is_i64());
    assert_eq!(fired_since(&sim, &mut n).await, set(&["F", "G", "I"]));

    sim.add_note(id, "this is urgent: call").unwrap();
    assert_eq!(fired_since(&sim, &mut n).await, set(&["M"]));
    sim.add_note(id, "calm").unwrap();
    assert_eq!(fired_since(&sim, &mut n).await, set(&[]));

    let evil = sim
        .add_artifact(id, json!({"type": "URL", "value": "http://evil.example/x"}))
        .unwrap();
    assert_eq!(fired_since(&sim, &mut n).await, set(&["N"]));
    sim.add_artifact(id, json!({"type": "DNS Name", "value": "good.example"}))
        .unwrap();
    assert_eq!(fired_since(&sim, &mut n).await, set(&[]));
    let (s, _) = Api::new(&sim)
        .call(
            reqwest::Method::DELETE,
            &format!("/rest/orgs/201/incidents/{id}/artifacts/{}", evil["id"]),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(fired_since(&sim, &mut n).await, set(&["O"]));

    sim.delete_incident(id).unwrap();
    assert_eq!(fired_since(&sim, &mut n).await, set(&["P"]));
    assert!(sim.incident(id).is_none());
}

#[tokio::test]
async fn automatic_rules_send_action_data_and_start_workflows() {
    let sim = start_sim().await;
    let mut wf_rule = auto_rule(
        "Hello on urgent notes",
        "note",
        json!([["note.text", "contains", "say hello"]]),
        "all",
    );
    wf_rule["message_destinations"] = json!([]);
    wf_rule["workflows"] = json!(["example_hello"]);
    let rules = vec![
        auto_rule(
            "Artifact added",
            "artifact",
            json!([[null, "object_added", null]]),
            "all",
        ),
        wf_rule,
    ];
    Api::new(&sim).import(&export_with(rules)).await;
    let (mut client, _) = RawClient::connect(&sim).await;
    client.subscribe("actions.201.fn_hello", 10).await;
    let id = sim.create_incident(json!({"name": "Inc"})).unwrap()["id"]
        .as_i64()
        .unwrap();

    let artifact = sim
        .add_artifact(
            id,
            json!({"type": 3, "value": "https://example.org", "description": "d"}),
        )
        .unwrap();
    let m = client.next_frame().await;
    let body = json_body(&m);
    let rule_id = sim.platform().rule_by_name("Artifact added").unwrap().id;
    assert_eq!(body["action_id"], rule_id);
    assert_eq!(body["object_type"], 4);
    assert_eq!(body["operation_type"], "created");
    assert_eq!(body["incident"]["id"], id);
    // The incident carries the keys of the platform's incident type that integrations read
    // (the original TruSTAR plugin fails on a missing one).
    for key in [
        "inc_start",
        "data_compromised",
        "pii",
        "creator",
        "creator_id",
        "nist_attack_vectors",
        "exposure_type_id",
        "addr",
        "city",
        "state",
        "country",
        "zip",
        "gdpr",
        "regulators",
        "hipaa",
        "members",
    ] {
        assert!(
            body["incident"].get(key).is_some(),
            "the rule message's incident lacks {key}"
        );
    }
    assert_eq!(body["incident"]["pii"]["data_source_ids"], json!([]));
    assert_eq!(body["artifact"], artifact);
    client.ack(&m).await;
    client
        .reply(
            &m,
            json!({"message_type": 0, "message": "seen", "complete": true}),
        )
        .await;

    sim.add_note(id, "say hello").unwrap();
    let m = client.next_frame().await;
    let body = json_body(&m);
    assert_eq!(body["function"]["name"], "fn_hello");
    assert_eq!(body["object_type"], 2);
    assert_eq!(body["note"]["text"], "say hello");
    assert_eq!(body["inputs"]["hello_text"], "Inc");
    client.ack(&m).await;
    client
        .reply(
            &m,
            json!({"message_type": 0, "message": "ok", "complete": true,
                   "results": {"content": {"text": "hi", "mode": "Quiet"}}}),
        )
        .await;
    sim.wait_rules_idle(WAIT).await.unwrap();
    let run = sim
        .rule_runs()
        .into_iter()
        .find(|r| r.rule == "Hello on urgent notes")
        .unwrap();
    let runs = run.wait(WAIT).await.unwrap();
    assert_eq!(runs[0].status, WorkflowStatus::Completed);
    assert_eq!(
        sim.incident(id).unwrap()["properties"]["hello_last_echo"],
        "hi"
    );
    // The workflow's own note does not contain "say hello": nothing fired again.
    sim.wait_rules_idle(WAIT).await.unwrap();
    assert_eq!(sim.rule_runs().len(), 2);
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
}

#[tokio::test]
async fn artifacts_patch_and_delete_over_rest() {
    let sim = start_sim().await;
    let api = Api::new(&sim);
    let id = sim.create_incident(json!({"name": "Inc"})).unwrap()["id"]
        .as_i64()
        .unwrap();
    let base = format!("/rest/orgs/201/incidents/{id}");

    let (s, types) = api.get("/rest/orgs/201/artifact_types").await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        types["entities"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "URL")
    );
    let (s, err) = api
        .post(
            &format!("{base}/artifacts"),
            &json!({"type": "URL", "value": "not a url"}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(err["message"], "The specified URL is invalid");
    let (s, created) = api
        .post(
            &format!("{base}/artifacts?handle_format=names"),
            &json!({"type": {"name": "IP Address"}, "value": "10.0.0.1", "description": {"format": "text", "content": "d"}}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{created}");
    assert_eq!(created[0]["type"], "IP Address");
    assert_eq!(created[0]["description"], "d");
    let aid = created[0]["id"].clone();
    let (_, list) = api.get(&format!("{base}/artifacts")).await;
    assert_eq!(list[0]["type"], 1);
    assert_eq!(list[0]["hits"], json!([]));
    let (s, one) = api.get(&format!("{base}/artifacts/{aid}")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(one["value"], "10.0.0.1");

    let (s, r) = api
        .call(
            reqwest::Method::PATCH,
            &base,
            Some(&json!({"changes": [
                {"field": {"name": "severity_code"}, "old_value": {"id": null}, "new_value": {"id": "Medium"}},
                {"field": {"name": "description"}, "old_value": {"textarea": null},
                 "new_value": {"textarea": {"format": "text", "content": "patched"}}}
            ], "version": 1})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(r["success"], true);
    let inc = sim.incident(id).unwrap();
    assert_eq!(inc["severity_code"], 5);
    assert_eq!(inc["description"], "patched");
    let (s, _) = api
        .call(
            reqwest::Method::PATCH,
            &base,
            Some(&json!({"changes": [], "version": 1})),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);

    let (s, _) = api.call(reqwest::Method::DELETE, &base, None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = api.get(&base).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(sim.artifacts(id).is_empty());
}
