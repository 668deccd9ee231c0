//! app.config target: the INI parser, `$ENV`/`^secret` substitution, the typed `[resilient]`
//! section and the components' typed sections, all from one input, without touching the file
//! system or the process environment.

use std::path::Path;

use soar_engine::config::ini::Ini;
use soar_engine::config::secrets::{FileStore, MemoryStore};
use soar_engine::config::{AppConfig, ResilientOptions, SecretResolver, is_secret_key};
use soar_engine::threat::{CustomThreatService, Webserver};
use soar_sdk::config::{Integrations, Sections, Setup};

/// The file name errors are reported against.
const FILE: &str = "/fuzz/app.config";

/// `app_config`: `data` is `app.config text`, optionally followed by `\0` and a secrets file
/// (`[section]` and `name = value` lines), optionally followed by `\0` and `NAME=VALUE`
/// environment lines. A leading `REPEAT <n>` line repeats the rest (see [`crate::expand`]).
///
/// The config is parsed with an isolated resolver (only those variables, the secrets file and
/// one fixed memory store), then `[resilient]`, `[integrations]`, `[webserver]`,
/// `[custom_threat_service]`, `[fn_hello]`, `[fn_slack]` and the TruSTAR sections are read
/// into their typed structs. Errors are fine; panics are not, and neither is an error message
/// that shows the value of a secret key (`password`, `api_key_secret`, …).
pub fn app_config(data: &[u8]) {
    let data = crate::expand(data);
    let text = crate::text(&data);
    let mut parts = text.splitn(3, '\0');
    let config = parts.next().unwrap_or_default();
    let secrets = parts.next();
    let env = parts.next().unwrap_or_default();

    let file = Path::new(FILE);
    let _ = Ini::parse(config, file);

    let mut resolver = SecretResolver::isolated().with_store(Box::new(
        MemoryStore::new()
            .with("_", "fuzz_secret", "s3cr3t-from-the-store")
            .with("resilient", "api_key_secret", "k3y-s3cr3t-value"),
    ));
    if let Some(secrets) = secrets {
        match FileStore::parse(secrets, Path::new("/fuzz/secrets")) {
            Ok(store) => resolver = resolver.with_store(Box::new(store)),
            Err(e) => {
                let _ = e.to_string();
            }
        }
    }
    for line in env.lines() {
        if let Some((name, value)) = line.split_once('=') {
            resolver = resolver.with_env(name, value);
        }
    }

    let cfg = match AppConfig::parse_with(config, file, &resolver) {
        Ok(cfg) => cfg,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    let env_values = env
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(_, v)| v);
    let secrets = SecretsOf::new(&cfg, env_values);
    let _ = format!("{cfg:?}");
    for name in cfg.section_names() {
        let section = cfg.section(name).expect("a listed section exists");
        for (key, _) in section.keys() {
            assert!(
                section.get(key).is_some(),
                "listed key {key:?} has no value"
            );
            let _ = section.parse::<i64>(key).map_err(|e| secrets.check(&e));
            let _ = section.bool(key).map_err(|e| secrets.check(&e));
        }
    }
    if let Err(e) = ResilientOptions::from_config(&cfg) {
        secrets.check(&e);
    }

    let source = cfg.to_source();
    let setup = Setup::from_source(&source).map_err(|e| secrets.check(&e));
    secrets.check_result(Option::<Integrations>::load(&source));
    secrets.check_result(Option::<Webserver>::load(&source));
    secrets.check_result(Option::<CustomThreatService>::load(&source));
    secrets.check_result(fn_hello::HelloConfig::load(&source));
    secrets.check_result(Option::<fn_slack::SlackSection>::load(&source));
    secrets.check_result(fn_trustar::config::TrustarSections::load(&source));
    if let Ok(setup) = setup {
        let _ = setup.platform_url();
    }
    let _ = source.warnings();
}

/// The values of secret keys, to look for in error messages.
struct SecretsOf {
    values: Vec<String>,
    /// The values of other keys, of the environment variables, the section and key names and
    /// the names of referenced secrets:
    /// an error may quote one of them (`LOGLEVEL` overrides `loglevel`: "invalid value '…' from
    /// environment variable LOGLEVEL"), and a secret value can then appear inside it or across
    /// it and the quote or bracket the message adds (`'0a1b` in `'0a1b, 9f8e'`, `…ce]` after a
    /// section named `…ce`).
    plain: Vec<String>,
}

impl SecretsOf {
    fn new<'a>(cfg: &AppConfig, env_values: impl Iterator<Item = &'a str>) -> SecretsOf {
        let mut secret = Vec::new();
        let mut other = Vec::new();
        let mut names = vec![FILE.to_string()];
        for name in cfg.section_names() {
            names.push(name.to_string());
            let Some(section) = cfg.section(name) else {
                continue;
            };
            for (key, value) in section.keys() {
                names.push(key.to_string());
                if is_secret_key(key) {
                    // A `^name` or `^{name}` reference names a secret: the name is no secret
                    // ("secret 'name' not found" quotes it).
                    if let Some(reference) = value.strip_prefix('^') {
                        names.push(
                            reference
                                .trim_start_matches('{')
                                .trim_end_matches('}')
                                .to_string(),
                        );
                    }
                    secret.push(value.to_string());
                } else {
                    other.push(value.to_string());
                }
            }
        }
        // Only values that cannot be in a message for another reason: long, a letter and a
        // digit, no blank, not the value of a key that is not secret, not part of a name.
        let values = secret
            .into_iter()
            .filter(|v| {
                v.chars().count() >= 8
                    && v.chars().any(|c| c.is_ascii_alphabetic())
                    && v.chars().any(|c| c.is_ascii_digit())
                    && !v.contains(char::is_whitespace)
                    && !other.iter().any(|o| o.contains(v.as_str()))
                    && !names.iter().any(|n| n.contains(v.as_str()))
            })
            .collect::<Vec<String>>();
        let env_values = env_values.map(str::to_string);
        let plain = (other.into_iter().chain(names).chain(env_values))
            .filter(|o| !o.is_empty())
            .collect();
        SecretsOf { values, plain }
    }

    /// Panics when `error`'s message shows a secret value where it does not quote another
    /// key's value or a name: each occurrence must lie within an occurrence of one of those,
    /// widened by the character on each side (the quote or bracket the message adds).
    fn check(&self, error: &dyn std::fmt::Display) {
        if self.values.is_empty() {
            return;
        }
        let message = error.to_string();
        // Most messages show no secret value at all; only those that seem to are looked at.
        if !self.values.iter().any(|v| message.contains(v.as_str())) {
            return;
        }
        let quoted: Vec<(usize, usize)> = (self.plain.iter())
            .flat_map(|p| {
                (message.match_indices(p.as_str()))
                    .map(|(at, _)| (at.saturating_sub(1), at + p.len() + 1))
            })
            .collect();
        for v in &self.values {
            for (at, _) in message.match_indices(v.as_str()) {
                let end = at + v.len();
                if !quoted.iter().any(|&(from, to)| from <= at && end <= to) {
                    panic!("an app.config error message shows the secret value {v:?}: {message}");
                }
            }
        }
    }

    fn check_result<T, E: std::fmt::Display>(&self, result: Result<T, E>) {
        if let Err(e) = result {
            self.check(&e);
        }
    }
}
