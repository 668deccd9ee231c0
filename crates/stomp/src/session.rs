//! A reconnecting STOMP session: a supervisor task keeps one [`Connection`] alive, subscribes
//! every [`Subscription`] again (waiting for receipts) on each new connection before it reports
//! [`Event::Connected`], and reconnects forever with exponential backoff and full jitter.
//!
//! Every connection gets a new generation number. A MESSAGE carries a [`DeliveryTag`] with the
//! generation it arrived on; acknowledging it on a later connection is refused with
//! [`StompError::StaleDelivery`] (the broker redelivers it anyway). Events go out in order on a
//! bounded channel; when the consumer falls behind, the session stops reading the socket.
//!
//! A MESSAGE whose frame never ends (the connection stalls or closes inside it) cannot be
//! skipped: the connection is dropped. The session remembers its message-id; when the same
//! message stalls a connection again ([`STALLS_BEFORE_ANSWER`] times in all), it reports it as
//! [`Event::Undecodable`] while that connection is still up, waits (at most [`STALL_GRACE`])
//! until its acknowledgement is queued, and only then closes the connection, so that the
//! broker does not redeliver it for ever.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use futures::future::try_join_all;
use rand::Rng;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::{CancellationToken, DropGuard};
use tracing::{debug, info, warn};

use crate::codec::{Item, Rejected};
use crate::commit::{self, Commit, Queued};
use crate::connection::{ClientConfig, Connection, Link, error_message};
use crate::error::StompError;
use crate::frame::{Command, Frame};

/// Capacity of the event channel.
pub const EVENT_QUEUE: usize = 1024;

/// A message whose frame stalled this many connections is answered as undecodable.
pub const STALLS_BEFORE_ANSWER: u32 = 2;

/// How long a stalled connection is kept for the answer to an undecodable message to be queued.
pub const STALL_GRACE: Duration = Duration::from_secs(5);

/// Most message-ids remembered as having stalled a connection.
const MAX_STALLS_KEPT: usize = 1024;

/// Reconnect delays: attempt `n` waits a uniformly random time in `[0, min(max, initial * factor^n)]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Backoff {
    /// Ceiling of the first delay.
    pub initial: Duration,
    /// Largest ceiling, so a broker that comes back is reached within this long, however long
    /// it was away. A connection that stayed up this long resets the attempt count.
    pub max: Duration,
    /// Growth per failed attempt.
    pub factor: f64,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(2),
            factor: 2.0,
        }
    }
}

impl Backoff {
    /// The upper bound of the delay before attempt `attempt` (0-based).
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let exp = self.factor.max(1.0).powi(attempt.min(64) as i32);
        let secs = (self.initial.as_secs_f64() * exp).min(self.max.as_secs_f64());
        Duration::try_from_secs_f64(secs).unwrap_or(self.max)
    }

    /// A random delay in `[0, ceiling(attempt)]` (full jitter).
    pub fn delay(&self, attempt: u32) -> Duration {
        self.ceiling(attempt).mul_f64(rand::rng().random::<f64>())
    }
}

/// How the client acknowledges messages of a subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckMode {
    /// `ack:auto`
    Auto,
    /// `ack:client` (cumulative)
    Client,
    /// `ack:client-individual` (what resilient-circuits uses)
    ClientIndividual,
}

impl AckMode {
    /// The header value.
    pub fn as_str(self) -> &'static str {
        match self {
            AckMode::Auto => "auto",
            AckMode::Client => "client",
            AckMode::ClientIndividual => "client-individual",
        }
    }
}

/// One SUBSCRIBE, repeated on every connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// `destination` header.
    pub destination: String,
    /// Subscription `id` (resilient uses the destination).
    pub id: String,
    /// `ack` mode.
    pub ack: AckMode,
    /// Extra headers, e.g. `activemq.prefetchSize`.
    pub headers: Vec<(String, String)>,
}

impl Subscription {
    /// A subscription whose id is its destination.
    pub fn new(destination: impl Into<String>, ack: AckMode) -> Self {
        let destination = destination.into();
        Subscription {
            id: destination.clone(),
            destination,
            ack,
            headers: Vec::new(),
        }
    }

