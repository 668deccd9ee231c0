//! Configuration imports and exports, and the platform objects answered from them.

mod common;

use common::{Api, fixture, messages, start_sim};
use reqwest::StatusCode;
use serde_json::{Value, json};
use soar_sim::imports::LIST_KEYS;

const IMPORTS: &str = "/rest/orgs/201/configurations/imports";

fn names(list: &Value, key: &str) -> Vec<String> {
    list.as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|o| o[key].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test]
async fn an_accepted_import_is_answered_by_the_platform_objects() {
    let sim = start_sim().await;
    let api = Api::new(&sim);
    let (s, dto) = api.post(IMPORTS, &fixture()).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(dto["status"], "PENDING", "{dto}");
    assert!(dto["id"].is_i64());
    assert!(dto["create_date"].is_i64());
    let info = messages(&dto, "INFO");
    assert!(
        info.contains(&"Function 'fn_hello' will be created".to_string()),
        "{info:?}"
    );
    assert!(messages(&dto, "ERROR").is_empty(), "{dto}");
    let (s, again) = api.get(&format!("{IMPORTS}/{}", dto["id"])).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(again, dto);

    // Nothing exists before it is accepted.
    let (s, _) = api
        .get("/rest/orgs/201/functions/fn_hello?handle_format=names")
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    let mut accepted = dto.clone();
    accepted["status"] = json!("ACCEPTED");
    let (s, done) = api
        .put(&format!("{IMPORTS}/{}", dto["id"]), &accepted)
        .await;
    assert_eq!(s, StatusCode::OK, "{done}");
    assert_eq!(done["status"], "ACCEPTED");
    assert!(
        messages(&done, "INFO")
            .iter()
            .any(|m| m.starts_with("Import applied:")),
        "{done}"
    );
    // A decided import cannot be decided again.
    let (s, err) = api
        .put(&format!("{IMPORTS}/{}", dto["id"]), &accepted)
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("already ACCEPTED"),
        "{err}"
    );

    let export = fixture();
    let (s, f) = api
        .get("/rest/orgs/201/functions/fn_hello?handle_format=names")
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(f["destination_handle"], "fn_hello");
    assert_eq!(f["uuid"], export["functions"][0]["uuid"]);
    assert_eq!(f["display_name"], "Hello: echo");
    assert_eq!(f["view_items"], export["functions"][0]["view_items"]);
    assert!(f["id"].is_i64());
    let (_, by_id) = api.get("/rest/orgs/201/functions/fn_hello").await;
    assert!(by_id["destination_handle"].is_i64(), "{by_id}");
    let (_, fs) = api.get("/rest/orgs/201/functions").await;
    assert_eq!(names(&fs["entities"], "name"), vec!["fn_hello"]);

    let (_, mds) = api.get("/rest/orgs/201/message_destinations").await;
    let md = &mds["entities"][0];
    assert_eq!(md["programmatic_name"], "fn_hello");
    assert_eq!(md["name"], "Hello");
    assert_eq!(md["uuid"], export["message_destinations"][0]["uuid"]);
    assert!(md["id"].is_i64());
    assert_eq!(md["users"], json!([]));
    assert_eq!(md["api_keys"], json!([]));
    assert_eq!(md["expect_ack"], true);
    assert_eq!(md["destination_type"], 0);

    let (_, actions) = api.get("/rest/orgs/201/actions?handle_format=names").await;
    let rules = actions["entities"].as_array().unwrap();
    let hello = rules
        .iter()
        .find(|r| r["name"] == "Example: Say hello")
        .expect("rule");
    assert_eq!(hello["type"], 1);
    assert_eq!(hello["object_type"], 0);
    assert_eq!(hello["workflows"], json!(["example_hello"]));
    assert!(hello["id"].is_i64());
    let notify = rules
        .iter()
        .find(|r| r["name"] == "Example: Notify")
        .unwrap();
    assert_eq!(notify["message_destinations"], json!(["fn_hello"]));
    let (_, actions) = api.get("/rest/orgs/201/actions").await;
    assert!(actions["entities"][0]["workflows"][0].is_i64(), "{actions}");

    let (_, wfs) = api.get("/rest/orgs/201/workflows").await;
    let wf = &wfs["entities"][0];
    assert_eq!(wf["programmatic_name"], "example_hello");
    assert!(wf["workflow_id"].is_i64());
    let (s, one) = api.get("/rest/orgs/201/workflows/example_hello").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(one, *wf);

    let (_, inc_fields) = api.get("/rest/orgs/201/types/incident/fields").await;
    let inc_names = names(&inc_fields, "name");
    for n in ["name", "severity_code", "plan_status", "hello_last_echo"] {
        assert!(inc_names.contains(&n.to_string()), "{n}: {inc_names:?}");
    }
    let (s, echo) = api
        .get("/rest/orgs/201/types/incident/fields/hello_last_echo")
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(echo["prefix"], "properties");
    assert!(echo["id"].is_i64());
    let (_, sev) = api
        .get("/rest/orgs/201/types/incident/fields/severity_code")
        .await;
    assert_eq!(
        names(&sev["values"], "label"),
        vec!["Low", "Medium", "High"]
    );
    let (s, _) = api.get("/rest/orgs/201/types/incident/fields/nope").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, fn_fields) = api.get("/rest/orgs/201/types/__function/fields").await;
    assert_eq!(
        names(&fn_fields, "name"),
        vec![
            "hello_text",
            "incident_id",
            "hello_mode",
            "hello_delay_ms",
            "hello_tags",
            "hello_comment"
        ]
    );
    let (_, ai_fields) = api
        .get("/rest/orgs/201/types/actioninvocation/fields")
        .await;
    assert_eq!(names(&ai_fields, "name"), vec!["hello_note"]);
    let (_, dt) = api.get("/rest/orgs/201/types/hello_table/fields").await;
    assert_eq!(names(&dt, "name"), vec!["col_a"]);

    assert_eq!(sim.imports(), vec![fixture()]);
    assert_eq!(sim.import_records()[0]["status"], "ACCEPTED");
}

