//! Validation: names, references and types, every problem collected.
//!
//! Each problem is one line naming the file and the object, e.g.
//! `fn_hello/customize/fn_hello.yaml: rule "Example: Say hello": workflow 'nope' is not declared`.
//!
//! Checks: programmatic names match `^[a-z][a-z0-9_]*$` and are at most
//! [`MAX_API_NAME_LEN`] characters; display names, labels and rule names are
//! non-empty, at most [`MAX_DISPLAY_NAME_LEN`] characters, without control
//! characters; names are unique per kind; function inputs (and rule activity
//! fields) shared by name across functions (rules) are identical, since the
//! platform holds one field per name; select/multiselect fields have distinct
//! values and other fields none; every reference (function destination, workflow
//! function, rule workflows and destinations) is declared; workflow inputs are
//! inputs of the function, static values match the field type, paths start with
//! a root valid for the object type; post-processing sets declared custom or
//! built-in incident fields; note templates are well formed; a rule's workflows
//! run on the rule's object type and any `rule.properties.<f>` they read is an
//! activity field of the rule; conditions are well formed.

use std::collections::BTreeMap;
use std::fmt::Display;

use serde_json::Value;

use crate::scripts::{Piece, parse_template};
use crate::{
    CustomizationError, Customizations, FieldDef, InputType, InputValue, ObjectType, PostStep,
    Rule, RuleKind, Workflow,
};

/// Longest programmatic name accepted (message destinations, functions, fields,
/// workflows, artifact types, data tables, columns).
pub const MAX_API_NAME_LEN: usize = 50;

/// Longest display name, label, select value or rule name accepted.
pub const MAX_DISPLAY_NAME_LEN: usize = 255;

/// Built-in incident fields that post-processing may set (`incident.<field>`).
pub const BUILTIN_INCIDENT_FIELDS: &[&str] = &[
    "addr",
    "city",
    "confirmed",
    "country",
    "crimestatus_id",
    "description",
    "discovered_date",
    "due_date",
    "employee_involved",
    "end_date",
    "exposure",
    "exposure_dept_id",
    "exposure_individual_name",
    "exposure_type_id",
    "exposure_vendor_id",
    "incident_type_ids",
    "jurisdiction_name",
    "jurisdiction_reg_id",
    "name",
    "negative_pr_likely",
    "nist_attack_vectors",
    "owner_id",
    "phase_id",
    "plan_status",
    "reporter",
    "resolution_id",
    "resolution_summary",
    "severity_code",
    "start_date",
    "state",
    "zip",
];

/// A name declared twice for one kind of object.
pub(crate) struct Duplicate {
    pub kind: &'static str,
    pub name: String,
    pub first_file: String,
    pub second_file: String,
}

/// Every name declared twice, per kind, in declaration order.
pub(crate) fn duplicates(c: &Customizations) -> Vec<Duplicate> {
    let mut out = Vec::new();
    let mut check = |kind: &'static str, items: Vec<(&str, &str)>| {
        let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
        for (name, file) in items {
            match seen.get(name) {
                Some(first) => out.push(Duplicate {
                    kind,
                    name: name.to_owned(),
                    first_file: (*first).to_owned(),
                    second_file: file.to_owned(),
                }),
                None => {
                    seen.insert(name, file);
                }
            }
        }
    };
    check(
        "message destination",
        c.message_destinations
            .iter()
            .map(|m| (m.name.as_str(), m.file.as_str()))
            .collect(),
    );
    check(
        "function",
        c.functions
            .iter()
            .map(|f| (f.name.as_str(), f.file.as_str()))
            .collect(),
    );
    check(
        "incident field",
        c.incident_fields
            .iter()
            .map(|f| (f.name.as_str(), f.file.as_str()))
            .collect(),
    );
    check(
        "artifact type",
        c.artifact_types
            .iter()
            .map(|a| (a.name.as_str(), a.file.as_str()))
            .collect(),
    );
    check(
        "data table",
        c.data_tables
            .iter()
            .map(|d| (d.name.as_str(), d.file.as_str()))
            .collect(),
    );
    check(
        "workflow",
        c.workflows
            .iter()
            .map(|w| (w.name.as_str(), w.file.as_str()))
            .collect(),
    );
    check(
        "rule",
        c.rules
            .iter()
            .map(|r| (r.name.as_str(), r.file.as_str()))
            .collect(),
    );
    out
}

