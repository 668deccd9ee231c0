//! fn_slack end to end: the simulated platform runs the customizations' rules and workflows, the
//! host runs fn_slack (through the real engine over TLS), and fn_slack talks to the Slack
//! emulator over HTTP.

use std::time::{Duration, Instant};

use fn_slack as _;
use serde_json::{Value, json};
use slack_emulator::{SlackConfig, SlackEmulator};
use soar_engine::testkit::{self, Run, TestHost, TestOptions};
use soar_sim::WorkflowStatus;

const WAIT: Duration = Duration::from_secs(20);

fn section(slack: &SlackEmulator, token: &str) -> String {
    format!(
        "[fn_slack]\napi_token = {token}\nusername = Resilient\nchannel = incidents\napi_url = {}\ntimeout = 10\nmax_rate_limit_wait = 5\n",
        slack.api_url()
    )
}

async fn start_with_token(slack: &SlackEmulator, token: &str) -> TestHost {
    TestHost::start_with(
        vec![Run::Registered(fn_slack::NAME)],
        TestOptions {
            sections: section(slack, token),
            ..TestOptions::default()
        },
    )
    .await
    .expect("the host starts with fn_slack")
}

async fn start() -> (SlackEmulator, TestHost) {
    let slack = SlackEmulator::start(SlackConfig::default()).await.unwrap();
    let host = start_with_token(&slack, &slack.token()).await;
    (slack, host)
}

fn note_text(note: &Value) -> String {
    match &note["text"] {
        Value::String(s) => s.clone(),
        other => other["content"].as_str().unwrap_or_default().to_string(),
    }
}

