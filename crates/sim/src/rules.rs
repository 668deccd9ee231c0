//! Rules (the platform's "actions"): running them, and the action status log.
//!
//! A manual rule runs on request on one incident ([`Sim::run_manual_rule`]), note or artifact
//! ([`Sim::run_manual_rule_on`]): for each of its
//! workflows a workflow instance starts ([`crate::workflow`]), and each of its message
//! destinations gets a rule message (an ActionDataDTO with `action_id`, `object_type` 0,
//! `operation_type` null, the incident, the rule's activity-field `properties`, the
//! principal). What happens is recorded per incident in the action status log
//! ([`Sim::action_status`]), like the platform's "Action Status" view.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};

use crate::incidents::ApiError;
use crate::invocation::Invocation;
use crate::messages::{now_ms, principal};
use crate::platform::{Operation, PlatformEvent, PlatformState, Rule, object_type_id};
use crate::workflow::WorkflowJob;
use crate::{Sim, SimError};

/// The state of an action status entry (`actions_framework.action_invocation_statuses`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ActionState {
    /// Sent, no final reply yet.
    Pending,
    /// Completed successfully.
    Complete,
    /// Failed (a reply with `message_type` 1, a script error, …).
    Error,
    /// No final reply within the workflow timeout.
    TimedOut,
}

/// One entry of the action status log.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ActionStatus {
    /// Entry id.
    pub id: i64,
    /// The incident it concerns.
    pub incident_id: i64,
    /// The rule that started it, if any.
    pub rule: Option<String>,
    /// The workflow (programmatic name), for workflow steps.
    pub workflow: Option<String>,
    /// The workflow instance id, for workflow steps.
    pub workflow_instance_id: Option<i64>,
    /// The function's name, for function invocations.
    pub function: Option<String>,
    /// The message destination the message went to.
    pub destination: Option<String>,
    /// Current state.
    pub state: ActionState,
    /// The latest message (the reply's `message`, or the failure).
    pub message: String,
    /// When it was last updated, ms since the epoch.
    pub time: i64,
}

/// How a workflow instance ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkflowStatus {
    /// Every step ran.
    Completed,
    /// A step failed; the message is the function's error message or the failure.
    Failed(String),
}

/// A finished workflow instance.
#[derive(Debug, Clone)]
pub struct WorkflowRun {
    /// The workflow's programmatic name.
    pub workflow: String,
    /// The workflow instance id (`workflow_instance.workflow_instance_id` of its messages).
    pub instance_id: i64,
    /// How it ended.
    pub status: WorkflowStatus,
    /// The (last) function invocation it sent, if it got that far.
    pub invocation: Option<Invocation>,
}

/// A started rule: its rule messages and its running workflows.
#[derive(Debug, Clone)]
pub struct RuleRun {
    /// The rule's name.
    pub rule: String,
    /// The incident it runs on.
    pub incident_id: i64,
    /// The rule messages sent to its message destinations, in the rule's order.
    pub messages: Vec<Invocation>,
    workflows: Vec<(String, i64, watch::Receiver<Option<WorkflowRun>>)>,
    /// One per rule message: true once its final reply (or timeout) is in the action status.
    followers: Vec<watch::Receiver<bool>>,
}

impl RuleRun {
    /// The workflow instances started, as (programmatic name, instance id).
    pub fn workflow_instances(&self) -> Vec<(String, i64)> {
        self.workflows
            .iter()
            .map(|(w, id, _)| (w.clone(), *id))
            .collect()
    }

