//! Connection settings for [`RestClient`](crate::RestClient): where the platform is, how to log in,
//! which org to use, TLS, proxy, timeouts and the retry policy.
//!
//! The caller (the host) builds these from `app.config` `[resilient]`; this crate reads no files
//! and no environment, except that reqwest honours `HTTPS_PROXY`/`NO_PROXY` when no explicit
//! [`Proxy`] is configured (see [`RestConfig::proxy`]).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// Everything [`RestClient::connect`](crate::RestClient::connect) needs.
#[derive(Clone, Debug)]
pub struct RestConfig {
    /// Platform host name or address (`host` in `[resilient]`).
    pub host: String,
    /// HTTPS port (`port`, default 443).
    pub port: u16,
    /// Optional path prefix joined onto `https://host:port` like Python's `urljoin`
    /// (e.g. `/api/respond`).
    pub resource_prefix: Option<String>,
    /// The org to use: matched against `cloud_account`, then `uuid`, then `name`.
    pub org: Option<String>,
    /// How to authenticate.
    pub auth: Auth,
    /// A ready TLS configuration (from `soar_tls::client_config`).
    pub tls: Arc<rustls::ClientConfig>,
    /// An explicit proxy. When `Some`, it is used for every request and the `HTTPS_PROXY`/
    /// `NO_PROXY` environment is ignored. When `None`, reqwest honours `HTTPS_PROXY`,
    /// `ALL_PROXY` and `NO_PROXY`. (Upstream Python `requests` lets the environment win over
    /// `session.proxies`; here the explicit setting wins.)
    pub proxy: Option<Proxy>,
    /// Retry policy for `get`/`post`/`delete` and the login (§2.4).
    pub retry: RetryPolicy,
    /// Timeout of one HTTP request (connect + response). `Duration::ZERO` means none.
    pub timeout: Duration,
    /// `User-Agent` header; empty means `soar-rest/<version>`.
    pub user_agent: String,
}

/// How to authenticate to the platform. `Debug` never shows the secret or the password.
#[derive(Clone)]
pub enum Auth {
    /// API key: HTTP Basic `id:secret` on every request.
    ApiKey {
        /// `api_key_id`.
        id: String,
        /// `api_key_secret`.
        secret: String,
    },
    /// Email and password: a session cookie plus the `X-sess-id` CSRF header (deprecated upstream).
    Password {
        /// `email`.
        email: String,
        /// `password`.
        password: String,
    },
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::ApiKey { id, .. } => f
                .debug_struct("ApiKey")
                .field("id", id)
                .field("secret", &format_args!("***"))
                .finish(),
            Auth::Password { email, .. } => f
                .debug_struct("Password")
                .field("email", email)
                .field("password", &format_args!("***"))
                .finish(),
        }
    }
}

/// An explicit HTTP(S) proxy for all requests. `Debug` never shows the password.
#[derive(Clone)]
pub struct Proxy {
    /// Proxy URL, e.g. `http://proxy.example.com:3128`.
    pub url: String,
    /// Proxy user for Basic proxy authentication.
    pub user: Option<String>,
    /// Proxy password.
    pub password: Option<String>,
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Proxy")
            .field("url", &self.url)
            .field("user", &self.user)
            .field(
                "password",
                &self.password.as_ref().map(|_| format_args!("***")),
            )
            .finish()
    }
}

/// Retries of failed requests (§2.4): attempt `n` (0-based) is followed by a wait of
/// `delay * backoff^n`.
#[derive(Clone, Debug, PartialEq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (so `max_retries + 1` attempts at most). Upstream's
    /// `retry2` `tries=request_max_retries` counts *attempts*; pass `request_max_retries - 1`
    /// for exact parity.
    pub max_retries: u32,
    /// Wait before the first retry (`request_retry_delay`, 2 s).
    pub delay: Duration,
    /// Factor applied to the wait after each retry (`request_retry_backoff`, 2).
    pub backoff: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 5,
            delay: Duration::from_secs(2),
            backoff: 2.0,
        }
    }
}

impl RetryPolicy {
    /// The wait after failed attempt `attempt` (0-based), capped at one hour.
    pub fn delay_for(&self, attempt: u32) -> Duration {
        let factor = self.backoff.max(0.0).powi(attempt.min(64) as i32);
        let secs = (self.delay.as_secs_f64() * factor).min(3600.0);
        Duration::from_secs_f64(if secs.is_finite() { secs } else { 3600.0 })
    }
}

impl RestConfig {
    /// A configuration with the upstream defaults: no prefix, no org, no proxy,
    /// [`RetryPolicy::default`], a 60 s timeout and the default user agent.
    pub fn new(
        host: impl Into<String>,
        port: u16,
        auth: Auth,
        tls: Arc<rustls::ClientConfig>,
    ) -> Self {
        RestConfig {
            host: host.into(),
            port,
            resource_prefix: None,
            org: None,
            auth,
            tls,
            proxy: None,
            retry: RetryPolicy::default(),
            timeout: Duration::from_secs(60),
            user_agent: String::new(),
        }
    }

    /// `urljoin("https://{host}:{port}", resource_prefix)` without a trailing slash.
    ///
    /// Like Python's `urljoin`, a prefix that is itself an absolute URL replaces the base, a
    /// prefix starting with `/` replaces the (empty) path, and a relative prefix is appended.
    pub fn base_url(&self) -> String {
        let host = if self.host.contains(':') && !self.host.starts_with('[') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let base = format!("https://{host}:{}", self.port);
        let prefix = self.resource_prefix.as_deref().unwrap_or("").trim();
        let joined = if prefix.contains("://") {
            prefix.to_string()
        } else if prefix.is_empty() {
            base
        } else {
            format!("{base}/{}", prefix.trim_start_matches('/'))
        };
        joined.trim_end_matches('/').to_string()
    }
}
