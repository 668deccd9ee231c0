//! Fault injection against the `host` process and the simulated platform: SIGKILL at random
//! points under load, SIGKILL after the broker applied final replies whose RECEIPTs it held
//! back, and three hosts on one queue with one of them killed mid-load. Every case asserts on
//! what the platform saw: exactly one final reply per invocation, every message acknowledged,
//! no protocol violation. Bounded by count and time; waits on events, never on sleeps.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{Setup, WAIT, host, setup};
use serde_json::json;
use soar_sim::{Invocation, InvocationEvent};
use tokio::process::Child;

/// Starts `host run` with `config`, its lock file (and so its journal) in `home`.
fn run_host(home: &Path, config: &Path) -> Child {
    host(home, &["run", "--config-file", config.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// SIGKILL, as `kill -9`, and reaps the process.
async fn kill_9(child: &mut Child) {
    child.start_kill().unwrap();
    tokio::time::timeout(WAIT, child.wait())
        .await
        .unwrap()
        .unwrap();
}

fn finals(inv: &Invocation) -> usize {
    inv.events()
        .iter()
        .filter(|e| matches!(e, InvocationEvent::Final(_)))
        .count()
}

/// A small deterministic generator, so a failing run can be repeated from its printed seed.
struct Rng(u64);
impl Rng {
    fn next(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % below
    }
}

fn seed() -> u64 {
    std::env::var("FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
                | 1
        })
}

/// Invokes fn_hello `n` times with delays below `max_delay_ms`.
async fn invoke_many(s: &Setup, n: usize, rng: &mut Rng, max_delay_ms: u64) -> Vec<Invocation> {
    let mut invocations = Vec::new();
    for i in 0..n {
        let delay = rng.next(max_delay_ms.max(1));
        let inputs = json!({"hello_text": format!("m{i}"), "hello_delay_ms": delay});
        invocations.push(s.sim.invoke("fn_hello", inputs).await.unwrap());
    }
    invocations
}

/// Waits until at least `n` of `invocations` have a final reply (on their own events).
async fn wait_answered(n: usize, invocations: &[Invocation]) {
    let answered = || invocations.iter().filter(|i| finals(i) > 0).count();
    let deadline = Instant::now() + Duration::from_secs(120);
    for inv in invocations {
        if answered() >= n {
            return;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let _ = inv.final_reply(left).await;
    }
    assert!(answered() >= n, "only {} of {n}", answered());
}

/// Every invocation has exactly one final reply and was acknowledged; no violation.
async fn assert_exactly_once(s: &Setup, invocations: &[Invocation]) {
    for inv in invocations {
        inv.final_reply(Duration::from_secs(120))
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", inv.message_id()));
        inv.wait_acked(WAIT).await.unwrap();
    }
    let twice: Vec<_> = invocations
        .iter()
        .filter(|i| finals(i) != 1)
        .map(|i| (i.message_id().to_string(), finals(i)))
        .collect();
    assert!(twice.is_empty(), "final replies per invocation: {twice:?}");
    assert_eq!(s.sim.violations(), Vec::<String>::new());
}

fn log_count(dir: &Path, needle: &str) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .map(|text| text.matches(needle).count())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_points_under_load_loses_and_repeats_nothing() {
    let s = setup("").await;
    let seed = seed();
    let mut rng = Rng(seed);
    let queue = format!("actions.{}.fn_hello", s.sim.org_id());
    let mut child = run_host(s.dir.path(), &s.config);
    s.sim.wait_subscribed(&queue, WAIT).await.unwrap();

    const N: usize = 200;
    const KILLS: usize = 10;
    let invocations = invoke_many(&s, N, &mut rng, 60).await;
    let mut threshold = 0;
    for _ in 0..KILLS {
        threshold = (threshold + 5 + rng.next(12) as usize).min(N - 1);
        wait_answered(threshold, &invocations).await;
        kill_9(&mut child).await;
        s.sim.wait_connections(0, WAIT).await.unwrap();
        child = run_host(s.dir.path(), &s.config);
    }
    assert_exactly_once(&s, &invocations).await;
    let logs = s.dir.path().join("logs");
    let stats = s.sim.stats();
    println!(
        "seed {seed}: {KILLS} kills, {N} invocations, {} deliveries ({} redelivered), \
         {} re-runs after a start, {} replies re-sent from the journal, {} acknowledged only",
        stats.delivered,
        stats.redelivered,
        log_count(&logs, "running it again, marked as a re-run"),
        log_count(&logs, "sending its reply again, not running it"),
        log_count(&logs, "acknowledged, not run again"),
    );
    kill_9(&mut child).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_after_the_broker_applied_replies_but_held_their_receipts() {
    let s = setup("").await;
    let queue = format!("actions.{}.fn_hello", s.sim.org_id());
    // The broker applies each COMMIT (final reply + ACK) but never confirms it.
    s.sim.set_commit_receipt_delay(Duration::from_secs(3600));
    let mut child = run_host(s.dir.path(), &s.config);
    s.sim.wait_subscribed(&queue, WAIT).await.unwrap();
    let mut rng = Rng(7);
    let invocations = invoke_many(&s, 30, &mut rng, 1).await;
    wait_answered(30, &invocations).await;
    for inv in &invocations {
        inv.wait_acked(WAIT).await.unwrap();
    }
    kill_9(&mut child).await;
    s.sim.wait_connections(0, WAIT).await.unwrap();

    s.sim.set_commit_receipt_delay(Duration::ZERO);
    let mut child = run_host(s.dir.path(), &s.config);
    s.sim.wait_subscribed(&queue, WAIT).await.unwrap();
    let after = s
        .sim
        .invoke("fn_hello", json!({"hello_text": "after"}))
        .await
        .unwrap();
    after.final_reply(WAIT).await.unwrap();
    assert_exactly_once(&s, &invocations).await;
    for inv in &invocations {
        assert_eq!(
            inv.deliveries(),
            1,
            "acknowledged at COMMIT: never redelivered"
        );
    }
    kill_9(&mut child).await;
}

/// A copy of `config` with its own log directory, for another host in `home`.
fn host_config(s: &Setup, home: &Path) -> PathBuf {
    std::fs::create_dir_all(home).unwrap();
    let text = std::fs::read_to_string(&s.config).unwrap().replace(
        &s.dir.path().join("logs").display().to_string(),
        &home.join("logs").display().to_string(),
    );
    let path = home.join("app.config");
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hosts_on_one_queue_with_one_killed_mid_load() {
    let s = setup("").await;
    let mut rng = Rng(seed());
    let homes: Vec<PathBuf> = (0..3)
        .map(|i| s.dir.path().join(format!("host{i}")))
        .collect();
    let mut hosts: Vec<Child> = homes
        .iter()
        .map(|home| run_host(home, &host_config(&s, home)))
        .collect();
    s.sim.wait_connections(3, WAIT).await.unwrap();
    let queue = format!("actions.{}.fn_hello", s.sim.org_id());
    let subscribed = || {
        let all = s.sim.subscriptions();
        all.iter().filter(|x| x.destination == queue).count()
    };
    wait_until("three subscriptions", || subscribed() == 3).await;

    const N: usize = 300;
    let invocations = invoke_many(&s, N, &mut rng, 20).await;
    wait_answered(N / 3, &invocations).await;
    kill_9(&mut hosts[1]).await;
    assert_exactly_once(&s, &invocations).await;
    let stats = s.sim.stats();
    println!(
        "3 hosts, one killed after {} of {N}: {} deliveries ({} redelivered)",
        N / 3,
        stats.delivered,
        stats.redelivered
    );
    for mut h in hosts {
        kill_9(&mut h).await;
    }
}

/// Waits (bounded) until `check` holds, for state that has no event to wait on.
async fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_while_slack_answers_posts_each_message_once() {
    let slack = slack_emulator::SlackEmulator::start(Default::default())
        .await
        .unwrap();
    let section = format!(
        "\n[fn_slack]\napi_token = {}\nusername = Resilient\nchannel = incidents\napi_url = {}\n",
        slack.token(),
        slack.api_url()
    );
    let s = setup(&section).await;
    let queue = format!("actions.{}.slack", s.sim.org_id());
    // Slack posts each message but the host never hears back before it is killed.
    slack.hold_answers("chat.postMessage", Duration::from_secs(3600));
    let mut child = run_host(s.dir.path(), &s.config);
    s.sim.wait_subscribed(&queue, WAIT).await.unwrap();
    let mut invocations = Vec::new();
    for i in 0..3 {
        let inputs = json!({"slack_channel": "incidents", "slack_text": format!("update {i}")});
        invocations.push(s.sim.invoke("slack_post_message", inputs).await.unwrap());
    }
    let posted = || slack.channel("incidents").map_or(0, |c| c.messages.len());
    wait_until("three posts", || posted() == 3).await;
    kill_9(&mut child).await;
    s.sim.wait_connections(0, WAIT).await.unwrap();

    slack.hold_answers("chat.postMessage", Duration::ZERO);
    let mut child = run_host(s.dir.path(), &s.config);
    for inv in &invocations {
        let reply = inv.final_reply(WAIT).await.unwrap();
        assert_eq!(reply.message_type, 0, "{}", reply.message);
        let ts = reply.results.unwrap()["content"]["ts"].clone();
        let channel = slack.channel("incidents").unwrap();
        assert!(
            channel.messages.iter().any(|m| json!(m.ts) == ts),
            "the reply names the message the first run posted: {ts}"
        );
    }
    assert_eq!(posted(), 3, "{}", slack.transcript());
    assert_exactly_once(&s, &invocations).await;
    assert_eq!(slack.request_count("chat.postMessage"), 3);
    println!(
        "killed mid chat.postMessage: 3 invocations re-run, {} history lookups, 0 posted twice",
        slack.request_count("conversations.history")
    );
    kill_9(&mut child).await;
}
