//! The TruSTAR custom threat service (spec D.5 "Threat service", protocol spec §7.2): an HTTP
//! server at `[webserver] server:port` (HTTPS with `secure = 1`) that serves
//! `<urlbase>/trustar` (`/cts/trustar` by default).
//!
//! - `OPTIONS` → `{"upload_file": false}`.
//! - `POST` an artifact `{"type", "value"}` (JSON or multipart with an `artifact` part): the
//!   lookup (`indicators/search` in the `[trustar_threat_source]` enclaves) starts at once, and
//!   the POST waits up to `answer_within_ms` for it: a fast answer comes back as 200 with the
//!   hits, a slow one as 303 `{"id", "hits": [], "retry_secs"}` to be polled with
//!   `GET <urlbase>/trustar/<id>`. `net.name` `localhost` (the platform's test probe) gets an
//!   immediate 200.
//! - Answers are cached for `cache_ttl` under the request id
//!   `uuid5(18222d9c-…, json.dumps(body))`, at most `cache_size` of them; concurrent requests for
//!   one artifact share one lookup.
//! - With `auth_user`/`auth_password`, other credentials get **401** (the original answered 500).
//! - A hit only for an exact match whose priority is HIGH or MEDIUM:
//!   `{"props": [{"type": "string", "name": "Priority Level", "value": "HIGH"}, {"type": "uri",
//!   "name": "TruSTAR Link", "value": <indicator deeplink>}]}`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::client::TrustarClient;
use crate::config::{ThreatSource, WebserverConfig};
use crate::error::TrustarError;
use crate::report::py_json;

/// The namespace of request ids (rc-cts).
const ID_NAMESPACE: uuid::Uuid = uuid::uuid!("18222d9c-adf0-409c-aa19-beb27130ba12");

/// The request id of an artifact body: `uuid5(namespace, json.dumps(body))`.
pub fn request_id(body: &Value) -> String {
    uuid::Uuid::new_v5(&ID_NAMESPACE, py_json(body).as_bytes()).to_string()
}

type Hits = Arc<Vec<Value>>;

struct Entry {
    rx: watch::Receiver<Option<Hits>>,
    created: Instant,
    polls: u32,
    failed: Arc<std::sync::atomic::AtomicBool>,
}

/// The lookup engine and its cache (independent of HTTP).
pub struct ThreatService {
    client: TrustarClient,
    enclaves: Vec<String>,
    answer_within: Duration,
    web: WebserverConfig,
    cache: Mutex<HashMap<String, Entry>>,
}

impl std::fmt::Debug for ThreatService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThreatService")
            .field("account", &self.client.account())
            .field("urlbase", &self.web.urlbase)
            .finish_non_exhaustive()
    }
}

/// How a lookup request was answered.
#[derive(Debug, Clone, PartialEq)]
pub enum Lookup {
    Done(Vec<Value>),
    Pending,
}

