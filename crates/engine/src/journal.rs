//! The durable journal of handled invocations, so that a crash or a restart turns neither into
//! a second run nor into a second final reply.
//!
//! For each message id it records how far the host got: `Started` (the handler may have done
//! its outside action), `Answered` (the final reply, kept until the broker confirmed it) and
//! `Done` (reply and ACK confirmed). The runtime consults it when a message arrives: a `Done`
//! message is only acknowledged, an `Answered` one gets its stored reply again, a `Started` one
//! runs again with [`soar_sdk::Context::may_have_run`] set.
//!
//! Storage is one fjall directory (an embedded log-structured store: each write is appended to
//! its write-ahead log; no server). Lookups are served from memory; writes are queued for one
//! thread that appends whatever is queued as one atomic batch (a group commit: one write to the
//! file for many messages). It never waits to gather writes: what queues up while a commit is
//! on its way goes into the next one, so the batches grow with the load and a lone write is
//! committed at once. `Answered` is in the file (handed to the operating system, so that a
//! `kill -9` of the host keeps it) before the reply is sent: the runtime hands the promise to
//! the STOMP committer, which waits for it before it sends the transaction's COMMIT. The file
//! reaches the disk (fdatasync) at most [`SYNC_EVERY`] after a write, and at once on a flush or
//! close: a power loss can forget the last of them, and those messages then run again, marked
//! as re-runs; their replies still take effect once, since a reply and its ACK are one
//! transaction. `Started` and `Done` do not wake the writer: they ride along with the next
//! `Answered`, or are written on their own after a second (a message whose `Started` was lost
//! comes back marked `redelivered`, which tells the same; a lost `Done` leaves `Answered`, and
//! a message whose reply and ACK were committed is not delivered again).
//! The journal keeps entries for `max_age` and at most `max_entries`: each write drops the
//! first-written entries beyond them, from the map in memory and from the store. Deleting the
//! directory is safe: the host then knows nothing of earlier runs, as a host without a journal.
//! A journal that cannot be read (or a file where the directory should be, such as the
//! single-file journal of an earlier version) is moved aside with a warning.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};
use serde::{Deserialize, Serialize};

use tokio::sync::oneshot;

/// How far the host got with one invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Stage {
    /// The handler was started; its outside action may have happened.
    Started,
    /// The final reply is decided (and stored) but not confirmed by the broker.
    Answered,
    /// The final reply and the ACK are confirmed (or the message needed no reply).
    Done,
}

/// A final reply as it goes on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredReply {
    pub destination: String,
    pub correlation_id: Option<String>,
    pub body: String,
}

/// What the journal knows of one message id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub stage: Stage,
    /// Seconds since the Unix epoch of the last change.
    pub at: u64,
    /// The reply, while it is not confirmed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply: Option<StoredReply>,
    /// Failed attempts to get the reply confirmed.
    #[serde(default)]
    pub attempts: u32,
}

/// The first byte of an entry in the binary form (an entry in JSON, as written before, starts
/// with `{`).
const BINARY: u8 = 1;

impl Entry {
    /// The stored form: [`BINARY`], the stage, `at` (u64), `attempts` (u32), a flag byte, then,
    /// if the flag says there is a reply, its destination, correlation id (a flag byte first)
    /// and body, each a u32 length and UTF-8 bytes; integers little-endian. No escaping: a
    /// reply's body is copied as is.
    fn encode(&self) -> Vec<u8> {
        let reply_len = self.reply.as_ref().map_or(0, |r| {
            r.destination.len() + r.correlation_id.as_ref().map_or(0, String::len) + r.body.len()
        });
        let mut out = Vec::with_capacity(32 + reply_len);
        out.push(BINARY);
        out.push(match self.stage {
            Stage::Started => 0,
            Stage::Answered => 1,
            Stage::Done => 2,
        });
        out.extend_from_slice(&self.at.to_le_bytes());
        out.extend_from_slice(&self.attempts.to_le_bytes());
        out.push(u8::from(self.reply.is_some()));
        if let Some(reply) = &self.reply {
            put_text(&mut out, &reply.destination);
            out.push(u8::from(reply.correlation_id.is_some()));
            if let Some(id) = &reply.correlation_id {
                put_text(&mut out, id);
            }
            put_text(&mut out, &reply.body);
        }
        out
    }