    /// Waits until every workflow of the rule has ended (returned in the rule's order) and
    /// every rule message has its final reply recorded in the action status (or timed out).
    pub async fn wait(&self, timeout: Duration) -> Result<Vec<WorkflowRun>, SimError> {
        let fut = async {
            for rx in &self.followers {
                let _ = rx.clone().wait_for(|done| *done).await;
            }
            let mut out = Vec::new();
            for (name, id, rx) in &self.workflows {
                let mut rx = rx.clone();
                let run = match rx.wait_for(Option::is_some).await {
                    Ok(r) => r.clone(),
                    Err(_) => None,
                };
                out.push(run.unwrap_or_else(|| WorkflowRun {
                    workflow: name.clone(),
                    instance_id: *id,
                    status: WorkflowStatus::Failed("the workflow task ended abnormally".into()),
                    invocation: None,
                }));
            }
            out
        };
        tokio::time::timeout(timeout, fut).await.map_err(|_| {
            SimError::timeout(
                format!("the workflows of rule '{}' to end", self.rule),
                timeout,
            )
        })
    }
}

/// The object a manual rule runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectRef {
    /// An incident.
    Incident(i64),
    /// A note of an incident.
    Note {
        /// The incident.
        incident_id: i64,
        /// The note's id.
        note_id: i64,
    },
    /// An artifact of an incident.
    Artifact {
        /// The incident.
        incident_id: i64,
        /// The artifact's id.
        artifact_id: i64,
    },
}

impl ObjectRef {
    /// The incident the object belongs to.
    pub fn incident_id(&self) -> i64 {
        match *self {
            ObjectRef::Incident(id)
            | ObjectRef::Note {
                incident_id: id, ..
            }
            | ObjectRef::Artifact {
                incident_id: id, ..
            } => id,
        }
    }

    /// The object type name: `incident`, `note` or `artifact`.
    pub fn object_type(&self) -> &'static str {
        match self {
            ObjectRef::Incident(_) => "incident",
            ObjectRef::Note { .. } => "note",
            ObjectRef::Artifact { .. } => "artifact",
        }
    }
}

impl Sim {
    /// Runs a manual incident rule on an incident with activity-field `properties`: starts
    /// its workflows and sends its rule messages. Errors: the rule does not exist, is not a
    /// manual incident rule, or the incident does not exist.
    pub async fn run_manual_rule(
        &self,
        rule_name: &str,
        incident_id: i64,
        properties: Value,
    ) -> Result<RuleRun, SimError> {
        self.run_manual_rule_on(rule_name, ObjectRef::Incident(incident_id), properties)
            .await
    }

    /// Runs a manual rule on an incident, a note or an artifact with activity-field
    /// `properties`. The rule's object type must be the object's (a manual artifact rule runs on
    /// artifacts only); its rule messages carry the incident and the object (`note` or
    /// `artifact` key, `object_type` 2 or 4), and its workflows see the object. Errors: the rule
    /// does not exist, is automatic, disabled or for another object type; the incident or the
    /// object does not exist.
    pub async fn run_manual_rule_on(
        &self,
        rule_name: &str,
        object: ObjectRef,
        properties: Value,
    ) -> Result<RuleRun, SimError> {
        let incident_id = object.incident_id();
        let (rule, incident, target) = {
            let st = self.platform().state();
            let rule = st
                .rule_by_name(rule_name)
                .cloned()
                .ok_or_else(|| SimError::UnknownRule(rule_name.to_string()))?;
            let incident = st
                .incident_json(incident_id, false)
                .ok_or(SimError::UnknownIncident(incident_id))?;
            let target = match object {
                ObjectRef::Incident(_) => incident.clone(),
                ObjectRef::Note { note_id, .. } => st
                    .notes
                    .get(&incident_id)
                    .and_then(|l| l.iter().find(|n| n["id"] == note_id))
                    .cloned()
                    .ok_or_else(|| {
                        SimError::UnknownObject(format!("note {note_id} of incident {incident_id}"))
                    })?,
                ObjectRef::Artifact { artifact_id, .. } => st
                    .artifact(incident_id, artifact_id)
                    .cloned()
                    .ok_or_else(|| {
                        SimError::UnknownObject(format!(
                            "artifact {artifact_id} of incident {incident_id}"
                        ))
                    })?,
            };
            (rule, incident, target)
        };
        let object_type = object.object_type();
        if !rule.manual || rule.object_type != object_type {
            return Err(SimError::Rejected(format!(
                "rule '{rule_name}' is not a manual {object_type} rule (it is {} on {})",
                if rule.manual { "manual" } else { "automatic" },
                rule.object_type
            )));
        }
        if !rule.enabled {
            return Err(SimError::Rejected(format!(
                "rule '{rule_name}' is disabled"
            )));
        }
        // The platform offers a manual rule only on objects where its conditions hold.
        let offered = {
            let st = self.platform().state();
            let ev = PlatformEvent {
                object_type: object_type.to_string(),
                operation: Operation::Modified,
                incident_id,
                old: target.clone(),
                new: target.clone(),
            };
            conditions_hold(&st, &rule, &ev)
        };
        if !offered {
            return Err(SimError::Rejected(format!(
                "rule '{rule_name}' is not available on this {object_type} of incident \
                 {incident_id}: its conditions do not hold"
            )));
        }
        let properties = if properties.is_null() {
            json!({})
        } else {
            properties
        };
        self.fire_rule(
            &rule,
            incident_id,
            &incident,
            object_type,
            &target,
            None,
            properties,
        )
        .await
    }