    /// Adds a header (builder style).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    fn subscribe_frame(&self) -> Frame {
        let mut frame = Frame::new(Command::Subscribe)
            .header("destination", self.destination.as_str())
            .header("id", self.id.as_str())
            .header("ack", self.ack.as_str());
        frame.headers.extend(self.headers.iter().cloned());
        frame
    }
}

fn unsubscribe_frame(id: &str) -> Frame {
    Frame::new(Command::Unsubscribe).header("id", id)
}

/// Identifies a delivered message for ACK/NACK.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DeliveryTag {
    /// The connection it arrived on.
    pub generation: u64,
    /// Its `ack` header (else its `message-id`).
    pub ack: String,
}

impl DeliveryTag {
    /// The tag of a delivery on connection `generation`: its `ack` header, else its
    /// `message-id`; `None` when it has neither.
    fn of(generation: u64, ack: Option<&str>, message_id: Option<&str>) -> Option<Self> {
        ack.or(message_id).map(|ack| DeliveryTag {
            generation,
            ack: ack.to_owned(),
        })
    }
}

/// What the session reports, in order.
#[derive(Debug)]
pub enum Event {
    /// Connected, and every subscription confirmed by a receipt.
    Connected {
        /// This connection's generation (strictly increasing, not necessarily contiguous).
        generation: u64,
        /// The CONNECTED `server` header.
        server: Option<String>,
        /// Negotiated heart-beats in ms (we send every, we expect every).
        heart_beat: (u32, u32),
    },
    /// A MESSAGE frame.
    Message {
        /// The frame.
        frame: Frame,
        /// For [`Session::ack`] / [`Session::nack`].
        tag: DeliveryTag,
    },
    /// A frame that cannot be read, skipped to its end so that the frames behind it go on.
    /// When it carries an `ack` or `message-id` header (a MESSAGE), `tag` acknowledges it.
    Undecodable {
        /// What could be read of it, and why it cannot be used.
        rejected: Rejected,
        /// For [`Session::ack`], when it names a delivery.
        tag: Option<DeliveryTag>,
    },
    /// A connection attempt failed or a connection dropped; the session backs off and reconnects.
    Disconnected {
        /// The generation of the attempt or connection.
        generation: u64,
        /// Why.
        error: StompError,
    },
    /// A problem retrying cannot fix; the session has stopped.
    Fatal(StompError),
    /// An ERROR frame received after connecting.
    ErrorFrame(Frame),
}

struct State {
    subscriptions: Vec<Subscription>,
    link: Option<Link>,
    /// The group committer of the current connection: its generation and queue.
    committer: Option<(u64, mpsc::UnboundedSender<Queued>)>,
}

struct Inner {
    config: ClientConfig,
    state: Mutex<State>,
    generation: AtomicU64,
    closing: AtomicBool,
    stop: CancellationToken,
    task: Mutex<Option<JoinHandle<()>>>,
    /// Message-ids whose frame never ended, and how many connections each has stalled.
    stalls: Mutex<HashMap<String, u32>>,
}

impl Inner {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn closing(&self) -> bool {
        self.closing.load(Ordering::SeqCst)
    }
}

/// A reconnecting STOMP session; clones share it. Dropping every clone stops it.
#[derive(Clone)]
pub struct Session {
    inner: Arc<Inner>,
    _stop_on_drop: Arc<DropGuard>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("config", &self.inner.config)
            .field("generation", &self.generation())
            .finish_non_exhaustive()
    }
}

impl Session {
    /// Starts the supervisor task (needs a tokio runtime). Events arrive on the receiver in order.
    pub fn start(
        config: ClientConfig,
        subscriptions: Vec<Subscription>,
    ) -> (Session, mpsc::Receiver<Event>) {
        let (events, rx) = mpsc::channel(EVENT_QUEUE);
        let stop = CancellationToken::new();
        let inner = Arc::new(Inner {
            config,
            state: Mutex::new(State {
                subscriptions,
                link: None,
                committer: None,
            }),
            generation: AtomicU64::new(0),
            closing: AtomicBool::new(false),
            stop: stop.clone(),
            task: Mutex::new(None),
            stalls: Mutex::new(HashMap::new()),
        });
        let task = tokio::spawn(
            Supervisor {
                inner: inner.clone(),
                events,
            }
            .run(),
        );
        *inner.task.lock().unwrap_or_else(PoisonError::into_inner) = Some(task);
        let session = Session {
            inner,
            _stop_on_drop: Arc::new(stop.drop_guard()),
        };
        (session, rx)
    }

