//! Conformance: IBM's own Python tooling reads our export (issue 3).
//!
//! 1. `resilient-sdk codegen -e <our export.res>` (resilient-sdk 51.0.9.1 from PyPI, in the venv
//!    `.ci/run` creates) accepts the export of `fn_hello` as a local export file and generates a
//!    package for its message destination, function, workflow and rule with the inputs the YAML
//!    declares; the package's own `util/data/export.res` carries our objects unchanged.
//! 2. IBM's `resilient` client library, through resilient-circuits' `customize` code
//!    (`Customizations.load_import` of an `ImportDefinition`), imports the same file into a
//!    simulated platform, and the platform ends up with the same objects as one set up by our
//!    `host customize` library call.
//! 3. codegen follows a rule's message destination, which it finds by the destination's display
//!    name (so our export must name a rule's destinations by display name).
//!
//! The Python side is `tests/python/sdk_codegen_check.py` and `tests/python/import_with_resilient.py`.
//! Skipped when `SOAR_TEST_PYTHON` is unset, unless `SOAR_TEST_REQUIRE_EXTERNAL=1`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use soar_engine::testkit;
use soar_sim::{Sim, SimConfig};

use fn_hello as _;

/// Bound of every Python subprocess (the codegen takes about 0.5 s, the import about 1 s).
const PYTHON_TIMEOUT: Duration = Duration::from_secs(120);

/// The incident field every package's export carries; resilient-sdk adds its own copy.
const INTERNAL_FIELD: &str = "incident/internal_customizations_field";

/// The object lists an import carries and the platform stores.
const OBJECT_KEYS: [&str; 5] = [
    "message_destinations",
    "functions",
    "fields",
    "workflows",
    "actions",
];

fn python() -> Option<PathBuf> {
    match std::env::var("SOAR_TEST_PYTHON") {
        Ok(p) if !p.is_empty() => Some(PathBuf::from(p)),
        _ => {
            if std::env::var("SOAR_TEST_REQUIRE_EXTERNAL").as_deref() == Ok("1") {
                panic!(
                    "SOAR_TEST_REQUIRE_EXTERNAL=1 but SOAR_TEST_PYTHON is not set (see .ci/run)"
                );
            }
            eprintln!(
                "skipped: SOAR_TEST_PYTHON is not set (run .ci/run to create the venv with resilient-sdk)"
            );
            None
        }
    }
}

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("python")
        .join(name)
}

/// Runs `python script args…` in `dir` (also its HOME, so nothing of the user's `~/.resilient`
/// is read or written), bounded by [`PYTHON_TIMEOUT`]; returns the JSON it printed on stdout.
async fn run_python(python: &Path, dir: &Path, script_name: &str, args: &[&str]) -> Value {
    let started = Instant::now();
    let child = tokio::process::Command::new(python)
        .arg(script(script_name))
        .args(args)
        .current_dir(dir)
        .env("HOME", dir)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env_remove("APP_CONFIG_FILE")
        .env_remove("RES_SDK_DEV")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", python.display()));
    let output = match tokio::time::timeout(PYTHON_TIMEOUT, child.wait_with_output()).await {
        Ok(output) => output.unwrap_or_else(|e| panic!("{script_name}: {e}")),
        Err(_) => panic!("{script_name} did not finish within {PYTHON_TIMEOUT:?}"),
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!(
        "{script_name}: {:?}, {:.1}s",
        output.status,
        started.elapsed().as_secs_f64()
    );
    let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "{script_name} {args:?}: {:?}, no JSON report ({e})\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
            output.status
        )
    });
    if !output.status.success() || report.get("error").is_some() {
        panic!(
            "{script_name} {args:?} failed ({:?}): {}\n--- log ---\n{}\n--- stderr ---\n{stderr}",
            output.status,
            report["error"],
            report["log"].as_str().unwrap_or_default()
        );
    }
    report
}

/// `[name, type]` of each input of `function` in a codegen report, sorted by name.
fn input_types(function: &Value) -> Vec<(String, String)> {
    let mut inputs: Vec<(String, String)> = function["inputs"]
        .as_array()
        .expect("inputs")
        .iter()
        .map(|i| {
            (
                i["name"].as_str().unwrap_or("?").to_string(),
                i["input_type"].as_str().unwrap_or("?").to_string(),
            )
        })
        .collect();
    inputs.sort();
    inputs
}

