//! `fn_hello`: the smallest useful function crate, to copy when writing a new integration.
//!
//! It serves one function, `fn_hello`, which echoes its inputs back, optionally after a simulated
//! delay (`hello_delay_ms`, capped by `max_delay_ms` in its `[fn_hello]` section), and fails on
//! request (`hello_fail`) so that tests and the demo can show an error reply; and a rule handler
//! for notes that mention "hello". The tests, the demo and the benchmark use it.
//!
//! A function crate needs: its section as a typed struct, handlers as plain async functions,
//! its platform objects in YAML (`customize/*.yaml`), a `build` that wires the handlers, and one
//! `register_component!`. Its tests (below) show both kinds: a unit test with the SDK's fake
//! context, and (in `tests/`) one through the real engine and the simulated platform.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;
use soar_sdk::prelude::*;

/// The component's name and its app.config section.
pub const NAME: &str = "fn_hello";

/// The automatic rule whose messages [`greet_note`] handles.
pub const NOTE_RULE: &str = "Example: Note mentions hello";

soar_sdk::register_component! {
    name: NAME,
    description: "Echoes its inputs (example and test function)",
    config: HelloConfig,
    build: build,
    customizations: ["customize/fn_hello.yaml"],
}

/// Settings of fn_hello, the example function.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
pub struct HelloConfig {
    /// Longest delay (milliseconds) a caller may ask for with the input hello_delay_ms.
    #[serde(default = "default_max_delay_ms")]
    pub max_delay_ms: u64,
}

fn default_max_delay_ms() -> u64 {
    60_000
}

impl Section for HelloConfig {
    const NAME: &'static str = NAME;
}

/// The inputs of `fn_hello`, as declared in `customize/fn_hello.yaml`. Validation checks each
/// field against that declaration (name and type).
#[derive(Debug, Deserialize, Serialize)]
pub struct HelloInputs {
    pub hello_text: Option<String>,
    pub hello_delay_ms: Option<i64>,
    pub hello_fail: Option<bool>,
    pub incident_id: Option<i64>,
}

/// Wires the handlers; they share the section as state.
pub fn build(config: HelloConfig, _: &Setup) -> Result<Component<Arc<HelloConfig>>, ConfigError> {
    let demo = |inputs| DemoStep::Invoke {
        function: NAME.into(),
        inputs,
    };
    Ok(Component::with_state(Arc::new(config))
        .function(NAME, hello)
        .rule(NAME, NOTE_RULE, greet_note)
        .selftest(|| async { SelftestReport::success() })
        .demo(DemoStep::ManualRule("Example: Say hello".into()))
        .demo(demo(
            json!({"hello_text": "Hello from the demo", "incident_id": 2095}),
        ))
        .demo(demo(
            json!({"hello_text": "Slow hello", "hello_delay_ms": 250}),
        ))
        .demo(demo(
            json!({"hello_text": "A failing call", "hello_fail": true}),
        )))
}

/// Answers the rule message of "Example: Note mentions hello": the text is the status the
/// platform shows in the incident's action status.
async fn greet_note(incident: Incident, note: Note) -> Result<String, FunctionError> {
    Ok(format!(
        "fn_hello saw note {} on incident {}: {}",
        note.id, incident.id, note.text
    ))
}

/// Echoes the inputs: `hello_text` (text), `hello_delay_ms` (number), `hello_fail` (boolean).
async fn hello(
    State(config): State<Arc<HelloConfig>>,
    ctx: Context,
    inputs: HelloInputs,
) -> Result<FunctionResult, FunctionError> {
    let text = inputs.hello_text.clone().unwrap_or_default();
    let delay_ms = inputs.hello_delay_ms.unwrap_or(0);
    let max = config.max_delay_ms;
    if delay_ms < 0 || delay_ms as u64 > max {
        return Err(FunctionError::invalid_input(
            "hello_delay_ms",
            format!("must be between 0 and {max} (max_delay_ms in [fn_hello]), got {delay_ms}"),
        ));
    }
    ctx.status(format!("fn_hello: echoing '{text}'")).await;
    if delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(delay_ms as u64)).await;
    }
    if inputs.hello_fail == Some(true) {
        return Err(FunctionError::msg(format!(
            "fn_hello was asked to fail (hello_fail is true) for '{text}'; set hello_fail to false to get an echo"
        )));
    }
    ctx.status("fn_hello: done").await;
    Ok(FunctionResult::new(json!({
        "text": text,
        "echo": inputs,
        "incident_id": ctx.message().incident_id(),
    })))
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use soar_sdk::config::ConfigSource;
    use soar_sdk::testkit::{TestKit, validate_registered};

    #[test]
    fn customizations_validate_against_the_handlers() {
        validate_registered(super::NAME).unwrap();
    }

    #[tokio::test]
    async fn echoes_with_status_messages() {
        let kit = TestKit::new(super::NAME).unwrap();
        let call = kit.call("fn_hello", json!({"hello_text": "hi"})).await;
        assert_eq!(call.result.unwrap().content()["text"], "hi");
        assert_eq!(call.statuses, ["fn_hello: echoing 'hi'", "fn_hello: done"]);
    }

    #[tokio::test]
    async fn a_delay_beyond_the_configured_maximum_is_refused() {
        let config =
            ConfigSource::new("app.config").with_section("fn_hello", [("max_delay_ms", "10")]);
        let kit = TestKit::with_config(super::NAME, config).unwrap();
        let call = kit.call("fn_hello", json!({"hello_delay_ms": 11})).await;
        let err = call.result.unwrap_err().to_string();
        assert!(
            err.contains("between 0 and 10 (max_delay_ms in [fn_hello])"),
            "{err}"
        );
        assert!(call.statuses.is_empty());
    }

    #[tokio::test]
    async fn the_note_rule_answers_with_the_note() {
        let kit = TestKit::new(super::NAME).unwrap();
        let body = json!({"incident": {"id": 7, "name": "x"}, "note": {"id": 3, "text": {"format": "html", "content": "<p>hello</p>"}}});
        let call = kit.rule(super::NOTE_RULE, body).await;
        assert_eq!(
            call.result.unwrap().as_deref(),
            Some("fn_hello saw note 3 on incident 7: <p>hello</p>")
        );
        assert_eq!(kit.selftest().await, soar_sdk::SelftestReport::success());
    }
}
