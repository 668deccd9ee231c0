//! Customization imports and exports (protocol spec §6.2 and §6.3).
//!
//! `POST /configurations/imports` validates an `export.res` document against the import itself
//! and the platform's current objects and stores it as a `ConfigurationImportDto`
//! (`{id, status, create_date, messages}`): `PENDING` with INFO/WARN messages describing what
//! it will create, update or leave unchanged, or `REJECTED` with ERROR messages naming each
//! broken object. `PUT` with `status: "ACCEPTED"` applies it; `"REJECTED"` discards it.
//!
//! Objects are keyed like the platform keys them: message destinations, artifact types,
//! workflows, automatic tasks by `programmatic_name`; functions by `export_key` (or `name`);
//! fields by `export_key`; rules by `name`; data tables by `type_name`; anything else by
//! `export_key`, `programmatic_name` or `name`. An object whose key exists is replaced (in
//! place, keeping its platform id); the same key with another uuid is a WARN, another object's
//! uuid under a new key is an ERROR.
//!
//! Applied objects are kept VERBATIM in the [`ObjectStore`] (in insertion order), and the
//! export (`POST /configurations/exports/`) answers them as they were imported, so that
//! export → import → export is the identity on the object lists. The platform's own views
//! (`/functions`, `/message_destinations`, `/actions`, `/workflows`, `/types/…/fields`) are
//! derived from the store plus the objects added through the Rust API.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::messages::now_ms;
use crate::platform::{FunctionDef, PlatformState, Rule};

/// Top-level keys of an export whose values are object lists.
pub const LIST_KEYS: &[&str] = &[
    "actions",
    "apps",
    "automatic_tasks",
    "fields",
    "functions",
    "inbound_destinations",
    "incident_artifact_types",
    "incident_types",
    "layouts",
    "message_destinations",
    "overrides",
    "phases",
    "playbooks",
    "roles",
    "scripts",
    "tags",
    "types",
    "workflows",
    "workspaces",
];

/// Order in which an accepted import is applied (dependencies first).
const APPLY_ORDER: &[&str] = &[
    "message_destinations",
    "fields",
    "incident_artifact_types",
    "types",
    "phases",
    "incident_types",
    "functions",
    "scripts",
    "workflows",
    "automatic_tasks",
    "actions",
    "playbooks",
    "layouts",
    "roles",
    "apps",
    "inbound_destinations",
    "overrides",
    "tags",
    "workspaces",
];

/// One object stored by an import: its key, the platform's id for it and its JSON as imported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredObject {
    /// The object's key (see the module docs).
    pub key: String,
    /// The id the platform assigned.
    pub id: i64,
    /// The object exactly as imported.
    pub json: Value,
}

/// Imported objects by export list key, each list in insertion order.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ObjectStore {
    kinds: BTreeMap<String, Vec<StoredObject>>,
}

impl ObjectStore {
    /// The stored objects of one kind (`"functions"`, `"workflows"`…).
    pub fn list(&self, kind: &str) -> &[StoredObject] {
        self.kinds.get(kind).map(Vec::as_slice).unwrap_or_default()
    }

    /// The stored object of `kind` with `key`.
    pub fn get(&self, kind: &str, key: &str) -> Option<&StoredObject> {
        self.list(kind).iter().find(|o| o.key == key)
    }

    /// Inserts or replaces (in place) an object.
    pub fn upsert(&mut self, kind: &str, key: &str, id: i64, json: Value) {
        let list = self.kinds.entry(kind.to_string()).or_default();
        let obj = StoredObject {
            key: key.to_string(),
            id,
            json,
        };
        match list.iter_mut().find(|o| o.key == key) {
            Some(existing) => *existing = obj,
            None => list.push(obj),
        }
    }
}

/// An import as posted, with its DTO.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImportRecord {
    /// The `ConfigurationImportDto` (`id`, `status`, `create_date`, `messages`).
    pub dto: Value,
    /// The posted export document.
    pub payload: Value,
}

