//! Shared pieces of the end-to-end tests and the benchmark: a probe function that counts runs
//! and concurrency, the external ActiveMQ broker settings, a broker of a test's own that it may
//! restart, and a TCP proxy that can cut every connection (to drop a real broker's connection
//! mid-load).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use soar_engine::LoadedComponent;
use soar_engine::testkit::adhoc;
use soar_sdk::{Component, Context, FunctionError, FunctionResult, Inputs};
use soar_sim::{BrokerMode, ExternalBroker, SimConfig};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub mod scenarios;

/// Counts how often each id ran and how many runs overlapped.
#[derive(Debug, Default)]
pub struct Probe {
    running: AtomicUsize,
    max_running: AtomicUsize,
    runs: Mutex<HashMap<String, usize>>,
}

impl Probe {
    pub fn max_running(&self) -> usize {
        self.max_running.load(Ordering::SeqCst)
    }

    /// How many times each id ran.
    pub fn runs(&self) -> HashMap<String, usize> {
        self.runs.lock().map(|m| m.clone()).unwrap_or_default()
    }

    async fn call(&self, ctx: Context, inputs: Inputs) -> Result<FunctionResult, FunctionError> {
        let id = inputs.required_str("probe_id")?.to_string();
        let delay = inputs.i64("probe_delay_ms")?.unwrap_or(0);
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_running.fetch_max(now, Ordering::SeqCst);
        ctx.status(format!("probe {id} running")).await;
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay as u64)).await;
        }
        if let Ok(mut runs) = self.runs.lock() {
            *runs.entry(id.clone()).or_default() += 1;
        }
        self.running.fetch_sub(1, Ordering::SeqCst);
        Ok(FunctionResult::new(json!({ "probe_id": id })))
    }
}

/// The probe's platform objects.
pub const PROBE_YAML: &str = r#"
message_destinations:
  - name: probe
functions:
  - name: probe_fn
    destination: probe
    inputs:
      - {name: probe_id, type: text}
      - {name: probe_delay_ms, type: number}
"#;

/// A component serving `probe_fn`, backed by `probe`.
pub fn probe_component(probe: Arc<Probe>) -> LoadedComponent {
    adhoc(
        "probe",
        Component::new().function("probe_fn", move |ctx, inputs| {
            let probe = probe.clone();
            async move { probe.call(ctx, inputs).await }
        }),
        PROBE_YAML,
    )
}

/// The real ActiveMQ broker that `.ci/run` starts, from `SOAR_TEST_ACTIVEMQ_*`.
#[derive(Debug, Clone)]
pub struct ActiveMq {
    pub host: String,
    pub port: u16,
    pub cafile: String,
    pub login: String,
    pub passcode: String,
}

impl ActiveMq {
    /// The broker's settings, or `None` when it is not configured. With
    /// `SOAR_TEST_REQUIRE_EXTERNAL=1` (CI) a missing broker is a test failure, not a skip.
    pub fn from_env() -> Option<ActiveMq> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let found = (|| {
            Some(ActiveMq {
                host: var("SOAR_TEST_ACTIVEMQ_HOST")?,
                port: var("SOAR_TEST_ACTIVEMQ_PORT")?.parse().ok()?,
                cafile: var("SOAR_TEST_ACTIVEMQ_CAFILE")?,
                login: var("SOAR_TEST_ACTIVEMQ_LOGIN")?,
                passcode: var("SOAR_TEST_ACTIVEMQ_PASSCODE")?,
            })
        })();
        if found.is_none() {
            if var("SOAR_TEST_REQUIRE_EXTERNAL").as_deref() == Some("1") {
                panic!(
                    "SOAR_TEST_REQUIRE_EXTERNAL=1 but SOAR_TEST_ACTIVEMQ_HOST/PORT/CAFILE/LOGIN/PASSCODE \
                     are not all set: start the broker with scripts/activemq.sh"
                );
            }
            eprintln!(
                "skipped: no ActiveMQ configured (SOAR_TEST_ACTIVEMQ_*); run .ci/run to test against it"
            );
        }
        found
    }

    /// TLS trusting this broker's CA.
    fn tls(&self) -> Arc<rustls::ClientConfig> {
        soar_tls::client_config(&soar_tls::CaSource::File(self.cafile.clone().into()))
            .expect("ActiveMQ CA file")
    }

    /// A STOMP client's settings for this broker (TLS with its CA, its credentials).
    pub fn client_config(&self) -> soar_stomp::ClientConfig {
        let mut config = soar_stomp::ClientConfig::new(self.host.clone(), self.port);
        config.tls = Some(self.tls());
        config.server_name = Some("localhost".into());
        config.login = Some(self.login.clone());
        config.passcode = Some(self.passcode.clone());
        config
    }

    /// A simulated platform that uses this broker (through `via` port if given, e.g. a proxy),
    /// with its own org id so that tests sharing the broker never see each other's queues.
    pub fn sim_config(&self, via: Option<u16>) -> SimConfig {
        let org_id = 10_000 + (std::process::id() as i64 % 1000) * 100 + unique() as i64;
        SimConfig {
            org_id,
            api_key_id: self.login.clone(),
            api_key_secret: self.passcode.clone(),
            broker: BrokerMode::External(ExternalBroker {
                host: self.host.clone(),
                port: via.unwrap_or(self.port),
                tls: Some(self.tls()),
                server_name: Some("localhost".into()),
                login: Some(self.login.clone()),
                passcode: Some(self.passcode.clone()),
                cafile: Some(self.cafile.clone().into()),
            }),
            ..SimConfig::default()
        }
    }
}

