//! Secret and environment-variable substitution in app.config values (spec §1.5).
//!
//! Every value is resolved **once**, when the file is loaded, for each `(section, key)` (values
//! cascaded from `[DEFAULT]` are resolved per section):
//!
//! 1. **Environment**, prefix `$`: if the value contains `${`, every `${NAME}` is replaced; else,
//!    if it starts with `$`, the whole rest of the value is the name (`$FOO` → env `FOO`). An unset
//!    variable keeps the text as written (upstream behaviour) and logs a warning that names the
//!    section and key (never a value).
//! 2. **Secret stores**, prefix `^`: the same rules for `^{name}` and `^name`, looked up through
//!    [`SecretStore`]s with the section as context. Unlike upstream, an unresolved `^{name}`, or
//!    an unresolved `^name` whose name looks like an identifier (`[A-Za-z0-9_.@/-]+`), is an
//!    **error** naming the file, section and key. A value that merely starts with `^` and does not
//!    look like a name (e.g. the regular expression `^[a-z]+$`) is kept as written, with a
//!    warning. This pass runs only when the value *as written* contains a `^` reference, so a `^`
//!    inside an environment variable's value is never looked up.
//!
//! The substitution algorithm is a port of `AppConfigManager.replace_secret_in_config`
//! (`RES/app_config.py`), quirks included (for example `$A}x` is env `A` followed by `x`).
//!
//! Stores, in lookup order (first hit wins):
//! * `$APP_SECRETS` (a directory or a file), else `[resilient] secrets = <path>` (relative paths
//!   are relative to the app.config directory), else `~/.resilient/secrets` if it exists;
//!   see [`DirectoryStore`] and [`FileStore`]. Both refuse to read secrets that group or others
//!   may read or write, or that another user owns.
//! * The OS keyring (`KeyringStore`, cargo feature `keyring`), service = section name, `_` for
//!   `[resilient]`, as `res-keyring` stores them.
//!
//! Stores are opened lazily: a broken store only matters when a value needs it.
//!
//! Redaction: every value inserted by a substitution, and the value of every key that
//! [`is_secret_key`], is recorded for [`AppConfig::secret_values`](super::AppConfig::secret_values).

use soar_sdk::config::is_secret_key;
use std::collections::HashMap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use super::ConfigError;
use super::ini::Ini;

/// Why a secret store could not answer.
///
/// Messages never contain secret values.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The file or directory may be read or written by group or others.
    #[error(
        "{}: refusing to read secrets from a path that group or others may access (mode {mode:04o}); run `chmod go-rwx {}`",
        .path.display(), .path.display()
    )]
    Insecure {
        /// The offending path.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The file or directory belongs to another user.
    #[error(
        "{}: refusing to read secrets owned by uid {owner}, not by the current user (uid {current})",
        .path.display()
    )]
    NotOwned {
        /// The offending path.
        path: PathBuf,
        /// Its owner.
        owner: u32,
        /// The current (effective) user.
        current: u32,
    },
    /// Reading failed.
    #[error("{}: {source}", .path.display())]
    Io {
        /// What was read.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// A secrets file has a malformed line.
    #[error("{}:{line}: {reason}", .path.display())]
    Syntax {
        /// The secrets file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong (never the line's text).
        reason: String,
    },
    /// The name cannot be used with this store (e.g. contains `/` for a directory store).
    #[error("invalid secret name '{name}': {reason}")]
    InvalidName {
        /// The name as written after `^`.
        name: String,
        /// Why.
        reason: &'static str,
    },
    /// Any other backend failure (keyring).
    #[error("{store}: {reason}")]
    Backend {
        /// [`SecretStore::describe`] of the store.
        store: String,
        /// What went wrong.
        reason: String,
    },
}

/// A source of `^name` secrets.
pub trait SecretStore: Send + Sync {
    /// The secret `name` for `[section]`; `Ok(None)` if this store does not have it.
    fn lookup(&self, section: &str, name: &str) -> Result<Option<String>, SecretError>;
    /// A short human description, e.g. `directory store /home/app/.resilient/secrets`.
    fn describe(&self) -> String;
}

// ---------------------------------------------------------------------------------------------
// Permission checks

