//! Benchmark: does big user input hold up anyone else? Measures an unrelated `fn_hello`
//! call's latency (one call at a time) with nothing else running, then while two incidents
//! with 10 MB descriptions go through fn_trustar (report body) and two 10 MB rich texts through
//! fn_slack (message); prints both latency sets, how long the big work took, and whether the
//! host kept its STOMP connection (a missed heart-beat makes the broker drop it).
//!
//! ```text
//! cargo build --release -p host -p e2e
//! target/release/big_input_bench
//! ```
//! The host is the `host` binary (a separate process); the simulated platform and the Slack
//! and TruSTAR emulators run in this process. Bounded by count (`-n`) and time
//! (`--max-seconds`).

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Parser;
use e2e::{HostArgs, percentile};
use serde_json::json;
use slack_emulator::{SlackConfig, SlackEmulator};
use soar_engine::testkit::{customize_sim, definitions_of};
use soar_sim::{Invocation, Sim, SimConfig};
use trustar_emulator::{TrustarConfig, TrustarEmulator};

// Linked for their customizations (pushed to the simulated platform).
use fn_hello as _;
use fn_slack as _;
use fn_trustar as _;

#[derive(Debug, Parser)]
#[command(about = "An unrelated invocation's latency while megabytes of input are processed")]
struct Args {
    /// fn_hello calls measured in each phase.
    #[arg(short = 'n', long, default_value_t = 200)]
    calls: usize,
    /// Size of each big description / rich text, in MB.
    #[arg(long, default_value_t = 10)]
    mb: usize,
    /// Incidents with a big description (each becomes a TruSTAR report).
    #[arg(long, default_value_t = 2)]
    incidents: usize,
    /// Big rich texts posted to Slack.
    #[arg(long, default_value_t = 2)]
    slack_texts: usize,
    /// Give up after this long.
    #[arg(long, default_value_t = 300)]
    max_seconds: u64,
    #[command(flatten)]
    host: HostArgs,
}

/// `n` sequential fn_hello calls: when each started (since `since`) and its latency, in call
/// order.
async fn hello_calls(
    sim: &Sim,
    n: usize,
    since: Instant,
    until: Instant,
) -> anyhow::Result<Vec<(Duration, Duration)>> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        if Instant::now() > until {
            bail!("stopped (--max-seconds)");
        }
        let t = Instant::now();
        let inv = sim
            .invoke("fn_hello", json!({"hello_text": format!("probe {i}")}))
            .await?;
        let reply = inv.final_reply(Duration::from_secs(120)).await?;
        anyhow::ensure!(
            reply.message_type == 0,
            "fn_hello failed: {}",
            reply.message
        );
        out.push((t - since, t.elapsed()));
    }
    Ok(out)
}

fn sorted_latencies(calls: &[(Duration, Duration)]) -> Vec<Duration> {
    let mut l: Vec<Duration> = calls.iter().map(|c| c.1).collect();
    l.sort();
    l
}

