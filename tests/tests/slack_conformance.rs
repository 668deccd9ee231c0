//! Conformance: Slack's official Python SDK (`slack_sdk` from PyPI, in the venv `.ci/run`
//! creates), its `WebClient` pointed at our Slack emulator, posts, replies in a thread, gets
//! permalinks, lists channels, and meets HTTP 429 as its `RateLimitErrorRetryHandler` expects.
//! The emulator's request log then shows what the SDK sent.

use std::path::PathBuf;
use std::time::Duration;

use slack_emulator::{SlackConfig, SlackEmulator};

fn python() -> Option<PathBuf> {
    match std::env::var("SOAR_TEST_PYTHON") {
        Ok(p) if !p.is_empty() => Some(PathBuf::from(p)),
        _ => {
            if std::env::var("SOAR_TEST_REQUIRE_EXTERNAL").as_deref() == Ok("1") {
                panic!(
                    "SOAR_TEST_REQUIRE_EXTERNAL=1 but SOAR_TEST_PYTHON is not set (see .ci/run)"
                );
            }
            eprintln!("skipped: SOAR_TEST_PYTHON is not set (run .ci/run to create the venv)");
            None
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_sdk_web_client_works_against_the_emulator() {
    let Some(python) = python() else {
        return;
    };
    let slack = SlackEmulator::start(SlackConfig::default()).await.unwrap();
    slack.rate_limit_next("chat.postMessage", 1, 1);
    slack.rate_limit_next("conversations.list", 2, 1);
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("python/slack_conformance.py");
    let out = tokio::time::timeout(
        Duration::from_secs(120),
        tokio::process::Command::new(&python)
            .arg(&script)
            .env("SLACK_BASE_URL", slack.api_url())
            .env("SLACK_TOKEN", slack.token())
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the script ends within 120 s")
    .expect("run python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("ALL OK"),
        "slack_sdk conformance failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    // What the SDK sent: JSON bodies with Bearer auth; the 429'd post was sent twice and
    // posted once.
    let requests = slack.requests();
    let posts: Vec<_> = requests
        .iter()
        .filter(|r| r.method == "chat.postMessage")
        .collect();
    assert_eq!(posts[0].status, 429);
    assert_eq!(posts[1].status, 200);
    assert!(posts.iter().all(|r| r.auth == "bearer"), "{posts:?}");
    assert!(
        posts.iter().all(|r| r
            .content_type
            .as_deref()
            .is_some_and(|c| c.starts_with("application/json"))),
        "{posts:?}"
    );
    let general = slack.channel("general").unwrap();
    assert_eq!(general.messages.len(), 1);
    assert_eq!(general.messages[0].text, "posted after a 429");
    let lists: Vec<u16> = requests
        .iter()
        .filter(|r| r.method == "conversations.list")
        .map(|r| r.status)
        .collect();
    assert_eq!(lists, [429, 429, 200]);
}
