//! The dispatcher: a decoded message in, status messages and one final reply out.
//!
//! It knows nothing about sockets or STOMP; the [`runtime`](crate::runtime) feeds it deliveries
//! and turns its replies into frames.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Instant;

use futures::FutureExt;
use serde_json::Value;
use soar_sdk::component::{FunctionRoute, RuleRoute};
use soar_sdk::context::StatusSink;
use soar_sdk::message::{MessageKind, rule_key};
use soar_sdk::result::ResultSource;
use soar_sdk::{Context, FunctionError, Inputs, Message, Reply, Rest};
use tracing::Instrument;

use crate::load::LoadedComponent;
use crate::monitor::{InFlight, Monitor};
use crate::rules::RuleDirectory;

/// Settings of the dispatcher taken from `[resilient]`.
#[derive(Debug, Clone)]
pub struct DispatchOptions {
    /// `trap_exception`: an error becomes a success reply carrying `{"success": false, "reason": ...}`.
    pub trap_exception: bool,
    /// The host name reported in result metrics.
    pub host: String,
    /// Where invocations are counted and listed while they run.
    pub monitor: Monitor,
}

impl Default for DispatchOptions {
    fn default() -> Self {
        DispatchOptions {
            trap_exception: false,
            host: gethostname::gethostname().to_string_lossy().into_owned(),
            monitor: Monitor::default(),
        }
    }
}

/// What the engine must do with a delivery once it has been handled.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Send this final reply, then acknowledge the message.
    Reply(Reply),
    /// Acknowledge only (inbound destinations expect no reply).
    AckOnly,
}

/// Two components claim the same function.
#[derive(Debug, thiserror::Error)]
#[error("function '{function}' is registered by both {first} and {second}")]
pub struct DuplicateFunction {
    pub function: String,
    pub first: String,
    pub second: String,
}

#[derive(Clone)]
struct Meta {
    name: String,
    version: String,
}

