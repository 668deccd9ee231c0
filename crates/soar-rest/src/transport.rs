//! The HTTP layer under [`RestClient`](crate::RestClient): the reqwest client (preconfigured
//! rustls, TCP_NODELAY, pool, timeout, proxy), the per-request headers and credentials, the
//! logins (§2.2), the one-time re-login of password sessions on 401, and the retry loop (§2.4).

use std::sync::Mutex;
use std::time::Duration;

use reqwest::header::{CONTENT_TYPE, COOKIE, HeaderMap, HeaderValue, SET_COOKIE};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tracing::{debug, warn};

use crate::config::{Auth, RestConfig, RetryPolicy};
use crate::error::RestError;

/// The `Resilient-Module-Version` / `Resilient-Circuits-Version` we claim compatibility with.
pub const COMPAT_VERSION: &str = "51.0.9.1";

const INVALID_LOGIN_TEXT: &str = "Invalid user name or password";

/// A raw response: status, headers and body text.
pub(crate) struct Raw {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

/// How one call is made.
#[derive(Clone, Copy, Default)]
pub(crate) struct Opts<'a> {
    /// Retry on connection errors and statuses >= 300 (except 401 and `skip`).
    pub retry: bool,
    /// Statuses returned at once as `RestError::Http` without retry.
    pub skip: &'a [u16],
    /// This is a login: no session headers, no re-login, 401 may mean invalid credentials.
    pub login: bool,
    /// Send `handle_format: names` (PATCH).
    pub handle_format_names: bool,
    /// A POST that only reads (`/search_ex`): safe to send again like a GET.
    pub read_only: bool,
}

/// Statuses with which a server says it did not act on the request, so that even a POST may be
/// sent again (RFC 9110 §15.6.4 and RFC 6585 §4).
const NOT_PROCESSED: &[u16] = &[429, 503];

/// Password-session state: CSRF token, `JSESSIONID` cookie, and a generation counter so that
/// concurrent 401s cause a single re-login.
#[derive(Clone, Default)]
struct PasswordSession {
    csrf_token: String,
    cookie: String,
    generation: u64,
}

/// What a login returned.
pub(crate) struct LoginInfo {
    pub body: Value,
    pub user_id: Option<i64>,
    pub api_key_handle: Option<i64>,
}

pub(crate) struct Transport {
    http: reqwest::Client,
    pub base_url: String,
    addr: String,
    auth: Auth,
    retry: RetryPolicy,
    timeout: Duration,
    session: Mutex<PasswordSession>,
    relogin: tokio::sync::Mutex<()>,
}

impl Transport {
    pub fn new(config: &RestConfig) -> Result<Transport, RestError> {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(
            "Resilient-Module-Version",
            HeaderValue::from_static(COMPAT_VERSION),
        );
        headers.insert(
            "Resilient-Circuits-Version",
            HeaderValue::from_static(COMPAT_VERSION),
        );
        let user_agent = if config.user_agent.is_empty() {
            concat!("soar-rest/", env!("CARGO_PKG_VERSION")).to_string()
        } else {
            config.user_agent.clone()
        };
        let mut builder = reqwest::Client::builder()
            .tls_backend_preconfigured(rustls::ClientConfig::clone(&config.tls))
            .default_headers(headers)
            .user_agent(user_agent)
            .tcp_nodelay(true)
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(16);
        if !config.timeout.is_zero() {
            builder = builder.timeout(config.timeout);
        }
        if let Some(p) = &config.proxy {
            let mut proxy = reqwest::Proxy::all(p.url.as_str())
                .map_err(|e| RestError::Config(format!("invalid proxy URL '{}': {e}", p.url)))?;
            if let Some(user) = &p.user {
                proxy = proxy.basic_auth(user, p.password.as_deref().unwrap_or(""));
            }
            builder = builder.proxy(proxy);
        }
        let http = builder
            .build()
            .map_err(|e| RestError::Config(format!("cannot build the HTTP client: {e}")))?;
        Ok(Transport {
            http,
            base_url: config.base_url(),
            addr: format!("{}:{}", config.host, config.port),
            auth: config.auth.clone(),
            retry: config.retry.clone(),
            timeout: config.timeout,
            session: Mutex::new(PasswordSession::default()),
            relogin: tokio::sync::Mutex::new(()),
        })
    }

    /// `{base}/rest{uri}`.
    pub fn absolute_url(&self, uri: &str) -> String {
        format!("{}/rest{uri}", self.base_url)
    }

