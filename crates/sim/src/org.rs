//! The org's workspaces and phases, as `GET /workspaces[/{id}]` and `GET /phases[/{id}]` answer
//! them.
//!
//! Every org has the default workspace (id 1, "Default workspace"); more can be added through the
//! Rust API ([`crate::Sim::add_workspace`]) or `POST /workspaces`. An incident's `workspace` holds
//! a workspace id; creating or updating an incident accepts an id, a name or a display name and
//! refuses a workspace that does not exist.
//!
//! Phases are the platform's built-in ones (Engage, Detect/Analyze, Respond, Post-Incident,
//! Complete; ids 1000–1004) followed by the phases imported with customizations (ids from
//! 1100 on, in import order). An incident's `phase_id` accepts any of them, by id or name.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::incidents::ApiError;
use crate::platform::{PlatformState, stable_uuid};

/// Id of the default workspace.
pub const DEFAULT_WORKSPACE_ID: i64 = 1;
/// Display name of the default workspace.
pub const DEFAULT_WORKSPACE: &str = "Default workspace";

/// The built-in phases: (id, name).
pub const BUILTIN_PHASES: &[(i64, &str)] = &[
    (1000, "Engage"),
    (1001, "Detect/Analyze"),
    (1002, "Respond"),
    (1003, "Post-Incident"),
    (1004, "Complete"),
];

/// Id of the first imported phase.
const CUSTOM_PHASE_BASE: i64 = 1100;

/// A workspace other than the default one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Workspace {
    /// Numeric id (what incidents hold in `workspace`).
    pub id: i64,
    /// Programmatic name.
    pub name: String,
    /// The name people see (what integrations match a workspace by).
    pub display_name: String,
    /// Free text.
    #[serde(default)]
    pub description: String,
}

impl Workspace {
    /// The workspace as the platform answers it.
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "display_name": self.display_name,
            "description": self.description,
            "is_default": self.id == DEFAULT_WORKSPACE_ID,
            "entity_type": "workspace",
            "uuid": stable_uuid("workspace", &self.name),
        })
    }
}

fn default_workspace() -> Workspace {
    Workspace {
        id: DEFAULT_WORKSPACE_ID,
        name: "default".into(),
        display_name: DEFAULT_WORKSPACE.into(),
        description: "The org's default workspace".into(),
    }
}

/// `My Team` -> `my_team`.
fn programmatic(display_name: &str) -> String {
    let s: String = display_name
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() { "workspace".into() } else { s }
}

impl PlatformState {
    /// Every workspace, the default one first.
    pub fn workspace_list(&self) -> Vec<Workspace> {
        let mut out = vec![default_workspace()];
        out.extend(self.workspaces.values().cloned());
        out
    }

    /// Every workspace as `GET /workspaces` lists them.
    pub fn workspaces_json(&self) -> Vec<Value> {
        self.workspace_list()
            .iter()
            .map(Workspace::to_json)
            .collect()
    }

    /// A workspace by id, name or display name.
    pub fn workspace(&self, given: &Value) -> Option<Workspace> {
        let list = self.workspace_list();
        match given {
            Value::Number(n) => list.into_iter().find(|w| n.as_i64() == Some(w.id)),
            Value::String(s) => {
                let by_id = s.trim().parse::<i64>().ok();
                list.into_iter()
                    .find(|w| by_id == Some(w.id) || w.name == *s || w.display_name == *s)
            }
            Value::Object(o) => o
                .get("id")
                .or(o.get("name"))
                .and_then(|v| self.workspace(v)),
            _ => None,
        }
    }

    /// The workspace id for an incident's `workspace` value (null means the default one).
    pub fn resolve_workspace(&self, given: &Value) -> Result<i64, ApiError> {
        if given.is_null() {
            return Ok(DEFAULT_WORKSPACE_ID);
        }
        self.workspace(given)
            .map(|w| w.id)
            .ok_or_else(|| ApiError::new(400, format!("Workspace {given} does not exist")))
    }