/// Routes messages to handlers by function name or by rule name.
pub struct Dispatcher {
    functions: HashMap<String, (FunctionRoute, Meta)>,
    rules: HashMap<(String, String), RuleRoute>,
    component_names: Vec<String>,
    rule_names: Arc<RuleDirectory>,
    rest: Option<Rest>,
    options: DispatchOptions,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher")
            .field("functions", &self.functions.keys().collect::<Vec<_>>())
            .field("rules", &self.rules.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Dispatcher {
    /// A dispatcher for `components`; rule messages are routed by the names `rule_names` knows.
    pub fn new(
        components: &[LoadedComponent],
        rest: Option<Rest>,
        rule_names: Arc<RuleDirectory>,
        options: DispatchOptions,
    ) -> Result<Self, DuplicateFunction> {
        let mut functions: HashMap<String, (FunctionRoute, Meta)> = HashMap::new();
        let mut rules = HashMap::new();
        for loaded in components {
            let meta = Meta {
                name: loaded.name.clone(),
                version: loaded.version.clone(),
            };
            for f in loaded.component.functions() {
                if let Some((_, first)) = functions.get(&f.name) {
                    return Err(DuplicateFunction {
                        function: f.name.clone(),
                        first: first.name.clone(),
                        second: loaded.name.clone(),
                    });
                }
                functions.insert(f.name.clone(), (f.clone(), meta.clone()));
            }
            for r in loaded.component.rules() {
                rules.insert((r.destination.clone(), rule_key(&r.rule)), r.clone());
            }
        }
        Ok(Dispatcher {
            functions,
            rules,
            component_names: components.iter().map(|c| c.name.clone()).collect(),
            rule_names,
            rest,
            options,
        })
    }

    /// Names of the functions this host serves, sorted.
    pub fn function_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.functions.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }

    /// Message destinations that rule handlers listen on, sorted and deduplicated.
    pub fn rule_destinations(&self) -> Vec<String> {
        let mut d: Vec<String> = self.rules.keys().map(|(d, _)| d.clone()).collect();
        d.sort();
        d.dedup();
        d
    }

    /// Handles one delivery (`key`: its message id; `may_have_run`: an earlier run of it may
    /// have started, see [`Context::may_have_run`]). Never panics: a panicking handler becomes
    /// an error reply.
    ///
    /// Everything logged while it runs carries the message id, and once known the incident,
    /// the workflow instance and the function or rule; the last line says the outcome.
    pub async fn dispatch(
        &self,
        key: &str,
        may_have_run: bool,
        destination: &str,
        payload_type: Option<&str>,
        body: &[u8],
        status: Arc<dyn StatusSink>,
    ) -> Outcome {
        let span = tracing::info_span!(
            "message",
            id = key,
            incident = tracing::field::Empty,
            workflow = tracing::field::Empty,
            function = tracing::field::Empty,
            rule = tracing::field::Empty,
        );
        let started = Instant::now();
        let flight = self.options.monitor.begin(key);
        let outcome = self
            .dispatch_in_span(
                &flight,
                key,
                may_have_run,
                destination,
                payload_type,
                body,
                status,
            )
            .instrument(span.clone())
            .await;
        let ms = started.elapsed().as_millis() as u64;
        let _entered = span.enter();
        let word = match &outcome {
            Outcome::Reply(reply) if reply.message_type == 1 => "error",
            Outcome::Reply(_) => "completed",
            Outcome::AckOnly => "acknowledged",
        };
        if word == "error" {
            tracing::warn!(outcome = word, ms, "finished");
        } else {
            tracing::info!(outcome = word, ms, "finished");
        }
        flight.finish(word);
        outcome
    }

    #[allow(clippy::too_many_arguments)]
    async fn dispatch_in_span(
        &self,
        flight: &InFlight,
        key: &str,
        may_have_run: bool,
        destination: &str,
        payload_type: Option<&str>,
        body: &[u8],
        status: Arc<dyn StatusSink>,
    ) -> Outcome {
        let json: Value = match parse_body(body).await {
            Ok(v) => v,
            Err(e) => {
                tracing::error!(
                    destination,
                    "rejected a message whose body is not JSON: {e}"
                );
                return Outcome::Reply(Reply::error(format!(
                    "The message body is not valid UTF-8 JSON ({e}); this host cannot run it."
                )));
            }
        };
        let message = Message::new(destination, payload_type, json);
        let span = tracing::Span::current();
        if let Some(id) = message.incident_id() {
            span.record("incident", id);
        }
        if let Some(id) = message.workflow_instance_id() {
            span.record("workflow", id);
        }
        flight.describe(None, message.incident_id());
        match message.kind().clone() {
            MessageKind::Function(name) => {
                flight.describe(Some(&name), None);
                Outcome::Reply(
                    self.run_function(key, may_have_run, &name, message, status)
                        .await,
                )
            }
            MessageKind::Rule => Outcome::Reply(
                self.run_rule(flight, key, may_have_run, message, status)
                    .await,
            ),
            MessageKind::Inbound => {
                tracing::warn!(
                    destination,
                    "inbound destination messages have no handler here; acknowledged"
                );
                Outcome::AckOnly
            }
            MessageKind::Unsupported(kind) => Outcome::Reply(Reply::error(format!(
                "This host does not serve {kind} messages (low-code connectors and connector \
                 subscriptions are not supported)."
            ))),
        }
    }

    async fn run_function(
        &self,
        key: &str,
        may_have_run: bool,
        name: &str,
        message: Message,
        status: Arc<dyn StatusSink>,
    ) -> Reply {
        tracing::Span::current().record("function", name);
        let Some((route, meta)) = self.functions.get(name) else {
            let served = if self.component_names.is_empty() {
                "none".to_string()
            } else {
                self.component_names.join(", ")
            };
            let what = if name.is_empty() {
                "a function message without a function name".to_string()
            } else {
                format!("function '{name}'")
            };
            tracing::error!("no handler for {what}");
            return Reply::error(format!(
                "This host has no handler for {what}. Components enabled here: {served}. \
                 Enable the crate that provides it (a cargo feature of the host) or move the \
                 function to the message destination of a host that runs it."
            ));
        };
        let raw_inputs = message
            .body()
            .get("inputs")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let inputs = Inputs::from_raw(raw_inputs);
        let recorded_inputs = inputs.normalized().clone();
        let ctx = Context::new(message, self.rest.clone(), status.clone(), key)
            .with_previous_run(may_have_run);
        let started = Instant::now();
        let outcome = AssertUnwindSafe(route.call(ctx, inputs))
            .catch_unwind()
            .await
            .unwrap_or_else(|panic| Err(FunctionError::msg(panic_text(&panic))));
        let elapsed = started.elapsed();
        match outcome {
            Ok(result) => {
                let source = ResultSource {
                    package: &meta.name,
                    package_version: &meta.version,
                    host: &self.options.host,
                };
                Reply::success(
                    "Completed",
                    Some(result.into_results(recorded_inputs, &source, elapsed)),
                )
            }
            Err(err) => self.error_reply(name, err, status).await,
        }
    }

    async fn error_reply(
        &self,
        name: &str,
        err: FunctionError,
        status: Arc<dyn StatusSink>,
    ) -> Reply {
        tracing::warn!("failed: {err}");
        if self.options.trap_exception {
            let text = format!(
                "Error running '{name}'. Config 'trap_exception' set to 'True' so ignoring \
                 exception\nERROR:\n{err}"
            );
            status.send_status(Reply::status(&text)).await;
            return Reply::success(
                "Completed",
                Some(serde_json::json!({"success": false, "reason": err.to_string()})),
            );
        }
        Reply::error(err.to_string())
    }

    async fn run_rule(
        &self,
        flight: &InFlight,
        key: &str,
        may_have_run: bool,
        message: Message,
        status: Arc<dyn StatusSink>,
    ) -> Reply {
        let queue = message.queue().to_string();
        let name = match message.action_id() {
            Some(id) => self.rule_names.name_of(id).await,
            None => None,
        };
        if let Some(name) = &name {
            tracing::Span::current().record("rule", name.as_str());
            flight.describe(Some(name), None);
        }
        let Some(name) = name else {
            tracing::warn!(queue, action_id = ?message.action_id(), "rule message for an unknown rule");
            return Reply::success("No handler returned a result for this action", None);
        };
        let Some(route) = self.rules.get(&(queue.clone(), rule_key(&name))) else {
            tracing::info!(queue, rule = name, "no handler for this rule");
            return Reply::success("No handler returned a result for this action", None);
        };
        let ctx = Context::new(message, self.rest.clone(), status.clone(), key)
            .with_previous_run(may_have_run);
        let outcome = AssertUnwindSafe(route.call(ctx))
            .catch_unwind()
            .await
            .unwrap_or_else(|panic| Err(FunctionError::msg(panic_text(&panic))));
        match outcome {
            Ok(text) => Reply::success(
                text.unwrap_or_else(|| "No handler returned a result for this action".into()),
                None,
            ),
            Err(err) => self.error_reply(&name, err, status).await,
        }
    }
}

/// The message body as JSON, or why it is not UTF-8 JSON; a body over
/// [`soar_sdk::text::OFFLOAD_ABOVE`] is parsed on the blocking pool.
async fn parse_body(body: &[u8]) -> Result<Value, String> {
    fn parse(body: &[u8]) -> Result<Value, String> {
        let text = std::str::from_utf8(body).map_err(|e| e.to_string())?;
        serde_json::from_str(text).map_err(|e| e.to_string())
    }
    if body.len() <= soar_sdk::text::OFFLOAD_ABOVE {
        return parse(body);
    }
    let owned = body.to_vec();
    soar_sdk::text::offload(move || parse(&owned))
        .await
        .map_err(|e| e.to_string())?
}

fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    let detail = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown cause".into());
    format!("the handler panicked: {detail}; this is a bug in the function crate")
}
