//! `fn_hello`: the smallest useful function crate, to copy when writing a new integration.
//!
//! It serves one function, `fn_hello`, which echoes its inputs back, optionally after a simulated
//! delay (`hello_delay_ms`, capped by `max_delay_ms` in its `[fn_hello]` section), and fails on
//! request (`hello_fail`) so that tests and the demo can show an error reply. The tests, the demo
//! and the benchmark use it.
//!
//! A function crate needs four things: handlers (plain async functions), its platform objects in
//! YAML (`customize/*.yaml`: message destination, function and inputs, rules, workflows), a
//! `build` function that validates its app.config section and wires the handlers, and one
//! `register_component!`.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;
use soar_sdk::config::{AppConfig, ConfigError};
use soar_sdk::{Component, ComponentRegistration, Context, FunctionError, FunctionResult};

/// The component's name and its app.config section.
pub const NAME: &str = "fn_hello";

/// The section `host config -c` writes for this crate.
pub const DEFAULT_CONFIG: &str = "\
[fn_hello]
# Longest delay (milliseconds) a caller may ask for with the input hello_delay_ms.
max_delay_ms = 60000
";

soar_sdk::register_component!(ComponentRegistration {
    name: NAME,
    version: env!("CARGO_PKG_VERSION"),
    description: "Echoes its inputs (example and test function)",
    section: Some(NAME),
    default_config: DEFAULT_CONFIG,
    build,
    customizations: soar_sdk::embed_customizations!("customize/fn_hello.yaml"),
});

/// The inputs of `fn_hello`, as declared in `customize/fn_hello.yaml`. Validation checks each
/// field against that declaration (name and type).
#[derive(Debug, Deserialize, Serialize)]
pub struct HelloInputs {
    pub hello_text: Option<String>,
    pub hello_delay_ms: Option<i64>,
    pub hello_fail: Option<bool>,
    pub incident_id: Option<i64>,
}

/// Validates `[fn_hello]` and builds the component.
pub fn build(config: &AppConfig) -> Result<Component, ConfigError> {
    let max_delay_ms = match config.section(NAME) {
        Some(section) => section.parse::<u64>("max_delay_ms")?.unwrap_or(60_000),
        None => 60_000,
    };
    Ok(Component::new()
        .typed_function(NAME, move |ctx, inputs| hello(ctx, inputs, max_delay_ms))
        .example(
            NAME,
            json!({"hello_text": "Hello from the demo", "incident_id": 2095}),
        )
        .example(
            NAME,
            json!({"hello_text": "Slow hello", "hello_delay_ms": 250}),
        )
        .example(
            NAME,
            json!({"hello_text": "A failing call", "hello_fail": true}),
        )
        .rule(NAME, NOTE_RULE, greet_note)
        .demo_rule("Example: Say hello")
        .selftest(HelloSelftest))
}

/// The automatic rule whose messages [`greet_note`] handles.
pub const NOTE_RULE: &str = "Example: Note mentions hello";

/// Handles the rule message of "Example: Note mentions hello": its answer is the status the
/// platform shows in the incident's action status.
async fn greet_note(ctx: Context) -> Result<Option<String>, FunctionError> {
    let message = ctx.message();
    let note = message
        .object("note")
        .ok_or_else(|| FunctionError::msg("the rule message carries no note"))?;
    let text = match note.get("text") {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(t) => t["content"].as_str().unwrap_or_default().to_string(),
        None => String::new(),
    };
    Ok(Some(format!(
        "fn_hello saw note {} on incident {}: {text}",
        note["id"],
        message.incident_id().unwrap_or_default()
    )))
}

/// The selftest: `fn_hello` has no outside service, so a valid section is all it needs.
struct HelloSelftest;

#[async_trait::async_trait]
impl soar_sdk::Selftest for HelloSelftest {
    async fn selftest(
        &self,
        _rest: Option<&soar_sdk::rest::RestClient>,
    ) -> soar_sdk::SelftestReport {
        soar_sdk::SelftestReport::success()
    }
}

/// Echoes the inputs: `hello_text` (text), `hello_delay_ms` (number), `hello_fail` (boolean).
async fn hello(
    ctx: Context,
    inputs: HelloInputs,
    max_delay_ms: u64,
) -> Result<FunctionResult, FunctionError> {
    let text = inputs.hello_text.clone().unwrap_or_default();
    let delay_ms = inputs.hello_delay_ms.unwrap_or(0);
    if delay_ms < 0 || delay_ms as u64 > max_delay_ms {
        return Err(FunctionError::invalid_input(
            "hello_delay_ms",
            format!(
                "must be between 0 and {max_delay_ms} (max_delay_ms in [fn_hello]), got {delay_ms}"
            ),
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
    #[test]
    fn customizations_validate_against_the_handler() {
        soar_sdk::testkit::validate_registered(super::NAME).unwrap();
    }
}
