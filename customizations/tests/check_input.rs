//! `check_input`: which handler value kinds fit which declared input types.

use soar_customizations::{FieldDef, FunctionDef, InputType, ValueKind, check_input};

fn function() -> FunctionDef {
    FunctionDef {
        name: "fn_all".into(),
        display_name: None,
        description: None,
        destination: "fn_all".into(),
        inputs: InputType::ALL
            .iter()
            .map(|t| FieldDef {
                name: format!("in_{t}"),
                input_type: *t,
                label: None,
                tooltip: None,
                placeholder: None,
                required: false,
                values: if t.has_values() {
                    vec!["A".into()]
                } else {
                    Vec::new()
                },
                file: String::new(),
            })
            .collect(),
        file: String::new(),
    }
}

#[test]
fn compatibility_table() {
    use ValueKind::{Any, Bool, Float, Integer, List, Text};
    let kinds = [Text, Integer, Float, Bool, List, Any];
    //                      Text   Integer Float  Bool   List   Any
    let table: [(InputType, [bool; 6]); 8] = [
        (InputType::Text, [true, false, false, false, false, true]),
        (
            InputType::Textarea,
            [true, false, false, false, false, true],
        ),
        (InputType::Number, [false, true, true, false, false, true]),
        (InputType::Boolean, [false, false, false, true, false, true]),
        (InputType::Select, [true, false, false, false, false, true]),
        (
            InputType::Multiselect,
            [false, false, false, false, true, true],
        ),
        (
            InputType::Datepicker,
            [false, true, false, false, false, true],
        ),
        (
            InputType::Datetimepicker,
            [false, true, false, false, false, true],
        ),
    ];
    let f = function();
    for (t, expected) in table {
        for (kind, ok) in kinds.iter().zip(expected) {
            let result = check_input(&f, &format!("in_{t}"), *kind);
            assert_eq!(result.is_ok(), ok, "{t} read as {kind:?}: {result:?}");
        }
    }
}

#[test]
fn messages() {
    let f = function();
    assert_eq!(
        check_input(&f, "in_number", ValueKind::Text),
        Err("function \"fn_all\": input 'in_number' is declared as number; it cannot be read as text".into())
    );
    assert_eq!(
        check_input(&f, "missing", ValueKind::Any),
        Err("function \"fn_all\" has no input 'missing'".into())
    );
}
