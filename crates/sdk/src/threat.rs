//! Custom threat services: the platform asks them about every new artifact (rc-cts protocol).
//! A component implements [`ThreatService`] (search one artifact, return hits) and adds it with
//! [`Component::threat_service`](crate::Component::threat_service); the host serves it at
//! `<[custom_threat_service] urlbase>/<name>` with the request cache, the first answer on the POST,
//! 303 polling, authentication, HTTP or HTTPS (`[webserver]`).

use std::future::Future;
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

use crate::error::FunctionError;
use crate::platform::BoxFuture;

/// An artifact the platform asks about: `{"type": "net.ip", "value": "1.2.3.4", ...}`.
#[derive(Debug, Clone, PartialEq)]
pub struct ThreatArtifact {
    /// The threat-service type name (`net.ip`, `net.uri`, `hash.md5`, ...).
    pub artifact_type: String,
    pub value: String,
    json: Value,
}

impl ThreatArtifact {
    /// The artifact of a request body (`None` unless it is an object with a string `type`/`value`).
    pub fn from_json(json: Value) -> Option<ThreatArtifact> {
        let artifact_type = json.get("type")?.as_str()?.to_string();
        let value = json.get("value")?.as_str()?.to_string();
        Some(ThreatArtifact {
            artifact_type,
            value,
            json,
        })
    }

    /// The request body as the platform sent it.
    pub fn json(&self) -> &Value {
        &self.json
    }
}

/// One property of a [`Hit`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HitProp {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub name: String,
    pub value: Value,
}

/// One hit: properties the analyst sees on the artifact.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Hit {
    pub props: Vec<HitProp>,
}

impl Hit {
    pub fn new() -> Self {
        Hit::default()
    }

    fn prop(mut self, kind: &'static str, name: impl Into<String>, value: Value) -> Self {
        self.props.push(HitProp {
            kind,
            name: name.into(),
            value,
        });
        self
    }

    /// A text property.
    pub fn string(self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.prop("string", name, Value::String(value.into()))
    }

    /// A link.
    pub fn uri(self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.prop("uri", name, Value::String(value.into()))
    }

    /// A number.
    pub fn number(self, name: impl Into<String>, value: i64) -> Self {
        self.prop("number", name, Value::from(value))
    }
}

/// A custom threat service: looks one artifact up in an outside service.
pub trait ThreatService: Send + Sync + 'static {
    /// The hits for `artifact` (empty: nothing known). An error is logged and answered as no
    /// hits, and the lookup is tried again on the next request.
    fn search(
        &self,
        artifact: ThreatArtifact,
    ) -> impl Future<Output = Result<Vec<Hit>, FunctionError>> + Send;
}

type SearchFn =
    dyn Fn(ThreatArtifact) -> BoxFuture<'static, Result<Vec<Hit>, FunctionError>> + Send + Sync;

/// A threat service with the name it is served under (`/cts/<name>`).
#[derive(Clone)]
pub struct ThreatRoute {
    pub name: String,
    search: Arc<SearchFn>,
}

impl std::fmt::Debug for ThreatRoute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThreatRoute")
            .field("name", &self.name)
            .finish()
    }
}

impl ThreatRoute {
    pub(crate) fn new(name: String, service: impl ThreatService) -> Self {
        let service = Arc::new(service);
        ThreatRoute {
            name,
            search: Arc::new(move |artifact| {
                let service = service.clone();
                Box::pin(async move { service.search(artifact).await })
            }),
        }
    }

    /// Looks `artifact` up.
    pub fn search(
        &self,
        artifact: ThreatArtifact,
    ) -> BoxFuture<'static, Result<Vec<Hit>, FunctionError>> {
        (self.search)(artifact)
    }
}
