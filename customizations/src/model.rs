//! The customization model: the platform objects a function crate declares in
//! `customize/*.yaml` (message destinations, functions and their inputs, custom
//! incident fields, artifact types, data tables, workflows and rules).
//!
//! The types deserialize straight from the YAML schema of `design/CUSTOMIZATIONS.md`
//! (unknown keys are errors). Every top-level object, and every field nested in one,
//! remembers the file it was read from in its `file` member, so that messages can
//! name it; `file` is never read from YAML.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer};

/// One YAML document: its file name (used in messages only) and its text.
#[derive(Debug, Clone, Copy)]
pub struct Source<'a> {
    /// File name shown in messages, e.g. `fn_hello/customize/fn_hello.yaml`.
    pub file: &'a str,
    /// The YAML text.
    pub text: &'a str,
}

/// Every customization object declared by one or more YAML files.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Customizations {
    /// Message destinations (queues) that receive function and rule messages.
    pub message_destinations: Vec<MessageDestination>,
    /// Functions, each with its input fields.
    pub functions: Vec<FunctionDef>,
    /// Custom incident fields (`incident.properties.<name>`).
    pub incident_fields: Vec<FieldDef>,
    /// Custom artifact types.
    pub artifact_types: Vec<ArtifactType>,
    /// Data tables.
    pub data_tables: Vec<DataTable>,
    /// Rules (menu items and automatic rules).
    pub rules: Vec<Rule>,
    /// Workflows, each calling one function.
    pub workflows: Vec<Workflow>,
}

/// A message destination (a queue `actions.<org>.<name>`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessageDestination {
    /// Programmatic name.
    pub name: String,
    /// Display name; defaults to `name`.
    #[serde(default)]
    pub display_name: Option<String>,
    /// The file this object was read from (not part of the YAML).
    #[serde(skip)]
    pub file: String,
}

impl MessageDestination {
    /// The display name, or the programmatic name when none is given.
    pub fn label(&self) -> &str {
        self.display_name.as_deref().unwrap_or(&self.name)
    }
}

/// The input type of a field (function input, incident field, activity field, column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum InputType {
    /// One line of text.
    Text,
    /// Multi-line text (sent as `{"format": ..., "content": ...}`).
    Textarea,
    /// A number.
    Number,
    /// `true` / `false`.
    Boolean,
    /// One of `values`.
    Select,
    /// Any subset of `values`.
    Multiselect,
    /// A date (milliseconds since the epoch).
    Datepicker,
    /// A date and time (milliseconds since the epoch).
    Datetimepicker,
}

impl InputType {
    /// Every input type, in schema order.
    pub const ALL: [InputType; 8] = [
        InputType::Text,
        InputType::Textarea,
        InputType::Number,
        InputType::Boolean,
        InputType::Select,
        InputType::Multiselect,
        InputType::Datepicker,
        InputType::Datetimepicker,
    ];

    /// The platform's `input_type` string.
    pub fn as_str(self) -> &'static str {
        match self {
            InputType::Text => "text",
            InputType::Textarea => "textarea",
            InputType::Number => "number",
            InputType::Boolean => "boolean",
            InputType::Select => "select",
            InputType::Multiselect => "multiselect",
            InputType::Datepicker => "datepicker",
            InputType::Datetimepicker => "datetimepicker",
        }
    }

    /// Whether the field takes its values from a list (`values` is required).
    pub fn has_values(self) -> bool {
        matches!(self, InputType::Select | InputType::Multiselect)
    }
}

impl std::str::FromStr for InputType {
    type Err = String;

    /// Parses the platform's `input_type` string.
    fn from_str(s: &str) -> Result<Self, String> {
        InputType::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| {
                let all: Vec<&str> = InputType::ALL.iter().map(|t| t.as_str()).collect();
                format!(
                    "unknown input type '{s}' (expected one of: {})",
                    all.join(", ")
                )
            })
    }
}

impl<'de> Deserialize<'de> for InputType {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for InputType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A field: a function input, a custom incident field, a rule activity field or a
/// data table column.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldDef {
    /// Programmatic name.
    pub name: String,
    /// Input type (YAML key `type`).
    #[serde(rename = "type")]
    pub input_type: InputType,
    /// Label shown in the UI; defaults to `name`.
    #[serde(default)]
    pub label: Option<String>,
    /// Tooltip.
    #[serde(default)]
    pub tooltip: Option<String>,
    /// Placeholder.
    #[serde(default)]
    pub placeholder: Option<String>,
    /// Whether a value is always required (YAML: `true`, `false` or `always`).
    #[serde(default, deserialize_with = "deserialize_required")]
    pub required: bool,
    /// Value labels of a select / multiselect field.
    #[serde(default)]
    pub values: Vec<String>,
    /// The file this field was read from (not part of the YAML).
    #[serde(skip)]
    pub file: String,
}

