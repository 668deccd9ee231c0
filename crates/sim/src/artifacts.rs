//! Incident artifacts and artifact types.
//!
//! The built-in artifact types (IP Address, DNS Name, URL, hashes, email addresses…) plus the
//! custom ones, imported (`incident_artifact_types`, by programmatic name) or created with
//! `POST /artifact_types` (`{programmatic_name, name, desc, enabled, …}`; both kinds are stored
//! like imported objects, so the export lists them). An artifact is
//! `{id, type, value, description, created, inc_id, hits, …}`; `type` is accepted as an id, a
//! name or a programmatic name and stored as the id (`handle_format=names` answers the name).
//! URL artifacts are validated like the platform does: "The specified URL is invalid".
//!
//! A type's programmatic name is also what custom threat services receive as the artifact's
//! `type` (`net.ip`, `net.uri`, `hash.md5`…, protocol spec §7.2); every new artifact is queued for
//! a lookup by every registered threat service ([`crate::threat`]), whose hits end up in the
//! artifact's `hits`.

use serde_json::{Value, json};

use crate::incidents::ApiError;
use crate::messages::now_ms;
use crate::platform::{Operation, PlatformState};

/// The built-in artifact types: (id, name, programmatic name).
pub const BUILTIN_TYPES: &[(i64, &str, &str)] = &[
    (1, "IP Address", "net.ip"),
    (2, "DNS Name", "net.name"),
    (3, "URL", "net.uri"),
    (4, "URI Path", "net.uri.path"),
    (5, "Malware MD5 Hash", "hash.md5"),
    (6, "Malware SHA-1 Hash", "hash.sha1"),
    (7, "Email Sender", "email.header.sender_address"),
    (8, "Email Subject", "email.header.subject"),
    (9, "Email Recipient", "email.header.to"),
    (10, "File Name", "file.name"),
    (11, "Malware Family/Variant", "threat.malware.family"),
    (12, "User Account", "user.account"),
    (13, "Malware SHA-256 Hash", "hash.sha256"),
    (14, "Port", "net.port"),
    (15, "MAC Address", "net.mac"),
    (16, "String", "string"),
    (17, "System Name", "system.name"),
    (18, "Threat CVE ID", "threat.report.cve"),
    (19, "Network CIDR Range", "net.cidr"),
    (20, "Email Sender Name", "email.header.sender_name"),
    (21, "Email Body", "email.body"),
    (22, "Email Header", "email.header"),
    (23, "File Path", "file.path"),
    (24, "HTTP Request Header", "net.http.request.header"),
    (25, "HTTP Response Header", "net.http.response.header"),
    (26, "Process Name", "process.name"),
    (27, "Mutex", "system.mutex"),
    (28, "Registry Key", "system.registry"),
    (29, "Service", "system.service.name"),
    (30, "Malware Sample Fuzzy Hash", "hash.fuzzy"),
];

/// Id offset of imported artifact types.
const CUSTOM_BASE: i64 = 1000;

impl PlatformState {
    /// Every artifact type as `GET /artifact_types` lists it.
    pub fn artifact_types(&self) -> Vec<Value> {
        let mut out: Vec<Value> = BUILTIN_TYPES
            .iter()
            .map(|(id, name, pn)| {
                json!({"id": id, "name": name, "programmatic_name": pn, "system": true,
                       "enabled": true, "multi_aware": true, "file": false, "desc": name})
            })
            .collect();
        out.extend(
            self.store
                .list("incident_artifact_types")
                .iter()
                .enumerate()
                .map(|(i, o)| {
                    let mut j = o.json.clone();
                    j["id"] = json!(CUSTOM_BASE + i as i64);
                    j["system"] = json!(false);
                    j
                }),
        );
        out
    }

    /// An artifact type by id (number or numeric string), name or programmatic name.
    pub fn artifact_type(&self, given: &Value) -> Option<Value> {
        let numeric = given.as_str().and_then(|s| s.trim().parse::<i64>().ok());
        self.artifact_types().into_iter().find(|t| {
            &t["id"] == given
                || numeric.is_some_and(|n| t["id"] == n)
                || (given.is_string() && (&t["name"] == given || &t["programmatic_name"] == given))
        })
    }

