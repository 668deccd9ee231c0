//! Threat-service target: raw HTTP/1 request bytes through hyper's parser into the engine's
//! threat-service router ([`ThreatServer::router`]), over an in-memory connection, as
//! `soar_engine::threat` serves a TLS connection.

use std::time::Duration;

use axum::Router;
use hyper_util::rt::TokioIo;
use soar_engine::threat::{CustomThreatService, ThreatServer, Webserver};
use soar_sdk::config::ConfigSource;
use soar_sdk::threat::ThreatRoute;
use soar_sdk::{Component, FunctionError, Hit, Secret, ThreatArtifact, ThreatService};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A connection that is not answered and closed within this time is a hang: the stub service
/// answers at once and the client has sent everything and closed its side.
const CONNECTION_LIMIT: Duration = Duration::from_secs(5);

/// The Basic credentials of the server under `/auth` (`fuzz:fuzz-password`), as the seeds send
/// them.
#[cfg(test)]
const AUTH_HEADER: &str = "Authorization: Basic ZnV6ejpmdXp6LXBhc3N3b3Jk";

/// A threat service that answers at once with a hit naming the artifact; none for values
/// starting with `none`, an error for values starting with `fail`, and after 20 ms for values
/// starting with `slow`.
struct Stub;

impl ThreatService for Stub {
    async fn search(&self, artifact: ThreatArtifact) -> Result<Vec<Hit>, FunctionError> {
        if artifact.value.starts_with("slow") {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if artifact.value.starts_with("fail") {
            return Err(FunctionError::msg("the stub service failed"));
        }
        if artifact.value.starts_with("none") {
            return Ok(Vec::new());
        }
        Ok(vec![
            Hit::new()
                .string("type", artifact.artifact_type.clone())
                .string("value", artifact.value.clone())
                .uri(
                    "link",
                    format!("https://threats.example/{}", artifact.value),
                )
                .number("length", artifact.value.len() as i64),
        ])
    }
}

fn routes() -> Vec<ThreatRoute> {
    Component::new()
        .threat_service("stub", Stub)
        .threat_service("other", Stub)
        .threat_services()
        .to_vec()
}

fn web() -> Webserver {
    Webserver {
        server: "localhost".into(),
        port: 0,
        secure: false,
        cafile: None,
        certfile: None,
        keyfile: None,
        max_connections: 100,
        timeout: 5,
        max_body_bytes: 64 * 1024,
    }
}

fn cts(urlbase: &str, answer_within_ms: u64, auth: bool) -> CustomThreatService {
    CustomThreatService {
        urlbase: urlbase.into(),
        first_retry_secs: 5,
        later_retry_secs: 60,
        max_retries: 2,
        cache_size: 4,
        cache_ttl: 600,
        auth_user: auth.then(|| "fuzz".into()),
        auth_password: auth.then(|| Secret::new("fuzz-password")),
        answer_within_ms,
    }
}

/// Two servers in one router: `/cts/<service>` answers lookups on the POST (waits up to
/// 200 ms), `/auth/<service>` needs [`AUTH_HEADER`] and waits 1 ms (slow lookups get HTTP 303
/// and are polled).
fn router() -> Router {
    let source = ConfigSource::new("/fuzz/app.config");
    let open = ThreatServer::new(
        routes(),
        web(),
        cts("/cts/", 200, false),
        &source,
        Default::default(),
    )
    .expect("the open threat server builds");
    let auth = ThreatServer::new(
        routes(),
        web(),
        cts("auth", 1, true),
        &source,
        Default::default(),
    )
    .expect("the authenticated threat server builds");
    open.router().merge(auth.router())
}

/// `threat_request`: `data` is what a client sends on one connection (one or more HTTP/1
/// requests), then it closes its sending side. The server must answer and close within
/// [`CONNECTION_LIMIT`] without panicking, and never with a 5xx status. The servers (and their
/// caches) are new for every input.
pub fn threat_request(data: &[u8]) {
    check_answer(&exchange(data));
}

/// Sends `data` on a new connection to a new [`router`], closes the sending side and returns
/// everything the server wrote until it closed.
fn exchange(data: &[u8]) -> Vec<u8> {
    crate::runtime().block_on(async {
        let app = router();
        let (mut client, server) = tokio::io::duplex(64 * 1024);
        let service =
            hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                use tower::ServiceExt;
                app.clone().oneshot(req.map(axum::body::Body::new))
            });
        let serve = tokio::spawn(async move {
            // Half-close: the client shuts its sending side down after the requests and
            // still reads the answers (the engine's server closes at once on that EOF).
            let _ = hyper::server::conn::http1::Builder::new()
                .half_close(true)
                .serve_connection(TokioIo::new(server), service)
                .await;
        });
        let exchange = async {
            let (mut read, mut write) = tokio::io::split(&mut client);
            let send = async {
                // The server may close early (a malformed request): then writing fails.
                let _ = write.write_all(data).await;
                let _ = write.shutdown().await;
            };
            let mut answer = Vec::new();
            let receive = read.read_to_end(&mut answer);
            let (_, received) = tokio::join!(send, receive);
            let _ = received;
            answer
        };
        let answer = tokio::time::timeout(CONNECTION_LIMIT, exchange)
            .await
            .unwrap_or_else(|_| {
                panic!("the threat server neither answered nor closed within {CONNECTION_LIMIT:?}")
            });
        serve.abort();
        answer
    })
}

/// Every status line in the answer is HTTP/1.x with a status below 500.
fn check_answer(answer: &[u8]) {
    let text = String::from_utf8_lossy(answer);
    for line in text.split("\r\n").filter(|l| l.starts_with("HTTP/1.")) {
        let code = line
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse::<u16>().ok())
            .unwrap_or_else(|| panic!("a malformed status line: {line:?}"));
        assert!(
            code < 500,
            "the threat server answered {line:?}\nfull answer:\n{text}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(path: &str, extra: &str, body: &str) -> String {
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: localhost\r\n{extra}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        String::from_utf8(exchange(request.as_bytes())).expect("a UTF-8 answer")
    }

    #[test]
    fn the_open_server_answers_lookups_at_once() {
        let answer = post("/cts/stub", "", r#"{"type": "net.ip", "value": "1.2.3.4"}"#);
        assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
        assert!(answer.contains(r#""value":"1.2.3.4""#), "{answer}");
    }

    #[test]
    fn the_authenticated_server_wants_credentials_and_answers_with_303() {
        let body = r#"{"type": "net.ip", "value": "slow-1.2.3.4"}"#;
        let refused = post("/auth/stub", "", body);
        assert!(refused.starts_with("HTTP/1.1 401 "), "{refused}");
        let accepted = post("/auth/stub", &format!("{AUTH_HEADER}\r\n"), body);
        assert!(accepted.starts_with("HTTP/1.1 303 "), "{accepted}");
    }
}