    /// Starts a rule's workflows and sends its rule messages for an object of an incident.
    #[allow(clippy::too_many_arguments)]
    async fn fire_rule(
        &self,
        rule: &Rule,
        incident_id: i64,
        incident: &Value,
        object_type: &str,
        object: &Value,
        operation: Option<Operation>,
        properties: Value,
    ) -> Result<RuleRun, SimError> {
        let mut run = RuleRun {
            rule: rule.name.clone(),
            incident_id,
            messages: Vec::new(),
            workflows: Vec::new(),
            followers: Vec::new(),
        };
        for workflow in &rule.workflows {
            let job = WorkflowJob {
                workflow: workflow.clone(),
                instance_id: 0,
                incident_id,
                rule: Some(rule.name.clone()),
                rule_properties: properties.clone(),
                object_type: object_type.to_string(),
                object: object.clone(),
                timeout: self.workflow_timeout(),
            };
            let (id, rx) = self.start_workflow(job);
            run.workflows.push((workflow.clone(), id, rx));
        }
        for destination in &rule.destinations {
            let mut body = json!({
                "object_type": object_type_id(object_type),
                "operation_type": operation.map(Operation::as_str),
                "incident": incident,
                "properties": properties,
                "principal": principal(&self.config().email),
            });
            if object_type != "incident" {
                body[object_type] = object.clone();
            }
            let inv = self
                .send_rule_message(destination, &rule.name, body)
                .await?;
            let action = self.record_action_entry(ActionStatus {
                id: 0,
                incident_id,
                rule: Some(rule.name.clone()),
                workflow: None,
                workflow_instance_id: None,
                function: None,
                destination: Some(destination.clone()),
                state: ActionState::Pending,
                message: "Rule message sent".into(),
                time: 0,
            });
            run.followers
                .push(self.follow_rule_message(action, inv.clone()));
            run.messages.push(inv);
        }
        self.inner
            .rule_runs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(run.clone());
        Ok(run)
    }

    /// Every rule run so far (manual and automatic), oldest first.
    pub fn rule_runs(&self) -> Vec<RuleRun> {
        self.inner
            .rule_runs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Waits until the automatic rules engine has evaluated every change made so far (so that
    /// a test can assert that nothing fired).
    pub async fn wait_rules_idle(&self, timeout: Duration) -> Result<(), SimError> {
        let target = self.platform().state().events_emitted;
        let mut rx = self.inner.events_processed.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|n| *n >= target))
            .await
            .map_err(|_| {
                SimError::timeout("the automatic rules to evaluate every change", timeout)
            })?
            .map(|_| ())
            .map_err(|_| SimError::Shutdown)
    }

