//! One STOMP connection: TCP (with TCP_NODELAY) and optional TLS, the CONNECT/CONNECTED
//! handshake and heart-beat negotiation, a writer task that owns the write half, and a reader
//! that tracks receipts and the server's heart-beats.
//!
//! The writer drains every frame queued at the moment into one buffer and sends it with one
//! `write_all` and one flush, so frames that go out together share TCP segments instead of
//! waiting behind Nagle and delayed ACKs. When idle for the negotiated interval it sends an EOL.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::{BufMut, BytesMut};
use futures::StreamExt;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::codec::{Encoder, FramedRead};
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, trace, warn};

use crate::codec::{CodecError, DEFAULT_MAX_FRAME_SIZE, Item, StompCodec};
use crate::error::StompError;
use crate::frame::{Command, Frame};
use crate::session::Backoff;

/// Frames queued for the writer before `send` waits.
const OUTGOING_QUEUE: usize = 1024;

/// How to reach and log in to the broker.
#[derive(Clone)]
pub struct ClientConfig {
    /// Broker host name or address.
    pub host: String,
    /// Broker port (SOAR: 65001).
    pub port: u16,
    /// TLS configuration (see `soar_tls::client_config`); `None` = plain TCP.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// Name for SNI, certificate verification and the CONNECT `host` header; default `host`.
    pub server_name: Option<String>,
    /// CONNECT `login`.
    pub login: Option<String>,
    /// CONNECT `passcode` (never logged; redacted in Debug).
    pub passcode: Option<String>,
    /// Heart-beats we offer, in ms: (we send every cx, we want the server's every cy); 0 = none.
    pub heart_beat: (u32, u32),
    /// Limit for TCP + TLS + CONNECTED, and for each receipt.
    pub connect_timeout: Duration,
    /// Largest frame accepted from the server.
    pub max_frame_size: usize,
    /// Reconnect delays.
    pub backoff: Backoff,
}

impl ClientConfig {
    /// Plain TCP to `host:port`, no credentials, heart-beats (15000, 15000), 30 s timeout.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        ClientConfig {
            host: host.into(),
            port,
            tls: None,
            server_name: None,
            login: None,
            passcode: None,
            heart_beat: (15_000, 15_000),
            connect_timeout: Duration::from_secs(30),
            max_frame_size: DEFAULT_MAX_FRAME_SIZE,
            backoff: Backoff::default(),
        }
    }

    /// The name used for SNI, certificate checks and the `host` header.
    pub fn server_name(&self) -> &str {
        self.server_name.as_deref().unwrap_or(&self.host)
    }

    fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls.is_some())
            .field("server_name", &self.server_name)
            .field("login", &self.login)
            .field("passcode", &self.passcode.as_ref().map(|_| "<redacted>"))
            .field("heart_beat", &self.heart_beat)
            .field("connect_timeout", &self.connect_timeout)
            .field("max_frame_size", &self.max_frame_size)
            .field("backoff", &self.backoff)
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

type Waiter = oneshot::Sender<Result<(), StompError>>;

/// Receipt waiters of one connection; closing fails them all with `NotConnected`.
struct Receipts {
    next: AtomicU64,
    waiters: Mutex<Option<HashMap<String, Waiter>>>,
}

impl Receipts {
    fn register(&self) -> Result<(String, oneshot::Receiver<Result<(), StompError>>), StompError> {
        let id = format!("rcpt-{}", self.next.fetch_add(1, Ordering::Relaxed));
        let (tx, rx) = oneshot::channel();
        lock(&self.waiters)
            .as_mut()
            .ok_or(StompError::NotConnected)?
            .insert(id.clone(), tx);
        Ok((id, rx))
    }

    fn complete(&self, id: &str, result: Result<(), StompError>) {
        let waiter = lock(&self.waiters).as_mut().and_then(|w| w.remove(id));
        match waiter {
            Some(waiter) => drop(waiter.send(result)),
            None => debug!(receipt = id, "receipt nobody waits for"),
        }
    }

