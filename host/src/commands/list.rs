//! `host list`: what this binary was built with.

use soar_sdk::app::load_component;
use soar_sdk::config::AppConfig;
use soar_sdk::registered;

pub fn run() -> i32 {
    let all = registered();
    if all.is_empty() {
        println!("No components are linked into this host (enable them with cargo features).");
        return 0;
    }
    // Components are built from the local app.config when there is one, so that handlers that
    // depend on configuration are listed as they would run.
    let config = AppConfig::locate(None)
        .and_then(|p| AppConfig::load(&p))
        .unwrap_or_else(|_| AppConfig::empty());
    for reg in all {
        println!("{} {}: {}", reg.name, reg.version, reg.description);
        if let Some(section) = reg.section {
            println!("  config section: [{section}]");
        }
        match load_component(reg, &config) {
            Ok(loaded) => {
                for f in loaded.component.functions() {
                    println!("  function: {}", f.name);
                }
                for r in loaded.component.rules() {
                    println!("  rule: \"{}\" on destination {}", r.rule, r.destination);
                }
                if loaded.component.selftest_handler().is_some() {
                    println!("  selftest: yes");
                }
            }
            Err(e) => println!("  (not built: {e})"),
        }
    }
    0
}