#[tokio::test]
async fn a_rejected_import_changes_nothing() {
    let sim = start_sim().await;
    let api = Api::new(&sim);
    let (_, dto) = api.post(IMPORTS, &fixture()).await;
    let mut rejected = dto.clone();
    rejected["status"] = json!("REJECTED");
    let (s, done) = api
        .put(&format!("{IMPORTS}/{}", dto["id"]), &rejected)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(done["status"], "REJECTED");
    let (s, _) = api.get("/rest/orgs/201/functions/fn_hello").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, mds) = api.get("/rest/orgs/201/message_destinations").await;
    assert_eq!(mds["entities"], json!([]));
    let (_, wfs) = api.get("/rest/orgs/201/workflows").await;
    assert_eq!(wfs["entities"], json!([]));
    let export = sim.export();
    for k in LIST_KEYS {
        assert_eq!(export[*k], json!([]), "{k}");
    }
    let mut accepted = dto.clone();
    accepted["status"] = json!("ACCEPTED");
    let (s, err) = api
        .put(&format!("{IMPORTS}/{}", dto["id"]), &accepted)
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{err}");

    // Bad PUTs.
    let (s, _) = api.put(&format!("{IMPORTS}/999"), &accepted).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, dto2) = api.post(IMPORTS, &fixture()).await;
    let mut lower = dto2.clone();
    lower["status"] = json!("accepted");
    let (s, err) = api.put(&format!("{IMPORTS}/{}", dto2["id"]), &lower).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        err["message"].as_str().unwrap().contains("upper case"),
        "{err}"
    );
    assert_eq!(sim.imports().len(), 2);
}

async fn rejected_with(api: &Api, export: &Value) -> Vec<String> {
    let (s, dto) = api.post(IMPORTS, export).await;
    assert_eq!(s, StatusCode::OK, "{dto}");
    assert_eq!(dto["status"], "REJECTED", "{dto}");
    let mut accepted = dto.clone();
    accepted["status"] = json!("ACCEPTED");
    let (s, _) = api
        .put(&format!("{IMPORTS}/{}", dto["id"]), &accepted)
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    messages(&dto, "ERROR")
}

