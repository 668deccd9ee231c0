//! A unit test kit: runs a component's handlers with a fake context (inputs, message, config,
//! recorded status messages and platform REST calls) without starting any platform, so that a
//! behavioural test of a handler takes milliseconds.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! use serde_json::json;
//! use soar_sdk::testkit::TestKit;
//! # soar_sdk::register_component! {
//! #     name: "doc_echo", description: "doc", config: (), build: build, customizations: [],
//! # }
//! # fn build(_: (), _: &soar_sdk::config::Setup) -> Result<soar_sdk::Component, soar_sdk::ConfigError> {
//! #     Ok(soar_sdk::Component::new().function("echo", |i: soar_sdk::Inputs| async move {
//! #         Ok(soar_sdk::FunctionResult::new(i.get("text").cloned().unwrap_or_default())) }))
//! # }
//! let kit = TestKit::new("doc_echo").unwrap();
//! let call = kit.call("echo", json!({"text": "hi"})).await;
//! assert_eq!(call.result.unwrap().content(), &json!("hi"));
//! # }
//! ```

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use crate::component::Component;
use crate::config::{ConfigError, ConfigSource, Setup};
use crate::context::{Context, StatusSink};
use crate::error::FunctionError;
use crate::handler::SelftestReport;
use crate::inputs::Inputs;
use crate::message::{Message, rule_key};
use crate::platform::{BoxFuture, Method, PlatformApi, Rest, RestError};
use crate::registry::{self, CheckError, ComponentRegistration, check_component};
use crate::result::{FunctionResult, Reply};

/// Why a test kit could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum KitError {
    #[error(
        "no registered component named '{0}' (is the crate linked? an integration test needs `use fn_x as _;`)"
    )]
    NotRegistered(String),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Check(#[from] CheckError),
}

/// One recorded platform call.
#[derive(Debug, Clone, PartialEq)]
pub struct RestCall {
    pub method: Method,
    pub path: String,
    pub body: Option<Value>,
}

/// A platform that answers from canned answers and records every call. Unanswered calls get
/// HTTP 404.
#[derive(Debug, Default)]
pub struct FakePlatform {
    answers: Mutex<Vec<(Method, String, Value)>>,
    calls: Mutex<Vec<RestCall>>,
}

impl FakePlatform {
    /// Answers `method path` with `value` (the latest answer given for a call wins).
    pub fn answer(&self, method: Method, path: &str, value: Value) {
        if let Ok(mut a) = self.answers.lock() {
            a.push((method, path.to_string(), value));
        }
    }

    /// The calls made so far.
    pub fn calls(&self) -> Vec<RestCall> {
        self.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }
}

impl PlatformApi for FakePlatform {
    fn call<'a>(
        &'a self,
        method: Method,
        path: &'a str,
        body: Option<&'a Value>,
    ) -> BoxFuture<'a, Result<Value, RestError>> {
        if let Ok(mut c) = self.calls.lock() {
            c.push(RestCall {
                method,
                path: path.to_string(),
                body: body.cloned(),
            });
        }
        let found = self.answers.lock().ok().and_then(|a| {
            a.iter()
                .rev()
                .find(|(m, p, _)| *m == method && p == path)
                .map(|(_, _, v)| v.clone())
        });
        Box::pin(async move {
            found.ok_or_else(|| RestError::Http {
                method: method.as_str().to_string(),
                url: path.to_string(),
                status: 404,
                reason: "Not Found".into(),
                body: "no answer set in the test kit's FakePlatform".into(),
            })
        })
    }
}

#[derive(Default)]
struct Statuses(Mutex<Vec<String>>);

impl StatusSink for Statuses {
    fn send_status(&self, reply: Reply) -> BoxFuture<'_, ()> {
        if let Ok(mut s) = self.0.lock() {
            s.push(reply.message);
        }
        Box::pin(async {})
    }
}

/// What a call did: its outcome and the status messages it sent.
#[derive(Debug)]
pub struct Call<T> {
    pub result: Result<T, FunctionError>,
    pub statuses: Vec<String>,
}

/// A built component with a fake platform.
#[derive(Debug)]
pub struct TestKit {
    registration: &'static ComponentRegistration,
    component: Component,
    platform: Arc<FakePlatform>,
    rerun: std::sync::atomic::AtomicBool,
}

impl TestKit {
    /// Builds registered component `name` from its template's values (what `host config -c`
    /// writes, required keys filled with their examples).
    pub fn new(name: &str) -> Result<TestKit, KitError> {
        let registration =
            registry::find(name).ok_or_else(|| KitError::NotRegistered(name.to_string()))?;
        Self::with_config(name, registration.template_source(false))
    }

