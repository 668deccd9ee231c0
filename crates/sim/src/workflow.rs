//! The workflow engine: runs an EXPORTED workflow as the platform would.
//!
//! It reads the workflow's BPMN `content.xml`, finds each `<resilient:function uuid="…">` step
//! (in document order), XML-unescapes its text and parses the JSON
//! `{"inputs": {<field uuid>: {"input_type": "static", "static_input": {…}}},
//! "pre_processing_script", "post_processing_script", "result_name"}`. For each step it
//! resolves the function by uuid (name and destination) and the static inputs by field uuid
//! (with the platform's value shapes: a select is `{"id", "name"}`, a multiselect a list of
//! them, a textarea `{"format", "content"}`), runs the pre-processing script
//! ([`crate::script`]), sends the §4.1 function message through the broker like
//! [`crate::Sim::invoke_with`], waits (bounded) for the final reply, and on success runs the
//! post-processing script with `results` and applies its effects (incident fields, notes). A
//! reply with `message_type` 1 fails the workflow with the reply's message; so does a script
//! line the interpreter does not support, a timeout, or a reference to something that does not
//! exist. Every step is recorded in the action status log.

use std::time::Duration;

use quick_xml::Reader;
use quick_xml::events::Event;
use serde_json::{Map, Value, json};

use crate::fields;
use crate::platform::{FunctionDef, object_type_id};
use crate::rules::{ActionState, WorkflowRun, WorkflowStatus};
use crate::script::{Effect, Mode};
use crate::{Sim, SimError, WeakSim};

/// One `<resilient:function>` step of a workflow.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionStep {
    /// The function's uuid (the element's `uuid` attribute).
    pub function_uuid: String,
    /// Inputs by field uuid, as exported.
    pub inputs: Map<String, Value>,
    /// `pre_processing_script` (empty if none).
    pub pre_processing_script: String,
    /// `post_processing_script` (empty if none).
    pub post_processing_script: String,
    /// `result_name`, if any.
    pub result_name: Option<String>,
}

