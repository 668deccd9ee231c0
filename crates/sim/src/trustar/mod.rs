//! The TruSTAR REST API v1.3 emulator: a standalone HTTP server that answers what the TruSTAR
//! integration and TruSTAR's own Python SDK (`trustar`) ask.
//!
//! [`TrustarEmulator::start`] binds a port and serves:
//! - `POST /oauth/token` (HTTP Basic `key:secret`, `grant_type=client_credentials`) and bearer
//!   tokens on every `/api/1.3/…` call, answered like TruSTAR: HTTP 400 with
//!   `error_description` "Invalid oauth2 access token" or "Expired oauth2 access token";
//! - `ping`, `version`, `enclaves`, `request-quotas`;
//! - `reports`: submit (answers the id as plain text), get, update (`PUT`), delete, by internal
//!   id or by external tracking id (`idType=external`); `reports/{id}/indicators` (extracted from
//!   the body, [`extract`]), `reports/{id}/tags`;
//! - `indicators/related` (indicators of the other reports sharing one of the given values),
//!   `indicators/search` (GET and POST), `indicators/metadata` (GET and POST), with priority
//!   levels from seed data ([`TrustarEmulator::set_priority`]);
//! - `whitelist`: add (`POST` a JSON array of terms), delete (`DELETE ?value=&indicatorType=`),
//!   list; whitelisted values are no longer extracted.
//!
//! Lists are pages `{items, pageNumber, pageSize, totalElements, hasNext}`. Faults on demand:
//! expire every issued token ([`TrustarEmulator::expire_tokens`]), answer HTTP 429 with a
//! `waitTime` in milliseconds ([`TrustarEmulator::rate_limit_next`]), be down (HTTP 503,
//! [`TrustarEmulator::set_unavailable`]) or slow ([`TrustarEmulator::set_delay`]). The
//! inspection API shows the reports, whitelist, requests and tokens.

pub mod extract;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::messages::now_ms;

/// Settings of a [`TrustarEmulator`].
#[derive(Clone)]
pub struct TrustarConfig {
    /// Address to bind (127.0.0.1).
    pub bind: IpAddr,
    /// Port; 0 = ephemeral.
    pub port: u16,
    /// The API key accepted at `/oauth/token`.
    pub api_key: String,
    /// The API secret accepted at `/oauth/token`.
    pub api_secret: String,
    /// The enclaves the user may read and write: `(id, name)`.
    pub enclaves: Vec<(String, String)>,
}

impl Default for TrustarConfig {
    fn default() -> Self {
        TrustarConfig {
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            api_key: "trustar-api-key".to_string(),
            api_secret: "trustar-api-secret".to_string(),
            enclaves: vec![
                (
                    "7a33144f-aef3-442b-87d4-dbf70d8afdb0".to_string(),
                    "My Enclave".to_string(),
                ),
                (
                    "2e6bd1a8-5c3b-4e1e-9e7a-0c9d6c0b6f11".to_string(),
                    "Community Enclave".to_string(),
                ),
            ],
        }
    }
}

impl std::fmt::Debug for TrustarConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrustarConfig")
            .field("bind", &self.bind)
            .field("port", &self.port)
            .field("api_key", &self.api_key)
            .field("api_secret", &"<redacted>")
            .field("enclaves", &self.enclaves)
            .finish()
    }
}

/// One request the emulator answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    /// HTTP method.
    pub method: String,
    /// Path relative to `/api/1.3` (`reports/RESILIENT5`), or `/oauth/token`.
    pub path: String,
    /// The raw query string.
    pub query: String,
    /// The status answered.
    pub status: u16,
}

#[derive(Debug, Clone)]
struct Report {
    id: String,
    title: String,
    body: String,
    time_began: i64,
    external_url: Value,
    distribution: String,
    external_id: Option<String>,
    enclaves: Vec<String>,
    created: i64,
    updated: i64,
    tags: Vec<Value>,
    indicators: Vec<(&'static str, String)>,
}

impl Report {
    fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "title": self.title,
            "reportBody": self.body,
            "timeBegan": self.time_began,
            "externalUrl": self.external_url,
            "distributionType": self.distribution,
            "externalTrackingId": self.external_id,
            "externalId": self.external_id,
            "enclaveIds": self.enclaves,
            "created": self.created,
            "updated": self.updated,
            "sector": {"id": 1, "label": "Other", "name": "Other"},
        })
    }
}

