//! The TruSTAR emulator against TruSTAR's official Python SDK (`trustar` from PyPI, in the venv
//! `.ci/run` creates; `SOAR_TEST_PYTHON` names its python). Skipped when unset, unless
//! `SOAR_TEST_REQUIRE_EXTERNAL=1`.

use std::process::Command;

use trustar_emulator::{TrustarConfig, TrustarEmulator};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_python_sdk_talks_to_the_emulator() {
    let python = match std::env::var("SOAR_TEST_PYTHON") {
        Ok(p) if !p.is_empty() => p,
        _ => {
            if std::env::var("SOAR_TEST_REQUIRE_EXTERNAL").as_deref() == Ok("1") {
                panic!(
                    "SOAR_TEST_REQUIRE_EXTERNAL=1 but SOAR_TEST_PYTHON is not set (see .ci/run)"
                );
            }
            eprintln!("skipped: SOAR_TEST_PYTHON is not set");
            return;
        }
    };
    let emu = TrustarEmulator::start(TrustarConfig::default())
        .await
        .unwrap();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/python/trustar_conformance.py"
    );
    let (url, key, secret, enclave) = (
        emu.url(),
        emu.api_key().to_string(),
        emu.api_secret().to_string(),
        emu.enclave_ids()[0].clone(),
    );
    let out = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .args([script, &url, &key, &secret, &enclave])
            .output()
    })
    .await
    .unwrap()
    .unwrap();
    assert!(
        out.status.success(),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(emu.reports().is_empty());
    assert!(emu.tokens_issued() >= 1);
}