#[cfg(unix)]
fn current_uid() -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    use std::sync::OnceLock;
    static UID: OnceLock<Option<u32>> = OnceLock::new();
    *UID.get_or_init(|| {
        // /proc/self is owned by the process's effective uid (Linux).
        if let Ok(meta) = std::fs::metadata("/proc/self") {
            return Some(meta.uid());
        }
        // Elsewhere: create a probe file and look at its owner.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let probe =
            std::env::temp_dir().join(format!(".soar-uid-probe-{}-{nanos}", std::process::id()));
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&probe)
            .ok()?;
        let uid = file.metadata().ok().map(|m| m.uid());
        drop(file);
        let _ = std::fs::remove_file(&probe);
        uid
    })
}

/// Fails unless `path` is private to the current user: no group/other permission bits and owned
/// by the current user. A no-op off unix.
pub fn check_private(path: &Path) -> Result<(), SecretError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(path).map_err(|source| SecretError::Io {
            path: path.to_owned(),
            source,
        })?;
        let mode = meta.mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(SecretError::Insecure {
                path: path.to_owned(),
                mode,
            });
        }
        if let Some(current) = current_uid()
            && meta.uid() != current
        {
            return Err(SecretError::NotOwned {
                path: path.to_owned(),
                owner: meta.uid(),
                current,
            });
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

fn read_private(path: &Path) -> Result<String, SecretError> {
    check_private(path)?;
    std::fs::read_to_string(path).map_err(|source| SecretError::Io {
        path: path.to_owned(),
        source,
    })
}

/// A single path component that cannot escape the directory.
fn is_plain_component(s: &str) -> bool {
    !s.is_empty() && s != "." && s != ".." && !s.contains(['/', '\\', '\0'])
}

// ---------------------------------------------------------------------------------------------
// Directory store

/// One file per secret: `<dir>/<section>/<name>` wins over `<dir>/<name>`. One trailing newline
/// sequence (any trailing `\r`/`\n`) is trimmed. The directory, the section subdirectory and the
/// file must all be private to the current user (mode `0700`/`0600`).
#[derive(Debug, Clone)]
pub struct DirectoryStore {
    dir: PathBuf,
}

impl DirectoryStore {
    /// Opens `dir` after checking that it is a private directory.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, SecretError> {
        let dir = dir.into();
        let meta = std::fs::metadata(&dir).map_err(|source| SecretError::Io {
            path: dir.clone(),
            source,
        })?;
        if !meta.is_dir() {
            return Err(SecretError::Io {
                path: dir,
                source: io::Error::other("not a directory"),
            });
        }
        check_private(&dir)?;
        Ok(DirectoryStore { dir })
    }

    fn read(&self, path: &Path) -> Result<Option<String>, SecretError> {
        match std::fs::metadata(path) {
            Ok(meta) if meta.is_file() => {
                let text = read_private(path)?;
                Ok(Some(text.trim_end_matches(['\r', '\n']).to_owned()))
            }
            Ok(_) => Ok(None),
            Err(e)
                if e.kind() == io::ErrorKind::NotFound
                    || e.kind() == io::ErrorKind::NotADirectory =>
            {
                Ok(None)
            }
            Err(source) => Err(SecretError::Io {
                path: path.to_owned(),
                source,
            }),
        }
    }
}

impl SecretStore for DirectoryStore {
    fn lookup(&self, section: &str, name: &str) -> Result<Option<String>, SecretError> {
        if !is_plain_component(name) {
            return Err(SecretError::InvalidName {
                name: name.to_owned(),
                reason: "a directory store needs a plain file name (no '/', '\\', '.' or '..')",
            });
        }
        if is_plain_component(section) {
            let sub = self.dir.join(section);
            if sub.is_dir() {
                check_private(&sub)?;
                if let Some(v) = self.read(&sub.join(name))? {
                    return Ok(Some(v));
                }
            }
        }
        self.read(&self.dir.join(name))
    }

    fn describe(&self) -> String {
        format!("directory store {}", self.dir.display())
    }
}

// ---------------------------------------------------------------------------------------------
// File store

/// An INI-like secrets file:
///
/// ```text
/// # entries before any section, or in [_], are for every section
/// api_key_secret = s3cret
/// [fn_my_app]
/// api_token = t0ken      # no inline comments: this whole text is the value
/// ```
///
/// `name = value` splits at the first `=`; names are case-sensitive, both sides are stripped;
/// `#`/`;` start a comment line. A `[section]` entry wins over a global one. Duplicates and lines
/// without `=` are errors. The file must be private to the current user (mode `0600`).
#[derive(Clone)]
pub struct FileStore {
    path: PathBuf,
    global: HashMap<String, String>,
    sections: HashMap<String, HashMap<String, String>>,
}

