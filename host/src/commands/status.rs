//! `host status`: what the running host is doing, from its `[monitoring]` endpoint: the STOMP
//! link, the subscriptions and the invocations in flight with their age.

use std::path::PathBuf;

use soar_engine::config::AppConfig;
use soar_engine::monitor::{self, Monitoring};
use soar_sdk::config::Sections;

pub async fn run(config_file: Option<PathBuf>) -> i32 {
    let config = match AppConfig::locate(config_file.as_deref()).and_then(|p| AppConfig::load(&p)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return 1;
        }
    };
    let address = match Option::<Monitoring>::load(&config.to_source()) {
        Ok(m) => m.and_then(|m| m.address).filter(|a| !a.trim().is_empty()),
        Err(e) => {
            eprintln!("error: {e}");
            return 1;
        }
    };
    let Some(address) = address else {
        eprintln!(
            "error: {} has no [monitoring] address: set one (e.g. address = 127.0.0.1:9464) and \
             restart `host run` to see its status",
            config.path().display()
        );
        return 1;
    };
    let status = match monitor::fetch_status(address.trim()).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return 3;
        }
    };
    outln!(
        "host {}, up {} s, {}",
        status.version,
        status.uptime_secs,
        if status.connected {
            "connected to the message broker"
        } else {
            "NOT connected to the message broker"
        }
    );
    outln!("subscriptions: {}", status.subscriptions.join(", "));
    outln!("in flight: {}", status.in_flight.len());
    for f in &status.in_flight {
        outln!(
            "  {:>8} ms  {}  {}{}",
            f.age_ms,
            f.message_id,
            f.function.as_deref().unwrap_or("(starting)"),
            f.incident
                .map(|i| format!("  incident {i}"))
                .unwrap_or_default()
        );
    }
    i32::from(!status.connected) * 2
}
