//! The embedded STOMP 1.2 broker (TLS), built on the soar-stomp codec.
//!
//! It plays ActiveMQ as the SOAR platform uses it: queues `actions.<org>.<q>` consumed with
//! `ack:client-individual` and `activemq.prefetchSize`, replies SENT to `acks.<org>.<q>` and matched
//! to invocations by `correlation-id`. It is strict on purpose: every mistake a client makes
//! (frames before CONNECT, unknown or foreign ACK ids, NACKs, SENDs to the wrong place, replies
//! without correlation-id, second final replies, SUBSCRIBE without a prefetch...) is recorded as a
//! violation, and the broker keeps serving everyone else. Transactions are ActiveMQ's: the SENDs
//! and ACKs between BEGIN and COMMIT take effect together at COMMIT, or not at all; an ACK in an
//! open transaction frees its message's prefetch slot at once (ActiveMQ extends the window until
//! the transaction ends), so the next message is delivered before the COMMIT.
//!
//! Structure: one task reads each connection (decoding with `StompCodec`) and handles frames
//! under the broker's lock; one task per connection owns the socket's writes and is fed through
//! an unbounded channel, so no lock is held across an await. Messages a connection leaves unacked
//! go back to the front of their queue with `redelivered:true` and the same `message-id`.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::StreamExt as _;
use soar_stomp::{CodecError, Command, Frame, Item, StompCodec};
use tokio::io::{AsyncWrite, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_rustls::TlsAcceptor;
use tokio_util::codec::{Encoder as _, FramedRead};
use tokio_util::sync::CancellationToken;

use crate::invocation::{InvocationEvent, InvocationInner, Registry, handle_reply};
use crate::state::SavedMessage;

/// Counters of the embedded broker.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BrokerStats {
    /// MESSAGE frames written (including redeliveries and duplicates).
    pub delivered: u64,
    /// Of those, how many carried `redelivered:true`.
    pub redelivered: u64,
    /// Messages removed by an ACK.
    pub acked: u64,
    /// NACK frames received.
    pub nacked: u64,
    /// The largest number of unacked messages seen on any one subscription, counted as its
    /// prefetch counts them (those acknowledged in an open transaction do not count).
    pub max_unacked_per_subscription: u32,
    /// Reply SENDs matched to an invocation.
    pub replies: u64,
    /// STOMP connections accepted (TLS handshake done).
    pub connections_accepted: u64,
}

/// One active subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionInfo {
    /// The connection that made it.
    pub connection_id: u64,
    /// The `destination` header as the client sent it.
    pub destination: String,
    /// The subscription `id`.
    pub id: String,
    /// The `ack` mode (`auto` when absent).
    pub ack: String,
    /// `activemq.prefetchSize`, when given and valid.
    pub prefetch: Option<u32>,
}

/// Credentials the broker accepts at CONNECT.
#[derive(Clone)]
pub(crate) struct Credentials {
    pub(crate) pairs: Vec<(String, String)>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field(
                "logins",
                &self.pairs.iter().map(|p| &p.0).collect::<Vec<_>>(),
            )
            .finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AckMode {
    Auto,
    Client,
    ClientIndividual,
}

impl AckMode {
    fn parse(s: Option<&str>) -> Option<AckMode> {
        match s {
            None | Some("auto") => Some(AckMode::Auto),
            Some("client") => Some(AckMode::Client),
            Some("client-individual") => Some(AckMode::ClientIndividual),
            Some(_) => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            AckMode::Auto => "auto",
            AckMode::Client => "client",
            AckMode::ClientIndividual => "client-individual",
        }
    }
}

/// A message waiting in a queue (or in flight, unacked).
#[derive(Debug, Clone)]
pub(crate) struct QueuedMessage {
    pub(crate) message_id: String,
    /// Headers after destination/subscription/message-id/ack (reply-to, correlation-id, ...).
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Bytes,
    pub(crate) invocation: Option<Arc<InvocationInner>>,
    pub(crate) redelivered: bool,
    /// Written broken on the wire (fault injection).
    pub(crate) mangle: Option<Mangle>,
}

/// How a MESSAGE frame is broken on the wire (fault injection: a poison frame). Each keeps
/// the frame's end findable (its NUL), as a broker's bug or a hostile sender might.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mangle {
    /// A header with an escape STOMP does not define (`x-bad:\t`).
    BadEscape,
    /// A header that is not UTF-8.
    NotUtf8,
    /// `content-length:x`.
    BadContentLength,
    /// A `content-length` one short, so that no NUL follows the body where it says.
    ShortContentLength,
}

impl Mangle {
    /// The encoded frame `wire`, broken.
    fn apply(self, wire: &[u8]) -> Vec<u8> {
        let first_line = wire.iter().position(|&b| b == b'\n').map_or(0, |i| i + 1);
        let (head, rest) = wire.split_at(first_line);
        let insert = |extra: &[u8]| [head, extra, rest].concat();
        let text = String::from_utf8_lossy(wire);
        let length = |f: &dyn Fn(usize) -> String| {
            let Some(start) = text.find("\ncontent-length:") else {
                return wire.to_vec();
            };
            let start = start + "\ncontent-length:".len();
            let end = start + text[start..].find('\n').unwrap_or(0);
            let n: usize = text[start..end].parse().unwrap_or(0);
            [&wire[..start], f(n).as_bytes(), &wire[end..]].concat()
        };
        match self {
            Mangle::BadEscape => insert(b"x-bad:\\t\n"),
            Mangle::NotUtf8 => insert(b"x-bad:\xff\xfe\n"),
            Mangle::BadContentLength => length(&|_| "x".to_string()),
            Mangle::ShortContentLength => length(&|n| n.saturating_sub(1).to_string()),
        }
    }
}

#[derive(Debug)]
struct Subscription {
    id: String,
    destination: String,
    queue: String,
    ack: AckMode,
    prefetch: Option<u32>,
    unacked: u32,
    /// Of `unacked`, those acknowledged in a transaction not yet committed: they no longer
    /// count against the prefetch.
    acked_in_tx: u32,
}