#[tokio::test]
async fn invalid_imports_are_rejected_with_messages_naming_the_object() {
    let sim = start_sim().await;
    let api = Api::new(&sim);

    let mut x = fixture();
    x["functions"][0]["destination_handle"] = json!("nope");
    let errors = rejected_with(&api, &x).await;
    assert_eq!(
        errors,
        vec![
            "Function 'fn_hello': message destination 'nope' does not exist in the import or on the platform"
        ]
    );

    let mut x = fixture();
    x["actions"][0]["workflows"] = json!(["missing_wf"]);
    let errors = rejected_with(&api, &x).await;
    assert_eq!(
        errors,
        vec![
            "Rule 'Example: Say hello': workflow 'missing_wf' does not exist in the import or on the platform"
        ]
    );

    let mut x = fixture();
    x["actions"][1]["message_destinations"] = json!(["nowhere"]);
    let errors = rejected_with(&api, &x).await;
    assert!(errors[0].contains("Rule 'Example: Notify'"), "{errors:?}");

    // A function input that is not among the fields, which also breaks the workflow's step.
    let mut x = fixture();
    let removed = x["fields"].as_array_mut().unwrap().remove(0);
    let errors = rejected_with(&api, &x).await;
    let uuid = removed["uuid"].as_str().unwrap();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with("Function 'fn_hello': input field uuid") && errors[0].contains(uuid),
        "{errors:?}"
    );

    // A workflow step calling an unknown function.
    let mut x = fixture();
    let xml = x["workflows"][0]["content"]["xml"]
        .as_str()
        .unwrap()
        .replace(
            "uuid=\"00000000-0000-4000-8000-000000000021\"",
            "uuid=\"00000000-0000-4000-8000-000000000099\"",
        );
    x["workflows"][0]["content"]["xml"] = json!(xml);
    let errors = rejected_with(&api, &x).await;
    assert_eq!(
        errors,
        vec![
            "Workflow 'example_hello': function uuid 00000000-0000-4000-8000-000000000099 does not exist in the import or on the platform"
        ]
    );

    // Broken XML; a select value that is not the field's.
    let mut x = fixture();
    x["workflows"][0]["content"]["xml"] = json!("<definitions><process>");
    let errors = rejected_with(&api, &x).await;
    assert!(
        errors[0].starts_with("Workflow 'example_hello':"),
        "{errors:?}"
    );
    let mut x = fixture();
    let xml = x["workflows"][0]["content"]["xml"]
        .as_str()
        .unwrap()
        .replace("00000000-0000-4000-8000-000000000012", "bad-value-uuid");
    x["workflows"][0]["content"]["xml"] = json!(xml);
    let errors = rejected_with(&api, &x).await;
    assert!(
        errors[0].contains("input 'hello_mode'") && errors[0].contains("bad-value-uuid"),
        "{errors:?}"
    );

    // Shape problems.
    let mut x = fixture();
    x["export_format_version"] = json!(1);
    let errors = rejected_with(&api, &x).await;
    assert!(errors[0].contains("export_format_version 1"), "{errors:?}");
    let mut x = fixture();
    x["functions"]
        .as_array_mut()
        .unwrap()
        .push(json!({"display_name": "no name"}));
    let errors = rejected_with(&api, &x).await;
    assert_eq!(errors, vec!["Function #2 in 'functions' has no name"]);
    let mut x = fixture();
    let dup = x["message_destinations"][0].clone();
    x["message_destinations"].as_array_mut().unwrap().push(dup);
    let errors = rejected_with(&api, &x).await;
    assert_eq!(
        errors,
        vec!["Message destination 'fn_hello' appears more than once in the import"]
    );
    let mut x = fixture();
    x["actions"][0]["object_type"] = json!("spaceship");
    let errors = rejected_with(&api, &x).await;
    assert!(errors[0].contains("unknown object_type"), "{errors:?}");

    // Not JSON at all: 400.
    let http = reqwest::Client::builder()
        .use_preconfigured_tls((*sim.client_tls_config()).clone())
        .build()
        .unwrap();
    let r = http
        .post(format!("{}{IMPORTS}", sim.base_url()))
        .basic_auth(&sim.config().api_key_id, Some(&sim.config().api_key_secret))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // Nothing was applied by any of them.
    let (s, _) = api.get("/rest/orgs/201/functions/fn_hello").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, mds) = api.get("/rest/orgs/201/message_destinations").await;
    assert_eq!(mds["entities"], json!([]));

    // A function may use a destination (and fields) that only the platform has.
    sim.add_message_destination("other_queue");
    let mut x = fixture();
    x["functions"][0]["destination_handle"] = json!("other_queue");
    api.import(&x).await;
    assert_eq!(
        sim.platform().function("fn_hello").unwrap().destination,
        "other_queue"
    );
}

