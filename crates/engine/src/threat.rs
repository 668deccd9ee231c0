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
//!   lookup (the service could not answer) is answered 303 like a slow one, and each poll tries
//!   it again, `max_retries` times (as rc-cts treats an incomplete lookup).
//! - With `auth_user`/`auth_password`, other credentials get 401. A body that is not an artifact
//!   JSON object gets 400 (rc-cts answered 200 with no hits), one over `max_body_bytes` 413,
//!   one slower than `timeout` 408; the multipart form is read by axum's parser.
//! - The server holds: at most `max_connections` connections (the rest wait in the kernel's
//!   backlog), `timeout` seconds for a TLS handshake and for a request's headers, a minute per
//!   connection, and a growing pause instead of a spin when accepting fails (EMFILE).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Path, Request, State};
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
use tokio::sync::{Semaphore, watch};

use crate::monitor::Monitor;

/// Where the host serves custom threat services.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
pub struct Webserver {
    /// Address to listen on.
    #[serde(default = "default_server")]
    pub server: String,
    /// Port to listen on.
    #[serde(default = "default_port")]
    pub port: u16,
    /// Serve HTTPS (true, or 1) instead of HTTP; needs certfile (or cafile).
    #[serde(default)]
    pub secure: bool,
    /// rc_webserver's name for certfile, as the plugins' documentation writes it: the PEM file
    /// with the certificate and private key; used when certfile is unset.
    pub cafile: Option<String>,
    /// PEM file with the certificate (and the private key, unless keyfile is set) for HTTPS.
    #[schemars(example = &"/etc/soar-host/threat-service.pem")]
    pub certfile: Option<String>,
    /// PEM file with the private key for HTTPS (default: certfile).
    pub keyfile: Option<String>,
    /// Connections served at once; more wait in the kernel's backlog.
    #[serde(default = "max_connections")]
    pub max_connections: usize,
    /// Seconds a client has for a TLS handshake, for a request's headers and for its body.
    #[serde(default = "five")]
    pub timeout: u64,
    /// Largest request body in bytes (an artifact is a few hundred); larger ones get 413.
    #[serde(default = "max_body_bytes")]
    pub max_body_bytes: usize,
}

fn max_connections() -> usize {
    100
}

