//! Parsing (YAML errors with file:line:column), merging (duplicates) and
//! validation (every problem, each naming the file and the object).

mod common;

use common::{BASE, HELLO_FILE, fixture, hello, parse, problems};
use serde_json::json;
use soar_customizations::{
    ConditionMethod, CustomizationError, Customizations, InputType, InputValue, Logic, ObjectType,
    PostStep, RuleKind, Source,
};

#[test]
fn full_example_parses_and_validates() {
    let c = hello();
    assert_eq!(c.message_destinations.len(), 1);
    assert_eq!(c.message_destinations[0].label(), "Hello");
    assert_eq!(c.message_destinations[0].file, HELLO_FILE);

    let f = c.function("fn_hello").expect("fn_hello");
    assert_eq!(f.label(), "Hello: echo");
    assert_eq!(f.description.as_deref(), Some("Echoes its inputs"));
    assert_eq!(f.destination, "fn_hello");
    assert_eq!(f.file, HELLO_FILE);
    let types: Vec<InputType> = f.inputs.iter().map(|i| i.input_type).collect();
    assert_eq!(
        types,
        vec![
            InputType::Text,
            InputType::Number,
            InputType::Number,
            InputType::Select,
            InputType::Multiselect,
            InputType::Boolean,
            InputType::Textarea,
            InputType::Datetimepicker
        ]
    );
    let text = f.input("hello_text").expect("hello_text");
    assert!(text.required);
    assert_eq!(text.text(), "Text to echo");
    assert_eq!(
        text.tooltip.as_deref(),
        Some("The text the function echoes")
    );
    assert_eq!(text.placeholder.as_deref(), Some("hello"));
    assert!(f.input("incident_id").expect("incident_id").required);
    assert!(!f.input("hello_delay_ms").expect("delay").required);
    assert_eq!(
        f.input("hello_mode").expect("mode").values,
        ["Plain", "Shout"]
    );
    assert_eq!(f.input("hello_body").expect("body").text(), "hello_body");

    assert_eq!(c.incident_fields[0].name, "hello_last_echo");
    assert_eq!(c.artifact_types[0].label(), "URL String");
    assert_eq!(c.data_tables[0].columns.len(), 2);

    let w = c.workflow("example_hello").expect("workflow");
    assert_eq!(w.object_type, ObjectType::Incident);
    assert_eq!(w.result_name(), "hello_result");
    assert_eq!(
        w.inputs.get("hello_text"),
        Some(&InputValue::From("incident.name".into()))
    );
    assert_eq!(
        w.inputs.get("hello_delay_ms"),
        Some(&InputValue::Static(json!(0)))
    );
    assert_eq!(
        w.inputs.get("hello_tags"),
        Some(&InputValue::Static(json!(["a", "c"])))
    );
    assert_eq!(
        w.post_processing[0],
        PostStep::SetIncidentField {
            field: "hello_last_echo".into(),
            from: "results.content.text".into()
        }
    );
    assert_eq!(
        c.workflow("example_hello_note").expect("wf").result_name(),
        "fn_hello_result"
    );

    let manual = c.rule("Example: Say hello").expect("rule");
    assert_eq!(manual.kind, RuleKind::Manual);
    assert_eq!(manual.logic, Logic::All);
    let auto = c.rule("Example: Hello on DoS").expect("rule");
    assert_eq!(auto.kind, RuleKind::Automatic);
    assert_eq!(auto.logic, Logic::Any);
    assert_eq!(auto.conditions[0].method, ConditionMethod::Contains);
    assert_eq!(auto.conditions[0].field.as_deref(), Some("incident.name"));
    assert_eq!(auto.conditions[0].value, Some(json!("DoS")));
    assert_eq!(auto.conditions[1].field, None);
    assert_eq!(auto.destinations, ["fn_hello"]);
}

#[test]
fn base_is_valid() {
    assert_eq!(problems(BASE), Vec::<String>::new());
}

