//! Runs the simulated platform on its own, for trying a host (ours or resilient-circuits) by hand.
//!
//! ```text
//! cargo run -p soar-sim --example standalone -- \
//!     --function fn_conformance_echo:fn_conformance \
//!     --write-config /tmp/sim/app.config --extra componentsdir=/path --extra logdir=/tmp/sim \
//!     --invoke fn_conformance_echo '{"fn_conformance_text": "hi"}' --wait 120
//! ```
//! It writes a `[resilient]` section (plus the `--extra` lines) to the config file, waits up to
//! `--wait` seconds for a subscription to each function's queue, sends each `--invoke`, prints
//! every event, the REST log and the protocol violations, and exits (status 1 on violations or
//! timeouts). Without `--invoke` it serves until Ctrl-C.

use std::time::Duration;

use soar_sim::{InvocationEvent, Sim, SimConfig};

struct Args {
    functions: Vec<(String, String)>,
    write_config: Option<String>,
    extra: Vec<String>,
    invokes: Vec<(String, serde_json::Value)>,
    wait: Duration,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        functions: Vec::new(),
        write_config: None,
        extra: Vec::new(),
        invokes: Vec::new(),
        wait: Duration::from_secs(60),
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match a.as_str() {
            "--function" => {
                let v = value("--function")?;
                let (f, d) = v.split_once(':').unwrap_or((v.as_str(), v.as_str()));
                args.functions.push((f.to_string(), d.to_string()));
            }
            "--write-config" => args.write_config = Some(value("--write-config")?),
            "--extra" => args.extra.push(value("--extra")?),
            "--invoke" => {
                let f = value("--invoke")?;
                let inputs = it
                    .next()
                    .ok_or("--invoke needs a function and JSON inputs")?;
                let inputs = serde_json::from_str(&inputs).map_err(|e| format!("inputs: {e}"))?;
                args.invokes.push((f, inputs));
            }
            "--wait" => {
                let s = value("--wait")?;
                args.wait = Duration::from_secs(s.parse().map_err(|e| format!("--wait: {e}"))?);
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(args)
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    let sim = match Sim::start(SimConfig::default()).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    };
    for (f, d) in &args.functions {
        sim.register_function(f, d);
    }
    let mut text = sim.app_config();
    for line in &args.extra {
        text.push_str(line);
        text.push('\n');
    }
    match &args.write_config {
        Some(path) => {
            if let Err(e) = std::fs::write(path, &text) {
                eprintln!("error: cannot write {path}: {e}");
                std::process::exit(1);
            }
            println!("wrote {path}");
        }
        None => println!("{text}"),
    }
    if args.invokes.is_empty() {
        let _ = tokio::signal::ctrl_c().await;
        return;
    }
    let mut failed = false;
    for (f, d) in &args.functions {
        let queue = format!("actions.{}.{d}", sim.org_id());
        if let Err(e) = sim.wait_subscribed(&queue, args.wait).await {
            eprintln!("error: {f}: {e}");
            failed = true;
        }
    }
    for (f, inputs) in args.invokes {
        match sim.invoke(&f, inputs).await {
            Ok(inv) => {
                let fin = inv.final_reply(args.wait).await;
                let acked = inv.wait_acked(Duration::from_secs(5)).await;
                for e in inv.events() {
                    match e {
                        InvocationEvent::Status(r) | InvocationEvent::Final(r) => {
                            println!("{}: {}", inv.correlation_id(), r.body)
                        }
                        other => println!("{}: {other:?}", inv.correlation_id()),
                    }
                }
                if fin.is_err() || acked.is_err() {
                    eprintln!("error: {f}: final={:?} acked={:?}", fin.err(), acked.err());
                    failed = true;
                }
            }
            Err(e) => {
                eprintln!("error: {e}");
                failed = true;
            }
        }
    }
    for (m, p, s) in sim.rest_log() {
        println!("REST {m} {p} -> {s}");
    }
    for s in sim.subscriptions() {
        println!("subscription {s:?}");
    }
    println!("stats {:?}", sim.stats());
    let violations = sim.violations();
    for v in &violations {
        println!("VIOLATION {v}");
    }
    sim.shutdown().await;
    std::process::exit(i32::from(failed || !violations.is_empty()));
}
