//! The engine the `host` binary runs, apart from the SDK that function crates use.
//!
//! - [`config`]: app.config with Python configparser semantics, `$ENV` and `^secret` values,
//!   the typed `[resilient]` section, and the text of `host config -c|-u`.
//! - [`load`]: building the linked components from their typed sections.
//! - [`dispatch`], [`rules`]: decoding platform messages and routing them to handlers.
//! - [`runtime`], [`app`]: the STOMP/REST engine around the dispatcher.
//! - [`customize`]: pushing the components' platform objects (`host customize`).
//! - [`threat`]: the custom threat-service web server (`[webserver]`, `[custom_threat_service]`).
//! - `testkit` (feature `testkit`): start the simulated platform and run components through
//!   this engine in a few lines.

pub mod app;
pub mod config;
pub mod customize;
pub mod dispatch;
pub mod journal;
pub mod load;
pub mod monitor;
pub mod rules;
pub mod runtime;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod threat;

pub use load::{LoadedComponent, load_component, load_components};
