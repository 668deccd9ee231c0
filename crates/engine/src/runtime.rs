//! The runtime: connects the platform's REST API and STOMP broker to the dispatcher.
//!
//! Start-up follows resilient-circuits (spec §2.5): log in, resolve the org, learn rule names,
//! resolve each function's message destination, then subscribe to `actions.<org>.<queue>` with
//! `ack:client-individual` and a prefetch of `stomp_prefetch_limit` (default `num_workers`).
//!
//! For each message: the journal records that it starts, status replies go out as the handler
//! produces them, the journal records the final reply, and the final reply and the ACK go to the
//! broker in one STOMP transaction, so the broker applies both or neither. The wait for its
//! RECEIPT lasts as long as the connection: a slow broker is never sent a reply twice. A message
//! the journal knows is never run again: if its reply was confirmed it is only acknowledged,
//! else its stored reply is sent (in a transaction with the ACK) on the new connection.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use soar_rest::{RestClient, RestError};
use soar_sdk::Reply;
use soar_sdk::context::{DiscardStatus, StatusSink};
use soar_sdk::platform::BoxFuture;
use soar_stomp::{
    AckMode, Command, DeliveryTag, Event, Frame, Rejected, Session, StompError, Subscription,
};
use tokio::sync::{Semaphore, oneshot};
use tokio::task::JoinSet;

use crate::dispatch::{Dispatcher, Outcome};
use crate::journal::{Journal, Stage, StoredReply};
use crate::monitor::Monitor;
use crate::rules::RuleDirectory;

/// Why the runtime stopped.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(transparent)]
    Rest(#[from] RestError),
    #[error(
        "the broker's heart-beats kept timing out for {span:?}, longer than \
         heartbeat_timeout_threshold ({threshold:?}); stopping"
    )]
    HeartBeats { span: Duration, threshold: Duration },
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
            RuntimeError::HeartBeats { .. } => 34,
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
    /// What was handled, across restarts.
    pub journal: Journal,
    /// `stomp_max_retries`: refused commits of one final reply before giving up on it; 0 = never.
    pub stomp_max_retries: u32,
    /// `heartbeat_timeout_threshold`: stop (exit code 34) when heart-beat timeouts keep
    /// happening for longer than this.
    pub heartbeat_timeout_threshold: Option<Duration>,
    /// Where the runtime shows how it is doing (metrics, the watchdog, `host status`).
    pub monitor: Monitor,
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

/// Messages whose handling (run, or reply re-sent) is under way here: message-id → the latest
/// delivery to acknowledge.
type Inflight = HashMap<String, DeliveryTag>;

/// Sends status replies of one message on its `reply-to` queue.
struct StompStatus {
    session: Session,
    reply_to: String,
    correlation_id: Option<String>,
}

impl StatusSink for StompStatus {
    fn send_status(&self, reply: Reply) -> BoxFuture<'_, ()> {
        let frame = reply_frame(
            &self.reply_to,
            self.correlation_id.as_deref(),
            reply.to_json(),
        );
        Box::pin(async move {
            if let Err(e) = self.session.send(frame).await {
                tracing::warn!("status message not sent: {e}");
            }
        })
    }
}

/// A reply (status or final) to `reply_to`.
fn reply_frame(reply_to: &str, correlation_id: Option<&str>, body: String) -> Frame {
    // Persistent, so that a broker restart loses no reply it accepted (resilient-circuits sends
    // them non-persistent). Status replies too: ActiveMQ keeps persistent and non-persistent
    // messages of a queue in separate lists, so a persistent final reply could overtake the
    // non-persistent status messages sent before it.
    let mut frame = Frame::new(Command::Send)
        .header("destination", reply_to)
        .header("persistent", "true");
    if let Some(c) = correlation_id {
        frame = frame.header("correlation-id", c);
    }
    frame.with_body(body)
}