#[derive(Default)]
struct EmuState {
    reports: BTreeMap<String, Report>,
    order: Vec<String>,
    tokens: HashMap<String, bool>,
    tokens_issued: u64,
    priorities: HashMap<String, (String, String)>,
    whitelist: Vec<(String, String)>,
    requests: Vec<RequestRecord>,
    rate_limit: Option<(u32, u64)>,
    unavailable: bool,
    delay: Duration,
    counter: u64,
}

struct Shared {
    config: TrustarConfig,
    state: Mutex<EmuState>,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, EmuState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A running TruSTAR emulator; it stops when dropped or on [`TrustarEmulator::shutdown`].
pub struct TrustarEmulator {
    addr: SocketAddr,
    shared: Arc<Shared>,
    cancel: CancellationToken,
}

impl std::fmt::Debug for TrustarEmulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrustarEmulator")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Drop for TrustarEmulator {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

impl TrustarEmulator {
    /// Binds and serves until shut down.
    pub async fn start(config: TrustarConfig) -> std::io::Result<TrustarEmulator> {
        let listener = TcpListener::bind((config.bind, config.port)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            config,
            state: Mutex::new(EmuState::default()),
        });
        let cancel = CancellationToken::new();
        let app = Router::new().fallback(handle).with_state(shared.clone());
        let stop = cancel.clone();
        tokio::spawn(async move {
            let server = axum::serve(listener, app).with_graceful_shutdown(async move {
                stop.cancelled().await;
            });
            if let Err(e) = server.await {
                tracing::warn!("TruSTAR emulator stopped: {e}");
            }
        });
        Ok(TrustarEmulator {
            addr,
            shared,
            cancel,
        })
    }

    /// `http://127.0.0.1:PORT`: the `url` of a `[trustar_<name>]` section.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The configured API key.
    pub fn api_key(&self) -> &str {
        &self.shared.config.api_key
    }

    /// The configured API secret.
    pub fn api_secret(&self) -> &str {
        &self.shared.config.api_secret
    }

