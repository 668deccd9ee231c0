//! `host selftest`: the REST login, the STOMP subscription, then each component's own check,
//! with resilient-circuits' exit codes (spec §8.3).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use std::sync::Arc;

use soar_engine::app::{self, AppError};
use soar_rest::RestClient;
use soar_sdk::{Context, Message, Rest, SelftestState};

use super::{load_config, report};

pub async fn run(config_file: Option<PathBuf>, only: &[String]) -> i32 {
    let (config, opts) = match load_config(config_file.as_deref()) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let components = match soar_engine::load_components(&config, only, &[]) {
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
    let mut host = app::spawn(config.clone(), components.clone());
    let subscribed = host.ready(timeout).await;
    let _ = host.stop().await;
    match subscribed {
        Ok(queues) => println!(
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
            Some(r) => println!("{}: {word}: {r}", c.name),
            None => println!("{}: {word}", c.name),
        }
        if this == 1 || (this == 2 && code == 0) {
            code = this;
        }
    }
    code
}
