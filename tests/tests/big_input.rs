//! Big user input does not hold up anyone else: incidents whose description is megabytes of
//! `<` or deeply nested HTML go through fn_trustar's report and fn_slack's message in linear
//! time, off the async threads, cut at the documented limits with a note; meanwhile an
//! unrelated fn_hello call is answered and the STOMP connection (its heart-beats) stays up.
//! (Measured before: two 1.2 MB descriptions of `<` delayed fn_hello by 44 s and the broker
//! dropped the connection for missed heart-beats.)

use std::time::Duration;

use fn_hello as _;
use fn_slack as _;
use fn_trustar as _;
use serde_json::json;
use slack_emulator::{SlackConfig, SlackEmulator};
use soar_engine::testkit::{Run, TestHost, TestOptions};
use trustar_emulator::{TrustarConfig, TrustarEmulator};

const WAIT: Duration = Duration::from_secs(60);

fn sections(emu: &TrustarEmulator, slack: &SlackEmulator) -> String {
    format!(
        "[trustar]\nqueue = trustar\n\n\
         [trustar_soc]\nurl = {url}/\nuser_api_key = {key}\nuser_api_secret = {secret}\n\
         enclave_ids_for_submission = {enclave}\nworkspace = Default workspace\n\
         auto_submission = enable\n\n\
         [fn_slack]\napi_token = {token}\nusername = Resilient\nchannel = incidents\n\
         api_url = {slack_url}\n",
        url = emu.url(),
        key = emu.api_key(),
        secret = emu.api_secret(),
        enclave = emu.enclave_ids()[0],
        token = slack.token(),
        slack_url = slack.api_url(),
    )
}

async fn wait_until<F: FnMut() -> bool>(what: &str, mut f: F) {
    let start = std::time::Instant::now();
    while !f() {
        assert!(start.elapsed() < WAIT, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn megabytes_of_hostile_html_hold_up_no_one() {
    let emu = TrustarEmulator::start(TrustarConfig::default())
        .await
        .unwrap();
    let slack = SlackEmulator::start(SlackConfig::default()).await.unwrap();
    let host = TestHost::start_with(
        vec![
            Run::Registered("fn_trustar"),
            Run::Registered(fn_slack::NAME),
            Run::Registered("fn_hello"),
        ],
        TestOptions {
            sections: sections(&emu, &slack),
            ..TestOptions::default()
        },
    )
    .await
    .unwrap();
    let sim = host.sim();
    let connections = sim.stats().connections_accepted;

    // Two incidents of 1.2 MB of `<` each: fn_trustar's CaseCreated builds their reports.
    let lts = "<".repeat(1_200_000);
    let mut ids = Vec::new();
    for name in ["lt one", "lt two"] {
        let incident = sim
            .create_incident(json!({"name": name, "description": lts}))
            .unwrap();
        ids.push(incident["id"].as_i64().unwrap());
    }
    // A Slack message from 1.2 MB of nested <div>: rendered in one pass, cut at Slack's limit.
    let nested = format!("{}deep{}", "<div>".repeat(200_000), "</div>".repeat(10));
    let slack_post = sim
        .invoke(
            "slack_post_message",
            json!({"slack_channel": "incidents", "slack_text": nested}),
        )
        .await
        .unwrap();
    let long_text = format!("<p>{}</p>", "word &amp; ".repeat(200_000));
    let slack_long = sim
        .invoke(
            "slack_post_message",
            json!({"slack_channel": "incidents", "slack_text": long_text}),
        )
        .await
        .unwrap();

    // Meanwhile an unrelated call is answered.
    let hello = sim
        .invoke("fn_hello", json!({"hello_text": "still here"}))
        .await
        .unwrap();
    let reply = hello.final_reply(WAIT).await.unwrap();
    assert_eq!(reply.message_type, 0, "{reply:?}");

    // The reports carry the description cut at 1 MiB, with a note.
    for id in &ids {
        let ext = format!("RESILIENT{id}");
        wait_until("the report", || emu.report_by_external_id(&ext).is_some()).await;
        let report = emu.report_by_external_id(&ext).unwrap();
        let body = report["reportBody"].as_str().unwrap();
        assert!(
            body.contains("[truncated: 151424 of 1200000 bytes left out"),
            "{}",
            &body[body.len().saturating_sub(300)..]
        );
    }
    for inv in [&slack_post, &slack_long] {
        let reply = inv.final_reply(WAIT).await.unwrap();
        assert_eq!(reply.message_type, 0, "{reply:?}");
    }
    let messages = slack.all_messages();
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert!(messages.iter().any(|m| m.text == "deep"), "{messages:?}");
    let long = messages.iter().find(|m| m.text != "deep").unwrap();
    let chars = long.text.chars().count();
    assert!((39_990..=40_000).contains(&chars), "{chars} characters");
    assert!(
        long.text
            .ends_with("\n[message cut at Slack's 40,000 characters]"),
        "{}",
        &long.text[long.text.len() - 100..]
    );
    assert!(long.text.starts_with("word &amp; word &amp; "));

    // No heart-beat was missed: the host kept its one connection.
    assert_eq!(sim.stats().connections_accepted, connections);
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
    host.stop().await.unwrap();
}
