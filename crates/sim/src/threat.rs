//! Custom threat services (protocol spec §7): the platform side of `resutil threatserviceedit`,
//! `threatservicetest`, `threatserviceshow` and `threatservicedel`, and the lookups the platform
//! makes for every new artifact.
//!
//! A registered service ([`ThreatService`]: a name, a REST URL such as
//! `http://127.0.0.1:9000/cts/intel`, optional Basic credentials) gets a numeric id (its
//! `threat_source_id`). When an artifact is created (over REST or through the Rust API), one
//! lookup per registered service is logged as pending ([`ThreatLookup`]) and run by a background
//! task, following §7.2:
//!
//! 1. `OPTIONS <url>` (the answer, `{"upload_file": …}`, is only logged: the simulator never
//!    uploads files); a transport error ends the lookup;
//! 2. `POST <url>` with `{"type": <the artifact type's programmatic name, e.g. net.ip>,
//!    "value": …}` as `application/json` (with `Authorization: Basic` when credentials are set);
//! 3. `200` → the hits are final; `204` → no hits; `303` with `{"id", "retry_secs"}` → after
//!    `retry_secs` seconds (5 when absent), `GET <url>/<id>`, again while it answers 303 (each
//!    303 may give a new `retry_secs`), bounded by [`crate::SimConfig::threat_max_polls`] polls
//!    and the [`crate::SimConfig::threat_lookup_deadline`] of the whole lookup;
//! 4. anything else (another status, a body that is not JSON, a transport error, a timeout) fails
//!    the lookup: it is logged with the reason and the artifact keeps no hits from it.
//!
//! Redirects are never followed automatically (303 is the protocol's "poll later"). Hits
//! (`{"hits": [{"props": [{"type", "name", "value"}]}]}`; `properties` is accepted for `props`,
//! properties with a null value are dropped) are appended to the artifact's `hits` in the
//! platform's shape: `{id, artifact_id, threat_source_id, threat_source_name, properties:
//! [{type, name, value}], active: true, created}`. A failing or unreachable service never blocks
//! or fails anything else: lookups run on their own tasks, outside the platform lock.
//!
//! [`crate::Sim::test_threat_service`] is `threatservicetest`: it posts `{"type": "net.name",
//! "value": "localhost"}`, which a service must answer at once with 200 and no hits.

use std::fmt;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::incidents::ApiError;
use crate::messages::now_ms;
use crate::platform::PlatformState;
use crate::{Sim, SimError, WeakSim};

/// Largest response body read from a threat service.
const MAX_BODY: usize = 1 << 20;
/// Timeout of one HTTP request to a threat service.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Connect timeout to a threat service.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// `retry_secs` assumed when a 303 does not give one (the CTS default `first_retry_secs`).
const DEFAULT_RETRY_SECS: u64 = 5;
/// The shortest wait between polls (a `retry_secs` of 0 must not spin).
const MIN_POLL_WAIT: Duration = Duration::from_millis(100);
/// How many lookups the log keeps (the oldest finished ones are dropped beyond).
pub const MAX_LOGGED_LOOKUPS: usize = 10_000;

/// A custom threat service, as `resutil threatserviceedit -name N -resturl URL [-user u
/// -password p]` registers it.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThreatService {
    /// The service's name (unique; registering the same name again replaces it).
    pub name: String,
    /// Its REST URL, `http://host:port/cts/<name>` (http or https).
    pub url: String,
    /// Basic auth user, if the service checks credentials.
    #[serde(default)]
    pub user: Option<String>,
    /// Basic auth password.
    #[serde(default)]
    pub password: Option<String>,
}

