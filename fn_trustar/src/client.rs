//! The TruSTAR REST API v1.3 client (spec part C), the calls the integration uses.
//!
//! - OAuth client credentials: `POST <url>/oauth/token` with HTTP Basic `key:secret`; the token
//!   is cached and fetched again once when TruSTAR answers HTTP 400 "Expired oauth2 access
//!   token" (or "Invalid …"), then the call is repeated.
//! - HTTP 429 `{"waitTime": ms}`: the call waits and is repeated while the total wait stays
//!   within `max_wait` (60 s by default, as the Python SDK).
//! - Paged lists (`{items, pageNumber, pageSize, totalElements, hasNext}`) are followed to the end.
//! - Every error names the account's section and the call ([`TrustarError`]); the secret is
//!   never formatted.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use soar_sdk::Secret;
use soar_sdk::http::reqwest::{self, Method};

use crate::error::TrustarError;

/// The longest a client waits in total for TruSTAR's request limit by default.
pub const DEFAULT_MAX_WAIT: Duration = Duration::from_secs(60);

/// Where and how to reach one TruSTAR account.
#[derive(Debug, Clone)]
pub struct Connection {
    /// The app.config section (`trustar_soc`), for messages.
    pub account: String,
    /// The account's url without a trailing `/` (`https://api.trustar.co`).
    pub url: String,
    pub api_key: String,
    pub api_secret: Secret,
    /// The HTTP client (proxy, CA file, timeout), built by the SDK from the section.
    pub http: reqwest::Client,
    /// The longest total wait on TruSTAR's request limit for one call.
    pub max_wait: Duration,
}

/// `internal` (TruSTAR's report id) or `external` (our `RESILIENT{id}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdType {
    Internal,
    External,
}

impl IdType {
    fn as_str(self) -> &'static str {
        match self {
            IdType::Internal => "internal",
            IdType::External => "external",
        }
    }
}

/// A TruSTAR report (C.2); `to_dict` keys, every one present.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    #[serde(default)]
    pub report_body: Option<String>,
    #[serde(default)]
    pub updated: Option<i64>,
    #[serde(default)]
    pub external_url: Option<String>,
    #[serde(default)]
    pub created: Option<i64>,
    #[serde(default)]
    pub distribution_type: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub time_began: Option<Value>,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub enclave_ids: Vec<String>,
    #[serde(default)]
    pub external_tracking_id: Option<String>,
}

/// A TruSTAR indicator (C.2); the fields the integration reads.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Indicator {
    #[serde(default)]
    pub value: String,
    #[serde(default)]
    pub indicator_type: Option<String>,
    #[serde(default)]
    pub priority_level: Option<String>,
    #[serde(default)]
    pub correlation_count: Option<i64>,
    #[serde(default)]
    pub whitelisted: Option<bool>,
}

/// One TruSTAR account's client. Cheap to clone; the token is shared.
#[derive(Debug, Clone)]
pub struct TrustarClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    conn: Connection,
    http: reqwest::Client,
    token: tokio::sync::Mutex<Option<String>>,
}

/// What TruSTAR answered: status and body text.
struct Answer {
    status: u16,
    text: String,
}

const MAX_PAGES: usize = 10_000;
/// Pages an indicator search reads at most.
const MAX_SEARCH_PAGES: usize = 10;

impl TrustarClient {
    /// The client of one account (no network traffic).
    pub fn new(conn: Connection) -> TrustarClient {
        TrustarClient {
            inner: Arc::new(Inner {
                http: conn.http.clone(),
                conn,
                token: tokio::sync::Mutex::new(None),
            }),
        }
    }

    /// The account's section name.
    pub fn account(&self) -> &str {
        &self.inner.conn.account
    }

    /// The account's url (no trailing `/`), the base of deeplinks.
    pub fn url(&self) -> &str {
        &self.inner.conn.url
    }

    /// `"<url>/constellation/reports/<report id>"`.
    pub fn report_deeplink(&self, report_id: &str) -> String {
        format!("{}/constellation/reports/{report_id}", self.url())
    }

