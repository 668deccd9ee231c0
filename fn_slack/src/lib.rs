//! `fn_slack`: share an incident in a Slack channel and keep the conversation going there.
//!
//! One function, `slack_post_message` (message destination `slack`), makes one Slack call,
//! `chat.postMessage`, and returns Slack's answer (`ok`, `channel`, `ts`, `message`) as the
//! result content, so that a workflow can keep `ts` as the incident's thread id and post later
//! notes as replies in that thread (the 2018 threaded design of IBM's fn_slack, spec part A).
//!
//! - [`html`]: HTML to readable text in one pass (linear whatever the nesting).
//! - [`render`]: `slack_details` (`{"Label": {"type": …, "data": …}}`) to message text.
//! - [`client`]: the Slack Web API client (JSON + Bearer, 429 `Retry-After` handling).
//! - `customize/fn_slack.yaml`: the destination, the function and its inputs, the incident
//!   fields that keep the thread, and the rules and workflows "Create Slack Message" (manual,
//!   on an incident) and "Create Slack Reply" (automatic, on a note of a posted incident).
//!
//! What the text of a message is, in order of precedence: `slack_details` (rendered per A.2);
//! else `slack_text` (plain text or HTML, e.g. a note; with `incident_id` it is posted as the
//! documented reply, `Resilient URL: …` then `Note: …`); else the summary of incident
//! `incident_id`, fetched from the platform and laid out as the seed's "Create Slack Message"
//! pre-processing script did. The last two exist because our workflow definitions map inputs
//! from paths and cannot build JSON in a script as the original workflows did.

pub mod client;
pub mod html;
pub mod render;

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use soar_sdk::http::HttpOptions;
use soar_sdk::prelude::*;
use soar_sdk::text::offload;

use crate::client::{SlackClient, SlackError};

/// The component's name and its app.config section.
pub const NAME: &str = "fn_slack";
/// The function's name.
pub const FUNCTION: &str = "slack_post_message";
/// Slack's API base URL.
pub const DEFAULT_API_URL: &str = "https://slack.com/api/";

soar_sdk::register_component! {
    name: NAME,
    description: "Posts incidents to a Slack channel and notes as threaded replies",
    config: Option<SlackSection>,
    build: build,
    customizations: ["customize/fn_slack.yaml"],
}

/// Settings of the Slack integration.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
pub struct SlackSection {
    /// Slack token of the installed Slack app: a bot token (xoxb-...) with the chat:write scope.
    /// Better kept out of this file: api_token = $SLACK_API_TOKEN or api_token = ^slack_api_token
    #[schemars(example = "xoxb-xxxxxxxxx-xxxxxxxxxxxx-xxxxxxxxxxxxxxxxxxxxxxxx")]
    #[schemars(extend("x-placeholder" = true))]
    pub api_token: Secret,
    /// Author name shown on messages when slack_as_user is not true; a workflow's slack_user_id overrides it.
    #[schemars(example = &"Resilient")]
    pub username: String,
    /// Channel (name such as incidents, or ID such as C0123456789) used when a workflow leaves slack_channel empty.
    #[schemars(example = &"incidents")]
    pub channel: Option<String>,
    /// Slack Web API base URL (change it only to use a Slack emulator or a gateway).
    #[serde(default = "default_api_url")]
    pub api_url: String,
    /// Seconds to wait for Slack's answer to one request (default: [integrations] timeout, else 30).
    #[schemars(example = 30)]
    pub timeout: Option<u64>,
    /// Most seconds to wait in total when Slack answers HTTP 429 with Retry-After, before giving up.
    #[serde(default = "default_max_rate_limit_wait")]
    pub max_rate_limit_wait: u64,
    /// Proxy for Slack requests: http://[user:password@]host:port (default: [integrations]).
    #[schemars(example = "http://proxy.example.com:3128")]
    pub proxy: Option<String>,
    /// CA certificates for api_url: a PEM file, or false to skip verification (test emulators only).
    pub cafile: Option<String>,
}

