//! What a handler returns and the reply JSON the platform receives (spec §5).

use std::time::Duration;

use serde::Serialize;
use serde_json::{Map, Value, json};

/// The outcome of a function handler.
///
/// By default the value is wrapped in resilient-lib's `ResultPayload` (version 2.0: `success`,
/// `reason`, `content`, `raw`, `inputs`, `metrics`), which is what workflows and playbooks read as
/// `results.content`. [`FunctionResult::custom`] sends the value as it is.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionResult {
    pub(crate) value: Value,
    pub(crate) success: bool,
    pub(crate) reason: Option<String>,
    pub(crate) custom: bool,
    /// Keys also written at the top of `results`, beside the envelope.
    pub(crate) top: Map<String, Value>,
}

impl FunctionResult {
    /// A successful result whose `content` is `value`.
    pub fn new(content: impl Into<Value>) -> Self {
        FunctionResult {
            value: content.into(),
            success: true,
            reason: None,
            custom: false,
            top: Map::new(),
        }
    }

    /// A completed call that did not achieve its goal: `success: false` with a reason, still a
    /// normal (message_type 0) reply so that the workflow can branch on it.
    pub fn failure(reason: impl Into<String>, content: impl Into<Value>) -> Self {
        FunctionResult {
            value: content.into(),
            success: false,
            reason: Some(reason.into()),
            custom: false,
            top: Map::new(),
        }
    }

    /// A result sent exactly as given, without the `ResultPayload` envelope.
    pub fn custom(value: impl Into<Value>) -> Self {
        FunctionResult {
            value: value.into(),
            success: true,
            reason: None,
            custom: true,
            top: Map::new(),
        }
    }

    /// Also writes the keys of the content (an object) at the top of `results`, for workflows
    /// written before the `ResultPayload` envelope (2018 scripts read `results.ts` or
    /// `results['error']` where newer ones read `results.content.ts`). The envelope's own keys
    /// win over them.
    pub fn also_at_top(mut self) -> Self {
        if let Value::Object(map) = &self.value {
            self.top = map.clone();
        }
        self
    }

    /// Sets the reason shown next to the result.
    pub fn with_reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    /// The content (or the whole value of a custom result).
    pub fn content(&self) -> &Value {
        &self.value
    }
}

/// Who produced a result, for the `metrics` block.
#[derive(Debug, Clone)]
pub struct ResultSource<'a> {
    pub package: &'a str,
    pub package_version: &'a str,
    pub host: &'a str,
}

impl FunctionResult {
    /// The `results` value of the final reply (built by moving the content and the inputs in,
    /// not by serializing them again: a big result costs no second copy).
    pub fn into_results(
        self,
        inputs: Map<String, Value>,
        source: &ResultSource<'_>,
        elapsed: Duration,
    ) -> Value {
        if self.custom {
            return self.value;
        }
        let metrics = json!({
            "version": "1.0",
            "package": source.package.replace('_', "-"),
            "package_version": source.package_version,
            "host": source.host,
            "execution_time_ms": elapsed.as_millis() as u64,
            "timestamp": chrono::Local::now().format("%Y-%m-%d %H:%M:%S").to_string(),
        });
        let mut results = self.top;
        for (key, value) in [
            ("version", json!(2.0)),
            ("success", Value::Bool(self.success)),
            ("reason", self.reason.map_or(Value::Null, Value::String)),
            ("content", self.value),
            ("raw", Value::Null),
            ("inputs", Value::Object(inputs)),
            ("metrics", metrics),
        ] {
            results.insert(key.to_string(), value);
        }
        Value::Object(results)
    }
}

/// A reply on the `reply-to` queue (the platform's `ActionAcknowledgementDto`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reply {
    /// 0 information, 1 error.
    pub message_type: u8,
    pub message: String,
    pub complete: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub results: Option<Value>,
}

impl Reply {
    /// An interim status line (`complete: false`).
    pub fn status(text: &str) -> Self {
        let message = if text.is_empty() { "(No status)" } else { text };
        Reply {
            message_type: 0,
            message: message.to_string(),
            complete: false,
            results: None,
        }
    }

    /// The final reply of a successful call.
    pub fn success(message: impl Into<String>, results: Option<Value>) -> Self {
        Reply {
            message_type: 0,
            message: message.into(),
            complete: true,
            results,
        }
    }

    /// The final reply of a failed call.
    pub fn error(message: impl Into<String>) -> Self {
        Reply {
            message_type: 1,
            message: message.into(),
            complete: true,
            results: None,
        }
    }

    /// The JSON body sent to the platform.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| {
            format!(
                r#"{{"message_type":1,"message":"reply not serialisable: {e}","complete":true}}"#
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_payload_has_the_v2_shape() {
        let inputs = json!({"a": 1}).as_object().unwrap().clone();
        let source = ResultSource {
            package: "fn_hello",
            package_version: "0.1.0",
            host: "box",
        };
        let v = FunctionResult::new(json!({"echo": "x"})).into_results(
            inputs,
            &source,
            Duration::from_millis(12),
        );
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "version", "success", "reason", "content", "raw", "inputs", "metrics"
            ]
        );
        assert_eq!(v["version"], json!(2.0));
        assert_eq!(v["success"], json!(true));
        assert_eq!(v["reason"], Value::Null);
        assert_eq!(v["content"], json!({"echo": "x"}));
        assert_eq!(v["inputs"], json!({"a": 1}));
        assert_eq!(v["metrics"]["package"], json!("fn-hello"));
        assert_eq!(v["metrics"]["execution_time_ms"], json!(12));
        assert_eq!(v["metrics"]["version"], json!("1.0"));
        let ts = v["metrics"]["timestamp"].as_str().unwrap();
        assert_eq!(ts.len(), "2024-01-31 12:00:00".len());
    }

    #[test]
    fn custom_results_are_sent_as_is() {
        let v = FunctionResult::custom(json!({"x": 1})).into_results(
            Map::new(),
            &ResultSource {
                package: "p",
                package_version: "1",
                host: "h",
            },
            Duration::ZERO,
        );
        assert_eq!(v, json!({"x": 1}));
    }

    #[test]
    fn reply_json_shapes() {
        assert_eq!(
            Reply::status("working").to_json(),
            r#"{"message_type":0,"message":"working","complete":false}"#
        );
        assert_eq!(Reply::status("").message, "(No status)");
        assert_eq!(
            Reply::error("boom").to_json(),
            r#"{"message_type":1,"message":"boom","complete":true}"#
        );
        assert_eq!(
            Reply::success("Completed", Some(json!({"a": 1}))).to_json(),
            r#"{"message_type":0,"message":"Completed","complete":true,"results":{"a":1}}"#
        );
    }
}