impl Subscription {
    /// Whether the broker may deliver it another message.
    fn has_room(&self) -> bool {
        self.ack == AckMode::Auto
            || (self.prefetch).is_none_or(|p| self.unacked.saturating_sub(self.acked_in_tx) < p)
    }
}

#[derive(Debug)]
struct Unacked {
    msg: QueuedMessage,
    sub_id: String,
    queue: String,
    ack_ids: Vec<String>,
    /// Acknowledged in a transaction that is still open.
    acked_in_tx: bool,
}

/// What the writer task of a connection is asked to do.
#[derive(Debug)]
enum Outbound {
    Frame(Frame),
    Raw(Bytes),
    /// Start sending EOL heart-beats every so often.
    HeartBeat(Duration),
    /// Flush what is queued, then close the connection cleanly.
    Close,
}

#[derive(Debug)]
struct Conn {
    tx: mpsc::UnboundedSender<Outbound>,
    kill: CancellationToken,
    connected: bool,
    subs: Vec<Subscription>,
    /// In-flight messages by delivery sequence number.
    unacked: BTreeMap<u64, Unacked>,
    /// ack id -> delivery sequence number.
    ack_index: HashMap<String, u64>,
    /// Open transactions: their SENDs and ACKs, applied at COMMIT.
    transactions: HashMap<String, Vec<Frame>>,
}

impl Conn {
    fn send(&self, frame: Frame) {
        let _ = self.tx.send(Outbound::Frame(frame));
    }

    /// The in-flight messages an ACK of delivery `seq` acknowledges: that one, or in client mode
    /// every one up to it on the same subscription.
    fn acknowledged_by(&self, seq: u64) -> Vec<u64> {
        let Some(sub_id) = self.unacked.get(&seq).map(|u| u.sub_id.as_str()) else {
            return Vec::new();
        };
        let cumulative = (self.subs.iter()).any(|s| s.id == sub_id && s.ack == AckMode::Client);
        if !cumulative {
            return vec![seq];
        }
        (self.unacked.range(..=seq))
            .filter(|(_, u)| u.sub_id == sub_id)
            .map(|(s, _)| *s)
            .collect()
    }

