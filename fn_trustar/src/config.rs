//! The integration's app.config (spec D.1), parsed and validated once at start.
//!
//! - `[trustar]`: `queue` (message destination, default `trustar`), `proxy`, `secure_proxy`,
//!   `proxy_url`, `proxy_username`, `proxy_password`.
//! - `[trustar_<name>]`, one per TruSTAR account: `url`, `user_api_key`, `user_api_secret`,
//!   `enclave_ids_for_submission`, `enclave_ids_for_query`, `auto_submission` (enable|disable),
//!   `incident_content_to_submit` (older name `submit_data_to_trustar`), `incident_types_to_exclude`,
//!   `workspace` (workspace display names), `tag`; optional `cafile` for an HTTPS url.
//! - `[trustar_threat_source]`: the account of the threat service (`url`, `user_api_key`,
//!   `user_api_secret`, `enclave_ids_for_search`, optional `answer_within_ms`).
//! - `[webserver]` (`server`, `port`, `secure`, `certfile`, `keyfile`) and
//!   `[custom_threat_service]` (`urlbase`, `first_retry_secs`, `later_retry_secs`, `max_retries`,
//!   `cache_size`, `cache_ttl`, `auth_user`, `auth_password`).
//!
//! Unlike the original, workspace names are trimmed, excluded types are matched by exact
//! label, and a missing `[trustar]` section means the defaults.

use std::sync::Arc;
use std::time::Duration;

use soar_sdk::config::{AppConfig, ConfigError, Section};

use crate::client::{Connection, DEFAULT_MAX_WAIT, ProxySettings, Secret};

/// The default TruSTAR url.
pub const DEFAULT_URL: &str = "https://api.trustar.co";

/// The section of the threat service's account.
pub const THREAT_SOURCE: &str = "trustar_threat_source";

/// What a report may contain, in the order configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Content {
    Summary,
    Notes,
    Breach,
    Artifacts,
}

impl Content {
    fn parse(s: &str) -> Option<Content> {
        match s {
            "summary" => Some(Content::Summary),
            "notes" => Some(Content::Notes),
            "breach" => Some(Content::Breach),
            "artifacts" => Some(Content::Artifacts),
            _ => None,
        }
    }
}

/// One `[trustar_<name>]` section.
#[derive(Debug, Clone)]
pub struct Account {
    pub section: String,
    pub connection: Connection,
    pub enclaves_for_submission: Vec<String>,
    pub enclaves_for_query: Vec<String>,
    pub auto_submission: bool,
    pub content: Vec<Content>,
    pub types_to_exclude: Vec<String>,
    pub workspaces: Vec<String>,
    pub tag: Option<String>,
}

impl Account {
    /// The enclaves searched for related indicators: the query enclaves, else the submission ones.
    pub fn query_enclaves(&self) -> &[String] {
        if self.enclaves_for_query.is_empty() {
            &self.enclaves_for_submission
        } else {
            &self.enclaves_for_query
        }
    }

    /// Whether `label` (an incident type's label) is excluded: exact, case-sensitive match.
    pub fn excludes(&self, label: &str) -> bool {
        self.types_to_exclude.iter().any(|t| t == label)
    }
}

/// `[trustar_threat_source]`.
#[derive(Debug, Clone)]
pub struct ThreatSource {
    pub connection: Connection,
    pub enclaves_for_search: Vec<String>,
    /// How long a POST waits for the lookup before answering 303.
    pub answer_within: Duration,
}

/// `[webserver]` plus `[custom_threat_service]`.
#[derive(Debug, Clone)]
pub struct WebserverConfig {
    pub server: String,
    pub port: u16,
    pub secure: bool,
    pub certfile: Option<String>,
    pub keyfile: Option<String>,
    pub urlbase: String,
    pub first_retry_secs: u64,
    pub later_retry_secs: u64,
    pub max_retries: u32,
    pub cache_size: usize,
    pub cache_ttl: Duration,
    pub auth_user: Option<String>,
    pub auth_password: Option<Secret>,
}