impl fmt::Debug for ThreatService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreatService")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl ThreatService {
    /// Checks the name and URL; the message says what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        let name = self.name.trim();
        if name.is_empty() {
            return Err("a threat service needs a name".into());
        }
        if name.chars().any(|c| c.is_control() || c == '/') {
            return Err(format!(
                "invalid threat service name {name:?}: no '/' or control characters"
            ));
        }
        let url = reqwest::Url::parse(self.url.trim())
            .map_err(|e| format!("invalid threat service URL '{}': {e}", self.url))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(format!(
                "invalid threat service URL '{}': expected http://host[:port]/path or https://…",
                self.url
            ));
        }
        if self.password.is_some() && self.user.is_none() {
            return Err("a threat service password needs a user".into());
        }
        Ok(())
    }

    /// The service as admin views show it: no password, only whether one is set.
    pub fn to_public_json(&self) -> Value {
        json!({
            "name": self.name,
            "url": self.url,
            "user": self.user,
            "password_set": self.password.is_some(),
        })
    }
}

/// A registered threat service with its id (`threat_source_id` of its hits).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegisteredThreatService {
    /// The threat source id.
    pub id: i64,
    /// The service.
    pub service: ThreatService,
}

/// How a lookup ended (or that it has not yet).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ThreatLookupOutcome {
    /// Still running.
    Pending,
    /// The service answered; `hits` hits were stored on the artifact (0 if it was deleted).
    Completed {
        /// How many hits the service returned.
        hits: usize,
    },
    /// The lookup failed; the artifact got no hits from it.
    Failed {
        /// Why.
        error: String,
    },
}

/// One HTTP request of a lookup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThreatRequest {
    /// `OPTIONS`, `POST` or `GET`.
    pub method: String,
    /// The URL requested.
    pub url: String,
    /// The HTTP status, when one came back.
    pub status: Option<u16>,
    /// The transport error, when none came back.
    pub error: Option<String>,
    /// When it was sent, ms since the epoch.
    pub time: i64,
}

/// One artifact lookup by one threat service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThreatLookup {
    /// Lookup id.
    pub id: i64,
    /// The service's name.
    pub service: String,
    /// The service's threat source id.
    pub service_id: i64,
    /// The artifact's incident.
    pub incident_id: i64,
    /// The artifact.
    pub artifact_id: i64,
    /// The type sent (`net.ip`, `net.uri`…).
    pub artifact_type: String,
    /// The value sent.
    pub value: String,
    /// Every request made so far, in order.
    pub requests: Vec<ThreatRequest>,
    /// The outcome.
    pub outcome: ThreatLookupOutcome,
    /// When the lookup was queued, ms since the epoch.
    pub started: i64,
    /// When it ended.
    pub finished: Option<i64>,
}

/// A lookup to run (sent by [`PlatformState::queue_threat_lookups`] to the dispatcher).
#[derive(Debug, Clone)]
pub(crate) struct LookupJob {
    lookup_id: i64,
    source: RegisteredThreatService,
    incident_id: i64,
    artifact_id: i64,
    artifact_type: String,
    value: String,
}

/// Bounds of one lookup.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) max_polls: u32,
    pub(crate) deadline: Duration,
}

impl PlatformState {
    /// Registers (or replaces, keeping its id) a threat service; returns its id.
    pub fn add_threat_service(&mut self, mut service: ThreatService) -> Result<i64, ApiError> {
        service.validate().map_err(|m| ApiError::new(400, m))?;
        service.name = service.name.trim().to_string();
        service.url = service.url.trim().to_string();
        let id = match self.threat_services.get(&service.name) {
            Some(r) => r.id,
            None => self
                .threat_services
                .values()
                .map(|r| r.id)
                .max()
                .unwrap_or(0)
                .saturating_add(1),
        };
        self.threat_services.insert(
            service.name.clone(),
            RegisteredThreatService { id, service },
        );
        Ok(id)
    }

