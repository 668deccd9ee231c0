//! The operator's path, as a new operator walks it with the README: `host config -c -l`,
//! filling in `[resilient]`, `customize`, `selftest`, `run -r`, editing app.config while
//! messages run, a bad edit, SIGHUP, SIGTERM; and what systemd and journald see (the unit
//! file, no colour in files, fatal start-up errors in app.log, JSON lines, broken pipes).

mod common;

use std::path::Path;
use std::process::Stdio;

use common::{WAIT, host, sigterm, wait_until};
use serde_json::{Value, json};
use soar_sim::{Sim, SimConfig};

/// `host config -c FILE -l names…`, asserting success.
async fn config_create(dir: &Path, file: &Path, names: &[&str]) {
    let mut args = vec!["config", "-c", file.to_str().unwrap()];
    if !names.is_empty() {
        args.push("-l");
        args.extend(names);
    }
    let out = host(dir, &args).output().await.unwrap();
    assert!(out.status.success(), "{out:?}");
}

/// Fills in `[resilient]` of `file` with the simulated platform's values, key by key, as an
/// operator edits the generated file (a key written commented out is uncommented).
fn fill_in_resilient(file: &Path, sim: &Sim, logs: &Path) {
    let mut values: Vec<(String, String)> = sim
        .app_config()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    values.push(("logdir".into(), logs.display().to_string()));
    let text = std::fs::read_to_string(file).unwrap();
    let mut out = Vec::new();
    let mut section = String::new();
    for line in text.lines() {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_string();
        }
        let key = line
            .trim_start_matches('#')
            .split('=')
            .next()
            .unwrap()
            .trim();
        let at = values.iter().position(|(k, _)| k == key);
        match at {
            Some(i) if section == "resilient" && line.contains('=') => {
                let (k, v) = values.remove(i);
                out.push(format!("{k} = {v}"));
            }
            _ => out.push(line.to_string()),
        }
    }
    // Keys the template does not write at all go under the header.
    let header = out.iter().position(|l| l == "[resilient]").unwrap();
    for (k, v) in values {
        out.insert(header + 1, format!("{k} = {v}"));
    }
    std::fs::write(file, out.join("\n") + "\n").unwrap();
}

/// Replaces the line of `key` in `file`.
fn set_key(file: &Path, key: &str, value: &str) {
    let text = std::fs::read_to_string(file).unwrap();
    let lines: Vec<String> = text
        .lines()
        .map(|l| {
            if l.split('=').next().unwrap().trim() == key {
                format!("{key} = {value}")
            } else {
                l.to_string()
            }
        })
        .collect();
    std::fs::write(file, lines.join("\n") + "\n").unwrap();
}