fn default_api_url() -> String {
    DEFAULT_API_URL.into()
}

fn default_max_rate_limit_wait() -> u64 {
    60
}

impl Section for SlackSection {
    const NAME: &'static str = NAME;
}

/// The inputs of `slack_post_message`, as declared in `customize/fn_slack.yaml`.
#[derive(Debug, Default, Deserialize, Serialize)]
pub struct SlackInputs {
    /// Channel name or ID; empty: `[fn_slack] channel`.
    pub slack_channel: Option<String>,
    /// JSON `{"Label": {"type": …, "data": …}}` (spec A.2).
    pub slack_details: Option<String>,
    /// The parent message's ts: post as a reply in its thread.
    pub slack_thread_id: Option<String>,
    /// Slack's `mrkdwn` (the 2018 definitions name the input `slack_markdwn`: see
    /// [`markdown_input`]).
    pub slack_markdown: Option<bool>,
    /// Slack's `parse`: `none` or `full`.
    pub slack_parse: Option<String>,
    /// Slack's `reply_broadcast` (replies only).
    pub slack_reply_broadcast: Option<bool>,
    /// Slack's `link_names`.
    pub slack_link_names: Option<bool>,
    /// Slack's `as_user`.
    pub slack_as_user: Option<bool>,
    /// Author name; empty: `[fn_slack] username`.
    pub slack_user_id: Option<String>,
    /// Plain text or HTML to post when `slack_details` is empty (a note).
    pub slack_text: Option<String>,
    /// The incident to summarise when neither `slack_details` nor `slack_text` is set.
    pub incident_id: Option<i64>,
}

/// The validated `[fn_slack]` section and its client.
#[derive(Debug, Clone)]
pub struct SlackSettings {
    pub username: String,
    pub channel: Option<String>,
    pub client: SlackClient,
}

/// What the handlers share.
#[derive(Debug)]
pub struct Slack {
    /// `None` when app.config has no `[fn_slack]` section.
    setup: Option<SlackSettings>,
    /// The platform's address, for incident links.
    incident_base: String,
}

impl Slack {
    fn ready(&self) -> Result<&SlackSettings, FunctionError> {
        self.setup.as_ref().ok_or_else(|| FunctionError::Config {
            section: NAME.into(),
            problem: "the section is missing: add [fn_slack] with api_token and username (`host config -u` writes a template)".into(),
        })
    }
}

/// Validates `[fn_slack]` and builds its client.
pub fn settings(section: SlackSection, setup: &Setup) -> Result<SlackSettings, ConfigError> {
    let mut api_url = section.api_url.trim().to_string();
    if !(api_url.starts_with("https://") || api_url.starts_with("http://")) {
        return Err(setup.invalid(
            NAME,
            "api_url",
            "must start with https:// (or http:// for an emulator)",
        ));
    }
    if !api_url.ends_with('/') {
        api_url.push('/');
    }
    if section.timeout.is_some_and(|t| t == 0 || t > 600) {
        return Err(setup.invalid(NAME, "timeout", "must be between 1 and 600 seconds"));
    }
    if section.max_rate_limit_wait > 3600 {
        return Err(setup.invalid(NAME, "max_rate_limit_wait", "must be at most 3600 seconds"));
    }
    let http = setup.http_client(
        NAME,
        &HttpOptions {
            url: api_url.clone(),
            proxy: section.proxy.clone(),
            cafile: section.cafile.clone(),
            timeout: section.timeout.map(Duration::from_secs),
            user_agent: Some(concat!("soar-host-fn_slack/", env!("CARGO_PKG_VERSION")).into()),
            ..HttpOptions::default()
        },
    )?;
    let token = Secret::new(section.api_token.expose().trim());
    Ok(SlackSettings {
        username: section.username.trim().to_string(),
        channel: section
            .channel
            .map(|c| c.trim().to_string())
            .filter(|c| !c.is_empty()),
        client: SlackClient::new(
            http,
            api_url,
            token,
            Duration::from_secs(section.max_rate_limit_wait),
        ),
    })
}

