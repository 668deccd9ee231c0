//! The simulated IBM SOAR platform, for tests and local runs.
//!
//! A [`Sim`] is a small SOAR platform in the test process: an HTTPS REST API answering what an
//! integration host asks at startup (session, org, const, types, rules, functions, message
//! destinations) and a STOMP 1.2 broker over TLS that puts function and rule messages on
//! `actions.<org>.<queue>` and collects the replies SENT to `acks.<org>.<queue>`. It can also drive
//! an external broker (ActiveMQ) instead of its embedded one ([`BrokerMode::External`]).
//!
//! It reuses the soar-stomp codec but never any host code, and it is strict: protocol mistakes
//! of its clients are recorded in [`Sim::violations`], which tests assert to be empty.
//!
//! Beyond what a host needs at startup it behaves like a platform for what integrations touch:
//! - customization imports and exports ([`imports`]): `export.res` documents are validated,
//!   accepted or rejected with the platform's messages, stored verbatim and answered by
//!   `/functions`, `/message_destinations`, `/actions`, `/workflows`, `/types/…/fields` and the
//!   export (the simulator reads the export format itself and shares no code with our generator);
//! - incidents, notes and artifacts ([`incidents`], [`artifacts`]) with the platform's shapes,
//!   field types ([`fields`]) and validation;
//! - rules ([`rules`]): manual rules on request ([`Sim::run_manual_rule`]), automatic rules on
//!   every change whose conditions hold, rule messages and the action status log;
//! - workflows ([`workflow`]): the EXPORTED BPMN is executed, its Python pre/post-processing
//!   scripts interpreted ([`script`]; others, such as the original apps' own, run in Python 3
//!   when one is installed: [`python`]), its function invoked through the broker;
//! - workspaces and phases ([`org`]), custom artifact types ([`artifacts`]);
//! - custom threat services ([`threat`]): every new artifact is looked up by every registered
//!   service following the §7.2 protocol, and the hits are stored on the artifact;
//! - an HTTP admin interface for people and process tests ([`admin`], `/sim/admin`);
//! - optional persistence of everything to a state file ([`state`], [`SimConfig::state_file`]).
//!
//! ```no_run
//! # async fn demo() -> Result<(), soar_sim::SimError> {
//! use std::time::Duration;
//! let sim = soar_sim::Sim::start(soar_sim::SimConfig::default()).await?;
//! sim.register_function("fn_hello", "fn_hello");
//! let app_config = sim.app_config(); // [resilient] section for the host under test
//! # let _ = app_config;
//! sim.wait_subscribed("actions.201.fn_hello", Duration::from_secs(10)).await?;
//! let inv = sim.invoke("fn_hello", serde_json::json!({"name": "x"})).await?;
//! let reply = inv.final_reply(Duration::from_secs(10)).await?;
//! assert_eq!(reply.message_type, 0);
//! assert!(sim.violations().is_empty());
//! # Ok(()) }
//! ```

pub mod admin;
pub mod artifacts;
pub mod broker;
pub mod certs;
pub mod emulator;
mod error;
mod external;
pub mod fields;
pub mod imports;
pub mod incidents;
pub mod invocation;
mod messages;
pub mod org;
pub mod platform;
pub mod python;
pub mod rest;
pub mod rules;
pub mod script;
pub mod state;
pub mod threat;
pub mod workflow;

#[doc(hidden)]
pub use inventory;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use bytes::Bytes;
use serde_json::{Map, Value};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use broker::{BrokerStats, Mangle, SubscriptionInfo};
pub use error::SimError;
pub use incidents::ApiError;
pub use invocation::{Invocation, InvocationEvent, Reply};
pub use org::Workspace;
pub use rules::{ActionState, ActionStatus, ObjectRef, RuleRun, WorkflowRun, WorkflowStatus};
pub use soar_tls::CaSource;
pub use threat::{ThreatLookup, ThreatLookupOutcome, ThreatRequest, ThreatService};

use broker::{Broker, Credentials, QueuedMessage};
use certs::Certs;
use external::External;
use invocation::{InvocationInner, Registry};
use platform::Platform;
use state::Persister;

/// Where the simulator's messages travel.
#[derive(Debug, Clone, Default)]
pub enum BrokerMode {
    /// The simulator's own STOMP broker over TLS (default).
    #[default]
    Embedded,
    /// A real broker (e.g. ActiveMQ) the simulator and the host both connect to.
    External(ExternalBroker),
}

/// How to reach an external STOMP broker.
#[derive(Clone, Default)]
pub struct ExternalBroker {
    /// Broker host.
    pub host: String,
    /// Broker STOMP port.
    pub port: u16,
    /// TLS configuration; `None` = plain TCP.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// SNI and CONNECT `host` header; defaults to `host`.
    pub server_name: Option<String>,
    /// STOMP login.
    pub login: Option<String>,
    /// STOMP passcode.
    pub passcode: Option<String>,
    /// CA file of the broker, written as `stomp_cafile` by [`Sim::app_config`] (omitted if `None`).
    pub cafile: Option<PathBuf>,
}

