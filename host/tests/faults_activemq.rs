//! Fault injection with a real ActiveMQ as the broker: SIGKILL of the `host` process at random
//! points under load, broker restarts with persistence on (as `systemctl restart activemq`), and
//! three hosts on one queue with one of them killed. The simulated platform publishes the
//! invocations into ActiveMQ and reads the replies there; every case asserts on what it saw:
//! exactly one final reply per invocation, every status reply before it, no protocol violation.
//! Skipped where no ActiveMQ is configured (`SOAR_TEST_ACTIVEMQ_*`, set by `.ci/run`).

mod common;

use common::*;
use e2e::{ActiveMq, OwnActiveMq};

/// A simulated platform on `broker` with fn_hello customized.
async fn setup_mq(broker: &ActiveMq) -> Setup {
    setup_on(broker.sim_config(None), "").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activemq_sigkill_at_random_points_under_load() {
    let Some(mq) = ActiveMq::from_env() else {
        return;
    };
    let s = setup_mq(&mq).await;
    let seed = seed();
    let mut rng = Rng(seed);
    const N: usize = 200;
    const KILLS: usize = 10;
    let invocations = invoke_many(&s, N, &mut rng, 60).await;
    let mut child = run_host(s.dir.path(), &s.config);
    at_random_points(&mut rng, KILLS, &invocations, async || {
        kill_9(&mut child).await;
        child = run_host(s.dir.path(), &s.config);
    })
    .await;
    assert_one_final_reply(&s, &invocations).await;
    let logs = s.dir.path().join("logs");
    println!(
        "ActiveMQ, seed {seed}: {KILLS} kills, {N} invocations, {}",
        journal_counts(&logs)
    );
    kill_9(&mut child).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activemq_restarts_with_persistence_lose_no_reply() {
    let Some(mq) = OwnActiveMq::start(true) else {
        return;
    };
    let s = setup_mq(&mq.broker).await;
    let mut rng = Rng(seed());
    const N: usize = 200;
    const RESTARTS: usize = 10;
    let invocations = invoke_many(&s, N, &mut rng, 60).await;
    let mut child = run_host(s.dir.path(), &s.config);
    at_random_points(&mut rng, RESTARTS, &invocations, async || {
        tokio::task::block_in_place(|| mq.restart());
    })
    .await;
    assert_one_final_reply(&s, &invocations).await;
    assert!(
        child.try_wait().unwrap().is_none(),
        "the host rode out every restart"
    );
    let logs = s.dir.path().join("logs");
    println!(
        "ActiveMQ with persistence: {RESTARTS} restarts, {N} invocations, {} connections \
         lost, {}",
        log_count(&logs, "lost the STOMP connection"),
        journal_counts(&logs)
    );
    kill_9(&mut child).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activemq_three_hosts_on_one_queue_with_one_killed() {
    let Some(mq) = ActiveMq::from_env() else {
        return;
    };
    let s = setup_mq(&mq).await;
    let mut rng = Rng(seed());
    const N: usize = 300;
    let invocations = invoke_many(&s, N, &mut rng, 20).await;
    let (homes, mut hosts) = run_hosts(&s, 3);
    wait_answered(N / 3, &invocations).await;
    kill_9(&mut hosts[1]).await;
    assert_one_final_reply(&s, &invocations).await;
    let served: Vec<usize> = homes
        .iter()
        .map(|h| log_count(&h.join("logs"), "outcome=\"completed\""))
        .collect();
    println!(
        "ActiveMQ, 3 hosts, one killed after {} of {N}: completed per host {served:?}",
        N / 3
    );
    for mut h in hosts {
        kill_9(&mut h).await;
    }
}