#[test]
fn every_problem_is_reported_with_file_and_object() {
    let text = fixture("invalid.yaml");
    let c = parse("fn_bad/customize/fn_bad.yaml", &text).expect("parses");
    let Err(CustomizationError::Invalid(p)) = c.validate() else {
        panic!("expected problems");
    };
    let f = "fn_bad/customize/fn_bad.yaml";
    let expected = vec![
        format!(
            "{f}: message destination \"Bad-Dest\": name 'Bad-Dest' is not a valid programmatic name (lower-case letter, then lower-case letters, digits and '_')"
        ),
        format!("{f}: function \"fn_bad\": message destination 'nowhere' is not declared"),
        format!("{f}: function \"fn_bad\": input \"choice\": a select field needs values"),
        format!(
            "{f}: function \"fn_bad\": input \"count\": values are only allowed for select and multiselect fields, not number"
        ),
        format!("{f}: incident field \"severity_code\": is the name of a built-in incident field"),
        format!(
            "{f}: workflow \"wf_bad\": input 'choice': path 'task.name' must start with one of: incident, artifact, rule, workflow"
        ),
        format!(
            "{f}: workflow \"wf_bad\": input 'count': static value \"ten\" must be a number (the input is number)"
        ),
        format!(
            "{f}: workflow \"wf_bad\": input 'mode': static value \"C\" is not one of the values of the select input (A, B)"
        ),
        format!("{f}: workflow \"wf_bad\": input 'nope' is not an input of function 'fn_bad'"),
        format!(
            "{f}: workflow \"wf_bad\": post-processing step 1: incident field 'not_a_field' is neither declared in incident_fields nor a known built-in incident field"
        ),
        format!(
            "{f}: workflow \"wf_bad\": post-processing step 2: unclosed '{{' in the note template (write '{{{{' for a brace)"
        ),
        format!("{f}: workflow \"wf_missing_fn\": function 'fn_missing' is not declared"),
        format!("{f}: rule \"Bad rule\": workflow 'nope' is not declared"),
        format!(
            "{f}: rule \"Bad rule\": workflow 'wf_bad' runs on artifact but the rule runs on incident"
        ),
        format!("{f}: rule \"Bad rule\": message destination 'nowhere' is not declared"),
    ];
    assert_eq!(p, expected);
    // Display: one problem per line.
    let shown = CustomizationError::Invalid(p.clone()).to_string();
    assert_eq!(shown.lines().count(), expected.len());
}

#[test]
fn rule_naming_a_missing_workflow() {
    let text = BASE.replace(
        "workflows: [example_hello]",
        "workflows: [example_hello, nope]",
    );
    assert_eq!(
        problems(&text),
        [
            "fn_hello/customize/fn_hello.yaml: rule \"Example: Say hello\": workflow 'nope' is not declared"
        ]
    );
}

#[test]
fn workflow_input_not_in_function() {
    let text = BASE.replace(
        "      hello_text: {from: incident.name}",
        "      hello_text: {from: incident.name}\n      hello_other: {value: x}",
    );
    assert_eq!(
        problems(&text),
        [
            "fn_hello/customize/fn_hello.yaml: workflow \"example_hello\": input 'hello_other' is not an input of function 'fn_hello'"
        ]
    );
}

#[test]
fn bad_programmatic_names() {
    let text = BASE
        .replace(
            "  - name: fn_hello\n    destination",
            "  - name: Fn_Hello\n    destination",
        )
        .replace("{name: hello_count,", "{name: 2count,");
    let p = problems(&text);
    assert!(
        p.contains(&"fn_hello/customize/fn_hello.yaml: function \"Fn_Hello\": name 'Fn_Hello' is not a valid programmatic name (lower-case letter, then lower-case letters, digits and '_')".to_owned()),
        "{p:#?}"
    );
    assert!(
        p.contains(&"fn_hello/customize/fn_hello.yaml: function \"Fn_Hello\": input \"2count\": name '2count' is not a valid programmatic name (lower-case letter, then lower-case letters, digits and '_')".to_owned()),
        "{p:#?}"
    );
    // The workflow now names an undeclared function.
    assert!(
        p.contains(&"fn_hello/customize/fn_hello.yaml: workflow \"example_hello\": function 'fn_hello' is not declared".to_owned()),
        "{p:#?}"
    );
}

