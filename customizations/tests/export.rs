//! The export: determinism, §6.3 keys, uuids, object shapes, scripts and the
//! workflow XML.

mod common;

use common::{HELLO_FILE, fixture, hello, parse};
use quick_xml::events::Event;
use serde_json::{Value, json};
use soar_customizations::{Customizations, EXPORT_DATE, Source, scripts, uuid_for};

fn by_key<'a>(export: &'a Value, section: &str, key: &str, value: &str) -> &'a Value {
    export[section]
        .as_array()
        .and_then(|a| a.iter().find(|o| o[key] == value))
        .unwrap_or_else(|| panic!("{section} {key}={value} not found"))
}

#[test]
fn export_is_byte_identical() {
    let c = hello();
    let first = c.export_res();
    assert_eq!(first, c.export_res());
    assert!(first.ends_with("}\n"));
    // Parsing the same text again gives the same bytes.
    let again = hello();
    assert_eq!(first, again.export_res());
    // export_res is the pretty export.
    let parsed: Value = serde_json::from_str(&first).expect("JSON");
    assert_eq!(parsed, c.export());
}

#[test]
fn export_has_every_top_level_key() {
    let e = hello().export();
    let keys: Vec<&str> = e
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    let expected = [
        "action_order",
        "actions",
        "apps",
        "automatic_tasks",
        "export_date",
        "export_format_version",
        "export_type",
        "fields",
        "functions",
        "geos",
        "groups",
        "id",
        "inbound_destinations",
        "inbound_mailboxes",
        "incident_artifact_types",
        "incident_types",
        "industries",
        "layouts",
        "locale",
        "message_destinations",
        "notifications",
        "overrides",
        "phases",
        "playbooks",
        "regulators",
        "roles",
        "scripts",
        "server_version",
        "tags",
        "task_order",
        "timeframes",
        "types",
        "workflows",
        "workspaces",
    ];
    assert_eq!(keys, expected);
    assert_eq!(e["export_format_version"], 2);
    assert_eq!(e["export_date"], EXPORT_DATE);
    assert_eq!(
        e["server_version"],
        json!({"build_number": 0, "major": 51, "minor": 0, "version": "51.0.0.0"})
    );
    // resilient-sdk always adds these two; we carry them too.
    assert_eq!(
        e["incident_types"][0]["name"],
        "Customization Packages (internal)"
    );
    assert_eq!(
        e["incident_types"][0]["uuid"],
        "bfeec2d4-3770-11e8-ad39-4a0004044aa0"
    );
    let internal = by_key(
        &e,
        "fields",
        "export_key",
        "incident/internal_customizations_field",
    );
    assert_eq!(internal["uuid"], "bfeec2d4-3770-11e8-ad39-4a0004044aa1");

    // An empty declaration still exports every key.
    let empty = Customizations::default().export();
    assert_eq!(
        empty.as_object().expect("object").keys().count(),
        expected.len()
    );
}

#[test]
fn uuids_are_stable() {
    // Fixed forever: a change here makes every object look new to the platform.
    assert_eq!(
        uuid_for("function", "fn_hello").to_string(),
        "ab08009b-3251-5270-b50f-216d7e99eb6d"
    );
    let u = uuid_for("message_destination", "fn_hello");
    assert_eq!(u.get_version_num(), 5);
    assert_eq!(u, uuid_for("message_destination", "fn_hello"));
    assert_ne!(u, uuid_for("function", "fn_hello"));
    assert_ne!(u, uuid_for("message_destination", "fn_hell0"));

    let e = hello().export();
    let f = by_key(&e, "functions", "name", "fn_hello");
    assert_eq!(f["uuid"], uuid_for("function", "fn_hello").to_string());
    let input = by_key(&e, "fields", "export_key", "__function/hello_text");
    assert_eq!(
        input["uuid"],
        uuid_for("field", "__function/hello_text").to_string()
    );
    assert_eq!(f["view_items"][0]["content"], input["uuid"]);
    let w = by_key(&e, "workflows", "programmatic_name", "example_hello");
    assert_eq!(w["uuid"], uuid_for("workflow", "example_hello").to_string());
    let r = by_key(&e, "actions", "name", "Example: Say hello");
    assert_eq!(
        r["uuid"],
        uuid_for("rule", "Example: Say hello").to_string()
    );
}

