//! TruSTAR target: the report body and title, tag stripping, entity decoding, Python-style
//! value printing, the notes written back, and the indicator/artifact type helpers of
//! `fn_trustar`.

use std::collections::HashMap;

use fn_trustar::config::Content;
use fn_trustar::flows;
use fn_trustar::report::{self, IncidentData};
use serde_json::{Value, json};

/// `trustar_report`: `data` is text (invalid UTF-8 replaced; a leading `REPEAT <n>` line
/// repeats the rest, see [`crate::expand`]).
///
/// As text it goes through `strip_tags`, `html_unescape`, the URL and type helpers and, as the
/// name, description, note and artifact of an incident, through the whole report body. When it
/// is a JSON object it is also taken as `{"incident": {...}, "notes": [...], "artifacts":
/// [...], "phase": "...", ...}` (or as the incident itself). Checked: `strip_tags` leaves no tag
/// (a `<` followed by `>` on the same line), and the correlated-indicators note escapes every
/// value (its only tags are its own).
pub fn trustar_report(data: &[u8]) {
    let data = crate::expand(data);
    let text = crate::text(&data);

    let stripped = report::strip_tags(&text);
    check_no_tags(&text, &stripped);
    let _ = report::html_unescape(&text);
    let _ = flows::is_valid_url(&text);
    let _ = flows::artifact_type_for(&text);
    let _ = flows::indicator_type_for(&text);

    let as_text = IncidentData {
        incident: json!({
            "id": 2095, "name": text, "description": {"format": "html", "content": text},
            "plan_status": "C", "resolution_summary": text, "data_compromised": true,
            "create_date": 1_524_857_616_000_i64,
            "pii": {"exposure": text, "data_format": null},
        }),
        notes: vec![json!({"id": 1, "text": text})],
        artifacts: vec![json!({"id": 7, "value": text, "type": 1, "created": 0, "hits": []})],
        phase: Some(text.to_string()),
        severity: Some("High".into()),
        resolution: Some("Resolved".into()),
        artifact_types: HashMap::from([(1, text.to_string())]),
    };
    report_of(&as_text);

    let indicators: Vec<(String, String, String)> = text
        .lines()
        .take(50)
        .map(|l| {
            let (t, v) = l.split_once(':').unwrap_or(("URL", l));
            (
                t.to_string(),
                v.to_string(),
                format!("https://x.example/{v}"),
            )
        })
        .collect();
    let note = report::correlated_note_html(&indicators);
    assert_eq!(
        note.matches('<').count(),
        4 + 4 * indicators.len(),
        "an indicator's text became markup in the correlated note: {note:?}"
    );
    let _ = report::submitted_note_html(&text);

    if let Ok(Value::Object(map)) = serde_json::from_str::<Value>(&text) {
        let obj = Value::Object(map);
        let list = |key: &str| obj[key].as_array().cloned().unwrap_or_default();
        let string = |key: &str| obj[key].as_str().map(str::to_string);
        let data = IncidentData {
            incident: obj.get("incident").cloned().unwrap_or_else(|| obj.clone()),
            notes: list("notes"),
            artifacts: list("artifacts"),
            phase: string("phase"),
            severity: string("severity"),
            resolution: string("resolution"),
            artifact_types: obj["artifact_types"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .filter_map(|(k, v)| Some((k.parse().ok()?, v.as_str()?.to_string())))
                        .collect()
                })
                .unwrap_or_default(),
        };
        report_of(&data);
        for v in obj.as_object().into_iter().flat_map(|o| o.values()) {
            let _ = report::py_repr(v);
            let _ = report::format_date(v);
        }
    }
}

fn report_of(data: &IncidentData) {
    let _ = report::title(&data.incident);
    let parts = [
        Content::Summary,
        Content::Breach,
        Content::Notes,
        Content::Artifacts,
    ];
    let body = report::body(data, &parts);
    assert!(
        body.starts_with("Resilient Incident "),
        "a report body without its title line"
    );
}

/// After `re.sub('<.*?>', ' ', s)` no line holds a `<` with a `>` after it.
fn check_no_tags(input: &str, stripped: &str) {
    for line in stripped.split('\n') {
        if let Some(lt) = line.find('<') {
            assert!(
                !line[lt..].contains('>'),
                "strip_tags left a tag in {line:?} (input {input:?})"
            );
        }
    }
}