/// Waits for the automatic rules and then for every workflow of `rule` on `incident`.
async fn wait_rule(host: &TestHost, rule: &str, incident: i64) -> Vec<soar_sim::WorkflowRun> {
    let sim = host.sim();
    sim.wait_rules_idle(WAIT).await.unwrap();
    let mut all = Vec::new();
    for run in sim
        .rule_runs()
        .into_iter()
        .filter(|r| r.rule == rule && r.incident_id == incident)
    {
        all.extend(run.wait(WAIT).await.unwrap());
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_story_incident_posted_then_notes_as_thread_replies() {
    let (slack, host) = start().await;
    let sim = host.sim();
    let incident = sim
        .create_incident(json!({
            "name": "DoS attack in EMEA",
            "description": {"format": "html", "content": "<div>Web servers in EMEA are flooded.</div>"},
            "confirmed": true,
            "start_date": 1524850000000i64,
            "severity_code": "High",
            "nist_attack_vectors": ["Web"],
            "incident_type_ids": ["Denial of Service", "Malware"],
        }))
        .unwrap();
    let id = incident["id"].as_i64().unwrap();

    // "Create Slack Message": the incident's summary lands in the channel of [fn_slack].
    let run = sim
        .run_manual_rule("Create Slack Message", id, json!({}))
        .await
        .unwrap();
    let workflows = run.wait(WAIT).await.unwrap();
    assert_eq!(workflows.len(), 1);
    assert_eq!(workflows[0].status, WorkflowStatus::Completed);
    let channel = slack.channel("incidents").unwrap();
    assert_eq!(channel.messages.len(), 1);
    let parent = &channel.messages[0];
    let lines: Vec<&str> = parent.text.lines().collect();
    assert_eq!(lines[0], "Resilient Incident: DoS attack in EMEA");
    assert!(
        lines[1].starts_with("Resilient URL: https://")
            && lines[1].ends_with(&format!("/#incidents/{id}")),
        "{lines:?}"
    );
    assert_eq!(lines[2], "Description: Web servers in EMEA are flooded.");
    assert_eq!(lines[3], "Confirmed: Yes");
    assert!(lines[4].starts_with("Create Date: 20") && lines[4].ends_with('Z'));
    // The documented fields, built by the workflow's pre-processing script (slack_details;
    // lists joined, where the function's own incident summary writes "[Web]").
    assert_eq!(
        lines[5..],
        [
            "Start Date: 2018-04-27T17:26:40Z",
            "Severity: High",
            "NIST Vectors: Web",
            "Incident Types: Denial of Service, Malware"
        ]
    );
    assert_eq!(parent.args["mrkdwn"], json!(true));
    assert_eq!(parent.args["parse"], json!("none"));
    assert_eq!(parent.username.as_deref(), Some("Resilient"));

    // The thread id (and channel) land on the incident, and a note says so.
    let inc = sim.incident(id).unwrap();
    assert_eq!(inc["properties"]["slack_thread_id"], json!(parent.ts));
    assert_eq!(inc["properties"]["slack_channel_id"], json!(channel.id));
    let notes: Vec<String> = sim.notes(id).iter().map(note_text).collect();
    assert_eq!(
        notes,
        [format!(
            "Incident was posted to Slack channel {} (thread {}).",
            channel.id, parent.ts
        )]
    );
    // That bookkeeping note is not echoed into the thread.
    assert!(wait_rule(&host, "Create Slack Reply", id).await.is_empty());
    assert!(slack.channel("incidents").unwrap().threads.is_empty());

    // A note added by an analyst is posted as a reply in the incident's thread.
    // Notes are HTML: the editor stores a typed "<!channel>" as "&lt;!channel&gt;".
    sim.add_note(
        id,
        "Blocked 203.0.113.7 at the firewall &lt;!channel&gt; @here",
    )
    .unwrap();
    let replies = wait_rule(&host, "Create Slack Reply", id).await;
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0].status, WorkflowStatus::Completed);
    let result = replies[0]
        .invocation
        .as_ref()
        .unwrap()
        .final_reply(WAIT)
        .await
        .unwrap()
        .results
        .unwrap();
    assert_eq!(result["content"]["ok"], json!(true));
    assert_eq!(result["content"]["message"]["thread_ts"], json!(parent.ts));
    let channel = slack.channel("incidents").unwrap();
    let thread = &channel.threads[&parent.ts];
    assert_eq!(thread.len(), 1);
    // As documented: the incident's URL, then the note; broadcast to the channel as well.
    let url = lines[1].trim_start_matches("Resilient URL: ");
    assert_eq!(
        thread[0].text,
        format!(
            "Resilient URL: {url}\nNote: Blocked 203.0.113.7 at the firewall &lt;!channel&gt; @here"
        )
    );
    assert_eq!(thread[0].thread_ts.as_deref(), Some(parent.ts.as_str()));
    assert_eq!(thread[0].args["reply_broadcast"], json!(true));
    // Under the note author's name, as the documentation shows.
    assert_eq!(thread[0].username.as_deref(), Some("Sim User"));
    assert!(thread[0].mentions().is_empty(), "nobody is pinged");
    assert_eq!(
        channel.messages.len(),
        2,
        "a broadcast reply shows in the channel too"
    );

    // A second note: a second reply, same thread.
    sim.add_note(id, "<div>Traffic is back to <b>normal</b>.</div>")
        .unwrap();
    let replies = wait_rule(&host, "Create Slack Reply", id).await;
    assert_eq!(replies.len(), 2);
    let thread = &slack.channel("incidents").unwrap().threads[&parent.ts];
    assert!(
        thread[1]
            .text
            .ends_with("\nNote: Traffic is back to normal."),
        "{}",
        thread[1].text
    );
    println!("{}", slack.transcript());
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
    host.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_note_on_an_incident_never_posted_fires_nothing() {
    let (slack, host) = start().await;
    let sim = host.sim();
    let id = sim.create_incident(json!({"name": "quiet"})).unwrap()["id"]
        .as_i64()
        .unwrap();
    sim.add_note(id, "nothing to share").unwrap();
    sim.wait_rules_idle(WAIT).await.unwrap();
    assert!(
        sim.rule_runs()
            .iter()
            .all(|r| r.rule != "Create Slack Reply")
    );
    assert!(slack.all_messages().is_empty());
    assert_eq!(slack.request_count("chat.postMessage"), 0);
    host.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reply_broadcast_shows_the_reply_in_the_channel_too() {
    let (slack, host) = start().await;
    let details = r#"{"Resilient Incident": {"type": "string", "data": "Phish"}}"#;
    let parent = host
        .invoke(
            "slack_post_message",
            json!({"slack_channel": "#incidents", "slack_details": details}),
        )
        .await
        .unwrap()
        .final_reply(WAIT)
        .await
        .unwrap();
    assert_eq!(parent.message_type, 0, "{}", parent.message);
    let content = &parent.results.unwrap()["content"];
    let ts = content["ts"].as_str().unwrap().to_string();
    let channel = content["channel"].as_str().unwrap().to_string();
    let reply = host
        .invoke(
            "slack_post_message",
            json!({"slack_channel": channel, "slack_text": "for everyone", "slack_thread_id": ts,
                   "slack_reply_broadcast": true}),
        )
        .await
        .unwrap()
        .final_reply(WAIT)
        .await
        .unwrap();
    assert_eq!(reply.message_type, 0, "{}", reply.message);
    let message = &reply.results.unwrap()["content"]["message"];
    assert_eq!(message["thread_ts"], json!(ts));
    assert_eq!(message["subtype"], json!("thread_broadcast"));
    let view = slack.channel(&channel).unwrap();
    let texts: Vec<&str> = view.messages.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(texts, ["Resilient Incident: Phish", "for everyone"]);
    assert_eq!(view.threads[&ts].len(), 1);
    host.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_errors_are_readable_and_the_host_keeps_serving() {
    let (slack, host) = start().await;
    let reply = host
        .invoke(
            "slack_post_message",
            json!({"slack_channel": "no-such-channel", "slack_text": "x"}),
        )
        .await
        .unwrap()
        .final_reply(WAIT)
        .await
        .unwrap();
    assert_eq!(reply.message_type, 1);
    assert!(
        reply.message.contains("channel_not_found") && reply.message.contains("invite the app"),
        "{}",
        reply.message
    );
    // Malformed details name the label.
    let reply = host
        .invoke(
            "slack_post_message",
            json!({"slack_details": r#"{"Where": {"type": "list", "data": [1]}}"#}),
        )
        .await
        .unwrap()
        .final_reply(WAIT)
        .await
        .unwrap();
    assert_eq!(reply.message_type, 1);
    assert!(
        reply.message.contains("\"Where\"") && reply.message.contains("unknown type"),
        "{}",
        reply.message
    );
    // Still serving.
    let reply = host
        .invoke("slack_post_message", json!({"slack_text": "still here"}))
        .await
        .unwrap()
        .final_reply(WAIT)
        .await
        .unwrap();
    assert_eq!(reply.message_type, 0, "{}", reply.message);
    assert_eq!(slack.all_messages().len(), 1);
    host.stop().await.unwrap();

    // A wrong token: invalid_auth, with what to do and without the token itself.
    let wrong = "xoxb-this-is-not-the-right-token";
    let host = start_with_token(&slack, wrong).await;
    let reply = host
        .invoke("slack_post_message", json!({"slack_text": "x"}))
        .await
        .unwrap()
        .final_reply(WAIT)
        .await
        .unwrap();
    assert_eq!(reply.message_type, 1);
    assert!(
        reply.message.contains("invalid_auth") && reply.message.contains("api_token"),
        "{}",
        reply.message
    );
    assert!(!reply.message.contains(wrong));
    let again = host
        .invoke("slack_post_message", json!({"slack_text": "y"}))
        .await
        .unwrap()
        .final_reply(WAIT)
        .await
        .unwrap();
    assert_eq!(again.message_type, 1, "the host answers the next call too");
    host.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_is_waited_out_and_the_message_posted_exactly_once() {
    let (slack, host) = start().await;
    slack.rate_limit_next("chat.postMessage", 1, 1);
    let started = Instant::now();
    let inv = host
        .invoke(
            "slack_post_message",
            json!({"slack_text": "after the limit"}),
        )
        .await
        .unwrap();
    let reply = inv.final_reply(WAIT).await.unwrap();
    let elapsed = started.elapsed();
    assert_eq!(reply.message_type, 0, "{}", reply.message);
    assert!(elapsed >= Duration::from_secs(1), "{elapsed:?}");
    let statuses: Vec<String> = inv.statuses().into_iter().map(|s| s.message).collect();
    assert!(
        statuses
            .iter()
            .any(|s| s.contains("HTTP 429") && s.contains("waiting 1 s")),
        "{statuses:?}"
    );
    assert_eq!(slack.request_count("chat.postMessage"), 2);
    let posted: Vec<String> = slack.all_messages().into_iter().map(|m| m.text).collect();
    assert_eq!(posted, ["after the limit"]);

    // Longer than max_rate_limit_wait (5 s): an error at once, nothing posted, no retry.
    slack.rate_limit_next("chat.postMessage", 1, 30);
    let reply = host
        .invoke(
            "slack_post_message",
            json!({"slack_text": "too long a wait"}),
        )
        .await
        .unwrap()
        .final_reply(WAIT)
        .await
        .unwrap();
    assert_eq!(reply.message_type, 1);
    assert!(
        reply.message.contains("rate limited") && reply.message.contains("max_rate_limit_wait"),
        "{}",
        reply.message
    );
    assert_eq!(slack.request_count("chat.postMessage"), 3);
    assert_eq!(slack.all_messages().len(), 1);
    host.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_error_is_not_repeated() {
    let (slack, host) = start().await;
    slack.fail_next("chat.postMessage", "internal_error", 1);
    let reply = host
        .invoke("slack_post_message", json!({"slack_text": "once"}))
        .await
        .unwrap()
        .final_reply(WAIT)
        .await
        .unwrap();
    assert_eq!(reply.message_type, 1);
    assert!(
        reply.message.contains("internal_error"),
        "{}",
        reply.message
    );
    assert_eq!(slack.request_count("chat.postMessage"), 1);
    host.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn selftest_calls_auth_test() {
    let slack = SlackEmulator::start(SlackConfig::default()).await.unwrap();
    for (token, ok) in [(slack.token(), true), ("xoxb-wrong".to_string(), false)] {
        let config = soar_engine::config::AppConfig::parse(
            &format!(
                "[resilient]\nhost = localhost\n\n{}",
                section(&slack, &token)
            ),
            std::path::Path::new("app.config"),
        )
        .unwrap();
        let kit =
            soar_sdk::testkit::TestKit::with_config(fn_slack::NAME, config.to_source()).unwrap();
        let report = kit.selftest().await;
        assert_eq!(
            report.state == soar_sdk::SelftestState::Success,
            ok,
            "{report:?}"
        );
        if !ok {
            let reason = report.reason.unwrap();
            assert!(reason.contains("invalid_auth"), "{reason}");
        }
    }
    assert_eq!(slack.request_count("auth.test"), 2);
}

/// `slack_post_message` with `inputs`, to its final reply.
async fn call(host: &TestHost, inputs: Value) -> soar_sim::Reply {
    host.invoke("slack_post_message", inputs)
        .await
        .unwrap()
        .final_reply(WAIT)
        .await
        .unwrap()
}

/// An org that still holds the 2018 definitions: booleans are selects ("true"/"false"), the
/// markdown input is `slack_markdwn`, and the workflows read the thread id from `results.ts`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_2018_definitions_keep_working() {
    let (slack, host) = start().await;
    let reply = call(&host, json!({
            "slack_channel": "incidents",
            "slack_details": r#"{"Resilient Incident": {"type": "string", "data": "Old style"}}"#,
            "slack_markdwn": {"id": 401, "name": "false"},
            "slack_reply_broadcast": {"id": 402, "name": "false"},
            "slack_as_user": {"id": 403, "name": "false"},
            "slack_link_names": {"id": 404, "name": "true"},
            "slack_parse": {"id": 405, "name": "none"},
    })).await;
    assert_eq!(reply.message_type, 0, "{}", reply.message);
    let results = reply.results.unwrap();
    let ts = results["ts"]
        .as_str()
        .expect("results.ts, as 2018 workflows read it");
    assert_eq!(results["content"]["ts"], json!(ts));
    assert_eq!(results["success"], json!(true));
    let posted = slack.all_messages();
    assert_eq!(posted.len(), 1);
    assert_eq!(posted[0].ts, ts);
    assert_eq!(posted[0].text, "Resilient Incident: Old style");
    assert_eq!(posted[0].args["mrkdwn"], json!(false));
    assert_eq!(posted[0].args["link_names"], json!(true));
    assert_eq!(posted[0].args["as_user"], json!(false));

    // The reply of the 2018 flow: thread id from results.ts.
    let reply = call(
        &host,
        json!({
                "slack_channel": "incidents",
                "slack_details": r#"{"Note": {"type": "string", "data": "Contained"}}"#,
                "slack_thread_id": ts,
                "slack_reply_broadcast": {"id": 402, "name": "true"},
        }),
    )
    .await;
    assert_eq!(reply.message_type, 0, "{}", reply.message);
    let replies: Vec<_> = slack
        .all_messages()
        .into_iter()
        .filter(|m| m.is_reply())
        .collect();
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0].thread_ts.as_deref(), Some(ts));
    assert!(replies[0].reply_broadcast);
    host.stop().await.unwrap();
}

/// Incident text cannot notify anyone: the shipped workflows post with `parse=none` and no
/// `link_names`, and `<`/`>` are escaped, so Slack shows `@channel` and `<!here>` as written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incident_text_pings_nobody() {
    let (slack, host) = start().await;
    let sim = host.sim();
    let incident = sim
        .create_incident(json!({
            "name": "@channel all servers down <!here>",
            "description": {"format": "html", "content": "<div>ask @here and @bob</div>"},
        }))
        .unwrap();
    let id = incident["id"].as_i64().unwrap();
    let run = sim
        .run_manual_rule("Create Slack Message", id, json!({}))
        .await
        .unwrap();
    run.wait(WAIT).await.unwrap();
    let posted = slack.all_messages();
    assert_eq!(posted.len(), 1);
    assert_eq!(
        posted[0].mentions(),
        Vec::<String>::new(),
        "{:?}",
        posted[0]
    );
    let shown = posted[0].rendered();
    assert!(
        shown.contains("Resilient Incident: @channel all servers down <!here>")
            && shown.contains("ask @here and @bob"),
        "{shown}"
    );
    // The emulator does see a mention when a post asks Slack to parse the text.
    let reply = call(
        &host,
        json!({"slack_channel": "incidents", "slack_text": "@channel hello", "slack_parse": "full"}),
    )
    .await;
    assert_eq!(reply.message_type, 0, "{}", reply.message);
    let last = slack.all_messages().pop().unwrap();
    assert_eq!(last.mentions(), ["@channel"]);
    host.stop().await.unwrap();
}

/// The documented configuration (`[fn_slack]` with `api_token` and `username` only): the
/// channel is set in the workflow's Input tab. Left empty there too, the error says where to
/// set it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_channel_comes_from_the_workflows_input_tab() {
    let mut config = SlackConfig::default();
    config
        .channels
        .push(slack_emulator::ChannelSpec::public("soc-alerts"));
    let slack = SlackEmulator::start(config).await.unwrap();
    let host = TestHost::start_with(
        vec![Run::Registered(fn_slack::NAME)],
        TestOptions {
            sections: format!(
                "[fn_slack]\napi_token = {}\nusername = Resilient\napi_url = {}\n",
                slack.token(),
                slack.api_url()
            ),
            ..TestOptions::default()
        },
    )
    .await
    .unwrap();
    let sim = host.sim();
    let id = sim.create_incident(json!({"name": "Phish"})).unwrap()["id"]
        .as_i64()
        .unwrap();

    // As shipped (the Input tab's channel empty) and no [fn_slack] channel.
    let run = sim
        .run_manual_rule("Create Slack Message", id, json!({}))
        .await
        .unwrap();
    let workflows = run.wait(WAIT).await.unwrap();
    let WorkflowStatus::Failed(message) = &workflows[0].status else {
        panic!("{:?}", workflows[0].status)
    };
    assert!(
        message.contains("Input tab") && message.contains("[fn_slack] channel"),
        "{message}"
    );
    assert!(slack.all_messages().is_empty());

    // The administrator sets the channel in the workflow's Input tab.
    let mut edited = soar_engine::testkit::definitions_of(fn_slack::NAME).unwrap();
    let workflow = (edited.workflows.iter_mut())
        .find(|w| w.name == "create_slack_message")
        .unwrap();
    workflow.inputs.insert(
        "slack_channel".into(),
        soar_engine::customize::model::InputValue::Static(json!("soc-alerts")),
    );
    soar_engine::testkit::customize_sim(sim, &edited)
        .await
        .unwrap();
    let run = sim
        .run_manual_rule("Create Slack Message", id, json!({}))
        .await
        .unwrap();
    let workflows = run.wait(WAIT).await.unwrap();
    assert_eq!(workflows[0].status, WorkflowStatus::Completed);
    let posted = slack.channel("soc-alerts").unwrap();
    assert_eq!(posted.messages.len(), 1);
    assert!(
        posted.messages[0]
            .text
            .starts_with("Resilient Incident: Phish")
    );
    host.stop().await.unwrap();
}

/// A workflow whose pre-processing script is written as the original apps write theirs (a
/// function, locals, `if`/`else`, `u"""…""".format`) runs in the simulated platform (in
/// Python) and posts what the script built.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workflow_with_the_original_apps_script_style_runs() {
    if soar_sim::python::interpreter().is_none() {
        eprintln!("no python3: scripts beyond the interpreter's grammar cannot run here");
        return;
    }
    let (slack, host) = start().await;
    let sim = host.sim();
    let script = r#"
def esc(s):
    return (s or u"").replace(u'\\', u'\\\\').replace(u'"', u'\\"')
if incident.confirmed:
    confirmed = u"true"
else:
    confirmed = u"false"
inputs.slack_details = u"""{{"Resilient Incident": {{"type": "string", "data": "{0}"}}, "Resilient URL": {{"type": "incident", "data": "{1}"}}, "Confirmed": {{"type": "boolean", "data": "{2}"}}}}""".format(esc(incident.name), incident.id, confirmed)
"#;
    let mut export = testkit::definitions_of(fn_slack::NAME).unwrap().export();
    testkit::set_workflow_script(
        &mut export,
        "create_slack_message",
        "pre_processing_script",
        script,
    );
    testkit::import_sim(sim, &export).await.unwrap();
    let incident = sim
        .create_incident(json!({"name": "Phish \"urgent\" \\ C:\\temp", "confirmed": false}))
        .unwrap();
    let id = incident["id"].as_i64().unwrap();
    let run = sim
        .run_manual_rule("Create Slack Message", id, json!({}))
        .await
        .unwrap();
    let workflows = run.wait(WAIT).await.unwrap();
    assert_eq!(workflows[0].status, WorkflowStatus::Completed);
    let text = slack.channel("incidents").unwrap().messages[0].text.clone();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "Resilient Incident: Phish \"urgent\" \\ C:\\temp");
    assert!(lines[1].ends_with(&format!("/#incidents/{id}")), "{text}");
    assert_eq!(lines[2], "Confirmed: No");
}
