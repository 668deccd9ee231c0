//! `host list`: what this binary was built with.

use soar_engine::config::AppConfig;
use soar_engine::load_component;
use soar_sdk::registered;

pub fn run() -> i32 {
    let all = registered();
    if all.is_empty() {
        outln!("No components are linked into this host (enable them with cargo features).");
        return 0;
    }
    // Components are built from the local app.config when there is one, so that handlers that
    // depend on configuration are listed as they would run.
    let config = AppConfig::locate(None)
        .and_then(|p| AppConfig::load(&p))
        .unwrap_or_else(|_| AppConfig::empty());
    for reg in all {
        outln!("{} {}: {}", reg.name, reg.version, reg.description);
        let sections: Vec<String> = (reg.template)()
            .iter()
            .map(|s| match &s.family_prefix {
                Some(prefix) => format!("[{prefix}*]"),
                None => format!("[{}]", s.name),
            })
            .collect();
        if !sections.is_empty() {
            outln!("  config sections: {}", sections.join(", "));
        }
        match load_component(reg, &config) {
            Ok(loaded) => {
                let c = &loaded.component;
                for f in c.functions() {
                    outln!("  function: {}", f.name);
                }
                for r in c.rules() {
                    outln!("  rule: \"{}\" on destination {}", r.rule, r.destination);
                }
                for t in c.threat_services() {
                    outln!("  threat service: {}", t.name);
                }
                if c.has_selftest() {
                    outln!("  selftest: yes");
                }
            }
            Err(e) => outln!("  (not built: {e})"),
        }
    }
    0
}
