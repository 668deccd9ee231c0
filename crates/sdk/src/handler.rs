//! Handlers as plain async functions whose arguments are extracted from the invocation, axum
//! style: shared [`State`] given once with [`Component::with_state`](crate::Component::with_state),
//! the [`Context`], typed rule objects ([`Incident`](crate::Incident), ...), and for a function
//! its inputs as the last argument (a typed struct, or [`Inputs`] for untyped access).
//!
//! ```
//! # use std::sync::Arc;
//! # use soar_sdk::{Context, FunctionError, FunctionResult, Note, SelftestReport, State};
//! # #[derive(serde::Deserialize)] struct EchoInputs { text: Option<String> }
//! # struct Settings { greeting: String }
//! async fn echo(State(s): State<Arc<Settings>>, ctx: Context, inputs: EchoInputs)
//!     -> Result<FunctionResult, FunctionError> {
//!     ctx.status("echoing").await;
//!     Ok(FunctionResult::new(format!("{} {}", s.greeting, inputs.text.unwrap_or_default())))
//! }
//! async fn on_note(note: Note) -> Result<String, FunctionError> {
//!     Ok(format!("saw note {}", note.id))
//! }
//! async fn selftest(State(s): State<Arc<Settings>>) -> SelftestReport {
//!     if s.greeting.is_empty() { SelftestReport::failure("greeting is empty") } else { SelftestReport::success() }
//! }
//! ```

use std::fmt::Display;
use std::future::Future;

use serde::de::DeserializeOwned;

use crate::context::Context;
use crate::error::FunctionError;
use crate::inputs::Inputs;
use crate::platform::BoxFuture;
use crate::result::FunctionResult;
use crate::schema::{self, InputSchema};

/// The shared state of a component, received as an argument (cloned for each call: share it
/// in an `Arc`).
#[derive(Debug, Clone, Copy, Default)]
pub struct State<S>(pub S);

/// An argument a handler can take, extracted from the invocation's context and the state.
pub trait FromContext<S>: Sized {
    fn from_context(ctx: &Context, state: &S) -> Result<Self, FunctionError>;
}

impl<S: Clone> FromContext<S> for State<S> {
    fn from_context(_: &Context, state: &S) -> Result<Self, FunctionError> {
        Ok(State(state.clone()))
    }
}

impl<S> FromContext<S> for Context {
    fn from_context(ctx: &Context, _: &S) -> Result<Self, FunctionError> {
        Ok(ctx.clone())
    }
}

impl<S, T: FromContext<S>> FromContext<S> for Option<T> {
    fn from_context(ctx: &Context, state: &S) -> Result<Self, FunctionError> {
        Ok(T::from_context(ctx, state).ok())
    }
}

/// The last argument of a function handler: its inputs, as a typed struct (checked against the
/// function's definition by validation) or as [`Inputs`].
pub trait FromInputs: Sized + Send + 'static {
    fn from_inputs(inputs: Inputs) -> Result<Self, FunctionError>;

    /// The inputs a typed struct reads (`None` for untyped access).
    fn schema() -> Option<Result<InputSchema, String>>;
}

impl<T: DeserializeOwned + Send + 'static> FromInputs for T {
    /// Values are first brought to the kind each field reads ([`Inputs::coerced`]): a boolean
    /// defined on the platform as a select (`"true"`/`"false"`, as 2018 exports did) or a
    /// number written as text still reads.
    fn from_inputs(inputs: Inputs) -> Result<Self, FunctionError> {
        match schema::cached::<T>() {
            Some(schema) => inputs.coerced(&schema).parse(),
            None => inputs.parse(),
        }
    }

    fn schema() -> Option<Result<InputSchema, String>> {
        Some(schema::trace::<T>())
    }
}

impl FromInputs for Inputs {
    fn from_inputs(inputs: Inputs) -> Result<Self, FunctionError> {
        Ok(inputs)
    }

    fn schema() -> Option<Result<InputSchema, String>> {
        None
    }
}

/// A selftest's state (`resilient.circuits.selftest`).
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

    pub fn unimplemented() -> Self {
        SelftestReport {
            state: SelftestState::Unimplemented,
            reason: None,
        }
    }
}

impl<E: Display> From<Result<(), E>> for SelftestReport {
    fn from(r: Result<(), E>) -> Self {
        match r {
            Ok(()) => SelftestReport::success(),
            Err(e) => SelftestReport::failure(e.to_string()),
        }
    }
}

