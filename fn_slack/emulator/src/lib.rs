//! A Slack Web API emulator, for tests and local runs of the Slack integration.
//!
//! [`SlackEmulator::start`] serves the methods the integration and Slack's own SDKs use over
//! plain HTTP on 127.0.0.1, at `http://127.0.0.1:<port>/api/<method>`, so that a client's base
//! URL (`slack_sdk.WebClient(base_url=...)`, `[fn_slack] api_url`) is all that changes:
//!
//! - `chat.postMessage`: channel by ID or name (`#name` too), `ts` unique and increasing per
//!   channel, threads (`thread_ts`; a reply's ts is taken as its parent's, an unknown one is
//!   `thread_not_found`), `reply_broadcast`, `no_text`, `msg_too_long`, `is_archived`,
//!   `not_in_channel`;
//! - `chat.getPermalink` (`p` + ts without the dot; replies add `?thread_ts=…&cid=…`);
//! - `auth.test`, `api.test`, `conversations.list` (types, exclude_archived, cursor paging),
//!   `conversations.history` and `conversations.replies` (`limit`, `has_more`);
//! - message metadata: `metadata` (`event_type`, `event_payload`) kept with each post, and
//!   returned by `conversations.history`/`replies` only with `include_all_metadata`;
//! - auth as Slack does it: `Authorization: Bearer <token>` or a `token` argument (query or
//!   form); `not_authed`, `invalid_auth`, `token_revoked`;
//! - bodies as JSON or form-encoded, arguments in the query string too; malformed bodies get
//!   `invalid_json`, `invalid_form_data`, `invalid_charset` or `invalid_post_type`;
//! - fault injection: HTTP 429 with `Retry-After` ([`SlackEmulator::rate_limit_next`], the
//!   request is not processed), any `{"ok": false, "error": …}` ([`SlackEmulator::fail_next`]),
//!   answers held back after the call took effect ([`SlackEmulator::hold_answers`]);
//! - inspection: each channel's messages as a person sees them and its threads
//!   ([`SlackEmulator::channel`], [`SlackEmulator::transcript`]), every request
//!   ([`SlackEmulator::requests`]), and the same as JSON at `GET /emulator/state`.
//!
//! It registers itself with the simulated platform's emulator registry ([`soar_sim::emulator`])
//! as "Slack", for `fn_slack`: started on a free port with [`SlackConfig::default`], its
//! app.config section is `[fn_slack]` (`api_token`, `username`, `channel`, `api_url`).
//!
//! Choices where Slack documents nothing: an unknown `thread_ts` is `thread_not_found`; message
//! errors are checked in the order auth, channel, archived, membership, text, thread.

mod args;