    /// Marks the messages an ACK (in an open transaction) acknowledges as acknowledged
    /// (`in_tx`) or not (the transaction was aborted), which frees or takes back their
    /// prefetch slots; returns their queues.
    fn mark_acked_in_tx(&mut self, ack_id: &str, in_tx: bool) -> Vec<String> {
        let Some(&seq) = self.ack_index.get(ack_id) else {
            // Unknown: refused when the transaction is committed.
            return Vec::new();
        };
        let mut queues = Vec::new();
        for s in self.acknowledged_by(seq) {
            let Some(u) = self.unacked.get_mut(&s) else {
                continue;
            };
            if std::mem::replace(&mut u.acked_in_tx, in_tx) == in_tx {
                continue;
            }
            if let Some(sub) = self.subs.iter_mut().find(|x| x.id == u.sub_id) {
                if in_tx {
                    sub.acked_in_tx += 1;
                } else {
                    sub.acked_in_tx = sub.acked_in_tx.saturating_sub(1);
                }
            }
            if !queues.contains(&u.queue) {
                queues.push(u.queue.clone());
            }
        }
        queues
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AckFate {
    Pending,
    Done,
    Returned,
}

#[derive(Debug)]
struct AckRecord {
    connection_id: u64,
    message_id: String,
    fate: AckFate,
}

#[derive(Debug, Default)]
struct State {
    next_conn: u64,
    next_seq: u64,
    next_ack: u64,
    queues: HashMap<String, VecDeque<QueuedMessage>>,
    round_robin: HashMap<String, usize>,
    conns: BTreeMap<u64, Conn>,
    acks: HashMap<String, AckRecord>,
    violations: Vec<String>,
    stats: BrokerStats,
    deliver_twice: usize,
}

/// The embedded broker. Shared by the accept loop, the connection tasks and the [`crate::Sim`].
#[derive(Debug)]
pub(crate) struct Broker {
    org_id: i64,
    credentials: Credentials,
    heart_beat_ms: u32,
    state: Mutex<State>,
    changed: watch::Sender<u64>,
    registry: Arc<Registry>,
    frame_delay: Mutex<Duration>,
    commit_receipt_delay: Mutex<Duration>,
}

/// `/queue/actions.201.x` -> `actions.201.x`; `actions.201.x` stays.
pub(crate) fn queue_name(destination: &str) -> &str {
    destination.strip_prefix("/queue/").unwrap_or(destination)
}

impl Broker {
    pub(crate) fn new(
        org_id: i64,
        credentials: Credentials,
        heart_beat_ms: u32,
        registry: Arc<Registry>,
    ) -> Arc<Broker> {
        Arc::new(Broker {
            org_id,
            credentials,
            heart_beat_ms,
            state: Mutex::new(State::default()),
            changed: watch::Sender::new(0),
            registry,
            frame_delay: Mutex::new(Duration::ZERO),
            commit_receipt_delay: Mutex::new(Duration::ZERO),
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn bump(&self) {
        self.changed.send_modify(|v| *v += 1);
    }

    fn violation(&self, st: &mut State, text: String) {
        tracing::warn!("sim broker: protocol violation: {text}");
        st.violations.push(text);
        self.bump();
    }

    // ----- API used by the Sim -----

    pub(crate) fn violations(&self) -> Vec<String> {
        self.state().violations.clone()
    }

    pub(crate) fn stats(&self) -> BrokerStats {
        self.state().stats.clone()
    }

    pub(crate) fn connections(&self) -> usize {
        self.state().conns.len()
    }

    pub(crate) fn subscriptions(&self) -> Vec<SubscriptionInfo> {
        let st = self.state();
        st.conns
            .iter()
            .flat_map(|(cid, c)| {
                c.subs.iter().map(move |s| SubscriptionInfo {
                    connection_id: *cid,
                    destination: s.destination.clone(),
                    id: s.id.clone(),
                    ack: s.ack.as_str().to_string(),
                    prefetch: s.prefetch,
                })
            })
            .collect()
    }

    pub(crate) fn set_frame_delay(&self, delay: Duration) {
        *self.frame_delay.lock().unwrap_or_else(|p| p.into_inner()) = delay;
    }

    pub(crate) fn set_commit_receipt_delay(&self, delay: Duration) {
        *self
            .commit_receipt_delay
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = delay;
    }

    fn frame_delay(&self) -> Duration {
        *self.frame_delay.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn deliver_twice(&self, n: usize) {
        self.state().deliver_twice = n;
    }

    /// Number of messages waiting (not in flight) on a queue.
    pub(crate) fn queued(&self, queue: &str) -> usize {
        self.state()
            .queues
            .get(queue_name(queue))
            .map_or(0, |q| q.len())
    }

    /// What the queues hold, for the state file: queue by queue, the messages in flight first
    /// (they go back `redelivered`, in delivery order), then those waiting.
    pub(crate) fn saved_messages(&self) -> Vec<SavedMessage> {
        let st = self.state();
        let mut in_flight: Vec<(u64, &Unacked)> = st
            .conns
            .values()
            .flat_map(|c| c.unacked.iter().map(|(seq, u)| (*seq, u)))
            .collect();
        in_flight.sort_unstable_by_key(|(seq, _)| *seq);
        let mut queues: BTreeMap<&str, Vec<SavedMessage>> = BTreeMap::new();
        for (_, u) in in_flight {
            let saved = SavedMessage::of(&u.queue, &u.msg, true);
            queues.entry(&u.queue).or_default().push(saved);
        }
        for (queue, msgs) in &st.queues {
            let saved = msgs.iter().map(|m| SavedMessage::of(queue, m, false));
            queues.entry(queue).or_default().extend(saved);
        }
        queues.into_values().flatten().collect()
    }

    /// Puts the messages of an earlier run back on their queues, before any client connects;
    /// their invocations are registered again so that replies are matched to them.
    pub(crate) fn restore_messages(&self, messages: Vec<(String, QueuedMessage)>) {
        let mut st = self.state();
        for (queue, msg) in messages {
            if let Some(inv) = &msg.invocation {
                self.registry.insert(inv.clone());
            }
            st.queues.entry(queue).or_default().push_back(msg);
        }
    }

    /// Wakes on every change of the broker's state.
    pub(crate) fn watch(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// Puts a message at the back of a queue and delivers what can be delivered.
    pub(crate) fn publish(&self, queue: &str, msg: QueuedMessage) {
        let queue = queue_name(queue).to_string();
        let mut st = self.state();
        st.queues.entry(queue.clone()).or_default().push_back(msg);
        self.pump(&mut st, &queue);
    }

    /// Closes every connection abruptly; their unacked messages go back to their queues first.
    pub(crate) fn drop_connections(&self) {
        let mut st = self.state();
        let ids: Vec<u64> = st.conns.keys().copied().collect();
        for id in ids {
            self.remove_conn(&mut st, id, true);
        }
    }

    pub(crate) fn send_garbage(&self, bytes: &[u8]) {
        let st = self.state();
        for c in st.conns.values() {
            let _ = c.tx.send(Outbound::Raw(Bytes::copy_from_slice(bytes)));
        }
    }

    pub(crate) async fn wait_subscribed(&self, queue: &str, timeout: Duration) -> bool {
        let queue = queue_name(queue).to_string();
        let mut rx = self.changed.subscribe();
        let fut = async {
            loop {
                rx.borrow_and_update();
                if self
                    .state()
                    .conns
                    .values()
                    .any(|c| c.subs.iter().any(|s| s.queue == queue))
                {
                    return;
                }
                if rx.changed().await.is_err() {
                    futures::future::pending::<()>().await;
                }
            }
        };
        tokio::time::timeout(timeout, fut).await.is_ok()
    }

    pub(crate) async fn wait_connections(&self, n: usize, timeout: Duration) -> bool {
        let mut rx = self.changed.subscribe();
        let fut = async {
            loop {
                rx.borrow_and_update();
                if self.state().conns.len() == n {
                    return;
                }
                if rx.changed().await.is_err() {
                    futures::future::pending::<()>().await;
                }
            }
        };
        tokio::time::timeout(timeout, fut).await.is_ok()
    }

    // ----- delivery -----

    /// Delivers queued messages of `queue` while some subscription has room.
    fn pump(&self, st: &mut State, queue: &str) {
        loop {
            if st.queues.get(queue).is_none_or(|q| q.is_empty()) {
                return;
            }
            // Candidates in a stable order: (connection, subscription index).
            let candidates: Vec<(u64, usize)> = st
                .conns
                .iter()
                .filter(|(_, c)| c.connected)
                .flat_map(|(cid, c)| {
                    c.subs
                        .iter()
                        .enumerate()
                        .filter(|(_, s)| s.queue == queue)
                        .map(move |(i, _)| (*cid, i))
                })
                .collect();
            if candidates.is_empty() {
                return;
            }
            let start = st.round_robin.get(queue).copied().unwrap_or(0);
            let mut chosen = None;
            for k in 0..candidates.len() {
                let idx = (start + k) % candidates.len();
                let (cid, si) = candidates[idx];
                let sub = &st.conns[&cid].subs[si];
                if sub.has_room() {
                    chosen = Some((idx, cid, si));
                    break;
                }
            }
            let Some((idx, cid, si)) = chosen else {
                return;
            };
            st.round_robin.insert(queue.to_string(), idx + 1);
            let Some(msg) = st.queues.get_mut(queue).and_then(|q| q.pop_front()) else {
                return;
            };
            self.deliver(st, cid, si, queue, msg);
        }
    }

    fn new_ack_id(st: &mut State) -> String {
        st.next_ack += 1;
        format!("ID:soar-sim-ack-{}", st.next_ack)
    }

    fn message_frame(
        &self,
        queue: &str,
        sub_id: &str,
        ack_id: &str,
        msg: &QueuedMessage,
        redelivered: bool,
    ) -> Frame {
        let mut f = Frame::new(Command::Message)
            .header("destination", format!("/queue/{queue}"))
            .header("subscription", sub_id)
            .header("message-id", msg.message_id.clone())
            .header("ack", ack_id);
        if redelivered {
            f = f.header("redelivered", "true");
        }
        f.headers.extend(msg.headers.iter().cloned());
        f.with_body(msg.body.clone())
    }

    fn deliver(&self, st: &mut State, cid: u64, si: usize, queue: &str, msg: QueuedMessage) {
        let ack_id = Self::new_ack_id(st);
        st.next_seq += 1;
        let seq = st.next_seq;
        let twice = if st.deliver_twice > 0 {
            st.deliver_twice -= 1;
            true
        } else {
            false
        };
        let dup_ack = twice.then(|| Self::new_ack_id(st));
        let Some(conn) = st.conns.get_mut(&cid) else {
            return;
        };
        let (sub_id, mode) = (conn.subs[si].id.clone(), conn.subs[si].ack);
        let frame = self.message_frame(queue, &sub_id, &ack_id, &msg, msg.redelivered);
        match msg.mangle {
            None => conn.send(frame),
            Some(mangle) => {
                let mut wire = BytesMut::new();
                if StompCodec::default().encode(&frame, &mut wire).is_ok() {
                    let _ = conn.tx.send(Outbound::Raw(mangle.apply(&wire).into()));
                }
            }
        }
        if let Some(dup) = &dup_ack {
            conn.send(self.message_frame(queue, &sub_id, dup, &msg, true));
        }
        let mut ack_ids = vec![ack_id.clone()];
        ack_ids.extend(dup_ack.clone());
        let mut unacked_now = 0;
        if mode != AckMode::Auto {
            let sub = &mut conn.subs[si];
            sub.unacked += 1;
            unacked_now = sub.unacked.saturating_sub(sub.acked_in_tx);
            for a in &ack_ids {
                conn.ack_index.insert(a.clone(), seq);
            }
            conn.unacked.insert(
                seq,
                Unacked {
                    msg: msg.clone(),
                    sub_id,
                    queue: queue.to_string(),
                    ack_ids: ack_ids.clone(),
                    acked_in_tx: false,
                },
            );
        }
        let fate = if mode == AckMode::Auto {
            AckFate::Done
        } else {
            AckFate::Pending
        };
        for a in &ack_ids {
            st.acks.insert(
                a.clone(),
                AckRecord {
                    connection_id: cid,
                    message_id: msg.message_id.clone(),
                    fate,
                },
            );
        }
        st.stats.delivered += 1 + u64::from(twice);
        st.stats.redelivered += u64::from(msg.redelivered) + u64::from(twice);
        st.stats.max_unacked_per_subscription =
            st.stats.max_unacked_per_subscription.max(unacked_now);
        if let Some(inv) = &msg.invocation {
            inv.record(InvocationEvent::Delivered {
                connection_id: cid,
                redelivered: msg.redelivered,
            });
            if twice {
                inv.record(InvocationEvent::Delivered {
                    connection_id: cid,
                    redelivered: true,
                });
            }
        }
    }

    /// Puts in-flight messages back at the front of their queues, oldest first, and delivers.
    fn requeue(&self, st: &mut State, returned: Vec<Unacked>) {
        let mut queues = Vec::new();
        // `returned` is in delivery order; push to the front in reverse to keep that order.
        for u in returned.into_iter().rev() {
            for a in &u.ack_ids {
                if let Some(r) = st.acks.get_mut(a) {
                    r.fate = AckFate::Returned;
                }
            }
            let mut msg = u.msg;
            msg.redelivered = true;
            st.queues
                .entry(u.queue.clone())
                .or_default()
                .push_front(msg);
            if !queues.contains(&u.queue) {
                queues.push(u.queue);
            }
        }
        for q in queues {
            self.pump(st, &q);
        }
    }

    /// Forgets a connection, returns its unacked messages, optionally kills its socket.
    fn remove_conn(&self, st: &mut State, cid: u64, kill: bool) {
        let Some(conn) = st.conns.remove(&cid) else {
            return;
        };
        if kill {
            conn.kill.cancel();
        } else {
            let _ = conn.tx.send(Outbound::Close);
        }
        let returned: Vec<Unacked> = conn.unacked.into_values().collect();
        self.requeue(st, returned);
        self.bump();
    }

    // ----- connections -----

    fn register_conn(&self, tx: mpsc::UnboundedSender<Outbound>, kill: CancellationToken) -> u64 {
        let mut st = self.state();
        st.next_conn += 1;
        let id = st.next_conn;
        st.stats.connections_accepted += 1;
        st.conns.insert(
            id,
            Conn {
                tx,
                kill,
                connected: false,
                subs: Vec::new(),
                unacked: BTreeMap::new(),
                ack_index: HashMap::new(),
                transactions: HashMap::new(),
            },
        );
        self.bump();
        id
    }

    /// A frame from a client that cannot be read: a violation; ERROR, then the connection goes.
    fn malformed(&self, cid: u64, problem: &str) {
        let mut st = self.state();
        if st.conns.contains_key(&cid) {
            self.violation(
                &mut st,
                format!("connection {cid}: malformed frame: {problem}"),
            );
            if let Some(c) = st.conns.get(&cid) {
                c.send(Broker::error_frame("Malformed frame", problem, None));
            }
            self.remove_conn(&mut st, cid, false);
        }
    }

    fn error_frame(message: &str, detail: &str, receipt: Option<&str>) -> Frame {
        let mut f = Frame::new(Command::Error)
            .header("message", message)
            .header("content-type", "text/plain");
        if let Some(r) = receipt {
            f = f.header("receipt-id", r);
        }
        f.with_body(detail.to_string())
    }

    fn send_error_and_close(&self, st: &mut State, cid: u64, message: &str, detail: &str) {
        if let Some(c) = st.conns.get(&cid) {
            c.send(Self::error_frame(message, detail, None));
        }
        self.remove_conn(st, cid, false);
    }

    /// Handles one frame. Returns the heart-beat read deadline once CONNECT succeeded.
    fn handle_frame(&self, cid: u64, frame: Frame) -> FrameOutcome {
        let mut st = self.state();
        let Some(conn) = st.conns.get(&cid) else {
            return FrameOutcome::Closed;
        };
        let connected = conn.connected;
        let receipt = frame.get("receipt").map(str::to_string);
        let command = frame.command;
        match frame.command {
            Command::Connect | Command::Stomp => {
                if connected {
                    self.violation(
                        &mut st,
                        format!("connection {cid}: second {} frame", frame.command),
                    );
                    return FrameOutcome::Continue;
                }
                return self.connect(&mut st, cid, &frame);
            }
            _ if !connected => {
                self.violation(
                    &mut st,
                    format!("connection {cid}: {} frame before CONNECT", frame.command),
                );
                self.send_error_and_close(
                    &mut st,
                    cid,
                    "Not connected",
                    "The first frame must be CONNECT or STOMP",
                );
                return FrameOutcome::Closed;
            }
            Command::Subscribe => {
                // Sends its own RECEIPT, before the first deliveries (as ActiveMQ does).
                self.subscribe(&mut st, cid, &frame);
                return FrameOutcome::Continue;
            }
            Command::Unsubscribe => self.unsubscribe(&mut st, cid, &frame),
            Command::Begin | Command::Commit | Command::Abort => {
                if !self.transaction(&mut st, cid, &frame, receipt.as_deref()) {
                    return FrameOutcome::Continue;
                }
            }
            Command::Send | Command::Ack | Command::Nack if frame.get("transaction").is_some() => {
                if !self.in_transaction(&mut st, cid, frame, receipt.as_deref()) {
                    return FrameOutcome::Continue;
                }
            }
            Command::Ack => {
                if !self.ack(&mut st, cid, &frame, receipt.as_deref()) {
                    // An ERROR went out instead of a RECEIPT.
                    return FrameOutcome::Continue;
                }
            }
            Command::Nack => self.nack(&mut st, cid, &frame),
            Command::Send => self.send(&mut st, cid, &frame),
            Command::Disconnect => {
                if let (Some(r), Some(c)) = (&receipt, st.conns.get(&cid)) {
                    c.send(Frame::new(Command::Receipt).header("receipt-id", r.clone()));
                }
                self.remove_conn(&mut st, cid, false);
                return FrameOutcome::Closed;
            }
            Command::Connected | Command::Message | Command::Receipt | Command::Error => {
                self.violation(
                    &mut st,
                    format!(
                        "connection {cid}: client sent a server frame {}",
                        frame.command
                    ),
                );
            }
        }
        if let (Some(r), Some(c)) = (receipt, st.conns.get(&cid)) {
            let frame = Frame::new(Command::Receipt).header("receipt-id", r);
            let delay = match command {
                Command::Commit => *self
                    .commit_receipt_delay
                    .lock()
                    .unwrap_or_else(|p| p.into_inner()),
                _ => Duration::ZERO,
            };
            if delay.is_zero() {
                c.send(frame);
            } else {
                // Held back without holding up the connection's other frames.
                let tx = c.tx.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    let _ = tx.send(Outbound::Frame(frame));
                });
            }
        }
        FrameOutcome::Continue
    }

    /// BEGIN, COMMIT or ABORT (STOMP 1.2 transactions, as ActiveMQ has them): the SENDs and
    /// ACKs of a transaction take effect together at COMMIT, or never (ABORT, or the connection
    /// ends first). False when the frame was refused with an ERROR.
    fn transaction(&self, st: &mut State, cid: u64, frame: &Frame, receipt: Option<&str>) -> bool {
        let tx = frame.get("transaction").unwrap_or_default().to_string();
        let Some(conn) = st.conns.get_mut(&cid) else {
            return false;
        };
        let problem = match frame.command {
            Command::Begin if tx.is_empty() => Some("BEGIN without a transaction header"),
            Command::Begin => (conn.transactions.insert(tx.clone(), Vec::new()))
                .map(|_| "BEGIN of a transaction that is already open"),
            Command::Abort => match conn.transactions.remove(&tx) {
                Some(frames) => {
                    // Their messages count against the prefetch again, as before the ACKs.
                    for frame in frames.iter().filter(|f| f.command == Command::Ack) {
                        conn.mark_acked_in_tx(frame.get("id").unwrap_or_default(), false);
                    }
                    None
                }
                None => Some("ABORT of an unknown transaction"),
            },
            _ => match conn.transactions.remove(&tx) {
                Some(frames) => {
                    for frame in frames {
                        match frame.command {
                            Command::Ack => drop(self.ack(st, cid, &frame, None)),
                            Command::Nack => self.nack(st, cid, &frame),
                            _ => self.send(st, cid, &frame),
                        }
                    }
                    None
                }
                None => Some("COMMIT of an unknown transaction"),
            },
        };
        let Some(problem) = problem else { return true };
        self.violation(st, format!("connection {cid}: {problem} ({tx:?})"));
        if let Some(c) = st.conns.get(&cid) {
            c.send(Self::error_frame(
                &format!("Invalid transaction id {tx}"),
                problem,
                receipt,
            ));
        }
        false
    }

    /// Holds a SEND, ACK or NACK of an open transaction until its COMMIT; an ACK frees its
    /// message's prefetch slot at once (as ActiveMQ's prefetch extension does), so the next
    /// message is delivered.
    fn in_transaction(
        &self,
        st: &mut State,
        cid: u64,
        frame: Frame,
        receipt: Option<&str>,
    ) -> bool {
        let tx = frame.get("transaction").unwrap_or_default().to_string();
        let Some(conn) = st.conns.get_mut(&cid) else {
            return false;
        };
        if let Some(frames) = conn.transactions.get_mut(&tx) {
            let acked = (frame.command == Command::Ack)
                .then(|| frame.get("id").unwrap_or_default().to_string());
            frames.push(frame);
            if let Some(id) = acked {
                for queue in conn.mark_acked_in_tx(&id, true) {
                    self.pump(st, &queue);
                }
            }
            return true;
        }
        let text = format!(
            "connection {cid}: {} in unknown transaction {tx:?}",
            frame.command
        );
        self.violation(st, text);
        if let Some(c) = st.conns.get(&cid) {
            c.send(Self::error_frame(
                &format!("Invalid transaction id {tx}"),
                "no such transaction is open on this connection",
                receipt,
            ));
        }
        false
    }

    fn connect(&self, st: &mut State, cid: u64, frame: &Frame) -> FrameOutcome {
        let versions = frame.get("accept-version").unwrap_or("1.0");
        if !versions.split(',').any(|v| v.trim() == "1.2") {
            self.violation(
                st,
                format!("connection {cid}: CONNECT without accept-version 1.2 ({versions})"),
            );
            self.send_error_and_close(
                st,
                cid,
                "Supported protocol versions are 1.2",
                &format!("accept-version was {versions}"),
            );
            return FrameOutcome::Closed;
        }
        let login = frame.get("login").unwrap_or("");
        let passcode = frame.get("passcode").unwrap_or("");
        if !self
            .credentials
            .pairs
            .iter()
            .any(|(l, p)| l == login && p == passcode)
        {
            tracing::info!("sim broker: connection {cid}: bad credentials for login [{login}]");
            self.send_error_and_close(
                st,
                cid,
                &format!("User name [{login}] or password is invalid."),
                "",
            );
            return FrameOutcome::Closed;
        }
        if frame.get("host").is_none_or(str::is_empty) {
            self.violation(
                st,
                format!("connection {cid}: CONNECT without the host header STOMP 1.2 requires"),
            );
        }
        let (cx, cy) = match frame.get("heart-beat").map(parse_heart_beat) {
            None => (0, 0),
            Some(Some(hb)) => hb,
            Some(None) => {
                self.violation(
                    st,
                    format!(
                        "connection {cid}: malformed heart-beat header {:?}",
                        frame.get("heart-beat").unwrap_or("")
                    ),
                );
                (0, 0)
            }
        };
        let sx = if cy > 0 { self.heart_beat_ms } else { 0 };
        let sy = cx;
        let Some(conn) = st.conns.get_mut(&cid) else {
            return FrameOutcome::Closed;
        };
        conn.connected = true;
        conn.send(
            Frame::new(Command::Connected)
                .header("version", "1.2")
                .header("server", concat!("soar-sim/", env!("CARGO_PKG_VERSION")))
                .header("session", format!("soar-sim-session-{cid}"))
                .header("heart-beat", format!("{sx},{sy}")),
        );
        if sx > 0 {
            let _ = conn
                .tx
                .send(Outbound::HeartBeat(Duration::from_millis(u64::from(sx))));
        }
        self.bump();
        FrameOutcome::Connected {
            read_deadline: (cx > 0).then(|| Duration::from_millis(2 * u64::from(cx))),
        }
    }

    /// Handles SUBSCRIBE: an ERROR when refused, else the RECEIPT (if asked) and deliveries.
    fn subscribe(&self, st: &mut State, cid: u64, frame: &Frame) -> bool {
        let (Some(destination), Some(id)) = (frame.get("destination"), frame.get("id")) else {
            self.violation(
                st,
                format!("connection {cid}: SUBSCRIBE without destination or id"),
            );
            if let Some(c) = st.conns.get(&cid) {
                c.send(Self::error_frame(
                    "SUBSCRIBE requires destination and id headers",
                    "",
                    frame.get("receipt"),
                ));
            }
            return false;
        };
        let queue = queue_name(destination).to_string();
        let Some(ack) = AckMode::parse(frame.get("ack")) else {
            self.violation(
                st,
                format!(
                    "connection {cid}: SUBSCRIBE to {destination} with unknown ack mode {:?}",
                    frame.get("ack").unwrap_or("")
                ),
            );
            if let Some(c) = st.conns.get(&cid) {
                c.send(Self::error_frame(
                    "Unknown ack mode",
                    "ack must be auto, client or client-individual",
                    frame.get("receipt"),
                ));
            }
            return false;
        };
        let actions_prefix = format!("actions.{}.", self.org_id);
        if ack != AckMode::ClientIndividual && queue.starts_with(&actions_prefix) {
            self.violation(
                st,
                format!(
                    "connection {cid}: SUBSCRIBE to {destination} with ack:{} (the platform protocol uses client-individual)",
                    ack.as_str()
                ),
            );
        }
        let prefetch = match frame.get("activemq.prefetchSize") {
            None => {
                self.violation(
                    st,
                    format!(
                        "connection {cid}: SUBSCRIBE to {destination} without activemq.prefetchSize"
                    ),
                );
                None
            }
            Some(v) => match v.trim().parse::<u32>() {
                Ok(n) if n > 0 => Some(n),
                _ => {
                    self.violation(
                        st,
                        format!(
                            "connection {cid}: SUBSCRIBE to {destination} with invalid activemq.prefetchSize {v:?}"
                        ),
                    );
                    None
                }
            },
        };
        let Some(conn) = st.conns.get_mut(&cid) else {
            return false;
        };
        if conn.subs.iter().any(|s| s.id == id) {
            let text = format!("connection {cid}: SUBSCRIBE with id {id} that is already in use");
            conn.send(Self::error_frame(
                &format!("Already subscribed with id {id}"),
                "",
                frame.get("receipt"),
            ));
            self.violation(st, text);
            return false;
        }
        conn.subs.push(Subscription {
            id: id.to_string(),
            destination: destination.to_string(),
            queue: queue.clone(),
            ack,
            prefetch,
            unacked: 0,
            acked_in_tx: 0,
        });
        if let Some(r) = frame.get("receipt") {
            conn.send(Frame::new(Command::Receipt).header("receipt-id", r));
        }
        self.bump();
        self.pump(st, &queue);
        true
    }

    fn unsubscribe(&self, st: &mut State, cid: u64, frame: &Frame) {
        let id = frame.get("id").unwrap_or("");
        let Some(conn) = st.conns.get_mut(&cid) else {
            return;
        };
        let Some(pos) = conn.subs.iter().position(|s| s.id == id) else {
            self.violation(
                st,
                format!("connection {cid}: UNSUBSCRIBE with unknown id {id:?}"),
            );
            return;
        };
        conn.subs.remove(pos);
        let seqs: Vec<u64> = conn
            .unacked
            .iter()
            .filter(|(_, u)| u.sub_id == id)
            .map(|(s, _)| *s)
            .collect();
        let mut returned = Vec::new();
        for s in seqs {
            if let Some(u) = conn.unacked.remove(&s) {
                for a in &u.ack_ids {
                    conn.ack_index.remove(a);
                }
                returned.push(u);
            }
        }
        self.requeue(st, returned);
        self.bump();
    }

    /// Returns false when the ACK was refused with an ERROR frame.
    fn ack(&self, st: &mut State, cid: u64, frame: &Frame, receipt: Option<&str>) -> bool {
        let Some(id) = frame.get("id") else {
            self.violation(st, format!("connection {cid}: ACK without id header"));
            if let Some(c) = st.conns.get(&cid) {
                c.send(Self::error_frame("ACK requires an id header", "", receipt));
            }
            return false;
        };
        let Some(conn) = st.conns.get_mut(&cid) else {
            return false;
        };
        let Some(&seq) = conn.ack_index.get(id) else {
            let why = match st.acks.get(id) {
                Some(r) if r.connection_id != cid => format!(
                    "ACK id {id} (message-id {}) on connection {cid}, but it was delivered on connection {}",
                    r.message_id, r.connection_id
                ),
                Some(r) if r.fate == AckFate::Done => format!(
                    "connection {cid}: ACK id {id} for message-id {} that was already acknowledged",
                    r.message_id
                ),
                Some(r) => format!(
                    "connection {cid}: ACK id {id} for message-id {} that is no longer in flight",
                    r.message_id
                ),
                None => format!("connection {cid}: ACK with unknown id {id}"),
            };
            self.violation(st, why);
            if let Some(c) = st.conns.get(&cid) {
                c.send(Self::error_frame(
                    &format!("Unexpected ACK received for message-id [{id}]"),
                    "",
                    receipt,
                ));
            }
            return false;
        };
        let mut done = Vec::new();
        for s in conn.acknowledged_by(seq) {
            if let Some(u) = conn.unacked.remove(&s) {
                for a in &u.ack_ids {
                    conn.ack_index.remove(a);
                }
                if let Some(sub) = conn.subs.iter_mut().find(|x| x.id == u.sub_id) {
                    sub.unacked = sub.unacked.saturating_sub(1);
                    sub.acked_in_tx = sub.acked_in_tx.saturating_sub(u32::from(u.acked_in_tx));
                }
                done.push(u);
            }
        }
        let mut queues = Vec::new();
        for u in done {
            for a in &u.ack_ids {
                if let Some(r) = st.acks.get_mut(a) {
                    r.fate = AckFate::Done;
                }
            }
            st.stats.acked += 1;
            if let Some(inv) = &u.msg.invocation {
                inv.record(InvocationEvent::Acked);
            }
            if !queues.contains(&u.queue) {
                queues.push(u.queue);
            }
        }
        for q in queues {
            self.pump(st, &q);
        }
        true
    }

    fn nack(&self, st: &mut State, cid: u64, frame: &Frame) {
        let id = frame.get("id").unwrap_or("");
        let Some(conn) = st.conns.get_mut(&cid) else {
            return;
        };
        let Some(seq) = conn.ack_index.get(id).copied() else {
            self.violation(st, format!("connection {cid}: NACK with unknown id {id:?}"));
            return;
        };
        let Some(u) = conn.unacked.remove(&seq) else {
            return;
        };
        for a in &u.ack_ids {
            conn.ack_index.remove(a);
        }
        if let Some(sub) = conn.subs.iter_mut().find(|x| x.id == u.sub_id) {
            sub.unacked = sub.unacked.saturating_sub(1);
        }
        st.stats.nacked += 1;
        let text = format!(
            "connection {cid}: NACK of message-id {} (the platform protocol never NACKs; the message is redelivered)",
            u.msg.message_id
        );
        self.violation(st, text);
        if let Some(inv) = &u.msg.invocation {
            inv.record(InvocationEvent::Nacked);
        }
        self.requeue(st, vec![u]);
    }

    fn send(&self, st: &mut State, cid: u64, frame: &Frame) {
        let Some(destination) = frame.get("destination") else {
            self.violation(st, format!("connection {cid}: SEND without destination"));
            return;
        };
        let queue = queue_name(destination);
        let acks_prefix = format!("acks.{}.", self.org_id);
        if !queue.starts_with(&acks_prefix) {
            self.violation(
                st,
                format!("connection {cid}: SEND to non-acks destination {destination}"),
            );
            return;
        }
        let outcome = handle_reply(
            &self.registry,
            queue,
            frame.get("correlation-id"),
            &frame.body,
            cid,
        );
        if outcome.recorded {
            st.stats.replies += 1;
        }
        for v in outcome.violations {
            self.violation(st, v);
        }
        self.bump();
    }
}

fn parse_heart_beat(v: &str) -> Option<(u32, u32)> {
    let (a, b) = v.split_once(',')?;
    Some((a.trim().parse().ok()?, b.trim().parse().ok()?))
}

enum FrameOutcome {
    Continue,
    Connected { read_deadline: Option<Duration> },
    Closed,
}

/// Accepts TLS connections until `cancel` fires.
pub(crate) async fn serve(
    broker: Arc<Broker>,
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    cancel: CancellationToken,
) {
    let acceptor = TlsAcceptor::from(tls);
    loop {
        let (tcp, peer) = tokio::select! {
            _ = cancel.cancelled() => break,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!("sim broker accept failed: {e}");
                    continue;
                }
            },
        };
        let broker = broker.clone();
        let acceptor = acceptor.clone();
        let cancel = cancel.clone();
        tokio::spawn(async move {
            let _ = tcp.set_nodelay(true);
            handle_connection(broker, acceptor, tcp, peer, cancel).await;
        });
    }
    // Shut down: close every connection.
    broker.drop_connections();
}

/// How long a client has to send CONNECT after the TLS handshake.
const CONNECT_DEADLINE: Duration = Duration::from_secs(30);

async fn handle_connection(
    broker: Arc<Broker>,
    acceptor: TlsAcceptor,
    tcp: TcpStream,
    peer: std::net::SocketAddr,
    cancel: CancellationToken,
) {
    let tls = match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::debug!("sim broker: TLS handshake with {peer} failed: {e}");
            return;
        }
        Err(_) => {
            tracing::debug!("sim broker: TLS handshake with {peer} timed out");
            return;
        }
    };
    let (rd, wr) = tokio::io::split(tls);
    let (tx, rx) = mpsc::unbounded_channel();
    let kill = cancel.child_token();
    let cid = broker.register_conn(tx, kill.clone());
    tracing::debug!("sim broker: connection {cid} from {peer}");
    let writer = tokio::spawn(write_loop(broker.clone(), wr, rx, kill.clone()));
    let mut reader = FramedRead::new(rd, StompCodec::default());
    let mut deadline = Some(CONNECT_DEADLINE);
    loop {
        let next = async {
            match deadline {
                Some(d) => tokio::time::timeout(d, reader.next()).await.ok(),
                None => Some(reader.next().await),
            }
        };
        let item = tokio::select! {
            _ = kill.cancelled() => break,
            item = next => item,
        };
        match item {
            None => {
                let mut st = broker.state();
                let what = if st.conns.get(&cid).is_some_and(|c| c.connected) {
                    "heart-beat"
                } else {
                    "CONNECT"
                };
                tracing::info!("sim broker: connection {cid}: no {what} in time, closing");
                if what == "CONNECT" {
                    broker.violation(
                        &mut st,
                        format!("connection {cid}: no CONNECT within {CONNECT_DEADLINE:?}"),
                    );
                }
                broker.remove_conn(&mut st, cid, true);
                break;
            }
            Some(None) => {
                tracing::debug!("sim broker: connection {cid} closed by the client");
                break;
            }
            Some(Some(Err(CodecError::Io(e)))) => {
                // The client went away (an abrupt TCP close, a TLS close without close_notify,
                // a reset): a dropped connection, not a protocol mistake.
                tracing::debug!("sim broker: connection {cid} lost: {e}");
                break;
            }
            Some(Some(Err(e))) => {
                broker.malformed(cid, &e.to_string());
                break;
            }
            Some(Some(Ok(Item::Rejected(r)))) => {
                broker.malformed(cid, &r.problem);
                break;
            }
            Some(Some(Ok(Item::HeartBeat))) => {}
            Some(Some(Ok(Item::Frame(frame)))) => {
                tracing::trace!("sim broker: connection {cid} <- {frame:?}");
                match broker.handle_frame(cid, frame) {
                    FrameOutcome::Continue => {}
                    FrameOutcome::Connected { read_deadline } => deadline = read_deadline,
                    FrameOutcome::Closed => break,
                }
            }
        }
    }
    {
        let mut st = broker.state();
        broker.remove_conn(&mut st, cid, kill.is_cancelled());
    }
    // The writer finishes once it flushed a Close or was killed.
    let _ = writer.await;
    tracing::debug!("sim broker: connection {cid} finished");
}

async fn write_loop<W: AsyncWrite + Unpin>(
    broker: Arc<Broker>,
    mut wr: W,
    mut rx: mpsc::UnboundedReceiver<Outbound>,
    kill: CancellationToken,
) {
    let mut codec = StompCodec::default();
    let mut heart_beat: Option<tokio::time::Interval> = None;
    let mut buf = BytesMut::new();
    loop {
        let tick = async {
            match heart_beat.as_mut() {
                Some(i) => {
                    i.tick().await;
                }
                None => futures::future::pending::<()>().await,
            }
        };
        let first = tokio::select! {
            _ = kill.cancelled() => return,
            _ = tick => Some(Outbound::Raw(Bytes::from_static(b"\n"))),
            m = rx.recv() => m,
        };
        let Some(first) = first else {
            let _ = wr.shutdown().await;
            return;
        };
        let mut next = Some(first);
        let mut close = false;
        while let Some(out) = next.take() {
            match out {
                Outbound::Frame(frame) => {
                    if frame.command == Command::Message {
                        let delay = broker.frame_delay();
                        if !delay.is_zero() {
                            if !buf.is_empty() && write_all(&mut wr, &mut buf).await.is_err() {
                                return;
                            }
                            tokio::select! {
                                _ = kill.cancelled() => return,
                                _ = tokio::time::sleep(delay) => {}
                            }
                        }
                    }
                    if let Err(e) = codec.encode(Item::Frame(frame), &mut buf) {
                        tracing::error!("sim broker: cannot encode a frame: {e}");
                    }
                }
                Outbound::Raw(bytes) => buf.extend_from_slice(&bytes),
                Outbound::HeartBeat(every) => {
                    let mut i =
                        tokio::time::interval_at(tokio::time::Instant::now() + every, every);
                    i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    heart_beat = Some(i);
                }
                Outbound::Close => {
                    close = true;
                    break;
                }
            }
            next = rx.try_recv().ok();
        }
        if !buf.is_empty() && write_all(&mut wr, &mut buf).await.is_err() {
            return;
        }
        if close {
            let _ = wr.shutdown().await;
            return;
        }
    }
}

async fn write_all<W: AsyncWrite + Unpin>(wr: &mut W, buf: &mut BytesMut) -> std::io::Result<()> {
    let r = async {
        wr.write_all(buf).await?;
        wr.flush().await
    }
    .await;
    buf.clear();
    if let Err(e) = &r {
        tracing::debug!("sim broker: write failed: {e}");
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heart_beats_and_queue_names_parse() {
        assert_eq!(parse_heart_beat("0,15000"), Some((0, 15000)));
        assert_eq!(parse_heart_beat(" 10 , 20 "), Some((10, 20)));
        assert_eq!(parse_heart_beat("x"), None);
        assert_eq!(queue_name("/queue/actions.201.a"), "actions.201.a");
        assert_eq!(queue_name("actions.201.a"), "actions.201.a");
    }
}
