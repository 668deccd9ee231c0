//! Errors of the TruSTAR client and of the integration's flows. Each names the TruSTAR account
//! (its app.config section) and the call that failed, never the API secret.

/// A failed TruSTAR call.
#[derive(Debug, thiserror::Error)]
pub enum TrustarError {
    /// TruSTAR answered with an HTTP error.
    #[error("TruSTAR account [{account}]: {call} failed: HTTP {status}: {message}")]
    Http {
        account: String,
        call: String,
        status: u16,
        message: String,
    },
    /// The OAuth token request was refused.
    #[error(
        "TruSTAR account [{account}]: cannot get an OAuth token: HTTP {status}: {message} (check user_api_key and user_api_secret)"
    )]
    Token {
        account: String,
        status: u16,
        message: String,
    },
    /// TruSTAR asked us to wait longer than we may.
    #[error(
        "TruSTAR account [{account}]: {call}: request limit exceeded; TruSTAR asks to wait {wait_ms} ms, more than the {max_ms} ms allowed"
    )]
    RateLimited {
        account: String,
        call: String,
        wait_ms: u64,
        max_ms: u64,
    },
    /// TruSTAR could not be reached.
    #[error("TruSTAR account [{account}]: {call}: cannot reach {url}: {reason}")]
    Unreachable {
        account: String,
        call: String,
        url: String,
        reason: String,
    },
    /// A success answer that is not what the API documents.
    #[error("TruSTAR account [{account}]: {call}: unexpected answer: {reason}")]
    Decode {
        account: String,
        call: String,
        reason: String,
    },
    /// The client could not be set up (TLS, proxy).
    #[error("TruSTAR account [{account}]: {reason}")]
    Setup { account: String, reason: String },
}

impl TrustarError {
    /// The HTTP status TruSTAR answered, if any.
    pub fn status(&self) -> Option<u16> {
        match self {
            TrustarError::Http { status, .. } | TrustarError::Token { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// True for HTTP 404 (no such report).
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }
}

/// Why a flow (submit, update, enrich, whitelist…) could not complete.
#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    #[error(transparent)]
    Trustar(#[from] TrustarError),
    #[error("SOAR platform: {0}")]
    Platform(#[from] soar_sdk::RestError),
    /// No account serves the incident's workspace.
    #[error(
        "TruSTAR enrichment is not possible for workspace '{workspace}': no [trustar_<name>] section lists it in `workspace`"
    )]
    NoAccount { workspace: String },
    /// The incident's type is excluded by the account.
    #[error(
        "This type of incident can't be submitted to TruSTAR (incident_types_to_exclude in [{account}] lists '{label}')"
    )]
    Excluded { account: String, label: String },
    /// The incident was deleted while the flow ran (an update racing the deletion).
    #[error("Incident {0} no longer exists on the platform")]
    IncidentGone(i64),
    /// Anything else, described for a person.
    #[error("{0}")]
    Other(String),
}

impl From<FlowError> for soar_sdk::FunctionError {
    fn from(e: FlowError) -> Self {
        match e {
            FlowError::Platform(r) => soar_sdk::FunctionError::Platform(r),
            other => soar_sdk::FunctionError::external("TruSTAR", other),
        }
    }
}
