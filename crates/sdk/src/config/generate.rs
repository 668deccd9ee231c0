//! Text for `host config -c` (a new app.config) and `host config -u` (append missing sections),
//! after resilient-circuits' `app.config.base` and `RC/bin/resilient_circuits_cmd.py` (spec §1.4).

use super::AppConfig;
use super::ini::py_strip;

/// The `[resilient]` and `[integrations]` sections of a new app.config.
pub const BASE_CONFIG: &str = r#"[resilient]
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

# Number of functions that run at the same time (1 to 2000)
num_workers=50

# Seconds that selftest waits for SOAR
selftest_timeout=10

# If True, a failing function returns success=False with the error instead of failing the workflow
trap_exception=False

# Seconds that running functions get to finish on shutdown
#shutdown_timeout=30

# Where ^name secrets are read from: a directory (one file per secret) or a file (mode 0600)
#secrets=~/.resilient/secrets

[integrations]
# Options for every app's calls to third-party APIs (an app's own section overrides them)
# Proxies
#http_proxy=http://example.com:3000
#https_proxy=https://example.com:3000
# Timeout of third-party API calls, in seconds
#timeout=30
"#;

/// The name of the first `[section]` header in `text` (the app section of a configsection
/// string), as the INI parser would read it.
pub fn first_section_name(text: &str) -> Option<&str> {
    text.lines().find_map(|line| {
        let v = py_strip(line);
        let inner = v.strip_prefix('[')?;
        let close = inner.rfind(']')?;
        (close >= 1).then(|| &inner[..close])
    })
}

/// For `config -u`: the `(section, text)` candidates whose section is not in `existing`, in the
/// given order. Append each as `"\n" + text` to the file.
pub fn missing_sections<'a>(
    existing: &AppConfig,
    candidates: &[(&'a str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    candidates
        .iter()
        .filter(|(section, _)| !existing.has_section(section))
        .copied()
        .collect()
}

/// For `config -c`: [`BASE_CONFIG`] followed by every non-empty section text, joined with a blank
/// line.
pub fn new_config_text(section_texts: &[&str]) -> String {
    std::iter::once(BASE_CONFIG.trim_end())
        .chain(
            section_texts
                .iter()
                .map(|t| t.trim_end())
                .filter(|t| !t.is_empty()),
        )
        .collect::<Vec<_>>()
        .join("\n\n")
        + "\n"
}

#[cfg(test)]
mod tests {
    use super::super::{ResilientOptions, SecretResolver};
    use super::*;
    use std::path::Path;

    #[test]
    fn base_config_loads() {
        let cfg = AppConfig::parse_with(
            BASE_CONFIG,
            Path::new("app.config"),
            &SecretResolver::isolated(),
        )
        .unwrap();
        let o = ResilientOptions::from_config(&cfg).unwrap();
        assert_eq!(o.num_workers, 50);
        assert!(cfg.has_section("integrations"));
    }

    #[test]
    fn missing_and_new() {
        let cfg = AppConfig::parse_with(
            "[resilient]\nhost=x\n[fn_a]\nk=1\n",
            Path::new("app.config"),
            &SecretResolver::isolated(),
        )
        .unwrap();
        let a = "[fn_a]\nk=2\n";
        let b = "# comment\n[fn_b]\nk=3\n";
        assert_eq!(first_section_name(b), Some("fn_b"));
        assert_eq!(first_section_name("no header"), None);
        let m = missing_sections(&cfg, &[("fn_a", a), ("fn_b", b)]);
        assert_eq!(m, vec![("fn_b", b)]);
        let text = new_config_text(&[a, "", b]);
        let all =
            AppConfig::parse_with(&text, Path::new("x"), &SecretResolver::isolated()).unwrap();
        assert_eq!(
            all.section_names().collect::<Vec<_>>(),
            ["resilient", "integrations", "fn_a", "fn_b"]
        );
    }
}