impl fmt::Debug for ExternalBroker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExternalBroker")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls.is_some())
            .field("server_name", &self.server_name)
            .field("login", &self.login)
            .field("passcode", &self.passcode.as_ref().map(|_| "<redacted>"))
            .field("cafile", &self.cafile)
            .finish()
    }
}

/// Configuration of a [`Sim`].
#[derive(Clone)]
pub struct SimConfig {
    /// Org id (201).
    pub org_id: i64,
    /// Org name ("Test Org").
    pub org_name: String,
    /// API key id, accepted for REST Basic auth and STOMP login.
    pub api_key_id: String,
    /// API key secret, accepted for REST Basic auth and STOMP passcode.
    pub api_key_secret: String,
    /// Email, accepted for `POST /rest/session` and STOMP login.
    pub email: String,
    /// Password, accepted for `POST /rest/session` and STOMP passcode.
    pub password: String,
    /// Address to bind (127.0.0.1).
    pub bind: IpAddr,
    /// REST port; 0 = ephemeral.
    pub rest_port: u16,
    /// Embedded broker port; 0 = ephemeral.
    pub stomp_port: u16,
    /// REST path prefix (e.g. `/api/respond`).
    pub resource_prefix: Option<String>,
    /// Server heart-beat interval advertised in CONNECTED (when the client wants them), in ms.
    pub heart_beat_ms: u32,
    /// Embedded or external broker.
    pub broker: BrokerMode,
    /// How long a workflow waits for its function's final reply (60 s).
    pub workflow_timeout: Duration,
    /// Where the state is persisted ([`state`]); `None` (default) keeps it in memory only.
    pub state_file: Option<PathBuf>,
    /// How threat service certificates are verified (https:// services): the system's roots
    /// (default), a CA file, or not at all.
    pub threat_service_ca: CaSource,
    /// How many times a threat lookup polls (`GET <url>/<id>`) a service that answers 303
    /// (60, the CTS `max_retries`).
    pub threat_max_polls: u32,
    /// The longest a threat lookup may take, polls included (10 minutes).
    pub threat_lookup_deadline: Duration,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            org_id: 201,
            org_name: "Test Org".to_string(),
            api_key_id: "sim-api-key-id".to_string(),
            api_key_secret: "sim-api-key-secret".to_string(),
            email: "admin@example.com".to_string(),
            password: "sim-password".to_string(),
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            rest_port: 0,
            stomp_port: 0,
            resource_prefix: None,
            heart_beat_ms: 15000,
            broker: BrokerMode::Embedded,
            workflow_timeout: Duration::from_secs(60),
            state_file: None,
            threat_service_ca: CaSource::System,
            threat_max_polls: 60,
            threat_lookup_deadline: Duration::from_secs(600),
        }
    }
}

impl fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimConfig")
            .field("org_id", &self.org_id)
            .field("org_name", &self.org_name)
            .field("api_key_id", &self.api_key_id)
            .field("api_key_secret", &"<redacted>")
            .field("email", &self.email)
            .field("password", &"<redacted>")
            .field("bind", &self.bind)
            .field("rest_port", &self.rest_port)
            .field("stomp_port", &self.stomp_port)
            .field("resource_prefix", &self.resource_prefix)
            .field("heart_beat_ms", &self.heart_beat_ms)
            .field("broker", &self.broker)
            .field("workflow_timeout", &self.workflow_timeout)
            .field("state_file", &self.state_file)
            .field("threat_service_ca", &self.threat_service_ca)
            .field("threat_max_polls", &self.threat_max_polls)
            .field("threat_lookup_deadline", &self.threat_lookup_deadline)
            .finish()
    }
}

/// What [`Sim::invoke_with`] sends.
#[derive(Debug, Clone, Default)]
pub struct InvokeRequest {
    /// The function's API name (must be registered).
    pub function: String,
    /// The `inputs` object.
    pub inputs: Value,
    /// An `incident` object for the body, if any.
    pub incident: Option<Value>,
    /// Extra top-level keys merged into the body (they override the defaults).
    pub extra: Map<String, Value>,
}

enum Backend {
    Embedded { broker: Arc<Broker>, port: u16 },
    External(Arc<External>),
}

struct SimInner {
    config: SimConfig,
    platform: Arc<Platform>,
    registry: Arc<Registry>,
    certs: Certs,
    client_tls: Arc<rustls::ClientConfig>,
    rest_port: u16,
    backend: Backend,
    cancel: CancellationToken,
    counter: Arc<AtomicU64>,
    workflow_timeout_ms: AtomicU64,
    rule_runs: std::sync::Mutex<Vec<RuleRun>>,
    events_processed: tokio::sync::watch::Sender<u64>,
    /// Bumped whenever a threat lookup ends.
    lookups_changed: tokio::sync::watch::Sender<u64>,
    /// The HTTP client for threat services, built at the first lookup.
    threat_client: OnceLock<reqwest::Client>,
    persister: Option<Arc<Persister>>,
}

