//! Links every crate that an enabled cargo feature brings in (`dep:x`): writes `use x as _;`
//! lines to `$OUT_DIR/linked.rs`, which main.rs includes. Without such a line rustc drops a
//! crate that nothing names, and its `inventory` registrations (components, emulators) with it;
//! with it, adding an integration is a feature in Cargo.toml and nothing in `src/`.

use std::fmt::Write as _;

fn main() {
    println!("cargo:rerun-if-changed=Cargo.toml");
    let manifest = std::fs::read_to_string("Cargo.toml").expect("host/Cargo.toml");
    let manifest: toml::Table = manifest.parse().expect("host/Cargo.toml is TOML");
    let features = manifest
        .get("features")
        .and_then(toml::Value::as_table)
        .cloned()
        .unwrap_or_default();
    let mut linked = Vec::new();
    for (feature, deps) in &features {
        let var = format!("CARGO_FEATURE_{}", feature.to_uppercase().replace('-', "_"));
        if std::env::var_os(&var).is_none() {
            continue;
        }
        let deps = deps.as_array().cloned().unwrap_or_default();
        for dep in deps.iter().filter_map(toml::Value::as_str) {
            if let Some(name) = dep.strip_prefix("dep:") {
                let krate = name.replace('-', "_");
                if !linked.contains(&krate) {
                    linked.push(krate);
                }
            }
        }
    }
    linked.sort();
    let mut out = String::from("// Written by build.rs: the crates the enabled features link.\n");
    for krate in &linked {
        let _ = writeln!(out, "use {krate} as _;");
    }
    let path = std::path::Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR")).join("linked.rs");
    std::fs::write(path, out).expect("write linked.rs");
}
