//! State persistence: the platform's data in a JSON file ([`crate::SimConfig::state_file`]).
//!
//! When a state file is configured, [`crate::Sim::start`] loads it if it exists (and writes it
//! at once otherwise, so that an unwritable path is an error at start, not later), then a
//! background writer saves the state after every change: a change wakes it, it waits
//! [`DEBOUNCE`] for more, serializes the state and writes it atomically (a temporary file in
//! the same directory, fsync, rename; mode 0600 on Unix, since threat service passwords are in
//! it) unless the bytes are those it wrote last. [`crate::Sim::shutdown`],
//! [`crate::Sim::flush_state`] and dropping the last handle write it synchronously.
//!
//! Saved: message destinations (with their `users`/`api_keys` grants), functions, rules,
//! imported objects and the imports themselves (so `/functions`, `/workflows`, `/types/…/fields`,
//! custom artifact types and the export answer the same), incidents, notes, artifacts (with
//! hits), the action status log, workflow instances, workspaces, threat services and their
//! lookups, the id counters (so ids are never reused), and the embedded broker's queues (as a
//! persistent broker keeps them: the messages waiting and those in flight, which come back
//! `redelivered`, each with its invocation's events, so that replies after the restart are
//! matched and a second final reply is still a violation). A change of the queues wakes the
//! writer as a change of the platform does. Not saved: REST sessions and log, STOMP connections
//! and open transactions (rolled back, as a broker does), rule runs in progress. What was
//! running when the state was saved is marked as interrupted when it is loaded (workflow
//! instances `terminated`, pending action status entries `Error`, pending threat lookups
//! failed); the messages such runs sent stay queued and their replies are recorded on their
//! invocations ([`crate::Sim::invocation`]).
//!
//! A file that cannot be read or parsed, or that belongs to another org, is a
//! [`SimError::State`] naming the file; it is never overwritten in that case.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::SimError;
use crate::broker::{Broker, Mangle, QueuedMessage};
use crate::imports::{ImportRecord, ObjectStore};
use crate::invocation::{InvocationEvent, InvocationInner};
use crate::messages::now_ms;
use crate::org::Workspace;
use crate::platform::{FunctionDef, MessageDestination, Platform, PlatformState, Rule};
use crate::rules::{ActionState, ActionStatus};
use crate::threat::{RegisteredThreatService, ThreatLookup, ThreatLookupOutcome};

/// The `format` of a state file.
pub const FORMAT: &str = "soar-sim-state";
/// The `version` of the state file format written.
pub const VERSION: u32 = 1;
/// How long the writer waits after a change for more changes.
pub const DEBOUNCE: Duration = Duration::from_millis(50);

const INTERRUPTED: &str = "interrupted: the simulated platform was restarted";

/// Everything a state file holds.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Snapshot {
    /// Always [`FORMAT`].
    pub format: String,
    /// [`VERSION`].
    pub version: u32,
    /// The org the state belongs to.
    pub org_id: i64,
    /// When it was written, ms since the epoch.
    pub saved: i64,
    /// The shared id sequence.
    pub next_id: i64,
    /// The configuration import id sequence.
    pub next_import_id: i64,
    /// The invocation counter (`invid:<n>` correlation ids, message ids).
    pub invocation_counter: u64,
    /// Message destinations with their grants.
    pub destinations: Vec<MessageDestination>,
    /// Functions.
    pub functions: Vec<FunctionDef>,
    /// Rules.
    pub rules: Vec<Rule>,
    /// Imported objects, verbatim, by kind.
    pub store: ObjectStore,
    /// Every posted import.
    pub imports: Vec<ImportRecord>,
    /// Incidents.
    pub incidents: Vec<Value>,
    /// Notes by incident id.
    pub notes: BTreeMap<i64, Vec<Value>>,
    /// Artifacts by incident id.
    pub artifacts: BTreeMap<i64, Vec<Value>>,
    /// The action status log.
    pub action_status: Vec<ActionStatus>,
    /// Workflow instances.
    pub workflow_instances: Vec<Value>,
    /// Workspaces other than the default one.
    pub workspaces: Vec<Workspace>,
    /// Registered threat services (with their passwords).
    pub threat_services: Vec<RegisteredThreatService>,
    /// Threat lookups.
    pub threat_lookups: Vec<ThreatLookup>,
    /// The embedded broker's queues, in the order they are delivered.
    pub queued: Vec<SavedMessage>,
}