fn max_body_bytes() -> usize {
    64 * 1024
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
    /// The lookup failed (the service could not answer): it is tried again on the next poll.
    failed: Arc<AtomicBool>,
    artifact: ThreatArtifact,
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
    monitor: Monitor,
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
        monitor: Monitor,
    ) -> Result<Arc<ThreatServer>, ConfigError> {
        let unset = |v: &Option<String>| v.as_deref().is_none_or(|v| v.trim().is_empty());
        if unset(&web.certfile) {
            web.certfile = web.cafile.take().filter(|v| !v.trim().is_empty());
        }
        if web.secure && unset(&web.certfile) {
            return Err(source.invalid(
                Webserver::NAME,
                "certfile",
                "secure = 1 needs a certfile (or cafile, as rc_webserver calls it): the PEM \
                 certificate and key",
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
        Ok(Arc::new(ThreatServer {
            services,
            web,
            cts,
            monitor,
        }))
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

    /// Starts (or joins) the lookup `id` of `artifact` on `service`, waiting up to `wait`. A
    /// lookup that failed is `Pending`: the platform polls, and the poll tries it again.
    pub async fn lookup(
        &self,
        service: &str,
        id: &str,
        artifact: ThreatArtifact,
        wait: Duration,
    ) -> Option<Lookup> {
        let svc = self.services.get(service)?;
        let (mut rx, failed) = {
            let mut cache = self.cache(svc);
            let ttl = Duration::from_secs(self.cts.cache_ttl);
            let stale = cache.get(id).is_some_and(|e| {
                e.rx.borrow().is_some()
                    && (e.created.elapsed() > ttl || e.failed.load(Ordering::Relaxed))
            });
            if stale {
                cache.remove(id);
            }
            let start = !cache.contains_key(id);
            self.monitor.threat_request(service, start);
            if start {
                self.start_lookup(svc, &mut cache, id, artifact, 0);
            }
            let e = &cache[id];
            (e.rx.clone(), e.failed.clone())
        };
        let done = tokio::time::timeout(wait, rx.wait_for(Option::is_some)).await;
        Some(match done {
            Ok(Ok(_)) if failed.load(Ordering::Relaxed) => Lookup::Pending,
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
        polls: u32,
    ) {
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
                rx,
                created: Instant::now(),
                polls,
                failed: failed.clone(),
                artifact: artifact.clone(),
            },
        );
        let search = svc.route.search(artifact.clone());
        let name = svc.route.name.clone();
        tokio::spawn(async move {
            let hits = match search.await {
                Ok(h) => h,
                Err(e) => {
                    tracing::warn!(
                        "threat service {name}: lookup of {:?} failed: {e}; the platform is \
                         told to poll, and the poll tries again",
                        artifact.value
                    );
                    failed.store(true, Ordering::Relaxed);
                    Vec::new()
                }
            };
            let _ = tx.send(Some(Arc::new(hits)));
        });
    }

    /// A poll of `id`: `None` when unknown (or given up after `max_retries` polls), else its
    /// state. A failed lookup is started again.
    pub fn poll(&self, service: &str, id: &str) -> Option<Lookup> {
        let svc = self.services.get(service)?;
        let mut cache = self.cache(svc);
        let entry = cache.get_mut(id)?;
        let hits = entry.rx.borrow().clone();
        let failed = entry.failed.load(Ordering::Relaxed);
        if let Some(h) = hits.as_ref().filter(|_| !failed) {
            return Some(Lookup::Done(h.to_vec()));
        }
        entry.polls += 1;
        if entry.polls > self.cts.max_retries {
            cache.remove(id);
            return None;
        }
        if hits.is_some() {
            let (artifact, polls) = (entry.artifact.clone(), entry.polls);
            cache.remove(id);
            self.start_lookup(svc, &mut cache, id, artifact, polls);
        }
        Some(Lookup::Pending)
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

    /// The HTTP routes: `<urlbase>/{service}` and `<urlbase>/{service}/{id}`; bodies over
    /// `max_body_bytes` get 413.
    pub fn router(self: &Arc<Self>) -> Router {
        let base = self.cts.urlbase.trim_end_matches('/');
        Router::new()
            .route(
                &format!("{base}/{{service}}"),
                get(get_root).post(post_artifact).options(options),
            )
            .route(&format!("{base}/{{service}}/{{id}}"), get(get_poll))
            .layer(DefaultBodyLimit::max(self.web.max_body_bytes))
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

/// A request that cannot be served: 400 (not an artifact), 408 (too slow), 413 (too big).
fn bad_request(status: StatusCode, message: impl std::fmt::Display) -> Response {
    reply(
        status,
        json!({"id": null, "hits": [], "message": message.to_string()}),
    )
}

/// A body that cannot be read (cut short, a broken form, too big): the client's fault, never a
/// 5xx of ours; 413 stays 413.
fn unreadable(status: StatusCode, text: String) -> Response {
    let status = if status.is_server_error() {
        StatusCode::BAD_REQUEST
    } else {
        status
    };
    bad_request(status, format!("the request body cannot be read: {text}"))
}

/// The artifact JSON object of a POST body: JSON, or the `artifact` part of a multipart form
/// (axum's multipart parser).
async fn artifact_of(request: Request) -> Result<Value, Response> {
    let multipart = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("multipart/form-data"));
    let text = if multipart {
        let mut form = Multipart::from_request(request, &())
            .await
            .map_err(|e| unreadable(e.status(), e.body_text()))?;
        loop {
            match form.next_field().await {
                Ok(Some(field)) if field.name() == Some("artifact") => {
                    break (field.text().await)
                        .map_err(|e| unreadable(e.status(), e.body_text()))?;
                }
                Ok(Some(_)) => {}
                Ok(None) => {
                    return Err(bad_request(
                        StatusCode::BAD_REQUEST,
                        "the multipart form has no 'artifact' part",
                    ));
                }
                Err(e) => return Err(unreadable(e.status(), e.body_text())),
            }
        }
    } else {
        let bytes = Bytes::from_request(request, &())
            .await
            .map_err(|e| unreadable(e.status(), e.body_text()))?;
        String::from_utf8(bytes.to_vec())
            .map_err(|_| bad_request(StatusCode::BAD_REQUEST, "the body is not UTF-8 text"))?
    };
    match serde_json::from_str::<Value>(&text) {
        Ok(v) if v.is_object() => Ok(v),
        Ok(_) => Err(bad_request(
            StatusCode::BAD_REQUEST,
            "the body must be an artifact object {\"type\": …, \"value\": …}",
        )),
        Err(e) => Err(bad_request(
            StatusCode::BAD_REQUEST,
            format!("the body is not an artifact JSON object ({e})"),
        )),
    }
}

async fn post_artifact(
    State(server): St,
    Path(service): Path<String>,
    request: Request,
) -> Response {
    if let Some(refused) = refuse(&server, request.headers(), &service) {
        return refused;
    }
    let timeout = Duration::from_secs(server.web.timeout.max(1));
    let json = match tokio::time::timeout(timeout, artifact_of(request)).await {
        Ok(Ok(json)) => json,
        Ok(Err(refused)) => return refused,
        Err(_) => {
            return bad_request(
                StatusCode::REQUEST_TIMEOUT,
                format!("the request body did not arrive within {timeout:?}"),
            );
        }
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

/// Longest a connection lives: then it finishes its request and closes.
const CONNECTION_LIFETIME: Duration = Duration::from_secs(60);

/// Binds `[webserver] server:port` and serves until stopped.
pub async fn start(server: Arc<ThreatServer>) -> Result<RunningServer, String> {
    let web = server.web.clone();
    let tls = if web.secure {
        Some(tokio_rustls::TlsAcceptor::from(tls_config(&web)?))
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
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(serve(listener, tls, app, stopped, web.clone()));
    tracing::info!(
        "threat services {} listening on {}://{addr}{}/<name>",
        server.names().join(", "),
        if web.secure { "https" } else { "http" },
        server.cts.urlbase
    );
    Ok(RunningServer { addr, stop, task })
}

/// The accept loop: at most `max_connections` at once (the rest wait in the backlog, costing
/// nothing here), and a growing pause, not a spin, when accepting fails (out of file
/// descriptors: EMFILE).
async fn serve(
    listener: tokio::net::TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    app: Router,
    mut stopped: watch::Receiver<bool>,
    web: Webserver,
) {
    let slots = Arc::new(Semaphore::new(web.max_connections.max(1)));
    let timeout = Duration::from_secs(web.timeout.max(1));
    let mut failures: u32 = 0;
    let mut connections = tokio::task::JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        let permit = tokio::select! {
            _ = stopped.wait_for(|s| *s) => break,
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let accepted = tokio::select! {
            _ = stopped.wait_for(|s| *s) => break,
            r = listener.accept() => r,
        };
        let (tcp, peer) = match accepted {
            Ok(x) => {
                failures = 0;
                x
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                let wait = ACCEPT_PAUSE
                    .saturating_mul(1 << failures.min(6))
                    .min(Duration::from_secs(1));
                if failures.is_power_of_two() {
                    tracing::warn!(
                        "threat service cannot accept connections ({e}); pausing {wait:?} \
                         ({failures} failures in a row)"
                    );
                }
                tokio::select! {
                    _ = stopped.wait_for(|s| *s) => break,
                    () = tokio::time::sleep(wait) => continue,
                }
            }
        };
        let (tls, app, stop) = (tls.clone(), app.clone(), stopped.clone());
        connections.spawn(async move {
            let _permit = permit;
            match tls {
                None => connection(tcp, app, timeout, stop).await,
                Some(acceptor) => match tokio::time::timeout(timeout, acceptor.accept(tcp)).await {
                    Ok(Ok(stream)) => connection(stream, app, timeout, stop).await,
                    _ => tracing::debug!("threat service TLS handshake with {peer} failed"),
                },
            }
        });
    }
    // Stopped: idle connections close now, requests in flight finish (within `timeout`).
    drop(listener);
    let _ = tokio::time::timeout(timeout, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
}

/// First pause after a failed accept; it doubles up to a second.
const ACCEPT_PAUSE: Duration = Duration::from_millis(10);

/// Serves one connection: headers within `timeout`, and for [`CONNECTION_LIFETIME`] at most
/// or until the server stops.
async fn connection<I>(io: I, app: Router, timeout: Duration, mut stop: watch::Receiver<bool>)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    use tower::ServiceExt;
    let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        app.clone().oneshot(req.map(axum::body::Body::new))
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(timeout)
        .serve_connection(hyper_util::rt::TokioIo::new(io), service);
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                tracing::debug!("threat service connection ended: {e}");
            }
            return;
        }
        () = tokio::time::sleep(CONNECTION_LIFETIME) => conn.as_mut().graceful_shutdown(),
        _ = stop.wait_for(|s| *s) => conn.as_mut().graceful_shutdown(),
    }
    let _ = tokio::time::timeout(timeout, conn).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use soar_sdk::config::Sections;

    /// `[webserver] cafile`, rc_webserver's name for the certificate as the plugins document
    /// it, serves HTTPS like certfile.
    #[tokio::test]
    async fn https_with_the_documented_cafile_key() {
        let dir = tempfile::tempdir().unwrap();
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let pem = dir.path().join("threat.pem");
        std::fs::write(
            &pem,
            format!("{}{}", ck.cert.pem(), ck.signing_key.serialize_pem()),
        )
        .unwrap();
        let source = soar_sdk::config::ConfigSource::new("app.config").with_section(
            Webserver::NAME,
            [
                ("server", "127.0.0.1"),
                ("port", "0"),
                ("secure", "1"),
                ("cafile", pem.to_str().unwrap()),
            ],
        );
        let web = Webserver::load(&source).unwrap();
        assert_eq!(source.warnings(), Vec::<String>::new());
        let routes = soar_sdk::Component::new()
            .threat_service("none", NoHits)
            .threat_services()
            .to_vec();
        let cts = CustomThreatService::load(&source).unwrap();
        let server = ThreatServer::new(routes, web, cts, &source, Monitor::default()).unwrap();
        let running = start(server).await.unwrap();
        let tls = soar_tls::client_config(&soar_tls::CaSource::File(pem.clone())).unwrap();
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured((*tls).clone())
            .build()
            .unwrap();
        let url = format!("https://localhost:{}/cts/none", running.addr.port());
        let answer = client
            .post(&url)
            .json(&json!({"type": "net.name", "value": "localhost"}))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
        running.stop().await;

        // Neither key: the error names both.
        let source = soar_sdk::config::ConfigSource::new("app.config")
            .with_section(Webserver::NAME, [("secure", "1")]);
        let web = Webserver::load(&source).unwrap();
        let cts = CustomThreatService::load(&source).unwrap();
        let e = ThreatServer::new(Vec::new(), web, cts, &source, Monitor::default()).unwrap_err();
        assert!(e.to_string().contains("certfile (or cafile"), "{e}");
    }

    struct NoHits;

    impl soar_sdk::ThreatService for NoHits {
        async fn search(&self, _: ThreatArtifact) -> Result<Vec<Hit>, soar_sdk::FunctionError> {
            Ok(Vec::new())
        }
    }

    #[test]
    fn request_ids_match_rc_cts() {
        let body = json!({"type": "net.uri", "value": "http://example.org"});
        assert_eq!(request_id(&body), "f9acc1b7-6184-5746-873e-e385e6214261");
    }
}