    /// The enclave ids the user may use.
    pub fn enclave_ids(&self) -> Vec<String> {
        self.shared
            .config
            .enclaves
            .iter()
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Stops serving.
    pub async fn shutdown(&self) {
        self.cancel.cancel();
    }

    /// Every report, oldest first, as `GET reports/{id}` answers it.
    pub fn reports(&self) -> Vec<Value> {
        let st = self.shared.state();
        st.order
            .iter()
            .filter_map(|id| st.reports.get(id))
            .map(Report::to_json)
            .collect()
    }

    /// The report with external tracking id `external_id` (`RESILIENT5`).
    pub fn report_by_external_id(&self, external_id: &str) -> Option<Value> {
        let st = self.shared.state();
        st.reports
            .values()
            .find(|r| r.external_id.as_deref() == Some(external_id))
            .map(Report::to_json)
    }

    /// The tags of a report (by internal id).
    pub fn report_tags(&self, id: &str) -> Vec<Value> {
        self.shared
            .state()
            .reports
            .get(id)
            .map(|r| r.tags.clone())
            .unwrap_or_default()
    }

    /// The indicators extracted from a report (by internal id), as `(type, value)`.
    pub fn report_indicators(&self, id: &str) -> Vec<(String, String)> {
        self.shared
            .state()
            .reports
            .get(id)
            .map(|r| {
                r.indicators
                    .iter()
                    .map(|(t, v)| (t.to_string(), v.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Stores a report as if another TruSTAR user had submitted it (for correlations); returns
    /// its id.
    pub fn add_report(&self, title: &str, body: &str, enclave_id: &str) -> String {
        let mut st = self.shared.state();
        let id = next_uuid(&mut st);
        let now = now_ms() as i64;
        let indicators = extract_unlisted(&st, body);
        st.reports.insert(
            id.clone(),
            Report {
                id: id.clone(),
                title: title.to_string(),
                body: body.to_string(),
                time_began: now,
                external_url: Value::Null,
                distribution: "ENCLAVE".to_string(),
                external_id: None,
                enclaves: vec![enclave_id.to_string()],
                created: now,
                updated: now,
                tags: Vec::new(),
                indicators,
            },
        );
        st.order.push(id.clone());
        id
    }

    /// Seeds the priority level (`HIGH`, `MEDIUM`, `LOW`) of an indicator; its type is guessed
    /// when `indicator_type` is `None`.
    pub fn set_priority(&self, value: &str, indicator_type: Option<&str>, level: &str) {
        let ty = indicator_type
            .map(str::to_string)
            .or_else(|| extract::classify(value).map(str::to_string))
            .unwrap_or_else(|| "URL".to_string());
        self.shared
            .state()
            .priorities
            .insert(value.to_ascii_lowercase(), (ty, level.to_string()));
    }

    /// The whitelist as `(indicatorType, value)`.
    pub fn whitelist(&self) -> Vec<(String, String)> {
        self.shared.state().whitelist.clone()
    }

    /// Every request answered so far.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared.state().requests.clone()
    }

    /// Forgets the request log.
    pub fn clear_requests(&self) {
        self.shared.state().requests.clear();
    }

    /// How many tokens `/oauth/token` issued.
    pub fn tokens_issued(&self) -> u64 {
        self.shared.state().tokens_issued
    }

    /// Makes every token issued so far expired: the next call with one gets HTTP 400
    /// "Expired oauth2 access token".
    pub fn expire_tokens(&self) {
        for expired in self.shared.state().tokens.values_mut() {
            *expired = true;
        }
    }

    /// The next `count` API calls get HTTP 429 with `waitTime` = `wait_ms`.
    pub fn rate_limit_next(&self, count: u32, wait_ms: u64) {
        self.shared.state().rate_limit = (count > 0).then_some((count, wait_ms));
    }

    /// While `down`, every request gets HTTP 503.
    pub fn set_unavailable(&self, down: bool) {
        self.shared.state().unavailable = down;
    }

    /// Delays every API answer (to make lookups slow).
    pub fn set_delay(&self, delay: Duration) {
        self.shared.state().delay = delay;
    }
}

fn next_uuid(st: &mut EmuState) -> String {
    st.counter += 1;
    uuid::Uuid::new_v4().to_string()
}

fn extract_unlisted(st: &EmuState, body: &str) -> Vec<(&'static str, String)> {
    extract::extract(body)
        .into_iter()
        .filter(|(_, v)| !st.whitelist.iter().any(|(_, w)| w.eq_ignore_ascii_case(v)))
        .collect()
}

/// The query string as ordered `(key, value)` pairs (repeated keys kept).
fn query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

struct Query(Vec<(String, String)>);

impl Query {
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `key`, comma-separated values split too.
    fn all(&self, key: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .flat_map(|(_, v)| v.split(',').map(|s| s.trim().to_string()))
            .filter(|s| !s.is_empty())
            .collect()
    }

    fn number(&self, key: &str) -> Option<usize> {
        self.get(key).and_then(|v| v.parse().ok())
    }
}

fn json_response(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

fn text_response(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain;charset=UTF-8")],
        body,
    )
        .into_response()
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    let message = message.into();
    json_response(
        status,
        json!({"status": status.as_u16(), "error": status.canonical_reason(), "message": message}),
    )
}

fn page(items: Vec<Value>, q: &Query, default_size: usize) -> Value {
    let size = q.number("pageSize").unwrap_or(default_size).clamp(1, 1000);
    let number = q.number("pageNumber").unwrap_or(0);
    let total = items.len();
    let start = number.saturating_mul(size).min(total);
    let end = (start + size).min(total);
    json!({
        "items": items[start..end].to_vec(),
        "pageNumber": number,
        "pageSize": size,
        "totalElements": total,
        "hasNext": end < total,
    })
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    let query = uri.query().unwrap_or_default().to_string();
    let delay = shared.state().delay;
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let response = route(&shared, &method, &path, &query, &headers, &body);
    let rel = path
        .strip_prefix("/api/1.3/")
        .map(str::to_string)
        .unwrap_or(path);
    shared.state().requests.push(RequestRecord {
        method: method.to_string(),
        path: rel,
        query,
        status: response.status().as_u16(),
    });
    response
}

fn route(
    shared: &Shared,
    method: &Method,
    path: &str,
    query: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let mut st = shared.state();
    if st.unavailable {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "TruSTAR is temporarily unavailable",
        );
    }
    if path == "/oauth/token" {
        return token(shared, &mut st, method, headers, body);
    }
    let Some(rel) = path.strip_prefix("/api/1.3/") else {
        return error(StatusCode::NOT_FOUND, format!("No handler for {path}"));
    };
    // Bearer token.
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match bearer.and_then(|t| st.tokens.get(t)) {
        None => {
            return json_response(
                StatusCode::BAD_REQUEST,
                json!({"error": "invalid_token", "error_description": "Invalid oauth2 access token"}),
            );
        }
        Some(true) => {
            return json_response(
                StatusCode::BAD_REQUEST,
                json!({"error": "invalid_token", "error_description": "Expired oauth2 access token"}),
            );
        }
        Some(false) => {}
    }
    if let Some((count, wait)) = st.rate_limit {
        st.rate_limit = (count > 1).then_some((count - 1, wait));
        return json_response(
            StatusCode::TOO_MANY_REQUESTS,
            json!({
                "message": format!("Request limit exceeded for the current time period. Please wait {wait} milliseconds before making more requests."),
                "waitTime": wait,
            }),
        );
    }
    let q = Query(query_pairs(query));
    let segments: Vec<String> = rel
        .trim_end_matches('/')
        .split('/')
        .map(percent_decode)
        .collect();
    let seg: Vec<&str> = segments.iter().map(String::as_str).collect();
    let json_body = || serde_json::from_slice::<Value>(body).ok();
    match (method.as_str(), seg.as_slice()) {
        ("GET", ["ping"]) => text_response(StatusCode::OK, "pong\n".to_string()),
        ("GET", ["version"]) => text_response(StatusCode::OK, "1.3\n".to_string()),
        ("GET", ["enclaves"]) => json_response(
            StatusCode::OK,
            Value::Array(
                shared
                    .config
                    .enclaves
                    .iter()
                    .map(|(id, name)| {
                        json!({"id": id, "name": name, "type": "CLOSED", "read": true, "create": true, "update": true})
                    })
                    .collect(),
            ),
        ),
        ("GET", ["request-quotas"]) => json_response(
            StatusCode::OK,
            json!([{"guid": "quota-1", "maxRequests": 60, "usedRequests": st.requests.len() % 60,
                     "timeWindow": 60000, "lastResetTime": now_ms() as i64, "nextResetTime": now_ms() as i64 + 60000}]),
        ),
        ("POST", ["reports"]) => submit_report(shared, &mut st, json_body()),
        ("GET", ["reports", "search"]) => {
            let term = q.get("searchTerm").unwrap_or_default().to_ascii_lowercase();
            if term.len() < 3 {
                return error(StatusCode::BAD_REQUEST, "searchTerm must be at least 3 characters");
            }
            let items: Vec<Value> = st
                .order
                .iter()
                .filter_map(|id| st.reports.get(id))
                .filter(|r| {
                    r.title.to_ascii_lowercase().contains(&term)
                        || r.body.to_ascii_lowercase().contains(&term)
                })
                .map(|r| {
                    let mut v = r.to_json();
                    v["reportBody"] = Value::Null;
                    v
                })
                .collect();
            json_response(StatusCode::OK, page(items, &q, 25))
        }
        ("GET", ["reports", id]) => match find_report(&st, id, &q) {
            Some(r) => json_response(StatusCode::OK, r.to_json()),
            None => error(StatusCode::NOT_FOUND, format!("Report {id} not found")),
        },
        ("PUT", ["reports", id]) => update_report(shared, &mut st, id, &q, json_body()),
        ("DELETE", ["reports", id]) => {
            let Some(internal) = find_report(&st, id, &q).map(|r| r.id.clone()) else {
                return error(StatusCode::NOT_FOUND, format!("Report {id} not found"));
            };
            st.reports.remove(&internal);
            st.order.retain(|i| *i != internal);
            StatusCode::OK.into_response()
        }
        ("GET", ["reports", id, "indicators"]) => match find_report(&st, id, &q) {
            Some(r) => {
                let items = r
                    .indicators
                    .iter()
                    .map(|(t, v)| json!({"indicatorType": t, "value": v, "weight": 1}))
                    .collect();
                json_response(StatusCode::OK, page(items, &q, 100))
            }
            None => error(StatusCode::NOT_FOUND, format!("Report {id} not found")),
        },
        ("POST", ["reports", id, "tags"]) => {
            let name = q.get("name").unwrap_or_default().to_string();
            let enclave = q.get("enclaveId").unwrap_or_default().to_string();
            if name.is_empty() || enclave.is_empty() {
                return error(StatusCode::BAD_REQUEST, "name and enclaveId are required");
            }
            if !shared.config.enclaves.iter().any(|(e, _)| *e == enclave) {
                return error(StatusCode::BAD_REQUEST, format!("Enclave {enclave} not found or not writable"));
            }
            let Some(internal) = find_report(&st, id, &q).map(|r| r.id.clone()) else {
                return error(StatusCode::NOT_FOUND, format!("Report {id} not found"));
            };
            let guid = uuid::Uuid::new_v4().to_string();
            if let Some(r) = st.reports.get_mut(&internal) {
                r.tags.push(json!({"name": name, "guid": guid, "enclaveId": enclave}));
            }
            text_response(StatusCode::OK, guid)
        }
        ("GET", ["reports", id, "tags"]) => match find_report(&st, id, &q) {
            Some(r) => json_response(StatusCode::OK, Value::Array(r.tags.clone())),
            None => error(StatusCode::NOT_FOUND, format!("Report {id} not found")),
        },
        ("DELETE", ["reports", id, "tags", tag]) => {
            let Some(internal) = find_report(&st, id, &q).map(|r| r.id.clone()) else {
                return error(StatusCode::NOT_FOUND, format!("Report {id} not found"));
            };
            if let Some(r) = st.reports.get_mut(&internal) {
                r.tags.retain(|t| t["guid"] != *tag);
            }
            StatusCode::OK.into_response()
        }
        ("GET", ["indicators", "related"]) => {
            let values = q.all("indicators");
            let enclaves = q.all("enclaveIds");
            json_response(StatusCode::OK, page(related(&st, &values, &enclaves), &q, 100))
        }
        ("GET" | "POST", ["indicators", "search"]) => {
            let mut term = q.get("searchTerm").map(str::to_string);
            let mut enclaves = q.all("enclaveIds");
            if method == Method::POST
                && let Some(b) = json_body()
            {
                if let Some(t) = b.get("searchTerm").and_then(Value::as_str) {
                    term = Some(t.to_string());
                }
                if let Some(list) = b.get("enclaveIds").and_then(Value::as_array) {
                    enclaves = list.iter().filter_map(Value::as_str).map(str::to_string).collect();
                }
            }
            let Some(term) = term.filter(|t| !t.trim().is_empty()) else {
                return error(StatusCode::BAD_REQUEST, "searchTerm is required");
            };
            json_response(StatusCode::OK, page(search(&st, &term, &enclaves), &q, 25))
        }
        ("GET", ["indicators", "metadata"]) => {
            let values = q.all("values");
            json_response(StatusCode::OK, Value::Array(values.iter().filter_map(|v| metadata(&st, v)).collect()))
        }
        ("POST", ["indicators", "metadata"]) => {
            let values: Vec<String> = json_body()
                .and_then(|b| b.as_array().cloned())
                .unwrap_or_default()
                .iter()
                .filter_map(|i| i.get("value").and_then(Value::as_str).map(str::to_string))
                .collect();
            json_response(StatusCode::OK, Value::Array(values.iter().filter_map(|v| metadata(&st, v)).collect()))
        }
        ("POST", ["whitelist"]) => {
            let Some(terms) = json_body().and_then(|b| b.as_array().cloned()) else {
                return error(StatusCode::BAD_REQUEST, "The body must be a JSON array of terms");
            };
            let mut added = Vec::new();
            for term in terms.iter().filter_map(Value::as_str) {
                let term = term.trim();
                if let Some(ty) = extract::classify(term) {
                    if !st.whitelist.iter().any(|(_, v)| v.eq_ignore_ascii_case(term)) {
                        st.whitelist.push((ty.to_string(), term.to_string()));
                    }
                    added.push(json!({"indicatorType": ty, "value": term}));
                }
            }
            json_response(StatusCode::OK, Value::Array(added))
        }
        ("DELETE", ["whitelist"]) => {
            let Some(value) = q.get("value").map(str::to_string) else {
                return error(StatusCode::BAD_REQUEST, "value is required");
            };
            let ty = q.get("indicatorType").filter(|t| !t.is_empty()).map(str::to_string);
            let before = st.whitelist.len();
            st.whitelist.retain(|(t, v)| {
                !(v.eq_ignore_ascii_case(&value) && ty.as_ref().is_none_or(|ty| ty == t))
            });
            if st.whitelist.len() == before {
                return error(StatusCode::NOT_FOUND, format!("{value} is not whitelisted"));
            }
            StatusCode::OK.into_response()
        }
        ("GET", ["whitelist"]) => {
            let items = st
                .whitelist
                .iter()
                .map(|(t, v)| json!({"indicatorType": t, "value": v, "whitelisted": true}))
                .collect();
            json_response(StatusCode::OK, page(items, &q, 25))
        }
        _ => error(StatusCode::NOT_FOUND, format!("No handler for {method} /api/1.3/{rel}")),
    }
}

fn token(
    shared: &Shared,
    st: &mut EmuState,
    method: &Method,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    if method != Method::POST {
        return error(StatusCode::METHOD_NOT_ALLOWED, "Use POST");
    }
    let credentials = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| {
            base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .ok()
        })
        .and_then(|b| String::from_utf8(b).ok());
    let expected = format!("{}:{}", shared.config.api_key, shared.config.api_secret);
    if credentials.as_deref() != Some(expected.as_str()) {
        return json_response(
            StatusCode::UNAUTHORIZED,
            json!({"error": "unauthorized", "error_description": "Bad credentials"}),
        );
    }
    let form = query_pairs(&String::from_utf8_lossy(body));
    if !form
        .iter()
        .any(|(k, v)| k == "grant_type" && v == "client_credentials")
    {
        return json_response(
            StatusCode::BAD_REQUEST,
            json!({"error": "invalid_request", "error_description": "Missing grant type"}),
        );
    }
    let token = uuid::Uuid::new_v4().to_string();
    st.tokens.insert(token.clone(), false);
    st.tokens_issued += 1;
    json_response(
        StatusCode::OK,
        json!({"access_token": token, "token_type": "bearer", "expires_in": 3599, "scope": "read write"}),
    )
}

fn find_report<'a>(st: &'a EmuState, id: &str, q: &Query) -> Option<&'a Report> {
    if q.get("idType") == Some("external") {
        st.reports
            .values()
            .find(|r| r.external_id.as_deref() == Some(id))
    } else {
        st.reports.get(id)
    }
}

fn time_began(v: Option<&Value>) -> i64 {
    match v {
        Some(Value::Number(n)) => {
            let n = n.as_i64().unwrap_or_default();
            if n < 10_000_000_000 { n * 1000 } else { n }
        }
        Some(Value::String(s)) => parse_iso8601_ms(s).unwrap_or_else(|| now_ms() as i64),
        _ => now_ms() as i64,
    }
}

/// Milliseconds since the epoch of an ISO-8601 time such as `2024-01-02T10:00:00.5+01:00`.
fn parse_iso8601_ms(s: &str) -> Option<i64> {
    let s = s.trim();
    let num = |a: usize, b: usize| -> Option<i64> { s.get(a..b)?.parse().ok() };
    let (y, mo, d) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (h, mi, sec) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    let mut rest = s.get(19..)?;
    let mut ms = 0;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits: String = frac.chars().take_while(char::is_ascii_digit).collect();
        ms = format!("{digits:0<3}").get(..3)?.parse().ok()?;
        rest = &frac[digits.len()..];
    }
    let offset_min = match rest {
        "" | "Z" | "z" => 0,
        tz => {
            let sign = if tz.starts_with('-') { -1 } else { 1 };
            let tz = tz.get(1..)?.replace(':', "");
            sign * (tz.get(0..2)?.parse::<i64>().ok()? * 60 + tz.get(2..4)?.parse::<i64>().ok()?)
        }
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if mo > 2 { mo - 3 } else { mo + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 86_400 + h * 3600 + mi * 60 + sec - offset_min * 60) * 1000) + ms)
}

