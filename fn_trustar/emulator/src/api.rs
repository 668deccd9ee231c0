//! The emulator's HTTP side: an axum [`Router`] with one handler per TruSTAR API call, wrapped
//! in the middleware every request goes through ([`guard`]: the configured delay, the outage,
//! the bearer token and rate limit of `/api/1.3/` calls, and the request log).
//!
//! Unknown paths, and known paths with another method, answer 404 `No handler for …`.

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Extension, Router, ServiceExt};
use base64::Engine;
use serde::{Deserialize, Deserializer};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::Layer;

use crate::{
    Report, RequestRecord, Shared, enclaves_of, extract, extract_unlisted, find_report,
    indicator_json, next_uuid, now_ms, related, search, time_began,
};

/// Where the API lives: every call under it needs a bearer token.
const API: &str = "/api/1.3/";

type AppState = State<Arc<Shared>>;

/// Serves `listener` until `cancel` is cancelled.
pub(crate) fn spawn(listener: TcpListener, shared: Arc<Shared>, cancel: CancellationToken) {
    // The middleware wraps the router rather than being one of its layers, so that it runs
    // before routing and can trim trailing slashes.
    let app = middleware::from_fn_with_state(shared.clone(), guard).layer(router(shared));
    tokio::spawn(async move {
        let server = axum::serve(listener, app.into_make_service())
            .with_graceful_shutdown(async move { cancel.cancelled().await });
        if let Err(e) = server.await {
            tracing::warn!("TruSTAR emulator stopped: {e}");
        }
    });
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/oauth/token", post(token).fallback(use_post))
        .route("/api/1.3/ping", get(ping))
        .route("/api/1.3/version", get(version))
        .route("/api/1.3/enclaves", get(enclaves))
        .route("/api/1.3/request-quotas", get(request_quotas))
        .route("/api/1.3/reports", post(submit_report))
        .route(
            "/api/1.3/reports/search",
            // For the methods search does not answer, `search` is a report id like any other.
            get(search_reports)
                .put(|s: AppState, q: Query<IdType>, body: Bytes| {
                    update_report(s, Path("search".to_string()), q, body)
                })
                .delete(|s: AppState, q: Query<IdType>| {
                    delete_report(s, Path("search".to_string()), q)
                }),
        )
        .route(
            "/api/1.3/reports/{id}",
            get(get_report).put(update_report).delete(delete_report),
        )
        .route("/api/1.3/reports/{id}/indicators", get(report_indicators))
        .route("/api/1.3/reports/{id}/tags", get(report_tags).post(add_tag))
        .route("/api/1.3/reports/{id}/tags/{tag}", delete(delete_tag))
        .route("/api/1.3/reports/{id}/alter-tags", post(alter_tags))
        .route("/api/1.3/indicators/related", get(related_indicators))
        .route(
            "/api/1.3/indicators/search",
            get(search_indicators).post(search_indicators),
        )
        .route(
            "/api/1.3/indicators/metadata",
            get(metadata_of_query).post(metadata_of_body),
        )
        .route(
            "/api/1.3/whitelist",
            get(whitelist)
                .post(add_to_whitelist)
                .delete(remove_from_whitelist),
        )
        // Set after the routes: it applies to those registered before.
        .method_not_allowed_fallback(no_handler)
        .fallback(no_handler)
        .with_state(shared)
}

// ---------------------------------------------------------------------------------------------
// What every request goes through

/// The path the client sent, before [`trim_trailing_slashes`].
#[derive(Clone)]
struct SentPath(String);

