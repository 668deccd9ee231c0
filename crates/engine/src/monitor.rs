//! What a running host shows about itself: Prometheus metrics, liveness and readiness, and the
//! invocations in flight. The runtime, the dispatcher and the threat-service server record into
//! one [`Monitor`], which outlives reloads; `[monitoring] address` (opt-in) serves it over HTTP:
//!
//! - `GET /metrics`: OpenMetrics text (prometheus-client);
//! - `GET /healthz`: 200 while the process serves HTTP;
//! - `GET /readyz`: 200 while the STOMP link is up and subscribed, else 503;
//! - `GET /status`: JSON for `host status` (link, subscriptions, in-flight invocations and ages).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use soar_sdk::config::Section;

/// `[monitoring]`: where the host serves its metrics, health and status.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
pub struct Monitoring {
    /// Address (host:port) of the HTTP endpoint with /metrics (Prometheus), /healthz, /readyz
    /// and /status (`host status`); not served when unset. It has no authentication: keep it
    /// on loopback or a management network.
    #[schemars(example = &"127.0.0.1:9464")]
    pub address: Option<String>,
}

impl Section for Monitoring {
    const NAME: &'static str = "monitoring";
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Handled {
    /// The function, or the rule's name.
    function: String,
    outcome: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Function {
    function: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ThreatService {
    service: String,
}

type Latency = Family<Function, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 1 ms to ~65 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

/// An invocation being handled.
#[derive(Debug, Clone)]
struct Running {
    /// The function or rule, once known.
    name: Option<String>,
    incident: Option<i64>,
    started: Instant,
}

struct Inner {
    link_up: AtomicBool,
    subscriptions: Mutex<Vec<String>>,
    started: Instant,
    running: Mutex<HashMap<String, Running>>,
    registry: Registry,
    handled: Family<Handled, Counter>,
    latency: Latency,
    in_flight: Gauge,
    redeliveries: Counter,
    reconnects: Counter,
    replies_resent: Counter,
    threat_lookups: Family<ThreatService, Counter>,
    threat_cache_hits: Family<ThreatService, Counter>,
    connected: Gauge,
}

/// The host's monitor; clones share it.
#[derive(Clone)]
pub struct Monitor(Arc<Inner>);

impl std::fmt::Debug for Monitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Monitor")
            .field("link_up", &self.link_up())
            .finish_non_exhaustive()
    }
}

impl Default for Monitor {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("soar_host");
        let handled = Family::<Handled, Counter>::default();
        let latency = Latency::new_with_constructor(latency_histogram);
        let in_flight = Gauge::default();
        let redeliveries = Counter::default();
        let reconnects = Counter::default();
        let replies_resent = Counter::default();
        let threat_lookups = Family::<ThreatService, Counter>::default();
        let threat_cache_hits = Family::<ThreatService, Counter>::default();
        let connected = Gauge::default();
        registry.register(
            "invocations",
            "Messages handled, by function (or rule) and outcome (completed, error, acknowledged)",
            handled.clone(),
        );
        registry.register(
            "invocation_seconds",
            "Time from a message's start to its final reply, by function (or rule)",
            latency.clone(),
        );
        registry.register("in_flight", "Messages being handled", in_flight.clone());
        registry.register(
            "redeliveries",
            "Messages the broker delivered again (after a lost connection or a crash)",
            redeliveries.clone(),
        );
        registry.register(
            "reconnects",
            "STOMP connections lost (each followed by a reconnect)",
            reconnects.clone(),
        );
        registry.register(
            "replies_resent",
            "Final replies sent again from the journal for a redelivered message",
            replies_resent.clone(),
        );
        registry.register(
            "threat_lookups",
            "Threat-service lookups started, by service",
            threat_lookups.clone(),
        );
        registry.register(
            "threat_cache_hits",
            "Threat-service requests answered from the cache or a lookup under way, by service",
            threat_cache_hits.clone(),
        );
        registry.register(
            "connected",
            "1 while the STOMP link is up and subscribed",
            connected.clone(),
        );
        Monitor(Arc::new(Inner {
            link_up: AtomicBool::new(false),
            subscriptions: Mutex::default(),
            started: Instant::now(),
            running: Mutex::default(),
            registry,
            handled,
            latency,
            in_flight,
            redeliveries,
            reconnects,
            replies_resent,
            threat_lookups,
            threat_cache_hits,
            connected,
        }))
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Monitor {
    /// The STOMP link is up and subscribed.
    pub fn link_up(&self) -> bool {
        self.0.link_up.load(Ordering::Relaxed)
    }

    pub(crate) fn connected(&self, queues: &[String]) {
        self.0.link_up.store(true, Ordering::Relaxed);
        self.0.connected.set(1);
        *lock(&self.0.subscriptions) = queues.to_vec();
    }

    /// The link went down; `lost` counts it as a reconnect (not at a stop).
    pub(crate) fn disconnected(&self, lost: bool) {
        self.0.link_up.store(false, Ordering::Relaxed);
        self.0.connected.set(0);
        if lost {
            self.0.reconnects.inc();
        }
    }

    pub(crate) fn redelivered(&self) {
        self.0.redeliveries.inc();
    }

    pub(crate) fn reply_resent(&self) {
        self.0.replies_resent.inc();
    }

    pub(crate) fn threat_request(&self, service: &str, started_lookup: bool) {
        let label = ThreatService {
            service: service.to_string(),
        };
        if started_lookup {
            self.0.threat_lookups.get_or_create(&label).inc();
        } else {
            self.0.threat_cache_hits.get_or_create(&label).inc();
        }
    }

    /// Message `id` starts; the returned guard records its end.
    pub(crate) fn begin(&self, id: &str) -> InFlight {
        lock(&self.0.running).insert(
            id.to_string(),
            Running {
                name: None,
                incident: None,
                started: Instant::now(),
            },
        );
        self.0.in_flight.inc();
        InFlight {
            monitor: self.clone(),
            id: id.to_string(),
            finished: false,
        }
    }

    /// The metrics as OpenMetrics text.
    pub fn metrics_text(&self) -> String {
        let mut text = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut text, &self.0.registry) {
            tracing::warn!("cannot encode the metrics: {e}");
        }
        text
    }