use std::collections::{BTreeMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use serde::Serialize;
use serde_json::{Map, Value, json};
use soar_sim::SimError;
use soar_sim::emulator::{Emulator, EmulatorRegistration, StartFuture};
use tokio::sync::oneshot;

pub use args::ArgsError;

/// Longest message text Slack accepts (`msg_too_long` beyond).
pub const MAX_TEXT: usize = 40_000;

/// Settings of a [`SlackEmulator`].
#[derive(Debug, Clone)]
pub struct SlackConfig {
    /// TCP port on 127.0.0.1 (0: any free port).
    pub port: u16,
    /// Tokens that authenticate (`xoxb-…`).
    pub tokens: Vec<String>,
    /// Tokens that answer `token_revoked`.
    pub revoked_tokens: Vec<String>,
    /// Workspace (team) name and its `<domain>.slack.com`.
    pub team: String,
    pub domain: String,
    /// Channels present at start.
    pub channels: Vec<ChannelSpec>,
}

/// A channel to create.
#[derive(Debug, Clone)]
pub struct ChannelSpec {
    pub name: String,
    pub is_private: bool,
    pub is_archived: bool,
    /// Whether the app's bot user is a member (posting needs it).
    pub is_member: bool,
}

impl ChannelSpec {
    /// A public channel the bot is a member of.
    pub fn public(name: &str) -> Self {
        ChannelSpec {
            name: name.to_string(),
            is_private: false,
            is_archived: false,
            is_member: true,
        }
    }
}

/// The token [`SlackConfig::default`] accepts.
pub const DEFAULT_TOKEN: &str = "xoxb-0000000001-sim-emulator-token";

impl Default for SlackConfig {
    fn default() -> Self {
        SlackConfig {
            port: 0,
            tokens: vec![DEFAULT_TOKEN.to_string()],
            revoked_tokens: Vec::new(),
            team: "SOAR Simulated Workspace".into(),
            domain: "soar-sim".into(),
            channels: vec![
                ChannelSpec::public("general"),
                ChannelSpec::public("incidents"),
                ChannelSpec::public("random"),
                ChannelSpec {
                    is_member: false,
                    ..ChannelSpec::public("no-bot-here")
                },
                ChannelSpec {
                    is_archived: true,
                    ..ChannelSpec::public("old-incidents")
                },
            ],
        }
    }
}

/// Errors starting the emulator.
#[derive(Debug, thiserror::Error)]
pub enum SlackEmulatorError {
    #[error("cannot listen on 127.0.0.1:{port}: {source}")]
    Bind { port: u16, source: std::io::Error },
}

/// One stored message.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SlackMessage {
    pub ts: String,
    /// The parent's ts for a thread reply (and the parent's own ts once it has replies).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thread_ts: Option<String>,
    pub text: String,
    /// `bot_message`, or `thread_broadcast` for a reply also shown in the channel.
    pub subtype: String,
    pub username: Option<String>,
    pub reply_broadcast: bool,
    /// Every argument of the call except the token (`mrkdwn`, `parse`, `link_names`, …).
    pub args: Map<String, Value>,
}

impl SlackMessage {
    /// Whether it is a reply in a thread (not a thread's parent).
    pub fn is_reply(&self) -> bool {
        self.thread_ts.as_deref().is_some_and(|t| t != self.ts)
    }

    /// Whether an argument is on (`true`, `"true"`, `1` or `"1"`, as Slack reads form and JSON).
    fn flag(&self, name: &str) -> bool {
        match self.args.get(name) {
            Some(Value::Bool(b)) => *b,
            Some(Value::Number(n)) => n.as_i64() == Some(1),
            Some(Value::String(s)) => matches!(s.to_ascii_lowercase().as_str(), "true" | "1"),
            _ => false,
        }
    }

    /// Who the message notifies, as Slack decides: `<!channel>`, `<!here>`, `<!everyone>` and
    /// `<@U…>` always; the plain words `@channel`, `@here`, `@everyone` and `@name` only with
    /// `parse=full` or `link_names=true` (Slack's documented behaviour). Each as `@channel`,
    /// `@here`, `@everyone` or `@<user>`.
    pub fn mentions(&self) -> Vec<String> {
        let mut found = Vec::new();
        let mut rest = self.text.as_str();
        while let Some(open) = rest.find('<') {
            let Some(close) = rest[open..].find('>') else {
                break;
            };
            let inner = &rest[open + 1..open + close];
            let target = inner.split('|').next().unwrap_or_default();
            if let Some(special) = target.strip_prefix('!') {
                if matches!(special, "channel" | "here" | "everyone") {
                    found.push(format!("@{special}"));
                }
            } else if let Some(user) = target.strip_prefix('@') {
                found.push(format!("@{user}"));
            }
            rest = &rest[open + close + 1..];
        }
        let parses = self.args.get("parse").and_then(Value::as_str) == Some("full");
        if parses || self.flag("link_names") {
            for word in self
                .text
                .split(|c: char| c.is_whitespace() || ",.;:!?()".contains(c))
            {
                if let Some(name) = word.strip_prefix('@').filter(|n| {
                    !n.is_empty() && n.chars().all(|c| c.is_alphanumeric() || "._-".contains(c))
                }) {
                    found.push(format!("@{name}"));
                }
            }
        }
        found
    }

