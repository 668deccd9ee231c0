//! Invocation bookkeeping: what happened to each message the simulator put on a queue.
//!
//! Every message sent by [`crate::Sim::invoke`] (and friends) gets an [`Invocation`]: its
//! correlation id, its message id, and an ordered list of [`InvocationEvent`]s (deliveries, status
//! replies, the final reply, ACK/NACK). The broker records events; tests wait on them with
//! timeouts. Replies are matched to invocations by their `correlation-id` header through the
//! `Registry`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::watch;

use crate::SimError;

/// A reply the client sent for an invocation (a SEND to the `reply-to` queue).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    /// `message_type`: 0 info, 1 error (2 warning exists on the platform but clients send 0/1).
    pub message_type: i64,
    /// `message`.
    pub message: String,
    /// `complete`: false for a status message, true for the final reply.
    pub complete: bool,
    /// `results`, when present.
    pub results: Option<Value>,
    /// The whole JSON body.
    pub body: Value,
    /// The STOMP connection the reply arrived on (0 in external-broker mode).
    pub connection_id: u64,
}

impl Reply {
    /// Builds a reply from a JSON body. Returns the reply and the problems found in its shape.
    pub fn from_body(body: Value, connection_id: u64) -> (Reply, Vec<String>) {
        let mut problems = Vec::new();
        let message_type = match body.get("message_type") {
            Some(Value::Number(n)) if n.as_i64().is_some() => n.as_i64().unwrap_or_default(),
            Some(other) => {
                problems.push(format!("reply has a non-integer message_type: {other}"));
                0
            }
            None => {
                problems.push("reply has no message_type".to_string());
                0
            }
        };
        if !(0..=2).contains(&message_type) {
            problems.push(format!(
                "reply has message_type {message_type} (expected 0, 1 or 2)"
            ));
        }
        let message = match body.get("message") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => {
                problems.push("reply has no message string".to_string());
                String::new()
            }
            Some(other) => {
                problems.push(format!("reply message is not a string: {other}"));
                other.to_string()
            }
        };
        let complete = match body.get("complete") {
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                problems.push(format!("reply has a non-boolean complete: {other}"));
                false
            }
            None => {
                problems.push("reply has no complete flag".to_string());
                false
            }
        };
        let results = body.get("results").cloned();
        (
            Reply {
                message_type,
                message,
                complete,
                results,
                body,
                connection_id,
            },
            problems,
        )
    }
}

/// Something that happened to an invocation, in arrival order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvocationEvent {
    /// The MESSAGE frame was written to a client connection.
    Delivered {
        /// The connection it went to.
        connection_id: u64,
        /// Whether it carried `redelivered:true`.
        redelivered: bool,
    },
    /// A reply with `complete:false`.
    Status(Reply),
    /// A reply with `complete:true`.
    Final(Reply),
    /// The client ACKed the message.
    Acked,
    /// The client NACKed the message.
    Nacked,
}

#[derive(Debug, Default)]
struct State {
    events: Vec<InvocationEvent>,
}

/// Shared part of an invocation, referenced by the broker and by every [`Invocation`] handle.
#[derive(Debug)]
pub(crate) struct InvocationInner {
    correlation_id: String,
    message_id: String,
    /// Queue the message was put on, e.g. `actions.201.fn_hello`.
    pub(crate) queue: String,
    /// Queue the replies are expected on, e.g. `acks.201.fn_hello`.
    pub(crate) reply_queue: String,
    acks_observable: bool,
    state: Mutex<State>,
    changed: watch::Sender<u64>,
}

impl InvocationInner {
    pub(crate) fn new(
        correlation_id: String,
        message_id: String,
        queue: String,
        reply_queue: String,
        acks_observable: bool,
    ) -> Arc<InvocationInner> {
        Arc::new(InvocationInner {
            correlation_id,
            message_id,
            queue,
            reply_queue,
            acks_observable,
            state: Mutex::new(State::default()),
            changed: watch::Sender::new(0),
        })
    }