/// Waits the configured delay, refuses what [`refusal`] refuses, routes the rest, and logs
/// every answer.
async fn guard(State(shared): AppState, mut req: Request, next: Next) -> Response {
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or_default().to_string();
    let delay = shared.state().delay;
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let response = match refusal(&shared, &path, req.headers()) {
        Some(refused) => refused,
        None => {
            req.extensions_mut().insert(SentPath(path.clone()));
            trim_trailing_slashes(&mut req);
            let mut response = next.run(req).await;
            // The router adds `Allow` to what its method fallbacks answer; TruSTAR does not.
            response.headers_mut().remove(header::ALLOW);
            response
        }
    };
    shared.state().requests.push(RequestRecord {
        method,
        path: path.strip_prefix(API).map(str::to_string).unwrap_or(path),
        query,
        status: response.status().as_u16(),
    });
    response
}

/// The answer to a request refused before routing: any request while TruSTAR is down
/// (503), and `/api/1.3/` calls without a valid bearer token (400) or over the rate limit
/// (429, which uses up one of the limited calls).
fn refusal(shared: &Shared, path: &str, headers: &HeaderMap) -> Option<Response> {
    let mut st = shared.state();
    if st.unavailable {
        return Some(error(
            StatusCode::SERVICE_UNAVAILABLE,
            "TruSTAR is temporarily unavailable",
        ));
    }
    if !path.starts_with(API) {
        return None;
    }
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match bearer.and_then(|t| st.tokens.get(t)) {
        None => return Some(invalid_token("Invalid oauth2 access token")),
        Some(true) => return Some(invalid_token("Expired oauth2 access token")),
        Some(false) => {}
    }
    let (count, wait) = st.rate_limit?;
    st.rate_limit = (count > 1).then_some((count - 1, wait));
    Some(json_response(
        StatusCode::TOO_MANY_REQUESTS,
        json!({
            "message": format!("Request limit exceeded for the current time period. Please wait {wait} milliseconds before making more requests."),
            "waitTime": wait,
        }),
    ))
}

fn invalid_token(description: &str) -> Response {
    json_response(
        StatusCode::BAD_REQUEST,
        json!({"error": "invalid_token", "error_description": description}),
    )
}

/// Routes `/api/1.3/reports/` as `/api/1.3/reports`.
fn trim_trailing_slashes(req: &mut Request) {
    let path = req.uri().path();
    if !path.starts_with(API) || !path.ends_with('/') {
        return;
    }
    let trimmed = path.trim_end_matches('/');
    let path_and_query = match req.uri().query() {
        Some(q) => format!("{trimmed}?{q}"),
        None => trimmed.to_string(),
    };
    if let Ok(uri) = Uri::builder().path_and_query(path_and_query).build() {
        *req.uri_mut() = uri;
    }
}

async fn no_handler(method: Method, uri: Uri, sent: Option<Extension<SentPath>>) -> Response {
    let path = sent.map_or_else(|| uri.path().to_string(), |Extension(SentPath(p))| p);
    match path.strip_prefix(API) {
        Some(rel) => error(
            StatusCode::NOT_FOUND,
            format!("No handler for {method} /api/1.3/{rel}"),
        ),
        None => error(StatusCode::NOT_FOUND, format!("No handler for {path}")),
    }
}

// ---------------------------------------------------------------------------------------------
// Query strings

/// `?idType=external`: the id in the path is the report's external tracking id.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct IdType {
    id_type: Option<String>,
}

impl IdType {
    fn external(&self) -> bool {
        self.id_type.as_deref() == Some("external")
    }
}

/// `?pageNumber=&pageSize=` of the calls that answer pages (a value that is not a number is
/// ignored).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Paging {
    #[serde(default, deserialize_with = "lenient_number")]
    page_number: Option<usize>,
    #[serde(default, deserialize_with = "lenient_number")]
    page_size: Option<usize>,
}

fn lenient_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.and_then(|v| v.parse().ok()))
}

/// `?searchTerm=`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SearchTerm {
    search_term: Option<String>,
}

/// `?name=&enclaveId=` of a new tag.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewTag {
    name: Option<String>,
    enclave_id: Option<String>,
}

/// `?value=&indicatorType=` of a whitelist deletion.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WhitelistEntry {
    value: Option<String>,
    indicator_type: Option<String>,
}