#[test]
fn names_too_long() {
    let long = "a".repeat(51);
    let text = BASE.replace("  - name: example_hello\n", &format!("  - name: {long}\n"));
    let text = text.replace(
        "workflows: [example_hello]",
        &format!("workflows: [{long}]"),
    );
    assert_eq!(
        problems(&text),
        [format!(
            "fn_hello/customize/fn_hello.yaml: workflow \"{long}\": name '{long}' is longer than 50 characters"
        )]
    );
    let ok = "a".repeat(50);
    let text = BASE.replace("  - name: example_hello\n", &format!("  - name: {ok}\n"));
    let text = text.replace("workflows: [example_hello]", &format!("workflows: [{ok}]"));
    assert_eq!(problems(&text), Vec::<String>::new());

    let label = "L".repeat(256);
    let text = BASE.replace(
        "{name: hello_text, type: text}",
        &format!("{{name: hello_text, type: text, label: {label}}}"),
    );
    assert_eq!(
        problems(&text),
        [
            "fn_hello/customize/fn_hello.yaml: function \"fn_hello\": input \"hello_text\": label is longer than 255 characters"
        ]
    );
}

#[test]
fn select_without_values_and_values_on_text() {
    let text = BASE
        .replace("values: [Plain, Shout]", "values: []")
        .replace(
            "{name: hello_text, type: text}",
            "{name: hello_text, type: text, values: [x]}",
        )
        .replace("values: [a, b]", "values: [a, a]");
    assert_eq!(
        problems(&text),
        [
            "fn_hello/customize/fn_hello.yaml: function \"fn_hello\": input \"hello_text\": values are only allowed for select and multiselect fields, not text",
            "fn_hello/customize/fn_hello.yaml: function \"fn_hello\": input \"hello_mode\": a select field needs values",
            "fn_hello/customize/fn_hello.yaml: function \"fn_hello\": input \"hello_tags\": value 'a' is listed twice",
        ]
    );
}

#[test]
fn static_values_must_match_the_field_type() {
    let inputs = "      hello_text: {value: 5}\n      hello_count: {value: 1.5}\n      hello_mode: {value: Shout}\n      hello_tags: {value: [a, z]}\n      hello_flag: {value: \"yes\"}\n      hello_when: {value: 1700000000000}";
    let text = BASE.replace("      hello_text: {from: incident.name}", inputs);
    let w = "fn_hello/customize/fn_hello.yaml: workflow \"example_hello\"";
    assert_eq!(
        problems(&text),
        [
            format!(
                "{w}: input 'hello_flag': static value \"yes\" must be true or false (the input is boolean)"
            ),
            format!(
                "{w}: input 'hello_tags': static value \"z\" is not one of the values of the multiselect input (a, b)"
            ),
            format!("{w}: input 'hello_text': static value 5 must be a string (the input is text)"),
        ]
    );
    let text = BASE.replace(
        "      hello_text: {from: incident.name}",
        "      hello_when: {value: yesterday}\n      hello_mode: {value: [Plain]}",
    );
    assert_eq!(
        problems(&text),
        [
            format!(
                "{w}: input 'hello_mode': static value [\"Plain\"] is not one of the values of the select input (Plain, Shout)"
            ),
            format!(
                "{w}: input 'hello_when': static value \"yesterday\" must be an integer (milliseconds since the epoch) (the input is datepicker)"
            ),
        ]
    );
}