/// Builds the component. Without `[fn_slack]` it still loads (so that a host linking every
/// integration starts), and each call fails with an error that says to add the section.
pub fn build(
    section: Option<SlackSection>,
    setup: &Setup,
) -> Result<Component<Arc<Slack>>, ConfigError> {
    let slack = Slack {
        setup: section.map(|s| settings(s, setup)).transpose()?,
        incident_base: setup.platform_url().to_string(),
    };
    Ok(Component::with_state(Arc::new(slack))
        .function(FUNCTION, post_message)
        .selftest(selftest)
        .demo(DemoStep::ManualRule("Create Slack Message".into()))
        .demo(DemoStep::Invoke {
            function: FUNCTION.into(),
            inputs: json!({
                "slack_details": "{\"Resilient Incident\": {\"type\": \"string\", \"data\": \"DoS attack in EMEA\"}, \"Confirmed\": {\"type\": \"boolean\", \"data\": true}}",
                "slack_markdown": true,
                "slack_parse": "none",
                "slack_reply_broadcast": false
            }),
        }))
}

/// The selftest: `auth.test` with the configured token.
async fn selftest(State(slack): State<Arc<Slack>>) -> SelftestReport {
    let Some(settings) = &slack.setup else {
        return SelftestReport::failure(
            "[fn_slack] is missing from app.config (api_token, username)",
        );
    };
    match settings
        .client
        .call("auth.test", &json!({}), |_, _| async {})
        .await
    {
        Ok(answer) => {
            let team = answer.get("team").and_then(Value::as_str).unwrap_or("?");
            let user = answer.get("user").and_then(Value::as_str).unwrap_or("?");
            tracing::info!("fn_slack selftest: auth.test ok for team {team} as {user}");
            SelftestReport::success()
        }
        Err(e) => SelftestReport::failure(e.to_string()),
    }
}