/// The query's lists, which [`Query`] cannot collect: a key repeated
/// (`indicators=a&indicators=b`) or comma-separated values (`enclaveIds=x,y`).
struct Lists(Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for Lists {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        Ok(Lists(query_pairs(parts.uri.query().unwrap_or_default())))
    }
}

impl Lists {
    /// Every value of `key`, comma-separated values split too.
    fn all(&self, key: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .flat_map(|(_, v)| v.split(',').map(|s| s.trim().to_string()))
            .filter(|s| !s.is_empty())
            .collect()
    }
}

/// A query string (or form body) as ordered `(key, value)` pairs (repeated keys kept).
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

// ---------------------------------------------------------------------------------------------
// Answers

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

fn not_found(id: &str) -> Response {
    error(StatusCode::NOT_FOUND, format!("Report {id} not found"))
}

fn page(items: Vec<Value>, paging: &Paging, default_size: usize) -> Value {
    let size = paging.page_size.unwrap_or(default_size).clamp(1, 1000);
    let number = paging.page_number.unwrap_or(0);
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

fn json_body(body: &[u8]) -> Option<Value> {
    serde_json::from_slice(body).ok()
}

// ---------------------------------------------------------------------------------------------
// Handlers: auth and service

async fn token(State(shared): AppState, headers: HeaderMap, body: Bytes) -> Response {
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
    let form = query_pairs(&String::from_utf8_lossy(&body));
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
    let mut st = shared.state();
    st.tokens.insert(token.clone(), false);
    st.tokens_issued += 1;
    json_response(
        StatusCode::OK,
        json!({"access_token": token, "token_type": "bearer", "expires_in": 3599, "scope": "read write"}),
    )
}

async fn use_post() -> Response {
    error(StatusCode::METHOD_NOT_ALLOWED, "Use POST")
}

async fn ping() -> Response {
    text_response(StatusCode::OK, "pong\n".to_string())
}

async fn version() -> Response {
    text_response(StatusCode::OK, "1.3\n".to_string())
}

async fn enclaves(State(shared): AppState) -> Response {
    let list = shared
        .config
        .enclaves
        .iter()
        .map(|(id, name)| {
            json!({"id": id, "name": name, "type": "CLOSED", "read": true, "create": true, "update": true})
        })
        .collect();
    json_response(StatusCode::OK, Value::Array(list))
}

async fn request_quotas(State(shared): AppState) -> Response {
    let used = shared.state().requests.len() % 60;
    let now = now_ms();
    json_response(
        StatusCode::OK,
        json!([{"guid": "quota-1", "maxRequests": 60, "usedRequests": used,
                 "timeWindow": 60000, "lastResetTime": now, "nextResetTime": now + 60000}]),
    )
}

// ---------------------------------------------------------------------------------------------
// Handlers: reports

/// The title and body of a report in `b`, when both are there.
fn title_and_body(b: &Value) -> Option<(&str, &str)> {
    let title = b.get("title").and_then(Value::as_str).unwrap_or_default();
    let text = b
        .get("reportBody")
        .and_then(Value::as_str)
        .unwrap_or_default();
    (!title.trim().is_empty() && !text.trim().is_empty()).then_some((title, text))
}

async fn submit_report(State(shared): AppState, body: Bytes) -> Response {
    let Some(b) = json_body(&body).filter(Value::is_object) else {
        return error(StatusCode::BAD_REQUEST, "The report must be a JSON object");
    };
    let Some((title, text)) = title_and_body(&b) else {
        return error(StatusCode::BAD_REQUEST, "title and reportBody are required");
    };
    let distribution = b
        .get("distributionType")
        .and_then(Value::as_str)
        .unwrap_or("ENCLAVE")
        .to_string();
    let enclaves = match enclaves_of(&shared, &b) {
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
    let mut st = shared.state();
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
    let id = next_uuid(&mut st);
    let now = now_ms();
    let indicators = extract_unlisted(&st, text);
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

async fn search_reports(
    State(shared): AppState,
    Query(q): Query<SearchTerm>,
    Query(paging): Query<Paging>,
) -> Response {
    let term = q.search_term.unwrap_or_default().to_ascii_lowercase();
    if term.len() < 3 {
        return error(
            StatusCode::BAD_REQUEST,
            "searchTerm must be at least 3 characters",
        );
    }
    let st = shared.state();
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
    json_response(StatusCode::OK, page(items, &paging, 25))
}

async fn get_report(
    State(shared): AppState,
    Path(id): Path<String>,
    Query(q): Query<IdType>,
) -> Response {
    match find_report(&shared.state(), &id, q.external()) {
        Some(r) => json_response(StatusCode::OK, r.to_json()),
        None => not_found(&id),
    }
}

async fn update_report(
    State(shared): AppState,
    Path(id): Path<String>,
    Query(q): Query<IdType>,
    body: Bytes,
) -> Response {
    let Some(b) = json_body(&body).filter(Value::is_object) else {
        return error(StatusCode::BAD_REQUEST, "The report must be a JSON object");
    };
    let mut st = shared.state();
    let Some(internal) = find_report(&st, &id, q.external()).map(|r| r.id.clone()) else {
        return not_found(&id);
    };
    let Some((title, text)) = title_and_body(&b) else {
        return error(
            StatusCode::BAD_REQUEST,
            "An update needs the full report: title and reportBody are required",
        );
    };
    let enclaves = match enclaves_of(&shared, &b) {
        Ok(e) => e,
        Err(m) => return error(StatusCode::BAD_REQUEST, m),
    };
    let indicators = extract_unlisted(&st, text);
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
        r.updated = now_ms();
        r.indicators = indicators;
    }
    StatusCode::OK.into_response()
}

async fn delete_report(
    State(shared): AppState,
    Path(id): Path<String>,
    Query(q): Query<IdType>,
) -> Response {
    let mut st = shared.state();
    let Some(internal) = find_report(&st, &id, q.external()).map(|r| r.id.clone()) else {
        return not_found(&id);
    };
    st.reports.remove(&internal);
    st.order.retain(|i| *i != internal);
    StatusCode::OK.into_response()
}

async fn report_indicators(
    State(shared): AppState,
    Path(id): Path<String>,
    Query(q): Query<IdType>,
    Query(paging): Query<Paging>,
) -> Response {
    let st = shared.state();
    let Some(r) = find_report(&st, &id, q.external()) else {
        return not_found(&id);
    };
    let items = r
        .indicators
        .iter()
        .map(|(t, v)| json!({"indicatorType": t, "value": v, "weight": 1}))
        .collect();
    json_response(StatusCode::OK, page(items, &paging, 100))
}

async fn add_tag(
    State(shared): AppState,
    Path(id): Path<String>,
    Query(q): Query<IdType>,
    Query(tag): Query<NewTag>,
) -> Response {
    let name = tag.name.unwrap_or_default();
    let enclave = tag.enclave_id.unwrap_or_default();
    if name.is_empty() || enclave.is_empty() {
        return error(StatusCode::BAD_REQUEST, "name and enclaveId are required");
    }
    if !shared.config.enclaves.iter().any(|(e, _)| *e == enclave) {
        return error(
            StatusCode::BAD_REQUEST,
            format!("Enclave {enclave} not found or not writable"),
        );
    }
    let mut st = shared.state();
    let Some(internal) = find_report(&st, &id, q.external()).map(|r| r.id.clone()) else {
        return not_found(&id);
    };
    let guid = uuid::Uuid::new_v4().to_string();
    if let Some(r) = st.reports.get_mut(&internal) {
        r.tags
            .push(json!({"name": name, "guid": guid, "enclaveId": enclave}));
    }
    text_response(StatusCode::OK, guid)
}

/// The body of `POST reports/{id}/alter-tags`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AlterTags {
    #[serde(default)]
    added_tags: Vec<TagName>,
    #[serde(default)]
    removed_tags: Vec<TagName>,
}

#[derive(Debug, Deserialize)]
struct TagName {
    name: String,
}

/// `POST reports/{id}/alter-tags`: adds and removes report tags by name (not per enclave);
/// answers `{"id": <internal id>}`.
async fn alter_tags(
    State(shared): AppState,
    Path(id): Path<String>,
    Query(q): Query<IdType>,
    body: Bytes,
) -> Response {
    let alter: AlterTags = match serde_json::from_slice(&body) {
        Ok(a) => a,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("Invalid request body: {e}"),
            );
        }
    };
    if alter
        .added_tags
        .iter()
        .chain(&alter.removed_tags)
        .any(|t| t.name.trim().is_empty())
    {
        return error(StatusCode::BAD_REQUEST, "Tag names must not be empty");
    }
    let mut st = shared.state();
    let Some(internal) = find_report(&st, &id, q.external()).map(|r| r.id.clone()) else {
        return not_found(&id);
    };
    if let Some(r) = st.reports.get_mut(&internal) {
        r.tags.retain(|t| {
            !alter
                .removed_tags
                .iter()
                .any(|x| t["name"] == x.name.as_str())
        });
        for tag in alter.added_tags {
            if !r.tags.iter().any(|t| t["name"] == tag.name.as_str()) {
                r.tags.push(json!({"name": tag.name}));
            }
        }
    }
    json_response(StatusCode::OK, json!({"id": internal}))
}

