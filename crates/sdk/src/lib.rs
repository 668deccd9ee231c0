//! The SDK a function crate depends on, and nothing of the engine.
//!
//! A function crate declares its app.config sections as typed structs ([`config`]), writes its
//! handlers as plain async functions whose arguments are extracted from the invocation
//! ([`State`], [`Context`], typed inputs, typed rule objects such as [`Incident`]), returns a
//! [`FunctionResult`] or a [`FunctionError`], builds a [`Component`] and registers it once with
//! [`register_component!`]. The host finds it in [`registered`] and runs it.
//!
//! - [`config`]: typed sections, their generated template, [`Setup`] (host-wide settings).
//! - [`handler`], [`context`], [`inputs`], [`rule`], [`result`], [`error`]: what a handler sees
//!   and returns.
//! - [`component`], [`registry`]: building and registering a component, checking it against
//!   its YAML.
//! - [`http`]: outbound HTTP to third-party services. [`threat`]: custom threat services.
//! - [`platform`]: the platform's REST API ([`Rest`]).
//! - [`text`]: size limits for user text and [`text::offload`] for CPU-heavy transformations.
//! - [`testkit`]: run handlers with a fake context in a unit test.

pub mod component;
pub mod config;
pub mod context;
pub mod error;
pub mod handler;
pub mod http;
pub mod inputs;
pub mod message;
pub mod platform;
pub mod python;
pub mod registry;
pub mod result;
pub mod rule;
pub mod schema;
pub mod testkit;
pub mod text;
pub mod threat;

pub use component::{Component, DemoStep};
pub use config::{ConfigError, Secret, Setup};
pub use context::Context;
pub use error::FunctionError;
pub use handler::{SelftestReport, SelftestState, State};
pub use inputs::Inputs;
pub use message::Message;
pub use platform::{Rest, RestError};
pub use registry::{ComponentRegistration, EmbeddedFile, registered};
pub use result::{FunctionResult, Reply};
pub use rule::{Artifact, ArtifactType, Incident, Note, Task};
pub use threat::{Hit, ThreatArtifact, ThreatService};

#[doc(hidden)]
pub use inventory;

/// What most function crates import: `use soar_sdk::prelude::*;`.
pub mod prelude {
    pub use crate::config::{Section, Sections, Setup};
    pub use crate::{
        Artifact, Component, ConfigError, Context, DemoStep, FunctionError, FunctionResult,
        Incident, Inputs, Note, Secret, SelftestReport, State, Task,
    };
}