#[test]
fn object_shapes() {
    let e = hello().export();

    let md = by_key(&e, "message_destinations", "programmatic_name", "fn_hello");
    assert_eq!(md["name"], "Hello");
    assert_eq!(md["export_key"], "fn_hello");
    assert_eq!(md["destination_type"], 0);
    assert_eq!(md["expect_ack"], true);

    let f = by_key(&e, "functions", "export_key", "fn_hello");
    assert_eq!(f["display_name"], "Hello: echo");
    assert_eq!(f["destination_handle"], "fn_hello");
    assert_eq!(
        f["description"],
        json!({"content": "Echoes its inputs", "format": "text"})
    );
    assert_eq!(f["view_items"].as_array().map(Vec::len), Some(8));
    assert_eq!(f["view_items"][0]["field_type"], "__function");
    assert_eq!(f["workflows"][0]["programmatic_name"], "example_hello");

    let input = by_key(&e, "fields", "export_key", "__function/hello_text");
    assert_eq!(input["type_id"], 11);
    assert_eq!(input["prefix"], Value::Null);
    assert_eq!(input["text"], "Text to echo");
    assert_eq!(input["required"], "always");
    assert_eq!(input["tooltip"], "The text the function echoes");
    let delay = by_key(&e, "fields", "export_key", "__function/hello_delay_ms");
    assert!(delay.get("required").is_none());
    let mode = by_key(&e, "fields", "export_key", "__function/hello_mode");
    assert_eq!(mode["input_type"], "select");
    assert_eq!(mode["values"][1]["label"], "Shout");
    assert_eq!(mode["values"][1]["enabled"], true);
    assert_eq!(
        mode["values"][1]["uuid"],
        uuid_for("field_value", "__function/hello_mode/Shout").to_string()
    );

    let custom = by_key(&e, "fields", "export_key", "incident/hello_last_echo");
    assert_eq!(custom["type_id"], 0);
    assert_eq!(custom["prefix"], "properties");
    let activity = by_key(&e, "fields", "export_key", "actioninvocation/hello_note");
    assert_eq!(activity["type_id"], 6);

    // ids: small, stable, in declaration order.
    let ids: Vec<i64> = e["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .filter_map(|f| f["id"].as_i64())
        .collect();
    assert_eq!(ids, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 0]);

    let at = by_key(
        &e,
        "incident_artifact_types",
        "programmatic_name",
        "url_string",
    );
    assert_eq!(at["name"], "URL String");
    assert_eq!(at["desc"], "A URL as a string");

    let dt = by_key(&e, "types", "type_name", "hello_table");
    assert_eq!(dt["type_id"], 8);
    assert_eq!(dt["display_name"], "Hello table");
    assert_eq!(dt["parent_types"], json!(["incident"]));
    assert_eq!(dt["fields"]["col_b"]["export_key"], "hello_table/col_b");
    assert_eq!(dt["fields"]["col_b"]["type_id"], 1000);
    assert_eq!(dt["fields"]["col_b"]["order"], 1);

    let manual = by_key(&e, "actions", "name", "Example: Say hello with a note");
    assert_eq!(manual["type"], 1);
    assert_eq!(manual["export_key"], "Example: Say hello with a note");
    assert_eq!(manual["workflows"], json!(["example_hello_note"]));
    assert_eq!(manual["view_items"][0]["field_type"], "actioninvocation");
    assert_eq!(manual["view_items"][0]["content"], activity["uuid"]);
    let auto = by_key(&e, "actions", "name", "Example: Hello on DoS");
    assert_eq!(auto["type"], 0);
    assert_eq!(auto["logic_type"], "any");
    assert_eq!(auto["object_type"], "incident");
    assert_eq!(auto["timeout_seconds"], 86400);
    // Destinations by display name, as the platform (and resilient-sdk) expects.
    assert_eq!(auto["message_destinations"], json!(["Hello"]));
    assert_eq!(
        auto["conditions"],
        json!([
            {"evaluation_id": null, "field_name": "incident.name", "method": "contains", "type": null, "value": "DoS"},
            {"evaluation_id": null, "field_name": null, "method": "object_added", "type": null, "value": null}
        ])
    );

    let w = by_key(&e, "workflows", "programmatic_name", "example_hello");
    assert_eq!(w["name"], "Example: Hello");
    assert_eq!(w["export_key"], "example_hello");
    assert_eq!(w["object_type"], "incident");
    assert_eq!(w["content"]["workflow_id"], "example_hello");
    assert_eq!(w["content"]["version"], 1);
    assert!(w["content"]["xml"].is_string());
}