async fn report_tags(
    State(shared): AppState,
    Path(id): Path<String>,
    Query(q): Query<IdType>,
) -> Response {
    match find_report(&shared.state(), &id, q.external()) {
        Some(r) => json_response(StatusCode::OK, Value::Array(r.tags.clone())),
        None => not_found(&id),
    }
}

async fn delete_tag(
    State(shared): AppState,
    Path((id, tag)): Path<(String, String)>,
    Query(q): Query<IdType>,
) -> Response {
    let mut st = shared.state();
    let Some(internal) = find_report(&st, &id, q.external()).map(|r| r.id.clone()) else {
        return not_found(&id);
    };
    if let Some(r) = st.reports.get_mut(&internal) {
        r.tags.retain(|t| t["guid"] != *tag);
    }
    StatusCode::OK.into_response()
}

// ---------------------------------------------------------------------------------------------
// Handlers: indicators and whitelist

async fn related_indicators(
    State(shared): AppState,
    lists: Lists,
    Query(paging): Query<Paging>,
) -> Response {
    let (values, enclaves) = (lists.all("indicators"), lists.all("enclaveIds"));
    let items = related(&shared.state(), &values, &enclaves);
    json_response(StatusCode::OK, page(items, &paging, 100))
}

/// `GET` with `?searchTerm=&enclaveIds=`, or `POST` with the same in a JSON body (which wins).
async fn search_indicators(
    State(shared): AppState,
    method: Method,
    Query(q): Query<SearchTerm>,
    lists: Lists,
    Query(paging): Query<Paging>,
    body: Bytes,
) -> Response {
    let mut term = q.search_term;
    let mut enclaves = lists.all("enclaveIds");
    if method == Method::POST
        && let Some(b) = json_body(&body)
    {
        if let Some(t) = b.get("searchTerm").and_then(Value::as_str) {
            term = Some(t.to_string());
        }
        if let Some(list) = b.get("enclaveIds").and_then(Value::as_array) {
            enclaves = list
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect();
        }
    }
    let Some(term) = term.filter(|t| !t.trim().is_empty()) else {
        return error(StatusCode::BAD_REQUEST, "searchTerm is required");
    };
    let items = search(&shared.state(), &term, &enclaves);
    json_response(StatusCode::OK, page(items, &paging, 25))
}

