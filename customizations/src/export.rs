//! The export: the platform's `export.res` (an org export, `export_format_version`
//! 2), as `POST /configurations/imports` accepts it and as IBM's
//! `resilient-sdk codegen --exportfile` reads it.
//!
//! Deterministic: uuids come from [`crate::uuid_for`], ids are small integers in
//! declaration order, `export_date` is [`EXPORT_DATE`], object keys are sorted and
//! arrays keep declaration order, so two exports of the same declarations are
//! byte-identical.
//!
//! Shapes follow the platform's exports (see `platform-protocol.md` §6.3):
//! * function inputs are `fields` with `type_id` 11 and export key
//!   `__function/<name>`, shared by name across functions; custom incident
//!   fields have `type_id` 0, prefix `properties`, export key `incident/<name>`;
//!   rule activity fields have `type_id` 6, prefix `properties`, export key
//!   `actioninvocation/<name>`; data table columns have `type_id` 1000 and export
//!   key `<table>/<column>`;
//! * like `resilient-sdk codegen`, the export always holds the incident type
//!   "Customization Packages (internal)" and the field
//!   `incident/internal_customizations_field`, with IBM's fixed uuids;
//! * a rule's `message_destinations` are the destinations' display names (the
//!   platform identifies them so; `resilient-sdk` looks them up by `name`), its
//!   `workflows` are programmatic names;
//! * a workflow's `content.xml` is BPMN 2.0: a start event, one service task with
//!   `resilient:type="function"` whose `<resilient:function uuid="<function uuid>">`
//!   text is the JSON `{"inputs": {<field uuid>: {"input_type": "static",
//!   "static_input": {...}}}, "post_processing_script", "pre_processing_script",
//!   "result_name"}`, an end event, two sequence flows and the diagram.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use crate::{
    Customizations, FieldDef, FunctionDef, InputType, InputValue, RuleKind, Workflow, scripts,
    uuid_for,
};

/// The fixed `export_date` (2024-01-01T00:00:00Z, in milliseconds).
pub const EXPORT_DATE: u64 = 1_704_067_200_000;

/// The fixed `server_version.version`.
pub const SERVER_VERSION: &str = "51.0.0.0";

/// The incident type every import carries (as `resilient-sdk codegen` adds it).
pub(crate) const INTERNAL_INCIDENT_TYPE: &str = "Customization Packages (internal)";
const INTERNAL_INCIDENT_TYPE_UUID: &str = "bfeec2d4-3770-11e8-ad39-4a0004044aa0";
/// The incident field every import carries (an import needs one incident field).
pub(crate) const INTERNAL_FIELD_EXPORT_KEY: &str = "incident/internal_customizations_field";
const INTERNAL_FIELD_UUID: &str = "bfeec2d4-3770-11e8-ad39-4a0004044aa1";

const BPMN_NAMESPACES: &str = concat!(
    r#"xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" "#,
    r#"xmlns:bpmndi="http://www.omg.org/spec/BPMN/20100524/DI" "#,
    r#"xmlns:omgdc="http://www.omg.org/spec/DD/20100524/DC" "#,
    r#"xmlns:omgdi="http://www.omg.org/spec/DD/20100524/DI" "#,
    r#"xmlns:resilient="http://resilient.ibm.com/bpmn" "#,
    r#"xmlns:xsd="http://www.w3.org/2001/XMLSchema" "#,
    r#"xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" "#,
    r#"targetNamespace="http://www.camunda.org/test""#
);

impl Customizations {
    /// The export (`export.res` JSON). Call [`Customizations::validate`] first:
    /// dangling references are skipped, never a panic.
    pub fn export(&self) -> Value {
        canonical(Exporter::default().export(self))
    }

    /// The `export.res` file text: pretty JSON with sorted keys and a final
    /// newline; two calls give identical bytes.
    pub fn export_res(&self) -> String {
        let mut text = serde_json::to_string_pretty(&self.export()).unwrap_or_default();
        text.push('\n');
        text
    }
}

/// Counters for ids.
#[derive(Default)]
struct Exporter {
    field_id: u64,
    value_id: u64,
}

