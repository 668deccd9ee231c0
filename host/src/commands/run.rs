//! `host run`: the startup sequence of resilient-circuits, then serve until a signal.

use std::path::PathBuf;

use soar_engine::app;

use super::{load_config, log_file, report};
use crate::{lock, logging};

pub async fn run(config_file: Option<PathBuf>, loglevel: Option<String>) -> i32 {
    let (config, opts) = match load_config(config_file.as_deref()) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let warning = logging::init(&logging::LogSettings {
        level: loglevel.unwrap_or_else(|| opts.loglevel.as_str().to_string()),
        file: log_file(&opts),
        max_bytes: opts.log_max_bytes,
        backups: opts.log_backup_count,
        secrets: config.secret_values().to_vec(),
    });
    if let Some(w) = warning {
        tracing::warn!("{w}");
    }
    let _lock = match lock::acquire() {
        Ok(l) => {
            tracing::debug!("holding the lock file {}", l.path.display());
            l
        }
        Err(e) => {
            eprintln!("error: {e}");
            return 1;
        }
    };
    tracing::info!(
        "host {} using {}",
        env!("CARGO_PKG_VERSION"),
        config.path().display()
    );
    let components = match soar_engine::load_components(&config, &[], &opts.noload) {
        Ok(c) => c,
        Err(e) => {
            report("", &e);
            return e.exit_code();
        }
    };
    tracing::info!(
        "components: {}",
        components
            .iter()
            .map(|c| format!("{} {}", c.name, c.version))
            .collect::<Vec<_>>()
            .join(", ")
    );
    match app::run(&config, components, shutdown_signal(), None).await {
        Ok(()) => {
            tracing::info!("stopped");
            0
        }
        Err(e) => {
            tracing::error!("{e}");
            report("", &e);
            e.exit_code()
        }
    }
}

/// Completes on SIGINT or SIGTERM.
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