#[test]
fn paths_need_a_valid_root() {
    let text = BASE.replace(
        "      hello_text: {from: incident.name}",
        "      hello_text: {from: artifact.value}\n      hello_count: {from: incident}\n      hello_mode: {from: rule.hello}\n      hello_flag: {from: results.x}\n      hello_when: {from: incident.2x}",
    );
    let w = "fn_hello/customize/fn_hello.yaml: workflow \"example_hello\"";
    assert_eq!(
        problems(&text),
        [
            format!("{w}: input 'hello_count': path 'incident' names no field of 'incident'"),
            format!(
                "{w}: input 'hello_flag': path 'results.x' must start with one of: incident, rule, workflow"
            ),
            format!(
                "{w}: input 'hello_mode': path 'rule.hello' must be rule.properties.<activity field>"
            ),
            format!(
                "{w}: input 'hello_text': path 'artifact.value' must start with one of: incident, rule, workflow"
            ),
            format!(
                "{w}: input 'hello_when': path 'incident.2x' is not a dotted path of identifiers (bad segment '2x')"
            ),
        ]
    );
}

#[test]
fn post_processing_checks() {
    let text = format!(
        "{BASE}incident_fields:\n  - {{name: hello_last, type: text}}\n"
    )
    .replace(
        "      hello_text: {from: incident.name}\n",
        "      hello_text: {from: incident.name}\n    post_processing:\n      - set_incident_field: {field: hello_last, from: results.content}\n      - set_incident_field: {field: plan_status, from: results.status}\n      - set_incident_field: {field: nothing_here, from: results.x}\n      - add_note: {text: \"{results.a} and {{literal}} and {bad path}\"}\n      - add_note: {text: \"stray } brace\"}\n",
    );
    let w = "fn_hello/customize/fn_hello.yaml: workflow \"example_hello\"";
    assert_eq!(
        problems(&text),
        [
            format!(
                "{w}: post-processing step 3: incident field 'nothing_here' is neither declared in incident_fields nor a known built-in incident field"
            ),
            format!(
                "{w}: post-processing step 4: path 'bad path' is not a dotted path of identifiers (bad segment 'bad path')"
            ),
            format!(
                "{w}: post-processing step 5: unmatched '}}' in the note template (write '}}}}' for a brace)"
            ),
        ]
    );
}

#[test]
fn rule_checks() {
    let text = format!(
        "{BASE}  - name: \" Padded\"\n    type: automatic\n    object_type: artifact\n    workflows: [example_hello, example_hello]\n    destinations: [fn_hello, nowhere]\n    fields:\n      - {{name: note, type: text}}\n    conditions:\n      - {{field: incident.name, method: contains}}\n      - {{method: changed}}\n      - {{field: artifact.value, method: has_a_value, value: x}}\n      - {{field: task.name, method: equals, value: x}}\n      - {{field: incident.severity_code, method: gt, value: high}}\n      - {{method: object_added}}\n      - {{field: artifact.properties.custom, method: not_equals, value: 1}}\n"
    );
    let r = "fn_hello/customize/fn_hello.yaml: rule \" Padded\"";
    assert_eq!(
        problems(&text),
        [
            format!("{r}: name starts or ends with white space"),
            format!("{r}: workflow 'example_hello' runs on incident but the rule runs on artifact"),
            format!("{r}: workflow 'example_hello' is listed twice"),
            format!("{r}: workflow 'example_hello' runs on incident but the rule runs on artifact"),
            format!("{r}: message destination 'nowhere' is not declared"),
            format!("{r}: only manual rules can have activity fields"),
            format!("{r}: condition 1: method contains needs a value"),
            format!("{r}: condition 2: method changed needs a field"),
            format!("{r}: condition 3: method has_a_value takes no value"),
            format!(
                "{r}: condition 4: field 'task.name' must be <object>.<field> or <object>.properties.<custom field>, <object> being artifact or incident"
            ),
            format!("{r}: condition 5: method gt needs a number"),
        ]
    );
}