impl fmt::Debug for FileStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileStore")
            .field("path", &self.path)
            .field(
                "entries",
                &(self.global.len() + self.sections.values().map(HashMap::len).sum::<usize>()),
            )
            .finish()
    }
}

impl FileStore {
    /// Reads `path` after checking that it is private to the current user.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, SecretError> {
        let path = path.into();
        let text = read_private(&path)?;
        Self::parse(&text, &path)
    }

    /// Parses secrets-file text without any permission check (`path` is for messages).
    pub fn parse(text: &str, path: &Path) -> Result<Self, SecretError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut store = FileStore {
            path: path.to_owned(),
            global: HashMap::new(),
            sections: HashMap::new(),
        };
        let mut first_lines: HashMap<(Option<String>, String), usize> = HashMap::new();
        let mut section: Option<String> = None;
        for (i, line) in text.split('\n').enumerate() {
            let lineno = i + 1;
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                let name = name.trim();
                section = (name != "_").then(|| name.to_owned());
                continue;
            }
            let syntax = |reason: String| SecretError::Syntax {
                path: path.to_owned(),
                line: lineno,
                reason,
            };
            let Some((name, value)) = line.split_once('=') else {
                return Err(syntax("expected 'name = value' or '[section]'".into()));
            };
            let (name, value) = (name.trim(), value.trim());
            if name.is_empty() {
                return Err(syntax("empty secret name before '='".into()));
            }
            let id = (section.clone(), name.to_owned());
            if let Some(first) = first_lines.get(&id) {
                return Err(syntax(format!(
                    "duplicate secret '{name}' (first at line {first})"
                )));
            }
            first_lines.insert(id, lineno);
            let map = match &section {
                Some(s) => store.sections.entry(s.clone()).or_default(),
                None => &mut store.global,
            };
            map.insert(name.to_owned(), value.to_owned());
        }
        Ok(store)
    }
}

impl SecretStore for FileStore {
    fn lookup(&self, section: &str, name: &str) -> Result<Option<String>, SecretError> {
        Ok(self
            .sections
            .get(section)
            .and_then(|m| m.get(name))
            .or_else(|| self.global.get(name))
            .cloned())
    }

    fn describe(&self) -> String {
        format!("file store {}", self.path.display())
    }
}

// ---------------------------------------------------------------------------------------------
// Memory store

/// An in-memory store for tests. Section `_` holds entries for every section.
#[derive(Clone, Default)]
pub struct MemoryStore {
    entries: HashMap<(String, String), String>,
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MemoryStore({} entries)", self.entries.len())
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `name` for `section` (`_` = every section).
    pub fn with(mut self, section: &str, name: &str, value: &str) -> Self {
        self.entries
            .insert((section.to_owned(), name.to_owned()), value.to_owned());
        self
    }
}

impl SecretStore for MemoryStore {
    fn lookup(&self, section: &str, name: &str) -> Result<Option<String>, SecretError> {
        let get = |s: &str| self.entries.get(&(s.to_owned(), name.to_owned()));
        Ok(get(section).or_else(|| get("_")).cloned())
    }

    fn describe(&self) -> String {
        "memory store".into()
    }
}

// ---------------------------------------------------------------------------------------------
// Keyring store

/// The OS keyring (D-Bus Secret Service on Linux), as written by `res-keyring`: service = the
/// section name, `_` for `[resilient]`; user = the secret name.
#[cfg(feature = "keyring")]
#[derive(Debug, Clone, Copy, Default)]
pub struct KeyringStore;

#[cfg(feature = "keyring")]
impl SecretStore for KeyringStore {
    fn lookup(&self, section: &str, name: &str) -> Result<Option<String>, SecretError> {
        let service = if section.is_empty() || section == "resilient" {
            "_"
        } else {
            section
        };
        let backend = |e: keyring::Error| SecretError::Backend {
            store: self.describe(),
            reason: e.to_string(),
        };
        let entry = keyring::Entry::new(service, name).map_err(backend)?;
        match entry.get_password() {
            Ok(v) => Ok(Some(v)),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(backend(e)),
        }
    }

