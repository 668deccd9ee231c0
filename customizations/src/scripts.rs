//! The Python pre- and post-processing scripts of a workflow's function step.
//!
//! The generated text follows the grammar of `design/CUSTOMIZATIONS.md`, which
//! the simulated platform interprets (one statement per line, every line ends
//! with `\n`):
//!
//! ```python
//! inputs.incident_id = incident.id
//! incident.properties.hello_last_echo = results.content.text
//! incident.description = results.content.text
//! incident.addNote(u"fn_hello echoed: {0}".format(results.content.text))
//! incident.addNote(u"A fixed note")
//! ```
//!
//! String literals are `u"..."` with the escapes `\\`, `\"` and `\n`; in a
//! `.format` template `{{` and `}}` are literal braces. Static inputs are not in
//! the scripts: they go to the function step's `static_input`.
//!
//! The functions expect a validated workflow ([`crate::Customizations::validate`]);
//! they never panic on any input.

use crate::{Customizations, InputValue, PostStep, Workflow};

/// A piece of a note template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Piece {
    /// Literal text (braces already unescaped).
    Lit(String),
    /// A `{path}` placeholder.
    Path(String),
}

/// Splits a note template into literal text and `{path}` placeholders;
/// `{{` and `}}` are literal braces.
pub(crate) fn parse_template(text: &str) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut lit = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                lit.push('{');
            }
            '{' => {
                let mut path = String::new();
                let mut closed = false;
                for c in chars.by_ref() {
                    match c {
                        '}' => {
                            closed = true;
                            break;
                        }
                        '{' => {
                            return Err(
                                "'{' inside a placeholder of the note template (write '{{' for a brace)"
                                    .to_owned(),
                            );
                        }
                        other => path.push(other),
                    }
                }
                if !closed {
                    return Err(
                        "unclosed '{' in the note template (write '{{' for a brace)".to_owned()
                    );
                }
                if !lit.is_empty() {
                    pieces.push(Piece::Lit(std::mem::take(&mut lit)));
                }
                pieces.push(Piece::Path(path));
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                lit.push('}');
            }
            '}' => {
                return Err(
                    "unmatched '}' in the note template (write '}}' for a brace)".to_owned(),
                );
            }
            other => lit.push(other),
        }
    }
    if !lit.is_empty() {
        pieces.push(Piece::Lit(lit));
    }
    Ok(pieces)
}

/// A Python `u"..."` literal: `\\`, `\"` and `\n` escaped; other control
/// characters than tab are dropped (validation rejects them).
pub fn python_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 3);
    out.push_str("u\"");
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\t' => out.push('\t'),
            c if c.is_control() || c == '\u{2028}' || c == '\u{2029}' => {}
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The pre-processing script: `inputs.<input> = <path>` for every `from` input and
/// `inputs.<input> = u"<JSON>".format(…)` for every `json` input, in input name order. Empty
/// when there is none.
pub fn pre_processing(w: &Workflow) -> String {
    let mut out = String::new();
    for (name, value) in &w.inputs {
        match value {
            InputValue::From(path) => out.push_str(&format!("inputs.{name} = {path}\n")),
            InputValue::Json(template) => {
                let mut text = String::new();
                let mut exprs = Vec::new();
                json_template(template, &mut text, &mut exprs);
                let args: Vec<String> = exprs.iter().map(|e| json_string_of(e)).collect();
                out.push_str(&format!(
                    "inputs.{name} = {}.format({})\n",
                    python_string(&text),
                    args.join(", ")
                ));
            }
            InputValue::Static(_) => {}
        }
    }
    out
}

/// A `.format` template of the JSON text of `v`: each `{from: path}` becomes `"{N}"` (the
/// Python expression of its text pushed to `exprs`), braces of the JSON itself are doubled.
fn json_template(v: &serde_json::Value, out: &mut String, exprs: &mut Vec<String>) {
    use serde_json::Value;
    let literal = |v: &Value| v.to_string().replace('{', "{{").replace('}', "}}");
    match v {
        Value::Object(m) => {
            if let Some((path, join)) = crate::model::template_leaf(m) {
                out.push_str(&format!("\"{{{}}}\"", exprs.len()));
                exprs.push(match join {
                    Some(sep) => format!("{}.join({path} or u\"\")", python_string(sep)),
                    None => format!("str({path} or u\"\")"),
                });
                return;
            }
            out.push_str("{{");
            for (i, (k, v)) in m.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(&literal(&Value::String(k.clone())));
                out.push_str(": ");
                json_template(v, out, exprs);
            }
            out.push_str("}}");
        }
        Value::Array(a) => {
            out.push('[');
            for (i, v) in a.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                json_template(v, out, exprs);
            }
            out.push(']');
        }
        other => out.push_str(&literal(other)),
    }
}

/// `text` (a Python expression of a string) as the inside of a JSON string: backslashes,
/// quotes and line ends escaped (other control characters stay raw, which the functions'
/// lenient JSON readers accept).
fn json_string_of(text: &str) -> String {
    format!(
        r#"{text}.replace(u"\\", u"\\\\").replace(u"\"", u"\\\"").replace(u"\n", u"\\n").replace(u"\r", u"\\r")"#
    )
}

/// The post-processing script: one line per step, in order. A field declared in
/// `c.incident_fields` is set as `incident.properties.<field>`, any other as a
/// built-in `incident.<field>`. Empty when there is no step.
pub fn post_processing(w: &Workflow, c: &Customizations) -> String {
    let mut out = String::new();
    for step in &w.post_processing {
        match step {
            PostStep::SetIncidentField { field, from } => {
                if c.incident_field(field).is_some() {
                    out.push_str(&format!("incident.properties.{field} = {from}\n"));
                } else {
                    out.push_str(&format!("incident.{field} = {from}\n"));
                }
            }
            PostStep::AddNote { text } => {
                out.push_str(&add_note(text));
                out.push('\n');
            }
        }
    }
    out
}

/// `incident.addNote(...)` for a note template.
fn add_note(text: &str) -> String {
    let pieces = parse_template(text).unwrap_or_else(|_| vec![Piece::Lit(text.to_owned())]);
    let paths: Vec<&str> = pieces
        .iter()
        .filter_map(|p| match p {
            Piece::Path(path) => Some(path.as_str()),
            Piece::Lit(_) => None,
        })
        .collect();
    if paths.is_empty() {
        let literal: String = pieces
            .iter()
            .map(|p| match p {
                Piece::Lit(s) => s.as_str(),
                Piece::Path(_) => "",
            })
            .collect();
        return format!("incident.addNote({})", python_string(&literal));
    }
    let mut template = String::new();
    let mut index = 0usize;
    for piece in &pieces {
        match piece {
            Piece::Lit(s) => template.push_str(&s.replace('{', "{{").replace('}', "}}")),
            Piece::Path(_) => {
                template.push_str(&format!("{{{index}}}"));
                index += 1;
            }
        }
    }
    format!(
        "incident.addNote({}.format({}))",
        python_string(&template),
        paths.join(", ")
    )
}