    fn link(&self) -> Result<Link, StompError> {
        if self.inner.closing() {
            return Err(StompError::Closed);
        }
        self.inner
            .state()
            .link
            .clone()
            .ok_or(StompError::NotConnected)
    }

    /// Queues a frame for the writer (no receipt).
    pub async fn send(&self, frame: Frame) -> Result<(), StompError> {
        self.link()?.send(frame).await
    }

    /// Sends with a `receipt` header and waits for the RECEIPT (at most `connect_timeout`).
    pub async fn send_with_receipt(&self, frame: Frame) -> Result<(), StompError> {
        self.link()?
            .call(frame, self.inner.config.connect_timeout)
            .await
    }

    fn link_for(&self, tag: &DeliveryTag) -> Result<Link, StompError> {
        match self.link() {
            Ok(link) if link.generation() == tag.generation => Ok(link),
            Ok(_) | Err(StompError::NotConnected) => Err(StompError::StaleDelivery),
            Err(e) => Err(e),
        }
    }

    /// `ACK id:<ack>`. [`StompError::StaleDelivery`] (nothing sent) if the message came on a
    /// connection that is gone.
    pub async fn ack(&self, delivery: &DeliveryTag) -> Result<(), StompError> {
        let link = self.link_for(delivery)?;
        link.send(Frame::new(Command::Ack).header("id", delivery.ack.as_str()))
            .await
    }

    /// Sends `frames` (replies) and the ACK of `delivery` in one STOMP transaction and waits
    /// for the broker to confirm the COMMIT: the broker applies the replies and the ACK together
    /// or, if the connection is lost first, neither (the message is then redelivered). The wait
    /// lasts as long as the delivery's connection does: a late RECEIPT still counts. Commits
    /// asked for at about the same time share one transaction (see [`crate::commit`]).
    /// [`StompError::StaleDelivery`] (nothing sent) if that connection is gone.
    pub async fn commit_with_ack(
        &self,
        frames: Vec<Frame>,
        delivery: &DeliveryTag,
    ) -> Result<(), StompError> {
        self.commit_with_ack_after(frames, delivery, std::future::ready(()))
            .await
    }

    /// [`Session::commit_with_ack`], but nothing of the transaction is sent before `ready`
    /// completes (e.g. the reply is journaled). The commit joins the queue of its connection at
    /// once, so that it shares a transaction with the commits asked for meanwhile.
    pub async fn commit_with_ack_after(
        &self,
        frames: Vec<Frame>,
        delivery: &DeliveryTag,
        ready: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), StompError> {
        let link = self.link_for(delivery)?;
        let queue = {
            let mut state = self.inner.state();
            match &state.committer {
                Some((generation, queue))
                    if *generation == link.generation() && !queue.is_closed() =>
                {
                    queue.clone()
                }
                _ => {
                    let queue = commit::start(link.clone());
                    state.committer = Some((link.generation(), queue.clone()));
                    queue
                }
            }
        };
        let (done, result) = oneshot::channel();
        let commit = Commit {
            frames,
            ack: delivery.ack.clone(),
            done,
        };
        queue
            .send((commit, Box::pin(ready)))
            .map_err(|_| StompError::NotConnected)?;
        result.await.unwrap_or(Err(StompError::NotConnected))
    }

    /// `NACK id:<ack>`; same rules as [`Session::ack`].
    pub async fn nack(&self, delivery: &DeliveryTag) -> Result<(), StompError> {
        let link = self.link_for(delivery)?;
        link.send(Frame::new(Command::Nack).header("id", delivery.ack.as_str()))
            .await
    }

