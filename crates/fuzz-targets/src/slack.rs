//! Slack renderer target: `fn_slack::render` on `slack_details` JSON, on HTML and plain text
//! (notes), and on incidents (the incident summary), checking that Slack's control characters
//! never reach the message text unescaped.

use fn_slack::render;
use serde_json::Value;

/// The platform address incident links are built on.
const BASE: &str = "https://soar.example.com:443";

/// `slack_render`: `data` is text (invalid UTF-8 replaced; a leading `REPEAT <n>` line repeats
/// the rest, see [`crate::expand`]). It is rendered as `slack_details`, as a note
/// (`slack_text`, `html_to_slack`), escaped, and, when it is a JSON object, also as an incident
/// whose summary is rendered. A rendered message has `<` and `>` only around a link (Slack
/// would read any other as a mention such as `<!channel>`), and every `&` in it starts an entity.
pub fn slack_render(data: &[u8]) {
    let data = crate::expand(data);
    let text = crate::text(&data);

    let escaped = render::escape(&text);
    check_escaped(&escaped, "escape");

    if let Ok(message) = render::render(&text, BASE) {
        check_escaped(&message, "render");
    }
    let _ = render::looks_like_html(&text);
    check_escaped(&render::slack_text(&text), "slack_text");
    check_escaped(&render::html_to_slack(&text), "html_to_slack");

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

/// `<` and `>` only around a Slack link to an `http`, `https` or `mailto` URL (never a mention
/// such as `<!channel>` or `<@U123>`), and `&` only as `&amp;`, `&lt;` or `&gt;`.
fn check_escaped(message: &str, what: &str) {
    let mut rest = message;
    while let Some(open) = rest.find(['<', '>']) {
        assert!(
            rest[open..].starts_with('<'),
            "{what} left a raw > in the message: {message:?}"
        );
        let link = &rest[open + 1..];
        let close = link
            .find('>')
            .unwrap_or_else(|| panic!("{what} left a raw < in the message: {message:?}"));
        let inner = &link[..close];
        let url = inner.split('|').next().unwrap_or_default();
        assert!(
            ["http://", "https://", "mailto:"]
                .iter()
                .any(|s| url.starts_with(s))
                && !inner.contains('<')
                && !url.contains(char::is_whitespace),
            "{what} left markup that is not a link in the message: {inner:?} in {message:?}"
        );
        rest = &link[close + 1..];
    }
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
