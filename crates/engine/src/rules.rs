//! The rule directory: rule ids to display names, as the platform names them (`GET /actions`).
//! A rule message carries only the rule's id, and handlers are bound to names; the runtime loads
//! the directory at start-up, and a message naming a rule created since refreshes it once.

use std::collections::HashMap;
use std::sync::RwLock;

use serde_json::Value;
use soar_sdk::{Rest, RestError};

/// Rule id → display name, owned by the runtime and read by the dispatcher.
#[derive(Debug, Default)]
pub struct RuleDirectory {
    names: RwLock<HashMap<i64, String>>,
    rest: Option<Rest>,
}

impl RuleDirectory {
    /// A directory that refreshes itself through `rest` (none: only what [`set`](Self::set) gives).
    pub fn new(rest: Option<Rest>) -> Self {
        RuleDirectory {
            names: RwLock::new(HashMap::new()),
            rest,
        }
    }

    /// Replaces the names.
    pub fn set(&self, names: HashMap<i64, String>) {
        *self.names.write().unwrap_or_else(|p| p.into_inner()) = names;
    }

    /// Reads the rule list from the platform.
    pub async fn load(&self) -> Result<(), RestError> {
        if let Some(rest) = &self.rest {
            self.set(parse_rule_names(&rest.get("/actions").await?));
        }
        Ok(())
    }

    fn known(&self, id: i64) -> Option<String> {
        self.names
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&id)
            .cloned()
    }

    /// The display name of rule `id`, refreshing the list once when it is unknown.
    pub async fn name_of(&self, id: i64) -> Option<String> {
        if let Some(name) = self.known(id) {
            return Some(name);
        }
        match self.load().await {
            Ok(()) => self.known(id),
            Err(e) => {
                tracing::warn!("cannot refresh the rule list (GET /actions): {e}");
                None
            }
        }
    }
}

/// `{"entities": [{"id": 1, "name": "Rule"}]}` → id → name.
pub fn parse_rule_names(actions: &Value) -> HashMap<i64, String> {
    actions
        .get("entities")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|a| {
                    Some((a.get("id")?.as_i64()?, a.get("name")?.as_str()?.to_string()))
                })
                .collect()
        })
        .unwrap_or_default()
}
