//! Incidents and their notes, as the platform stores and answers them.
//!
//! An incident is a JSON object with the platform's keys (`id`, `name`, `description`,
//! `discovered_date`, `create_date`, `severity_code`, `incident_type_ids`, `plan_status`,
//! `resolution_id`, `resolution_summary`, `phase_id`, `properties`, `vers`, …). Select fields
//! hold value ids; they are accepted as ids or labels and answered as labels with
//! `handle_format=names`. Custom fields live under `properties` and must have been imported
//! (an unknown custom field is refused, as the platform refuses it).
//!
//! An incident belongs to a workspace (`workspace`: its id; an id, name or display name is
//! accepted, the default workspace when none is given).
//!
//! Notes (`/incidents/{id}/comments`) are accepted as `{"text": {"format": "text"|"html",
//! "content": …}}` or `{"text": "…"}` and answered with `text` as a string: the content as
//! given, for either format.

use serde_json::{Map, Value, json};

use crate::fields;
use crate::messages::now_ms;
use crate::platform::{Operation, PlatformState};

/// An error the REST API answers with `status` (400, 404, 409…).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    /// HTTP status.
    pub status: u16,
    /// The platform's message.
    pub message: String,
}

impl ApiError {
    pub(crate) fn new(status: u16, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }

    pub(crate) fn not_found_incident(id: i64) -> ApiError {
        ApiError::new(404, format!("Incident {id} not found"))
    }
}

/// Keys a client cannot set.
const READ_ONLY: &[&str] = &[
    "id",
    "creator_id",
    "creator",
    "create_date",
    "org_id",
    "org_handle",
    "vers",
    "inc_last_modified_date",
];

fn now() -> i64 {
    now_ms() as i64
}

fn set_property(update: &mut Map<String, Value>, name: &str, value: Value) {
    let props = update
        .entry("properties")
        .or_insert_with(|| Value::Object(Map::new()));
    if !props.is_object() {
        *props = Value::Object(Map::new());
    }
    if let Value::Object(m) = props {
        m.insert(name.to_string(), value);
    }
}

/// Text of a note body: `{"text": {"format", "content"}}` or `{"text": "…"}`.
pub fn note_text(body: &Value) -> Result<String, ApiError> {
    match body.get("text") {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Object(t)) => match (t.get("format").and_then(Value::as_str), t.get("content"))
        {
            (Some("text" | "html") | None, Some(Value::String(c))) => Ok(c.clone()),
            (Some(f), _) if f != "text" && f != "html" => Err(ApiError::new(
                400,
                format!("Unsupported note format '{f}' (expected text or html)"),
            )),
            _ => Err(ApiError::new(400, "The note text has no content")),
        },
        _ => Err(ApiError::new(400, "A note needs a text")),
    }
}

impl PlatformState {
    /// Normalises the client-settable fields of `body` into `inc` (select labels to ids,
    /// custom fields checked against the imported ones).
    fn merge_incident_fields(
        &self,
        inc: &mut Map<String, Value>,
        body: &Map<String, Value>,
    ) -> Result<(), ApiError> {
        for (k, v) in body {
            if READ_ONLY.contains(&k.as_str()) {
                continue;
            }
            if k == "properties" {
                let Some(props) = v.as_object() else {
                    if v.is_null() {
                        continue;
                    }
                    return Err(ApiError::new(400, "'properties' must be an object"));
                };
                for (pk, pv) in props {
                    let value = self.normalise_property(pk, pv)?;
                    let target = inc
                        .entry("properties")
                        .or_insert_with(|| Value::Object(Map::new()));
                    if !target.is_object() {
                        *target = Value::Object(Map::new());
                    }
                    target[pk.as_str()] = value;
                }
                continue;
            }
            if k == "workspace" {
                let id = self.resolve_workspace(v)?;
                inc.insert(k.clone(), json!(id));
                continue;
            }
            let value = match self.incident_field(k) {
                Some((f, false)) => {
                    fields::normalise(&f, k, v).map_err(|e| ApiError::new(400, e))?
                }
                _ => v.clone(),
            };
            let value = if k == "description" {
                // Rich text may be sent as {"format", "content"}; the platform answers a string.
                match value {
                    Value::Object(ref o) => o.get("content").cloned().unwrap_or(Value::Null),
                    other => other,
                }
            } else {
                value
            };
            inc.insert(k.clone(), value);
        }
        Ok(())
    }