impl Drop for SimInner {
    fn drop(&mut self) {
        self.cancel.cancel();
        if let Backend::Embedded { broker, .. } = &self.backend {
            broker.drop_connections();
        }
        if let Some(p) = &self.persister
            && let Err(e) = p.flush()
        {
            tracing::warn!("soar-sim: {e}");
        }
    }
}

/// A handle that does not keep the simulator alive (for its own background tasks).
#[derive(Clone)]
pub(crate) struct WeakSim(Weak<SimInner>);

impl fmt::Debug for WeakSim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WeakSim")
    }
}

impl WeakSim {
    pub(crate) fn upgrade(&self) -> Option<Sim> {
        self.0.upgrade().map(|inner| Sim { inner })
    }
}

/// A running simulated platform. Cheap to clone; dropping the last handle (or
/// [`Sim::shutdown`]) stops its servers and removes its temporary files.
#[derive(Clone)]
pub struct Sim {
    inner: Arc<SimInner>,
}

impl fmt::Debug for Sim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sim")
            .field("rest_port", &self.inner.rest_port)
            .field("stomp_port", &self.stomp_port())
            .field("org_id", &self.inner.config.org_id)
            .finish_non_exhaustive()
    }
}

/// How long [`Sim::invoke`] waits for an external broker.
const EXTERNAL_TIMEOUT: Duration = Duration::from_secs(30);

/// Binds `port`; when that is 0 and a port was `saved` by an earlier run with the same state
/// file, that one again if it is free (else any, with a warning: the app.config must change).
async fn bind(
    addr: std::net::IpAddr,
    port: u16,
    saved: Option<u16>,
    what: &str,
) -> Result<TcpListener, SimError> {
    if port == 0
        && let Some(saved) = saved
    {
        match TcpListener::bind(SocketAddr::new(addr, saved)).await {
            Ok(listener) => return Ok(listener),
            Err(e) => tracing::warn!(
                "the {what} port {saved} of the last run is not available ({e}); using another: \
                 an app.config written for the last run must change"
            ),
        }
    }
    Ok(TcpListener::bind(SocketAddr::new(addr, port)).await?)
}

impl Sim {
    /// Generates certificates, loads the state file (if configured and present), binds the REST
    /// server (and the embedded broker) and starts serving. A state file that cannot be read,
    /// parsed or written is a [`SimError::State`] naming it.
    pub async fn start(config: SimConfig) -> Result<Sim, SimError> {
        let platform = Arc::new(Platform::new(config.org_id, &config.org_name));
        let registry = Arc::new(Registry::default());
        let cancel = CancellationToken::new();
        let counter = Arc::new(AtomicU64::new(0));
        let mut queued = Vec::new();
        let persister = match &config.state_file {
            Some(path) => {
                let p = Arc::new(Persister::new(
                    path.clone(),
                    platform.clone(),
                    counter.clone(),
                ));
                queued = p.load()?;
                // Written at once: an unwritable path is an error now, not at the first change.
                p.flush()?;
                Some(p)
            }
            None => None,
        };
        // With a state file, certificates and ports are kept beside it (`<file>.d/`).
        let kept = config.state_file.as_deref().map(state::kept_dir);
        let certs = match &kept {
            Some(dir) => Certs::load_or_generate(dir)?,
            None => Certs::generate()?,
        };
        let saved = kept.as_deref().map(state::Ports::load).unwrap_or_default();
        let client_tls = certs.client_config()?;

        let rest_listener = bind(config.bind, config.rest_port, saved.rest, "REST").await?;
        let rest_port = rest_listener.local_addr()?.port();
        let rest_state = Arc::new(rest::RestState {
            platform: platform.clone(),
            api_key_id: config.api_key_id.clone(),
            api_key_secret: config.api_key_secret.clone(),
            email: config.email.clone(),
            password: config.password.clone(),
            sim: OnceLock::new(),
        });
        let app = rest::router(rest_state.clone(), config.resource_prefix.as_deref());
        tokio::spawn(rest::serve(
            rest_listener,
            certs.server_config(),
            app,
            cancel.clone(),
        ));

        let backend = match &config.broker {
            BrokerMode::Embedded => {
                let listener = bind(config.bind, config.stomp_port, saved.stomp, "STOMP").await?;
                let port = listener.local_addr()?.port();
                let credentials = Credentials {
                    pairs: vec![
                        (config.api_key_id.clone(), config.api_key_secret.clone()),
                        (config.email.clone(), config.password.clone()),
                    ],
                };
                let broker = Broker::new(
                    config.org_id,
                    credentials,
                    config.heart_beat_ms,
                    registry.clone(),
                );
                tokio::spawn(broker::serve(
                    broker.clone(),
                    listener,
                    certs.server_config(),
                    cancel.clone(),
                ));
                broker.restore_messages(std::mem::take(&mut queued));
                if let Some(p) = &persister {
                    p.attach(broker.clone());
                }
                Backend::Embedded { broker, port }
            }
            BrokerMode::External(ext) => Backend::External(Arc::new(External::new(
                ext.clone(),
                config.org_id,
                registry.clone(),
                cancel.clone(),
            ))),
        };
        if !queued.is_empty() {
            tracing::warn!(
                "soar-sim: the {} queued messages of the state file are not put on the external \
                 broker",
                queued.len()
            );
        }
        if let Some(dir) = &kept {
            let stomp = match &backend {
                Backend::Embedded { port, .. } => Some(*port),
                Backend::External(_) => None,
            };
            state::Ports {
                rest: Some(rest_port),
                stomp,
            }
            .save(dir)?;
        }
        tracing::info!(
            "soar-sim started: REST on {}:{rest_port}, CA {}",
            config.bind,
            certs.ca_file().display()
        );
        let sim = Sim {
            inner: Arc::new(SimInner {
                platform,
                registry,
                certs,
                client_tls,
                rest_port,
                backend,
                workflow_timeout_ms: AtomicU64::new(
                    u64::try_from(config.workflow_timeout.as_millis()).unwrap_or(u64::MAX),
                ),
                rule_runs: std::sync::Mutex::new(Vec::new()),
                events_processed: tokio::sync::watch::Sender::new(0),
                lookups_changed: tokio::sync::watch::Sender::new(0),
                threat_client: OnceLock::new(),
                persister,
                cancel,
                counter,
                config,
            }),
        };
        let _ = rest_state.sim.set(sim.downgrade());
        let (events_tx, events_rx) = tokio::sync::mpsc::unbounded_channel();
        let (jobs_tx, jobs_rx) = tokio::sync::mpsc::unbounded_channel();
        {
            let mut st = sim.inner.platform.state_quiet();
            st.events = Some(events_tx);
            st.threat_jobs = Some(jobs_tx);
        }
        rules::spawn_engine(&sim, events_rx);
        threat::spawn_dispatcher(&sim, jobs_rx);
        if let Some(p) = &sim.inner.persister {
            state::spawn_writer(p.clone(), sim.inner.cancel.clone());
        }
        Ok(sim)
    }