fn stored_frame(reply: &StoredReply) -> Frame {
    reply_frame(
        &reply.destination,
        reply.correlation_id.as_deref(),
        reply.body.clone(),
    )
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
    let inflight = Arc::new(Mutex::new(Inflight::default()));
    let workers = Arc::new(Semaphore::new(config.num_workers.max(1)));
    let stopping = Arc::new(AtomicBool::new(false));
    let shared = Shared {
        dispatcher: dispatcher.clone(),
        session: session.clone(),
        inflight: inflight.clone(),
        journal: config.journal.clone(),
        workers: workers.clone(),
        stopping: stopping.clone(),
        max_retries: config.stomp_max_retries,
        monitor: config.monitor.clone(),
    };
    let mut tasks = JoinSet::new();
    let mut ready = ready;
    let mut announced = false;
    let mut heart_beats = HeartBeatWatch::default();
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
                    heart_beats.connected(Instant::now());
                    config.monitor.connected(&queues);
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
                Some(Event::Undecodable { rejected, tag }) => {
                    on_undecodable(&shared, &mut tasks, rejected, tag);
                }
                Some(Event::Disconnected { error, .. }) => {
                    config.monitor.disconnected(true);
                    tracing::warn!("lost the STOMP connection to {address}: {error}; reconnecting");
                    if let Some(e) = heart_beats.lost(&error, config.heartbeat_timeout_threshold, Instant::now()) {
                        break Err(e);
                    }
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
                            lock(&inflight)

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
    config.monitor.disconnected(false);
    config.journal.flush().await;
    result
}

/// `heartbeat_timeout_threshold` as resilient-circuits means it: the host stops (exit code 34)
/// when heart-beat timeouts keep happening for longer than the threshold, with no connection in
/// between that stayed up that long.
#[derive(Debug, Default)]
struct HeartBeatWatch {
    first_timeout: Option<Instant>,
    connected_at: Option<Instant>,
}

impl HeartBeatWatch {
    fn connected(&mut self, now: Instant) {
        self.connected_at = Some(now);
    }

    fn lost(
        &mut self,
        error: &StompError,
        threshold: Option<Duration>,
        now: Instant,
    ) -> Option<RuntimeError> {
        let threshold = threshold?;
        if self
            .connected_at
            .take()
            .is_some_and(|at| now.duration_since(at) >= threshold)
        {
            self.first_timeout = None;
        }
        if !matches!(error, StompError::HeartBeatTimeout { .. }) {
            return None;
        }
        let first = *self.first_timeout.get_or_insert(now);
        (now.duration_since(first) > threshold).then_some(RuntimeError::HeartBeats {
            span: now.duration_since(first),
            threshold,
        })
    }
}

/// The in-flight map, even if a task panicked while holding it: it stays consistent (every
/// update is a single insert or remove), and giving up would strand messages unacknowledged.
fn lock(inflight: &Mutex<Inflight>) -> std::sync::MutexGuard<'_, Inflight> {
    inflight.lock().unwrap_or_else(|p| p.into_inner())
}

/// What every message task shares.
#[derive(Clone)]
struct Shared {
    dispatcher: Arc<Dispatcher>,
    session: Session,
    inflight: Arc<Mutex<Inflight>>,
    journal: Journal,
    workers: Arc<Semaphore>,
    stopping: Arc<AtomicBool>,
    max_retries: u32,
    monitor: Monitor,
}

/// What to do with a delivery, from what the journal knows of its message id.
enum Plan {
    /// Never seen, or started before a crash: run the handler.
    Run { may_have_run: bool },
    /// Answered but not confirmed: send the stored reply with the ACK.
    Resend(Option<StoredReply>),
    /// Answered and confirmed: acknowledge this delivery only.
    AckOnly,
}

/// Marks a message in flight until it is confirmed and acknowledged, whether it runs or its
/// reply is re-sent; `false` when it already is (a redelivery meanwhile): then only the
/// delivery to acknowledge changes.
fn claim(shared: &Shared, message_id: &str, tag: &DeliveryTag) -> bool {
    let mut inflight = lock(&shared.inflight);
    if let Some(slot) = inflight.get_mut(message_id) {
        *slot = tag.clone();
        return false;
    }
    inflight.insert(message_id.to_string(), tag.clone());
    true
}

fn on_message(shared: &Shared, tasks: &mut JoinSet<()>, frame: Frame, tag: DeliveryTag) {
    let shared = shared.clone();
    let Some(message_id) = frame.get("message-id").map(str::to_string) else {
        tracing::error!(
            "rejected a MESSAGE without a message-id header (destination {:?}); acknowledged",
            frame.get("destination")
        );
        tasks.spawn(async move {
            let _ = shared.session.ack(&tag).await;
        });
        return;
    };
    if !claim(&shared, &message_id, &tag) {
        tracing::debug!(
            message_id,
            "redelivered while still being handled; not run again"
        );
        return;
    }
    let redelivered = frame.get("redelivered") == Some("true");
    if redelivered {
        shared.monitor.redelivered();
    }
    let plan = match shared.journal.get(&message_id) {
        None => Plan::Run {
            may_have_run: redelivered,
        },
        Some(entry) => match entry.stage {
            Stage::Started => Plan::Run { may_have_run: true },
            Stage::Answered => Plan::Resend(entry.reply),
            Stage::Done => Plan::AckOnly,
        },
    };
    tasks.spawn(async move {
        match plan {
            Plan::Run { may_have_run } => run(&shared, frame, message_id, tag, may_have_run).await,
            Plan::Resend(reply) => {
                tracing::info!(
                    message_id,
                    "redelivered after it was answered; sending its reply again, not running it"
                );
                let reply = reply.map(|r| -> FinalReply {
                    (stored_frame(&r), Box::pin(std::future::ready(())))
                });
                if reply.is_some() {
                    shared.monitor.reply_resent();
                }
                finish(&shared, message_id, reply, tag).await;
            }
            Plan::AckOnly => {
                tracing::info!(
                    message_id,
                    "redelivered after its reply was confirmed; acknowledged, not run again"
                );
                finish(&shared, message_id, None, tag).await;
            }
        }
    });
}

