//! Slack renderer target: `fn_slack::render` on `slack_details` JSON, on HTML and plain text
//! (notes), and on incidents (the incident summary), checking that Slack's control characters
//! never reach the message text unescaped.

use fn_slack::render;
use serde_json::Value;

/// The platform address incident links are built on.
const BASE: &str = "https://soar.example.com:443";

/// `slack_render`: `data` is text (invalid UTF-8 replaced; a leading `REPEAT <n>` line repeats
/// the rest, see [`crate::expand`]). It is rendered as `slack_details`, as a note
/// (`text_or_html`, `html_to_text`), escaped, and, when it is a JSON object, also as an incident
/// whose summary is rendered. A rendered message never contains `<` or `>` (Slack would read
/// them as a link or a mention such as `<!channel>`), and every `&` in it starts an entity.
pub fn slack_render(data: &[u8]) {
    let data = crate::expand(data);
    let text = crate::text(&data);

    let escaped = render::escape(&text);
    check_escaped(&escaped, "escape");

    if let Ok(message) = render::render(&text, BASE) {
        check_escaped(&message, "render");
    }
    let _ = render::looks_like_html(&text);
    let _ = render::text_or_html(&text);
    let _ = render::html_to_text(&text);

    if let Ok(Value::Object(incident)) = serde_json::from_str::<Value>(&text) {
        let incident = Value::Object(incident);
        let details = fn_slack::incident_details(&incident);
        if let Ok(message) = render::render_details(&details, BASE) {
            check_escaped(&message, "render_details(incident_details)");
        }
        for v in incident.as_object().into_iter().flat_map(|o| o.values()) {
            let _ = render::truthy(v);
        }
    }
}

/// No `<` or `>`, and `&` only as `&amp;`, `&lt;` or `&gt;`.
fn check_escaped(message: &str, what: &str) {
    assert!(
        !message.contains(['<', '>']),
        "{what} left a raw < or > in the message: {message:?}"
    );
    let mut rest = message;
    while let Some(i) = rest.find('&') {
        rest = &rest[i..];
        assert!(
            ["&amp;", "&lt;", "&gt;"]
                .iter()
                .any(|e| rest.starts_with(e)),
            "{what} left a raw & in the message: {message:?}"
        );
        rest = &rest[1..];
    }
}