    /// Logs one pending lookup per registered service and hands them to the lookup tasks
    /// (nothing when no dispatcher runs, as in a bare [`PlatformState`]).
    pub(crate) fn queue_threat_lookups(
        &mut self,
        incident_id: i64,
        artifact_id: i64,
        artifact_type: &str,
        value: &str,
    ) {
        let Some(tx) = self.threat_jobs.clone() else {
            return;
        };
        let sources: Vec<RegisteredThreatService> =
            self.threat_services.values().cloned().collect();
        for source in sources {
            let id = self.next_id();
            self.threat_lookups.push(ThreatLookup {
                id,
                service: source.service.name.clone(),
                service_id: source.id,
                incident_id,
                artifact_id,
                artifact_type: artifact_type.to_string(),
                value: value.to_string(),
                requests: Vec::new(),
                outcome: ThreatLookupOutcome::Pending,
                started: now_ms() as i64,
                finished: None,
            });
            if self.threat_lookups.len() > MAX_LOGGED_LOOKUPS
                && let Some(pos) = self
                    .threat_lookups
                    .iter()
                    .position(|l| l.outcome != ThreatLookupOutcome::Pending)
            {
                self.threat_lookups.remove(pos);
            }
            let job = LookupJob {
                lookup_id: id,
                source,
                incident_id,
                artifact_id,
                artifact_type: artifact_type.to_string(),
                value: value.to_string(),
            };
            if tx.send(job).is_err()
                && let Some(l) = self.lookup_mut(id)
            {
                l.outcome = ThreatLookupOutcome::Failed {
                    error: "the simulated platform is shutting down".into(),
                };
                l.finished = Some(now_ms() as i64);
            }
        }
    }

    fn lookup_mut(&mut self, id: i64) -> Option<&mut ThreatLookup> {
        self.threat_lookups.iter_mut().rev().find(|l| l.id == id)
    }

    /// Whether some lookup is still pending.
    pub fn threat_lookups_pending(&self) -> bool {
        self.threat_lookups
            .iter()
            .any(|l| l.outcome == ThreatLookupOutcome::Pending)
    }
}

/// The hits of a §7.2 response body: for each hit, its properties (`props` or `properties`,
/// objects with a non-null `value`; a `name` and `type` are kept as given, `type` defaults to
/// `string`). Anything else in the body is ignored.
pub fn parse_hits(body: &Value) -> Vec<Vec<Value>> {
    let Some(hits) = body.get("hits").and_then(Value::as_array) else {
        return Vec::new();
    };
    hits.iter()
        .filter_map(Value::as_object)
        .map(|hit| {
            hit.get("props")
                .or(hit.get("properties"))
                .and_then(Value::as_array)
                .map(|props| {
                    props
                        .iter()
                        .filter_map(Value::as_object)
                        .filter(|p| p.get("value").is_some_and(|v| !v.is_null()))
                        .map(|p| {
                            json!({
                                "type": p.get("type").cloned().unwrap_or(json!("string")),
                                "name": p.get("name").cloned().unwrap_or(Value::Null),
                                "value": p.get("value").cloned().unwrap_or(Value::Null),
                            })
                        })
                        .collect()
                })
                .unwrap_or_default()
        })
        .collect()
}

/// The HTTP client for threat services: TLS from `ca` (system roots by default; when they
/// cannot be loaded, no roots, so that http:// services still work and https:// ones fail with a
/// logged error), no automatic redirects.
pub(crate) fn build_client(ca: &soar_tls::CaSource) -> Result<reqwest::Client, SimError> {
    let tls = match soar_tls::client_config(ca) {
        Ok(c) => c,
        Err(e) if *ca == soar_tls::CaSource::System => {
            tracing::warn!(
                "threat services: {e}; https:// threat services will fail (http:// ones work)"
            );
            let config = rustls::ClientConfig::builder_with_provider(soar_tls::provider())
                .with_safe_default_protocol_versions()
                .map_err(|e| SimError::Tls(format!("threat service client: {e}")))?
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth();
            std::sync::Arc::new(config)
        }
        Err(e) => return Err(SimError::Tls(format!("threat service client: {e}"))),
    };
    reqwest::Client::builder()
        .use_preconfigured_tls((*tls).clone())
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(CONNECT_TIMEOUT)
        .build()
        .map_err(|e| SimError::Tls(format!("threat service client: {e}")))
}

