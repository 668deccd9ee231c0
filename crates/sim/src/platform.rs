//! The simulated platform's in-memory state: the org, message destinations, functions, rules,
//! REST sessions and the REST request log.
//!
//! The REST server reads it and the [`crate::Sim`] API writes it. It is deliberately plain data
//! behind one mutex so that later work (incidents, artifacts, workflows, customization imports)
//! can add collections here without touching the servers' plumbing.
//!
//! [`Platform::state`] hands out a [`StateGuard`]: mutable access through it marks the state as
//! changed, which wakes the state-file writer ([`crate::state`]) when one is configured.

use std::collections::{BTreeMap, HashMap};
use std::ops::{Deref, DerefMut};
use std::sync::{Mutex, MutexGuard};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::imports::{ImportRecord, ObjectStore, StoredObject};
use crate::org::Workspace;
use crate::rules::ActionStatus;
use crate::threat::{LookupJob, RegisteredThreatService, ThreatLookup};

/// A message destination (a queue `actions.<org>.<programmatic_name>`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MessageDestination {
    /// Numeric id.
    #[serde(default)]
    pub id: i64,
    /// Display name.
    #[serde(default)]
    pub name: String,
    /// The queue's short name.
    #[serde(default)]
    pub programmatic_name: String,
    /// 0 = queue, 1 = topic.
    #[serde(default)]
    pub destination_type: i64,
    /// Whether consumers must reply on `acks.<org>.<name>`.
    #[serde(default = "yes")]
    pub expect_ack: bool,
    /// User ids allowed to read the queue.
    #[serde(default)]
    pub users: Vec<Value>,
    /// API-key handles allowed to read the queue.
    #[serde(default)]
    pub api_keys: Vec<Value>,
    /// Stable uuid.
    #[serde(default)]
    pub uuid: String,
    /// Any other fields a client stored with PUT.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn yes() -> bool {
    true
}

/// A function definition: its name and the message destination it is sent to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionDef {
    /// Numeric id.
    pub id: i64,
    /// API name (what handlers register).
    pub name: String,
    /// Display name.
    pub display_name: String,
    /// Stable uuid.
    pub uuid: String,
    /// Programmatic name of the message destination.
    pub destination: String,
}

/// A rule (custom action): it sends rule messages to its destinations and starts its workflows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rule {
    /// Numeric id (the `action_id` of its messages).
    pub id: i64,
    /// Display name.
    pub name: String,
    /// Programmatic names of its message destinations.
    pub destinations: Vec<String>,
    /// Stable uuid.
    pub uuid: String,
    /// Programmatic names of the workflows it starts.
    pub workflows: Vec<String>,
    /// Manual (type 1) or automatic (type 0).
    pub manual: bool,
    /// Object type name (`incident`, `note`, `artifact`, `task`…).
    pub object_type: String,
    /// Conditions as exported (`{field_name, method, value, …}`).
    pub conditions: Vec<Value>,
    /// `logic_type` "any" (true) or "all" (false).
    pub logic_any: bool,
    /// Whether the rule is enabled.
    pub enabled: bool,
}

impl Rule {
    /// A manual incident rule without workflows or conditions.
    pub fn manual(id: i64, name: &str, destinations: &[&str]) -> Rule {
        Rule {
            id,
            name: name.to_string(),
            destinations: destinations.iter().map(|d| d.to_string()).collect(),
            uuid: stable_uuid("rule", name),
            workflows: Vec::new(),
            manual: true,
            object_type: "incident".to_string(),
            conditions: Vec::new(),
            logic_any: false,
            enabled: true,
        }
    }
}

/// The numeric object type of an object type name (`actions_framework.action_object_types`).
pub fn object_type_id(name: &str) -> i64 {
    match name {
        "task" => 1,
        "note" => 2,
        "milestone" => 3,
        "artifact" => 4,
        "attachment" => 5,
        "datatable" => 6,
        "email" => 13,
        _ => 0,
    }
}

/// What happened to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// The object was created.
    Created,
    /// The object was modified.
    Modified,
    /// The object was deleted.
    Deleted,
}