impl Default for WebserverConfig {
    fn default() -> Self {
        WebserverConfig {
            server: "localhost".to_string(),
            port: 9000,
            secure: false,
            certfile: None,
            keyfile: None,
            urlbase: "/cts".to_string(),
            first_retry_secs: 5,
            later_retry_secs: 60,
            max_retries: 60,
            cache_size: 10_000,
            cache_ttl: Duration::from_secs(600),
            auth_user: None,
            auth_password: None,
        }
    }
}

/// The whole configuration of the integration.
#[derive(Debug, Clone)]
pub struct TrustarConfig {
    pub queue: String,
    pub accounts: Vec<Arc<Account>>,
    pub threat_source: Option<ThreatSource>,
    pub webserver: WebserverConfig,
}

/// Splits a CSV value, trimming each item and dropping empty ones.
pub fn csv(value: Option<&str>) -> Vec<String> {
    value
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn proxy(config: &AppConfig) -> Result<Option<ProxySettings>, ConfigError> {
    let Some(s) = config.section("trustar") else {
        return Ok(None);
    };
    if !s.bool("proxy")?.unwrap_or(false) {
        return Ok(None);
    }
    let url = s.require("proxy_url")?;
    let address = url
        .trim()
        .trim_start_matches("http://")
        .trim_start_matches("https://")
        .trim_end_matches('/')
        .to_string();
    if s.bool("secure_proxy")?.unwrap_or(false) {
        let user = s.require("proxy_username")?;
        let password = s.require("proxy_password")?;
        Ok(Some(ProxySettings {
            address,
            username: Some(user.to_string()),
            password: Some(Secret::new(password)),
        }))
    } else {
        Ok(Some(ProxySettings {
            address,
            username: None,
            password: None,
        }))
    }
}

fn connection(s: &Section<'_>, proxy: &Option<ProxySettings>) -> Result<Connection, ConfigError> {
    let url = s
        .get("url")
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .unwrap_or(DEFAULT_URL)
        .trim_end_matches('/')
        .to_string();
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err(s.invalid("url", format!("'{url}' is not an http(s) URL")));
    }
    let max_wait = s
        .parse::<u64>("max_wait_secs")?
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_MAX_WAIT);
    let timeout = s
        .parse::<u64>("timeout_secs")?
        .map(Duration::from_secs)
        .unwrap_or(Duration::from_secs(60));
    Ok(Connection {
        account: s.name().to_string(),
        url,
        api_key: s.require("user_api_key")?.to_string(),
        api_secret: Secret::new(s.require("user_api_secret")?),
        cafile: s
            .get("cafile")
            .filter(|c| !c.trim().is_empty())
            .map(str::to_string),
        proxy: proxy.clone(),
        max_wait,
        timeout,
    })
}

fn account(s: &Section<'_>, proxy: &Option<ProxySettings>) -> Result<Account, ConfigError> {
    let connection = connection(s, proxy)?;
    let auto_submission = match s
        .get("auto_submission")
        .map(|v| v.trim().to_ascii_lowercase())
        .as_deref()
    {
        None | Some("") | Some("disable") => false,
        Some("enable") => true,
        Some(other) => {
            return Err(s.invalid(
                "auto_submission",
                format!("expected enable or disable, got '{other}'"),
            ));
        }
    };
    let (content_key, content_value) = match s.get("incident_content_to_submit") {
        Some(v) => ("incident_content_to_submit", Some(v)),
        None => ("submit_data_to_trustar", s.get("submit_data_to_trustar")),
    };
    let content_value = content_value.unwrap_or("summary,notes,breach,artifacts");
    let mut content = Vec::new();
    for item in csv(Some(content_value)) {
        let c = Content::parse(&item.to_ascii_lowercase()).ok_or_else(|| {
            s.invalid(
                content_key,
                format!("unknown part '{item}': use summary, notes, breach and/or artifacts"),
            )
        })?;
        if !content.contains(&c) {
            content.push(c);
        }
    }
    let workspaces = csv(s.get("workspace"));
    if workspaces.is_empty() {
        return Err(s.invalid(
            "workspace",
            "must list at least one workspace display name (incidents are routed by workspace)",
        ));
    }
    let enclaves_for_submission = csv(s.get("enclave_ids_for_submission"));
    if enclaves_for_submission.is_empty() {
        return Err(s.invalid(
            "enclave_ids_for_submission",
            "must list at least one enclave id (reports are submitted to enclaves)",
        ));
    }
    Ok(Account {
        section: s.name().to_string(),
        connection,
        enclaves_for_submission,
        enclaves_for_query: csv(s.get("enclave_ids_for_query")),
        auto_submission,
        content,
        types_to_exclude: csv(s.get("incident_types_to_exclude")),
        workspaces,
        tag: s
            .get("tag")
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_string),
    })
}