    /// Reads the stored form (or the JSON of an earlier host); `None` if it is neither.
    fn decode(bytes: &[u8]) -> Option<Entry> {
        let Some((&BINARY, rest)) = bytes.split_first() else {
            return serde_json::from_slice(bytes).ok();
        };
        let mut input = Reader(rest);
        let stage = match input.take(1)?[0] {
            0 => Stage::Started,
            1 => Stage::Answered,
            2 => Stage::Done,
            _ => return None,
        };
        let at = u64::from_le_bytes(input.take(8)?.try_into().ok()?);
        let attempts = u32::from_le_bytes(input.take(4)?.try_into().ok()?);
        let reply = if input.take(1)?[0] == 0 {
            None
        } else {
            let destination = input.text()?;
            let correlation_id = match input.take(1)?[0] {
                0 => None,
                1 => Some(input.text()?),
                _ => return None,
            };
            let body = input.text()?;
            Some(StoredReply {
                destination,
                correlation_id,
                body,
            })
        };
        if !input.0.is_empty() {
            return None;
        }
        Some(Entry {
            stage,
            at,
            reply,
            attempts,
        })
    }
}

/// Appends `text` as a u32 length and its bytes (a reply is far smaller than 4 GiB: longer text
/// is cut short rather than written wrong).
fn put_text(out: &mut Vec<u8>, text: &str) {
    let len = u32::try_from(text.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&text.as_bytes()[..len as usize]);
}

/// Reads the binary form of an entry.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let (head, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        Some(head)
    }

    fn text(&mut self) -> Option<String> {
        let len = u32::from_le_bytes(self.take(4)?.try_into().ok()?);
        let bytes = self.take(usize::try_from(len).ok()?)?;
        String::from_utf8(bytes.to_vec()).ok()
    }
}

/// Bounds of the journal.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_entries: usize,
    pub max_age: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_entries: 100_000,
            max_age: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error(
        "the journal {path} is in use by another host process; give each host its own \
         journal_path in [resilient] (or its own APP_LOCK_FILE directory)"
    )]
    InUse { path: PathBuf },
    #[error("the journal {path}: {source}")]
    Store {
        path: PathBuf,
        #[source]
        source: Box<fjall::Error>,
    },
    #[error("the journal {path}: cannot {what}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// What the writer thread is asked to do.
enum Write {
    /// Store an entry (encoded); `done`, for urgent writes, is told once it is in the file.
    Put {
        id: String,
        bytes: Vec<u8>,
        done: Option<oneshot::Sender<()>>,
    },
    /// Forget an entry (beyond the limits).
    Remove(String),
    /// Put every earlier write on disk (fdatasync), then say so.
    Flush(oneshot::Sender<()>),
    /// Put every earlier write on disk, close the file, then say so.
    Close(oneshot::Sender<()>),
}

impl Write {
    /// Whether the writer must wake for it.
    fn urgent(&self) -> bool {
        matches!(
            self,
            Write::Put { done: Some(_), .. } | Write::Flush(_) | Write::Close(_)
        )
    }
}

/// The writes queued for the writer thread.
#[derive(Default)]
struct Queue {
    writes: Mutex<Pending>,
    /// Signalled when an urgent write is queued, or [`MAX_LAZY`] lazy ones.
    urgent_queued: Condvar,
}

#[derive(Default)]
struct Pending {
    writes: Vec<Write>,
    /// Whether `writes` holds an urgent one.
    urgent: bool,
    /// The writer is gone (closed): later writes are not journaled.
    closed: bool,
}

impl Queue {
    fn pending(&self) -> MutexGuard<'_, Pending> {
        self.writes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues a write; wakes the writer only for an urgent one. False once the writer is gone.
    fn push(&self, write: Write) -> bool {
        let urgent = write.urgent();
        let mut pending = self.pending();
        if pending.closed {
            return false;
        }
        pending.writes.push(write);
        if urgent && !pending.urgent {
            pending.urgent = true;
            self.urgent_queued.notify_one();
        } else if pending.writes.len() == MAX_LAZY {
            self.urgent_queued.notify_one();
        }
        true
    }

