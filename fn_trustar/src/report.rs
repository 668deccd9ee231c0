//! The report a TruSTAR account receives for an incident (spec D.4) and the notes written back
//! (D.5), as pure functions of the incident's data so that they can be tested line for line.
//!
//! Title `"Resilient Incident {id}: {name}"`, external id `RESILIENT{id}`, and a body of
//! `"Resilient Incident {id}: {name}\n\n"` followed by one block per configured part
//! (`Summary`, `Notes`, `Personally Identifiable Information`, `Artifacts`), each made of its
//! name, lines `"\n\t<Label>: <value>"` and `"\n\n"`. Values are shown as the original (Python)
//! shows them: `None`, `True`, tags replaced by a space, `&nbsp;` by a space, dates as
//! `%m/%d/%Y %H:%M:%S` in UTC.

use std::collections::HashMap;

use serde_json::Value;

use soar_sdk::python::json_dumps;
pub use soar_sdk::text::html_unescape;
use soar_sdk::text::{MAX_TEXT_BYTES, truncated};

use crate::config::Content;

/// The artifact description that marks artifacts we added (and stops the enrichment loop).
pub const CORRELATED_DESCRIPTION: &str = "TruSTAR Correlated Indicator";

/// Notes containing this text are ours and are not sent back to TruSTAR.
pub const ENRICHMENT_MARK: &str = "TruSTAR Enrichment";

/// Everything the body needs, fetched from the platform beforehand.
#[derive(Debug, Clone, Default)]
pub struct IncidentData {
    /// `GET /incidents/{id}`.
    pub incident: Value,
    /// `GET /incidents/{id}/comments`.
    pub notes: Vec<Value>,
    /// `GET /incidents/{id}/artifacts`.
    pub artifacts: Vec<Value>,
    /// `GET /phases/{phase_id}` → name.
    pub phase: Option<String>,
    /// `GET /types/incident/fields/severity_code` → the label of the incident's code.
    pub severity: Option<String>,
    /// `GET /types/incident/fields/resolution_id` → the label of the incident's resolution.
    pub resolution: Option<String>,
    /// Artifact type id → name.
    pub artifact_types: HashMap<i64, String>,
}

/// `"Resilient Incident {id}: {name}"`.
pub fn title(incident: &Value) -> String {
    format!(
        "Resilient Incident {}: {}",
        py_str(&incident["id"]),
        py_str(&incident["name"])
    )
}

/// `RESILIENT{id}`.
pub fn external_id(incident_id: i64) -> String {
    format!("RESILIENT{incident_id}")
}

/// Python's `str()` of a JSON value.
pub fn py_str(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => py_repr(other),
    }
}