    /// An invocation of an earlier run of the simulator (from its state file), with the events
    /// it had then.
    pub(crate) fn restored(
        correlation_id: String,
        message_id: String,
        queue: String,
        reply_queue: String,
        events: Vec<InvocationEvent>,
    ) -> Arc<InvocationInner> {
        let inv = InvocationInner::new(correlation_id, message_id, queue, reply_queue, true);
        inv.state().events = events;
        inv
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every event so far.
    pub(crate) fn events(&self) -> Vec<InvocationEvent> {
        self.state().events.clone()
    }

    pub(crate) fn correlation_id(&self) -> &str {
        &self.correlation_id
    }

    pub(crate) fn message_id(&self) -> &str {
        &self.message_id
    }

    /// Records an event and wakes waiters.
    pub(crate) fn record(&self, event: InvocationEvent) {
        self.state().events.push(event);
        self.changed.send_modify(|v| *v += 1);
    }

    /// Records a reply; returns protocol violations (second final reply, status after final).
    pub(crate) fn record_reply(&self, reply: Reply) -> Vec<String> {
        let mut violations = Vec::new();
        {
            let mut st = self.state();
            let finals = st
                .events
                .iter()
                .filter(|e| matches!(e, InvocationEvent::Final(_)))
                .count();
            if finals > 0 {
                if reply.complete {
                    violations.push(format!(
                        "second final reply (complete:true) for correlation-id {}",
                        self.correlation_id
                    ));
                } else {
                    violations.push(format!(
                        "status reply after the final reply for correlation-id {}",
                        self.correlation_id
                    ));
                }
            }
            st.events.push(if reply.complete {
                InvocationEvent::Final(reply)
            } else {
                InvocationEvent::Status(reply)
            });
        }
        self.changed.send_modify(|v| *v += 1);
        violations
    }

    /// Waits until `check` finds something in the event list.
    async fn wait_for<T>(
        &self,
        timeout: Duration,
        what: impl FnOnce() -> String,
        mut check: impl FnMut(&[InvocationEvent]) -> Option<T>,
    ) -> Result<T, SimError> {
        let mut rx = self.changed.subscribe();
        let fut = async {
            loop {
                rx.borrow_and_update();
                if let Some(t) = check(&self.state().events) {
                    return t;
                }
                if rx.changed().await.is_err() {
                    // The sender lives in `self`, so this cannot happen; wait for the timeout.
                    futures::future::pending::<()>().await;
                }
            }
        };
        tokio::time::timeout(timeout, fut)
            .await
            .map_err(|_| SimError::timeout(what(), timeout))
    }
}

/// A handle on one message put on a queue by the simulator. Cheap to clone; clones share the
/// [`Invocation::next_event`] cursor.
#[derive(Debug, Clone)]
pub struct Invocation {
    inner: Arc<InvocationInner>,
    cursor: Arc<AtomicUsize>,
}

impl Invocation {
    pub(crate) fn new(inner: Arc<InvocationInner>) -> Invocation {
        Invocation {
            inner,
            cursor: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// The `correlation-id` header of the message (e.g. `invid:3`).
    pub fn correlation_id(&self) -> &str {
        self.inner.correlation_id()
    }

    /// The `message-id` header of the message (the same on every redelivery).
    pub fn message_id(&self) -> &str {
        self.inner.message_id()
    }

    /// The queue the message was put on (e.g. `actions.201.fn_hello`).
    pub fn queue(&self) -> &str {
        &self.inner.queue
    }

    /// The next event not yet returned by this method (on this handle or its clones).
    pub async fn next_event(&self, timeout: Duration) -> Result<InvocationEvent, SimError> {
        let cursor = self.cursor.clone();
        let ev = self
            .inner
            .wait_for(
                timeout,
                || format!("next event of {}", self.correlation_id()),
                |events| events.get(cursor.load(Ordering::SeqCst)).cloned(),
            )
            .await?;
        self.cursor.fetch_add(1, Ordering::SeqCst);
        Ok(ev)
    }

    /// The first reply with `complete:true`. Status replies before it stay in [`Self::events`].
    pub async fn final_reply(&self, timeout: Duration) -> Result<Reply, SimError> {
        self.inner
            .wait_for(
                timeout,
                || format!("final reply to {}", self.correlation_id()),
                |events| {
                    events.iter().find_map(|e| match e {
                        InvocationEvent::Final(r) => Some(r.clone()),
                        _ => None,
                    })
                },
            )
            .await
    }

    /// Waits until the client ACKed the message. Not observable with an external broker
    /// (returns [`SimError::Unsupported`] there).
    pub async fn wait_acked(&self, timeout: Duration) -> Result<(), SimError> {
        if !self.inner.acks_observable {
            return Err(SimError::Unsupported(
                "ACKs are not observable when the simulator uses an external broker",
            ));
        }
        self.inner
            .wait_for(
                timeout,
                || format!("ACK of {}", self.message_id()),
                |events| {
                    events
                        .iter()
                        .any(|e| matches!(e, InvocationEvent::Acked))
                        .then_some(())
                },
            )
            .await
    }

    /// Waits until the message has been delivered at least `n` times.
    pub async fn wait_delivered(&self, n: usize, timeout: Duration) -> Result<(), SimError> {
        if !self.inner.acks_observable {
            return Err(SimError::Unsupported(
                "deliveries are not observable when the simulator uses an external broker",
            ));
        }
        self.inner
            .wait_for(
                timeout,
                || format!("{n} deliveries of {}", self.message_id()),
                |events| (count_deliveries(events) >= n).then_some(()),
            )
            .await
    }

    /// A snapshot of every event so far.
    pub fn events(&self) -> Vec<InvocationEvent> {
        self.inner.events()
    }

    /// The status replies (complete:false) received so far, in order.
    pub fn statuses(&self) -> Vec<Reply> {
        self.inner
            .state()
            .events
            .iter()
            .filter_map(|e| match e {
                InvocationEvent::Status(r) => Some(r.clone()),
                _ => None,
            })
            .collect()
    }

    /// How many times the MESSAGE was delivered (0 in external-broker mode).
    pub fn deliveries(&self) -> usize {
        count_deliveries(&self.inner.state().events)
    }
}

fn count_deliveries(events: &[InvocationEvent]) -> usize {
    events
        .iter()
        .filter(|e| matches!(e, InvocationEvent::Delivered { .. }))
        .count()
}

/// Invocations by correlation id, so that replies can be matched to them.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    by_correlation: Mutex<HashMap<String, Arc<InvocationInner>>>,
}

impl Registry {
    pub(crate) fn insert(&self, inv: Arc<InvocationInner>) {
        self.by_correlation
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(inv.correlation_id().to_string(), inv);
    }