/// Collected problems.
#[derive(Default)]
struct Report {
    problems: Vec<String>,
}

impl Report {
    fn add(&mut self, file: &str, kind: &str, name: &str, message: impl Display) {
        if file.is_empty() {
            self.problems.push(format!("{kind} \"{name}\": {message}"));
        } else {
            self.problems
                .push(format!("{file}: {kind} \"{name}\": {message}"));
        }
    }
}

/// Whether `s` is a programmatic name: `^[a-z][a-z0-9_]*$`.
fn is_api_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some('a'..='z'))
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_'))
}

/// Whether `s` is an identifier: `^[A-Za-z_][A-Za-z0-9_]*$`.
pub(crate) fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some('a'..='z' | 'A'..='Z' | '_'))
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Problem with a programmatic name, if any.
fn api_name_problem(what: &str, name: &str) -> Option<String> {
    if !is_api_name(name) {
        Some(format!(
            "{what} '{name}' is not a valid programmatic name (lower-case letter, then lower-case letters, digits and '_')"
        ))
    } else if name.chars().count() > MAX_API_NAME_LEN {
        Some(format!(
            "{what} '{name}' is longer than {MAX_API_NAME_LEN} characters"
        ))
    } else {
        None
    }
}

/// Problem with a display name, label or rule name, if any.
fn display_problem(what: &str, text: &str) -> Option<String> {
    if text.trim().is_empty() {
        Some(format!("{what} is empty"))
    } else if text.chars().count() > MAX_DISPLAY_NAME_LEN {
        Some(format!(
            "{what} is longer than {MAX_DISPLAY_NAME_LEN} characters"
        ))
    } else if text.chars().any(char::is_control) {
        Some(format!("{what} contains control characters"))
    } else {
        None
    }
}

/// The roots a path may start with in a workflow on `object_type`
/// (`results` in post-processing only).
pub(crate) fn roots(object_type: ObjectType, post_processing: bool) -> Vec<&'static str> {
    let mut roots = vec!["incident"];
    if object_type != ObjectType::Incident {
        roots.push(object_type.as_str());
    }
    roots.push("rule");
    roots.push("workflow");
    if post_processing {
        roots.push("results");
    }
    roots
}

/// Problem with a dotted path, if any.
fn path_problem(path: &str, roots: &[&str]) -> Option<String> {
    let segments: Vec<&str> = path.split('.').collect();
    if let Some(bad) = segments.iter().find(|s| !is_identifier(s)) {
        return Some(format!(
            "path '{path}' is not a dotted path of identifiers (bad segment '{bad}')"
        ));
    }
    let root = segments.first().copied().unwrap_or_default();
    if !roots.contains(&root) {
        return Some(format!(
            "path '{path}' must start with one of: {}",
            roots.join(", ")
        ));
    }
    if segments.len() < 2 {
        return Some(format!("path '{path}' names no field of '{root}'"));
    }
    if root == "rule" && (segments.len() != 3 || segments.get(1) != Some(&"properties")) {
        return Some(format!(
            "path '{path}' must be rule.properties.<activity field>"
        ));
    }
    None
}

/// The `rule.properties.<f>` fields a workflow reads.
fn rule_properties_read(w: &Workflow) -> Vec<String> {
    let mut paths: Vec<String> = Vec::new();
    for value in w.inputs.values() {
        paths.extend(value.paths());
    }
    for step in &w.post_processing {
        match step {
            PostStep::SetIncidentField { from, .. } => paths.push(from.clone()),
            PostStep::AddNote { text } => {
                if let Ok(pieces) = parse_template(text) {
                    for piece in pieces {
                        if let Piece::Path(p) = piece {
                            paths.push(p);
                        }
                    }
                }
            }
        }
    }
    let mut fields: Vec<String> = paths
        .iter()
        .filter_map(|p| {
            let segments: Vec<&str> = p.split('.').collect();
            match segments.as_slice() {
                ["rule", "properties", f] => Some((*f).to_owned()),
                _ => None,
            }
        })
        .collect();
    fields.sort();
    fields.dedup();
    fields
}

