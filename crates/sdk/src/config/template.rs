//! The default app.config text of typed sections, for `host config -c|-u`, generated from the
//! sections' JSON schema (doc comments, defaults, `#[schemars(example = …)]`).
//!
//! Each key is written after its doc comment as `# ` lines:
//! - a required key (no default): `key = <example>` (empty without an example): fill it in;
//! - a key with a default: `key = <default>`;
//! - an optional key without a default (an `Option`) or with an empty one: `#key = <example>`.
//!
//! A required key's example that cannot be a real value (a dummy token, `your-enclave-id`) is
//! marked `#[schemars(extend("x-placeholder" = true))]`: a component whose file still holds it
//! was not filled in, and the engine says so instead of starting with it.

use schemars::JsonSchema;
use serde_json::Value;

/// One section of a template.
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateSection {
    /// The section's name (for a family of sections, the example instance's name).
    pub name: String,
    /// For a family of sections (one per account, ...): the common prefix of their names.
    pub family_prefix: Option<String>,
    /// Comment lines before the header (the struct's doc comment).
    pub doc: Vec<String>,
    /// The keys, in declaration order.
    pub keys: Vec<TemplateKey>,
}

/// One key of a [`TemplateSection`].
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateKey {
    pub name: String,
    pub doc: Vec<String>,
    /// The value written.
    pub value: String,
    /// Written commented out (`#key = value`).
    pub commented: bool,
    /// `value` is an example to replace (`x-placeholder`), not something that works.
    pub placeholder: bool,
}

fn lines(text: Option<&str>) -> Vec<String> {
    text.map(|t| t.lines().map(|l| l.trim_end().to_string()).collect())
        .unwrap_or_default()
}

/// A value as app.config text: strings as they are, lists comma-separated.
fn ini_value(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(ini_value).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

/// The template of struct `T` as section `name`.
pub fn section<T: JsonSchema>(name: &str) -> TemplateSection {
    let schema = schemars::schema_for!(T);
    let root = schema.as_value();
    let required: Vec<&str> = root
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let keys = root
        .get("properties")
        .and_then(Value::as_object)
        .map(|props| {
            props
                .iter()
                .map(|(key, prop)| {
                    let example = prop
                        .get("examples")
                        .and_then(Value::as_array)
                        .and_then(|e| e.first())
                        .map(ini_value);
                    let default = prop.get("default").map(ini_value);
                    let (value, commented) = if required.contains(&key.as_str()) {
                        (example.unwrap_or_default(), false)
                    } else {
                        match default.filter(|d| !d.is_empty()) {
                            Some(d) => (d, false),
                            None => (example.unwrap_or_default(), true),
                        }
                    };
                    TemplateKey {
                        name: key.clone(),
                        doc: lines(prop.get("description").and_then(Value::as_str)),
                        placeholder: !commented
                            && prop.get("x-placeholder") == Some(&Value::Bool(true)),
                        value,
                        commented,
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    TemplateSection {
        name: name.to_string(),
        family_prefix: None,
        doc: lines(root.get("description").and_then(Value::as_str)),
        keys,
    }
}

/// The template of a family of sections read with
/// [`ConfigSource::family`](super::ConfigSource::family): `example` is the name of the instance
/// written, `prefix` what every instance's name starts with.
pub fn family<T: JsonSchema>(prefix: &str, example: &str) -> TemplateSection {
    TemplateSection {
        family_prefix: Some(prefix.to_string()),
        ..section::<T>(example)
    }
}

/// The keys `T` reads (for reporting unknown keys).
pub(crate) fn keys<T: JsonSchema>() -> Vec<String> {
    let schema = schemars::schema_for!(T);
    schema
        .as_value()
        .get("properties")
        .and_then(Value::as_object)
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default()
}

/// One section's text, ending with a newline.
pub fn render_section(section: &TemplateSection) -> String {
    let mut out = String::new();
    for line in &section.doc {
        out.push_str(&comment(line));
    }
    out.push_str(&format!("[{}]\n", section.name));
    for key in &section.keys {
        for line in &key.doc {
            out.push_str(&comment(line));
        }
        let hash = if key.commented { "#" } else { "" };
        if key.value.is_empty() {
            out.push_str(&format!("{hash}{} =\n", key.name));
        } else {
            out.push_str(&format!("{hash}{} = {}\n", key.name, key.value));
        }
    }
    out
}

fn comment(line: &str) -> String {
    if line.is_empty() {
        "#\n".to_string()
    } else {
        format!("# {line}\n")
    }
}

/// Several sections' text, separated by blank lines.
pub fn render(sections: &[TemplateSection]) -> String {
    sections
        .iter()
        .map(render_section)
        .collect::<Vec<_>>()
        .join("\n")
}

/// The section's values as a [`ConfigSource`](super::ConfigSource) section: the keys written
/// without `#`, or with `all` every key (commented ones too), as an operator would fill it in.
pub fn entries(section: &TemplateSection, all: bool) -> Vec<(String, String)> {
    section
        .keys
        .iter()
        .filter(|k| all || !k.commented)
        .map(|k| (k.name.clone(), k.value.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::{Deserialize, Serialize};

    /// Settings of the sample.
    #[derive(Deserialize, Serialize, JsonSchema)]
    struct Sample {
        /// The token.
        /// Keep it out of this file.
        #[schemars(example = "^sample_token")]
        token: crate::Secret,
        /// Author name.
        #[serde(default = "resilient")]
        username: String,
        /// Channel.
        #[schemars(example = &"incidents")]
        channel: Option<String>,
        /// Enclaves.
        #[serde(default)]
        enclaves: Vec<String>,
        /// Timeout.
        #[serde(default = "thirty")]
        timeout: u64,
    }

    fn resilient() -> String {
        "Resilient".into()
    }

    fn thirty() -> u64 {
        30
    }

    #[test]
    fn renders_docs_defaults_and_examples() {
        let text = render_section(&section::<Sample>("fn_sample"));
        assert_eq!(
            text,
            "# Settings of the sample.\n[fn_sample]\n# The token.\n# Keep it out of this file.\n\
             token = ^sample_token\n# Author name.\nusername = Resilient\n# Channel.\n\
             #channel = incidents\n# Enclaves.\n#enclaves =\n# Timeout.\ntimeout = 30\n"
        );
        assert_eq!(
            keys::<Sample>(),
            ["token", "username", "channel", "enclaves", "timeout"]
        );
    }
}
