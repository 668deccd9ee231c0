//! YAML parsing (serde-saphyr): one [`Source`] at a time, then merged in order.
//!
//! A YAML error becomes [`CustomizationError::Yaml`] with the file, the 1-based
//! line and column, and a message that names the enclosing object when it can be
//! found (e.g. `function "fn_hello": input "hello_text": unknown variant ...`).
//! To find it, the text is read a second time into a skeleton that only keeps
//! each object's name and position; an error line belongs to the innermost
//! object whose block (by indentation) contains it.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_saphyr::{Location, MessageFormatter, Spanned};

use crate::{CustomizationError, Customizations, Source};

impl Customizations {
    /// Parses YAML sources and merges them in order (see [`Customizations::merge`]).
    ///
    /// Errors: [`CustomizationError::Yaml`] naming `file:line:column` for syntax
    /// and schema errors (unknown keys, wrong types, unknown input types, ...), and
    /// [`CustomizationError::Duplicate`] for a name declared twice.
    pub fn parse(sources: &[Source<'_>]) -> Result<Customizations, CustomizationError> {
        let mut parts = Vec::with_capacity(sources.len());
        for source in sources {
            parts.push(parse_one(source)?);
        }
        Customizations::merge(parts)
    }

    /// Merges parts in order. A name declared twice for one kind of object (also
    /// within one part) is a [`CustomizationError::Duplicate`] naming both files.
    pub fn merge(
        parts: impl IntoIterator<Item = Customizations>,
    ) -> Result<Customizations, CustomizationError> {
        let mut all = Customizations::default();
        for part in parts {
            all.message_destinations.extend(part.message_destinations);
            all.functions.extend(part.functions);
            all.incident_fields.extend(part.incident_fields);
            all.artifact_types.extend(part.artifact_types);
            all.data_tables.extend(part.data_tables);
            all.rules.extend(part.rules);
            all.workflows.extend(part.workflows);
        }
        match crate::validate::duplicates(&all).into_iter().next() {
            Some(d) => Err(CustomizationError::Duplicate {
                kind: d.kind,
                name: d.name,
                first_file: d.first_file,
                second_file: d.second_file,
            }),
            None => Ok(all),
        }
    }
}

/// Parses one source and records its file name in every object.
fn parse_one(source: &Source<'_>) -> Result<Customizations, CustomizationError> {
    if is_blank_document(source.text) {
        return Ok(Customizations::default());
    }
    match serde_saphyr::from_str::<Customizations>(source.text) {
        Ok(mut c) => {
            c.set_file(source.file);
            Ok(c)
        }
        Err(err) => {
            let location = err.location();
            let (line, column) = location.map(|l| (l.line(), l.column())).unwrap_or((0, 0));
            let mut message = plain_message(&err);
            if line > 0
                && let Some(context) = context_at(source.text, line)
            {
                message = format!("{context}: {message}");
            }
            Err(CustomizationError::Yaml {
                file: source.file.to_owned(),
                line,
                column,
                message,
            })
        }
    }
}

/// Whether the text has no content at all (only blank lines, comments and
/// document markers): such a file declares nothing.
fn is_blank_document(text: &str) -> bool {
    text.lines().all(|l| {
        let t = l.trim();
        t.is_empty() || t.starts_with('#') || t == "---" || t == "..."
    })
}

/// The error message without location suffix or snippet.
fn plain_message(err: &serde_saphyr::Error) -> String {
    let mut inner = err;
    while let serde_saphyr::Error::WithSnippet { error, .. }
    | serde_saphyr::Error::AliasError { error, .. } = inner
    {
        inner = error;
    }
    let text = serde_saphyr::DefaultMessageFormatter
        .format_message(inner)
        .into_owned();
    // Keep messages on one line and free of control characters.
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// What the skeleton keeps of an object: its name and its nested fields.
/// Lenient: anything that is not a mapping is an object without name.
#[derive(Default)]
struct SkelObject {
    name: Option<serde_json::Value>,
    inputs: Nested,
    fields: Nested,
    columns: Nested,
}

impl<'de> Deserialize<'de> for SkelObject {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = SkelObject;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("anything")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<SkelObject, A::Error> {
                let mut obj = SkelObject::default();
                while let Some(key) = map.next_key::<serde_json::Value>()? {
                    match key.as_str() {
                        Some("name") => obj.name = map.next_value()?,
                        Some("inputs") => obj.inputs = map.next_value()?,
                        Some("fields") => obj.fields = map.next_value()?,
                        Some("columns") => obj.columns = map.next_value()?,
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(obj)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<SkelObject, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(SkelObject::default())
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<SkelObject, E> {
                Ok(SkelObject::default())
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<SkelObject, E> {
                Ok(SkelObject::default())
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<SkelObject, E> {
                Ok(SkelObject::default())
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<SkelObject, E> {
                Ok(SkelObject::default())
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<SkelObject, E> {
                Ok(SkelObject::default())
            }
            fn visit_unit<E: de::Error>(self) -> Result<SkelObject, E> {
                Ok(SkelObject::default())
            }
            fn visit_none<E: de::Error>(self) -> Result<SkelObject, E> {
                Ok(SkelObject::default())
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// A list of positioned objects; anything else counts as an empty list.
#[derive(Default)]
struct Nested(Vec<Spanned<SkelObject>>);

impl<'de> Deserialize<'de> for Nested {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Nested;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("anything")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Nested, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<Spanned<SkelObject>>()? {
                    items.push(item);
                }
                Ok(Nested(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Nested, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Nested::default())
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Nested, E> {
                Ok(Nested::default())
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Nested, E> {
                Ok(Nested::default())
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Nested, E> {
                Ok(Nested::default())
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Nested, E> {
                Ok(Nested::default())
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Nested, E> {
                Ok(Nested::default())
            }
            fn visit_unit<E: de::Error>(self) -> Result<Nested, E> {
                Ok(Nested::default())
            }
            fn visit_none<E: de::Error>(self) -> Result<Nested, E> {
                Ok(Nested::default())
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// Every top-level section, as positioned objects (other keys ignored).
#[derive(Deserialize)]
struct Skeleton {
    #[serde(default)]
    message_destinations: Nested,
    #[serde(default)]
    functions: Nested,
    #[serde(default)]
    incident_fields: Nested,
    #[serde(default)]
    artifact_types: Nested,
    #[serde(default)]
    data_tables: Nested,
    #[serde(default)]
    workflows: Nested,
    #[serde(default)]
    rules: Nested,
}

/// Describes the object (and nested field) whose block contains `line`, e.g.
/// `function "fn_hello": input "hello_text"`.
fn context_at(text: &str, line: u64) -> Option<String> {
    let skeleton: Skeleton = serde_saphyr::from_str(text).ok()?;
    let lines: Vec<&str> = text.lines().collect();
    let sections: [(&str, &Nested); 7] = [
        ("message destination", &skeleton.message_destinations),
        ("function", &skeleton.functions),
        ("incident field", &skeleton.incident_fields),
        ("artifact type", &skeleton.artifact_types),
        ("data table", &skeleton.data_tables),
        ("workflow", &skeleton.workflows),
        ("rule", &skeleton.rules),
    ];
    for (kind, items) in sections {
        for item in &items.0 {
            if !block_contains(&lines, &item.referenced, line) {
                continue;
            }
            let mut context = format!("{kind} {}", describe_name(&item.value.name));
            let nested: [(&str, &Nested); 3] = [
                ("input", &item.value.inputs),
                ("field", &item.value.fields),
                ("column", &item.value.columns),
            ];
            for (nested_kind, nested_items) in nested {
                if let Some(n) = nested_items
                    .0
                    .iter()
                    .find(|n| block_contains(&lines, &n.referenced, line))
                {
                    context.push_str(&format!(": {nested_kind} {}", describe_name(&n.value.name)));
                }
            }
            return Some(context);
        }
    }
    None
}

fn describe_name(name: &Option<serde_json::Value>) -> String {
    match name {
        Some(serde_json::Value::String(s)) => format!("\"{s}\""),
        Some(other) => format!("\"{other}\""),
        None => "(without name)".to_owned(),
    }
}

/// Whether `line` (1-based) is inside the block of the node that starts at
/// `start`: from its first line up to the first later line indented less than
/// the node's column.
fn block_contains(lines: &[&str], start: &Location, line: u64) -> bool {
    let first = start.line();
    if first == 0 || line < first {
        return false;
    }
    let indent = start.column().saturating_sub(1);
    let (Ok(first_idx), Ok(last_idx)) = (usize::try_from(first), usize::try_from(line)) else {
        return false;
    };
    // lines[first_idx - 1] is the node's own line; check the lines after it.
    for l in lines.iter().take(last_idx).skip(first_idx) {
        let trimmed = l.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let this_indent = (l.len() - trimmed.len()) as u64;
        if this_indent < indent {
            return false;
        }
    }
    true
}