impl Operation {
    /// `created`, `modified` or `deleted` (the ActionDataDTO's `operation_type`).
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Created => "created",
            Operation::Modified => "modified",
            Operation::Deleted => "deleted",
        }
    }
}

/// A change to an incident or one of its objects, which automatic rules evaluate.
#[derive(Debug, Clone, PartialEq)]
pub struct PlatformEvent {
    /// Object type name: `incident`, `note`, `artifact`.
    pub object_type: String,
    /// Created, modified or deleted.
    pub operation: Operation,
    /// The incident concerned.
    pub incident_id: i64,
    /// The object before (null when created).
    pub old: Value,
    /// The object after (null when deleted).
    pub new: Value,
}

/// A password-login REST session.
#[derive(Debug, Clone)]
pub struct RestSession {
    /// The CSRF token the client must send as `X-sess-id`.
    pub csrf_token: String,
    /// The user id reported at login.
    pub user_id: i64,
}

/// One line of the REST request log: method, path with query, status.
pub type RestLogEntry = (String, String, u16);

/// All mutable platform data.
#[derive(Debug, Default)]
pub struct PlatformState {
    /// Message destinations by id.
    pub destinations: BTreeMap<i64, MessageDestination>,
    /// Functions by API name.
    pub functions: BTreeMap<String, FunctionDef>,
    /// Rules by id.
    pub rules: BTreeMap<i64, Rule>,
    /// Password sessions by `JSESSIONID`.
    pub sessions: HashMap<String, RestSession>,
    /// Every REST request answered so far.
    pub rest_log: Vec<RestLogEntry>,
    /// Objects stored by accepted imports, verbatim.
    pub store: ObjectStore,
    /// Every posted import, in order.
    pub imports: Vec<ImportRecord>,
    /// The rejection message of the next posted import (fault injection).
    pub reject_next_import: Option<String>,
    /// Incidents by id (select fields hold ids; custom fields under `properties`).
    pub incidents: BTreeMap<i64, Value>,
    /// Notes by incident id, in creation order.
    pub notes: BTreeMap<i64, Vec<Value>>,
    /// The action status log (rule messages and workflow function invocations).
    pub action_status: Vec<ActionStatus>,
    /// Workflow instances by id (`GET /workflow_instances/{id}`).
    pub workflow_instances: BTreeMap<i64, Value>,
    /// Artifacts by incident id, in creation order.
    pub artifacts: BTreeMap<i64, Vec<Value>>,
    /// Where changes are reported for automatic rules (set by [`crate::Sim::start`]).
    pub events: Option<tokio::sync::mpsc::UnboundedSender<PlatformEvent>>,
    /// How many changes were reported to the automatic rules engine.
    pub events_emitted: u64,
    /// Workspaces added besides the default one, by id.
    pub workspaces: BTreeMap<i64, Workspace>,
    /// Registered custom threat services, by name.
    pub threat_services: BTreeMap<String, RegisteredThreatService>,
    /// Every threat lookup started for a new artifact, oldest first.
    pub threat_lookups: Vec<ThreatLookup>,
    /// Where new threat lookups are sent (set by [`crate::Sim::start`]).
    pub(crate) threat_jobs: Option<tokio::sync::mpsc::UnboundedSender<LookupJob>>,
    pub(crate) next_id: i64,
    pub(crate) next_import_id: i64,
}

impl PlatformState {
    /// A fresh numeric id (shared sequence for every kind of object).
    pub fn next_id(&mut self) -> i64 {
        self.next_id += 1;
        self.next_id
    }

    /// Reports a change to the automatic rules engine (if one is running).
    pub fn emit(
        &mut self,
        object_type: &str,
        operation: Operation,
        incident_id: i64,
        old: Value,
        new: Value,
    ) {
        if let Some(tx) = &self.events {
            self.events_emitted += 1;
            let _ = tx.send(PlatformEvent {
                object_type: object_type.to_string(),
                operation,
                incident_id,
                old,
                new,
            });
        }
    }

    /// A fresh configuration import id.
    pub fn next_import_id(&mut self) -> i64 {
        self.next_import_id += 1;
        self.next_import_id
    }

