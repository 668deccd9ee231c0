//! Function inputs, normalised as resilient-circuits' `@app_function` does.
//!
//! The platform sends a select as `{"id": 1, "name": "A"}`, a textarea as
//! `{"format": "text", "content": "..."}` and a multiselect as a list of selects. Handlers see the
//! name, the content and a list of names; the message's original inputs stay reachable through
//! [`Inputs::raw`].

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::schema::{InputSchema, ValueKind};

use crate::error::FunctionError;

/// The inputs of one function invocation.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    normalized: Map<String, Value>,
    raw: Map<String, Value>,
}

/// Turns one platform input value into what a handler expects.
pub fn normalize_value(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            if let Some(content) = map.get("content") {
                content.clone()
            } else if let Some(name) = map.get("name") {
                name.clone()
            } else {
                value.clone()
            }
        }
        Value::Array(items) if items.iter().all(Value::is_object) && !items.is_empty() => {
            Value::Array(
                items
                    .iter()
                    .filter_map(|item| item.get("name").cloned())
                    .collect(),
            )
        }
        _ => value.clone(),
    }
}

impl Inputs {
    /// Normalises the `inputs` object of a function message.
    pub fn from_raw(raw: Map<String, Value>) -> Self {
        let normalized = raw
            .iter()
            .map(|(k, v)| (k.clone(), normalize_value(v)))
            .collect();
        Inputs { normalized, raw }
    }

    /// Inputs built directly from normalised values (tests, rule handlers).
    pub fn from_value(value: Value) -> Self {
        match value {
            Value::Object(map) => Self::from_raw(map),
            _ => Self::default(),
        }
    }

    /// The normalised inputs, as recorded in the result's `inputs`.
    pub fn normalized(&self) -> &Map<String, Value> {
        &self.normalized
    }

    /// The inputs exactly as the platform sent them.
    pub fn raw(&self) -> &Map<String, Value> {
        &self.raw
    }

    /// A normalised input; `None` when it is absent or null.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.normalized.get(name).filter(|v| !v.is_null())
    }

    /// A text input; an empty string counts as set.
    pub fn str(&self, name: &str) -> Result<Option<&str>, FunctionError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(FunctionError::invalid_input(
                name,
                format!("must be text, got {}", type_name(other)),
            )),
        }
    }

    /// A text input that must be set and not empty.
    pub fn required_str(&self, name: &str) -> Result<&str, FunctionError> {
        match self.str(name)? {
            Some(s) if !s.trim().is_empty() => Ok(s),
            _ => Err(FunctionError::missing_input(name)),
        }
    }

    /// A boolean input. Accepts JSON booleans, 0/1 and the texts true/false/yes/no/1/0 (any
    /// case; a select of those names); empty text is absent.
    pub fn bool(&self, name: &str) -> Result<Option<bool>, FunctionError> {
        let value = self.get(name);
        match value
            .and_then(|v| coerce(v, ValueKind::Bool))
            .as_ref()
            .or(value)
        {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(FunctionError::invalid_input(
                name,
                format!("must be a boolean, got {}", type_name(other)),
            )),
        }
    }

    /// A whole-number input (number fields, datetimes in epoch milliseconds, ids).
    pub fn i64(&self, name: &str) -> Result<Option<i64>, FunctionError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Number(n)) => n.as_i64().map(Some).ok_or_else(|| {
                FunctionError::invalid_input(name, format!("must be a whole number, got {n}"))
            }),
            Some(Value::String(s)) => s.trim().parse().map(Some).map_err(|_| {
                FunctionError::invalid_input(name, format!("must be a whole number, got {s:?}"))
            }),
            Some(other) => Err(FunctionError::invalid_input(
                name,
                format!("must be a number, got {}", type_name(other)),
            )),
        }
    }

    /// A multiselect input as a list of names (absent means empty).
    pub fn list(&self, name: &str) -> Result<Vec<String>, FunctionError> {
        match self.get(name) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| match item {
                    Value::String(s) => Ok(s.clone()),
                    other => Err(FunctionError::invalid_input(
                        name,
                        format!("must be a list of names, found {}", type_name(other)),
                    )),
                })
                .collect(),
            Some(Value::String(s)) => Ok(vec![s.clone()]),
            Some(other) => Err(FunctionError::invalid_input(
                name,
                format!("must be a list, got {}", type_name(other)),
            )),
        }
    }

    /// The inputs with each value brought to the kind `schema` reads, where that is clear:
    /// `"true"`/`"false"`/`"yes"`/`"no"`/`"1"`/`"0"` (any case) or 0/1 for a boolean (a select
    /// of those names, as 2018 exports defined booleans), numeric text for a number, and empty
    /// text as absent for both. Anything else is left for the typed parse to name.
    pub fn coerced(&self, schema: &InputSchema) -> Inputs {
        let mut normalized = self.normalized.clone();
        for (name, kind) in &schema.inputs {
            if let Some(v) = normalized.get_mut(name)
                && let Some(c) = coerce(v, *kind)
            {
                *v = c;
            }
        }
        Inputs {
            normalized,
            raw: self.raw.clone(),
        }
    }

    /// Deserialises all normalised inputs into a typed struct.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, FunctionError> {
        serde_json::from_value(Value::Object(self.normalized.clone())).map_err(|e| {
            FunctionError::Input {
                name: "inputs".to_string(),
                problem: e.to_string(),
            }
        })
    }
}

