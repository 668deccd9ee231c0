//! Builders for what the platform puts on a queue: the §4.1 function message body, the
//! ActionDataDTO body of a rule message, and the §3.3 MESSAGE headers that travel with them.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

use crate::platform::{FunctionDef, Rule};

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default()
}

/// The principal every simulated message claims to come from.
pub(crate) fn principal(email: &str) -> Value {
    json!({"id": 1, "type": "user", "name": email, "display_name": "Sim User"})
}

/// The §4.1 body of a function invocation.
pub(crate) fn function_body(
    f: &FunctionDef,
    inputs: Value,
    incident: Option<Value>,
    invocation_number: u64,
    email: &str,
    extra: Map<String, Value>,
) -> Value {
    let mut body = json!({
        "function": {
            "id": f.id,
            "name": f.name,
            "display_name": f.display_name,
            "uuid": f.uuid,
            "description": {"format": "text", "content": format!("Simulated function {}", f.name)},
            "creator": principal(email),
            "tags": [],
            "version": 1,
            "view_items": [],
        },
        "inputs": inputs,
        "workflow": {
            "workflow_id": 1,
            "programmatic_name": "soar_sim_workflow",
            "name": "Simulated workflow",
            "object_type": {"id": 0, "name": "incident"},
            "uuid": crate::platform::stable_uuid("workflow", "soar_sim_workflow"),
            "description": "",
            "tags": [],
            "actions": [],
        },
        "workflow_instance": {"workflow_instance_id": invocation_number},
        "playbook_instance": null,
        "principal": principal(email),
        "groups": [],
        "action_id": null,
        "object_type": 0,
    });
    if let Some(incident) = incident {
        body["incident"] = incident;
    }
    merge(&mut body, extra);
    body
}

/// The ActionDataDTO body of a rule (custom action) message; `given` overrides the defaults.
pub(crate) fn rule_body(rule: &Rule, email: &str, given: Value) -> Value {
    let mut body = json!({
        "action_id": rule.id,
        "object_type": 0,
        "operation_type": "modified",
        "incident": null,
        "properties": {},
        "user": principal(email),
    });
    match given {
        Value::Object(map) => merge(&mut body, map),
        Value::Null => {}
        other => body["properties"] = other,
    }
    body
}

fn merge(body: &mut Value, extra: Map<String, Value>) {
    if let Value::Object(obj) = body {
        for (k, v) in extra {
            obj.insert(k, v);
        }
    }
}

/// The headers of a platform message other than `destination`, `subscription`, `message-id` and
/// `ack` (which the broker adds at delivery).
pub(crate) fn platform_headers(reply_to: &str, correlation_id: &str) -> Vec<(String, String)> {
    vec![
        ("reply-to".into(), reply_to.into()),
        ("correlation-id".into(), correlation_id.into()),
        (
            "Co3ContextToken".into(),
            uuid::Uuid::new_v4().simple().to_string(),
        ),
        ("Co3MessagePayload".into(), "ActionDataDTO".into()),
        ("Co3ContentType".into(), "application/json".into()),
        ("timestamp".into(), now_ms().to_string()),
        ("expires".into(), "0".into()),
        ("priority".into(), "4".into()),
        ("persistent".into(), "true".into()),
    ]
}

/// Headers for [`crate::Sim::send_raw`]: `reply-to` and `correlation-id` unless the caller gives
/// them, then the caller's headers. A caller header with an empty value removes the default.
pub(crate) fn raw_headers(
    reply_to: &str,
    correlation_id: &str,
    given: Vec<(String, String)>,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (name, value) in [("reply-to", reply_to), ("correlation-id", correlation_id)] {
        if !given.iter().any(|(n, _)| n == name) {
            out.push((name.to_string(), value.to_string()));
        }
    }
    out.extend(
        given
            .into_iter()
            .filter(|(n, v)| !(v.is_empty() && (n == "reply-to" || n == "correlation-id"))),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_headers_override_and_remove_defaults() {
        let h = raw_headers("/queue/acks.201.q", "invid:1", vec![]);
        assert_eq!(h.len(), 2);
        let h = raw_headers(
            "/queue/acks.201.q",
            "invid:1",
            vec![
                ("correlation-id".into(), "".into()),
                ("x".into(), "y".into()),
            ],
        );
        assert_eq!(
            h,
            vec![
                ("reply-to".to_string(), "/queue/acks.201.q".to_string()),
                ("x".to_string(), "y".to_string())
            ]
        );
    }

    #[test]
    fn rule_body_merges_given_fields() {
        let rule = Rule::manual(7, "R", &[]);
        let b = rule_body(
            &rule,
            "a@b",
            json!({"object_type": 4, "artifact": {"id": 1}}),
        );
        assert_eq!(b["action_id"], 7);
        assert_eq!(b["object_type"], 4);
        assert_eq!(b["artifact"]["id"], 1);
    }
}
