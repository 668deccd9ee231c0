//! The integration's app.config (spec D.1) as typed sections, read and validated once at start.
//!
//! - `[trustar]` ([`TrustarSection`]): the message destination and the original plugin's proxy
//!   settings.
//! - `[trustar_<name>]` ([`AccountSection`]), one per TruSTAR account; incidents are routed to an
//!   account by their workspace.
//! - `[trustar_threat_source]` ([`ThreatSourceSection`]): the account the threat service searches.
//!
//! The host serves the threat service itself (`[webserver]`, `[custom_threat_service]`). Unlike
//! the original, workspace names are trimmed, excluded types are matched by exact label, and a
//! missing `[trustar]` section means the defaults.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use soar_sdk::config::template::{self, TemplateSection};
use soar_sdk::config::{ConfigSource, Section, Sections, Setup};
use soar_sdk::http::HttpOptions;
use soar_sdk::{ConfigError, Secret};

use crate::client::{Connection, DEFAULT_MAX_WAIT};

/// The default TruSTAR url.
pub const DEFAULT_URL: &str = "https://api.trustar.co";

/// The section of the threat service's account.
pub const THREAT_SOURCE: &str = "trustar_threat_source";

/// What the account sections' names start with.
pub const ACCOUNT_PREFIX: &str = "trustar_";

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

/// The message destination of the crate's customizations (`customize/*.yaml`); `[trustar]
/// queue` renames it.
pub const DEFAULT_QUEUE: &str = "trustar";

fn default_queue() -> String {
    DEFAULT_QUEUE.into()
}

fn default_url() -> String {
    format!("{DEFAULT_URL}/")
}

/// Settings of the TruSTAR integration.
#[derive(Debug, Clone, Default, Deserialize, Serialize, schemars::JsonSchema)]
pub struct TrustarSection {
    /// Message destination of the TruSTAR functions and rules.
    #[serde(default = "default_queue")]
    pub queue: String,
    /// Send TruSTAR requests through proxy_url.
    #[serde(default)]
    pub proxy: bool,
    /// The proxy needs proxy_username and proxy_password.
    #[serde(default)]
    pub secure_proxy: bool,
    /// The proxy, host:port.
    #[schemars(example = &"proxy.example.com:3128")]
    pub proxy_url: Option<String>,
    /// User name for the proxy.
    pub proxy_username: Option<String>,
    /// Password for the proxy.
    pub proxy_password: Option<Secret>,
}

impl Section for TrustarSection {
    const NAME: &'static str = "trustar";
}

/// Whether incidents of an account are submitted automatically when they are created or change.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum AutoSubmission {
    #[serde(alias = "Enable", alias = "ENABLE")]
    Enable,
    #[default]
    #[serde(alias = "Disable", alias = "DISABLE")]
    Disable,
}

/// One TruSTAR account; name the section trustar_<anything>, one per account.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
pub struct AccountSection {
    /// TruSTAR's API address.
    #[serde(default = "default_url")]
    pub url: String,
    /// The account's API key.
    #[schemars(example = "^api_key_for_trustar_default")]
    pub user_api_key: String,
    /// The account's API secret.
    #[schemars(example = "^api_secret_for_trustar_default")]
    pub user_api_secret: Secret,
    /// Enclave ids that reports are submitted to (comma-separated).
    #[schemars(example = &"your-enclave-id")]
    #[schemars(extend("x-placeholder" = true))]
    pub enclave_ids_for_submission: Vec<String>,
    /// Enclave ids searched for correlated indicators (default: the submission enclaves).
    #[serde(default)]
    pub enclave_ids_for_query: Vec<String>,
    /// enable or disable: submit incidents automatically when they are created or change.
    #[serde(default)]
    pub auto_submission: AutoSubmission,
    /// What a report contains: summary, notes, breach and/or artifacts.
    #[schemars(example = &"summary,notes,breach,artifacts")]
    pub incident_content_to_submit: Option<Vec<String>>,
    /// Older name of incident_content_to_submit.
    pub submit_data_to_trustar: Option<Vec<String>>,
    /// Incident type labels (exact, case sensitive) never submitted.
    #[serde(default)]
    pub incident_types_to_exclude: Vec<String>,
    /// Workspace display names whose incidents go to this account.
    #[schemars(example = &"Default workspace")]
    pub workspace: Vec<String>,
    /// Tag added to every submitted report.
    pub tag: Option<String>,
    /// CA certificates for an https url: a PEM file, or false to skip verification.
    pub cafile: Option<String>,
    /// Most seconds to wait in total when TruSTAR limits the request rate (HTTP 429).
    #[schemars(example = 60)]
    pub max_wait_secs: Option<u64>,
    /// Seconds to wait for one TruSTAR answer.
    #[schemars(example = 60)]
    pub timeout_secs: Option<u64>,
}