    /// Waits for an urgent write, for [`LAZY_WRITES`] while lazy ones are queued (or until
    /// [`MAX_LAZY`] are), or until `deadline` (the next fdatasync); takes what is queued.
    fn take(&self, deadline: Option<Instant>) -> Vec<Write> {
        let mut pending = self.pending();
        let lazy_until = Instant::now() + LAZY_WRITES;
        while !pending.urgent && pending.writes.len() < MAX_LAZY {
            let until = match (pending.writes.is_empty(), deadline) {
                (true, None) => None,
                (true, Some(d)) => Some(d),
                (false, d) => Some(d.map_or(lazy_until, |d| d.min(lazy_until))),
            };
            let Some(until) = until else {
                pending = (self.urgent_queued.wait(pending)).unwrap_or_else(|p| p.into_inner());
                continue;
            };
            let Some(left) = until.checked_duration_since(Instant::now()) else {
                break;
            };
            let (guard, _) =
                (self.urgent_queued.wait_timeout(pending, left)).unwrap_or_else(|p| p.into_inner());
            pending = guard;
        }
        pending.urgent = false;
        std::mem::take(&mut pending.writes)
    }
}

/// The entries in memory, with their ids in the order they were first written (oldest first).
#[derive(Default)]
struct Known {
    by_id: HashMap<String, Entry>,
    order: VecDeque<String>,
}

impl Known {
    fn new(entries: HashMap<String, Entry>) -> Known {
        let mut order: Vec<(u64, &String)> = entries.iter().map(|(id, e)| (e.at, id)).collect();
        order.sort_unstable();
        let order = order.into_iter().map(|(_, id)| id.clone()).collect();
        Known {
            by_id: entries,
            order,
        }
    }

    /// Sets the entry of `id`, then drops the oldest entries beyond the limits (the first
    /// written go first; an entry changes only while its message is handled, so that is about
    /// the order of age). Returns the ids dropped.
    fn set(&mut self, id: &str, entry: Entry, limits: Limits) -> Vec<String> {
        let oldest_kept = entry.at.saturating_sub(limits.max_age.as_secs());
        if self.by_id.insert(id.to_owned(), entry).is_none() {
            self.order.push_back(id.to_owned());
        }
        let mut dropped = Vec::new();
        while let Some(oldest) = self.order.front() {
            let expired = self.by_id.get(oldest).is_none_or(|e| e.at < oldest_kept);
            if self.order.len() <= limits.max_entries && !expired {
                break;
            }
            let oldest = self.order.pop_front().unwrap_or_default();
            self.by_id.remove(&oldest);
            dropped.push(oldest);
        }
        dropped
    }
}

struct Inner {
    entries: Mutex<Known>,
    writes: Option<Arc<Queue>>,
    path: Option<PathBuf>,
    limits: Limits,
}

impl Drop for Inner {
    /// The last clone is gone: the writer commits what is queued and lets go of the file.
    fn drop(&mut self) {
        if let Some(writes) = &self.writes {
            let (tx, _) = oneshot::channel();
            writes.push(Write::Close(tx));
        }
    }
}

