//! The message text: `slack_details` rendered as the 2018 `build_payload` did (spec A.2), with
//! its defects fixed.
//!
//! `slack_details` is a JSON object `{"<Label>": {"type": "<t>", "data": <value>}, …}`; each
//! entry gives one `Label: value` line, in the object's order:
//!
//! | type | data | line |
//! |---|---|---|
//! | `string` | text, number, list | the text; a list as `[a, b]` |
//! | `incident` | incident id | `https://<host>:<port>/#incidents/<id>` |
//! | `richtext` | HTML | readable text ([`crate::html`]), trailing blank lines removed |
//! | `boolean` | `true`/`"yes"`/`"1"`/`1` … | `Yes` or `No` (the original's truthy rules) |
//! | `datetime` | epoch milliseconds | `YYYY-MM-DDTHH:MM:SSZ` (UTC) |
//!
//! Fixed defects of the original: an empty entry (null, `""`, an empty list, a datetime 0, HTML
//! without text) gives no line at all rather than a blank line; Slack's control characters `&`,
//! `<` and `>` are escaped in labels and data, so a name like `<!channel>` cannot ping a whole
//! workspace; a boolean `false` reads `No` instead of vanishing; an unknown type is an error
//! even without data, and every error names its label.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use soar_sdk::text::{MAX_TEXT_BYTES, truncated};

/// Why `slack_details` (or another text input) cannot be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// The text is not JSON.
    #[error(
        "slack_details is not valid JSON ({0}); expected an object like {{\"Label\": {{\"type\": \"string\", \"data\": \"text\"}}}}"
    )]
    Json(String),
    /// The JSON is not an object.
    #[error(
        "slack_details must be a JSON object of {{\"Label\": {{\"type\": …, \"data\": …}}}}, got {0}"
    )]
    NotAnObject(&'static str),
    /// An entry is not `{"type": …, "data": …}`.
    #[error("slack_details entry \"{label}\": {problem}")]
    Entry { label: String, problem: String },
}

impl RenderError {
    fn entry(label: &str, problem: impl Into<String>) -> Self {
        RenderError::Entry {
            label: label.to_string(),
            problem: problem.into(),
        }
    }
}

/// The types an entry may have.
pub const TYPES: &[&str] = &["string", "incident", "richtext", "boolean", "datetime"];

/// Escapes Slack's control characters (`&`, `<`, `>`), as Slack asks of every message text.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    crate::html::escape_into(&mut out, text);
    out
}

/// Parses `slack_details` leniently as Python's `json.loads(strict=False)` did: raw control
/// characters (a pasted newline) inside strings are accepted. Key order is kept.
pub fn parse_details(text: &str) -> Result<Map<String, Value>, RenderError> {
    let cleaned = escape_raw_controls(text);
    match serde_json::from_str::<Value>(&cleaned) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(RenderError::NotAnObject(kind(&other))),
        Err(e) => Err(RenderError::Json(e.to_string())),
    }
}

/// Escapes control characters that appear raw inside JSON strings.
fn escape_raw_controls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_string = false;
    let mut escaped = false;
    for c in text.chars() {
        if in_string {
            if escaped {
                escaped = false;
                out.push(c);
                continue;
            }
            match c {
                '\\' => {
                    escaped = true;
                    out.push(c);
                }
                '"' => {
                    in_string = false;
                    out.push(c);
                }
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
                c => out.push(c),
            }
        } else {
            if c == '"' {
                in_string = true;
            }
            out.push(c);
        }
    }
    out
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "text",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Renders parsed details to the message text (lines joined by `\n`, no empty lines).
pub fn render_details(details: &Map<String, Value>, base_url: &str) -> Result<String, RenderError> {
    let mut lines = Vec::new();
    for (label, entry) in details {
        if let Some(value) = render_entry(label, entry, base_url)? {
            lines.push(format!("{}: {}", escape(label), value));
        }
    }
    Ok(lines.join("\n"))
}

/// Parses and renders `slack_details`.
pub fn render(slack_details: &str, base_url: &str) -> Result<String, RenderError> {
    render_details(&parse_details(slack_details)?, base_url)
}

