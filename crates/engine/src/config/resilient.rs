//! The typed `[resilient]` section (spec §1.2): every key the host uses, with upstream defaults,
//! environment overrides and validation.
//!
//! As in resilient-circuits, an empty value counts as absent (`getopt(...) or default`), and these
//! environment variables **override** the file: `RESILIENT_STOMP_TIMEOUT`,
//! `RESILIENT_STOMP_MAX_RETRIES`, `RESOURCE_PREFIX`, `LOGLEVEL`, and (only when
//! `APP_HOST_CONTAINER` is set) `RESILIENT_MAX_CONNECTION_RETRIES`. `APP_LOG_DIR` is only a
//! fallback for `logdir`.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use super::{AppConfig, ConfigError, Secret, Section, parse_bool};

/// The section name.
pub const SECTION: &str = "resilient";

/// Every key of `[resilient]` the host reads (`secrets` is read by the secret resolver).
pub const KEYS: &[&str] = &[
    "api_key_id",
    "api_key_secret",
    "cache_ttl",
    "cafile",
    "componentsdir",
    "email",
    "heartbeat_timeout_threshold",
    "host",
    "ignore_message_failure",
    "journal_path",
    "log_backup_count",
    "log_format",
    "log_max_bytes",
    "logdir",
    "logfile",
    "loglevel",
    "max_connection_retries",
    "no_prompt_password",
    "noload",
    "num_workers",
    "org",
    "password",
    "port",
    "proxy_host",
    "proxy_password",
    "proxy_port",
    "proxy_user",
    "request_max_retries",
    "request_retry_backoff",
    "request_retry_delay",
    "resource_prefix",
    "secrets",
    "selftest_timeout",
    "shutdown_timeout",
    "stomp",
    "stomp_cafile",
    "stomp_host",
    "stomp_max_frame_size",
    "stomp_max_retries",
    "stomp_port",
    "stomp_prefetch_limit",
    "stomp_timeout",
    "stomp_timer_interval",
    "trap_exception",
];

/// Smallest and largest `num_workers` / `stomp_prefetch_limit`.
pub const WORKERS_RANGE: std::ops::RangeInclusive<u32> = 1..=2000;

/// Smallest and largest `stomp_max_frame_size`.
pub const FRAME_SIZE_RANGE: std::ops::RangeInclusive<usize> = (64 << 10)..=(1 << 30);

/// Smallest non-zero `log_max_bytes`.
pub const MIN_LOG_BYTES: u64 = 100_000;

/// How the host authenticates to the REST API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// `api_key_id` / `api_key_secret` (preferred; wins when email/password are also set).
    ApiKey {
        /// `api_key_id`.
        id: String,
        /// `api_key_secret`.
        secret: Secret,
    },
    /// `email` / `password`.
    Password {
        /// `email`.
        email: String,
        /// `password`.
        password: Secret,
    },
    /// `email` without a password and `no_prompt_password` off: upstream prompts on stdin.
    PromptPassword {
        /// `email`.
        email: String,
    },
}

/// A Python logging level name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    /// `DEBUG`.
    Debug,
    /// `INFO`.
    Info,
    /// `WARNING` (or `WARN`).
    Warning,
    /// `ERROR`.
    Error,
    /// `CRITICAL`.
    Critical,
}

impl LogLevel {
    /// The Python name, e.g. `WARNING`.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Debug => "DEBUG",
            LogLevel::Info => "INFO",
            LogLevel::Warning => "WARNING",
            LogLevel::Error => "ERROR",
            LogLevel::Critical => "CRITICAL",
        }
    }
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for LogLevel {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_uppercase().as_str() {
            "DEBUG" => Ok(LogLevel::Debug),
            "INFO" => Ok(LogLevel::Info),
            "WARNING" | "WARN" => Ok(LogLevel::Warning),
            "ERROR" => Ok(LogLevel::Error),
            "CRITICAL" => Ok(LogLevel::Critical),
            _ => Err("expected DEBUG, INFO, WARNING, ERROR or CRITICAL".into()),
        }
    }
}