/// Severity of an import message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Informational.
    Info,
    /// A warning: the import can be accepted.
    Warn,
    /// An error: the import is rejected.
    Error,
}

impl Level {
    fn as_str(self) -> &'static str {
        match self {
            Level::Info => "INFO",
            Level::Warn => "WARN",
            Level::Error => "ERROR",
        }
    }
}

/// Import messages in order.
#[derive(Debug, Default)]
pub struct Messages(pub Vec<(Level, String)>);

impl Messages {
    fn push(&mut self, level: Level, text: impl Into<String>) {
        self.0.push((level, text.into()));
    }

    /// Whether any message is an ERROR.
    pub fn has_errors(&self) -> bool {
        self.0.iter().any(|(l, _)| *l == Level::Error)
    }

    /// The messages as the DTO lists them.
    pub fn to_json(&self) -> Value {
        Value::Array(
            self.0
                .iter()
                .map(|(l, t)| json!({"type": l.as_str(), "text": t}))
                .collect(),
        )
    }
}

/// The key of an object of `kind`, if it has one.
pub fn object_key(kind: &str, obj: &Value) -> Option<String> {
    let s = |k: &str| {
        obj.get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    match kind {
        "message_destinations" | "workflows" | "incident_artifact_types" | "automatic_tasks" => {
            s("programmatic_name")
        }
        "functions" => s("export_key").or_else(|| s("name")),
        "actions" => s("name"),
        "types" => s("type_name"),
        "fields" => s("export_key").or_else(|| {
            let name = s("name")?;
            let t = match obj.get("type_id").and_then(Value::as_i64) {
                Some(0) => "incident".to_string(),
                Some(6) => "actioninvocation".to_string(),
                Some(11) => "__function".to_string(),
                Some(n) => n.to_string(),
                None => return None,
            };
            Some(format!("{t}/{name}"))
        }),
        _ => s("export_key")
            .or_else(|| s("programmatic_name"))
            .or_else(|| s("name"))
            .or_else(|| s("type_name")),
    }
}

fn key_field(kind: &str) -> &'static str {
    match kind {
        "message_destinations" | "workflows" | "incident_artifact_types" | "automatic_tasks" => {
            "programmatic_name"
        }
        "functions" => "name",
        "actions" => "name",
        "types" => "type_name",
        _ => "export_key",
    }
}

/// How messages name an object of `kind`.
pub fn label(kind: &str) -> &'static str {
    match kind {
        "message_destinations" => "Message destination",
        "functions" => "Function",
        "fields" => "Field",
        "actions" => "Rule",
        "workflows" => "Workflow",
        "incident_artifact_types" => "Artifact type",
        "types" => "Data table",
        "scripts" => "Script",
        "phases" => "Phase",
        "automatic_tasks" => "Task",
        "incident_types" => "Incident type",
        "playbooks" => "Playbook",
        "layouts" => "Layout",
        "roles" => "Role",
        "apps" => "App",
        "tags" => "Tag",
        "workspaces" => "Workspace",
        "inbound_destinations" => "Inbound destination",
        "overrides" => "Override",
        _ => "Object",
    }
}

fn uuid_of(obj: &Value) -> Option<&str> {
    obj.get("uuid").and_then(Value::as_str)
}

/// Objects of `kind` that exist on the platform: (key, uuid, JSON as stored by an import).
fn platform_objects<'a>(
    st: &'a PlatformState,
    kind: &str,
) -> Vec<(String, Option<String>, Option<&'a Value>)> {
    let stored = |key: &str| st.store.get(kind, key).map(|o| &o.json);
    match kind {
        "message_destinations" => st
            .destinations
            .values()
            .map(|d| {
                (
                    d.programmatic_name.clone(),
                    Some(d.uuid.clone()),
                    stored(&d.programmatic_name),
                )
            })
            .collect(),
        "functions" => st
            .functions
            .values()
            .map(|f| (f.name.clone(), Some(f.uuid.clone()), stored(&f.name)))
            .collect(),
        "actions" => st
            .rules
            .values()
            .map(|r| (r.name.clone(), Some(r.uuid.clone()), stored(&r.name)))
            .collect(),
        _ => st
            .store
            .list(kind)
            .iter()
            .map(|o| {
                (
                    o.key.clone(),
                    uuid_of(&o.json).map(str::to_string),
                    Some(&o.json),
                )
            })
            .collect(),
    }
}

