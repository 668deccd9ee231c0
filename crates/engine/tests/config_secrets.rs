//! `$ENV` / `^secret` substitution, secret stores and redaction data (spec §1.5), through the
//! public `soar_engine::config` API.

use std::path::{Path, PathBuf};

use soar_engine::config::secrets::{DirectoryStore, FileStore, MemoryStore, SecretError};
use soar_engine::config::{AppConfig, ConfigError, SecretResolver, SecretStore};

const FILE: &str = "/etc/rescircuits/app.config";

fn parse(text: &str, resolver: &SecretResolver) -> Result<AppConfig, ConfigError> {
    AppConfig::parse_with(text, Path::new(FILE), resolver)
}

/// What a component reading `section` is told: a `^secret` there that could not be resolved
/// stops only the component that reads it.
fn read_error(cfg: &AppConfig, section: &str) -> String {
    cfg.to_source()
        .section::<std::collections::BTreeMap<String, String>>(section)
        .expect_err("reading the section fails")
        .to_string()
}

fn get(cfg: &AppConfig, section: &str, key: &str) -> String {
    cfg.section(section).unwrap().get(key).unwrap().to_owned()
}

#[test]
fn environment_substitution() {
    let r = SecretResolver::isolated()
        .with_env("SOAR_HOST", "soar.example.com")
        .with_env("DB_USER", "app")
        .with_env("DB_PASS", "pw-from-env");
    let cfg = parse(
        "[resilient]\nhost = $SOAR_HOST\n[fn_db]\n\
         dsn = postgres://${DB_USER}:${DB_PASS}@db/${UNSET_VAR}\n\
         plain = $UNSET_VAR\nmiddle = a$SOAR_HOST\nliteral = 100% $$ cash\n",
        &r,
    )
    .unwrap();
    assert_eq!(get(&cfg, "resilient", "host"), "soar.example.com");
    assert_eq!(
        get(&cfg, "fn_db", "dsn"),
        "postgres://app:pw-from-env@db/${UNSET_VAR}"
    );
    assert_eq!(get(&cfg, "fn_db", "plain"), "$UNSET_VAR");
    assert_eq!(get(&cfg, "fn_db", "middle"), "a$SOAR_HOST");
    assert_eq!(get(&cfg, "fn_db", "literal"), "100% $$ cash");
    // Everything that came from the environment is redaction material.
    let secrets = cfg.secret_values();
    for v in ["soar.example.com", "app", "pw-from-env"] {
        assert!(secrets.iter().any(|s| s == v), "{v} not in {secrets:?}");
    }
}

#[test]
fn secret_store_substitution_and_scoping() {
    let store = MemoryStore::new()
        .with("_", "api_secret", "global-secret")
        .with("fn_a", "api_secret", "section-secret")
        .with("_", "tok", "t0k");
    let r = SecretResolver::isolated().with_store(Box::new(store));
    let cfg = parse(
        "[DEFAULT]\nshared = ^api_secret\n[resilient]\nhost = h\napi_key_secret = ^api_secret\n\
         [fn_a]\nk = ^{api_secret}\nheader = Bearer ^{tok} and ^{tok}\nregex = ^[a-z]+$\n",
        &r,
    )
    .unwrap();
    assert_eq!(get(&cfg, "resilient", "api_key_secret"), "global-secret");
    assert_eq!(get(&cfg, "fn_a", "k"), "section-secret");
    assert_eq!(get(&cfg, "fn_a", "header"), "Bearer t0k and t0k");
    // [DEFAULT] values are resolved in each section's context.
    assert_eq!(get(&cfg, "resilient", "shared"), "global-secret");
    assert_eq!(get(&cfg, "fn_a", "shared"), "section-secret");
    // Not a secret name: kept as written.
    assert_eq!(get(&cfg, "fn_a", "regex"), "^[a-z]+$");
    let secrets = cfg.secret_values();
    for v in ["global-secret", "section-secret", "t0k"] {
        assert!(secrets.iter().any(|s| s == v), "{v} not in {secrets:?}");
    }
    assert!(!format!("{cfg:?}").contains("secret-"));
}