/// A simulated platform whose API key secret a test can look for in logs.
async fn sim_with_secret() -> Sim {
    Sim::start(SimConfig {
        api_key_secret: "s3cr3t-api-key-value".into(),
        ..SimConfig::default()
    })
    .await
    .unwrap()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_run_reload_without_dropping_work_and_stop() {
    let sim = sim_with_secret().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("app.config");
    let logs = dir.path().join("logs");
    let app_log = logs.join("app.log");

    // 1. A file for fn_hello only: owner-only, and the other linked components left out.
    config_create(dir.path(), &file, &["fn_hello"]).await;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "app.config holds credentials");
    }
    let text = read(&file);
    assert!(text.contains("noload = fn_slack, fn_trustar"), "{text}");
    assert!(!text.contains("[trustar"), "{text}");
    fill_in_resilient(&file, &sim, &logs);
    let file_arg = file.to_str().unwrap();

    // 2. customize pushes fn_hello's objects only; selftest passes.
    let out = host(dir.path(), &["customize", "-y", "-c", file_arg])
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{out:?}");
    assert!(
        stdout.contains("Customizations of fn_hello for"),
        "{stdout}"
    );
    let out = host(dir.path(), &["selftest", "-c", file_arg])
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{out:?}");
    assert!(stdout.contains("fn_hello: success"), "{stdout}");
    assert!(
        !stdout.contains("fn_slack") && !stdout.contains("fn_trustar"),
        "{stdout}"
    );

    // 3. run -r serves, stderr to a file as under a service manager.
    let stderr_file = std::fs::File::create(dir.path().join("stderr.log")).unwrap();
    let mut child = host(dir.path(), &["run", "-r", "-c", file_arg])
        .stdout(Stdio::null())
        .stderr(stderr_file)
        .spawn()
        .unwrap();
    let queue = format!("actions.{}.fn_hello", sim.org_id());
    sim.wait_subscribed(&queue, WAIT).await.unwrap();
    let first = sim
        .invoke("fn_hello", json!({"hello_text": "one"}))
        .await
        .unwrap();
    assert_eq!(first.final_reply(WAIT).await.unwrap().message_type, 0);

    // 4. An edit while a message runs: it finishes and is answered once; the new settings
    // apply (a DEBUG line appears) and the next message is served.
    let slow = common::start_slow(&sim, "slow", 1500).await;
    set_key(&file, "num_workers", "3");
    set_key(&file, "loglevel", "DEBUG");
    let reply = slow.final_reply(WAIT).await.unwrap();
    assert_eq!(reply.results.unwrap()["content"]["text"], json!("slow"));
    slow.wait_acked(WAIT).await.unwrap();
    wait_until("the reload", || read(&app_log).contains("reloaded")).await;
    sim.wait_subscribed(&queue, WAIT).await.unwrap();
    let after = sim
        .invoke("fn_hello", json!({"hello_text": "two"}))
        .await
        .unwrap();
    assert_eq!(after.final_reply(WAIT).await.unwrap().message_type, 0);
    let log = read(&app_log);
    assert!(log.contains("log level now DEBUG"), "{log}");
    assert!(log.contains("activemq.prefetchSize\", \"3\""), "{log}");

    // 5. A bad edit is refused and changes nothing; SIGHUP without a change is harmless.
    set_key(&file, "num_workers", "lots");
    wait_until("the refused reload", || {
        read(&app_log).contains("app.config not reloaded, the running settings stay")
    })
    .await;
    let again = sim
        .invoke("fn_hello", json!({"hello_text": "three"}))
        .await
        .unwrap();
    assert_eq!(again.final_reply(WAIT).await.unwrap().message_type, 0);

    // 6. SIGTERM: a clean stop.
    sigterm(&child);
    let status = tokio::time::timeout(WAIT, child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0));
    for inv in [&first, &slow, &after, &again] {
        assert_eq!(common::finals(inv), 1, "one final reply per invocation");
    }
    assert_eq!(sim.violations(), Vec::<String>::new());

    // What the operator reads: one line per invocation naming message, function and outcome;
    // no colour codes in files; no secret.
    let log = read(&app_log);
    let finished: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("finished") && l.contains("outcome=\"completed\""))
        .collect();
    assert_eq!(finished.len(), 4, "{log}");
    assert!(
        finished.iter().all(|l| l.contains("message{id=")
            && l.matches("function=\"fn_hello\"").count() == 1
            && l.matches("workflow=").count() <= 1),
        "each field once: {finished:?}"
    );
    let stderr = read(&dir.path().join("stderr.log"));
    for text in [&log, &stderr] {
        assert!(!text.contains('\u{1b}'), "an ANSI escape in a file");
        assert!(
            !text.contains("s3cr3t-api-key-value"),
            "the secret reached a log"
        );
    }
    assert!(stderr.contains("reloaded"), "{stderr}");
}

