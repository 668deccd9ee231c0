//! The text `host config -c` writes and `host config -u` appends: `[resilient]` (a curated copy
//! of resilient-circuits' `app.config.base`, read by [`ResilientOptions`](super::ResilientOptions)),
//! then sections generated from typed structs: `[integrations]`, the host's threat-service
//! sections (`[webserver]`, `[custom_threat_service]`) when a selected component serves a threat
//! service, and every selected component's own sections.

use soar_sdk::ComponentRegistration;
use soar_sdk::config::template::{self, TemplateSection};
use soar_sdk::config::{Integrations, Section};

use super::ini::Ini;
use crate::monitor::Monitoring;
use crate::threat::{CustomThreatService, Webserver};

/// The `[resilient]` section of a new app.config.
pub const RESILIENT: &str = r#"[resilient]
# SOAR host name or IP address (REST API; also the default STOMP host)
host=soar.example.com
# REST API port
port=443

# Authenticate with an API key (preferred) ...
api_key_id=ApiKeyId
api_key_secret=ApiKeySecret
# ... or with a user (the API key wins if both are set)
#email=api_user@example.com
#password=MyPassword

# Organization name (needed if the user or key belongs to more than one)
org=My Org

# Trusted CA certificates (PEM) for a self-signed server; cafile=false disables verification
#cafile=~/.resilient/cert.cer

# Number of attempts to connect to SOAR at startup; 0 or -1 means unlimited
#max_connection_retries=10
# Retries of a failed REST request, the delay between them (seconds) and its multiplier
#request_max_retries=5
#request_retry_delay=2
#request_retry_backoff=2

# Message destination (STOMP) host and port; CP4S uses its own STOMP host and port 443
#stomp_host=soar.example.com
#stomp_port=65001
# URL path prefix for CP4S, e.g. /api/respond
#resource_prefix=/api/respond
# Seconds to wait for the STOMP connection
#stomp_timeout=60

# Directory for log files (or set $APP_LOG_DIR), file name and level
logdir=/tmp
logfile=app.log
loglevel=INFO
# Rotate the log file at this size (0 = never) and keep this many old files
#log_max_bytes=10000000
#log_backup_count=10
# Log lines as text, or json (one object per line, with message id, incident and function)
#log_format=text

# Number of functions that run at the same time (1 to 2000)
num_workers=50

# Seconds that selftest waits for SOAR
selftest_timeout=10

# If True, a failing function returns success=False with the error instead of failing the workflow
trap_exception=False

# Seconds that running functions get to finish on shutdown (systemd's TimeoutStopSec must be longer)
#shutdown_timeout=30

# The journal of handled invocations, so that a crash or restart neither runs a message twice
# nor loses or repeats its reply (default: the lock file's path + -journal, a directory; false = memory only)
#journal_path=~/.resilient/resilient_circuits_lockfile-journal

# Where ^name secrets are read from: a directory (one file per secret) or a file (mode 0600)
#secrets=~/.resilient/secrets
"#;

/// One section of the file to write.
#[derive(Debug, Clone, PartialEq)]
pub struct Part {
    /// The section name (for a family, the example instance's name).
    pub name: String,
    /// For a family of sections (one per account...): what their names start with.
    pub family_prefix: Option<String>,
    /// Its text, ending with a newline.
    pub text: String,
}

impl Part {
    fn from_template(t: &TemplateSection) -> Part {
        Part {
            name: t.name.clone(),
            family_prefix: t.family_prefix.clone(),
            text: template::render_section(t),
        }
    }

    /// Whether `ini` already has this section (for a family: any section of it).
    pub fn present_in(&self, ini: &Ini, all: &[Part]) -> bool {
        ini.sections.iter().any(|s| match &self.family_prefix {
            None => s.name == self.name,
            Some(prefix) => {
                s.name.starts_with(prefix.as_str())
                    && !all
                        .iter()
                        .any(|p| p.family_prefix.is_none() && p.name == s.name)
            }
        })
    }
}

/// The sections for `registrations`, in the order they are written, each once. Linked
/// components in `left_out` (those `-l` did not name) are written as `noload`, so that `run`,
/// `selftest` and `customize` leave them out too.
pub fn parts(registrations: &[&ComponentRegistration], left_out: &[&str]) -> Vec<Part> {
    let mut sections = vec![
        template::section::<Integrations>(Integrations::NAME),
        template::section::<Monitoring>(Monitoring::NAME),
    ];
    if registrations.iter().any(|r| !r.threat_services.is_empty()) {
        sections.push(template::section::<Webserver>(Webserver::NAME));
        sections.push(template::section::<CustomThreatService>(
            CustomThreatService::NAME,
        ));
    }
    for r in registrations {
        sections.extend((r.template)());
    }
    let mut resilient = RESILIENT.to_string();
    if !left_out.is_empty() {
        resilient.push_str(&format!(
            "\n# Linked components this file leaves out (`host config -c -l` did not name them);\n\
             # remove a name and add its sections (`host config -u -l NAME`) to enable it\n\
             noload = {}\n",
            left_out.join(", ")
        ));
    }
    let mut parts = vec![Part {
        name: "resilient".into(),
        family_prefix: None,
        text: resilient,
    }];
    for s in &sections {
        if !parts.iter().any(|p| p.name == s.name) {
            parts.push(Part::from_template(s));
        }
    }
    parts
}

/// The whole text of a new file.
pub fn new_config(parts: &[Part]) -> String {
    parts
        .iter()
        .map(|p| p.text.as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::super::{AppConfig, ResilientOptions, SecretResolver};
    use super::*;
    use std::path::Path;

    /// Every line `#key = value` of `text` made active.
    fn uncommented(text: &str) -> String {
        text.lines()
            .map(|l| match l.strip_prefix('#') {
                Some(rest) if rest.contains('=') && !rest.starts_with(' ') => rest,
                _ => l,
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn host_sections_read_every_key_they_write() {
        use soar_sdk::config::{ConfigSource, Sections, template::entries};
        fn check<T: Sections>() {
            for section in T::template() {
                for all in [false, true] {
                    let source = ConfigSource::new("t")
                        .with_section(section.name.clone(), entries(&section, all));
                    T::load(&source).unwrap();
                    assert_eq!(source.warnings(), Vec::<String>::new());
                }
            }
        }
        check::<Integrations>();
        check::<Webserver>();
        check::<CustomThreatService>();
        check::<Monitoring>();
        let parts = parts(&[], &[]);
        let names: Vec<&str> = parts.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["resilient", "integrations", "monitoring"]);
    }

    #[test]
    fn resilient_template_loads_with_every_key() {
        for text in [RESILIENT.to_string(), uncommented(RESILIENT)] {
            let cfg =
                AppConfig::parse_with(&text, Path::new("app.config"), &SecretResolver::isolated())
                    .unwrap();
            let o = ResilientOptions::from_config(&cfg).unwrap();
            assert_eq!(o.num_workers, 50);
            for (key, _) in cfg.section("resilient").unwrap().keys() {
                assert!(
                    super::super::resilient::KEYS.contains(&key),
                    "the template writes [resilient] {key}, which the host does not read"
                );
            }
        }
    }
}