    fn describe(&self) -> String {
        "OS keyring".into()
    }
}

// ---------------------------------------------------------------------------------------------
// Redaction helpers

fn is_bool_literal(v: &str) -> bool {
    matches!(
        v.to_ascii_lowercase().as_str(),
        "1" | "0" | "true" | "false" | "yes" | "no" | "on" | "off"
    )
}

// ---------------------------------------------------------------------------------------------
// Resolver

enum Stores {
    /// Pick stores from `APP_SECRETS`, `[resilient] secrets`, `<home>/.resilient/secrets` and the
    /// keyring feature.
    Auto { home: Option<PathBuf> },
    /// Exactly these stores.
    Fixed(Vec<Box<dyn SecretStore>>),
}

/// Where substitutions come from: the environment and the secret stores.
///
/// [`SecretResolver::system`] is what the host uses; tests build isolated ones (the process
/// environment cannot be changed safely in Rust 2024 tests).
pub struct SecretResolver {
    env: HashMap<String, String>,
    inherit_env: bool,
    stores: Stores,
}

impl fmt::Debug for SecretResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let stores = match &self.stores {
            Stores::Auto { home } => format!("auto (home {home:?})"),
            Stores::Fixed(v) => format!("{:?}", v.iter().map(|s| s.describe()).collect::<Vec<_>>()),
        };
        f.debug_struct("SecretResolver")
            .field("env_overrides", &self.env.keys().collect::<Vec<_>>())
            .field("inherit_env", &self.inherit_env)
            .field("stores", &stores)
            .finish()
    }
}

impl Default for SecretResolver {
    fn default() -> Self {
        Self::system()
    }
}

impl SecretResolver {
    /// The process environment and automatic store selection (home = the user's home directory).
    pub fn system() -> Self {
        SecretResolver {
            env: HashMap::new(),
            inherit_env: true,
            stores: Stores::Auto {
                home: std::env::home_dir(),
            },
        }
    }

    /// An empty environment and no secret stores.
    pub fn isolated() -> Self {
        SecretResolver {
            env: HashMap::new(),
            inherit_env: false,
            stores: Stores::Fixed(Vec::new()),
        }
    }

    /// Sets (or overrides) an environment variable as seen by the substitution and by
    /// [`ResilientOptions`](super::resilient::ResilientOptions).
    pub fn with_env(mut self, name: &str, value: &str) -> Self {
        self.env.insert(name.to_owned(), value.to_owned());
        self
    }

    /// Adds a store; the first call replaces automatic selection by an explicit list.
    pub fn with_store(mut self, store: Box<dyn SecretStore>) -> Self {
        match &mut self.stores {
            Stores::Fixed(v) => v.push(store),
            Stores::Auto { .. } => self.stores = Stores::Fixed(vec![store]),
        }
        self
    }

    /// Selects stores automatically, with `home` standing for the user's home directory.
    pub fn with_automatic_stores(mut self, home: Option<PathBuf>) -> Self {
        self.stores = Stores::Auto { home };
        self
    }

    /// An environment variable: the overrides, then (for [`system`](Self::system)) the process.
    pub fn env_var(&self, name: &str) -> Option<String> {
        if let Some(v) = self.env.get(name) {
            return Some(v.clone());
        }
        // std::env::var may panic on such names.
        if !self.inherit_env || name.is_empty() || name.contains(['=', '\0']) {
            return None;
        }
        std::env::var(name).ok()
    }

    pub(crate) fn env_snapshot(&self) -> EnvView {
        EnvView {
            overrides: self.env.clone(),
            inherit: self.inherit_env,
        }
    }
}

/// The environment an [`AppConfig`](super::AppConfig) was loaded with.
#[derive(Clone, Default)]
pub(crate) struct EnvView {
    overrides: HashMap<String, String>,
    inherit: bool,
}

impl EnvView {
    pub(crate) fn var(&self, name: &str) -> Option<String> {
        if let Some(v) = self.overrides.get(name) {
            return Some(v.clone());
        }
        if !self.inherit || name.is_empty() || name.contains(['=', '\0']) {
            return None;
        }
        std::env::var(name).ok()
    }
}

/// Result of one substitution pass.
struct Pass {
    value: String,
    inserted: Vec<String>,
}

