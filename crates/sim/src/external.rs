//! External-broker mode: the simulator talks to a real STOMP broker (e.g. ActiveMQ) as the
//! platform would, through a soar-stomp [`Session`].
//!
//! Invocations are SENT to `/queue/actions.<org>.<q>` with the platform's headers (`reply-to`,
//! `correlation-id`, `Co3*`, `persistent:true`), after the simulator subscribed to
//! `/queue/acks.<org>.<q>` so that no reply can be missed. Replies are matched to invocations by
//! `correlation-id`, exactly as with the embedded broker. What happens between the broker and
//! the host (deliveries, ACKs) is invisible here: `Invocation::wait_acked` returns
//! `SimError::Unsupported`, and `deliveries()` stays 0.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use soar_stomp::{AckMode, ClientConfig, Command, Event, Frame, Session, Subscription};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::ExternalBroker;
use crate::SimError;
use crate::broker::queue_name;
use crate::invocation::{Registry, handle_reply};

/// The simulator's client side of an external broker.
#[derive(Debug)]
pub(crate) struct External {
    config: ExternalBroker,
    org_id: i64,
    session: Session,
    subscribed: tokio::sync::Mutex<HashSet<String>>,
    violations: Arc<Mutex<Vec<String>>>,
    replies: Arc<AtomicU64>,
    /// The generation of the last Connected event (0 = never connected).
    connected: watch::Receiver<u64>,
}

impl External {
    /// Starts the session (connecting in the background) and the task that collects replies.
    pub(crate) fn new(
        config: ExternalBroker,
        org_id: i64,
        registry: Arc<Registry>,
        cancel: CancellationToken,
    ) -> External {
        let mut client = ClientConfig::new(config.host.clone(), config.port);
        client.tls = config.tls.clone();
        client.server_name = config.server_name.clone();
        client.login = config.login.clone();
        client.passcode = config.passcode.clone();
        let (session, events) = Session::start(client, Vec::new());
        let violations = Arc::new(Mutex::new(Vec::new()));
        let replies = Arc::new(AtomicU64::new(0));
        let (connected_tx, connected) = watch::channel(0);
        tokio::spawn(collect_replies(
            events,
            session.clone(),
            registry,
            violations.clone(),
            replies.clone(),
            connected_tx,
            cancel,
        ));
        External {
            config,
            org_id,
            session,
            subscribed: tokio::sync::Mutex::new(HashSet::new()),
            violations,
            replies,
            connected,
        }
    }

    pub(crate) fn config(&self) -> &ExternalBroker {
        &self.config
    }

    pub(crate) fn violations(&self) -> Vec<String> {
        self.violations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub(crate) fn replies(&self) -> u64 {
        self.replies.load(Ordering::SeqCst)
    }

    async fn wait_connected(&self, timeout: Duration) -> Result<(), SimError> {
        let mut rx = self.connected.clone();
        let r = tokio::time::timeout(timeout, rx.wait_for(|g| *g > 0)).await;
        match r {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err(SimError::External(
                "the session to the external broker has stopped".into(),
            )),
            Err(_) => Err(SimError::timeout(
                format!(
                    "a connection to the external broker {}:{}",
                    self.config.host, self.config.port
                ),
                timeout,
            )),
        }
    }

    /// Subscribes to the destination's acks queue (once), then SENDs the message with a receipt.
    pub(crate) async fn publish(
        &self,
        destination: &str,
        message_id: &str,
        headers: Vec<(String, String)>,
        body: Bytes,
        timeout: Duration,
    ) -> Result<(), SimError> {
        self.wait_connected(timeout).await?;
        let acks = format!("/queue/acks.{}.{destination}", self.org_id);
        {
            let mut subscribed = self.subscribed.lock().await;
            if !subscribed.contains(&acks) {
                // Acknowledged only once recorded: a reply in flight when the connection
                // drops is redelivered, never lost.
                self.session
                    .subscribe(
                        Subscription::new(acks.clone(), AckMode::ClientIndividual)
                            .header("activemq.prefetchSize", "1000"),
                    )
                    .await
                    .map_err(|e| SimError::External(format!("SUBSCRIBE {acks} failed: {e}")))?;
                subscribed.insert(acks);
            }
        }
        let mut frame = Frame::new(Command::Send)
            .header(
                "destination",
                format!("/queue/actions.{}.{destination}", self.org_id),
            )
            .header("soar-sim-message-id", message_id);
        frame.headers.extend(headers);
        frame.body = body;
        self.session
            .send_with_receipt(frame)
            .await
            .map_err(|e| SimError::External(format!("SEND to {destination} failed: {e}")))
    }

    pub(crate) async fn shutdown(&self) {
        let _ = self.session.clone().disconnect().await;
    }
}

/// ACKs a reply in a task of its own, so that the loop reading replies never waits for the
/// connection's writes: the broker stops reading a connection while it cannot write to it, and
/// a client that stopped reading meanwhile would leave both sides stalled until the broker
/// drops the connection for inactivity.
fn ack_later(session: &Session, tag: soar_stomp::DeliveryTag) {
    let session = session.clone();
    tokio::spawn(async move {
        let _ = session.ack(&tag).await;
    });
}

async fn collect_replies(
    mut events: mpsc::Receiver<Event>,
    session: Session,
    registry: Arc<Registry>,
    violations: Arc<Mutex<Vec<String>>>,
    replies: Arc<AtomicU64>,
    connected: watch::Sender<u64>,
    cancel: CancellationToken,
) {
    let mut seen = HashSet::new();
    loop {
        let event = tokio::select! {
            _ = cancel.cancelled() => return,
            e = events.recv() => match e {
                Some(e) => e,
                None => return,
            },
        };
        match event {
            Event::Connected { generation, .. } => {
                connected.send_replace(generation);
            }
            Event::Message { frame, tag } => {
                // A redelivery of a reply already recorded (its ACK was lost with a connection).
                let id = frame.get("message-id").unwrap_or_default().to_string();
                if seen.len() > 100_000 {
                    seen.clear();
                }
                if !seen.insert(id) {
                    ack_later(&session, tag);
                    continue;
                }
                let queue = queue_name(frame.get("destination").unwrap_or("")).to_string();
                let outcome = handle_reply(
                    &registry,
                    &queue,
                    frame.get("correlation-id"),
                    &frame.body,
                    0,
                );
                if outcome.recorded {
                    replies.fetch_add(1, Ordering::SeqCst);
                }
                ack_later(&session, tag);
                if !outcome.violations.is_empty() {
                    for v in &outcome.violations {
                        tracing::warn!("sim (external broker): protocol violation: {v}");
                    }
                    violations
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .extend(outcome.violations);
                }
            }
            Event::Undecodable { rejected, tag } => {
                let v = format!("a reply that cannot be read: {}", rejected.problem);
                tracing::warn!("sim (external broker): protocol violation: {v}");
                violations.lock().unwrap_or_else(|p| p.into_inner()).push(v);
                if let Some(tag) = tag {
                    ack_later(&session, tag);
                }
            }
            Event::Disconnected { generation, error } => {
                tracing::info!("sim: external broker connection {generation} lost: {error}");
            }
            Event::Fatal(error) => {
                tracing::error!("sim: external broker session stopped: {error}");
                return;
            }
            Event::ErrorFrame(frame) => {
                tracing::warn!(
                    "sim: ERROR frame from the external broker: {}",
                    frame.get("message").unwrap_or("")
                );
            }
        }
    }
}