    /// Adds (or replaces, by id) a subscription; subscribes now (with receipt) if connected.
    pub async fn subscribe(&self, subscription: Subscription) -> Result<(), StompError> {
        let link = {
            let mut state = self.inner.state();
            state.subscriptions.retain(|s| s.id != subscription.id);
            state.subscriptions.push(subscription.clone());
            state.link.clone()
        };
        match link {
            Some(link) => {
                link.call(
                    subscription.subscribe_frame(),
                    self.inner.config.connect_timeout,
                )
                .await
            }
            None => Ok(()),
        }
    }

    /// Removes the subscription `id`; unsubscribes now (with receipt) if connected.
    pub async fn unsubscribe(&self, id: &str) -> Result<(), StompError> {
        let link = {
            let mut state = self.inner.state();
            state.subscriptions.retain(|s| s.id != id);
            state.link.clone()
        };
        match link {
            Some(link) => {
                link.call(unsubscribe_frame(id), self.inner.config.connect_timeout)
                    .await
            }
            None => Ok(()),
        }
    }

    /// Stops taking messages: UNSUBSCRIBE every subscription (with receipts) and forget them, so
    /// that reconnects do not subscribe again.
    pub async fn unsubscribe_all(&self) -> Result<(), StompError> {
        let (subscriptions, link) = {
            let mut state = self.inner.state();
            (std::mem::take(&mut state.subscriptions), state.link.clone())
        };
        let Some(link) = link else { return Ok(()) };
        let timeout = self.inner.config.connect_timeout;
        try_join_all(
            subscriptions
                .iter()
                .map(|s| link.call(unsubscribe_frame(&s.id), timeout)),
        )
        .await
        .map(drop)
    }

    /// Sends DISCONNECT with a receipt, waits for it (at most `connect_timeout`), closes the
    /// connection and stops reconnecting. The event channel then ends.
    pub async fn disconnect(self) -> Result<(), StompError> {
        let inner = &self.inner;
        if inner.closing.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        let link = inner.state().link.take();
        let timeout = inner.config.connect_timeout;
        let result = match link {
            Some(link) => link.call(Frame::new(Command::Disconnect), timeout).await,
            None => Ok(()),
        };
        inner.stop.cancel();
        let task = inner
            .task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(task) = task {
            let _ = tokio::time::timeout(timeout, task).await;
        }
        result
    }

    /// The generation of the current (or last) established connection; 0 before the first.
    pub fn generation(&self) -> u64 {
        self.inner.generation.load(Ordering::SeqCst)
    }
}

/// How one connection ended.
enum Outcome {
    /// Stop requested, or nobody listens to events any more.
    Stopped,
    /// Failed or dropped; `up` is how long it was connected (with subscriptions), if at all.
    Lost {
        error: StompError,
        up: Option<Duration>,
    },
}

struct Supervisor {
    inner: Arc<Inner>,
    events: mpsc::Sender<Event>,
}

impl Supervisor {
    async fn run(self) {
        let backoff = self.inner.config.backoff.clone();
        let mut attempt = 0u32;
        let mut generation = self.inner.generation.load(Ordering::SeqCst);
        while !self.inner.closing() {
            generation += 1;
            let outcome = self.connect_and_serve(generation).await;
            self.detach(generation);
            let Outcome::Lost { error, up } = outcome else {
                break;
            };
            if self.inner.closing() {
                break;
            }
            if error.is_fatal() {
                warn!(%error, "STOMP session stopped");
                self.emit(Event::Fatal(error)).await;
                break;
            }
            warn!(generation, %error, "STOMP connection lost; reconnecting");
            if !self.emit(Event::Disconnected { generation, error }).await {
                break;
            }
            if up.is_some_and(|up| up >= backoff.max) {
                attempt = 0;
            }
            let delay = backoff.delay(attempt);
            attempt = attempt.saturating_add(1);
            debug!(?delay, attempt, "STOMP reconnect backoff");
            tokio::select! {
                () = self.inner.stop.cancelled() => break,
                () = tokio::time::sleep(delay) => {}
            }
        }
        self.inner.closing.store(true, Ordering::SeqCst);
        self.inner.state().link = None;
    }