    /// Evaluates the automatic rules for one change and fires those whose conditions hold.
    async fn run_automatic_rules(&self, ev: &PlatformEvent) {
        let fired: Vec<(Rule, Value)> = {
            let st = self.platform().state();
            let incident = st.incident_json(ev.incident_id, false).unwrap_or_else(|| {
                if ev.object_type == "incident" {
                    ev.old.clone()
                } else {
                    Value::Null
                }
            });
            st.rules
                .values()
                .filter(|r| !r.manual && r.enabled && r.object_type == ev.object_type)
                .filter(|r| conditions_hold(&st, r, ev))
                .map(|r| (r.clone(), incident.clone()))
                .collect()
        };
        tracing::debug!(
            "automatic rules: {} {} on incident {}: {:?}",
            ev.object_type,
            ev.operation.as_str(),
            ev.incident_id,
            fired
                .iter()
                .map(|(r, _)| r.name.as_str())
                .collect::<Vec<_>>()
        );
        for (rule, incident) in fired {
            let object = if ev.new.is_null() { &ev.old } else { &ev.new };
            if let Err(e) = self
                .fire_rule(
                    &rule,
                    ev.incident_id,
                    &incident,
                    &ev.object_type,
                    object,
                    Some(ev.operation),
                    json!({}),
                )
                .await
            {
                tracing::warn!("automatic rule '{}' could not run: {e}", rule.name);
            }
        }
    }

    /// Records the reply to a rule message in the action status log when it arrives.
    fn follow_rule_message(&self, action: i64, inv: Invocation) -> watch::Receiver<bool> {
        let weak = self.downgrade();
        let timeout = self.workflow_timeout();
        let (tx, rx) = watch::channel(false);
        tokio::spawn(async move {
            let reply = inv.final_reply(timeout).await;
            let Some(sim) = weak.upgrade() else {
                let _ = tx.send(true);
                return;
            };
            match reply {
                Ok(r) if r.message_type == 1 => {
                    sim.update_action(action, ActionState::Error, &r.message)
                }
                Ok(r) => sim.update_action(action, ActionState::Complete, &r.message),
                Err(_) => sim.update_action(
                    action,
                    ActionState::TimedOut,
                    &format!("no final reply within {timeout:?}"),
                ),
            }
            let _ = tx.send(true);
        });
        rx
    }

    /// Starts a workflow instance; returns its id and a receiver of its end.
    pub(crate) fn start_workflow(
        &self,
        mut job: WorkflowJob,
    ) -> (i64, watch::Receiver<Option<WorkflowRun>>) {
        let id = {
            let mut st = self.platform().state();
            let id = st.next_id();
            let (name, wid) = st
                .store
                .get("workflows", &job.workflow)
                .map(|o| {
                    (
                        o.json.get("name").cloned().unwrap_or(Value::Null),
                        Some(o.id),
                    )
                })
                .unwrap_or((Value::Null, None));
            st.workflow_instances.insert(
                id,
                json!({
                    "id": id,
                    "workflow_instance_id": id,
                    "workflow": {"programmatic_name": job.workflow, "name": name, "workflow_id": wid},
                    "object": {"object_id": job.incident_id, "object_type": job.object_type},
                    "incident_id": job.incident_id,
                    "status": "running",
                    "start_date": now_ms() as i64,
                    "end_date": null,
                    "terminate_reason": null,
                }),
            );
            id
        };
        job.instance_id = id;
        let (tx, rx) = watch::channel(None);
        let weak = self.downgrade();
        tokio::spawn(async move {
            let run = crate::workflow::execute(weak, job).await;
            let _ = tx.send(Some(run));
        });
        (id, rx)
    }

