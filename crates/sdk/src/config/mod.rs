//! app.config sections as typed structs, vector-style.
//!
//! A component declares each section it reads as a serde struct whose doc comments document its
//! keys, and implements [`Section`] (the name). The default text that `host config -c|-u` writes is
//! generated from the struct ([`template`]): each key with its doc comment and its default (or an
//! example for a required key). Values are read with Python configparser's string semantics
//! ([`ConfigSource::section`]): numbers and booleans (`1/true/yes/on`, `0/false/no/off`) are
//! parsed from text, an empty value is `None` for an `Option`, a `Vec` is a comma-separated list.
//! Errors name the file, section and key (never a secret value); keys the struct does not know are
//! reported as warnings ([`ConfigSource::warnings`]).
//!
//! ```
//! use serde::{Deserialize, Serialize};
//! use soar_sdk::config::{ConfigSource, Section, Sections};
//!
//! /// Settings of the example integration.
//! #[derive(Debug, Deserialize, Serialize, schemars::JsonSchema)]
//! struct Example {
//!     /// Longest delay a caller may ask for, in milliseconds.
//!     #[serde(default = "default_delay")]
//!     max_delay_ms: u64,
//!     /// The service's API key.
//!     #[schemars(example = "^example_api_key")]
//!     api_key: soar_sdk::Secret,
//! }
//! fn default_delay() -> u64 { 60_000 }
//! impl Section for Example { const NAME: &'static str = "fn_example"; }
//!
//! let source = ConfigSource::new("app.config").with_section("fn_example", [("api_key", "k")]);
//! let example = Example::load(&source).unwrap();
//! assert_eq!(example.max_delay_ms, 60_000);
//! let text = soar_sdk::config::template::render(&<Example as Sections>::template());
//! assert!(text.contains("# Longest delay a caller may ask for, in milliseconds.\nmax_delay_ms = 60000\n"));
//! ```

mod de;
pub mod template;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

pub use template::TemplateSection;

/// Why a component's configuration cannot be used. The text names file, section and key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A section with required keys is absent.
    #[error("{}: section [{section}] is missing (`host config -u` appends a template of it)", .file.display())]
    MissingSection { file: PathBuf, section: String },
    /// A required key is absent or empty.
    #[error("{}: [{section}] {key}: required value is missing", .file.display())]
    Missing {
        file: PathBuf,
        section: String,
        key: String,
    },
    /// A value cannot be used; `reason` says why (and never shows a secret).
    #[error("{}: [{section}] {key}: {reason}", .file.display())]
    Invalid {
        file: PathBuf,
        section: String,
        key: String,
        reason: String,
    },
}

/// A password, API secret or token. `Debug` prints `***` and there is no `Display`, so the value
/// is only reachable through [`Secret::expose`]. It serializes as an empty string.
#[derive(Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret value itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl From<String> for Secret {
    fn from(v: String) -> Self {
        Secret(v)
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str("")
    }
}

impl JsonSchema for Secret {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Secret".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"type": "string", "writeOnly": true})
    }
}

/// One app.config section read into a typed struct.
pub trait Section: DeserializeOwned + Serialize + JsonSchema {
    /// The section's name, e.g. `fn_hello`.
    const NAME: &'static str;
}

/// Everything a component reads from app.config: one [`Section`], an `Option` of one (the
/// component loads without it), several (implement this trait by hand), or nothing (`()`).
pub trait Sections: Sized {
    /// Reads and validates the sections.
    fn load(source: &ConfigSource) -> Result<Self, ConfigError>;

    /// The sections' templates for `host config -c|-u`, in the order they are written.
    fn template() -> Vec<TemplateSection>;
}

impl Sections for () {
    fn load(_: &ConfigSource) -> Result<Self, ConfigError> {
        Ok(())
    }

    fn template() -> Vec<TemplateSection> {
        Vec::new()
    }
}

impl<T: Section> Sections for T {
    /// An absent section reads as empty: its defaults, or an error naming the section when a
    /// key is required.
    fn load(source: &ConfigSource) -> Result<Self, ConfigError> {
        match source.section::<T>(T::NAME)? {
            Some(t) => Ok(t),
            None => source.read::<T>(T::NAME, &[]).map_err(|e| match e {
                ConfigError::Missing { file, section, .. } => {
                    ConfigError::MissingSection { file, section }
                }
                other => other,
            }),
        }
    }