/// A message on a queue of the embedded broker, as the state file keeps it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SavedMessage {
    /// The queue, e.g. `actions.201.fn_hello`.
    pub queue: String,
    /// Its `message-id`.
    pub message_id: String,
    /// Its headers (reply-to, correlation-id, ...).
    pub headers: Vec<(String, String)>,
    /// The body, when it is UTF-8.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// The body in base64, when it is not UTF-8.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body_base64: Option<String>,
    /// Whether it goes out with `redelivered:true` (it was delivered before).
    pub redelivered: bool,
    /// How it is broken on the wire (fault injection).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mangle: Option<Mangle>,
    /// Its invocation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invocation: Option<SavedInvocation>,
}

/// What the simulator knew of a queued message's invocation.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SavedInvocation {
    /// Its `correlation-id`.
    pub correlation_id: String,
    /// The queue its replies go to.
    pub reply_queue: String,
    /// Its events so far.
    pub events: Vec<InvocationEvent>,
}

impl SavedMessage {
    /// `msg`, waiting on `queue`; `redelivered` if it goes back from a consumer.
    pub(crate) fn of(queue: &str, msg: &QueuedMessage, redelivered: bool) -> SavedMessage {
        let (body, body_base64) = match std::str::from_utf8(&msg.body) {
            Ok(text) => (Some(text.to_string()), None),
            Err(_) => (
                None,
                Some(base64::engine::general_purpose::STANDARD.encode(&msg.body)),
            ),
        };
        SavedMessage {
            queue: queue.to_string(),
            message_id: msg.message_id.clone(),
            headers: msg.headers.clone(),
            body,
            body_base64,
            redelivered: redelivered || msg.redelivered,
            mangle: msg.mangle,
            invocation: msg.invocation.as_ref().map(|inv| SavedInvocation {
                correlation_id: inv.correlation_id().to_string(),
                reply_queue: inv.reply_queue.clone(),
                events: inv.events(),
            }),
        }
    }

    /// The message again, with its invocation, and its queue.
    pub(crate) fn into_queued(self) -> Result<(String, QueuedMessage), String> {
        let body = match (self.body, self.body_base64) {
            (Some(text), _) => Bytes::from(text),
            (None, Some(b64)) => base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map(Bytes::from)
                .map_err(|e| format!("message {}: body_base64: {e}", self.message_id))?,
            (None, None) => Bytes::new(),
        };
        let invocation = self.invocation.map(|i| {
            InvocationInner::restored(
                i.correlation_id,
                self.message_id.clone(),
                self.queue.clone(),
                i.reply_queue,
                i.events,
            )
        });
        let msg = QueuedMessage {
            message_id: self.message_id,
            headers: self.headers,
            body,
            invocation,
            redelivered: self.redelivered,
            mangle: self.mangle,
        };
        Ok((self.queue, msg))
    }
}

impl Snapshot {
    /// A copy of the persisted parts of the state, with the broker's `queued` messages.
    pub fn of(
        st: &PlatformState,
        org_id: i64,
        invocation_counter: u64,
        queued: Vec<SavedMessage>,
    ) -> Snapshot {
        Snapshot {
            format: FORMAT.into(),
            version: VERSION,
            org_id,
            saved: now_ms() as i64,
            next_id: st.next_id,
            next_import_id: st.next_import_id,
            invocation_counter,
            destinations: st.destinations.values().cloned().collect(),
            functions: st.functions.values().cloned().collect(),
            rules: st.rules.values().cloned().collect(),
            store: st.store.clone(),
            imports: st.imports.clone(),
            incidents: st.incidents.values().cloned().collect(),
            notes: st.notes.clone(),
            artifacts: st.artifacts.clone(),
            action_status: st.action_status.clone(),
            workflow_instances: st.workflow_instances.values().cloned().collect(),
            workspaces: st.workspaces.values().cloned().collect(),
            threat_services: st.threat_services.values().cloned().collect(),
            threat_lookups: st.threat_lookups.clone(),
            queued,
        }
    }