#[test]
fn rule_properties_need_an_activity_field() {
    let text = BASE.replace(
        "{from: incident.name}",
        "{from: rule.properties.hello_note}",
    );
    assert_eq!(
        problems(&text),
        [
            "fn_hello/customize/fn_hello.yaml: rule \"Example: Say hello\": workflow 'example_hello' reads rule.properties.hello_note, but the rule has no field 'hello_note'"
        ]
    );
    let text = format!("{text}    fields:\n      - {{name: hello_note, type: text}}\n");
    assert_eq!(problems(&text), Vec::<String>::new());
}

#[test]
fn shared_function_inputs_must_agree_on_type() {
    let text = BASE.replace(
        "workflows:\n  - name: example_hello",
        "  - name: fn_other\n    destination: fn_hello\n    inputs:\n      - {name: hello_text, type: text}\n      - {name: hello_count, type: text}\nworkflows:\n  - name: example_hello",
    );
    assert_eq!(
        problems(&text),
        [
            "fn_hello/customize/fn_hello.yaml: function \"fn_other\": input 'hello_count' differs from the input of the same name of function \"fn_hello\" (fn_hello/customize/fn_hello.yaml); functions share inputs by name, so both must have the same type and values"
        ]
    );
    // Labels and tooltips may differ: the first declaration is exported.
    let relabelled = BASE.replace(
        "workflows:\n  - name: example_hello",
        "  - name: fn_other\n    destination: fn_hello\n    inputs:\n      - {name: hello_text, type: text, label: Other label, tooltip: other}\nworkflows:\n  - name: example_hello",
    );
    assert_eq!(problems(&relabelled), Vec::<String>::new());
}

#[test]
fn unknown_input_type_names_file_line_and_object() {
    let text = fixture("unknown_type.yaml");
    let err = parse(HELLO_FILE, &text).expect_err("must fail");
    let CustomizationError::Yaml {
        file,
        line,
        column,
        message,
    } = &err
    else {
        panic!("expected a YAML error, got {err}");
    };
    assert_eq!(file, HELLO_FILE);
    assert_eq!((*line, *column), (10, 15));
    assert_eq!(
        message,
        "function \"fn_hello\": input \"hello_size\": unknown input type 'textbox' (expected one of: text, textarea, number, boolean, select, multiselect, datepicker, datetimepicker)"
    );
    assert!(
        err.to_string()
            .starts_with("fn_hello/customize/fn_hello.yaml:10:15: function \"fn_hello\"")
    );
}

#[test]
fn yaml_syntax_error_names_file_and_line() {
    let text = fixture("syntax_error.yaml");
    let err = parse("fn_x/customize/broken.yaml", &text).expect_err("must fail");
    let CustomizationError::Yaml { file, line, .. } = &err else {
        panic!("expected a YAML error, got {err}");
    };
    assert_eq!(file, "fn_x/customize/broken.yaml");
    assert!((5..=6).contains(line), "line {line}");
    assert!(
        err.to_string()
            .starts_with(&format!("fn_x/customize/broken.yaml:{line}:")),
        "{err}"
    );
}

#[test]
fn unknown_keys_are_errors() {
    let err = parse(
        "a.yaml",
        "functions:\n  - name: fn_x\n    destination: fn_x\n    colour: blue\n",
    )
    .expect_err("must fail");
    assert_eq!(
        err.to_string(),
        "a.yaml:4:5: function \"fn_x\": unknown field `colour`, expected one of name, display_name, description, destination, inputs"
    );
    let err = parse("a.yaml", "functoins: []\n").expect_err("must fail");
    assert!(
        err.to_string()
            .starts_with("a.yaml:1:1: unknown field `functoins`"),
        "{err}"
    );
    let err = parse(
        "a.yaml",
        "workflows:\n  - name: w\n    object_type: incident\n    function: f\n    inputs:\n      a: {valeu: 1}\n",
    )
    .expect_err("must fail");
    assert!(
        err.to_string()
            .starts_with("a.yaml:6:11: workflow \"w\": unknown variant `valeu`"),
        "{err}"
    );
}