#[test]
fn unresolved_secret_is_an_error_naming_file_section_key() {
    let r = SecretResolver::isolated().with_store(Box::new(MemoryStore::new()));
    // In a component's section: the file loads, reading the section fails.
    let cfg = parse(
        "[fn_x]\napi_token = ^missing_token\nother = 1\n[fn_y]\nk = v\n",
        &r,
    )
    .unwrap();
    let msg = read_error(&cfg, "fn_x");
    assert!(
        msg.starts_with(&format!("{FILE}: [fn_x] api_token: ")),
        "{msg}"
    );
    assert!(
        msg.contains("missing_token") && msg.contains("memory store"),
        "{msg}"
    );
    assert!(
        cfg.to_source()
            .section::<std::collections::BTreeMap<String, String>>("fn_y")
            .is_ok(),
        "another section is not affected"
    );
    // In [resilient], which every start needs: the file does not load.
    let e = parse("[resilient]\napi_key_secret = ^missing_token\n", &r).unwrap_err();
    assert!(
        matches!(&e, ConfigError::Secret { section, key, .. } if section == "resilient" && key == "api_key_secret")
    );

    // Braced references always need a store.
    let cfg = parse(
        "[fn_x]\nregex = ^{not a name}\n",
        &SecretResolver::isolated(),
    )
    .unwrap();
    let msg = read_error(&cfg, "fn_x");
    assert!(msg.contains("no secret store is configured"), "{msg}");
    // A "name" that is not one may be a literal password: the error does not show it
    // (found by fuzzing: an unclosed `^{` took the rest of the line as the name).
    let cfg = parse("[fn_x]\npassword = ^{pa55 w0rd-xyz\n", &r).unwrap();
    let msg = read_error(&cfg, "fn_x");
    assert!(!msg.contains("pa55") && !msg.contains("w0rd"), "{msg}");
    assert!(
        msg.contains("not shown") && msg.contains("memory store"),
        "{msg}"
    );
    // Nor is one that looks like a name but whose `^{` is never closed.
    let cfg = parse("[fn_x]\npassword = ^{pa55w0rd-xyz\n", &r).unwrap();
    let msg = read_error(&cfg, "fn_x");
    assert!(!msg.contains("pa55w0rd"), "{msg}");
    assert!(msg.contains("not shown"), "{msg}");
    // A closed reference is named, to say which secret to add.
    let cfg = parse("[fn_x]\npassword = ^{fn_x_password}\n", &r).unwrap();
    let msg = read_error(&cfg, "fn_x");
    assert!(msg.contains("secret 'fn_x_password'"), "{msg}");
}

#[test]
fn env_text_is_not_looked_up_as_a_secret() {
    let r = SecretResolver::isolated().with_env("PW", "^starts-with-caret");
    let cfg = parse("[a]\npassword = $PW\n", &r).unwrap();
    assert_eq!(get(&cfg, "a", "password"), "^starts-with-caret");
}

#[test]
fn redaction_candidates_by_key_name() {
    let cfg = parse(
        "[resilient]\nhost = h\napi_key_id = the-id\napi_key_secret = the-secret\n\
         password = the-password\nno_prompt_password = True\nmax_connection_retries = 5\n\
         [fn_a]\nslack_token = xoxb-1\npasscode = 4242\nempty_password =\n",
        &SecretResolver::isolated(),
    )
    .unwrap();
    let s = cfg.secret_values();
    for v in ["the-secret", "the-password", "xoxb-1", "4242"] {
        assert!(s.iter().any(|x| x == v), "{v} not in {s:?}");
    }
    for v in ["the-id", "h", "True", "5", ""] {
        assert!(!s.iter().any(|x| x == v), "{v} in {s:?}");
    }
    // Longest first, so that a redactor replaces "abc123" before "abc".
    assert!(s.windows(2).all(|w| w[0].len() >= w[1].len()));
}

#[test]
fn invalid_secret_values_are_not_echoed() {
    let cfg = parse(
        "[a]\nproxy_password = hunter2\nport = hunter3\n",
        &SecretResolver::isolated(),
    )
    .unwrap();
    let s = cfg.section("a").unwrap();
    let e = s.parse::<u16>("proxy_password").unwrap_err().to_string();
    assert!(!e.contains("hunter2"), "{e}");
    let e = s.parse::<u16>("port").unwrap_err().to_string();
    assert!(e.contains("hunter3"), "{e}");
}

#[cfg(unix)]
mod files {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn chmod(p: &Path, mode: u32) {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    fn write(p: &Path, text: &str, mode: u32) {
        std::fs::write(p, text).unwrap();
        chmod(p, mode);
    }

    fn secrets_dir() -> (tempfile::TempDir, PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("secrets");
        std::fs::create_dir(&dir).unwrap();
        chmod(&dir, 0o700);
        std::fs::create_dir(dir.join("fn_a")).unwrap();
        chmod(&dir.join("fn_a"), 0o700);
        write(&dir.join("token"), "top-level\n", 0o600);
        write(&dir.join("fn_a/token"), "in-section\r\n", 0o600);
        (tmp, dir)
    }

    #[test]
    fn directory_store() {
        let (_tmp, dir) = secrets_dir();
        let store = DirectoryStore::open(&dir).unwrap();
        assert_eq!(
            store.lookup("fn_a", "token").unwrap().as_deref(),
            Some("in-section")
        );
        assert_eq!(
            store.lookup("fn_b", "token").unwrap().as_deref(),
            Some("top-level")
        );
        assert_eq!(store.lookup("fn_a", "nope").unwrap(), None);
        assert!(matches!(
            store.lookup("fn_a", "../token"),
            Err(SecretError::InvalidName { .. })
        ));
        // A section name that is not a plain path component only uses the top level.
        assert_eq!(
            store.lookup("../x", "token").unwrap().as_deref(),
            Some("top-level")
        );

        chmod(&dir.join("token"), 0o644);
        let e = store.lookup("fn_b", "token").unwrap_err();
        assert!(
            matches!(e, SecretError::Insecure { mode: 0o644, .. }),
            "{e}"
        );
        assert!(e.to_string().contains("chmod go-rwx"));
        chmod(&dir, 0o755);
        assert!(matches!(
            DirectoryStore::open(&dir),
            Err(SecretError::Insecure { .. })
        ));
    }