    fn template() -> Vec<TemplateSection> {
        vec![template::section::<T>(T::NAME)]
    }
}

impl<T: Section> Sections for Option<T> {
    fn load(source: &ConfigSource) -> Result<Self, ConfigError> {
        source.section::<T>(T::NAME)
    }

    fn template() -> Vec<TemplateSection> {
        vec![template::section::<T>(T::NAME)]
    }
}

#[derive(Debug, Clone)]
struct SectionData {
    name: String,
    entries: Vec<(String, String)>,
}

/// The resolved app.config a component is built from: sections by name, `$ENV` and `^secret`
/// values already substituted, keys lower-case. The engine fills it from the file; tests build
/// one with [`ConfigSource::with_section`].
#[derive(Clone, Default)]
pub struct ConfigSource {
    file: PathBuf,
    sections: Vec<SectionData>,
    /// Keys of `[DEFAULT]`: they appear in every section and are never "unknown".
    defaults: Vec<String>,
    /// Values that could not be resolved (a `^secret` without a store): reading their section
    /// is this error.
    unusable: Vec<ConfigError>,
    warnings: Arc<Mutex<Vec<String>>>,
    read: Arc<Mutex<Vec<String>>>,
}

impl fmt::Debug for ConfigSource {
    // Section and key names only: values may be secrets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut m = f.debug_map();
        for s in &self.sections {
            m.entry(
                &s.name,
                &s.entries
                    .iter()
                    .map(|(k, _)| k.as_str())
                    .collect::<Vec<_>>(),
            );
        }
        m.finish()
    }
}

impl ConfigSource {
    /// An empty configuration read from `file` (used in messages).
    pub fn new(file: impl Into<PathBuf>) -> Self {
        ConfigSource {
            file: file.into(),
            ..ConfigSource::default()
        }
    }

    /// Adds a section (keys are lower-cased, values used as given).
    pub fn with_section<K: AsRef<str>, V: Into<String>>(
        mut self,
        name: impl Into<String>,
        entries: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        self.sections.push(SectionData {
            name: name.into(),
            entries: entries
                .into_iter()
                .map(|(k, v)| (k.as_ref().to_lowercase(), v.into()))
                .collect(),
        });
        self
    }

    /// Marks `key` of section `name` as unusable (e.g. a `^secret` that cannot be resolved):
    /// reading the section fails with `reason`, so only the component that needs the value
    /// stops.
    pub fn with_unusable(
        mut self,
        name: impl Into<String>,
        key: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        self.unusable.push(ConfigError::Invalid {
            file: self.file.clone(),
            section: name.into(),
            key: key.into(),
            reason: reason.into(),
        });
        self
    }

    /// Declares the keys that come from `[DEFAULT]` (never reported as unknown).
    pub fn with_default_keys(mut self, keys: impl IntoIterator<Item = String>) -> Self {
        self.defaults.extend(keys);
        self
    }

    /// The file the values came from.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// Section names in file order.
    pub fn section_names(&self) -> impl Iterator<Item = &str> {
        self.sections.iter().map(|s| s.name.as_str())
    }

    /// Whether section `name` exists.
    pub fn has_section(&self, name: &str) -> bool {
        self.sections.iter().any(|s| s.name == name)
    }

