//! [`RestClient`]: connect (login, org selection, actions-framework check, server version) and
//! the typed calls the framework makes (§2.1, §2.3, §2.5).

use std::fmt;
use std::sync::Arc;

use reqwest::Method;
use serde_json::Value;
use tracing::{debug, info};

use crate::config::RestConfig;
use crate::error::RestError;
use crate::transport::{Opts, Transport, parse_json};

/// Answers above this size are parsed on the blocking pool.
const PARSE_OFF_REACTOR: usize = 256 * 1024;

/// An authenticated client bound to one org. Cheap to clone (an `Arc` inside).
#[derive(Clone)]
pub struct RestClient {
    inner: Arc<Inner>,
}

struct Inner {
    transport: Transport,
    org_id: i64,
    org_name: String,
    api_key_handle: Option<i64>,
    user_id: Option<i64>,
    orgs: Vec<Value>,
    org: Value,
    server_version: Option<String>,
}

impl fmt::Debug for RestClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RestClient")
            .field("base_url", &self.inner.transport.base_url)
            .field("org_id", &self.inner.org_id)
            .field("org_name", &self.inner.org_name)
            .field("user_id", &self.inner.user_id)
            .field("api_key_handle", &self.inner.api_key_handle)
            .finish_non_exhaustive()
    }
}

const RETRY: Opts<'static> = Opts {
    retry: true,
    skip: &[],
    login: false,
    handle_format_names: false,
    read_only: false,
};
const ONCE: Opts<'static> = Opts {
    retry: false,
    ..RETRY
};

impl RestClient {
    /// Log in (§2.2), select the org (§2.3), require `actions_framework_enabled` on
    /// `GET /rest/orgs/{id}`, then log the server version from `GET /rest/const` (errors there
    /// are ignored).
    pub async fn connect(config: RestConfig) -> Result<RestClient, RestError> {
        let transport = Transport::new(&config)?;
        let login = transport.login().await?;
        let orgs = match login.body.get("orgs") {
            Some(Value::Array(orgs)) => orgs.clone(),
            _ => Vec::new(),
        };
        let (org_id, org_name) = select_org(&orgs, config.org.as_deref())?;
        let url = format!("{}/rest/orgs/{org_id}", transport.base_url);
        let raw = transport.call(Method::GET, &url, None, RETRY).await?;
        let org = parse_json(&raw, "GET", &url)?;
        if org.get("actions_framework_enabled") != Some(&Value::Bool(true)) {
            return Err(RestError::ActionsFrameworkDisabled { org: org_name });
        }
        let const_url = transport.absolute_url("/const");
        let server_version = match transport.call(Method::GET, &const_url, None, ONCE).await {
            Ok(raw) => parse_json(&raw, "GET", &const_url)
                .ok()
                .and_then(|c| c.pointer("/server_version/version").cloned())
                .map(|v| v.as_str().map(str::to_string).unwrap_or(v.to_string())),
            Err(e) => {
                debug!("GET /rest/const failed (ignored): {e}");
                None
            }
        };
        if let Some(v) = &server_version {
            info!("IBM SOAR version: {v}");
        }
        info!(
            org_id,
            org = org_name.as_str(),
            base_url = transport.base_url.as_str(),
            "connected to IBM SOAR"
        );
        Ok(RestClient {
            inner: Arc::new(Inner {
                transport,
                org_id,
                org_name,
                api_key_handle: login.api_key_handle,
                user_id: login.user_id,
                orgs,
                org,
                server_version,
            }),
        })
    }

    /// The selected org's id.
    pub fn org_id(&self) -> i64 {
        self.inner.org_id
    }

    /// The selected org's name.
    pub fn org_name(&self) -> &str {
        &self.inner.org_name
    }

    /// `api_key_handle` from the API-key session response (None for password sessions).
    pub fn api_key_handle(&self) -> Option<i64> {
        self.inner.api_key_handle
    }

    /// `user_id` from the password session response (None for API keys, like upstream).
    pub fn user_id(&self) -> Option<i64> {
        self.inner.user_id
    }

