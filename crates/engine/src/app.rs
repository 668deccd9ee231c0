//! Assembling a host from app.config: load the linked components, log in to the platform,
//! connect the broker and serve. `host run`, `host selftest`, the demo and the test kit all go
//! through here, so they behave the same.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use soar_rest::{Auth, Proxy, RestClient, RestConfig, RestError, RetryPolicy};
use soar_sdk::Rest;
use soar_sdk::config::Sections;
use soar_sdk::registry::CheckError;
use soar_tls::{CaSource, TlsError};
use tokio::sync::oneshot;

use crate::config::resilient::Credentials;
use crate::config::{AppConfig, ConfigError, ResilientOptions};
use crate::customize::CustomizeError;
use crate::dispatch::{DispatchOptions, Dispatcher, DuplicateFunction};
use crate::journal::{Journal, JournalError, Limits};
use crate::load::LoadedComponent;
use crate::monitor::Monitor;
use crate::rules::RuleDirectory;
use crate::runtime::{self, RuntimeConfig, RuntimeError};
use crate::threat::{self, CustomThreatService, ThreatServer, Webserver};

/// Why the host could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("component {component}: {source}; fix it, or {}", leave_out(component))]
    Component {
        component: String,
        #[source]
        source: soar_sdk::ConfigError,
    },
    /// A component's section still holds an example value that `host config` wrote.
    #[error(
        "component {component}: {}: [{section}] {key} still holds the example value that \
         `host config` wrote; fill it in, or {}",
        file.display(),
        leave_out(component)
    )]
    Placeholder {
        component: String,
        file: std::path::PathBuf,
        section: String,
        key: String,
    },
    #[error(transparent)]
    Check(#[from] CheckError),
    #[error("unknown component '{name}' (linked: {linked}; see `host list`)")]
    UnknownComponent { name: String, linked: String },
    #[error("threat service: {0}")]
    ThreatService(String),
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("{setting} = {value}: {source}")]
    Tls {
        setting: &'static str,
        value: String,
        #[source]
        source: TlsError,
    },
    #[error(transparent)]
    Rest(#[from] RestError),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error(transparent)]
    Duplicate(#[from] DuplicateFunction),
    #[error(transparent)]
    Customize(#[from] CustomizeError),
}

/// The way to start without a component that is not set up.
fn leave_out(component: &str) -> String {
    format!(
        "leave {component} out: add `noload = {component}` to [resilient] (selftest and \
         customize: -l names the components to use)"
    )
}

impl AppError {
    /// Process exit code (spec §8.3).
    pub fn exit_code(&self) -> i32 {
        match self {
            AppError::Rest(e) => e.exit_code(),
            AppError::Runtime(e) => e.exit_code(),
            AppError::Tls {
                source: TlsError::CaFileRead { .. },
                ..
            } => 22,
            AppError::Tls { .. } => 23,
            _ => 1,
        }
    }
}

fn tls_config(
    setting: &'static str,
    value: Option<&str>,
) -> Result<Arc<rustls::ClientConfig>, AppError> {
    let source = CaSource::from_setting(value);
    if matches!(source, CaSource::Insecure) {
        tracing::warn!("{setting} = false: TLS certificates are NOT verified");
    }
    soar_tls::client_config(&source).map_err(|source| AppError::Tls {
        setting,
        value: value.unwrap_or("(system roots)").to_string(),
        source,
    })
}

/// The REST client settings from `[resilient]`.
pub fn rest_config(opts: &ResilientOptions) -> Result<RestConfig, AppError> {
    let auth = match &opts.credentials {
        Credentials::ApiKey { id, secret } => Auth::ApiKey {
            id: id.clone(),
            secret: secret.expose().to_string(),
        },
        Credentials::Password { email, password } => Auth::Password {
            email: email.clone(),
            password: password.expose().to_string(),
        },
        Credentials::PromptPassword { .. } => return Err(no_password()),
    };
    let proxy = opts.proxy_host.as_ref().map(|host| {
        let port = opts.proxy_port.unwrap_or(0);
        let url = if host.contains("://") {
            format!("{host}:{port}")
        } else {
            format!("https://{host}:{port}")
        };
        Proxy {
            url,
            user: opts.proxy_user.clone(),
            password: opts.proxy_password.as_ref().map(|p| p.expose().to_string()),
        }
    });
    Ok(RestConfig {
        host: opts.host.clone(),
        port: opts.port,
        resource_prefix: opts.resource_prefix.clone(),
        org: opts.org.clone(),
        auth,
        tls: tls_config("cafile", opts.cafile.as_deref())?,
        proxy,
        retry: RetryPolicy {
            // resilient counts attempts (`tries`), the REST client counts retries.
            max_retries: opts.request_max_retries.saturating_sub(1),
            delay: opts.request_retry_delay,
            backoff: f64::from(opts.request_retry_backoff),
        },
        timeout: Duration::from_secs(60),
        user_agent: format!("soar-host/{}", env!("CARGO_PKG_VERSION")),
    })
}

fn no_password() -> AppError {
    AppError::Config(ConfigError::Missing {
        file: Default::default(),
        section: "resilient".into(),
        key: "password (email is set but password is empty; this host does not prompt: \
              write it as a $ENV or ^secret value)"
            .into(),
    })
}

/// The longest wait between two logins of [`login`].
const MAX_LOGIN_WAIT: Duration = Duration::from_secs(60);

/// Logs in as `run` does at start: a platform that cannot be reached, or answers with a server
/// error, is tried again `max_connection_retries` times in all (-1, the default: for ever, as
/// resilient-circuits, so that an appliance reboot does not stop the host), waiting
/// `request_retry_delay` × `request_retry_backoff`ⁿ (at most a minute) in between. Refused
/// credentials and TLS errors stop at once.
pub async fn login(opts: &ResilientOptions) -> Result<RestClient, AppError> {
    let config = rest_config(opts)?;
    let limit = opts.max_connection_retries;
    let mut tries: i64 = 0;
    loop {
        tries += 1;
        let error = match RestClient::connect(config.clone()).await {
            Ok(rest) => return Ok(rest),
            Err(e) if e.is_retryable() && (limit < 0 || tries < limit) => e,
            Err(e) => return Err(e.into()),
        };
        let wait = config
            .retry
            .delay_for(u32::try_from(tries - 1).unwrap_or(u32::MAX))
            .min(MAX_LOGIN_WAIT);
        let of = if limit < 0 {
            "unlimited: max_connection_retries = -1".to_string()
        } else {
            format!("of {limit}: max_connection_retries")
        };
        tracing::warn!(
            "cannot log in to the platform: {error}; trying again in {wait:?} (try {tries} {of})"
        );
        tokio::time::sleep(wait).await;
    }
}

/// The STOMP client settings from `[resilient]`.
pub fn stomp_config(opts: &ResilientOptions) -> Result<soar_stomp::ClientConfig, AppError> {
    let ca = opts.stomp_cafile.as_deref().or(opts.cafile.as_deref());
    let (login, passcode) = match &opts.credentials {
        Credentials::ApiKey { id, secret } => (id.clone(), secret.expose().to_string()),
        Credentials::Password { email, password } => (email.clone(), password.expose().to_string()),
        Credentials::PromptPassword { .. } => return Err(no_password()),
    };
    let mut config = soar_stomp::ClientConfig::new(opts.stomp_host.clone(), opts.stomp_port);
    config.tls = Some(tls_config("stomp_cafile", ca)?);
    config.login = Some(login);
    config.passcode = Some(passcode);
    config.connect_timeout = opts.stomp_timeout.max(Duration::from_secs(1));
    config.max_frame_size = opts.stomp_max_frame_size;
    Ok(config)
}

/// Logs in, resolves destinations, connects the broker and serves until `shutdown`.
///
/// `ready` receives the subscribed queues once the first subscription is in place; `monitor`
/// counts and lists what it does (it may outlive this call, e.g. across reloads).
pub async fn run(
    config: &AppConfig,
    components: Vec<LoadedComponent>,
    shutdown: impl Future<Output = ()>,
    ready: Option<oneshot::Sender<Vec<String>>>,
    monitor: Monitor,
) -> Result<(), AppError> {
    let opts = ResilientOptions::from_config(config)?;
    let stomp = stomp_config(&opts)?;
    tokio::pin!(shutdown);
    let rest = tokio::select! {
        rest = login(&opts) => rest?,
        () = &mut shutdown => return Ok(()),
    };
    tracing::info!(
        org = rest.org_name(),
        org_id = rest.org_id(),
        "logged in to {}",
        rest.base_url()
    );
    let rules = Arc::new(RuleDirectory::new(Some(Rest::new(Arc::new(rest.clone())))));
    let dispatcher = Arc::new(Dispatcher::new(
        &components,
        Some(Rest::new(Arc::new(rest.clone()))),
        rules.clone(),
        DispatchOptions {
            trap_exception: opts.trap_exception,
            monitor: monitor.clone(),
            ..DispatchOptions::default()
        },
    )?);
    let queues = runtime::resolve_queues(&dispatcher, &rules, &rest).await?;
    if queues.is_empty() {
        tracing::warn!(
            "no function or rule of the enabled components is defined on the platform: nothing to subscribe to"
        );
    }
    let journal = open_journal(opts.journal_path.as_deref()).await?;
    let runtime_config = RuntimeConfig {
        stomp,
        num_workers: opts.num_workers as usize,
        prefetch: opts.stomp_prefetch_limit,
        shutdown_timeout: opts.shutdown_timeout,
        journal: journal.clone(),
        stomp_max_retries: opts.stomp_max_retries,
        heartbeat_timeout_threshold: opts.heartbeat_timeout_threshold,
        monitor: monitor.clone(),
    };
    // The components' threat services are served beside the functions.
    let threat_server = match threat_server(config, &components, &monitor)? {
        Some(server) => Some(
            threat::start(server)
                .await
                .map_err(AppError::ThreatService)?,
        ),
        None => None,
    };
    let served = runtime::serve(dispatcher, queues, runtime_config, shutdown, ready).await;
    if let Some(server) = threat_server {
        server.stop().await;
    }
    journal.close().await;
    served?;
    Ok(())
}

/// The journal at `path` (opened off the reactor), or one in memory for `journal_path = false`.
pub async fn open_journal(path: Option<&std::path::Path>) -> Result<Journal, AppError> {
    let Some(path) = path else {
        tracing::warn!(
            "journal_path = false: handled invocations are remembered in memory only; after a \
             crash, redelivered messages run again"
        );
        return Ok(Journal::in_memory());
    };
    let path = path.to_owned();
    match tokio::task::spawn_blocking(move || Journal::open(&path, Limits::default())).await {
        Ok(opened) => Ok(opened?),
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

/// The threat-service server for the components' threat services (`None` when they have none).
pub fn threat_server(
    config: &AppConfig,
    components: &[LoadedComponent],
    monitor: &Monitor,
) -> Result<Option<Arc<ThreatServer>>, AppError> {
    let routes: Vec<_> = components
        .iter()
        .flat_map(|c| c.component.threat_services().to_vec())
        .collect();
    if routes.is_empty() {
        return Ok(None);
    }
    let source = config.to_source();
    let section_error = |source| AppError::Config(ConfigError::Component(source));
    let web = Webserver::load(&source).map_err(section_error)?;
    let cts = CustomThreatService::load(&source).map_err(section_error)?;
    for warning in source.warnings() {
        tracing::warn!("{warning}");
    }
    ThreatServer::new(routes, web, cts, &source, monitor.clone())
        .map(Some)
        .map_err(section_error)
}

/// Why a spawned host did not become ready.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("not subscribed within {0:?}")]
    Timeout(Duration),
    #[error(transparent)]
    Stopped(AppError),
    #[error("the host stopped without subscribing{0}")]
    Ended(String),
}

impl StartError {
    /// Process exit code (spec §8.3: 33 when not subscribed in time).
    pub fn exit_code(&self) -> i32 {
        match self {
            StartError::Timeout(_) => 33,
            StartError::Stopped(e) => e.exit_code(),
            StartError::Ended(_) => 30,
        }
    }
}

/// A host running in a task of this process (selftest, the demo, the test kit).
#[derive(Debug)]
pub struct HostHandle {
    stop: Option<oneshot::Sender<()>>,
    ready: Option<oneshot::Receiver<Vec<String>>>,
    task: Option<tokio::task::JoinHandle<Result<(), AppError>>>,
}

/// Starts [`run`] in a task.
pub fn spawn(config: AppConfig, components: Vec<LoadedComponent>) -> HostHandle {
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let (ready_tx, ready_rx) = oneshot::channel();
    let task = tokio::spawn(async move {
        run(
            &config,
            components,
            async {
                let _ = stop_rx.await;
            },
            Some(ready_tx),
            Monitor::default(),
        )
        .await
    });
    HostHandle {
        stop: Some(stop_tx),
        ready: Some(ready_rx),
        task: Some(task),
    }
}

impl HostHandle {
    /// Waits until the host has subscribed and returns its queues; if it stopped first, why.
    pub async fn ready(&mut self, timeout: Duration) -> Result<Vec<String>, StartError> {
        let Some(ready) = self.ready.take() else {
            return Err(StartError::Ended(": ready() was already called".into()));
        };
        match tokio::time::timeout(timeout, ready).await {
            Ok(Ok(queues)) => Ok(queues),
            Ok(Err(_)) => match self.task.take() {
                Some(task) => match task.await {
                    Ok(Err(e)) => Err(StartError::Stopped(e)),
                    Ok(Ok(())) => Err(StartError::Ended(String::new())),
                    Err(e) => Err(StartError::Ended(format!(": {e}"))),
                },
                None => Err(StartError::Ended(String::new())),
            },
            Err(_) => Err(StartError::Timeout(timeout)),
        }
    }

    /// Stops the host gracefully and returns how it ended.
    pub async fn stop(mut self) -> Result<(), AppError> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        match self.task.take() {
            Some(task) => task.await.unwrap_or(Ok(())),
            None => Ok(()),
        }
    }
}

impl Drop for HostHandle {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