fn webserver(config: &AppConfig) -> Result<WebserverConfig, ConfigError> {
    let mut w = WebserverConfig::default();
    if let Some(s) = config.section("webserver") {
        if let Some(server) = s.get("server").map(str::trim).filter(|v| !v.is_empty()) {
            w.server = server.to_string();
        }
        w.port = s.parse::<u16>("port")?.unwrap_or(9000);
        w.secure = s.bool("secure")?.unwrap_or(false);
        w.certfile = s
            .get("certfile")
            .filter(|v| !v.is_empty())
            .map(str::to_string);
        w.keyfile = s
            .get("keyfile")
            .filter(|v| !v.is_empty())
            .map(str::to_string);
        if w.secure && w.certfile.is_none() {
            return Err(s.invalid(
                "certfile",
                "secure = 1 needs a certfile (PEM certificate and key)",
            ));
        }
    }
    if let Some(s) = config.section("custom_threat_service") {
        if let Some(base) = s.get("urlbase").map(str::trim).filter(|v| !v.is_empty()) {
            w.urlbase = format!("/{}", base.trim_matches('/'));
        }
        w.first_retry_secs = match s.parse::<u64>("first_retry_secs")? {
            None | Some(0) => 5,
            Some(n) => n,
        };
        w.later_retry_secs = match s.parse::<u64>("later_retry_secs")? {
            None | Some(0) => 60,
            Some(n) => n,
        };
        w.max_retries = s.parse::<u32>("max_retries")?.unwrap_or(60);
        w.cache_size = s.parse::<usize>("cache_size")?.unwrap_or(10_000);
        w.cache_ttl = Duration::from_secs(s.parse::<u64>("cache_ttl")?.unwrap_or(600));
        w.auth_user = s
            .get("auth_user")
            .filter(|v| !v.is_empty())
            .map(str::to_string);
        w.auth_password = s
            .get("auth_password")
            .filter(|v| !v.is_empty())
            .map(Secret::new);
    }
    Ok(w)
}

impl TrustarConfig {
    /// Reads and validates every TruSTAR section; errors name the section and key.
    pub fn from_app_config(config: &AppConfig) -> Result<TrustarConfig, ConfigError> {
        let queue = config
            .section("trustar")
            .and_then(|s| s.get("queue"))
            .map(str::trim)
            .filter(|q| !q.is_empty())
            .unwrap_or("trustar")
            .to_string();
        let proxy = proxy(config)?;
        let mut accounts: Vec<Arc<Account>> = Vec::new();
        let names: Vec<String> = config.section_names().map(str::to_string).collect();
        for name in names {
            if !name.starts_with("trustar_") || name == THREAT_SOURCE {
                continue;
            }
            let Some(s) = config.section(&name) else {
                continue;
            };
            let a = account(&s, &proxy)?;
            for other in &accounts {
                if let Some(w) = a.workspaces.iter().find(|w| other.workspaces.contains(w)) {
                    return Err(s.invalid(
                        "workspace",
                        format!(
                            "workspace '{w}' is already routed to [{}]; each workspace may be listed by one account only",
                            other.section
                        ),
                    ));
                }
            }
            accounts.push(Arc::new(a));
        }
        let threat_source = match config.section(THREAT_SOURCE) {
            Some(s) => Some(ThreatSource {
                connection: connection(&s, &proxy)?,
                enclaves_for_search: csv(s.get("enclave_ids_for_search")),
                answer_within: Duration::from_millis(
                    s.parse::<u64>("answer_within_ms")?.unwrap_or(1000),
                ),
            }),
            None => None,
        };
        Ok(TrustarConfig {
            queue,
            accounts,
            threat_source,
            webserver: webserver(config)?,
        })
    }