impl FieldDef {
    /// The label, or the programmatic name when none is given.
    pub fn text(&self) -> &str {
        self.label.as_deref().unwrap_or(&self.name)
    }

    /// Whether two declarations can be the same platform field: the platform keeps one field
    /// per name, so what values it takes must agree (type and select values). Labels, tooltips,
    /// placeholders and `required` may differ between crates (a common `incident_id` input,
    /// say); the first declaration, in component order, is the one exported.
    pub fn same_definition(&self, other: &FieldDef) -> bool {
        self.name == other.name
            && self.input_type == other.input_type
            && self.values == other.values
    }
}

fn deserialize_required<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    struct RequiredVisitor;
    impl serde::de::Visitor<'_> for RequiredVisitor {
        type Value = bool;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("true, false or \"always\"")
        }
        fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<bool, E> {
            Ok(v)
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<bool, E> {
            match v {
                "always" | "true" => Ok(true),
                "false" | "never" => Ok(false),
                other => Err(E::invalid_value(serde::de::Unexpected::Str(other), &self)),
            }
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<bool, E> {
            Ok(false)
        }
    }
    deserializer.deserialize_any(RequiredVisitor)
}

/// A function: a named call delivered to a message destination.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FunctionDef {
    /// Programmatic name (the handler name).
    pub name: String,
    /// Display name; defaults to `name`.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Description (plain text).
    #[serde(default)]
    pub description: Option<String>,
    /// Programmatic name of the message destination the function is sent to.
    pub destination: String,
    /// Input fields, in display order.
    #[serde(default)]
    pub inputs: Vec<FieldDef>,
    /// The file this object was read from (not part of the YAML).
    #[serde(skip)]
    pub file: String,
}

impl FunctionDef {
    /// The display name, or the programmatic name when none is given.
    pub fn label(&self) -> &str {
        self.display_name.as_deref().unwrap_or(&self.name)
    }

    /// The input field called `name`.
    pub fn input(&self, name: &str) -> Option<&FieldDef> {
        self.inputs.iter().find(|f| f.name == name)
    }
}

/// A custom artifact type.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArtifactType {
    /// Programmatic name.
    pub name: String,
    /// Display name; defaults to `name`.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Description.
    #[serde(default)]
    pub description: Option<String>,
    /// The file this object was read from (not part of the YAML).
    #[serde(skip)]
    pub file: String,
}

impl ArtifactType {
    /// The display name, or the programmatic name when none is given.
    pub fn label(&self) -> &str {
        self.display_name.as_deref().unwrap_or(&self.name)
    }
}

/// A data table shown on incidents.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataTable {
    /// Programmatic name (`type_name`).
    pub name: String,
    /// Display name; defaults to `name`.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Columns, in display order.
    #[serde(default)]
    pub columns: Vec<FieldDef>,
    /// The file this object was read from (not part of the YAML).
    #[serde(skip)]
    pub file: String,
}

impl DataTable {
    /// The display name, or the programmatic name when none is given.
    pub fn label(&self) -> &str {
        self.display_name.as_deref().unwrap_or(&self.name)
    }
}

/// The kind of object a workflow or rule runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ObjectType {
    /// An incident.
    Incident,
    /// A note.
    Note,
    /// An artifact.
    Artifact,
    /// A task.
    Task,
    /// An attachment.
    Attachment,
}

impl ObjectType {
    /// The platform's object type name (`incident`, `note`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectType::Incident => "incident",
            ObjectType::Note => "note",
            ObjectType::Artifact => "artifact",
            ObjectType::Task => "task",
            ObjectType::Attachment => "attachment",
        }
    }

    /// The platform's numeric type id (0 incident, 1 task, 2 note, 4 artifact, 5 attachment).
    pub fn type_id(self) -> u32 {
        match self {
            ObjectType::Incident => 0,
            ObjectType::Task => 1,
            ObjectType::Note => 2,
            ObjectType::Artifact => 4,
            ObjectType::Attachment => 5,
        }
    }
}

impl fmt::Display for ObjectType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A workflow: one function step with its inputs, and post-processing.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Workflow {
    /// Programmatic name.
    pub name: String,
    /// Display name; defaults to `name`.
    #[serde(default)]
    pub display_name: Option<String>,
    /// The object the workflow runs on.
    pub object_type: ObjectType,
    /// Description.
    #[serde(default)]
    pub description: Option<String>,
    /// Programmatic name of the function called by the workflow's one step.
    pub function: String,
    /// Name of the function result in later scripts; defaults to `<function>_result`.
    #[serde(default)]
    pub result_name: Option<String>,
    /// Function inputs: input name to a static value or a path over the triggering objects.
    #[serde(default)]
    pub inputs: BTreeMap<String, InputValue>,
    /// Post-processing steps, in order.
    #[serde(default)]
    pub post_processing: Vec<PostStep>,
    /// The file this object was read from (not part of the YAML).
    #[serde(skip)]
    pub file: String,
}