/// How log lines are written (`log_format`, ours).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// One line of text per event (the default).
    #[default]
    Text,
    /// One JSON object per line, the span fields (message id, incident, ...) included.
    Json,
}

impl FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err("expected text or json".into()),
        }
    }
}

/// The `[resilient]` section, typed. Field docs give the key and default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResilientOptions {
    /// `host`, required.
    pub host: String,
    /// `port`, default 443.
    pub port: u16,
    /// `org`.
    pub org: Option<String>,
    /// The credentials to use (API key wins over email/password).
    pub credentials: Credentials,
    /// `email`, as written.
    pub email: Option<String>,
    /// `password`, as written.
    pub password: Option<Secret>,
    /// `api_key_id`, as written.
    pub api_key_id: Option<String>,
    /// `api_key_secret`, as written.
    pub api_key_secret: Option<Secret>,
    /// `cafile`, raw: `None`/empty = system roots, `false` = no verification, else a path
    /// (`~` not expanded). Interpreted by soar-tls.
    pub cafile: Option<String>,
    /// `proxy_host`.
    pub proxy_host: Option<String>,
    /// `proxy_port` (`None` when absent or 0).
    pub proxy_port: Option<u16>,
    /// `proxy_user`.
    pub proxy_user: Option<String>,
    /// `proxy_password`.
    pub proxy_password: Option<Secret>,
    /// `cache_ttl`, default 240 s (0 means the default).
    pub cache_ttl: Duration,
    /// `resource_prefix` (env `RESOURCE_PREFIX` overrides), e.g. `/api/respond`.
    pub resource_prefix: Option<String>,
    /// `max_connection_retries`, default -1 = unlimited; 0 is mapped to -1.
    pub max_connection_retries: i64,
    /// `request_max_retries`, default 5.
    pub request_max_retries: u32,
    /// `request_retry_delay`, default 2 s.
    pub request_retry_delay: Duration,
    /// `request_retry_backoff` multiplier, default 2.
    pub request_retry_backoff: u32,
    /// `stomp_host`, default = `host`.
    pub stomp_host: String,
    /// `stomp_port`, default 65001.
    pub stomp_port: u16,
    /// `stomp_cafile`, raw like `cafile`; falls back to `cafile`.
    pub stomp_cafile: Option<String>,
    /// `stomp_timeout`, default 60 s (env `RESILIENT_STOMP_TIMEOUT` overrides).
    pub stomp_timeout: Duration,
    /// `stomp_max_retries`, default 3, 0 = never give up (env `RESILIENT_STOMP_MAX_RETRIES`
    /// overrides).
    pub stomp_max_retries: u32,
    /// `stomp_prefetch_limit`, default = `num_workers`, 1..=2000.
    pub stomp_prefetch_limit: u32,
    /// `stomp_max_frame_size` in bytes, default 16 MiB, 64 KiB..=1 GiB: a message over it is
    /// answered with an error and acknowledged, not run.
    pub stomp_max_frame_size: usize,
    /// `stomp_timer_interval`, default 60 s.
    pub stomp_timer_interval: Duration,
    /// `stomp`: enabled unless `0`/`false`/`no`/`off`.
    pub stomp_enabled: bool,
    /// `ignore_message_failure`: `1` (or true/yes/on).
    pub ignore_message_failure: bool,
    /// `num_workers`, default 25, 1..=2000.
    pub num_workers: u32,
    /// `trap_exception`, default false (first letter `1`/`t`/`y`, as upstream).
    pub trap_exception: bool,
    /// `heartbeat_timeout_threshold` in seconds.
    pub heartbeat_timeout_threshold: Option<Duration>,
    /// `selftest_timeout`, default 10 s.
    pub selftest_timeout: Duration,
    /// `componentsdir`.
    pub componentsdir: Option<String>,
    /// `noload`: comma list, entries stripped, empties dropped.
    pub noload: Vec<String>,
    /// `logdir`, default env `APP_LOG_DIR` or `logs`.
    pub logdir: String,
    /// `logfile`, default `app.log`.
    pub logfile: String,
    /// `loglevel`, default INFO (env `LOGLEVEL` overrides).
    pub loglevel: LogLevel,
    /// `log_max_bytes`, default 10000000; 0 = unlimited, else >= 100000.
    pub log_max_bytes: u64,
    /// `log_backup_count`, default 10.
    pub log_backup_count: u32,
    /// `log_format` (ours): `text` (default) or `json`.
    pub log_format: LogFormat,
    /// `no_prompt_password`, first letter `1`/`t`/`y`.
    pub no_prompt_password: bool,
    /// `shutdown_timeout` (ours), default 30 s: how long running functions may take to finish.
    pub shutdown_timeout: Duration,
    /// `journal_path` (ours): the journal of handled invocations; `None` for `false` (kept in
    /// memory only). Default: beside the lock file, see [`default_journal_path`].
    pub journal_path: Option<PathBuf>,
}

