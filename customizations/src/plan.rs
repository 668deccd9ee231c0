//! The plan: which of our objects are new, changed or unchanged on the platform.
//!
//! [`plan`] compares our export with the platform's current export (the answer
//! of `POST /configurations/exports/`), object by object. Objects are matched by
//! kind and key: message destinations, workflows and artifact types by
//! `programmatic_name`, functions and fields by `export_key` (or `name`), data
//! tables by `type_name`, rules by `name`. Platform objects we do not declare are
//! ignored (an import never deletes), and so are the internal incident type and
//! field every export carries.
//!
//! Two objects are the same when every key of ours has the same value on the
//! platform (keys the platform adds are ignored), except keys the platform owns:
//! ids, uuids, dates, creators, versions, tags, a destination's `users` and
//! `api_keys`, a select value's numeric `value`, a function's `workflows` and a
//! workflow's `actions`. Uuids that refer to objects (in view items, static
//! inputs, the workflow XML, ...) are replaced by the referenced object's kind
//! and key on both sides first, so an object that has other uuids on the
//! platform than ours is still the same object.

use std::collections::HashMap;

use serde_json::Value;

use crate::export::{INTERNAL_FIELD_EXPORT_KEY, INTERNAL_INCIDENT_TYPE};

/// One object of the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanItem {
    /// The kind: `message destination`, `function input`, `incident field`,
    /// `activity field`, `function`, `artifact type`, `data table`, `workflow`
    /// or `rule`.
    pub kind: &'static str,
    /// The object's key (programmatic name; a rule's display name).
    pub name: String,
}

impl PlanItem {
    fn line(&self, mark: char) -> String {
        if self.kind == "rule" {
            format!("{mark} {} \"{}\"", self.kind, self.name)
        } else {
            format!("{mark} {} {}", self.kind, self.name)
        }
    }
}

/// What an import of our export would do.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    /// Objects the platform does not have.
    pub new: Vec<PlanItem>,
    /// Objects the platform has with other values.
    pub changed: Vec<PlanItem>,
    /// Objects the platform has as we declare them.
    pub unchanged: Vec<PlanItem>,
}

impl Plan {
    /// Whether nothing is new or changed (no import is needed).
    pub fn is_empty(&self) -> bool {
        self.new.is_empty() && self.changed.is_empty()
    }

    /// One line per object: `+ function fn_hello` (new), `~ rule "Example: Say
    /// hello"` (changed), `= message destination fn_hello` (unchanged); new
    /// objects first, then changed, then unchanged.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for (mark, items) in [
            ('+', &self.new),
            ('~', &self.changed),
            ('=', &self.unchanged),
        ] {
            for item in items {
                out.push_str(&item.line(mark));
                out.push('\n');
            }
        }
        out
    }
}

/// A section of the export: its key, how its objects are keyed and named.
struct Section {
    key: &'static str,
    /// Keys of the section's objects the platform owns.
    ignored: &'static [&'static str],
    id: fn(&Value) -> Option<String>,
    kind: fn(&str) -> Option<&'static str>,
}

fn str_key(obj: &Value, key: &str) -> Option<String> {
    obj.get(key)
        .and_then(Value::as_str)
        .map(|s| s.trim().to_owned())
}

fn field_kind(export_key: &str) -> Option<&'static str> {
    if export_key == INTERNAL_FIELD_EXPORT_KEY {
        None
    } else if export_key.starts_with("__function/") {
        Some("function input")
    } else if export_key.starts_with("incident/") {
        Some("incident field")
    } else if export_key.starts_with("actioninvocation/") {
        Some("activity field")
    } else {
        None
    }
}

const SECTIONS: [Section; 7] = [
    Section {
        key: "message_destinations",
        ignored: &[],
        id: |o| str_key(o, "programmatic_name"),
        kind: |_| Some("message destination"),
    },
    Section {
        key: "fields",
        ignored: &[],
        id: |o| str_key(o, "export_key"),
        kind: field_kind,
    },
    Section {
        key: "functions",
        ignored: &["workflows"],
        id: |o| str_key(o, "export_key").or_else(|| str_key(o, "name")),
        kind: |_| Some("function"),
    },
    Section {
        key: "incident_artifact_types",
        ignored: &[],
        id: |o| str_key(o, "programmatic_name"),
        kind: |_| Some("artifact type"),
    },
    Section {
        key: "types",
        ignored: &[],
        id: |o| str_key(o, "type_name"),
        kind: |_| Some("data table"),
    },
    Section {
        key: "workflows",
        ignored: &["actions"],
        id: |o| str_key(o, "programmatic_name"),
        kind: |_| Some("workflow"),
    },
    Section {
        key: "actions",
        ignored: &[],
        id: |o| str_key(o, "name"),
        kind: |_| Some("rule"),
    },
];

