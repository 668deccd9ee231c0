//! `host new fn_example` in a copy of this workspace, then `cargo test -p fn_example` there: the
//! generated crate builds and its tests pass right away, and its Rust stays small.
//!
//! The copy builds in its own target directory (`target/host-new-test`, kept between runs), so
//! the first run compiles the SDK's dependencies once (about 3 minutes on 2 cores).

use std::path::{Path, PathBuf};
use std::process::Command;

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        // Build output, history and the fuzzing corpora (which a running fuzzer changes under
        // our feet) are not needed to build the new crate.
        if name == "target" || name == ".git" || name == "corpus" || name == "artifacts" {
            continue;
        }
        let kind = entry.file_type().unwrap();
        if kind.is_dir() {
            copy_tree(&entry.path(), &to.join(&name));
        } else if kind.is_file() {
            std::fs::copy(entry.path(), to.join(&name)).unwrap();
        }
    }
}

/// Lines that are neither blank nor comments.
fn code_lines(text: &str) -> usize {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("//"))
        .count()
}

#[test]
fn host_new_creates_a_crate_whose_tests_pass() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("ws");
    copy_tree(workspace, &copy);
    let out = Command::new(env!("CARGO_BIN_EXE_host"))
        .args(["new", "fn_example"])
        .current_dir(copy.join("examples"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("cargo test -p fn_example"), "{stdout}");
    let lib = std::fs::read_to_string(copy.join("fn_example/src/lib.rs")).unwrap();
    let lines = code_lines(&lib);
    assert!(lines < 50, "the generated src/ has {lines} lines of Rust");
    let host = std::fs::read_to_string(copy.join("host/Cargo.toml")).unwrap();
    assert!(host.contains("fn_example = [\"dep:fn_example\"]"), "{host}");
    // A second time: a clear refusal, nothing changed.
    let again = Command::new(env!("CARGO_BIN_EXE_host"))
        .args(["new", "fn_example"])
        .current_dir(&copy)
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert_eq!(
        std::fs::read_to_string(copy.join("host/Cargo.toml")).unwrap(),
        host
    );

    let target: PathBuf = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target"))
        .join("host-new-test");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let test = Command::new(cargo)
        .args(["test", "-p", "fn_example", "--offline"])
        .current_dir(&copy)
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .unwrap();
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&test.stdout),
        String::from_utf8_lossy(&test.stderr)
    );
    assert!(test.status.success(), "{output}");
    assert!(output.contains("test result: ok. 3 passed"), "{output}");
}
