//! Customizations end to end: YAML → model → export.res → the simulated platform's import →
//! export again; a workflow declared once runs in the simulated platform; a rejected import
//! changes nothing; handlers are checked against their definitions.

use std::time::Duration;

use serde_json::{Value, json};
use soar_engine::testkit::{self, Run, TestHost};
use soar_sdk::{Component, FunctionResult};
use soar_sim::{Sim, SimConfig, WorkflowStatus};

use fn_hello as _;
use fn_slack as _;
use fn_trustar as _;

const WAIT: Duration = Duration::from_secs(30);

/// The object lists of an export (what an import carries), without the envelope's dates and ids.
fn objects(export: &Value) -> Value {
    let mut map = export.as_object().cloned().unwrap_or_default();
    for k in [
        "export_date",
        "id",
        "server_version",
        "export_type",
        "locale",
    ] {
        map.remove(k);
    }
    Value::Object(map)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trip_through_the_simulated_platform_is_identical() {
    let definitions = testkit::definitions_of(fn_hello::NAME).unwrap();
    let ours: Value = serde_json::from_str(&definitions.export_res()).unwrap();
    assert_eq!(ours["export_format_version"], json!(2));
    let sim = Sim::start(SimConfig::default()).await.unwrap();
    let report = testkit::customize_sim(&sim, &definitions).await.unwrap();
    assert!(report.imported);
    let exported = sim.export();
    for key in [
        "message_destinations",
        "functions",
        "fields",
        "workflows",
        "actions",
    ] {
        assert_eq!(
            objects(&exported)[key],
            objects(&ours)[key],
            "{key} differ after the round trip"
        );
    }
    // And the export of the export parses back to the same objects.
    assert_eq!(
        definitions.export_res(),
        testkit::definitions_of(fn_hello::NAME)
            .unwrap()
            .export_res(),
        "two exports of the same definitions are byte-identical"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customize_twice_imports_once_and_grants_queue_access() {
    let definitions = testkit::definitions_of(fn_hello::NAME).unwrap();
    let sim = Sim::start(SimConfig::default()).await.unwrap();
    let first = testkit::customize_sim(&sim, &definitions).await.unwrap();
    assert!(first.imported);
    assert!(!first.plan.new.is_empty());
    assert_eq!(first.granted, vec!["fn_hello".to_string()]);
    let dest = sim
        .message_destination("fn_hello")
        .expect("destination created");
    assert!(
        dest["api_keys"].as_array().is_some_and(|k| !k.is_empty()),
        "the host's API key was granted access: {dest}"
    );
    let second = testkit::customize_sim(&sim, &definitions).await.unwrap();
    assert!(!second.imported, "nothing to import the second time");
    assert!(second.plan.is_empty(), "{}", second.plan.render());
    assert!(second.granted.is_empty());
    assert_eq!(sim.imports().len(), 1, "the second run sent no import");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_import_stops_with_the_platform_message_and_changes_nothing() {
    let definitions = testkit::definitions_of(fn_hello::NAME).unwrap();
    let sim = Sim::start(SimConfig::default()).await.unwrap();
    sim.reject_next_import("license does not allow more functions");
    let err = testkit::customize_sim(&sim, &definitions)
        .await
        .expect_err("a rejected import is an error");
    assert!(
        err.to_string()
            .contains("license does not allow more functions"),
        "{err}"
    );
    assert!(sim.message_destination("fn_hello").is_none());
    let functions = sim.export()["functions"].clone();
    assert_eq!(functions, json!([]), "nothing was created");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_declared_workflow_runs_in_the_simulated_platform() {
    let host = TestHost::start(vec![Run::Registered(fn_hello::NAME)])
        .await
        .unwrap();
    let sim = host.sim();
    let incident = sim
        .create_incident(json!({"name": "DoS attack in EMEA", "discovered_date": 1524857616000i64}))
        .unwrap();
    let id = incident["id"].as_i64().unwrap();
    let run = sim
        .run_manual_rule("Example: Say hello", id, json!({}))
        .await
        .unwrap();
    let workflows = run.wait(WAIT).await.unwrap();
    assert_eq!(workflows.len(), 1);
    assert_eq!(workflows[0].status, WorkflowStatus::Completed);
    // fn_hello got the inputs mapped from the incident.
    let invocation = workflows[0]
        .invocation
        .as_ref()
        .expect("the function was invoked");
    let reply = invocation.final_reply(WAIT).await.unwrap();
    let results = reply.results.unwrap();
    assert_eq!(results["inputs"]["hello_text"], json!("DoS attack in EMEA"));
    assert_eq!(results["inputs"]["incident_id"], json!(id));
    assert_eq!(results["inputs"]["hello_delay_ms"], json!(0));
    // Post-processing: the field and the note.
    let incident = sim.incident(id).unwrap();
    assert_eq!(
        incident["properties"]["hello_last_echo"],
        json!("DoS attack in EMEA")
    );
    let notes: Vec<String> = sim.notes(id).iter().map(note_text).collect();
    assert_eq!(notes, ["fn_hello echoed: DoS attack in EMEA"]);
    host.stop().await.unwrap();
}

fn note_text(note: &Value) -> String {
    match &note["text"] {
        Value::String(s) => s.clone(),
        other => other["content"].as_str().unwrap_or_default().to_string(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_function_fails_the_workflow_with_its_message() {
    let host = TestHost::start(vec![Run::Registered(fn_hello::NAME)])
        .await
        .unwrap();
    let sim = host.sim();
    // A second workflow of fn_hello whose static input asks the function to fail.
    let definitions = testkit::definitions_from_yaml(
        r#"
message_destinations:
  - name: fn_hello
functions:
  - name: fn_hello
    destination: fn_hello
    inputs:
      - {name: hello_text, type: text}
      - {name: hello_delay_ms, type: number}
      - {name: hello_fail, type: boolean}
      - {name: incident_id, type: number}
workflows:
  - name: example_hello_failing
    display_name: "Example: Hello that fails"
    object_type: incident
    function: fn_hello
    inputs:
      hello_text: {from: incident.name}
      hello_fail: {value: true}
    post_processing:
      - add_note: {text: "never written"}
rules:
  - name: "Example: Fail"
    type: manual
    object_type: incident
    workflows: [example_hello_failing]
"#,
    );
    testkit::customize_sim(sim, &definitions).await.unwrap();
    let incident = sim.create_incident(json!({"name": "x"})).unwrap();
    let id = incident["id"].as_i64().unwrap();
    let run = sim
        .run_manual_rule("Example: Fail", id, json!({}))
        .await
        .unwrap();
    let workflows = run.wait(WAIT).await.unwrap();
    match &workflows[0].status {
        WorkflowStatus::Failed(message) => {
            assert!(message.contains("hello_fail is true"), "{message}")
        }
        other => panic!("expected a failed workflow, got {other:?}"),
    }
    assert!(sim.notes(id).is_empty(), "post-processing did not run");
    let status = sim.action_status(id);
    assert!(
        format!("{status:?}").contains("hello_fail is true"),
        "the action status shows the function's message: {status:?}"
    );
    host.stop().await.unwrap();
}

#[test]
fn a_handler_reading_an_undeclared_input_fails_validation() {
    #[derive(serde::Deserialize)]
    #[allow(dead_code)]
    struct Reads {
        probe_id: Option<String>,
        not_declared: Option<String>,
        probe_delay_ms: Option<bool>,
    }
    let component = Component::new().function("probe_fn", |_inputs: Reads| async {
        Ok(FunctionResult::new(json!({})))
    });
    let definitions = testkit::definitions_from_yaml(e2e::PROBE_YAML);
    let err = soar_sdk::registry::check_component("probe", &component, &definitions, &[])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("probe_fn") && err.contains("not_declared"),
        "{err}"
    );
    assert!(
        err.contains("probe_delay_ms"),
        "a boolean read of a number input: {err}"
    );
}

/// The exported workflow carries the same logic as Python scripts; the whole XML is compared
/// with a reviewed snapshot (`SOAR_UPDATE_SNAPSHOTS=1` rewrites it after a deliberate change).
#[test]
fn exported_workflow_xml_and_scripts_match_the_snapshot() {
    let export: Value = serde_json::from_str(
        &testkit::definitions_of(fn_hello::NAME)
            .unwrap()
            .export_res(),
    )
    .unwrap();
    let workflow = export["workflows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["programmatic_name"] == json!("example_hello"))
        .expect("example_hello exported");
    let xml = workflow["content"]["xml"].as_str().unwrap();
    let start = xml.find("<resilient:function").unwrap();
    let json_start = start + xml[start..].find('>').unwrap() + 1;
    let json_end = json_start + xml[json_start..].find("</resilient:function>").unwrap();
    let step: Value = serde_json::from_str(&xml[json_start..json_end]).unwrap();
    assert_eq!(
        step["pre_processing_script"],
        json!("inputs.hello_text = incident.name\ninputs.incident_id = incident.id\n")
    );
    assert_eq!(
        step["post_processing_script"],
        json!(
            "incident.properties.hello_last_echo = results.content.text\n\
             incident.addNote(u\"fn_hello echoed: {0}\".format(results.content.text))\n"
        )
    );
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("snapshots/fn_hello_example_hello.bpmn.xml");
    if std::env::var("SOAR_UPDATE_SNAPSHOTS").as_deref() == Ok("1") {
        std::fs::write(&path, xml).unwrap();
    }
    let snapshot = std::fs::read_to_string(&path).expect("snapshot file");
    assert_eq!(
        xml, snapshot,
        "the exported XML changed; review it and update the snapshot"
    );
}

/// An org that holds the original Slack app's rules (other names, same workflows) gets them
/// updated in place, under their names, instead of a second rule per workflow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_original_apps_rules_are_updated_in_place_not_doubled() {
    let ours = testkit::definitions_of(fn_slack::NAME).unwrap();
    let mut original = ours.clone();
    for rule in &mut original.rules {
        rule.name = match rule.name.as_str() {
            "Create Slack Message" => "Example: Post Incident to Slack".into(),
            "Create Slack Reply" => "Example: Post Note to Slack".into(),
            other => other.into(),
        };
    }
    let sim = Sim::start(SimConfig::default()).await.unwrap();
    import_as_original(&sim, original.export()).await;

    let report = testkit::customize_sim(&sim, &ours).await.unwrap();
    let adopted: Vec<(&str, &str, &str)> = (report.adopted.iter())
        .map(|a| (a.kind, a.ours.as_str(), a.theirs.as_str()))
        .collect();
    assert_eq!(
        adopted,
        [
            (
                "rule",
                "Create Slack Message",
                "Example: Post Incident to Slack"
            ),
            ("rule", "Create Slack Reply", "Example: Post Note to Slack"),
        ]
    );
    assert!(
        report.plan.new.iter().all(|i| i.kind != "rule"),
        "{}",
        report.plan.render()
    );
    let names: Vec<String> = sim.export()["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(
        names.contains(&"Example: Post Incident to Slack".to_string()),
        "{names:?}"
    );
    assert!(
        !names.contains(&"Create Slack Message".to_string()),
        "{names:?}"
    );
    // A second customize has nothing left to do.
    let again = testkit::customize_sim(&sim, &ours).await.unwrap();
    assert!(again.plan.is_empty(), "{}", again.plan.render());
    // And the adopted rule runs our workflow.
    let incident = sim.create_incident(json!({"name": "adopted"})).unwrap();
    let id = incident["id"].as_i64().unwrap();
    assert!(
        sim.run_manual_rule("Example: Post Incident to Slack", id, json!({}))
            .await
            .is_ok()
    );
}

/// The same for workflows: the original TruSTAR app's example workflow under another
/// programmatic name (same function, same object) is updated in place, and the rule that
/// starts it keeps starting it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_original_apps_workflows_are_updated_in_place_not_doubled() {
    let ours = testkit::definitions_of(fn_trustar::NAME).unwrap();
    let mut original = ours.clone();
    let renamed = "trustar_submit_report_example";
    for w in &mut original.workflows {
        if w.name == "example_submit_report_to_trustar" {
            w.name = renamed.into();
        }
    }
    for r in &mut original.rules {
        for w in &mut r.workflows {
            if w == "example_submit_report_to_trustar" {
                *w = renamed.into();
            }
        }
    }
    let sim = Sim::start(SimConfig::default()).await.unwrap();
    import_as_original(&sim, original.export()).await;
    let count = |sim: &Sim| sim.export()["workflows"].as_array().unwrap().len();
    let before = count(&sim);

    let report = testkit::customize_sim(&sim, &ours).await.unwrap();
    let adopted: Vec<(&str, &str, &str)> = (report.adopted.iter())
        .map(|a| (a.kind, a.ours.as_str(), a.theirs.as_str()))
        .collect();
    assert_eq!(
        adopted,
        [("workflow", "example_submit_report_to_trustar", renamed)]
    );
    assert!(
        report.plan.new.iter().all(|i| i.kind != "workflow"),
        "{}",
        report.plan.render()
    );
    assert_eq!(count(&sim), before, "no second workflow");
    let rule = sim
        .platform()
        .rule_by_name("Rule for workflow: Submit Report to TruSTAR")
        .unwrap();
    assert_eq!(rule.workflows, [renamed]);
    let again = testkit::customize_sim(&sim, &ours).await.unwrap();
    assert!(again.plan.is_empty(), "{}", again.plan.render());
}

/// An org that holds the original TruSTAR app (every object under uuids of its own) and a
/// workflow of its own that calls one of the original functions: after our customize the
/// platform's functions, destination and inputs keep their uuids (updated in place, not
/// replaced), so the org's workflow still finds its function and sends it its message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_original_apps_objects_keep_their_uuids_for_the_orgs_own_workflows() {
    let ours = testkit::definitions_of(fn_trustar::NAME).unwrap();
    let mut original = ours.clone();
    let mut own = (original.workflows.iter())
        .find(|w| w.name == "example_get_priority_score_of_indicator")
        .unwrap()
        .clone();
    own.name = "org_priority_check".into();
    own.display_name = Some("Org: priority check".into());
    original.workflows.push(own);
    let mut rule = (original.rules.iter())
        .find(|r| r.workflows == ["example_get_priority_score_of_indicator"])
        .unwrap()
        .clone();
    rule.name = "Org: priority check".into();
    rule.workflows = vec!["org_priority_check".into()];
    original.rules.push(rule);
    // The original's own texts (so that customize updates these objects) and uuids: every
    // object's uuid replaced, everywhere it is referred to.
    for f in &mut original.functions {
        f.description = Some(format!("The original's {}", f.name));
    }
    for d in &mut original.message_destinations {
        d.display_name = Some(d.name.clone());
    }
    let mut text = original.export().to_string();
    let mut theirs = std::collections::HashMap::new();
    let export: Value = serde_json::from_str(&text).unwrap();
    let mut n = 0;
    for list in [
        "functions",
        "message_destinations",
        "fields",
        "workflows",
        "actions",
        "incident_artifact_types",
    ] {
        for o in export[list].as_array().unwrap() {
            let uuid = o["uuid"].as_str().unwrap().to_string();
            let name = o["export_key"].as_str().or(o["name"].as_str()).unwrap();
            n += 1;
            let new = format!("0badc0de-0000-4000-8000-{n:012}");
            text = text.replace(&uuid, &new);
            theirs.insert(format!("{list}/{name}"), new);
        }
    }
    let sim = Sim::start(SimConfig::default()).await.unwrap();
    testkit::import_sim(&sim, &serde_json::from_str(&text).unwrap())
        .await
        .unwrap();

    let report = testkit::customize_sim(&sim, &ours).await.unwrap();
    assert!(report.adopted.is_empty(), "{:?}", report.adopted);
    assert!(
        (report.plan.new.iter()).all(|i| i.kind != "function" && i.kind != "message_destination"),
        "{}",
        report.plan.render()
    );
    let exported = sim.export();
    for list in ["functions", "message_destinations", "fields"] {
        for o in exported[list].as_array().unwrap() {
            let name = o["export_key"].as_str().or(o["name"].as_str()).unwrap();
            if let Some(uuid) = theirs.get(&format!("{list}/{name}")) {
                assert_eq!(o["uuid"].as_str(), Some(uuid.as_str()), "{list}/{name}");
            }
        }
    }
    // The org's own workflow still calls the original function.
    let incident = sim
        .create_incident(json!({"name": "own workflow"}))
        .unwrap();
    let id = incident["id"].as_i64().unwrap();
    let artifact = sim
        .add_artifact(id, json!({"type": "IP Address", "value": "198.51.100.9"}))
        .unwrap();
    sim.set_workflow_timeout(Duration::from_millis(300));
    let run = sim
        .run_manual_rule_on(
            "Org: priority check",
            soar_sim::ObjectRef::Artifact {
                incident_id: id,
                artifact_id: artifact["id"].as_i64().unwrap(),
            },
            json!({}),
        )
        .await
        .unwrap();
    let workflows = run.wait(WAIT).await.unwrap();
    let invocation = workflows[0].invocation.as_ref().unwrap_or_else(|| {
        panic!(
            "the workflow never sent its message: {:?}",
            workflows[0].status
        )
    });
    assert!(
        invocation.queue().ends_with(".trustar"),
        "{}",
        invocation.queue()
    );
    // And a second customize has nothing left to do.
    let again = testkit::customize_sim(&sim, &ours).await.unwrap();
    assert!(again.plan.is_empty(), "{}", again.plan.render());
}

/// Imports `export` as the original app's `customize` would: its workflows and rules carry
/// uuids of their own (ours derive theirs from the names).
async fn import_as_original(sim: &Sim, mut export: Value) {
    for list in ["workflows", "actions"] {
        for (i, o) in export[list].as_array_mut().unwrap().iter_mut().enumerate() {
            o["uuid"] = json!(format!("0badc0de-0000-4000-8000-{i:012}"));
        }
    }
    testkit::import_sim(sim, &export).await.unwrap();
}