fn show(label: &str, l: &[Duration]) {
    println!(
        "{label:<28} p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({} calls)",
        percentile(l, 0.50).as_secs_f64() * 1e3,
        percentile(l, 0.99).as_secs_f64() * 1e3,
        l.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
        l.len()
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    args.host.binary()?; // fails early when it was not built
    let until = Instant::now() + Duration::from_secs(args.max_seconds);
    let sim = Sim::start(SimConfig::default()).await?;
    let trustar = TrustarEmulator::start(TrustarConfig::default()).await?;
    let slack = SlackEmulator::start(SlackConfig::default()).await?;
    for name in ["fn_hello", "fn_slack", "fn_trustar"] {
        customize_sim(&sim, &definitions_of(name)?).await?;
    }
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("app.config");
    std::fs::write(
        &config,
        format!(
            "{}loglevel = WARNING\nlogdir = {}\n{}\n\n\
             [trustar]\nqueue = trustar\n\n\
             [trustar_soc]\nurl = {}/\nuser_api_key = {}\nuser_api_secret = {}\n\
             enclave_ids_for_submission = {}\nworkspace = Default workspace\n\
             auto_submission = enable\n\n\
             [fn_slack]\napi_token = {}\nusername = Resilient\nchannel = incidents\napi_url = {}\n",
            sim.app_config(),
            dir.path().display(),
            args.host.journal_setting(),
            trustar.url(),
            trustar.api_key(),
            trustar.api_secret(),
            trustar.enclave_ids()[0],
            slack.token(),
            slack.api_url(),
        ),
    )?;
    let mut child = args.host.spawn(&config, dir.path())?;
    for queue in ["fn_hello", "trustar", "slack"] {
        let queue = format!("actions.{}.{queue}", sim.org_id());
        sim.wait_subscribed(&queue, Duration::from_secs(30)).await?;
    }
    let connections = sim.stats().connections_accepted;

    let quiet = sorted_latencies(&hello_calls(&sim, args.calls, Instant::now(), until).await?);

    // Two incidents with big descriptions (fn_trustar's CaseCreated builds their reports) and
    // two big rich texts for Slack, all in flight while fn_hello is measured again.
    let size = args.mb * 1_000_000;
    let started = Instant::now();
    let mut incidents = Vec::new();
    for i in 0..args.incidents {
        let description = format!("<p>{}</p>", "<b>big</b> &amp; ".repeat(size / 17));
        let incident =
            sim.create_incident(json!({"name": format!("big {i}"), "description": description}))?;
        incidents.push(incident["id"].as_i64().context("incident id")?);
    }
    let mut posts: Vec<Invocation> = Vec::new();
    for _ in 0..args.slack_texts {
        let text = format!("<div>{}</div>", "<p>word &amp; word</p>".repeat(size / 22));
        posts.push(
            sim.invoke(
                "slack_post_message",
                json!({"slack_channel": "incidents", "slack_text": text}),
            )
            .await?,
        );
    }
    let loaded_calls = hello_calls(&sim, args.calls, started, until).await?;
    let loaded = sorted_latencies(&loaded_calls);
    for post in &posts {
        let reply = post.final_reply(Duration::from_secs(120)).await?;
        anyhow::ensure!(
            reply.message_type == 0,
            "Slack post failed: {}",
            reply.message
        );
    }
    for id in &incidents {
        let ext = format!("RESILIENT{id}");
        while trustar.report_by_external_id(&ext).is_none() {
            if Instant::now() > until {
                bail!("no report for incident {id} (--max-seconds)");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let big_work = started.elapsed();
    let kept = sim.stats().connections_accepted == connections;
    let _ = child.start_kill();
    let _ = child.wait().await;

    let mut slowest = loaded_calls.clone();
    slowest.sort_by_key(|c| std::cmp::Reverse(c.1));
    show("fn_hello alone:", &quiet);
    show("fn_hello beside big input:", &loaded);
    println!(
        "growth:                      p50 {:+.2} ms, p99 {:+.2} ms",
        (percentile(&loaded, 0.5).as_secs_f64() - percentile(&quiet, 0.5).as_secs_f64()) * 1e3,
        (percentile(&loaded, 0.99).as_secs_f64() - percentile(&quiet, 0.99).as_secs_f64()) * 1e3,
    );
    println!(
        "slowest beside big input:    {}",
        slowest
            .iter()
            .take(5)
            .map(|(at, l)| format!(
                "{:.1} ms (started at +{:.0} ms)",
                l.as_secs_f64() * 1e3,
                at.as_secs_f64() * 1e3
            ))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "big input:                   {} reports + {} Slack messages of {} MB each done in {:.2} s",
        args.incidents,
        args.slack_texts,
        args.mb,
        big_work.as_secs_f64()
    );
    println!(
        "STOMP connection:            {}",
        if kept {
            "kept (no heart-beat missed)"
        } else {
            "DROPPED (heart-beats missed?)"
        }
    );
    if !sim.violations().is_empty() {
        println!("protocol violations: {:?}", sim.violations());
    }
    Ok(())
}
