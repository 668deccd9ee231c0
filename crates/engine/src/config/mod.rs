//! Reading `app.config`, the resilient-circuits configuration file, unchanged (spec §1).
//!
//! * [`ini`]: the INI parser with Python `configparser` semantics.
//! * [`secrets`]: `$ENV` / `${ENV}` and `^secret` / `^{secret}` substitution and redaction data.
//! * [`resilient`]: the typed `[resilient]` section ([`ResilientOptions`]).
//! * [`template`]: the text written by `host config -c` / `-u`.
//!
//! [`AppConfig::load`] reads, parses and resolves a file once; afterwards every value is a plain
//! string. Keys are lower-case, section names case-sensitive, and `[DEFAULT]` options appear in
//! every section.
//!
//! ```
//! # use soar_engine::config::AppConfig;
//! # use std::path::Path;
//! let cfg = AppConfig::parse("[resilient]\nhost = soar.example.com\n", Path::new("app.config")).unwrap();
//! let section = cfg.section("resilient").unwrap();
//! assert_eq!(section.get("HOST"), Some("soar.example.com"));
//! assert_eq!(section.parse::<u16>("port").unwrap(), None);
//! ```

pub mod ini;
pub mod resilient;
pub mod secret_admin;
pub mod secrets;
pub mod template;

use std::fmt;
use std::fmt::Display;
use std::io;
use std::path::{Path, PathBuf};
use std::str::FromStr;

pub use ini::IniError;
pub use resilient::{Credentials, LogFormat, LogLevel, ResilientOptions};
pub use secrets::{SecretError, SecretResolver, SecretStore};
pub use soar_sdk::Secret;
pub use soar_sdk::config::{ConfigSource, is_secret_key};