impl Exporter {
    fn export(&mut self, c: &Customizations) -> Value {
        let mut top = Map::new();
        top.insert("action_order".into(), json!([]));
        top.insert("actions".into(), Value::Array(self.actions(c)));
        top.insert("apps".into(), json!([]));
        top.insert("automatic_tasks".into(), json!([]));
        top.insert("export_date".into(), json!(EXPORT_DATE));
        top.insert("export_format_version".into(), json!(2));
        top.insert("export_type".into(), Value::Null);
        top.insert("fields".into(), Value::Array(self.fields(c)));
        top.insert("functions".into(), Value::Array(functions(c)));
        top.insert("geos".into(), Value::Null);
        top.insert("groups".into(), Value::Null);
        top.insert("id".into(), json!(1));
        top.insert("inbound_destinations".into(), json!([]));
        top.insert("inbound_mailboxes".into(), Value::Null);
        top.insert(
            "incident_artifact_types".into(),
            Value::Array(artifact_types(c)),
        );
        top.insert("incident_types".into(), json!([internal_incident_type()]));
        top.insert("industries".into(), Value::Null);
        top.insert("layouts".into(), json!([]));
        top.insert("locale".into(), Value::Null);
        top.insert(
            "message_destinations".into(),
            Value::Array(message_destinations(c)),
        );
        top.insert("notifications".into(), Value::Null);
        top.insert("overrides".into(), Value::Null);
        top.insert("phases".into(), json!([]));
        top.insert("playbooks".into(), json!([]));
        top.insert("regulators".into(), Value::Null);
        top.insert("roles".into(), json!([]));
        top.insert("scripts".into(), json!([]));
        top.insert(
            "server_version".into(),
            json!({"build_number": 0, "major": 51, "minor": 0, "version": SERVER_VERSION}),
        );
        top.insert("tags".into(), json!([]));
        top.insert("task_order".into(), json!([]));
        top.insert("timeframes".into(), Value::Null);
        top.insert("types".into(), Value::Array(self.data_tables(c)));
        top.insert("workflows".into(), Value::Array(workflows(c)));
        top.insert("workspaces".into(), json!([]));
        Value::Object(top)
    }

    /// Every field: function inputs (once per name), custom incident fields,
    /// rule activity fields (once per name), then the internal incident field.
    fn fields(&mut self, c: &Customizations) -> Vec<Value> {
        let mut out = Vec::new();
        let mut seen = BTreeSet::new();
        for f in &c.functions {
            for input in &f.inputs {
                if seen.insert(input.name.as_str()) {
                    out.push(self.field(input, "__function", 11, None));
                }
            }
        }
        for field in &c.incident_fields {
            out.push(self.field(field, "incident", 0, Some("properties")));
        }
        let mut seen = BTreeSet::new();
        for rule in &c.rules {
            for field in &rule.fields {
                if seen.insert(field.name.as_str()) {
                    out.push(self.field(field, "actioninvocation", 6, Some("properties")));
                }
            }
        }
        out.push(internal_field());
        out
    }

    /// One field object.
    fn field(
        &mut self,
        field: &FieldDef,
        type_name: &str,
        type_id: u32,
        prefix: Option<&str>,
    ) -> Value {
        self.field_id += 1;
        let export_key = format!("{type_name}/{}", field.name);
        let values: Vec<Value> = field
            .values
            .iter()
            .map(|label| {
                self.value_id += 1;
                json!({
                    "default": false,
                    "enabled": true,
                    "hidden": false,
                    "label": label,
                    "properties": null,
                    "uuid": value_uuid(&export_key, label),
                    "value": self.value_id,
                })
            })
            .collect();
        let mut obj = json!({
            "allow_default_value": false,
            "blank_option": false,
            "calculated": false,
            "changeable": true,
            "chosen": false,
            "default_chosen_by_server": false,
            "deprecated": false,
            "export_key": export_key,
            "hide_notification": false,
            "id": self.field_id,
            "input_type": field.input_type.as_str(),
            "internal": false,
            "is_tracked": false,
            "name": field.name,
            "operation_perms": {},
            "operations": [],
            "placeholder": field.placeholder.clone().unwrap_or_default(),
            "prefix": prefix,
            "read_only": false,
            "rich_text": false,
            "tags": [],
            "templates": [],
            "text": field.text(),
            "tooltip": field.tooltip.clone().unwrap_or_default(),
            "type_id": type_id,
            "uuid": uuid_for("field", &export_key).to_string(),
            "values": values,
        });
        if field.required
            && let Value::Object(map) = &mut obj
        {
            map.insert("required".into(), json!("always"));
        }
        obj
    }

