//! Outbound HTTP to third-party services, built one way for every integration: the proxy, the
//! CA file (`cafile = false` turns verification off, nothing else does), the timeout, with
//! `[integrations]` as the fallback, and helpers for the error text and `Retry-After`.
//!
//! ```no_run
//! # fn f(setup: &soar_sdk::config::Setup) -> Result<(), soar_sdk::ConfigError> {
//! use soar_sdk::http::HttpOptions;
//! let client = setup.http_client("fn_example", &HttpOptions {
//!     url: "https://api.example.com/".into(),
//!     cafile: None,
//!     ..HttpOptions::default()
//! })?;
//! # let _ = client; Ok(()) }
//! ```

use std::sync::Arc;
use std::time::Duration;

pub use reqwest;
use reqwest::header::{HeaderMap, RETRY_AFTER};

use crate::config::{Integrations, Secret};

/// The default per-request timeout when neither the integration nor `[integrations]` sets one.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The longest `Retry-After` honoured as given (longer answers are capped to it).
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

/// How to reach one outside service.
#[derive(Debug, Clone, Default)]
pub struct HttpOptions {
    /// The service's base URL: an `http://` URL gets no TLS setup (an emulator), and it is named
    /// in errors.
    pub url: String,
    /// The integration's own proxy, `http://[user:password@]host:port`; else `[integrations]`'s
    /// `https_proxy`/`http_proxy`; else the environment's (`HTTPS_PROXY`, `NO_PROXY`, ...).
    pub proxy: Option<String>,
    /// Basic credentials for the proxy, when they are not in its URL.
    pub proxy_credentials: Option<(String, Secret)>,
    /// CA certificates for an `https` URL: a PEM file, `false` to skip verification, unset for
    /// the system's trust store.
    pub cafile: Option<String>,
    /// Per-request timeout; else `[integrations] timeout`; else [`DEFAULT_TIMEOUT`].
    pub timeout: Option<Duration>,
    /// `User-Agent` (default `soar-host/<version>`).
    pub user_agent: Option<String>,
}

/// Why a client cannot be built. [`HttpSetupError::key`] names the setting to fix.
#[derive(Debug, thiserror::Error)]
pub enum HttpSetupError {
    #[error("invalid proxy URL: {0}")]
    Proxy(String),
    #[error("{0}")]
    Tls(String),
    #[error("cannot build the HTTP client: {0}")]
    Build(String),
}

impl HttpSetupError {
    /// The app.config key the error is about.
    pub fn key(&self) -> &'static str {
        match self {
            HttpSetupError::Proxy(_) => "proxy",
            HttpSetupError::Tls(_) => "cafile",
            HttpSetupError::Build(_) => "url",
        }
    }
}

fn tls(options: &HttpOptions) -> Result<Arc<rustls::ClientConfig>, HttpSetupError> {
    let plain = options.url.starts_with("http://");
    if plain
        && options
            .cafile
            .as_deref()
            .is_none_or(|c| c.trim().is_empty())
    {
        // Plain HTTP (an emulator): reqwest still wants a TLS backend, without any root.
        let config = rustls::ClientConfig::builder_with_provider(soar_tls::provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| HttpSetupError::Tls(e.to_string()))?
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth();
        return Ok(Arc::new(config));
    }
    let source = soar_tls::CaSource::from_setting(options.cafile.as_deref());
    if source == soar_tls::CaSource::Insecure {
        tracing::warn!(
            "cafile = false for {}: TLS certificates are NOT verified",
            options.url
        );
    }
    soar_tls::client_config(&source).map_err(|e| HttpSetupError::Tls(e.to_string()))
}

/// Builds a client for `options`, falling back to `integrations` for the proxy and timeout.
pub fn client(
    options: &HttpOptions,
    integrations: &Integrations,
) -> Result<reqwest::Client, HttpSetupError> {
    let timeout = options
        .timeout
        .or(integrations.timeout.map(Duration::from_secs))
        .unwrap_or(DEFAULT_TIMEOUT);
    let user_agent = options
        .user_agent
        .clone()
        .unwrap_or_else(|| format!("soar-host/{}", env!("CARGO_PKG_VERSION")));
    let mut builder = reqwest::Client::builder()
        .tls_backend_preconfigured(rustls::ClientConfig::clone(&*tls(options)?))
        .user_agent(user_agent)
        .tcp_nodelay(true)
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)));
    let own = options
        .proxy
        .as_deref()
        .map(str::trim)
        .filter(|p| !p.is_empty());
    let proxy = match own {
        Some(url) => Some(reqwest::Proxy::all(url)),
        None => {
            let https = integrations
                .https_proxy
                .as_deref()
                .filter(|p| !p.is_empty());
            let http = integrations.http_proxy.as_deref().filter(|p| !p.is_empty());
            match (options.url.starts_with("https://"), https, http) {
                (true, Some(p), _) | (false, _, Some(p)) => Some(reqwest::Proxy::all(p)),
                _ => None,
            }
        }
    };
    if let Some(proxy) = proxy {
        let mut proxy = proxy.map_err(|e| HttpSetupError::Proxy(error_text(&e)))?;
        if let Some((user, password)) = &options.proxy_credentials {
            proxy = proxy.basic_auth(user, password.expose());
        }
        builder = builder.proxy(proxy);
    }
    builder
        .build()
        .map_err(|e| HttpSetupError::Build(error_text(&e)))
}

/// A reqwest error and its causes on one line, without the URL (which may carry a token).
pub fn error_text(e: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut text = e.to_string();
    if let Some(url) = e.url() {
        text = text
            .replace(&format!(" ({url})"), "")
            .replace(url.as_str(), "<url>");
    }
    let mut source = e.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    text
}

/// The wait a `Retry-After` header asks for (delta-seconds), capped at [`MAX_RETRY_AFTER`].
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let secs = headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()?;
    Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_bounded() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert(RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        h.insert(RETRY_AFTER, "99999999999999999".parse().unwrap());
        assert_eq!(retry_after(&h), Some(MAX_RETRY_AFTER));
        h.insert(RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn builds_for_http_and_rejects_bad_settings() {
        let none = Integrations::default();
        let plain = HttpOptions {
            url: "http://127.0.0.1:1/".into(),
            ..HttpOptions::default()
        };
        assert!(client(&plain, &none).is_ok());
        let bad_proxy = HttpOptions {
            proxy: Some("::not a url".into()),
            ..plain.clone()
        };
        assert_eq!(client(&bad_proxy, &none).unwrap_err().key(), "proxy");
        let bad_ca = HttpOptions {
            url: "https://example.com/".into(),
            cafile: Some("/nonexistent/ca.pem".into()),
            ..HttpOptions::default()
        };
        let e = client(&bad_ca, &none).unwrap_err();
        assert_eq!(e.key(), "cafile");
        assert!(e.to_string().contains("/nonexistent/ca.pem"), "{e}");
    }
}