    /// The REST port.
    pub fn rest_port(&self) -> u16 {
        self.inner.rest_port
    }

    /// The STOMP port clients should use (the embedded broker's, or the external broker's).
    pub fn stomp_port(&self) -> u16 {
        match &self.inner.backend {
            Backend::Embedded { port, .. } => *port,
            Backend::External(e) => e.config().port,
        }
    }

    /// PEM file of the CA that signed the server certificate (SAN localhost and 127.0.0.1).
    pub fn ca_file(&self) -> &Path {
        self.inner.certs.ca_file()
    }

    /// A rustls client configuration trusting only the simulator's CA.
    pub fn client_tls_config(&self) -> Arc<rustls::ClientConfig> {
        self.inner.client_tls.clone()
    }

    /// The REST base URL, `https://localhost:<port>[<prefix>]`.
    pub fn base_url(&self) -> String {
        format!(
            "https://localhost:{}{}",
            self.inner.rest_port,
            rest::normalise_prefix(self.inner.config.resource_prefix.as_deref())
                .unwrap_or_default()
        )
    }

    /// The org id.
    pub fn org_id(&self) -> i64 {
        self.inner.config.org_id
    }

    /// The configuration the simulator was started with.
    pub fn config(&self) -> &SimConfig {
        &self.inner.config
    }

    /// The shared platform state (destinations, functions, rules, sessions, REST log).
    pub fn platform(&self) -> &Arc<Platform> {
        &self.inner.platform
    }

    /// A `[resilient]` section pointing at this simulator, authenticating with the API key.
    pub fn app_config(&self) -> String {
        let c = &self.inner.config;
        let ca = self.ca_file().display().to_string();
        let mut s = format!(
            "[resilient]\nhost=localhost\nport={}\norg={}\napi_key_id={}\napi_key_secret={}\ncafile={}\n",
            self.inner.rest_port, c.org_name, c.api_key_id, c.api_key_secret, ca
        );
        if let Some(p) = rest::normalise_prefix(c.resource_prefix.as_deref()) {
            s.push_str(&format!("resource_prefix={p}\n"));
        }
        match &self.inner.backend {
            Backend::Embedded { port, .. } => {
                s.push_str(&format!(
                    "stomp_host=localhost\nstomp_port={port}\nstomp_cafile={ca}\n"
                ));
            }
            Backend::External(e) => {
                let e = e.config();
                s.push_str(&format!("stomp_host={}\nstomp_port={}\n", e.host, e.port));
                if let Some(cafile) = &e.cafile {
                    s.push_str(&format!("stomp_cafile={}\n", cafile.display()));
                }
            }
        }
        s
    }