/// With everything linked and `host config -c` for all, each component that is not filled in
/// is named with the key and the way out, one after the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn components_not_filled_in_are_named_with_the_way_out() {
    let sim = Sim::start(SimConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("app.config");
    config_create(dir.path(), &file, &[]).await;
    fill_in_resilient(&file, &sim, &dir.path().join("logs"));
    let selftest = || host(dir.path(), &["selftest", "-c", file.to_str().unwrap()]).output();

    let out = selftest().await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("component fn_slack")
            && stderr.contains("[fn_slack] api_token still holds the example value")
            && stderr.contains("`noload = fn_slack`"),
        "{stderr}"
    );

    let text = read(&file).replace("[resilient]\n", "[resilient]\nnoload = fn_slack\n");
    std::fs::write(&file, text).unwrap();
    let out = selftest().await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("component fn_trustar")
            && stderr.contains(
                "[trustar_default] enclave_ids_for_submission still holds the example value"
            )
            && stderr.contains("`noload = fn_trustar`"),
        "{stderr}"
    );

    set_key(
        &file,
        "enclave_ids_for_submission",
        "7a33144f-aef3-442b-87d4-dbf70d8afdb0",
    );
    let out = selftest().await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("component fn_trustar")
            && stderr.contains("secret 'api_key_for_trustar_threat_source' cannot be resolved")
            && stderr.contains("`noload = fn_trustar`"),
        "{stderr}"
    );

    // -l names what to check, whatever else the file holds.
    let out = host(
        dir.path(),
        &["selftest", "-c", file.to_str().unwrap(), "-l", "fn_hello"],
    )
    .output()
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
}

/// A fatal start-up error reaches app.log, not only stderr.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fatal_start_up_errors_reach_app_log() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    let file = dir.path().join("app.config");
    std::fs::write(
        &file,
        format!(
            "[resilient]\nhost = soar.example.com\napi_key_id = a\napi_key_secret = b\n\
             logdir = {}\nnum_workers = lots\n",
            logs.display()
        ),
    )
    .unwrap();
    let out = host(dir.path(), &["run", "-c", file.to_str().unwrap()])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let log = read(&logs.join("app.log"));
    assert!(
        log.contains("cannot start") && log.contains("[resilient] num_workers"),
        "{log}"
    );

    // No app.config at all: $APP_LOG_DIR/app.log, as the unit file sets it.
    let out = host(dir.path(), &["run", "-c", "/nonexistent/app.config"])
        .env("APP_LOG_DIR", &logs)
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        read(&logs.join("app.log")).contains("/nonexistent/app.config"),
        "{}",
        read(&logs.join("app.log"))
    );
}

/// `log_format = json`: one object per line with the invocation's fields.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_log_lines_carry_the_invocation() {
    let s = common::setup("log_format = json\n").await;
    let mut child = common::run_host(s.dir.path(), &s.config);
    let queue = format!("actions.{}.fn_hello", s.sim.org_id());
    s.sim.wait_subscribed(&queue, WAIT).await.unwrap();
    let inv = s
        .sim
        .invoke("fn_hello", json!({"hello_text": "j"}))
        .await
        .unwrap();
    inv.final_reply(WAIT).await.unwrap();
    let app_log = s.dir.path().join("logs/app.log");
    wait_until("the finished line", || read(&app_log).contains("finished")).await;
    sigterm(&child);
    tokio::time::timeout(WAIT, child.wait())
        .await
        .unwrap()
        .unwrap();
    let log = read(&app_log);
    let lines: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let finished = lines
        .iter()
        .find(|l| l["fields"]["message"] == "finished")
        .unwrap_or_else(|| panic!("{log}"));
    assert_eq!(finished["fields"]["outcome"], "completed", "{finished}");
    assert_eq!(finished["span"]["function"], "fn_hello", "{finished}");
    assert!(finished["span"]["id"].is_string(), "{finished}");
}