/// Percent-encodes one URL path segment.
fn encode_segment(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A response: status and JSON body (`Null` when empty).
struct Answer {
    status: u16,
    body: Result<Value, String>,
}

async fn read_body(mut resp: reqwest::Response) -> Result<Vec<u8>, String> {
    let mut buf = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| format!("reading the response failed: {e}"))?
    {
        if buf.len() + chunk.len() > MAX_BODY {
            return Err(format!("the response is larger than {MAX_BODY} bytes"));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf)
}

/// Sends one request; `Err` is a transport error (or timeout).
async fn send(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    service: &ThreatService,
    body: Option<&Value>,
    timeout: Duration,
) -> Result<Answer, String> {
    let mut req = client
        .request(method, url)
        .timeout(timeout)
        .header(reqwest::header::ACCEPT, "application/json");
    if let Some(user) = &service.user {
        req = req.basic_auth(user, service.password.as_deref());
    }
    if let Some(b) = body {
        req = req.json(b);
    }
    let resp = req.send().await.map_err(describe)?;
    let status = resp.status().as_u16();
    let body = read_body(resp).await.and_then(|bytes| {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            Ok(Value::Null)
        } else {
            serde_json::from_slice(&bytes).map_err(|e| {
                let text = String::from_utf8_lossy(&bytes);
                let snippet: String = text.chars().take(200).collect();
                format!("the response is not JSON ({e}): {snippet}")
            })
        }
    });
    Ok(Answer { status, body })
}

/// A reqwest error with its causes.
fn describe(e: reqwest::Error) -> String {
    let mut s = if e.is_timeout() {
        format!("timed out: {e}")
    } else if e.is_connect() {
        format!("cannot connect: {e}")
    } else {
        e.to_string()
    };
    let mut source = std::error::Error::source(&e);
    while let Some(c) = source {
        s.push_str(&format!(": {c}"));
        source = c.source();
    }
    s
}

fn status_error(method: &str, url: &str, a: &Answer) -> String {
    let body = match &a.body {
        Ok(v) if v.is_null() => String::new(),
        Ok(v) => format!(": {}", v.to_string().chars().take(200).collect::<String>()),
        Err(e) => format!(": {e}"),
    };
    format!("{method} {url} answered HTTP {}{body}", a.status)
}

impl Sim {
    fn record_threat_request(&self, lookup_id: i64, request: ThreatRequest) {
        if let Some(l) = self.platform().state().lookup_mut(lookup_id) {
            l.requests.push(request);
        }
    }

    /// Ends a lookup: stores the hits (if any) and its outcome, and wakes
    /// [`Sim::wait_threat_lookups_idle`].
    fn finish_lookup(&self, job: &LookupJob, result: Result<Vec<Vec<Value>>, String>) {
        {
            let mut st = self.platform().state();
            let outcome = match result {
                Ok(hits) => {
                    let n = hits.len();
                    if n > 0 {
                        let now = now_ms() as i64;
                        let hits = hits
                            .into_iter()
                            .map(|props| {
                                json!({
                                    "threat_source_id": job.source.id,
                                    "threat_source_name": job.source.service.name,
                                    "properties": props,
                                    "active": true,
                                    "created": now,
                                })
                            })
                            .collect();
                        if !st.add_artifact_hits(job.incident_id, job.artifact_id, hits) {
                            tracing::info!(
                                "threat service '{}': artifact {} was deleted before its {n} hit(s) arrived",
                                job.source.service.name,
                                job.artifact_id
                            );
                        }
                    }
                    tracing::debug!(
                        "threat service '{}': {n} hit(s) for {} '{}'",
                        job.source.service.name,
                        job.artifact_type,
                        job.value
                    );
                    ThreatLookupOutcome::Completed { hits: n }
                }
                Err(error) => {
                    tracing::warn!(
                        "threat service '{}': lookup of {} '{}' (artifact {}) failed: {error}",
                        job.source.service.name,
                        job.artifact_type,
                        job.value,
                        job.artifact_id
                    );
                    ThreatLookupOutcome::Failed { error }
                }
            };
            if let Some(l) = st.lookup_mut(job.lookup_id) {
                l.outcome = outcome;
                l.finished = Some(now_ms() as i64);
            }
        }
        self.inner.lookups_changed.send_modify(|n| *n += 1);
    }