    fn session(&self) -> PasswordSession {
        self.session
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Log in (§2.2), with retries. For password auth the new session is stored.
    pub async fn login(&self) -> Result<LoginInfo, RestError> {
        let url = self.absolute_url("/session?include_permissions=false");
        let opts = Opts {
            retry: true,
            login: true,
            ..Opts::default()
        };
        match &self.auth {
            Auth::ApiKey { .. } => {
                let raw = self.call(Method::GET, &url, None, opts).await?;
                let body = parse_json(&raw, "GET", &url)?;
                Ok(LoginInfo {
                    api_key_handle: body.get("api_key_handle").and_then(Value::as_i64),
                    user_id: None,
                    body,
                })
            }
            Auth::Password { email, password } => {
                warn!(
                    "email/password authentication is deprecated; configure api_key_id/api_key_secret"
                );
                let creds = json!({"email": email, "password": password, "interactive": false});
                let raw = self.call(Method::POST, &url, Some(&creds), opts).await?;
                let body = parse_json(&raw, "POST", &url)?;
                let decode = |reason: &str| RestError::Decode {
                    method: "POST".into(),
                    url: url.clone(),
                    reason: reason.into(),
                };
                let csrf_token = body
                    .get("csrf_token")
                    .and_then(Value::as_str)
                    .ok_or_else(|| decode("the session response has no csrf_token"))?
                    .to_string();
                let cookie = jsessionid(&raw.headers)
                    .ok_or_else(|| decode("the session response sets no JSESSIONID cookie"))?;
                {
                    let mut s = self.session.lock().unwrap_or_else(|p| p.into_inner());
                    s.csrf_token = csrf_token;
                    s.cookie = cookie;
                    s.generation += 1;
                }
                Ok(LoginInfo {
                    user_id: body.get("user_id").and_then(Value::as_i64),
                    api_key_handle: None,
                    body,
                })
            }
        }
    }

    /// One request with credentials. Returns the response and the session generation used.
    async fn send_once(
        &self,
        method: &Method,
        url: &str,
        body: Option<&Value>,
        opts: Opts<'_>,
    ) -> Result<(Raw, u64), RestError> {
        let mut req = self.http.request(method.clone(), url);
        let mut generation = 0;
        match &self.auth {
            Auth::ApiKey { id, secret } => req = req.basic_auth(id, Some(secret)),
            Auth::Password { .. } if !opts.login => {
                let s = self.session();
                generation = s.generation;
                let mut sess_id = HeaderValue::from_str(&s.csrf_token).map_err(|_| {
                    RestError::Config("invalid csrf_token from the platform".into())
                })?;
                sess_id.set_sensitive(true);
                let mut cookie = HeaderValue::from_str(&format!("JSESSIONID={}", s.cookie))
                    .map_err(|_| {
                        RestError::Config("invalid JSESSIONID from the platform".into())
                    })?;
                cookie.set_sensitive(true);
                req = req.header("X-sess-id", sess_id).header(COOKIE, cookie);
            }
            Auth::Password { .. } => {}
        }
        if opts.handle_format_names {
            req = req.header("handle_format", "names");
        }
        if let Some(b) = body {
            // serde_json::Value always serialises.
            req = req.body(b.to_string());
        }
        let m = method.as_str();
        let map = |e: reqwest::Error| RestError::from_reqwest(&e, m, url, &self.addr, self.timeout);
        let resp = req.send().await.map_err(map)?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.text().await.map_err(map)?;
        debug!(method = m, url, status, "SOAR REST call");
        Ok((
            Raw {
                status,
                headers,
                body,
            },
            generation,
        ))
    }

    /// [`send_once`](Self::send_once), and for a password session answered with 401: log in
    /// again once (shared by concurrent callers) and resend.
    async fn send_authed(
        &self,
        method: &Method,
        url: &str,
        body: Option<&Value>,
        opts: Opts<'_>,
    ) -> Result<Raw, RestError> {
        let (raw, generation) = self.send_once(method, url, body, opts).await?;
        if raw.status != 401 || opts.login || !matches!(self.auth, Auth::Password { .. }) {
            return Ok(raw);
        }
        {
            let _guard = self.relogin.lock().await;
            if self.session().generation == generation {
                warn!(
                    method = method.as_str(),
                    url, "HTTP 401 with a password session: logging in again"
                );
                // Boxed: login -> call -> send_authed is recursive (never re-enters here).
                Box::pin(self.login()).await?;
            }
        }
        Ok(self.send_once(method, url, body, opts).await?.0)
    }

    /// A call with the retry policy of `opts`; returns only success responses (< 300).
    pub async fn call(
        &self,
        method: Method,
        url: &str,
        body: Option<&Value>,
        opts: Opts<'_>,
    ) -> Result<Raw, RestError> {
        let attempts = if opts.retry {
            self.retry.max_retries.saturating_add(1)
        } else {
            1
        };
        let m = method.as_str();
        // A call that creates something (a note, an artifact) is sent again only when the
        // platform surely did not act on it: a second POST after a timeout could add it twice.
        let repeatable = method.is_idempotent() || opts.read_only || opts.login;
        let mut attempt = 0;
        loop {
            let (err, status) = match self.send_authed(&method, url, body, opts).await {
                Ok(raw) if raw.status < 300 => return Ok(raw),
                Ok(raw) if raw.status == 401 => {
                    let message = platform_message(&raw.body);
                    return Err(if opts.login && raw.body.contains(INVALID_LOGIN_TEXT) {
                        RestError::InvalidCredentials {
                            url: url.into(),
                            message,
                        }
                    } else {
                        RestError::Unauthorized {
                            method: m.into(),
                            url: url.into(),
                            message,
                        }
                    });
                }
                Ok(raw) => {
                    let err = http_error(m, url, &raw);
                    if opts.skip.contains(&raw.status)
                        || !(repeatable || NOT_PROCESSED.contains(&raw.status))
                    {
                        return Err(err);
                    }
                    (err, Some(raw.status))
                }
                // Never sent (no connection): safe to send again whatever the method.
                Err(e @ RestError::Connect { .. }) => (e, None),
                Err(e) if e.is_transient() && !repeatable => return Err(e.unconfirmed()),
                Err(e) if e.is_transient() => (e, None),
                Err(e) => return Err(e),
            };
            attempt += 1;
            if attempt >= attempts {
                return Err(err);
            }
            let wait = self.retry.delay_for(attempt - 1);
            warn!(
                method = m,
                url,
                status,
                attempt,
                max_retries = self.retry.max_retries,
                "SOAR REST call failed ({err}); retrying in {wait:?}"
            );
            tokio::time::sleep(wait).await;
        }
    }
}

/// The JSON body of a success response; an empty body is `null`.
pub(crate) fn parse_json(raw: &Raw, method: &str, url: &str) -> Result<Value, RestError> {
    if raw.body.trim().is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_str(&raw.body).map_err(|e| RestError::Decode {
        method: method.into(),
        url: url.into(),
        reason: format!("the body is not JSON ({e}): {}", truncate(&raw.body, 200)),
    })
}

fn http_error(method: &str, url: &str, raw: &Raw) -> RestError {
    RestError::Http {
        method: method.into(),
        url: url.into(),
        status: raw.status,
        reason: StatusCode::from_u16(raw.status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("")
            .into(),
        body: platform_message(&raw.body),
    }
}

/// The platform's JSON `message`, else the first 500 characters of the body.
pub(crate) fn platform_message(body: &str) -> String {
    if let Ok(Value::Object(map)) = serde_json::from_str::<Value>(body)
        && let Some(Value::String(m)) = map.get("message")
    {
        return m.clone();
    }
    match body.trim() {
        "" => "(empty body)".into(),
        text => truncate(text, 500),
    }
}

fn truncate(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((i, _)) => format!("{}...", &text[..i]),
        None => text.to_string(),
    }
}

/// The `JSESSIONID` value from the `Set-Cookie` headers.
fn jsessionid(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next()?.trim().split_once('='))
        .find(|(name, _)| *name == "JSESSIONID")
        .map(|(_, value)| value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_prefers_json_field_and_truncates() {
        assert_eq!(platform_message(r#"{"message":"nope","x":1}"#), "nope");
        let long = "x".repeat(600);
        assert_eq!(platform_message(&long).len(), 503);
        assert_eq!(platform_message(""), "(empty body)");
    }

    #[test]
    fn finds_jsessionid() {
        let mut h = HeaderMap::new();
        h.append(SET_COOKIE, HeaderValue::from_static("other=1; Path=/"));
        h.append(
            SET_COOKIE,
            HeaderValue::from_static("JSESSIONID=abc123; Path=/; HttpOnly"),
        );
        assert_eq!(jsessionid(&h).as_deref(), Some("abc123"));
    }
}