const INPUT_TYPES: &[&str] = &[
    "text",
    "textarea",
    "number",
    "boolean",
    "select",
    "multiselect",
    "datepicker",
    "datetimepicker",
];

const CONDITION_METHODS: &[&str] = &[
    "equals",
    "not_equals",
    "contains",
    "not_contains",
    "changed",
    "changed_to",
    "object_added",
    "object_removed",
    "has_a_value",
    "not_has_a_value",
    "gt",
    "lt",
    "gte",
    "lte",
    "in",
    "not_in",
    "due_within",
    "overdue_by",
];

const OBJECT_TYPES: &[&str] = &[
    "incident",
    "task",
    "note",
    "milestone",
    "artifact",
    "attachment",
    "datatable",
    "email",
];

fn valid_programmatic_name(s: &str) -> bool {
    s.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// What an import would do to one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    Create,
    Update,
    Unchanged,
}

/// The objects an import references, from the import and from the platform.
struct Known {
    destinations: HashSet<String>,
    workflows: HashSet<String>,
    /// function uuid -> name
    functions: HashMap<String, String>,
    /// field uuid -> field definition
    fields: HashMap<String, Value>,
}

fn items<'a>(import: &'a Map<String, Value>, kind: &str) -> &'a [Value] {
    import
        .get(kind)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

fn known(st: &PlatformState, import: &Map<String, Value>) -> Known {
    let mut k = Known {
        // A rule names its destinations by display name (as IBM's exports and resilient-sdk
        // do); a programmatic name is accepted too.
        destinations: st
            .destinations
            .values()
            .flat_map(|d| [d.programmatic_name.clone(), d.name.clone()])
            .collect(),
        workflows: st
            .store
            .list("workflows")
            .iter()
            .map(|o| o.key.clone())
            .collect(),
        functions: st
            .functions
            .values()
            .map(|f| (f.uuid.clone(), f.name.clone()))
            .collect(),
        fields: st
            .store
            .list("fields")
            .iter()
            .filter_map(|o| uuid_of(&o.json).map(|u| (u.to_string(), o.json.clone())))
            .collect(),
    };
    for d in items(import, "message_destinations") {
        if let Some(n) = object_key("message_destinations", d) {
            k.destinations.insert(n);
        }
        if let Some(n) = d.get("name").and_then(Value::as_str) {
            k.destinations.insert(n.to_string());
        }
    }
    for w in items(import, "workflows") {
        if let Some(n) = object_key("workflows", w) {
            k.workflows.insert(n);
        }
    }
    for f in items(import, "functions") {
        if let (Some(u), Some(n)) = (uuid_of(f), f.get("name").and_then(Value::as_str)) {
            k.functions.insert(u.to_string(), n.to_string());
        }
    }
    for f in items(import, "fields") {
        if let Some(u) = uuid_of(f) {
            k.fields.insert(u.to_string(), f.clone());
        }
    }
    k
}