/// The lock file resilient-circuits uses: `APP_LOCK_FILE`, else
/// `~/.resilient/resilient_circuits_lockfile`.
pub fn lock_file_path() -> PathBuf {
    match std::env::var_os("APP_LOCK_FILE") {
        Some(p) => PathBuf::from(p),
        None => resilient_dir().join("resilient_circuits_lockfile"),
    }
}

/// `~/.resilient`, where resilient-circuits keeps app.config and its lock file.
pub fn resilient_dir() -> PathBuf {
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    home.join(".resilient")
}

/// The journal's default directory: the lock file's path with `-journal` appended, so that
/// hosts given different lock files (`APP_LOCK_FILE`) get different journals too.
pub fn default_journal_path() -> PathBuf {
    let mut path = lock_file_path().into_os_string();
    path.push("-journal");
    PathBuf::from(path)
}

/// Upstream `_is_true`: the first character is one of `1tTyY`.
fn is_true(v: Option<&str>) -> bool {
    v.and_then(|v| v.chars().next())
        .is_some_and(|c| matches!(c, '1' | 't' | 'T' | 'y' | 'Y'))
}

fn non_empty(v: Option<&str>) -> Option<String> {
    v.filter(|v| !v.is_empty()).map(str::to_owned)
}

struct Reader<'a> {
    cfg: &'a AppConfig,
    s: Section<'a>,
}

impl Reader<'_> {
    fn get(&self, key: &str) -> Option<String> {
        non_empty(self.s.get(key))
    }

    fn parse<T: FromStr>(&self, key: &str) -> Result<Option<T>, ConfigError>
    where
        T::Err: fmt::Display,
    {
        self.s.parse(key)
    }

    /// `env` (when set and non-empty) overrides the file.
    fn parse_env_first<T: FromStr>(&self, env: &str, key: &str) -> Result<Option<T>, ConfigError>
    where
        T::Err: fmt::Display,
    {
        match self.cfg.env_var(env).filter(|v| !v.is_empty()) {
            Some(v) => v.trim().parse::<T>().map(Some).map_err(|e| {
                self.s.invalid(
                    key,
                    format!("invalid value '{v}' from environment variable {env}: {e}"),
                )
            }),
            None => self.parse(key),
        }
    }

    fn secs(&self, key: &str, default: u64) -> Result<Duration, ConfigError> {
        Ok(Duration::from_secs(self.parse(key)?.unwrap_or(default)))
    }

    fn in_range(&self, key: &str, v: u32) -> Result<u32, ConfigError> {
        if WORKERS_RANGE.contains(&v) {
            Ok(v)
        } else {
            Err(self.s.invalid(
                key,
                format!(
                    "{v} is out of range ({}..={})",
                    WORKERS_RANGE.start(),
                    WORKERS_RANGE.end()
                ),
            ))
        }
    }
}