/// Port of `AppConfigManager.replace_secret_in_config`. `lookup(name, prefixed)` returns the
/// replacement, or `None` to keep `prefixed` as written and go on after it. One pass: the value
/// is copied once, whatever the number of references (replacing in place was quadratic).
fn replace_prefixed<E>(
    item: &str,
    prefix: &str,
    strip: char,
    mut lookup: impl FnMut(&str, &str) -> Result<Option<String>, E>,
) -> Result<Pass, E> {
    let mut value = String::with_capacity(item.len());
    let mut inserted = Vec::new();
    let mut pos = 0;
    while let Some(start) = item[pos..].find(prefix).map(|i| pos + i) {
        value.push_str(&item[pos..start]);
        let end = item[start..].find('}').map_or(item.len(), |i| start + i);
        let prefixed_end = (end + 1).min(item.len());
        let prefixed = &item[start..prefixed_end];
        let unprefixed = prefixed.replace(prefix, "").replace('}', "");
        let name = unprefixed.trim_start_matches(strip);
        match lookup(name, prefixed)? {
            Some(v) => {
                value.push_str(&v);
                inserted.push(v);
            }
            None => value.push_str(prefixed),
        }
        pos = prefixed_end;
    }
    value.push_str(&item[pos..]);
    Ok(Pass { value, inserted })
}

/// Which prefix applies: the braced form anywhere wins over the bare form at the start.
fn prefix_for<'p>(value: &str, braced: &'p str, bare: &'p str) -> Option<&'p str> {
    if value.contains(braced) {
        Some(braced)
    } else if value.starts_with(bare) {
        Some(bare)
    } else {
        None
    }
}

fn looks_like_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '@' | '-' | '/'))
}

/// Resolved sections and the values to redact.
pub(crate) struct Resolved {
    pub(crate) sections: Vec<ResolvedSection>,
    pub(crate) secret_values: Vec<String>,
}

pub(crate) struct ResolvedSection {
    pub(crate) name: String,
    pub(crate) items: Vec<(String, String)>,
    /// Keys whose `^secret` could not be resolved, with why (their value is kept as written).
    pub(crate) unresolved: Vec<(String, String)>,
}

/// The section every start needs: a secret it cannot resolve stops the load. In any other
/// section it only stops the component that reads it, so that `-l`/`noload` can leave out a
/// component whose secrets are not set up yet.
const STRICT_SECTION: &str = "resilient";

struct StoreCache<'r> {
    resolver: &'r SecretResolver,
    opened: Option<Vec<Box<dyn SecretStore>>>,
}

impl StoreCache<'_> {
    fn stores(&mut self, ini: &Ini, file: &Path) -> Result<Vec<&dyn SecretStore>, String> {
        match &self.resolver.stores {
            Stores::Fixed(v) => Ok(v.iter().map(|b| b.as_ref()).collect()),
            Stores::Auto { home } => {
                if self.opened.is_none() {
                    self.opened = Some(auto_stores(self.resolver, home.as_deref(), ini, file)?);
                }
                Ok(self.opened.iter().flatten().map(|b| b.as_ref()).collect())
            }
        }
    }
}

fn open_path_store(path: &Path) -> Result<Box<dyn SecretStore>, SecretError> {
    if path.is_dir() {
        Ok(Box::new(DirectoryStore::open(path)?))
    } else {
        Ok(Box::new(FileStore::open(path)?))
    }
}

/// The secret store that `^name` values are read from first, and what named it: `$APP_SECRETS`,
/// else `[resilient] secrets` (relative to the app.config directory), else `None` (the caller
/// falls back to `~/.resilient/secrets`).
pub fn configured_store(
    env: &dyn Fn(&str) -> Option<String>,
    home: Option<&Path>,
    ini: &Ini,
    file: &Path,
) -> Option<(PathBuf, &'static str)> {
    if let Some(v) = env("APP_SECRETS").filter(|v| !v.is_empty()) {
        return Some((super::expand_tilde(&v, home), "$APP_SECRETS"));
    }
    let v = ini
        .section("resilient")
        .and_then(|s| s.get("secrets"))
        .filter(|v| !v.is_empty())?;
    let lookup = |name: &str, _: &str| Ok::<_, ()>(env(name));
    let v = prefix_for(v, "${", "$")
        .and_then(|p| replace_prefixed(v, p, '$', lookup).ok())
        .map_or_else(|| v.to_owned(), |p| p.value);
    let mut p = super::expand_tilde(&v, home);
    if p.is_relative()
        && let Some(dir) = file.parent()
    {
        p = dir.join(p);
    }
    Some((p, "[resilient] secrets"))
}

