//! A component's handlers, built from its config by its registration: functions, rule handlers,
//! a selftest, threat services and demo steps. [`Component::with_state`] gives the shared state
//! once; handlers receive it as an argument ([`State`](crate::State)).

use std::sync::Arc;

use serde_json::Value;

use crate::context::Context;
use crate::error::FunctionError;
use crate::handler::{FunctionHandler, RuleHandler, SelftestHandler, SelftestReport};
use crate::inputs::Inputs;
use crate::platform::BoxFuture;
use crate::result::FunctionResult;
use crate::schema::InputSchema;
use crate::threat::{ThreatRoute, ThreatService};

type FunctionFn = dyn Fn(Context, Inputs) -> BoxFuture<'static, Result<FunctionResult, FunctionError>>
    + Send
    + Sync;
type RuleFn =
    dyn Fn(Context) -> BoxFuture<'static, Result<Option<String>, FunctionError>> + Send + Sync;
type SelftestFn = dyn Fn(Context) -> BoxFuture<'static, SelftestReport> + Send + Sync;

/// A function handler with the name the platform calls it by.
#[derive(Clone)]
pub struct FunctionRoute {
    pub name: String,
    /// The inputs a typed handler reads (checked against the function's definition).
    pub schema: Option<InputSchema>,
    handler: Arc<FunctionFn>,
}

impl FunctionRoute {
    /// Runs the handler.
    pub fn call(
        &self,
        ctx: Context,
        inputs: Inputs,
    ) -> BoxFuture<'static, Result<FunctionResult, FunctionError>> {
        (self.handler)(ctx, inputs)
    }
}

/// A rule handler bound to a message destination and a rule's display name.
#[derive(Clone)]
pub struct RuleRoute {
    pub destination: String,
    pub rule: String,
    handler: Arc<RuleFn>,
}

impl RuleRoute {
    /// Runs the handler; its answer is the final reply's status text.
    pub fn call(&self, ctx: Context) -> BoxFuture<'static, Result<Option<String>, FunctionError>> {
        (self.handler)(ctx)
    }
}

/// What `host demo` does with a component, in its story of one incident.
#[derive(Debug, Clone, PartialEq)]
pub enum DemoStep {
    /// Text added to the demo incident's description (e.g. an indicator the emulator knows).
    IncidentText(String),
    /// A manual incident rule run on the demo incident.
    ManualRule(String),
    /// An artifact added to the demo incident.
    Artifact {
        artifact_type: String,
        value: String,
        description: String,
    },
    /// A direct invocation of a function with sample inputs.
    Invoke { function: String, inputs: Value },
}

/// A component: its handlers and the state they share. `Component` (no state) is what a
/// registration's build returns to the host.
pub struct Component<S = ()> {
    state: S,
    functions: Vec<FunctionRoute>,
    rules: Vec<RuleRoute>,
    selftest: Option<Arc<SelftestFn>>,
    threat_services: Vec<ThreatRoute>,
    demo: Vec<DemoStep>,
    /// Message destinations of the crate's customizations renamed by configuration.
    destination_names: Vec<(String, String)>,
}

impl<S> std::fmt::Debug for Component<S> {
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
            .field("threat_services", &self.threat_services)
            .finish()
    }
}

impl Clone for Component {
    fn clone(&self) -> Self {
        Component {
            state: (),
            functions: self.functions.clone(),
            rules: self.rules.clone(),
            selftest: self.selftest.clone(),
            threat_services: self.threat_services.clone(),
            demo: self.demo.clone(),
            destination_names: self.destination_names.clone(),
        }
    }
}

impl Default for Component {
    fn default() -> Self {
        Component::new()
    }
}

impl Component {
    /// A component without shared state.
    pub fn new() -> Self {
        Component::with_state(())
    }
}

