//! `host selftest`: the REST login, the STOMP subscription, then each component's own check,
//! with resilient-circuits' exit codes (spec §8.3).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use soar_sdk::app::{self, AppError};
use soar_sdk::rest::RestClient;
use soar_sdk::{SelftestReport, SelftestState};
use tokio::sync::oneshot;

use super::{load_config, report};

pub async fn run(config_file: Option<PathBuf>, only: &[String]) -> i32 {
    let (config, opts) = match load_config(config_file.as_deref()) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let components = match app::load_components(&config, only, &[]) {
        Ok(c) => c,
        Err(e) => {
            report("", &e);
            return e.exit_code();
        }
    };

    // REST
    let started = Instant::now();
    let rest = match app::rest_config(&opts) {
        Ok(rc) => RestClient::connect(rc).await.map_err(AppError::from),
        Err(e) => Err(e),
    };
    let rest = match rest {
        Ok(r) => {
            println!(
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
    let started = Instant::now();
    let (ready_tx, ready_rx) = oneshot::channel();
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let host = tokio::spawn({
        let config = config.clone();
        let components = components.clone();
        async move {
            app::run(
                &config,
                components,
                async {
                    let _ = stop_rx.await;
                },
                Some(ready_tx),
            )
            .await
        }
    });
    let stomp = tokio::time::timeout(timeout, ready_rx).await;
    let _ = stop_tx.send(());
    let ended = host.await;
    match stomp {
        Ok(Ok(queues)) => println!(
            "STOMP: OK, subscribed to {} queue(s) in {} ms{}",
            queues.len(),
            started.elapsed().as_millis(),
            if queues.is_empty() {
                " (no function of the enabled components is defined on the platform)"
            } else {
                ""
            }
        ),
        Ok(Err(_)) => {
            return match ended {
                Ok(Err(e)) => {
                    report("STOMP: ", &e);
                    e.exit_code()
                }
                _ => {
                    eprintln!("error: STOMP: the host stopped before subscribing");
                    30
                }
            };
        }
        Err(_) => {
            eprintln!(
                "error: STOMP: not subscribed within selftest_timeout = {} s",
                timeout.as_secs()
            );
            return 33;
        }
    }

    // Components
    let mut code = 0;
    for c in &components {
        let result = match c.component.selftest_handler() {
            Some(t) => t.selftest(Some(&rest)).await,
            None => SelftestReport {
                state: SelftestState::Unimplemented,
                reason: None,
            },
        };
        let (word, this) = match result.state {
            SelftestState::Success => ("success", 0),
            SelftestState::Failure => ("failure", 1),
            SelftestState::Unimplemented => ("unimplemented", 2),
        };
        match &result.reason {
            Some(r) => println!("{}: {word}: {r}", c.name),
            None => println!("{}: {word}", c.name),
        }
        if this == 1 || (this == 2 && code == 0) {
            code = this;
        }
    }
    code
}
