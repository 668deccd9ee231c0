//! The plan against an empty platform, our own export, and changed objects.

mod common;

use common::hello;
use serde_json::{Value, json};
use soar_customizations::plan::{Plan, PlanItem, plan};

fn names(items: &[PlanItem]) -> Vec<String> {
    items
        .iter()
        .map(|i| format!("{} {}", i.kind, i.name))
        .collect()
}

const ALL: [&str; 19] = [
    "message destination fn_hello",
    "function input hello_text",
    "function input incident_id",
    "function input hello_delay_ms",
    "function input hello_mode",
    "function input hello_tags",
    "function input hello_flag",
    "function input hello_body",
    "function input hello_when",
    "incident field hello_last_echo",
    "activity field hello_note",
    "function fn_hello",
    "artifact type url_string",
    "data table hello_table",
    "workflow example_hello",
    "workflow example_hello_note",
    "rule Example: Say hello",
    "rule Example: Say hello with a note",
    "rule Example: Hello on DoS",
];

#[test]
fn against_an_empty_platform_everything_is_new() {
    let ours = hello().export();
    for platform in [
        json!({}),
        json!(null),
        soar_customizations::Customizations::default().export(),
    ] {
        let p = plan(&ours, &platform);
        assert_eq!(names(&p.new), ALL);
        assert!(p.changed.is_empty());
        assert!(p.unchanged.is_empty());
        assert!(!p.is_empty());
    }
    let p = plan(&ours, &json!({}));
    let rendered = p.render();
    assert!(rendered.starts_with("+ message destination fn_hello\n+ function input hello_text\n"));
    assert!(rendered.contains("+ rule \"Example: Say hello\"\n"));
    assert_eq!(rendered.lines().count(), ALL.len());
}

#[test]
fn against_our_own_export_everything_is_unchanged() {
    let ours = hello().export();
    let p = plan(&ours, &ours);
    assert!(p.is_empty());
    assert!(p.new.is_empty() && p.changed.is_empty());
    assert_eq!(names(&p.unchanged), ALL);
    assert!(p.render().lines().all(|l| l.starts_with("= ")));
    assert_eq!(Plan::default().render(), "");
    assert!(Plan::default().is_empty());
}

#[test]
fn a_changed_function_description() {
    let ours = hello().export();
    let mut platform = ours.clone();
    platform["functions"][0]["description"]["content"] = json!("Something else");
    let p = plan(&ours, &platform);
    assert_eq!(names(&p.changed), ["function fn_hello"]);
    assert!(p.new.is_empty());
    assert_eq!(p.unchanged.len(), ALL.len() - 1);
    assert!(!p.is_empty());
    assert!(
        p.render()
            .starts_with("~ function fn_hello\n= message destination fn_hello\n")
    );
}

#[test]
fn platform_owned_keys_and_other_uuids_are_ignored() {
    let ours = hello().export();
    let mut platform = ours.clone();
    // The platform renumbers, adds its own keys, grants our API key, ...
    if let Some(list) = platform["fields"].as_array_mut() {
        for (i, f) in list.iter_mut().enumerate() {
            f["id"] = json!(500 + i);
            f["creator_id"] = json!("admin@example.com");
            if let Some(values) = f["values"].as_array_mut() {
                for v in values {
                    v["value"] = json!(9000);
                }
            }
        }
    }
    platform["message_destinations"][0]["api_keys"] = json!(["d4f4..."]);
    platform["message_destinations"][0]["users"] = json!([3]);
    platform["functions"][0]["version"] = json!(7);
    platform["functions"][0]["workflows"] = json!([]);
    platform["functions"][0]["last_modified_by"] = json!({"name": "someone"});
    platform["functions"][0]["extra_platform_key"] = json!({"x": 1});
    platform["workflows"][0]["actions"] = json!([{"name": "Example: Say hello"}]);
    platform["actions"][0]["id"] = json!(77);
    platform["actions"][0]["tags"] = json!([{"tag_handle": "fn_hello"}]);
    // ... and an org where our objects were created with other uuids: replace
    // every uuid by another one, consistently.
    let text = serde_json::to_string(&platform).expect("json");
    let mut replaced = text.clone();
    let mut count = 0u32;
    for uuid in uuids_in(&text) {
        count += 1;
        replaced = replaced.replace(&uuid, &format!("00000000-0000-4000-8000-{count:012}"));
    }
    assert!(count > 20);
    let platform: Value = serde_json::from_str(&replaced).expect("json");
    let p = plan(&ours, &platform);
    assert!(p.changed.is_empty(), "{}", p.render());
    assert_eq!(names(&p.unchanged), ALL);
}

#[test]
fn changes_inside_references_are_seen() {
    let ours = hello().export();

    // A select value renamed on the platform: the field changes, and the workflow
    // whose static input points at it too.
    let mut platform = ours.clone();
    let mode = platform["fields"]
        .as_array_mut()
        .and_then(|a| {
            a.iter_mut()
                .find(|f| f["export_key"] == "__function/hello_mode")
        })
        .expect("mode");
    mode["values"][1]["label"] = json!("Whisper");
    let p = plan(&ours, &platform);
    assert_eq!(
        names(&p.changed),
        ["function input hello_mode", "workflow example_hello"]
    );

    // A rule whose workflow list differs; an activity field whose type differs.
    let mut platform = ours.clone();
    platform["actions"][0]["workflows"] = json!([]);
    let note = platform["fields"]
        .as_array_mut()
        .and_then(|a| {
            a.iter_mut()
                .find(|f| f["export_key"] == "actioninvocation/hello_note")
        })
        .expect("note");
    note["input_type"] = json!("textarea");
    let p = plan(&ours, &platform);
    assert_eq!(
        names(&p.changed),
        ["activity field hello_note", "rule Example: Say hello"]
    );

    // Objects missing on the platform are new; platform-only objects are ignored.
    let mut platform = ours.clone();
    platform["workflows"].as_array_mut().expect("wfs").remove(1);
    platform["actions"]
        .as_array_mut()
        .expect("actions")
        .push(json!({"name": "Someone else's rule", "type": 1}));
    let p = plan(&ours, &platform);
    assert_eq!(names(&p.new), ["workflow example_hello_note"]);
    assert!(p.changed.is_empty());
}

/// Every uuid-looking substring of a text (distinct, in order).
fn uuids_in(text: &str) -> Vec<String> {
    let bytes = text.as_bytes();
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i + 36 <= bytes.len() {
        let w = &bytes[i..i + 36];
        let ok = w.iter().enumerate().all(|(j, c)| match j {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        });
        if ok {
            let u = String::from_utf8_lossy(w).into_owned();
            if !out.contains(&u) {
                out.push(u);
            }
            i += 36;
        } else {
            i += 1;
        }
    }
    out
}