/// The unit file in the repository is one systemd accepts.
#[test]
fn the_unit_file_verifies() {
    let unit = include_str!("../../packaging/soar-host.service");
    for needed in [
        "Type=notify",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "WatchdogSec=",
        "TimeoutStopSec=45",
    ] {
        assert!(unit.contains(needed), "{needed}");
    }
    let Ok(found) = std::process::Command::new("systemd-analyze")
        .arg("--version")
        .output()
    else {
        println!("systemd-analyze is not installed: checked the keys only");
        return;
    };
    assert!(found.status.success());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("soar-host.service");
    std::fs::write(
        &path,
        unit.replace("/usr/local/bin/host", env!("CARGO_BIN_EXE_host")),
    )
    .unwrap();
    let out = std::process::Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Output into a closed pipe (`host list | head -1`) ends quietly with exit code 0.
#[test]
fn a_closed_stdout_is_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    for args in [&["list"][..], &["man"], &["completions", "bash"]] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_host"))
            .args(args)
            .env("HOME", dir.path())
            .stdout(writer)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// `packaging/install.sh --destdir` lays out the binary, unit, man page, completions and an
/// owner-only app.config.
#[test]
fn install_script_lays_out_the_service() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("root");
    let out = std::process::Command::new("bash")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../packaging/install.sh"
        ))
        .args(["--binary", env!("CARGO_BIN_EXE_host"), "--destdir"])
        .arg(&dest)
        .args(["-l", "fn_slack"])
        .env("HOME", dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    for file in [
        "usr/local/bin/host",
        "etc/systemd/system/soar-host.service",
        "usr/local/share/man/man1/host.1",
        "usr/local/share/bash-completion/completions/host",
        "etc/soar-host/app.config",
    ] {
        let meta = std::fs::metadata(dest.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(meta.len() > 0, "{file} is empty");
    }
    let config = read(&dest.join("etc/soar-host/app.config"));
    assert!(
        config.contains("[fn_slack]") && !config.contains("[trustar"),
        "{config}"
    );
}

/// Under systemd (`NOTIFY_SOCKET`, `WATCHDOG_USEC`): READY once subscribed, WATCHDOG while the
/// STOMP link is up, RELOADING on SIGHUP with a changed file, STOPPING on SIGTERM.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn systemd_hears_ready_watchdog_reloading_and_stopping() {
    let s = common::setup("").await;
    let socket_path = s.dir.path().join("notify.sock");
    let socket = tokio::net::UnixDatagram::bind(&socket_path).unwrap();
    let mut child = host(s.dir.path(), &["run", "-c", s.config.to_str().unwrap()])
        .env("NOTIFY_SOCKET", &socket_path)
        .env("WATCHDOG_USEC", "200000")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let mut next = async || {
        let n = tokio::time::timeout(WAIT, socket.recv(&mut buf))
            .await
            .expect("a notification in time")
            .unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    let first = next().await;
    assert!(first.contains("READY=1"), "{first}");
    let queue = format!("actions.{}.fn_hello", s.sim.org_id());
    s.sim.wait_subscribed(&queue, WAIT).await.unwrap();
    assert!(next().await.contains("WATCHDOG=1"));

    set_key(&s.config, "num_workers", "2");
    let pid = child.id().unwrap().to_string();
    let hup = std::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap();
    assert!(hup.success());
    let mut seen = Vec::new();
    while !seen.iter().any(|m: &String| m.contains("RELOADING=1")) {
        seen.push(next().await);
    }
    while !seen
        .iter()
        .any(|m: &String| m.contains("READY=1") && !m.contains("WATCHDOG"))
    {
        seen.push(next().await);
        if seen.len() > 200 {
            panic!("no READY after the reload: {seen:?}");
        }
    }
    sigterm(&child);
    loop {
        let m = next().await;
        if m.contains("STOPPING=1") {
            break;
        }
    }
    let status = tokio::time::timeout(WAIT, child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0));
}