    fn data_tables(&mut self, c: &Customizations) -> Vec<Value> {
        let mut out = Vec::new();
        for (i, table) in c.data_tables.iter().enumerate() {
            let mut columns = Map::new();
            for (order, column) in table.columns.iter().enumerate() {
                let mut field = self.field(column, &table.name, 1000, None);
                if let Value::Object(map) = &mut field {
                    map.insert("order".into(), json!(order));
                    map.insert("width".into(), json!(150));
                }
                columns.insert(column.name.clone(), field);
            }
            out.push(json!({
                "actions": [],
                "display_name": table.label(),
                "export_key": table.name,
                "fields": columns,
                "for_actions": false,
                "for_custom_fields": false,
                "for_notifications": false,
                "for_workflows": false,
                "id": i + 1,
                "parent_types": ["incident"],
                "properties": {"can_create": false, "can_destroy": false, "for_who": []},
                "scripts": [],
                "tags": [],
                "type_id": 8,
                "type_name": table.name,
                "uuid": uuid_for("data_table", &table.name).to_string(),
            }));
        }
        out
    }

    fn actions(&mut self, c: &Customizations) -> Vec<Value> {
        c.rules
            .iter()
            .enumerate()
            .map(|(i, rule)| {
                let conditions: Vec<Value> = rule
                    .conditions
                    .iter()
                    .map(|cond| {
                        json!({
                            "evaluation_id": null,
                            "field_name": cond.field,
                            "method": cond.method.as_str(),
                            "type": null,
                            "value": cond.value.clone().unwrap_or(Value::Null),
                        })
                    })
                    .collect();
                let destinations: Vec<&str> = rule
                    .destinations
                    .iter()
                    .map(|d| c.message_destination(d).map_or(d.as_str(), |m| m.label()))
                    .collect();
                let view_items: Vec<Value> = rule
                    .fields
                    .iter()
                    .map(|f| {
                        view_item(
                            "actioninvocation",
                            &uuid_for("field", &format!("actioninvocation/{}", f.name)).to_string(),
                        )
                    })
                    .collect();
                json!({
                    "automations": [],
                    "conditions": conditions,
                    "enabled": true,
                    "export_key": rule.name,
                    "id": i + 1,
                    "logic_type": rule.logic.as_str(),
                    "message_destinations": destinations,
                    "name": rule.name,
                    "object_type": rule.object_type.as_str(),
                    "tags": [],
                    "timeout_seconds": 86400,
                    "type": match rule.kind { RuleKind::Automatic => 0, RuleKind::Manual => 1 },
                    "uuid": uuid_for("rule", &rule.name).to_string(),
                    "view_items": view_items,
                    "workflows": rule.workflows,
                })
            })
            .collect()
    }
}

/// uuid of a select / multiselect value.
fn value_uuid(export_key: &str, label: &str) -> String {
    uuid_for("field_value", &format!("{export_key}/{label}")).to_string()
}

fn view_item(field_type: &str, uuid: &str) -> Value {
    json!({
        "content": uuid,
        "element": "field_uuid",
        "field_type": field_type,
        "show_if": null,
        "show_link_header": false,
        "step_label": null,
    })
}

fn internal_field() -> Value {
    json!({
        "export_key": INTERNAL_FIELD_EXPORT_KEY,
        "id": 0,
        "input_type": "text",
        "internal": true,
        "name": "internal_customizations_field",
        "prefix": "properties",
        "read_only": true,
        "tags": [],
        "templates": [],
        "text": "Customizations Field (internal)",
        "type_id": 0,
        "uuid": INTERNAL_FIELD_UUID,
        "values": [],
    })
}

fn internal_incident_type() -> Value {
    json!({
        "create_date": EXPORT_DATE,
        "description": INTERNAL_INCIDENT_TYPE,
        "enabled": false,
        "export_key": INTERNAL_INCIDENT_TYPE,
        "hidden": false,
        "id": 0,
        "name": INTERNAL_INCIDENT_TYPE,
        "parent_id": null,
        "system": false,
        "tags": [],
        "update_date": EXPORT_DATE,
        "uuid": INTERNAL_INCIDENT_TYPE_UUID,
    })
}

fn message_destinations(c: &Customizations) -> Vec<Value> {
    c.message_destinations
        .iter()
        .map(|m| {
            json!({
                "api_keys": [],
                "destination_type": 0,
                "expect_ack": true,
                "export_key": m.name,
                "name": m.label(),
                "programmatic_name": m.name,
                "tags": [],
                "users": [],
                "uuid": uuid_for("message_destination", &m.name).to_string(),
            })
        })
        .collect()
}