/// What resilient-sdk does to the objects it copies into a package's export.res: every `tags`
/// list emptied and the `creator`/`creator_id` keys removed (recursively).
fn as_sdk_minifies(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| k.as_str() != "creator" && k.as_str() != "creator_id")
                .map(|(k, v)| {
                    let v = if k == "tags" && v.is_array() {
                        json!([])
                    } else {
                        as_sdk_minifies(v)
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(as_sdk_minifies).collect()),
        other => other.clone(),
    }
}

fn by_uuid<'a>(list: &'a Value, uuid: &Value) -> Option<&'a Value> {
    list.as_array()?.iter().find(|o| o["uuid"] == *uuid)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resilient_sdk_codegen_accepts_our_export_of_fn_hello() {
    let Some(python) = python() else {
        return;
    };
    let definitions = testkit::definitions_of(fn_hello::NAME).unwrap();
    let export_res = definitions.export_res();
    let ours: Value = serde_json::from_str(&export_res).expect("our export.res is JSON");
    let dir = tempfile::tempdir().unwrap();
    let export_file = dir.path().join("export.res");
    std::fs::write(&export_file, &export_res).unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();

    let report = run_python(
        &python,
        dir.path(),
        "sdk_codegen_check.py",
        &[
            "--exportfile",
            export_file.to_str().unwrap(),
            "--package",
            "fn_hello",
            "--output",
            out.to_str().unwrap(),
            "--",
            "-m",
            "fn_hello",
            "-f",
            "fn_hello",
            "-w",
            "example_hello",
            "-r",
            "Example: Say hello",
            fn_hello::NOTE_RULE,
            "-fd",
            "hello_last_echo",
        ],
    )
    .await;
    eprintln!(
        "resilient-sdk {} generated {} files",
        report["resilient_sdk_version"],
        report["files"].as_array().map_or(0, Vec::len)
    );
    let export = &report["export"];

    // The package holds a component, a test, a workflow description and the customizations.
    let files: Vec<&str> = report["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for f in [
        "setup.py",
        "fn_hello/components/funct_fn_hello.py",
        "fn_hello/util/customize.py",
        "fn_hello/util/data/export.res",
        "tests/test_funct_fn_hello.py",
        "data/wf_example_hello.md",
        "payload_samples/fn_hello/output_json_example.json",
    ] {
        assert!(files.contains(&f), "{f} not generated: {files:?}");
    }
    assert_eq!(
        report["compile_errors"],
        json!({}),
        "generated Python does not compile"
    );

    // The function and its inputs, as fn_hello.yaml declares them.
    let functions = export["functions"].as_array().unwrap();
    assert_eq!(functions.len(), 1, "{functions:?}");
    let function = &functions[0];
    assert_eq!(function["export_key"], "fn_hello");
    assert_eq!(function["name"], "fn_hello");
    assert_eq!(function["display_name"], "Hello: echo");
    assert_eq!(function["destination_handle"], "fn_hello");
    let expected_inputs: Vec<(String, String)> = [
        ("hello_delay_ms", "number"),
        ("hello_fail", "boolean"),
        ("hello_text", "text"),
        ("incident_id", "number"),
    ]
    .iter()
    .map(|(n, t)| (n.to_string(), t.to_string()))
    .collect();
    assert_eq!(input_types(function), expected_inputs);
    // ... the same inputs as our export's function (the model's view of the YAML)
    let our_function = ours["functions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["export_key"] == "fn_hello")
        .expect("fn_hello in our export");
    let our_inputs: Vec<(String, String)> = {
        let mut v: Vec<(String, String)> = our_function["view_items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["field_type"] == "__function")
            .map(|i| {
                let field = by_uuid(&ours["fields"], &i["content"]).expect("input field");
                (
                    field["name"].as_str().unwrap().to_string(),
                    field["input_type"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        v.sort();
        v
    };
    assert_eq!(input_types(function), our_inputs);
    // ... documented in the generated component
    let component = &report["components"]["funct_fn_hello.py"];
    assert_eq!(component["fn_name"], "fn_hello");
    let mut documented: Vec<&str> = component["documented_inputs"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    documented.sort_unstable();
    assert_eq!(
        documented,
        ["hello_delay_ms", "hello_fail", "hello_text", "incident_id"]
    );

    // The message destination, the workflow (its function step read from our BPMN XML by
    // resilient-sdk itself for the wf_*.md) and the rule.
    assert_eq!(
        export["message_destinations"],
        json!([{"programmatic_name": "fn_hello", "name": "Hello"}])
    );
    let workflows = export["workflows"].as_array().unwrap();
    assert_eq!(workflows.len(), 1, "{workflows:?}");
    assert_eq!(workflows[0]["programmatic_name"], "example_hello");
    assert_eq!(workflows[0]["name"], "Example: Hello");
    assert_eq!(workflows[0]["object_type"], "incident");
    let steps = workflows[0]["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 1, "{steps:?}");
    assert_eq!(steps[0]["function"], "fn_hello");
    let static_inputs: Vec<&String> = steps[0]["inputs"].as_object().unwrap().keys().collect();
    assert_eq!(static_inputs, ["hello_delay_ms"], "{}", steps[0]);
    let pre = steps[0]["pre_processing_script"]
        .as_str()
        .unwrap_or_default();
    assert!(pre.contains("inputs.hello_text = incident.name"), "{pre}");
    assert!(pre.contains("inputs.incident_id = incident.id"), "{pre}");
    let doc = &report["workflow_docs"]["wf_example_hello.md"];
    assert_eq!(doc["function_api_names"], json!(["fn_hello"]), "{doc}");
    assert_eq!(doc["message_destinations"], json!(["fn_hello"]), "{doc}");
    assert_eq!(
        doc["result_names"],
        json!([steps[0]["result_name"]]),
        "{doc}"
    );
    let rules = export["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 2, "{rules:?}");
    let manual = rules
        .iter()
        .find(|r| r["name"] == "Example: Say hello")
        .expect("the manual rule");
    assert_eq!(manual["type"], json!(1), "a manual rule");
    assert_eq!(manual["object_type"], "incident");
    assert_eq!(manual["workflows"], json!(["example_hello"]));
    assert!(
        rules.iter().any(|r| r["name"] == fn_hello::NOTE_RULE),
        "the automatic note rule, whose destination is named by display name: {rules:?}"
    );
    assert!(
        export["incident_fields"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["name"] == "hello_last_echo" && f["input_type"] == "text"),
        "{}",
        export["incident_fields"]
    );

    // customize.py: what `codegen --reload` and `resilient-circuits customize` read.
    let reload = &report["codegen_reload_data"];
    assert_eq!(reload["message_destinations"], json!(["fn_hello"]));
    assert_eq!(reload["functions"], json!(["fn_hello"]));
    assert_eq!(reload["workflows"], json!(["example_hello"]));
    assert_eq!(
        reload["actions"],
        json!([fn_hello::NOTE_RULE, "Example: Say hello"])
    );
    assert_eq!(reload["incident_fields"], json!(["hello_last_echo"]));
    assert_eq!(
        report["customization_data"],
        json!({"definitions": ["ImportDefinition"], "import_equals_export_res": true})
    );

    // The package's export.res carries our objects as we wrote them (resilient-sdk only empties
    // tags and drops creators).
    let package_res =
        Path::new(report["package_dir"].as_str().unwrap()).join("fn_hello/util/data/export.res");
    let generated: Value =
        serde_json::from_str(&std::fs::read_to_string(&package_res).unwrap()).unwrap();
    for key in OBJECT_KEYS {
        for object in ours[key].as_array().unwrap() {
            if object["export_key"] == INTERNAL_FIELD {
                // codegen always puts in its own copy of this one
                continue;
            }
            let copied = by_uuid(&generated[key], &object["uuid"]).unwrap_or_else(|| {
                panic!("{key}: {} not in the package's export.res", object["uuid"])
            });
            assert_eq!(*copied, as_sdk_minifies(object), "{key} changed by codegen");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ibm_resilient_library_imports_our_export_like_host_customize() {
    let Some(python) = python() else {
        return;
    };
    let definitions = testkit::definitions_of(fn_hello::NAME).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let export_file = dir.path().join("export.res");
    std::fs::write(&export_file, definitions.export_res()).unwrap();

    // One simulated platform set up by IBM's library ...
    let ibm = Sim::start(SimConfig::default()).await.unwrap();
    let config = dir.path().join("app.config");
    std::fs::write(&config, ibm.app_config()).unwrap();
    let report = run_python(
        &python,
        dir.path(),
        "import_with_resilient.py",
        &[
            "--exportfile",
            export_file.to_str().unwrap(),
            "--config",
            config.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(report["post"]["status"], "PENDING", "{report:#}");
    assert_eq!(report["put_status_sent"], "ACCEPTED", "{report:#}");
    assert_eq!(report["put"]["status"], "ACCEPTED", "{report:#}");
    let handle = report["api_key_handle"].clone();
    let granted = report["message_destinations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["programmatic_name"] == "fn_hello")
        .unwrap_or_else(|| panic!("fn_hello not listed after the import: {report:#}"));
    assert!(
        granted["api_keys"]
            .as_array()
            .is_some_and(|k| k.contains(&handle)),
        "IBM's customize granted the API key {handle} access to fn_hello: {granted}"
    );

    // ... and one by ours.
    let host = Sim::start(SimConfig::default()).await.unwrap();
    let pushed = testkit::customize_sim(&host, &definitions).await.unwrap();
    assert!(pushed.imported);

    let (a, b) = (ibm.export(), host.export());
    for key in OBJECT_KEYS {
        assert!(
            a[key].as_array().is_some_and(|l| !l.is_empty()),
            "{key}: nothing imported by IBM's library: {}",
            a[key]
        );
    }
    // Everything the platforms store is the same (the export's own date aside).
    let keys: std::collections::BTreeSet<&String> = a
        .as_object()
        .unwrap()
        .keys()
        .chain(b.as_object().unwrap().keys())
        .collect();
    for key in keys {
        if key == "export_date" {
            continue;
        }
        assert_eq!(
            a[key], b[key],
            "{key} differ between IBM's import and host customize"
        );
    }
    // Both posted the same document (IBM's client empties `tags`, ours are empty) and got the
    // same messages back.
    assert_eq!(ibm.imports().len(), 1);
    assert_eq!(ibm.imports(), host.imports(), "different import documents");
    let messages = |sim: &Sim| -> Vec<Value> {
        sim.import_records()
            .iter()
            .map(|r| json!({"status": r["status"], "messages": r["messages"]}))
            .collect()
    };
    assert_eq!(messages(&ibm), messages(&host));
    assert_eq!(
        ibm.message_destination("fn_hello")
            .map(|d| d["api_keys"].clone()),
        host.message_destination("fn_hello")
            .map(|d| d["api_keys"].clone()),
        "the same API key access"
    );
    assert_eq!(ibm.violations(), Vec::<String>::new());
    assert_eq!(host.violations(), Vec::<String>::new());
}

/// A rule that sends to a message destination whose display name differs from its programmatic
/// name: resilient-sdk codegen follows the rule's `message_destinations` by the destinations'
/// display `name` (`sdk_helpers.get_from_export`: "Message Destinations in Rules are identified
/// by their Display Name") and fails with an AttributeError when it finds none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resilient_sdk_codegen_follows_a_rules_message_destination() {
    let Some(python) = python() else {
        return;
    };
    let definitions = testkit::definitions_from_yaml(
        r#"
message_destinations:
  - name: fn_conf_rules
    display_name: Conformance rules
rules:
  - name: "Conformance: notify"
    type: manual
    object_type: incident
    destinations: [fn_conf_rules]
"#,
    );
    let dir = tempfile::tempdir().unwrap();
    let export_file = dir.path().join("export.res");
    std::fs::write(&export_file, definitions.export_res()).unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let report = run_python(
        &python,
        dir.path(),
        "sdk_codegen_check.py",
        &[
            "--exportfile",
            export_file.to_str().unwrap(),
            "--package",
            "fn_conf_rules",
            "--output",
            out.to_str().unwrap(),
            "--",
            "-r",
            "Conformance: notify",
        ],
    )
    .await;
    assert_eq!(
        report["codegen_reload_data"]["message_destinations"],
        json!(["fn_conf_rules"])
    );
    assert_eq!(
        report["codegen_reload_data"]["actions"],
        json!(["Conformance: notify"])
    );
    assert_eq!(
        report["export"]["message_destinations"],
        json!([{"programmatic_name": "fn_conf_rules", "name": "Conformance rules"}])
    );
}