/// `[monitoring] address`: /readyz, /metrics counting invocations by function and outcome, and
/// `host status` listing an invocation in flight.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_health_and_status() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let address = format!("127.0.0.1:{port}");
    let s = common::setup(&format!("[monitoring]\naddress = {address}\n")).await;
    let mut child = common::run_host(s.dir.path(), &s.config);
    let queue = format!("actions.{}.fn_hello", s.sim.org_id());
    s.sim.wait_subscribed(&queue, WAIT).await.unwrap();
    let options = soar_sdk::http::HttpOptions {
        url: format!("http://{address}/"),
        ..Default::default()
    };
    let http = soar_sdk::http::client(&options, &Default::default()).unwrap();
    let get = async |path: &str| {
        let answer = http
            .get(format!("http://{address}{path}"))
            .send()
            .await
            .unwrap();
        (answer.status().as_u16(), answer.text().await.unwrap())
    };
    assert_eq!(get("/healthz").await.0, 200);
    // Ready once subscribed (the flag is set just after the subscription).
    wait_until_async(async || get("/readyz").await.0 == 200).await;

    for text in ["a", "b", "c"] {
        let inv = s
            .sim
            .invoke("fn_hello", json!({"hello_text": text}))
            .await
            .unwrap();
        assert_eq!(inv.final_reply(WAIT).await.unwrap().message_type, 0);
    }
    let slow = common::start_slow(&s.sim, "slow", 1500).await;
    let out = host(s.dir.path(), &["status", "-c", s.config.to_str().unwrap()])
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}{out:?}");
    assert!(text.contains("connected to the message broker"), "{text}");
    assert!(text.contains(&queue), "{text}");
    assert!(
        text.contains("in flight: 1") && text.contains("fn_hello"),
        "{text}"
    );
    slow.final_reply(WAIT).await.unwrap();

    let (code, metrics) = get("/metrics").await;
    assert_eq!(code, 200);
    for needle in [
        r#"soar_host_invocations_total{function="fn_hello",outcome="completed"} 4"#,
        r#"soar_host_invocation_seconds_count{function="fn_hello"} 4"#,
        "soar_host_in_flight 0",
        "soar_host_connected 1",
        "soar_host_reconnects_total 0",
    ] {
        assert!(metrics.contains(needle), "{needle} not in\n{metrics}");
    }
    sigterm(&child);
    tokio::time::timeout(WAIT, child.wait())
        .await
        .unwrap()
        .unwrap();
}

/// Polls `check` (bounded) for state that has no event to wait on.
async fn wait_until_async(mut check: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// `host secret set` stores what `^name` refers to (private file in ~/.resilient/secrets), so
/// that app.config holds no credential; `list` shows names only; `delete` removes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_set_with_host_secret_are_used() {
    use tokio::io::AsyncWriteExt;
    let sim = sim_with_secret().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("app.config");
    let text = sim
        .app_config()
        .lines()
        .map(|l| {
            if l.starts_with("api_key_secret") {
                "api_key_secret = ^soar_api_key_secret".to_string()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(
        &file,
        format!("{text}\nlogdir = {}\n", dir.path().join("logs").display()),
    )
    .unwrap();
    let file_arg = file.to_str().unwrap();

    let mut set = host(
        dir.path(),
        &["secret", "-c", file_arg, "set", "soar_api_key_secret"],
    )
    .stdin(Stdio::piped())
    .spawn()
    .unwrap();
    let mut stdin = set.stdin.take().unwrap();
    stdin.write_all(b"s3cr3t-api-key-value\n").await.unwrap();
    drop(stdin);
    let out = set.wait_with_output().await.unwrap();
    assert!(out.status.success(), "{out:?}");
    let stored = dir.path().join(".resilient/secrets/soar_api_key_secret");
    assert_eq!(read(&stored), "s3cr3t-api-key-value\n");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&stored), 0o600);
        assert_eq!(mode(stored.parent().unwrap()), 0o700);
    }

    let selftest = || host(dir.path(), &["selftest", "-c", file_arg, "-l", "fn_hello"]).output();
    let out = selftest().await.unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("REST: OK"),
        "{out:?}"
    );

    let out = host(dir.path(), &["secret", "-c", file_arg, "list"])
        .output()
        .await
        .unwrap();
    let listed = String::from_utf8_lossy(&out.stdout);
    assert_eq!(listed.trim(), "soar_api_key_secret");
    assert!(!listed.contains("s3cr3t"));

    let out = host(
        dir.path(),
        &["secret", "-c", file_arg, "delete", "soar_api_key_secret"],
    )
    .output()
    .await
    .unwrap();
    assert!(out.status.success(), "{out:?}");
    let out = selftest().await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("soar_api_key_secret"), "{stderr}");
}
