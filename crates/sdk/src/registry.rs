//! Component registration through `inventory`.
//!
//! A function crate registers itself with [`register_component!`](crate::register_component); the
//! host iterates [`registered`] (sorted by name) and knows no integration by name. The crate is
//! linked in by a cargo feature of the host plus a `use fn_x as _;` line: without that line rustc
//! drops the crate and its registration silently.

use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;

use async_trait::async_trait;
use serde::de::DeserializeOwned;

use crate::config::{AppConfig, ConfigError};
use crate::context::Context;
use crate::error::FunctionError;
use crate::handler::{Function, RuleHandler, Selftest, Service};
use crate::inputs::Inputs;
use crate::result::FunctionResult;
use crate::schema::{self, InputSchema};

/// A customization file embedded in a function crate (see [`embed_customizations!`](crate::embed_customizations)).
#[derive(Debug, Clone, Copy)]
pub struct EmbeddedFile {
    /// Where it came from, for messages (`fn_hello/customize/fn_hello.yaml`).
    pub path: &'static str,
    pub text: &'static str,
}

/// Embeds a crate's customization YAML files at build time:
/// `customizations: soar_sdk::embed_customizations!("customize/fn_hello.yaml")`.
#[macro_export]
macro_rules! embed_customizations {
    ($($file:literal),* $(,)?) => {
        &[$($crate::registry::EmbeddedFile {
            path: concat!(env!("CARGO_PKG_NAME"), "/", $file),
            text: include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/", $file)),
        }),*]
    };
}

struct Typed<I, F> {
    handler: F,
    _inputs: PhantomData<fn() -> I>,
}

#[async_trait]
impl<I, F, Fut> Function for Typed<I, F>
where
    I: DeserializeOwned + Send + 'static,
    F: Fn(Context, I) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<FunctionResult, FunctionError>> + Send + 'static,
{
    async fn call(&self, ctx: Context, inputs: Inputs) -> Result<FunctionResult, FunctionError> {
        let typed = inputs.parse::<I>()?;
        (self.handler)(ctx, typed).await
    }
}

/// What a function crate tells the host about itself.
#[derive(Debug)]
pub struct ComponentRegistration {
    /// The component's name, conventionally the crate name (`fn_slack`).
    pub name: &'static str,
    /// `env!("CARGO_PKG_VERSION")`, reported in result metrics.
    pub version: &'static str,
    /// One line for `host list`.
    pub description: &'static str,
    /// The app.config section handed to its handlers (`ctx.config()`), if any.
    pub section: Option<&'static str>,
    /// Its default app.config text for `host config -c|-u` (empty for none).
    pub default_config: &'static str,
    /// Validates its configuration and builds its handlers.
    pub build: fn(&AppConfig) -> Result<Component, ConfigError>,
    /// Its platform objects (message destinations, functions, fields, rules, workflows), as
    /// YAML files embedded with [`embed_customizations!`](crate::embed_customizations).
    pub customizations: &'static [EmbeddedFile],
}

inventory::collect!(ComponentRegistration);

/// Every linked component, sorted by name.
pub fn registered() -> Vec<&'static ComponentRegistration> {
    let mut all: Vec<_> = inventory::iter::<ComponentRegistration>
        .into_iter()
        .collect();
    all.sort_by_key(|r| r.name);
    all
}

/// Registers a component with the host. Use once per function crate:
///
/// ```ignore
/// soar_sdk::register_component!(soar_sdk::ComponentRegistration {
///     name: "fn_hello",
///     version: env!("CARGO_PKG_VERSION"),
///     description: "Echoes its inputs",
///     section: Some("fn_hello"),
///     default_config: "[fn_hello]\n# delay_ms = 0\n",
///     build: build,
/// });
/// ```
#[macro_export]
macro_rules! register_component {
    ($registration:expr) => {
        $crate::inventory::submit! { $registration }
    };
}

/// A function handler with the name the platform calls it by.
#[derive(Clone)]
pub struct FunctionRoute {
    pub name: String,
    pub handler: Arc<dyn Function>,
    /// The inputs it reads, for typed handlers (checked against the function's definition).
    pub schema: Option<InputSchema>,
}