/// One entry's value (escaped), or `None` when it is empty.
fn render_entry(label: &str, entry: &Value, base_url: &str) -> Result<Option<String>, RenderError> {
    let Value::Object(e) = entry else {
        return Err(RenderError::entry(
            label,
            format!(
                "must be an object {{\"type\": …, \"data\": …}}, got {}",
                kind(entry)
            ),
        ));
    };
    let Some(t) = e.get("type").and_then(Value::as_str) else {
        return Err(RenderError::entry(
            label,
            format!("has no \"type\" (one of {})", TYPES.join(", ")),
        ));
    };
    if !TYPES.contains(&t) {
        return Err(RenderError::entry(
            label,
            format!(
                "unknown type \"{t}\" (expected one of {})",
                TYPES.join(", ")
            ),
        ));
    }
    let data = e.get("data").unwrap_or(&Value::Null);
    if is_empty(data) {
        return Ok(None);
    }
    let text = match t {
        "string" => plain(data),
        "incident" => match data {
            Value::String(s) => format!("{base_url}/#incidents/{}", s.trim()),
            Value::Number(n) => format!("{base_url}/#incidents/{n}"),
            other => {
                return Err(RenderError::entry(
                    label,
                    format!(
                        "an incident needs an id (text or number), got {}",
                        kind(other)
                    ),
                ));
            }
        },
        // Already Slack text: escaped, its links kept.
        "richtext" => {
            let text = match data {
                Value::String(s) => html_to_slack(s),
                other => escape(&plain(other)),
            };
            return Ok(Some(text).filter(|t| !t.trim().is_empty()));
        }
        "boolean" => {
            if truthy(data) {
                "Yes".into()
            } else {
                "No".into()
            }
        }
        "datetime" => match datetime(data) {
            Ok(Some(s)) => s,
            Ok(None) => return Ok(None),
            Err(problem) => return Err(RenderError::entry(label, problem)),
        },
        other => {
            return Err(RenderError::entry(
                label,
                format!(
                    "unknown type \"{other}\" (expected one of {})",
                    TYPES.join(", ")
                ),
            ));
        }
    };
    if text.trim().is_empty() {
        return Ok(None);
    }
    Ok(Some(escape(&text)))
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

/// Data as plain text: strings as they are, lists as `[a, b]`, objects as JSON.
fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(plain).collect::<Vec<_>>().join(", ")
        ),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// `build_boolean`: a string is true when it is `1`, `yes` or `true` (any case), a number when
/// it is 1, a JSON boolean as it is; anything else is false.
pub fn truthy(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::String(s) => matches!(s.trim().to_ascii_lowercase().as_str(), "1" | "yes" | "true"),
        Value::Number(n) => n.as_f64() == Some(1.0),
        _ => false,
    }
}

/// Epoch milliseconds (a number or numeric text) as `YYYY-MM-DDTHH:MM:SSZ`; 0 is empty.
fn datetime(v: &Value) -> Result<Option<String>, String> {
    let ms = match v {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().map(|f| f as i64))
            .ok_or_else(|| format!("a datetime must be epoch milliseconds, got {n}"))?,
        Value::String(s) => s
            .trim()
            .parse::<i64>()
            .map_err(|_| format!("a datetime must be epoch milliseconds, got the text \"{s}\""))?,
        other => {
            return Err(format!(
                "a datetime must be epoch milliseconds, got {}",
                kind(other)
            ));
        }
    };
    if ms == 0 {
        return Ok(None);
    }
    let dt: DateTime<Utc> = DateTime::from_timestamp_millis(ms)
        .ok_or_else(|| format!("the datetime {ms} (epoch milliseconds) is out of range"))?;
    Ok(Some(dt.format("%Y-%m-%dT%H:%M:%SZ").to_string()))
}

/// Whether a text looks like HTML (has a tag such as `<div>`, `</p>`, `<br/>`, a comment, or
/// an entity) rather than plain text; Slack syntax such as `<!channel>` or `<@U123>` is not a tag.
pub fn looks_like_html(text: &str) -> bool {
    let b = text.as_bytes();
    let tag_at = |i: usize| -> bool {
        let mut j = i + 1;
        if b.get(j) == Some(&b'/') {
            j += 1;
        }
        let start = j;
        while b.get(j).is_some_and(u8::is_ascii_alphanumeric) {
            j += 1;
        }
        j > start
            && b[start].is_ascii_alphabetic()
            && matches!(b.get(j), Some(b'>' | b'/' | b' ' | b'\t' | b'\n' | b'\r'))
    };
    let has_tag = (0..b.len()).any(|i| b[i] == b'<' && (tag_at(i) || b[i..].starts_with(b"<!--")));
    has_tag
        || ["&amp;", "&lt;", "&gt;", "&nbsp;", "&quot;", "&#"]
            .iter()
            .any(|e| text.contains(e))
}

/// HTML as Slack text: block elements become lines, entities are decoded and Slack's control
/// characters escaped, links kept as `<url|text>`, no wrapping; trailing whitespace and runs of
/// blank lines are removed.
pub fn html_to_slack(html: &str) -> String {
    // Bounded work: HTML over the limit is cut first (the cut shows in the text).
    let text = crate::html::to_slack(&truncated(html, MAX_TEXT_BYTES));
    tidy(&text)
}

/// Slack cuts a message's text at 40,000 characters.
pub const MAX_MESSAGE_CHARS: usize = 40_000;