    fn close(&self) {
        lock(&self.waiters).take();
    }
}

/// A cheap, cloneable handle to write to one connection and wait for receipts.
#[derive(Clone)]
pub struct Link {
    generation: u64,
    outgoing: mpsc::Sender<Frame>,
    receipts: Arc<Receipts>,
    acks: Arc<AckWatch>,
}

/// Tells when the acknowledgement of one delivery has been queued for the writer: a plain ACK
/// of it, or the COMMIT of the transaction holding its ACK.
#[derive(Default)]
struct AckWatch {
    watching: AtomicBool,
    state: Mutex<Option<Watched>>,
}

struct Watched {
    ack: String,
    /// The transaction of the watched ACK, once it has been queued inside one.
    transaction: Option<String>,
    queued: oneshot::Sender<()>,
}

impl AckWatch {
    fn queued(&self, frame: &Frame) {
        if !self.watching.load(Ordering::Acquire) {
            return;
        }
        let mut state = lock(&self.state);
        let Some(watched) = state.as_mut() else {
            return;
        };
        let done = match frame.command {
            Command::Ack if frame.get("id") == Some(watched.ack.as_str()) => {
                match frame.get("transaction") {
                    None => true,
                    Some(tx) => {
                        watched.transaction = Some(tx.to_owned());
                        false
                    }
                }
            }
            Command::Commit => {
                watched.transaction.is_some()
                    && frame.get("transaction") == watched.transaction.as_deref()
            }
            _ => false,
        };
        if done {
            self.watching.store(false, Ordering::Release);
            if let Some(watched) = state.take() {
                let _ = watched.queued.send(());
            }
        }
    }
}

impl Link {
    /// The generation of the connection this link writes to.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Queues a frame for the writer.
    pub async fn send(&self, frame: Frame) -> Result<(), StompError> {
        let watched = (self.acks.watching.load(Ordering::Acquire)
            && matches!(frame.command, Command::Ack | Command::Commit))
        .then(|| {
            let mut probe = Frame::new(frame.command);
            probe.headers.clone_from(&frame.headers);
            probe
        });
        self.outgoing
            .send(frame)
            .await
            .map_err(|_| StompError::NotConnected)?;
        if let Some(probe) = watched {
            self.acks.queued(&probe);
        }
        Ok(())
    }

    /// Resolves once the acknowledgement of delivery `ack` has been queued for the writer
    /// (a plain ACK, or the COMMIT of the transaction holding the ACK); one watch at a time,
    /// a new one replaces the last. Frames queued before are written first.
    pub fn watch_ack(&self, ack: &str) -> oneshot::Receiver<()> {
        let (queued, rx) = oneshot::channel();
        *lock(&self.acks.state) = Some(Watched {
            ack: ack.to_owned(),
            transaction: None,
            queued,
        });
        self.acks.watching.store(true, Ordering::Release);
        rx
    }

    /// Sends `frame` with a `receipt` header and waits for the matching RECEIPT.
    /// An ERROR frame carrying the receipt id fails with [`StompError::ServerError`]; a dropped
    /// connection with [`StompError::NotConnected`].
    pub async fn call(&self, frame: Frame, timeout: Duration) -> Result<(), StompError> {
        let now = std::future::ready(());
        self.call_frames(Vec::new(), now, frame, Some(timeout))
            .await
    }