/// The function steps of a workflow's BPMN XML, in document order.
pub fn function_steps(xml: &str) -> Result<Vec<FunctionStep>, String> {
    let mut reader = Reader::from_str(xml);
    let mut steps = Vec::new();
    // (uuid, text) of the open <resilient:function> element.
    let mut current: Option<(String, String)> = None;
    let mut depth = 0usize;
    loop {
        let event = reader.read_event().map_err(|e| {
            format!(
                "invalid workflow XML at byte {}: {e}",
                reader.error_position()
            )
        })?;
        match event {
            Event::Start(e) if e.name().as_ref() == "resilient:function" => {
                depth += 1;
                current = Some((function_uuid(&e)?, String::new()));
            }
            Event::Start(_) => depth += 1,
            Event::Empty(e) if e.name().as_ref() == "resilient:function" => {
                steps.push(parse_step(function_uuid(&e)?, "")?);
            }
            Event::Text(t) => {
                if let Some((_, text)) = &mut current {
                    text.push_str(&t.xml10_content());
                }
            }
            Event::CData(t) => {
                if let Some((_, text)) = &mut current {
                    text.push_str(&t);
                }
            }
            Event::GeneralRef(r) => {
                if let Some((_, text)) = &mut current {
                    let resolved = match r.resolve_char_ref() {
                        Ok(Some(c)) => c.to_string(),
                        Ok(None) => quick_xml::escape::resolve_predefined_entity(&r)
                            .ok_or_else(|| format!("unknown XML entity &{};", &*r))?
                            .to_string(),
                        Err(e) => return Err(format!("invalid XML character reference: {e}")),
                    };
                    text.push_str(&resolved);
                }
            }
            Event::End(e) => {
                depth = depth.saturating_sub(1);
                if e.name().as_ref() == "resilient:function"
                    && let Some((uuid, text)) = current.take()
                {
                    steps.push(parse_step(uuid, &text)?);
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if depth > 0 {
        return Err("invalid workflow XML: an element is not closed".into());
    }
    Ok(steps)
}

fn function_uuid(e: &quick_xml::events::BytesStart<'_>) -> Result<String, String> {
    for attr in e.attributes() {
        let attr = attr.map_err(|err| format!("invalid workflow XML: {err}"))?;
        if attr.key.as_ref() == "uuid" {
            return attr
                .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .map(|v| v.into_owned())
                .map_err(|err| format!("invalid workflow XML: {err}"));
        }
    }
    Err("a <resilient:function> element has no uuid attribute".into())
}

fn parse_step(uuid: String, text: &str) -> Result<FunctionStep, String> {
    let text = text.trim();
    let config: Value = if text.is_empty() {
        json!({})
    } else {
        serde_json::from_str(text)
            .map_err(|e| format!("function step {uuid}: its configuration is not JSON: {e}"))?
    };
    let s = |k: &str| {
        config
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let inputs = match config.get("inputs") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(_) => return Err(format!("function step {uuid}: 'inputs' is not an object")),
    };
    Ok(FunctionStep {
        pre_processing_script: s("pre_processing_script"),
        post_processing_script: s("post_processing_script"),
        result_name: config
            .get("result_name")
            .and_then(Value::as_str)
            .filter(|r| !r.is_empty())
            .map(str::to_string),
        inputs,
        function_uuid: uuid,
    })
}

fn select_entry(field: &Value, uuid: &Value) -> Result<Value, String> {
    let fid = field.get("id").and_then(Value::as_i64).unwrap_or(0);
    let vals = field
        .get("values")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let ids = fields::select_values(field);
    vals.iter()
        .zip(ids)
        .find(|(v, _)| v.get("uuid") == Some(uuid))
        .map(|(_, (id, label))| json!({"id": id, "name": label}))
        .ok_or_else(|| format!("select value {uuid} is not a value of the field (field id {fid})"))
}

/// The value of a static input for `field` (`{"input_type": "static", "static_input": {…}}`),
/// in the shape the function message carries.
pub fn static_value(field: &Value, spec: &Value) -> Result<Value, String> {
    match spec.get("input_type").and_then(Value::as_str) {
        Some("static") | None => {}
        Some(other) => return Err(format!("input_type '{other}' is not supported")),
    }
    let Some(si) = spec.get("static_input") else {
        return Ok(Value::Null);
    };
    let get = |k: &str| si.get(k).cloned().unwrap_or(Value::Null);
    Ok(match field.get("input_type").and_then(Value::as_str) {
        Some("select") => match si.get("select_value") {
            None | Some(Value::Null) => Value::Null,
            Some(u) => select_entry(field, u)?,
        },
        Some("multiselect") => match si.get("multiselect_value") {
            Some(Value::Array(us)) => Value::Array(
                us.iter()
                    .map(|u| select_entry(field, u))
                    .collect::<Result<_, _>>()?,
            ),
            _ => Value::Null,
        },
        Some("boolean") => get("boolean_value"),
        Some("number") => get("number_value"),
        Some("datepicker" | "datetimepicker") => get("date_value"),
        Some("textarea") => match (si.get("text_content_value"), si.get("text_value")) {
            (Some(v @ Value::Object(_)), _) => v.clone(),
            (_, Some(Value::String(s))) => json!({"format": "text", "content": s}),
            _ => Value::Null,
        },
        _ => ["text_value", "number_value", "boolean_value", "date_value"]
            .iter()
            .find_map(|k| si.get(*k).filter(|v| !v.is_null()).cloned())
            .unwrap_or(Value::Null),
    })
}

/// Converts an input set by a script to the function message's shape: select labels become
/// `{"id", "name"}`, a textarea string becomes `{"format": "text", "content"}`.
fn shape_input(field: &Value, v: Value) -> Value {
    let entry = |x: &Value| {
        fields::select_values(field)
            .into_iter()
            .find(|(id, label)| id == x || x.as_str() == Some(label.as_str()))
            .map(|(id, label)| json!({"id": id, "name": label}))
            .unwrap_or_else(|| x.clone())
    };
    match (field.get("input_type").and_then(Value::as_str), v) {
        (Some("select"), x) if !x.is_null() && !x.is_object() => entry(&x),
        (Some("multiselect"), Value::Array(items)) => Value::Array(
            items
                .iter()
                .map(|x| if x.is_object() { x.clone() } else { entry(x) })
                .collect(),
        ),
        (Some("textarea"), Value::String(s)) => json!({"format": "text", "content": s}),
        (_, x) => x,
    }
}

/// What starts a workflow.
#[derive(Debug, Clone)]
pub(crate) struct WorkflowJob {
    pub(crate) workflow: String,
    pub(crate) instance_id: i64,
    pub(crate) incident_id: i64,
    pub(crate) rule: Option<String>,
    pub(crate) rule_properties: Value,
    /// The triggering object's type name and JSON (the incident for incident rules).
    pub(crate) object_type: String,
    pub(crate) object: Value,
    pub(crate) timeout: Duration,
}

/// Runs a workflow to its end; never panics, every failure is a [`WorkflowStatus::Failed`].
pub(crate) async fn execute(weak: WeakSim, job: WorkflowJob) -> WorkflowRun {
    let mut run = WorkflowRun {
        workflow: job.workflow.clone(),
        instance_id: job.instance_id,
        status: WorkflowStatus::Completed,
        invocation: None,
    };
    let outcome = execute_steps(&weak, &job, &mut run).await;
    let status = match outcome {
        Ok(()) => WorkflowStatus::Completed,
        Err(message) => WorkflowStatus::Failed(message),
    };
    if let Some(sim) = weak.upgrade() {
        sim.finish_workflow_instance(&job, &status);
    }
    run.status = status;
    run
}

async fn execute_steps(
    weak: &WeakSim,
    job: &WorkflowJob,
    run: &mut WorkflowRun,
) -> Result<(), String> {
    let shutdown = || "the simulated platform was shut down".to_string();
    let sim = weak.upgrade().ok_or_else(shutdown)?;
    let steps = {
        let st = sim.platform().state();
        let wf = st
            .store
            .get("workflows", &job.workflow)
            .ok_or_else(|| format!("workflow '{}' does not exist", job.workflow))?;
        let xml = wf
            .json
            .get("content")
            .and_then(|c| c.get("xml"))
            .and_then(Value::as_str)
            .ok_or_else(|| format!("workflow '{}' has no content.xml", job.workflow))?;
        function_steps(xml).map_err(|e| format!("workflow '{}': {e}", job.workflow))?
    };
    drop(sim);
    let mut workflow_props = Map::new();
    for step in steps {
        let sim = weak.upgrade().ok_or_else(shutdown)?;
        let fail = |sim: &Sim, function: Option<&str>, message: String| {
            sim.record_action(job, function, None, ActionState::Error, &message);
            message
        };
        // Resolve the function, its input fields and the static inputs.
        let prepared = sim.prepare_step(job, &step);
        let (f, input_fields, mut inputs, mut ctx) = match prepared {
            Ok(p) => p,
            Err(e) => return Err(fail(&sim, None, e)),
        };
        ctx.insert(
            "workflow".into(),
            json!({"properties": Value::Object(workflow_props.clone())}),
        );
        ctx.insert("inputs".into(), Value::Object(Map::new()));
        let effects = crate::python::run_script(&step.pre_processing_script, Mode::Pre, &mut ctx)
            .await
            .map_err(|e| {
                fail(
                    &sim,
                    Some(&f.name),
                    format!("{}: pre-processing script {e}", f.name),
                )
            })?;
        for effect in effects {
            match effect {
                Effect::SetInput { name, value } => {
                    let field = input_fields.iter().find(|fd| fd["name"] == name.as_str());
                    let value = match field {
                        Some(fd) => shape_input(fd, value),
                        None if input_fields.is_empty() => value,
                        None => {
                            return Err(fail(
                                &sim,
                                Some(&f.name),
                                format!(
                                    "{}: pre-processing sets '{name}', which is not an input of the function",
                                    f.name
                                ),
                            ));
                        }
                    };
                    inputs.insert(name, value);
                }
                other => {
                    if let Err(e) = sim.apply_effect(job.incident_id, other) {
                        return Err(fail(
                            &sim,
                            Some(&f.name),
                            format!("{}: pre-processing: {e}", f.name),
                        ));
                    }
                }
            }
        }
        let action_id = sim.record_action(
            job,
            Some(&f.name),
            Some(&f.destination),
            ActionState::Pending,
            "Function invoked",
        );
        let inv = sim
            .invoke_in_workflow(&f, Value::Object(inputs), job)
            .await
            .map_err(|e| {
                let m = format!("{}: could not send the function message: {e}", f.name);
                sim.update_action(action_id, ActionState::Error, &m);
                m
            })?;
        run.invocation = Some(inv.clone());
        drop(sim);
        let reply = inv.final_reply(job.timeout).await;
        let sim = weak.upgrade().ok_or_else(shutdown)?;
        let reply = match reply {
            Ok(r) => r,
            Err(SimError::Timeout { .. }) => {
                let m = format!(
                    "{}: no final reply within {:?} (correlation-id {})",
                    f.name,
                    job.timeout,
                    inv.correlation_id()
                );
                sim.update_action(action_id, ActionState::TimedOut, &m);
                return Err(m);
            }
            Err(e) => {
                let m = format!("{}: {e}", f.name);
                sim.update_action(action_id, ActionState::Error, &m);
                return Err(m);
            }
        };
        if reply.message_type == 1 {
            sim.update_action(action_id, ActionState::Error, &reply.message);
            return Err(reply.message);
        }
        sim.update_action(action_id, ActionState::Complete, &reply.message);
        let results = reply
            .results
            .clone()
            .or_else(|| reply.body.get("results").cloned())
            .unwrap_or(Value::Null);
        // Post-processing sees the incident as it is now.
        let mut ctx = match sim.script_context(job) {
            Ok(c) => c,
            Err(e) => return Err(fail(&sim, Some(&f.name), e)),
        };
        ctx.insert(
            "workflow".into(),
            json!({"properties": Value::Object(workflow_props.clone())}),
        );
        ctx.insert("results".into(), results.clone());
        let effects = crate::python::run_script(&step.post_processing_script, Mode::Post, &mut ctx)
            .await
            .map_err(|e| {
                fail(
                    &sim,
                    Some(&f.name),
                    format!("{}: post-processing script {e}", f.name),
                )
            })?;
        for effect in effects {
            if let Err(e) = sim.apply_effect(job.incident_id, effect) {
                return Err(fail(
                    &sim,
                    Some(&f.name),
                    format!("{}: post-processing: {e}", f.name),
                ));
            }
        }
        if let Some(name) = &step.result_name {
            workflow_props.insert(name.clone(), results);
        }
    }
    Ok(())
}

impl Sim {
    /// The objects a script sees: the incident (select values as labels), the triggering
    /// object, and the rule's activity fields.
    fn script_context(&self, job: &WorkflowJob) -> Result<Map<String, Value>, String> {
        let st = self.platform().state();
        let incident = st
            .incident_json(job.incident_id, true)
            .ok_or_else(|| format!("incident {} does not exist", job.incident_id))?;
        let mut ctx = Map::new();
        ctx.insert("incident".into(), incident);
        if job.object_type != "incident" {
            let mut object = job.object.clone();
            // As on the platform, a script reads an artifact's type by its name.
            if job.object_type == "artifact"
                && let Some(name) = st
                    .artifact_type(&object["type"])
                    .and_then(|t| t.get("name").cloned())
            {
                object["type"] = name;
            }
            ctx.insert(job.object_type.clone(), object);
        }
        ctx.insert(
            "rule".into(),
            json!({"properties": if job.rule_properties.is_object() { job.rule_properties.clone() } else { json!({}) }}),
        );
        Ok(ctx)
    }

    /// Resolves a step: (function, its input field definitions, the static inputs, the
    /// script context).
    #[allow(clippy::type_complexity)]
    fn prepare_step(
        &self,
        job: &WorkflowJob,
        step: &FunctionStep,
    ) -> Result<
        (
            FunctionDef,
            Vec<Value>,
            Map<String, Value>,
            Map<String, Value>,
        ),
        String,
    > {
        let ctx = self.script_context(job)?;
        let st = self.platform().state();
        let f = st
            .functions
            .values()
            .find(|f| f.uuid == step.function_uuid)
            .cloned()
            .ok_or_else(|| {
                format!(
                    "workflow '{}': function uuid {} does not exist",
                    job.workflow, step.function_uuid
                )
            })?;
        let input_fields: Vec<Value> = st
            .store
            .get("functions", &f.name)
            .and_then(|o| o.json.get("view_items").and_then(Value::as_array).cloned())
            .unwrap_or_default()
            .iter()
            .filter(|vi| vi.get("element").and_then(Value::as_str) == Some("field_uuid"))
            .filter_map(|vi| vi.get("content").and_then(Value::as_str))
            .filter_map(|u| st.field_by_uuid(u))
            .collect();
        let mut inputs = Map::new();
        for (field_uuid, spec) in &step.inputs {
            let field = st.field_by_uuid(field_uuid).ok_or_else(|| {
                format!("{}: input field uuid {field_uuid} does not exist", f.name)
            })?;
            let name = field
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let value = static_value(&field, spec)
                .map_err(|e| format!("{}: input '{name}': {e}", f.name))?;
            inputs.insert(name, value);
        }
        Ok((f, input_fields, inputs, ctx))
    }

    /// Applies a script effect to the incident.
    pub(crate) fn apply_effect(&self, incident_id: i64, effect: Effect) -> Result<(), String> {
        match effect {
            Effect::SetInput { name, .. } => Err(format!("inputs.{name} cannot be set here")),
            Effect::SetIncidentField { field, value } => self
                .set_incident_field_internal(incident_id, &field, &value, false)
                .map_err(|e| e.to_string()),
            Effect::SetIncidentProperty { field, value } => self
                .set_incident_field_internal(incident_id, &field, &value, true)
                .map_err(|e| e.to_string()),
            Effect::AddNote { text } => self
                .add_note_internal(
                    incident_id,
                    &json!({"text": {"format": "text", "content": text}}),
                )
                .map(|_| ())
                .map_err(|e| e.to_string()),
        }
    }

    /// Sends a workflow's function message (§4.1) through the broker.
    async fn invoke_in_workflow(
        &self,
        f: &FunctionDef,
        inputs: Value,
        job: &WorkflowJob,
    ) -> Result<crate::Invocation, SimError> {
        let (incident, workflow) = {
            let st = self.platform().state();
            let wf = st.store.get("workflows", &job.workflow);
            let wjson = wf.map(|o| o.json.clone()).unwrap_or(Value::Null);
            let object_type = wjson
                .get("object_type")
                .and_then(Value::as_str)
                .unwrap_or("incident")
                .to_string();
            let workflow = json!({
                "workflow_id": wf.map(|o| o.id),
                "programmatic_name": job.workflow,
                "name": wjson.get("name").cloned().unwrap_or_else(|| json!(job.workflow)),
                "object_type": {"id": object_type_id(&object_type), "name": object_type},
                "uuid": wjson.get("uuid").cloned().unwrap_or(Value::Null),
                "description": wjson.get("description").cloned().unwrap_or(Value::Null),
                "tags": [],
                "actions": [],
            });
            (st.incident_json(job.incident_id, false), workflow)
        };
        let mut extra = Map::new();
        extra.insert("workflow".into(), workflow);
        extra.insert(
            "workflow_instance".into(),
            json!({"workflow_instance_id": job.instance_id}),
        );
        extra.insert(
            "object_type".into(),
            json!(object_type_id(&job.object_type)),
        );
        extra.insert("object".into(), job.object.clone());
        if job.object_type != "incident" {
            extra.insert(job.object_type.clone(), job.object.clone());
        }
        self.publish_function(f, inputs, incident, extra).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const XML: &str = r#"<?xml version="1.0" encoding="UTF-8"?><definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:resilient="http://resilient.ibm.com/bpmn"><process id="wf"><serviceTask id="S1" name="fn" resilient:type="function"><extensionElements><resilient:function uuid="f-1">{"inputs":{"u1":{"input_type":"static","static_input":{"text_value":"a &lt;b&gt; &amp; &#233;"}}},"pre_processing_script":"inputs.x = incident.id\ninputs.y = u\"q\\\"\"","result_name":"r"}</resilient:function></extensionElements></serviceTask><serviceTask id="S2"><extensionElements><resilient:function uuid="f-2"><![CDATA[{"inputs":{}}]]></resilient:function><resilient:function uuid="f-3"/></extensionElements></serviceTask></process></definitions>"#;

    #[test]
    fn steps_are_parsed_and_unescaped() {
        let steps = function_steps(XML).unwrap();
        assert_eq!(steps.len(), 3);
        assert_eq!(steps[0].function_uuid, "f-1");
        assert_eq!(
            steps[0].inputs["u1"]["static_input"]["text_value"],
            "a <b> & é"
        );
        assert_eq!(
            steps[0].pre_processing_script,
            "inputs.x = incident.id\ninputs.y = u\"q\\\"\""
        );
        assert_eq!(steps[0].result_name.as_deref(), Some("r"));
        assert_eq!(steps[1].function_uuid, "f-2");
        assert_eq!(steps[2].function_uuid, "f-3");
        assert!(steps[2].inputs.is_empty());
    }

    #[test]
    fn broken_xml_and_json_are_errors() {
        assert!(function_steps("<a><b></a>").is_err());
        assert!(
            function_steps(r#"<resilient:function uuid="x">{not json</resilient:function>"#)
                .is_err()
        );
        assert!(function_steps(r#"<resilient:function>{}</resilient:function>"#).is_err());
        assert!(function_steps(r#"<x><resilient:function uuid="x">{}"#).is_err());
        assert!(function_steps("").unwrap().is_empty());
    }

    #[test]
    fn static_values_have_platform_shapes() {
        let sel = json!({"id": 9, "name": "s", "input_type": "select", "values": [
            {"label": "A", "value": 301, "uuid": "va"}, {"label": "B", "value": 302, "uuid": "vb"}]});
        let spec = |si: Value| json!({"input_type": "static", "static_input": si});
        assert_eq!(
            static_value(
                &sel,
                &spec(json!({"select_value": "vb", "multiselect_value": []}))
            )
            .unwrap(),
            json!({"id": 302, "name": "B"})
        );
        assert!(static_value(&sel, &spec(json!({"select_value": "nope"}))).is_err());
        let mut multi = sel.clone();
        multi["input_type"] = json!("multiselect");
        assert_eq!(
            static_value(&multi, &spec(json!({"multiselect_value": ["va", "vb"]}))).unwrap(),
            json!([{"id": 301, "name": "A"}, {"id": 302, "name": "B"}])
        );
        let t = |ty: &str| json!({"input_type": ty});
        assert_eq!(
            static_value(&t("text"), &spec(json!({"text_value": "x"}))).unwrap(),
            json!("x")
        );
        assert_eq!(
            static_value(&t("number"), &spec(json!({"number_value": 3}))).unwrap(),
            json!(3)
        );
        assert_eq!(
            static_value(&t("boolean"), &spec(json!({"boolean_value": false}))).unwrap(),
            json!(false)
        );
        assert_eq!(
            static_value(&t("textarea"), &spec(json!({"text_value": "x"}))).unwrap(),
            json!({"format": "text", "content": "x"})
        );
        assert_eq!(
            static_value(&t("datepicker"), &spec(json!({"date_value": 5}))).unwrap(),
            json!(5)
        );
        assert!(static_value(&t("text"), &json!({"input_type": "dynamic"})).is_err());
        assert_eq!(
            shape_input(&sel, json!("A")),
            json!({"id": 301, "name": "A"})
        );
        assert_eq!(
            shape_input(&multi, json!(["B"])),
            json!([{"id": 302, "name": "B"}])
        );
        assert_eq!(
            shape_input(&t("textarea"), json!("x")),
            json!({"format": "text", "content": "x"})
        );
    }
}
