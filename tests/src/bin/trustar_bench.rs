//! Benchmark of fn_trustar's threat service: lookups per second and latency p50/p99 over HTTP
//! (`POST /cts/trustar`) for uncached and then cached artifacts, and the time from an artifact's
//! creation in the simulated platform to its hits being stored.
//!
//! ```text
//! cargo build --release -p e2e --bin trustar_bench
//! target/release/trustar_bench -n 2000 --concurrency 50 -m 200
//! ```
//! The TruSTAR emulator, the simulated platform and the host engine running fn_trustar (through
//! the SDK's test kit) all run in this process. Bounded by count (`-n`, `-m`) and time
//! (`--max-seconds`).

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Parser;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use serde_json::{Value, json};
use soar_engine::testkit::{Run, TestHost, TestOptions};
use soar_sim::ThreatService;
use soar_sim::threat::ThreatLookupOutcome;
use trustar_emulator::{TrustarConfig, TrustarEmulator};

use fn_trustar as _;

#[derive(Debug, Parser)]
#[command(about = "Throughput and latency of fn_trustar's threat service")]
struct Args {
    /// Number of distinct artifacts looked up over HTTP (uncached, then again cached).
    #[arg(short = 'n', long, default_value_t = 2000)]
    lookups: usize,
    /// Lookups outstanding at once.
    #[arg(long, default_value_t = 50)]
    concurrency: usize,
    /// Number of artifacts created in the simulated platform, one after the other.
    #[arg(short = 'm', long, default_value_t = 200)]
    artifacts: usize,
    /// `[custom_threat_service] answer_within_ms`: how long a POST waits for TruSTAR.
    #[arg(long, default_value_t = 5000)]
    answer_within_ms: u64,
    /// Delay the TruSTAR emulator adds to every answer.
    #[arg(long, default_value_t = 0)]
    trustar_delay_ms: u64,
    /// Enable auto_submission, so every created artifact also runs the ArtifactCreated rule
    /// (report update and enrichment) alongside its threat lookup.
    #[arg(long)]
    with_rules: bool,
    /// Give up after this long.
    #[arg(long, default_value_t = 120)]
    max_seconds: u64,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Seeds a priority for every value whose index is 0, 1 or 2 mod 4 (HIGH, MEDIUM, LOW); the
/// rest are unknown to TruSTAR. Returns how many should get a hit.
fn seed(emu: &TrustarEmulator, values: &[String]) -> usize {
    let mut expected = 0;
    for (i, v) in values.iter().enumerate() {
        match i % 4 {
            0 => {
                emu.set_priority(v, Some("IP"), "HIGH");
                expected += 1;
            }
            1 => {
                emu.set_priority(v, Some("IP"), "MEDIUM");
                expected += 1;
            }
            2 => emu.set_priority(v, Some("IP"), "LOW"),
            _ => {}
        }
    }
    expected
}

fn ip(block: u8, i: usize) -> String {
    format!("10.{block}.{}.{}", (i / 250) % 250, i % 250 + 1)
}

fn http() -> anyhow::Result<reqwest::Client> {
    let tls = rustls::ClientConfig::builder_with_provider(soar_tls::provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    Ok(reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(1024)
        .build()?)
}

#[derive(Default)]
struct Round {
    latencies: Vec<Duration>,
    ok_200: usize,
    see_other: usize,
    other: usize,
    hits: usize,
    elapsed: Duration,
}

async fn round(
    c: &reqwest::Client,
    url: &str,
    values: &[String],
    concurrency: usize,
    deadline: Instant,
    max_seconds: u64,
) -> anyhow::Result<Round> {
    let mut r = Round::default();
    let started = Instant::now();
    let mut pending = FuturesUnordered::new();
    let mut next = 0usize;
    let mut done = 0usize;
    while done < values.len() {
        if Instant::now() > deadline {
            bail!("stopped after {max_seconds} s (--max-seconds)");
        }
        while next < values.len() && pending.len() < concurrency {
            let req = c
                .post(url)
                .basic_auth("cts", Some("cts-pass"))
                .json(&json!({"type": "net.ip", "value": values[next]}));
            next += 1;
            pending.push(async move {
                let t = Instant::now();
                let resp = req.send().await?;
                let status = resp.status().as_u16();
                let body: Value = resp.json().await?;
                anyhow::Ok((t.elapsed(), status, body))
            });
        }
        let Some(res) = pending.next().await else {
            break;
        };
        let (latency, status, body) = res?;
        done += 1;
        r.latencies.push(latency);
        match status {
            200 => r.ok_200 += 1,
            303 => r.see_other += 1,
            _ => r.other += 1,
        }
        if body["hits"].as_array().is_some_and(|h| !h.is_empty()) {
            r.hits += 1;
        }
    }
    r.elapsed = started.elapsed();
    r.latencies.sort();
    Ok(r)
}

fn print_round(name: &str, r: &Round) {
    println!(
        "{name:<19} {} lookups in {:.2} s: {:.0} lookups/s; p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        r.latencies.len(),
        r.elapsed.as_secs_f64(),
        r.latencies.len() as f64 / r.elapsed.as_secs_f64(),
        ms(percentile(&r.latencies, 0.50)),
        ms(percentile(&r.latencies, 0.99)),
        ms(r.latencies.last().copied().unwrap_or_default()),
    );
    println!(
        "{:<19} answered 200 on the POST: {}, 303: {}, other: {}; with hits: {}",
        "", r.ok_200, r.see_other, r.other, r.hits
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.lookups > 62_500 || args.artifacts > 62_500 {
        bail!("at most 62500 lookups and 62500 artifacts");
    }
    let deadline = Instant::now() + Duration::from_secs(args.max_seconds);
    let emu = TrustarEmulator::start(TrustarConfig::default()).await?;
    let enclave = emu
        .enclave_ids()
        .first()
        .cloned()
        .context("the emulator has no enclave")?;
    let values: Vec<String> = (0..args.lookups).map(|i| ip(1, i)).collect();
    let art_values: Vec<String> = (0..args.artifacts).map(|i| ip(2, i)).collect();
    let expected_http = seed(&emu, &values);
    let expected_art = seed(&emu, &art_values);
    emu.set_delay(Duration::from_millis(args.trustar_delay_ms));

    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let sections = format!(
        "[trustar]\nqueue = trustar\n\n\
         [trustar_soc]\nurl = {url}/\nuser_api_key = {key}\nuser_api_secret = {secret}\n\
         enclave_ids_for_submission = {enclave}\nenclave_ids_for_query = {enclave}\n\
         workspace = Default workspace\nauto_submission = {auto}\ntag = bench\n\n\
         [trustar_threat_source]\nurl = {url}/\nuser_api_key = {key}\nuser_api_secret = {secret}\n\
         enclave_ids_for_search = {enclave}\n\n\
         [webserver]\nserver = 127.0.0.1\nport = {port}\nsecure = 0\n\n\
         [custom_threat_service]\nurlbase = /cts\ncache_ttl = 600\ncache_size = {cache}\nanswer_within_ms = {within}\n\
         first_retry_secs = 1\nlater_retry_secs = 1\nauth_user = cts\nauth_password = cts-pass\n",
        url = emu.url(),
        key = emu.api_key(),
        secret = emu.api_secret(),
        auto = if args.with_rules { "enable" } else { "disable" },
        within = args.answer_within_ms,
        cache = (args.lookups + args.artifacts + 100).max(10_000),
    );
    let host = TestHost::start_with(
        vec![Run::Registered("fn_trustar")],
        TestOptions {
            sections,
            ..TestOptions::default()
        },
    )
    .await?;
    let url = format!("http://127.0.0.1:{port}/cts/trustar");
    let c = http()?;
    let waiting = Instant::now();
    while c
        .request(reqwest::Method::OPTIONS, &url)
        .basic_auth("cts", Some("cts-pass"))
        .send()
        .await
        .is_err()
    {
        if waiting.elapsed() > Duration::from_secs(10) {
            bail!("the threat service did not start on {url}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    println!(
        "settings:           {} distinct artifacts over HTTP, concurrency {}, answer_within_ms {}, TruSTAR delay {} ms",
        args.lookups, args.concurrency, args.answer_within_ms, args.trustar_delay_ms
    );
    let uncached = round(
        &c,
        &url,
        &values,
        args.concurrency,
        deadline,
        args.max_seconds,
    )
    .await?;
    print_round("uncached:", &uncached);
    let cached = round(
        &c,
        &url,
        &values,
        args.concurrency,
        deadline,
        args.max_seconds,
    )
    .await?;
    print_round("cached:", &cached);
    println!(
        "expected with hits: {expected_http} (HIGH or MEDIUM of {})",
        args.lookups
    );

    // From the simulated platform: artifact created → lookup → hits stored, one at a time.
    let sim = host.sim();
    sim.add_threat_service(ThreatService {
        name: "TruSTAR".to_string(),
        url: url.clone(),
        user: Some("cts".to_string()),
        password: Some("cts-pass".to_string()),
    })?;
    let incident = sim.create_incident(
        json!({"name": "trustar bench", "discovered_date": 1_700_000_000_000_i64}),
    )?;
    let incident_id = incident["id"].as_i64().context("incident id")?;
    if args.with_rules {
        // Let the auto-submission of the incident finish first.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let mut to_stored = Vec::with_capacity(args.artifacts);
    let mut logged = Vec::with_capacity(args.artifacts);
    let mut stored_hits = 0usize;
    let mut failed = 0usize;
    let started = Instant::now();
    for v in &art_values {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            bail!("stopped after {} s (--max-seconds)", args.max_seconds);
        }
        let t = Instant::now();
        let art = sim.add_artifact(incident_id, json!({"type": "IP Address", "value": v}))?;
        sim.wait_threat_lookups_idle(left).await?;
        to_stored.push(t.elapsed());
        let aid = art["id"].as_i64().context("artifact id")?;
        if let Some(l) = sim
            .threat_lookups()
            .into_iter()
            .rev()
            .find(|l| l.artifact_id == aid)
        {
            match l.outcome {
                ThreatLookupOutcome::Completed { hits } => stored_hits += usize::from(hits > 0),
                _ => failed += 1,
            }
            if let Some(f) = l.finished {
                logged.push(Duration::from_millis((f - l.started).max(0) as u64));
            }
        }
    }
    let elapsed = started.elapsed();
    to_stored.sort();
    logged.sort();
    let with_hits = sim
        .artifacts(incident_id)
        .iter()
        .filter(|a| a["hits"].as_array().is_some_and(|h| !h.is_empty()))
        .count();
    println!(
        "artifact → hits:    {} artifacts in {:.2} s; p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms (creation to lookup ended, hits stored)",
        to_stored.len(),
        elapsed.as_secs_f64(),
        ms(percentile(&to_stored, 0.50)),
        ms(percentile(&to_stored, 0.99)),
        ms(to_stored.last().copied().unwrap_or_default()),
    );
    println!(
        "{:<19} lookup log (ms resolution): p50 {} ms, p99 {} ms; lookups with hits {stored_hits}, failed {failed}; artifacts with stored hits {with_hits} (expected {expected_art})",
        "",
        percentile(&logged, 0.50).as_millis(),
        percentile(&logged, 0.99).as_millis(),
    );
    if sim.violations().is_empty() {
        println!("protocol:           no violations seen by the simulated platform");
    } else {
        println!("protocol violations: {:?}", sim.violations());
    }
    host.stop().await?;
    Ok(())
}