    /// Sends `before` in order, then, once `ready` has completed, `last` with a `receipt`
    /// header, and waits for the matching RECEIPT for as long as this connection lives
    /// (`timeout: None`): a slow broker is waited for, never sent the frames twice. Only the
    /// loss of the connection ends the wait early.
    pub async fn call_frames(
        &self,
        before: Vec<Frame>,
        ready: impl Future<Output = ()>,
        last: Frame,
        timeout: Option<Duration>,
    ) -> Result<(), StompError> {
        let (id, rx) = self.receipts.register()?;
        let guard = RemoveOnDrop(&self.receipts, &id);
        for frame in before {
            self.send(frame).await?;
        }
        ready.await;
        self.send(last.header("receipt", id.as_str())).await?;
        let result = match timeout {
            None => rx.await.unwrap_or(Err(StompError::NotConnected)),
            Some(after) => match tokio::time::timeout(after, rx).await {
                Ok(Ok(result)) => result,
                Ok(Err(_)) => Err(StompError::NotConnected),
                Err(_) => Err(StompError::Timeout {
                    what: "a RECEIPT from the STOMP server",
                    after,
                }),
            },
        };
        drop(guard);
        result
    }
}

/// Forgets a receipt waiter when its call ends (timeout or cancellation).
struct RemoveOnDrop<'a>(&'a Receipts, &'a str);
impl Drop for RemoveOnDrop<'_> {
    fn drop(&mut self) {
        if let Some(w) = lock(&self.0.waiters).as_mut() {
            w.remove(self.1);
        }
    }
}

/// The first error of the writer task, for the reader to report.
#[derive(Default)]
struct Failure {
    token: CancellationToken,
    error: Mutex<Option<StompError>>,
}

trait Stream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Stream for T {}
type BoxStream = Box<dyn Stream>;

/// One established STOMP connection (after CONNECTED).
pub struct Connection {
    /// The CONNECTED `server` header.
    pub server: Option<String>,
    /// Negotiated heart-beats in ms: (we send every, we expect the server every); 0 = off.
    pub heart_beat: (u32, u32),
    addr: String,
    link: Link,
    reader: FramedRead<ReadHalf<BoxStream>, StompCodec>,
    writer: JoinHandle<()>,
    failure: Arc<Failure>,
    shutdown: CancellationToken,
}

impl Connection {
    /// Connects, sends CONNECT and waits for CONNECTED, all within `config.connect_timeout`.
    /// An ERROR answer gives [`StompError::Refused`]; a certificate problem [`StompError::Tls`].
    pub async fn open(config: &ClientConfig, generation: u64) -> Result<Connection, StompError> {
        let after = config.connect_timeout;
        tokio::time::timeout(after, Self::open_inner(config, generation))
            .await
            .map_err(|_| StompError::Timeout {
                what: "the STOMP connection (TCP, TLS and CONNECTED)",
                after,
            })?
    }