    fn normalise_property(&self, name: &str, v: &Value) -> Result<Value, ApiError> {
        match self.incident_field(name) {
            Some((f, true)) => fields::normalise(&f, name, v).map_err(|e| ApiError::new(400, e)),
            _ => Err(ApiError::new(
                400,
                format!("'{name}' is not a custom incident field (properties.{name})"),
            )),
        }
    }

    /// Creates an incident (`POST /incidents`): `name` is required, `discovered_date`
    /// defaults to now, `plan_status` to "A".
    pub fn create_incident(&mut self, org_id: i64, body: &Value) -> Result<Value, ApiError> {
        let Some(b) = body.as_object() else {
            return Err(ApiError::new(400, "The incident must be a JSON object"));
        };
        if b.get("name")
            .and_then(Value::as_str)
            .is_none_or(|n| n.trim().is_empty())
        {
            return Err(ApiError::new(400, "The incident's name is required"));
        }
        let now = now();
        let mut inc = json!({
            "id": 0,
            "name": "",
            "description": null,
            "discovered_date": now,
            "create_date": now,
            "inc_last_modified_date": now,
            "start_date": null,
            "due_date": null,
            "end_date": null,
            "severity_code": null,
            "incident_type_ids": [],
            "plan_status": "A",
            "resolution_id": null,
            "resolution_summary": null,
            "phase_id": 1000,
            "confirmed": false,
            "negative_pr_likely": null,
            "inc_training": false,
            "reporter": null,
            "owner_id": crate::rest::USER_ID,
            "org_id": org_id,
            "workspace": crate::org::DEFAULT_WORKSPACE_ID,
            "properties": {},
            "vers": 1,
        });
        let Value::Object(map) = &mut inc else {
            return Err(ApiError::new(500, "internal error"));
        };
        map.extend(more_incident_keys());
        self.merge_incident_fields(map, b)?;
        let id = self.next_incident_id();
        map.insert("id".into(), json!(id));
        self.incidents.insert(id, inc.clone());
        self.notes.entry(id).or_default();
        self.emit("incident", Operation::Created, id, Value::Null, inc.clone());
        Ok(inc)
    }

    fn next_incident_id(&mut self) -> i64 {
        // Incident ids look like the platform's (2095…), from the shared sequence.
        self.next_id() + 2094
    }

    /// An incident, with select ids as labels when `names`.
    pub fn incident_json(&self, id: i64, names: bool) -> Option<Value> {
        let inc = self.incidents.get(&id)?;
        Some(if names {
            self.incident_names(inc)
        } else {
            inc.clone()
        })
    }

    /// The incident with `handle_format=names`: select ids as labels (built-in and custom).
    pub fn incident_names(&self, inc: &Value) -> Value {
        let mut out = inc.clone();
        if let Value::Object(map) = &mut out {
            for (k, v) in map.iter_mut() {
                if k == "properties" {
                    if let Value::Object(props) = v {
                        for (pk, pv) in props.iter_mut() {
                            if let Some((f, true)) = self.incident_field(pk) {
                                *pv = fields::to_names(&f, pv);
                            }
                        }
                    }
                } else if let Some((f, false)) = self.incident_field(k) {
                    *v = fields::to_names(&f, v);
                }
            }
        }
        out
    }