    /// Creates a custom artifact type (`POST /artifact_types`): `programmatic_name` (a letter,
    /// then letters, digits and '_') and `name` are required and must not be used by another
    /// type; `desc`, `enabled`, `multi_aware`, `use_for_relationships` are optional. Returns the
    /// type as `GET /artifact_types` lists it.
    pub fn create_artifact_type(&mut self, body: &Value) -> Result<Value, ApiError> {
        let Some(b) = body.as_object() else {
            return Err(ApiError::new(
                400,
                "The artifact type must be a JSON object",
            ));
        };
        let text = |k: &str| -> Result<Option<String>, ApiError> {
            match b.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.trim().to_string())),
                Some(other) => Err(ApiError::new(
                    400,
                    format!("The artifact type's {k} must be a string, not {other}"),
                )),
            }
        };
        let name = text("name")?
            .ok_or_else(|| ApiError::new(400, "The artifact type's name is required"))?;
        let pn = text("programmatic_name")?.ok_or_else(|| {
            ApiError::new(400, "The artifact type's programmatic_name is required")
        })?;
        let valid = pn.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && pn.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(ApiError::new(
                400,
                format!(
                    "Invalid programmatic_name '{pn}': it must start with a letter and contain only letters, digits and '_'"
                ),
            ));
        }
        for t in self.artifact_types() {
            if t["programmatic_name"] == pn.as_str() {
                return Err(ApiError::new(
                    409,
                    format!("An artifact type with the programmatic name '{pn}' already exists"),
                ));
            }
            if t["name"]
                .as_str()
                .is_some_and(|n| n.eq_ignore_ascii_case(&name))
            {
                return Err(ApiError::new(
                    409,
                    format!("An artifact type with the name '{name}' already exists"),
                ));
            }
        }
        let flag = |k: &str, default: bool| b.get(k).and_then(Value::as_bool).unwrap_or(default);
        let desc = match b.get("desc") {
            Some(Value::Object(o)) => o.get("content").cloned().unwrap_or(Value::Null),
            Some(v) => v.clone(),
            None => Value::Null,
        };
        let stored = json!({
            "programmatic_name": pn,
            "name": name,
            "desc": desc,
            "enabled": flag("enabled", true),
            "multi_aware": flag("multi_aware", true),
            "use_for_relationships": flag("use_for_relationships", false),
            "file": false,
            "export_key": pn,
            "uuid": crate::platform::stable_uuid("artifact_type", &pn),
            "tags": [],
            "version": 0,
        });
        let id = self.next_id();
        self.store
            .upsert("incident_artifact_types", &pn, id, stored);
        self.artifact_type(&json!(pn))
            .ok_or_else(|| ApiError::new(500, "the artifact type was not stored"))
    }

    /// Adds an artifact to an incident (`POST /incidents/{id}/artifacts`); returns it.
    pub fn add_artifact(&mut self, incident_id: i64, body: &Value) -> Result<Value, ApiError> {
        if !self.incidents.contains_key(&incident_id) {
            return Err(ApiError::not_found_incident(incident_id));
        }
        let given = body.get("type").cloned().unwrap_or(Value::Null);
        // {"type": {"name": "URL"}} and {"type": {"id": 3}} are accepted too.
        let given = match given {
            Value::Object(o) => o
                .get("id")
                .or(o.get("name"))
                .cloned()
                .unwrap_or(Value::Null),
            v => v,
        };
        let ty = self
            .artifact_type(&given)
            .ok_or_else(|| ApiError::new(400, format!("Unknown artifact type {given}")))?;
        let value = body
            .get("value")
            .and_then(Value::as_str)
            .filter(|v| !v.trim().is_empty())
            .ok_or_else(|| ApiError::new(400, "An artifact needs a value"))?;
        if ty["programmatic_name"] == "net.uri" && !valid_url(value) {
            return Err(ApiError::new(400, "The specified URL is invalid"));
        }
        let id = self.next_id();
        let description = match body.get("description") {
            Some(Value::Object(o)) => o.get("content").cloned().unwrap_or(Value::Null),
            Some(v) => v.clone(),
            None => Value::Null,
        };
        let artifact = json!({
            "id": id,
            "type": ty["id"],
            "value": value,
            "description": description,
            "attachment": null,
            "parent_id": null,
            "creator_principal": {"id": crate::rest::USER_ID, "type": "user", "name": "Sim User"},
            "created": now_ms() as i64,
            "inc_id": incident_id,
            "inc_name": self.incidents.get(&incident_id).map(|i| i["name"].clone()),
            "inc_owner": null,
            "hits": [],
            "properties": body.get("properties").cloned().unwrap_or(Value::Null),
            "relating": body.get("relating").cloned().unwrap_or(Value::Null),
            "perms": {"read": true, "write": true, "delete": true},
        });
        self.artifacts
            .entry(incident_id)
            .or_default()
            .push(artifact.clone());
        self.emit(
            "artifact",
            Operation::Created,
            incident_id,
            Value::Null,
            artifact.clone(),
        );
        let cts_type = ty["programmatic_name"].as_str().unwrap_or("string");
        self.queue_threat_lookups(incident_id, id, cts_type, value);
        Ok(artifact)
    }

    /// Appends hits to an artifact; false if the artifact no longer exists.
    pub fn add_artifact_hits(
        &mut self,
        incident_id: i64,
        artifact_id: i64,
        hits: Vec<Value>,
    ) -> bool {
        let ids: Vec<i64> = hits.iter().map(|_| self.next_id()).collect();
        let Some(a) = self
            .artifacts
            .get_mut(&incident_id)
            .and_then(|l| l.iter_mut().find(|a| a["id"] == artifact_id))
        else {
            return false;
        };
        if !a["hits"].is_array() {
            a["hits"] = json!([]);
        }
        if let Some(list) = a["hits"].as_array_mut() {
            for (mut hit, id) in hits.into_iter().zip(ids) {
                hit["id"] = json!(id);
                hit["artifact_id"] = json!(artifact_id);
                list.push(hit);
            }
        }
        true
    }

    /// An artifact of an incident.
    pub fn artifact(&self, incident_id: i64, artifact_id: i64) -> Option<&Value> {
        self.artifacts
            .get(&incident_id)
            .and_then(|l| l.iter().find(|a| a["id"] == artifact_id))
    }

    /// An artifact with its type as a name when `names`.
    pub fn artifact_json(&self, artifact: &Value, names: bool) -> Value {
        let mut a = artifact.clone();
        if names && let Some(t) = self.artifact_type(&artifact["type"]) {
            a["type"] = t["name"].clone();
        }
        a
    }

    /// Deletes an artifact; returns it.
    pub fn delete_artifact(&mut self, incident_id: i64, id: i64) -> Result<Value, ApiError> {
        let list = self
            .artifacts
            .get_mut(&incident_id)
            .ok_or_else(|| ApiError::not_found_incident(incident_id))?;
        let pos = list
            .iter()
            .position(|a| a["id"] == id)
            .ok_or_else(|| ApiError::new(404, format!("Artifact {id} not found")))?;
        let a = list.remove(pos);
        self.emit(
            "artifact",
            Operation::Deleted,
            incident_id,
            a.clone(),
            Value::Null,
        );
        Ok(a)
    }
}