/// A function handler: `async fn(extractors…, inputs) -> Result<FunctionResult, FunctionError>`.
pub trait FunctionHandler<S, M>: Send + Sync + 'static {
    #[doc(hidden)]
    fn call(
        &self,
        ctx: Context,
        state: &S,
        inputs: Inputs,
    ) -> BoxFuture<'static, Result<FunctionResult, FunctionError>>;

    #[doc(hidden)]
    fn schema() -> Option<Result<InputSchema, String>>;
}

/// A rule handler: `async fn(extractors…) -> Result<T, FunctionError>` where `T` is the status
/// text (`String`) or `Option<String>` (`None`: "No handler returned a result").
pub trait RuleHandler<S, M>: Send + Sync + 'static {
    #[doc(hidden)]
    fn call(
        &self,
        ctx: Context,
        state: &S,
    ) -> BoxFuture<'static, Result<Option<String>, FunctionError>>;
}

/// A selftest: `async fn(extractors…) -> SelftestReport` (or `Result<(), impl Display>`).
pub trait SelftestHandler<S, M>: Send + Sync + 'static {
    #[doc(hidden)]
    fn call(&self, ctx: Context, state: &S) -> BoxFuture<'static, SelftestReport>;
}

macro_rules! extract {
    ($ctx:ident, $state:ident, $($T:ident),*) => {
        $(
            #[allow(non_snake_case)]
            let $T = match $T::from_context(&$ctx, $state) {
                Ok(v) => v,
                Err(e) => return Box::pin(async move { Err(e) }),
            };
        )*
    };
}

macro_rules! handlers {
    ($($T:ident),*) => {
        impl<S, F, Fut, I, $($T,)*> FunctionHandler<S, ($($T,)* I,)> for F
        where
            F: Fn($($T,)* I) -> Fut + Send + Sync + 'static,
            Fut: Future<Output = Result<FunctionResult, FunctionError>> + Send + 'static,
            I: FromInputs,
            $($T: FromContext<S>,)*
        {
            #[allow(unused_variables)]
            fn call(
                &self,
                ctx: Context,
                state: &S,
                inputs: Inputs,
            ) -> BoxFuture<'static, Result<FunctionResult, FunctionError>> {
                extract!(ctx, state, $($T),*);
                let inputs = match I::from_inputs(inputs) {
                    Ok(i) => i,
                    Err(e) => return Box::pin(async move { Err(e) }),
                };
                Box::pin((self)($($T,)* inputs))
            }

            fn schema() -> Option<Result<InputSchema, String>> {
                I::schema()
            }
        }

        impl<S, F, Fut, O, $($T,)*> RuleHandler<S, ($($T,)*)> for F
        where
            F: Fn($($T),*) -> Fut + Send + Sync + 'static,
            Fut: Future<Output = Result<O, FunctionError>> + Send + 'static,
            O: Into<Option<String>>,
            $($T: FromContext<S>,)*
        {
            #[allow(unused_variables)]
            fn call(
                &self,
                ctx: Context,
                state: &S,
            ) -> BoxFuture<'static, Result<Option<String>, FunctionError>> {
                extract!(ctx, state, $($T),*);
                let fut = (self)($($T),*);
                Box::pin(async move { fut.await.map(Into::into) })
            }
        }

        impl<S, F, Fut, R, $($T,)*> SelftestHandler<S, ($($T,)*)> for F
        where
            F: Fn($($T),*) -> Fut + Send + Sync + 'static,
            Fut: Future<Output = R> + Send + 'static,
            R: Into<SelftestReport>,
            $($T: FromContext<S>,)*
        {
            #[allow(unused_variables)]
            fn call(&self, ctx: Context, state: &S) -> BoxFuture<'static, SelftestReport> {
                $(
                    #[allow(non_snake_case)]
                    let $T = match $T::from_context(&ctx, state) {
                        Ok(v) => v,
                        Err(e) => {
                            let report = SelftestReport::failure(e.to_string());
                            return Box::pin(async move { report });
                        }
                    };
                )*
                let fut = (self)($($T),*);
                Box::pin(async move { fut.await.into() })
            }
        }
    };
}

handlers!();
handlers!(T1);
handlers!(T1, T2);
handlers!(T1, T2, T3);
handlers!(T1, T2, T3, T4);
handlers!(T1, T2, T3, T4, T5);
