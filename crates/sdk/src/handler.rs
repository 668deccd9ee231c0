//! Handler traits: functions, rule (action) handlers and selftests.
//!
//! Plain async functions and closures implement them, axum-style:
//! `async fn hello(ctx: Context, inputs: Inputs) -> Result<FunctionResult, FunctionError>`.

use std::future::Future;

use async_trait::async_trait;
use soar_rest::RestClient;

use crate::context::Context;
use crate::error::FunctionError;
use crate::inputs::Inputs;
use crate::result::FunctionResult;

/// A platform function: normalised inputs in, a result or an error out.
#[async_trait]
pub trait Function: Send + Sync + 'static {
    async fn call(&self, ctx: Context, inputs: Inputs) -> Result<FunctionResult, FunctionError>;
}

#[async_trait]
impl<F, Fut> Function for F
where
    F: Fn(Context, Inputs) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<FunctionResult, FunctionError>> + Send + 'static,
{
    async fn call(&self, ctx: Context, inputs: Inputs) -> Result<FunctionResult, FunctionError> {
        (self)(ctx, inputs).await
    }
}

/// A handler of rule ("custom action") messages. It returns the status text of the final reply;
/// `None` gives resilient-circuits' "No handler returned a result for this action".
#[async_trait]
pub trait RuleHandler: Send + Sync + 'static {
    async fn handle(&self, ctx: Context) -> Result<Option<String>, FunctionError>;
}

#[async_trait]
impl<F, Fut> RuleHandler for F
where
    F: Fn(Context) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Option<String>, FunctionError>> + Send + 'static,
{
    async fn handle(&self, ctx: Context) -> Result<Option<String>, FunctionError> {
        (self)(ctx).await
    }
}

/// The state a selftest reports (`resilient.circuits.selftest`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SelftestState {
    Success,
    Failure,
    Unimplemented,
}

/// A selftest's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelftestReport {
    pub state: SelftestState,
    pub reason: Option<String>,
}

impl SelftestReport {
    pub fn success() -> Self {
        SelftestReport {
            state: SelftestState::Success,
            reason: None,
        }
    }

    pub fn failure(reason: impl Into<String>) -> Self {
        SelftestReport {
            state: SelftestState::Failure,
            reason: Some(reason.into()),
        }
    }
}

/// A component's own check of its configuration and outside services.
#[async_trait]
pub trait Selftest: Send + Sync + 'static {
    async fn selftest(&self, rest: Option<&RestClient>) -> SelftestReport;
}

/// Tells a [`Service`] that the host is stopping.
#[derive(Debug, Clone)]
pub struct Shutdown(tokio::sync::watch::Receiver<bool>);

impl Shutdown {
    /// A shutdown signal and the sender that triggers it.
    pub fn channel() -> (tokio::sync::watch::Sender<bool>, Shutdown) {
        let (tx, rx) = tokio::sync::watch::channel(false);
        (tx, Shutdown(rx))
    }

    /// Completes when the host is stopping (or the host is gone).
    pub async fn wait(&mut self) {
        let _ = self.0.wait_for(|stop| *stop).await;
    }
}

/// A long-running part of a component that is not a function, e.g. an HTTP server such as a
/// custom threat service. `host run` starts it with the functions and stops it with them.
#[async_trait]
pub trait Service: Send + Sync + 'static {
    async fn run(&self, shutdown: Shutdown) -> Result<(), String>;
}

#[async_trait]
impl<F, Fut> Service for F
where
    F: Fn(Shutdown) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    async fn run(&self, shutdown: Shutdown) -> Result<(), String> {
        (self)(shutdown).await
    }
}