#[tokio::test]
async fn reimports_and_conflicts_are_reported() {
    let sim = start_sim().await;
    sim.register_function("fn_hello", "fn_hello");
    let old_id = sim.platform().function("fn_hello").unwrap().id;
    let api = Api::new(&sim);

    // The hand-registered function and destination are replaced, keeping their ids.
    let (_, dto) = api.post(IMPORTS, &fixture()).await;
    assert_eq!(dto["status"], "PENDING");
    let warns = messages(&dto, "WARN");
    assert!(
        warns
            .iter()
            .any(|w| w.starts_with("Function 'fn_hello' already exists with uuid")),
        "{warns:?}"
    );
    assert!(
        messages(&dto, "INFO")
            .contains(&"Function 'fn_hello' already exists and will be replaced".to_string()),
        "{dto}"
    );
    api.import(&fixture()).await;
    assert_eq!(sim.platform().function("fn_hello").unwrap().id, old_id);
    assert_eq!(
        sim.platform().function("fn_hello").unwrap().uuid,
        fixture()["functions"][0]["uuid"]
    );

    // The same import again: everything unchanged.
    let (_, dto) = api.post(IMPORTS, &fixture()).await;
    let info = messages(&dto, "INFO");
    assert!(
        info.contains(&"Function 'fn_hello' exists and is unchanged".to_string()),
        "{info:?}"
    );
    assert!(
        info.iter().any(|m| m.contains("0 to create, 0 to replace")),
        "{info:?}"
    );
    assert!(messages(&dto, "WARN").is_empty(), "{dto}");

    // The same programmatic name with another uuid: a warning, and it is replaced.
    let mut x = fixture();
    x["workflows"][0]["uuid"] = json!("11111111-0000-4000-8000-000000000000");
    let (_, dto) = api.post(IMPORTS, &x).await;
    assert_eq!(dto["status"], "PENDING");
    assert_eq!(
        messages(&dto, "WARN"),
        vec![
            "Workflow 'example_hello' already exists with uuid 00000000-0000-4000-8000-000000000023; it will be replaced by the imported one with uuid 11111111-0000-4000-8000-000000000000"
        ]
    );

    // Another object's uuid under a new name: an error.
    let mut x = fixture();
    x["functions"][0]["name"] = json!("fn_renamed");
    x["functions"][0]["export_key"] = json!("fn_renamed");
    let (_, dto) = api.post(IMPORTS, &x).await;
    assert_eq!(dto["status"], "REJECTED");
    assert_eq!(
        messages(&dto, "ERROR"),
        vec![
            "Function 'fn_renamed' has uuid 00000000-0000-4000-8000-000000000021, which the platform already uses for function 'fn_hello'"
        ]
    );

    // Fault injection.
    sim.reject_next_import("The platform is busy");
    let (_, dto) = api.post(IMPORTS, &fixture()).await;
    assert_eq!(dto["status"], "REJECTED");
    assert_eq!(messages(&dto, "ERROR"), vec!["The platform is busy"]);
    let (_, dto) = api.post(IMPORTS, &fixture()).await;
    assert_eq!(dto["status"], "PENDING");
    assert_eq!(sim.imports().len(), 7);
}

#[tokio::test]
async fn export_import_export_round_trips() {
    let sim = start_sim().await;
    let api = Api::new(&sim);
    let x = fixture();
    api.import(&x).await;
    let (s, export) = api
        .post(
            "/rest/orgs/201/configurations/exports/",
            &json!({"layouts": true, "actions": true, "phases_and_tasks": true}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, export2) = api
        .post("/rest/orgs/201/configurations/exports", &json!({}))
        .await;
    assert_eq!(s, StatusCode::OK);
    for k in x.as_object().unwrap().keys() {
        assert!(export.get(k).is_some(), "export lacks {k}");
    }
    assert_eq!(export["export_format_version"], 2);
    for k in LIST_KEYS {
        assert_eq!(export[*k], x[*k], "{k}");
        assert_eq!(export2[*k], x[*k], "{k}");
    }

    // The export imports into another platform and exports identically.
    let other = start_sim().await;
    let other_api = Api::new(&other);
    other_api.import(&export).await;
    let again = other.export();
    for k in LIST_KEYS {
        assert_eq!(again[*k], export[*k], "{k}");
    }
}

#[tokio::test]
async fn message_destination_access_is_stored() {
    let sim = start_sim().await;
    let api = Api::new(&sim);
    api.import(&fixture()).await;
    let (_, mds) = api.get("/rest/orgs/201/message_destinations").await;
    let mut md = mds["entities"][0].clone();
    let id = md["id"].as_i64().unwrap();
    md["api_keys"].as_array_mut().unwrap().push(json!(4));
    md["users"].as_array_mut().unwrap().push(json!(1));
    let (s, put) = api
        .put(&format!("/rest/orgs/201/message_destinations/{id}"), &md)
        .await;
    assert_eq!(s, StatusCode::OK, "{put}");
    let (_, got) = api
        .get(&format!("/rest/orgs/201/message_destinations/{id}"))
        .await;
    assert_eq!(got["api_keys"], json!([4]));
    assert_eq!(got["users"], json!([1]));
    let via_api = sim.message_destination("fn_hello").unwrap();
    assert_eq!(via_api["api_keys"], json!([4]));
    assert_eq!(via_api["id"], id);
    assert!(sim.message_destination("nope").is_none());

    // Re-importing keeps the granted access.
    let mut x = fixture();
    x["message_destinations"][0]["name"] = json!("Hello again");
    api.import(&x).await;
    let md = sim.message_destination("fn_hello").unwrap();
    assert_eq!(md["api_keys"], json!([4]));
    assert_eq!(md["name"], "Hello again");
}