/// `text` as Slack will show it all: over [`MAX_MESSAGE_CHARS`], cut (never inside an escape
/// such as `&amp;`) with a note saying so.
pub fn fit_message(text: &str) -> Cow<'_, str> {
    const NOTE: &str = "\n[message cut at Slack's 40,000 characters]";
    let Some((mut end, _)) = text.char_indices().nth(MAX_MESSAGE_CHARS - NOTE.len()) else {
        return text.into();
    };
    // An escape is at most 5 bytes (`&amp;`): do not leave half of one.
    let from = end.saturating_sub(4);
    if let Some(amp) = text.as_bytes()[from..end].iter().rposition(|&b| b == b'&') {
        end = from + amp;
    }
    format!("{}{NOTE}", &text[..end]).into()
}

/// Plain text or HTML (as [`looks_like_html`] decides) as Slack text (escaped; HTML links
/// kept).
pub fn slack_text(text: &str) -> String {
    if looks_like_html(text) {
        html_to_slack(text)
    } else {
        escape(&tidy(text))
    }
}

fn tidy(text: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for line in text.lines().map(str::trim_end) {
        if line.is_empty() && out.last().is_none_or(|l| l.is_empty()) {
            continue;
        }
        out.push(line);
    }
    while out.last().is_some_and(|l| l.is_empty()) {
        out.pop();
    }
    out.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const BASE: &str = "https://soar.example.com:443";

    /// The seed document's example incident, as the "Create Slack Message" workflow sends it.
    const SEED_DETAILS: &str = r#"{
        "Resilient Incident": {"type": "string", "data": "DoS attack in EMEA"},
        "Resilient URL": {"type": "incident", "data": 2223},
        "Description": {"type": "richtext", "data": "<div class=\"rte\"><div>Web servers in the EMEA data centre are flooded with SYN packets.</div></div>"},
        "Confirmed": {"type": "boolean", "data": true},
        "Create Date": {"type": "datetime", "data": 1524857616000},
        "Severity": {"type": "string", "data": "High"},
        "NIST Vectors": {"type": "string", "data": "[External/Removable Media, Web]"},
        "Incident Types": {"type": "string", "data": "[Denial of Service]"}
    }"#;

    #[test]
    fn the_seed_incident_reads_line_for_line_as_in_the_seed() {
        let text = render(SEED_DETAILS, BASE).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "Resilient Incident: DoS attack in EMEA",
                "Resilient URL: https://soar.example.com:443/#incidents/2223",
                "Description: Web servers in the EMEA data centre are flooded with SYN packets.",
                "Confirmed: Yes",
                "Create Date: 2018-04-27T19:33:36Z",
                "Severity: High",
                "NIST Vectors: [External/Removable Media, Web]",
                "Incident Types: [Denial of Service]",
            ]
        );
        assert!(!text.ends_with('\n'));
    }

    #[test]
    fn the_specs_worked_example_without_its_blank_lines() {
        let details = r#"{"Resilient Incident": {"type":"string","data":"title here"},
            "Resilient URL": {"type":"incident","data":"1234"},
            "Description": {"type":"richtext","data":"<div>data<div>"},
            "Confirmed": {"type":"boolean","data":"true"},
            "Create Date": {"type":"datetime","data":1525356259000},
            "Discovered": {"type":"datetime","data":0},
            "Severity": {"type":"string","data":"low"},
            "NIST Vectors": {"type":"string","data":"[Email, Malware]"},
            "Incident Types": {"type":"string","data":"[Phishing]"}}"#;
        assert_eq!(
            render(details, "https://localhost:443").unwrap(),
            "Resilient Incident: title here\nResilient URL: https://localhost:443/#incidents/1234\n\
             Description: data\nConfirmed: Yes\nCreate Date: 2018-05-03T14:04:19Z\n\
             Severity: low\nNIST Vectors: [Email, Malware]\nIncident Types: [Phishing]"
        );
    }

    #[test]
    fn each_type_renders() {
        let r = |t: &str, data: Value| {
            render_details(
                json!({"L": {"type": t, "data": data}}).as_object().unwrap(),
                BASE,
            )
            .unwrap()
        };
        assert_eq!(r("string", json!("text")), "L: text");
        assert_eq!(r("string", json!(42)), "L: 42");
        assert_eq!(r("string", json!(["a", "b"])), "L: [a, b]");
        assert_eq!(
            r("incident", json!("77")),
            format!("L: {BASE}/#incidents/77")
        );
        assert_eq!(r("incident", json!(77)), format!("L: {BASE}/#incidents/77"));
        assert_eq!(
            r("richtext", json!("<p>one</p><p>two &amp; three</p>")),
            "L: one\n\ntwo &amp; three"
        );
        for yes in [
            json!("1"),
            json!("yes"),
            json!("true"),
            json!("TRUE"),
            json!(1),
            json!(true),
        ] {
            assert_eq!(r("boolean", yes.clone()), "L: Yes", "{yes}");
        }
        for no in [
            json!(0),
            json!(55),
            json!("no"),
            json!("0"),
            json!("false"),
            json!("FALSE"),
            json!(false),
        ] {
            assert_eq!(r("boolean", no.clone()), "L: No", "{no}");
        }
        assert_eq!(
            r("datetime", json!(1524857616000i64)),
            "L: 2018-04-27T19:33:36Z"
        );
        assert_eq!(
            r("datetime", json!("1524857616000")),
            "L: 2018-04-27T19:33:36Z"
        );
    }

    #[test]
    fn empty_entries_give_no_line_at_all() {
        let details = r#"{"A": {"type":"string","data":"a"},
            "Null": {"type":"string","data":null},
            "Missing": {"type":"string"},
            "Blank": {"type":"string","data":"  "},
            "Nolist": {"type":"string","data":[]},
            "Zero": {"type":"datetime","data":0},
            "Html": {"type":"richtext","data":"<div><br></div>"},
            "Noinc": {"type":"incident","data":""},
            "B": {"type":"string","data":"b"}}"#;
        assert_eq!(render(details, BASE).unwrap(), "A: a\nB: b");
        assert_eq!(render("{}", BASE).unwrap(), "");
    }

    #[test]
    fn slack_control_characters_are_escaped() {
        let details = r#"{"Resilient Incident": {"type":"string","data":"<!channel> & <@U123> > all"},
            "Desc": {"type":"richtext","data":"<p>&lt;!here&gt; hi</p>"},
            "<b>": {"type":"string","data":"x"}}"#;
        assert_eq!(
            render(details, BASE).unwrap(),
            "Resilient Incident: &lt;!channel&gt; &amp; &lt;@U123&gt; &gt; all\n\
             Desc: &lt;!here&gt; hi\n&lt;b&gt;: x"
        );
    }

    #[test]
    fn raw_newlines_inside_strings_are_accepted_and_order_is_kept() {
        let details = "{\"Z\": {\"type\":\"string\",\"data\":\"one\ntwo\"},\n \"A\": {\"type\":\"string\",\"data\":\"a\"}}";
        assert_eq!(render(details, BASE).unwrap(), "Z: one\ntwo\nA: a");
    }

    #[test]
    fn malformed_input_errors_name_the_label() {
        let err = |d: &str| render(d, BASE).unwrap_err().to_string();
        let e = err(r#"{"Where": {"type":"list","data":[1]}}"#);
        assert!(
            e.contains("\"Where\"") && e.contains("unknown type \"list\""),
            "{e}"
        );
        let e = err(r#"{"Where": {"type":"list"}}"#);
        assert!(e.contains("\"Where\"") && e.contains("unknown type"), "{e}");
        let e = err(r#"{"Flat": "just text"}"#);
        assert!(
            e.contains("\"Flat\"") && e.contains("must be an object"),
            "{e}"
        );
        let e = err(r#"{"NoType": {"data": "x"}}"#);
        assert!(e.contains("\"NoType\"") && e.contains("no \"type\""), "{e}");
        let e = err(r#"{"When": {"type":"datetime","data":"yesterday"}}"#);
        assert!(
            e.contains("\"When\"") && e.contains("epoch milliseconds"),
            "{e}"
        );
        let e = err(r#"{"Inc": {"type":"incident","data":{"id":1}}}"#);
        assert!(
            e.contains("\"Inc\"") && e.contains("incident needs an id"),
            "{e}"
        );
        let e = err(r#"{"Broken": {"type":"string","data":"x"}"#);
        assert!(e.contains("not valid JSON") && e.contains("line"), "{e}");
        let e = err(r#"["a"]"#);
        assert!(
            e.contains("must be a JSON object") && e.contains("a list"),
            "{e}"
        );
    }

    #[test]
    fn plain_text_and_html_notes() {
        assert_eq!(slack_text("line 1\nline 2\n\n\n"), "line 1\nline 2");
        assert_eq!(slack_text("a < b"), "a &lt; b");
        assert_eq!(
            slack_text("<div>Blocked <b>1.2.3.4</b></div>"),
            "Blocked 1.2.3.4"
        );
        assert_eq!(
            slack_text("hey <!channel> and <@U123>"),
            "hey &lt;!channel&gt; and &lt;@U123&gt;"
        );
        assert_eq!(slack_text("a<br/>b"), "a\nb");
        assert_eq!(
            slack_text("<p>Follow the <a href=\"https://wiki.example/dos\">DoS runbook</a></p>"),
            "Follow the <https://wiki.example/dos|DoS runbook>"
        );
        assert!(!looks_like_html("x <3 y > z"));
    }
}