    /// Replaces the persisted parts of `st` with this snapshot; what was running is marked as
    /// interrupted. Errors name what is inconsistent.
    pub fn restore(self, st: &mut PlatformState) -> Result<(), String> {
        let id_of = |v: &Value, what: &str| {
            v.get("id")
                .and_then(Value::as_i64)
                .ok_or_else(|| format!("{what} without an integer id: {v}"))
        };
        // Ids and counters must leave room to grow (and stay exact in JSON numbers).
        const MAX_ID: i64 = 1 << 52;
        let in_range = |n: i64| (0..=MAX_ID).contains(&n);
        for (what, n) in [
            ("next_id", self.next_id),
            ("next_import_id", self.next_import_id),
            (
                "invocation_counter",
                i64::try_from(self.invocation_counter).unwrap_or(i64::MAX),
            ),
        ] {
            if !in_range(n) {
                return Err(format!("{what} {n} is out of range (0 to {MAX_ID})"));
            }
        }
        if let Some(w) = self.workspaces.iter().find(|w| !in_range(w.id)) {
            return Err(format!("workspace id {} is out of range", w.id));
        }
        if let Some(t) = self.threat_services.iter().find(|t| !in_range(t.id)) {
            return Err(format!("threat service id {} is out of range", t.id));
        }
        let mut incidents = BTreeMap::new();
        for inc in self.incidents {
            incidents.insert(id_of(&inc, "an incident")?, inc);
        }
        let mut instances = BTreeMap::new();
        for mut wi in self.workflow_instances {
            let id = id_of(&wi, "a workflow instance")?;
            if wi["status"] == "running" {
                wi["status"] = json!("terminated");
                wi["terminate_reason"] = json!(INTERRUPTED);
                wi["end_date"] = json!(now_ms() as i64);
            }
            instances.insert(id, wi);
        }
        let mut action_status = self.action_status;
        for a in action_status.iter_mut() {
            if a.state == ActionState::Pending {
                a.state = ActionState::Error;
                a.message = INTERRUPTED.into();
            }
        }
        let mut lookups = self.threat_lookups;
        for l in lookups.iter_mut() {
            if l.outcome == ThreatLookupOutcome::Pending {
                l.outcome = ThreatLookupOutcome::Failed {
                    error: INTERRUPTED.into(),
                };
                l.finished = Some(now_ms() as i64);
            }
        }
        st.destinations = self.destinations.into_iter().map(|d| (d.id, d)).collect();
        st.functions = self
            .functions
            .into_iter()
            .map(|f| (f.name.clone(), f))
            .collect();
        st.rules = self.rules.into_iter().map(|r| (r.id, r)).collect();
        st.store = self.store;
        st.imports = self.imports;
        st.incidents = incidents;
        st.notes = self.notes;
        st.artifacts = self.artifacts;
        st.action_status = action_status;
        st.workflow_instances = instances;
        st.workspaces = self.workspaces.into_iter().map(|w| (w.id, w)).collect();
        st.threat_services = self
            .threat_services
            .into_iter()
            .map(|s| (s.service.name.clone(), s))
            .collect();
        st.threat_lookups = lookups;
        st.next_id = self.next_id.max(st.next_id);
        st.next_import_id = self.next_import_id.max(st.next_import_id);
        Ok(())
    }
}

/// Writes the state file.
pub(crate) struct Persister {
    path: PathBuf,
    platform: Arc<Platform>,
    counter: Arc<AtomicU64>,
    /// The embedded broker, whose queues are saved too.
    broker: OnceLock<Arc<Broker>>,
    /// The queues loaded, saved as they were until the broker is attached.
    loaded: Mutex<Vec<SavedMessage>>,
    /// The bytes written last (also serializes writers).
    last: Mutex<Option<Vec<u8>>>,
}

