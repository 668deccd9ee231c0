//! `host run`: the startup sequence of resilient-circuits, then serve until SIGINT/SIGTERM.
//!
//! SIGHUP, or with `-r` any change of app.config, reloads the settings without dropping work:
//! the new file is read and its components built first (a bad file is logged and the running
//! settings stay), then running messages finish, and the host reconnects with the new settings.
//! Under systemd (`Type=notify`) the service manager is told READY once subscribed, RELOADING
//! and STOPPING, and its watchdog is fed while the STOMP link is up. A fatal start-up error
//! reaches app.log too (or `$APP_LOG_DIR/app.log` when app.config cannot be read).

use std::error::Error;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sd_notify::NotifyState;
use soar_engine::LoadedComponent;
use soar_engine::app;
use soar_engine::config::resilient::WORKERS_RANGE;
use soar_engine::config::{AppConfig, LogLevel, ResilientOptions};
use soar_engine::monitor::{self, Monitor, Monitoring};
use soar_sdk::config::Sections;
use tokio::sync::{mpsc, oneshot};

use super::log_file;
use crate::{lock, logging};

/// `host run`'s options (resilient-circuits' names).
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub config_file: Option<PathBuf>,
    /// Overrides `loglevel`.
    pub loglevel: Option<String>,
    /// Overrides `num_workers`.
    pub num_workers: Option<u32>,
    /// Watch app.config and apply its changes.
    pub auto_restart: bool,
}

/// A configuration read, checked and built: what one serving period runs with.
struct Loaded {
    config: AppConfig,
    opts: ResilientOptions,
    components: Vec<LoadedComponent>,
    /// Of the file's bytes, to notice changes.
    digest: u64,
}

/// What ends a serving period.
enum Control {
    Stop,
    /// SIGHUP: reload even if the file looks the same.
    Hangup,
    /// The file changed (`-r`).
    Changed,
}