    async fn open_inner(config: &ClientConfig, generation: u64) -> Result<Connection, StompError> {
        let addr = config.addr();
        let io_err = |source| StompError::Io {
            addr: addr.clone(),
            source,
        };
        let tcp = TcpStream::connect((config.host.as_str(), config.port))
            .await
            .map_err(io_err)?;
        tcp.set_nodelay(true).map_err(io_err)?;
        let host = config.server_name();
        let stream: BoxStream = match &config.tls {
            None => Box::new(tcp),
            Some(tls) => {
                let name = ServerName::try_from(host.to_owned()).map_err(|e| StompError::Tls {
                    host: host.to_owned(),
                    reason: format!("{host:?} is not a valid TLS server name: {e}"),
                })?;
                let connector = tokio_rustls::TlsConnector::from(tls.clone());
                let tls = connector
                    .connect(name, tcp)
                    .await
                    .map_err(|e| tls_error(e, &addr, host))?;
                Box::new(tls)
            }
        };
        let (read, mut write) = tokio::io::split(stream);

        let mut connect = Frame::new(Command::Connect)
            .header("accept-version", "1.2")
            .header("host", host);
        if let Some(login) = &config.login {
            connect = connect.header("login", login.as_str());
        }
        if let Some(passcode) = &config.passcode {
            connect = connect.header("passcode", passcode.as_str());
        }
        let (cx, cy) = config.heart_beat;
        connect = connect.header("heart-beat", format!("{cx},{cy}"));
        debug!(%addr, frame = ?connect, "STOMP >>");
        let mut codec = StompCodec::new(config.max_frame_size);
        let mut buf = BytesMut::new();
        codec.encode(&connect, &mut buf)?;
        write.write_all(&buf).await.map_err(io_err)?;
        write.flush().await.map_err(io_err)?;

        let mut reader = FramedRead::new(read, codec);
        let connected = loop {
            match reader.next().await {
                None => return Err(StompError::ServerClosed { addr }),
                Some(Err(e)) => return Err(read_error(e, &addr)),
                Some(Ok(Item::HeartBeat)) => continue,
                Some(Ok(Item::Frame(frame))) => break frame,
                Some(Ok(Item::Rejected(r))) => {
                    return Err(StompError::Protocol(format!(
                        "the answer to CONNECT cannot be read: {}",
                        r.problem
                    )));
                }
            }
        };
        debug!(%addr, frame = ?connected, "STOMP <<");
        match connected.command {
            Command::Connected => {}
            Command::Error => {
                return Err(StompError::Refused {
                    message: error_message(&connected),
                });
            }
            other => {
                return Err(StompError::Protocol(format!(
                    "expected CONNECTED, got {other}"
                )));
            }
        }
        if connected.get("version") != Some("1.2") {
            warn!(%addr, version = ?connected.get("version"), "server did not confirm STOMP 1.2");
        }
        let (sx, sy) = parse_heart_beat(connected.get("heart-beat"));
        let negotiate = |ours: u32, theirs: u32| {
            if ours == 0 || theirs == 0 {
                0
            } else {
                ours.max(theirs)
            }
        };
        let heart_beat = (negotiate(cx, sy), negotiate(cy, sx));

        let (outgoing, rx) = mpsc::channel(OUTGOING_QUEUE);
        let failure = Arc::new(Failure::default());
        let shutdown = CancellationToken::new();
        let writer = tokio::spawn(write_loop(WriteLoop {
            io: write,
            rx,
            codec: StompCodec::new(config.max_frame_size),
            heart_beat: (heart_beat.0 > 0).then(|| Duration::from_millis(heart_beat.0.into())),
            shutdown: shutdown.clone(),
            failure: failure.clone(),
            addr: addr.clone(),
        }));
        let receipts = Arc::new(Receipts {
            next: AtomicU64::new(1),
            waiters: Mutex::new(Some(HashMap::new())),
        });
        Ok(Connection {
            server: connected.get("server").map(str::to_owned),
            heart_beat,
            addr,
            link: Link {
                generation,
                outgoing,
                receipts,
                acks: Arc::default(),
            },
            reader,
            writer,
            failure,
            shutdown,
        })
    }

    /// The MESSAGE (or other frame) the reader is in the middle of, once its head has been
    /// read: what can be said of a frame whose end never came when the connection stalls or
    /// closes inside it.
    pub fn unfinished_frame(&self) -> Option<crate::codec::Rejected> {
        self.reader.decoder().unfinished()
    }

    /// A handle for writing and receipts.
    pub fn link(&self) -> Link {
        self.link.clone()
    }

