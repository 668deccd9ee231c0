//! The custom threat-service web server (rc-webserver + rc-cts): for every component that
//! serves a [`ThreatService`](soar_sdk::ThreatService), `<urlbase>/<name>` on `[webserver]
//! server:port` (HTTPS with `secure = 1`), per the platform's protocol (spec §7.2):
//!
//! - `OPTIONS` → `{"upload_file": false}`; `GET` of the service → `{"id": null, "hits": []}`.
//! - `POST` an artifact `{"type", "value"}` (JSON, or the `artifact` part of a multipart form):
//!   the lookup starts at once and the POST waits up to `answer_within_ms` for it; a fast answer
//!   comes back as 200 with the hits, a slow one as 303 `{"id", "hits": [], "retry_secs"}` to be
//!   polled with `GET <urlbase>/<name>/<id>`. `net.name` `localhost` (the platform's test probe)
//!   gets an immediate 200.
//! - Answers are cached for `cache_ttl` under the request id `uuid5(18222d9c-…, json.dumps(body))`
//!   (at most `cache_size`); concurrent requests for one artifact share one lookup; a failed
//!   lookup answers no hits and is tried again next time.
//! - With `auth_user`/`auth_password`, other credentials get 401.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use soar_sdk::config::Section;
use soar_sdk::threat::ThreatRoute;
use soar_sdk::{ConfigError, Hit, Secret, ThreatArtifact};
use tokio::sync::watch;

/// Where the host serves custom threat services.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
pub struct Webserver {
    /// Address to listen on.
    #[serde(default = "default_server")]
    pub server: String,
    /// Port to listen on.
    #[serde(default = "default_port")]
    pub port: u16,
    /// Serve HTTPS (true, or 1) instead of HTTP; needs certfile.
    #[serde(default)]
    pub secure: bool,
    /// PEM file with the certificate (and the private key, unless keyfile is set) for HTTPS.
    #[schemars(example = &"/etc/soar-host/threat-service.pem")]
    pub certfile: Option<String>,
    /// PEM file with the private key for HTTPS (default: certfile).
    pub keyfile: Option<String>,
}

impl Section for Webserver {
    const NAME: &'static str = "webserver";
}

fn default_server() -> String {
    "localhost".into()
}

fn default_port() -> u16 {
    9000
}

/// How the custom threat services answer the platform.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
pub struct CustomThreatService {
    /// URL path the services are served under: <urlbase>/<service name>.
    #[serde(default = "default_urlbase")]
    pub urlbase: String,
    /// Seconds the platform waits before its first poll of a slow lookup (0: 5).
    #[serde(default = "five")]
    pub first_retry_secs: u64,
    /// Seconds between the platform's later polls (0: 60).
    #[serde(default = "sixty")]
    pub later_retry_secs: u64,
    /// Polls of one slow lookup before it is given up.
    #[serde(default = "max_retries")]
    pub max_retries: u32,
    /// Lookup answers kept in the cache.
    #[serde(default = "cache_size")]
    pub cache_size: usize,
    /// Seconds an answer stays in the cache.
    #[serde(default = "cache_ttl")]
    pub cache_ttl: u64,
    /// User the platform must authenticate as (HTTP Basic); unset: no authentication.
    pub auth_user: Option<String>,
    /// Password of auth_user.
    pub auth_password: Option<Secret>,
    /// Milliseconds a lookup request waits for the answer before it is told to poll (HTTP 303).
    #[serde(default = "answer_within_ms")]
    pub answer_within_ms: u64,
}

impl Section for CustomThreatService {
    const NAME: &'static str = "custom_threat_service";
}

fn default_urlbase() -> String {
    "/cts".into()
}
fn five() -> u64 {
    5
}
fn sixty() -> u64 {
    60
}
fn max_retries() -> u32 {
    60
}
fn cache_size() -> usize {
    10_000
}
fn cache_ttl() -> u64 {
    600
}
fn answer_within_ms() -> u64 {
    1000
}

/// The namespace of request ids (rc-cts).
const ID_NAMESPACE: uuid::Uuid = uuid::uuid!("18222d9c-adf0-409c-aa19-beb27130ba12");

/// The request id of an artifact body: `uuid5(namespace, json.dumps(body))`.
pub fn request_id(body: &Value) -> String {
    uuid::Uuid::new_v5(&ID_NAMESPACE, soar_sdk::python::json_dumps(body).as_bytes()).to_string()
}

type Hits = Arc<Vec<Hit>>;

struct Entry {
    rx: watch::Receiver<Option<Hits>>,
    created: Instant,
    polls: u32,
    failed: Arc<AtomicBool>,
}

/// How a lookup request was answered.
#[derive(Debug, Clone, PartialEq)]
pub enum Lookup {
    Done(Vec<Hit>),
    Pending,
}

/// One threat service with its cache.
struct Service {
    route: ThreatRoute,
    cache: Mutex<HashMap<String, Entry>>,
}