fn non_empty(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// `slack_post_message`.
async fn post_message(
    State(slack): State<Arc<Slack>>,
    ctx: Context,
    inputs: SlackInputs,
) -> Result<FunctionResult, FunctionError> {
    let settings = slack.ready()?;
    let client = &settings.client;
    let channel = non_empty(&inputs.slack_channel)
        .or(settings.channel.as_deref())
        .ok_or_else(|| {
            FunctionError::invalid_input(
                "slack_channel",
                "is not set and [fn_slack] has no channel: set the channel (a name such as \
                 incidents, or an ID such as C0123456789) in the workflow's Input tab \
                 (slack_channel), or a default as [fn_slack] channel",
            )
        })?
        .to_string();
    let text = message_text(&ctx, &inputs, &slack.incident_base).await?;
    if text.trim().is_empty() {
        return Err(FunctionError::invalid_input(
            "slack_details",
            "renders to an empty message (every entry is empty); nothing was posted",
        ));
    }
    let mut body = Map::new();
    body.insert("channel".into(), json!(channel));
    body.insert("text".into(), json!(text));
    let username = non_empty(&inputs.slack_user_id).unwrap_or(&settings.username);
    body.insert("username".into(), json!(username));
    if let Some(v) = inputs.slack_as_user {
        body.insert("as_user".into(), json!(v));
    }
    if let Some(v) = markdown_input(&ctx, &inputs)? {
        body.insert("mrkdwn".into(), json!(v));
    }
    if let Some(p) = non_empty(&inputs.slack_parse) {
        let p = p.to_ascii_lowercase();
        if p != "none" && p != "full" {
            return Err(FunctionError::invalid_input(
                "slack_parse",
                format!("must be none or full, got \"{p}\""),
            ));
        }
        body.insert("parse".into(), json!(p));
    }
    if let Some(v) = inputs.slack_link_names {
        body.insert("link_names".into(), json!(v));
    }
    let thread = non_empty(&inputs.slack_thread_id);
    if let Some(t) = thread {
        body.insert("thread_ts".into(), json!(t));
        if let Some(v) = inputs.slack_reply_broadcast {
            body.insert("reply_broadcast".into(), json!(v));
        }
    }
    let what = match thread {
        Some(t) => format!("a reply in thread {t} of {channel}"),
        None => format!("a message to {channel}"),
    };
    // Every post carries the invocation's key, so that a re-run after a crash can find it.
    body.insert("metadata".into(), invocation_metadata(ctx.invocation_key()));
    if ctx.may_have_run() {
        match earlier_post(client, &channel, thread, ctx.invocation_key()).await {
            Ok(Some(answer)) => {
                ctx.status(format!(
                    "fn_slack: an earlier run of this invocation already posted {what} (ts {}); not posting it again",
                    answer.get("ts").and_then(Value::as_str).unwrap_or("?")
                ))
                .await;
                return Ok(slack_result(answer));
            }
            Ok(None) => {}
            Err(e) => {
                // Posting is still better than losing the message; say why it may be twice.
                ctx.status(format!(
                    "fn_slack: could not check whether an interrupted earlier run already posted \
                     {what} ({e}); posting it"
                ))
                .await;
            }
        }
    }
    ctx.status(format!("fn_slack: posting {what}")).await;
    let status_ctx = ctx.clone();
    let answer = client
        .call("chat.postMessage", &Value::Object(body), |secs, attempt| {
            let ctx = status_ctx.clone();
            async move {
                ctx.status(format!(
                    "fn_slack: Slack is rate limiting chat.postMessage (HTTP 429, attempt {attempt}); waiting {secs} s as its Retry-After asks, then posting again"
                ))
                .await;
            }
        })
        .await
        .map_err(|e| slack_error(&e))?;
    ctx.status(format!(
        "Message added to slack: channel {}, ts {}",
        answer.get("channel").and_then(Value::as_str).unwrap_or("?"),
        answer.get("ts").and_then(Value::as_str).unwrap_or("?")
    ))
    .await;
    Ok(slack_result(answer))
}

/// `slack_markdown`, or the 2018 definitions' `slack_markdwn` (a select of true/false), read
/// from the message because one typed field cannot have two names.
fn markdown_input(ctx: &Context, inputs: &SlackInputs) -> Result<Option<bool>, FunctionError> {
    if inputs.slack_markdown.is_some() {
        return Ok(inputs.slack_markdown);
    }
    let Some(raw) = ctx.message().body().pointer("/inputs/slack_markdwn") else {
        return Ok(None);
    };
    soar_sdk::Inputs::from_value(json!({"slack_markdwn": raw})).bool("slack_markdwn")
}

/// Slack's answer as `results.content`, and also at the top of `results` where the 2018
/// workflows read it (`results.ts`, `results.channel`).
fn slack_result(answer: Value) -> FunctionResult {
    FunctionResult::new(answer).also_at_top()
}

/// The `event_type` of the message metadata fn_slack attaches to its posts.
pub const METADATA_EVENT: &str = "soar_invocation";

/// How many recent messages of the channel (or thread) a re-run looks through.
const LOOKBACK: &str = "200";

fn invocation_metadata(key: &str) -> Value {
    json!({"event_type": METADATA_EVENT, "event_payload": {"invocation_key": key}})
}

/// The message an earlier run of invocation `key` posted to `channel` (or to `thread` in it),
/// as chat.postMessage would have answered, if it is among the latest messages.
async fn earlier_post(
    client: &SlackClient,
    channel: &str,
    thread: Option<&str>,
    key: &str,
) -> Result<Option<Value>, SlackError> {
    let Some(id) = channel_id(client, channel).await? else {
        return Ok(None);
    };
    let mut query = vec![
        ("channel", id.as_str()),
        ("limit", LOOKBACK),
        ("include_all_metadata", "true"),
    ];
    let method = match thread {
        Some(ts) => {
            query.push(("ts", ts));
            "conversations.replies"
        }
        None => "conversations.history",
    };
    let answer = client.read(method, &query).await?;
    let found = answer
        .get("messages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|m| {
            m.pointer("/metadata/event_type").and_then(Value::as_str) == Some(METADATA_EVENT)
                && m.pointer("/metadata/event_payload/invocation_key")
                    .and_then(Value::as_str)
                    == Some(key)
        });
    Ok(found.map(|m| json!({"ok": true, "channel": id, "ts": m.get("ts"), "message": m})))
}