/// Problems of one field declaration, each prefixed with `prefix` (e.g. `input "x": `).
fn field_problems(field: &FieldDef, prefix: &str) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(p) = api_name_problem("name", &field.name) {
        out.push(format!("{prefix}{p}"));
    }
    if let Some(label) = &field.label
        && let Some(p) = display_problem("label", label)
    {
        out.push(format!("{prefix}{p}"));
    }
    if field.input_type.has_values() {
        if field.values.is_empty() {
            out.push(format!("{prefix}a {} field needs values", field.input_type));
        }
        let mut seen: Vec<&str> = Vec::new();
        for value in &field.values {
            if let Some(p) = display_problem(&format!("value '{value}'"), value) {
                out.push(format!("{prefix}{p}"));
            }
            if seen.contains(&value.as_str()) {
                out.push(format!("{prefix}value '{value}' is listed twice"));
            }
            seen.push(value);
        }
    } else if !field.values.is_empty() {
        out.push(format!(
            "{prefix}values are only allowed for select and multiselect fields, not {}",
            field.input_type
        ));
    }
    out
}

/// Problem with a static workflow input value for `field`, if any.
fn static_value_problem(field: &FieldDef, value: &Value) -> Option<String> {
    let t = field.input_type;
    let values = || field.values.join(", ");
    let ok = match t {
        InputType::Text | InputType::Textarea => value.is_string(),
        InputType::Number => value.is_number(),
        InputType::Boolean => value.is_boolean(),
        InputType::Datepicker | InputType::Datetimepicker => value.is_i64() || value.is_u64(),
        InputType::Select => {
            return match value.as_str() {
                Some(label) if field.values.iter().any(|v| v == label) => None,
                _ => Some(format!(
                    "static value {value} is not one of the values of the select input ({})",
                    values()
                )),
            };
        }
        InputType::Multiselect => {
            let Some(items) = value.as_array() else {
                return Some(format!(
                    "static value {value} must be a list of values of the multiselect input ({})",
                    values()
                ));
            };
            return items
                .iter()
                .find(|item| {
                    !item
                        .as_str()
                        .is_some_and(|label| field.values.iter().any(|v| v == label))
                })
                .map(|item| {
                    format!(
                        "static value {item} is not one of the values of the multiselect input ({})",
                        values()
                    )
                });
        }
    };
    if ok {
        return None;
    }
    let expected = match t {
        InputType::Text | InputType::Textarea => "a string",
        InputType::Number => "a number",
        InputType::Boolean => "true or false",
        _ => "an integer (milliseconds since the epoch)",
    };
    Some(format!(
        "static value {value} must be {expected} (the input is {t})"
    ))
}

impl Customizations {
    /// Checks names, references and types; collects every problem into
    /// [`CustomizationError::Invalid`] (one line per problem, naming the file
    /// and the object).
    pub fn validate(&self) -> Result<(), CustomizationError> {
        let mut r = Report::default();
        for d in duplicates(self) {
            r.add(
                &d.second_file,
                d.kind,
                &d.name,
                format!("is declared twice (first in {})", d.first_file),
            );
        }
        self.check_message_destinations(&mut r);
        self.check_functions(&mut r);
        self.check_incident_fields(&mut r);
        self.check_artifact_types(&mut r);
        self.check_data_tables(&mut r);
        for w in &self.workflows {
            self.check_workflow(w, &mut r);
        }
        let mut shared_fields: BTreeMap<&str, (&FieldDef, &str)> = BTreeMap::new();
        for rule in &self.rules {
            self.check_rule(rule, &mut shared_fields, &mut r);
        }
        if r.problems.is_empty() {
            Ok(())
        } else {
            Err(CustomizationError::Invalid(r.problems))
        }
    }

    fn check_message_destinations(&self, r: &mut Report) {
        const KIND: &str = "message destination";
        for m in &self.message_destinations {
            if let Some(p) = api_name_problem("name", &m.name) {
                r.add(&m.file, KIND, &m.name, p);
            }
            if let Some(d) = &m.display_name
                && let Some(p) = display_problem("display name", d)
            {
                r.add(&m.file, KIND, &m.name, p);
            }
        }
    }