    /// The text as Slack shows it: entities decoded, `<url|text>` as its text, `<url>` as the
    /// URL, `<!channel>` as `@channel`, `<@U1>` as `@U1`.
    pub fn rendered(&self) -> String {
        let mut out = String::new();
        let mut rest = self.text.as_str();
        while let Some(open) = rest.find('<') {
            out.push_str(&rest[..open]);
            let Some(close) = rest[open..].find('>') else {
                out.push_str(&rest[open..]);
                rest = "";
                break;
            };
            let inner = &rest[open + 1..open + close];
            let (target, label) = inner.split_once('|').unwrap_or((inner, ""));
            out.push_str(match (target.chars().next(), label) {
                (Some('!' | '@'), _) => "@",
                _ => "",
            });
            out.push_str(if !label.is_empty() {
                label
            } else {
                target.trim_start_matches(['!', '@'])
            });
            rest = &rest[open + close + 1..];
        }
        out.push_str(rest);
        out.replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&")
    }

    /// The `metadata` the post carried (an object, or JSON text as in a form post).
    fn metadata(&self) -> Option<Value> {
        match self.args.get("metadata")? {
            Value::String(text) => serde_json::from_str(text).ok(),
            v @ Value::Object(_) => Some(v.clone()),
            _ => None,
        }
    }

    fn api_json(&self, bot_id: &str) -> Value {
        let mut m = json!({
            "type": "message",
            "subtype": "bot_message",
            "text": self.text,
            "username": self.username,
            "bot_id": bot_id,
            "ts": self.ts,
        });
        if let Some(t) = &self.thread_ts {
            m["thread_ts"] = json!(t);
        }
        if self.reply_broadcast {
            m["subtype"] = json!("thread_broadcast");
        }
        m
    }
}

/// A channel as a person sees it: the channel's history and each thread.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChannelView {
    pub id: String,
    pub name: String,
    pub is_private: bool,
    pub is_archived: bool,
    pub is_member: bool,
    /// Top-level messages and broadcast replies, oldest first.
    pub messages: Vec<SlackMessage>,
    /// Replies by parent ts, oldest first.
    pub threads: BTreeMap<String, Vec<SlackMessage>>,
}

/// One HTTP request the emulator answered.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecordedRequest {
    pub method: String,
    /// HTTP status sent.
    pub status: u16,
    /// `ok` of the answer (false for a 429).
    pub ok: bool,
    /// The error code, if any.
    pub error: Option<String>,
    /// `bearer`, `form` (a `token` argument) or `none`.
    pub auth: &'static str,
    /// The request's content type.
    pub content_type: Option<String>,
}

#[derive(Debug)]
struct Channel {
    id: String,
    name: String,
    is_private: bool,
    is_archived: bool,
    is_member: bool,
    created: i64,
    /// Every message in posting order.
    messages: Vec<SlackMessage>,
    last_ts_micros: u64,
}

#[derive(Debug)]
enum Fault {
    RateLimit { retry_after: u64 },
    Error { code: String },
}

#[derive(Debug)]
struct EmuState {
    config: SlackConfig,
    channels: Vec<Channel>,
    faults: BTreeMap<String, VecDeque<Fault>>,
    /// Answers of these methods are held back this long after the call took effect.
    held: BTreeMap<String, Duration>,
    requests: Vec<RecordedRequest>,
}

const TEAM_ID: &str = "T0SIM0001";
const USER_ID: &str = "U0SIMBOT1";
const BOT_ID: &str = "B0SIMBOT1";

impl EmuState {
    fn channel_index(&self, key: &str) -> Option<usize> {
        let key = key.trim();
        let name = key.strip_prefix('#').unwrap_or(key);
        self.channels
            .iter()
            .position(|c| c.id == key)
            .or_else(|| self.channels.iter().position(|c| c.name == name))
    }

    fn add_channel(&mut self, spec: &ChannelSpec) -> String {
        let id = format!(
            "{}0SIM{:04}",
            if spec.is_private { 'G' } else { 'C' },
            self.channels.len() + 1
        );
        self.channels.push(Channel {
            id: id.clone(),
            name: spec.name.clone(),
            is_private: spec.is_private,
            is_archived: spec.is_archived,
            is_member: spec.is_member,
            created: now_micros() as i64 / 1_000_000,
            messages: Vec::new(),
            last_ts_micros: 0,
        });
        id
    }

