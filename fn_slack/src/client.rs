//! A small Slack Web API client: `POST <api_url><method>` with a JSON body and
//! `Authorization: Bearer <token>`, as Slack recommends for write methods.
//!
//! Retries: only an HTTP 429 is retried, because Slack did not process that request. The wait
//! is Slack's `Retry-After`, reported through a callback (the handler sends it as a status
//! message), and the total wait is bounded. Any other failure after the request was sent (a
//! timeout, a dropped connection, a 5xx) is returned at once: the message may already be in the
//! channel, and sending it again could post it twice.
//!
//! The token is only ever put in the `Authorization` header; no error or log line contains it.

use std::future::Future;
use std::time::Duration;

use serde_json::Value;
use soar_sdk::Secret;
use soar_sdk::http::reqwest::header::{AUTHORIZATION, HeaderValue};
use soar_sdk::http::reqwest::{self, StatusCode};
use soar_sdk::http::{error_text, retry_after};

/// Most 429 answers honoured for one call (besides the time bound).
const MAX_RATE_LIMIT_RETRIES: u32 = 10;

/// Why a Slack call failed. The texts say what to do and never contain the token.
#[derive(Debug, thiserror::Error)]
pub enum SlackError {
    /// Slack answered `{"ok": false, "error": code}`.
    #[error("Slack {method} failed with error \"{code}\": {advice}")]
    Api {
        method: String,
        code: String,
        advice: String,
        /// Slack's whole answer.
        answer: Box<Value>,
    },
    /// HTTP 429 for longer than we may wait.
    #[error(
        "Slack {method} is rate limited (HTTP 429): Slack asks to wait {retry_after} s more after {waited} s of waiting, beyond max_rate_limit_wait = {limit} s in [fn_slack]; the message was not posted, run the workflow again later"
    )]
    RateLimited {
        method: String,
        retry_after: u64,
        waited: u64,
        limit: u64,
    },
    /// The request never reached Slack (connection refused, DNS, TLS handshake).
    #[error(
        "cannot reach Slack at {url} for {method}: {reason}; nothing was posted (check api_url, proxy and cafile in [fn_slack])"
    )]
    Connect {
        method: String,
        url: String,
        reason: String,
    },
    /// No complete answer after the request was sent.
    #[error(
        "Slack {method}: {reason}; the request may have reached Slack, so it was not sent again (look in the channel before running the workflow again)"
    )]
    NoAnswer { method: String, reason: String },
    /// An HTTP error status other than 429.
    #[error(
        "Slack {method} answered HTTP {status}{detail}; the request may have reached Slack, so it was not sent again"
    )]
    Http {
        method: String,
        status: u16,
        detail: String,
    },
    /// A 200 whose body is not a JSON object.
    #[error("Slack {method} answered something that is not a JSON object: {snippet}")]
    NotJson { method: String, snippet: String },
    /// The HTTP client cannot be built (bad proxy URL, ...).
    #[error("cannot set up the Slack HTTP client: {0}")]
    Setup(String),
}

/// What to do about a Slack error code.
pub fn advice(code: &str) -> &'static str {
    match code {
        "channel_not_found" => {
            "the channel does not exist or the app cannot see it: check slack_channel (a name such as incidents or an ID such as C0123456789) and invite the app to the channel (/invite @<app> in Slack)"
        }
        "not_in_channel" => {
            "the app is not a member of the channel: invite it (/invite @<app> in Slack)"
        }
        "is_archived" => "the channel is archived: unarchive it or choose another channel",
        "not_authed" => "no token was sent: set api_token in [fn_slack]",
        "invalid_auth" => {
            "Slack does not accept the token: check api_token in [fn_slack] (a bot token xoxb-… of the installed app)"
        }
        "account_inactive" | "token_revoked" | "token_expired" => {
            "the token is no longer valid: reinstall the Slack app and update api_token in [fn_slack]"
        }
        "missing_scope" => {
            "the token lacks a scope (see \"needed\"): add it to the Slack app (chat:write) and reinstall it"
        }
        "no_permission" | "restricted_action" | "ekm_access_denied" => {
            "the workspace does not allow this app to post there: ask a Slack admin"
        }
        "no_text" => "the message is empty: check slack_details",
        "msg_too_long" => "the message is longer than Slack allows: shorten slack_details",
        "thread_not_found" | "invalid_thread_ts" => {
            "the thread does not exist in that channel: check slack_thread_id (the ts of the parent message) and slack_channel"
        }
        "rate_limited" | "ratelimited" => {
            "Slack is limiting posts to this channel: try again later"
        }
        "invalid_arguments" | "invalid_arg_name" | "invalid_array_arg" | "invalid_json"
        | "json_not_object" | "invalid_form_data" | "invalid_post_type" | "invalid_charset"
        | "missing_post_type" => "Slack rejected the request format; please report this as a bug",
        "request_timeout" | "fatal_error" | "internal_error" | "service_unavailable" => {
            "Slack had a server problem; the message may or may not have been posted, look in the channel before retrying"
        }
        _ => "see Slack's documentation of this error for the method",
    }
}

/// A Slack Web API client. Cheap to clone.
#[derive(Clone)]
pub struct SlackClient {
    http: reqwest::Client,
    /// Base URL ending in `/` (`https://slack.com/api/`).
    api_url: String,
    token: Secret,
    /// Longest total time to wait on 429 `Retry-After` answers for one call.
    max_rate_limit_wait: Duration,
}