/// Keys the platform owns, ignored at any depth.
const IGNORED: &[&str] = &[
    "api_keys",
    "content_version",
    "create_date",
    "created_date",
    "creator",
    "creator_id",
    "export_date",
    "id",
    "last_modified_by",
    "last_modified_time",
    "tags",
    "update_date",
    "users",
    "uuid",
    "version",
    "workflow_id",
];

/// Compares our export with the platform's current export (the `POST
/// /configurations/exports/` answer), object by object (matched by kind and
/// export_key / programmatic_name / name), ignoring keys the platform adds
/// (ids, dates, creator, ...).
pub fn plan(ours: &Value, platform: &Value) -> Plan {
    let our_tokens = uuid_tokens(ours);
    let their_tokens = uuid_tokens(platform);
    let mut result = Plan::default();
    for section in &SECTIONS {
        let theirs: HashMap<String, &Value> = objects(platform, section.key)
            .iter()
            .filter_map(|o| (section.id)(o).map(|id| (id, o)))
            .collect();
        for obj in objects(ours, section.key) {
            let Some(id) = (section.id)(obj) else {
                continue;
            };
            let Some(kind) = (section.kind)(&id) else {
                continue;
            };
            let name = if section.key == "fields" {
                id.split_once('/').map_or(id.clone(), |(_, n)| n.to_owned())
            } else {
                id.clone()
            };
            let item = PlanItem { kind, name };
            match theirs.get(&id) {
                None => result.new.push(item),
                Some(their_obj) => {
                    let a = normalize(obj, &our_tokens);
                    let b = normalize(their_obj, &their_tokens);
                    if same_top(&a, &b, section.ignored) {
                        result.unchanged.push(item);
                    } else {
                        result.changed.push(item);
                    }
                }
            }
        }
    }
    result
}

/// The objects of a section (none when absent or not an array).
fn objects<'a>(export: &'a Value, key: &str) -> &'a [Value] {
    export
        .get(key)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// uuid (lower case) to `kind:key` for every object of an export that others
/// refer to by uuid.
fn uuid_tokens(export: &Value) -> HashMap<String, String> {
    let mut map = HashMap::new();
    let mut add = |uuid: Option<&Value>, token: String| {
        if let Some(u) = uuid.and_then(Value::as_str) {
            map.insert(u.to_ascii_lowercase(), token);
        }
    };
    let add_field = |field: &Value, add: &mut dyn FnMut(Option<&Value>, String)| {
        let key = str_key(field, "export_key").unwrap_or_default();
        add(field.get("uuid"), format!("field:{key}"));
        for value in objects(field, "values") {
            let label = str_key(value, "label").unwrap_or_default();
            add(value.get("uuid"), format!("value:{key}/{label}"));
        }
    };
    for field in objects(export, "fields") {
        add_field(field, &mut add);
    }
    for table in objects(export, "types") {
        let name = str_key(table, "type_name").unwrap_or_default();
        add(table.get("uuid"), format!("data_table:{name}"));
        if let Some(columns) = table.get("fields").and_then(Value::as_object) {
            for column in columns.values() {
                add_field(column, &mut add);
            }
        }
    }
    let simple: [(&str, &str, &str); 5] = [
        (
            "message_destinations",
            "programmatic_name",
            "message_destination",
        ),
        ("functions", "export_key", "function"),
        ("workflows", "programmatic_name", "workflow"),
        ("actions", "name", "rule"),
        (
            "incident_artifact_types",
            "programmatic_name",
            "artifact_type",
        ),
    ];
    for (section, key, kind) in simple {
        for obj in objects(export, section) {
            let id = str_key(obj, key)
                .or_else(|| str_key(obj, "name"))
                .unwrap_or_default();
            add(obj.get("uuid"), format!("{kind}:{id}"));
        }
    }
    for t in objects(export, "incident_types") {
        let name = str_key(t, "name").unwrap_or_default();
        if name != INTERNAL_INCIDENT_TYPE {
            add(t.get("uuid"), format!("incident_type:{name}"));
        }
    }
    map
}

