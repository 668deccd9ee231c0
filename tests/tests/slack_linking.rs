//! Linking: fn_slack registers itself when linked, and the default `host` build lists it.
//! (The Slack-only build, `cargo run -p host --no-default-features --features fn_slack -- list`,
//! is checked by hand: running it here would rebuild the host with other features.)

use std::path::PathBuf;
use std::process::Command;

use fn_slack as _;

#[test]
fn fn_slack_registers_its_function_destination_and_section() {
    let reg = soar_sdk::registered()
        .into_iter()
        .find(|r| r.name == "fn_slack")
        .expect("fn_slack is registered");
    let text = soar_sdk::config::template::render(&(reg.template)());
    assert!(
        text.starts_with("# Settings of the Slack integration.\n[fn_slack]\n"),
        "{text}"
    );
    assert!(
        text.contains("\napi_token = xoxb-")
            && text.contains("\napi_url = https://slack.com/api/\n"),
        "{text}"
    );
    let defs = soar_engine::testkit::definitions_of("fn_slack").unwrap();
    assert_eq!(
        defs.function("slack_post_message").unwrap().destination,
        "slack"
    );
    assert!(
        defs.rule("Create Slack Message").is_some() && defs.rule("Create Slack Reply").is_some()
    );
}

/// `target/<profile>/host`, built by `cargo test --workspace` (the host package has tests).
fn host_binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let profile_dir = exe.parent()?.parent()?;
    let host = profile_dir.join(format!("host{}", std::env::consts::EXE_SUFFIX));
    host.exists().then_some(host)
}

#[test]
fn host_list_of_the_default_build_shows_fn_slack() {
    let Some(host) = host_binary() else {
        if std::env::var("SOAR_TEST_REQUIRE_EXTERNAL").as_deref() == Ok("1") {
            panic!("no host binary beside the test (run cargo test --workspace)");
        }
        eprintln!(
            "skipped: no host binary beside the test (cargo build -p host, or cargo test --workspace)"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(host)
        .arg("list")
        .current_dir(dir.path())
        .env("HOME", dir.path())
        .env_remove("APP_CONFIG_FILE")
        .output()
        .expect("run host list");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("fn_slack") && text.contains("slack_post_message"),
        "{text}"
    );
}