/// A message that cannot be read (a bad header, a bad `content-length`, over the maximum frame
/// size…): answered with an error reply that says what is wrong when it names a `reply-to`,
/// and acknowledged, so that it is neither delivered again nor holds up the messages behind it.
fn on_undecodable(
    shared: &Shared,
    tasks: &mut JoinSet<()>,
    rejected: Rejected,
    tag: Option<DeliveryTag>,
) {
    let message_id = rejected.get("message-id").unwrap_or_default().to_string();
    tracing::error!(
        message_id,
        destination = rejected.get("destination"),
        "a message that cannot be read: {}; answered with an error and acknowledged",
        rejected.problem
    );
    let Some(tag) = tag else {
        return;
    };
    if !claim(shared, &message_id, &tag) {
        return;
    }
    let reply = rejected.get("reply-to").map(|to| StoredReply {
        destination: to.to_string(),
        correlation_id: rejected.get("correlation-id").map(str::to_string),
        body: Reply::error(format!(
            "The host could not read this message ({}); it was acknowledged and not run.",
            rejected.problem
        ))
        .to_json(),
    });
    let shared = shared.clone();
    tasks.spawn(async move {
        let reply = answered(&shared, &message_id, reply);
        finish(&shared, message_id, reply, tag).await;
    });
}

/// Runs the handler of a message and sends its final reply with the ACK.
async fn run(shared: &Shared, frame: Frame, message_id: String, tag: DeliveryTag, rerun: bool) {
    // The worker is busy while the handler runs, not while the broker confirms its reply.
    let Ok(permit) = shared.workers.clone().acquire_owned().await else {
        return;
    };
    if shared.stopping.load(Ordering::SeqCst) {
        // Shutting down: not started, left unacknowledged for redelivery.
        lock(&shared.inflight).remove(&message_id);
        return;
    }
    if rerun {
        tracing::info!(
            message_id,
            "an earlier run of this message may have started (redelivered after a crash or a \
             lost connection); running it again, marked as a re-run"
        );
    }
    shared.journal.started(&message_id);
    let destination = frame.get("destination").unwrap_or_default().to_string();
    let reply_to = frame.get("reply-to").map(str::to_string);
    let correlation_id = frame.get("correlation-id").map(str::to_string);
    let status: Arc<dyn StatusSink> = match &reply_to {
        Some(reply_to) => Arc::new(StompStatus {
            session: shared.session.clone(),
            reply_to: reply_to.clone(),
            correlation_id: correlation_id.clone(),
        }),
        None => Arc::new(DiscardStatus),
    };
    let outcome = shared
        .dispatcher
        .dispatch(
            &message_id,
            rerun,
            &destination,
            frame.get("Co3MessagePayload"),
            &frame.body,
            status,
        )
        .await;
    // A big message gives a big reply (the results carry the inputs): serialized off the
    // async threads.
    let big = frame.body.len() > soar_sdk::text::OFFLOAD_ABOVE;
    let reply = match (outcome, reply_to) {
        (Outcome::Reply(reply), Some(destination)) => Some(StoredReply {
            destination,
            correlation_id,
            body: if big {
                soar_sdk::text::offload(move || reply.to_json())
                    .await
                    .unwrap_or_else(|e| Reply::error(e.to_string()).to_json())
            } else {
                reply.to_json()
            },
        }),
        (Outcome::Reply(_), None) => {
            tracing::error!(
                message_id,
                "the message has no reply-to header; its result cannot be returned"
            );
            None
        }
        (Outcome::AckOnly, _) => None,
    };
    drop(permit);
    let reply = answered(shared, &message_id, reply);
    finish(shared, message_id, reply, tag).await;
}