/// The journal; clones share it.
#[derive(Clone)]
pub struct Journal {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal")
            .field("path", &self.inner.path)
            .field("entries", &self.len())
            .finish()
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Journal {
    /// A journal in memory only: the host remembers what it handled while it runs (the
    /// behaviour when `journal_path = false`).
    pub fn in_memory() -> Journal {
        Journal {
            inner: Arc::new(Inner {
                entries: Mutex::default(),
                writes: None,
                path: None,
                limits: Limits::default(),
            }),
        }
    }

    /// Opens (or creates) the journal file, compacts it and loads what it holds. Blocking: call
    /// it before the runtime serves, or from `spawn_blocking`.
    pub fn open(path: &Path, limits: Limits) -> Result<Journal, JournalError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| JournalError::Io {
                what: "create its directory",
                path: path.to_owned(),
                source,
            })?;
        }
        let (store, entries) = match load(path, limits) {
            Ok(loaded) => loaded,
            Err(e) if matches!(e, JournalError::InUse { .. }) => return Err(e),
            Err(e) => {
                let aside = path.with_extension(format!("broken-{}", now()));
                tracing::warn!(
                    "{e}; moved it to {} and starting with an empty journal",
                    aside.display()
                );
                std::fs::rename(path, &aside).map_err(|source| JournalError::Io {
                    what: "move it aside",
                    path: path.to_owned(),
                    source,
                })?;
                load(path, limits)?
            }
        };
        tracing::info!(
            path = %path.display(),
            entries = entries.len(),
            "journal of handled invocations opened"
        );
        let queue = Arc::new(Queue::default());
        let writer = Writer {
            store,
            path: path.to_owned(),
        };
        std::thread::Builder::new()
            .name("journal".into())
            .spawn({
                let queue = queue.clone();
                move || writer.run(&queue)
            })
            .map_err(|source| JournalError::Io {
                what: "start its writer thread",
                path: path.to_owned(),
                source,
            })?;
        Ok(Journal {
            inner: Arc::new(Inner {
                entries: Mutex::new(Known::new(entries)),
                writes: Some(queue),
                path: Some(path.to_owned()),
                limits,
            }),
        })
    }

    fn entries(&self) -> MutexGuard<'_, Known> {
        self.inner.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The file, if the journal has one.
    pub fn path(&self) -> Option<&Path> {
        self.inner.path.as_deref()
    }

    /// What is known of `id`.
    pub fn get(&self, id: &str) -> Option<Entry> {
        self.entries().by_id.get(id).cloned()
    }

    /// How many message ids it holds.
    pub fn len(&self) -> usize {
        self.entries().by_id.len()
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Records that the handler of `id` starts (written with the next commit: if the host dies
    /// before that, the broker's `redelivered` flag still marks the message as a re-run).
    pub fn started(&self, id: &str) {
        drop(self.put(id, Stage::Started, None, false));
    }

    /// Records the final reply of `id` before it is sent; the future completes once the record
    /// is in the file (kept if the host dies; on disk within [`SYNC_EVERY`]).
    pub fn answered(
        &self,
        id: &str,
        reply: StoredReply,
    ) -> impl Future<Output = ()> + Send + use<> {
        self.put(id, Stage::Answered, Some(reply), true)
    }

    /// Records that the reply and ACK of `id` are confirmed (written with the next commit).
    pub fn done(&self, id: &str) {
        drop(self.put(id, Stage::Done, None, false));
    }

    /// Puts every earlier write on disk, fdatasync'ed (at shutdown).
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if let Some(writes) = &self.inner.writes
            && writes.push(Write::Flush(tx))
        {
            let _ = rx.await;
        }
    }

    /// Puts every earlier write on disk and closes the file, so that it can be opened again
    /// at once (a reload of the host); later writes of clones are not journaled.
    pub async fn close(&self) {
        let (tx, rx) = oneshot::channel();
        if let Some(writes) = &self.inner.writes
            && writes.push(Write::Close(tx))
        {
            let _ = rx.await;
        }
    }

    /// Counts a failed attempt to get the reply of `id` confirmed; returns the count.
    pub fn failed_attempt(&self, id: &str) -> u32 {
        let (attempts, bytes) = {
            let mut entries = self.entries();
            let Some(entry) = entries.by_id.get_mut(id) else {
                return 0;
            };
            entry.attempts += 1;
            (entry.attempts, entry.encode())
        };
        self.write(id, bytes, None);
        attempts
    }

    fn put(
        &self,
        id: &str,
        stage: Stage,
        reply: Option<StoredReply>,
        urgent: bool,
    ) -> impl Future<Output = ()> + Send + use<> {
        let (bytes, dropped) = {
            let mut entries = self.entries();
            let attempts = entries.by_id.get(id).map_or(0, |e| e.attempts);
            let entry = Entry {
                stage,
                at: now(),
                reply,
                attempts,
            };
            let bytes = self.inner.writes.as_ref().map(|_| entry.encode());
            (bytes, entries.set(id, entry, self.inner.limits))
        };
        if let Some(writes) = &self.inner.writes {
            for id in dropped {
                writes.push(Write::Remove(id));
            }
        }
        let (tx, rx) = if urgent {
            let (tx, rx) = oneshot::channel();
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        if let Some(bytes) = bytes {
            self.write(id, bytes, tx);
        }
        async move {
            if let Some(rx) = rx {
                // An error is logged by the writer; going on is better than stalling.
                let _ = rx.await;
            }
        }
    }

    fn write(&self, id: &str, bytes: Vec<u8>, done: Option<oneshot::Sender<()>>) {
        if let Some(writes) = &self.inner.writes {
            writes.push(Write::Put {
                id: id.to_owned(),
                bytes,
                done,
            });
        }
    }
}

/// The ids to drop so that what remains is younger than `max_age` and at most `max_entries`.
fn expired<'a>(entries: impl Iterator<Item = (&'a str, u64)>, limits: Limits) -> Vec<String> {
    let oldest_kept = now().saturating_sub(limits.max_age.as_secs());
    let mut by_age: Vec<(u64, &str)> = entries.map(|(id, at)| (at, id)).collect();
    by_age.sort_unstable();
    let over = by_age.len().saturating_sub(limits.max_entries);
    by_age
        .iter()
        .enumerate()
        .take_while(|(i, (at, _))| *i < over || *at < oldest_kept)
        .map(|(_, (_, id))| (*id).to_owned())
        .collect()
}