    /// The next frame from the server that is not a heart-beat or a RECEIPT (those complete
    /// their waiters; an ERROR with a `receipt-id` fails its waiter and is also returned), or
    /// a frame the decoder skipped ([`Item::Rejected`]). Fails when the server is silent for
    /// twice its heart-beat interval, closes the connection, ends inside a frame, or when the
    /// writer failed. Cancel-safe.
    pub async fn next_frame(&mut self) -> Result<Item, StompError> {
        let deadline = (self.heart_beat.1 > 0)
            .then(|| Duration::from_millis(u64::from(self.heart_beat.1) * 2));
        loop {
            let Connection {
                reader, failure, ..
            } = self;
            let buffered = reader.read_buffer().len();
            let read = async {
                match deadline {
                    None => Some(reader.next().await),
                    Some(after) => tokio::time::timeout(after, reader.next()).await.ok(),
                }
            };
            let item = tokio::select! {
                item = read => item,
                () = failure.token.cancelled() => {
                    return Err(lock(&failure.error).take().unwrap_or(StompError::NotConnected));
                }
            };
            let frame = match item {
                // A partial frame grew: bytes did arrive, the server is alive.
                None if self.reader.read_buffer().len() != buffered => continue,
                None => {
                    return Err(StompError::HeartBeatTimeout {
                        after: deadline.unwrap_or_default(),
                    });
                }
                Some(None) => {
                    return Err(StompError::ServerClosed {
                        addr: self.addr.clone(),
                    });
                }
                Some(Some(Err(e))) => return Err(read_error(e, &self.addr)),
                Some(Some(Ok(Item::HeartBeat))) => {
                    trace!(addr = %self.addr, "heart-beat <<");
                    continue;
                }
                Some(Some(Ok(Item::Frame(frame)))) => frame,
                Some(Some(Ok(rejected @ Item::Rejected(_)))) => return Ok(rejected),
            };
            debug!(addr = %self.addr, ?frame, "STOMP <<");
            match (frame.command, frame.get("receipt-id")) {
                (Command::Receipt, Some(id)) => self.link.receipts.complete(id, Ok(())),
                (Command::Receipt, None) => debug!("RECEIPT without receipt-id"),
                (Command::Error, Some(id)) => {
                    let message = error_message(&frame);
                    self.link
                        .receipts
                        .complete(id, Err(StompError::ServerError { message }));
                    return Ok(Item::Frame(frame));
                }
                _ => return Ok(Item::Frame(frame)),
            }
        }
    }

    /// Lets the writer send what is queued, closes the socket (TLS close_notify), and fails
    /// every receipt waiter.
    pub async fn close(mut self) {
        self.link.receipts.close();
        self.shutdown.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(2), &mut self.writer).await;
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.link.receipts.close();
        self.writer.abort();
    }
}

struct WriteLoop {
    io: WriteHalf<BoxStream>,
    rx: mpsc::Receiver<Frame>,
    codec: StompCodec,
    heart_beat: Option<Duration>,
    shutdown: CancellationToken,
    failure: Arc<Failure>,
    addr: String,
}

/// Upper bound for one batched write; more frames wait for the next round.
const MAX_BATCH: usize = 256 * 1024;

async fn write_loop(mut w: WriteLoop) {
    let mut buf = BytesMut::with_capacity(16 * 1024);
    let result = async {
        loop {
            let idle = async {
                match w.heart_beat {
                    Some(interval) => tokio::time::sleep(interval).await,
                    None => std::future::pending().await,
                }
            };
            let first = tokio::select! {
                biased;
                frame = w.rx.recv() => match frame {
                    Some(frame) => Some(frame),
                    None => break,
                },
                () = w.shutdown.cancelled() => break,
                () = idle => None,
            };
            buf.clear();
            match first {
                Some(frame) => encode(&mut w, &frame, &mut buf),
                None => {
                    trace!(addr = %w.addr, "heart-beat >>");
                    buf.put_u8(b'\n');
                }
            }
            while buf.len() < MAX_BATCH {
                let Ok(frame) = w.rx.try_recv() else { break };
                encode(&mut w, &frame, &mut buf);
            }
            w.io.write_all(&buf).await?;
            w.io.flush().await?;
        }
        w.io.shutdown().await
    }
    .await;
    if let Err(source) = result {
        debug!(addr = %w.addr, error = %source, "STOMP write failed");
        lock(&w.failure.error).get_or_insert(StompError::Io {
            addr: w.addr.clone(),
            source,
        });
        w.failure.token.cancel();
    }
}

fn encode(w: &mut WriteLoop, frame: &Frame, buf: &mut BytesMut) {
    debug!(addr = %w.addr, ?frame, "STOMP >>");
    if let Err(e) = w.codec.encode(frame, buf) {
        error!(addr = %w.addr, error = %e, "dropping a frame that cannot be encoded");
    }
}

