//! No panic on any input: truncated and mangled YAML, odd platform exports.

mod common;

use common::fixture;
use serde_json::json;
use soar_customizations::{Customizations, Source, plan::plan};

fn exercise(text: &str) {
    if let Ok(c) = Customizations::parse(&[Source {
        file: "f.yaml",
        text,
    }]) {
        let _ = c.validate();
        let a = c.export_res();
        assert_eq!(a, c.export_res());
        let _ = plan(&c.export(), &json!({}));
    }
}

#[test]
fn truncated_and_mangled_yaml_never_panics() {
    let text = fixture("fn_hello.yaml");
    let boundaries: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();
    for &i in boundaries.iter().step_by(13) {
        exercise(&text[..i]);
    }
    for &i in boundaries.iter().step_by(61) {
        for c in ['{', '}', ':', '-', '\t', '"', '&', '*', 'é', '\u{0}'] {
            let mut mangled = String::with_capacity(text.len() + 4);
            mangled.push_str(&text[..i]);
            mangled.push(c);
            mangled.push_str(text.get(i + 1..).unwrap_or_default());
            exercise(&mangled);
        }
    }
}

#[test]
fn odd_platform_exports_never_panic() {
    let ours = common::hello().export();
    for platform in [
        json!([]),
        json!("x"),
        json!({"functions": "nope", "fields": [1, null, "a"], "actions": [{"name": 3}]}),
        json!({"functions": [{"export_key": "fn_hello", "description": "not an object", "view_items": null}]}),
        json!({"message_destinations": [{"programmatic_name": "fn_hello", "name": "ab08009b-3251-5270-b50f-216d7e99eb6dé"}]}),
        json!({"fields": [{"export_key": "__function/hello_text", "uuid": 5, "values": "x"}]}),
    ] {
        let _ = plan(&ours, &platform).render();
    }
}