    /// Marks a workflow instance as ended.
    pub(crate) fn finish_workflow_instance(&self, job: &WorkflowJob, status: &WorkflowStatus) {
        let mut st = self.platform().state();
        if let Some(wi) = st.workflow_instances.get_mut(&job.instance_id) {
            wi["end_date"] = json!(now_ms() as i64);
            match status {
                WorkflowStatus::Completed => wi["status"] = json!("completed"),
                WorkflowStatus::Failed(m) => {
                    wi["status"] = json!("failed");
                    wi["terminate_reason"] = json!(m);
                }
            }
        }
    }

    fn record_action_entry(&self, mut entry: ActionStatus) -> i64 {
        let mut st = self.platform().state();
        entry.id = st.next_id();
        entry.time = now_ms() as i64;
        let id = entry.id;
        st.action_status.push(entry);
        id
    }

    /// Records a workflow step in the action status log; returns the entry id.
    pub(crate) fn record_action(
        &self,
        job: &WorkflowJob,
        function: Option<&str>,
        destination: Option<&str>,
        state: ActionState,
        message: &str,
    ) -> i64 {
        self.record_action_entry(ActionStatus {
            id: 0,
            incident_id: job.incident_id,
            rule: job.rule.clone(),
            workflow: Some(job.workflow.clone()),
            workflow_instance_id: Some(job.instance_id),
            function: function.map(str::to_string),
            destination: destination.map(str::to_string),
            state,
            message: message.to_string(),
            time: 0,
        })
    }

    /// Updates an action status entry.
    pub(crate) fn update_action(&self, id: i64, state: ActionState, message: &str) {
        let mut st = self.platform().state();
        if let Some(e) = st.action_status.iter_mut().find(|e| e.id == id) {
            e.state = state;
            e.message = message.to_string();
            e.time = now_ms() as i64;
        }
    }

    /// The action status log of an incident, oldest first.
    pub fn action_status(&self, incident_id: i64) -> Vec<ActionStatus> {
        self.platform()
            .state()
            .action_status
            .iter()
            .filter(|e| e.incident_id == incident_id)
            .cloned()
            .collect()
    }

    pub(crate) fn set_incident_field_internal(
        &self,
        incident_id: i64,
        field: &str,
        value: &Value,
        custom: bool,
    ) -> Result<(), ApiError> {
        self.platform()
            .state()
            .set_incident_field(incident_id, field, value, custom)
            .map(|_| ())
    }

    pub(crate) fn add_note_internal(
        &self,
        incident_id: i64,
        body: &Value,
    ) -> Result<Value, ApiError> {
        self.platform().state().add_note(incident_id, body)
    }
}

/// Starts the automatic rules engine: it evaluates every reported change in order.
pub(crate) fn spawn_engine(sim: &Sim, mut rx: mpsc::UnboundedReceiver<PlatformEvent>) {
    let weak = sim.downgrade();
    let cancel = sim.inner.cancel.clone();
    tokio::spawn(async move {
        loop {
            let ev = tokio::select! {
                _ = cancel.cancelled() => return,
                ev = rx.recv() => match ev {
                    Some(ev) => ev,
                    None => return,
                },
            };
            let Some(sim) = weak.upgrade() else {
                return;
            };
            sim.run_automatic_rules(&ev).await;
            sim.inner.events_processed.send_modify(|n| *n += 1);
        }
    });
}

fn at_path<'a>(v: &'a Value, path: &[&str]) -> &'a Value {
    path.iter()
        .fold(v, |cur, seg| cur.get(*seg).unwrap_or(&Value::Null))
}

