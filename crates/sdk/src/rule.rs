//! Typed objects of a message: the incident, artifact, note and task a rule message (or a
//! function message) carries. A handler takes them as arguments, like axum's extractors:
//! `async fn on_artifact(ctx: Context, incident: Incident, artifact: Artifact)`. A required
//! object that the message lacks fails the call with an error naming it; take `Option<Artifact>`
//! when it may be absent.

use serde_json::Value;

use crate::context::Context;
use crate::error::FunctionError;
use crate::handler::FromContext;

/// The text of a platform text or textarea value: a string, or `{"format", "content"}`.
pub fn text_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Object(o) => o
            .get("content")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        _ => String::new(),
    }
}

fn object<'a>(ctx: &'a Context, name: &str) -> Result<&'a Value, FunctionError> {
    ctx.message()
        .object(name)
        .ok_or_else(|| FunctionError::msg(format!("the message carries no {name}")))
}

fn id_of(value: &Value, name: &str) -> Result<i64, FunctionError> {
    value
        .get("id")
        .and_then(Value::as_i64)
        .ok_or_else(|| FunctionError::msg(format!("the message's {name} has no id")))
}

fn str_of(value: &Value, key: &str) -> String {
    value
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// The incident of the message.
#[derive(Debug, Clone, PartialEq)]
pub struct Incident {
    pub id: i64,
    pub name: String,
    json: Value,
}

impl Incident {
    /// Every field as the platform sent it.
    pub fn json(&self) -> &Value {
        &self.json
    }

    /// One field as the platform sent it (`Value::Null` when absent).
    pub fn field(&self, name: &str) -> &Value {
        self.json.get(name).unwrap_or(&Value::Null)
    }
}

impl<S> FromContext<S> for Incident {
    fn from_context(ctx: &Context, _: &S) -> Result<Self, FunctionError> {
        let json = object(ctx, "incident")?;
        Ok(Incident {
            id: id_of(json, "incident")?,
            name: str_of(json, "name"),
            json: json.clone(),
        })
    }
}

/// An artifact's type: the platform sends its id or, with `handle_format=names`, its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArtifactType {
    Id(i64),
    Name(String),
}

/// The artifact of the message.
#[derive(Debug, Clone, PartialEq)]
pub struct Artifact {
    pub id: i64,
    pub value: String,
    pub artifact_type: ArtifactType,
    /// Its description as text.
    pub description: String,
    json: Value,
}

impl Artifact {
    pub fn json(&self) -> &Value {
        &self.json
    }
}

impl<S> FromContext<S> for Artifact {
    fn from_context(ctx: &Context, _: &S) -> Result<Self, FunctionError> {
        let json = object(ctx, "artifact")?;
        let artifact_type = match json.get("type") {
            Some(Value::Number(n)) => ArtifactType::Id(n.as_i64().unwrap_or_default()),
            Some(other) => ArtifactType::Name(text_of(other)),
            None => ArtifactType::Name(String::new()),
        };
        Ok(Artifact {
            id: id_of(json, "artifact")?,
            value: str_of(json, "value"),
            artifact_type,
            description: json.get("description").map(text_of).unwrap_or_default(),
            json: json.clone(),
        })
    }
}

/// The note (comment) of the message.
#[derive(Debug, Clone, PartialEq)]
pub struct Note {
    pub id: i64,
    /// Its text (HTML for a rich-text note).
    pub text: String,
    json: Value,
}

impl Note {
    pub fn json(&self) -> &Value {
        &self.json
    }
}

impl<S> FromContext<S> for Note {
    fn from_context(ctx: &Context, _: &S) -> Result<Self, FunctionError> {
        let json = object(ctx, "note")?;
        Ok(Note {
            id: id_of(json, "note")?,
            text: json.get("text").map(text_of).unwrap_or_default(),
            json: json.clone(),
        })
    }
}

/// The task of the message.
#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    pub id: i64,
    pub name: String,
    json: Value,
}

impl Task {
    pub fn json(&self) -> &Value {
        &self.json
    }
}

impl<S> FromContext<S> for Task {
    fn from_context(ctx: &Context, _: &S) -> Result<Self, FunctionError> {
        let json = object(ctx, "task")?;
        Ok(Task {
            id: id_of(json, "task")?,
            name: str_of(json, "name"),
            json: json.clone(),
        })
    }
}
