//! What the process tests share: a simulated platform with fn_hello customized by `host
//! customize -y`, the `host` binary started as an operator starts it, and the fault tests'
//! load, kills and exactly-once checks.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use serde_json::json;
use soar_sim::{Invocation, InvocationEvent, Sim, SimConfig};
use tokio::process::{Child, Command};

pub const WAIT: Duration = Duration::from_secs(30);

pub struct Setup {
    pub sim: Sim,
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
}

pub async fn setup(extra: &str) -> Setup {
    setup_on(
        SimConfig {
            api_key_secret: "s3cr3t-api-key-value".into(),
            ..SimConfig::default()
        },
        extra,
    )
    .await
}

/// [`setup`] with a simulated platform of `config` (e.g. one that uses a real ActiveMQ).
pub async fn setup_on(config: SimConfig, extra: &str) -> Setup {
    let sim = Sim::start(config).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("app.config");
    std::fs::write(
        &config,
        format!(
            "{}num_workers = 4\nlogdir = {}\nloglevel = DEBUG\n{extra}\n[fn_hello]\nmax_delay_ms = 5000\n",
            sim.app_config(),
            dir.path().join("logs").display()
        ),
    )
    .unwrap();
    // The platform learns fn_hello's destination, function, fields, rule and workflow from
    // `host customize -y`, as an operator's would.
    customize(dir.path(), &config).await;
    Setup { sim, dir, config }
}