/// The TruSTAR account that the threat service searches.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
pub struct ThreatSourceSection {
    /// TruSTAR's API address.
    #[serde(default = "default_url")]
    pub url: String,
    /// The account's API key.
    #[schemars(example = "^api_key_for_trustar_threat_source")]
    pub user_api_key: String,
    /// The account's API secret.
    #[schemars(example = "^api_secret_for_trustar_threat_source")]
    pub user_api_secret: Secret,
    /// Enclave ids searched (comma-separated; empty: every enclave of the account).
    #[serde(default)]
    pub enclave_ids_for_search: Vec<String>,
    /// The plugin documentation's name for the enclaves searched: used when
    /// enclave_ids_for_search is empty.
    #[serde(default)]
    pub enclave_ids_for_submission: Vec<String>,
    /// CA certificates for an https url: a PEM file, or false to skip verification.
    pub cafile: Option<String>,
    /// Most seconds to wait in total when TruSTAR limits the request rate (HTTP 429).
    #[schemars(example = 60)]
    pub max_wait_secs: Option<u64>,
    /// Seconds to wait for one TruSTAR answer.
    #[schemars(example = 60)]
    pub timeout_secs: Option<u64>,
}

impl ThreatSourceSection {
    /// The enclaves the threat service searches: `enclave_ids_for_search`, else the documented
    /// `enclave_ids_for_submission`; empty means every enclave of the account.
    pub fn search_enclaves(&self) -> Vec<String> {
        if self.enclave_ids_for_search.is_empty() {
            self.enclave_ids_for_submission.clone()
        } else {
            self.enclave_ids_for_search.clone()
        }
    }
}

impl Section for ThreatSourceSection {
    const NAME: &'static str = THREAT_SOURCE;
}

/// Every section the integration reads.
#[derive(Debug, Clone)]
pub struct TrustarSections {
    pub trustar: TrustarSection,
    pub threat_source: Option<ThreatSourceSection>,
    pub accounts: Vec<(String, AccountSection)>,
}

impl Sections for TrustarSections {
    fn load(source: &ConfigSource) -> Result<Self, ConfigError> {
        Ok(TrustarSections {
            trustar: TrustarSection::load(source)?,
            threat_source: Option::<ThreatSourceSection>::load(source)?,
            accounts: source.family(ACCOUNT_PREFIX, &[THREAT_SOURCE])?,
        })
    }

    fn template() -> Vec<TemplateSection> {
        vec![
            template::section::<TrustarSection>(TrustarSection::NAME),
            template::section::<ThreatSourceSection>(THREAT_SOURCE),
            template::family::<AccountSection>(ACCOUNT_PREFIX, "trustar_default"),
        ]
    }
}

/// One `[trustar_<name>]` section, validated.
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

/// `[trustar_threat_source]`, validated.
#[derive(Debug, Clone)]
pub struct ThreatSource {
    pub connection: Connection,
    pub enclaves_for_search: Vec<String>,
}