    /// Adds a message destination (idempotent).
    pub fn add_message_destination(&self, programmatic_name: &str) {
        self.inner
            .platform
            .add_message_destination(programmatic_name);
    }

    /// Registers a function sent to `destination` (created if needed).
    pub fn register_function(&self, name: &str, destination: &str) {
        self.inner.platform.register_function(name, destination);
    }

    /// Adds a rule listed by `GET /actions`, sending to `destinations`.
    pub fn add_rule(&self, id: i64, name: &str, destinations: &[&str]) {
        self.inner.platform.add_rule(id, name, destinations);
    }

    /// Invokes a registered function: puts a §4.1 message on its destination's queue.
    pub async fn invoke(&self, function: &str, inputs: Value) -> Result<Invocation, SimError> {
        self.invoke_with(InvokeRequest {
            function: function.to_string(),
            inputs,
            ..InvokeRequest::default()
        })
        .await
    }

    /// Invokes a registered function with an incident and extra body keys.
    pub async fn invoke_with(&self, request: InvokeRequest) -> Result<Invocation, SimError> {
        let f = self
            .inner
            .platform
            .function(&request.function)
            .ok_or_else(|| SimError::UnknownFunction(request.function.clone()))?;
        self.publish_function(&f, request.inputs, request.incident, request.extra)
            .await
    }

    /// Puts a §4.1 function message for `f` on its destination's queue.
    pub(crate) async fn publish_function(
        &self,
        f: &platform::FunctionDef,
        inputs: Value,
        incident: Option<Value>,
        extra: Map<String, Value>,
    ) -> Result<Invocation, SimError> {
        let n = self.next_number();
        let inputs = if inputs.is_null() {
            Value::Object(Map::new())
        } else {
            inputs
        };
        let body = messages::function_body(f, inputs, incident, n, &self.inner.config.email, extra);
        let correlation_id = format!("invid:{n}");
        let reply_to = format!("/queue/{}", self.reply_queue(&f.destination));
        let headers = messages::platform_headers(&reply_to, &correlation_id);
        self.publish(
            &f.destination,
            n,
            correlation_id,
            headers,
            json_bytes(&body),
            None,
        )
        .await
    }

    /// Sends a rule (custom action) message to `destination` with the ActionDataDTO body `body`
    /// merged over `{action_id: <rule id>, object_type: 0, operation_type, incident, properties, user}`.
    pub async fn send_rule_message(
        &self,
        destination: &str,
        rule_name: &str,
        body: Value,
    ) -> Result<Invocation, SimError> {
        let rule = self
            .inner
            .platform
            .rule_by_name(rule_name)
            .ok_or_else(|| SimError::UnknownRule(rule_name.to_string()))?;
        self.inner.platform.add_message_destination(destination);
        let body = messages::rule_body(&rule, &self.inner.config.email, body);
        let n = self.next_number();
        let correlation_id = format!("invid:{n}");
        let reply_to = format!("/queue/{}", self.reply_queue(destination));
        let headers = messages::platform_headers(&reply_to, &correlation_id);
        self.publish(
            destination,
            n,
            correlation_id,
            headers,
            json_bytes(&body),
            None,
        )
        .await
    }

    /// Puts an arbitrary body on `destination`'s queue. The broker adds `destination`,
    /// `subscription`, `message-id` and `ack`; `reply-to` and `correlation-id` are added unless
    /// given (a given header with an empty value removes the default); then `headers` follow.
    pub async fn send_raw(
        &self,
        destination: &str,
        headers: Vec<(String, String)>,
        body: Bytes,
    ) -> Result<Invocation, SimError> {
        self.send_raw_as(destination, headers, body, None).await
    }

    /// Like [`Sim::send_raw`] with a body, but the MESSAGE frame is broken on the wire as
    /// `mangle` says (a poison frame). Embedded broker only.
    pub async fn send_mangled(
        &self,
        destination: &str,
        body: Bytes,
        mangle: Mangle,
    ) -> Result<Invocation, SimError> {
        self.send_raw_as(destination, Vec::new(), body, Some(mangle))
            .await
    }

    async fn send_raw_as(
        &self,
        destination: &str,
        headers: Vec<(String, String)>,
        body: Bytes,
        mangle: Option<Mangle>,
    ) -> Result<Invocation, SimError> {
        self.inner.platform.add_message_destination(destination);
        let n = self.next_number();
        let default_cid = format!("invid:{n}");
        let reply_to = format!("/queue/{}", self.reply_queue(destination));
        let headers = messages::raw_headers(&reply_to, &default_cid, headers);
        let correlation_id = headers
            .iter()
            .find(|(k, _)| k == "correlation-id")
            .map(|(_, v)| v.clone())
            .unwrap_or(default_cid);
        self.publish(destination, n, correlation_id, headers, body, mangle)
            .await
    }

    pub(crate) fn downgrade(&self) -> WeakSim {
        WeakSim(Arc::downgrade(&self.inner))
    }

