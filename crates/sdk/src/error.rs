//! Errors a handler returns. Each becomes a `message_type: 1` reply whose text a person can act on.

use std::fmt::Display;

/// Why a function or rule handler failed.
///
/// The `Display` text is what the platform shows in the workflow's action status, so it should say
/// what went wrong and, where possible, what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum FunctionError {
    /// A required input is missing or has the wrong type.
    #[error("input '{name}' {problem}")]
    Input { name: String, problem: String },
    /// The component's app.config section is unusable for this call.
    #[error("configuration problem in [{section}]: {problem}")]
    Config { section: String, problem: String },
    /// A call to the platform's REST API failed.
    #[error("SOAR platform REST call failed: {0}")]
    Platform(#[from] soar_rest::RestError),
    /// A third-party service (Slack, TruSTAR, ...) refused or failed the request.
    #[error("{service}: {message}")]
    External { service: String, message: String },
    /// Any other failure, described for a person.
    #[error("{0}")]
    Failed(String),
}

impl FunctionError {
    /// A failure described by a message.
    pub fn msg(message: impl Display) -> Self {
        FunctionError::Failed(message.to_string())
    }

    /// A required input that was not set, worded as resilient-lib's `validate_fields` does.
    pub fn missing_input(name: &str) -> Self {
        FunctionError::Input {
            name: name.to_string(),
            problem: "is mandatory and is not set. You must set this value to run this function"
                .to_string(),
        }
    }

    /// An input of the wrong type or value.
    pub fn invalid_input(name: &str, problem: impl Display) -> Self {
        FunctionError::Input {
            name: name.to_string(),
            problem: problem.to_string(),
        }
    }

    /// A failure of an outside service.
    pub fn external(service: impl Display, message: impl Display) -> Self {
        FunctionError::External {
            service: service.to_string(),
            message: message.to_string(),
        }
    }
}