impl ThreatService {
    pub fn new(
        source: &ThreatSource,
        web: &WebserverConfig,
    ) -> Result<Arc<ThreatService>, TrustarError> {
        Ok(Arc::new(ThreatService {
            client: TrustarClient::new(source.connection.clone())?,
            enclaves: source.enclaves_for_search.clone(),
            answer_within: source.answer_within,
            web: web.clone(),
            cache: Mutex::new(HashMap::new()),
        }))
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The hits for one artifact value (no cache).
    pub async fn hits_for(&self, value: &str) -> Result<Vec<Value>, TrustarError> {
        let found = self.client.search_indicators(value, &self.enclaves).await?;
        let Some(indicator) = found.into_iter().find(|i| i.value == value) else {
            return Ok(Vec::new());
        };
        let level = indicator.priority_level.unwrap_or_default();
        if level != "HIGH" && level != "MEDIUM" {
            return Ok(Vec::new());
        }
        let ty = indicator.indicator_type.unwrap_or_default();
        Ok(vec![json!({"props": [
            {"type": "string", "name": "Priority Level", "value": level},
            {"type": "uri", "name": "TruSTAR Link", "value": self.client.indicator_deeplink(&ty, value)},
        ]})])
    }

    /// Starts (or joins) the lookup of `id`, waiting up to `wait` for its answer.
    pub async fn lookup(self: &Arc<Self>, id: &str, value: &str, wait: Duration) -> Lookup {
        let mut rx = {
            let mut cache = self.cache();
            let ttl = self.web.cache_ttl;
            let stale = cache.get(id).is_some_and(|e| {
                let done = e.rx.borrow().is_some();
                done && (e.created.elapsed() > ttl
                    || e.failed.load(std::sync::atomic::Ordering::Relaxed))
            });
            if stale {
                cache.remove(id);
            }
            match cache.get(id) {
                Some(e) => e.rx.clone(),
                None => {
                    if cache.len() >= self.web.cache_size.max(1)
                        && let Some(oldest) = cache
                            .iter()
                            .min_by_key(|(_, e)| e.created)
                            .map(|(k, _)| k.clone())
                    {
                        cache.remove(&oldest);
                    }
                    let (tx, rx) = watch::channel(None);
                    let failed = Arc::new(std::sync::atomic::AtomicBool::new(false));
                    cache.insert(
                        id.to_string(),
                        Entry {
                            rx: rx.clone(),
                            created: Instant::now(),
                            polls: 0,
                            failed: failed.clone(),
                        },
                    );
                    let me = self.clone();
                    let value = value.to_string();
                    tokio::spawn(async move {
                        let hits = match me.hits_for(&value).await {
                            Ok(h) => h,
                            Err(e) => {
                                tracing::warn!("threat service lookup of '{value}' failed: {e}");
                                failed.store(true, std::sync::atomic::Ordering::Relaxed);
                                Vec::new()
                            }
                        };
                        let _ = tx.send(Some(Arc::new(hits)));
                    });
                    rx
                }
            }
        };
        let done = tokio::time::timeout(wait, rx.wait_for(Option::is_some)).await;
        match done {
            Ok(Ok(v)) => Lookup::Done(v.as_ref().map(|h| h.to_vec()).unwrap_or_default()),
            _ => Lookup::Pending,
        }
    }

    /// A poll of `id`: `None` when unknown (or given up), else its state.
    pub fn poll(&self, id: &str) -> Option<Lookup> {
        let mut cache = self.cache();
        let entry = cache.get_mut(id)?;
        let hits = entry.rx.borrow().clone();
        match hits {
            Some(h) => Some(Lookup::Done(h.to_vec())),
            None => {
                entry.polls += 1;
                if entry.polls > self.web.max_retries {
                    cache.remove(id);
                    None
                } else {
                    Some(Lookup::Pending)
                }
            }
        }
    }

    fn authorized(&self, headers: &HeaderMap) -> bool {
        let (user, password) = (&self.web.auth_user, &self.web.auth_password);
        if user.is_none() && password.is_none() {
            return true;
        }
        let expected = format!(
            "{}:{}",
            user.as_deref().unwrap_or_default(),
            password.as_ref().map(|p| p.expose()).unwrap_or_default()
        );
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Basic "))
            .and_then(|b| {
                base64::engine::general_purpose::STANDARD
                    .decode(b.trim())
                    .ok()
            })
            .is_some_and(|got| got == expected.as_bytes())
    }

    /// The HTTP routes, under `urlbase`.
    pub fn router(self: &Arc<Self>) -> Router {
        let base = format!("{}/trustar", self.web.urlbase.trim_end_matches('/'));
        Router::new()
            .route(&base, get(get_root).post(post_artifact).options(options))
            .route(&format!("{base}/{{id}}"), get(get_poll))
            .with_state(self.clone())
    }
}

fn reply(status: StatusCode, body: Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        body.to_string(),
    )
        .into_response()
}

fn unauthorized() -> Response {
    reply(StatusCode::UNAUTHORIZED, json!({"id": null, "hits": []}))
}

async fn options(State(svc): State<Arc<ThreatService>>, headers: HeaderMap) -> Response {
    if !svc.authorized(&headers) {
        return unauthorized();
    }
    reply(StatusCode::OK, json!({"upload_file": false}))
}

async fn get_root(State(svc): State<Arc<ThreatService>>, headers: HeaderMap) -> Response {
    if !svc.authorized(&headers) {
        return unauthorized();
    }
    reply(StatusCode::OK, json!({"id": null, "hits": []}))
}

/// The artifact JSON of a POST body: JSON, or the `artifact` part of a multipart form.
fn artifact_of(headers: &HeaderMap, body: &[u8]) -> Option<Value> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if ct.starts_with("multipart/form-data") {
        let boundary = ct
            .split(';')
            .find_map(|p| p.trim().strip_prefix("boundary="))?
            .trim_matches('"');
        let text = String::from_utf8_lossy(body);
        let delimiter = format!("--{boundary}");
        for part in text.split(delimiter.as_str()) {
            let Some((head, content)) = part
                .split_once("\r\n\r\n")
                .or_else(|| part.split_once("\n\n"))
            else {
                continue;
            };
            if head.contains("name=\"artifact\"") {
                let content = content.trim_end_matches("\r\n").trim_end_matches('\n');
                return serde_json::from_str(content).ok();
            }
        }
        return None;
    }
    serde_json::from_slice(body).ok()
}

async fn post_artifact(
    State(svc): State<Arc<ThreatService>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !svc.authorized(&headers) {
        return unauthorized();
    }
    let Some(artifact) = artifact_of(&headers, &body).filter(Value::is_object) else {
        return reply(
            StatusCode::OK,
            json!({"id": uuid::Uuid::new_v4().to_string(), "hits": []}),
        );
    };
    let id = request_id(&artifact);
    let ty = artifact["type"].as_str().unwrap_or_default();
    let value = artifact["value"].as_str().unwrap_or_default();
    if (ty == "net.name" && value == "localhost") || value.trim().is_empty() {
        return reply(StatusCode::OK, json!({"id": id, "hits": []}));
    }
    match svc.lookup(&id, value, svc.answer_within).await {
        Lookup::Done(hits) => reply(StatusCode::OK, json!({"id": id, "hits": hits})),
        Lookup::Pending => reply(
            StatusCode::SEE_OTHER,
            json!({"id": id, "hits": [], "retry_secs": svc.web.first_retry_secs}),
        ),
    }
}