impl ResilientOptions {
    /// Reads and validates `[resilient]` of `cfg`.
    pub fn from_config(cfg: &AppConfig) -> Result<ResilientOptions, ConfigError> {
        let s = cfg.require_section(SECTION)?;
        let r = Reader { cfg, s };

        let host = s.require("host")?.to_owned();
        let port: u16 = r.parse("port")?.unwrap_or(443);
        if port == 0 {
            return Err(s.invalid("port", "0 is not a valid port"));
        }

        let email = r.get("email");
        let password = r.get("password").map(Secret::new);
        let api_key_id = r.get("api_key_id");
        let api_key_secret = r.get("api_key_secret").map(Secret::new);
        let no_prompt_password = is_true(s.get("no_prompt_password"));
        let credentials = match (&api_key_id, &api_key_secret, &email, &password) {
            (Some(id), Some(secret), _, _) => Credentials::ApiKey {
                id: id.clone(),
                secret: secret.clone(),
            },
            (_, _, Some(email), Some(password)) => Credentials::Password {
                email: email.clone(),
                password: password.clone(),
            },
            (None, None, Some(email), None) if !no_prompt_password => Credentials::PromptPassword {
                email: email.clone(),
            },
            (Some(_), None, _, _) => {
                return Err(s.invalid(
                    "api_key_secret",
                    "api_key_id is set but api_key_secret is missing",
                ));
            }
            (None, Some(_), _, _) => {
                return Err(s.invalid(
                    "api_key_id",
                    "api_key_secret is set but api_key_id is missing",
                ));
            }
            (None, None, Some(_), None) => {
                return Err(s.invalid(
                    "password",
                    "email is set but password is missing (and no_prompt_password is on)",
                ));
            }
            (None, None, None, _) => {
                return Err(ConfigError::Missing {
                    file: cfg.path().to_owned(),
                    section: SECTION.into(),
                    key: "api_key_id/api_key_secret or email/password".into(),
                });
            }
        };

        let cafile = s.get("cafile").map(str::to_owned);
        let proxy_port = r.parse::<u16>("proxy_port")?.filter(|p| *p != 0);
        let cache_ttl = match r.parse::<u64>("cache_ttl")? {
            None | Some(0) => 240,
            Some(v) => v,
        };

        let max_connection_retries = if cfg
            .env_var("APP_HOST_CONTAINER")
            .is_some_and(|v| !v.is_empty())
        {
            r.parse_env_first::<i64>("RESILIENT_MAX_CONNECTION_RETRIES", "max_connection_retries")?
                .unwrap_or(0)
        } else {
            r.parse::<i64>("max_connection_retries")?.unwrap_or(-1)
        };
        let max_connection_retries = match max_connection_retries {
            0 => -1,
            v if v < -1 => {
                return Err(s.invalid(
                    "max_connection_retries",
                    format!("{v} is not valid (use -1 or 0 for unlimited, or a positive count)"),
                ));
            }
            v => v,
        };

        let num_workers = r.in_range("num_workers", r.parse("num_workers")?.unwrap_or(25))?;
        let stomp_prefetch_limit = r.in_range(
            "stomp_prefetch_limit",
            r.parse("stomp_prefetch_limit")?.unwrap_or(num_workers),
        )?;

        let stomp_max_frame_size: usize = r
            .parse("stomp_max_frame_size")?
            .unwrap_or(soar_stomp::DEFAULT_MAX_FRAME_SIZE);
        if !FRAME_SIZE_RANGE.contains(&stomp_max_frame_size) {
            return Err(s.invalid(
                "stomp_max_frame_size",
                format!(
                    "{stomp_max_frame_size} is out of range ({}..={} bytes)",
                    FRAME_SIZE_RANGE.start(),
                    FRAME_SIZE_RANGE.end()
                ),
            ));
        }

        let stomp_timer_interval = r.secs("stomp_timer_interval", 60)?;
        if stomp_timer_interval.is_zero() {
            return Err(s.invalid("stomp_timer_interval", "must be at least 1 second"));
        }

        let loglevel = match cfg.env_var("LOGLEVEL").filter(|v| !v.is_empty()) {
            Some(v) => v.parse::<LogLevel>().map_err(|e| {
                s.invalid(
                    "loglevel",
                    format!("invalid value '{v}' from environment variable LOGLEVEL: {e}"),
                )
            })?,
            None => r.parse("loglevel")?.unwrap_or(LogLevel::Info),
        };
        let log_max_bytes: u64 = r.parse("log_max_bytes")?.unwrap_or(10_000_000);
        if log_max_bytes != 0 && log_max_bytes < MIN_LOG_BYTES {
            return Err(s.invalid(
                "log_max_bytes",
                format!("{log_max_bytes} is too small (use 0 for unlimited, or at least {MIN_LOG_BYTES})"),
            ));
        }

        let resource_prefix = match cfg.env_var("RESOURCE_PREFIX") {
            Some(v) => non_empty(Some(&v)),
            None => r.get("resource_prefix"),
        };

        Ok(ResilientOptions {
            stomp_host: r.get("stomp_host").unwrap_or_else(|| host.clone()),
            host,
            port,
            org: r.get("org"),
            credentials,
            email,
            password,
            api_key_id,
            api_key_secret,
            stomp_cafile: r.get("stomp_cafile").or_else(|| cafile.clone()),
            cafile,
            proxy_host: r.get("proxy_host"),
            proxy_port,
            proxy_user: r.get("proxy_user"),
            proxy_password: r.get("proxy_password").map(Secret::new),
            cache_ttl: Duration::from_secs(cache_ttl),
            resource_prefix,
            max_connection_retries,
            request_max_retries: r.parse("request_max_retries")?.unwrap_or(5),
            request_retry_delay: r.secs("request_retry_delay", 2)?,
            request_retry_backoff: r.parse("request_retry_backoff")?.unwrap_or(2),
            stomp_port: r.parse("stomp_port")?.unwrap_or(65001),
            stomp_timeout: Duration::from_secs(
                r.parse_env_first("RESILIENT_STOMP_TIMEOUT", "stomp_timeout")?
                    .unwrap_or(60),
            ),
            stomp_max_retries: r
                .parse_env_first("RESILIENT_STOMP_MAX_RETRIES", "stomp_max_retries")?
                .unwrap_or(3),
            stomp_prefetch_limit,
            stomp_max_frame_size,
            stomp_timer_interval,
            stomp_enabled: s.get("stomp").and_then(parse_bool) != Some(false),
            ignore_message_failure: s.get("ignore_message_failure").and_then(parse_bool)
                == Some(true),
            num_workers,
            trap_exception: is_true(s.get("trap_exception")),
            heartbeat_timeout_threshold: r
                .parse::<u64>("heartbeat_timeout_threshold")?
                .filter(|v| *v != 0)
                .map(Duration::from_secs),
            selftest_timeout: r.secs("selftest_timeout", 10)?,
            componentsdir: r.get("componentsdir"),
            noload: s
                .get("noload")
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
                .collect(),
            logdir: r
                .get("logdir")
                .or_else(|| cfg.env_var("APP_LOG_DIR").filter(|v| !v.is_empty()))
                .unwrap_or_else(|| "logs".into()),
            logfile: r.get("logfile").unwrap_or_else(|| "app.log".into()),
            loglevel,
            log_max_bytes,
            log_backup_count: r.parse("log_backup_count")?.unwrap_or(10),
            log_format: r.parse("log_format")?.unwrap_or_default(),
            no_prompt_password,
            shutdown_timeout: r.secs("shutdown_timeout", 30)?,
            journal_path: match r.get("journal_path") {
                None => Some(default_journal_path()),
                Some(v) if parse_bool(&v) == Some(false) => None,
                Some(v) => Some(super::expand_tilde(
                    &v,
                    std::env::var_os("HOME").map(PathBuf::from).as_deref(),
                )),
            },
        })
    }