    /// How long workflows wait for a function's final reply.
    pub fn workflow_timeout(&self) -> Duration {
        Duration::from_millis(self.inner.workflow_timeout_ms.load(Ordering::SeqCst))
    }

    /// Changes how long workflows started from now on wait for a function's final reply.
    pub fn set_workflow_timeout(&self, timeout: Duration) {
        self.inner.workflow_timeout_ms.store(
            u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
            Ordering::SeqCst,
        );
    }

    /// Makes the next `POST /configurations/imports` answer `REJECTED` with this ERROR message
    /// (fault injection). The import is still recorded in [`Sim::imports`].
    pub fn reject_next_import(&self, message: &str) {
        self.inner.platform.state().reject_next_import = Some(message.to_string());
    }

    /// Every export document posted to `/configurations/imports`, in order (accepted,
    /// rejected or pending).
    pub fn imports(&self) -> Vec<Value> {
        self.inner
            .platform
            .state()
            .imports
            .iter()
            .map(|r| r.payload.clone())
            .collect()
    }

    /// The DTOs of the posted imports (`{id, status, create_date, messages}`), in order.
    pub fn import_records(&self) -> Vec<Value> {
        self.inner
            .platform
            .state()
            .imports
            .iter()
            .map(|r| r.dto.clone())
            .collect()
    }

    /// The platform's export (what `POST /configurations/exports/` answers).
    pub fn export(&self) -> Value {
        imports::export(&self.inner.platform.state())
    }

    /// A message destination as `GET /message_destinations/{id}` answers it, by programmatic name.
    pub fn message_destination(&self, programmatic_name: &str) -> Option<Value> {
        let st = self.inner.platform.state();
        st.destination_by_name(programmatic_name)
            .and_then(|d| serde_json::to_value(d).ok())
    }

    /// Creates an incident as `POST /incidents` does; returns it.
    pub fn create_incident(&self, incident: Value) -> Result<Value, SimError> {
        let org = self.inner.config.org_id;
        self.inner
            .platform
            .state()
            .create_incident(org, &incident)
            .map_err(|e| SimError::Rejected(e.message))
    }

    /// An incident as `GET /incidents/{id}` answers it.
    pub fn incident(&self, id: i64) -> Option<Value> {
        self.inner.platform.state().incident_json(id, false)
    }

    /// The notes of an incident, oldest first (empty if it does not exist).
    pub fn notes(&self, incident_id: i64) -> Vec<Value> {
        self.inner
            .platform
            .state()
            .notes
            .get(&incident_id)
            .cloned()
            .unwrap_or_default()
    }

    /// Adds a text note to an incident; returns it.
    pub fn add_note(&self, incident_id: i64, text: &str) -> Result<Value, SimError> {
        self.add_note_internal(
            incident_id,
            &serde_json::json!({"text": {"format": "text", "content": text}}),
        )
        .map_err(|e| Self::map_api(incident_id, e))
    }

    fn map_api(incident_id: i64, e: ApiError) -> SimError {
        if e.status == 404 && e.message.starts_with("Incident ") {
            SimError::UnknownIncident(incident_id)
        } else {
            SimError::Rejected(e.message)
        }
    }

    /// Changes some fields of an incident (like `PUT /incidents/{id}` with only those keys;
    /// automatic rules see the change); returns the incident.
    pub fn update_incident(&self, id: i64, changes: Value) -> Result<Value, SimError> {
        self.inner
            .platform
            .state()
            .update_incident(id, &changes)
            .map(|(_, new)| new)
            .map_err(|e| Self::map_api(id, e))
    }

    /// Closes an incident with a resolution (a label such as "Resolved", or an id) and a
    /// resolution summary; returns the incident.
    pub fn close_incident(
        &self,
        id: i64,
        resolution: &str,
        summary: &str,
    ) -> Result<Value, SimError> {
        self.update_incident(
            id,
            serde_json::json!({"plan_status": "C", "resolution_id": resolution, "resolution_summary": summary}),
        )
    }

    /// Deletes an incident (with its notes and artifacts); returns it.
    pub fn delete_incident(&self, id: i64) -> Result<Value, SimError> {
        self.inner
            .platform
            .state()
            .delete_incident(id)
            .map_err(|e| Self::map_api(id, e))
    }

    /// Adds an artifact (`{"type": <id or name>, "value", "description"}`) to an incident, as
    /// `POST /incidents/{id}/artifacts` does; returns it.
    pub fn add_artifact(&self, incident_id: i64, artifact: Value) -> Result<Value, SimError> {
        self.inner
            .platform
            .state()
            .add_artifact(incident_id, &artifact)
            .map_err(|e| Self::map_api(incident_id, e))
    }

    /// The artifacts of an incident, oldest first.
    pub fn artifacts(&self, incident_id: i64) -> Vec<Value> {
        self.inner
            .platform
            .state()
            .artifacts
            .get(&incident_id)
            .cloned()
            .unwrap_or_default()
    }

    fn next_number(&self) -> u64 {
        self.inner.counter.fetch_add(1, Ordering::SeqCst) + 1
    }