/// (old, new, old with names, new with names) of a condition's field.
fn field_values(st: &PlatformState, field: &str, ev: &PlatformEvent) -> [Value; 4] {
    let segs: Vec<&str> = field.split('.').collect();
    let Some((root, path)) = segs.split_first() else {
        return Default::default();
    };
    let (old, new) = if *root == ev.object_type {
        // A deleted object's conditions are evaluated on the object as it was.
        let new = if ev.operation == Operation::Deleted {
            &ev.old
        } else {
            &ev.new
        };
        (ev.old.clone(), new.clone())
    } else if *root == "incident" {
        let inc = st
            .incident_json(ev.incident_id, false)
            .unwrap_or(Value::Null);
        (inc.clone(), inc)
    } else {
        (Value::Null, Value::Null)
    };
    let names = |v: &Value| {
        if *root == "incident" && v.is_object() {
            st.incident_names(v)
        } else {
            v.clone()
        }
    };
    [
        at_path(&old, path).clone(),
        at_path(&new, path).clone(),
        at_path(&names(&old), path).clone(),
        at_path(&names(&new), path).clone(),
    ]
}

fn loose_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::String(s), Value::Number(n)) | (Value::Number(n), Value::String(s)) => {
            s.parse::<f64>().ok() == n.as_f64()
        }
        (Value::String(x), Value::String(y)) => x == y,
        (Value::Array(xs), Value::Array(ys)) => {
            xs.len() == ys.len() && xs.iter().all(|x| ys.iter().any(|y| loose_eq(x, y)))
        }
        _ => a == b,
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn contains(hay: &Value, needle: &Value) -> bool {
    match hay {
        Value::String(s) => needle
            .as_str()
            .map(|n| s.to_lowercase().contains(&n.to_lowercase()))
            .unwrap_or_else(|| s.contains(&needle.to_string())),
        Value::Array(items) => match needle {
            Value::Array(ns) => ns.iter().all(|n| items.iter().any(|i| loose_eq(i, n))),
            n => items.iter().any(|i| loose_eq(i, n)),
        },
        _ => false,
    }
}

/// Whether one exported condition `{field_name, method, value}` holds for a change.
pub fn condition_holds(st: &PlatformState, cond: &Value, ev: &PlatformEvent) -> bool {
    let method = cond
        .get("method")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let value = cond.get("value").unwrap_or(&Value::Null);
    let field = cond
        .get("field_name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let [old, new, old_n, new_n] = field_values(st, field, ev);
    let equals = |v: &Value| loose_eq(&new, v) || loose_eq(&new_n, v);
    let changed = ev.operation == Operation::Modified && old != new;
    match method {
        "object_added" => ev.operation == Operation::Created,
        "object_removed" => ev.operation == Operation::Deleted,
        "equals" => equals(value),
        "not_equals" => !equals(value),
        "contains" => contains(&new, value) || contains(&new_n, value),
        "not_contains" => !(contains(&new, value) || contains(&new_n, value)),
        "changed" => changed && old_n != new_n,
        "changed_to" => changed && equals(value),
        "has_a_value" => !is_empty(&new),
        "not_has_a_value" => is_empty(&new),
        "gt" | "lt" | "gte" | "lte" => match (number(&new), number(value)) {
            (Some(a), Some(b)) => match method {
                "gt" => a > b,
                "lt" => a < b,
                "gte" => a >= b,
                _ => a <= b,
            },
            _ => false,
        },
        "in" | "not_in" => {
            let hit = value.as_array().is_some_and(|vs| vs.iter().any(equals));
            (method == "in") == hit
        }
        _ => false,
    }
}

/// Whether a rule's conditions hold (`logic_type` all or any; no conditions: always).
pub fn conditions_hold(st: &PlatformState, rule: &Rule, ev: &PlatformEvent) -> bool {
    // A deletion fires only the rules that ask for it ("object is removed"); their other
    // conditions are evaluated on the object as it was.
    let asks_for_removal = rule
        .conditions
        .iter()
        .any(|c| c.get("method").and_then(Value::as_str) == Some("object_removed"));
    if ev.operation == Operation::Deleted && !asks_for_removal {
        return false;
    }
    if rule.conditions.is_empty() {
        return true;
    }
    let mut results = rule.conditions.iter().map(|c| condition_holds(st, c, ev));
    if rule.logic_any {
        results.any(|b| b)
    } else {
        results.all(|b| b)
    }
}