impl std::fmt::Debug for SlackClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlackClient")
            .field("api_url", &self.api_url)
            .field("token", &self.token)
            .field("max_rate_limit_wait", &self.max_rate_limit_wait)
            .finish()
    }
}

/// How a call's arguments travel.
#[derive(Clone, Copy)]
enum Args<'a> {
    Json(&'a Value),
    Query(&'a [(&'a str, &'a str)]),
}

impl SlackClient {
    /// A client over `http` (built by the SDK from `[fn_slack]`).
    pub fn new(
        http: reqwest::Client,
        api_url: String,
        token: Secret,
        max_rate_limit_wait: Duration,
    ) -> SlackClient {
        SlackClient {
            http,
            api_url,
            token,
            max_rate_limit_wait,
        }
    }

    /// The API base URL.
    pub fn api_url(&self) -> &str {
        &self.api_url
    }

    /// Calls `method` with a JSON `body`. `on_wait(seconds, attempt)` is awaited before each
    /// wait on a 429. Returns Slack's answer when `ok` is true.
    pub async fn call<F, Fut>(
        &self,
        method: &str,
        body: &Value,
        on_wait: F,
    ) -> Result<Value, SlackError>
    where
        F: FnMut(u64, u32) -> Fut,
        Fut: Future<Output = ()>,
    {
        self.request(method, Args::Json(body), on_wait).await
    }

    /// Calls a read method (`conversations.history`...) with its arguments in the query
    /// string, as Slack takes them for every method; waits on a 429 like [`call`](Self::call).
    pub async fn read(&self, method: &str, query: &[(&str, &str)]) -> Result<Value, SlackError> {
        self.request(method, Args::Query(query), |_, _| async {})
            .await
    }

    async fn request<F, Fut>(
        &self,
        method: &str,
        args: Args<'_>,
        mut on_wait: F,
    ) -> Result<Value, SlackError>
    where
        F: FnMut(u64, u32) -> Fut,
        Fut: Future<Output = ()>,
    {
        let url = format!("{}{method}", self.api_url);
        let mut auth =
            HeaderValue::from_str(&format!("Bearer {}", self.token.expose())).map_err(|_| {
                SlackError::Setup(
                "api_token in [fn_slack] contains characters that cannot be sent in an HTTP header"
                    .into(),
            )
            })?;
        auth.set_sensitive(true);
        let limit = self.max_rate_limit_wait.as_secs();
        let mut waited = 0u64;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let request = match args {
                Args::Json(body) => self.http.post(&url).json(body),
                Args::Query(query) => self.http.get(&url).query(query),
            };
            let resp = request
                .header(AUTHORIZATION, auth.clone())
                .send()
                .await
                .map_err(|e| transport_error(method, &url, &e))?;
            let status = resp.status();
            if status == StatusCode::TOO_MANY_REQUESTS {
                let retry_after = retry_after(resp.headers()).map_or(1, |d| d.as_secs());
                if waited.saturating_add(retry_after) > limit || attempt > MAX_RATE_LIMIT_RETRIES {
                    return Err(SlackError::RateLimited {
                        method: method.to_string(),
                        retry_after,
                        waited,
                        limit,
                    });
                }
                on_wait(retry_after, attempt).await;
                tokio::time::sleep(Duration::from_secs(retry_after)).await;
                waited += retry_after;
                continue;
            }
            let bytes = resp.bytes().await.map_err(|e| SlackError::NoAnswer {
                method: method.to_string(),
                reason: format!("the answer could not be read ({})", error_text(&e)),
            })?;
            let parsed = serde_json::from_slice::<Value>(&bytes).ok();
            if !status.is_success() {
                let detail = parsed
                    .as_ref()
                    .and_then(|v| v.get("error"))
                    .and_then(Value::as_str)
                    .map(|e| format!(" (error \"{e}\")"))
                    .unwrap_or_default();
                return Err(SlackError::Http {
                    method: method.to_string(),
                    status: status.as_u16(),
                    detail,
                });
            }
            let answer = match parsed {
                Some(v @ Value::Object(_)) => v,
                _ => {
                    return Err(SlackError::NotJson {
                        method: method.to_string(),
                        snippet: String::from_utf8_lossy(&bytes[..bytes.len().min(120)])
                            .into_owned(),
                    });
                }
            };
            if answer.get("ok") == Some(&Value::Bool(true)) {
                return Ok(answer);
            }
            let code = answer
                .get("error")
                .and_then(Value::as_str)
                .unwrap_or("unknown_error")
                .to_string();
            let mut advice = advice(&code).to_string();
            if code == "missing_scope" {
                let needed = answer.get("needed").and_then(Value::as_str).unwrap_or("?");
                advice = format!("{advice} (needed: {needed})");
            }
            return Err(SlackError::Api {
                method: method.to_string(),
                code,
                advice,
                answer: Box::new(answer),
            });
        }
    }
}

fn transport_error(method: &str, url: &str, e: &reqwest::Error) -> SlackError {
    let reason = error_text(e);
    if e.is_connect() || e.is_builder() {
        SlackError::Connect {
            method: method.to_string(),
            url: url.to_string(),
            reason,
        }
    } else if e.is_timeout() {
        SlackError::NoAnswer {
            method: method.to_string(),
            reason: "no answer within the timeout of [fn_slack]".to_string(),
        }
    } else {
        SlackError::NoAnswer {
            method: method.to_string(),
            reason,
        }
    }
}
