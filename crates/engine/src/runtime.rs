//! The runtime: connects the platform's REST API and STOMP broker to the dispatcher.
//!
//! Start-up follows resilient-circuits (spec §2.5): log in, resolve the org, learn rule names,
//! resolve each function's message destination, then subscribe to `actions.<org>.<queue>` with
//! `ack:client-individual` and a prefetch of `stomp_prefetch_limit` (default `num_workers`).
//!
//! For each message: status replies go out as the handler produces them, then the final reply
//! with a `receipt`, and only once the broker has confirmed it (RECEIPT) the ACK. A crash can
//! therefore repeat a reply but never lose one. A message redelivered while its first run is
//! still known here is not run again: it is acknowledged, after re-sending its reply if that
//! reply was never confirmed.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use soar_rest::{RestClient, RestError};
use soar_sdk::Reply;
use soar_sdk::context::{DiscardStatus, StatusSink};
use soar_sdk::platform::BoxFuture;
use soar_stomp::{AckMode, Command, DeliveryTag, Event, Frame, Session, StompError, Subscription};
use tokio::sync::{Semaphore, oneshot};
use tokio::task::JoinSet;

use crate::dispatch::{Dispatcher, Outcome};
use crate::rules::RuleDirectory;

/// How many finished message ids are remembered for redelivery handling, and for how long.
const DONE_CAPACITY: usize = 1000;
const DONE_TTL: Duration = Duration::from_secs(3600);

/// Why the runtime stopped.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(transparent)]
    Rest(#[from] RestError),
    #[error("STOMP connection to {address}: {source}{}", stomp_hint(source))]
    Stomp {
        address: String,
        #[source]
        source: StompError,
    },
}

fn stomp_hint(error: &StompError) -> &'static str {
    match error {
        StompError::Tls { .. } => {
            " (check stomp_cafile, or cafile when stomp_cafile is not set, in [resilient])"
        }
        StompError::Refused { .. } => {
            " (check api_key_id/api_key_secret or email/password in [resilient])"
        }
        _ => "",
    }
}

impl RuntimeError {
    /// Process exit code, as resilient-circuits (spec §8.3).
    pub fn exit_code(&self) -> i32 {
        match self {
            RuntimeError::Rest(e) => e.exit_code(),
            RuntimeError::Stomp {
                source: StompError::Refused { .. },
                ..
            } => 31,
            RuntimeError::Stomp { .. } => 30,
        }
    }
}

/// What the runtime needs beyond the dispatcher.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    pub stomp: soar_stomp::ClientConfig,
    /// Function-pool size (`num_workers`).
    pub num_workers: usize,
    /// `activemq.prefetchSize` on SUBSCRIBE (`stomp_prefetch_limit`).
    pub prefetch: u32,
    /// How long in-flight messages may take to finish on shutdown.
    pub shutdown_timeout: Duration,
}

/// The message destinations to subscribe to, resolved from the platform; loads `rules`.
pub async fn resolve_queues(
    dispatcher: &Dispatcher,
    rules: &RuleDirectory,
    rest: &RestClient,
) -> Result<Vec<String>, RestError> {
    match rules.load().await {
        Ok(()) => {}
        Err(e) if e.is_unauthorized() => return Err(e),
        Err(e) => tracing::warn!("cannot read the rule list (GET /actions): {e}"),
    }
    let mut queues: Vec<String> = dispatcher.rule_destinations();
    for name in dispatcher.function_names() {
        match rest.get_function(name).await? {
            Some(def) => match def.get("destination_handle").and_then(|v| v.as_str()) {
                Some(dest) => queues.push(dest.to_string()),
                None => tracing::warn!(
                    function = name,
                    "the platform's definition has no destination_handle; not subscribed"
                ),
            },
            None => tracing::warn!(
                function = name,
                "function '{name}' is not defined on the platform; it will not be served. \
                 Push the customizations of its crate (`host customize`) or check the org."
            ),
        }
    }
    queues.sort();
    queues.dedup();
    Ok(queues
        .into_iter()
        .map(|q| format!("actions.{}.{}", rest.org_id(), q))
        .collect())
}

#[derive(Debug)]
struct Done {
    /// The reply to send again if the broker never confirmed it.
    unconfirmed_reply: Option<Frame>,
    at: Instant,
}