    /// Sends an event unless stopped; false when the session should end.
    async fn emit(&self, event: Event) -> bool {
        tokio::select! {
            sent = self.events.send(event) => sent.is_ok(),
            () = self.inner.stop.cancelled() => false,
        }
    }

    fn detach(&self, generation: u64) {
        let mut state = self.inner.state();
        if state
            .link
            .as_ref()
            .is_some_and(|l| l.generation() == generation)
        {
            state.link = None;
            state.committer = None;
        }
    }

    async fn connect_and_serve(&self, generation: u64) -> Outcome {
        let lost = |error| Outcome::Lost { error, up: None };
        let config = &self.inner.config;
        let stop = &self.inner.stop;
        let mut conn = tokio::select! {
            () = stop.cancelled() => return Outcome::Stopped,
            conn = Connection::open(config, generation) => match conn {
                Ok(conn) => conn,
                Err(e) => return lost(e),
            },
        };
        info!(
            generation,
            addr = %format_args!("{}:{}", config.host, config.port),
            server = conn.server.as_deref().unwrap_or("?"),
            heart_beat = ?conn.heart_beat,
            "STOMP connected"
        );

        // Subscribe everything again, holding back messages until Connected is out.
        let link = conn.link();
        let subscribed = self.inner.state().subscriptions.clone();
        let mut held = Vec::new();
        {
            let receipts = try_join_all(
                subscribed
                    .iter()
                    .map(|s| link.call(s.subscribe_frame(), config.connect_timeout)),
            );
            tokio::pin!(receipts);
            loop {
                tokio::select! {
                    () = stop.cancelled() => break,
                    done = &mut receipts => match done {
                        Ok(_) => break,
                        Err(e) => return lost(e),
                    },
                    item = conn.next_frame() => match item {
                        Err(e) => return lost(e),
                        Ok(Item::Frame(frame)) if frame.command == Command::Message => {
                            held.push(Item::Frame(frame));
                        }
                        Ok(item @ Item::Rejected(_)) => held.push(item),
                        Ok(item) => {
                            if let Some(outcome) = self.handle(item, generation, None).await {
                                return outcome;
                            }
                        }
                    },
                }
            }
        }
        if stop.is_cancelled() {
            conn.close().await;
            return Outcome::Stopped;
        }

        // Publish the link; reconcile subscriptions changed while we were subscribing.
        let (added, removed) = {
            let mut state = self.inner.state();
            if self.inner.closing() {
                drop(state);
                conn.close().await;
                return Outcome::Stopped;
            }
            state.link = Some(link.clone());
            self.inner.generation.store(generation, Ordering::SeqCst);
            let added: Vec<Frame> = (state.subscriptions.iter())
                .filter(|s| !subscribed.iter().any(|o| o.id == s.id))
                .map(Subscription::subscribe_frame)
                .collect();
            let removed: Vec<Frame> = (subscribed.iter())
                .filter(|o| !state.subscriptions.iter().any(|s| s.id == o.id))
                .map(|o| unsubscribe_frame(&o.id))
                .collect();
            (added, removed)
        };
        for frame in added.into_iter().chain(removed) {
            if let Err(e) = link.send(frame).await {
                return lost(e);
            }
        }
        let since = Instant::now();
        let connected = Event::Connected {
            generation,
            server: conn.server.clone(),
            heart_beat: conn.heart_beat,
        };
        if !self.emit(connected).await {
            conn.close().await;
            return Outcome::Stopped;
        }
        for frame in held {
            if let Some(outcome) = self.handle(frame, generation, Some(since)).await {
                conn.close().await;
                return outcome;
            }
        }

        loop {
            let frame = tokio::select! {
                () = stop.cancelled() => {
                    conn.close().await;
                    return Outcome::Stopped;
                }
                frame = conn.next_frame() => frame,
            };
            let outcome = match frame {
                Ok(frame) => self.handle(frame, generation, Some(since)).await,
                // The socket is broken: drop it (and its writer) without a goodbye.
                Err(error) => {
                    let up = Some(since.elapsed());
                    let unfinished = conn.unfinished_frame();
                    if self.ended_inside_a_message(unfinished, &link, &error).await {
                        conn.close().await;
                    }
                    return Outcome::Lost { error, up };
                }
            };
            if let Some(outcome) = outcome {
                conn.close().await;
                return outcome;
            }
        }
    }