/// A channel's ID: as given if it looks like one, else looked up by name (`#` optional).
async fn channel_id(client: &SlackClient, channel: &str) -> Result<Option<String>, SlackError> {
    let looks_like_id = channel.len() >= 9
        && channel.starts_with(['C', 'G', 'D'])
        && channel
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
    if looks_like_id {
        return Ok(Some(channel.to_string()));
    }
    let name = channel.trim_start_matches('#');
    let mut cursor = String::new();
    for _ in 0..20 {
        let query = [
            ("types", "public_channel,private_channel"),
            ("exclude_archived", "true"),
            ("limit", "200"),
            ("cursor", cursor.as_str()),
        ];
        let page = client.read("conversations.list", &query).await?;
        let channels = page.get("channels").and_then(Value::as_array);
        if let Some(c) = channels
            .into_iter()
            .flatten()
            .find(|c| c.get("name").and_then(Value::as_str) == Some(name))
        {
            return Ok(c.get("id").and_then(Value::as_str).map(str::to_string));
        }
        match page
            .pointer("/response_metadata/next_cursor")
            .and_then(Value::as_str)
        {
            Some(next) if !next.is_empty() => cursor = next.to_string(),
            _ => break,
        }
    }
    Ok(None)
}

fn slack_error(e: &SlackError) -> FunctionError {
    FunctionError::external("fn_slack", e)
}

/// The message text from the inputs (see the crate docs for the precedence), cut at Slack's
/// limit. Rendering megabytes of HTML runs off the async threads ([`soar_sdk::text::offload`]).
async fn message_text(
    ctx: &Context,
    inputs: &SlackInputs,
    incident_base: &str,
) -> Result<String, FunctionError> {
    let base = incident_base.to_string();
    let rendered = if let Some(details) = non_empty(&inputs.slack_details) {
        let details = details.to_string();
        offload(move || render::render(&details, &base)).await?
    } else if let Some(text) = non_empty(&inputs.slack_text) {
        let text = text.to_string();
        match inputs.incident_id {
            // A note of an incident: the documented reply, its URL then the note.
            Some(id) => {
                offload(move || render::render_details(&note_details(id, &text), &base)).await?
            }
            None => {
                offload(move || Ok::<_, render::RenderError>(render::slack_text(&text))).await?
            }
        }
    } else if let Some(id) = inputs.incident_id {
        let incident = ctx
            .rest()?
            .get(&format!("/incidents/{id}?handle_format=names"))
            .await?;
        offload(move || render::render_details(&incident_details(&incident), &base)).await?
    } else {
        return Err(FunctionError::invalid_input(
            "slack_details",
            "is mandatory and is not set (or set slack_text, or incident_id to post the incident's summary)",
        ));
    };
    rendered
        .map(|text| render::fit_message(&text).into_owned())
        .map_err(|e| FunctionError::invalid_input("slack_details", e))
}

/// The documented reply for a note of incident `id`: `Resilient URL: …` then `Note: …`.
pub fn note_details(id: i64, note: &str) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert(
        "Resilient URL".into(),
        json!({"type": "incident", "data": id}),
    );
    m.insert("Note".into(), json!({"type": "richtext", "data": note}));
    m
}

