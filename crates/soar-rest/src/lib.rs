//! REST client for the IBM SOAR platform, as used by `resilient-circuits` (platform protocol §2).
//!
//! [`RestClient::connect`] logs in with an API key (HTTP Basic on every request) or with
//! email/password (session cookie plus `X-sess-id`, re-login once on 401), selects the configured
//! org, checks that the org has the actions framework enabled (needed for STOMP), and logs the
//! server version. Calls are org-relative (`/rest/orgs/{id}{uri}`) or absolute (`/rest{uri}`).
//! `get`, `post`, `delete` and the login are retried on connection errors and on HTTP statuses
//! of 300 and above (except 401 and per-call skip lists) with exponential backoff; `put` and
//! `patch` are not. Any 401 is [`RestError::Unauthorized`], whose [`RestError::exit_code`] is 21.
//!
//! TLS comes from the caller as a ready `rustls::ClientConfig` (built by `soar-tls`), handed to
//! reqwest through `tls_backend_preconfigured` (the 0.13 name of `use_preconfigured_tls`), so no crypto provider is chosen here.
//!
//! Proxy: an explicit [`Proxy`] is used for everything and the proxy environment is then ignored;
//! without one, reqwest honours `HTTPS_PROXY`/`ALL_PROXY`/`NO_PROXY`. (Upstream `requests` lets
//! the environment win over configured proxies; we prefer the explicit setting.)
//!
//! Credentials never appear in `Debug` output, logs or error texts.

mod client;
mod config;
mod error;
mod transport;

pub use client::RestClient;
pub use config::{Auth, Proxy, RestConfig, RetryPolicy};
pub use error::{
    EXIT_CA_FILE, EXIT_INVALID_CREDENTIALS, EXIT_NOT_MEMBER_OF_ORG, EXIT_REST_GENERIC, EXIT_SSL,
    EXIT_UNAUTHORIZED, RestError,
};
pub use transport::COMPAT_VERSION;