fn functions(c: &Customizations) -> Vec<Value> {
    c.functions
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let view_items: Vec<Value> = f
                .inputs
                .iter()
                .map(|input| {
                    view_item(
                        "__function",
                        &uuid_for("field", &format!("__function/{}", input.name)).to_string(),
                    )
                })
                .collect();
            let used_by: Vec<Value> = c
                .workflows
                .iter()
                .enumerate()
                .filter(|(_, w)| w.function == f.name)
                .map(|(j, w)| {
                    json!({
                        "actions": [],
                        "description": w.description.clone().unwrap_or_default(),
                        "name": w.label(),
                        "object_type": w.object_type.as_str(),
                        "programmatic_name": w.name,
                        "tags": [],
                        "uuid": null,
                        "workflow_id": j + 1,
                    })
                })
                .collect();
            json!({
                "created_date": EXPORT_DATE,
                "description": {"content": f.description.clone().unwrap_or_default(), "format": "text"},
                "destination_handle": f.destination,
                "display_name": f.label(),
                "export_key": f.name,
                "id": i + 1,
                "last_modified_by": {
                    "display_name": "soar-customizations",
                    "id": 0,
                    "name": "soar-customizations",
                    "type": "user",
                },
                "last_modified_time": EXPORT_DATE,
                "name": f.name,
                "tags": [],
                "uuid": uuid_for("function", &f.name).to_string(),
                "version": 1,
                "view_items": view_items,
                "workflows": used_by,
            })
        })
        .collect()
}

fn artifact_types(c: &Customizations) -> Vec<Value> {
    c.artifact_types
        .iter()
        .enumerate()
        .map(|(i, a)| {
            json!({
                "default_scan_option": "unsupported",
                "desc": a.description.clone().unwrap_or_default(),
                "enabled": true,
                "export_key": a.name,
                "file": false,
                "id": i + 1,
                "multi_aware": true,
                "name": a.label(),
                "parse_as_csv": false,
                "programmatic_name": a.name,
                "reg_exp": null,
                "system": false,
                "tags": [],
                "use_for_relationships": true,
                "uuid": uuid_for("artifact_type", &a.name).to_string(),
                "version": 0,
            })
        })
        .collect()
}

fn workflows(c: &Customizations) -> Vec<Value> {
    c.workflows
        .iter()
        .enumerate()
        .map(|(i, w)| {
            json!({
                "actions": [],
                "content": {"version": 1, "workflow_id": w.name, "xml": workflow_xml(w, c)},
                "content_version": 1,
                "description": w.description.clone().unwrap_or_default(),
                "export_key": w.name,
                "last_modified_by": "soar-customizations",
                "last_modified_time": EXPORT_DATE,
                "name": w.label(),
                "object_type": w.object_type.as_str(),
                "programmatic_name": w.name,
                "tags": [],
                "uuid": uuid_for("workflow", &w.name).to_string(),
                "workflow_id": i + 1,
            })
        })
        .collect()
}

/// The `static_input` object of a static workflow input.
fn static_input(field: &FieldDef, export_key: &str, value: &Value) -> Value {
    let text = || match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    match field.input_type {
        InputType::Text => json!({"multiselect_value": [], "text_value": text()}),
        InputType::Textarea => json!({
            "multiselect_value": [],
            "text_content_value": {"content": text(), "format": "text"},
        }),
        InputType::Number => json!({"multiselect_value": [], "number_value": value}),
        InputType::Boolean => json!({"boolean_value": value, "multiselect_value": []}),
        InputType::Datepicker | InputType::Datetimepicker => {
            json!({"date_value": value, "multiselect_value": []})
        }
        InputType::Select => json!({
            "multiselect_value": [],
            "select_value": value_uuid(export_key, &text()),
        }),
        InputType::Multiselect => {
            let uuids: Vec<String> = value
                .as_array()
                .map(|items| {
                    items
                        .iter()
                        .map(|item| match item {
                            Value::String(s) => value_uuid(export_key, s),
                            other => value_uuid(export_key, &other.to_string()),
                        })
                        .collect()
                })
                .unwrap_or_default();
            json!({"multiselect_value": uuids})
        }
    }
}

/// The JSON text of the function step (`<resilient:function>` element text).
pub(crate) fn function_step_json(
    w: &Workflow,
    function: Option<&FunctionDef>,
    c: &Customizations,
) -> String {
    let mut inputs = Map::new();
    if let Some(function) = function {
        for (name, value) in &w.inputs {
            if let (InputValue::Static(v), Some(field)) = (value, function.input(name)) {
                let export_key = format!("__function/{}", field.name);
                inputs.insert(
                    uuid_for("field", &export_key).to_string(),
                    json!({"input_type": "static", "static_input": static_input(field, &export_key, v)}),
                );
            }
        }
    }
    let step = canonical(json!({
        "inputs": inputs,
        "post_processing_script": scripts::post_processing(w, c),
        "pre_processing_script": scripts::pre_processing(w),
        "result_name": w.result_name(),
    }));
    serde_json::to_string(&step).unwrap_or_default()
}