/// Validates an import against itself and the platform. Returns the messages (ERRORs mean
/// rejection) and, for each object, what accepting it would do.
pub fn validate(st: &PlatformState, import: &Value) -> Messages {
    let mut m = Messages::default();
    let Some(obj) = import.as_object() else {
        m.push(Level::Error, "The import is not a JSON object");
        return m;
    };
    match obj.get("export_format_version") {
        Some(v) if v.as_i64() == Some(2) => {}
        Some(v) => m.push(
            Level::Error,
            format!("Unsupported export_format_version {v}: this platform imports version 2"),
        ),
        None => m.push(
            Level::Error,
            "The import has no export_format_version (expected 2)",
        ),
    }
    for kind in LIST_KEYS {
        match obj.get(*kind) {
            None | Some(Value::Null) | Some(Value::Array(_)) => {}
            Some(_) => m.push(Level::Error, format!("'{kind}' must be a list")),
        }
    }
    if m.has_errors() {
        return m;
    }
    let k = known(st, obj);
    let mut changes = [0usize; 3];
    for kind in APPLY_ORDER {
        let mut seen = HashSet::new();
        let existing = platform_objects(st, kind);
        for (i, item) in items(obj, kind).iter().enumerate() {
            let lbl = label(kind);
            if !item.is_object() {
                m.push(
                    Level::Error,
                    format!("{lbl} #{} in '{kind}' is not an object", i + 1),
                );
                continue;
            }
            let Some(key) = object_key(kind, item) else {
                m.push(
                    Level::Error,
                    format!("{lbl} #{} in '{kind}' has no {}", i + 1, key_field(kind)),
                );
                continue;
            };
            let name = format!("{lbl} '{key}'");
            if !seen.insert(key.clone()) {
                m.push(
                    Level::Error,
                    format!("{name} appears more than once in the import"),
                );
                continue;
            }
            check_object(kind, &name, item, &k, &mut m);
            // Conflicts with what the platform has.
            let uuid = uuid_of(item);
            let same_key = existing.iter().find(|(ek, _, _)| *ek == key);
            if let Some(u) = uuid
                && let Some((other, _, _)) = existing
                    .iter()
                    .find(|(ek, eu, _)| *ek != key && eu.as_deref() == Some(u))
            {
                m.push(
                    Level::Error,
                    format!(
                        "{name} has uuid {u}, which the platform already uses for {} '{other}'",
                        lbl.to_lowercase()
                    ),
                );
                continue;
            }
            let change = match same_key {
                None => {
                    m.push(Level::Info, format!("{name} will be created"));
                    Change::Create
                }
                Some((_, eu, stored)) => {
                    if let (Some(u), Some(eu)) = (uuid, eu.as_deref())
                        && u != eu
                    {
                        m.push(
                            Level::Warn,
                            format!(
                                "{name} already exists with uuid {eu}; it will be replaced by the imported one with uuid {u}"
                            ),
                        );
                    }
                    if *stored == Some(item) {
                        m.push(Level::Info, format!("{name} exists and is unchanged"));
                        Change::Unchanged
                    } else {
                        m.push(
                            Level::Info,
                            format!("{name} already exists and will be replaced"),
                        );
                        Change::Update
                    }
                }
            };
            changes[change as usize] += 1;
        }
    }
    if !m.has_errors() {
        m.push(
            Level::Info,
            format!(
                "Import summary: {} to create, {} to replace, {} unchanged",
                changes[0], changes[1], changes[2]
            ),
        );
    }
    m
}

