//! The HTTP admin interface (`/sim/admin`): every endpoint's happy path and one error each,
//! and its authentication (API key or REST session).

mod common;

use common::cts::Cts;
use common::{Api, RawClient, WAIT, json_body, start_sim, start_sim_with};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use soar_sim::SimConfig;
use soar_stomp::Command;

fn client(sim: &soar_sim::Sim) -> reqwest::Client {
    reqwest::Client::builder()
        .use_preconfigured_tls((*sim.client_tls_config()).clone())
        .timeout(WAIT)
        .build()
        .unwrap()
}

fn message(v: &Value) -> String {
    v["message"].as_str().unwrap_or_default().to_string()
}

#[tokio::test]
async fn help_authentication_and_unknown_paths() {
    let sim = start_sim().await;
    let api = Api::new(&sim);
    let (s, help) = api.get("/sim/admin").await;
    assert_eq!(s, StatusCode::OK);
    let endpoints = help["endpoints"].as_array().unwrap();
    assert_eq!(endpoints.len(), soar_sim::admin::ENDPOINTS.len());
    let listed: Vec<String> = endpoints
        .iter()
        .map(|e| {
            format!(
                "{} {}",
                e["method"].as_str().unwrap(),
                e["path"].as_str().unwrap()
            )
        })
        .collect();
    for e in [
        "GET /sim/admin/incidents",
        "POST /sim/admin/incidents/{id}/rules",
        "DELETE /sim/admin/threat_services/{name}",
        "GET /sim/admin/state",
    ] {
        assert!(listed.iter().any(|l| l == e), "{e} not in {listed:?}");
    }
    assert_eq!(sim.admin_url(), format!("{}/sim/admin", sim.base_url()));

    // No credentials, wrong ones.
    let http = client(&sim);
    let r = http.get(sim.admin_url()).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = http
        .get(sim.admin_url())
        .basic_auth("sim-api-key-id", Some("wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // A password session works too.
    let r = http
        .post(format!("{}/rest/session", sim.base_url()))
        .json(&json!({"email": sim.config().email, "password": sim.config().password}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let cookie = r
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let session: Value = r.json().await.unwrap();
    let r = http
        .get(format!("{}/incidents", sim.admin_url()))
        .header("cookie", cookie)
        .header("X-sess-id", session["csrf_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    // Unknown paths and methods are JSON errors pointing at the help.
    let (s, e) = api.get("/sim/admin/nothing").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(message(&e).contains("GET /sim/admin"), "{e}");
    let (s, e) = api.put("/sim/admin/incidents", &json!({})).await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);
    assert!(message(&e).contains("GET /sim/admin"), "{e}");
}

#[tokio::test]
async fn the_admin_interface_is_not_under_the_resource_prefix() {
    let sim = start_sim_with(SimConfig {
        resource_prefix: Some("/api/respond".into()),
        ..SimConfig::default()
    })
    .await;
    assert!(sim.base_url().ends_with("/api/respond"));
    let r = client(&sim)
        .get(format!("{}/incidents", sim.admin_url()))
        .basic_auth(&sim.config().api_key_id, Some(&sim.config().api_key_secret))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap(), json!([]));
}

#[tokio::test]
async fn incidents_notes_artifacts_close_and_delete() {
    let sim = start_sim().await;
    let api = Api::new(&sim);

    // Create.
    let (s, inc) = api
        .post(
            "/sim/admin/incidents",
            &json!({"name": "Phish", "severity_code": "High"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{inc}");
    let id = inc["id"].as_i64().unwrap();
    assert_eq!(inc["severity_code"], 6);
    let (s, e) = api
        .post("/sim/admin/incidents", &json!({"severity_code": "High"}))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(message(&e).contains("name"), "{e}");
    let r = client(&sim)
        .post(format!("{}/incidents", sim.admin_url()))
        .basic_auth(&sim.config().api_key_id, Some(&sim.config().api_key_secret))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let e: Value = r.json().await.unwrap();
    assert!(message(&e).contains("not valid JSON"), "{e}");

    // List.
    let (s, list) = api.get("/sim/admin/incidents").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(list[0]["id"], id);
    assert_eq!(list[0]["severity_code"], "High");
    assert_eq!(list[0]["notes"], 0);

    // Notes.
    let base = format!("/sim/admin/incidents/{id}");
    let (s, note) = api
        .post(&format!("{base}/notes"), &json!({"text": "first"}))
        .await;
    assert_eq!(s, StatusCode::OK, "{note}");
    assert_eq!(note["text"], "first");
    let (s, note) = api
        .post(
            &format!("{base}/notes"),
            &json!({"text": "<b>bold</b>", "format": "html"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(note["text"], "<b>bold</b>");
    let (s, e) = api.post(&format!("{base}/notes"), &json!({})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(message(&e).contains("text"), "{e}");
    let (s, _) = api
        .post("/sim/admin/incidents/99999/notes", &json!({"text": "x"}))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Artifacts.
    let (s, a) = api
        .post(
            &format!("{base}/artifacts"),
            &json!({"type": "IP Address", "value": "10.0.0.1", "description": "seen"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{a}");
    assert_eq!(a["type"], "IP Address");
    assert_eq!(a["description"], "seen");
    let (s, e) = api
        .post(
            &format!("{base}/artifacts"),
            &json!({"type": "URL", "value": "nope"}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(message(&e), "The specified URL is invalid");

    // Show.
    let (s, shown) = api.get(&base).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(shown["incident"]["name"], "Phish");
    assert_eq!(shown["incident"]["severity_code"], "High");
    assert_eq!(shown["notes"].as_array().unwrap().len(), 2);
    assert_eq!(shown["artifacts"][0]["value"], "10.0.0.1");
    assert_eq!(shown["artifacts"][0]["hits"], json!([]));
    assert!(shown["action_status"].is_array());
    assert!(shown["threat_lookups"].is_array());
    let (s, _) = api.get("/sim/admin/incidents/424242").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, e) = api.get("/sim/admin/incidents/abc").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(message(&e).contains("abc"), "{e}");

    // Close.
    let (s, e) = api
        .post(
            &format!("{base}/close"),
            &json!({"resolution": "Bogus", "summary": "x"}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(message(&e).contains("Bogus"), "{e}");
    let (s, closed) = api
        .post(
            &format!("{base}/close"),
            &json!({"resolution": "Resolved", "summary": "done"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{closed}");
    assert_eq!(closed["plan_status"], "C");
    assert_eq!(closed["resolution_id"], "Resolved");
    assert_eq!(closed["resolution_summary"], "done");
    assert_eq!(sim.incident(id).unwrap()["resolution_id"], 10);

    // Delete.
    let (s, gone) = api.call(Method::DELETE, &base, None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(gone["deleted"]["id"], id);
    let (s, _) = api.call(Method::DELETE, &base, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(sim.incident(id).is_none());
}

#[tokio::test]
async fn manual_rules_run_and_are_waited_for() {
    let sim = start_sim().await;
    sim.register_function("fn_hello", "fn_hello");
    sim.add_rule(61, "Notify", &["fn_hello"]);
    let (mut host, _) = RawClient::connect(&sim).await;
    host.subscribe("actions.201.fn_hello", 10).await;
    let id = sim.create_incident(json!({"name": "r"})).unwrap()["id"]
        .as_i64()
        .unwrap();
    let api = Api::new(&sim);
    let path = format!("/sim/admin/incidents/{id}/rules");

    // Errors first.
    let (s, e) = api.post(&path, &json!({"rule": "Nope"})).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(message(&e).contains("Nope"), "{e}");
    let (s, e) = api.post(&path, &json!({})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(message(&e).contains("rule"), "{e}");
    let (s, e) = api
        .post(&path, &json!({"rule": "Notify", "wait_seconds": -1}))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(message(&e).contains("wait_seconds"), "{e}");
    let (s, e) = api
        .post(&path, &json!({"rule": "Notify", "artifact_id": 5}))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{e}");
    let (s, _) = api
        .post("/sim/admin/incidents/777/rules", &json!({"rule": "Notify"}))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Run and wait: the "host" answers while the admin request waits.
    let request = {
        let api = Api::new(&sim);
        let path = path.clone();
        tokio::spawn(async move {
            api.post(
                &path,
                &json!({"rule": "Notify", "properties": {"reason": "admin"}, "wait_seconds": 10}),
            )
            .await
        })
    };
    let m = host.next_frame().await;
    assert_eq!(m.command, Command::Message);
    let body = json_body(&m);
    assert_eq!(body["properties"], json!({"reason": "admin"}));
    assert_eq!(body["incident"]["id"], id);
    host.ack(&m).await;
    host.reply(
        &m,
        json!({"message_type": 0, "message": "notified", "complete": true}),
    )
    .await;
    let (s, out) = request.await.unwrap();
    assert_eq!(s, StatusCode::OK, "{out}");
    assert_eq!(out["rule"], "Notify");
    assert_eq!(out["finished"], true);
    assert_eq!(out["messages"][0]["queue"], "actions.201.fn_hello");
    let status = out["action_status"].as_array().unwrap();
    assert_eq!(status.len(), 1, "{out}");
    assert_eq!(status[0]["state"], "Complete");
    assert_eq!(status[0]["message"], "notified");

    // Without waiting: answered at once.
    let (s, out) = api.post(&path, &json!({"rule": "Notify"})).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(out["waited"], false);
    assert!(out.get("finished").is_none());
    assert_eq!(out["action_status"][1]["state"], "Pending");
    let m = host.next_frame().await;
    host.ack(&m).await;
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
}

#[tokio::test]
async fn threat_services_and_state() {
    let cts = Cts::start().await;
    let sim = start_sim().await;
    let api = Api::new(&sim);

    // Register.
    let (s, svc) = api
        .post(
            "/sim/admin/threat_services",
            &json!({"name": "good", "url": cts.url("good"), "user": "u", "password": "p"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{svc}");
    assert_eq!(svc["id"], 1);
    assert_eq!(svc["password_set"], true);
    assert!(svc.get("password").is_none());
    let (s, e) = api
        .post(
            "/sim/admin/threat_services",
            &json!({"name": "bad", "url": "ftp://example.org/cts"}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(message(&e).contains("ftp://"), "{e}");
    api.post(
        "/sim/admin/threat_services",
        &json!({"name": "broken", "url": cts.url("broken")}),
    )
    .await;

    // List.
    let (s, list) = api.get("/sim/admin/threat_services").await;
    assert_eq!(s, StatusCode::OK);
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["broken", "good"]);
    assert_eq!(sim.threat_services().len(), 2);

    // Test.
    let (s, t) = api
        .post("/sim/admin/threat_services/good/test", &json!({}))
        .await;
    assert_eq!(s, StatusCode::OK, "{t}");
    assert_eq!(t["ok"], true);
    let (s, e) = api
        .post("/sim/admin/threat_services/broken/test", &json!({}))
        .await;
    assert_eq!(s, StatusCode::BAD_GATEWAY);
    assert!(message(&e).contains("500"), "{e}");
    let (s, _) = api
        .post("/sim/admin/threat_services/nope/test", &json!({}))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // An artifact added through the admin interface is looked up; its lookups are shown.
    let (_, inc) = api
        .post("/sim/admin/incidents", &json!({"name": "cts"}))
        .await;
    let id = inc["id"].as_i64().unwrap();
    api.post(
        &format!("/sim/admin/incidents/{id}/artifacts"),
        &json!({"type": "DNS Name", "value": "example.org"}),
    )
    .await;
    sim.wait_threat_lookups_idle(WAIT).await.unwrap();
    let (_, shown) = api.get(&format!("/sim/admin/incidents/{id}")).await;
    let lookups = shown["threat_lookups"].as_array().unwrap();
    assert_eq!(lookups.len(), 2);
    assert!(
        lookups
            .iter()
            .any(|l| l["outcome"]["state"] == "failed" && l["service"] == "broken"),
        "{lookups:?}"
    );
    assert!(
        lookups
            .iter()
            .any(|l| l["outcome"] == json!({"state": "completed", "hits": 0})),
        "{lookups:?}"
    );

    // Delete.
    let (s, d) = api
        .call(Method::DELETE, "/sim/admin/threat_services/broken", None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(d["deleted"], "broken");
    let (s, _) = api
        .call(Method::DELETE, "/sim/admin/threat_services/broken", None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // State: everything, passwords redacted.
    let (s, state) = api.get("/sim/admin/state").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(state["org_id"], 201);
    assert_eq!(state["incidents"][0]["id"], id);
    assert_eq!(
        state["threat_services"][0]["service"]["password"],
        "<redacted>"
    );
    assert!(!state.to_string().contains("\"p\""));
    assert_eq!(state["runtime"]["rest_port"], sim.rest_port());
    assert!(state["runtime"]["state_file"].is_null());
    let r = client(&sim)
        .get(format!("{}/state", sim.admin_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

/// An admin request with a raw body: the status and the body's text.
async fn raw(sim: &soar_sim::Sim, method: Method, path: &str, body: &str) -> (u16, String) {
    let r = client(sim)
        .request(method, format!("{}{path}", sim.admin_url()))
        .basic_auth(&sim.config().api_key_id, Some(&sim.config().api_key_secret))
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// Incident ids that are not numbers (answered before the body) and bodies that are not JSON
/// objects, byte for byte; an empty body is `{}` and an id may have blanks around it.
#[tokio::test]
async fn ids_that_are_not_numbers_and_bodies_that_are_not_objects() {
    let sim = start_sim().await;
    let id = sim.create_incident(json!({"name": "ids"})).unwrap()["id"].clone();
    let error = |m: &str| {
        json!({"success": false, "title": null, "message": m, "hints": [],
               "error_code": "generic"})
        .to_string()
    };
    let not_id = error("'abc' is not an incident id (a number)");
    for (method, path) in [
        (Method::GET, "/incidents/abc"),
        (Method::DELETE, "/incidents/abc"),
        (Method::POST, "/incidents/abc/notes"),
        (Method::POST, "/incidents/abc/artifacts"),
        (Method::POST, "/incidents/abc/close"),
        (Method::POST, "/incidents/abc/rules"),
    ] {
        let answer = raw(&sim, method.clone(), path, "{not json").await;
        assert_eq!(answer, (400, not_id.clone()), "{method} {path}");
    }
    let answer = raw(&sim, Method::GET, "/incidents/%20x", "").await;
    assert_eq!(
        answer,
        (400, error("' x' is not an incident id (a number)"))
    );
    let (s, shown) = raw(&sim, Method::GET, &format!("/incidents/%20{id}%20"), "").await;
    assert_eq!(s, 200, "{shown}");

    let syntax = serde_json::from_str::<Value>("{not json").unwrap_err();
    let not_json = error(&format!("the request body is not valid JSON: {syntax}"));
    let notes = format!("/incidents/{id}/notes");
    for (path, body, expected) in [
        ("/incidents", "{not json", not_json.clone()),
        ("/threat_services", "{not json", not_json.clone()),
        (&notes, "{not json", not_json.clone()),
        (
            &notes,
            "[1]",
            error("the request body must be a JSON object, not [1]"),
        ),
        (&notes, " \n", error("a note needs a \"text\"")),
        (&notes, "", error("a note needs a \"text\"")),
    ] {
        let answer = raw(&sim, Method::POST, path, body).await;
        assert_eq!(answer, (400, expected), "POST {path} {body:?}");
    }
}
