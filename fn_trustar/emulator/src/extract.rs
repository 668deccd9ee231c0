//! Indicator extraction from free text, as TruSTAR's station does when a report is submitted:
//! IP addresses, CIDR blocks, URLs and domains, e-mail addresses, MD5/SHA-1/SHA-256 hashes,
//! CVE ids, registry keys and bitcoin addresses.

/// The TruSTAR type of `term` when it is a recognisable indicator (`IP`, `URL`, `MD5`, …).
pub fn classify(term: &str) -> Option<&'static str> {
    let t = term.trim();
    if t.is_empty() {
        return None;
    }
    if is_ipv4(t) {
        return Some("IP");
    }
    if let Some((ip, bits)) = t.split_once('/')
        && is_ipv4(ip)
        && bits.parse::<u8>().is_ok_and(|b| b <= 32)
    {
        return Some("CIDR_BLOCK");
    }
    let upper = t.to_ascii_uppercase();
    if let Some(rest) = upper.strip_prefix("CVE-") {
        let mut parts = rest.splitn(2, '-');
        let year = parts.next().unwrap_or_default();
        let num = parts.next().unwrap_or_default();
        if year.len() == 4
            && year.bytes().all(|b| b.is_ascii_digit())
            && num.len() >= 4
            && num.bytes().all(|b| b.is_ascii_digit())
        {
            return Some("CVE");
        }
    }
    if t.bytes().all(|b| b.is_ascii_hexdigit()) {
        match t.len() {
            32 => return Some("MD5"),
            40 => return Some("SHA1"),
            64 => return Some("SHA256"),
            _ => {}
        }
    }
    if upper.starts_with("HKEY_") && t.contains('\\') {
        return Some("REGISTRY_KEY");
    }
    if let Some((local, domain)) = t.split_once('@')
        && !local.is_empty()
        && local
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._%+-".contains(c))
        && is_domain(domain)
    {
        return Some("EMAIL_ADDRESS");
    }
    let lower = t.to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") || lower.starts_with("ftp://")
    {
        let rest = t.split_once("://").map(|x| x.1).unwrap_or_default();
        let host = rest.split(['/', '?', '#', ':']).next().unwrap_or_default();
        if is_domain(host) || is_ipv4(host) {
            return Some("URL");
        }
        return None;
    }
    let host = t.split('/').next().unwrap_or_default();
    if is_domain(host) {
        return Some("URL");
    }
    if (t.starts_with('1') || t.starts_with('3'))
        && (26..=35).contains(&t.len())
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() && !"0OIl".contains(c))
        && t.chars().any(|c| c.is_ascii_alphabetic())
    {
        return Some("BITCOIN_ADDRESS");
    }
    None
}

fn is_ipv4(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() == 4
        && parts.iter().all(|p| {
            !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()) && {
                p.parse::<u16>().is_ok_and(|n| n <= 255)
            }
        })
}

fn is_domain(s: &str) -> bool {
    let labels: Vec<&str> = s.split('.').collect();
    if labels.len() < 2 || s.len() > 253 {
        return false;
    }
    let tld = labels.last().copied().unwrap_or_default();
    if !(2..=12).contains(&tld.len()) || !tld.bytes().all(|b| b.is_ascii_alphabetic()) {
        return false;
    }
    labels.iter().all(|l| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    })
}

/// Every distinct indicator of `text`, in order of first appearance, as `(type, value)`.
pub fn extract(text: &str) -> Vec<(&'static str, String)> {
    let mut out: Vec<(&'static str, String)> = Vec::new();
    for raw in text.split(|c: char| c.is_whitespace() || "\"'<>()[]{},;|`".contains(c)) {
        let token = raw.trim_end_matches(['.', ':', '!', '?']);
        let token = token.trim_start_matches(['.', ':']);
        // `href=http://x` and `key=value` forms: look at the value too.
        let candidates = [token, token.rsplit('=').next().unwrap_or(token)];
        for candidate in candidates {
            if let Some(ty) = classify(candidate) {
                let value = if ty == "MD5" || ty == "SHA1" || ty == "SHA256" {
                    candidate.to_ascii_lowercase()
                } else {
                    candidate.to_string()
                };
                if !out.iter().any(|(_, v)| v.eq_ignore_ascii_case(&value)) {
                    out.push((ty, value));
                }
                break;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_the_common_types() {
        assert_eq!(classify("10.1.2.3"), Some("IP"));
        assert_eq!(classify("10.1.2.0/24"), Some("CIDR_BLOCK"));
        assert_eq!(classify("evil.com"), Some("URL"));
        assert_eq!(classify("http://evil.com/a?b=1"), Some("URL"));
        assert_eq!(classify("bob@evil.com"), Some("EMAIL_ADDRESS"));
        assert_eq!(classify(&"a".repeat(32)), Some("MD5"));
        assert_eq!(classify(&"b".repeat(40)), Some("SHA1"));
        assert_eq!(classify(&"c".repeat(64)), Some("SHA256"));
        assert_eq!(classify("CVE-2017-0144"), Some("CVE"));
        assert_eq!(
            classify("HKEY_LOCAL_MACHINE\\Software\\x"),
            Some("REGISTRY_KEY")
        );
        assert_eq!(classify("12/01/2024"), None);
        assert_eq!(classify("10:00:00"), None);
        assert_eq!(classify("1.5"), None);
        assert_eq!(classify("Summary"), None);
        assert_eq!(classify("e.g"), None);
    }

    #[test]
    fn extracts_from_a_report_body() {
        let body = "Resilient Incident 5: Phish\n\nSummary\n\tDescription: mail from bob@evil.com linking http://evil.com/x.\n\tCreate Date: 01/02/2024 10:00:00\n\tValue: 10.1.2.3";
        let got = extract(body);
        let values: Vec<&str> = got.iter().map(|(_, v)| v.as_str()).collect();
        assert_eq!(
            values,
            vec!["bob@evil.com", "http://evil.com/x", "10.1.2.3"]
        );
    }
}