fn enclaves_of(shared: &Shared, b: &Value) -> Result<Vec<String>, String> {
    let list: Vec<String> = b
        .get("enclaveIds")
        .and_then(Value::as_array)
        .map(|l| {
            l.iter()
                .filter_map(Value::as_str)
                .map(|s| s.trim().to_string())
                .collect()
        })
        .unwrap_or_default();
    for e in &list {
        if !shared.config.enclaves.iter().any(|(id, _)| id == e) {
            return Err(format!(
                "Enclave {e} not found or not writable by this user"
            ));
        }
    }
    Ok(list)
}

fn submit_report(shared: &Shared, st: &mut EmuState, body: Option<Value>) -> Response {
    let Some(b) = body.filter(Value::is_object) else {
        return error(StatusCode::BAD_REQUEST, "The report must be a JSON object");
    };
    let title = b.get("title").and_then(Value::as_str).unwrap_or_default();
    let text = b
        .get("reportBody")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if title.trim().is_empty() || text.trim().is_empty() {
        return error(StatusCode::BAD_REQUEST, "title and reportBody are required");
    }
    let distribution = b
        .get("distributionType")
        .and_then(Value::as_str)
        .unwrap_or("ENCLAVE")
        .to_string();
    let enclaves = match enclaves_of(shared, &b) {
        Ok(e) => e,
        Err(m) => return error(StatusCode::BAD_REQUEST, m),
    };
    if distribution == "ENCLAVE" && enclaves.is_empty() {
        return error(
            StatusCode::BAD_REQUEST,
            "A report with distributionType ENCLAVE needs enclaveIds",
        );
    }
    let external_id = b
        .get("externalTrackingId")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    if let Some(ext) = &external_id
        && st
            .reports
            .values()
            .any(|r| r.external_id.as_ref() == Some(ext))
    {
        return error(
            StatusCode::BAD_REQUEST,
            format!("A report with external tracking id {ext} already exists"),
        );
    }
    let id = next_uuid(st);
    let now = now_ms() as i64;
    let indicators = extract_unlisted(st, text);
    st.reports.insert(
        id.clone(),
        Report {
            id: id.clone(),
            title: title.to_string(),
            body: text.to_string(),
            time_began: time_began(b.get("timeBegan")),
            external_url: b.get("externalUrl").cloned().unwrap_or(Value::Null),
            distribution,
            external_id,
            enclaves,
            created: now,
            updated: now,
            tags: Vec::new(),
            indicators,
        },
    );
    st.order.push(id.clone());
    text_response(StatusCode::OK, id)
}