    /// The destination with this programmatic name.
    pub fn destination_by_name(&self, programmatic_name: &str) -> Option<&MessageDestination> {
        self.destinations
            .values()
            .find(|d| d.programmatic_name == programmatic_name)
    }

    /// The programmatic name of the destination called `name` (display or programmatic name);
    /// `name` itself when there is none.
    pub fn destination_programmatic_name(&self, name: &str) -> String {
        self.destination_by_name(name)
            .or_else(|| self.destinations.values().find(|d| d.name == name))
            .map_or_else(|| name.to_string(), |d| d.programmatic_name.clone())
    }

    /// Creates the destination if it does not exist; returns its id.
    pub fn ensure_destination(&mut self, programmatic_name: &str) -> i64 {
        if let Some(d) = self.destination_by_name(programmatic_name) {
            return d.id;
        }
        let id = self.next_id();
        self.destinations.insert(
            id,
            MessageDestination {
                id,
                name: programmatic_name.to_string(),
                programmatic_name: programmatic_name.to_string(),
                destination_type: 0,
                expect_ack: true,
                users: Vec::new(),
                api_keys: Vec::new(),
                uuid: stable_uuid("destination", programmatic_name),
                extra: Map::new(),
            },
        );
        id
    }

    /// The rule with this display name.
    pub fn rule_by_name(&self, name: &str) -> Option<&Rule> {
        self.rules.values().find(|r| r.name == name)
    }

    /// JSON of a function as `GET /functions/{name}` answers it: the imported definition (with
    /// the platform's id) or, for a function added with `register_function`, a synthesized one.
    pub fn function_json(&self, f: &FunctionDef, handle_names: bool) -> Value {
        let handle = if handle_names {
            json!(f.destination)
        } else {
            json!(self.destination_by_name(&f.destination).map(|d| d.id))
        };
        if let Some(o) = self.store.get("functions", &f.name) {
            let mut j = o.json.clone();
            j["id"] = json!(f.id);
            j["destination_handle"] = handle;
            if !handle_names && let Some(ws) = j.get_mut("workflows").and_then(Value::as_array_mut)
            {
                for w in ws.iter_mut() {
                    let pn = w
                        .get("programmatic_name")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    if let Some(wf) = self.store.get("workflows", pn) {
                        w["workflow_id"] = json!(wf.id);
                    }
                }
            }
            return j;
        }
        json!({
            "id": f.id,
            "name": f.name,
            "display_name": f.display_name,
            "uuid": f.uuid,
            "description": {"format": "text", "content": format!("Simulated function {}", f.name)},
            "destination_handle": handle,
            "export_key": f.name,
            "version": 1,
            "creator": {"id": 1, "type": "user", "name": "admin@example.com", "display_name": "Sim Admin"},
            "last_modified_by": {"id": 1, "type": "user", "name": "admin@example.com", "display_name": "Sim Admin"},
            "last_modified_time": 0,
            "tags": [],
            "view_items": [],
            "workflows": [],
        })
    }

    /// JSON of a rule as `GET /actions` lists it (`type` and `object_type` as numbers;
    /// destinations and workflows as names with `handle_format=names`, else as ids).
    pub fn rule_json(&self, r: &Rule, handle_names: bool) -> Value {
        let dests: Vec<Value> = r
            .destinations
            .iter()
            .map(|name| {
                if handle_names {
                    json!(name)
                } else {
                    json!(self.destination_by_name(name).map(|d| d.id))
                }
            })
            .collect();
        let workflows: Vec<Value> = r
            .workflows
            .iter()
            .map(|name| {
                if handle_names {
                    json!(name)
                } else {
                    json!(self.store.get("workflows", name).map(|w| w.id))
                }
            })
            .collect();
        let mut j = match self.store.get("actions", &r.name) {
            Some(o) => o.json.clone(),
            None => json!({
                "automations": [],
                "view_items": [],
                "timeout_seconds": 86400,
                "export_key": r.name,
                "tags": [],
            }),
        };
        j["id"] = json!(r.id);
        j["name"] = json!(r.name);
        j["type"] = json!(if r.manual { 1 } else { 0 });
        j["object_type"] = json!(object_type_id(&r.object_type));
        j["enabled"] = json!(r.enabled);
        j["logic_type"] = json!(if r.logic_any { "any" } else { "all" });
        j["conditions"] = Value::Array(r.conditions.clone());
        j["uuid"] = json!(r.uuid);
        j["message_destinations"] = Value::Array(dests);
        j["workflows"] = Value::Array(workflows);
        j
    }