/// An error and its causes on one line (for a log line).
fn chain(err: &(dyn Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn digest(bytes: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

/// Why app.config could not be used, and where to log it (see [`fallback_log_file`]).
struct LoadFailure {
    text: String,
    log_file: Option<PathBuf>,
}

/// Reads app.config and builds the components it enables, with the command line's overrides.
fn load(path: &Path, args: &RunOptions) -> Result<Loaded, LoadFailure> {
    let unread = |text: String| LoadFailure {
        text,
        log_file: fallback_log_file(None),
    };
    let bytes =
        std::fs::read(path).map_err(|e| unread(format!("cannot read {}: {e}", path.display())))?;
    let config = AppConfig::load(path).map_err(|e| unread(chain(&e)))?;
    let fail = |text: String| LoadFailure {
        text,
        log_file: fallback_log_file(Some(&config)),
    };
    let mut opts = ResilientOptions::from_config(&config).map_err(|e| fail(chain(&e)))?;
    if let Some(level) = &args.loglevel {
        opts.loglevel = level
            .parse::<LogLevel>()
            .map_err(|e| fail(format!("--loglevel {level}: {e}")))?;
    }
    if let Some(n) = args.num_workers {
        if !WORKERS_RANGE.contains(&n) {
            return Err(fail(format!(
                "--num-workers {n}: expected {} to {}",
                WORKERS_RANGE.start(),
                WORKERS_RANGE.end()
            )));
        }
        opts.num_workers = n;
    }
    let components =
        soar_engine::load_components(&config, &[], &opts.noload).map_err(|e| fail(chain(&e)))?;
    Ok(Loaded {
        config,
        opts,
        components,
        digest: digest(&bytes),
    })
}

/// Where a fatal error goes when app.config could not be used: the file's own
/// `logdir`/`logfile` if it could be parsed, else `$APP_LOG_DIR/app.log`.
fn fallback_log_file(config: Option<&AppConfig>) -> Option<PathBuf> {
    let section = config.and_then(|c| c.section("resilient"));
    let get = |key: &str| section.and_then(|s| s.get(key)).filter(|v| !v.is_empty());
    let dir = get("logdir")
        .map(str::to_string)
        .or_else(|| std::env::var("APP_LOG_DIR").ok().filter(|v| !v.is_empty()))?;
    Some(PathBuf::from(dir).join(get("logfile").unwrap_or("app.log")))
}

fn log_settings(loaded: &Loaded) -> logging::LogSettings {
    logging::LogSettings {
        level: loaded.opts.loglevel.as_str().to_string(),
        file: log_file(&loaded.opts),
        max_bytes: loaded.opts.log_max_bytes,
        backups: loaded.opts.log_backup_count,
        format: loaded.opts.log_format,
        secrets: loaded.config.secret_values().to_vec(),
    }
}

/// Tells systemd (when it started us with `NOTIFY_SOCKET`); a failure is only logged.
fn notify(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::debug!("sd_notify: {e}");
    }
}

pub async fn run(args: RunOptions) -> i32 {
    let path = match AppConfig::locate(args.config_file.as_deref()) {
        Ok(p) => p,
        Err(e) => return fatal(fallback_log_file(None), &chain(&e)),
    };
    let loaded = match load(&path, &args) {
        Ok(l) => l,
        Err(failure) => return fatal(failure.log_file, &failure.text),
    };
    let (warning, level) = logging::init(&log_settings(&loaded));
    if let Some(w) = warning {
        tracing::warn!("{w}");
    }
    let _lock = match lock::acquire() {
        Ok(l) => {
            tracing::debug!("holding the lock file {}", l.path.display());
            l
        }
        Err(e) => {
            tracing::error!("{e}");
            return 1;
        }
    };
    tracing::info!(
        "host {} using {}",
        env!("CARGO_PKG_VERSION"),
        loaded.config.path().display()
    );
    let monitor = Monitor::default();
    if let Err(text) = serve_monitoring(&loaded.config, &monitor).await {
        tracing::error!("cannot start: {text}");
        return 1;
    }
    let (control, mut controls) = mpsc::channel(4);
    tokio::spawn(signals(control.clone()));
    if args.auto_restart {
        tracing::info!(
            "watching {} for changes (-r): they are applied without dropping work",
            path.display()
        );
        tokio::spawn(watch_file(path.clone(), loaded.digest, control));
    }
    let mut current = loaded;
    loop {
        log_components(&current.components);
        let (ready_tx, ready_rx) = oneshot::channel();
        let supervisor = tokio::spawn(tell_systemd(ready_rx, monitor.clone()));
        let mut next = None;
        let until = wait_for_change(&path, &args, &current, &mut controls, &mut next);
        let served = app::run(
            &current.config,
            current.components.clone(),
            until,
            Some(ready_tx),
            monitor.clone(),
        )
        .await;
        supervisor.abort();
        if let Err(e) = served {
            tracing::error!("{}", chain(&e));
            return e.exit_code();
        }
        match next {
            Some(new) => {
                if new.opts.loglevel != current.opts.loglevel {
                    level.set(new.opts.loglevel.as_str());
                }
                warn_restart_only(&current.opts, &new.opts);
                tracing::info!("reloaded {}", path.display());
                current = new;
            }
            None => {
                tracing::info!("stopped");
                return 0;
            }
        }
    }
}

/// Starts the `[monitoring]` endpoint if app.config asks for it (once: a reload that changes
/// the address is applied at the next start).
async fn serve_monitoring(config: &AppConfig, monitor: &Monitor) -> Result<(), String> {
    let source = config.to_source();
    let section = Option::<Monitoring>::load(&source).map_err(|e| e.to_string())?;
    match section
        .and_then(|m| m.address)
        .filter(|a| !a.trim().is_empty())
    {
        Some(address) => monitor::serve(address.trim(), monitor.clone())
            .await
            .map(drop),
        None => Ok(()),
    }
}

/// Logs a fatal start-up error to stderr and, where one can be found, to the log file.
fn fatal(log_file: Option<PathBuf>, text: &str) -> i32 {
    let mut settings = logging::LogSettings::stderr("INFO");
    settings.file = log_file;
    let (warning, _) = logging::init(&settings);
    if let Some(w) = warning {
        tracing::warn!("{w}");
    }
    tracing::error!("cannot start: {text}");
    1
}

fn log_components(components: &[LoadedComponent]) {
    tracing::info!(
        "components: {}",
        components
            .iter()
            .map(|c| format!("{} {}", c.name, c.version))
            .collect::<Vec<_>>()
            .join(", ")
    );
}

/// Completes when the host should stop serving with the current settings: on SIGINT/SIGTERM
/// (`next` stays `None`), or on a reload whose new file is good (`next` holds it). A reload
/// whose file cannot be used is logged and changes nothing.
async fn wait_for_change(
    path: &Path,
    args: &RunOptions,
    current: &Loaded,
    controls: &mut mpsc::Receiver<Control>,
    next: &mut Option<Loaded>,
) {
    loop {
        let forced = match controls.recv().await {
            Some(Control::Stop) | None => {
                notify(&[NotifyState::Stopping]);
                return;
            }
            Some(Control::Hangup) => true,
            Some(Control::Changed) => false,
        };
        let path = path.to_owned();
        let args = args.clone();
        let loaded = tokio::task::spawn_blocking(move || load(&path, &args)).await;
        match loaded {
            Ok(Ok(new)) if new.digest == current.digest && !forced => {}
            Ok(Ok(new)) if new.digest == current.digest => {
                tracing::info!("SIGHUP: app.config has not changed; nothing to reload");
            }
            Ok(Ok(new)) => {
                tracing::info!(
                    "app.config changed: finishing running messages, then serving with the new settings"
                );
                let mut states = vec![NotifyState::Reloading];
                states.extend(NotifyState::monotonic_usec_now().ok());
                notify(&states);
                *next = Some(new);
                return;
            }
            Ok(Err(failure)) => tracing::error!(
                "app.config not reloaded, the running settings stay: {}",
                failure.text
            ),
            Err(e) => tracing::error!("app.config not reloaded: {e}"),
        }
    }
}

/// Settings that a reload does not change in a running process.
fn warn_restart_only(old: &ResilientOptions, new: &ResilientOptions) {
    let changed: Vec<&str> = [
        ("logdir", old.logdir != new.logdir),
        ("logfile", old.logfile != new.logfile),
        ("log_format", old.log_format != new.log_format),
        ("log_max_bytes", old.log_max_bytes != new.log_max_bytes),
        (
            "log_backup_count",
            old.log_backup_count != new.log_backup_count,
        ),
    ]
    .into_iter()
    .filter_map(|(key, differs)| differs.then_some(key))
    .collect();
    if !changed.is_empty() {
        tracing::warn!(
            "{} changed: applied at the next start of the host",
            changed.join(", ")
        );
    }
}

/// READY once subscribed; then, if systemd asked for a watchdog, WATCHDOG at half its
/// interval whenever the STOMP link is up.
async fn tell_systemd(ready: oneshot::Receiver<Vec<String>>, monitor: Monitor) {
    let Ok(queues) = ready.await else {
        return;
    };
    let status = format!("serving {} queue(s)", queues.len());
    notify(&[NotifyState::Ready, NotifyState::Status(&status)]);
    let Some(interval) = sd_notify::watchdog_enabled() else {
        return;
    };
    let mut tick = tokio::time::interval((interval / 2).max(Duration::from_millis(100)));
    loop {
        tick.tick().await;
        if monitor.link_up() {
            notify(&[NotifyState::Watchdog]);
        }
    }
}

/// SIGINT/SIGTERM → stop; SIGHUP → reload.
async fn signals(control: mpsc::Sender<Control>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut hup)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::hangup()),
        ) else {
            tracing::warn!("cannot install the SIGTERM/SIGHUP handlers");
            return;
        };
        loop {
            let event = tokio::select! {
                _ = tokio::signal::ctrl_c() => Control::Stop,
                _ = term.recv() => Control::Stop,
                _ = hup.recv() => Control::Hangup,
            };
            let stop = matches!(event, Control::Stop);
            if stop {
                tracing::info!("shutdown requested: finishing running messages");
            }
            if control.send(event).await.is_err() || stop {
                return;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        let _ = control.send(Control::Stop).await;
    }
}

/// `-r`: reads app.config every second and reports a change of its bytes (editors that
/// replace the file are seen too).
async fn watch_file(path: PathBuf, mut last: u64, control: mpsc::Sender<Control>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        let Ok(bytes) = tokio::fs::read(&path).await else {
            continue;
        };
        let now = digest(&bytes);
        if now != last {
            last = now;
            if control.send(Control::Changed).await.is_err() {
                return;
            }
        }
    }
}

/// Completes on SIGINT or SIGTERM (for commands without reload).
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutdown requested: finishing running messages");
}
