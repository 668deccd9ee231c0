//! `host demo`: the README's first command. With no platform to talk to, it starts the simulated
//! platform in-process, runs this host against it over real TLS sockets, invokes every linked
//! component's example functions and prints what happened.

use std::time::{Duration, Instant};

use soar_sdk::app;
use soar_sdk::config::{AppConfig, ResilientOptions};
use soar_sdk::customize;
use soar_sdk::rest::RestClient;
use soar_sim::{InvocationEvent, Sim, SimConfig};

use super::report;

const WAIT: Duration = Duration::from_secs(30);

pub async fn run(repeat: usize) -> i32 {
    match demo(repeat).await {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e:#}");
            1
        }
    }
}

async fn demo(repeat: usize) -> anyhow::Result<()> {
    crate::logging::init(&crate::logging::LogSettings {
        level: "WARNING".into(),
        file: None,
        max_bytes: 0,
        backups: 0,
        secrets: Vec::new(),
    });
    let t0 = Instant::now();
    let sim = Sim::start(SimConfig::default()).await?;
    println!(
        "simulated platform: REST https://localhost:{} and STOMP+TLS localhost:{} (org {}), CA {}",
        sim.rest_port(),
        sim.stomp_port(),
        sim.org_id(),
        sim.ca_file().display()
    );
    let dir = tempfile_dir()?;
    let path = dir.join("app.config");
    let mut text = sim.app_config();
    text.push_str("num_workers = 10\n");
    for reg in soar_sdk::registered() {
        text.push('\n');
        text.push_str(reg.default_config);
    }
    std::fs::write(&path, &text)?;
    let config = AppConfig::load(&path)?;
    let components = app::load_components(&config, &[], &[]).inspect_err(|e| report("", e))?;
    if components.is_empty() {
        anyhow::bail!(
            "no components are linked into this host: build it with a function crate feature"
        );
    }
    // Set up the platform as an operator would: `host customize -y`.
    let definitions = customize::merged(components.iter().filter_map(|c| c.definitions.clone()))?;
    let opts = ResilientOptions::from_config(&config)?;
    let rest = RestClient::connect(app::rest_config(&opts)?).await?;
    let started = Instant::now();
    customize::push(&rest, &definitions, |_| true, &mut |line| {
        for l in line.lines() {
            println!("customize: {l}");
        }
    })
    .await?;
    println!("customize: done in {} ms", started.elapsed().as_millis());
    let mut examples = Vec::new();
    for c in &components {
        for (function, inputs) in c.component.examples() {
            examples.push((c.name.clone(), function.clone(), inputs.clone()));
        }
        println!(
            "component {} {}: functions {}",
            c.name,
            c.version,
            c.component.function_names().join(", ")
        );
    }

    let started = Instant::now();
    let mut host = app::spawn(config, components);
    let queues = host.ready(WAIT).await?;
    println!(
        "host: logged in and subscribed to {} in {} ms",
        queues.join(", "),
        started.elapsed().as_millis()
    );

    for round in 1..=repeat {
        for (n, (_, function, inputs)) in examples.iter().enumerate() {
            invoke(&sim, function, inputs.clone(), round, n + 1).await?;
        }
    }

    host.stop().await?;
    let stats = sim.stats();
    println!(
        "done in {} ms: {} message(s) delivered, {} acknowledged; protocol violations seen by the platform: {}",
        t0.elapsed().as_millis(),
        stats.delivered,
        stats.acked,
        sim.violations().len()
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

async fn invoke(
    sim: &Sim,
    function: &str,
    inputs: serde_json::Value,
    round: usize,
    n: usize,
) -> anyhow::Result<()> {
    println!("\n[{round}.{n}] invoke {function} with {inputs}");
    let started = Instant::now();
    let invocation = sim.invoke(function, inputs).await?;
    loop {
        match invocation.next_event(WAIT).await? {
            InvocationEvent::Status(r) => {
                println!(
                    "  {:>5} ms  status: {}",
                    started.elapsed().as_millis(),
                    r.message
                )
            }
            InvocationEvent::Final(r) => {
                let kind = if r.message_type == 0 {
                    "result"
                } else {
                    "ERROR"
                };
                println!(
                    "  {:>5} ms  {kind}: {}",
                    started.elapsed().as_millis(),
                    r.message
                );
                if let Some(results) = &r.results {
                    println!(
                        "            content: {}",
                        results.get("content").unwrap_or(results)
                    );
                }
            }
            InvocationEvent::Acked => {
                println!("  {:>5} ms  acknowledged", started.elapsed().as_millis());
                return Ok(());
            }
            _ => {}
        }
    }
}

fn tempfile_dir() -> std::io::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("soar-host-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