/// The BPMN 2.0 XML of a workflow.
fn workflow_xml(w: &Workflow, c: &Customizations) -> String {
    let function = c.function(&w.function);
    let task_name = function.map_or(w.function.as_str(), |f| f.label());
    let mut x = String::new();
    x.push_str(r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    x.push_str(&format!("<definitions {BPMN_NAMESPACES}>"));
    x.push_str(&format!(
        r#"<process id="{}" isExecutable="true" name="{}">"#,
        xml_attr(&w.name),
        xml_attr(w.label())
    ));
    if let Some(d) = w.description.as_deref().filter(|d| !d.is_empty()) {
        x.push_str(&format!("<documentation>{}</documentation>", xml_text(d)));
    }
    x.push_str(
        r#"<startEvent id="StartEvent_155asxm"><outgoing>SequenceFlow_1</outgoing></startEvent>"#,
    );
    x.push_str(&format!(
        r#"<serviceTask id="ServiceTask_1" name="{}" resilient:type="function">"#,
        xml_attr(task_name)
    ));
    x.push_str(&format!(
        r#"<extensionElements><resilient:function uuid="{}">{}</resilient:function></extensionElements>"#,
        uuid_for("function", &w.function),
        xml_text(&function_step_json(w, function, c))
    ));
    x.push_str(
        "<incoming>SequenceFlow_1</incoming><outgoing>SequenceFlow_2</outgoing></serviceTask>",
    );
    x.push_str(r#"<endEvent id="EndEvent_1"><incoming>SequenceFlow_2</incoming></endEvent>"#);
    x.push_str(r#"<sequenceFlow id="SequenceFlow_1" sourceRef="StartEvent_155asxm" targetRef="ServiceTask_1"/>"#);
    x.push_str(
        r#"<sequenceFlow id="SequenceFlow_2" sourceRef="ServiceTask_1" targetRef="EndEvent_1"/>"#,
    );
    x.push_str("</process>");
    x.push_str(concat!(
        r#"<bpmndi:BPMNDiagram id="BPMNDiagram_1"><bpmndi:BPMNPlane bpmnElement="undefined" id="BPMNPlane_1">"#,
        r#"<bpmndi:BPMNShape bpmnElement="StartEvent_155asxm" id="StartEvent_155asxm_di"><omgdc:Bounds height="36" width="36" x="162" y="188"/>"#,
        r#"<bpmndi:BPMNLabel><omgdc:Bounds height="0" width="90" x="157" y="223"/></bpmndi:BPMNLabel></bpmndi:BPMNShape>"#,
        r#"<bpmndi:BPMNShape bpmnElement="ServiceTask_1" id="ServiceTask_1_di"><omgdc:Bounds height="80" width="100" x="260" y="166"/></bpmndi:BPMNShape>"#,
        r#"<bpmndi:BPMNShape bpmnElement="EndEvent_1" id="EndEvent_1_di"><omgdc:Bounds height="36" width="36" x="422" y="188"/>"#,
        r#"<bpmndi:BPMNLabel><omgdc:Bounds height="13" width="0" x="440" y="227"/></bpmndi:BPMNLabel></bpmndi:BPMNShape>"#,
        r#"<bpmndi:BPMNEdge bpmnElement="SequenceFlow_1" id="SequenceFlow_1_di"><omgdi:waypoint x="198" xsi:type="omgdc:Point" y="206"/>"#,
        r#"<omgdi:waypoint x="260" xsi:type="omgdc:Point" y="206"/></bpmndi:BPMNEdge>"#,
        r#"<bpmndi:BPMNEdge bpmnElement="SequenceFlow_2" id="SequenceFlow_2_di"><omgdi:waypoint x="360" xsi:type="omgdc:Point" y="206"/>"#,
        r#"<omgdi:waypoint x="422" xsi:type="omgdc:Point" y="206"/></bpmndi:BPMNEdge>"#,
        r#"</bpmndi:BPMNPlane></bpmndi:BPMNDiagram></definitions>"#
    ));
    x
}

/// Whether XML 1.0 allows the character.
fn xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// Text content: `&`, `<`, `>` escaped; characters XML cannot hold dropped.
fn xml_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars().filter(|c| xml_char(*c)) {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// Attribute value (double-quoted): also quotes and white space escaped.
fn xml_attr(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars().filter(|c| xml_char(*c)) {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#9;"),
            c => out.push(c),
        }
    }
    out
}

/// The value with every object's keys sorted (recursively).
pub(crate) fn canonical(v: Value) -> Value {
    match v {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, canonical(v)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.into_iter().map(canonical).collect()),
        other => other,
    }
}
