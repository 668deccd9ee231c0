//! Customizations of the linked components: parsing the YAML they embed, validating it against
//! their handlers, and pushing it to the platform (`host customize`) safely and repeatably.
//!
//! A push shows a plan (new, changed, unchanged objects) computed against the platform's own
//! export, imports only when something is new or changed (`POST /configurations/imports`, then
//! `PUT … "status":"ACCEPTED"`), and grants the host's API key (or user) access to each message
//! destination. A rejected import stops with the platform's messages and changes nothing.

use serde_json::{Value, json};
use soar_customizations::plan::{Adopted, Plan, adopt_rule_names, keep_platform_uuids, plan};
use soar_customizations::{CustomizationError, Customizations};
use soar_rest::{RestClient, RestError};

pub use soar_customizations as model;

/// Why customizations could not be validated or pushed.
#[derive(Debug, thiserror::Error)]
pub enum CustomizeError {
    #[error("{0}")]
    Merge(#[from] CustomizationError),
    #[error(transparent)]
    Rest(#[from] RestError),
    #[error("the platform rejected the import (status {status}):\n{messages}")]
    Rejected { status: String, messages: String },
    #[error("{0}")]
    Declined(String),
    #[error("the platform answered an import without {0}")]
    BadAnswer(&'static str),
}

/// The merged, validated definitions of several components.
pub fn merged(
    parts: impl IntoIterator<Item = Customizations>,
) -> Result<Customizations, CustomizeError> {
    let all = Customizations::merge(parts)?;
    all.validate()?;
    Ok(all)
}

/// What a push did.
#[derive(Debug, Clone)]
pub struct PushReport {
    /// Our rules that took the platform's name for the same rule (an original app's).
    pub adopted: Vec<Adopted>,
    pub plan: Plan,
    /// Whether an import was sent (and accepted).
    pub imported: bool,
    /// The platform's import messages.
    pub messages: Vec<String>,
    /// Message destinations the host was given access to now.
    pub granted: Vec<String>,
}

fn messages(dto: &Value) -> Vec<String> {
    dto.get("messages")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .map(|m| {
                    format!(
                        "{}: {}",
                        m.get("type").and_then(Value::as_str).unwrap_or("INFO"),
                        m.get("text").and_then(Value::as_str).unwrap_or_default()
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Removes every `tags` list's content, as resilient-circuits does before importing.
fn without_tags(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                if k == "tags" && v.is_array() {
                    *v = json!([]);
                } else {
                    without_tags(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(without_tags),
        _ => {}
    }
}

/// Pushes `ours` to the platform. `confirm` sees the plan and decides whether to import;
/// `progress` receives a line for each step.
pub async fn push(
    rest: &RestClient,
    ours: &Customizations,
    confirm: impl FnOnce(&Plan) -> bool,
    progress: &mut dyn FnMut(&str),
) -> Result<PushReport, CustomizeError> {
    let platform = rest
        .post(
            "/configurations/exports/",
            &json!({"layouts": true, "actions": true, "phases_and_tasks": true}),
        )
        .await?;
    // Rules the platform holds under the original apps' names are updated there, not doubled.
    let mut ours = ours.clone();
    let adopted = adopt_rule_names(&mut ours, &platform);
    for a in &adopted {
        let same = if a.kind == "rule" {
            "it starts the same workflow"
        } else {
            "it calls the same function on the same object"
        };
        progress(&format!(
            "{} \"{}\" is on the platform as \"{}\" ({same}): updated in place under that name",
            a.kind, a.ours, a.theirs
        ));
    }
    let mut export = ours.export();
    keep_platform_uuids(&mut export, &platform);
    without_tags(&mut export);
    let plan = plan(&export, &platform);
    progress(&plan.render());
    let mut report = PushReport {
        adopted,
        plan: plan.clone(),
        imported: false,
        messages: Vec::new(),
        granted: Vec::new(),
    };
    if plan.is_empty() {
        progress("No changes: the platform already has these customizations; nothing imported.");
    } else {
        if !confirm(&plan) {
            return Err(CustomizeError::Declined(
                "not imported (answer y, or pass -y)".into(),
            ));
        }
        let created = rest.post("/configurations/imports", &export).await?;
        report.messages.extend(messages(&created));
        for m in messages(&created) {
            progress(&format!("platform: {m}"));
        }
        let status = created
            .get("status")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let has_errors = report.messages.iter().any(|m| m.starts_with("ERROR"));
        let id = created.get("id").and_then(Value::as_i64);
        if status != "PENDING" || has_errors {
            if let (Some(id), "PENDING") = (id, status.as_str()) {
                let mut rejected = created.clone();
                rejected["status"] = json!("REJECTED");
                let _ = rest
                    .put(&format!("/configurations/imports/{id}"), &rejected)
                    .await;
            }
            return Err(CustomizeError::Rejected {
                status,
                messages: report.messages.join("\n"),
            });
        }
        let id = id.ok_or(CustomizeError::BadAnswer("an id"))?;
        let mut accepted = created.clone();
        accepted["status"] = json!("ACCEPTED");
        let applied = rest
            .put(&format!("/configurations/imports/{id}"), &accepted)
            .await?;
        for m in messages(&applied) {
            if !report.messages.contains(&m) {
                progress(&format!("platform: {m}"));
                report.messages.push(m);
            }
        }
        let status = applied
            .get("status")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if status != "ACCEPTED" {
            return Err(CustomizeError::Rejected {
                status: status.to_string(),
                messages: report.messages.join("\n"),
            });
        }
        report.imported = true;
        progress(&format!("Imported (import {id} accepted)."));
    }
    report.granted = grant_access(rest, &ours, progress).await?;
    Ok(report)
}

/// Gives the logged-in API key (or user) access to each of our message destinations.
async fn grant_access(
    rest: &RestClient,
    ours: &Customizations,
    progress: &mut dyn FnMut(&str),
) -> Result<Vec<String>, CustomizeError> {
    let (list_key, principal) = match (rest.api_key_handle(), rest.user_id()) {
        (Some(handle), _) => ("api_keys", handle),
        (None, Some(user)) => ("users", user),
        (None, None) => {
            progress("The session has neither an API key handle nor a user id: no access granted.");
            return Ok(Vec::new());
        }
    };
    let destinations = rest.get("/message_destinations").await?;
    let entities = destinations
        .get("entities")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut granted = Vec::new();
    for md in &ours.message_destinations {
        let Some(dest) = entities
            .iter()
            .find(|d| d.get("programmatic_name").and_then(Value::as_str) == Some(md.name.as_str()))
        else {
            progress(&format!(
                "message destination {} is not on the platform; no access granted",
                md.name
            ));
            continue;
        };
        let has = dest
            .get(list_key)
            .and_then(Value::as_array)
            .is_some_and(|l| l.iter().any(|v| v.as_i64() == Some(principal)));
        if has {
            continue;
        }
        let Some(id) = dest.get("id").and_then(Value::as_i64) else {
            continue;
        };
        let mut updated = dest.clone();
        match updated.get_mut(list_key).and_then(Value::as_array_mut) {
            Some(list) => list.push(json!(principal)),
            None => updated[list_key] = json!([principal]),
        }
        rest.put(&format!("/message_destinations/{id}"), &updated)
            .await?;
        progress(&format!(
            "Granted {} {principal} access to message destination {}.",
            if list_key == "api_keys" {
                "API key"
            } else {
                "user"
            },
            md.name
        ));
        granted.push(md.name.clone());
    }
    if granted.is_empty() {
        progress("Queue access: already granted.");
    }
    Ok(granted)
}