    /// What `host status` shows.
    pub fn status(&self) -> Status {
        let mut in_flight: Vec<InFlightStatus> = lock(&self.0.running)
            .iter()
            .map(|(id, r)| InFlightStatus {
                message_id: id.clone(),
                function: r.name.clone(),
                incident: r.incident,
                age_ms: r.started.elapsed().as_millis() as u64,
            })
            .collect();
        in_flight.sort_by_key(|f| std::cmp::Reverse(f.age_ms));
        Status {
            version: env!("CARGO_PKG_VERSION").to_string(),
            connected: self.link_up(),
            subscriptions: lock(&self.0.subscriptions).clone(),
            uptime_secs: self.0.started.elapsed().as_secs(),
            in_flight,
        }
    }
}

/// One message being handled; dropping it without [`InFlight::finish`] counts it as
/// `aborted` (a stop that did not wait for it).
pub(crate) struct InFlight {
    monitor: Monitor,
    id: String,
    finished: bool,
}

impl InFlight {
    /// Names the function or rule and the incident, once known.
    pub(crate) fn describe(&self, name: Option<&str>, incident: Option<i64>) {
        if let Some(r) = lock(&self.monitor.0.running).get_mut(&self.id) {
            if let Some(name) = name {
                r.name = Some(name.to_string());
            }
            if incident.is_some() {
                r.incident = incident;
            }
        }
    }

    pub(crate) fn finish(mut self, outcome: &str) {
        self.record(outcome);
    }

