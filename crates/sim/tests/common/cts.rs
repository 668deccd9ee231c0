//! A small custom threat service (protocol spec §7.2) for tests, on plain HTTP, recording every
//! request it gets. Its behaviour depends on the service name in the path `/cts/<name>`:
//!
//! - `poll`: POST answers 303 `{"id": "lookup-1", "retry_secs": 1}`; the first GET answers 303
//!   `{"retry_secs": 0}`, the next one 200 with one hit;
//! - `auth`: requires `Authorization: Basic cts:s3cret` (401 otherwise), then 200 with one hit;
//! - `pending`: 303 `{"retry_secs": 0}` forever;
//! - `later`: 303 `{"retry_secs": 3600}`;
//! - `hitsforall`: 200 with one hit for everything, `localhost` included;
//! - `broken`: 500;
//! - anything else: 200, no hits.
//!
//! `net.name`/`localhost` is answered 200 with no hits (except by `hitsforall`, `auth` without
//! credentials and `broken`).

use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use serde_json::{Value, json};

pub const USER: &str = "cts";
pub const PASSWORD: &str = "s3cret";

/// One request the service got.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub authorization: Option<String>,
    pub content_type: Option<String>,
    pub body: Value,
    pub at: Instant,
}

#[derive(Default)]
struct Inner {
    seen: Vec<Seen>,
    polls: usize,
}

/// The running service.
#[derive(Clone)]
pub struct Cts {
    pub base: String,
    inner: Arc<Mutex<Inner>>,
}

impl Cts {
    pub async fn start() -> Cts {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let app = Router::new()
            .route("/cts/{svc}", any(lookup))
            .route("/cts/{svc}/{id}", get(poll))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Cts {
            base: format!("http://127.0.0.1:{port}/cts"),
            inner,
        }
    }

    /// The URL of service `name`.
    pub fn url(&self, name: &str) -> String {
        format!("{}/{name}", self.base)
    }

    /// Every request so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.inner.lock().unwrap().seen.clone()
    }
}

type St = State<Arc<Mutex<Inner>>>;

fn record(inner: &Mutex<Inner>, method: &Method, path: String, headers: &HeaderMap, body: &[u8]) {
    let h = |k: &str| {
        headers
            .get(k)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    inner.lock().unwrap().seen.push(Seen {
        method: method.to_string(),
        path,
        authorization: h("authorization"),
        content_type: h("content-type"),
        body: serde_json::from_slice(body).unwrap_or(Value::Null),
        at: Instant::now(),
    });
}

fn answer(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

fn hit(value: &Value) -> Value {
    json!({"props": [
        {"type": "string", "name": "Priority Level", "value": "HIGH"},
        {"type": "string", "name": "Looked up", "value": value},
        {"type": "number", "name": "Score", "value": "87"},
        {"type": "uri", "name": "Link", "value": null}
    ]})
}

fn basic_ok(headers: &HeaderMap) -> bool {
    use base64::Engine as _;
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"))
    );
    headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(expected.as_str())
}

async fn lookup(
    State(inner): St,
    method: Method,
    Path(svc): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    record(&inner, &method, format!("/cts/{svc}"), &headers, &body);
    if svc == "auth" && !basic_ok(&headers) {
        return answer(StatusCode::UNAUTHORIZED, json!({"id": null, "hits": []}));
    }
    if svc == "broken" {
        return answer(
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({"id": null, "hits": []}),
        );
    }
    if method == Method::OPTIONS {
        return answer(StatusCode::OK, json!({"upload_file": false}));
    }
    if method != Method::POST {
        return answer(StatusCode::METHOD_NOT_ALLOWED, json!({}));
    }
    let artifact: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let value = artifact["value"].clone();
    if svc == "hitsforall" {
        return answer(StatusCode::OK, json!({"id": "h", "hits": [hit(&value)]}));
    }
    if artifact["type"] == "net.name" && value == "localhost" {
        return answer(StatusCode::OK, json!({"id": "probe", "hits": []}));
    }
    match svc.as_str() {
        "poll" => answer(
            StatusCode::SEE_OTHER,
            json!({"id": "lookup-1", "hits": [], "retry_secs": 1}),
        ),
        "pending" => answer(
            StatusCode::SEE_OTHER,
            json!({"id": "p", "hits": [], "retry_secs": 0}),
        ),
        "later" => answer(
            StatusCode::SEE_OTHER,
            json!({"id": "l", "hits": [], "retry_secs": 3600}),
        ),
        "auth" => answer(StatusCode::OK, json!({"id": "a", "hits": [hit(&value)]})),
        _ => answer(StatusCode::OK, json!({"id": "n", "hits": []})),
    }
}

async fn poll(
    State(inner): St,
    method: Method,
    Path((svc, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    record(&inner, &method, format!("/cts/{svc}/{id}"), &headers, b"");
    let polls = {
        let mut i = inner.lock().unwrap();
        i.polls += 1;
        i.polls
    };
    match svc.as_str() {
        "poll" if polls == 1 => answer(
            StatusCode::SEE_OTHER,
            json!({"id": id, "hits": [], "retry_secs": 0}),
        ),
        "poll" => answer(
            StatusCode::OK,
            json!({"id": id, "hits": [hit(&json!("polled"))]}),
        ),
        "pending" => answer(
            StatusCode::SEE_OTHER,
            json!({"id": id, "hits": [], "retry_secs": 0}),
        ),
        _ => answer(StatusCode::OK, json!({"id": id, "hits": []})),
    }
}