    /// JSON of a workflow as `GET /workflows` lists it: the imported definition with the
    /// platform's `workflow_id`.
    pub fn workflow_json(&self, o: &StoredObject) -> Value {
        let mut j = o.json.clone();
        j["workflow_id"] = json!(o.id);
        j
    }
}

/// A deterministic uuid (v5) for a simulated object.
pub fn stable_uuid(kind: &str, name: &str) -> String {
    uuid::Uuid::new_v5(
        &uuid::Uuid::NAMESPACE_OID,
        format!("soar-sim/{kind}/{name}").as_bytes(),
    )
    .to_string()
}

/// The shared platform: the org identity (fixed at start) and the mutable [`PlatformState`].
#[derive(Debug)]
pub struct Platform {
    /// Org id.
    pub org_id: i64,
    /// Org name.
    pub org_name: String,
    /// Org uuid.
    pub org_uuid: String,
    /// Org `cloud_account` (matched before uuid and name by the client's `org` setting).
    pub cloud_account: String,
    state: Mutex<PlatformState>,
    /// Notified when a [`StateGuard`] that was used mutably is released.
    pub(crate) changed: tokio::sync::Notify,
}

/// The locked [`PlatformState`]. Dereferencing it mutably marks the state as changed; the change
/// is signalled when the guard is dropped.
pub struct StateGuard<'a> {
    guard: MutexGuard<'a, PlatformState>,
    changed: Option<&'a tokio::sync::Notify>,
    dirty: bool,
}

impl std::fmt::Debug for StateGuard<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.guard.fmt(f)
    }
}

impl Deref for StateGuard<'_> {
    type Target = PlatformState;

    fn deref(&self) -> &PlatformState {
        &self.guard
    }
}

impl DerefMut for StateGuard<'_> {
    fn deref_mut(&mut self) -> &mut PlatformState {
        self.dirty = true;
        &mut self.guard
    }
}

impl Drop for StateGuard<'_> {
    fn drop(&mut self) {
        if self.dirty
            && let Some(n) = self.changed
        {
            n.notify_one();
        }
    }
}

impl Platform {
    /// A platform with one org and nothing else.
    pub fn new(org_id: i64, org_name: &str) -> Platform {
        Platform {
            org_id,
            org_name: org_name.to_string(),
            org_uuid: stable_uuid("org", &org_id.to_string()),
            cloud_account: stable_uuid("cloud_account", &org_id.to_string()),
            state: Mutex::new(PlatformState::default()),
            changed: tokio::sync::Notify::new(),
        }
    }