/// `value` as `kind`, when it is text (or 0/1 for a boolean) that clearly means one.
fn coerce(value: &Value, kind: ValueKind) -> Option<Value> {
    match (kind, value) {
        (ValueKind::Bool | ValueKind::Integer | ValueKind::Float, Value::String(s))
            if s.trim().is_empty() =>
        {
            Some(Value::Null)
        }
        (ValueKind::Bool, Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "1" => Some(Value::Bool(true)),
            "false" | "no" | "0" => Some(Value::Bool(false)),
            _ => None,
        },
        (ValueKind::Bool, Value::Number(n)) => match n.as_i64() {
            Some(1) => Some(Value::Bool(true)),
            Some(0) => Some(Value::Bool(false)),
            _ => None,
        },
        (ValueKind::Integer, Value::String(s)) => s.trim().parse::<i64>().ok().map(Value::from),
        (ValueKind::Float, Value::String(s)) => s
            .trim()
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number),
        _ => None,
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "text",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn normalizes_like_app_function() {
        let inputs = Inputs::from_value(json!({
            "incident_id": 2095,
            "text": "abc",
            "area": {"format": "text", "content": "long text"},
            "sel": {"id": 211, "name": "Option A"},
            "multi": [{"id": 212, "name": "X"}, {"id": 213, "name": "Y"}],
            "flag": true,
            "empty": null,
        }));
        assert_eq!(inputs.i64("incident_id").unwrap(), Some(2095));
        assert_eq!(inputs.str("area").unwrap(), Some("long text"));
        assert_eq!(inputs.str("sel").unwrap(), Some("Option A"));
        assert_eq!(inputs.list("multi").unwrap(), vec!["X", "Y"]);
        assert_eq!(inputs.bool("flag").unwrap(), Some(true));
        assert_eq!(inputs.str("empty").unwrap(), None);
        assert_eq!(inputs.raw()["sel"], json!({"id": 211, "name": "Option A"}));
        assert_eq!(inputs.normalized()["multi"], json!(["X", "Y"]));
    }

    /// Booleans defined as selects (`{"name": "false"}`, as 2018 exports did) and numbers
    /// written as text read into a typed struct.
    #[test]
    fn typed_inputs_read_selects_and_text_as_their_kind() {
        use crate::handler::FromInputs;
        #[derive(serde::Deserialize, Debug, PartialEq)]
        struct Typed {
            flag: Option<bool>,
            other: Option<bool>,
            count: Option<i64>,
            empty: Option<bool>,
            name: Option<String>,
        }
        let inputs = Inputs::from_value(json!({
            "flag": {"id": 301, "name": "false"},
            "other": "True",
            "count": " 12 ",
            "empty": "",
            "name": "1",
        }));
        assert_eq!(
            Typed::from_inputs(inputs).unwrap(),
            Typed {
                flag: Some(false),
                other: Some(true),
                count: Some(12),
                empty: None,
                name: Some("1".into()),
            }
        );
        // What cannot be meant as the kind is still an error naming it.
        let e = Typed::from_inputs(Inputs::from_value(json!({"flag": "maybe"})))
            .unwrap_err()
            .to_string();
        assert!(e.contains("maybe"), "{e}");
    }

    #[test]
    fn wrong_types_and_missing_inputs_name_the_input() {
        let inputs = Inputs::from_value(json!({"n": "x", "t": 5}));
        let err = inputs.i64("n").unwrap_err().to_string();
        assert!(err.contains("'n'") && err.contains("whole number"), "{err}");
        let err = inputs.str("t").unwrap_err().to_string();
        assert!(err.contains("'t'") && err.contains("text"), "{err}");
        let err = inputs.required_str("absent").unwrap_err().to_string();
        assert!(err.contains("'absent' is mandatory"), "{err}");
    }
}