/// The documented "Create Slack Message" details for an incident (select values as names),
/// Start Date included.
pub fn incident_details(incident: &Value) -> Map<String, Value> {
    let names = |key: &str| -> Value {
        match incident.get(key) {
            Some(Value::Array(items)) if !items.is_empty() => json!(format!(
                "[{}]",
                items
                    .iter()
                    .map(|i| match i {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            _ => Value::Null,
        }
    };
    let description = match incident.get("description") {
        Some(Value::Object(d)) => d.get("content").cloned().unwrap_or(Value::Null),
        Some(other) => other.clone(),
        None => Value::Null,
    };
    let field = |key: &str| incident.get(key).cloned().unwrap_or(Value::Null);
    let mut m = Map::new();
    let mut add = |label: &str, t: &str, data: Value| {
        m.insert(label.to_string(), json!({"type": t, "data": data}));
    };
    add("Resilient Incident", "string", field("name"));
    add("Resilient URL", "incident", field("id"));
    add("Description", "richtext", description);
    add("Confirmed", "boolean", field("confirmed"));
    add("Create Date", "datetime", field("create_date"));
    add("Start Date", "datetime", field("start_date"));
    add("Severity", "string", field("severity_code"));
    add("NIST Vectors", "string", names("nist_attack_vectors"));
    add("Incident Types", "string", names("incident_type_ids"));
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn customizations_validate_against_the_handler() {
        soar_sdk::testkit::validate_registered(NAME).unwrap();
    }

    fn section(pairs: &[(&str, &str)]) -> Result<SlackSettings, ConfigError> {
        let source = soar_sdk::config::ConfigSource::new("app.config")
            .with_section("resilient", [("host", "soar.example.com")])
            .with_section(NAME, pairs.iter().copied());
        let setup = Setup::from_source(&source).unwrap();
        settings(SlackSection::load(&source)?, &setup)
    }

    #[test]
    fn the_template_builds_and_hides_the_token() {
        let kit = soar_sdk::testkit::TestKit::new(NAME).unwrap();
        assert_eq!(kit.component().function_names(), [FUNCTION]);
        let s = section(&[("api_token", "xoxb-1"), ("username", "Resilient")]).unwrap();
        assert_eq!(s.username, "Resilient");
        assert_eq!(s.client.api_url(), DEFAULT_API_URL);
        assert!(!format!("{s:?}").contains("xoxb-"), "{s:?}");
    }

    #[test]
    fn bad_sections_name_the_key() {
        let err = |extra: (&str, &str)| {
            section(&[("api_token", "t"), ("username", "R"), extra])
                .unwrap_err()
                .to_string()
        };
        assert!(err(("api_url", "ftp://x")).contains("[fn_slack] api_url"));
        assert!(err(("timeout", "0")).contains("[fn_slack] timeout"));
        assert!(err(("timeout", "soon")).contains("[fn_slack] timeout"));
        assert!(err(("cafile", "/nonexistent.pem")).contains("[fn_slack] cafile"));
        let e = section(&[("username", "R")]).unwrap_err().to_string();
        assert!(e.contains("api_token"), "{e}");
    }

    #[tokio::test]
    async fn without_the_section_calls_say_what_to_add() {
        let source = soar_sdk::config::ConfigSource::new("app.config");
        let kit = soar_sdk::testkit::TestKit::with_config(NAME, source).unwrap();
        let call = kit.call(FUNCTION, json!({"slack_text": "x"})).await;
        let e = call.result.unwrap_err().to_string();
        assert!(
            e.contains("add [fn_slack] with api_token and username"),
            "{e}"
        );
    }

    #[test]
    fn incident_summary_has_the_seed_layout() {
        let incident = json!({
            "id": 2223, "name": "DoS attack in EMEA",
            "description": {"format": "html", "content": "<div>Flood</div>"},
            "confirmed": true, "create_date": 1524857616000i64, "start_date": 1524850000000i64,
            "severity_code": "High",
            "nist_attack_vectors": ["Web"], "incident_type_ids": ["Denial of Service", "Malware"],
        });
        let text = render::render_details(&incident_details(&incident), "https://h:443").unwrap();
        assert_eq!(
            text,
            "Resilient Incident: DoS attack in EMEA\nResilient URL: https://h:443/#incidents/2223\n\
             Description: Flood\nConfirmed: Yes\nCreate Date: 2018-04-27T19:33:36Z\n\
             Start Date: 2018-04-27T17:26:40Z\nSeverity: High\n\
             NIST Vectors: [Web]\nIncident Types: [Denial of Service, Malware]"
        );
    }
}
