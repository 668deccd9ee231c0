//! Message target: a STOMP message's destination, `Co3MessagePayload` header and JSON body
//! through the engine's [`Dispatcher`], as the runtime hands a delivery to it, with the linked
//! components (fn_hello, fn_slack, fn_trustar) and one component of typed extractors.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};
use soar_engine::LoadedComponent;
use soar_engine::config::{AppConfig, SecretResolver};
use soar_engine::dispatch::{DispatchOptions, Dispatcher, Outcome};
use soar_engine::rules::RuleDirectory;
use soar_sdk::context::StatusSink;
use soar_sdk::platform::BoxFuture;
use soar_sdk::{
    Artifact, Component, Context, FunctionError, FunctionResult, Incident, Inputs, Note, Reply,
    Task,
};

/// The destination when the input has no header lines.
const DEFAULT_DESTINATION: &str = "/queue/actions.201.fuzz";

/// The message destination of the extractor component, and its rule.
const FUZZ_QUEUE: &str = "fuzz";
const FUZZ_RULE: &str = "Fuzz: every object";

/// A dispatch that takes longer than this is a hang (no handler here waits for anything).
const DISPATCH_LIMIT: Duration = Duration::from_secs(5);

/// `message_json`: `data` is `destination\npayload-type\nbody`. The destination is as in the
/// STOMP `destination` header (`/queue/actions.201.fn_hello`; a leading `!` marks the delivery
/// as a redelivery); the payload type is the `Co3MessagePayload` header (`-` or empty: none).
/// Input without two newlines is all body, on `/queue/actions.201.fuzz`.
///
/// The dispatcher must answer within [`DISPATCH_LIMIT`] without panicking (a handler's panic
/// that it catches counts as a bug too: libFuzzer aborts on every panic), and every reply and
/// status message must serialise to JSON.
pub fn message_json(data: &[u8]) {
    let (destination, payload_type, body) = split(data);
    let (rerun, destination) = match destination.strip_prefix('!') {
        Some(d) => (true, d),
        None => (false, destination.as_ref()),
    };
    let payload_type = payload_type
        .as_deref()
        .map(str::trim)
        .filter(|p| !p.is_empty() && *p != "-");
    let dispatcher = dispatcher();
    let status: Arc<dyn StatusSink> = Arc::new(CheckedStatus);
    let outcome = crate::runtime().block_on(async {
        tokio::time::timeout(
            DISPATCH_LIMIT,
            dispatcher.dispatch("ID:fuzz-1", rerun, destination, payload_type, body, status),
        )
        .await
        .unwrap_or_else(|_| panic!("dispatch took longer than {DISPATCH_LIMIT:?}"))
    });
    if let Outcome::Reply(reply) = outcome {
        check_reply(&reply, true);
    }
}

/// Destination, payload type and body of an input.
fn split(
    data: &[u8],
) -> (
    std::borrow::Cow<'_, str>,
    Option<std::borrow::Cow<'_, str>>,
    &[u8],
) {
    let mut lines = data.splitn(3, |&b| b == b'\n');
    match (lines.next(), lines.next(), lines.next()) {
        (Some(d), Some(p), Some(body)) => (
            String::from_utf8_lossy(d),
            Some(String::from_utf8_lossy(p)),
            body,
        ),
        _ => (DEFAULT_DESTINATION.into(), None, data),
    }
}

fn check_reply(reply: &Reply, complete: bool) {
    let text = reply.to_json();
    let back: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("a reply is not JSON ({e}): {text}"));
    assert_eq!(back["complete"], json!(complete), "reply: {text}");
    assert!(reply.message_type <= 1, "reply: {text}");
}

/// Checks each status message as it is sent.
struct CheckedStatus;

impl StatusSink for CheckedStatus {
    fn send_status(&self, reply: Reply) -> BoxFuture<'_, ()> {
        check_reply(&reply, false);
        Box::pin(async {})
    }
}