    fn check_functions(&self, r: &mut Report) {
        const KIND: &str = "function";
        // Function inputs are platform fields shared by name across functions.
        let mut shared: BTreeMap<&str, (&FieldDef, &str)> = BTreeMap::new();
        for f in &self.functions {
            if let Some(p) = api_name_problem("name", &f.name) {
                r.add(&f.file, KIND, &f.name, p);
            }
            if let Some(d) = &f.display_name
                && let Some(p) = display_problem("display name", d)
            {
                r.add(&f.file, KIND, &f.name, p);
            }
            if self.message_destination(&f.destination).is_none() {
                r.add(
                    &f.file,
                    KIND,
                    &f.name,
                    format!("message destination '{}' is not declared", f.destination),
                );
            }
            let mut seen: Vec<&str> = Vec::new();
            for input in &f.inputs {
                let prefix = format!("input \"{}\": ", input.name);
                for p in field_problems(input, &prefix) {
                    r.add(&f.file, KIND, &f.name, p);
                }
                if seen.contains(&input.name.as_str()) {
                    r.add(
                        &f.file,
                        KIND,
                        &f.name,
                        format!("input '{}' is declared twice", input.name),
                    );
                    continue;
                }
                seen.push(&input.name);
                match shared.get(input.name.as_str()) {
                    Some((first, owner)) if !first.same_definition(input) => r.add(
                        &f.file,
                        KIND,
                        &f.name,
                        format!(
                            "input '{}' differs from the input of the same name of function \"{owner}\" ({}); functions share inputs by name, so both must have the same type and values",
                            input.name, first.file
                        ),
                    ),
                    Some(_) => {}
                    None => {
                        shared.insert(&input.name, (input, &f.name));
                    }
                }
            }
        }
    }

    fn check_incident_fields(&self, r: &mut Report) {
        const KIND: &str = "incident field";
        for field in &self.incident_fields {
            for p in field_problems(field, "") {
                r.add(&field.file, KIND, &field.name, p);
            }
            if BUILTIN_INCIDENT_FIELDS.contains(&field.name.as_str()) {
                r.add(
                    &field.file,
                    KIND,
                    &field.name,
                    "is the name of a built-in incident field",
                );
            }
        }
    }

    fn check_artifact_types(&self, r: &mut Report) {
        const KIND: &str = "artifact type";
        for a in &self.artifact_types {
            if let Some(p) = api_name_problem("name", &a.name) {
                r.add(&a.file, KIND, &a.name, p);
            }
            if let Some(d) = &a.display_name
                && let Some(p) = display_problem("display name", d)
            {
                r.add(&a.file, KIND, &a.name, p);
            }
        }
    }

    fn check_data_tables(&self, r: &mut Report) {
        const KIND: &str = "data table";
        for d in &self.data_tables {
            if let Some(p) = api_name_problem("name", &d.name) {
                r.add(&d.file, KIND, &d.name, p);
            }
            if let Some(n) = &d.display_name
                && let Some(p) = display_problem("display name", n)
            {
                r.add(&d.file, KIND, &d.name, p);
            }
            if d.columns.is_empty() {
                r.add(&d.file, KIND, &d.name, "has no columns");
            }
            let mut seen: Vec<&str> = Vec::new();
            for column in &d.columns {
                let prefix = format!("column \"{}\": ", column.name);
                for p in field_problems(column, &prefix) {
                    r.add(&d.file, KIND, &d.name, p);
                }
                if seen.contains(&column.name.as_str()) {
                    r.add(
                        &d.file,
                        KIND,
                        &d.name,
                        format!("column '{}' is declared twice", column.name),
                    );
                }
                seen.push(&column.name);
            }
        }
    }