fn update_report(
    shared: &Shared,
    st: &mut EmuState,
    id: &str,
    q: &Query,
    body: Option<Value>,
) -> Response {
    let Some(b) = body.filter(Value::is_object) else {
        return error(StatusCode::BAD_REQUEST, "The report must be a JSON object");
    };
    let Some(internal) = find_report(st, id, q).map(|r| r.id.clone()) else {
        return error(StatusCode::NOT_FOUND, format!("Report {id} not found"));
    };
    let title = b.get("title").and_then(Value::as_str).unwrap_or_default();
    let text = b
        .get("reportBody")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if title.trim().is_empty() || text.trim().is_empty() {
        return error(
            StatusCode::BAD_REQUEST,
            "An update needs the full report: title and reportBody are required",
        );
    }
    let enclaves = match enclaves_of(shared, &b) {
        Ok(e) => e,
        Err(m) => return error(StatusCode::BAD_REQUEST, m),
    };
    let indicators = extract_unlisted(st, text);
    if let Some(r) = st.reports.get_mut(&internal) {
        r.title = title.to_string();
        r.body = text.to_string();
        if !enclaves.is_empty() {
            r.enclaves = enclaves;
        }
        if b.get("timeBegan").is_some_and(|v| !v.is_null()) {
            r.time_began = time_began(b.get("timeBegan"));
        }
        if let Some(d) = b.get("distributionType").and_then(Value::as_str) {
            r.distribution = d.to_string();
        }
        r.updated = now_ms() as i64;
        r.indicators = indicators;
    }
    StatusCode::OK.into_response()
}