    /// Replaces an incident's settable fields (`PUT /incidents/{id}`; a `vers` older than the
    /// stored one is a 409). Returns (old, new).
    pub fn update_incident(&mut self, id: i64, body: &Value) -> Result<(Value, Value), ApiError> {
        let old = self
            .incidents
            .get(&id)
            .cloned()
            .ok_or_else(|| ApiError::not_found_incident(id))?;
        let Some(b) = body.as_object() else {
            return Err(ApiError::new(400, "The incident must be a JSON object"));
        };
        if let (Some(given), Some(current)) = (
            b.get("vers").and_then(Value::as_i64),
            old.get("vers").and_then(Value::as_i64),
        ) && given != current
        {
            return Err(ApiError::new(
                409,
                format!(
                    "Incident {id} was modified by someone else (version {current}, the request has version {given})"
                ),
            ));
        }
        if let Some(n) = b.get("name")
            && n.as_str().is_none_or(|n| n.trim().is_empty())
        {
            return Err(ApiError::new(400, "The incident's name is required"));
        }
        let mut new = old.clone();
        let Value::Object(map) = &mut new else {
            return Err(ApiError::new(500, "internal error"));
        };
        self.merge_incident_fields(map, b)?;
        if new["plan_status"] == "C" && old["plan_status"] != "C" {
            for field in ["resolution_id", "resolution_summary"] {
                if new[field].is_null() || new[field] == "" {
                    return Err(ApiError::new(
                        400,
                        format!("Incident {id} cannot be closed without {field}"),
                    ));
                }
            }
            new["end_date"] = json!(now());
        }
        self.store_modified(id, new.clone(), &old)?;
        let new = self.incidents.get(&id).cloned().unwrap_or(new);
        Ok((old, new))
    }

    fn store_modified(&mut self, id: i64, mut new: Value, old: &Value) -> Result<(), ApiError> {
        new["vers"] = json!(old.get("vers").and_then(Value::as_i64).unwrap_or(1) + 1);
        new["inc_last_modified_date"] = json!(now());
        self.incidents.insert(id, new.clone());
        self.emit("incident", Operation::Modified, id, old.clone(), new);
        Ok(())
    }

    /// Applies a `PATCH /incidents/{id}` body `{"changes": [{"field": {"name"}, "old_value",
    /// "new_value": {"text"|"textarea"|"id"|"ids"|"date"|"boolean"|"object": v}}], "version"}`.
    pub fn patch_incident(&mut self, id: i64, body: &Value) -> Result<(Value, Value), ApiError> {
        let Some(changes) = body.get("changes").and_then(Value::as_array) else {
            return Err(ApiError::new(400, "A patch needs a 'changes' list"));
        };
        let mut update = Map::new();
        if let Some(v) = body.get("version") {
            update.insert("vers".into(), v.clone());
        }
        for c in changes {
            let Some(name) = c
                .get("field")
                .and_then(|f| f.get("name").or(Some(f)))
                .and_then(Value::as_str)
            else {
                return Err(ApiError::new(400, "A change needs field.name"));
            };
            let value = c
                .get("new_value")
                .and_then(Value::as_object)
                .and_then(|nv| nv.values().next().cloned())
                .unwrap_or(Value::Null);
            let value = match value {
                Value::Object(ref o) if o.contains_key("content") => {
                    o.get("content").cloned().unwrap_or(Value::Null)
                }
                v => v,
            };
            match name.strip_prefix("properties.") {
                Some(p) => set_property(&mut update, p, value),
                None if self.incident_field(name).is_some_and(|(_, custom)| custom) => {
                    set_property(&mut update, name, value)
                }
                None => {
                    update.insert(name.to_string(), value);
                }
            }
        }
        self.update_incident(id, &Value::Object(update))
    }