    fn record(&mut self, outcome: &str) {
        if self.finished {
            return;
        }
        self.finished = true;
        self.monitor.0.in_flight.dec();
        let Some(running) = lock(&self.monitor.0.running).remove(&self.id) else {
            return;
        };
        let name = running.name.unwrap_or_else(|| "(none)".to_string());
        self.monitor
            .0
            .handled
            .get_or_create(&Handled {
                function: name.clone(),
                outcome: outcome.to_string(),
            })
            .inc();
        self.monitor
            .0
            .latency
            .get_or_create(&Function { function: name })
            .observe(running.started.elapsed().as_secs_f64());
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.record("aborted");
    }
}

/// `GET /status`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Status {
    pub version: String,
    pub connected: bool,
    pub subscriptions: Vec<String>,
    pub uptime_secs: u64,
    /// Oldest first.
    pub in_flight: Vec<InFlightStatus>,
}

/// One entry of [`Status::in_flight`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InFlightStatus {
    pub message_id: String,
    /// The function or rule, once known.
    pub function: Option<String>,
    pub incident: Option<i64>,
    pub age_ms: u64,
}

async fn metrics(State(m): State<Monitor>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        m.metrics_text(),
    )
        .into_response()
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(m): State<Monitor>) -> Response {
    if m.link_up() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not connected to the message broker\n",
        )
            .into_response()
    }
}

async fn status(State(m): State<Monitor>) -> axum::Json<Status> {
    axum::Json(m.status())
}

/// Serves `monitor` at `address` until the process ends. Binding fails at once (the address is
/// in use, or not an address) so that the caller can say so.
pub async fn serve(address: &str, monitor: Monitor) -> Result<SocketAddr, String> {
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|e| format!("[monitoring] address = {address}: cannot listen: {e}"))?;
    let local = listener
        .local_addr()
        .map_err(|e| format!("[monitoring] address = {address}: {e}"))?;
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/status", get(status))
        .with_state(monitor);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!("the monitoring endpoint stopped: {e}");
        }
    });
    tracing::info!(
        "metrics, health and status at http://{local}/ (/metrics, /healthz, /readyz, /status)"
    );
    Ok(local)
}

/// `host status`: asks the running host at `address` (`[monitoring] address`) what it does.
pub async fn fetch_status(address: &str) -> Result<Status, String> {
    let url = format!("http://{address}/status");
    let options = soar_sdk::http::HttpOptions {
        url: url.clone(),
        timeout: Some(std::time::Duration::from_secs(5)),
        ..Default::default()
    };
    let client =
        soar_sdk::http::client(&options, &Default::default()).map_err(|e| format!("{url}: {e}"))?;
    let unreachable = |e: soar_sdk::http::reqwest::Error| {
        format!(
            "cannot reach {url}: {}; is `host run` running, with this [monitoring] address?",
            soar_sdk::http::error_text(&e)
        )
    };
    let answer = client.get(&url).send().await.map_err(unreachable)?;
    if !answer.status().is_success() {
        return Err(format!("{url} answered {}", answer.status()));
    }
    answer.json::<Status>().await.map_err(unreachable)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_invocations_by_function_and_outcome() {
        let m = Monitor::default();
        let a = m.begin("ID:1");
        a.describe(Some("fn_hello"), Some(2095));
        let status = m.status();
        assert_eq!(status.in_flight.len(), 1);
        assert_eq!(status.in_flight[0].function.as_deref(), Some("fn_hello"));
        assert_eq!(status.in_flight[0].incident, Some(2095));
        a.finish("completed");
        drop(m.begin("ID:2"));
        let text = m.metrics_text();
        assert!(
            text.contains(
                r#"soar_host_invocations_total{function="fn_hello",outcome="completed"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#"soar_host_invocations_total{function="(none)",outcome="aborted"} 1"#),
            "{text}"
        );
        assert!(text.contains("soar_host_in_flight 0"), "{text}");
        assert!(m.status().in_flight.is_empty());
    }
}
