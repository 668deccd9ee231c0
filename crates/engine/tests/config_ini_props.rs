//! Property tests: the INI parser and the whole load pipeline never panic, and successful parses
//! satisfy the format's invariants.

use std::path::Path;

use proptest::prelude::*;
use soar_engine::config::ini::Ini;
use soar_engine::config::secrets::MemoryStore;
use soar_engine::config::{AppConfig, ResilientOptions, SecretResolver};

/// Characters that matter to the grammar, plus some Unicode whitespace and `$`/`^`/`{}`.
const TRICKY: &str = "[\\[\\]=:#; \t\r\n\u{feff}\u{a0}\u{1c}\u{85}\u{2028}$^{}%aAbBkK0-9Σ]{0,300}";

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn parser_never_panics_on_arbitrary_text(text in ".*") {
        let _ = Ini::parse(&text, Path::new("f"));
    }

    #[test]
    fn parser_invariants_on_tricky_text(text in TRICKY) {
        if let Ok(ini) = Ini::parse(&text, Path::new("f")) {
            for s in &ini.sections {
                prop_assert!(!s.name.is_empty());
                for e in s.entries.iter().chain(&ini.defaults) {
                    prop_assert!(!e.key.is_empty());
                    prop_assert_eq!(e.key.to_lowercase(), e.key.clone());
                    prop_assert!(!e.value.ends_with('\n'));
                }
            }
        }
    }

    #[test]
    fn load_pipeline_never_panics(text in TRICKY) {
        let resolver = SecretResolver::isolated()
            .with_env("a", "x")
            .with_store(Box::new(MemoryStore::new().with("_", "k", "secret")));
        if let Ok(cfg) = AppConfig::parse_with(&text, Path::new("f"), &resolver) {
            let _ = ResilientOptions::from_config(&cfg);
            for name in cfg.section_names() {
                let s = cfg.section(name).unwrap();
                for (k, _) in s.keys() {
                    let _ = s.parse::<u32>(k);
                    let _ = s.bool(k);
                }
            }
        }
    }
}