#[derive(Debug, Default)]
struct Tracker {
    /// message-id → the latest delivery of a message whose handler is running.
    inflight: HashMap<String, DeliveryTag>,
    done: HashMap<String, Done>,
    order: VecDeque<String>,
}

impl Tracker {
    fn remember_done(&mut self, id: String, unconfirmed_reply: Option<Frame>) {
        let now = Instant::now();
        while let Some(oldest) = self.order.front() {
            let expired = self
                .done
                .get(oldest)
                .is_none_or(|d| now.duration_since(d.at) > DONE_TTL);
            if expired || self.done.len() >= DONE_CAPACITY {
                let oldest = self.order.pop_front().unwrap_or_default();
                self.done.remove(&oldest);
            } else {
                break;
            }
        }
        if self
            .done
            .insert(
                id.clone(),
                Done {
                    unconfirmed_reply,
                    at: now,
                },
            )
            .is_none()
        {
            self.order.push_back(id);
        }
    }
}

/// Sends status replies of one message on its `reply-to` queue.
struct StompStatus {
    session: Session,
    reply_to: String,
    correlation_id: Option<String>,
}

impl StatusSink for StompStatus {
    fn send_status(&self, reply: Reply) -> BoxFuture<'_, ()> {
        let frame = reply_frame(&self.reply_to, self.correlation_id.as_deref(), &reply);
        Box::pin(async move {
            if let Err(e) = self.session.send(frame).await {
                tracing::warn!("status message not sent: {e}");
            }
        })
    }
}

fn reply_frame(reply_to: &str, correlation_id: Option<&str>, reply: &Reply) -> Frame {
    // Not `persistent`: resilient-circuits sends none either, and on ActiveMQ a persistent final
    // reply overtakes the non-persistent status messages before it on the same queue.
    let mut frame = Frame::new(Command::Send).header("destination", reply_to);
    if let Some(c) = correlation_id {
        frame = frame.header("correlation-id", c);
    }
    frame.with_body(reply.to_json())
}

