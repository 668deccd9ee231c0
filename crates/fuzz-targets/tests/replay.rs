//! Replays every committed fuzz input through its target, without libFuzzer: the hand-written
//! seeds (`fuzz/seeds/<target>/`), the minimised corpora (`fuzz/corpus/<target>/`) and the
//! inputs of fixed bugs (`fuzz/regressions/<target>/`). Any panic fails the test with the file
//! that caused it.
//!
//! `fuzz/regressions/<target>/open/` holds inputs of bugs found by fuzzing and not fixed yet
//! (crashes and timeouts). They are counted but not run by default, since they would fail or
//! hang the suite; `FUZZ_REPLAY_OPEN=1 cargo test --release -p fuzz-targets -- --nocapture`
//! runs them and reports which still fail. Once a bug is fixed, move its input up into
//! `fuzz/regressions/<target>/` so that it guards against the bug's return.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fuzz_targets::{TARGETS, Target};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

/// The regular files directly in `dir`, sorted (none when it does not exist).
fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            !name.starts_with('.') && !name.ends_with(".md")
        })
        .collect();
    files.sort();
    files
}

fn run(target: Target, file: &Path) -> Result<(), String> {
    let data = std::fs::read(file).map_err(|e| format!("cannot read: {e}"))?;
    catch_unwind(AssertUnwindSafe(|| target(&data))).map_err(|panic| {
        panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "a panic without a message".into())
    })
}

#[test]
fn every_committed_input_passes_its_target() {
    let root = fuzz_dir();
    assert!(
        root.join("Cargo.toml").is_file(),
        "no fuzz crate at {root:?}"
    );
    let mut failures = Vec::new();
    let mut total = 0;
    for (name, target) in TARGETS {
        let mut count = 0;
        for kind in ["seeds", "corpus", "regressions"] {
            for file in files(&root.join(kind).join(name)) {
                count += 1;
                if let Err(why) = run(*target, &file) {
                    failures.push(format!("{}: {why}", file.display()));
                }
            }
        }
        assert!(
            count > 0,
            "target {name} has no seeds or corpus under {root:?}"
        );
        let open = files(&root.join("regressions").join(name).join("open")).len();
        println!("{name}: {count} inputs replayed, {open} open regression inputs not run");
        total += count;
    }
    println!("{total} fuzz inputs replayed");
    assert!(
        failures.is_empty(),
        "{} fuzz inputs fail:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Runs the open regression inputs when `FUZZ_REPLAY_OPEN` is set, reporting each as still
/// failing (a panic, or longer than 10 s) or as passing now. Never fails: it only informs.
#[test]
fn open_regressions_report_when_asked() {
    if std::env::var_os("FUZZ_REPLAY_OPEN").is_none() {
        return;
    }
    for (name, target) in TARGETS {
        for file in files(&fuzz_dir().join("regressions").join(name).join("open")) {
            let started = Instant::now();
            let result = run(*target, &file);
            let took = started.elapsed();
            let verdict = match result {
                Err(why) => format!("still fails: {why}"),
                Ok(()) if took > Duration::from_secs(10) => format!("still slow: {took:.1?}"),
                Ok(()) => format!("passes now ({took:.1?}): move it out of open/"),
            };
            println!("{}: {verdict}", file.display());
        }
    }
}