    /// Deletes an incident with its notes and artifacts; returns it.
    pub fn delete_incident(&mut self, id: i64) -> Result<Value, ApiError> {
        let inc = self
            .incidents
            .remove(&id)
            .ok_or_else(|| ApiError::not_found_incident(id))?;
        self.notes.remove(&id);
        self.artifacts.remove(&id);
        self.emit("incident", Operation::Deleted, id, inc.clone(), Value::Null);
        Ok(inc)
    }

    /// Sets one field of an incident (a built-in field, or a custom one when `custom`), as a
    /// workflow's post-processing does. Returns (old, new) incident.
    pub fn set_incident_field(
        &mut self,
        id: i64,
        field: &str,
        value: &Value,
        custom: bool,
    ) -> Result<(Value, Value), ApiError> {
        let body = if custom {
            if !matches!(self.incident_field(field), Some((_, true))) {
                return Err(ApiError::new(
                    400,
                    format!("'{field}' is not a custom incident field (properties.{field})"),
                ));
            }
            json!({"properties": {field: value}})
        } else {
            match self.incident_field(field) {
                Some((_, false)) if !READ_ONLY.contains(&field) => json!({field: value}),
                Some((_, false)) => {
                    return Err(ApiError::new(
                        400,
                        format!("incident field '{field}' is read-only"),
                    ));
                }
                _ => {
                    return Err(ApiError::new(
                        400,
                        format!("'{field}' is not an incident field"),
                    ));
                }
            }
        };
        self.update_incident(id, &body)
    }

    /// Adds a note to an incident (`POST /incidents/{id}/comments`); returns it.
    pub fn add_note(&mut self, incident_id: i64, body: &Value) -> Result<Value, ApiError> {
        let inc = self
            .incidents
            .get(&incident_id)
            .cloned()
            .ok_or_else(|| ApiError::not_found_incident(incident_id))?;
        let text = note_text(body)?;
        let now = now();
        let id = self.next_id();
        let note = json!({
            "id": id,
            "parent_id": body.get("parent_id").cloned().unwrap_or(Value::Null),
            "type": "incident",
            "inc_id": incident_id,
            "inc_name": inc.get("name").cloned().unwrap_or(Value::Null),
            "inc_owner": inc.get("owner_id").cloned().unwrap_or(Value::Null),
            "task_id": null,
            "user_id": crate::rest::USER_ID,
            "user_fname": "Sim",
            "user_lname": "User",
            "user_name": "Sim User",
            "text": text,
            "create_date": now,
            "modify_date": now,
            "is_deleted": false,
            "mentioned_users": [],
            "children": [],
            "comment_perms": {"update": true, "delete": true},
            "actions": [],
        });
        self.notes
            .entry(incident_id)
            .or_default()
            .push(note.clone());
        self.emit(
            "note",
            Operation::Created,
            incident_id,
            Value::Null,
            note.clone(),
        );
        Ok(note)
    }
}