    /// Builds registered component `name` from `source`.
    pub fn with_config(name: &str, source: ConfigSource) -> Result<TestKit, KitError> {
        let registration =
            registry::find(name).ok_or_else(|| KitError::NotRegistered(name.to_string()))?;
        let setup = Setup::from_source(&source)?;
        let component = (registration.build)(&source, &setup)?;
        Ok(TestKit {
            registration,
            component,
            platform: Arc::new(FakePlatform::default()),
            rerun: Default::default(),
        })
    }

    /// The component as built.
    pub fn component(&self) -> &Component {
        &self.component
    }

    /// The fake platform: set answers, read the calls.
    pub fn platform(&self) -> &FakePlatform {
        &self.platform
    }

    fn context(&self, message: Message, statuses: Arc<Statuses>) -> Context {
        Context::new(
            message,
            Some(Rest::new(self.platform.clone())),
            statuses,
            "test-invocation",
        )
        .with_previous_run(self.rerun.load(std::sync::atomic::Ordering::SeqCst))
    }

    /// Makes the next calls re-runs of the same invocation (`ctx.may_have_run()` true, same
    /// `ctx.invocation_key()`), as after a crash; `false` goes back to first runs.
    pub fn set_rerun(&self, rerun: bool) {
        self.rerun.store(rerun, std::sync::atomic::Ordering::SeqCst);
    }

    fn destination_of(&self, function: &str) -> String {
        self.registration
            .definitions()
            .ok()
            .and_then(|d| d.function(function).map(|f| f.destination.clone()))
            .unwrap_or_else(|| "test".to_string())
    }

    /// Calls function `function` with `inputs` (as the platform sends them), as a workflow
    /// would; `incident` (if any) is the message's incident.
    pub async fn call(&self, function: &str, inputs: Value) -> Call<FunctionResult> {
        self.call_with(function, inputs, Value::Null).await
    }

    /// Like [`call`](Self::call) with the message's `incident` object.
    pub async fn call_with(
        &self,
        function: &str,
        inputs: Value,
        incident: Value,
    ) -> Call<FunctionResult> {
        let statuses = Arc::new(Statuses::default());
        let Some(route) = self
            .component
            .functions()
            .iter()
            .find(|f| f.name == function)
        else {
            return Call {
                result: Err(FunctionError::msg(format!(
                    "the component serves no function '{function}'"
                ))),
                statuses: Vec::new(),
            };
        };
        let body = json!({"function": {"name": function}, "inputs": inputs, "incident": incident});
        let destination = format!("actions.201.{}", self.destination_of(function));
        let message = Message::new(&destination, Some("ActionDataDTO"), body);
        let raw = inputs.as_object().cloned().unwrap_or_default();
        let ctx = self.context(message, statuses.clone());
        let result = route.call(ctx, Inputs::from_raw(raw)).await;
        Call {
            result,
            statuses: statuses.0.lock().map(|s| s.clone()).unwrap_or_default(),
        }
    }

    /// Delivers a message of rule `rule` (its display name) whose body holds the rule's objects
    /// (`{"incident": {...}, "artifact": {...}}`), as the platform would.
    pub async fn rule(&self, rule: &str, body: Value) -> Call<Option<String>> {
        let statuses = Arc::new(Statuses::default());
        let key = rule_key(rule);
        let Some(route) = self
            .component
            .rules()
            .iter()
            .find(|r| rule_key(&r.rule) == key)
        else {
            return Call {
                result: Err(FunctionError::msg(format!(
                    "the component handles no rule '{rule}'"
                ))),
                statuses: Vec::new(),
            };
        };
        let destination = format!("actions.201.{}", route.destination);
        let ctx = self.context(Message::new(&destination, None, body), statuses.clone());
        let result = route.call(ctx).await;
        Call {
            result,
            statuses: statuses.0.lock().map(|s| s.clone()).unwrap_or_default(),
        }
    }

    /// Runs the selftest.
    pub async fn selftest(&self) -> SelftestReport {
        let message = Message::new("selftest", None, Value::Null);
        let ctx = self.context(message, Arc::new(Statuses::default()));
        self.component.run_selftest(ctx).await
    }
}

/// Checks a registered component for its crate's own `cargo test`: its YAML parses and
/// validates, it builds from its template's values, and its handlers match the YAML (every
/// function and typed input, every rule name and destination, every threat service).
pub fn validate_registered(name: &str) -> Result<(), KitError> {
    let registration =
        registry::find(name).ok_or_else(|| KitError::NotRegistered(name.to_string()))?;
    let kit = TestKit::new(name)?;
    let definitions = registration.definitions()?;
    check_component(
        name,
        &kit.component,
        &definitions,
        registration.threat_services,
    )?;
    Ok(())
}