/// The value with every known uuid inside strings replaced by its token.
fn normalize(v: &Value, tokens: &HashMap<String, String>) -> Value {
    match v {
        Value::String(s) => Value::String(replace_uuids(s, tokens)),
        Value::Array(items) => Value::Array(items.iter().map(|i| normalize(i, tokens)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), normalize(v, tokens)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Whether `b` (36 bytes) looks like a uuid: 8-4-4-4-12 hex digits.
fn is_uuid(b: &[u8]) -> bool {
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

fn replace_uuids(s: &str, tokens: &HashMap<String, String>) -> String {
    let bytes = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < bytes.len() {
        if let Some(window) = bytes.get(i..i + 36)
            && is_uuid(window)
            && let Some(token) = std::str::from_utf8(window)
                .ok()
                .and_then(|u| tokens.get(&u.to_ascii_lowercase()))
        {
            out.push_str(token);
            i += 36;
            continue;
        }
        // `i` is always on a char boundary: it advances by whole chars or by 36 ASCII bytes.
        match s.get(i..).and_then(|rest| rest.chars().next()) {
            Some(c) => {
                out.push(c);
                i += c.len_utf8();
            }
            None => break,
        }
    }
    out
}

/// Whether a value counts as absent.
fn is_empty_like(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        Value::String(s) => s.is_empty(),
        _ => false,
    }
}

/// Compares two top-level objects of a section, also ignoring `extra` keys.
fn same_top(ours: &Value, theirs: &Value, extra: &[&str]) -> bool {
    match (ours, theirs) {
        (Value::Object(a), Value::Object(b)) => a.iter().all(|(k, v)| {
            if IGNORED.contains(&k.as_str()) || extra.contains(&k.as_str()) {
                return true;
            }
            match b.get(k) {
                Some(t) => same(v, t, k == "values"),
                None => is_empty_like(v),
            }
        }),
        _ => same(ours, theirs, false),
    }
}

/// Whether every key of `ours` has the same value in `theirs`. `in_values`:
/// the values are elements of a field's `values` (their numeric `value` is a
/// platform id).
fn same(ours: &Value, theirs: &Value, in_values: bool) -> bool {
    match (ours, theirs) {
        (Value::Object(a), Value::Object(b)) => a.iter().all(|(k, v)| {
            if IGNORED.contains(&k.as_str()) || (in_values && k == "value") {
                return true;
            }
            match b.get(k) {
                Some(t) => same(v, t, k == "values"),
                None => is_empty_like(v),
            }
        }),
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same(x, y, in_values))
        }
        (Value::Number(a), Value::Number(b)) => a == b || a.as_f64() == b.as_f64(),
        (Value::Null, other) | (other, Value::Null) => is_empty_like(other),
        (a, b) => a == b,
    }
}

/// A rule or workflow of ours that the platform already holds under another name (the
/// original app's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Adopted {
    /// `rule` or `workflow`.
    pub kind: &'static str,
    /// Our name (a rule's display name, a workflow's programmatic name).
    pub ours: String,
    /// The platform's name for it, which ours takes.
    pub theirs: String,
}

/// Gives our workflows and our rules that start workflows the platform's names for them (see
/// `adopt_workflow_names` for workflows). A rule of ours that the
/// platform (`platform`, its export) does not have by name is the platform's rule that runs on
/// the same object, is of the same kind (manual or automatic), starts one of the same workflows
/// (by programmatic name) and is not one of ours (in `ours`, or imported by an earlier customize
/// of ours, see `made_by_us`), when exactly one such rule exists. The
/// original apps name their rules differently ("Example: Post Incident to Slack" starts
/// `create_slack_message` as our "Create Slack Message" does); adopting their names makes an
/// import update those rules in place instead of adding a second rule for the same workflow.
/// Rules that send messages to a destination keep their names: handlers are routed by them.
pub fn adopt_rule_names(ours: &mut crate::Customizations, platform: &Value) -> Vec<Adopted> {
    let mut adopted = adopt_workflow_names(ours, platform);
    adopted.extend(adopt_rules(ours, platform));
    adopted
}