/// A rule handler bound to a message destination and a rule's display name.
#[derive(Clone)]
pub struct RuleRoute {
    pub destination: String,
    pub rule: String,
    pub handler: Arc<dyn RuleHandler>,
}

/// A component's handlers, built from app.config by its registration.
#[derive(Clone, Default)]
pub struct Component {
    pub(crate) functions: Vec<FunctionRoute>,
    pub(crate) rules: Vec<RuleRoute>,
    pub(crate) selftest: Option<Arc<dyn Selftest>>,
    pub(crate) examples: Vec<(String, serde_json::Value)>,
    pub(crate) services: Vec<(String, Arc<dyn Service>)>,
    pub(crate) demo_rules: Vec<String>,
}

impl std::fmt::Debug for Component {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Component")
            .field("functions", &self.function_names())
            .field(
                "rules",
                &self
                    .rules
                    .iter()
                    .map(|r| (&r.destination, &r.rule))
                    .collect::<Vec<_>>(),
            )
            .field("selftest", &self.selftest.is_some())
            .finish()
    }
}

impl Component {
    pub fn new() -> Self {
        Component::default()
    }

    /// Adds a function handler for the platform function `name` that reads [`Inputs`](crate::Inputs).
    pub fn function(mut self, name: impl Into<String>, handler: impl Function) -> Self {
        self.functions.push(FunctionRoute {
            name: name.into(),
            handler: Arc::new(handler),
            schema: None,
        });
        self
    }

    /// Adds a function handler that receives its inputs as a typed struct `I`. The fields of `I`
    /// are checked against the function's customization (name and type) by validation.
    ///
    /// # Panics
    /// When `I` is not a struct with named fields (a programming error caught by any test).
    pub fn typed_function<I, F, Fut>(mut self, name: impl Into<String>, handler: F) -> Self
    where
        I: DeserializeOwned + Send + 'static,
        F: Fn(Context, I) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<FunctionResult, FunctionError>> + Send + 'static,
    {
        let name = name.into();
        let schema = match schema::trace::<I>() {
            Ok(s) => s,
            Err(e) => panic!("typed function {name}: {e}"),
        };
        self.functions.push(FunctionRoute {
            name,
            handler: Arc::new(Typed {
                handler,
                _inputs: PhantomData,
            }),
            schema: Some(schema),
        });
        self
    }

    /// Adds a handler for rule messages of rule `rule` (its display name) on `destination`.
    pub fn rule(
        mut self,
        destination: impl Into<String>,
        rule: impl Into<String>,
        handler: impl RuleHandler,
    ) -> Self {
        self.rules.push(RuleRoute {
            destination: destination.into(),
            rule: rule.into(),
            handler: Arc::new(handler),
        });
        self
    }

    /// Adds a long-running service (e.g. an HTTP server) that runs as long as the host does.
    pub fn service(mut self, name: impl Into<String>, service: impl Service) -> Self {
        self.services.push((name.into(), Arc::new(service)));
        self
    }

    pub fn services(&self) -> &[(String, Arc<dyn Service>)] {
        &self.services
    }

    /// Sets the component's selftest.
    pub fn selftest(mut self, selftest: impl Selftest) -> Self {
        self.selftest = Some(Arc::new(selftest));
        self
    }

    /// Adds sample inputs for one of its functions; `host demo` invokes each example.
    pub fn example(mut self, function: impl Into<String>, inputs: serde_json::Value) -> Self {
        self.examples.push((function.into(), inputs));
        self
    }

    pub fn examples(&self) -> &[(String, serde_json::Value)] {
        &self.examples
    }

    /// Names a manual incident rule that `host demo` runs in its incident story.
    pub fn demo_rule(mut self, rule: impl Into<String>) -> Self {
        self.demo_rules.push(rule.into());
        self
    }

    pub fn demo_rules(&self) -> &[String] {
        &self.demo_rules
    }

    pub fn function_names(&self) -> Vec<&str> {
        self.functions.iter().map(|f| f.name.as_str()).collect()
    }

    pub fn functions(&self) -> &[FunctionRoute] {
        &self.functions
    }

    pub fn rules(&self) -> &[RuleRoute] {
        &self.rules
    }

    pub fn selftest_handler(&self) -> Option<&Arc<dyn Selftest>> {
        self.selftest.as_ref()
    }
}
