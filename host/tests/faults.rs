//! Fault injection against the `host` process and the simulated platform: SIGKILL at random
//! points under load, SIGKILL after the broker applied final replies whose RECEIPTs it held
//! back, three hosts on one queue with one of them killed mid-load, and restarts of the
//! platform and its broker (queues kept in its state file) under load. Every case asserts on
//! what the platform saw: exactly one final reply per invocation, every message acknowledged,
//! no protocol violation. Bounded by count and time; waits on events, never on sleeps.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;
use soar_sim::{Invocation, SimConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_points_under_load_loses_and_repeats_nothing() {
    let s = setup("").await;
    let seed = seed();
    let mut rng = Rng(seed);
    let mut child = run_host_on_fn_hello(&s).await;

    const N: usize = 200;
    const KILLS: usize = 10;
    let invocations = invoke_many(&s, N, &mut rng, 60).await;
    at_random_points(&mut rng, KILLS, &invocations, async || {
        kill_9(&mut child).await;
        s.sim.wait_connections(0, WAIT).await.unwrap();
        child = run_host(s.dir.path(), &s.config);
    })
    .await;
    assert_exactly_once(&s, &invocations).await;
    let logs = s.dir.path().join("logs");
    let stats = s.sim.stats();
    println!(
        "seed {seed}: {KILLS} kills, {N} invocations, {} deliveries ({} redelivered), {}",
        stats.delivered,
        stats.redelivered,
        journal_counts(&logs),
    );
    kill_9(&mut child).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_after_the_broker_applied_replies_but_held_their_receipts() {
    let s = setup("").await;
    let queue = format!("actions.{}.fn_hello", s.sim.org_id());
    // The broker applies each COMMIT (final replies + ACKs) but never confirms it. The host
    // has one transaction in flight per connection: the others wait behind it.
    s.sim.set_commit_receipt_delay(Duration::from_secs(3600));
    let mut child = run_host(s.dir.path(), &s.config);
    s.sim.wait_subscribed(&queue, WAIT).await.unwrap();
    let mut rng = Rng(7);
    let invocations = invoke_many(&s, 30, &mut rng, 1).await;
    wait_answered(1, &invocations).await;
    let applied: Vec<&Invocation> = invocations.iter().filter(|i| finals(i) > 0).collect();
    for inv in &applied {
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
    let applied_count = applied.len();
    for inv in applied {
        assert_eq!(
            inv.deliveries(),
            1,
            "acknowledged at COMMIT: never redelivered"
        );
    }
    let logs = s.dir.path().join("logs");
    println!(
        "receipts held, killed: {applied_count} of 30 applied unconfirmed, {}",
        journal_counts(&logs)
    );
    kill_9(&mut child).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hosts_on_one_queue_with_one_killed_mid_load() {
    let s = setup("").await;
    let mut rng = Rng(seed());
    let (_, mut hosts) = run_hosts(&s, 3);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn platform_restarts_under_load_with_queues_kept_lose_and_repeat_nothing() {
    let state = tempfile::tempdir().unwrap();
    let config = SimConfig {
        api_key_secret: "s3cr3t-api-key-value".into(),
        state_file: Some(state.path().join("sim-state.json")),
        ..SimConfig::default()
    };
    let mut s = setup_on(config, "").await;
    let mut child = run_host_on_fn_hello(&s).await;
    let seed = seed();
    let mut rng = Rng(seed);

    const N: usize = 200;
    const RESTARTS: usize = 5;
    let mut invocations = invoke_many(&s, N, &mut rng, 60).await;
    let mut violations = Vec::new();
    let mut threshold = 0;
    let mut restored = 0;
    for _ in 0..RESTARTS {
        threshold = (threshold + 10 + rng.next(25) as usize).min(N - 1);
        wait_answered(threshold, &invocations).await;
        violations.extend(restart_sim(&mut s).await);
        // What was queued or in flight is on the new broker, with its events so far.
        for inv in invocations.iter_mut() {
            if let Some(again) = s.sim.invocation(inv.correlation_id()) {
                *inv = again;
                restored += 1;
            }
        }
    }
    assert_exactly_once(&s, &invocations).await;
    assert_eq!(violations, Vec::<String>::new());
    let logs = s.dir.path().join("logs");
    let stats = s.sim.stats();
    println!(
        "seed {seed}: {RESTARTS} platform restarts, {N} invocations, {restored} queued or \
         unacknowledged messages carried over (summed over the restarts), {} deliveries since \
         the last start ({} redelivered), {}",
        stats.delivered,
        stats.redelivered,
        journal_counts(&logs),
    );
    kill_9(&mut child).await;
}