/// Our workflows that the platform lacks by programmatic name take the name of the platform's
/// workflow that calls the same function on the same object (as the platform's export lists
/// under the function), when exactly one such workflow exists and it is not ours; our rules
/// follow the rename.
fn adopt_workflow_names(ours: &mut crate::Customizations, platform: &Value) -> Vec<Adopted> {
    let list = |key: &str| -> Vec<&Value> {
        (platform
            .get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten())
        .collect()
    };
    let platform_names: Vec<&str> = (list("workflows").into_iter())
        .filter_map(|w| w.get("programmatic_name").and_then(Value::as_str))
        .collect();
    // Workflows some customize of ours made (under other definitions) are never adopted.
    let foreign: Vec<&str> = (list("workflows").into_iter())
        .filter(|w| !made_by_us("workflow", w, "programmatic_name"))
        .filter_map(|w| w.get("programmatic_name").and_then(Value::as_str))
        .collect();
    let our_names: Vec<String> = ours.workflows.iter().map(|w| w.name.clone()).collect();
    let functions = list("functions");
    let mut adopted: Vec<Adopted> = Vec::new();
    for workflow in &mut ours.workflows {
        if platform_names.contains(&workflow.name.as_str()) {
            continue;
        }
        let users = (functions.iter())
            .find(|f| f.get("name").and_then(Value::as_str) == Some(workflow.function.as_str()))
            .and_then(|f| f.get("workflows"))
            .and_then(Value::as_array);
        let candidates: Vec<&str> = (users.into_iter().flatten())
            .filter(|w| {
                w.get("object_type").and_then(Value::as_str) == Some(workflow.object_type.as_str())
            })
            .filter_map(|w| w.get("programmatic_name").and_then(Value::as_str))
            .filter(|name| foreign.contains(name))
            .filter(|name| !our_names.iter().any(|o| o == name))
            .filter(|name| !adopted.iter().any(|a| a.theirs == *name))
            .collect();
        if let [theirs] = candidates.as_slice() {
            adopted.push(Adopted {
                kind: "workflow",
                ours: std::mem::replace(&mut workflow.name, (*theirs).to_owned()),
                theirs: (*theirs).to_owned(),
            });
        }
    }
    for rule in &mut ours.rules {
        for name in &mut rule.workflows {
            if let Some(a) = adopted.iter().find(|a| a.ours == *name) {
                name.clone_from(&a.theirs);
            }
        }
    }
    adopted
}

/// Gives every object of our export that the platform already holds (the same kind and name:
/// a function, message destination, function input, incident field or select value, artifact
/// type, workflow or rule, including those adopted by [`adopt_rule_names`]) the platform's uuid,
/// and rewrites our references to it (a workflow's function, a function's inputs). The import
/// then updates the original app's objects as they are, and what the org built on them and
/// refers to them by uuid (its own workflows calling the original functions) keeps working.
pub fn keep_platform_uuids(export: &mut Value, platform: &Value) {
    let theirs: HashMap<String, String> = uuid_tokens(platform)
        .into_iter()
        .map(|(uuid, token)| (token, uuid))
        .collect();
    let to_theirs: HashMap<String, String> = uuid_tokens(export)
        .into_iter()
        .filter_map(|(ours, token)| {
            let t = theirs.get(&token)?;
            (*t != ours).then(|| (ours, t.clone()))
        })
        .collect();
    if !to_theirs.is_empty() {
        *export = normalize(export, &to_theirs);
    }
}

/// Whether `obj` (a platform workflow or rule) was imported by a customize of ours: our
/// exports give each object the uuid derived from its kind and name, which no other tool does.
fn made_by_us(kind: &str, obj: &Value, name_key: &str) -> bool {
    let name = obj
        .get(name_key)
        .and_then(Value::as_str)
        .unwrap_or_default();
    obj.get("uuid").and_then(Value::as_str)
        == Some(crate::uuid_for(kind, name).to_string().as_str())
}

fn adopt_rules(ours: &mut crate::Customizations, platform: &Value) -> Vec<Adopted> {
    let actions: Vec<&Value> = platform
        .get("actions")
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let name_of = |a: &Value| a.get("name").and_then(Value::as_str).map(str::to_owned);
    let platform_names: Vec<String> = actions.iter().filter_map(|a| name_of(a)).collect();
    let our_names: Vec<String> = ours.rules.iter().map(|r| r.name.clone()).collect();
    let mut adopted = Vec::new();
    for rule in &mut ours.rules {
        if platform_names.contains(&rule.name)
            || rule.workflows.is_empty()
            || !rule.destinations.is_empty()
        {
            continue;
        }
        let kind = match rule.kind {
            crate::RuleKind::Automatic => 0,
            crate::RuleKind::Manual => 1,
        };
        let candidates: Vec<String> = actions
            .iter()
            .filter(|a| {
                a.get("object_type").and_then(Value::as_str) == Some(rule.object_type.as_str())
            })
            .filter(|a| a.get("type").and_then(Value::as_i64) == Some(kind))
            .filter(|a| !made_by_us("rule", a, "name"))
            .filter(|a| {
                (a.get("workflows")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten())
                .filter_map(Value::as_str)
                .any(|w| rule.workflows.iter().any(|ours| ours == w))
            })
            .filter_map(|a| name_of(a))
            .filter(|name| !our_names.contains(name))
            .filter(|name| !adopted.iter().any(|x: &Adopted| &x.theirs == name))
            .collect();
        if let [theirs] = candidates.as_slice() {
            adopted.push(Adopted {
                kind: "rule",
                ours: std::mem::replace(&mut rule.name, theirs.clone()),
                theirs: theirs.clone(),
            });
        }
    }
    adopted
}
