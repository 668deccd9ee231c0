//! The platform REST calls integrations make beyond incidents and notes (a threat-intelligence
//! integration's in particular): org and workspaces, phases, incident field values, artifact
//! types (built-in, created with POST, used by id or name), the incidents list, and manual rules
//! on notes and artifacts.

mod common;

use common::{Api, RawClient, WAIT, fixture, json_body, start_sim};
use reqwest::StatusCode;
use serde_json::{Value, json};
use soar_sim::{ObjectRef, SimError};
use soar_stomp::Command;

#[tokio::test]
async fn workspaces_are_listed_created_and_used_by_incidents() {
    let sim = start_sim().await;
    let api = Api::new(&sim);

    let (s, org) = api.get("/rest/orgs/201").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(org["workspaces"][0]["id"], 1);
    assert_eq!(org["workspaces"][0]["display_name"], "Default workspace");

    let (s, list) = api.get("/rest/orgs/201/workspaces").await;
    assert_eq!(s, StatusCode::OK);
    let entities = list["entities"].as_array().unwrap();
    assert_eq!(entities.len(), 1);
    assert_eq!(entities[0]["name"], "default");
    assert_eq!(entities[0]["is_default"], true);

    let (s, w) = api
        .post(
            "/rest/orgs/201/workspaces",
            &json!({"display_name": "SOC Team", "description": "the SOC"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{w}");
    let wid = w["id"].as_i64().unwrap();
    assert_eq!(w["name"], "soc_team");
    let (s, got) = api.get(&format!("/rest/orgs/201/workspaces/{wid}")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(got["display_name"], "SOC Team");
    assert_eq!(got["description"], "the SOC");
    assert_eq!(got["is_default"], false);
    // The Rust API finds the same workspace (idempotent) and adds others.
    assert_eq!(sim.add_workspace("SOC Team").unwrap()["id"], wid);
    let other = sim.add_workspace("Partners").unwrap();
    assert_eq!(sim.workspaces().len(), 3);

    let (s, e) = api.get("/rest/orgs/201/workspaces/999").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(e["success"], false);
    let (s, _) = api
        .post(
            "/rest/orgs/201/workspaces",
            &json!({"display_name": "SOC Team"}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (s, e) = api.post("/rest/orgs/201/workspaces", &json!({})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(e["message"].as_str().unwrap().contains("display_name"));

    // Incidents: the default workspace, or the one given by id or display name.
    let (_, a) = api
        .post("/rest/orgs/201/incidents", &json!({"name": "a"}))
        .await;
    assert_eq!(a["workspace"], 1);
    let (_, b) = api
        .post(
            "/rest/orgs/201/incidents",
            &json!({"name": "b", "workspace": wid}),
        )
        .await;
    assert_eq!(b["workspace"], wid);
    let c = sim
        .create_incident(json!({"name": "c", "workspace": "Partners"}))
        .unwrap();
    assert_eq!(c["workspace"], other["id"]);
    let (s, e) = api
        .post(
            "/rest/orgs/201/incidents",
            &json!({"name": "d", "workspace": 4242}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(e["message"].as_str().unwrap().contains("4242"), "{e}");
    let (s, moved) = api
        .put(
            &format!("/rest/orgs/201/incidents/{}", a["id"]),
            &json!({"workspace": "SOC Team"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{moved}");
    assert_eq!(moved["workspace"], wid);

    // What an intelligence integration does: the workspace's display name from the incident's id.
    let (_, w) = api
        .get(&format!("/rest/orgs/201/workspaces/{}", moved["workspace"]))
        .await;
    assert_eq!(w["display_name"], "SOC Team");

    // The incidents list (GET /incidents and /incidents/).
    for path in ["/rest/orgs/201/incidents", "/rest/orgs/201/incidents/"] {
        let (s, list) = api.get(path).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(list.as_array().unwrap().len(), 3, "{path}");
    }
}

#[tokio::test]
async fn phases_and_field_values_have_the_platform_shapes() {
    let sim = start_sim().await;
    let api = Api::new(&sim);

    let (s, phases) = api.get("/rest/orgs/201/phases").await;
    assert_eq!(s, StatusCode::OK);
    let names: Vec<&str> = phases["entities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "Engage",
            "Detect/Analyze",
            "Respond",
            "Post-Incident",
            "Complete"
        ]
    );
    let (s, p) = api.get("/rest/orgs/201/phases/1002").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(p["name"], "Respond");
    assert_eq!(p["id"], 1002);
    let (s, _) = api.get("/rest/orgs/201/phases/7").await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    let inc = sim
        .create_incident(json!({"name": "p", "phase_id": "Respond"}))
        .unwrap();
    assert_eq!(inc["phase_id"], 1002);
    let (_, named) = api
        .get(&format!(
            "/rest/orgs/201/incidents/{}?handle_format=names",
            inc["id"]
        ))
        .await;
    assert_eq!(named["phase_id"], "Respond");
    assert!(matches!(
        sim.create_incident(json!({"name": "p", "phase_id": "Nowhere"})),
        Err(SimError::Rejected(_))
    ));

    let labels = |f: &Value| -> Vec<String> {
        f["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["label"].as_str().unwrap().to_string())
            .collect()
    };
    for (field, expected) in [
        ("severity_code", vec!["Low", "Medium", "High"]),
        (
            "resolution_id",
            vec!["Unresolved", "Duplicate", "Not an Issue", "Resolved"],
        ),
        ("plan_status", vec!["Active", "Closed"]),
    ] {
        let (s, f) = api
            .get(&format!("/rest/orgs/201/types/incident/fields/{field}"))
            .await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(f["name"], field);
        assert_eq!(labels(&f), expected, "{field}");
        for v in f["values"].as_array().unwrap() {
            for key in ["value", "label", "enabled", "hidden", "default", "uuid"] {
                assert!(v.get(key).is_some(), "{field}: {key} missing in {v}");
            }
            assert_eq!(v["enabled"], true);
        }
    }
    let (_, types) = api
        .get("/rest/orgs/201/types/incident/fields/incident_type_ids")
        .await;
    assert_eq!(types["input_type"], "multiselect");
    let phishing = types["values"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["label"] == "Phishing")
        .unwrap();
    assert_eq!(phishing["value"], 22);
    let (_, phase) = api
        .get("/rest/orgs/201/types/incident/fields/phase_id")
        .await;
    assert_eq!(labels(&phase).len(), 5);
    let (s, _) = api
        .get("/rest/orgs/201/types/incident/fields/no_such_field")
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn artifact_types_are_listed_created_and_usable() {
    let sim = start_sim().await;
    let api = Api::new(&sim);
    let id = sim.create_incident(json!({"name": "types"})).unwrap()["id"]
        .as_i64()
        .unwrap();

    let (s, list) = api.get("/rest/orgs/201/artifact_types").await;
    assert_eq!(s, StatusCode::OK);
    let builtin = list["entities"].as_array().unwrap().clone();
    let find = |name: &str| builtin.iter().find(|t| t["name"] == name).unwrap().clone();
    for (name, pn) in [
        ("IP Address", "net.ip"),
        ("URL", "net.uri"),
        ("DNS Name", "net.name"),
        ("Malware MD5 Hash", "hash.md5"),
        ("Malware SHA-1 Hash", "hash.sha1"),
        ("Malware SHA-256 Hash", "hash.sha256"),
        ("Email Sender", "email.header.sender_address"),
        ("Threat CVE ID", "threat.report.cve"),
        ("Network CIDR Range", "net.cidr"),
    ] {
        let t = find(name);
        assert_eq!(t["programmatic_name"], pn);
        assert_eq!(t["system"], true);
        assert_eq!(t["enabled"], true);
    }
    let (s, url) = api.get("/rest/orgs/201/artifact_types/3").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(url["name"], "URL");

    // What an intelligence integration creates for an unmapped indicator type.
    let body = json!({"programmatic_name": "intel_bitcoin_address", "name": "Intel BITCOIN_ADDRESS",
                      "desc": "Intel Indicator Type.", "enabled": true, "use_for_relationships": true});
    let (s, created) = api.post("/rest/orgs/201/artifact_types", &body).await;
    assert_eq!(s, StatusCode::OK, "{created}");
    let tid = created["id"].as_i64().unwrap();
    assert!(tid >= 1000);
    assert_eq!(created["system"], false);
    assert_eq!(created["desc"], "Intel Indicator Type.");
    assert_eq!(created["use_for_relationships"], true);
    for path in [
        format!("/rest/orgs/201/artifact_types/{tid}"),
        "/rest/orgs/201/artifact_types/intel_bitcoin_address".to_string(),
    ] {
        let (s, got) = api.get(&path).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(got, created);
    }
    let (_, list) = api.get("/rest/orgs/201/artifact_types").await;
    assert_eq!(
        list["entities"].as_array().unwrap().len(),
        builtin.len() + 1
    );
    // The export lists it with the imported ones.
    assert!(
        sim.export()["incident_artifact_types"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["programmatic_name"] == "intel_bitcoin_address")
    );
    // Created through the Rust API too.
    let other = sim
        .create_artifact_type(json!({"programmatic_name": "url_string", "name": "URL String"}))
        .unwrap();
    assert_eq!(sim.artifact_types().len(), builtin.len() + 2);

    // Usable as an artifact type by id and by name.
    let (s, a) = api
        .post(
            &format!("/rest/orgs/201/incidents/{id}/artifacts"),
            &json!({"type": tid, "value": "1BoatSLRHtKNngkdXEeobR76b53LETtpyT",
                    "description": "Intel Correlated Indicator", "properties": [],
                    "whois": {"raw": null, "pending": null}, "pending_sources": []}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{a}");
    assert_eq!(a[0]["type"], tid);
    assert_eq!(a[0]["description"], "Intel Correlated Indicator");
    let (s, a) = api
        .post(
            &format!("/rest/orgs/201/incidents/{id}/artifacts?handle_format=names"),
            &json!({"type": "URL String", "value": "evil.example/not-a-url"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{a}");
    assert_eq!(a[0]["type"], "URL String");
    assert_eq!(sim.artifacts(id)[1]["type"], other["id"]);

    // Validation.
    let post = |b: Value| {
        let api = &api;
        async move { api.post("/rest/orgs/201/artifact_types", &b).await }
    };
    let (s, e) = post(json!({"programmatic_name": "x_y"})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(e["message"].as_str().unwrap().contains("name"), "{e}");
    let (s, e) = post(json!({"programmatic_name": "9bad name", "name": "Bad"})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        e["message"].as_str().unwrap().contains("programmatic_name"),
        "{e}"
    );
    let (s, _) = post(json!({"programmatic_name": "url_string", "name": "Another"})).await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (s, _) = post(json!({"programmatic_name": "another", "name": "ip address"})).await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (s, _) = post(json!([1])).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = api.get("/rest/orgs/201/artifact_types/99999").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, e) = api
        .post(
            &format!("/rest/orgs/201/incidents/{id}/artifacts"),
            &json!({"type": "URL", "value": "evil.example/not-a-url"}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(e["message"], "The specified URL is invalid");
}

fn manual_rule(name: &str, object_type: &str) -> Value {
    json!({
        "automations": [], "conditions": [], "enabled": true, "export_key": name,
        "logic_type": "all", "message_destinations": ["fn_hello"], "name": name,
        "object_type": object_type, "tags": [], "timeout_seconds": 86400, "type": 1,
        "uuid": uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, name.as_bytes()).to_string(),
        "view_items": [], "workflows": [],
    })
}

#[tokio::test]
async fn manual_rules_run_on_artifacts_and_notes() {
    let sim = start_sim().await;
    let mut export = fixture();
    let actions = export["actions"].as_array_mut().unwrap();
    actions.push(manual_rule("Look up artifact", "artifact"));
    actions.push(manual_rule("Answer note", "note"));
    Api::new(&sim).import(&export).await;
    let (mut client, _) = RawClient::connect(&sim).await;
    client.subscribe("actions.201.fn_hello", 10).await;
    let id = sim.create_incident(json!({"name": "rules"})).unwrap()["id"]
        .as_i64()
        .unwrap();
    let artifact = sim
        .add_artifact(id, json!({"type": "IP Address", "value": "10.9.9.9"}))
        .unwrap();
    let aid = artifact["id"].as_i64().unwrap();
    let note = sim.add_note(id, "a note").unwrap();
    let nid = note["id"].as_i64().unwrap();

    let run = sim
        .run_manual_rule_on(
            "Look up artifact",
            ObjectRef::Artifact {
                incident_id: id,
                artifact_id: aid,
            },
            json!({"depth": 2}),
        )
        .await
        .unwrap();
    let m = client.next_frame().await;
    assert_eq!(m.command, Command::Message);
    let body = json_body(&m);
    assert_eq!(body["object_type"], 4);
    assert_eq!(body["artifact"]["id"], aid);
    assert_eq!(body["artifact"]["value"], "10.9.9.9");
    assert_eq!(body["incident"]["id"], id);
    assert_eq!(body["properties"], json!({"depth": 2}));
    assert!(body["action_id"].is_i64());
    client.ack(&m).await;
    client
        .reply(
            &m,
            json!({"message_type": 0, "message": "looked up", "complete": true}),
        )
        .await;
    run.wait(WAIT).await.unwrap();
    let status = sim.action_status(id);
    assert_eq!(status.last().unwrap().message, "looked up");

    sim.run_manual_rule_on(
        "Answer note",
        ObjectRef::Note {
            incident_id: id,
            note_id: nid,
        },
        Value::Null,
    )
    .await
    .unwrap();
    let m = client.next_frame().await;
    let body = json_body(&m);
    assert_eq!(body["object_type"], 2);
    assert_eq!(body["note"]["text"], "a note");
    assert_eq!(body["properties"], json!({}));
    client.ack(&m).await;

    // Wrong object type, missing objects.
    let on_incident = sim
        .run_manual_rule_on("Look up artifact", ObjectRef::Incident(id), json!({}))
        .await;
    assert!(
        matches!(&on_incident, Err(SimError::Rejected(m)) if m.contains("manual incident rule")),
        "{on_incident:?}"
    );
    assert!(matches!(
        sim.run_manual_rule("Look up artifact", id, json!({})).await,
        Err(SimError::Rejected(_))
    ));
    assert!(matches!(
        sim.run_manual_rule_on(
            "Look up artifact",
            ObjectRef::Artifact {
                incident_id: id,
                artifact_id: 424242
            },
            json!({})
        )
        .await,
        Err(SimError::UnknownObject(_))
    ));
    assert!(matches!(
        sim.run_manual_rule_on(
            "Answer note",
            ObjectRef::Note {
                incident_id: 9,
                note_id: nid
            },
            json!({})
        )
        .await,
        Err(SimError::UnknownIncident(9))
    ));
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
}

/// A request with a raw body, authenticated with the API key: the status and the body's text.
async fn raw(sim: &soar_sim::Sim, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
    let http = reqwest::Client::builder()
        .use_preconfigured_tls((*sim.client_tls_config()).clone())
        .timeout(WAIT)
        .build()
        .unwrap();
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = http
        .request(method, format!("{}{path}", sim.base_url()))
        .basic_auth(&sim.config().api_key_id, Some(&sim.config().api_key_secret));
    if let Some(b) = body {
        req = req
            .header("content-type", "application/json")
            .body(b.to_string());
    }
    let r = req.send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

fn error_body(message: &str) -> String {
    json!({"success": false, "title": null, "message": message, "hints": [],
           "error_code": "generic"})
    .to_string()
}

/// Each handler's answer to an id that is not a number and to a body that is not JSON, byte for
/// byte. A line is: method, path under the org (`ID`: an incident's id, `DEST`: a destination's),
/// body (`-`: none, `BAD`: not JSON, `NOTE`: a note, `DEST`: the destination), status, message
/// (`NOT_JSON`: the answer to `BAD`).
#[tokio::test]
async fn ids_that_are_not_numbers_and_bodies_that_are_not_json_get_the_platform_errors() {
    let sim = start_sim().await;
    sim.register_function("fn_hello", "fn_queue");
    let id = sim.create_incident(json!({"name": "ids"})).unwrap()["id"].to_string();
    let dest = sim.message_destination("fn_queue").unwrap();
    let bad = "{not json";
    let syntax = serde_json::from_str::<Value>(bad).unwrap_err().to_string();
    let cases = "
        # A non-numeric incident id, answered before any look at the body.
        GET    incidents/abc                 -    404 Incident abc not found
        PUT    incidents/abc                 BAD  404 Incident abc not found
        PATCH  incidents/abc                 BAD  404 Incident abc not found
        DELETE incidents/abc                 -    404 Incident abc not found
        GET    incidents/abc/artifacts       -    404 Incident abc not found
        POST   incidents/abc/artifacts       BAD  404 Incident abc not found
        GET    incidents/abc/artifacts/1     -    404 Incident abc not found
        GET    incidents/abc/comments        -    404 Incident abc not found
        POST   incidents/abc/comments        NOTE 404 Incident abc not found
        # A numeric incident id the platform does not have is named as a number.
        GET    incidents/0099999             -    404 Incident 99999 not found
        # An artifact id as written; deleting names neither id.
        GET    incidents/ID/artifacts/x      -    404 Artifact x not found
        GET    incidents/ID/artifacts/007    -    404 Artifact 007 not found
        DELETE incidents/ID/artifacts/x      -    404 Artifact not found
        DELETE incidents/abc/artifacts/1     -    404 Artifact not found
        # Imports, workflow instances and destinations: the id as written...
        GET    configurations/imports/abc    -    404 Configuration import abc not found
        GET    configurations/imports/+4242  -    404 Configuration import +4242 not found
        PUT    configurations/imports/abc    BAD  404 Configuration import abc not found
        GET    workflow_instances/abc        -    404 Workflow instance abc not found
        GET    workflow_instances/04242      -    404 Workflow instance 04242 not found
        GET    message_destinations/abc      -    404 Message destination 'abc' not found
        GET    message_destinations/04242    -    404 Message destination '04242' not found
        PUT    message_destinations/abc      BAD  404 Message destination 'abc' not found
        # ... except a destination PUT for a numeric id, which names it as a number.
        PUT    message_destinations/04242    DEST 404 Message destination '4242' not found
        # Bodies that are not JSON (a destination has its own message).
        POST   configurations/imports        BAD  400 NOT_JSON
        PUT    configurations/imports/1      BAD  400 NOT_JSON
        POST   incidents                     BAD  400 NOT_JSON
        PUT    incidents/ID                  BAD  400 NOT_JSON
        PATCH  incidents/ID                  BAD  400 NOT_JSON
        POST   incidents/ID/artifacts        BAD  400 NOT_JSON
        POST   incidents/ID/comments         BAD  400 NOT_JSON
        POST   workspaces                    BAD  400 NOT_JSON
        POST   artifact_types                BAD  400 NOT_JSON
        PUT    message_destinations/DEST     BAD  400 invalid message destination JSON: SYNTAX
        POST   incidents                     -    400 The request body is not valid JSON: EOF while parsing a value at line 1 column 0
    ";
    for line in cases.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words = line.split_whitespace();
        let (method, path) = (words.next().unwrap(), words.next().unwrap());
        let (body, status) = (words.next().unwrap(), words.next().unwrap());
        let message = line.split_once(&format!(" {status} ")).unwrap().1;
        let path = format!("/rest/orgs/201/{path}")
            .replace("ID", &id)
            .replace("DEST", &dest["id"].to_string());
        let body = match body {
            "-" => None,
            "BAD" => Some(bad.to_string()),
            "NOTE" => Some(r#"{"text": "x"}"#.to_string()),
            _ => Some(dest.to_string()),
        };
        let message = message
            .replace("NOT_JSON", "The request body is not valid JSON: SYNTAX")
            .replace("SYNTAX", &syntax);
        let answer = raw(&sim, method, &path, body.as_deref()).await;
        let expected = (status.parse().unwrap(), error_body(&message));
        assert_eq!(answer, expected, "{method} {path}");
    }
    // A query that does not parse is answered before an id that is not a number.
    let path = "/rest/orgs/201/incidents/abc?handle_format=names&handle_format=ids";
    let (s, text) = raw(&sim, "GET", path, None).await;
    assert_eq!(s, 400, "{text}");
    assert!(text.contains("duplicate field"), "{text}");
    // A login with a body that is not JSON is only a failed login.
    let answer = raw(&sim, "POST", "/rest/session", Some(bad)).await;
    assert_eq!(answer, (401, error_body("Invalid user name or password")));
}