/// The whole configuration of the integration.
#[derive(Debug, Clone)]
pub struct TrustarConfig {
    pub queue: String,
    pub accounts: Vec<Arc<Account>>,
    pub threat_source: Option<ThreatSource>,
}

/// The `[trustar]` proxy as HTTP options: `(url, credentials)`.
fn proxy(s: &TrustarSection, setup: &Setup) -> Result<HttpOptions, ConfigError> {
    if !s.proxy {
        return Ok(HttpOptions::default());
    }
    let missing =
        |key: &str| setup.invalid("trustar", key, "required value is missing (proxy = true)");
    let url = s.proxy_url.as_deref().ok_or_else(|| missing("proxy_url"))?;
    let address = url
        .trim()
        .trim_start_matches("http://")
        .trim_start_matches("https://")
        .trim_end_matches('/');
    let credentials = if s.secure_proxy {
        let user = s
            .proxy_username
            .clone()
            .ok_or_else(|| missing("proxy_username"))?;
        let password = s
            .proxy_password
            .clone()
            .ok_or_else(|| missing("proxy_password"))?;
        Some((user, password))
    } else {
        None
    };
    Ok(HttpOptions {
        proxy: Some(format!("http://{address}")),
        proxy_credentials: credentials,
        ..HttpOptions::default()
    })
}

/// The values every TruSTAR connection section has.
struct ConnectionKeys<'a> {
    url: &'a str,
    user_api_key: &'a str,
    user_api_secret: &'a Secret,
    cafile: &'a Option<String>,
    max_wait_secs: Option<u64>,
    timeout_secs: Option<u64>,
}

fn connection(
    section: &str,
    keys: ConnectionKeys<'_>,
    proxy: &HttpOptions,
    setup: &Setup,
) -> Result<Connection, ConfigError> {
    let url = match keys.url.trim() {
        "" => DEFAULT_URL,
        u => u,
    }
    .trim_end_matches('/')
    .to_string();
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err(setup.invalid(section, "url", format!("'{url}' is not an http(s) URL")));
    }
    if keys.user_api_key.trim().is_empty() {
        return Err(setup.invalid(section, "user_api_key", "required value is missing"));
    }
    if keys.user_api_secret.expose().is_empty() {
        return Err(setup.invalid(section, "user_api_secret", "required value is missing"));
    }
    let http = setup.http_client(
        section,
        &HttpOptions {
            url: url.clone(),
            cafile: keys.cafile.clone().filter(|c| !c.trim().is_empty()),
            timeout: Some(Duration::from_secs(keys.timeout_secs.unwrap_or(60))),
            user_agent: Some(concat!("fn_trustar/", env!("CARGO_PKG_VERSION")).into()),
            ..proxy.clone()
        },
    )?;
    Ok(Connection {
        account: section.to_string(),
        url,
        api_key: keys.user_api_key.trim().to_string(),
        api_secret: keys.user_api_secret.clone(),
        http,
        max_wait: keys
            .max_wait_secs
            .map(Duration::from_secs)
            .unwrap_or(DEFAULT_MAX_WAIT),
    })
}