    /// Locks the state. A poisoned lock is recovered: the state is plain data. Mutating it
    /// through the guard marks it as changed (for the state file).
    pub fn state(&self) -> StateGuard<'_> {
        StateGuard {
            guard: self.state.lock().unwrap_or_else(|p| p.into_inner()),
            changed: Some(&self.changed),
            dirty: false,
        }
    }

    /// Locks the state for changes that are not persisted (REST log, sessions).
    pub(crate) fn state_quiet(&self) -> StateGuard<'_> {
        StateGuard {
            guard: self.state.lock().unwrap_or_else(|p| p.into_inner()),
            changed: None,
            dirty: false,
        }
    }

    /// The org as listed in a session response.
    pub fn session_org_json(&self) -> Value {
        json!({
            "id": self.org_id,
            "name": self.org_name,
            "uuid": self.org_uuid,
            "cloud_account": self.cloud_account,
            "enabled": true,
            "city": null, "addr": null, "addr2": null, "zip": null, "state": null,
            "has_available_twofactor": false,
            "supports_ldap": false,
            "twofactor_auth_domain": null,
            "twofactor_cookie_lifetime_secs": 0,
            "attachments_enabled": true,
            "has_saml": false,
            "require_saml": false,
            "tasks_private": false,
            "authorized_ldap_group": null,
            "perms": {
                "administrator": false,
                "master_administrator": true,
                "create_incs": true,
                "observer": false,
                "create_shared_layout": true
            }
        })
    }

    /// The org as `GET /rest/orgs/{id}` answers it, with its workspaces.
    pub fn org_json(&self) -> Value {
        let workspaces = self.state().workspaces_json();
        json!({
            "id": self.org_id,
            "name": self.org_name,
            "uuid": self.org_uuid,
            "cloud_account": self.cloud_account,
            "enabled": true,
            "actions_framework_enabled": true,
            "attachments_enabled": true,
            "tasks_private": false,
            "incident_deletion_allowed": true,
            "effective_permissions": {},
            "users": {},
            "groups": {},
            "workspaces": workspaces,
        })
    }

    /// Adds a destination (idempotent); returns its id.
    pub fn add_message_destination(&self, programmatic_name: &str) -> i64 {
        self.state().ensure_destination(programmatic_name)
    }

    /// Registers (or re-points) a function; creates its destination.
    pub fn register_function(&self, name: &str, destination: &str) {
        let mut st = self.state();
        st.ensure_destination(destination);
        if let Some(f) = st.functions.get_mut(name) {
            f.destination = destination.to_string();
            return;
        }
        let id = st.next_id();
        st.functions.insert(
            name.to_string(),
            FunctionDef {
                id,
                name: name.to_string(),
                display_name: display_name(name),
                uuid: stable_uuid("function", name),
                destination: destination.to_string(),
            },
        );
    }

    /// Adds (or replaces) a manual incident rule; creates its destinations.
    pub fn add_rule(&self, id: i64, name: &str, destinations: &[&str]) {
        let mut st = self.state();
        for d in destinations {
            st.ensure_destination(d);
        }
        st.rules.insert(id, Rule::manual(id, name, destinations));
    }

    /// A copy of the function definition.
    pub fn function(&self, name: &str) -> Option<FunctionDef> {
        self.state().functions.get(name).cloned()
    }

    /// A copy of the rule with this name.
    pub fn rule_by_name(&self, name: &str) -> Option<Rule> {
        self.state().rule_by_name(name).cloned()
    }

    /// Appends to the REST request log.
    pub fn log_request(&self, method: &str, path: &str, status: u16) {
        self.state_quiet()
            .rest_log
            .push((method.to_string(), path.to_string(), status));
    }
}

/// `fn_my_app_lookup` -> `Fn My App Lookup`.
fn display_name(name: &str) -> String {
    name.split('_')
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut c = w.chars();
            match c.next() {
                Some(first) => first.to_uppercase().chain(c).collect::<String>(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_are_idempotent_and_functions_create_them() {
        let p = Platform::new(201, "Test Org");
        let a = p.add_message_destination("fn_a");
        assert_eq!(a, p.add_message_destination("fn_a"));
        p.register_function("fn_hello_world", "fn_b");
        let st = p.state();
        assert!(st.destination_by_name("fn_b").is_some());
        let f = st.functions.get("fn_hello_world").unwrap();
        assert_eq!(f.display_name, "Fn Hello World");
        let j = st.function_json(f, true);
        assert_eq!(j["destination_handle"], "fn_b");
        let j = st.function_json(f, false);
        assert_eq!(
            j["destination_handle"],
            st.destination_by_name("fn_b").unwrap().id
        );
    }

    #[test]
    fn destination_round_trips_with_extra_fields() {
        let p = Platform::new(201, "Test Org");
        p.add_message_destination("q");
        let st = p.state();
        let d = st.destination_by_name("q").unwrap().clone();
        let mut v = serde_json::to_value(&d).unwrap();
        v["api_keys"] = json!([4]);
        v["export_key"] = json!("q");
        let back: MessageDestination = serde_json::from_value(v).unwrap();
        assert_eq!(back.api_keys, vec![json!(4)]);
        assert_eq!(back.extra.get("export_key"), Some(&json!("q")));
    }
}