    fn reply_queue(&self, destination: &str) -> String {
        format!("acks.{}.{destination}", self.inner.config.org_id)
    }

    async fn publish(
        &self,
        destination: &str,
        n: u64,
        correlation_id: String,
        headers: Vec<(String, String)>,
        body: Bytes,
        mangle: Option<Mangle>,
    ) -> Result<Invocation, SimError> {
        if self.inner.cancel.is_cancelled() {
            return Err(SimError::Shutdown);
        }
        let queue = format!("actions.{}.{destination}", self.inner.config.org_id);
        let message_id = format!("ID:soar-sim-{n}");
        let embedded = matches!(self.inner.backend, Backend::Embedded { .. });
        let inv = InvocationInner::new(
            correlation_id,
            message_id.clone(),
            queue.clone(),
            self.reply_queue(destination),
            embedded,
        );
        self.inner.registry.insert(inv.clone());
        match &self.inner.backend {
            Backend::Embedded { broker, .. } => broker.publish(
                &queue,
                QueuedMessage {
                    message_id,
                    headers,
                    body,
                    invocation: Some(inv.clone()),
                    redelivered: false,
                    mangle,
                },
            ),
            Backend::External(e) => {
                e.publish(destination, &message_id, headers, body, EXTERNAL_TIMEOUT)
                    .await?
            }
        }
        Ok(Invocation::new(inv))
    }

    /// The embedded broker's queues as the state file keeps them (none with an external broker).
    pub(crate) fn saved_queues(&self) -> Vec<state::SavedMessage> {
        match &self.inner.backend {
            Backend::Embedded { broker, .. } => broker.saved_messages(),
            Backend::External(_) => Vec::new(),
        }
    }

    /// The invocation of the message with `correlation_id` (one of this run, or one whose message
    /// was still queued when an earlier run saved its state file), if the simulator knows it.
    pub fn invocation(&self, correlation_id: &str) -> Option<Invocation> {
        self.inner.registry.get(correlation_id).map(Invocation::new)
    }

    /// Waits until some connection subscribes to `queue` (`actions.201.fn_hello`, with or
    /// without `/queue/`). Embedded broker only.
    pub async fn wait_subscribed(&self, queue: &str, timeout: Duration) -> Result<(), SimError> {
        match &self.inner.backend {
            Backend::Embedded { broker, .. } => {
                if broker.wait_subscribed(queue, timeout).await {
                    Ok(())
                } else {
                    Err(SimError::timeout(
                        format!("a subscription to {queue}"),
                        timeout,
                    ))
                }
            }
            Backend::External(_) => Err(SimError::Unsupported(
                "subscriptions are not observable with an external broker",
            )),
        }
    }

    /// Waits until exactly `n` STOMP connections are open. Embedded broker only.
    pub async fn wait_connections(&self, n: usize, timeout: Duration) -> Result<(), SimError> {
        match &self.inner.backend {
            Backend::Embedded { broker, .. } => {
                if broker.wait_connections(n, timeout).await {
                    Ok(())
                } else {
                    Err(SimError::timeout(
                        format!("{n} open STOMP connections"),
                        timeout,
                    ))
                }
            }
            Backend::External(_) => Err(SimError::Unsupported(
                "connections are not observable with an external broker",
            )),
        }
    }

    /// Active subscriptions (empty with an external broker).
    pub fn subscriptions(&self) -> Vec<SubscriptionInfo> {
        match &self.inner.backend {
            Backend::Embedded { broker, .. } => broker.subscriptions(),
            Backend::External(_) => Vec::new(),
        }
    }

    /// Open STOMP connections (0 with an external broker).
    pub fn connections(&self) -> usize {
        match &self.inner.backend {
            Backend::Embedded { broker, .. } => broker.connections(),
            Backend::External(_) => 0,
        }
    }

    /// Messages waiting on `queue` (not in flight). 0 with an external broker.
    pub fn queued(&self, queue: &str) -> usize {
        match &self.inner.backend {
            Backend::Embedded { broker, .. } => broker.queued(queue),
            Backend::External(_) => 0,
        }
    }

    /// Protocol mistakes seen from clients so far.
    pub fn violations(&self) -> Vec<String> {
        match &self.inner.backend {
            Backend::Embedded { broker, .. } => broker.violations(),
            Backend::External(e) => e.violations(),
        }
    }

    /// Broker counters (only `replies` is counted with an external broker).
    pub fn stats(&self) -> BrokerStats {
        match &self.inner.backend {
            Backend::Embedded { broker, .. } => broker.stats(),
            Backend::External(e) => BrokerStats {
                replies: e.replies(),
                ..BrokerStats::default()
            },
        }
    }

    /// Every REST request so far: (method, path with query, status).
    pub fn rest_log(&self) -> Vec<(String, String, u16)> {
        self.inner.platform.state().rest_log.clone()
    }