    /// The raw value of `key` in section `name`.
    pub fn value(&self, name: &str, key: &str) -> Option<&str> {
        let s = self.sections.iter().find(|s| s.name == name)?;
        let key = key.to_lowercase();
        s.entries
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Section `name` read into `T`; `None` when the section is absent.
    pub fn section<T: DeserializeOwned + JsonSchema>(
        &self,
        name: &str,
    ) -> Result<Option<T>, ConfigError> {
        match self.sections.iter().find(|s| s.name == name) {
            Some(s) => self.read(name, &s.entries).map(Some),
            None => Ok(None),
        }
    }

    /// Every section whose name starts with `prefix` (except those in `except`), in file order,
    /// each read into `T`: e.g. one section per account.
    pub fn family<T: DeserializeOwned + JsonSchema>(
        &self,
        prefix: &str,
        except: &[&str],
    ) -> Result<Vec<(String, T)>, ConfigError> {
        self.sections
            .iter()
            .filter(|s| s.name.starts_with(prefix) && !except.contains(&s.name.as_str()))
            .map(|s| Ok((s.name.clone(), self.read(&s.name, &s.entries)?)))
            .collect()
    }

    fn read<T: DeserializeOwned + JsonSchema>(
        &self,
        name: &str,
        entries: &[(String, String)],
    ) -> Result<T, ConfigError> {
        if let Ok(mut read) = self.read.lock() {
            read.push(name.to_string());
        }
        if let Some(e) = self
            .unusable
            .iter()
            .find(|e| matches!(e, ConfigError::Invalid { section, .. } if section == name))
        {
            return Err(e.clone());
        }
        let known = template::keys::<T>();
        for (key, _) in entries {
            if !known.contains(key) && !self.defaults.contains(key) {
                self.warn(format!(
                    "{}: [{name}] {key}: unknown key, ignored (known keys: {})",
                    self.file.display(),
                    known.join(", ")
                ));
            }
        }
        de::from_entries(entries).map_err(|e| e.into_config_error(&self.file, name))
    }

    /// An [`ConfigError::Invalid`] for a value a component rejects after reading it.
    pub fn invalid(&self, section: &str, key: &str, reason: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            file: self.file.clone(),
            section: section.to_string(),
            key: key.to_string(),
            reason: reason.into(),
        }
    }

    fn warn(&self, text: String) {
        if let Ok(mut w) = self.warnings.lock()
            && !w.contains(&text)
        {
            w.push(text);
        }
    }

    /// Problems that do not stop the component (unknown keys), one line each.
    pub fn warnings(&self) -> Vec<String> {
        self.warnings.lock().map(|w| w.clone()).unwrap_or_default()
    }

    /// Names of the sections read so far (for checks that a template's sections are all read).
    pub fn sections_read(&self) -> Vec<String> {
        self.read.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

/// Settings every integration's outbound calls to third-party APIs share; an integration's own
/// section may override them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub struct Integrations {
    /// Proxy for http:// URLs of third-party APIs: http://[user:password@]host:port
    #[schemars(example = "http://proxy.example.com:3128")]
    pub http_proxy: Option<String>,
    /// Proxy for https:// URLs of third-party APIs: http://[user:password@]host:port
    #[schemars(example = "http://proxy.example.com:3128")]
    pub https_proxy: Option<String>,
    /// Timeout of third-party API calls, in seconds.
    #[schemars(example = 30)]
    pub timeout: Option<u64>,
}

impl Section for Integrations {
    const NAME: &'static str = "integrations";
}

/// What a component's `build` gets besides its sections: host-wide settings.
#[derive(Debug, Clone)]
pub struct Setup {
    source: ConfigSource,
    integrations: Integrations,
    platform_url: String,
}

impl Setup {
    /// Host-wide settings read from `source` (`[integrations]`, the platform's URL from
    /// `[resilient] host` and `port`).
    pub fn from_source(source: &ConfigSource) -> Result<Setup, ConfigError> {
        let integrations = Option::<Integrations>::load(source)?.unwrap_or_default();
        let host = source.value("resilient", "host").unwrap_or("localhost");
        let port = match source.value("resilient", "port") {
            None | Some("") => 443,
            Some(p) => p.trim().parse::<u16>().map_err(|_| {
                source.invalid("resilient", "port", format!("'{p}' is not a port number"))
            })?,
        };
        let host = host.trim().trim_end_matches('/');
        let platform_url = if host.starts_with("https://") || host.starts_with("http://") {
            host.to_string()
        } else {
            format!("https://{host}:{port}")
        };
        Ok(Setup {
            source: source.clone(),
            integrations,
            platform_url,
        })
    }

    /// The platform's web address (`https://soar.example.com:443`), for links to incidents.
    pub fn platform_url(&self) -> &str {
        &self.platform_url
    }

    /// `[integrations]`.
    pub fn integrations(&self) -> &Integrations {
        &self.integrations
    }

    /// A [`ConfigError::Invalid`] naming the file, for a value the component rejects.
    pub fn invalid(&self, section: &str, key: &str, reason: impl Into<String>) -> ConfigError {
        self.source.invalid(section, key, reason)
    }

