//! The message envelope: what the platform put on the queue, decoded once (spec §3.3, §4.1).

use serde_json::Value;

/// Which kind of message a delivery carries (spec §3.4 routing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageKind {
    /// A function invocation from a workflow or playbook (`function.name`).
    Function(String),
    /// A rule ("custom action") message, routed by rule name.
    Rule,
    /// A message on an inbound destination: acknowledged, never answered.
    Inbound,
    /// A payload type this host does not serve (low-code connectors, subscription updates).
    Unsupported(String),
}

/// One decoded message: the JSON body with accessors for the envelope keys.
#[derive(Debug, Clone)]
pub struct Message {
    queue: String,
    body: Value,
    kind: MessageKind,
}

/// The parts of a queue destination `/queue/actions.201.fn_hello`: `("actions", "201", "fn_hello")`.
pub fn split_destination(destination: &str) -> Option<(&str, &str, &str)> {
    let name = destination
        .strip_prefix("/queue/")
        .or_else(|| destination.strip_prefix("/topic/"))
        .unwrap_or(destination);
    let mut parts = name.splitn(3, '.');
    Some((parts.next()?, parts.next()?, parts.next()?))
}

impl Message {
    /// Builds the envelope of a delivery on `destination` with header `Co3MessagePayload` `payload_type`.
    pub fn new(destination: &str, payload_type: Option<&str>, body: Value) -> Self {
        let (kind_prefix, queue) = match split_destination(destination) {
            Some((kind, _org, queue)) => (kind, queue.to_string()),
            None => ("actions", destination.to_string()),
        };
        let kind = match payload_type {
            Some(p @ ("ConnectorSubscriptionUpdateDTO" | "RestAPIExecutionEventDTO")) => {
                MessageKind::Unsupported(p.to_string())
            }
            _ if kind_prefix == "inbound_destinations" => MessageKind::Inbound,
            _ => match body.pointer("/function/name").and_then(Value::as_str) {
                Some(name) => MessageKind::Function(name.to_string()),
                None if body.get("function").is_some() => MessageKind::Function(String::new()),
                None => MessageKind::Rule,
            },
        };
        Message { queue, body, kind }
    }

    /// The message destination's programmatic name (`fn_hello` in `actions.201.fn_hello`).
    pub fn queue(&self) -> &str {
        &self.queue
    }

    pub fn kind(&self) -> &MessageKind {
        &self.kind
    }

    /// The whole JSON body.
    pub fn body(&self) -> &Value {
        &self.body
    }

    /// The invoked function's name, for function messages.
    pub fn function_name(&self) -> Option<&str> {
        match &self.kind {
            MessageKind::Function(name) => Some(name),
            _ => None,
        }
    }

    /// The incident the message is about (`incident`), if any.
    pub fn incident(&self) -> Option<&Value> {
        self.body.get("incident").filter(|v| !v.is_null())
    }

    /// The incident id: `incident.id`, else the common `incident_id` input.
    pub fn incident_id(&self) -> Option<i64> {
        self.incident()
            .and_then(|i| i.get("id"))
            .and_then(Value::as_i64)
            .or_else(|| {
                self.body
                    .pointer("/inputs/incident_id")
                    .and_then(Value::as_i64)
            })
    }

    pub fn workflow_instance_id(&self) -> Option<i64> {
        self.body
            .pointer("/workflow_instance/workflow_instance_id")
            .and_then(Value::as_i64)
    }

    /// Who started the workflow or rule (`principal`).
    pub fn principal(&self) -> Option<&Value> {
        self.body.get("principal").filter(|v| !v.is_null())
    }

    /// A rule message's rule id (`action_id`).
    pub fn action_id(&self) -> Option<i64> {
        self.body.get("action_id").and_then(Value::as_i64)
    }

    /// A rule message's object: `incident`, `task`, `note`, `artifact`, `milestone`, `attachment`, `row`.
    pub fn object(&self, name: &str) -> Option<&Value> {
        self.body.get(name).filter(|v| !v.is_null())
    }

    /// `created`, `modified` or `deleted` for automatic rules.
    pub fn operation_type(&self) -> Option<&str> {
        self.body.get("operation_type").and_then(Value::as_str)
    }

    /// Manual rule activity fields (`properties`).
    pub fn properties(&self) -> Option<&Value> {
        self.body.get("properties").filter(|v| !v.is_null())
    }
}

/// resilient-circuits' event name for a rule: lower-cased, runs of non-word characters as `_`.
pub fn rule_key(display_name: &str) -> String {
    let mut out = String::with_capacity(display_name.len());
    let mut in_gap = false;
    for c in display_name.chars() {
        if c.is_alphanumeric() || c == '_' {
            out.extend(c.to_lowercase());
            in_gap = false;
        } else if !in_gap {
            out.push('_');
            in_gap = true;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn routes_by_body_and_headers() {
        let f = Message::new(
            "/queue/actions.201.fn_hello",
            Some("ActionDataDTO"),
            json!({"function": {"name": "fn_hello"}, "inputs": {"incident_id": 5}}),
        );
        assert_eq!(f.kind(), &MessageKind::Function("fn_hello".into()));
        assert_eq!(f.queue(), "fn_hello");
        assert_eq!(f.incident_id(), Some(5));
        let r = Message::new(
            "actions.201.q",
            None,
            json!({"action_id": 7, "incident": {"id": 9}}),
        );
        assert_eq!(r.kind(), &MessageKind::Rule);
        assert_eq!(r.incident_id(), Some(9));
        assert_eq!(r.action_id(), Some(7));
        let i = Message::new("/queue/inbound_destinations.201.x", None, json!({}));
        assert_eq!(i.kind(), &MessageKind::Inbound);
        let l = Message::new("actions.201.q", Some("RestAPIExecutionEventDTO"), json!({}));
        assert!(matches!(l.kind(), MessageKind::Unsupported(_)));
    }

    #[test]
    fn rule_keys_match_resilient_circuits() {
        assert_eq!(rule_key("Send To TruSTAR"), "send_to_trustar");
        assert_eq!(rule_key("Whitelist in TruSTAR!!"), "whitelist_in_trustar_");
        assert_eq!(rule_key("a - b"), "a_b");
    }

    #[test]
    fn splits_destinations() {
        assert_eq!(
            split_destination("/queue/actions.201.fn.x"),
            Some(("actions", "201", "fn.x"))
        );
        assert_eq!(split_destination("nodots"), None);
    }
}
