//! The `host` binary's commands as an operator uses them: config mistakes, `list`, `config -c/-u`.

use std::path::Path;
use std::process::{Command, Output};

fn host(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_host"))
        .args(args)
        .current_dir(dir)
        .env("HOME", dir)
        .env("APP_LOCK_FILE", dir.join("lock"))
        .env_remove("APP_CONFIG_FILE")
        .output()
        .expect("run host")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn run_with(config: &str) -> (Output, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.config");
    std::fs::write(&path, config).unwrap();
    let out = host(
        &["run", "--config-file", path.to_str().unwrap()],
        dir.path(),
    );
    (out, path.display().to_string())
}

#[test]
fn missing_host_names_file_section_and_key() {
    let (out, file) = run_with("[resilient]\nport = 443\napi_key_id = a\napi_key_secret = b\n");
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains(&file) && err.contains("[resilient]") && err.contains("host"),
        "{err}"
    );
}

#[test]
fn bad_num_workers_names_the_key() {
    for bad in ["0", "abc", "5000"] {
        let (out, file) = run_with(&format!(
            "[resilient]\nhost = localhost\napi_key_id = a\napi_key_secret = b\nnum_workers = {bad}\n"
        ));
        assert_eq!(out.status.code(), Some(1));
        let err = stderr(&out);
        assert!(
            err.contains(&file) && err.contains("[resilient]") && err.contains("num_workers"),
            "{err}"
        );
    }
}

#[test]
fn duplicate_key_names_the_line() {
    let (out, file) = run_with("[resilient]\nhost = a\nport = 1\nhost = b\n");
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("{file}:4")) && err.contains("host") && err.contains("resilient"),
        "{err}"
    );
}

#[test]
fn unresolved_secret_names_section_and_key() {
    let (out, _) = run_with(
        "[resilient]\nhost = localhost\napi_key_id = a\napi_key_secret = ^no_such_secret\n",
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("[resilient]") && err.contains("api_key_secret"),
        "{err}"
    );
}

#[test]
fn list_shows_linked_components() {
    let dir = tempfile::tempdir().unwrap();
    let out = host(&["list"], dir.path());
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("fn_hello") && text.contains("function: fn_hello"),
        "{text}"
    );
}

#[test]
fn config_create_then_update_appends_only_missing_sections() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.config");
    let p = path.to_str().unwrap();
    let out = host(&["config", "-c", p], dir.path());
    assert!(out.status.success(), "{}", stderr(&out));
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.contains("[resilient]") && text.contains("[fn_hello]"),
        "{text}"
    );
    // Generated from the typed section: its doc comment above each key, its default as value.
    assert!(
        text.contains(
            "# Settings of fn_hello, the example function.\n[fn_hello]\n\
             # Longest delay (milliseconds) a caller may ask for with the input hello_delay_ms.\n\
             max_delay_ms = 60000\n"
        ),
        "{text}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the file holds credentials: owner only");
    }
    // -c again refuses to overwrite without a terminal or -y.
    let out = host(&["config", "-c", p], dir.path());
    assert!(!out.status.success());
    // -u on a file without [fn_hello] appends it and keeps the rest byte for byte.
    let mine = "[resilient]\nhost = my.soar\n# my comment\n";
    std::fs::write(&path, mine).unwrap();
    let out = host(&["config", "-u", p], dir.path());
    assert!(out.status.success(), "{}", stderr(&out));
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.starts_with(mine), "{text}");
    assert!(text.contains("[fn_hello]"));
    // -l limits both to the named components.
    let only = dir.path().join("only.config");
    let out = host(
        &["config", "-c", only.to_str().unwrap(), "-l", "fn_hello"],
        dir.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let sections: Vec<String> = std::fs::read_to_string(&only)
        .unwrap()
        .lines()
        .filter(|l| l.starts_with('['))
        .map(str::to_string)
        .collect();
    assert_eq!(
        sections,
        [
            "[resilient]",
            "[integrations]",
            "[monitoring]",
            "[fn_hello]"
        ]
    );
    // A second -u changes nothing.
    let out = host(&["config", "-u", p], dir.path());
    assert!(out.status.success());
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
    assert!(String::from_utf8_lossy(&out.stdout).contains("nothing changed"));
}

#[test]
fn lock_file_stops_a_second_host() {
    let dir = tempfile::tempdir().unwrap();
    let lock = dir.path().join("lock");
    let held = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock)
        .unwrap();
    held.try_lock().unwrap();
    let path = dir.path().join("app.config");
    std::fs::write(
        &path,
        "[resilient]\nhost = localhost\napi_key_id = a\napi_key_secret = b\n",
    )
    .unwrap();
    let out = host(
        &["run", "--config-file", path.to_str().unwrap()],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("Failed to acquire lock"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn demo_runs_the_examples_against_the_simulated_platform() {
    let dir = tempfile::tempdir().unwrap();
    let out = host(&["demo"], dir.path());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}\n{}", stderr(&out));
    assert!(text.contains("status: fn_hello: echoing"), "{text}");
    assert!(text.contains("result: Completed"), "{text}");
    assert!(text.contains("ERROR: fn_hello was asked to fail"), "{text}");
    assert!(text.contains("acknowledged"), "{text}");
    assert!(
        text.contains("protocol violations seen by the platform: 0"),
        "{text}"
    );
    // Notes read as text, not HTML.
    assert!(text.contains("note: TruSTAR Enrichment"), "{text}");
    assert!(!text.contains("<div>") && !text.contains("<h3>"), "{text}");
    // Each step label appears once.
    let labels: Vec<&str> = (text.lines())
        .filter(|l| l.starts_with('['))
        .filter_map(|l| l.split(']').next())
        .collect();
    let mut unique = labels.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(labels.len(), unique.len(), "{labels:?}");
    // The example invocations run on the demo's incident, before it is deleted.
    let id = text
        .lines()
        .find_map(|l| l.strip_prefix("[6] the components' example functions, invoked on incident "))
        .expect("the invocations step");
    let hello = (text.lines())
        .find(|l| l.starts_with("[6.1] invoke fn_hello"))
        .expect("fn_hello invoked");
    assert!(hello.contains(&format!("\"incident_id\":{id}")), "{hello}");
    assert!(
        text.find("[6.1]") < text.find("[7] the incident is deleted"),
        "{text}"
    );
}