fn metadata(shared: &Shared, values: &[String]) -> Response {
    let st = shared.state();
    let found = values.iter().filter_map(|v| indicator_json(&st, v));
    json_response(StatusCode::OK, Value::Array(found.collect()))
}

/// `?values=a&values=b,c`.
async fn metadata_of_query(State(shared): AppState, lists: Lists) -> Response {
    metadata(&shared, &lists.all("values"))
}

/// A JSON array of `{"value": …}`.
async fn metadata_of_body(State(shared): AppState, body: Bytes) -> Response {
    let values: Vec<String> = json_body(&body)
        .and_then(|b| b.as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|i| i.get("value").and_then(Value::as_str).map(str::to_string))
        .collect();
    metadata(&shared, &values)
}

async fn whitelist(State(shared): AppState, Query(paging): Query<Paging>) -> Response {
    let items = shared
        .state()
        .whitelist
        .iter()
        .map(|(t, v)| json!({"indicatorType": t, "value": v, "whitelisted": true}))
        .collect();
    json_response(StatusCode::OK, page(items, &paging, 25))
}

/// A JSON array of terms; answers the recognised ones with their types.
async fn add_to_whitelist(State(shared): AppState, body: Bytes) -> Response {
    let Some(terms) = json_body(&body).and_then(|b| b.as_array().cloned()) else {
        return error(
            StatusCode::BAD_REQUEST,
            "The body must be a JSON array of terms",
        );
    };
    let mut st = shared.state();
    let mut added = Vec::new();
    for term in terms.iter().filter_map(Value::as_str) {
        let term = term.trim();
        if let Some(ty) = extract::classify(term) {
            if !st
                .whitelist
                .iter()
                .any(|(_, v)| v.eq_ignore_ascii_case(term))
            {
                st.whitelist.push((ty.to_string(), term.to_string()));
            }
            added.push(json!({"indicatorType": ty, "value": term}));
        }
    }
    json_response(StatusCode::OK, Value::Array(added))
}

