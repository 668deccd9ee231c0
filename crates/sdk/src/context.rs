//! What a handler receives besides its inputs: the message envelope, the platform's REST API, a
//! way to send status messages, and the invocation's key.

use std::sync::Arc;

use crate::error::FunctionError;
use crate::message::Message;
use crate::platform::{BoxFuture, Rest};
use crate::result::Reply;

/// Where status messages go: the engine sends each at once on the message's `reply-to` queue.
pub trait StatusSink: Send + Sync {
    fn send_status(&self, reply: Reply) -> BoxFuture<'_, ()>;
}

/// A sink that drops status messages (for calls outside any platform message).
#[derive(Debug, Default)]
pub struct DiscardStatus;

impl StatusSink for DiscardStatus {
    fn send_status(&self, _reply: Reply) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

/// The context of one invocation (or of a selftest). Cheap to clone.
#[derive(Clone)]
pub struct Context {
    inner: Arc<Inner>,
}

struct Inner {
    message: Message,
    rest: Option<Rest>,
    status: Arc<dyn StatusSink>,
    key: String,
    may_have_run: bool,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("queue", &self.inner.message.queue())
            .field("kind", self.inner.message.kind())
            .field("key", &self.inner.key)
            .field("may_have_run", &self.inner.may_have_run)
            .finish_non_exhaustive()
    }
}

impl Context {
    /// A context for `message`; `key` identifies the invocation (the broker's message id).
    pub fn new(
        message: Message,
        rest: Option<Rest>,
        status: Arc<dyn StatusSink>,
        key: impl Into<String>,
    ) -> Self {
        Context {
            inner: Arc::new(Inner {
                message,
                rest,
                status,
                key: key.into(),
                may_have_run: false,
            }),
        }
    }

    /// Marks the invocation as one whose earlier run may have started (builder style, on a new
    /// context): the engine sets it when its journal saw the invocation start, or when the
    /// broker redelivers the message.
    pub fn with_previous_run(mut self, may_have_run: bool) -> Self {
        match Arc::get_mut(&mut self.inner) {
            Some(inner) => inner.may_have_run = may_have_run,
            None => debug_assert!(false, "with_previous_run on a shared context"),
        }
        self
    }

    /// Whether an earlier run of this invocation may have started (and done its outside
    /// action) before a crash or a lost connection interrupted it. A handler whose action must
    /// happen once looks for the effect of that run (by [`invocation_key`](Self::invocation_key))
    /// before acting again. False on a first delivery.
    pub fn may_have_run(&self) -> bool {
        self.inner.may_have_run
    }

    /// The message envelope: incident, workflow instance, principal, the raw body.
    pub fn message(&self) -> &Message {
        &self.inner.message
    }

    /// The platform's REST API, logged in to the configured org.
    pub fn rest(&self) -> Result<&Rest, FunctionError> {
        self.inner.rest.as_ref().ok_or_else(|| {
            FunctionError::msg("no SOAR platform REST client is available in this context")
        })
    }

    /// A key that identifies this invocation across redeliveries (the broker's message id), for
    /// outside calls that accept an idempotency key.
    pub fn invocation_key(&self) -> &str {
        &self.inner.key
    }

    /// Sends a status line to the platform at once (`message_type 0`, `complete false`).
    pub async fn status(&self, text: impl AsRef<str>) {
        self.inner
            .status
            .send_status(Reply::status(text.as_ref()))
            .await;
    }
}