    #[test]
    fn file_store_permissions() {
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("secrets.ini");
        write(&f, "token = top\n[fn_a]\ntoken = sect\n", 0o600);
        let store = FileStore::open(&f).unwrap();
        assert_eq!(
            store.lookup("fn_a", "token").unwrap().as_deref(),
            Some("sect")
        );
        assert_eq!(
            store.lookup("resilient", "token").unwrap().as_deref(),
            Some("top")
        );
        chmod(&f, 0o640);
        assert!(matches!(
            FileStore::open(&f),
            Err(SecretError::Insecure { .. })
        ));
    }

    #[test]
    fn not_owned_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("secrets.ini");
        write(&f, "token = top\n", 0o600);
        // Only root can give a file away; elsewhere this case cannot be set up.
        if std::os::unix::fs::chown(&f, Some(54_321), None).is_ok() {
            let e = FileStore::open(&f).unwrap_err();
            assert!(
                matches!(e, SecretError::NotOwned { owner: 54_321, .. }),
                "{e}"
            );
        }
    }

    #[test]
    fn automatic_selection_app_secrets_env() {
        let (_tmp, dir) = secrets_dir();
        let r = SecretResolver::isolated()
            .with_env("APP_SECRETS", dir.to_str().unwrap())
            .with_automatic_stores(None);
        let cfg = parse("[fn_a]\napi_token = ^token\n[fn_b]\nt = ^{token}\n", &r).unwrap();
        assert_eq!(get(&cfg, "fn_a", "api_token"), "in-section");
        assert_eq!(get(&cfg, "fn_b", "t"), "top-level");

        let r = SecretResolver::isolated()
            .with_env("APP_SECRETS", "/nonexistent/soar-secrets")
            .with_automatic_stores(None);
        let cfg = parse("[fn_a]\napi_token = ^token\n", &r).unwrap();
        let e = read_error(&cfg, "fn_a");
        assert!(e.contains("APP_SECRETS"), "{e}");
        // A broken store only matters when a value needs it.
        parse("[fn_a]\nplain = 1\n", &r).unwrap();
    }

    #[test]
    fn automatic_selection_config_key_and_home() {
        let tmp = tempfile::tempdir().unwrap();
        let conf_dir = tmp.path().join("conf");
        std::fs::create_dir(&conf_dir).unwrap();
        write(&conf_dir.join("app.secrets"), "token = from-file\n", 0o600);
        let text = "[resilient]\nhost = h\nsecrets = app.secrets\n[fn_a]\nk = ^token\n";
        let r = SecretResolver::isolated().with_automatic_stores(None);
        let cfg = AppConfig::parse_with(text, &conf_dir.join("app.config"), &r).unwrap();
        assert_eq!(get(&cfg, "fn_a", "k"), "from-file");

        let home = tmp.path().join("home");
        std::fs::create_dir_all(home.join(".resilient")).unwrap();
        write(
            &home.join(".resilient/secrets"),
            "[fn_a]\ntoken = from-home\n",
            0o600,
        );
        let r = SecretResolver::isolated().with_automatic_stores(Some(home.clone()));
        let cfg = parse("[fn_a]\nk = ^token\n", &r).unwrap();
        assert_eq!(get(&cfg, "fn_a", "k"), "from-home");

        // No store anywhere (and no keyring feature): a clear error.
        if !cfg!(feature = "keyring") {
            let r = SecretResolver::isolated().with_automatic_stores(Some(tmp.path().join("none")));
            let cfg = parse("[fn_a]\nk = ^token\n", &r).unwrap();
            let e = read_error(&cfg, "fn_a");
            assert!(e.contains("no secret store is configured"), "{e}");
        }
    }

    #[test]
    fn load_from_disk() {
        let (_tmp, dir) = secrets_dir();
        let conf = dir.parent().unwrap().join("app.config");
        std::fs::write(
            &conf,
            "\u{feff}[resilient]\nhost = h\napi_key_id = id\napi_key_secret = ^token\n",
        )
        .unwrap();
        let r = SecretResolver::isolated()
            .with_env("APP_SECRETS", dir.to_str().unwrap())
            .with_automatic_stores(None);
        let cfg = AppConfig::load_with(&conf, &r).unwrap();
        assert_eq!(get(&cfg, "resilient", "api_key_secret"), "top-level");
        assert_eq!(cfg.path(), conf);
    }
}