async fn remove_from_whitelist(
    State(shared): AppState,
    Query(entry): Query<WhitelistEntry>,
) -> Response {
    let Some(value) = entry.value else {
        return error(StatusCode::BAD_REQUEST, "value is required");
    };
    let ty = entry.indicator_type.filter(|t| !t.is_empty());
    let mut st = shared.state();
    let before = st.whitelist.len();
    st.whitelist
        .retain(|(t, v)| !(v.eq_ignore_ascii_case(&value) && ty.as_ref().is_none_or(|ty| ty == t)));
    if st.whitelist.len() == before {
        return error(StatusCode::NOT_FOUND, format!("{value} is not whitelisted"));
    }
    StatusCode::OK.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_queries_with_repeated_keys() {
        let q = Lists(query_pairs(
            "indicators=a.com&indicators=10.0.0.1&enclaveIds=x%2Cy&s=a+b%7Cc",
        ));
        assert_eq!(q.all("indicators"), vec!["a.com", "10.0.0.1"]);
        assert_eq!(q.all("enclaveIds"), vec!["x", "y"]);
        assert_eq!(q.all("s"), vec!["a b|c"]);
        assert_eq!(percent_decode("100%"), "100%");
    }

    #[test]
    fn pages_report_has_next() {
        let items: Vec<Value> = (0..5).map(|i| json!(i)).collect();
        let paging = |s: &str| {
            Query::<Paging>::try_from_uri(&format!("/x?{s}").parse().unwrap())
                .unwrap()
                .0
        };
        let p = page(items.clone(), &paging("pageSize=2&pageNumber=1"), 100);
        assert_eq!(p["items"], json!([2, 3]));
        assert_eq!(p["hasNext"], true);
        let p = page(items.clone(), &paging("pageSize=2&pageNumber=2"), 100);
        assert_eq!(p["hasNext"], false);
        // What is not a number is ignored.
        let p = page(items, &paging("pageSize=two&pageNumber=-1"), 100);
        assert_eq!(p["pageSize"], 100);
        assert_eq!(p["pageNumber"], 0);
    }
}
