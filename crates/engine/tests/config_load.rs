//! Loading app.config through the public API: files, errors, sections, typed getters and the
//! `[resilient]` options.

use std::path::Path;

use soar_engine::config::{AppConfig, ConfigError, ResilientOptions, SecretResolver};

fn isolated(text: &str) -> Result<AppConfig, ConfigError> {
    AppConfig::parse_with(
        text,
        Path::new("/x/app.config"),
        &SecretResolver::isolated(),
    )
}

#[test]
fn load_reads_file_and_reports_errors_with_path() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("app.config");
    std::fs::write(&p, "[resilient]\nhost = a\nport = 1\nHost = b\n").unwrap();
    let e = AppConfig::load_with(&p, &SecretResolver::isolated()).unwrap_err();
    assert!(matches!(e, ConfigError::Syntax(_)));
    assert_eq!(
        e.to_string(),
        format!(
            "{}:4: duplicate option 'host' in section [resilient] (first at line 2)",
            p.display()
        )
    );

    let e = AppConfig::load(&tmp.path().join("missing.config")).unwrap_err();
    assert!(matches!(e, ConfigError::Read { .. }));
    assert!(e.to_string().contains("missing.config"));

    std::fs::write(&p, b"[a]\nk = \xff\n").unwrap();
    let e = AppConfig::load(&p).unwrap_err();
    assert!(e.to_string().contains("not valid UTF-8"), "{e}");
}

#[test]
fn sections_keys_and_defaults() {
    let cfg = isolated(
        "[DEFAULT]\nd = 1\n[resilient]\nhost = h\n[fn_B]\nKey = v\nd = 2\n[Fn_b]\nx = y\n",
    )
    .unwrap();
    assert_eq!(
        cfg.section_names().collect::<Vec<_>>(),
        ["resilient", "fn_B", "Fn_b"]
    );
    assert!(cfg.has_section("fn_B"));
    assert!(!cfg.has_section("fn_b"));
    assert!(!cfg.has_section("DEFAULT"));
    assert!(cfg.section("DEFAULT").is_none());
    let s = cfg.section("fn_B").unwrap();
    assert_eq!(s.name(), "fn_B");
    assert_eq!(s.get("KEY"), Some("v"));
    assert_eq!(s.get("d"), Some("2"));
    assert_eq!(cfg.section("resilient").unwrap().get("d"), Some("1"));
    assert_eq!(
        cfg.section("Fn_b").unwrap().keys().collect::<Vec<_>>(),
        [("x", "y"), ("d", "1")]
    );
    let e = cfg.section("fn_B").unwrap().require("nope").unwrap_err();
    assert_eq!(
        e.to_string(),
        "/x/app.config: [fn_B] nope: required value is missing"
    );
}

#[test]
fn resilient_options_from_a_realistic_file() {
    let cfg = isolated(
        "[resilient]\nhost=soar.example.com\nport=443\napi_key_id=ApiKeyId\n\
         api_key_secret=ApiKeySecret\norg=My Org\nlogdir=/tmp\nlogfile=app.log\nloglevel=INFO\n\
         num_workers=50\nselftest_timeout=10\ntrap_exception=False\ncafile=~/.resilient/cert.cer\n\
         stomp_host=stomp.example.com\nstomp_port=443\nresource_prefix=/api/respond\n",
    )
    .unwrap();
    let o = ResilientOptions::from_config(&cfg).unwrap();
    assert_eq!(o.org.as_deref(), Some("My Org"));
    assert_eq!(o.num_workers, 50);
    assert_eq!(o.stomp_prefetch_limit, 50);
    assert_eq!(o.stomp_host, "stomp.example.com");
    assert_eq!(o.stomp_port, 443);
    assert_eq!(o.cafile.as_deref(), Some("~/.resilient/cert.cer"));
    assert_eq!(o.stomp_cafile, o.cafile);
    assert_eq!(o.resource_prefix.as_deref(), Some("/api/respond"));
    assert!(!o.trap_exception);
    let dbg = format!("{o:?}");
    assert!(!dbg.contains("ApiKeySecret"), "{dbg}");
}

#[test]
fn locate_explicit_path_must_exist() {
    let e = AppConfig::locate(Some(Path::new("/nonexistent/soar/app.config"))).unwrap_err();
    assert!(matches!(&e, ConfigError::NotFound { searched } if searched.len() == 1));
    assert!(e.to_string().contains("/nonexistent/soar/app.config"));
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("app.config");
    std::fs::write(&p, "").unwrap();
    assert_eq!(AppConfig::locate(Some(&p)).unwrap(), p);
}