impl Workflow {
    /// The display name, or the programmatic name when none is given.
    pub fn label(&self) -> &str {
        self.display_name.as_deref().unwrap_or(&self.name)
    }

    /// The result name: `result_name`, or `<function>_result`.
    pub fn result_name(&self) -> String {
        match &self.result_name {
            Some(name) => name.clone(),
            None => format!("{}_result", self.function),
        }
    }
}

/// The value of one workflow input.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub enum InputValue {
    /// `{value: ...}`: a static value (select: a value label; multiselect: a list of labels).
    #[serde(rename = "value")]
    Static(serde_json::Value),
    /// `{from: incident.name}`: a dotted path over the triggering objects.
    #[serde(rename = "from")]
    From(String),
    /// `{json: {...}}`: a JSON text built from a template over the triggering objects. Each
    /// `{from: path}` in the template becomes the path's value as a JSON string (its Python
    /// `str()`; empty when the value is missing or false), `{from: path, join: ", "}` a list's
    /// items joined; everything else stays as written.
    /// Exported as one line of the pre-processing script, so a person can edit the fields there.
    #[serde(rename = "json")]
    Json(serde_json::Value),
}

impl InputValue {
    /// The paths the value reads, in order.
    pub fn paths(&self) -> Vec<String> {
        fn walk(v: &serde_json::Value, out: &mut Vec<String>) {
            match v {
                serde_json::Value::Object(m) => match template_leaf(m) {
                    Some((p, _)) => out.push(p.to_owned()),
                    None => m.values().for_each(|v| walk(v, out)),
                },
                serde_json::Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
                _ => {}
            }
        }
        match self {
            InputValue::Static(_) => Vec::new(),
            InputValue::From(path) => vec![path.clone()],
            InputValue::Json(template) => {
                let mut out = Vec::new();
                walk(template, &mut out);
                out
            }
        }
    }
}

/// The path of a `{from: path}` object of a `json` template, and the separator of a
/// `{from: path, join: ", "}` one (a list's items joined into one string).
pub fn template_leaf(
    m: &serde_json::Map<String, serde_json::Value>,
) -> Option<(&str, Option<&str>)> {
    use serde_json::Value;
    match (m.len(), m.get("from"), m.get("join")) {
        (1, Some(Value::String(p)), None) => Some((p, None)),
        (2, Some(Value::String(p)), Some(Value::String(sep))) => Some((p, Some(sep))),
        _ => None,
    }
}

/// One post-processing step.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum PostStep {
    /// Set an incident field (custom or built-in) from a path.
    SetIncidentField {
        /// The incident field.
        field: String,
        /// A path, usually under `results`.
        from: String,
    },
    /// Add a note to the incident; `{path}` placeholders, `{{`/`}}` for braces.
    AddNote {
        /// The note template.
        text: String,
    },
}

/// Whether a rule is a menu item (manual) or runs on its own (automatic).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleKind {
    /// A menu item, started by a user.
    Manual,
    /// Runs when its conditions match a created or changed object.
    Automatic,
}

/// How a rule combines its conditions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Logic {
    /// Every condition must hold.
    #[default]
    All,
    /// One condition is enough.
    Any,
}

impl Logic {
    /// The platform's `logic_type`.
    pub fn as_str(self) -> &'static str {
        match self {
            Logic::All => "all",
            Logic::Any => "any",
        }
    }
}

/// A condition method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConditionMethod {
    /// The field equals the value.
    Equals,
    /// The field does not equal the value.
    NotEquals,
    /// The field contains the value.
    Contains,
    /// The field does not contain the value.
    NotContains,
    /// The field changed.
    Changed,
    /// The field changed to the value.
    ChangedTo,
    /// The object was created.
    ObjectAdded,
    /// The object was deleted.
    ObjectRemoved,
    /// The field has a value.
    HasAValue,
    /// The field has no value.
    NotHasAValue,
    /// The field is greater than the value.
    Gt,
    /// The field is less than the value.
    Lt,
}

