//! Errors returned by the simulated platform's Rust API.

use std::time::Duration;

/// Everything that can go wrong when starting or driving a [`crate::Sim`].
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// A wait ran out of time; `what` says what was awaited.
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout {
        /// What was awaited (e.g. "final reply to invid:3").
        what: String,
        /// The timeout that expired.
        after: Duration,
    },
    /// `invoke` was called for a function that was never registered with `register_function`.
    #[error(
        "function '{0}' is not registered in the simulated platform; call Sim::register_function first"
    )]
    UnknownFunction(String),
    /// `send_rule_message` named a rule that was never added with `add_rule`.
    #[error("rule '{0}' is not defined in the simulated platform; call Sim::add_rule first")]
    UnknownRule(String),
    /// An incident id that does not exist.
    #[error("incident {0} does not exist in the simulated platform")]
    UnknownIncident(i64),
    /// A note or artifact that does not exist (the text names it and its incident).
    #[error("{0} does not exist in the simulated platform")]
    UnknownObject(String),
    /// A threat service name that is not registered.
    #[error("threat service '{0}' is not registered in the simulated platform")]
    UnknownThreatService(String),
    /// A threat service failed its test (`threatservicetest`).
    #[error("threat service '{name}' failed the test: {message}")]
    ThreatService {
        /// The service's name.
        name: String,
        /// What went wrong.
        message: String,
    },
    /// The state file could not be read, parsed or written.
    #[error("state file {}: {message}", path.display())]
    State {
        /// The state file.
        path: std::path::PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The platform refused the request (invalid object, wrong kind of rule…), with its message.
    #[error("the simulated platform refused the request: {0}")]
    Rejected(String),
    /// A socket could not be bound, accepted or written.
    #[error("I/O error in the simulated platform: {0}")]
    Io(#[from] std::io::Error),
    /// The TLS set-up (certificates, rustls configuration) failed.
    #[error("TLS set-up of the simulated platform failed: {0}")]
    Tls(String),
    /// The operation is not available in the current broker mode.
    #[error("not supported: {0}")]
    Unsupported(&'static str),
    /// The external broker refused or dropped something the simulator needed.
    #[error("external broker: {0}")]
    External(String),
    /// The simulator has been shut down.
    #[error("the simulated platform has been shut down")]
    Shutdown,
}

impl SimError {
    pub(crate) fn timeout(what: impl Into<String>, after: Duration) -> Self {
        SimError::Timeout {
            what: what.into(),
            after,
        }
    }
}