    fn check_workflow(&self, w: &Workflow, r: &mut Report) {
        const KIND: &str = "workflow";
        if let Some(p) = api_name_problem("name", &w.name) {
            r.add(&w.file, KIND, &w.name, p);
        }
        if let Some(d) = &w.display_name
            && let Some(p) = display_problem("display name", d)
        {
            r.add(&w.file, KIND, &w.name, p);
        }
        if let Some(result) = &w.result_name
            && !is_identifier(result)
        {
            r.add(
                &w.file,
                KIND,
                &w.name,
                format!("result name '{result}' is not an identifier"),
            );
        }
        let function = self.function(&w.function);
        if function.is_none() {
            r.add(
                &w.file,
                KIND,
                &w.name,
                format!("function '{}' is not declared", w.function),
            );
        }
        let pre_roots = roots(w.object_type, false);
        for (name, value) in &w.inputs {
            let field = function.and_then(|f| f.input(name));
            if let Some(f) = function
                && field.is_none()
            {
                r.add(
                    &w.file,
                    KIND,
                    &w.name,
                    format!("input '{name}' is not an input of function '{}'", f.name),
                );
            }
            match value {
                InputValue::Static(v) => {
                    if let Some(field) = field
                        && let Some(p) = static_value_problem(field, v)
                    {
                        r.add(&w.file, KIND, &w.name, format!("input '{name}': {p}"));
                    }
                }
                InputValue::From(_) | InputValue::Json(_) => {
                    for path in value.paths() {
                        if let Some(p) = path_problem(&path, &pre_roots) {
                            r.add(&w.file, KIND, &w.name, format!("input '{name}': {p}"));
                        }
                    }
                }
            }
            if let (InputValue::Json(_), Some(field)) = (value, field)
                && field.input_type != crate::InputType::Text
            {
                r.add(
                    &w.file,
                    KIND,
                    &w.name,
                    format!("input '{name}': a json template needs a text input"),
                );
            }
        }
        let post_roots = roots(w.object_type, true);
        for (i, step) in w.post_processing.iter().enumerate() {
            let n = i + 1;
            match step {
                PostStep::SetIncidentField { field, from } => {
                    if self.incident_field(field).is_none()
                        && !BUILTIN_INCIDENT_FIELDS.contains(&field.as_str())
                    {
                        r.add(
                            &w.file,
                            KIND,
                            &w.name,
                            format!(
                                "post-processing step {n}: incident field '{field}' is neither declared in incident_fields nor a known built-in incident field"
                            ),
                        );
                    }
                    if let Some(p) = path_problem(from, &post_roots) {
                        r.add(
                            &w.file,
                            KIND,
                            &w.name,
                            format!("post-processing step {n}: {p}"),
                        );
                    }
                }
                PostStep::AddNote { text } => {
                    if text
                        .chars()
                        .any(|c| c.is_control() && c != '\n' && c != '\t')
                    {
                        r.add(
                            &w.file,
                            KIND,
                            &w.name,
                            format!(
                                "post-processing step {n}: the note contains control characters other than newline and tab"
                            ),
                        );
                    }
                    match parse_template(text) {
                        Err(e) => r.add(
                            &w.file,
                            KIND,
                            &w.name,
                            format!("post-processing step {n}: {e}"),
                        ),
                        Ok(pieces) => {
                            for piece in pieces {
                                if let Piece::Path(path) = piece
                                    && let Some(p) = path_problem(&path, &post_roots)
                                {
                                    r.add(
                                        &w.file,
                                        KIND,
                                        &w.name,
                                        format!("post-processing step {n}: {p}"),
                                    );
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    fn check_rule<'a>(
        &'a self,
        rule: &'a Rule,
        shared: &mut BTreeMap<&'a str, (&'a FieldDef, &'a str)>,
        r: &mut Report,
    ) {
        const KIND: &str = "rule";
        if let Some(p) = display_problem("name", &rule.name) {
            r.add(&rule.file, KIND, &rule.name, p);
        } else if rule.name.trim() != rule.name {
            r.add(
                &rule.file,
                KIND,
                &rule.name,
                "name starts or ends with white space",
            );
        }
        let mut seen: Vec<&str> = Vec::new();
        for name in &rule.workflows {
            if seen.contains(&name.as_str()) {
                r.add(
                    &rule.file,
                    KIND,
                    &rule.name,
                    format!("workflow '{name}' is listed twice"),
                );
            }
            seen.push(name);
            match self.workflow(name) {
                None => r.add(
                    &rule.file,
                    KIND,
                    &rule.name,
                    format!("workflow '{name}' is not declared"),
                ),
                Some(w) => {
                    if w.object_type != rule.object_type {
                        r.add(
                            &rule.file,
                            KIND,
                            &rule.name,
                            format!(
                                "workflow '{name}' runs on {} but the rule runs on {}",
                                w.object_type, rule.object_type
                            ),
                        );
                    }
                    for f in rule_properties_read(w) {
                        if !rule.fields.iter().any(|x| x.name == f) {
                            r.add(
                                &rule.file,
                                KIND,
                                &rule.name,
                                format!(
                                    "workflow '{name}' reads rule.properties.{f}, but the rule has no field '{f}'"
                                ),
                            );
                        }
                    }
                }
            }
        }
        let mut seen: Vec<&str> = Vec::new();
        for name in &rule.destinations {
            if seen.contains(&name.as_str()) {
                r.add(
                    &rule.file,
                    KIND,
                    &rule.name,
                    format!("message destination '{name}' is listed twice"),
                );
            }
            seen.push(name);
            if self.message_destination(name).is_none() {
                r.add(
                    &rule.file,
                    KIND,
                    &rule.name,
                    format!("message destination '{name}' is not declared"),
                );
            }
        }
        if rule.kind == RuleKind::Automatic && !rule.fields.is_empty() {
            r.add(
                &rule.file,
                KIND,
                &rule.name,
                "only manual rules can have activity fields",
            );
        }
        let mut seen: Vec<&str> = Vec::new();
        for field in &rule.fields {
            let prefix = format!("field \"{}\": ", field.name);
            for p in field_problems(field, &prefix) {
                r.add(&rule.file, KIND, &rule.name, p);
            }
            if seen.contains(&field.name.as_str()) {
                r.add(
                    &rule.file,
                    KIND,
                    &rule.name,
                    format!("field '{}' is declared twice", field.name),
                );
                continue;
            }
            seen.push(&field.name);
            match shared.get(field.name.as_str()) {
                Some((first, owner)) if !first.same_definition(field) => r.add(
                    &rule.file,
                    KIND,
                    &rule.name,
                    format!(
                        "field '{}' differs from the activity field of the same name of rule \"{owner}\" ({}); rules share activity fields by name, so both must have the same type and values",
                        field.name, first.file
                    ),
                ),
                Some(_) => {}
                None => {
                    shared.insert(&field.name, (field, &rule.name));
                }
            }
        }
        for (i, c) in rule.conditions.iter().enumerate() {
            let n = i + 1;
            match &c.field {
                None if !c.method.is_object_method() => r.add(
                    &rule.file,
                    KIND,
                    &rule.name,
                    format!("condition {n}: method {} needs a field", c.method),
                ),
                None => {}
                Some(path) => {
                    let segments: Vec<&str> = path.split('.').collect();
                    let object_ok = segments
                        .first()
                        .is_some_and(|o| *o == rule.object_type.as_str() || *o == "incident");
                    let shape_ok = segments.iter().all(|s| is_identifier(s))
                        && (segments.len() == 2
                            || (segments.len() == 3 && segments.get(1) == Some(&"properties")));
                    if !object_ok || !shape_ok {
                        r.add(
                            &rule.file,
                            KIND,
                            &rule.name,
                            format!(
                                "condition {n}: field '{path}' must be <object>.<field> or <object>.properties.<custom field>, <object> being {} or incident",
                                rule.object_type
                            ),
                        );
                    }
                }
            }
            let value = c.value.as_ref().filter(|v| !v.is_null());
            if c.method.takes_value() {
                let needs_value = !matches!(
                    c.method,
                    crate::ConditionMethod::Equals | crate::ConditionMethod::NotEquals
                );
                if needs_value && value.is_none() {
                    r.add(
                        &rule.file,
                        KIND,
                        &rule.name,
                        format!("condition {n}: method {} needs a value", c.method),
                    );
                }
                if matches!(
                    c.method,
                    crate::ConditionMethod::Gt | crate::ConditionMethod::Lt
                ) && value.is_some_and(|v| !v.is_number())
                {
                    r.add(
                        &rule.file,
                        KIND,
                        &rule.name,
                        format!("condition {n}: method {} needs a number", c.method),
                    );
                }
            } else if value.is_some() {
                r.add(
                    &rule.file,
                    KIND,
                    &rule.name,
                    format!("condition {n}: method {} takes no value", c.method),
                );
            }
        }
    }
}