fn store_error(path: &Path, e: fjall::Error) -> JournalError {
    match e {
        fjall::Error::Locked => JournalError::InUse {
            path: path.to_owned(),
        },
        other => JournalError::Store {
            path: path.to_owned(),
            source: Box::new(other),
        },
    }
}

/// The name of the keyspace holding the entries.
const KEYSPACE: &str = "invocations";

/// Opens the store, reads every entry and drops what is beyond the limits.
fn load(path: &Path, limits: Limits) -> Result<(Store, HashMap<String, Entry>), JournalError> {
    if path.is_file() {
        // A directory is expected; a file there is not ours to read (e.g. an earlier host's
        // single-file journal).
        return Err(JournalError::Io {
            what: "open it",
            path: path.to_owned(),
            source: std::io::Error::other("it is a file, not a journal directory"),
        });
    }
    let err = |e: fjall::Error| store_error(path, e);
    let db = fjall::Database::builder(path)
        .cache_size(1 << 20)
        .worker_threads(1)
        .max_journaling_size(64 << 20)
        .open()
        .map_err(err)?;
    let keyspace = db
        .keyspace(KEYSPACE, || {
            fjall::KeyspaceCreateOptions::default().max_memtable_size(1 << 20)
        })
        .map_err(err)?;
    let mut entries = HashMap::new();
    let mut unreadable = Vec::new();
    for item in keyspace.iter() {
        let (k, v) = item.into_inner().map_err(err)?;
        let id = String::from_utf8_lossy(&k).into_owned();
        match Entry::decode(&v) {
            Some(entry) => drop(entries.insert(id, entry)),
            None => unreadable.push(id),
        }
    }
    let old = expired(entries.iter().map(|(k, v)| (k.as_str(), v.at)), limits);
    let mut batch = db.batch().durability(Some(fjall::PersistMode::SyncData));
    for id in old.iter().chain(&unreadable) {
        entries.remove(id);
        batch.remove(&keyspace, id.as_str());
    }
    batch.commit().map_err(err)?;
    Ok((Store { db, keyspace }, entries))
}

/// The open store.
struct Store {
    db: fjall::Database,
    keyspace: fjall::Keyspace,
}

/// The thread that owns the file.
struct Writer {
    store: Store,
    path: PathBuf,
}

/// How long lazy writes (`Started`, `Done`) may wait for an urgent one to ride along with.
const LAZY_WRITES: Duration = Duration::from_secs(1);
/// Most lazy writes kept waiting.
const MAX_LAZY: usize = 4096;
/// How long a write may stay in the operating system's hands before an fdatasync puts it on
/// disk.
pub const SYNC_EVERY: Duration = Duration::from_secs(1);

impl Writer {
    /// Commits what is queued, again and again, until it is closed: at once when a write is
    /// urgent, else (lazy writes only) once they have waited [`LAZY_WRITES`]; syncs the file
    /// [`SYNC_EVERY`] after the first write it has not synced, and on a flush or close.
    fn run(mut self, queue: &Queue) {
        let mut unsynced_since: Option<Instant> = None;
        loop {
            let sync_due = unsynced_since.map(|t| t + SYNC_EVERY);
            let (closes, batch): (Vec<Write>, Vec<Write>) =
                (queue.take(sync_due).into_iter()).partition(|w| matches!(w, Write::Close(_)));
            let flush = !closes.is_empty() || batch.iter().any(|w| matches!(w, Write::Flush(_)));
            let sync = flush || sync_due.is_some_and(|due| Instant::now() >= due);
            let wrote = batch
                .iter()
                .any(|w| matches!(w, Write::Put { .. } | Write::Remove(_)));
            self.commit_and_tell(batch, sync);
            if sync {
                unsynced_since = None;
            } else if wrote && unsynced_since.is_none() {
                unsynced_since = Some(Instant::now());
            }
            if !closes.is_empty() {
                // Later writes are not journaled; the file is closed before anyone hears so.
                queue.pending().closed = true;
                drop(self);
                for close in closes {
                    if let Write::Close(done) = close {
                        let _ = done.send(());
                    }
                }
                return;
            }
        }
    }

