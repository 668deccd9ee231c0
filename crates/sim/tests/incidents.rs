//! Incidents and notes over REST and through the Rust API.

mod common;

use common::{Api, fixture, start_sim};
use reqwest::StatusCode;
use serde_json::json;
use soar_sim::SimError;

#[tokio::test]
async fn incidents_are_created_read_and_updated_with_platform_shapes() {
    let sim = start_sim().await;
    let api = Api::new(&sim);

    let (s, err) = api
        .post(
            "/rest/orgs/201/incidents",
            &json!({"description": "no name"}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(err["success"], false);
    assert!(err["message"].as_str().unwrap().contains("name"), "{err}");

    let (s, inc) = api
        .post(
            "/rest/orgs/201/incidents",
            &json!({"name": "Phish", "severity_code": "High", "incident_type_ids": [22],
                    "description": {"format": "text", "content": "a phish"}}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{inc}");
    let id = inc["id"].as_i64().unwrap();
    assert_eq!(inc["name"], "Phish");
    assert_eq!(inc["severity_code"], 6);
    assert_eq!(inc["incident_type_ids"], json!([22]));
    assert_eq!(inc["description"], "a phish");
    assert_eq!(inc["plan_status"], "A");
    assert_eq!(inc["properties"], json!({}));
    assert_eq!(inc["org_id"], 201);
    assert!(inc["create_date"].is_i64());
    assert!(inc["discovered_date"].is_i64());

    let (s, got) = api.get(&format!("/rest/orgs/201/incidents/{id}")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(got, inc);
    assert_eq!(sim.incident(id), Some(inc.clone()));
    let (_, named) = api
        .get(&format!(
            "/rest/orgs/201/incidents/{id}?handle_format=names"
        ))
        .await;
    assert_eq!(named["severity_code"], "High");
    assert_eq!(named["incident_type_ids"], json!(["Phishing"]));
    assert_eq!(named["plan_status"], "A");

    let mut change = got.clone();
    change["description"] = json!("updated");
    change["severity_code"] = json!("Low");
    let (s, put) = api
        .put(&format!("/rest/orgs/201/incidents/{id}"), &change)
        .await;
    assert_eq!(s, StatusCode::OK, "{put}");
    assert_eq!(put["description"], "updated");
    assert_eq!(put["severity_code"], 4);
    assert_eq!(put["vers"], 2);
    // A stale version conflicts.
    let (s, _) = api
        .put(&format!("/rest/orgs/201/incidents/{id}"), &change)
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (s, _) = api
        .put(
            &format!("/rest/orgs/201/incidents/{id}"),
            &json!({"severity_code": "Huge"}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = api.get("/rest/orgs/201/incidents/99999").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = api.get("/rest/orgs/201/incidents/abc").await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Custom fields must exist on the platform.
    let (s, err) = api
        .post(
            "/rest/orgs/201/incidents",
            &json!({"name": "x", "properties": {"hello_last_echo": "e"}}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        err["message"].as_str().unwrap().contains("hello_last_echo"),
        "{err}"
    );
    api.import(&fixture()).await;
    let inc = sim
        .create_incident(json!({"name": "x", "properties": {"hello_last_echo": "e"}}))
        .unwrap();
    assert_eq!(inc["properties"]["hello_last_echo"], "e");
    assert!(matches!(
        sim.create_incident(json!({"name": ""})),
        Err(SimError::Rejected(_))
    ));
}

#[tokio::test]
async fn notes_are_posted_as_text_or_html_and_listed() {
    let sim = start_sim().await;
    let api = Api::new(&sim);
    let inc = sim.create_incident(json!({"name": "With notes"})).unwrap();
    let id = inc["id"].as_i64().unwrap();
    let path = format!("/rest/orgs/201/incidents/{id}/comments");

    let (s, n1) = api
        .post(
            &path,
            &json!({"text": {"format": "text", "content": "first & plain"}}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{n1}");
    assert_eq!(n1["text"], "first & plain");
    assert!(n1["id"].is_i64());
    assert!(n1["create_date"].is_i64());
    assert_eq!(n1["user_name"], "Sim User");
    let (_, n2) = api
        .post(
            &path,
            &json!({"text": {"format": "html", "content": "<div>second</div>"}}),
        )
        .await;
    assert_eq!(n2["text"], "<div>second</div>");
    let (_, n3) = api.post(&path, &json!({"text": "third"})).await;
    assert_eq!(n3["text"], "third");
    let n4 = sim.add_note(id, "fourth").unwrap();

    let (s, list) = api.get(&path).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(list, json!([n1, n2, n3, n4]));
    assert_eq!(sim.notes(id).len(), 4);

    let (s, _) = api.post(&path, &json!({"nothing": 1})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = api
        .post(
            "/rest/orgs/201/incidents/99999/comments",
            &json!({"text": "x"}),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = api.get("/rest/orgs/201/incidents/99999/comments").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(matches!(
        sim.add_note(99999, "x"),
        Err(SimError::UnknownIncident(99999))
    ));
    assert!(sim.notes(99999).is_empty());
}