fn check_object(kind: &str, name: &str, item: &Value, k: &Known, m: &mut Messages) {
    let s = |key: &str| item.get(key).and_then(Value::as_str);
    match kind {
        "message_destinations" => {
            let pn = s("programmatic_name").unwrap_or_default();
            if !valid_programmatic_name(pn) {
                m.push(
                    Level::Error,
                    format!("{name}: the programmatic name must start with a letter and contain only letters, digits and '_'"),
                );
            }
            if s("name").is_none_or(str::is_empty) {
                m.push(Level::Error, format!("{name} has no name"));
            }
            if let Some(t) = item.get("destination_type")
                && !matches!(t.as_i64(), Some(0 | 1))
            {
                m.push(
                    Level::Error,
                    format!("{name}: destination_type must be 0 (queue) or 1 (topic)"),
                );
            }
        }
        "fields" => {
            if s("name").is_none_or(str::is_empty) {
                m.push(Level::Error, format!("{name} has no name"));
            }
            if item.get("type_id").and_then(Value::as_i64).is_none() {
                m.push(Level::Error, format!("{name} has no integer type_id"));
            }
            match s("input_type") {
                Some(t) if INPUT_TYPES.contains(&t) => {}
                Some(t) => m.push(
                    Level::Warn,
                    format!("{name} has input type '{t}', which this platform does not simulate"),
                ),
                None => m.push(Level::Error, format!("{name} has no input_type")),
            }
            if uuid_of(item).is_none() {
                m.push(Level::Error, format!("{name} has no uuid"));
            }
        }
        "functions" => {
            if s("name").is_none_or(|n| !valid_programmatic_name(n)) {
                m.push(
                    Level::Error,
                    format!("{name}: the name must start with a letter and contain only letters, digits and '_'"),
                );
            }
            if uuid_of(item).is_none() {
                m.push(Level::Error, format!("{name} has no uuid"));
            }
            match s("destination_handle") {
                Some(d) if k.destinations.contains(d) => {}
                Some(d) => m.push(
                    Level::Error,
                    format!("{name}: message destination '{d}' does not exist in the import or on the platform"),
                ),
                None => m.push(
                    Level::Error,
                    format!("{name} has no destination_handle (a message destination's programmatic name)"),
                ),
            }
            for vi in item
                .get("view_items")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default()
            {
                if vi.get("element").and_then(Value::as_str) == Some("field_uuid") {
                    let u = vi
                        .get("content")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    if !k.fields.contains_key(u) {
                        m.push(
                            Level::Error,
                            format!("{name}: input field uuid {u} does not exist in the import or on the platform"),
                        );
                    }
                }
            }
        }
        "actions" => {
            match item.get("type").and_then(Value::as_i64) {
                Some(0 | 1) => {}
                _ => m.push(
                    Level::Error,
                    format!("{name}: type must be 0 (automatic) or 1 (manual)"),
                ),
            }
            match s("object_type") {
                Some(t) if OBJECT_TYPES.contains(&t) => {}
                other => m.push(
                    Level::Error,
                    format!("{name}: unknown object_type {other:?}"),
                ),
            }
            for w in string_list(item, "workflows") {
                if !k.workflows.contains(&w) {
                    m.push(
                        Level::Error,
                        format!(
                            "{name}: workflow '{w}' does not exist in the import or on the platform"
                        ),
                    );
                }
            }
            for d in string_list(item, "message_destinations") {
                if !k.destinations.contains(&d) {
                    m.push(
                        Level::Error,
                        format!("{name}: message destination '{d}' does not exist in the import or on the platform"),
                    );
                }
            }
            for c in item
                .get("conditions")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default()
            {
                match c.get("method").and_then(Value::as_str) {
                    Some(meth) if CONDITION_METHODS.contains(&meth) => {}
                    other => m.push(
                        Level::Warn,
                        format!("{name}: condition method {other:?} is not simulated; the condition never holds"),
                    ),
                }
            }
        }
        "workflows" => check_workflow(name, item, k, m),
        "types" if !item.get("fields").is_none_or(Value::is_object) => {
            m.push(Level::Error, format!("{name}: 'fields' must be an object"));
        }
        _ => {}
    }
}