#[test]
fn generated_scripts_snapshot() {
    let c = hello();
    let w = c.workflow("example_hello").expect("workflow");
    assert_eq!(
        scripts::pre_processing(w),
        "inputs.hello_text = incident.name\ninputs.incident_id = incident.id\n"
    );
    assert_eq!(
        scripts::post_processing(w, &c),
        concat!(
            "incident.properties.hello_last_echo = results.content.text\n",
            "incident.description = results.content.text\n",
            "incident.addNote(u\"fn_hello echoed: {0}\".format(results.content.text))\n",
            "incident.addNote(u\"A \\\"fixed\\\" note with {braces}\\nand a second line\")\n",
        )
    );
    let w = c.workflow("example_hello_note").expect("workflow");
    assert_eq!(
        scripts::pre_processing(w),
        "inputs.hello_text = rule.properties.hello_note\ninputs.incident_id = incident.id\n"
    );
    assert_eq!(scripts::post_processing(w, &c), "");

    // Placeholders and literal braces together; backslashes.
    let text = "workflows:\n  - name: w\n    object_type: artifact\n    function: f\n    post_processing:\n      - add_note: {text: 'a {artifact.value} {{x}} b\\ {results.content.n}'}\n";
    let c = parse("w.yaml", text).expect("parses");
    assert_eq!(
        scripts::post_processing(&c.workflows[0], &c),
        "incident.addNote(u\"a {0} {{x}} b\\\\ {1}\".format(artifact.value, results.content.n))\n"
    );
    assert_eq!(scripts::python_string("x\"y\\z\nw"), "u\"x\\\"y\\\\z\\nw\"");
}