/// Python's `repr()` of a JSON value (lists and dicts as Python prints them).
pub fn py_repr(v: &Value) -> String {
    match v {
        Value::Null => "None".to_string(),
        Value::Bool(true) => "True".to_string(),
        Value::Bool(false) => "False".to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => {
            if s.contains('\'') && !s.contains('"') {
                format!("\"{s}\"")
            } else {
                format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
            }
        }
        Value::Array(a) => format!("[{}]", a.iter().map(py_repr).collect::<Vec<_>>().join(", ")),
        Value::Object(o) => format!(
            "{{{}}}",
            o.iter()
                .map(|(k, v)| format!("{}: {}", py_repr(&Value::String(k.clone())), py_repr(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// `re.sub('<.*?>', ' ', s).replace('&nbsp;', ' ')`, in one pass over `s`.
pub fn strip_tags(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find('<') {
        let after = &rest[start + 1..];
        // `.` does not match a newline in Python's re: a tag ends at the first `>` of its
        // line. When the line ends first, no `<` before its end starts a tag either.
        match after.find(['>', '\n']) {
            Some(end) if after.as_bytes()[end] == b'>' => {
                out.push_str(&rest[..start]);
                out.push(' ');
                rest = &after[end + 1..];
            }
            Some(end) => {
                out.push_str(&rest[..start + 1 + end]);
                rest = &after[end..];
            }
            None => {
                out.push_str(rest);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out.replace("&nbsp;", " ")
}

/// `time.strftime('%m/%d/%Y %H:%M:%S', time.gmtime(ms / 1000.))`, or `None`.
pub fn format_date(v: &Value) -> String {
    match v.as_f64() {
        Some(ms) => chrono::DateTime::from_timestamp_millis(ms as i64)
            .map(|d| d.format("%m/%d/%Y %H:%M:%S").to_string())
            .unwrap_or_else(|| py_str(v)),
        None => "None".to_string(),
    }
}

/// A text value that may come as a string or as `{"format", "content"}`.
fn text_of(v: &Value) -> Value {
    match v {
        Value::Object(o) => o.get("content").cloned().unwrap_or(Value::Null),
        other => other.clone(),
    }
}

fn line(body: &mut String, label: &str, value: &str) {
    body.push_str("\n\t");
    body.push_str(label);
    body.push_str(": ");
    body.push_str(value);
}

/// A user's text as the report shows it: tags stripped, cut at [`MAX_TEXT_BYTES`] with a note.
fn clean(text: &str) -> String {
    strip_tags(&truncated(text, MAX_TEXT_BYTES))
}

/// The report body (D.4). Each value is cut at [`MAX_TEXT_BYTES`] (1 MiB); the work is linear
/// in the incident's size.
pub fn body(data: &IncidentData, parts: &[Content]) -> String {
    let inc = &data.incident;
    let mut body = format!(
        "Resilient Incident {}: {}\n\n",
        py_str(&inc["id"]),
        py_str(&inc["name"])
    );
    let closed = inc["plan_status"] == "C";
    let active = inc["plan_status"] == "A";
    for part in parts {
        match part {
            Content::Summary => {
                body.push_str("Summary");
                line(&mut body, "ID", &clean(&py_str(&inc["id"])));
                line(
                    &mut body,
                    "Description",
                    &clean(&py_str(&text_of(&inc["description"]))),
                );
                line(
                    &mut body,
                    "Phase",
                    &clean(data.phase.as_deref().unwrap_or_default()),
                );
                line(
                    &mut body,
                    "Severity",
                    data.severity.as_deref().unwrap_or_default(),
                );
                line(&mut body, "Create Date", &format_date(&inc["create_date"]));
                line(
                    &mut body,
                    "Discovered Date",
                    &format_date(&inc["inc_start"]),
                );
                line(
                    &mut body,
                    "Incident Start",
                    &format_date(&inc["discovered_date"]),
                );
                line(
                    &mut body,
                    "Data Compromised",
                    &clean(&py_str(&inc["data_compromised"])),
                );
                line(
                    &mut body,
                    "Status",
                    if active { "Active" } else { "Closed" },
                );
                if closed {
                    line(
                        &mut body,
                        "Resolution",
                        data.resolution.as_deref().unwrap_or_default(),
                    );
                    line(
                        &mut body,
                        "Resolution Summary",
                        &clean(&py_str(&text_of(&inc["resolution_summary"]))),
                    );
                }
                body.push_str("\n\n");
            }
            Content::Breach => {
                let pii = &inc["pii"];
                body.push_str("Personally Identifiable Information");
                for (key, label) in [
                    ("gdpr_harm_risk", "Harm Foreseeable"),
                    ("exposure", "Exposure"),
                    ("data_encrypted", "Data Encrypted"),
                    ("data_source_ids", "Data Source IDs"),
                    ("data_format", "Data Format"),
                ] {
                    line(&mut body, label, &clean(&py_str(&pii[key])));
                }
                body.push_str("\n\n");
            }
            Content::Notes => {
                // Notes are sent only once the incident is no longer active.
                if active {
                    continue;
                }
                body.push_str("Notes");
                let mut n = 0;
                for note in &data.notes {
                    let text = py_str(&text_of(&note["text"]));
                    if text.contains(ENRICHMENT_MARK) {
                        continue;
                    }
                    n += 1;
                    body.push_str(&format!("\n\n\tNote {n}"));
                    line(&mut body, "ID", &clean(&py_str(&note["id"])));
                    line(&mut body, "Text", &clean(&html_unescape(&text)));
                }
                body.push_str("\n\n");
            }
            Content::Artifacts => {
                body.push_str("Artifacts");
                let mut n = 0;
                for artifact in &data.artifacts {
                    if text_of(&artifact["description"]) == CORRELATED_DESCRIPTION {
                        continue;
                    }
                    n += 1;
                    body.push_str(&format!("\n\n\tArtifact {n}"));
                    body.push_str("\n\tHits:");
                    if let Some(hits) = artifact["hits"].as_array() {
                        for (k, hit) in hits.iter().enumerate() {
                            let props = hit
                                .get("properties")
                                .or_else(|| hit.get("props"))
                                .cloned()
                                .unwrap_or(Value::Null);
                            body.push_str(&format!("\n\t\tHit {}: {}", k + 1, json_dumps(&props)));
                        }
                    }
                    line(&mut body, "Created", &clean(&py_str(&artifact["created"])));
                    line(&mut body, "Value", &clean(&py_str(&artifact["value"])));
                    let type_name = match &artifact["type"] {
                        Value::Number(n) => n
                            .as_i64()
                            .and_then(|id| data.artifact_types.get(&id).cloned())
                            .unwrap_or_else(|| "None".to_string()),
                        other => py_str(other),
                    };
                    line(&mut body, "Type", &clean(&type_name));
                    line(&mut body, "ID", &clean(&py_str(&artifact["id"])));
                }
                body.push_str("\n\n");
            }
        }
    }
    body
}

/// The note written after a submission (D.5 step 3). The spaces after "Successfully." are the
/// original's (a Python string continued on an indented line).
pub fn submitted_note_html(deeplink: &str) -> String {
    format!(
        "<div><h3>TruSTAR Enrichment</h3><b>TruSTAR Report Submitted Successfully.{}</b><br /><a href={deeplink}>{deeplink}</a></div>",
        " ".repeat(37)
    )
}

/// The note listing the correlated indicators added as artifacts (D.5 enrichment step 5):
/// `(TruSTAR type, value, deeplink)`.
pub fn correlated_note_html(indicators: &[(String, String, String)]) -> String {
    let mut out = String::from("<h3>TruSTAR Enrichment</h3><h4>Indicators</h4>");
    for (ty, value, link) in indicators {
        // Indicators come from reports others shared: never markup in our note.
        let (ty, value, link) = (html_escape(ty), html_escape(value), html_escape(link));
        out.push_str(&format!("\n\t<b>{ty}: </b><a href=\"{link}\">{value}</a>"));
    }
    out
}

/// Escapes text for HTML content and attribute values.
fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fixture(plan_status: &str) -> IncidentData {
        IncidentData {
            incident: json!({
                "id": 2095,
                "name": "Phishing from evil.com",
                "description": "<div>Mail from <b>bob@evil.com</b>&nbsp;linking http://evil.com/login</div>",
                "phase_id": 1003,
                "severity_code": 5,
                "create_date": 1_700_000_000_000_i64,
                "inc_start": null,
                "discovered_date": 1_699_990_000_000_i64,
                "data_compromised": true,
                "plan_status": plan_status,
                "resolution_id": 9,
                "resolution_summary": "<p>Blocked the sender</p>",
                "pii": {
                    "gdpr_harm_risk": null,
                    "exposure": 0,
                    "data_encrypted": false,
                    "data_source_ids": [1, 2],
                    "data_format": "csv"
                }
            }),
            notes: vec![
                json!({"id": 11, "text": "<div>Saw traffic to 10.1.2.3 &amp; more</div>"}),
                json!({"id": 12, "text": "<div><h3>TruSTAR Enrichment</h3>link</div>"}),
                json!({"id": 13, "text": {"format": "text", "content": "second note"}}),
            ],
            artifacts: vec![
                json!({"id": 21, "type": 1, "value": "10.1.2.3", "created": 1_700_000_100_000_i64,
                       "description": null,
                       "hits": [{"properties": [{"name": "Priority Level", "type": "string", "value": "HIGH"}]}]}),
                json!({"id": 22, "type": 3, "value": "http://x.example/a", "created": 1_700_000_200_000_i64,
                       "description": "TruSTAR Correlated Indicator", "hits": []}),
                json!({"id": 23, "type": 3, "value": "http://evil.com/login", "created": 1_700_000_300_000_i64,
                       "description": "from the mail", "hits": []}),
            ],
            phase: Some("Respond".to_string()),
            severity: Some("High".to_string()),
            resolution: Some("Resolved".to_string()),
            artifact_types: HashMap::from([(1, "IP Address".to_string()), (3, "URL".to_string())]),
        }
    }

    const ALL: &[Content] = &[
        Content::Summary,
        Content::Notes,
        Content::Breach,
        Content::Artifacts,
    ];

    #[test]
    fn body_of_a_closed_incident_line_for_line() {
        let got = body(&fixture("C"), ALL);
        let expected = [
            "Resilient Incident 2095: Phishing from evil.com",
            "",
            "Summary",
            "\tID: 2095",
            "\tDescription:  Mail from  bob@evil.com  linking http://evil.com/login ",
            "\tPhase: Respond",
            "\tSeverity: High",
            "\tCreate Date: 11/14/2023 22:13:20",
            "\tDiscovered Date: None",
            "\tIncident Start: 11/14/2023 19:26:40",
            "\tData Compromised: True",
            "\tStatus: Closed",
            "\tResolution: Resolved",
            "\tResolution Summary:  Blocked the sender ",
            "",
            "Notes",
            "",
            "\tNote 1",
            "\tID: 11",
            "\tText:  Saw traffic to 10.1.2.3 & more ",
            "",
            "\tNote 2",
            "\tID: 13",
            "\tText: second note",
            "",
            "Personally Identifiable Information",
            "\tHarm Foreseeable: None",
            "\tExposure: 0",
            "\tData Encrypted: False",
            "\tData Source IDs: [1, 2]",
            "\tData Format: csv",
            "",
            "Artifacts",
            "",
            "\tArtifact 1",
            "\tHits:",
            "\t\tHit 1: [{\"name\": \"Priority Level\", \"type\": \"string\", \"value\": \"HIGH\"}]",
            "\tCreated: 1700000100000",
            "\tValue: 10.1.2.3",
            "\tType: IP Address",
            "\tID: 21",
            "",
            "\tArtifact 2",
            "\tHits:",
            "\tCreated: 1700000300000",
            "\tValue: http://evil.com/login",
            "\tType: URL",
            "\tID: 23",
            "",
            "",
        ];
        let got_lines: Vec<&str> = got.split('\n').collect();
        for (i, (g, e)) in got_lines.iter().zip(expected.iter()).enumerate() {
            assert_eq!(g, e, "line {}", i + 1);
        }
        assert_eq!(got_lines.len(), expected.len(), "{got}");
    }

    #[test]
    fn active_incidents_send_no_notes_and_no_resolution() {
        let got = body(&fixture("A"), ALL);
        assert!(!got.contains("Notes"));
        assert!(!got.contains("Resolution"));
        assert!(got.contains("\tStatus: Active"));
        let only = body(&fixture("A"), &[Content::Artifacts]);
        assert!(only.starts_with(
            "Resilient Incident 2095: Phishing from evil.com\n\nArtifacts\n\n\tArtifact 1"
        ));
    }

    #[test]
    fn notes_match_the_original_html() {
        let n = submitted_note_html("https://t/constellation/reports/r1");
        assert_eq!(
            n,
            format!(
                "<div><h3>TruSTAR Enrichment</h3><b>TruSTAR Report Submitted Successfully.{}</b><br /><a href=https://t/constellation/reports/r1>https://t/constellation/reports/r1</a></div>",
                " ".repeat(37)
            )
        );
        let c = correlated_note_html(&[("IP".into(), "10.0.0.9".into(), "L".into())]);
        assert_eq!(
            c,
            "<h3>TruSTAR Enrichment</h3><h4>Indicators</h4>\n\t<b>IP: </b><a href=\"L\">10.0.0.9</a>"
        );
    }

    #[test]
    fn python_formatting() {
        assert_eq!(
            json_dumps(&json!({"a": [1, "é"]})),
            "{\"a\": [1, \"\\u00e9\"]}"
        );
        assert_eq!(
            py_repr(&json!({"k": "v", "n": null})),
            "{'k': 'v', 'n': None}"
        );
        assert_eq!(strip_tags("a<b>c</b>&nbsp;d"), "a c  d");
        assert_eq!(strip_tags("1 < 2"), "1 < 2");
        assert_eq!(
            html_unescape("&lt;x&gt; &amp; &#39; &bogus;"),
            "<x> & ' &bogus;"
        );
        assert_eq!(
            title(&json!({"id": 5, "name": "X"})),
            "Resilient Incident 5: X"
        );
        assert_eq!(external_id(5), "RESILIENT5");
    }
}