/// Strings of a list field (non-strings are skipped).
pub fn string_list(item: &Value, key: &str) -> Vec<String> {
    item.get(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn check_workflow(name: &str, item: &Value, k: &Known, m: &mut Messages) {
    let Some(xml) = item
        .get("content")
        .and_then(|c| c.get("xml"))
        .and_then(Value::as_str)
    else {
        m.push(Level::Error, format!("{name} has no content.xml"));
        return;
    };
    let steps = match crate::workflow::function_steps(xml) {
        Ok(s) => s,
        Err(e) => {
            m.push(Level::Error, format!("{name}: {e}"));
            return;
        }
    };
    for step in steps {
        if !k.functions.contains_key(&step.function_uuid) {
            m.push(
                Level::Error,
                format!(
                    "{name}: function uuid {} does not exist in the import or on the platform",
                    step.function_uuid
                ),
            );
        }
        for (field_uuid, spec) in &step.inputs {
            let Some(field) = k.fields.get(field_uuid) else {
                m.push(
                    Level::Error,
                    format!("{name}: input field uuid {field_uuid} does not exist in the import or on the platform"),
                );
                continue;
            };
            let fname = field.get("name").and_then(Value::as_str).unwrap_or("?");
            if let Err(e) = crate::workflow::static_value(field, spec) {
                m.push(Level::Error, format!("{name}: input '{fname}': {e}"));
            }
        }
    }
}

/// Applies a validated import; returns the INFO messages saying what was done.
pub fn apply(st: &mut PlatformState, import: &Value) -> Messages {
    let mut m = Messages::default();
    let Some(obj) = import.as_object() else {
        return m;
    };
    let mut counts = [0usize; 3];
    for kind in APPLY_ORDER {
        for item in items(obj, kind) {
            let Some(key) = object_key(kind, item) else {
                continue;
            };
            let before = platform_objects(st, kind)
                .into_iter()
                .find(|(k, _, _)| *k == key)
                .map(|(_, _, stored)| stored == Some(item));
            let change = match before {
                None => Change::Create,
                Some(true) => Change::Unchanged,
                Some(false) => Change::Update,
            };
            counts[change as usize] += 1;
            let id = match *kind {
                "message_destinations" => apply_destination(st, &key, item),
                "functions" => apply_function(st, item),
                "actions" => apply_rule(st, &key, item),
                _ => st
                    .store
                    .get(kind, &key)
                    .map(|o| o.id)
                    .unwrap_or_else(|| st.next_id()),
            };
            st.store.upsert(kind, &key, id, item.clone());
        }
    }
    m.push(
        Level::Info,
        format!(
            "Import applied: {} created, {} replaced, {} unchanged",
            counts[0], counts[1], counts[2]
        ),
    );
    m
}

fn apply_destination(st: &mut PlatformState, key: &str, item: &Value) -> i64 {
    let id = st.ensure_destination(key);
    if let Some(d) = st.destinations.get_mut(&id) {
        if let Some(n) = item.get("name").and_then(Value::as_str) {
            d.name = n.to_string();
        }
        if let Some(t) = item.get("destination_type").and_then(Value::as_i64) {
            d.destination_type = t;
        }
        if let Some(a) = item.get("expect_ack").and_then(Value::as_bool) {
            d.expect_ack = a;
        }
        if let Some(u) = uuid_of(item) {
            d.uuid = u.to_string();
        }
        if let Some(k) = item.get("export_key") {
            d.extra.insert("export_key".into(), k.clone());
        }
    }
    id
}

fn apply_function(st: &mut PlatformState, item: &Value) -> i64 {
    let s = |k: &str| item.get(k).and_then(Value::as_str).unwrap_or_default();
    let name = s("name").to_string();
    let id = st
        .functions
        .get(&name)
        .map(|f| f.id)
        .unwrap_or_else(|| st.next_id());
    let display = match s("display_name") {
        "" => name.clone(),
        d => d.to_string(),
    };
    st.functions.insert(
        name.clone(),
        FunctionDef {
            id,
            name,
            display_name: display,
            uuid: s("uuid").to_string(),
            destination: s("destination_handle").to_string(),
        },
    );
    id
}

fn apply_rule(st: &mut PlatformState, key: &str, item: &Value) -> i64 {
    let id = st
        .rule_by_name(key)
        .map(|r| r.id)
        .unwrap_or_else(|| st.next_id());
    let rule = Rule {
        id,
        name: key.to_string(),
        destinations: string_list(item, "message_destinations")
            .into_iter()
            .map(|d| st.destination_programmatic_name(&d))
            .collect(),
        uuid: uuid_of(item).unwrap_or_default().to_string(),
        workflows: string_list(item, "workflows"),
        manual: item.get("type").and_then(Value::as_i64) == Some(1),
        object_type: item
            .get("object_type")
            .and_then(Value::as_str)
            .unwrap_or("incident")
            .to_string(),
        conditions: item
            .get("conditions")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default(),
        logic_any: item.get("logic_type").and_then(Value::as_str) == Some("any"),
        enabled: item.get("enabled").and_then(Value::as_bool).unwrap_or(true),
    };
    st.rules.insert(id, rule);
    id
}

/// The platform's export: every §6.3 top-level key; object lists hold the imported objects
/// verbatim, then the objects added through the Rust API (destinations, functions, rules).
pub fn export(st: &PlatformState) -> Value {
    let mut lists: BTreeMap<&str, Vec<Value>> = LIST_KEYS
        .iter()
        .map(|k| {
            (
                *k,
                st.store.list(k).iter().map(|o| o.json.clone()).collect(),
            )
        })
        .collect();
    let extra_dests = st
        .destinations
        .values()
        .filter(|d| {
            st.store
                .get("message_destinations", &d.programmatic_name)
                .is_none()
        })
        .map(|d| {
            json!({
                "name": d.name, "programmatic_name": d.programmatic_name,
                "destination_type": d.destination_type, "expect_ack": d.expect_ack,
                "users": [], "api_keys": [], "export_key": d.programmatic_name,
                "uuid": d.uuid, "tags": [],
            })
        });
    if let Some(l) = lists.get_mut("message_destinations") {
        l.extend(extra_dests);
    }
    let extra_functions: Vec<Value> = st
        .functions
        .values()
        .filter(|f| st.store.get("functions", &f.name).is_none())
        .map(|f| st.function_json(f, true))
        .collect();
    if let Some(l) = lists.get_mut("functions") {
        l.extend(extra_functions);
    }
    let extra_rules: Vec<Value> = st
        .rules
        .values()
        .filter(|r| st.store.get("actions", &r.name).is_none())
        .map(|r| {
            let mut j = st.rule_json(r, true);
            j["object_type"] = json!(r.object_type);
            j
        })
        .collect();
    if let Some(l) = lists.get_mut("actions") {
        l.extend(extra_rules);
    }
    let mut out = Map::new();
    let mut put = |k: &str, v: Value| {
        out.insert(k.to_string(), v);
    };
    put("action_order", json!([]));
    for (k, v) in lists {
        put(k, Value::Array(v));
    }
    put("export_date", json!(now_ms() as i64));
    put("export_format_version", json!(2));
    put("export_type", Value::Null);
    for k in [
        "geos",
        "groups",
        "inbound_mailboxes",
        "industries",
        "locale",
        "notifications",
        "regulators",
        "timeframes",
    ] {
        put(k, Value::Null);
    }
    put("id", json!(1));
    put(
        "server_version",
        json!({"major": 51, "minor": 0, "build_number": 0, "version": "51.0.0.0"}),
    );
    put("task_order", json!([]));
    // Keys in alphabetical order, like the platform's export.
    let mut sorted: Vec<(String, Value)> = out.into_iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    Value::Object(sorted.into_iter().collect())
}

/// Records a posted import: validates it (or rejects it when a rejection was injected) and
/// stores its DTO. Returns the DTO.
pub fn post(st: &mut PlatformState, payload: Value) -> Value {
    let id = st.next_import_id();
    let messages = match st.reject_next_import.take() {
        Some(text) => {
            let mut m = Messages::default();
            m.push(Level::Error, text);
            m
        }
        None => validate(st, &payload),
    };
    let status = if messages.has_errors() {
        "REJECTED"
    } else {
        "PENDING"
    };
    let dto = json!({
        "id": id,
        "status": status,
        "create_date": now_ms() as i64,
        "messages": messages.to_json(),
    });
    st.imports.push(ImportRecord {
        dto: dto.clone(),
        payload,
    });
    dto
}

/// Why a `PUT /configurations/imports/{id}` was refused.
#[derive(Debug, Clone, PartialEq)]
pub enum DecideError {
    /// No import with this id (404).
    NotFound(String),
    /// The body is not a DTO with status ACCEPTED or REJECTED (400).
    BadRequest(String),
    /// The import was already decided, or cannot be applied any more (409).
    Conflict(String),
}

/// Accepts or rejects a pending import (`PUT /configurations/imports/{id}`).
pub fn decide(st: &mut PlatformState, id: i64, body: &Value) -> Result<Value, DecideError> {
    let idx = st
        .imports
        .iter()
        .position(|r| r.dto["id"] == id)
        .ok_or_else(|| DecideError::NotFound(format!("Configuration import {id} not found")))?;
    let status = body.get("status").and_then(Value::as_str).ok_or_else(|| {
        DecideError::BadRequest("the body must be the import DTO with a status".into())
    })?;
    if !matches!(status, "ACCEPTED" | "REJECTED") {
        return Err(DecideError::BadRequest(format!(
            "status must be ACCEPTED or REJECTED (upper case), not {status:?}"
        )));
    }
    let current = st.imports[idx].dto["status"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    if current != "PENDING" {
        return Err(DecideError::Conflict(format!(
            "Configuration import {id} is already {current}; only a PENDING import can be accepted or rejected"
        )));
    }
    let mut messages: Vec<Value> = st.imports[idx].dto["messages"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if status == "ACCEPTED" {
        let payload = st.imports[idx].payload.clone();
        // The platform may have changed since the import was posted.
        let check = validate(st, &payload);
        if check.has_errors() {
            let errors: Vec<String> = check
                .0
                .iter()
                .filter(|(l, _)| *l == Level::Error)
                .map(|(_, t)| t.clone())
                .collect();
            return Err(DecideError::Conflict(format!(
                "Configuration import {id} can no longer be applied: {}",
                errors.join("; ")
            )));
        }
        let applied = apply(st, &payload);
        if let Value::Array(a) = applied.to_json() {
            messages.extend(a);
        }
    } else {
        messages.push(json!({"type": "INFO", "text": "Import rejected: nothing was changed"}));
    }
    let dto = &mut st.imports[idx].dto;
    dto["status"] = json!(status);
    dto["messages"] = Value::Array(messages);
    Ok(dto.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_platform() {
        assert_eq!(
            object_key("functions", &json!({"name": "f", "export_key": "f"})).as_deref(),
            Some("f")
        );
        assert_eq!(
            object_key("fields", &json!({"name": "x", "type_id": 11})).as_deref(),
            Some("__function/x")
        );
        assert_eq!(object_key("actions", &json!({"export_key": "x"})), None);
        assert_eq!(
            object_key("phases", &json!({"name": "Engage"})).as_deref(),
            Some("Engage")
        );
    }

    #[test]
    fn store_replaces_in_place() {
        let mut s = ObjectStore::default();
        s.upsert("functions", "a", 1, json!(1));
        s.upsert("functions", "b", 2, json!(2));
        s.upsert("functions", "a", 1, json!(3));
        let keys: Vec<_> = s.list("functions").iter().map(|o| o.json.clone()).collect();
        assert_eq!(keys, vec![json!(3), json!(2)]);
    }

    #[test]
    fn non_objects_and_bad_versions_are_rejected() {
        let st = PlatformState::default();
        assert!(validate(&st, &json!([])).has_errors());
        let m = validate(&st, &json!({"export_format_version": 1}));
        assert!(m.0[0].1.contains("export_format_version 1"));
        let m = validate(
            &st,
            &json!({"export_format_version": 2, "functions": {"x": 1}}),
        );
        assert!(m.0[0].1.contains("'functions' must be a list"));
        let m = validate(
            &st,
            &json!({"export_format_version": 2, "functions": [1, {"display_name": "x"}]}),
        );
        assert_eq!(m.0.len(), 2, "{m:?}");
    }
}