/// Serves messages until `shutdown` completes or the connection fails for good.
///
/// `ready` is told the subscribed queues once the first connection has subscribed.
pub async fn serve(
    dispatcher: Arc<Dispatcher>,
    queues: Vec<String>,
    config: RuntimeConfig,
    shutdown: impl Future<Output = ()>,
    ready: Option<oneshot::Sender<Vec<String>>>,
) -> Result<(), RuntimeError> {
    let address = format!("{}:{}", config.stomp.host, config.stomp.port);
    let subscriptions = queues
        .iter()
        .map(|q| Subscription {
            destination: q.clone(),
            id: q.clone(),
            ack: AckMode::ClientIndividual,
            headers: vec![(
                "activemq.prefetchSize".to_string(),
                config.prefetch.to_string(),
            )],
        })
        .collect();
    let (session, mut events) = Session::start(config.stomp.clone(), subscriptions);
    let tracker = Arc::new(Mutex::new(Tracker::default()));
    let workers = Arc::new(Semaphore::new(config.num_workers.max(1)));
    let stopping = Arc::new(AtomicBool::new(false));
    let shared = Shared {
        dispatcher: dispatcher.clone(),
        session: session.clone(),
        tracker: tracker.clone(),
        workers: workers.clone(),
        stopping: stopping.clone(),
    };
    let mut tasks = JoinSet::new();
    let mut ready = ready;
    let mut announced = false;
    tokio::pin!(shutdown);

    let result = loop {
        tokio::select! {
            _ = &mut shutdown => break Ok(()),
            Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                if let Err(e) = done {
                    tracing::error!("a message task failed: {e}");
                }
            }
            event = events.recv() => match event {
                None => break Err(RuntimeError::Stomp { address: address.clone(), source: StompError::Closed }),
                Some(Event::Connected { generation, server, .. }) => {
                    tracing::info!(generation, server = server.as_deref().unwrap_or("?"), "STOMP connected to {address}; subscribed to {}", queues.join(", "));
                    if !announced {
                        announced = true;
                        tracing::info!("host has started successfully and is now running...");
                    }
                    if let Some(tx) = ready.take() {
                        let _ = tx.send(queues.clone());
                    }
                }
                Some(Event::Message { frame, tag }) => {
                    on_message(&shared, &mut tasks, frame, tag);
                }
                Some(Event::Disconnected { error, .. }) => {
                    tracing::warn!("lost the STOMP connection to {address}: {error}; reconnecting");
                }
                Some(Event::ErrorFrame(frame)) => {
                    tracing::error!("the broker sent an ERROR: {}", frame.get("message").unwrap_or("(no message)"));
                }
                Some(Event::Fatal(source)) => break Err(RuntimeError::Stomp { address: address.clone(), source }),
            }
        }
    };

    // Stop taking messages, let running ones finish (their replies and ACKs still flow), then
    // disconnect. Messages not started stay unacknowledged: the broker redelivers them to the
    // next consumer. (UNSUBSCRIBE is not used: a broker returns a subscription's unacknowledged
    // messages to the queue when it ends, so running ones could no longer be acknowledged.)
    stopping.store(true, Ordering::SeqCst);
    if !tasks.is_empty() {
        tracing::info!(
            "waiting up to {:?} for {} message(s) to finish",
            config.shutdown_timeout,
            tasks.len()
        );
        let deadline = tokio::time::sleep(config.shutdown_timeout);
        tokio::pin!(deadline);
        while !tasks.is_empty() {
            tokio::select! {
                _ = &mut deadline => {
                    tracing::warn!(
                        "{} message(s) did not finish in time; they stay unacknowledged for redelivery",
                        tasks.len()
                    );
                    tasks.abort_all();
                    break;
                }
                _ = tasks.join_next() => {}
                // Keep reading the connection's events so that receipts keep arriving.
                event = events.recv() => match event {
                    Some(Event::Message { frame, tag }) => {
                        // A redelivery of a running message: acknowledge this delivery when done.
                        let running = frame.get("message-id").is_some_and(|id| {
                            lock(&tracker)
                                .inflight
                                .get_mut(id)
                                .map(|slot| *slot = tag)
                                .is_some()
                        });
                        if !running {
                            tracing::debug!(
                                message_id = frame.get("message-id"),
                                "not started: shutting down; left for redelivery"
                            );
                        }
                    }
                    Some(Event::Fatal(_)) | None => {
                        tasks.abort_all();
                        break;
                    }
                    Some(_) => {}
                },
            }
        }
    }
    if let Err(e) = session.disconnect().await {
        tracing::debug!("disconnect: {e}");
    }
    result
}

/// The tracker, even if a task panicked while holding it: its maps stay consistent (every
/// update is a single insert or remove), and giving up would strand messages unacknowledged.
fn lock(tracker: &Mutex<Tracker>) -> std::sync::MutexGuard<'_, Tracker> {
    tracker.lock().unwrap_or_else(|p| p.into_inner())
}

/// What every message task shares.
#[derive(Clone)]
struct Shared {
    dispatcher: Arc<Dispatcher>,
    session: Session,
    tracker: Arc<Mutex<Tracker>>,
    workers: Arc<Semaphore>,
    stopping: Arc<AtomicBool>,
}