    /// `"<url>/constellation/reports/" + base64("<TYPE>%7C<VALUE>")`.
    pub fn indicator_deeplink(&self, indicator_type: &str, value: &str) -> String {
        use base64::Engine;
        let raw = format!("{indicator_type}%7C{value}");
        format!(
            "{}/constellation/reports/{}",
            self.url(),
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }

    async fn fetch_token(&self) -> Result<String, TrustarError> {
        let conn = &self.inner.conn;
        let url = format!("{}/oauth/token", conn.url);
        let resp = self
            .inner
            .http
            .post(&url)
            .basic_auth(&conn.api_key, Some(conn.api_secret.expose()))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body("grant_type=client_credentials")
            .send()
            .await
            .map_err(|e| self.unreachable("POST oauth/token", &url, &e))?;
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        if status >= 400 {
            return Err(TrustarError::Token {
                account: conn.account.clone(),
                status,
                message: message_of(&text),
            });
        }
        serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v["access_token"].as_str().map(str::to_string))
            .ok_or_else(|| TrustarError::Decode {
                account: conn.account.clone(),
                call: "POST oauth/token".to_string(),
                reason: "no access_token in the answer".to_string(),
            })
    }

    async fn token(&self, refresh: bool) -> Result<String, TrustarError> {
        let mut guard = self.inner.token.lock().await;
        match guard.as_ref() {
            Some(t) if !refresh => Ok(t.clone()),
            _ => {
                let t = self.fetch_token().await?;
                *guard = Some(t.clone());
                Ok(t)
            }
        }
    }

    fn unreachable(&self, call: &str, url: &str, e: &reqwest::Error) -> TrustarError {
        TrustarError::Unreachable {
            account: self.inner.conn.account.clone(),
            call: call.to_string(),
            url: url.to_string(),
            reason: soar_sdk::http::error_text(e),
        }
    }

    /// One API call with token refresh and 429 waits; an error for any status ≥ 400.
    async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Answer, TrustarError> {
        let conn = &self.inner.conn;
        let call = format!("{method} {path}");
        let url = format!("{}/api/1.3/{path}", conn.url);
        let mut refreshed = false;
        let started = Instant::now();
        let mut token = self.token(false).await?;
        loop {
            let mut req = self
                .inner
                .http
                .request(method.clone(), &url)
                .bearer_auth(&token)
                .header("Client-Type", "Python_SDK")
                .header("Client-Version", "1.3")
                .header("Client-Metatag", "Resilient")
                .query(query);
            if let Some(b) = body {
                req = req.json(b);
            }
            let resp = req
                .send()
                .await
                .map_err(|e| self.unreachable(&call, &url, &e))?;
            let status = resp.status().as_u16();
            let text = resp.text().await.unwrap_or_default();
            if status == 400 && !refreshed && token_problem(&text) {
                tracing::info!(
                    "TruSTAR account [{}]: token refused, fetching a new one",
                    conn.account
                );
                refreshed = true;
                token = self.token(true).await?;
                continue;
            }
            if status == 429 {
                let wait_ms = serde_json::from_str::<Value>(&text)
                    .ok()
                    .and_then(|v| v["waitTime"].as_u64())
                    .unwrap_or(1000);
                let waited = started.elapsed();
                let wait = Duration::from_millis(wait_ms);
                if waited + wait > conn.max_wait {
                    return Err(TrustarError::RateLimited {
                        account: conn.account.clone(),
                        call,
                        wait_ms,
                        max_ms: conn.max_wait.as_millis() as u64,
                    });
                }
                tracing::info!(
                    "TruSTAR account [{}]: {call}: request limit reached, waiting {wait_ms} ms",
                    conn.account
                );
                tokio::time::sleep(wait).await;
                continue;
            }
            if status >= 400 {
                return Err(TrustarError::Http {
                    account: conn.account.clone(),
                    call,
                    status,
                    message: message_of(&text),
                });
            }
            return Ok(Answer { status, text });
        }
    }