/// Everything that can go wrong while locating, reading or interpreting app.config.
///
/// Messages name the file, section and key, never a secret value.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// No app.config in any of the searched places.
    #[error("no app.config found (looked for {})", display_paths(.searched))]
    NotFound {
        /// The candidates, in search order.
        searched: Vec<PathBuf>,
    },
    /// The file exists but cannot be read (or is not UTF-8).
    #[error("cannot read {}: {source}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// INI syntax error.
    #[error(transparent)]
    Syntax(#[from] IniError),
    /// A required key is absent or empty.
    #[error("{}: [{section}] {key}: required value is missing", .file.display())]
    Missing {
        /// The file.
        file: PathBuf,
        /// The section.
        section: String,
        /// The key.
        key: String,
    },
    /// A required section is absent.
    #[error("{}: section [{section}] is missing", .file.display())]
    MissingSection {
        /// The file.
        file: PathBuf,
        /// The section.
        section: String,
    },
    /// A value cannot be interpreted. `reason` omits the value when the key [`is_secret_key`].
    #[error("{}: [{section}] {key}: {reason}", .file.display())]
    Invalid {
        /// The file.
        file: PathBuf,
        /// The section.
        section: String,
        /// The key.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// A `^secret` could not be resolved.
    #[error("{}: [{section}] {key}: {reason}", .file.display())]
    Secret {
        /// The file.
        file: PathBuf,
        /// The section.
        section: String,
        /// The key.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// A component's own section.
    #[error(transparent)]
    Component(#[from] soar_sdk::ConfigError),
}

fn display_paths(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// `~` or `~/...` expanded with `home`.
pub(crate) fn expand_tilde(path: &str, home: Option<&Path>) -> PathBuf {
    match (home, path.strip_prefix('~')) {
        (Some(home), Some("")) => home.to_owned(),
        (Some(home), Some(rest)) if rest.starts_with(['/', '\\']) => home.join(&rest[1..]),
        _ => PathBuf::from(path),
    }
}

#[derive(Clone)]
struct SectionData {
    name: String,
    items: Vec<(String, String)>,
    /// Keys whose `^secret` could not be resolved, and why: reading the section fails.
    unresolved: Vec<(String, String)>,
}

/// A loaded app.config: sections in file order, values resolved.
#[derive(Clone)]
pub struct AppConfig {
    path: PathBuf,
    sections: Vec<SectionData>,
    secret_values: Vec<String>,
    /// Keys of `[DEFAULT]` (cascaded into every section).
    default_keys: Vec<String>,
    env: secrets::EnvView,
}

impl fmt::Debug for AppConfig {
    // Only section and key names: values may be secrets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut m = f.debug_map();
        m.entry(&"path", &self.path);
        for s in &self.sections {
            m.entry(
                &s.name,
                &s.items.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
            );
        }
        m.entry(&"secret_values", &self.secret_values.len());
        m.finish()
    }
}

impl AppConfig {
    /// Finds the file (spec §1.1): `explicit` (e.g. `--config-file`), else `$APP_CONFIG_FILE`,
    /// else `./app.config`, else `~/.resilient/app.config`. An explicit path or
    /// `$APP_CONFIG_FILE` must exist (no fall-through); `~` is expanded in both.
    pub fn locate(explicit: Option<&Path>) -> Result<PathBuf, ConfigError> {
        locate_in(
            explicit,
            std::env::var("APP_CONFIG_FILE").ok(),
            std::env::current_dir().ok(),
            std::env::home_dir(),
        )
    }

    /// Reads, parses and resolves `path` with [`SecretResolver::system`].
    pub fn load(path: &Path) -> Result<AppConfig, ConfigError> {
        Self::load_with(path, &SecretResolver::system())
    }

    /// Like [`load`](Self::load) with an explicit resolver.
    pub fn load_with(path: &Path, resolver: &SecretResolver) -> Result<AppConfig, ConfigError> {
        let read_err = |source| ConfigError::Read {
            path: path.to_owned(),
            source,
        };
        let bytes = std::fs::read(path).map_err(read_err)?;
        let text = String::from_utf8(bytes).map_err(|e| {
            read_err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("not valid UTF-8 (at byte {})", e.utf8_error().valid_up_to()),
            ))
        })?;
        Self::parse_with(&text, path, resolver)
    }

    /// Parses and resolves `text` with [`SecretResolver::system`]; `path` is used in messages
    /// (and to locate a relative `[resilient] secrets` path).
    pub fn parse(text: &str, path: &Path) -> Result<AppConfig, ConfigError> {
        Self::parse_with(text, path, &SecretResolver::system())
    }

    /// Like [`parse`](Self::parse) with an explicit resolver.
    pub fn parse_with(
        text: &str,
        path: &Path,
        resolver: &SecretResolver,
    ) -> Result<AppConfig, ConfigError> {
        let ini = ini::Ini::parse(text, path)?;
        let resolved = secrets::resolve(&ini, path, resolver)?;
        let default_keys = ini.defaults.iter().map(|e| e.key.clone()).collect();
        Ok(AppConfig {
            default_keys,
            path: path.to_owned(),
            sections: resolved
                .sections
                .into_iter()
                .map(|s| SectionData {
                    name: s.name,
                    items: s.items,
                    unresolved: s.unresolved,
                })
                .collect(),
            secret_values: resolved.secret_values,
            env: resolver.env_snapshot(),
        })
    }

    /// A configuration with no sections (path empty), e.g. for tests of components without a
    /// section.
    pub fn empty() -> AppConfig {
        AppConfig {
            path: PathBuf::new(),
            sections: Vec::new(),
            secret_values: Vec::new(),
            default_keys: Vec::new(),
            env: secrets::EnvView::default(),
        }
    }

    /// The file this configuration came from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Section `name` (case-sensitive) with `[DEFAULT]` cascaded; `[DEFAULT]` itself is not a
    /// section.
    pub fn section(&self, name: &str) -> Option<Section<'_>> {
        self.sections
            .iter()
            .find(|s| s.name == name)
            .map(|data| Section { cfg: self, data })
    }

    /// Section `name`, or [`ConfigError::MissingSection`].
    pub fn require_section(&self, name: &str) -> Result<Section<'_>, ConfigError> {
        self.section(name)
            .ok_or_else(|| ConfigError::MissingSection {
                file: self.path.clone(),
                section: name.to_owned(),
            })
    }

    /// Section names in file order (without `DEFAULT`).
    pub fn section_names(&self) -> impl Iterator<Item = &str> {
        self.sections.iter().map(|s| s.name.as_str())
    }

    /// Whether section `name` exists (`DEFAULT` does not count, as in Python).
    pub fn has_section(&self, name: &str) -> bool {
        self.sections.iter().any(|s| s.name == name)
    }

    /// Values to mask in logs: everything inserted by a `$`/`^` substitution and the values of
    /// keys that [`is_secret_key`]. Non-empty, de-duplicated, longest first.
    pub fn secret_values(&self) -> &[String] {
        &self.secret_values
    }

    /// The resolved sections, for a component's typed sections. A section with a `^secret`
    /// that could not be resolved fails when read.
    pub fn to_source(&self) -> ConfigSource {
        self.sections
            .iter()
            .fold(ConfigSource::new(&self.path), |source, s| {
                let source = source.with_section(s.name.clone(), s.items.iter().cloned());
                s.unresolved.iter().fold(source, |source, (key, reason)| {
                    source.with_unusable(s.name.clone(), key.clone(), reason.clone())
                })
            })
            .with_default_keys(self.default_keys.iter().cloned())
    }

    /// An environment variable as seen when the file was loaded.
    pub(crate) fn env_var(&self, name: &str) -> Option<String> {
        self.env.var(name)
    }
}