    fn threat_client(&self) -> Result<reqwest::Client, SimError> {
        if let Some(c) = self.inner.threat_client.get() {
            return Ok(c.clone());
        }
        let c = build_client(&self.inner.config.threat_service_ca)?;
        Ok(self.inner.threat_client.get_or_init(|| c).clone())
    }

    /// Registers a custom threat service (or replaces the one with the same name), like
    /// `resutil threatserviceedit -name N -resturl URL [-user u -password p]`. Every artifact
    /// created from now on is looked up by it. Errors: an empty name, a URL that is not
    /// http(s)://host…, a password without a user.
    pub fn add_threat_service(&self, service: ThreatService) -> Result<(), SimError> {
        self.platform()
            .state()
            .add_threat_service(service)
            .map(|_| ())
            .map_err(|e| SimError::Rejected(e.message))
    }

    /// Unregisters a threat service (`resutil threatservicedel`). Lookups already running finish.
    pub fn remove_threat_service(&self, name: &str) -> Result<(), SimError> {
        self.platform()
            .state()
            .threat_services
            .remove(name)
            .map(|_| ())
            .ok_or_else(|| SimError::UnknownThreatService(name.to_string()))
    }

    /// The registered threat services, by name (`resutil threatserviceshow`).
    pub fn threat_services(&self) -> Vec<ThreatService> {
        self.platform()
            .state()
            .threat_services
            .values()
            .map(|r| r.service.clone())
            .collect()
    }

    /// The threat source id of a registered service.
    pub fn threat_service_id(&self, name: &str) -> Option<i64> {
        self.platform()
            .state()
            .threat_services
            .get(name)
            .map(|r| r.id)
    }

    /// Tests a registered service like `resutil threatservicetest`: posts `{"type": "net.name",
    /// "value": "localhost"}`, which must be answered with HTTP 200 and no hits.
    pub async fn test_threat_service(&self, name: &str) -> Result<(), SimError> {
        let service = self
            .platform()
            .state()
            .threat_services
            .get(name)
            .map(|r| r.service.clone())
            .ok_or_else(|| SimError::UnknownThreatService(name.to_string()))?;
        let client = self.threat_client()?;
        let fail = |m: String| SimError::ThreatService {
            name: name.to_string(),
            message: m,
        };
        let a = send(
            &client,
            reqwest::Method::POST,
            &service.url,
            &service,
            Some(&json!({"type": "net.name", "value": "localhost"})),
            REQUEST_TIMEOUT,
        )
        .await
        .map_err(|e| fail(format!("POST {}: {e}", service.url)))?;
        if a.status != 200 {
            return Err(fail(status_error("POST", &service.url, &a)));
        }
        let body = a
            .body
            .map_err(|e| fail(format!("POST {}: {e}", service.url)))?;
        match body.get("hits") {
            Some(Value::Array(h)) if h.is_empty() => Ok(()),
            Some(Value::Array(h)) => Err(fail(format!(
                "the test lookup of 'localhost' answered {} hit(s); a threat service must answer it with none",
                h.len()
            ))),
            _ => Err(fail(format!(
                "the test lookup answered {body}, which has no 'hits' list"
            ))),
        }
    }

    /// Every threat lookup so far (one per new artifact and registered service), oldest first.
    pub fn threat_lookups(&self) -> Vec<ThreatLookup> {
        self.platform().state().threat_lookups.clone()
    }