/// Indicators of the reports (in `enclaves`, when given) that contain one of `values`, other
/// than `values` themselves.
fn related(st: &EmuState, values: &[String], enclaves: &[String]) -> Vec<Value> {
    let wanted: HashSet<String> = values.iter().map(|v| v.to_ascii_lowercase()).collect();
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for id in &st.order {
        let Some(r) = st.reports.get(id) else {
            continue;
        };
        if !enclaves.is_empty() && !r.enclaves.iter().any(|e| enclaves.contains(e)) {
            continue;
        }
        if !r
            .indicators
            .iter()
            .any(|(_, v)| wanted.contains(&v.to_ascii_lowercase()))
        {
            continue;
        }
        for (t, v) in &r.indicators {
            let key = v.to_ascii_lowercase();
            if wanted.contains(&key) || !seen.insert(key) {
                continue;
            }
            out.push(json!({"indicatorType": t, "value": v}));
        }
    }
    out
}

fn known_indicator(st: &EmuState, value: &str) -> Option<(String, String, usize, Vec<String>)> {
    let key = value.to_ascii_lowercase();
    let mut count = 0;
    let mut ty = None;
    let mut enclaves = Vec::new();
    for r in st.reports.values() {
        if let Some((t, _)) = r
            .indicators
            .iter()
            .find(|(_, v)| v.to_ascii_lowercase() == key)
        {
            count += 1;
            ty = Some(t.to_string());
            enclaves.extend(r.enclaves.iter().cloned());
        }
    }
    let seeded = st.priorities.get(&key);
    let level = match (seeded, count) {
        (Some((_, level)), _) => level.clone(),
        (None, 0) => return None,
        (None, _) => "LOW".to_string(),
    };
    let ty = ty
        .or_else(|| seeded.map(|(t, _)| t.clone()))
        .unwrap_or_default();
    enclaves.sort();
    enclaves.dedup();
    Some((ty, level, count, enclaves))
}