    fn view(&self, c: &Channel) -> ChannelView {
        let mut threads: BTreeMap<String, Vec<SlackMessage>> = BTreeMap::new();
        let mut messages = Vec::new();
        for m in &c.messages {
            if m.is_reply() {
                if let Some(parent) = &m.thread_ts {
                    threads.entry(parent.clone()).or_default().push(m.clone());
                }
                if m.reply_broadcast {
                    messages.push(m.clone());
                }
            } else {
                messages.push(m.clone());
            }
        }
        ChannelView {
            id: c.id.clone(),
            name: c.name.clone(),
            is_private: c.is_private,
            is_archived: c.is_archived,
            is_member: c.is_member,
            messages,
            threads,
        }
    }
}

fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

fn format_ts(micros: u64) -> String {
    format!("{}.{:06}", micros / 1_000_000, micros % 1_000_000)
}

type Shared = Arc<Mutex<EmuState>>;

fn lock(s: &Shared) -> MutexGuard<'_, EmuState> {
    s.lock().unwrap_or_else(|p| p.into_inner())
}

/// A running Slack Web API emulator. Dropping it stops the server.
#[derive(Debug)]
pub struct SlackEmulator {
    state: Shared,
    addr: SocketAddr,
    shutdown: Mutex<Option<oneshot::Sender<()>>>,
}

impl Drop for SlackEmulator {
    fn drop(&mut self) {
        if let Some(tx) = self
            .shutdown
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            let _ = tx.send(());
        }
    }
}

