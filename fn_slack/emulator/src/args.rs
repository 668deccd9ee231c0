//! Request arguments as the Slack Web API reads them: the query string, then a JSON body
//! (`application/json`) or a form body (`application/x-www-form-urlencoded`), merged into one
//! map of JSON values. Booleans are read as Slack does: `true`/`false`/`1`/`0`, any case.

use serde_json::{Map, Value};

/// Why a request body could not be read; each maps to one of Slack's request errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgsError {
    /// The body is not UTF-8 (`invalid_charset`).
    #[error("invalid_charset")]
    Charset,
    /// The form body cannot be decoded (`invalid_form_data`).
    #[error("invalid_form_data")]
    Form,
    /// The JSON body does not parse (`invalid_json`).
    #[error("invalid_json")]
    Json,
    /// The JSON body is not an object (`json_not_object`).
    #[error("json_not_object")]
    JsonNotObject,
    /// A body with a content type Slack does not accept (`invalid_post_type`).
    #[error("invalid_post_type")]
    PostType,
}

impl ArgsError {
    /// Slack's error code.
    pub fn code(&self) -> &'static str {
        match self {
            ArgsError::Charset => "invalid_charset",
            ArgsError::Form => "invalid_form_data",
            ArgsError::Json => "invalid_json",
            ArgsError::JsonNotObject => "json_not_object",
            ArgsError::PostType => "invalid_post_type",
        }
    }
}

/// Decodes `application/x-www-form-urlencoded` text (`+` is a space, `%XX` a byte).
pub fn parse_form(text: &str) -> Result<Vec<(String, String)>, ArgsError> {
    let mut out = Vec::new();
    for pair in text.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        out.push((percent_decode(k)?, percent_decode(v)?));
    }
    Ok(out)
}

fn percent_decode(s: &str) -> Result<String, ArgsError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' => {
                let hex = bytes.get(i + 1..i + 3).ok_or(ArgsError::Form)?;
                let hex = std::str::from_utf8(hex).map_err(|_| ArgsError::Form)?;
                out.push(u8::from_str_radix(hex, 16).map_err(|_| ArgsError::Form)?);
                i += 3;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| ArgsError::Charset)
}

/// The arguments of one call: query string, then body (JSON or form) on top.
pub fn collect(
    query: Option<&str>,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<Map<String, Value>, ArgsError> {
    let mut args = Map::new();
    if let Some(q) = query {
        for (k, v) in parse_form(q)? {
            args.insert(k, Value::String(v));
        }
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(args);
    }
    let text = std::str::from_utf8(body).map_err(|_| ArgsError::Charset)?;
    let mime = content_type
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match mime.as_str() {
        "application/json" => match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(map)) => args.extend(map),
            Ok(_) => return Err(ArgsError::JsonNotObject),
            Err(_) => return Err(ArgsError::Json),
        },
        "application/x-www-form-urlencoded" | "" => {
            for (k, v) in parse_form(text)? {
                args.insert(k, Value::String(v));
            }
        }
        _ => return Err(ArgsError::PostType),
    }
    Ok(args)
}

/// A string argument (numbers are taken as their text); `None` when absent, null or empty.
pub fn string(args: &Map<String, Value>, key: &str) -> Option<String> {
    match args.get(key)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A boolean argument: JSON booleans, numbers, or `true`/`false`/`1`/`0` in any case.
pub fn boolean(args: &Map<String, Value>, key: &str) -> Option<bool> {
    match args.get(key)? {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => Some(n.as_f64().is_some_and(|f| f != 0.0)),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Some(true),
            "false" | "0" | "no" | "" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn form_and_json_bodies_merge_over_the_query() {
        let a = collect(
            Some("channel=C1&x=1"),
            Some("application/x-www-form-urlencoded; charset=utf-8"),
            b"text=a+b%26c%3Cd&as_user=True",
        )
        .unwrap();
        assert_eq!(a["channel"], json!("C1"));
        assert_eq!(a["text"], json!("a b&c<d"));
        assert_eq!(boolean(&a, "as_user"), Some(true));
        let j = collect(
            None,
            Some("application/json;charset=utf-8"),
            br#"{"channel":"C2","reply_broadcast":false}"#,
        )
        .unwrap();
        assert_eq!(string(&j, "channel").as_deref(), Some("C2"));
        assert_eq!(boolean(&j, "reply_broadcast"), Some(false));
    }

    #[test]
    fn bad_bodies_get_slack_error_codes() {
        let err = |ct, body: &[u8]| collect(None, Some(ct), body).unwrap_err().code();
        assert_eq!(err("application/json", b"{nope"), "invalid_json");
        assert_eq!(err("application/json", b"[1]"), "json_not_object");
        assert_eq!(err("text/xml", b"<a/>"), "invalid_post_type");
        assert_eq!(
            err("application/x-www-form-urlencoded", b"a=%zz"),
            "invalid_form_data"
        );
        assert_eq!(
            err("application/x-www-form-urlencoded", b"a=\xff"),
            "invalid_charset"
        );
    }
}