/// The text of every `resilient:function` element, checking that the XML is
/// well formed and its tags balance.
fn function_elements(xml: &str) -> Vec<(String, String)> {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut stack: Vec<String> = Vec::new();
    let mut out = Vec::new();
    let mut current: Option<(String, String)> = None;
    loop {
        match reader.read_event().expect("well-formed XML") {
            Event::Start(e) => {
                let name = e.name().as_ref().to_owned();
                if name == "resilient:function" {
                    let uuid = e
                        .try_get_attribute("uuid")
                        .expect("attribute")
                        .map(|a| a.value.into_owned())
                        .expect("uuid attribute");
                    current = Some((uuid, String::new()));
                }
                stack.push(name);
            }
            Event::End(e) => {
                let name = e.name().as_ref().to_owned();
                assert_eq!(stack.pop().as_deref(), Some(name.as_str()), "tags balance");
                if name == "resilient:function"
                    && let Some(done) = current.take()
                {
                    out.push(done);
                }
            }
            Event::Text(t) => {
                if let Some((_, text)) = current.as_mut() {
                    text.push_str(&t.xml10_content());
                }
            }
            Event::GeneralRef(r) => {
                if let Some((_, text)) = current.as_mut() {
                    let entity = format!("&{};", r.xml10_content());
                    text.push_str(&quick_xml::escape::unescape(&entity).expect("entity"));
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    assert!(stack.is_empty(), "unclosed tags: {stack:?}");
    out
}

#[test]
fn workflow_xml_is_well_formed_bpmn() {
    let c = hello();
    let e = c.export();
    let w = by_key(&e, "workflows", "programmatic_name", "example_hello");
    let xml = w["content"]["xml"].as_str().expect("xml");
    assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?><definitions xmlns=\"http://www.omg.org/spec/BPMN/20100524/MODEL\""));
    assert!(xml.contains("xmlns:resilient=\"http://resilient.ibm.com/bpmn\""));
    assert!(
        xml.contains(
            "<process id=\"example_hello\" isExecutable=\"true\" name=\"Example: Hello\">"
        )
    );
    assert!(xml.contains("<startEvent id=\"StartEvent_155asxm\">"));
    assert!(xml.contains("resilient:type=\"function\""));
    assert!(xml.contains("<endEvent id=\"EndEvent_1\">"));
    assert!(xml.contains("<bpmndi:BPMNDiagram"));

    let functions = function_elements(xml);
    assert_eq!(functions.len(), 1);
    let (uuid, text) = &functions[0];
    assert_eq!(uuid, &uuid_for("function", "fn_hello").to_string());
    let step: Value = serde_json::from_str(text).expect("function step JSON");
    assert_eq!(step["result_name"], "hello_result");
    assert_eq!(
        step["pre_processing_script"],
        scripts::pre_processing(c.workflow("example_hello").expect("wf"))
    );
    assert_eq!(
        step["post_processing_script"],
        scripts::post_processing(c.workflow("example_hello").expect("wf"), &c)
    );
    let field = |name: &str| uuid_for("field", &format!("__function/{name}")).to_string();
    let value = |name: &str, label: &str| {
        uuid_for("field_value", &format!("__function/{name}/{label}")).to_string()
    };
    let inputs = &step["inputs"];
    assert_eq!(
        inputs.as_object().map(|o| o.len()),
        Some(6),
        "static inputs only"
    );
    let st = |name: &str| {
        assert_eq!(inputs[field(name)]["input_type"], "static");
        inputs[field(name)]["static_input"].clone()
    };
    assert_eq!(
        st("hello_delay_ms"),
        json!({"multiselect_value": [], "number_value": 0})
    );
    assert_eq!(
        st("hello_mode"),
        json!({"multiselect_value": [], "select_value": value("hello_mode", "Shout")})
    );
    assert_eq!(
        st("hello_tags"),
        json!({"multiselect_value": [value("hello_tags", "a"), value("hello_tags", "c")]})
    );
    assert_eq!(
        st("hello_flag"),
        json!({"boolean_value": true, "multiselect_value": []})
    );
    assert_eq!(
        st("hello_body"),
        json!({"multiselect_value": [], "text_content_value": {"content": "line one\nline two", "format": "text"}})
    );
    assert_eq!(
        st("hello_when"),
        json!({"date_value": 1_700_000_000_000_u64, "multiselect_value": []})
    );
    // The select value uuids are those of the exported field.
    let mode = by_key(&e, "fields", "export_key", "__function/hello_mode");
    assert_eq!(mode["values"][1]["uuid"], value("hello_mode", "Shout"));
}

#[test]
fn hostile_text_stays_well_formed() {
    let text = r#"
message_destinations:
  - {name: fn_x, display_name: "A & <B> \"C\""}
functions:
  - name: fn_x
    display_name: "</serviceTask> & ]]> 'quote'"
    destination: fn_x
    inputs:
      - {name: t, type: text}
workflows:
  - name: w
    display_name: "<x attr=\"1\"> & \u0001 ctrl"
    description: "</documentation><evil/> &amp; \t tab"
    object_type: incident
    function: fn_x
    inputs:
      t: {value: "</resilient:function> <![CDATA[ & ]]>"}
    post_processing:
      - add_note: {text: "<b>bold</b> & {results.content.x} \"quoted\" ]]>"}
"#;
    let c = parse(HELLO_FILE, text).expect("parses");
    let e = c.export();
    let xml = e["workflows"][0]["content"]["xml"].as_str().expect("xml");
    let functions = function_elements(xml);
    assert_eq!(functions.len(), 1);
    let step: Value = serde_json::from_str(&functions[0].1).expect("JSON");
    let t = uuid_for("field", "__function/t").to_string();
    assert_eq!(
        step["inputs"][t]["static_input"]["text_value"],
        "</resilient:function> <![CDATA[ & ]]>"
    );
    assert_eq!(
        step["post_processing_script"],
        "incident.addNote(u\"<b>bold</b> & {0} \\\"quoted\\\" ]]>\".format(results.content.x))\n"
    );
}

#[test]
fn export_of_unvalidated_declarations_does_not_panic() {
    // Dangling references and odd values: the export skips what it cannot resolve.
    let text = r#"
functions:
  - {name: fn_x, destination: nowhere, inputs: [{name: s, type: select, values: [A]}, {name: m, type: multiselect, values: [A]}]}
workflows:
  - name: w
    object_type: note
    function: fn_x
    inputs:
      s: {value: 3}
      m: {value: "A"}
      missing: {value: 1}
    post_processing:
      - add_note: {text: "{unclosed"}
  - {name: w2, object_type: task, function: fn_missing}
rules:
  - {name: R, type: manual, object_type: note, workflows: [nope], destinations: [nowhere]}
"#;
    let c = parse("x.yaml", text).expect("parses");
    assert!(c.validate().is_err());
    let e = c.export();
    assert_eq!(e["actions"][0]["message_destinations"], json!(["nowhere"]));
    assert_eq!(
        scripts::post_processing(&c.workflows[0], &c),
        "incident.addNote(u\"{unclosed\")\n"
    );
    for w in e["workflows"].as_array().expect("workflows") {
        let _ = function_elements(w["content"]["xml"].as_str().expect("xml"));
    }
}

#[test]
fn shared_inputs_are_exported_once() {
    let text = fixture("fn_hello.yaml").replace(
        "incident_fields:",
        "  - name: fn_hello_two\n    destination: fn_hello\n    inputs:\n      - name: incident_id\n        type: number\n        required: true\nincident_fields:",
    );
    let c = Customizations::parse(&[Source {
        file: HELLO_FILE,
        text: &text,
    }])
    .expect("parses");
    c.validate().expect("valid");
    let e = c.export();
    let ids: Vec<&Value> = e["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .filter(|f| f["export_key"] == "__function/incident_id")
        .collect();
    assert_eq!(ids.len(), 1);
    let two = by_key(&e, "functions", "name", "fn_hello_two");
    assert_eq!(two["view_items"][0]["content"], ids[0]["uuid"]);
}

/// A `json` input exports as one pre-processing line that real Python runs (when a
/// `python3` is installed) to the JSON text the template says, whatever the incident holds:
/// quotes, backslashes, line ends, missing and false values, lists joined.
#[test]
fn json_template_inputs_export_as_python_that_builds_json() {
    let yaml = common::BASE.replace(
        "      hello_text: {from: incident.name}",
        r#"      hello_text:
        json:
          "Name \"quoted\" {braces}": {type: string, data: {from: incident.name}}
          Id: {type: incident, data: {from: incident.id}}
          Confirmed: {type: boolean, data: {from: incident.confirmed}}
          Missing: {type: string, data: {from: incident.nothing}}
          Types: {type: string, data: {from: incident.incident_type_ids, join: ", "}}
          Fixed: [1, true, null, "x"]"#,
    );
    let c = parse(HELLO_FILE, &yaml).unwrap_or_else(|e| panic!("{e}"));
    c.validate().unwrap_or_else(|e| panic!("{e}"));
    let script = scripts::pre_processing(c.workflow("example_hello").expect("wf"));
    assert_eq!(script.lines().count(), 1, "{script}");
    assert!(script.starts_with("inputs.hello_text = u\""), "{script}");
    let expected = json!({
        "Name \"quoted\" {braces}": {"type": "string", "data": "a \"b\"\\c\nd\re"},
        "Id": {"type": "incident", "data": "42"},
        "Confirmed": {"type": "boolean", "data": ""},
        "Missing": {"type": "string", "data": ""},
        "Types": {"type": "string", "data": "Malware, Phishing"},
        "Fixed": [1, true, null, "x"],
    });
    // Run it as the platform would: objects with attributes, inputs collected.
    let driver = r#"
import json, sys
class O(dict):
    def __getattr__(self, k):
        v = self.get(k)
        return O(v) if isinstance(v, dict) else v
    def __setattr__(self, k, v):
        self[k] = v
incident = O({"id": 42, "name": "a \"b\"\\c\nd\re", "confirmed": False,
              "incident_type_ids": ["Malware", "Phishing"]})
inputs = O()
exec(sys.stdin.read())
print(inputs["hello_text"])
"#;
    let python = std::process::Command::new("python3")
        .arg("-c")
        .arg(driver)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn();
    let Ok(mut python) = python else {
        eprintln!("python3 is not installed: the script was not run by Python");
        return;
    };
    use std::io::Write;
    (python.stdin.take().unwrap())
        .write_all(script.as_bytes())
        .unwrap();
    let out = python.wait_with_output().unwrap();
    assert!(out.status.success(), "python3 failed on:\n{script}");
    let text = String::from_utf8(out.stdout).unwrap();
    let built: Value = serde_json::from_str(text.trim_end_matches('\n')).unwrap_or_else(|e| {
        panic!("{e}: {text}");
    });
    assert_eq!(built, expected);
}