fn account(
    name: &str,
    s: &AccountSection,
    proxy: &HttpOptions,
    setup: &Setup,
) -> Result<Account, ConfigError> {
    let keys = ConnectionKeys {
        url: &s.url,
        user_api_key: &s.user_api_key,
        user_api_secret: &s.user_api_secret,
        cafile: &s.cafile,
        max_wait_secs: s.max_wait_secs,
        timeout_secs: s.timeout_secs,
    };
    let connection = connection(name, keys, proxy, setup)?;
    let (content_key, content_value) =
        match (&s.incident_content_to_submit, &s.submit_data_to_trustar) {
            (Some(v), _) => ("incident_content_to_submit", v.clone()),
            (None, Some(v)) => ("submit_data_to_trustar", v.clone()),
            (None, None) => (
                "incident_content_to_submit",
                ["summary", "notes", "breach", "artifacts"]
                    .map(String::from)
                    .to_vec(),
            ),
        };
    let mut content = Vec::new();
    for item in content_value {
        let c = Content::parse(&item.to_ascii_lowercase()).ok_or_else(|| {
            setup.invalid(
                name,
                content_key,
                format!("unknown part '{item}': use summary, notes, breach and/or artifacts"),
            )
        })?;
        if !content.contains(&c) {
            content.push(c);
        }
    }
    if s.workspace.is_empty() {
        return Err(setup.invalid(
            name,
            "workspace",
            "must list at least one workspace display name (incidents are routed by workspace)",
        ));
    }
    if s.enclave_ids_for_submission.is_empty() {
        return Err(setup.invalid(
            name,
            "enclave_ids_for_submission",
            "must list at least one enclave id (reports are submitted to enclaves)",
        ));
    }
    Ok(Account {
        section: name.to_string(),
        connection,
        enclaves_for_submission: s.enclave_ids_for_submission.clone(),
        enclaves_for_query: s.enclave_ids_for_query.clone(),
        auto_submission: s.auto_submission == AutoSubmission::Enable,
        content,
        types_to_exclude: s.incident_types_to_exclude.clone(),
        workspaces: s.workspace.clone(),
        tag: s
            .tag
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_string),
    })
}

impl TrustarConfig {
    /// Validates the sections and builds each account's connection; errors name the section
    /// and key.
    pub fn new(sections: TrustarSections, setup: &Setup) -> Result<TrustarConfig, ConfigError> {
        let proxy = proxy(&sections.trustar, setup)?;
        let mut accounts: Vec<Arc<Account>> = Vec::new();
        for (name, section) in &sections.accounts {
            let a = account(name, section, &proxy, setup)?;
            for other in &accounts {
                if let Some(w) = a.workspaces.iter().find(|w| other.workspaces.contains(w)) {
                    return Err(setup.invalid(
                        name,
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
        let threat_source = match &sections.threat_source {
            Some(s) => {
                let keys = ConnectionKeys {
                    url: &s.url,
                    user_api_key: &s.user_api_key,
                    user_api_secret: &s.user_api_secret,
                    cafile: &s.cafile,
                    max_wait_secs: s.max_wait_secs,
                    timeout_secs: s.timeout_secs,
                };
                Some(ThreatSource {
                    connection: connection(THREAT_SOURCE, keys, &proxy, setup)?,
                    enclaves_for_search: s.search_enclaves(),
                })
            }
            None => None,
        };
        let queue = match sections.trustar.queue.trim() {
            "" => DEFAULT_QUEUE.to_string(),
            q => q.to_string(),
        };
        Ok(TrustarConfig {
            queue,
            accounts,
            threat_source,
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
    use soar_engine::config::{AppConfig, SecretResolver};
    use std::path::Path;

    fn parse(text: &str) -> Result<TrustarConfig, ConfigError> {
        let cfg = AppConfig::parse_with(text, Path::new("app.config"), &SecretResolver::isolated())
            .unwrap();
        let source = cfg.to_source();
        let setup = Setup::from_source(&source)?;
        TrustarConfig::new(TrustarSections::load(&source)?, &setup)
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
    fn the_threat_source_takes_the_documented_enclave_key() {
        let source = |keys: &str| {
            let text =
                format!("[trustar_threat_source]\nuser_api_key = k\nuser_api_secret = s\n{keys}");
            parse(&text)
                .unwrap()
                .threat_source
                .unwrap()
                .enclaves_for_search
        };
        // The plugin's documentation writes enclave_ids_for_submission here.
        assert_eq!(
            source("enclave_ids_for_submission = e1, e2\n"),
            ["e1", "e2"]
        );
        assert_eq!(source("enclave_ids_for_search = s1\n"), ["s1"]);
        assert_eq!(
            source("enclave_ids_for_search = s1\nenclave_ids_for_submission = e1\n"),
            ["s1"]
        );
        assert!(source("").is_empty());
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
    }
}