    /// Waits until no threat lookup is pending (for tests: no sleeping).
    pub async fn wait_threat_lookups_idle(&self, timeout: Duration) -> Result<(), SimError> {
        let mut rx = self.inner.lookups_changed.subscribe();
        let fut = async {
            loop {
                rx.borrow_and_update();
                if !self.platform().state().threat_lookups_pending() {
                    return Ok(());
                }
                if rx.changed().await.is_err() {
                    return Err(SimError::Shutdown);
                }
            }
        };
        tokio::time::timeout(timeout, fut)
            .await
            .map_err(|_| SimError::timeout("the threat lookups to end", timeout))?
    }
}

/// Starts the task that runs every queued lookup on its own task.
pub(crate) fn spawn_dispatcher(sim: &Sim, mut rx: tokio::sync::mpsc::UnboundedReceiver<LookupJob>) {
    let weak = sim.downgrade();
    let cancel = sim.inner.cancel.clone();
    let limits = Limits {
        max_polls: sim.inner.config.threat_max_polls,
        deadline: sim.inner.config.threat_lookup_deadline,
    };
    tokio::spawn(async move {
        loop {
            let job = tokio::select! {
                _ = cancel.cancelled() => break,
                job = rx.recv() => match job {
                    Some(j) => j,
                    None => break,
                },
            };
            let weak = weak.clone();
            let cancel = cancel.clone();
            tokio::spawn(async move {
                let result = tokio::select! {
                    _ = cancel.cancelled() => Err("the simulated platform was shut down".to_string()),
                    r = run_lookup(&weak, &job, limits) => r,
                };
                if let Some(sim) = weak.upgrade() {
                    sim.finish_lookup(&job, result);
                }
            });
        }
        // Lookups queued but never started.
        rx.close();
        while let Ok(job) = rx.try_recv() {
            if let Some(sim) = weak.upgrade() {
                sim.finish_lookup(&job, Err("the simulated platform was shut down".into()));
            }
        }
    });
}

