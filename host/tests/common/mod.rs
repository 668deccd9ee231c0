//! What the process tests share: a simulated platform with fn_hello customized by `host
//! customize -y`, and the `host` binary started as an operator starts it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use soar_sim::{Sim, SimConfig};
use tokio::process::{Child, Command};

pub const WAIT: Duration = Duration::from_secs(30);

pub struct Setup {
    pub sim: Sim,
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
}

pub async fn setup(extra: &str) -> Setup {
    let sim = Sim::start(SimConfig {
        api_key_secret: "s3cr3t-api-key-value".into(),
        ..SimConfig::default()
    })
    .await
    .unwrap();
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
