//! `host run` and `host selftest` as separate processes against the simulated platform, as an
//! operator runs them: start-up, an invocation, graceful shutdown on SIGTERM with a message in
//! flight, secrets kept out of the log, and selftest exit codes.

mod common;

use std::process::Stdio;

use common::{WAIT, host, setup, sigterm};
use serde_json::json;
use soar_sim::{Sim, SimConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_serves_then_finishes_in_flight_work_on_sigterm() {
    let s = setup("").await;
    // The log goes to logs/app.log too; an unread pipe would block the host once it is full.
    let mut child = host(
        s.dir.path(),
        &["run", "--config-file", s.config.to_str().unwrap()],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let queue = format!("actions.{}.fn_hello", s.sim.org_id());
    s.sim.wait_subscribed(&queue, WAIT).await.unwrap();

    let inv = s
        .sim
        .invoke("fn_hello", json!({"hello_text": "one"}))
        .await
        .unwrap();
    assert_eq!(inv.final_reply(WAIT).await.unwrap().message_type, 0);

    // A slow message is running when SIGTERM arrives: it still completes and is acknowledged.
    let slow = common::start_slow(&s.sim, "slow", 700).await;
    sigterm(&child);
    let log_path = s.dir.path().join("logs/app.log");
    let reply = slow.final_reply(WAIT).await.unwrap_or_else(|e| {
        panic!(
            "{e}\n{}",
            std::fs::read_to_string(&log_path).unwrap_or_default()
        )
    });
    assert_eq!(reply.results.unwrap()["content"]["text"], json!("slow"));
    slow.wait_acked(WAIT).await.unwrap();
    let status = tokio::time::timeout(WAIT, child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0));
    // It disconnected cleanly (DISCONNECT with a receipt), leaving nothing unacknowledged.
    assert_eq!(s.sim.connections(), 0);
    assert_eq!(s.sim.violations(), Vec::<String>::new());

    let log = std::fs::read_to_string(s.dir.path().join("logs/app.log")).unwrap();
    assert!(
        log.contains("host has started successfully and is now running"),
        "{log}"
    );
    assert!(
        !log.contains("s3cr3t-api-key-value"),
        "the API key secret reached the log"
    );
}

/// A value from outside (here a function name in a message) with a newline cannot forge a
/// line in app.log: control characters are escaped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outside_values_cannot_forge_log_lines() {
    let s = setup("").await;
    let mut child = common::run_host(s.dir.path(), &s.config);
    let queue = format!("actions.{}.fn_hello", s.sim.org_id());
    s.sim.wait_subscribed(&queue, WAIT).await.unwrap();
    let body =
        json!({"function": {"name": "nope\n2026-01-01T00:00:00Z  INFO forged: all clear\r"}});
    let inv = s
        .sim
        .send_raw(
            "fn_hello",
            vec![],
            serde_json::to_vec(&body).unwrap().into(),
        )
        .await
        .unwrap();
    assert_eq!(inv.final_reply(WAIT).await.unwrap().message_type, 1);
    sigterm(&child);
    tokio::time::timeout(WAIT, child.wait())
        .await
        .unwrap()
        .unwrap();
    let log = std::fs::read_to_string(s.dir.path().join("logs/app.log")).unwrap();
    assert!(
        log.contains("nope\\n2026-01-01T00:00:00Z  INFO forged: all clear\\r"),
        "{log}"
    );
    assert!(
        !log.lines().any(|l| l.starts_with("2026-01-01T00:00:00Z")),
        "a forged line: {log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn selftest_checks_rest_stomp_and_components() {
    let s = setup("").await;
    let out = host(
        s.dir.path(),
        &[
            "selftest",
            "-l",
            "fn_hello",
            "--config-file",
            s.config.to_str().unwrap(),
        ],
    )
    .output()
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("REST: OK"), "{text}");
    assert!(
        text.contains("STOMP: OK, subscribed to 1 queue(s)"),
        "{text}"
    );
    assert!(text.contains("fn_hello: success"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn selftest_with_a_wrong_api_key_exits_with_the_login_code() {
    let s = setup("").await;
    let text = std::fs::read_to_string(&s.config)
        .unwrap()
        .replace("s3cr3t-api-key-value", "wrong-secret-value");
    std::fs::write(&s.config, text).unwrap();
    let out = host(
        s.dir.path(),
        &["selftest", "--config-file", s.config.to_str().unwrap()],
    )
    .output()
    .await
    .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    // 401 at login: 25 when the platform says "Invalid user name or password", else 21.
    assert!(
        matches!(out.status.code(), Some(21 | 25)),
        "{:?} {err}",
        out.status.code()
    );
    assert!(err.contains("REST"), "{err}");
    assert!(
        !err.contains("wrong-secret-value"),
        "the secret reached stderr: {err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customize_again_changes_nothing_and_says_so() {
    // setup() already ran `host customize -y` once.
    let s = setup("").await;
    assert_eq!(s.sim.imports().len(), 1);
    let out = host(
        s.dir.path(),
        &[
            "customize",
            "-y",
            "--config-file",
            s.config.to_str().unwrap(),
        ],
    )
    .output()
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("No changes"), "{text}");
    assert!(text.contains("= function fn_hello"), "{text}");
    assert_eq!(s.sim.imports().len(), 1, "no second import was sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customize_export_is_byte_identical_and_needs_no_platform() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.res");
    let b = dir.path().join("b.res");
    for path in [&a, &b] {
        let out = host(
            dir.path(),
            &["customize", "--export", path.to_str().unwrap()],
        )
        .output()
        .await
        .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let first = std::fs::read(&a).unwrap();
    assert_eq!(first, std::fs::read(&b).unwrap());
    let export: serde_json::Value = serde_json::from_slice(&first).unwrap();
    assert_eq!(export["export_format_version"], json!(2));
    assert_eq!(export["functions"][0]["name"], json!("fn_hello"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customize_without_a_terminal_or_yes_imports_nothing() {
    let sim = Sim::start(SimConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("app.config");
    std::fs::write(&config, sim.app_config()).unwrap();
    let out = host(
        dir.path(),
        &["customize", "--config-file", config.to_str().unwrap()],
    )
    .stdin(Stdio::null())
    .output()
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("+ function fn_hello"),
        "the plan is shown: {text}"
    );
    assert!(sim.imports().is_empty());
}