/// Runs one lookup by §7.2; the hits (properties per hit) or why it failed.
async fn run_lookup(
    weak: &WeakSim,
    job: &LookupJob,
    limits: Limits,
) -> Result<Vec<Vec<Value>>, String> {
    let started = Instant::now();
    let service = &job.source.service;
    let client = {
        let sim = weak
            .upgrade()
            .ok_or("the simulated platform was shut down")?;
        sim.threat_client().map_err(|e| e.to_string())?
    };
    let remaining = || limits.deadline.saturating_sub(started.elapsed());
    let timeout = || {
        REQUEST_TIMEOUT
            .min(remaining())
            .max(Duration::from_millis(1))
    };
    let record = |method: &str, url: &str, r: &Result<Answer, String>| {
        if let Some(sim) = weak.upgrade() {
            sim.record_threat_request(
                job.lookup_id,
                ThreatRequest {
                    method: method.to_string(),
                    url: url.to_string(),
                    status: r.as_ref().ok().map(|a| a.status),
                    error: r.as_ref().err().cloned(),
                    time: now_ms() as i64,
                },
            );
        }
    };

    let url = service.url.as_str();
    let r = send(
        &client,
        reqwest::Method::OPTIONS,
        url,
        service,
        None,
        timeout(),
    )
    .await;
    record("OPTIONS", url, &r);
    if let Err(e) = r {
        return Err(format!("OPTIONS {url}: {e}"));
    }

    let artifact = json!({"type": job.artifact_type, "value": job.value});
    let r = send(
        &client,
        reqwest::Method::POST,
        url,
        service,
        Some(&artifact),
        timeout(),
    )
    .await;
    record("POST", url, &r);
    let mut answer = r.map_err(|e| format!("POST {url}: {e}"))?;
    let mut last = ("POST", url.to_string());
    let mut polls = 0u32;
    loop {
        match answer.status {
            200 => {
                let body = answer
                    .body
                    .map_err(|e| format!("{} {}: {e}", last.0, last.1))?;
                return Ok(parse_hits(&body));
            }
            204 => return Ok(Vec::new()),
            303 => {}
            _ => return Err(status_error(last.0, &last.1, &answer)),
        }
        let body = answer
            .body
            .map_err(|e| format!("{} {}: {e}", last.0, last.1))?;
        let id = match body.get("id") {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => {
                return Err(format!(
                    "{} {} answered 303 without a lookup id: {body}",
                    last.0, last.1
                ));
            }
        };
        let retry = body
            .get("retry_secs")
            .and_then(|v| v.as_u64().or_else(|| v.as_f64().map(|f| f.max(0.0) as u64)))
            .unwrap_or(DEFAULT_RETRY_SECS);
        if polls >= limits.max_polls {
            return Err(format!(
                "gave up after {polls} polls: the lookup was still pending (303)"
            ));
        }
        let wait = Duration::from_secs(retry).max(MIN_POLL_WAIT);
        if wait >= remaining() {
            return Err(format!(
                "gave up: the service asked to retry in {retry} s, past the lookup deadline of {:?} ({polls} polls so far)",
                limits.deadline
            ));
        }
        tokio::time::sleep(wait).await;
        polls += 1;
        let poll_url = format!("{}/{}", url.trim_end_matches('/'), encode_segment(&id));
        let r = send(
            &client,
            reqwest::Method::GET,
            &poll_url,
            service,
            None,
            timeout(),
        )
        .await;
        record("GET", &poll_url, &r);
        answer = r.map_err(|e| format!("GET {poll_url}: {e}"))?;
        last = ("GET", poll_url);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hits_are_parsed_leniently() {
        let body = json!({"id": "x", "hits": [
            {"props": [
                {"type": "number", "name": "id", "value": "123"},
                {"type": "string", "name": "gone", "value": null},
                {"name": "untyped", "value": "v"},
                "junk"
            ]},
            {"properties": [{"type": "uri", "name": "Link", "value": "http://e.org"}]},
            {},
            7
        ]});
        let hits = parse_hits(&body);
        assert_eq!(hits.len(), 3);
        assert_eq!(hits[0].len(), 2);
        assert_eq!(
            hits[0][1],
            json!({"type": "string", "name": "untyped", "value": "v"})
        );
        assert_eq!(hits[1][0]["name"], "Link");
        assert!(hits[2].is_empty());
        assert!(parse_hits(&json!({"hits": "no"})).is_empty());
        assert!(parse_hits(&json!(null)).is_empty());
    }

    #[test]
    fn services_are_validated() {
        let s = |name: &str, url: &str| ThreatService {
            name: name.into(),
            url: url.into(),
            ..ThreatService::default()
        };
        assert!(s("a", "http://127.0.0.1:9000/cts/a").validate().is_ok());
        assert!(s("a", "https://h/cts/a").validate().is_ok());
        assert!(s("", "http://h/").validate().is_err());
        assert!(s("a/b", "http://h/").validate().is_err());
        assert!(s("a", "ftp://h/").validate().is_err());
        assert!(s("a", "not a url").validate().is_err());
        let mut p = s("a", "http://h/");
        p.password = Some("x".into());
        assert!(p.validate().is_err());
        assert!(!format!("{p:?}").contains("\"x\""));
        let mut st = PlatformState::default();
        assert_eq!(st.add_threat_service(s("a", "http://h/a")).unwrap(), 1);
        assert_eq!(st.add_threat_service(s("b", "http://h/b")).unwrap(), 2);
        assert_eq!(st.add_threat_service(s("a", "http://h/a2")).unwrap(), 1);
        assert_eq!(st.threat_services["a"].service.url, "http://h/a2");
        assert_eq!(st.add_threat_service(s("", "x")).unwrap_err().status, 400);
    }

    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(encode_segment("f9acc1b7-6184"), "f9acc1b7-6184");
        assert_eq!(encode_segment("a/b c"), "a%2Fb%20c");
    }
}