    /// Adds a workspace (`POST /workspaces`: `{"display_name", "name"?, "description"?}`).
    /// A display name that exists is refused.
    pub fn add_workspace(&mut self, body: &Value) -> Result<Workspace, ApiError> {
        let display_name = body
            .get("display_name")
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ApiError::new(400, "A workspace needs a display_name"))?;
        let name = match body.get("name") {
            Some(Value::String(n)) if !n.trim().is_empty() => n.trim().to_string(),
            None | Some(Value::Null) => programmatic(display_name),
            Some(other) => {
                return Err(ApiError::new(
                    400,
                    format!("A workspace's name must be a non-empty string, not {other}"),
                ));
            }
        };
        if self
            .workspace_list()
            .iter()
            .any(|w| w.display_name == display_name || w.name == name)
        {
            return Err(ApiError::new(
                409,
                format!("A workspace named '{display_name}' ({name}) already exists"),
            ));
        }
        let id = self
            .workspaces
            .keys()
            .next_back()
            .copied()
            .unwrap_or(DEFAULT_WORKSPACE_ID)
            .max(DEFAULT_WORKSPACE_ID)
            .saturating_add(1);
        let w = Workspace {
            id,
            name,
            display_name: display_name.to_string(),
            description: body
                .get("description")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
        };
        self.workspaces.insert(id, w.clone());
        Ok(w)
    }

    /// Every phase as `GET /phases` lists them: the built-in ones, then the imported ones.
    pub fn phases(&self) -> Vec<Value> {
        let mut out: Vec<Value> = BUILTIN_PHASES
            .iter()
            .enumerate()
            .map(|(i, (id, name))| {
                json!({
                    "id": id,
                    "name": name,
                    "enabled": true,
                    "order": i + 1,
                    "export_key": name,
                    "uuid": stable_uuid("phase", name),
                    "perms": {"read": true, "write": true, "delete": false},
                })
            })
            .collect();
        out.extend(self.store.list("phases").iter().enumerate().map(|(i, o)| {
            let mut j = o.json.clone();
            j["id"] = json!(CUSTOM_PHASE_BASE + i as i64);
            if j.get("name").is_none_or(Value::is_null) {
                j["name"] = json!(o.key);
            }
            j
        }));
        out
    }

    /// A phase by id or name.
    pub fn phase(&self, given: &str) -> Option<Value> {
        let id = given.trim().parse::<i64>().ok();
        self.phases()
            .into_iter()
            .find(|p| id.is_some_and(|id| p["id"] == id) || p["name"] == given)
    }

    /// The select values of the incident field `phase_id` (every phase; Engage by default).
    pub(crate) fn phase_values(&self) -> Value {
        Value::Array(
            self.phases()
                .iter()
                .map(|p| {
                    json!({
                        "value": p["id"],
                        "label": p["name"],
                        "enabled": p.get("enabled").cloned().unwrap_or(json!(true)),
                        "hidden": false,
                        "default": p["id"] == BUILTIN_PHASES[0].0,
                        "properties": null,
                        "uuid": p.get("uuid").cloned().unwrap_or(Value::Null),
                    })
                })
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workspaces_resolve_by_id_name_and_display_name() {
        let mut st = PlatformState::default();
        assert_eq!(st.resolve_workspace(&Value::Null).unwrap(), 1);
        assert_eq!(
            st.resolve_workspace(&json!("Default workspace")).unwrap(),
            1
        );
        let w = st
            .add_workspace(&json!({"display_name": "SOC Team"}))
            .unwrap();
        assert_eq!(w.id, 2);
        assert_eq!(w.name, "soc_team");
        assert_eq!(st.resolve_workspace(&json!("SOC Team")).unwrap(), 2);
        assert_eq!(st.resolve_workspace(&json!(2)).unwrap(), 2);
        assert_eq!(st.resolve_workspace(&json!({"id": 2})).unwrap(), 2);
        assert_eq!(st.resolve_workspace(&json!(9)).unwrap_err().status, 400);
        assert_eq!(
            st.add_workspace(&json!({"display_name": "SOC Team"}))
                .unwrap_err()
                .status,
            409
        );
        assert_eq!(st.add_workspace(&json!({})).unwrap_err().status, 400);
        assert_eq!(st.workspaces_json().len(), 2);
    }

    #[test]
    fn phases_include_imported_ones() {
        let mut st = PlatformState::default();
        assert_eq!(st.phases().len(), 5);
        st.store.upsert(
            "phases",
            "Triage",
            7,
            json!({"name": "Triage", "enabled": true}),
        );
        let p = st.phase("Triage").unwrap();
        assert_eq!(p["id"], 1100);
        assert_eq!(st.phase("1000").unwrap()["name"], "Engage");
        assert_eq!(st.phase_values().as_array().unwrap().len(), 6);
    }
}