impl SlackEmulator {
    /// Starts the emulator on 127.0.0.1 (HTTP).
    pub async fn start(config: SlackConfig) -> Result<SlackEmulator, SlackEmulatorError> {
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, config.port))
            .await
            .map_err(|source| SlackEmulatorError::Bind {
                port: config.port,
                source,
            })?;
        let addr = listener
            .local_addr()
            .map_err(|source| SlackEmulatorError::Bind {
                port: config.port,
                source,
            })?;
        let mut state = EmuState {
            config: config.clone(),
            channels: Vec::new(),
            faults: BTreeMap::new(),
            held: BTreeMap::new(),
            requests: Vec::new(),
        };
        for spec in &config.channels {
            state.add_channel(spec);
        }
        let state: Shared = Arc::new(Mutex::new(state));
        let app = Router::new()
            .route("/api/{method}", any(api))
            .route("/emulator/state", get(emulator_state))
            .with_state(state.clone());
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
                let _ = rx.await;
            });
            if let Err(e) = serve.await {
                tracing::warn!("slack emulator stopped: {e}");
            }
        });
        Ok(SlackEmulator {
            state,
            addr,
            shutdown: Mutex::new(Some(tx)),
        })
    }

    /// The API base URL, ending in `/api/` (`slack_sdk`'s `base_url`, `[fn_slack] api_url`).
    pub fn api_url(&self) -> String {
        format!("http://{}/api/", self.addr)
    }

    /// The socket address served.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The first accepted token.
    pub fn token(&self) -> String {
        lock(&self.state)
            .config
            .tokens
            .first()
            .cloned()
            .unwrap_or_default()
    }

    /// Adds a channel; returns its ID.
    pub fn add_channel(&self, spec: ChannelSpec) -> String {
        lock(&self.state).add_channel(&spec)
    }

    /// The next `count` calls of `method` get HTTP 429 with `Retry-After: retry_after_secs` and
    /// are not processed.
    pub fn rate_limit_next(&self, method: &str, count: usize, retry_after_secs: u64) {
        let mut st = lock(&self.state);
        let q = st.faults.entry(method.to_string()).or_default();
        for _ in 0..count {
            q.push_back(Fault::RateLimit {
                retry_after: retry_after_secs,
            });
        }
    }

    /// The next `count` calls of `method` answer `{"ok": false, "error": code}` unprocessed.
    pub fn fail_next(&self, method: &str, code: &str, count: usize) {
        let mut st = lock(&self.state);
        let q = st.faults.entry(method.to_string()).or_default();
        for _ in 0..count {
            q.push_back(Fault::Error {
                code: code.to_string(),
            });
        }
    }

    /// Holds back the answers of `method` by `delay` after each call took effect (zero to
    /// stop): a client that gives up or dies meanwhile has posted without hearing so.
    pub fn hold_answers(&self, method: &str, delay: Duration) {
        let mut st = lock(&self.state);
        if delay.is_zero() {
            st.held.remove(method);
        } else {
            st.held.insert(method.to_string(), delay);
        }
    }

    /// A channel (by ID, name or `#name`) as a person sees it.
    pub fn channel(&self, key: &str) -> Option<ChannelView> {
        let st = lock(&self.state);
        st.channel_index(key).map(|i| st.view(&st.channels[i]))
    }

    /// Every channel, in creation order.
    pub fn channels(&self) -> Vec<ChannelView> {
        let st = lock(&self.state);
        st.channels.iter().map(|c| st.view(c)).collect()
    }

    /// Every message posted anywhere (parents, replies and broadcasts), in posting order.
    pub fn all_messages(&self) -> Vec<SlackMessage> {
        let st = lock(&self.state);
        let mut all: Vec<SlackMessage> = st
            .channels
            .iter()
            .flat_map(|c| c.messages.iter().cloned())
            .collect();
        all.sort_by(|a, b| a.ts.cmp(&b.ts));
        all
    }

    /// Every request answered, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.state).requests.clone()
    }

    /// How many requests of `method` were answered (any status).
    pub fn request_count(&self, method: &str) -> usize {
        lock(&self.state)
            .requests
            .iter()
            .filter(|r| r.method == method)
            .count()
    }

    /// The channels that have messages, as a person would read them in Slack.
    pub fn transcript(&self) -> String {
        let st = lock(&self.state);
        let mut out = String::new();
        for c in st.channels.iter().filter(|c| !c.messages.is_empty()) {
            let v = st.view(c);
            out.push_str(&format!("#{} ({})\n", v.name, v.id));
            for m in &v.messages {
                let who = m.username.as_deref().unwrap_or("app");
                let mut lines = m.text.lines();
                let first = lines.next().unwrap_or_default();
                let tag = if m.reply_broadcast {
                    " (replied to a thread)"
                } else {
                    ""
                };
                out.push_str(&format!("  {who}{tag}: {first}\n"));
                for l in lines {
                    out.push_str(&format!("    {l}\n"));
                }
                if m.reply_broadcast {
                    continue;
                }
                if let Some(replies) = v.threads.get(&m.ts) {
                    out.push_str(&format!(
                        "    └ {} repl{}\n",
                        replies.len(),
                        if replies.len() == 1 { "y" } else { "ies" }
                    ));
                    for r in replies {
                        let who = r.username.as_deref().unwrap_or("app");
                        for (i, l) in r.text.lines().enumerate() {
                            if i == 0 {
                                out.push_str(&format!("      {who}: {l}\n"));
                            } else {
                                out.push_str(&format!("        {l}\n"));
                            }
                        }
                    }
                }
            }
        }
        out
    }

    /// Stops serving.
    pub fn shutdown(&self) {
        if let Some(tx) = self
            .shutdown
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            let _ = tx.send(());
        }
    }
}

soar_sim::register_emulator!(EmulatorRegistration {
    name: "Slack",
    component: "fn_slack",
    start: start_registered,
});

/// The registry's start: the default configuration on a free port.
fn start_registered() -> StartFuture {
    Box::pin(async {
        let slack = SlackEmulator::start(SlackConfig::default())
            .await
            .map_err(|e| SimError::External(format!("Slack emulator: {e}")))?;
        Ok(Box::new(slack) as Box<dyn Emulator>)
    })
}

impl Emulator for SlackEmulator {
    /// The API base URL ([`SlackEmulator::api_url`]).
    fn url(&self) -> String {
        self.api_url()
    }