    pub(crate) fn get(&self, correlation_id: &str) -> Option<Arc<InvocationInner>> {
        self.by_correlation
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(correlation_id)
            .cloned()
    }
}

/// What became of a reply SEND.
#[derive(Debug, Default)]
pub(crate) struct ReplyOutcome {
    /// Whether it was matched to an invocation and recorded.
    pub(crate) recorded: bool,
    /// Protocol mistakes found in it.
    pub(crate) violations: Vec<String>,
}

/// Matches a reply (a SEND to an `acks` queue) to its invocation and records it.
///
/// `queue` is the destination without `/queue/`. Everything wrong with it (no or unknown
/// `correlation-id`, a body that is not JSON, a reply on the wrong queue, a second final reply)
/// is returned as a violation; a reply that can be matched is recorded even if it has problems.
pub(crate) fn handle_reply(
    registry: &Registry,
    queue: &str,
    correlation_id: Option<&str>,
    body: &[u8],
    connection_id: u64,
) -> ReplyOutcome {
    let mut out = ReplyOutcome::default();
    let Some(correlation_id) = correlation_id else {
        out.violations.push(format!(
            "reply SEND to {queue} on connection {connection_id} has no correlation-id header"
        ));
        return out;
    };
    let Some(inv) = registry.get(correlation_id) else {
        out.violations.push(format!(
            "reply SEND to {queue} on connection {connection_id} has unknown correlation-id {correlation_id}"
        ));
        return out;
    };
    if inv.reply_queue != queue {
        out.violations.push(format!(
            "reply for {correlation_id} was sent to {queue}, but its reply-to was /queue/{}",
            inv.reply_queue
        ));
    }
    let json: Value = match std::str::from_utf8(body)
        .map_err(|e| e.to_string())
        .and_then(|s| serde_json::from_str(s).map_err(|e| e.to_string()))
    {
        Ok(v) => v,
        Err(e) => {
            out.violations.push(format!(
                "reply for {correlation_id} is not UTF-8 JSON ({e}): {:?}",
                String::from_utf8_lossy(&body[..body.len().min(200)])
            ));
            return out;
        }
    };
    let (reply, problems) = Reply::from_body(json, connection_id);
    out.violations.extend(
        problems
            .into_iter()
            .map(|p| format!("reply for {correlation_id}: {p}")),
    );
    out.violations.extend(inv.record_reply(reply));
    out.recorded = true;
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn inv() -> Invocation {
        Invocation::new(InvocationInner::new(
            "invid:1".into(),
            "ID:soar-sim-1".into(),
            "actions.201.q".into(),
            "acks.201.q".into(),
            true,
        ))
    }

    #[test]
    fn reply_shape_problems_are_reported() {
        let (r, p) = Reply::from_body(
            json!({"message_type": 0, "message": "x", "complete": true}),
            1,
        );
        assert!(p.is_empty());
        assert!(r.complete);
        let (_, p) = Reply::from_body(json!({"message": 3}), 1);
        assert_eq!(p.len(), 3, "{p:?}");
    }

    #[tokio::test]
    async fn events_and_finals() {
        let i = inv();
        let inner = i.inner.clone();
        let waiter = tokio::spawn({
            let i = i.clone();
            async move { i.final_reply(Duration::from_secs(5)).await }
        });
        inner.record(InvocationEvent::Delivered {
            connection_id: 1,
            redelivered: false,
        });
        let (status, _) =
            Reply::from_body(json!({"message_type":0,"message":"s","complete":false}), 1);
        assert!(inner.record_reply(status).is_empty());
        let (fin, _) = Reply::from_body(json!({"message_type":0,"message":"f","complete":true}), 1);
        assert!(inner.record_reply(fin.clone()).is_empty());
        assert_eq!(waiter.await.unwrap().unwrap(), fin);
        assert_eq!(inner.record_reply(fin).len(), 1);
        let d = Duration::from_secs(1);
        assert!(matches!(
            i.next_event(d).await.unwrap(),
            InvocationEvent::Delivered { .. }
        ));
        assert!(matches!(
            i.next_event(d).await.unwrap(),
            InvocationEvent::Status(_)
        ));
        assert!(matches!(
            i.next_event(d).await.unwrap(),
            InvocationEvent::Final(_)
        ));
        assert!(matches!(
            i.next_event(d).await.unwrap(),
            InvocationEvent::Final(_)
        ));
        let err = i.next_event(Duration::from_millis(20)).await.unwrap_err();
        assert!(matches!(err, SimError::Timeout { .. }));
        assert_eq!(i.deliveries(), 1);
        assert_eq!(i.statuses().len(), 1);
    }
}