fn read_error(e: CodecError, addr: &str) -> StompError {
    match e {
        CodecError::Io(source) => StompError::Io {
            addr: addr.to_owned(),
            source,
        },
        other => StompError::Codec(other),
    }
}

/// Certificate problems become [`StompError::Tls`] (fatal); other TLS failures stay I/O errors.
fn tls_error(e: std::io::Error, addr: &str, host: &str) -> StompError {
    let cert_problem = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .filter(|inner| {
            matches!(
                inner,
                rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented
            )
        });
    match cert_problem {
        Some(inner) => StompError::Tls {
            host: host.to_owned(),
            reason: format!(
                "the server certificate could not be verified ({inner}); set the CA file \
                 (stomp_cafile or cafile) to the certificate that signed the server's certificate, \
                 or to false to skip verification"
            ),
        },
        None => StompError::Io {
            addr: addr.to_owned(),
            source: e,
        },
    }
}

/// The `message` header of an ERROR frame, else its body.
pub(crate) fn error_message(frame: &Frame) -> String {
    match frame.get("message") {
        Some(message) => message.to_owned(),
        None => String::from_utf8_lossy(&frame.body).trim().to_owned(),
    }
}

/// `heart-beat:sx,sy`; missing or malformed means (0, 0).
fn parse_heart_beat(value: Option<&str>) -> (u32, u32) {
    let parsed = value.and_then(|v| {
        let (a, b) = v.split_once(',')?;
        Some((a.trim().parse().ok()?, b.trim().parse().ok()?))
    });
    parsed.unwrap_or_else(|| {
        if let Some(v) = value {
            debug!(value = v, "ignoring malformed heart-beat header");
        }
        (0, 0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heart_beat_header_parsing() {
        assert_eq!(parse_heart_beat(Some("1000,2000")), (1000, 2000));
        assert_eq!(parse_heart_beat(Some(" 0 , 5 ")), (0, 5));
        assert_eq!(parse_heart_beat(Some("x,1")), (0, 0));
        assert_eq!(parse_heart_beat(None), (0, 0));
    }

    /// Records every `poll_write`; never has anything to read.
    struct Recorder(Arc<Mutex<Vec<Vec<u8>>>>);
    impl AsyncRead for Recorder {
        fn poll_read(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            _: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Pending
        }
    }
    impl AsyncWrite for Recorder {
        fn poll_write(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &[u8],
        ) -> std::task::Poll<std::io::Result<usize>> {
            lock(&self.0).push(buf.to_vec());
            std::task::Poll::Ready(Ok(buf.len()))
        }
        fn poll_flush(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }
        fn poll_shutdown(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn writer_sends_queued_frames_in_one_write() {
        let writes = Arc::new(Mutex::new(Vec::new()));
        let (_read, io) = tokio::io::split(Box::new(Recorder(writes.clone())) as BoxStream);
        let (tx, rx) = mpsc::channel(16);
        for i in 0..10 {
            let frame = Frame::new(Command::Ack).header("id", i.to_string());
            tx.try_send(frame).expect("queued");
        }
        drop(tx);
        let run = write_loop(WriteLoop {
            io,
            rx,
            codec: StompCodec::default(),
            heart_beat: None,
            shutdown: CancellationToken::new(),
            failure: Arc::default(),
            addr: "test".into(),
        });
        tokio::time::timeout(Duration::from_secs(5), run)
            .await
            .expect("writer ends when its queue closes");
        let writes = lock(&writes);
        assert_eq!(writes.len(), 1, "{writes:?}");
        let acks = writes[0].windows(4).filter(|w| w == b"ACK\n").count();
        assert_eq!(acks, 10);
    }

    #[test]
    fn config_debug_redacts_passcode() {
        let mut config = ClientConfig::new("broker", 65001);
        config.passcode = Some("hunter2".into());
        let debug = format!("{config:?}");
        assert!(
            !debug.contains("hunter2") && debug.contains("<redacted>"),
            "{debug}"
        );
        assert_eq!(config.server_name(), "broker");
    }
}