    /// Closes every STOMP connection abruptly (no ERROR, no close_notify). Their unacked
    /// messages go back to the front of their queues with `redelivered:true`.
    pub fn drop_connections(&self) {
        if let Backend::Embedded { broker, .. } = &self.inner.backend {
            broker.drop_connections();
        }
    }

    /// Delays every MESSAGE frame written to clients by `delay` (zero to stop).
    pub fn set_frame_delay(&self, delay: Duration) {
        if let Backend::Embedded { broker, .. } = &self.inner.backend {
            broker.set_frame_delay(delay);
        }
    }

    /// Holds back the RECEIPT of every COMMIT by `delay` after the transaction took effect,
    /// without holding up other frames (zero to stop). A long delay models a broker that applied
    /// a final reply and its ACK but whose RECEIPT never arrived.
    pub fn set_commit_receipt_delay(&self, delay: Duration) {
        if let Backend::Embedded { broker, .. } = &self.inner.backend {
            broker.set_commit_receipt_delay(delay);
        }
    }

    /// The next `n` deliveries are written twice: the duplicate has the same message-id, a new
    /// ack id and `redelivered:true`. Either ack id acknowledges the message; a second ACK is a
    /// violation.
    pub fn deliver_twice(&self, n: usize) {
        if let Backend::Embedded { broker, .. } = &self.inner.backend {
            broker.deliver_twice(n);
        }
    }

    /// Writes raw bytes on every client connection (for malformed-frame tests).
    pub async fn send_garbage(&self, bytes: &[u8]) {
        if let Backend::Embedded { broker, .. } = &self.inner.backend {
            broker.send_garbage(bytes);
        }
    }

    /// Stops the servers, closes every connection and writes the state file (if configured).
    /// Handles stay usable for inspection.
    pub async fn shutdown(&self) {
        self.inner.cancel.cancel();
        match &self.inner.backend {
            Backend::Embedded { broker, .. } => broker.drop_connections(),
            Backend::External(e) => e.shutdown().await,
        }
        if let Err(e) = self.flush_state().await {
            tracing::warn!("soar-sim: {e}");
        }
    }

    /// Writes the state file now if the state changed since it was last written (nothing
    /// without [`SimConfig::state_file`]).
    pub async fn flush_state(&self) -> Result<(), SimError> {
        let Some(p) = self.inner.persister.clone() else {
            return Ok(());
        };
        match tokio::task::spawn_blocking(move || p.flush()).await {
            Ok(r) => r.map(|_| ()),
            Err(e) => Err(SimError::State {
                path: self.state_file().map(Path::to_path_buf).unwrap_or_default(),
                message: format!("the writer failed: {e}"),
            }),
        }
    }

    /// The state file, if the state is persisted.
    pub fn state_file(&self) -> Option<&Path> {
        self.inner.persister.as_ref().map(|p| p.path())
    }

    /// The admin interface's base URL, `https://localhost:<port>/sim/admin` (never under the
    /// resource prefix).
    pub fn admin_url(&self) -> String {
        format!("https://localhost:{}/sim/admin", self.inner.rest_port)
    }

    /// How many messages the simulator has numbered so far (`invid:<n>`).
    pub fn invocation_counter(&self) -> u64 {
        self.inner.counter.load(Ordering::SeqCst)
    }

    /// Adds a workspace with this display name (its name is derived: `SOC Team` → `soc_team`)
    /// and returns it as `GET /workspaces/{id}` answers it; an existing display name returns
    /// the existing workspace.
    pub fn add_workspace(&self, display_name: &str) -> Result<Value, SimError> {
        let mut st = self.inner.platform.state();
        if let Some(w) = st
            .workspace_list()
            .into_iter()
            .find(|w| w.display_name == display_name.trim())
        {
            return Ok(w.to_json());
        }
        st.add_workspace(&serde_json::json!({"display_name": display_name}))
            .map(|w| w.to_json())
            .map_err(|e| SimError::Rejected(e.message))
    }

    /// Every workspace as `GET /workspaces` lists them (the default one first).
    pub fn workspaces(&self) -> Vec<Value> {
        self.inner.platform.state().workspaces_json()
    }

    /// Every phase as `GET /phases` lists them.
    pub fn phases(&self) -> Vec<Value> {
        self.inner.platform.state().phases()
    }

    /// Every artifact type as `GET /artifact_types` lists them.
    pub fn artifact_types(&self) -> Vec<Value> {
        self.inner.platform.state().artifact_types()
    }

    /// Creates a custom artifact type as `POST /artifact_types` does
    /// (`{"programmatic_name", "name", "desc", …}`); returns it with its id.
    pub fn create_artifact_type(&self, artifact_type: Value) -> Result<Value, SimError> {
        self.inner
            .platform
            .state()
            .create_artifact_type(&artifact_type)
            .map_err(|e| SimError::Rejected(e.message))
    }
}

fn json_bytes(v: &Value) -> Bytes {
    Bytes::from(serde_json::to_vec(v).unwrap_or_default())
}