    /// An outbound HTTP client for `options`, with `[integrations]` as the fallback for the
    /// proxy and the timeout. Errors name `section` and the key to fix.
    pub fn http_client(
        &self,
        section: &str,
        options: &crate::http::HttpOptions,
    ) -> Result<crate::http::reqwest::Client, ConfigError> {
        crate::http::client(options, &self.integrations)
            .map_err(|e| self.invalid(section, e.key(), e.to_string()))
    }
}

/// Whether a key's value should be treated as secret (redacted in logs, never echoed in errors).
///
/// Starts from upstream's `token|pass|secret|pin|key|session|connection|jwt|authorization`, made
/// less trigger-happy for value-based redaction:
/// * a key whose last `_`/`-`/`.` word is a descriptor (`id`, `user`, `name`, `file`, `path`,
///   `url`, `host`, `port`, `type`, `timeout`, ...) is not secret (`api_key_id`, `token_url`,
///   `password_file`);
/// * flags are not secret (`no_prompt_password`, `use_token`);
/// * `session` and `connection` alone do not count (`rc_use_persistent_sessions`,
///   `max_connection_retries`), but `connection_string` does;
/// * `password`, `passwd`, `passphrase`, `passcode`, `pwd`, `secret`, `token`, `jwt`,
///   `authorization`, `credential`, `apikey`, `privatekey`, `cookie` anywhere in the key, or a word
///   `pass`, `pin`, `key` or `auth`, make it secret (`api_key_secret`, `password`, `x_token_2`,
///   `api_key`, `private_key`).
pub fn is_secret_key(key: &str) -> bool {
    const DESCRIPTORS: &[&str] = &[
        "id", "ids", "user", "username", "name", "names", "file", "path", "dir", "url", "uri",
        "host", "port", "type", "timeout", "ttl", "retries", "count", "enabled", "enable",
        "prefix", "header", "length", "len", "size", "interval", "expiry", "expires", "format",
        "field", "fields", "location", "endpoint",
    ];
    const FLAG_WORDS: &[&str] = &[
        "no", "use", "enable", "disable", "allow", "verify", "prompt", "ask", "require",
    ];
    const SUBSTRINGS: &[&str] = &[
        "password",
        "passwd",
        "passphrase",
        "passcode",
        "pwd",
        "secret",
        "token",
        "jwt",
        "authorization",
        "credential",
        "apikey",
        "privatekey",
        "cookie",
        "connection_string",
        "connectionstring",
    ];
    const WORDS: &[&str] = &["pass", "pin", "key", "auth"];
    let k = key.to_ascii_lowercase();
    let words: Vec<&str> = k
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    let (Some(first), Some(last)) = (words.first(), words.last()) else {
        return false;
    };
    if DESCRIPTORS.contains(last) || (words.len() > 1 && FLAG_WORDS.contains(first)) {
        return false;
    }
    SUBSTRINGS.iter().any(|s| k.contains(s)) || words.iter().any(|w| WORDS.contains(w))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize, Serialize, JsonSchema)]
    struct One {
        #[serde(default)]
        a: u32,
        b: String,
    }

    impl Section for One {
        const NAME: &'static str = "one";
    }

    #[test]
    fn unknown_keys_are_reported_not_fatal() {
        let source = ConfigSource::new("app.config")
            .with_section("one", [("b", "x"), ("bee", "y"), ("shared", "z")])
            .with_default_keys(["shared".to_string()]);
        let one = One::load(&source).unwrap();
        assert_eq!((one.a, one.b.as_str()), (0, "x"));
        assert_eq!(
            source.warnings(),
            ["app.config: [one] bee: unknown key, ignored (known keys: a, b)"]
        );
    }

    #[test]
    fn absent_sections_are_defaults_or_name_the_section() {
        let e = One::load(&ConfigSource::new("app.config")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "app.config: section [one] is missing (`host config -u` appends a template of it)"
        );
        assert!(
            Option::<One>::load(&ConfigSource::new("f"))
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn setup_gives_the_platform_url() {
        let source =
            ConfigSource::new("f").with_section("resilient", [("host", "soar.example.com")]);
        assert_eq!(
            Setup::from_source(&source).unwrap().platform_url(),
            "https://soar.example.com:443"
        );
        let source = ConfigSource::new("f").with_section(
            "resilient",
            [("host", "https://soar.example.com/"), ("port", "8443")],
        );
        assert_eq!(
            Setup::from_source(&source).unwrap().platform_url(),
            "https://soar.example.com"
        );
        let source = ConfigSource::new("f").with_section("resilient", [("port", "x")]);
        assert!(
            Setup::from_source(&source)
                .unwrap_err()
                .to_string()
                .contains("[resilient] port")
        );
    }
}