    fn commit_and_tell(&mut self, mut batch: Vec<Write>, sync: bool) {
        if let Err(e) = self.commit(&mut batch, sync) {
            tracing::error!(
                "{}; invocations go on without being journaled",
                store_error(&self.path, e)
            );
        }
        for write in batch {
            if let Write::Put {
                done: Some(done), ..
            }
            | Write::Flush(done) = write
            {
                let _ = done.send(());
            }
        }
    }

    /// Writes the batch in one atomic step, handed to the OS (kept if the process dies, not
    /// if the machine does); `sync`: then everything written so far goes to disk (fdatasync).
    fn commit(&mut self, batch: &mut [Write], sync: bool) -> Result<(), fjall::Error> {
        let Store { db, keyspace } = &self.store;
        let mut txn = db.batch().durability(Some(fjall::PersistMode::Buffer));
        // Only the last write of an id in the batch counts (a message's `Started` and
        // `Answered` often go together): the earlier ones are not stored at all.
        let mut later = HashSet::with_capacity(batch.len());
        let last: Vec<bool> = (batch.iter().rev())
            .map(|write| match write {
                Write::Put { id, .. } | Write::Remove(id) => later.insert(id.as_str()),
                Write::Flush(_) | Write::Close(_) => false,
            })
            .collect();
        drop(later);
        for (write, last) in batch.iter_mut().rev().zip(last) {
            match write {
                Write::Put { id, bytes, .. } if last => {
                    txn.insert(keyspace, std::mem::take(id), std::mem::take(bytes));
                }
                Write::Remove(id) if last => txn.remove(keyspace, std::mem::take(id)),
                _ => {}
            }
        }
        if !txn.is_empty() {
            txn.commit()?;
        }
        if sync {
            db.persist(fjall::PersistMode::SyncData)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply() -> StoredReply {
        StoredReply {
            destination: "acks.201.q".into(),
            correlation_id: Some("c1".into()),
            body: "{}".into(),
        }
    }

    #[test]
    fn the_writer_takes_urgent_writes_at_once_and_wakes_when_a_sync_is_due() {
        let queue = Queue::default();
        // Nothing queued, a sync due: it returns (to sync) instead of waiting for writes.
        assert!(queue.take(Some(Instant::now())).is_empty());
        // Lazy writes go with the due sync.
        queue.push(Write::Remove("a".into()));
        assert_eq!(queue.take(Some(Instant::now())).len(), 1);
        // An urgent write is taken at once, with what was queued before it.
        queue.push(Write::Remove("b".into()));
        let (tx, _rx) = oneshot::channel();
        queue.push(Write::Flush(tx));
        assert_eq!(queue.take(None).len(), 2);
    }

    #[test]
    fn entries_read_back_as_written_and_as_an_earlier_host_wrote_them() {
        let answered = Entry {
            stage: Stage::Answered,
            at: 1_764_900_000,
            reply: Some(StoredReply {
                body: "{\"content\": \"é\\n\\u0000\"}".into(),
                ..reply()
            }),
            attempts: 3,
        };
        let no_correlation = Entry {
            reply: Some(StoredReply {
                correlation_id: None,
                ..reply()
            }),
            ..answered.clone()
        };
        let done = Entry {
            stage: Stage::Done,
            reply: None,
            ..answered.clone()
        };
        for entry in [&answered, &no_correlation, &done] {
            let bytes = entry.encode();
            assert_eq!(Entry::decode(&bytes).as_ref(), Some(entry));
            // Cut anywhere, or with a byte more, it is unreadable (never read wrong).
            for end in 0..bytes.len() {
                assert_eq!(Entry::decode(&bytes[..end]), None, "cut at {end}");
            }
            assert_eq!(Entry::decode(&[bytes.as_slice(), b"x"].concat()), None);
        }
        let json = serde_json::to_vec(&answered).expect("json");
        assert_eq!(Entry::decode(&json), Some(answered));
        assert_eq!(Entry::decode(b"garbage"), None);
    }

    #[tokio::test]
    async fn entries_survive_a_reopen_and_done_drops_the_reply() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sub/journal");
        {
            let journal = Journal::open(&path, Limits::default()).expect("open");
            journal.started("m1");
            journal.started("m2");
            journal.answered("m2", reply()).await;
            journal.started("m3");
            journal.answered("m3", reply()).await;
            journal.done("m3");
            assert_eq!(journal.failed_attempt("m2"), 1);
            journal.started("m4");
            journal.flush().await;
        }
        // The writer thread still holds the file until it drains; wait for it to let go.
        let journal = wait_open(&path, Limits::default()).await;
        assert_eq!(journal.get("m1").map(|e| e.stage), Some(Stage::Started));
        let m2 = journal.get("m2").expect("m2");
        assert_eq!(
            (m2.stage, m2.reply, m2.attempts),
            (Stage::Answered, Some(reply()), 1)
        );
        let m3 = journal.get("m3").expect("m3");
        assert_eq!((m3.stage, m3.reply), (Stage::Done, None));
        assert_eq!(journal.len(), 4);
    }

    async fn wait_open(path: &Path, limits: Limits) -> Journal {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            match Journal::open(path, limits) {
                Ok(j) => return j,
                Err(JournalError::InUse { .. }) if std::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => panic!("{e}"),
            }
        }
    }