fn on_message(shared: &Shared, tasks: &mut JoinSet<()>, frame: Frame, tag: DeliveryTag) {
    let Shared {
        dispatcher,
        session,
        tracker,
        workers,
        stopping,
    } = shared.clone();
    let Some(message_id) = frame.get("message-id").map(str::to_string) else {
        tracing::error!(
            "rejected a MESSAGE without a message-id header (destination {:?}); acknowledged",
            frame.get("destination")
        );
        let session = session.clone();
        tasks.spawn(async move {
            let _ = session.ack(&tag).await;
        });
        return;
    };
    let resend = {
        let mut t = lock(&tracker);
        if let Some(slot) = t.inflight.get_mut(&message_id) {
            tracing::debug!(message_id, "redelivered while still running; not run again");
            *slot = tag;
            return;
        }
        let resend = t
            .done
            .get_mut(&message_id)
            .map(|done| done.unconfirmed_reply.take());
        // In flight until confirmed and acknowledged, whether it runs or its reply is re-sent:
        // a further redelivery meanwhile only updates the delivery to acknowledge.
        t.inflight.insert(message_id.clone(), tag.clone());
        resend
    };
    let session = session.clone();
    if let Some(unconfirmed) = resend {
        tracing::info!(
            message_id,
            "redelivered after it was handled; acknowledging again"
        );
        let tracker = tracker.clone();
        tasks.spawn(async move {
            confirm_and_ack(&session, &tracker, message_id, unconfirmed, tag).await;
        });
        return;
    }
    tasks.spawn(async move {
        let Ok(_permit) = workers.acquire_owned().await else {
            return;
        };
        if stopping.load(Ordering::SeqCst) {
            // Shutting down: not started, left unacknowledged for redelivery.
            lock(&tracker).inflight.remove(&message_id);
            return;
        }
        let destination = frame.get("destination").unwrap_or_default().to_string();
        let reply_to = frame.get("reply-to").map(str::to_string);
        let correlation_id = frame.get("correlation-id").map(str::to_string);
        let status: Arc<dyn StatusSink> = match &reply_to {
            Some(reply_to) => Arc::new(StompStatus {
                session: session.clone(),
                reply_to: reply_to.clone(),
                correlation_id: correlation_id.clone(),
            }),
            None => Arc::new(DiscardStatus),
        };
        let outcome = dispatcher
            .dispatch(
                &message_id,
                &destination,
                frame.get("Co3MessagePayload"),
                &frame.body,
                status,
            )
            .await;
        let reply = match (outcome, &reply_to) {
            (Outcome::Reply(reply), Some(reply_to)) => {
                Some(reply_frame(reply_to, correlation_id.as_deref(), &reply))
            }
            (Outcome::Reply(_), None) => {
                tracing::error!(
                    message_id,
                    "the message has no reply-to header; its result cannot be returned"
                );
                None
            }
            (Outcome::AckOnly, _) => None,
        };
        // The message stays "in flight" until its reply is confirmed, so that a redelivery
        // meanwhile only updates the delivery to acknowledge.
        confirm_and_ack(&session, &tracker, message_id, reply, tag).await;
    });
}

/// How often an unconfirmed reply is sent again on the same connection, and the first pause.
const REPLY_ATTEMPTS: u32 = 4;
const REPLY_RETRY_DELAY: Duration = Duration::from_secs(1);

/// Sends a final reply and waits for the broker's RECEIPT, retrying while the connection that
/// delivered the message stays up (a broker holding sends back for flow control answers late).
async fn send_confirmed(
    session: &Session,
    message_id: &str,
    frame: &Frame,
    tag: &DeliveryTag,
) -> bool {
    let mut delay = REPLY_RETRY_DELAY;
    for attempt in 1..=REPLY_ATTEMPTS {
        match session.send_with_receipt(frame.clone()).await {
            Ok(()) => return true,
            Err(e) if attempt < REPLY_ATTEMPTS && session.generation() == tag.generation => {
                tracing::warn!(
                    message_id,
                    "reply not confirmed by the broker ({e}); sending it again in {delay:?}"
                );
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
            Err(e) => {
                tracing::warn!(
                    message_id,
                    "reply not confirmed by the broker ({e}); it is sent again when the message is redelivered"
                );
                return false;
            }
        }
    }
    false
}

/// Sends the reply with a receipt, then ACKs the latest delivery of the message; remembers the
/// message as handled either way.
async fn confirm_and_ack(
    session: &Session,
    tracker: &Mutex<Tracker>,
    message_id: String,
    reply: Option<Frame>,
    tag: DeliveryTag,
) {
    let confirmed = match &reply {
        Some(frame) => send_confirmed(session, &message_id, frame, &tag).await,
        None => true,
    };
    let tag = {
        let mut t = lock(tracker);
        let latest = t.inflight.remove(&message_id).unwrap_or(tag);
        t.remember_done(message_id.clone(), if confirmed { None } else { reply });
        latest
    };
    if !confirmed {
        // Not confirmed on a connection that stayed up: give the message back to the broker, so
        // that it is redelivered (and its stored reply sent again) instead of holding a prefetch
        // slot for ever.
        if session.generation() == tag.generation {
            let _ = session.nack(&tag).await;
        }
        return;
    }
    if let Err(e) = session.ack(&tag).await {
        tracing::info!(
            message_id,
            "ACK not sent ({e}); the reply is confirmed, so a redelivery is only acknowledged"
        );
    }
}