/// Every threat service of the running components, and the settings they are served with.
pub struct ThreatServer {
    services: HashMap<String, Service>,
    web: Webserver,
    cts: CustomThreatService,
}

impl std::fmt::Debug for ThreatServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThreatServer")
            .field("services", &self.services.keys().collect::<Vec<_>>())
            .field("urlbase", &self.cts.urlbase)
            .finish_non_exhaustive()
    }
}

impl ThreatServer {
    /// The server for `routes` with the host's `[webserver]` and `[custom_threat_service]`.
    pub fn new(
        routes: Vec<ThreatRoute>,
        mut web: Webserver,
        mut cts: CustomThreatService,
        source: &soar_sdk::config::ConfigSource,
    ) -> Result<Arc<ThreatServer>, ConfigError> {
        if web.secure && web.certfile.as_deref().is_none_or(str::is_empty) {
            return Err(source.invalid(
                Webserver::NAME,
                "certfile",
                "secure = 1 needs a certfile (PEM certificate and key)",
            ));
        }
        web.server = web.server.trim().to_string();
        cts.urlbase = format!("/{}", cts.urlbase.trim().trim_matches('/'));
        if cts.first_retry_secs == 0 {
            cts.first_retry_secs = 5;
        }
        if cts.later_retry_secs == 0 {
            cts.later_retry_secs = 60;
        }
        let services = routes
            .into_iter()
            .map(|route| {
                let service = Service {
                    route,
                    cache: Mutex::new(HashMap::new()),
                };
                (service.route.name.clone(), service)
            })
            .collect();
        Ok(Arc::new(ThreatServer { services, web, cts }))
    }

    /// The names of the services.
    pub fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.services.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }

    fn cache<'a>(&self, service: &'a Service) -> MutexGuard<'a, HashMap<String, Entry>> {
        service.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts (or joins) the lookup `id` of `artifact` on `service`, waiting up to `wait`.
    pub async fn lookup(
        &self,
        service: &str,
        id: &str,
        artifact: ThreatArtifact,
        wait: Duration,
    ) -> Option<Lookup> {
        let svc = self.services.get(service)?;
        let mut rx = {
            let mut cache = self.cache(svc);
            let ttl = Duration::from_secs(self.cts.cache_ttl);
            let stale = cache.get(id).is_some_and(|e| {
                e.rx.borrow().is_some()
                    && (e.created.elapsed() > ttl || e.failed.load(Ordering::Relaxed))
            });
            if stale {
                cache.remove(id);
            }
            match cache.get(id) {
                Some(e) => e.rx.clone(),
                None => self.start_lookup(svc, &mut cache, id, artifact),
            }
        };
        let done = tokio::time::timeout(wait, rx.wait_for(Option::is_some)).await;
        Some(match done {
            Ok(Ok(v)) => Lookup::Done(v.as_ref().map(|h| h.to_vec()).unwrap_or_default()),
            _ => Lookup::Pending,
        })
    }

    fn start_lookup(
        &self,
        svc: &Service,
        cache: &mut HashMap<String, Entry>,
        id: &str,
        artifact: ThreatArtifact,
    ) -> watch::Receiver<Option<Hits>> {
        if cache.len() >= self.cts.cache_size.max(1)
            && let Some(oldest) = cache
                .iter()
                .min_by_key(|(_, e)| e.created)
                .map(|(k, _)| k.clone())
        {
            cache.remove(&oldest);
        }
        let (tx, rx) = watch::channel(None);
        let failed = Arc::new(AtomicBool::new(false));
        cache.insert(
            id.to_string(),
            Entry {
                rx: rx.clone(),
                created: Instant::now(),
                polls: 0,
                failed: failed.clone(),
            },
        );
        let search = svc.route.search(artifact.clone());
        let name = svc.route.name.clone();
        tokio::spawn(async move {
            let hits = match search.await {
                Ok(h) => h,
                Err(e) => {
                    tracing::warn!(
                        "threat service {name}: lookup of {:?} failed: {e}",
                        artifact.value
                    );
                    failed.store(true, Ordering::Relaxed);
                    Vec::new()
                }
            };
            let _ = tx.send(Some(Arc::new(hits)));
        });
        rx
    }

    /// A poll of `id`: `None` when unknown (or given up), else its state.
    pub fn poll(&self, service: &str, id: &str) -> Option<Lookup> {
        let svc = self.services.get(service)?;
        let mut cache = self.cache(svc);
        let entry = cache.get_mut(id)?;
        let hits = entry.rx.borrow().clone();
        match hits {
            Some(h) => Some(Lookup::Done(h.to_vec())),
            None => {
                entry.polls += 1;
                if entry.polls > self.cts.max_retries {
                    cache.remove(id);
                    None
                } else {
                    Some(Lookup::Pending)
                }
            }
        }
    }

    fn authorized(&self, headers: &HeaderMap) -> bool {
        let (user, password) = (&self.cts.auth_user, &self.cts.auth_password);
        if user.is_none() && password.is_none() {
            return true;
        }
        let expected = format!(
            "{}:{}",
            user.as_deref().unwrap_or_default(),
            password.as_ref().map(Secret::expose).unwrap_or_default()
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

    /// The HTTP routes: `<urlbase>/{service}` and `<urlbase>/{service}/{id}`.
    pub fn router(self: &Arc<Self>) -> Router {
        let base = self.cts.urlbase.trim_end_matches('/');
        Router::new()
            .route(
                &format!("{base}/{{service}}"),
                get(get_root).post(post_artifact).options(options),
            )
            .route(&format!("{base}/{{service}}/{{id}}"), get(get_poll))
            .with_state(self.clone())
    }
}

type St = State<Arc<ThreatServer>>;

fn reply(status: StatusCode, body: Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        body.to_string(),
    )
        .into_response()
}