    async fn call_json(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Value, TrustarError> {
        let answer = self.call(method.clone(), path, query, body).await?;
        serde_json::from_str(&answer.text).map_err(|e| TrustarError::Decode {
            account: self.account().to_string(),
            call: format!("{method} {path}"),
            reason: format!("not JSON (HTTP {}): {e}", answer.status),
        })
    }

    fn decode<T: serde::de::DeserializeOwned>(
        &self,
        call: &str,
        v: Value,
    ) -> Result<T, TrustarError> {
        serde_json::from_value(v).map_err(|e| TrustarError::Decode {
            account: self.account().to_string(),
            call: call.to_string(),
            reason: e.to_string(),
        })
    }

    /// Every item of a paged list, following `hasNext`.
    async fn pages(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<Vec<Value>, TrustarError> {
        self.pages_upto(path, query, MAX_PAGES).await
    }

    /// The items of at most `max_pages` pages of a paged list, following `hasNext`.
    async fn pages_upto(
        &self,
        path: &str,
        query: &[(&str, String)],
        max_pages: usize,
    ) -> Result<Vec<Value>, TrustarError> {
        let mut out = Vec::new();
        for number in 0..max_pages {
            let mut q = query.to_vec();
            q.push(("pageNumber", number.to_string()));
            let page = self.call_json(Method::GET, path, &q, None).await?;
            let items = page["items"].as_array().cloned().unwrap_or_default();
            let empty = items.is_empty();
            out.extend(items);
            let more = match page["hasNext"].as_bool() {
                Some(more) => more,
                None => {
                    let total = page["totalElements"].as_u64().unwrap_or(0);
                    let size = page["pageSize"].as_u64().unwrap_or(0).max(1);
                    (number as u64 + 1) < total.div_ceil(size)
                }
            };
            if !more || empty {
                break;
            }
        }
        Ok(out)
    }

    /// `GET ping` → `pong`.
    pub async fn ping(&self) -> Result<String, TrustarError> {
        let a = self.call(Method::GET, "ping", &[], None).await?;
        Ok(a.text.trim().to_string())
    }

    /// `POST reports`; returns the new report's id.
    pub async fn submit_report(&self, report: &Report) -> Result<String, TrustarError> {
        let body = serde_json::to_value(report).unwrap_or_default();
        let a = self.call(Method::POST, "reports", &[], Some(&body)).await?;
        let id = a.text.trim().trim_matches('"').to_string();
        if id.is_empty() {
            return Err(TrustarError::Decode {
                account: self.account().to_string(),
                call: "POST reports".to_string(),
                reason: "no report id in the answer".to_string(),
            });
        }
        Ok(id)
    }

    /// `GET reports/{id}?idType=…`.
    pub async fn get_report(&self, id: &str, id_type: IdType) -> Result<Report, TrustarError> {
        let path = format!("reports/{}", encode_segment(id));
        let v = self
            .call_json(
                Method::GET,
                &path,
                &[("idType", id_type.as_str().to_string())],
                None,
            )
            .await?;
        self.decode(&format!("GET {path}"), v)
    }

    /// `PUT reports/{id}?idType=internal` with the full report.
    pub async fn update_report(&self, report: &Report) -> Result<(), TrustarError> {
        let id = report.id.clone().unwrap_or_default();
        let body = serde_json::to_value(report).unwrap_or_default();
        self.call(
            Method::PUT,
            &format!("reports/{}", encode_segment(&id)),
            &[("idType", "internal".to_string())],
            Some(&body),
        )
        .await?;
        Ok(())
    }

    /// `DELETE reports/{id}?idType=…`.
    pub async fn delete_report(&self, id: &str, id_type: IdType) -> Result<(), TrustarError> {
        self.call(
            Method::DELETE,
            &format!("reports/{}", encode_segment(id)),
            &[("idType", id_type.as_str().to_string())],
            None,
        )
        .await?;
        Ok(())
    }

    /// `POST reports/{id}/alter-tags?idType=internal` with `{"addedTags": [{"name"}…],
    /// "removedTags": [{"name"}…]}`: TruSTAR's current way to tag a report (report tags are no
    /// longer per enclave; the SDK 0.3.34 deprecated `POST reports/{id}/tags` for it).
    pub async fn alter_report_tags(
        &self,
        report_id: &str,
        added: &[&str],
        removed: &[&str],
    ) -> Result<(), TrustarError> {
        let names =
            |tags: &[&str]| -> Vec<Value> { tags.iter().map(|t| json!({"name": t})).collect() };
        let body = json!({"addedTags": names(added), "removedTags": names(removed)});
        self.call(
            Method::POST,
            &format!("reports/{}/alter-tags", encode_segment(report_id)),
            &[("idType", "internal".to_string())],
            Some(&body),
        )
        .await?;
        Ok(())
    }

    /// Every indicator extracted from a report (all pages).
    pub async fn report_indicators(&self, report_id: &str) -> Result<Vec<Indicator>, TrustarError> {
        let path = format!("reports/{}/indicators", encode_segment(report_id));
        let items = self.pages(&path, &[]).await?;
        self.decode(&format!("GET {path}"), Value::Array(items))
    }

    /// Indicators related to `values` in the reports of `enclave_ids` (all pages).
    pub async fn related_indicators(
        &self,
        values: &[String],
        enclave_ids: &[String],
    ) -> Result<Vec<Indicator>, TrustarError> {
        let mut q: Vec<(&str, String)> = values.iter().map(|v| ("indicators", v.clone())).collect();
        q.extend(enclave_ids.iter().map(|e| ("enclaveIds", e.clone())));
        let items = self.pages("indicators/related", &q).await?;
        self.decode("GET indicators/related", Value::Array(items))
    }

    /// Indicators matching `term` with their priority level (all pages).
    pub async fn search_indicators(
        &self,
        term: &str,
        enclave_ids: &[String],
    ) -> Result<Vec<Indicator>, TrustarError> {
        let mut q: Vec<(&str, String)> = vec![("searchTerm", term.to_string())];
        q.extend(enclave_ids.iter().map(|e| ("enclaveIds", e.clone())));
        // A common value matches many indicators: a lookup reads a bounded number of pages
        // (TruSTAR allows 60 calls a minute).
        let items = self
            .pages_upto("indicators/search", &q, MAX_SEARCH_PAGES)
            .await?;
        self.decode("GET indicators/search", Value::Array(items))
    }

    /// `GET indicators/metadata?values=…`.
    pub async fn indicators_metadata(
        &self,
        values: &[String],
    ) -> Result<Vec<Indicator>, TrustarError> {
        let q: Vec<(&str, String)> = values.iter().map(|v| ("values", v.clone())).collect();
        let v = self
            .call_json(Method::GET, "indicators/metadata", &q, None)
            .await?;
        self.decode("GET indicators/metadata", v)
    }

    /// `POST whitelist` with the terms; returns the recognised ones with their types.
    pub async fn whitelist_add(&self, terms: &[String]) -> Result<Vec<Indicator>, TrustarError> {
        let body = Value::Array(terms.iter().map(|t| Value::String(t.clone())).collect());
        let v = self
            .call_json(Method::POST, "whitelist", &[], Some(&body))
            .await?;
        self.decode("POST whitelist", v)
    }

    /// `DELETE whitelist?value=…[&indicatorType=…]` (no type sent when unknown).
    pub async fn whitelist_delete(
        &self,
        value: &str,
        indicator_type: Option<&str>,
    ) -> Result<(), TrustarError> {
        let mut q = vec![("value", value.to_string())];
        if let Some(t) = indicator_type.filter(|t| !t.is_empty()) {
            q.push(("indicatorType", t.to_string()));
        }
        self.call(Method::DELETE, "whitelist", &q, None).await?;
        Ok(())
    }

    /// `GET enclaves`.
    pub async fn enclaves(&self) -> Result<Vec<Value>, TrustarError> {
        let v = self.call_json(Method::GET, "enclaves", &[], None).await?;
        self.decode("GET enclaves", v)
    }
}

fn token_problem(text: &str) -> bool {
    text.contains("Expired oauth2 access token") || text.contains("Invalid oauth2 access token")
}

/// TruSTAR's `message` (or `error_description`), else the start of the body.
fn message_of(text: &str) -> String {
    if let Ok(v) = serde_json::from_str::<Value>(text) {
        for key in ["message", "error_description", "error"] {
            if let Some(m) = v[key].as_str() {
                return m.to_string();
            }
        }
    }
    let t = text.trim();
    if t.is_empty() {
        "unknown cause".to_string()
    } else {
        t.chars().take(300).collect()
    }
}

/// Percent-encodes a path segment (report ids are uuids or `RESILIENT<n>`, but be safe).
fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deeplinks_follow_the_plugin() {
        let c = TrustarClient::new(Connection {
            account: "trustar_a".into(),
            url: "http://127.0.0.1:1".into(),
            api_key: "k".into(),
            api_secret: Secret::new("s"),
            http: soar_sdk::http::client(
                &soar_sdk::http::HttpOptions {
                    url: "http://127.0.0.1:1".into(),
                    ..Default::default()
                },
                &Default::default(),
            )
            .unwrap(),
            max_wait: DEFAULT_MAX_WAIT,
        });
        assert_eq!(
            c.report_deeplink("abc"),
            "http://127.0.0.1:1/constellation/reports/abc"
        );
        // base64("URL%7Cevil.com")
        assert_eq!(
            c.indicator_deeplink("URL", "evil.com"),
            "http://127.0.0.1:1/constellation/reports/VVJMJTdDZXZpbC5jb20="
        );
        assert!(!format!("{c:?}").contains("\"s\""));
    }

    #[test]
    fn reads_trustar_messages() {
        assert_eq!(
            message_of(r#"{"message":"Report not found"}"#),
            "Report not found"
        );
        assert_eq!(message_of(""), "unknown cause");
        assert!(token_problem(
            r#"{"error_description":"Expired oauth2 access token"}"#
        ));
    }
}
