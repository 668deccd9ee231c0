//! [`RestError`]: every way a platform call can fail, with texts a person can act on and the
//! `resilient-circuits` exit code of each (§8.3).
//!
//! No variant ever carries a secret: request URLs hold no credentials (auth travels in headers)
//! and response bodies are the platform's own messages.

use std::error::Error as StdError;
use std::time::Duration;

/// Exit code for a REST failure without a more specific code.
pub const EXIT_REST_GENERIC: i32 = 20;
/// Exit code for HTTP 401 anywhere.
pub const EXIT_UNAUTHORIZED: i32 = 21;
/// Exit code when the CA file cannot be used (raised by the caller, through soar-tls).
pub const EXIT_CA_FILE: i32 = 22;
/// Exit code for a TLS failure.
pub const EXIT_SSL: i32 = 23;
/// Exit code when the user is not a member of the configured org.
pub const EXIT_NOT_MEMBER_OF_ORG: i32 = 24;
/// Exit code for a login refused with "Invalid user name or password".
pub const EXIT_INVALID_CREDENTIALS: i32 = 25;

/// A failed platform call.
#[derive(Debug, thiserror::Error)]
pub enum RestError {
    /// HTTP 401 on a call (after one fresh login for password sessions) or on the login.
    #[error(
        "{method} {url} was refused with HTTP 401 Unauthorized: {message} \
         (check api_key_id/api_key_secret or email/password and the user's permissions)"
    )]
    Unauthorized {
        /// HTTP method.
        method: String,
        /// Request URL.
        url: String,
        /// The platform's message.
        message: String,
    },
    /// The login was answered with 401 "Invalid user name or password".
    #[error("login at {url} failed: invalid user name or password ({message})")]
    InvalidCredentials {
        /// Login URL.
        url: String,
        /// The platform's message.
        message: String,
    },
    /// The login response lists no org for this user.
    #[error("User is not a member of any orgs")]
    NoOrgs,
    /// No `org` is configured; the user's orgs are listed.
    #[error("no org is configured: set org in [resilient] to one of: {}", quote_list(.available))]
    OrgNotSet {
        /// Names of the orgs the user belongs to.
        available: Vec<String>,
    },
    /// The configured org is none of the user's orgs.
    #[error(
        "The user is not a member of the specified organization '{org}' (the user's orgs: {})",
        quote_list(.available)
    )]
    NotMemberOfOrg {
        /// The configured org.
        org: String,
        /// Names of the orgs the user belongs to.
        available: Vec<String>,
    },
    /// The configured org exists but is disabled.
    #[error(
        "This organization is not accessible: org '{org}' is disabled or its accessibility has changed"
    )]
    OrgDisabled {
        /// The configured org.
        org: String,
    },
    /// `GET /rest/orgs/{id}` says `actions_framework_enabled` is not true.
    #[error(
        "the actions framework is not enabled for org '{org}': message destinations (STOMP) cannot \
         be used; enable it on the platform"
    )]
    ActionsFrameworkDisabled {
        /// The org name.
        org: String,
    },
    /// A non-success HTTP status (after the retries, if any).
    #[error("{method} {url} failed: HTTP {status} {reason}: {body}")]
    Http {
        /// HTTP method.
        method: String,
        /// Request URL.
        url: String,
        /// HTTP status code.
        status: u16,
        /// Canonical reason phrase of the status.
        reason: String,
        /// The platform's `message`, or the first 500 characters of the body.
        body: String,
    },
    /// The TCP connection (or proxy) failed.
    #[error("cannot connect to {addr} ({method} {url}): {reason}")]
    Connect {
        /// HTTP method.
        method: String,
        /// Request URL.
        url: String,
        /// `host:port`.
        addr: String,
        /// The cause chain.
        reason: String,
    },
    /// The TLS handshake failed (certificate verification, protocol).
    #[error("TLS error talking to {addr} ({url}): {reason}")]
    Tls {
        /// Request URL.
        url: String,
        /// `host:port`.
        addr: String,
        /// The cause chain with a hint.
        reason: String,
    },
    /// The request did not complete in time.
    #[error("{method} {url} timed out after {after:?}")]
    Timeout {
        /// HTTP method.
        method: String,
        /// Request URL.
        url: String,
        /// The configured timeout.
        after: Duration,
    },
    /// Any other transport failure while sending or reading.
    #[error("{method} {url} failed: {reason}")]
    Transport {
        /// HTTP method.
        method: String,
        /// Request URL.
        url: String,
        /// The cause chain.
        reason: String,
    },
    /// A call that creates something (POST, PATCH) got no complete answer after it was sent: the
    /// platform may have done it, so it is not sent again blindly.
    #[error(
        "{method} {url}: {reason}; the platform may or may not have done it, so the request was \
         not sent again (check on the platform before repeating it)"
    )]
    Unconfirmed {
        /// HTTP method.
        method: String,
        /// Request URL.
        url: String,
        /// What happened (timeout, connection lost while waiting).
        reason: String,
    },
    /// A success response whose body is not the JSON expected.
    #[error("{method} {url}: unexpected response: {reason}")]
    Decode {
        /// HTTP method.
        method: String,
        /// Request URL.
        url: String,
        /// What was wrong.
        reason: String,
    },
    /// Invalid settings (proxy URL, HTTP client setup).
    #[error("invalid REST client configuration: {0}")]
    Config(String),
}