    /// `[fn_slack]`: `api_token`, `username`, `channel` and `api_url`.
    fn app_config(&self) -> String {
        format!(
            "[fn_slack]\napi_token = {token}\nusername = Resilient\nchannel = incidents\n\
             api_url = {url}\n",
            token = self.token(),
            url = self.api_url(),
        )
    }

    /// "Slack, as a person sees it:" then the [`SlackEmulator::transcript`].
    fn summary(&self) -> String {
        format!("Slack, as a person sees it:\n{}", self.transcript())
    }
}

async fn emulator_state(State(state): State<Shared>) -> Response {
    let st = lock(&state);
    let channels: Vec<ChannelView> = st.channels.iter().map(|c| st.view(c)).collect();
    axum::Json(json!({"channels": channels, "requests": st.requests})).into_response()
}

/// How the caller authenticated.
enum Auth {
    Bearer(String),
    Form(String),
    None,
}

impl Auth {
    fn kind(&self) -> &'static str {
        match self {
            Auth::Bearer(_) => "bearer",
            Auth::Form(_) => "form",
            Auth::None => "none",
        }
    }

    fn token(&self) -> Option<&str> {
        match self {
            Auth::Bearer(t) | Auth::Form(t) => Some(t),
            Auth::None => None,
        }
    }
}

/// A finished answer: HTTP status, extra headers, JSON body.
struct Answer {
    status: StatusCode,
    retry_after: Option<u64>,
    body: Value,
}

impl Answer {
    fn ok(mut body: Value) -> Answer {
        body["ok"] = json!(true);
        Answer {
            status: StatusCode::OK,
            retry_after: None,
            body,
        }
    }

    fn err(code: &str) -> Answer {
        Answer {
            status: StatusCode::OK,
            retry_after: None,
            body: json!({"ok": false, "error": code}),
        }
    }
}