async fn get_poll(
    State(svc): State<Arc<ThreatService>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if !svc.authorized(&headers) {
        return unauthorized();
    }
    match svc.poll(&id) {
        None => reply(StatusCode::OK, json!({"id": id, "hits": []})),
        Some(Lookup::Done(hits)) => reply(StatusCode::OK, json!({"id": id, "hits": hits})),
        Some(Lookup::Pending) => reply(
            StatusCode::SEE_OTHER,
            json!({"id": id, "hits": [], "retry_secs": svc.web.later_retry_secs}),
        ),
    }
}

/// A running threat-service server.
#[derive(Debug)]
pub struct RunningServer {
    pub addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl RunningServer {
    /// Stops accepting and waits for the server task.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

fn tls_config(web: &WebserverConfig) -> Result<Arc<rustls::ServerConfig>, String> {
    use rustls_pki_types::PrivateKeyDer;
    use rustls_pki_types::pem::PemObject;
    let certfile = web
        .certfile
        .as_deref()
        .ok_or("[webserver] secure = 1 needs a certfile")?;
    let certs = soar_tls::load_certs(std::path::Path::new(certfile))
        .map_err(|e| format!("[webserver] certfile: {e}"))?;
    let keyfile = web.keyfile.as_deref().unwrap_or(certfile);
    let key = PrivateKeyDer::from_pem_file(keyfile)
        .map_err(|e| format!("[webserver] cannot read a private key from {keyfile}: {e}"))?;
    let config = rustls::ServerConfig::builder_with_provider(soar_tls::provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("[webserver] certificate and key do not work together: {e}"))?;
    Ok(Arc::new(config))
}

/// Binds `[webserver] server:port` and serves the threat service until stopped.
pub async fn start(svc: Arc<ThreatService>) -> Result<RunningServer, String> {
    let web = svc.web.clone();
    let tls = if web.secure {
        Some(tls_config(&web)?)
    } else {
        None
    };
    let listener = tokio::net::TcpListener::bind((web.server.as_str(), web.port))
        .await
        .map_err(|e| {
            format!(
                "cannot listen on {}:{} ([webserver]): {e}",
                web.server, web.port
            )
        })?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let app = svc.router();
    let (stop, mut stopped) = watch::channel(false);
    let task = tokio::spawn(async move {
        match tls {
            None => {
                let server = axum::serve(listener, app).with_graceful_shutdown(async move {
                    let _ = stopped.wait_for(|s| *s).await;
                });
                if let Err(e) = server.await {
                    tracing::error!("threat service stopped: {e}");
                }
            }
            Some(tls) => serve_tls(listener, tls, app, stopped).await,
        }
    });
    tracing::info!(
        "TruSTAR threat service listening on {}://{addr}{}/trustar",
        if web.secure { "https" } else { "http" },
        web.urlbase
    );
    Ok(RunningServer { addr, stop, task })
}

async fn serve_tls(
    listener: tokio::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
    app: Router,
    mut stopped: watch::Receiver<bool>,
) {
    use tower::ServiceExt;
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    loop {
        let (tcp, peer) = tokio::select! {
            _ = stopped.wait_for(|s| *s) => return,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!("threat service accept failed: {e}");
                    continue;
                }
            },
        };
        let acceptor = acceptor.clone();
        let app = app.clone();
        tokio::spawn(async move {
            let stream =
                match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
                    Ok(Ok(s)) => s,
                    _ => {
                        tracing::debug!("threat service TLS handshake with {peer} failed");
                        return;
                    }
                };
            let service =
                hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    app.clone().oneshot(req.map(axum::body::Body::new))
                });
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await
            {
                tracing::debug!("threat service connection with {peer} ended: {e}");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_match_rc_cts() {
        let body = json!({"type": "net.uri", "value": "http://example.org"});
        assert_eq!(request_id(&body), "f9acc1b7-6184-5746-873e-e385e6214261");
    }

    #[test]
    fn reads_multipart_artifacts() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONTENT_TYPE,
            "multipart/form-data; boundary=XyZ".parse().unwrap(),
        );
        let body = "--XyZ\r\nContent-Disposition: form-data; name=\"artifact\"\r\n\r\n{\"type\":\"net.ip\",\"value\":\"1.2.3.4\"}\r\n--XyZ--\r\n";
        let a = artifact_of(&h, body.as_bytes()).unwrap();
        assert_eq!(a["value"], "1.2.3.4");
    }
}