/// The rest of the platform's incident type, as a new incident has it: integrations (the
/// original TruSTAR plugin among them) read these keys and fail when one is missing.
fn more_incident_keys() -> Map<String, Value> {
    let Value::Object(map) = json!({
        "inc_start": null,
        "data_compromised": null,
        "nist_attack_vectors": [],
        "exposure_type_id": 1,
        "employee_involved": null,
        "crimestatus_id": null,
        "creator_id": crate::rest::USER_ID,
        "creator": crate::rest::creator(),
        "addr": null,
        "city": null,
        "state": null,
        "country": null,
        "zip": null,
        "exposure": 0,
        "exposure_individual_name": null,
        "exposure_vendor_id": null,
        "exposure_dept_id": null,
        "jurisdiction_name": null,
        "jurisdiction_reg_id": null,
        "hard_liability": 0,
        "is_scenario": false,
        "draft": false,
        "assessment": "",
        "members": [],
        "pii": {
            "data_compromised": null,
            "determined_date": null,
            "harmstatus_id": 2,
            "data_encrypted": null,
            "data_contained": null,
            "impact_likely": null,
            "data_source_ids": [],
            "data_format": null,
            "assessment": "",
            "exposure": 0,
            "gdpr_harm_risk": null,
            "gdpr_lawful_data_processing_categories": [],
        },
        "gdpr": {
            "gdpr_breach_circumstances": [],
            "gdpr_breach_type": null,
            "gdpr_breach_type_comment": null,
            "gdpr_personal_data": [],
            "gdpr_identification": [],
            "gdpr_consequences": [],
            "gdpr_final_assessment": null,
            "gdpr_subsequent_notification": null,
        },
        "regulators": {"ids": []},
        "hipaa": {
            "hipaa_adverse": null,
            "hipaa_misused": null,
            "hipaa_acquired": null,
            "hipaa_additional_misuse": null,
            "hipaa_breach": null,
        },
    }) else {
        unreachable!("an object literal")
    };
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incidents_are_created_normalised_and_updated() {
        let mut st = PlatformState::default();
        assert_eq!(
            st.create_incident(201, &json!({"description": "x"}))
                .unwrap_err()
                .status,
            400
        );
        let inc = st
            .create_incident(
                201,
                &json!({"name": "Phish", "severity_code": "High", "incident_type_ids": ["Phishing"]}),
            )
            .unwrap();
        let id = inc["id"].as_i64().unwrap();
        assert_eq!(inc["severity_code"], 6);
        assert_eq!(inc["incident_type_ids"], json!([22]));
        assert_eq!(inc["plan_status"], "A");
        assert!(inc["discovered_date"].is_i64());
        let names = st.incident_json(id, true).unwrap();
        assert_eq!(names["severity_code"], "High");
        assert_eq!(names["incident_type_ids"], json!(["Phishing"]));
        let err = st
            .create_incident(201, &json!({"name": "x", "properties": {"nope": 1}}))
            .unwrap_err();
        assert!(err.message.contains("nope"), "{err}");
        let err = st
            .create_incident(201, &json!({"name": "x", "severity_code": "Huge"}))
            .unwrap_err();
        assert!(err.message.contains("Huge"), "{err}");

        let (old, new) = st
            .update_incident(
                id,
                &json!({"description": {"format": "text", "content": "d"}, "vers": 1}),
            )
            .unwrap();
        assert_eq!(old["vers"], 1);
        assert_eq!(new["vers"], 2);
        assert_eq!(new["description"], "d");
        assert_eq!(
            st.update_incident(id, &json!({"vers": 1}))
                .unwrap_err()
                .status,
            409
        );
        assert!(st.set_incident_field(id, "id", &json!(3), false).is_err());
        assert!(st.set_incident_field(id, "nope", &json!(3), false).is_err());
        assert!(st.set_incident_field(id, "nope", &json!(3), true).is_err());
        let (_, new) = st
            .set_incident_field(id, "resolution_id", &json!("Resolved"), false)
            .unwrap();
        assert_eq!(new["resolution_id"], 10);
    }

    #[test]
    fn notes_accept_both_body_shapes() {
        let mut st = PlatformState::default();
        let id = st.create_incident(201, &json!({"name": "n"})).unwrap()["id"]
            .as_i64()
            .unwrap();
        let n = st
            .add_note(
                id,
                &json!({"text": {"format": "html", "content": "<b>x</b>"}}),
            )
            .unwrap();
        assert_eq!(n["text"], "<b>x</b>");
        st.add_note(id, &json!({"text": "plain"})).unwrap();
        assert_eq!(st.notes[&id].len(), 2);
        assert_eq!(st.add_note(id, &json!({})).unwrap_err().status, 400);
        assert_eq!(
            st.add_note(id, &json!({"text": {"format": "md", "content": "x"}}))
                .unwrap_err()
                .status,
            400
        );
        assert_eq!(
            st.add_note(99999, &json!({"text": "x"}))
                .unwrap_err()
                .status,
            404
        );
    }
}