impl Persister {
    pub(crate) fn new(
        path: PathBuf,
        platform: Arc<Platform>,
        counter: Arc<AtomicU64>,
    ) -> Persister {
        Persister {
            path,
            platform,
            counter,
            broker: OnceLock::new(),
            loaded: Mutex::new(Vec::new()),
            last: Mutex::new(None),
        }
    }

    /// Saves `broker`'s queues from now on.
    pub(crate) fn attach(&self, broker: Arc<Broker>) {
        let _ = self.broker.set(broker);
        self.loaded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    fn error(&self, message: impl Into<String>) -> SimError {
        SimError::State {
            path: self.path.clone(),
            message: message.into(),
        }
    }

    /// Loads the state file into the platform if it exists; returns the broker's queued
    /// messages it holds (none without a file).
    pub(crate) fn load(&self) -> Result<Vec<(String, QueuedMessage)>, SimError> {
        let bytes = match std::fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(self.error(format!("cannot be read: {e}"))),
        };
        let value: Value = serde_json::from_slice(&bytes)
            .map_err(|e| self.error(format!("is not valid JSON (a corrupt state file?): {e}")))?;
        if value.get("format").and_then(Value::as_str) != Some(FORMAT) {
            return Err(self.error(format!(
                "is not a soar-sim state file (no \"format\": \"{FORMAT}\")"
            )));
        }
        let mut snap: Snapshot = serde_json::from_value(value)
            .map_err(|e| self.error(format!("is not a valid soar-sim state: {e}")))?;
        if snap.version != VERSION {
            return Err(self.error(format!(
                "has version {}; this simulator reads version {VERSION}",
                snap.version
            )));
        }
        if snap.org_id != self.platform.org_id {
            return Err(self.error(format!(
                "belongs to org {}, but the simulator runs org {}",
                snap.org_id, self.platform.org_id
            )));
        }
        let counter = snap.invocation_counter;
        let invalid = |m| self.error(format!("is not a valid soar-sim state: {m}"));
        // Validation happens before anything is assigned: an error leaves the state empty.
        let saved = std::mem::take(&mut snap.queued);
        let queued = saved
            .iter()
            .cloned()
            .map(SavedMessage::into_queued)
            .collect::<Result<Vec<_>, _>>()
            .map_err(invalid)?;
        snap.restore(&mut self.platform.state_quiet())
            .map_err(invalid)?;
        self.counter.fetch_max(counter, Ordering::SeqCst);
        *self.loaded.lock().unwrap_or_else(|p| p.into_inner()) = saved;
        tracing::info!(
            "soar-sim: state loaded from {} ({} queued messages)",
            self.path.display(),
            queued.len()
        );
        Ok(queued)
    }

    /// Writes the state if it changed since the last write; true if it wrote.
    pub(crate) fn flush(&self) -> Result<bool, SimError> {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let queued = match self.broker.get() {
            Some(b) => b.saved_messages(),
            None => self
                .loaded
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        };
        let mut snap = {
            let st = self.platform.state_quiet();
            Snapshot::of(
                &st,
                self.platform.org_id,
                self.counter.load(Ordering::SeqCst),
                queued,
            )
        };
        // Compare without the timestamp, which always changes.
        snap.saved = 0;
        let bytes = serde_json::to_vec_pretty(&snap)
            .map_err(|e| self.error(format!("cannot be serialized: {e}")))?;
        if last.as_deref() == Some(bytes.as_slice()) {
            return Ok(false);
        }
        snap.saved = now_ms() as i64;
        let to_write = serde_json::to_vec_pretty(&snap)
            .map_err(|e| self.error(format!("cannot be serialized: {e}")))?;
        write_atomically(&self.path, &to_write)
            .map_err(|e| self.error(format!("cannot be written: {e}")))?;
        *last = Some(bytes);
        Ok(true)
    }
}