fn locate_in(
    explicit: Option<&Path>,
    app_config_file: Option<String>,
    cwd: Option<PathBuf>,
    home: Option<PathBuf>,
) -> Result<PathBuf, ConfigError> {
    let must_exist = |p: PathBuf| {
        if p.is_file() {
            Ok(p)
        } else {
            Err(ConfigError::NotFound { searched: vec![p] })
        }
    };
    if let Some(p) = explicit {
        let p = p
            .to_str()
            .map_or_else(|| p.to_owned(), |s| expand_tilde(s, home.as_deref()));
        return must_exist(p);
    }
    if let Some(v) = app_config_file.filter(|v| !v.is_empty()) {
        return must_exist(expand_tilde(&v, home.as_deref()));
    }
    let mut searched = Vec::new();
    let local = cwd.unwrap_or_default().join("app.config");
    if local.is_file() {
        return Ok(local);
    }
    searched.push(local);
    if let Some(home) = home {
        let p = home.join(".resilient").join("app.config");
        if p.is_file() {
            return Ok(p);
        }
        searched.push(p);
    }
    Err(ConfigError::NotFound { searched })
}

/// One section of an [`AppConfig`], `[DEFAULT]` cascaded.
#[derive(Clone, Copy)]
pub struct Section<'a> {
    cfg: &'a AppConfig,
    data: &'a SectionData,
}

impl fmt::Debug for Section<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Section")
            .field("name", &self.data.name)
            .field(
                "keys",
                &self.data.items.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// Python-ish booleans: `1/true/yes/on`, `0/false/no/off`, any case.
pub(crate) fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

fn short_type_name<T>() -> &'static str {
    let full = std::any::type_name::<T>();
    let base = full.split('<').next().unwrap_or(full);
    base.rsplit("::").next().unwrap_or(base)
}