    /// The account whose `workspace` lists `display_name` (names compared trimmed, exactly).
    pub fn account_for_workspace(&self, display_name: &str) -> Option<&Arc<Account>> {
        let name = display_name.trim();
        self.accounts
            .iter()
            .find(|a| a.workspaces.iter().any(|w| w == name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn parse(text: &str) -> Result<TrustarConfig, ConfigError> {
        let cfg = AppConfig::parse(text, Path::new("app.config")).unwrap();
        TrustarConfig::from_app_config(&cfg)
    }

    const ACCOUNTS: &str = "\
[trustar]
queue = trustar

[trustar_soc]
url = https://api.trustar.co/
user_api_key = key1
user_api_secret = secret1
enclave_ids_for_submission = e1, e2
workspace = Default workspace,  SOC Team
incident_types_to_exclude = Malware,Phishing
auto_submission = enable

[trustar_legal]
user_api_key = key2
user_api_secret = secret2
enclave_ids_for_submission = e3
workspace = Legal
submit_data_to_trustar = summary,artifacts
";

    #[test]
    fn routes_by_trimmed_workspace_names() {
        let c = parse(ACCOUNTS).unwrap();
        assert_eq!(c.accounts.len(), 2);
        assert_eq!(
            c.account_for_workspace("SOC Team").unwrap().section,
            "trustar_soc"
        );
        assert_eq!(
            c.account_for_workspace(" Legal ").unwrap().section,
            "trustar_legal"
        );
        assert!(c.account_for_workspace("Unknown").is_none());
        assert!(c.account_for_workspace("soc team").is_none());
        let soc = c.account_for_workspace("Default workspace").unwrap();
        assert_eq!(soc.connection.url, "https://api.trustar.co");
        assert_eq!(soc.enclaves_for_submission, vec!["e1", "e2"]);
        assert!(soc.auto_submission);
        let legal = c.account_for_workspace("Legal").unwrap();
        assert_eq!(legal.content, vec![Content::Summary, Content::Artifacts]);
        assert!(!legal.auto_submission);
    }

    #[test]
    fn excluded_types_match_exact_labels_only() {
        let c = parse(ACCOUNTS).unwrap();
        let soc = &c.accounts[0];
        assert!(soc.excludes("Malware"));
        assert!(soc.excludes("Phishing"));
        // The original matched labels as substrings of the raw setting: "Malware,Phishing"
        // contains "ware" and "Phish".
        assert!(!soc.excludes("ware"));
        assert!(!soc.excludes("Phish"));
        assert!(!soc.excludes("malware"));
    }

    #[test]
    fn errors_name_the_section_and_hide_secrets() {
        let e = parse("[trustar_x]\nuser_api_key = k\nuser_api_secret = hunter2\nenclave_ids_for_submission = e\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("[trustar_x] workspace"), "{e}");
        assert!(!e.contains("hunter2"));
        let e =
            parse("[trustar_x]\nuser_api_key = k\nworkspace = A\nenclave_ids_for_submission = e\n")
                .unwrap_err()
                .to_string();
        assert!(e.contains("[trustar_x] user_api_secret"), "{e}");
        let e = parse("[trustar_x]\nuser_api_key = k\nuser_api_secret = s\nworkspace = A\nenclave_ids_for_submission = e\nauto_submission = maybe\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("auto_submission"), "{e}");
        let e = parse("[trustar_x]\nuser_api_key = k\nuser_api_secret = s\nworkspace = A\nenclave_ids_for_submission = e\nincident_content_to_submit = summary,everything\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("everything"), "{e}");
        let dup = format!(
            "{ACCOUNTS}\n[trustar_dup]\nuser_api_key = k\nuser_api_secret = s\nworkspace = Legal\nenclave_ids_for_submission = e\n"
        );
        let e = parse(&dup).unwrap_err().to_string();
        assert!(
            e.contains("[trustar_dup]") && e.contains("trustar_legal"),
            "{e}"
        );
    }

    #[test]
    fn no_sections_means_defaults() {
        let c = parse("").unwrap();
        assert_eq!(c.queue, "trustar");
        assert!(c.accounts.is_empty());
        assert!(c.threat_source.is_none());
        assert_eq!(c.webserver.port, 9000);
        assert_eq!(c.webserver.urlbase, "/cts");
    }
}