fn indicator_json(st: &EmuState, value: &str) -> Option<Value> {
    let (ty, level, count, enclaves) = known_indicator(st, value)?;
    let whitelisted = st
        .whitelist
        .iter()
        .any(|(_, v)| v.eq_ignore_ascii_case(value));
    let now = now_ms() as i64;
    Some(json!({
        "value": value,
        "indicatorType": ty,
        "priorityLevel": level,
        "correlationCount": count,
        "whitelisted": whitelisted,
        "weight": 1,
        "reason": null,
        "firstSeen": now - 86_400_000,
        "lastSeen": now,
        "sightings": count.max(1),
        "source": null,
        "notes": [],
        "tags": [],
        "enclaveIds": enclaves,
    }))
}

fn all_values(st: &EmuState) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut seen = HashSet::new();
    for id in &st.order {
        if let Some(r) = st.reports.get(id) {
            for (_, v) in &r.indicators {
                if seen.insert(v.to_ascii_lowercase()) {
                    out.push(v.clone());
                }
            }
        }
    }
    let mut seeded: Vec<&String> = st.priorities.keys().collect();
    seeded.sort();
    for v in seeded {
        if seen.insert(v.clone()) {
            out.push(v.clone());
        }
    }
    out
}

fn search(st: &EmuState, term: &str, enclaves: &[String]) -> Vec<Value> {
    let term = term.trim().to_ascii_lowercase();
    all_values(st)
        .iter()
        .filter(|v| v.to_ascii_lowercase().contains(&term))
        .filter_map(|v| indicator_json(st, v))
        .filter(|i| {
            enclaves.is_empty()
                || i["enclaveIds"].as_array().is_some_and(|l| l.is_empty())
                || i["enclaveIds"]
                    .as_array()
                    .is_some_and(|l| l.iter().any(|e| enclaves.iter().any(|x| e == x)))
        })
        .collect()
}