/// A final reply's frame, and what must be done before it is sent.
type FinalReply = (Frame, BoxFuture<'static, ()>);

/// Records the final reply (if any) in the journal; its frame, and the journal's promise that
/// the record is written, which [`finish`] waits for before its COMMIT is sent.
fn answered(shared: &Shared, message_id: &str, reply: Option<StoredReply>) -> Option<FinalReply> {
    let reply = reply?;
    let frame = stored_frame(&reply);
    Some((frame, Box::pin(shared.journal.answered(message_id, reply))))
}

/// Pause before committing a refused reply again.
const REFUSED_RETRY_DELAY: Duration = Duration::from_secs(1);

/// Sends the final reply (if any) and the ACK of the latest delivery of the message in one
/// transaction and waits for the broker to confirm it. When the connection is lost first, the
/// broker redelivers the message and the journal's reply goes out then; when the broker refuses
/// the commit (an ERROR), it is tried again, `stomp_max_retries` times at most.
async fn finish(shared: &Shared, message_id: String, reply: Option<FinalReply>, tag: DeliveryTag) {
    let (reply, mut ready) = reply.unzip();
    let mut tag = tag;
    loop {
        let result = match &reply {
            Some(frame) => {
                // Waited for on the first attempt only.
                let ready = ready
                    .take()
                    .unwrap_or_else(|| Box::pin(std::future::ready(())));
                (shared.session)
                    .commit_with_ack_after(vec![frame.clone()], &tag, ready)
                    .await
            }
            None => shared.session.ack(&tag).await,
        };
        let refused = match result {
            Ok(()) => {
                lock(&shared.inflight).remove(&message_id);
                shared.journal.done(&message_id);
                return;
            }
            Err(e) => {
                let refused = matches!(e, StompError::ServerError { .. });
                if !refused {
                    tracing::info!(
                        message_id,
                        "reply and ACK not confirmed ({e}); the broker redelivers the message \
                         and its reply goes out then"
                    );
                }
                refused.then_some(e)
            }
        };
        // A newer delivery (on a new connection) arrived meanwhile: answer that one.
        let newer = {
            let mut inflight = lock(&shared.inflight);
            match inflight.get(&message_id) {
                Some(latest) if latest.generation > tag.generation => Some(latest.clone()),
                _ if refused.is_some() => None,
                _ => {
                    inflight.remove(&message_id);
                    return;
                }
            }
        };
        if let Some(newer) = newer {
            tag = newer;
            continue;
        }
        let attempts = shared.journal.failed_attempt(&message_id);
        let error = refused.map(|e| e.to_string()).unwrap_or_default();
        if shared.max_retries != 0 && attempts >= shared.max_retries {
            tracing::error!(
                message_id,
                "the broker refused the final reply {attempts} times ({error}); giving up on it \
                 (stomp_max_retries = {}): the message is acknowledged without a reply",
                shared.max_retries
            );
            if shared.session.ack(&tag).await.is_ok() {
                shared.journal.done(&message_id);
            }
            lock(&shared.inflight).remove(&message_id);
            return;
        }
        tracing::warn!(
            message_id,
            "the broker refused the final reply ({error}); trying again ({attempts} of {})",
            shared.max_retries
        );
        tokio::time::sleep(REFUSED_RETRY_DELAY * attempts).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timeout() -> StompError {
        StompError::HeartBeatTimeout {
            after: Duration::from_secs(30),
        }
    }

    #[test]
    fn heart_beat_threshold_stops_only_on_timeouts_that_last() {
        let threshold = Some(Duration::from_secs(60));
        let t0 = Instant::now();
        let at = |secs| t0 + Duration::from_secs(secs);
        let mut watch = HeartBeatWatch::default();
        // No threshold: never stops.
        assert!(watch.lost(&timeout(), None, at(0)).is_none());
        // The first timeout starts the span; other errors do not count.
        assert!(watch.lost(&timeout(), threshold, at(0)).is_none());
        assert!(
            watch
                .lost(&StompError::NotConnected, threshold, at(70))
                .is_none()
        );
        // A short-lived connection in between does not reset it.
        watch.connected(at(70));
        let stop = watch.lost(&timeout(), threshold, at(80));
        assert_eq!(stop.expect("80 s of timeouts").exit_code(), 34);

        // A connection that stayed up as long as the threshold starts a new span.
        let mut watch = HeartBeatWatch::default();
        assert!(watch.lost(&timeout(), threshold, at(0)).is_none());
        watch.connected(at(10));
        assert!(watch.lost(&timeout(), threshold, at(80)).is_none());
        assert!(watch.lost(&timeout(), threshold, at(100)).is_none());
        assert!(watch.lost(&timeout(), threshold, at(141)).is_some());
    }
}
