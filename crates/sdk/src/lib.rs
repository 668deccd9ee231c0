//! The SDK every function crate depends on, and the engine the `host` binary runs.
//!
//! A function crate writes handlers as plain async functions over [`Context`] and [`Inputs`],
//! returns a [`FunctionResult`] or a [`FunctionError`], builds a [`Component`] from its app.config
//! section, and registers it with [`register_component!`]. The host finds it in [`registered`].
//!
//! Modules:
//! - [`config`]: app.config with Python configparser semantics, `$ENV` and `^secret` values.
//! - [`inputs`], [`context`], [`handler`], [`result`], [`error`]: what a handler sees and returns.
//! - [`registry`]: registration through `inventory`.
//! - [`message`], [`dispatch`]: decoding platform messages and routing them to handlers.
//! - [`runtime`], [`app`]: the STOMP/REST engine around the dispatcher.
//! - [`customize`], [`schema`]: the platform objects a component declares, validated against its
//!   handlers and pushed to the platform.
//! - `testkit` (feature `testkit`): start the simulated platform and run handlers through the
//!   real engine in a few lines.

pub mod app;
pub mod config;
pub mod context;
pub mod customize;
pub mod dispatch;
pub mod error;
pub mod handler;
pub mod inputs;
pub mod message;
pub mod registry;
pub mod result;
pub mod runtime;
pub mod schema;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use context::{ComponentSection, Context};
pub use error::FunctionError;
pub use handler::{
    Function, RuleHandler, Selftest, SelftestReport, SelftestState, Service, Shutdown,
};
pub use inputs::Inputs;
pub use message::Message;
pub use registry::{Component, ComponentRegistration, EmbeddedFile, registered};
pub use result::{FunctionResult, Reply};

#[doc(hidden)]
pub use inventory;
pub use soar_rest as rest;