impl RestError {
    /// Whether the platform refused the credentials (HTTP 401): retrying cannot help.
    pub fn is_unauthorized(&self) -> bool {
        matches!(
            self,
            RestError::Unauthorized { .. } | RestError::InvalidCredentials { .. }
        )
    }

    /// The `resilient-circuits` exit code for this error (§8.3).
    pub fn exit_code(&self) -> i32 {
        match self {
            RestError::Unauthorized { .. } => EXIT_UNAUTHORIZED,
            RestError::InvalidCredentials { .. } => EXIT_INVALID_CREDENTIALS,
            RestError::NotMemberOfOrg { .. } => EXIT_NOT_MEMBER_OF_ORG,
            RestError::Tls { .. } => EXIT_SSL,
            _ => EXIT_REST_GENERIC,
        }
    }

    /// The HTTP status, for [`RestError::Http`] (and 401 for `Unauthorized`/`InvalidCredentials`).
    pub fn status(&self) -> Option<u16> {
        match self {
            RestError::Http { status, .. } => Some(*status),
            RestError::Unauthorized { .. } | RestError::InvalidCredentials { .. } => Some(401),
            _ => None,
        }
    }

    /// Whether the platform may answer if asked again later: it could not be reached, did not
    /// answer in time, or answered with a server-side failure (HTTP 5xx or 429). Refused
    /// credentials, TLS failures and client errors are not.
    pub fn is_retryable(&self) -> bool {
        self.is_transient()
            || matches!(self, RestError::Http { status, .. } if *status >= 500 || *status == 429)
    }

    /// Whether a retry may help: connection failures, timeouts and transport errors (TLS
    /// failures are deterministic and are not retried).
    pub(crate) fn is_transient(&self) -> bool {
        matches!(
            self,
            RestError::Connect { .. } | RestError::Timeout { .. } | RestError::Transport { .. }
        )
    }

    /// A timeout or transport failure of a call that creates something, as
    /// [`RestError::Unconfirmed`]; other errors unchanged.
    pub(crate) fn unconfirmed(self) -> RestError {
        match self {
            RestError::Timeout { method, url, after } => RestError::Unconfirmed {
                method,
                url,
                reason: format!("no answer within {after:?}"),
            },
            RestError::Transport {
                method,
                url,
                reason,
            } => RestError::Unconfirmed {
                method,
                url,
                reason,
            },
            other => other,
        }
    }

    /// Classify a reqwest error: TLS, connect, timeout, or other transport failure.
    pub(crate) fn from_reqwest(
        err: &reqwest::Error,
        method: &str,
        url: &str,
        addr: &str,
        timeout: Duration,
    ) -> RestError {
        let (method, url, addr) = (method.to_string(), url.to_string(), addr.to_string());
        if let Some(tls) = find_rustls(err) {
            let reason = match tls {
                rustls::Error::InvalidCertificate(_) => format!(
                    "certificate verify failed: {tls} (check cafile in [resilient]: the server's \
                     certificate must chain to it and name the host)"
                ),
                _ => format!(
                    "TLS handshake failed: {tls} (check that the port speaks TLS and the cafile \
                     setting)"
                ),
            };
            return RestError::Tls { url, addr, reason };
        }
        if err.is_timeout() {
            return RestError::Timeout {
                method,
                url,
                after: timeout,
            };
        }
        let reason = cause_chain(err);
        if err.is_connect() {
            RestError::Connect {
                method,
                url,
                addr,
                reason,
            }
        } else {
            RestError::Transport {
                method,
                url,
                reason,
            }
        }
    }
}

fn quote_list(names: &[String]) -> String {
    if names.is_empty() {
        return "(none)".into();
    }
    names
        .iter()
        .map(|n| format!("'{n}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Find a rustls error in the chain. `io::Error::source()` skips its own inner error, so look
/// into `get_ref()` as well.
fn find_rustls<'a>(err: &'a (dyn StdError + 'static)) -> Option<&'a rustls::Error> {
    let mut cur: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(t) = e.downcast_ref::<rustls::Error>() {
            return Some(t);
        }
        if let Some(inner) = e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            && let Some(t) = find_rustls(inner)
        {
            return Some(t);
        }
        cur = e.source();
    }
    None
}

/// `outer: inner: innermost` below reqwest's own error (whose text only repeats the URL),
/// skipping a message already contained in an earlier one.
pub(crate) fn cause_chain(err: &reqwest::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur: Option<&(dyn StdError + 'static)> = err.source();
    while let Some(e) = cur {
        let text = e.to_string();
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        cur = e.source();
    }
    if parts.is_empty() {
        parts.push(err.to_string());
    }
    parts.join(": ")
}