    /// Whether both an API key and email/password are configured (upstream logs a warning).
    pub fn has_both_credentials(&self) -> bool {
        self.api_key_id.is_some() && self.email.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::super::SecretResolver;
    use super::*;
    use std::path::Path;

    fn load(text: &str) -> Result<ResilientOptions, ConfigError> {
        load_env(text, &[])
    }

    fn load_env(text: &str, env: &[(&str, &str)]) -> Result<ResilientOptions, ConfigError> {
        let resolver = env
            .iter()
            .fold(SecretResolver::isolated(), |r, (k, v)| r.with_env(k, v));
        let cfg = AppConfig::parse_with(text, Path::new("/etc/app.config"), &resolver)?;
        ResilientOptions::from_config(&cfg)
    }

    const MIN: &str =
        "[resilient]\nhost = soar.example.com\napi_key_id = id\napi_key_secret = s3cret\n";

    #[test]
    fn defaults() {
        let o = load(MIN).unwrap();
        assert_eq!(o.host, "soar.example.com");
        assert_eq!(o.port, 443);
        assert_eq!(o.stomp_host, "soar.example.com");
        assert_eq!(o.stomp_port, 65001);
        assert_eq!(o.num_workers, 25);
        assert_eq!(o.stomp_prefetch_limit, 25);
        assert_eq!(o.max_connection_retries, -1);
        assert_eq!(o.request_max_retries, 5);
        assert_eq!(o.request_retry_delay, Duration::from_secs(2));
        assert_eq!(o.request_retry_backoff, 2);
        assert_eq!(o.stomp_timeout, Duration::from_secs(60));
        assert_eq!(o.stomp_max_retries, 3);
        assert_eq!(o.stomp_timer_interval, Duration::from_secs(60));
        assert!(o.stomp_enabled);
        assert!(!o.ignore_message_failure);
        assert!(!o.trap_exception);
        assert_eq!(o.heartbeat_timeout_threshold, None);
        assert_eq!(o.selftest_timeout, Duration::from_secs(10));
        assert_eq!(o.logdir, "logs");
        assert_eq!(o.logfile, "app.log");
        assert_eq!(o.loglevel, LogLevel::Info);
        assert_eq!(o.log_max_bytes, 10_000_000);
        assert_eq!(o.log_backup_count, 10);
        assert_eq!(o.cache_ttl, Duration::from_secs(240));
        assert_eq!(o.shutdown_timeout, Duration::from_secs(30));
        assert_eq!(o.cafile, None);
        assert_eq!(o.stomp_cafile, None);
        assert!(o.noload.is_empty());
        assert!(!o.no_prompt_password);
        assert_eq!(
            o.credentials,
            Credentials::ApiKey {
                id: "id".into(),
                secret: Secret::new("s3cret")
            }
        );
        assert!(!format!("{o:?}").contains("s3cret"));
    }

    #[test]
    fn missing_host_names_file_section_key() {
        let e = load("[resilient]\napi_key_id = a\napi_key_secret = b\n").unwrap_err();
        assert!(
            matches!(&e, ConfigError::Missing { section, key, .. } if section == "resilient" && key == "host")
        );
        assert_eq!(
            e.to_string(),
            "/etc/app.config: [resilient] host: required value is missing"
        );
        let e = load("[other]\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "/etc/app.config: section [resilient] is missing"
        );
    }

    #[test]
    fn stomp_max_frame_size_has_a_default_and_a_range() {
        let o = load(MIN).unwrap();
        assert_eq!(o.stomp_max_frame_size, 16 * 1024 * 1024);
        let o = load(&format!("{MIN}stomp_max_frame_size = 65536\n")).unwrap();
        assert_eq!(o.stomp_max_frame_size, 65536);
        for v in ["1000", "x", "2000000000"] {
            let e = load(&format!("{MIN}stomp_max_frame_size = {v}\n")).unwrap_err();
            assert!(e.to_string().contains("stomp_max_frame_size"), "{v}: {e}");
        }
    }

    #[test]
    fn num_workers_validation() {
        for v in ["0", "abc", "2001", "-1"] {
            let e = load(&format!("{MIN}num_workers = {v}\n")).unwrap_err();
            assert!(
                matches!(&e, ConfigError::Invalid { key, section, .. } if key == "num_workers" && section == "resilient"),
                "{v}: {e}"
            );
            assert!(
                e.to_string()
                    .starts_with("/etc/app.config: [resilient] num_workers: ")
            );
        }
        assert_eq!(
            load(&format!("{MIN}num_workers = 2000\n"))
                .unwrap()
                .num_workers,
            2000
        );
    }

    #[test]
    fn prefetch_follows_num_workers() {
        let o = load(&format!("{MIN}num_workers = 7\n")).unwrap();
        assert_eq!(o.stomp_prefetch_limit, 7);
        let o = load(&format!("{MIN}num_workers = 7\nstomp_prefetch_limit = 3\n")).unwrap();
        assert_eq!(o.stomp_prefetch_limit, 3);
        assert!(load(&format!("{MIN}stomp_prefetch_limit = 0\n")).is_err());
    }

    #[test]
    fn credentials() {
        let both = format!("{MIN}email = a@b.c\npassword = pw\n");
        let o = load(&both).unwrap();
        assert!(matches!(o.credentials, Credentials::ApiKey { .. }));
        assert!(o.has_both_credentials());
        let o = load("[resilient]\nhost=h\nemail = a@b.c\npassword = pw\n").unwrap();
        assert_eq!(
            o.credentials,
            Credentials::Password {
                email: "a@b.c".into(),
                password: Secret::new("pw")
            }
        );
        let o = load("[resilient]\nhost=h\nemail = a@b.c\n").unwrap();
        assert!(matches!(o.credentials, Credentials::PromptPassword { .. }));
        assert!(load("[resilient]\nhost=h\nemail = a@b.c\nno_prompt_password=1\n").is_err());
        let e = load("[resilient]\nhost=h\n").unwrap_err();
        assert!(matches!(&e, ConfigError::Missing { section, .. } if section == "resilient"));
        assert!(load("[resilient]\nhost=h\napi_key_id=x\n").is_err());
    }

    #[test]
    fn values_and_env() {
        let text = format!(
            "{MIN}port = 8443\ncafile = false\nmax_connection_retries = 0\nstomp = 0\n\
             ignore_message_failure = 1\ntrap_exception = True\nloglevel = debug\nnoload = a, b,,\n\
             log_max_bytes = 0\nstomp_timeout = 5\nresource_prefix = /x\n"
        );
        let o = load(&text).unwrap();
        assert_eq!(o.port, 8443);
        assert_eq!(o.cafile.as_deref(), Some("false"));
        assert_eq!(o.stomp_cafile.as_deref(), Some("false"));
        assert_eq!(o.max_connection_retries, -1);
        assert!(!o.stomp_enabled);
        assert!(o.ignore_message_failure);
        assert!(o.trap_exception);
        assert_eq!(o.loglevel, LogLevel::Debug);
        assert_eq!(o.noload, ["a", "b"]);
        assert_eq!(o.log_max_bytes, 0);
        assert_eq!(o.stomp_timeout, Duration::from_secs(5));
        let o = load_env(
            &text,
            &[
                ("RESILIENT_STOMP_TIMEOUT", "9"),
                ("LOGLEVEL", "warn"),
                ("RESOURCE_PREFIX", "/api/respond"),
                ("APP_LOG_DIR", "/var/log/x"),
            ],
        )
        .unwrap();
        assert_eq!(o.stomp_timeout, Duration::from_secs(9));
        assert_eq!(o.loglevel, LogLevel::Warning);
        assert_eq!(o.resource_prefix.as_deref(), Some("/api/respond"));
        assert_eq!(o.logdir, "/var/log/x");
        assert!(load(&format!("{MIN}loglevel = LOUD\n")).is_err());
        assert!(load(&format!("{MIN}log_max_bytes = 99999\n")).is_err());
        assert!(load_env(MIN, &[("RESILIENT_STOMP_TIMEOUT", "x")]).is_err());
    }
}