fn auto_stores(
    resolver: &SecretResolver,
    home: Option<&Path>,
    ini: &Ini,
    file: &Path,
) -> Result<Vec<Box<dyn SecretStore>>, String> {
    let mut stores: Vec<Box<dyn SecretStore>> = Vec::new();
    match configured_store(&|name| resolver.env_var(name), home, ini, file) {
        Some((path, origin)) => {
            if !path.exists() {
                return Err(format!(
                    "{origin} names {}, which does not exist",
                    path.display()
                ));
            }
            stores.push(open_path_store(&path).map_err(|e| e.to_string())?);
        }
        None => {
            if let Some(home) = home {
                let path = home.join(".resilient").join("secrets");
                if path.exists() {
                    stores.push(open_path_store(&path).map_err(|e| e.to_string())?);
                }
            }
        }
    }
    #[cfg(feature = "keyring")]
    stores.push(Box::new(KeyringStore));
    Ok(stores)
}

/// Resolves every section of `ini` (with `[DEFAULT]` cascaded).
pub(crate) fn resolve(
    ini: &Ini,
    file: &Path,
    resolver: &SecretResolver,
) -> Result<Resolved, ConfigError> {
    let mut cache = StoreCache {
        resolver,
        opened: None,
    };
    let mut secret_values: Vec<String> = Vec::new();
    let mut sections = Vec::with_capacity(ini.sections.len());
    for section in &ini.sections {
        let items = ini.items(&section.name).unwrap_or_default();
        let mut out = Vec::with_capacity(items.len());
        let mut unresolved = Vec::new();
        for (key, raw) in items {
            let secret_err = |reason: String| ConfigError::Secret {
                file: file.to_owned(),
                section: section.name.clone(),
                key: key.to_owned(),
                reason,
            };
            let mut value = raw.to_owned();
            // 1. environment
            if let Some(prefix) = prefix_for(&value, "${", "$") {
                let pass = replace_prefixed(&value, prefix, '$', |name, _| {
                    let found = resolver.env_var(name);
                    if found.is_none() {
                        tracing::warn!(
                            section = %section.name,
                            key,
                            variable = name,
                            "environment variable referenced in app.config is not set; the value is kept as written"
                        );
                    }
                    Ok::<_, ConfigError>(found)
                })?;
                value = pass.value;
                secret_values.extend(pass.inserted);
            }
            // 2. secret stores (only for references written in the file)
            let mut stores_pass = || -> Result<(), ConfigError> {
                if let Some(prefix) = prefix_for(raw, "^{", "^")
                    && value.contains(prefix)
                {
                    let braced = prefix == "^{";
                    let pass = replace_prefixed(&value, prefix, '^', |name, prefixed| {
                        let stores = cache.stores(ini, file).map_err(|e| {
                            secret_err(format!("cannot open the secret store: {e}"))
                        })?;
                        for store in &stores {
                            if let Some(v) = store
                                .lookup(&section.name, name)
                                .map_err(|e| secret_err(e.to_string()))?
                            {
                                return Ok(Some(v));
                            }
                        }
                        if !braced && !looks_like_name(name) {
                            tracing::warn!(
                                section = %section.name,
                                key,
                                "value starts with '^' but is not a secret name; kept as written"
                            );
                            return Ok(None);
                        }
                        // Not a name, or a `^{` never closed: it may be a literal password
                        // that starts with `^{`, so it is not shown.
                        let closed = !braced || prefixed.ends_with('}');
                        let shown = if closed && looks_like_name(name) {
                            format!("secret '{name}'")
                        } else {
                            "the secret after '^{' (not shown: a name is letters, digits and \
                             _ . @ - / up to a closing '}')"
                                .to_string()
                        };
                        Err(secret_err(if stores.is_empty() {
                            format!(
                                "{shown} cannot be resolved: no secret store is configured \
                             (set APP_SECRETS or `secrets` in [resilient], or create ~/.resilient/secrets)"
                            )
                        } else {
                            format!(
                                "{shown} not found in {}",
                                stores
                                    .iter()
                                    .map(|s| s.describe())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            )
                        }))
                    })?;
                    value = pass.value;
                    secret_values.extend(pass.inserted);
                }
                Ok(())
            };
            match stores_pass() {
                Ok(()) => {}
                Err(ConfigError::Secret { reason, .. }) if section.name != STRICT_SECTION => {
                    unresolved.push((key.to_owned(), reason));
                }
                Err(e) => return Err(e),
            }
            if is_secret_key(key) && !value.is_empty() && !is_bool_literal(&value) {
                secret_values.push(value.clone());
            }
            out.push((key.to_owned(), value));
        }
        sections.push(ResolvedSection {
            name: section.name.clone(),
            items: out,
            unresolved,
        });
    }
    secret_values.retain(|v| !v.is_empty());
    secret_values.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    secret_values.dedup();
    Ok(Resolved {
        sections,
        secret_values,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_pass(v: &str, env: &[(&str, &str)]) -> String {
        let p = prefix_for(v, "${", "$").unwrap();
        replace_prefixed(v, p, '$', |name, _| {
            Ok::<_, ()>(
                env.iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string()),
            )
        })
        .unwrap()
        .value
    }

    #[test]
    fn env_substitution_matches_upstream() {
        let env = [("A", "1"), ("B", "two"), ("C", "${A}"), ("E", "")];
        assert_eq!(env_pass("$A", &env), "1");
        assert_eq!(env_pass("x${A}y${B}z", &env), "x1ytwoz");
        assert_eq!(env_pass("${NOPE}-${A}", &env), "${NOPE}-1");
        assert_eq!(env_pass("$NOPE", &env), "$NOPE");
        assert_eq!(env_pass("$A and more", &env), "$A and more");
        // no recursion into inserted text
        assert_eq!(env_pass("${C}", &env), "${A}");
        assert_eq!(env_pass("${A", &env), "1");
        assert_eq!(env_pass("${}", &env), "${}");
        assert_eq!(env_pass("$E", &env), "");
        assert_eq!(env_pass("${$A}", &env), "1");
        assert_eq!(env_pass("$A}x", &env), "1x");
        // Expected values below were produced by upstream's replace_secret_in_config.
        assert_eq!(env_pass("$A}$B", &env), "1two");
        assert_eq!(env_pass("$A}x$B}", &env), "1xtwo");
        assert_eq!(env_pass("${A}${A}", &env), "11");
        assert_eq!(env_pass("$$A", &env), "1");
        assert_eq!(env_pass("${A}}", &env), "1}");
        assert_eq!(env_pass("a${A", &env), "a1");
    }

    #[test]
    fn secret_keys() {
        for k in [
            "password",
            "api_key_secret",
            "proxy_password",
            "api_token",
            "x_token_2",
            "passcode",
            "client_secret",
            "api_key",
            "private_key",
            "jwt",
            "pin",
            "slack_bot_token",
            "connection_string",
        ] {
            assert!(is_secret_key(k), "{k}");
        }
        for k in [
            "api_key_id",
            "host",
            "email",
            "no_prompt_password",
            "max_connection_retries",
            "rc_use_persistent_sessions",
            "token_url",
            "password_file",
            "shipping",
            "keys_dir",
            "",
        ] {
            assert!(!is_secret_key(k), "{k}");
        }
    }

    #[test]
    fn file_store_parse() {
        let s = FileStore::parse(
            "# c\ntop = 1\n[_]\nboth = g\n[fn_a]\nboth = s\nx = a=b ; c\n",
            Path::new("/s"),
        )
        .unwrap();
        assert_eq!(s.lookup("fn_a", "both").unwrap().as_deref(), Some("s"));
        assert_eq!(s.lookup("fn_b", "both").unwrap().as_deref(), Some("g"));
        assert_eq!(s.lookup("fn_b", "top").unwrap().as_deref(), Some("1"));
        assert_eq!(s.lookup("fn_a", "x").unwrap().as_deref(), Some("a=b ; c"));
        assert_eq!(s.lookup("fn_a", "nope").unwrap(), None);
        let e = FileStore::parse("[a]\nk=1\nk=2\n", Path::new("/s")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "/s:3: duplicate secret 'k' (first at line 2)"
        );
        let e = FileStore::parse("hunter2\n", Path::new("/s")).unwrap_err();
        assert!(!e.to_string().contains("hunter2"));
    }
}