/// `host customize -y` with `config`; panics with its output if it fails.
pub async fn customize(dir: &Path, config: &Path) {
    let out = host(
        dir,
        &["customize", "-y", "--config-file", config.to_str().unwrap()],
    )
    .output()
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn host(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_host"));
    cmd.args(args)
        .env("HOME", dir)
        .env("APP_LOCK_FILE", dir.join("lock"))
        .env_remove("APP_CONFIG_FILE")
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

pub fn sigterm(child: &Child) {
    let pid = child.id().expect("running");
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Starts `host run` with `config`, its lock file (and so its journal) in `home`.
pub fn run_host(home: &Path, config: &Path) -> Child {
    host(home, &["run", "--config-file", config.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Starts `host run` with `s`'s configuration in its directory and waits until it consumes
/// fn_hello's queue.
pub async fn run_host_on_fn_hello(s: &Setup) -> Child {
    let child = run_host(s.dir.path(), &s.config);
    let queue = format!("actions.{}.fn_hello", s.sim.org_id());
    s.sim.wait_subscribed(&queue, WAIT).await.unwrap();
    child
}

/// SIGKILL, as `kill -9`, and reaps the process.
pub async fn kill_9(child: &mut Child) {
    child.start_kill().unwrap();
    tokio::time::timeout(WAIT, child.wait())
        .await
        .unwrap()
        .unwrap();
}

/// Invokes fn_hello with a handler that takes `delay_ms`, and waits until it runs.
pub async fn start_slow(sim: &Sim, text: &str, delay_ms: u64) -> Invocation {
    let inv = sim
        .invoke(
            "fn_hello",
            json!({"hello_text": text, "hello_delay_ms": delay_ms}),
        )
        .await
        .unwrap();
    wait_running(&inv).await;
    inv
}

/// Waits until `inv`'s handler runs (it has sent its first status message).
pub async fn wait_running(inv: &Invocation) {
    loop {
        match inv.next_event(WAIT).await.unwrap() {
            InvocationEvent::Status(_) => return,
            InvocationEvent::Final(r) => panic!("finished before running was seen: {r:?}"),
            _ => {}
        }
    }
}

pub fn finals(inv: &Invocation) -> usize {
    inv.events()
        .iter()
        .filter(|e| matches!(e, InvocationEvent::Final(_)))
        .count()
}

/// A small deterministic generator, so a failing run can be repeated from its printed seed.
pub struct Rng(pub u64);
impl Rng {
    pub fn next(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % below
    }
}

pub fn seed() -> u64 {
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
pub async fn invoke_many(s: &Setup, n: usize, rng: &mut Rng, max_delay_ms: u64) -> Vec<Invocation> {
    let mut invocations = Vec::new();
    for i in 0..n {
        let delay = rng.next(max_delay_ms.max(1));
        let inputs = json!({"hello_text": format!("m{i}"), "hello_delay_ms": delay});
        invocations.push(s.sim.invoke("fn_hello", inputs).await.unwrap());
    }
    invocations
}

/// Waits until at least `n` of `invocations` have a final reply (on their own events).
pub async fn wait_answered(n: usize, invocations: &[Invocation]) {
    let answered = || invocations.iter().filter(|i| finals(i) > 0).count();
    // Whichever are answered first: each wait ends at its invocation's reply (or the deadline).
    let mut replies: FuturesUnordered<_> = invocations
        .iter()
        .map(|i| i.final_reply(Duration::from_secs(120)))
        .collect();
    while answered() < n && replies.next().await.is_some() {}
    assert!(answered() >= n, "only {} of {n}", answered());
}

/// Every invocation has exactly one final reply and was acknowledged; no violation.
pub async fn assert_exactly_once(s: &Setup, invocations: &[Invocation]) {
    for inv in invocations {
        inv.wait_acked(WAIT).await.unwrap();
    }
    assert_one_final_reply(s, invocations).await;
}

/// Every invocation has exactly one final reply (what the platform sees of a real broker,
/// whose ACKs it cannot see); no violation.
pub async fn assert_one_final_reply(s: &Setup, invocations: &[Invocation]) {
    for inv in invocations {
        inv.final_reply(Duration::from_secs(120))
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", inv.message_id()));
    }
    let twice: Vec<_> = invocations
        .iter()
        .filter(|i| finals(i) != 1)
        .map(|i| (i.message_id().to_string(), finals(i)))
        .collect();
    assert!(twice.is_empty(), "final replies per invocation: {twice:?}");
    assert_eq!(s.sim.violations(), Vec::<String>::new());
}

pub fn log_count(dir: &Path, needle: &str) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .map(|text| text.matches(needle).count())
        .sum()
}

/// A copy of `config` with its own log directory, for another host in `home`.
pub fn host_config(s: &Setup, home: &Path) -> PathBuf {
    std::fs::create_dir_all(home).unwrap();
    let text = std::fs::read_to_string(&s.config).unwrap().replace(
        &s.dir.path().join("logs").display().to_string(),
        &home.join("logs").display().to_string(),
    );
    let path = home.join("app.config");
    std::fs::write(&path, text).unwrap();
    path
}

/// Waits (bounded) until `check` holds, for state that has no event to wait on.
pub async fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Injects `faults` faults (`fault`), each once a few more invocations have their final reply.
pub async fn at_random_points(
    rng: &mut Rng,
    faults: usize,
    invocations: &[Invocation],
    mut fault: impl AsyncFnMut(),
) {
    let mut threshold = 0;
    for _ in 0..faults {
        threshold = (threshold + 5 + rng.next(12) as usize).min(invocations.len() - 1);
        wait_answered(threshold, invocations).await;
        fault().await;
    }
}

/// What the hosts logging to `logs` did with redeliveries, for a closing line.
pub fn journal_counts(logs: &Path) -> String {
    format!(
        "{} re-runs after a start, {} replies re-sent from the journal, {} acknowledged only",
        log_count(logs, "running it again, marked as a re-run"),
        log_count(logs, "sending its reply again, not running it"),
        log_count(logs, "acknowledged, not run again"),
    )
}

/// Starts `n` hosts of `s`'s configuration, each with a home (lock file, journal, logs) of its
/// own; returns their homes and processes.
pub fn run_hosts(s: &Setup, n: usize) -> (Vec<PathBuf>, Vec<Child>) {
    let homes: Vec<PathBuf> = (0..n)
        .map(|i| s.dir.path().join(format!("host{i}")))
        .collect();
    let hosts = homes
        .iter()
        .map(|home| run_host(home, &host_config(s, home)))
        .collect();
    (homes, hosts)
}

/// Waits until `port` can be bound on 127.0.0.1 again (a stopped simulator let it go).
pub async fn wait_free(port: u16) {
    wait_until(&format!("port {port} to be free"), || {
        std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
    })
    .await;
}

/// Stops `s`'s simulated platform as a broker is restarted (its connections cut, its state
/// file written) and starts it again on the same state file and ports; returns the violations
/// the stopped one saw.
pub async fn restart_sim(s: &mut Setup) -> Vec<String> {
    let (rest, stomp) = (s.sim.rest_port(), s.sim.stomp_port());
    let config = s.sim.config().clone();
    assert!(
        config.state_file.is_some(),
        "a restart keeps nothing without a state file"
    );
    s.sim.shutdown().await;
    let violations = s.sim.violations();
    wait_free(rest).await;
    wait_free(stomp).await;
    s.sim = Sim::start(config).await.unwrap();
    assert_eq!((s.sim.rest_port(), s.sim.stomp_port()), (rest, stomp));
    violations
}
