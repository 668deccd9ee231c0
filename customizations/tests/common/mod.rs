//! Helpers shared by the integration tests.
#![allow(dead_code)]

use soar_customizations::{CustomizationError, Customizations, Source};

/// The file name the fixtures are parsed under (as a function crate would name them).
pub const HELLO_FILE: &str = "fn_hello/customize/fn_hello.yaml";

/// The text of a fixture under `tests/fixtures/`.
pub fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The full example (`fn_hello.yaml`), parsed and validated.
pub fn hello() -> Customizations {
    let text = fixture("fn_hello.yaml");
    let c = Customizations::parse(&[Source {
        file: HELLO_FILE,
        text: &text,
    }])
    .unwrap_or_else(|e| panic!("{e}"));
    c.validate().unwrap_or_else(|e| panic!("{e}"));
    c
}

/// Parses one YAML text under `file`.
pub fn parse(file: &str, text: &str) -> Result<Customizations, CustomizationError> {
    Customizations::parse(&[Source { file, text }])
}

/// The validation problems of one YAML text (which must parse).
pub fn problems(text: &str) -> Vec<String> {
    let c = parse(HELLO_FILE, text).unwrap_or_else(|e| panic!("parse: {e}"));
    match c.validate() {
        Ok(()) => Vec::new(),
        Err(CustomizationError::Invalid(p)) => p,
        Err(other) => panic!("unexpected error {other}"),
    }
}

/// A valid base: one destination, one function with typed inputs, one workflow
/// and one manual rule. Tests append or replace pieces of it.
pub const BASE: &str = r#"
message_destinations:
  - name: fn_hello
functions:
  - name: fn_hello
    destination: fn_hello
    inputs:
      - {name: hello_text, type: text}
      - {name: hello_count, type: number}
      - {name: hello_mode, type: select, values: [Plain, Shout]}
      - {name: hello_tags, type: multiselect, values: [a, b]}
      - {name: hello_flag, type: boolean}
      - {name: hello_when, type: datepicker}
workflows:
  - name: example_hello
    object_type: incident
    function: fn_hello
    inputs:
      hello_text: {from: incident.name}
rules:
  - name: "Example: Say hello"
    type: manual
    object_type: incident
    workflows: [example_hello]
"#;
