//! Benchmark: runs N invocations of `fn_hello` through the `host` binary (a separate process)
//! and the simulated platform, and prints throughput, latency p50/p99, the host's start-up time
//! to first subscription, and its resident memory idle and at peak.
//!
//! ```text
//! cargo build --release -p host -p e2e
//! target/release/bench -n 5000 --concurrency 200 --workers 50
//! ```
//! Bounded by count (`-n`) and time (`--max-seconds`).

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Parser;
use e2e::{HostArgs, percentile};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use serde_json::json;
use soar_sim::{Sim, SimConfig};

#[derive(Debug, Parser)]
#[command(about = "Throughput, latency, start-up time and memory of the host binary")]
struct Args {
    /// Number of invocations.
    #[arg(short = 'n', long, default_value_t = 5000)]
    invocations: usize,
    /// Invocations outstanding at once.
    #[arg(long, default_value_t = 200)]
    concurrency: usize,
    /// The host's num_workers.
    #[arg(long, default_value_t = 50)]
    workers: usize,
    /// fn_hello's simulated work per call (hello_delay_ms).
    #[arg(long, default_value_t = 0)]
    delay_ms: u64,
    /// Give up after this long.
    #[arg(long, default_value_t = 120)]
    max_seconds: u64,
    #[command(flatten)]
    host: HostArgs,
}

fn rss_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    args.host.binary()?; // fails early when it was not built
    let deadline = Instant::now() + Duration::from_secs(args.max_seconds);
    let sim = Sim::start(SimConfig::default()).await?;
    soar_engine::testkit::customize_sim(
        &sim,
        &soar_engine::testkit::definitions_of(fn_hello::NAME)?,
    )
    .await?;
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("app.config");
    std::fs::write(
        &config,
        format!(
            "{}num_workers = {}\nloglevel = WARNING\nlogdir = {}\n{}\n{}",
            sim.app_config(),
            args.workers,
            dir.path().display(),
            args.host.journal_setting(),
            "[fn_hello]\nmax_delay_ms = 60000\n"
        ),
    )?;

    let spawned = Instant::now();
    let mut child = args.host.spawn(&config, dir.path())?;
    let pid = child.id().context("host pid")?;
    let queue = format!("actions.{}.fn_hello", sim.org_id());
    sim.wait_subscribed(&queue, Duration::from_secs(30)).await?;
    let startup = spawned.elapsed();
    // Let start-up allocations settle before reading the idle figure.
    let _ = tokio::time::timeout(Duration::from_millis(300), child.wait()).await;
    let idle_rss = rss_kib(pid, "VmRSS:").unwrap_or(0);

    let started = Instant::now();
    let mut latencies = Vec::with_capacity(args.invocations);
    let mut pending = FuturesUnordered::new();
    let mut sent = 0usize;
    let mut errors = 0usize;
    while latencies.len() + errors < args.invocations {
        if Instant::now() > deadline {
            bail!("stopped after {} s (--max-seconds)", args.max_seconds);
        }
        while sent < args.invocations && pending.len() < args.concurrency {
            let sim = sim.clone();
            let inputs =
                json!({"hello_text": format!("bench {sent}"), "hello_delay_ms": args.delay_ms});
            sent += 1;
            pending.push(async move {
                let t = Instant::now();
                let inv = sim.invoke("fn_hello", inputs).await?;
                let reply = inv.final_reply(Duration::from_secs(60)).await?;
                anyhow::Ok((t.elapsed(), reply.message_type))
            });
        }
        match pending.next().await {
            Some(Ok((latency, 0))) => latencies.push(latency),
            Some(Ok((_, _))) => errors += 1,
            Some(Err(e)) => return Err(e),
            None => break,
        }
    }
    let elapsed = started.elapsed();
    let peak_rss = rss_kib(pid, "VmHWM:").unwrap_or(0);
    let cpu = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let f: Vec<&str> = s.rsplit(')').next()?.split_whitespace().collect();
            Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
        })
        .unwrap_or(0);
    let _ = child.start_kill();
    let _ = child.wait().await;

    latencies.sort();
    let ok = latencies.len();
    println!("invocations:        {ok} ok, {errors} errors");
    println!(
        "settings:           concurrency {}, num_workers {}, hello_delay_ms {}",
        args.concurrency, args.workers, args.delay_ms
    );
    println!(
        "throughput:         {:.0} invocations/s ({:.2} s)",
        ok as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64()
    );
    println!(
        "latency:            p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        percentile(&latencies, 0.50).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        latencies.last().copied().unwrap_or_default().as_secs_f64() * 1e3
    );
    println!(
        "host start-up:      {} ms to first subscription",
        startup.as_millis()
    );
    println!(
        "host memory:        {:.1} MiB idle (VmRSS), {:.1} MiB peak (VmHWM)",
        idle_rss as f64 / 1024.0,
        peak_rss as f64 / 1024.0
    );
    println!(
        "host CPU:           {:.2} s user+system ({:.3} ms per invocation)",
        cpu as f64 / 100.0,
        cpu as f64 * 10.0 / ok.max(1) as f64
    );
    if sim.violations().is_empty() {
        println!("protocol:           no violations seen by the simulated platform");
    } else {
        println!("protocol violations: {:?}", sim.violations());
    }
    Ok(())
}
