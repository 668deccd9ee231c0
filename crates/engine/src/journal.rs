//! The durable journal of handled invocations, so that a crash or a restart turns neither into
//! a second run nor into a second final reply.
//!
//! For each message id it records how far the host got: `Started` (the handler may have done
//! its outside action), `Answered` (the final reply, kept until the broker confirmed it) and
//! `Done` (reply and ACK confirmed). The runtime consults it when a message arrives: a `Done`
//! message is only acknowledged, an `Answered` one gets its stored reply again, a `Started` one
//! runs again with [`soar_sdk::Context::may_have_run`] set.
//!
//! Storage is one redb file (an embedded, crash-safe store; no server). Lookups are served from
//! memory; writes go to one thread that commits whatever is queued in one transaction (a group
//! commit: one fsync for many messages). `Answered` is durable before the reply is sent;
//! `Started` and `Done` ride along with the next durable commit, or are committed on their own
//! after a second (a message whose `Started` did not reach the disk before a crash comes back
//! marked `redelivered`, which tells the same; a lost `Done` leaves `Answered`, and a message
//! whose reply and ACK were committed is not delivered again).
//! The journal keeps entries for `max_age` and at most `max_entries` (oldest first out), prunes
//! the file and its map in memory every 10,000 writes, and compacts the file at start. Deleting
//! the file is safe: the host then knows nothing of earlier runs, as a host without a journal.
//! A file that cannot be read is moved aside with a warning.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use redb::{Database, Durability, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use std::sync::mpsc::{self, RecvTimeoutError};

use tokio::sync::oneshot;

const TABLE: TableDefinition<&str, &[u8]> = TableDefinition::new("invocations");

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
        source: Box<redb::Error>,
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
    /// Store an entry; `done`, for durable writes, is told once it is on disk.
    Put {
        id: String,
        entry: Entry,
        done: Option<oneshot::Sender<()>>,
    },
    /// Put every earlier write on disk, then say so.
    Flush(oneshot::Sender<()>),
    /// Put every earlier write on disk, close the file, then say so.
    Close(oneshot::Sender<()>),
}

impl Write {
    fn durable(&self) -> bool {
        matches!(
            self,
            Write::Put { done: Some(_), .. } | Write::Flush(_) | Write::Close(_)
        )
    }
}

struct Inner {
    entries: Mutex<HashMap<String, Entry>>,
    writes: Option<mpsc::Sender<Write>>,
    path: Option<PathBuf>,
    limits: Limits,
    /// Writes since the map was last pruned.
    since_prune: AtomicUsize,
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
            .field("entries", &self.entries().len())
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
                since_prune: AtomicUsize::new(0),
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
        let (db, entries) = match load(path, limits) {
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
        let (tx, rx) = mpsc::channel();
        let writer = Writer {
            db,
            path: path.to_owned(),
            limits,
            since_prune: 0,
        };
        std::thread::Builder::new()
            .name("journal".into())
            .spawn(move || writer.run(rx))
            .map_err(|source| JournalError::Io {
                what: "start its writer thread",
                path: path.to_owned(),
                source,
            })?;
        Ok(Journal {
            inner: Arc::new(Inner {
                entries: Mutex::new(entries),
                writes: Some(tx),
                path: Some(path.to_owned()),
                limits,
                since_prune: AtomicUsize::new(0),
            }),
        })
    }