/// Whether `s` is an absolute URL the platform accepts: `scheme://host[:port][/…]`.
pub fn valid_url(s: &str) -> bool {
    let Some((scheme, rest)) = s.split_once("://") else {
        return false;
    };
    let scheme_ok = scheme
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit('@').next().unwrap_or_default();
    let host = match host_port.rsplit_once(':') {
        Some((h, port)) if !h.ends_with(']') || host_port.starts_with('[') => {
            // A port is a number that exists (at most 65535).
            if !port.is_empty() && port.parse::<u16>().is_err() {
                return false;
            }
            h
        }
        _ => host_port,
    };
    scheme_ok
        && !host.is_empty()
        && !s.chars().any(char::is_whitespace)
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '[' | ']' | ':'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_validated() {
        for ok in [
            "http://example.org",
            "https://example.org:8443/a?b#c",
            "ftp://user@host/x",
            "http://[::1]:80/",
        ] {
            assert!(valid_url(ok), "{ok}");
        }
        for bad in [
            "example.org",
            "http://",
            "http:// spaced.org",
            "http://a b",
            "1http://x",
            "http://host:port/",
            "http://ex!ample.org",
            "http://evil.com:99999/x",
        ] {
            assert!(!valid_url(bad), "{bad}");
        }
    }

    #[test]
    fn artifacts_are_typed_and_validated() {
        let mut st = PlatformState::default();
        let id = st.create_incident(201, &json!({"name": "i"})).unwrap()["id"]
            .as_i64()
            .unwrap();
        let a = st
            .add_artifact(id, &json!({"type": "URL", "value": "http://example.org"}))
            .unwrap();
        assert_eq!(a["type"], 3);
        assert_eq!(st.artifact_json(&a, true)["type"], "URL");
        let e = st
            .add_artifact(id, &json!({"type": 3, "value": "not a url"}))
            .unwrap_err();
        assert_eq!(e.message, "The specified URL is invalid");
        assert_eq!(
            st.add_artifact(id, &json!({"type": "Nope", "value": "x"}))
                .unwrap_err()
                .status,
            400
        );
        st.add_artifact(
            id,
            &json!({"type": {"name": "IP Address"}, "value": "10.0.0.1"}),
        )
        .unwrap();
        assert_eq!(st.artifacts[&id].len(), 2);
        let aid = a["id"].as_i64().unwrap();
        st.delete_artifact(id, aid).unwrap();
        assert_eq!(st.delete_artifact(id, aid).unwrap_err().status, 404);
    }
}