impl<'a> Section<'a> {
    /// The section name.
    pub fn name(&self) -> &'a str {
        &self.data.name
    }

    /// The file the section came from.
    pub fn file(&self) -> &'a Path {
        &self.cfg.path
    }

    /// The value of `key` (lower-cased here), `None` if absent.
    pub fn get(&self, key: &str) -> Option<&'a str> {
        let key = key.to_lowercase();
        self.data
            .items
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The value of `key`, or [`ConfigError::Missing`] if it is absent or empty.
    pub fn require(&self, key: &str) -> Result<&'a str, ConfigError> {
        match self.get(key) {
            Some(v) if !v.is_empty() => Ok(v),
            _ => Err(ConfigError::Missing {
                file: self.cfg.path.clone(),
                section: self.data.name.clone(),
                key: key.to_lowercase(),
            }),
        }
    }

    /// An [`ConfigError::Invalid`] for `key` of this section, for callers' own validation.
    pub fn invalid(&self, key: &str, reason: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            file: self.cfg.path.clone(),
            section: self.data.name.clone(),
            key: key.to_lowercase(),
            reason: reason.into(),
        }
    }

    /// `key` parsed with [`FromStr`]; `Ok(None)` if absent or empty.
    pub fn parse<T: FromStr>(&self, key: &str) -> Result<Option<T>, ConfigError>
    where
        T::Err: Display,
    {
        match self.get(key) {
            None | Some("") => Ok(None),
            Some(v) => v.parse::<T>().map(Some).map_err(|e| {
                self.invalid(
                    key,
                    if is_secret_key(key) {
                        format!("not a valid {}", short_type_name::<T>())
                    } else {
                        format!("invalid value '{v}': {e}")
                    },
                )
            }),
        }
    }

    /// `key` as a boolean (`1/true/yes/on`, `0/false/no/off`, any case); `Ok(None)` if absent or
    /// empty, [`ConfigError::Invalid`] otherwise.
    pub fn bool(&self, key: &str) -> Result<Option<bool>, ConfigError> {
        match self.get(key) {
            None | Some("") => Ok(None),
            Some(v) => parse_bool(v).map(Some).ok_or_else(|| {
                let shown = if is_secret_key(key) {
                    String::new()
                } else {
                    format!(", got '{v}'")
                };
                self.invalid(
                    key,
                    format!("expected a boolean (true/false, yes/no, on/off, 1/0){shown}"),
                )
            }),
        }
    }

    /// `(key, value)` pairs in Python's `config.options(section)` order: the section's own keys in
    /// file order, then the `[DEFAULT]` keys it does not override.
    pub fn keys(&self) -> impl Iterator<Item = (&'a str, &'a str)> + use<'a> {
        self.data
            .items
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(text: &str) -> AppConfig {
        AppConfig::parse_with(
            text,
            Path::new("/etc/app.config"),
            &SecretResolver::isolated(),
        )
        .unwrap()
    }

    #[test]
    fn typed_getters() {
        let c = cfg("[a]\nn = 5\nbad = x\nempty =\nb = Yes\nnb = maybe\npassword = p\n");
        let s = c.section("a").unwrap();
        assert_eq!(s.parse::<u32>("N").unwrap(), Some(5));
        assert_eq!(s.parse::<u32>("empty").unwrap(), None);
        assert_eq!(s.parse::<u32>("absent").unwrap(), None);
        let e = s.parse::<u32>("bad").unwrap_err().to_string();
        assert_eq!(
            e,
            "/etc/app.config: [a] bad: invalid value 'x': invalid digit found in string"
        );
        let e = s.parse::<u32>("password").unwrap_err().to_string();
        assert_eq!(e, "/etc/app.config: [a] password: not a valid u32");
        assert_eq!(s.bool("b").unwrap(), Some(true));
        assert!(s.bool("nb").is_err());
        assert!(matches!(
            s.require("empty"),
            Err(ConfigError::Missing { .. })
        ));
        assert_eq!(s.require("n").unwrap(), "5");
    }

    #[test]
    fn debug_hides_values() {
        let c = cfg("[a]\npassword = hunter2\n");
        assert!(!format!("{c:?}").contains("hunter2"));
        assert!(!format!("{:?}", c.section("a").unwrap()).contains("hunter2"));
        assert_eq!(c.secret_values(), ["hunter2"]);
        assert_eq!(format!("{:?}", Secret::new("hunter2")), "***");
    }

    #[test]
    fn locate_order() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        let cwd = dir.path().join("cwd");
        std::fs::create_dir_all(home.join(".resilient")).unwrap();
        std::fs::create_dir_all(&cwd).unwrap();
        let home_cfg = home.join(".resilient/app.config");
        let local_cfg = cwd.join("app.config");
        let e = locate_in(None, None, Some(cwd.clone()), Some(home.clone())).unwrap_err();
        assert!(matches!(e, ConfigError::NotFound { ref searched } if searched.len() == 2));
        std::fs::write(&home_cfg, "").unwrap();
        assert_eq!(
            locate_in(None, None, Some(cwd.clone()), Some(home.clone())).unwrap(),
            home_cfg
        );
        std::fs::write(&local_cfg, "").unwrap();
        assert_eq!(
            locate_in(None, None, Some(cwd.clone()), Some(home.clone())).unwrap(),
            local_cfg
        );
        assert_eq!(
            locate_in(
                None,
                Some("~/.resilient/app.config".into()),
                Some(cwd.clone()),
                Some(home.clone())
            )
            .unwrap(),
            home_cfg
        );
        let missing = dir.path().join("nope.config");
        let e = locate_in(
            Some(&missing),
            Some(local_cfg.display().to_string()),
            Some(cwd.clone()),
            Some(home.clone()),
        )
        .unwrap_err();
        assert!(
            matches!(e, ConfigError::NotFound { ref searched } if *searched == [missing.clone()])
        );
        assert_eq!(
            locate_in(Some(&home_cfg), None, Some(cwd), Some(home)).unwrap(),
            home_cfg
        );
    }
}