/// An ActiveMQ of one test's own, started with `scripts/activemq.sh` on free loopback ports in
/// a temporary directory, so that the test may restart it; stopped when dropped. Found where the
/// shared broker is (the Debian package that `.ci/run` installs).
#[derive(Debug)]
pub struct OwnActiveMq {
    pub broker: ActiveMq,
    dir: tempfile::TempDir,
    ports: (u16, u16),
    persistent: bool,
}

impl OwnActiveMq {
    /// Starts a broker; `persistent` keeps persistent messages (KahaDB) across restarts. `None`
    /// where no ActiveMQ is configured for the tests (skipped, as with [`ActiveMq::from_env`]).
    pub fn start(persistent: bool) -> Option<OwnActiveMq> {
        let shared = ActiveMq::from_env()?;
        let free = || {
            std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map(|a| a.port())
                .expect("a free port")
        };
        let dir = tempfile::tempdir().expect("temporary directory");
        let ports = (free(), free());
        let own = OwnActiveMq {
            broker: ActiveMq {
                port: ports.1,
                cafile: dir
                    .path()
                    .join("conf/broker-cert.pem")
                    .display()
                    .to_string(),
                ..shared
            },
            dir,
            ports,
            persistent,
        };
        own.script("start").unwrap();
        Some(own)
    }

    fn script(&self, command: &str) -> Result<(), String> {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/activemq.sh");
        let out = std::process::Command::new("bash")
            .arg(script)
            .args([command, &self.dir.path().display().to_string()])
            .env("ACTIVEMQ_STOMP_PORT", self.ports.0.to_string())
            .env("ACTIVEMQ_STOMP_SSL_PORT", self.ports.1.to_string())
            .env("ACTIVEMQ_PERSISTENT", self.persistent.to_string())
            .output()
            .map_err(|e| format!("bash scripts/activemq.sh: {e}"))?;
        if out.status.success() {
            return Ok(());
        }
        Err(format!(
            "activemq.sh {command}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }

    /// Stops the broker as `systemctl restart` would (SIGTERM, waited for) and starts it
    /// again on the same ports and data.
    pub fn restart(&self) {
        self.script("stop").unwrap();
        self.script("start").unwrap();
    }
}

impl Drop for OwnActiveMq {
    fn drop(&mut self) {
        if let Err(e) = self.script("stop") {
            eprintln!("{e}");
        }
    }
}

/// The benchmarks' options for the host they start.
#[derive(Debug, clap::Args)]
pub struct HostArgs {
    /// The host binary (default: `host` next to this binary).
    #[arg(long)]
    pub host_bin: Option<PathBuf>,
    /// Run the host without its durable journal (`journal_path = false`), to measure its cost.
    #[arg(long)]
    pub no_journal: bool,
}

impl HostArgs {
    /// The host binary, which must have been built.
    pub fn binary(&self) -> anyhow::Result<PathBuf> {
        let path = match &self.host_bin {
            Some(p) => p.clone(),
            None => std::env::current_exe()?.with_file_name("host"),
        };
        if !path.exists() {
            anyhow::bail!(
                "{} not found: build it first (cargo build --release -p host -p e2e)",
                path.display()
            );
        }
        Ok(path)
    }

    /// `host run --config-file config` with its lock file (and so its journal) in `home`; its
    /// stderr goes to ours. Killed when dropped.
    pub fn spawn(
        &self,
        config: &std::path::Path,
        home: &std::path::Path,
    ) -> anyhow::Result<tokio::process::Child> {
        use anyhow::Context as _;
        let bin = self.binary()?;
        tokio::process::Command::new(&bin)
            .args(["run", "--config-file"])
            .arg(config)
            .env("APP_LOCK_FILE", home.join("lock"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))
    }

    /// The `[resilient]` line that turns the journal off, if asked.
    pub fn journal_setting(&self) -> &'static str {
        if self.no_journal {
            "journal_path = false\n"
        } else {
            ""
        }
    }
}

/// The `p` quantile (0.0–1.0) of sorted durations; zero for none.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn unique() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    NEXT.fetch_add(1, Ordering::SeqCst) % 100
}

/// A TCP proxy to `target` whose connections can all be cut at once.
#[derive(Debug)]
pub struct TcpProxy {
    pub port: u16,
    cut: watch::Sender<u64>,
}

impl TcpProxy {
    pub async fn start(target: SocketAddr) -> std::io::Result<TcpProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let (cut, _) = watch::channel(0u64);
        let cut_tx = cut.clone();
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let mut cut_rx = cut_tx.subscribe();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(target).await else {
                        return;
                    };
                    let _ = inbound.set_nodelay(true);
                    let _ = outbound.set_nodelay(true);
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut_rx.changed() => {}
                    }
                });
            }
        });
        Ok(TcpProxy { port, cut })
    }

    /// Closes every connection open through the proxy.
    pub fn cut_all(&self) {
        self.cut.send_modify(|n| *n += 1);
    }
}
