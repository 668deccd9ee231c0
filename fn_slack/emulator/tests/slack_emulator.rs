//! The Slack Web API emulator over HTTP, as a client sees it: auth (Bearer and form token),
//! JSON and form bodies, posting, threads, broadcasts, permalinks, channel listing, the error
//! answers of Slack's docs, 429 with Retry-After on demand, and the inspection API.

use std::time::Duration;

use serde_json::{Value, json};
use slack_emulator::{ChannelSpec, SlackConfig, SlackEmulator};

fn http() -> reqwest::Client {
    let tls = soar_tls::client_config(&soar_tls::CaSource::Insecure).unwrap();
    reqwest::Client::builder()
        .tls_backend_preconfigured((*tls).clone())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

struct Api {
    http: reqwest::Client,
    url: String,
    token: String,
}

impl Api {
    async fn new() -> (SlackEmulator, Api) {
        let slack = SlackEmulator::start(SlackConfig::default()).await.unwrap();
        let api = Api {
            http: http(),
            url: slack.api_url(),
            token: slack.token(),
        };
        (slack, api)
    }

    async fn json(&self, method: &str, body: Value) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}{method}", self.url))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap())
    }

    async fn form(&self, method: &str, form: &str) -> Value {
        self.http
            .post(format!("{}{method}", self.url))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form.to_string())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn posts_threads_broadcasts_and_permalinks() {
    let (slack, api) = Api::new().await;
    let (status, parent) = api
        .json(
            "chat.postMessage",
            json!({"channel": "#incidents", "text": "Resilient Incident: DoS", "username": "Resilient", "mrkdwn": true}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(parent["ok"], json!(true), "{parent}");
    let channel = parent["channel"].as_str().unwrap().to_string();
    assert!(channel.starts_with('C'), "{channel}");
    let ts = parent["ts"].as_str().unwrap().to_string();
    let (secs, micros) = ts.split_once('.').unwrap();
    assert!(secs.len() >= 10 && micros.len() == 6, "{ts}");
    assert_eq!(parent["message"]["text"], json!("Resilient Incident: DoS"));
    assert_eq!(parent["message"]["username"], json!("Resilient"));
    assert!(parent["message"].get("thread_ts").is_none());

    // A reply by channel ID, then a broadcast reply addressed with a reply's ts.
    let (_, reply) = api
        .json(
            "chat.postMessage",
            json!({"channel": channel, "text": "a note", "thread_ts": ts}),
        )
        .await;
    assert_eq!(reply["message"]["thread_ts"], json!(ts), "{reply}");
    let reply_ts = reply["ts"].as_str().unwrap().to_string();
    assert!(reply_ts > ts);
    let (_, broadcast) = api
        .json(
            "chat.postMessage",
            json!({"channel": "incidents", "text": "loud note", "thread_ts": reply_ts, "reply_broadcast": true}),
        )
        .await;
    assert_eq!(broadcast["message"]["thread_ts"], json!(ts), "{broadcast}");
    assert_eq!(broadcast["message"]["subtype"], json!("thread_broadcast"));

    // Inspection: the channel shows the parent and the broadcast; the thread has both replies.
    let view = slack.channel("incidents").unwrap();
    let texts: Vec<&str> = view.messages.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(texts, ["Resilient Incident: DoS", "loud note"]);
    let thread: Vec<&str> = view.threads[&ts].iter().map(|m| m.text.as_str()).collect();
    assert_eq!(thread, ["a note", "loud note"]);
    assert_eq!(view.messages[0].args["mrkdwn"], json!(true));
    assert_eq!(slack.channel(&channel).unwrap().name, "incidents");
    let transcript = slack.transcript();
    assert!(
        transcript.contains("#incidents") && transcript.contains("2 replies"),
        "{transcript}"
    );

    // Permalinks.
    let (_, link) = api
        .json(
            "chat.getPermalink",
            json!({"channel": channel, "message_ts": ts}),
        )
        .await;
    assert_eq!(
        link["permalink"],
        json!(format!(
            "https://soar-sim.slack.com/archives/{channel}/p{}",
            ts.replace('.', "")
        ))
    );
    let (_, link) = api
        .json(
            "chat.getPermalink",
            json!({"channel": channel, "message_ts": reply_ts}),
        )
        .await;
    assert!(
        link["permalink"]
            .as_str()
            .unwrap()
            .ends_with(&format!("?thread_ts={ts}&cid={channel}")),
        "{link}"
    );
    let (_, missing) = api
        .json(
            "chat.getPermalink",
            json!({"channel": channel, "message_ts": "1.000001"}),
        )
        .await;
    assert_eq!(missing["error"], json!("message_not_found"));

    // conversations.replies and .history see the same.
    let (_, replies) = api
        .json(
            "conversations.replies",
            json!({"channel": channel, "ts": ts}),
        )
        .await;
    assert_eq!(replies["messages"].as_array().unwrap().len(), 3);
    let (_, history) = api
        .json("conversations.history", json!({"channel": channel}))
        .await;
    assert_eq!(history["messages"][0]["text"], json!("loud note"));
}

#[tokio::test]
async fn ts_is_unique_and_increasing_per_channel() {
    let (slack, api) = Api::new().await;
    let mut seen = Vec::new();
    for i in 0..50 {
        let (_, a) = api
            .json(
                "chat.postMessage",
                json!({"channel": "general", "text": format!("m{i}")}),
            )
            .await;
        seen.push(a["ts"].as_str().unwrap().to_string());
    }
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, seen);
    assert_eq!(slack.channel("general").unwrap().messages.len(), 50);
}

#[tokio::test]
async fn form_bodies_and_form_tokens_work_like_slackclient_1x() {
    let (slack, api) = Api::new().await;
    let token = slack.token();
    let a = api
        .form(
            "chat.postMessage",
            &format!("token={token}&channel=general&text=a%20%26%20b&as_user=False&link_names=1"),
        )
        .await;
    assert_eq!(a["ok"], json!(true), "{a}");
    assert_eq!(a["message"]["text"], json!("a & b"));
    let reqs = slack.requests();
    let last = reqs.last().unwrap();
    assert_eq!(last.auth, "form");
    // The token is never stored with the message.
    let msg = &slack.channel("general").unwrap().messages[0];
    assert!(msg.args.get("token").is_none());
    assert_eq!(msg.args["link_names"], json!("1"));
    // A GET with query arguments (slack_sdk sends chat.getPermalink this way).
    let link: Value = api
        .http
        .get(format!(
            "{}chat.getPermalink?channel=general&message_ts={}",
            api.url,
            a["ts"].as_str().unwrap()
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(link["ok"], json!(true), "{link}");
}

#[tokio::test]
async fn error_answers_follow_slacks_docs() {
    let (slack, api) = Api::new().await;
    let err = |v: &Value| v["error"].as_str().unwrap_or("(none)").to_string();
    let post = |channel: &'static str, extra: Value| {
        let mut body = json!({"channel": channel, "text": "x"});
        if let (Value::Object(b), Value::Object(e)) = (&mut body, extra) {
            b.extend(e);
        }
        body
    };
    let (_, a) = api.json("chat.postMessage", post("nope", json!({}))).await;
    assert_eq!(err(&a), "channel_not_found");
    let (_, a) = api
        .json("chat.postMessage", post("old-incidents", json!({})))
        .await;
    assert_eq!(err(&a), "is_archived");
    let (_, a) = api
        .json("chat.postMessage", post("no-bot-here", json!({})))
        .await;
    assert_eq!(err(&a), "not_in_channel");
    let (_, a) = api
        .json("chat.postMessage", post("general", json!({"text": ""})))
        .await;
    assert_eq!(err(&a), "no_text");
    let (_, a) = api
        .json(
            "chat.postMessage",
            post("general", json!({"text": "x".repeat(40_001)})),
        )
        .await;
    assert_eq!(err(&a), "msg_too_long");
    let (_, a) = api
        .json(
            "chat.postMessage",
            post("general", json!({"thread_ts": "123.000001"})),
        )
        .await;
    assert_eq!(err(&a), "thread_not_found");
    // Auth.
    let a = api.form("chat.postMessage", "channel=general&text=x").await;
    assert_eq!(err(&a), "not_authed");
    let a = api
        .form("auth.test", "token=xoxb-wrong&channel=general")
        .await;
    assert_eq!(err(&a), "invalid_auth");
    // Bodies.
    let r: Value = api
        .http
        .post(format!("{}chat.postMessage", api.url))
        .bearer_auth(&api.token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(err(&r), "invalid_json");
    let (_, a) = api.json("chat.nope", json!({})).await;
    assert_eq!(err(&a), "unknown_method");
    // api.test needs no token and echoes its arguments (and an error on request).
    let a = api.form("api.test", "foo=bar").await;
    assert_eq!(a, json!({"ok": true, "args": {"foo": "bar"}}));
    let a = api.form("api.test", "error=my_error").await;
    assert_eq!(err(&a), "my_error");
    // auth.test.
    let (_, a) = api.json("auth.test", json!({})).await;
    assert_eq!(a["ok"], json!(true));
    assert_eq!(a["url"], json!("https://soar-sim.slack.com/"));
    // Injected errors, then normal service.
    slack.fail_next("chat.postMessage", "internal_error", 1);
    let (_, a) = api
        .json("chat.postMessage", post("general", json!({})))
        .await;
    assert_eq!(err(&a), "internal_error");
    let (_, a) = api
        .json("chat.postMessage", post("general", json!({})))
        .await;
    assert_eq!(a["ok"], json!(true));
    assert_eq!(slack.channel("general").unwrap().messages.len(), 1);
}

#[tokio::test]
async fn rate_limits_on_demand_are_429_with_retry_after_and_not_processed() {
    let (slack, api) = Api::new().await;
    slack.rate_limit_next("chat.postMessage", 2, 3);
    for _ in 0..2 {
        let r = api
            .http
            .post(format!("{}chat.postMessage", api.url))
            .bearer_auth(&api.token)
            .json(&json!({"channel": "general", "text": "x"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 429);
        assert_eq!(r.headers()["retry-after"], "3");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body, json!({"ok": false, "error": "ratelimited"}));
    }
    assert!(slack.channel("general").unwrap().messages.is_empty());
    let (status, a) = api
        .json(
            "chat.postMessage",
            json!({"channel": "general", "text": "x"}),
        )
        .await;
    assert_eq!((status, a["ok"].clone()), (200, json!(true)));
    assert_eq!(slack.request_count("chat.postMessage"), 3);
    assert_eq!(
        slack.requests().iter().filter(|r| r.status == 429).count(),
        2
    );
}

#[tokio::test]
async fn conversations_list_pages_and_filters() {
    let (slack, api) = Api::new().await;
    slack.add_channel(ChannelSpec {
        is_private: true,
        ..ChannelSpec::public("secret-soc")
    });
    let (_, all) = api
        .json(
            "conversations.list",
            json!({"types": "public_channel,private_channel", "limit": 2}),
        )
        .await;
    assert_eq!(all["channels"].as_array().unwrap().len(), 2);
    let mut names: Vec<String> = Vec::new();
    let mut cursor = String::new();
    loop {
        let mut body = json!({"types": "public_channel,private_channel", "limit": 2, "exclude_archived": true});
        if !cursor.is_empty() {
            body["cursor"] = json!(cursor);
        }
        let (_, page) = api.json("conversations.list", body).await;
        for c in page["channels"].as_array().unwrap() {
            names.push(c["name"].as_str().unwrap().to_string());
        }
        cursor = page["response_metadata"]["next_cursor"]
            .as_str()
            .unwrap()
            .to_string();
        if cursor.is_empty() {
            break;
        }
    }
    assert_eq!(
        names,
        [
            "general",
            "incidents",
            "random",
            "no-bot-here",
            "secret-soc"
        ]
    );
    let (_, public) = api.json("conversations.list", json!({})).await;
    assert!(
        public["channels"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["is_private"] == json!(false))
    );
    // The inspection endpoint.
    let state: Value = api
        .http
        .get(format!("http://{}/emulator/state", slack.addr()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(state["channels"].as_array().unwrap().len(), 6);
}

#[tokio::test]
async fn metadata_is_kept_and_returned_only_when_asked_for() {
    let (_slack, api) = Api::new().await;
    let metadata =
        json!({"event_type": "soar_invocation", "event_payload": {"invocation_key": "m-1"}});
    let (_, posted) = api
        .json(
            "chat.postMessage",
            json!({"channel": "incidents", "text": "one", "metadata": metadata}),
        )
        .await;
    let channel = posted["channel"].as_str().unwrap().to_string();
    // A form post carries metadata as JSON text.
    let form = format!(
        "token={}&channel={channel}&text=two&metadata=%7B%22event_type%22%3A%22x%22%2C%22event_payload%22%3A%7B%7D%7D",
        api.token
    );
    assert_eq!(api.form("chat.postMessage", &form).await["ok"], json!(true));

    let (_, plain) = api
        .json("conversations.history", json!({"channel": channel}))
        .await;
    assert!(plain["messages"][1].get("metadata").is_none(), "{plain}");
    let (_, with) = api
        .json(
            "conversations.history",
            json!({"channel": channel, "include_all_metadata": true, "limit": 1}),
        )
        .await;
    assert_eq!(with["messages"].as_array().unwrap().len(), 1);
    assert_eq!(with["has_more"], json!(true));
    assert_eq!(with["messages"][0]["metadata"]["event_type"], json!("x"));
    let (_, all) = api
        .json(
            "conversations.history",
            json!({"channel": channel, "include_all_metadata": "true"}),
        )
        .await;
    assert_eq!(all["messages"][1]["metadata"], metadata);
}
