//! `host sim` as a process, driven from its HTTP admin interface by this test, with `host run`
//! connected to it as a second process: an incident's manual rule reaches fn_hello and the
//! workflow's note comes back.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const WAIT: Duration = Duration::from_secs(60);

fn host(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_host"));
    cmd.args(args)
        .current_dir(dir)
        .env("HOME", dir)
        .env("APP_LOCK_FILE", dir.join("lock"))
        .env_remove("APP_CONFIG_FILE")
        .kill_on_drop(true);
    cmd
}

/// Reads `host sim`'s output until it is ready; returns (admin base URL, CA file, user, secret).
async fn wait_ready(sim: &mut Child) -> (String, String, String, String) {
    let stdout = sim.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let mut admin = None;
    let read = async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(rest) = line.trim().strip_prefix("admin:") {
                admin = Some(rest.trim().to_string());
            }
            if line.starts_with("Ready.") {
                return;
            }
        }
        panic!("host sim ended before it was ready");
    };
    tokio::time::timeout(WAIT, read)
        .await
        .expect("host sim ready");
    // "curl --cacert CA -u ID:SECRET https://localhost:PORT/sim/admin"
    let admin = admin.expect("the admin line");
    let parts: Vec<&str> = admin.split_whitespace().collect();
    let ca = parts[2].to_string();
    let (user, secret) = parts[4].split_once(':').unwrap();
    (
        parts[5].to_string(),
        ca,
        user.to_string(),
        secret.to_string(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_sim_driven_by_its_admin_interface_with_host_run_connected() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("app.config");
    let mut sim = host(
        dir.path(),
        &["sim", "--write-config", config.to_str().unwrap()],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let (admin, ca, user, secret) = wait_ready(&mut sim).await;

    // An operator's steps: customize, then run.
    common::customize(dir.path(), &config).await;
    let mut run = host(
        dir.path(),
        &["run", "--config-file", config.to_str().unwrap()],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();

    let tls = soar_tls::client_config(&soar_tls::CaSource::File(ca.into())).unwrap();
    let http = reqwest::Client::builder()
        .tls_backend_preconfigured(rustls::ClientConfig::clone(&tls))
        .build()
        .unwrap();
    let call = |method: reqwest::Method, path: &str, body: Option<Value>| {
        let mut req = http
            .request(method, format!("{admin}{path}"))
            .basic_auth(&user, Some(&secret));
        if let Some(b) = body {
            req = req.json(&b);
        }
        async move {
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            let body: Value = resp.json().await.unwrap_or(Value::Null);
            (status, body)
        }
    };
    let (status, incident) = call(
        reqwest::Method::POST,
        "/incidents",
        Some(json!({"name": "Phishing wave"})),
    )
    .await;
    assert!(status < 300, "{status} {incident}");
    let id = incident["id"].as_i64().unwrap();
    let (status, answer) = call(
        reqwest::Method::POST,
        &format!("/incidents/{id}/rules"),
        Some(json!({"rule": "Example: Say hello", "wait_seconds": 30})),
    )
    .await;
    assert!(status < 300, "{status} {answer}");
    let (_, shown) = call(reqwest::Method::GET, &format!("/incidents/{id}"), None).await;
    let notes = shown["notes"].to_string();
    assert!(notes.contains("fn_hello echoed: Phishing wave"), "{shown}");
    // A mistake gets a clear 4xx.
    let (status, _) = call(
        reqwest::Method::POST,
        &format!("/incidents/{id}/rules"),
        Some(json!({"rule": "No such rule"})),
    )
    .await;
    assert!((400..500).contains(&status));

    for child in [&mut run, &mut sim] {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &child.id().unwrap().to_string()])
            .status();
        let status = tokio::time::timeout(WAIT, child.wait())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(status.code(), Some(0));
    }
}

/// `host sim` logs at INFO on stderr (its start line names the REST port and the CA), whatever
/// the other commands' default level.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sim_logs_its_start_on_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let mut sim = host(dir.path(), &["sim"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(sim.stderr.take().unwrap()).lines();
    let found = tokio::time::timeout(WAIT, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.contains("soar-sim started: REST on") {
                return true;
            }
        }
        false
    })
    .await
    .unwrap_or(false);
    sim.kill().await.unwrap();
    assert!(found, "no INFO start line on stderr");
}