impl ConditionMethod {
    /// The platform's method name.
    pub fn as_str(self) -> &'static str {
        match self {
            ConditionMethod::Equals => "equals",
            ConditionMethod::NotEquals => "not_equals",
            ConditionMethod::Contains => "contains",
            ConditionMethod::NotContains => "not_contains",
            ConditionMethod::Changed => "changed",
            ConditionMethod::ChangedTo => "changed_to",
            ConditionMethod::ObjectAdded => "object_added",
            ConditionMethod::ObjectRemoved => "object_removed",
            ConditionMethod::HasAValue => "has_a_value",
            ConditionMethod::NotHasAValue => "not_has_a_value",
            ConditionMethod::Gt => "gt",
            ConditionMethod::Lt => "lt",
        }
    }

    /// Whether the method compares the field with a value.
    pub fn takes_value(self) -> bool {
        matches!(
            self,
            ConditionMethod::Equals
                | ConditionMethod::NotEquals
                | ConditionMethod::Contains
                | ConditionMethod::NotContains
                | ConditionMethod::ChangedTo
                | ConditionMethod::Gt
                | ConditionMethod::Lt
        )
    }

    /// Whether the method is about the object itself (no field).
    pub fn is_object_method(self) -> bool {
        matches!(
            self,
            ConditionMethod::ObjectAdded | ConditionMethod::ObjectRemoved
        )
    }
}

impl fmt::Display for ConditionMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One rule condition.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    /// `<object>.<field>` or `<object>.properties.<custom field>`; absent for
    /// `object_added` / `object_removed`.
    #[serde(default)]
    pub field: Option<String>,
    /// The method.
    pub method: ConditionMethod,
    /// The value compared with, for methods that take one.
    #[serde(default)]
    pub value: Option<serde_json::Value>,
}

/// A rule: a menu item or an automatic rule that starts workflows and/or sends
/// a message to destinations.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Display name (rules are keyed by it).
    pub name: String,
    /// Manual or automatic (YAML key `type`).
    #[serde(rename = "type")]
    pub kind: RuleKind,
    /// The object the rule runs on.
    pub object_type: ObjectType,
    /// Conditions.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// How conditions combine.
    #[serde(default)]
    pub logic: Logic,
    /// Programmatic names of the workflows started.
    #[serde(default)]
    pub workflows: Vec<String>,
    /// Programmatic names of the message destinations sent a rule message.
    #[serde(default)]
    pub destinations: Vec<String>,
    /// Activity fields asked from the user (manual rules).
    #[serde(default)]
    pub fields: Vec<FieldDef>,
    /// The file this object was read from (not part of the YAML).
    #[serde(skip)]
    pub file: String,
}

impl Customizations {
    /// The function called `name`.
    pub fn function(&self, name: &str) -> Option<&FunctionDef> {
        self.functions.iter().find(|f| f.name == name)
    }

    /// The message destination called `name` (programmatic name).
    pub fn message_destination(&self, name: &str) -> Option<&MessageDestination> {
        self.message_destinations.iter().find(|m| m.name == name)
    }

    /// The workflow called `name` (programmatic name).
    pub fn workflow(&self, name: &str) -> Option<&Workflow> {
        self.workflows.iter().find(|w| w.name == name)
    }

    /// The rule called `name` (display name).
    pub fn rule(&self, name: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.name == name)
    }

    /// The custom incident field called `name`.
    pub fn incident_field(&self, name: &str) -> Option<&FieldDef> {
        self.incident_fields.iter().find(|f| f.name == name)
    }

    /// Renames message destination `from` to `to` wherever it is named (the destination
    /// itself, the functions sent to it, the rules that message it).
    pub fn rename_destination(&mut self, from: &str, to: &str) {
        for m in self
            .message_destinations
            .iter_mut()
            .filter(|m| m.name == from)
        {
            m.name = to.to_string();
        }
        for f in self.functions.iter_mut().filter(|f| f.destination == from) {
            f.destination = to.to_string();
        }
        for d in self
            .rules
            .iter_mut()
            .flat_map(|r| r.destinations.iter_mut())
        {
            if d == from {
                *d = to.to_string();
            }
        }
    }

    /// Whether nothing is declared.
    pub fn is_empty(&self) -> bool {
        self.message_destinations.is_empty()
            && self.functions.is_empty()
            && self.incident_fields.is_empty()
            && self.artifact_types.is_empty()
            && self.data_tables.is_empty()
            && self.rules.is_empty()
            && self.workflows.is_empty()
    }

    /// Record `file` as the origin of every object (and nested field).
    pub(crate) fn set_file(&mut self, file: &str) {
        for m in &mut self.message_destinations {
            m.file = file.to_owned();
        }
        for f in &mut self.functions {
            f.file = file.to_owned();
            for i in &mut f.inputs {
                i.file = file.to_owned();
            }
        }
        for f in &mut self.incident_fields {
            f.file = file.to_owned();
        }
        for a in &mut self.artifact_types {
            a.file = file.to_owned();
        }
        for d in &mut self.data_tables {
            d.file = file.to_owned();
            for c in &mut d.columns {
                c.file = file.to_owned();
            }
        }
        for r in &mut self.rules {
            r.file = file.to_owned();
            for f in &mut r.fields {
                f.file = file.to_owned();
            }
        }
        for w in &mut self.workflows {
            w.file = file.to_owned();
        }
    }
}