    #[tokio::test]
    async fn a_second_opener_is_told_to_use_its_own_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("journal");
        let _first = Journal::open(&path, Limits::default()).expect("open");
        let err = Journal::open(&path, Limits::default()).expect_err("in use");
        assert!(err.to_string().contains("journal_path"), "{err}");
    }

    #[tokio::test]
    async fn an_unreadable_file_is_moved_aside() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("journal");
        std::fs::write(&path, b"this is not a journal, it is garbage".repeat(100)).expect("w");
        let journal = Journal::open(&path, Limits::default()).expect("open");
        assert!(journal.is_empty());
        let aside = std::fs::read_dir(dir.path())
            .expect("dir")
            .filter_map(Result::ok)
            .any(|e| e.file_name().to_string_lossy().contains("broken-"));
        assert!(aside, "the broken file is kept for inspection");
    }

    #[tokio::test]
    async fn a_long_run_keeps_the_map_in_memory_within_the_limits() {
        let dir = tempfile::tempdir().expect("tempdir");
        let limits = Limits {
            max_entries: 100,
            max_age: Duration::from_secs(3600),
        };
        let journal = Journal::open(&dir.path().join("j"), limits).expect("open");
        for i in 0..10_050 {
            journal.done(&format!("m{i}"));
        }
        journal.flush().await;
        assert_eq!(journal.len(), 100);
        assert!(journal.get("m9949").is_none() && journal.get("m9950").is_some());
        drop(journal);
        let journal = wait_open(&dir.path().join("j"), limits).await;
        assert_eq!(journal.len(), 100, "the file holds what the map holds");
    }

    #[test]
    fn the_map_drops_the_first_written_beyond_the_limits_and_the_expired() {
        let limits = Limits {
            max_entries: 3,
            max_age: Duration::from_secs(100),
        };
        let entry = |at| Entry {
            stage: Stage::Done,
            at,
            reply: None,
            attempts: 0,
        };
        let mut known = Known::default();
        for (id, at) in [("a", 1000), ("b", 1001), ("c", 1002)] {
            assert!(known.set(id, entry(at), limits).is_empty());
        }
        // Rewriting an entry keeps its place.
        assert!(known.set("a", entry(1003), limits).is_empty());
        assert_eq!(known.set("d", entry(1004), limits), ["a"]);
        // 200 s later, everything before is too old.
        assert_eq!(known.set("e", entry(1204), limits), ["b", "c", "d"]);
        assert_eq!(known.by_id.len(), 1);
        assert_eq!(known.order, ["e"]);
    }

    #[test]
    fn limits_drop_the_oldest_and_the_expired() {
        let t = now();
        let entries = [("a", t - 10), ("b", t - 5), ("c", t), ("old", t - 100_000)];
        let limits = Limits {
            max_entries: 2,
            max_age: Duration::from_secs(3600),
        };
        let mut gone = expired(entries.iter().map(|(k, at)| (*k, *at)), limits);
        gone.sort();
        assert_eq!(gone, ["a", "old"]);
    }
}