async fn api(
    State(state): State<Shared>,
    Path(method): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let parsed = args::collect(query.as_deref(), content_type.as_deref(), &body);
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty());
    let (answer, held) = record(&state, &method, parsed, bearer, content_type);
    if let Some(delay) = held {
        tokio::time::sleep(delay).await;
    }
    let mut resp = (answer.status, axum::Json(answer.body)).into_response();
    if let Some(secs) = answer.retry_after
        && let Ok(v) = header::HeaderValue::from_str(&secs.to_string())
    {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

/// Handles and records one call under the lock; returns its answer and how long to hold it.
fn record(
    state: &Shared,
    method: &str,
    parsed: Result<Map<String, Value>, args::ArgsError>,
    bearer: Option<String>,
    content_type: Option<String>,
) -> (Answer, Option<Duration>) {
    let mut st = lock(state);
    let (answer, auth) = match parsed {
        Err(e) => (Answer::err(e.code()), Auth::None),
        Ok(mut a) => {
            let form_token = args::string(&a, "token");
            a.remove("token");
            let auth = match (bearer, form_token) {
                (Some(t), _) => Auth::Bearer(t),
                (None, Some(t)) => Auth::Form(t),
                (None, None) => Auth::None,
            };
            let answer = handle(&mut st, method, &a, &auth);
            (answer, auth)
        }
    };
    let error = answer
        .body
        .get("error")
        .and_then(Value::as_str)
        .map(str::to_string);
    st.requests.push(RecordedRequest {
        method: method.to_string(),
        status: answer.status.as_u16(),
        ok: answer.body.get("ok") == Some(&json!(true)),
        error,
        auth: auth.kind(),
        content_type,
    });
    let held = st.held.get(method).copied();
    (answer, held)
}

fn handle(st: &mut EmuState, method: &str, a: &Map<String, Value>, auth: &Auth) -> Answer {
    if let Some(fault) = st.faults.get_mut(method).and_then(VecDeque::pop_front) {
        return match fault {
            Fault::RateLimit { retry_after } => Answer {
                status: StatusCode::TOO_MANY_REQUESTS,
                retry_after: Some(retry_after),
                body: json!({"ok": false, "error": "ratelimited"}),
            },
            Fault::Error { code } => Answer::err(&code),
        };
    }
    if method == "api.test" {
        let mut echo = a.clone();
        echo.remove("error");
        return match args::string(a, "error") {
            Some(code) => Answer {
                status: StatusCode::OK,
                retry_after: None,
                body: json!({"ok": false, "error": code, "args": echo}),
            },
            None => Answer::ok(json!({"args": echo})),
        };
    }
    if !KNOWN_METHODS.contains(&method) {
        return Answer::err("unknown_method");
    }
    match auth.token() {
        None => return Answer::err("not_authed"),
        Some(t) if st.config.revoked_tokens.iter().any(|r| r == t) => {
            return Answer::err("token_revoked");
        }
        Some(t) if !st.config.tokens.iter().any(|ok| ok == t) => {
            return Answer::err("invalid_auth");
        }
        Some(_) => {}
    }
    match method {
        "auth.test" => Answer::ok(json!({
            "url": format!("https://{}.slack.com/", st.config.domain),
            "team": st.config.team,
            "user": "resilient",
            "team_id": TEAM_ID,
            "user_id": USER_ID,
            "bot_id": BOT_ID,
            "is_enterprise_install": false,
        })),
        "chat.postMessage" => post_message(st, a),
        "chat.getPermalink" => permalink(st, a),
        "conversations.list" => list(st, a),
        "conversations.history" => history(st, a, None),
        "conversations.replies" => match args::string(a, "ts") {
            Some(ts) => history(st, a, Some(ts)),
            None => Answer::err("invalid_arguments"),
        },
        _ => Answer::err("unknown_method"),
    }
}

const KNOWN_METHODS: &[&str] = &[
    "auth.test",
    "chat.postMessage",
    "chat.getPermalink",
    "conversations.list",
    "conversations.history",
    "conversations.replies",
];

fn post_message(st: &mut EmuState, a: &Map<String, Value>) -> Answer {
    let Some(idx) = args::string(a, "channel").and_then(|c| st.channel_index(&c)) else {
        return Answer::err("channel_not_found");
    };
    let c = &mut st.channels[idx];
    if c.is_archived {
        return Answer::err("is_archived");
    }
    if !c.is_member {
        return Answer::err("not_in_channel");
    }
    let text = args::string(a, "text").unwrap_or_default();
    let has_blocks = args::string(a, "attachments").is_some() || a.get("blocks").is_some();
    if text.trim().is_empty() && !has_blocks {
        return Answer::err("no_text");
    }
    if text.chars().count() > MAX_TEXT {
        return Answer::err("msg_too_long");
    }
    let thread_ts = match args::string(a, "thread_ts") {
        None => None,
        Some(t) => match c.messages.iter().find(|m| m.ts == t) {
            // A reply's ts stands for its thread.
            Some(m) => Some(m.thread_ts.clone().unwrap_or(m.ts.clone())),
            None => return Answer::err("thread_not_found"),
        },
    };
    let micros = now_micros().max(c.last_ts_micros + 1);
    c.last_ts_micros = micros;
    let ts = format_ts(micros);
    let reply_broadcast = thread_ts.is_some() && args::boolean(a, "reply_broadcast") == Some(true);
    if let Some(parent) = &thread_ts
        && let Some(p) = c.messages.iter_mut().find(|m| &m.ts == parent)
    {
        p.thread_ts = Some(parent.clone());
    }
    let as_user = args::boolean(a, "as_user") == Some(true);
    let msg = SlackMessage {
        ts: ts.clone(),
        thread_ts,
        text,
        subtype: if reply_broadcast {
            "thread_broadcast".into()
        } else {
            "bot_message".into()
        },
        username: if as_user {
            Some("resilient".into())
        } else {
            args::string(a, "username").or(Some("resilient".into()))
        },
        reply_broadcast,
        args: a.clone(),
    };
    let message = msg.api_json(BOT_ID);
    let channel = c.id.clone();
    c.messages.push(msg);
    Answer::ok(json!({"channel": channel, "ts": ts, "message": message}))
}

fn permalink(st: &EmuState, a: &Map<String, Value>) -> Answer {
    let Some(idx) = args::string(a, "channel").and_then(|c| st.channel_index(&c)) else {
        return Answer::err("channel_not_found");
    };
    let c = &st.channels[idx];
    let Some(m) = args::string(a, "message_ts").and_then(|t| c.messages.iter().find(|m| m.ts == t))
    else {
        return Answer::err("message_not_found");
    };
    let mut link = format!(
        "https://{}.slack.com/archives/{}/p{}",
        st.config.domain,
        c.id,
        m.ts.replace('.', "")
    );
    if m.is_reply()
        && let Some(parent) = &m.thread_ts
    {
        link.push_str(&format!("?thread_ts={parent}&cid={}", c.id));
    }
    Answer::ok(json!({"channel": c.id, "permalink": link}))
}

fn channel_json(c: &Channel) -> Value {
    json!({
        "id": c.id,
        "name": c.name,
        "name_normalized": c.name,
        "is_channel": !c.is_private,
        "is_group": false,
        "is_im": false,
        "is_private": c.is_private,
        "is_archived": c.is_archived,
        "is_member": c.is_member,
        "created": c.created,
    })
}

fn list(st: &EmuState, a: &Map<String, Value>) -> Answer {
    let types = args::string(a, "types").unwrap_or_else(|| "public_channel".into());
    let want_public = types.split(',').any(|t| t.trim() == "public_channel");
    let want_private = types.split(',').any(|t| t.trim() == "private_channel");
    let exclude_archived = args::boolean(a, "exclude_archived") == Some(true);
    let limit = args::string(a, "limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|l| *l > 0)
        .unwrap_or(100)
        .min(1000);
    let start = match args::string(a, "cursor") {
        None => 0,
        Some(c) => match c
            .strip_prefix("next:")
            .and_then(|n| n.parse::<usize>().ok())
        {
            Some(n) => n,
            None => return Answer::err("invalid_cursor"),
        },
    };
    let matching: Vec<&Channel> = st
        .channels
        .iter()
        .filter(|c| (c.is_private && want_private) || (!c.is_private && want_public))
        .filter(|c| !(exclude_archived && c.is_archived))
        .collect();
    let page: Vec<Value> = matching
        .iter()
        .skip(start)
        .take(limit)
        .map(|c| channel_json(c))
        .collect();
    let next = if start + limit < matching.len() {
        format!("next:{}", start + limit)
    } else {
        String::new()
    };
    Answer::ok(json!({"channels": page, "response_metadata": {"next_cursor": next}}))
}

fn history(st: &EmuState, a: &Map<String, Value>, thread: Option<String>) -> Answer {
    let Some(idx) = args::string(a, "channel").and_then(|c| st.channel_index(&c)) else {
        return Answer::err("channel_not_found");
    };
    let v = st.view(&st.channels[idx]);
    // Metadata only when asked for, as Slack does.
    let metadata = args::boolean(a, "include_all_metadata") == Some(true);
    let json = |m: &SlackMessage| {
        let mut j = m.api_json(BOT_ID);
        if let Some(md) = m.metadata().filter(|_| metadata) {
            j["metadata"] = md;
        }
        j
    };
    let limit = args::string(a, "limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|l| *l > 0)
        .unwrap_or(100)
        .min(999);
    let messages: Vec<Value> = match thread {
        // conversations.history: newest first.
        None => v.messages.iter().rev().map(json).collect(),
        // conversations.replies: the parent, then its replies, oldest first.
        Some(ts) => {
            let Some(parent) = v.messages.iter().find(|m| m.ts == ts && !m.is_reply()) else {
                return Answer::err("thread_not_found");
            };
            std::iter::once(parent)
                .chain(v.threads.get(&ts).into_iter().flatten())
                .map(json)
                .collect()
        }
    };
    let has_more = messages.len() > limit;
    let page: Vec<Value> = messages.into_iter().take(limit).collect();
    Answer::ok(json!({"messages": page, "has_more": has_more}))
}