/// The dispatcher, built once per process: the linked components loaded from a small
/// app.config (fn_hello may not sleep), the extractor component, and the names of their rules.
fn dispatcher() -> &'static Dispatcher {
    static DISPATCHER: OnceLock<Dispatcher> = OnceLock::new();
    DISPATCHER.get_or_init(|| {
        let cfg = AppConfig::parse_with(
            "[resilient]\nhost = soar.example.com\n\n[fn_hello]\nmax_delay_ms = 0\n",
            std::path::Path::new("/fuzz/app.config"),
            &SecretResolver::isolated(),
        )
        .expect("the fuzz app.config parses");
        // In this order, so that rule ids are the same in every process.
        let mut components: Vec<LoadedComponent> = ["fn_hello", "fn_slack", "fn_trustar"]
            .into_iter()
            .flat_map(|name| {
                soar_engine::load::select(&[name.to_string()])
                    .unwrap_or_else(|e| panic!("{name} is not linked: {e}"))
            })
            .map(|r| soar_engine::load_component(r, &cfg).expect("a linked component loads"))
            .collect();
        components.push(LoadedComponent {
            name: "fuzz_extractors".into(),
            version: "0.0.0".into(),
            component: extractors(),
            definitions: None,
        });
        let mut rules = HashMap::new();
        let mut id = 1;
        for loaded in &components {
            for rule in loaded.component.rules() {
                rules.insert(id, rule.rule.clone());
                id += 1;
            }
        }
        let directory = RuleDirectory::new(None);
        directory.set(rules);
        Dispatcher::new(
            &components,
            None,
            Arc::new(directory),
            DispatchOptions {
                trap_exception: false,
                host: "fuzz-host".into(),
                monitor: Default::default(),
            },
        )
        .expect("no function is served twice")
    })
}

/// Typed inputs of the kinds a handler may declare (the SDK's schema tracer refuses `Value`).
#[derive(Debug, Deserialize)]
struct TypedInputs {
    text: Option<String>,
    number: Option<i64>,
    unsigned: Option<u32>,
    ratio: Option<f64>,
    flag: Option<bool>,
    items: Option<Vec<String>>,
    incident_id: Option<i64>,
}

/// A component whose handlers only extract and echo: typed inputs, untyped inputs, and every
/// rule object (rule messages with ids 1.. name the rules of all components in load order).
fn extractors() -> Component {
    Component::new()
        .function("fuzz_typed", typed)
        .function("fuzz_untyped", untyped)
        .rule(FUZZ_QUEUE, FUZZ_RULE, objects)
        .rule(FUZZ_QUEUE, "Fuzz: optional objects", optional_objects)
}

async fn typed(ctx: Context, inputs: TypedInputs) -> Result<FunctionResult, FunctionError> {
    ctx.status(format!("typed: {:?}", inputs.text)).await;
    Ok(FunctionResult::new(json!({
        "text": inputs.text,
        "number": inputs.number,
        "unsigned": inputs.unsigned,
        "ratio": inputs.ratio,
        "flag": inputs.flag,
        "items": inputs.items,
        "incident_id": inputs.incident_id,
        "message_incident": ctx.message().incident_id(),
        "workflow": ctx.message().workflow_instance_id(),
    })))
}

async fn untyped(ctx: Context, inputs: Inputs) -> Result<FunctionResult, FunctionError> {
    let text = inputs.str("text")?.map(str::to_string);
    let flag = inputs.bool("flag")?;
    let number = inputs.i64("number")?;
    let items = inputs.list("items")?;
    let required = inputs.required_str("required")?.to_string();
    let message = ctx.message();
    Ok(FunctionResult::new(json!({
        "text": text, "flag": flag, "number": number, "items": items, "required": required,
        "principal": message.principal(), "properties": message.properties(),
        "operation": message.operation_type(), "raw": inputs.raw().len(),
    })))
}

async fn objects(
    incident: Incident,
    artifact: Artifact,
    note: Note,
    task: Task,
) -> Result<String, FunctionError> {
    Ok(format!(
        "{} {} {} {} {:?}",
        incident.id,
        artifact.json(),
        note.json(),
        task.json(),
        incident.field("name")
    ))
}

async fn optional_objects(
    ctx: Context,
    incident: Option<Incident>,
    artifact: Option<Artifact>,
    note: Option<Note>,
    task: Option<Task>,
) -> Result<Option<String>, FunctionError> {
    let _ = ctx.message().object("milestone");
    Ok(Some(format!(
        "{:?} {:?} {:?} {:?}",
        incident, artifact, note, task
    )))
}