fn metadata(st: &EmuState, value: &str) -> Option<Value> {
    indicator_json(st, value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_queries_with_repeated_keys() {
        let q = Query(query_pairs(
            "indicators=a.com&indicators=10.0.0.1&enclaveIds=x%2Cy&s=a+b%7Cc",
        ));
        assert_eq!(q.all("indicators"), vec!["a.com", "10.0.0.1"]);
        assert_eq!(q.all("enclaveIds"), vec!["x", "y"]);
        assert_eq!(q.get("s"), Some("a b|c"));
        assert_eq!(percent_decode("100%"), "100%");
    }

    #[test]
    fn parses_iso_times() {
        assert_eq!(parse_iso8601_ms("1970-01-01T00:00:01Z"), Some(1000));
        assert_eq!(
            parse_iso8601_ms("2024-01-02T10:00:00.250+01:00"),
            Some(1_704_186_000_250)
        );
        assert_eq!(parse_iso8601_ms("garbage"), None);
    }

    #[test]
    fn pages_report_has_next() {
        let items: Vec<Value> = (0..5).map(|i| json!(i)).collect();
        let p = page(
            items.clone(),
            &Query(query_pairs("pageSize=2&pageNumber=1")),
            100,
        );
        assert_eq!(p["items"], json!([2, 3]));
        assert_eq!(p["hasNext"], true);
        let p = page(items, &Query(query_pairs("pageSize=2&pageNumber=2")), 100);
        assert_eq!(p["hasNext"], false);
    }
}