    fn entries(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        self.inner.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The file, if the journal has one.
    pub fn path(&self) -> Option<&Path> {
        self.inner.path.as_deref()
    }

    /// What is known of `id`.
    pub fn get(&self, id: &str) -> Option<Entry> {
        self.entries().get(id).cloned()
    }

    /// How many message ids it holds.
    pub fn len(&self) -> usize {
        self.entries().len()
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

    /// Records the final reply of `id` before it is sent; on disk when this returns.
    pub async fn answered(&self, id: &str, reply: StoredReply) {
        self.put(id, Stage::Answered, Some(reply), true).await;
    }

    /// Records that the reply and ACK of `id` are confirmed (written with the next commit).
    pub fn done(&self, id: &str) {
        drop(self.put(id, Stage::Done, None, false));
    }

    /// Puts every earlier write on disk (at shutdown).
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if let Some(writes) = &self.inner.writes
            && writes.send(Write::Flush(tx)).is_ok()
        {
            let _ = rx.await;
        }
    }

    /// Puts every earlier write on disk and closes the file, so that it can be opened again
    /// at once (a reload of the host); later writes of clones are not journaled.
    pub async fn close(&self) {
        let (tx, rx) = oneshot::channel();
        if let Some(writes) = &self.inner.writes
            && writes.send(Write::Close(tx)).is_ok()
        {
            let _ = rx.await;
        }
    }

    /// Counts a failed attempt to get the reply of `id` confirmed; returns the count.
    pub fn failed_attempt(&self, id: &str) -> u32 {
        let entry = {
            let mut entries = self.entries();
            let Some(entry) = entries.get_mut(id) else {
                return 0;
            };
            entry.attempts += 1;
            entry.clone()
        };
        let attempts = entry.attempts;
        self.write(id, entry, None);
        attempts
    }

    fn put(
        &self,
        id: &str,
        stage: Stage,
        reply: Option<StoredReply>,
        durable: bool,
    ) -> impl Future<Output = ()> + use<> {
        let entry = {
            let mut entries = self.entries();
            let attempts = entries.get(id).map_or(0, |e| e.attempts);
            let entry = Entry {
                stage,
                at: now(),
                reply,
                attempts,
            };
            entries.insert(id.to_owned(), entry.clone());
            if self.inner.since_prune.fetch_add(1, Ordering::Relaxed) >= PRUNE_EVERY {
                self.inner.since_prune.store(0, Ordering::Relaxed);
                prune(&mut entries, self.inner.limits);
            }
            entry
        };
        let (tx, rx) = if durable {
            let (tx, rx) = oneshot::channel();
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        self.write(id, entry, tx);
        async move {
            if let Some(rx) = rx {
                // An error is logged by the writer; going on is better than stalling.
                let _ = rx.await;
            }
        }
    }

    fn write(&self, id: &str, entry: Entry, done: Option<oneshot::Sender<()>>) {
        if let Some(writes) = &self.inner.writes {
            let _ = writes.send(Write::Put {
                id: id.to_owned(),
                entry,
                done,
            });
        }
    }
}

/// Forgets the entries beyond the limits (the writer prunes the file likewise).
fn prune(entries: &mut HashMap<String, Entry>, limits: Limits) {
    for id in expired(entries.iter().map(|(k, v)| (k.as_str(), v.at)), limits) {
        entries.remove(&id);
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

fn store_error(path: &Path, e: impl Into<redb::Error>) -> JournalError {
    match e.into() {
        redb::Error::DatabaseAlreadyOpen => JournalError::InUse {
            path: path.to_owned(),
        },
        other => JournalError::Store {
            path: path.to_owned(),
            source: Box::new(other),
        },
    }
}

/// Opens the file, drops what is beyond the limits, compacts, and reads every entry.
fn load(path: &Path, limits: Limits) -> Result<(Database, HashMap<String, Entry>), JournalError> {
    let err = |e: redb::Error| store_error(path, e);
    let mut db = Database::create(path).map_err(|e| err(e.into()))?;
    let txn = db.begin_write().map_err(|e| err(e.into()))?;
    let mut entries = HashMap::new();
    {
        let mut table = txn.open_table(TABLE).map_err(|e| err(e.into()))?;
        let mut unreadable = Vec::new();
        for item in table.iter().map_err(|e| err(e.into()))? {
            let (k, v) = item.map_err(|e| err(e.into()))?;
            match serde_json::from_slice::<Entry>(v.value()) {
                Ok(entry) => drop(entries.insert(k.value().to_owned(), entry)),
                Err(_) => unreadable.push(k.value().to_owned()),
            }
        }
        let old = expired(entries.iter().map(|(k, v)| (k.as_str(), v.at)), limits);
        for id in old.iter().chain(&unreadable) {
            entries.remove(id);
            table.remove(id.as_str()).map_err(|e| err(e.into()))?;
        }
    }
    txn.commit().map_err(|e| err(e.into()))?;
    db.compact().map_err(|e| err(e.into()))?;
    Ok((db, entries))
}

/// The thread that owns the file.
struct Writer {
    db: Database,
    path: PathBuf,
    limits: Limits,
    since_prune: usize,
}

/// When the last commit held several durable writes (messages are answered concurrently),
/// durable writes are gathered while they keep coming at most this far apart...
const GAP: Duration = Duration::from_micros(200);
/// ...for at most this long, before they are committed. One at a time, each is committed at once.
const GATHER: Duration = Duration::from_millis(1);

/// Adds to `batch` what arrives while writes keep coming (see [`GAP`], [`GATHER`]).
fn gather(rx: &mpsc::Receiver<Write>, batch: &mut Vec<Write>) {
    let until = Instant::now() + GATHER;
    while batch.len() < MAX_BATCH {
        let wait = GAP.min(until.saturating_duration_since(Instant::now()));
        match rx.recv_timeout(wait) {
            Ok(write) => batch.push(write),
            Err(_) => break,
        }
    }
}

/// How long a lazy write (`Started`, `Done`) may wait for a durable one to ride along with.
const LAZY_WRITES: Duration = Duration::from_secs(1);
/// Most writes committed together.
const MAX_BATCH: usize = 4096;
/// Prune the file (and the map in memory) after this many writes.
const PRUNE_EVERY: usize = 10_000;

impl Writer {
    /// Commits what is queued: at once when a write must be durable, else (lazy writes only)
    /// once they have waited [`LAZY_WRITES`] or fill a batch, so that they usually ride along
    /// with the next durable commit.
    fn run(mut self, rx: mpsc::Receiver<Write>) {
        let mut batch: Vec<Write> = Vec::new();
        // Durable writes in the last commit.
        let mut last_durable = 0;
        loop {
            let received = if batch.is_empty() {
                rx.recv().map_err(|_| RecvTimeoutError::Disconnected)
            } else {
                rx.recv_timeout(LAZY_WRITES)
            };
            let closed = matches!(received, Err(RecvTimeoutError::Disconnected));
            let waited = matches!(received, Err(RecvTimeoutError::Timeout));
            if let Ok(write) = received {
                batch.push(write);
            }
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(write) => batch.push(write),
                    Err(_) => break,
                }
            }
            let durable = batch.iter().any(Write::durable);
            if durable && !closed && last_durable > 1 {
                // Under load, a moment's wait gathers the durable writes of many messages
                // into one commit; one at a time, each is committed at once.
                gather(&rx, &mut batch);
            }
            let (closes, rest): (Vec<Write>, Vec<Write>) = std::mem::take(&mut batch)
                .into_iter()
                .partition(|w| matches!(w, Write::Close(_)));
            batch = rest;
            if !batch.is_empty() && (durable || waited || closed || batch.len() >= MAX_BATCH) {
                last_durable = batch.iter().filter(|w| w.durable()).count();
                self.commit_and_tell(std::mem::take(&mut batch), durable);
            }
            if !closes.is_empty() {
                // The file is closed before anyone hears so.
                drop(self);
                for close in closes {
                    if let Write::Close(done) = close {
                        let _ = done.send(());
                    }
                }
                return;
            }
            if closed {
                return;
            }
        }
    }

    fn commit_and_tell(&mut self, batch: Vec<Write>, durable: bool) {
        if let Err(e) = self.commit(&batch, durable) {
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

    fn commit(&mut self, batch: &[Write], durable: bool) -> Result<(), redb::Error> {
        self.since_prune += batch.len();
        let mut txn = self.db.begin_write()?;
        txn.set_durability(if durable {
            Durability::Immediate
        } else {
            Durability::None
        })?;
        {
            let mut table = txn.open_table(TABLE)?;
            for write in batch {
                if let Write::Put { id, entry, .. } = write {
                    let bytes = serde_json::to_vec(entry).unwrap_or_default();
                    table.insert(id.as_str(), bytes.as_slice())?;
                }
            }
            if self.since_prune >= PRUNE_EVERY {
                self.since_prune = 0;
                let mut ages = Vec::new();
                for item in table.iter()? {
                    let (k, v) = item?;
                    let at = serde_json::from_slice::<Entry>(v.value()).map_or(0, |e| e.at);
                    ages.push((k.value().to_owned(), at));
                }
                let old = expired(ages.iter().map(|(k, at)| (k.as_str(), *at)), self.limits);
                for id in old {
                    table.remove(id.as_str())?;
                }
            }
        }
        txn.commit()?;
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

    #[tokio::test]
    async fn entries_survive_a_reopen_and_done_drops_the_reply() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sub/journal.redb");
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
        let journal = wait_open(&path).await;
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

    async fn wait_open(path: &Path) -> Journal {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            match Journal::open(path, Limits::default()) {
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
        let path = dir.path().join("journal.redb");
        let _first = Journal::open(&path, Limits::default()).expect("open");
        let err = Journal::open(&path, Limits::default()).expect_err("in use");
        assert!(err.to_string().contains("journal_path"), "{err}");
    }

    #[tokio::test]
    async fn an_unreadable_file_is_moved_aside() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("journal.redb");
        std::fs::write(&path, b"this is not a redb file, it is garbage".repeat(100)).expect("w");
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
        let journal = Journal::open(&dir.path().join("j.redb"), limits).expect("open");
        for i in 0..PRUNE_EVERY + 50 {
            journal.done(&format!("m{i}"));
        }
        journal.flush().await;
        assert!(journal.len() <= 151, "{} entries kept", journal.len());
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
