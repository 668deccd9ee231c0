//! What a handler receives besides its inputs: the message, the platform client, its own config
//! section, and a way to send status messages.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use soar_rest::RestClient;

use crate::error::FunctionError;
use crate::message::Message;
use crate::result::Reply;

/// Where status messages go: the engine sends each at once on the message's `reply-to` queue.
#[async_trait]
pub trait StatusSink: Send + Sync {
    async fn send_status(&self, reply: Reply);
}

/// A sink that drops status messages (for calls outside any platform message).
#[derive(Debug, Default)]
pub struct DiscardStatus;

#[async_trait]
impl StatusSink for DiscardStatus {
    async fn send_status(&self, _reply: Reply) {}
}

/// A component's own app.config section, resolved (secrets substituted).
#[derive(Debug, Clone, Default)]
pub struct ComponentSection {
    name: String,
    values: BTreeMap<String, String>,
}

impl ComponentSection {
    pub fn new(name: impl Into<String>, values: BTreeMap<String, String>) -> Self {
        ComponentSection {
            name: name.into(),
            values,
        }
    }

    /// The section name, e.g. `fn_slack`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A value of the section (keys are lower-case).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }
}

/// The context of one invocation. Cheap to clone.
#[derive(Clone)]
pub struct Context {
    inner: Arc<Inner>,
}

struct Inner {
    message: Message,
    rest: Option<RestClient>,
    section: Arc<ComponentSection>,
    status: Arc<dyn StatusSink>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("queue", &self.inner.message.queue())
            .field("kind", self.inner.message.kind())
            .field("section", &self.inner.section.name())
            .finish_non_exhaustive()
    }
}

impl Context {
    pub fn new(
        message: Message,
        rest: Option<RestClient>,
        section: Arc<ComponentSection>,
        status: Arc<dyn StatusSink>,
    ) -> Self {
        Context {
            inner: Arc::new(Inner {
                message,
                rest,
                section,
                status,
            }),
        }
    }

    /// The message envelope: incident, workflow instance, principal, the raw body.
    pub fn message(&self) -> &Message {
        &self.inner.message
    }

    /// The platform REST client, logged in to the configured org.
    pub fn rest(&self) -> Result<&RestClient, FunctionError> {
        self.inner.rest.as_ref().ok_or_else(|| {
            FunctionError::msg("no SOAR platform REST client is available in this context")
        })
    }

    /// This component's own app.config section.
    pub fn config(&self) -> &ComponentSection {
        &self.inner.section
    }

    /// Sends a status line to the platform at once (`message_type 0`, `complete false`).
    pub async fn status(&self, text: impl AsRef<str>) {
        self.inner
            .status
            .send_status(Reply::status(text.as_ref()))
            .await;
    }
}