/// Writes `bytes` to a temporary file next to `path`, syncs it and renames it over `path`.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "state".into());
    let tmp = dir.join(format!(".{name}.tmp-{}", uuid::Uuid::new_v4().simple()));
    let result = (|| {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            opts.mode(0o600);
        }
        let mut f = opts.open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Starts the background writer: after each change of the platform or the broker's queues
/// (debounced), the state is written.
pub(crate) fn spawn_writer(persister: Arc<Persister>, cancel: CancellationToken) {
    let mut queues = persister.broker.get().map(|b| b.watch());
    tokio::spawn(async move {
        let queues_changed = async |rx: &mut Option<tokio::sync::watch::Receiver<u64>>| {
            if let Some(rx) = rx
                && rx.changed().await.is_ok()
            {
                return;
            }
            futures::future::pending::<()>().await
        };
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = persister.platform.changed.notified() => {}
                _ = queues_changed(&mut queues) => {}
            }
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(DEBOUNCE) => {}
            }
            let p = persister.clone();
            match tokio::task::spawn_blocking(move || p.flush()).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::warn!("soar-sim: {e}"),
                Err(e) => tracing::warn!("soar-sim: the state writer failed: {e}"),
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshots_round_trip_and_mark_running_work_interrupted() {
        let mut st = PlatformState::default();
        let id = st.create_incident(201, &json!({"name": "i"})).unwrap()["id"]
            .as_i64()
            .unwrap();
        st.add_note(id, &json!({"text": "n"})).unwrap();
        st.workflow_instances
            .insert(5, json!({"id": 5, "status": "running"}));
        let snap = Snapshot::of(&st, 201, 7, Vec::new());
        let text = serde_json::to_string(&snap).unwrap();
        let back: Snapshot = serde_json::from_str(&text).unwrap();
        let mut restored = PlatformState::default();
        back.restore(&mut restored).unwrap();
        assert_eq!(restored.incidents, st.incidents);
        assert_eq!(restored.notes, st.notes);
        assert_eq!(restored.workflow_instances[&5]["status"], "terminated");
        assert_eq!(restored.next_id, st.next_id);

        let bad = Snapshot {
            incidents: vec![json!({"name": "no id"})],
            ..Snapshot::default()
        };
        assert!(bad.restore(&mut PlatformState::default()).is_err());
        let bad = Snapshot {
            next_id: i64::MAX,
            ..Snapshot::default()
        };
        let e = bad.restore(&mut PlatformState::default()).unwrap_err();
        assert!(e.contains("next_id"), "{e}");
        let bad = Snapshot {
            invocation_counter: u64::MAX,
            ..Snapshot::default()
        };
        assert!(bad.restore(&mut PlatformState::default()).is_err());
    }

    #[test]
    fn atomic_writes_replace_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.json");
        write_atomically(&path, b"one").unwrap();
        write_atomically(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        assert!(write_atomically(&dir.path().join("missing/s.json"), b"x").is_err());
    }
}

/// The directory kept beside state file `file` for the simulator's certificates and ports:
/// `<file>.d`.
pub fn kept_dir(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".d");
    PathBuf::from(name)
}

/// The ports of the last run with a state file (`ports.json` in [`kept_dir`]).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ports {
    /// The HTTPS REST port.
    pub rest: Option<u16>,
    /// The embedded broker's STOMP port.
    pub stomp: Option<u16>,
}

impl Ports {
    const FILE: &'static str = "ports.json";

    /// The saved ports; none when there is no readable file (a first run).
    pub fn load(dir: &Path) -> Ports {
        std::fs::read(dir.join(Self::FILE))
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default()
    }

    /// Saves the ports for the next run.
    pub fn save(&self, dir: &Path) -> Result<(), SimError> {
        let text = json!({"rest": self.rest, "stomp": self.stomp}).to_string();
        write_atomically(&dir.join(Self::FILE), text.as_bytes())?;
        Ok(())
    }
}
