//! `host selftest`: the REST login, the STOMP subscription, then each component's own check,
//! with resilient-circuits' exit codes (spec §8.3).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use std::sync::Arc;

use soar_engine::app::{self, AppError};
use soar_rest::RestClient;
use soar_sdk::{Context, Message, Rest, SelftestState};

use super::{load_config, report};

pub async fn run(config_file: Option<PathBuf>, only: &[String], print_env: bool) -> i32 {
    if print_env {
        print_environment(config_file.as_deref());
    }
    let (config, opts) = match load_config(config_file.as_deref()) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let components = match soar_engine::load_components(&config, only, &opts.noload) {
        Ok(c) => c,
        Err(e) => {
            report("", &e);
            return e.exit_code();
        }
    };

    // REST
    outln!(
        "REST: logging in to {}:{} (up to {} tries, see request_max_retries)...",
        opts.host,
        opts.port,
        opts.request_max_retries
    );
    let started = Instant::now();
    let rest = match app::rest_config(&opts) {
        Ok(rc) => RestClient::connect(rc).await.map_err(AppError::from),
        Err(e) => Err(e),
    };
    let rest = match rest {
        Ok(r) => {
            outln!(
                "REST: OK, logged in to {} org '{}' ({} ms)",
                r.base_url(),
                r.org_name(),
                started.elapsed().as_millis()
            );
            r
        }
        Err(e) => {
            report("REST: ", &e);
            return e.exit_code();
        }
    };

    // STOMP: subscribed within selftest_timeout.
    let timeout = opts.selftest_timeout.max(Duration::from_secs(1));
    outln!(
        "STOMP: connecting to {}:{} and subscribing (up to {} s, see selftest_timeout)...",
        opts.stomp_host,
        opts.stomp_port,
        timeout.as_secs()
    );
    let started = Instant::now();
    let mut host = app::spawn(config.clone(), components.clone());
    let subscribed = host.ready(timeout).await;
    let _ = host.stop().await;
    match subscribed {
        Ok(queues) => outln!(
            "STOMP: OK, subscribed to {} queue(s) in {} ms{}",
            queues.len(),
            started.elapsed().as_millis(),
            if queues.is_empty() {
                " (no function of the enabled components is defined on the platform)"
            } else {
                ""
            }
        ),
        Err(e) => {
            report("STOMP: ", &e);
            return e.exit_code();
        }
    }

    // Components
    let mut code = 0;
    for c in &components {
        let ctx = Context::new(
            Message::new("selftest", None, serde_json::Value::Null),
            Some(Rest::new(Arc::new(rest.clone()))),
            Arc::new(soar_sdk::context::DiscardStatus),
            "selftest",
        );
        let result = c.component.run_selftest(ctx).await;
        let (word, this) = match result.state {
            SelftestState::Success => ("success", 0),
            SelftestState::Failure => ("failure", 1),
            SelftestState::Unimplemented => ("unimplemented", 2),
        };
        match &result.reason {
            Some(r) => outln!("{}: {word}: {r}", c.name),
            None => outln!("{}: {word}", c.name),
        }
        if this == 1 || (this == 2 && code == 0) {
            code = this;
        }
    }
    code
}

/// `--print-env`: what resilient-circuits' prints (versions, packages), for this host.
fn print_environment(config_file: Option<&std::path::Path>) {
    outln!("host {}", env!("CARGO_PKG_VERSION"));
    outln!("components linked:");
    for r in soar_sdk::registered() {
        outln!("  {} {}", r.name, r.version);
    }
    match soar_engine::config::AppConfig::locate(config_file) {
        Ok(p) => outln!("app.config: {}", p.display()),
        Err(e) => outln!("app.config: {e}"),
    }
    outln!("environment:");
    for name in [
        "APP_CONFIG_FILE",
        "APP_LOG_DIR",
        "APP_LOCK_FILE",
        "APP_SECRETS",
        "LOGLEVEL",
        "RUST_LOG",
        "NO_COLOR",
        "HTTPS_PROXY",
        "HTTP_PROXY",
        "NO_PROXY",
    ] {
        match std::env::var(name) {
            // A proxy URL can hold a password.
            Ok(v) if name.ends_with("PROXY") && v.contains('@') => {
                outln!("  {name}=(set, with credentials)")
            }
            Ok(v) => outln!("  {name}={v}"),
            Err(_) => outln!("  {name} (not set)"),
        }
    }
    outln!();
}