    /// `https://host:port[prefix]`, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.inner.transport.base_url
    }

    /// Every org of the session response (`all_orgs` upstream).
    pub fn all_orgs(&self) -> &[Value] {
        &self.inner.orgs
    }

    /// The body of `GET /rest/orgs/{id}` fetched at connect.
    pub fn org(&self) -> &Value {
        &self.inner.org
    }

    /// `server_version.version` from `GET /rest/const`, if it answered.
    pub fn server_version(&self) -> Option<&str> {
        self.inner.server_version.as_deref()
    }

    /// `{base}/rest/orgs/{org_id}{uri}`.
    pub fn org_url(&self, uri: &str) -> String {
        format!("{}/rest/orgs/{}{uri}", self.base_url(), self.inner.org_id)
    }

    /// `{base}/rest{uri}`.
    pub fn absolute_url(&self, uri: &str) -> String {
        self.inner.transport.absolute_url(uri)
    }

    async fn json(
        &self,
        method: Method,
        url: String,
        body: Option<&Value>,
        opts: Opts<'_>,
    ) -> Result<Value, RestError> {
        let raw = self
            .inner
            .transport
            .call(method.clone(), &url, body, opts)
            .await?;
        if raw.body.len() <= PARSE_OFF_REACTOR {
            return parse_json(&raw, method.as_str(), &url);
        }
        // Megabytes of JSON (an incident with a huge description) take tens of milliseconds:
        // parsed on the blocking pool, not on the threads that carry every other invocation.
        let (m, u) = (method.to_string(), url.clone());
        tokio::task::spawn_blocking(move || parse_json(&raw, method.as_str(), &url))
            .await
            .unwrap_or_else(|e| {
                Err(RestError::Decode {
                    method: m,
                    url: u,
                    reason: format!("parsing the answer failed: {e}"),
                })
            })
    }

    /// `GET` an org-relative `uri`, retried.
    pub async fn get(&self, uri: &str) -> Result<Value, RestError> {
        self.json(Method::GET, self.org_url(uri), None, RETRY).await
    }

    /// `GET` an org-relative `uri`, retried except for the `skip_retry` statuses, which return
    /// `RestError::Http` at once (e.g. `/actions` skips 403, `/connectors/queues` 403/404/500).
    pub async fn get_skip(&self, uri: &str, skip_retry: &[u16]) -> Result<Value, RestError> {
        let opts = Opts {
            skip: skip_retry,
            ..RETRY
        };
        self.json(Method::GET, self.org_url(uri), None, opts).await
    }

    /// `POST` JSON to an org-relative `uri`. Retried only when the platform surely did not act
    /// on it (no connection, HTTP 429 or 503): after a timeout the error is
    /// [`RestError::Unconfirmed`], since a second POST could create a second note or artifact.
    pub async fn post(&self, uri: &str, body: &Value) -> Result<Value, RestError> {
        self.json(Method::POST, self.org_url(uri), Some(body), RETRY)
            .await
    }

    /// `PUT` JSON to an org-relative `uri`; not retried (like upstream).
    pub async fn put(&self, uri: &str, body: &Value) -> Result<Value, RestError> {
        self.json(Method::PUT, self.org_url(uri), Some(body), ONCE)
            .await
    }

    /// `PATCH` JSON to an org-relative `uri` with `handle_format: names`; not retried
    /// (upstream's 409/field-conflict callback loop is not implemented).
    pub async fn patch(&self, uri: &str, body: &Value) -> Result<Value, RestError> {
        let opts = Opts {
            handle_format_names: true,
            ..ONCE
        };
        self.json(Method::PATCH, self.org_url(uri), Some(body), opts)
            .await
    }

    /// `DELETE` an org-relative `uri`, retried; 204 or an empty body gives `None`.
    pub async fn delete(&self, uri: &str) -> Result<Option<Value>, RestError> {
        let url = self.org_url(uri);
        let raw = self
            .inner
            .transport
            .call(Method::DELETE, &url, None, RETRY)
            .await?;
        if raw.status == 204 {
            return Ok(None);
        }
        parse_json(&raw, "DELETE", &url).map(|v| (!v.is_null()).then_some(v))
    }

    /// `GET {base}/rest{uri}`, retried.
    pub async fn get_absolute(&self, uri: &str) -> Result<Value, RestError> {
        self.json(Method::GET, self.absolute_url(uri), None, RETRY)
            .await
    }

    /// `POST {base}/rest{uri}` that only reads (e.g. `/search_ex`), retried like a GET.
    pub async fn post_absolute(&self, uri: &str, body: &Value) -> Result<Value, RestError> {
        let opts = Opts {
            read_only: true,
            ..RETRY
        };
        self.json(Method::POST, self.absolute_url(uri), Some(body), opts)
            .await
    }

    /// `GET {base}/rest/const`, not retried (like upstream `get_const`).
    pub async fn get_const(&self) -> Result<Value, RestError> {
        self.json(Method::GET, self.absolute_url("/const"), None, ONCE)
            .await
    }

    /// `GET /functions/{name}?handle_format=names`; 404 gives `None` without retries.
    pub async fn get_function(&self, name: &str) -> Result<Option<Value>, RestError> {
        let uri = format!("/functions/{}?handle_format=names", encode_segment(name));
        match self.get_skip(&uri, &[404]).await {
            Ok(v) => Ok(Some(v)),
            Err(RestError::Http { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// Pick the configured org (§2.3): the first org whose `cloud_account`, `uuid` or `name`
/// equals `wanted`; it must be enabled. Returns `(id, name)`.
pub(crate) fn select_org(orgs: &[Value], wanted: Option<&str>) -> Result<(i64, String), RestError> {
    if orgs.is_empty() {
        return Err(RestError::NoOrgs);
    }
    let name_of = |o: &Value| {
        o.get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let available = || orgs.iter().map(name_of).collect::<Vec<_>>();
    let wanted = match wanted.map(str::trim) {
        Some(w) if !w.is_empty() => w,
        _ => {
            return Err(RestError::OrgNotSet {
                available: available(),
            });
        }
    };
    let field = |o: &Value, key: &str| o.get(key).and_then(Value::as_str) == Some(wanted);
    let org = orgs
        .iter()
        .find(|o| field(o, "cloud_account") || field(o, "uuid") || field(o, "name"))
        .ok_or_else(|| RestError::NotMemberOfOrg {
            org: wanted.into(),
            available: available(),
        })?;
    if org.get("enabled") == Some(&Value::Bool(false)) {
        return Err(RestError::OrgDisabled { org: wanted.into() });
    }
    let id = org
        .get("id")
        .and_then(Value::as_i64)
        .ok_or_else(|| RestError::Decode {
            method: "GET".into(),
            url: "/rest/session".into(),
            reason: format!("org '{wanted}' has no numeric id"),
        })?;
    Ok((id, name_of(org)))
}

/// Percent-encode a path segment (everything except RFC 3986 unreserved characters).
fn encode_segment(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn orgs() -> Vec<Value> {
        vec![
            json!({"id": 201, "name": "Test Org", "uuid": "u-1", "cloud_account": "ca-1", "enabled": true}),
            json!({"id": 202, "name": "ca-1", "uuid": "u-2", "enabled": true}),
            json!({"id": 203, "name": "Off", "uuid": "u-3", "enabled": false}),
        ]
    }

    #[test]
    fn selects_by_cloud_account_uuid_or_name() {
        assert_eq!(select_org(&orgs(), Some("ca-1")).unwrap().0, 201);
        assert_eq!(select_org(&orgs(), Some("u-2")).unwrap().0, 202);
        assert_eq!(
            select_org(&orgs(), Some("Test Org")).unwrap(),
            (201, "Test Org".into())
        );
    }

    #[test]
    fn org_errors() {
        assert!(matches!(select_org(&[], Some("x")), Err(RestError::NoOrgs)));
        let e = select_org(&orgs(), None).unwrap_err();
        assert!(e.to_string().contains("'Test Org', 'ca-1', 'Off'"), "{e}");
        let e = select_org(&orgs(), Some("Nope")).unwrap_err();
        assert_eq!(e.exit_code(), 24);
        assert!(e.to_string().contains("'Nope'"), "{e}");
        assert!(matches!(
            select_org(&orgs(), Some("Off")),
            Err(RestError::OrgDisabled { .. })
        ));
    }

    #[test]
    fn encodes_segments() {
        assert_eq!(encode_segment("fn_hello"), "fn_hello");
        assert_eq!(encode_segment("a b/c"), "a%20b%2Fc");
    }
}