    /// After `link`'s connection failed with `error`: when the reader was inside a MESSAGE
    /// (`unfinished`), counts the stall
    /// against its message-id; when that message has stalled connections before and this one
    /// is still up (a heart-beat timeout), reports it as undecodable and waits until its
    /// acknowledgement is queued. True when the connection should be closed (flushing what is
    /// queued) rather than dropped.
    async fn ended_inside_a_message(
        &self,
        unfinished: Option<Rejected>,
        link: &Link,
        error: &StompError,
    ) -> bool {
        let generation = link.generation();
        let Some(mut rejected) = unfinished.filter(|r| r.command == Some(Command::Message)) else {
            return false;
        };
        let Some(message_id) = rejected.get("message-id").map(str::to_owned) else {
            return false;
        };
        let stalls = {
            let mut stalls = self
                .inner
                .stalls
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if stalls.len() >= MAX_STALLS_KEPT && !stalls.contains_key(&message_id) {
                stalls.clear();
            }
            let n = stalls.entry(message_id.clone()).or_default();
            *n += 1;
            *n
        };
        let live = matches!(error, StompError::HeartBeatTimeout { .. });
        let tag = DeliveryTag::of(generation, rejected.get("ack"), Some(&message_id));
        let (true, Some(tag)) = (stalls >= STALLS_BEFORE_ANSWER && live, tag) else {
            warn!(
                generation,
                message_id = %message_id.escape_debug(),
                stalls,
                "the connection ended inside a message ({error}); the broker redelivers it"
            );
            return false;
        };
        warn!(
            generation,
            message_id = %message_id.escape_debug(),
            stalls,
            "a message whose frame never ends stalled the connection again; answering it as unreadable"
        );
        rejected.problem =
            format!("its frame never ended: the connection stalled inside it {stalls} times");
        let queued = link.watch_ack(&tag.ack);
        let event = Event::Undecodable {
            rejected,
            tag: Some(tag),
        };
        if !self.emit(event).await {
            return false;
        }
        if tokio::time::timeout(STALL_GRACE, queued).await.is_err() {
            warn!(
                generation,
                "the answer to the stalled message was not queued in time"
            );
        }
        self.inner
            .stalls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&message_id);
        true
    }

    /// Emits a frame from the server; `Some` ends the connection.
    async fn handle(&self, item: Item, generation: u64, since: Option<Instant>) -> Option<Outcome> {
        let frame = match item {
            Item::Frame(frame) => frame,
            Item::HeartBeat => return None,
            Item::Rejected(rejected) => {
                debug!(generation, problem = %rejected.problem, "skipped a frame that cannot be read");
                let tag =
                    DeliveryTag::of(generation, rejected.get("ack"), rejected.get("message-id"));
                let event = Event::Undecodable { rejected, tag };
                return (!self.emit(event).await).then_some(Outcome::Stopped);
            }
        };
        let event = match frame.command {
            Command::Message => {
                let tag = DeliveryTag::of(generation, frame.get("ack"), frame.get("message-id"))
                    .unwrap_or(DeliveryTag {
                        generation,
                        ack: String::new(),
                    });
                Event::Message { frame, tag }
            }
            Command::Error => {
                let message = error_message(&frame);
                warn!(generation, %message, "STOMP ERROR frame");
                if !self.emit(Event::ErrorFrame(frame)).await {
                    return Some(Outcome::Stopped);
                }
                let error = StompError::ServerError { message };
                return error.is_fatal().then(|| Outcome::Lost {
                    error,
                    up: since.map(|s| s.elapsed()),
                });
            }
            other => {
                debug!(command = %other, "ignoring unexpected frame from the server");
                return None;
            }
        };
        (!self.emit(event).await).then_some(Outcome::Stopped)
    }
}