impl<S: Clone + Send + Sync + 'static> Component<S> {
    /// A component whose handlers share `state` (received as [`State<S>`](crate::State)).
    pub fn with_state(state: S) -> Self {
        Component {
            state,
            functions: Vec::new(),
            rules: Vec::new(),
            selftest: None,
            threat_services: Vec::new(),
            demo: Vec::new(),
            destination_names: Vec::new(),
        }
    }

    /// Serves the platform function `name`.
    ///
    /// # Panics
    /// When the handler's inputs type is not a struct with named fields (a programming error
    /// that any test of the crate catches).
    pub fn function<M>(
        mut self,
        name: impl Into<String>,
        handler: impl FunctionHandler<S, M>,
    ) -> Self {
        fn schema_of<S, M, H: FunctionHandler<S, M>>(_: &H, name: &str) -> Option<InputSchema> {
            H::schema().map(|r| r.unwrap_or_else(|e| panic!("function {name}: {e}")))
        }
        let name = name.into();
        let schema = schema_of(&handler, &name);
        let state = self.state.clone();
        self.functions.push(FunctionRoute {
            name,
            schema,
            handler: Arc::new(move |ctx, inputs| handler.call(ctx, &state, inputs)),
        });
        self
    }

    /// Handles the messages of rule `rule` (its display name) on message destination
    /// `destination`.
    pub fn rule<M>(
        mut self,
        destination: impl Into<String>,
        rule: impl Into<String>,
        handler: impl RuleHandler<S, M>,
    ) -> Self {
        let state = self.state.clone();
        self.rules.push(RuleRoute {
            destination: destination.into(),
            rule: rule.into(),
            handler: Arc::new(move |ctx| handler.call(ctx, &state)),
        });
        self
    }

    /// Sets the selftest (`host selftest`): it gets a context without a message.
    pub fn selftest<M>(mut self, handler: impl SelftestHandler<S, M>) -> Self {
        let state = self.state.clone();
        self.selftest = Some(Arc::new(move |ctx| handler.call(ctx, &state)));
        self
    }

    /// Serves a custom threat service at `<urlbase>/<name>` (declare `name` in the
    /// registration's `threat_services`).
    pub fn threat_service(mut self, name: impl Into<String>, service: impl ThreatService) -> Self {
        self.threat_services
            .push(ThreatRoute::new(name.into(), service));
        self
    }

    /// The message destination `declared` in the crate's customizations is called `actual` in
    /// this configuration (a queue setting such as `[trustar] queue`): `host customize` pushes
    /// it, and the functions and rules declared on it, under `actual`, so that the handlers on
    /// `actual` receive their messages. Nothing changes when the names are equal.
    pub fn destination_named(
        mut self,
        declared: impl Into<String>,
        actual: impl Into<String>,
    ) -> Self {
        let (declared, actual) = (declared.into(), actual.into());
        if declared != actual {
            self.destination_names.push((declared, actual));
        }
        self
    }

    /// Adds a step to `host demo`'s story.
    pub fn demo(mut self, step: DemoStep) -> Self {
        self.demo.push(step);
        self
    }

    /// The component without its state type (the state lives on in the handlers).
    pub fn erase(self) -> Component {
        Component {
            state: (),
            functions: self.functions,
            rules: self.rules,
            selftest: self.selftest,
            threat_services: self.threat_services,
            demo: self.demo,
            destination_names: self.destination_names,
        }
    }
}

impl<S> Component<S> {
    pub fn function_names(&self) -> Vec<&str> {
        self.functions.iter().map(|f| f.name.as_str()).collect()
    }

    pub fn functions(&self) -> &[FunctionRoute] {
        &self.functions
    }

    pub fn rules(&self) -> &[RuleRoute] {
        &self.rules
    }

    pub fn threat_services(&self) -> &[ThreatRoute] {
        &self.threat_services
    }

    /// `(declared, actual)` message destination names, see [`Component::destination_named`].
    pub fn destination_names(&self) -> &[(String, String)] {
        &self.destination_names
    }

    pub fn demo_steps(&self) -> &[DemoStep] {
        &self.demo
    }

    pub fn has_selftest(&self) -> bool {
        self.selftest.is_some()
    }

    /// Runs the selftest (unimplemented when there is none).
    pub fn run_selftest(&self, ctx: Context) -> BoxFuture<'static, SelftestReport> {
        match &self.selftest {
            Some(t) => t(ctx),
            None => Box::pin(async { SelftestReport::unimplemented() }),
        }
    }
}