#[test]
fn empty_files_declare_nothing() {
    for text in ["", "\n", "# only a comment\n", "---\n"] {
        let c = parse("empty.yaml", text).expect("empty is fine");
        assert!(c.is_empty());
    }
    let c = parse("empty.yaml", "functions: []\n").expect("empty lists");
    assert!(c.is_empty());
}

#[test]
fn required_accepts_always_true_false() {
    let c = parse(
        "r.yaml",
        "incident_fields:\n  - {name: a, type: text, required: always}\n  - {name: b, type: text, required: false}\n  - {name: c, type: text, required: true}\n  - {name: d, type: text}\n",
    )
    .expect("parses");
    let r: Vec<bool> = c.incident_fields.iter().map(|f| f.required).collect();
    assert_eq!(r, [true, false, true, false]);
    let err = parse(
        "r.yaml",
        "incident_fields:\n  - {name: a, type: text, required: sometimes}\n",
    )
    .expect_err("must fail");
    assert!(err.to_string().contains("incident field \"a\""), "{err}");
}

#[test]
fn merge_in_order_and_duplicates_name_both_files() {
    let a = "message_destinations:\n  - name: fn_a\n";
    let b = "message_destinations:\n  - name: fn_b\n";
    let c = Customizations::parse(&[
        Source {
            file: "fn_a/customize/a.yaml",
            text: a,
        },
        Source {
            file: "fn_b/customize/b.yaml",
            text: b,
        },
    ])
    .expect("merges");
    let names: Vec<(&str, &str)> = c
        .message_destinations
        .iter()
        .map(|m| (m.name.as_str(), m.file.as_str()))
        .collect();
    assert_eq!(
        names,
        [
            ("fn_a", "fn_a/customize/a.yaml"),
            ("fn_b", "fn_b/customize/b.yaml")
        ]
    );

    let err = Customizations::parse(&[
        Source {
            file: "fn_a/customize/a.yaml",
            text: a,
        },
        Source {
            file: "fn_c/customize/c.yaml",
            text: a,
        },
    ])
    .expect_err("duplicate");
    let CustomizationError::Duplicate {
        kind,
        name,
        first_file,
        second_file,
    } = &err
    else {
        panic!("expected a duplicate, got {err}");
    };
    assert_eq!(*kind, "message destination");
    assert_eq!(name, "fn_a");
    assert_eq!(first_file, "fn_a/customize/a.yaml");
    assert_eq!(second_file, "fn_c/customize/c.yaml");
    assert_eq!(
        err.to_string(),
        "fn_c/customize/c.yaml: message destination \"fn_a\" is already declared in fn_a/customize/a.yaml"
    );

    // Same kind only: a function and a destination may share a name.
    let ok =
        "message_destinations:\n  - name: fn_a\nfunctions:\n  - {name: fn_a, destination: fn_a}\n";
    parse("x.yaml", ok).expect("different kinds");

    // Duplicates within one file, and through merge().
    let twice = "rules:\n  - {name: R, type: manual, object_type: incident}\n  - {name: R, type: manual, object_type: incident}\n";
    assert!(matches!(
        parse("r.yaml", twice),
        Err(CustomizationError::Duplicate { kind: "rule", .. })
    ));
    let one = parse("1.yaml", a).expect("ok");
    let two = parse("2.yaml", a).expect("ok");
    assert!(matches!(
        Customizations::merge([one.clone(), two]),
        Err(CustomizationError::Duplicate { .. })
    ));

    // validate() reports duplicates too (objects built by hand).
    let mut both = one.clone();
    let mut again = one.message_destinations[0].clone();
    again.file = "2.yaml".into();
    both.message_destinations.push(again);
    let Err(CustomizationError::Invalid(p)) = both.validate() else {
        panic!("expected problems");
    };
    assert_eq!(
        p,
        ["2.yaml: message destination \"fn_a\": is declared twice (first in 1.yaml)"]
    );
}