/// 401 for wrong credentials, 404 for an unknown service; `None` when the request may go on.
fn refuse(server: &ThreatServer, headers: &HeaderMap, service: &str) -> Option<Response> {
    if !server.authorized(headers) {
        return Some(reply(
            StatusCode::UNAUTHORIZED,
            json!({"id": null, "hits": []}),
        ));
    }
    if !server.services.contains_key(service) {
        return Some(reply(
            StatusCode::NOT_FOUND,
            json!({"id": null, "hits": [], "message": format!("no threat service '{service}' here")}),
        ));
    }
    None
}

async fn options(State(server): St, headers: HeaderMap, Path(service): Path<String>) -> Response {
    refuse(&server, &headers, &service)
        .unwrap_or_else(|| reply(StatusCode::OK, json!({"upload_file": false})))
}

async fn get_root(State(server): St, headers: HeaderMap, Path(service): Path<String>) -> Response {
    refuse(&server, &headers, &service)
        .unwrap_or_else(|| reply(StatusCode::OK, json!({"id": null, "hits": []})))
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
    State(server): St,
    headers: HeaderMap,
    Path(service): Path<String>,
    body: Bytes,
) -> Response {
    if let Some(refused) = refuse(&server, &headers, &service) {
        return refused;
    }
    let Some(json) = artifact_of(&headers, &body).filter(Value::is_object) else {
        return reply(
            StatusCode::OK,
            json!({"id": uuid::Uuid::new_v4().to_string(), "hits": []}),
        );
    };
    let id = request_id(&json);
    let artifact = ThreatArtifact::from_json(json);
    let probe = artifact.as_ref().is_none_or(|a| {
        (a.artifact_type == "net.name" && a.value == "localhost") || a.value.trim().is_empty()
    });
    let Some(artifact) = artifact.filter(|_| !probe) else {
        return reply(StatusCode::OK, json!({"id": id, "hits": []}));
    };
    let wait = Duration::from_millis(server.cts.answer_within_ms);
    match server.lookup(&service, &id, artifact, wait).await {
        Some(Lookup::Done(hits)) => reply(StatusCode::OK, json!({"id": id, "hits": hits})),
        _ => reply(
            StatusCode::SEE_OTHER,
            json!({"id": id, "hits": [], "retry_secs": server.cts.first_retry_secs}),
        ),
    }
}

async fn get_poll(
    State(server): St,
    headers: HeaderMap,
    Path((service, id)): Path<(String, String)>,
) -> Response {
    if let Some(refused) = refuse(&server, &headers, &service) {
        return refused;
    }
    match server.poll(&service, &id) {
        None => reply(StatusCode::OK, json!({"id": id, "hits": []})),
        Some(Lookup::Done(hits)) => reply(StatusCode::OK, json!({"id": id, "hits": hits})),
        Some(Lookup::Pending) => reply(
            StatusCode::SEE_OTHER,
            json!({"id": id, "hits": [], "retry_secs": server.cts.later_retry_secs}),
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

fn tls_config(web: &Webserver) -> Result<Arc<rustls::ServerConfig>, String> {
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

/// Binds `[webserver] server:port` and serves until stopped.
pub async fn start(server: Arc<ThreatServer>) -> Result<RunningServer, String> {
    let web = server.web.clone();
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
    let app = server.router();
    let (stop, mut stopped) = watch::channel(false);
    let task = tokio::spawn(async move {
        match tls {
            None => {
                let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
                    let _ = stopped.wait_for(|s| *s).await;
                });
                if let Err(e) = serve.await {
                    tracing::error!("threat service stopped: {e}");
                }
            }
            Some(tls) => serve_tls(listener, tls, app, stopped).await,
        }
    });
    tracing::info!(
        "threat services {} listening on {}://{addr}{}/<name>",
        server.names().join(", "),
        if web.secure { "https" } else { "http" },
        server.cts.urlbase
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
