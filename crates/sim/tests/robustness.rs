//! Nothing the simulated platform parses panics: scripts, workflow XML, imports, conditions.

use proptest::prelude::*;
use serde_json::{Map, Value, json};
use soar_sim::platform::{Operation, PlatformEvent, PlatformState, Rule};
use soar_sim::script::{self, Mode};
use soar_sim::{imports, rules, workflow};

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("name".to_string()),
                    Just("uuid".to_string()),
                    Just("type_id".to_string()),
                    Just("values".to_string()),
                    Just("input_type".to_string()),
                    Just("destination_handle".to_string()),
                    Just("view_items".to_string()),
                    Just("content".to_string()),
                    Just("workflows".to_string()),
                    "[a-z_]{1,8}",
                ],
                inner,
                0..5
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn scripts_never_panic(script in "(inputs|incident|results|u\"|\\{|\\}|\\.|=|\\(|\\)|,|\"|\\\\|[a-z0-9 _#\\n'])*") {
        let mut ctx = Map::new();
        ctx.insert("incident".into(), json!({"id": 1, "properties": {}}));
        let _ = script::run(&script, Mode::Pre, &mut ctx);
        let _ = script::run(&script, Mode::Post, &mut ctx);
    }

    #[test]
    fn workflow_xml_never_panics(xml in "(<resilient:function uuid=\"u\">|</resilient:function>|<a>|</a>|<!\\[CDATA\\[|\\]\\]>|&[a-z#0-9]{0,5};|[{}\":a-z ])*") {
        let _ = workflow::function_steps(&xml);
    }

    #[test]
    fn imports_never_panic(kinds in prop::collection::btree_map(
        prop::sample::select(imports::LIST_KEYS.to_vec()),
        prop::collection::vec(arb_json(), 0..3),
        0..6,
    )) {
        let mut x: Map<String, Value> = kinds
            .into_iter()
            .map(|(k, v)| (k.to_string(), Value::Array(v)))
            .collect();
        x.insert("export_format_version".into(), json!(2));
        let import = Value::Object(x);
        let mut st = PlatformState::default();
        let m = imports::validate(&st, &import);
        if !m.has_errors() {
            imports::apply(&mut st, &import);
            let _ = imports::export(&st);
        }
    }

    #[test]
    fn conditions_never_panic(cond in arb_json(), old in arb_json(), new in arb_json()) {
        let st = PlatformState::default();
        let ev = PlatformEvent {
            object_type: "incident".into(),
            operation: Operation::Modified,
            incident_id: 1,
            old,
            new,
        };
        let _ = rules::condition_holds(&st, &cond, &ev);
        let mut rule = Rule::manual(1, "r", &[]);
        rule.conditions = vec![cond];
        let _ = rules::conditions_hold(&st, &rule, &ev);
    }
}

#[test]
fn condition_methods_on_lists_and_numbers() {
    let st = PlatformState::default();
    let ev = |old: Value, new: Value| PlatformEvent {
        object_type: "artifact".into(),
        operation: Operation::Modified,
        incident_id: 1,
        old,
        new,
    };
    let c = |field: &str, method: &str, value: Value| json!({"field_name": field, "method": method, "value": value});
    let e = ev(
        json!({"hits": [1, 2], "n": 3}),
        json!({"hits": [1, 2, 3], "n": "4", "v": "Evil.COM"}),
    );
    assert!(rules::condition_holds(
        &st,
        &c("artifact.hits", "contains", json!(3)),
        &e
    ));
    assert!(rules::condition_holds(
        &st,
        &c("artifact.hits", "contains", json!([1, 3])),
        &e
    ));
    assert!(rules::condition_holds(
        &st,
        &c("artifact.v", "contains", json!("evil.com")),
        &e
    ));
    assert!(rules::condition_holds(
        &st,
        &c("artifact.n", "gte", json!(4)),
        &e
    ));
    assert!(!rules::condition_holds(
        &st,
        &c("artifact.n", "lt", json!(4)),
        &e
    ));
    assert!(rules::condition_holds(
        &st,
        &c("artifact.n", "in", json!([4, 5])),
        &e
    ));
    assert!(rules::condition_holds(
        &st,
        &c("artifact.n", "not_in", json!([5])),
        &e
    ));
    assert!(rules::condition_holds(
        &st,
        &c("artifact.n", "changed", Value::Null),
        &e
    ));
    assert!(rules::condition_holds(
        &st,
        &c("artifact.hits", "changed_to", json!([3, 2, 1])),
        &e
    ));
    assert!(!rules::condition_holds(
        &st,
        &c("artifact.n", "unknown_method", json!(1)),
        &e
    ));
    assert!(!rules::condition_holds(
        &st,
        &c("task.x", "has_a_value", Value::Null),
        &e
    ));
}
