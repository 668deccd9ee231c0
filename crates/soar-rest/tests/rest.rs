//! Integration tests of `soar-rest` against a small in-process HTTPS platform (axum behind
//! tokio-rustls with an rcgen self-signed certificate for localhost/127.0.0.1).

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::{Value, json};
use soar_rest::{Auth, Proxy, RestClient, RestConfig, RestError, RetryPolicy};
use tokio_rustls::TlsAcceptor;

const KEY_ID: &str = "key-id-1";
const KEY_SECRET: &str = "key-SECRET-xyz";
const EMAIL: &str = "user@example.com";
const PASSWORD: &str = "pw-SECRET-abc";

/// One request as the platform saw it.
#[derive(Clone, Debug)]
struct Rec {
    method: String,
    /// Path and query, after the resource prefix was stripped.
    path: String,
    /// Path and query as received.
    full_path: String,
    headers: HeaderMap,
    body: String,
}

type Custom = Box<dyn Fn(&Rec, usize) -> Option<Response> + Send + Sync>;

/// The simulated platform: logins, org 201/202/203, const, and a per-test custom handler that is
/// asked for every authenticated request (with the number of earlier requests of the same method
/// and path) before the defaults.
struct Platform {
    log: Mutex<Vec<Rec>>,
    orgs: Mutex<Value>,
    afe: AtomicBool,
    prefix: String,
    sessions: Mutex<HashSet<String>>,
    logins: AtomicU32,
    custom: Custom,
}

impl Platform {
    fn requests(&self) -> Vec<Rec> {
        self.log.lock().unwrap().clone()
    }

    fn count(&self, method: &str, path: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.method == method && r.path == path)
            .count()
    }
}

fn reply(status: u16, body: Value) -> Response {
    (StatusCode::from_u16(status).unwrap(), axum::Json(body)).into_response()
}

fn default_orgs() -> Value {
    json!([
        {"id": 201, "name": "Test Org", "uuid": "uuid-201", "cloud_account": "acct-201", "enabled": true},
        {"id": 202, "name": "Other Org", "uuid": "uuid-202", "cloud_account": "acct-202", "enabled": true},
        {"id": 203, "name": "Closed Org", "uuid": "uuid-203", "enabled": false}
    ])
}

fn basic_ok(headers: &HeaderMap) -> bool {
    // base64("key-id-1:key-SECRET-xyz")
    let expected = "Basic a2V5LWlkLTE6a2V5LVNFQ1JFVC14eXo=";
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        == Some(expected)
}

fn session_ok(p: &Platform, headers: &HeaderMap) -> bool {
    let csrf = headers.get("x-sess-id").and_then(|v| v.to_str().ok());
    let cookie = headers.get(header::COOKIE).and_then(|v| v.to_str().ok());
    match (csrf, cookie) {
        (Some(csrf), Some(cookie)) => {
            let n = csrf.trim_start_matches("csrf-");
            p.sessions.lock().unwrap().contains(csrf) && cookie == format!("JSESSIONID=sess-{n}")
        }
        _ => false,
    }
}

async fn handle(State(p): State<Arc<Platform>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20).await.unwrap();
    let full_path = parts.uri.path_and_query().unwrap().to_string();
    let rec = Rec {
        method: parts.method.to_string(),
        path: full_path
            .strip_prefix(&p.prefix)
            .unwrap_or(&full_path)
            .to_string(),
        full_path,
        headers: parts.headers.clone(),
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    let earlier = p.count(&rec.method, &rec.path);
    p.log.lock().unwrap().push(rec.clone());
    let orgs = p.orgs.lock().unwrap().clone();
    match (rec.method.as_str(), rec.path.as_str()) {
        ("GET", "/rest/session?include_permissions=false") => {
            if basic_ok(&rec.headers) {
                reply(
                    200,
                    json!({"api_key_handle": 4, "user_id": null, "orgs": orgs}),
                )
            } else {
                reply(
                    401,
                    json!({"success": false, "message": "The API key is not valid"}),
                )
            }
        }
        ("POST", "/rest/session?include_permissions=false") => {
            let creds: Value = serde_json::from_str(&rec.body).unwrap_or_default();
            if creds != json!({"email": EMAIL, "password": PASSWORD, "interactive": false}) {
                return reply(
                    401,
                    json!({"success": false, "message": "Invalid user name or password"}),
                );
            }
            let n = p.logins.fetch_add(1, Ordering::SeqCst) + 1;
            p.sessions.lock().unwrap().insert(format!("csrf-{n}"));
            let mut resp = reply(
                200,
                json!({"csrf_token": format!("csrf-{n}"), "user_id": 7, "orgs": orgs}),
            );
            resp.headers_mut().insert(
                header::SET_COOKIE,
                format!("JSESSIONID=sess-{n}; Path=/; Secure; HttpOnly")
                    .parse()
                    .unwrap(),
            );
            resp
        }
        _ if !basic_ok(&rec.headers) && !session_ok(&p, &rec.headers) => {
            reply(401, json!({"message": "not logged in"}))
        }
        _ if let Some(resp) = (p.custom)(&rec, earlier) => resp,
        ("GET", "/rest/const") => reply(200, json!({"server_version": {"version": "51.0.0.0"}})),
        ("GET", path) if path.starts_with("/rest/orgs/") && path[11..].parse::<i64>().is_ok() => {
            let id: i64 = path[11..].parse().unwrap();
            let afe = p.afe.load(Ordering::SeqCst);
            reply(200, json!({"id": id, "actions_framework_enabled": afe}))
        }
        _ => reply(
            404,
            json!({"message": format!("no such thing: {}", rec.path)}),
        ),
    }
}

struct Server {
    platform: Arc<Platform>,
    port: u16,
    cert: CertificateDer<'static>,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

async fn start_with(prefix: &str, custom: Custom) -> Server {
    let ck =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let cert = ck.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.signing_key.serialize_der()));
    let server_config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(server_config));
    let platform = Arc::new(Platform {
        log: Mutex::default(),
        orgs: Mutex::new(default_orgs()),
        afe: AtomicBool::new(true),
        prefix: prefix.to_string(),
        sessions: Mutex::default(),
        logins: AtomicU32::new(0),
        custom,
    });
    let app = Router::new().fallback(handle).with_state(platform.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, app) = (acceptor.clone(), app.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), TowerToHyperService::new(app))
                    .await;
            });
        }
    });
    Server {
        platform,
        port,
        cert,
    }
}

async fn start(custom: Custom) -> Server {
    start_with("", custom).await
}

fn none() -> Custom {
    Box::new(|_, _| None)
}

fn tls_trusting(cert: &CertificateDer<'static>) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.clone()).unwrap();
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

fn api_key() -> Auth {
    Auth::ApiKey {
        id: KEY_ID.into(),
        secret: KEY_SECRET.into(),
    }
}

fn password() -> Auth {
    Auth::Password {
        email: EMAIL.into(),
        password: PASSWORD.into(),
    }
}

impl Server {
    fn config(&self, auth: Auth, org: Option<&str>) -> RestConfig {
        let mut c = RestConfig::new("127.0.0.1", self.port, auth, tls_trusting(&self.cert));
        c.org = org.map(str::to_string);
        c.retry = RetryPolicy {
            max_retries: 3,
            delay: Duration::from_millis(2),
            backoff: 2.0,
        };
        c.timeout = Duration::from_secs(10);
        c.user_agent = "resilient-circuits-rs/test (testhost)".into();
        c
    }

    async fn connect(&self, auth: Auth, org: Option<&str>) -> Result<RestClient, RestError> {
        RestClient::connect(self.config(auth, org)).await
    }
}

/// No secret in the Display or Debug of an error.
fn assert_no_secret(text: &str) {
    assert!(!text.contains("SECRET"), "a secret leaked: {text}");
}

fn assert_err_clean(e: &RestError) {
    assert_no_secret(&e.to_string());
    assert_no_secret(&format!("{e:?}"));
}

#[tokio::test]
async fn api_key_login_sends_basic_and_resolves_org_by_name() {
    let s = start(none()).await;
    let c = s.connect(api_key(), Some("Test Org")).await.unwrap();
    assert_eq!((c.org_id(), c.org_name()), (201, "Test Org"));
    assert_eq!(c.api_key_handle(), Some(4));
    assert_eq!(c.user_id(), None);
    assert_eq!(c.server_version(), Some("51.0.0.0"));
    assert_eq!(c.base_url(), format!("https://127.0.0.1:{}", s.port));
    let reqs = s.platform.requests();
    let paths: Vec<_> = reqs
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(
        paths,
        [
            "GET /rest/session?include_permissions=false",
            "GET /rest/orgs/201",
            "GET /rest/const"
        ]
    );
    for r in &reqs {
        assert!(basic_ok(&r.headers), "Basic auth on {}", r.path);
        assert_eq!(r.headers["content-type"], "application/json");
        assert_eq!(
            r.headers["resilient-module-version"],
            soar_rest::COMPAT_VERSION
        );
        assert_eq!(
            r.headers["resilient-circuits-version"],
            soar_rest::COMPAT_VERSION
        );
        assert_eq!(
            r.headers["user-agent"],
            "resilient-circuits-rs/test (testhost)"
        );
        assert!(r.headers.get("x-sess-id").is_none());
    }
    let v = c.get("/incidents/1").await.unwrap_err();
    assert_eq!(v.status(), Some(404));
    assert!(v.to_string().contains("no such thing"), "{v}");
    assert_no_secret(&format!("{c:?}"));
}

#[tokio::test]
async fn org_resolved_by_uuid_and_cloud_account() {
    let s = start(none()).await;
    let c = s.connect(api_key(), Some("uuid-202")).await.unwrap();
    assert_eq!((c.org_id(), c.org_name()), (202, "Other Org"));
    let c = s.connect(api_key(), Some("acct-201")).await.unwrap();
    assert_eq!(c.org_id(), 201);
    assert_eq!(c.all_orgs().len(), 3);
}

#[tokio::test]
async fn org_errors() {
    let s = start(none()).await;
    let e = s.connect(api_key(), Some("Nowhere")).await.unwrap_err();
    assert!(matches!(e, RestError::NotMemberOfOrg { .. }), "{e:?}");
    assert!(e.to_string().contains("'Nowhere'"), "{e}");
    assert_eq!(e.exit_code(), 24);

    let e = s.connect(api_key(), None).await.unwrap_err();
    assert!(matches!(e, RestError::OrgNotSet { .. }), "{e:?}");
    let text = e.to_string();
    assert!(
        text.contains("'Test Org'") && text.contains("'Other Org'"),
        "{text}"
    );
    assert_eq!(e.exit_code(), 20);

    let e = s.connect(api_key(), Some("Closed Org")).await.unwrap_err();
    assert!(matches!(e, RestError::OrgDisabled { .. }), "{e:?}");
    assert!(e.to_string().contains("not accessible"), "{e}");

    *s.platform.orgs.lock().unwrap() = json!([]);
    let e = s.connect(api_key(), Some("Test Org")).await.unwrap_err();
    assert!(matches!(e, RestError::NoOrgs), "{e:?}");
    assert_eq!(e.to_string(), "User is not a member of any orgs");
}

#[tokio::test]
async fn actions_framework_disabled_is_an_error() {
    let s = start(none()).await;
    s.platform.afe.store(false, Ordering::SeqCst);
    let e = s.connect(api_key(), Some("Test Org")).await.unwrap_err();
    assert!(
        matches!(e, RestError::ActionsFrameworkDisabled { .. }),
        "{e:?}"
    );
    assert!(e.to_string().contains("STOMP"), "{e}");
}

#[tokio::test]
async fn password_login_uses_cookie_and_csrf_and_relogs_once_on_401() {
    let s = start(Box::new(|r: &Rec, _| match r.path.as_str() {
        "/rest/orgs/201/incidents/1" => Some(reply(200, json!({"id": 1}))),
        "/rest/orgs/201/incidents/2" => Some(reply(401, json!({"message": "no"}))),
        _ => None,
    }))
    .await;
    let c = s.connect(password(), Some("Test Org")).await.unwrap();
    assert_eq!(c.user_id(), Some(7));
    assert_eq!(c.api_key_handle(), None);
    let reqs = s.platform.requests();
    assert_eq!(reqs[0].method, "POST");
    assert!(reqs[0].headers.get("authorization").is_none());
    assert_eq!(reqs[1].path, "/rest/orgs/201");
    assert_eq!(reqs[1].headers["x-sess-id"], "csrf-1");
    assert_eq!(reqs[1].headers["cookie"], "JSESSIONID=sess-1");

    // The platform forgets the session: one re-login, then the call succeeds.
    s.platform.sessions.lock().unwrap().clear();
    assert_eq!(c.get("/incidents/1").await.unwrap(), json!({"id": 1}));
    let gets: Vec<_> = s
        .platform
        .requests()
        .into_iter()
        .filter(|r| r.path == "/rest/orgs/201/incidents/1")
        .collect();
    assert_eq!(gets.len(), 2);
    assert_eq!(gets[1].headers["x-sess-id"], "csrf-2");
    assert_eq!(gets[1].headers["cookie"], "JSESSIONID=sess-2");
    assert_eq!(
        s.platform
            .count("POST", "/rest/session?include_permissions=false"),
        2
    );

    // Still 401 after the re-login: Unauthorized, no further attempts.
    let e = c.get("/incidents/2").await.unwrap_err();
    assert!(matches!(e, RestError::Unauthorized { .. }), "{e:?}");
    assert_eq!(e.exit_code(), 21);
    assert_eq!(s.platform.count("GET", "/rest/orgs/201/incidents/2"), 2);
    assert_eq!(
        s.platform
            .count("POST", "/rest/session?include_permissions=false"),
        3
    );
    assert_err_clean(&e);
    for r in s.platform.requests().iter().filter(|r| r.method == "GET") {
        assert_no_secret(&format!("{:?}", r.headers));
    }
}

#[tokio::test]
async fn invalid_password_is_exit_25_and_bad_api_key_exit_21() {
    let s = start(none()).await;
    let e = s
        .connect(
            Auth::Password {
                email: EMAIL.into(),
                password: "wrong-SECRET".into(),
            },
            Some("Test Org"),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, RestError::InvalidCredentials { .. }), "{e:?}");
    assert_eq!(e.exit_code(), 25);
    assert_err_clean(&e);
    assert_eq!(
        s.platform
            .count("POST", "/rest/session?include_permissions=false"),
        1
    );

    let e = s
        .connect(
            Auth::ApiKey {
                id: KEY_ID.into(),
                secret: "bad-SECRET".into(),
            },
            Some("Test Org"),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, RestError::Unauthorized { .. }), "{e:?}");
    assert_eq!(e.exit_code(), 21);
    assert!(e.to_string().contains("The API key is not valid"), "{e}");
    assert_err_clean(&e);
}

#[tokio::test]
async fn unauthorized_later_call_is_exit_21_without_retry() {
    let s = start(Box::new(|r: &Rec, _| {
        (r.path == "/rest/orgs/201/incidents/9")
            .then(|| reply(401, json!({"message": "session expired"})))
    }))
    .await;
    let c = s.connect(api_key(), Some("Test Org")).await.unwrap();
    let e = c.get("/incidents/9").await.unwrap_err();
    assert!(matches!(e, RestError::Unauthorized { .. }), "{e:?}");
    assert_eq!(e.exit_code(), 21);
    let text = e.to_string();
    assert!(
        text.contains("GET") && text.contains("/rest/orgs/201/incidents/9"),
        "{text}"
    );
    assert!(text.contains("session expired"), "{text}");
    assert_eq!(s.platform.count("GET", "/rest/orgs/201/incidents/9"), 1);
    assert_err_clean(&e);
}

#[tokio::test]
async fn get_500_twice_then_200_is_retried() {
    let s = start(Box::new(|r: &Rec, earlier| {
        (r.path == "/rest/orgs/201/incidents/5").then(|| {
            if earlier < 2 {
                reply(500, json!({"message": "busy"}))
            } else {
                reply(200, json!({"id": 5}))
            }
        })
    }))
    .await;
    let c = s.connect(api_key(), Some("Test Org")).await.unwrap();
    assert_eq!(c.get("/incidents/5").await.unwrap(), json!({"id": 5}));
    assert_eq!(s.platform.count("GET", "/rest/orgs/201/incidents/5"), 3);
}

#[tokio::test]
async fn retries_run_out_and_post_is_retried() {
    let s = start(Box::new(|r: &Rec, _| {
        r.path
            .starts_with("/rest/orgs/201/broken")
            .then(|| reply(503, json!({"message": "down for maintenance"})))
    }))
    .await;
    let c = s.connect(api_key(), Some("Test Org")).await.unwrap();
    let e = c.post("/broken", &json!({"a": 1})).await.unwrap_err();
    assert_eq!(s.platform.count("POST", "/rest/orgs/201/broken"), 4);
    let text = e.to_string();
    assert!(text.contains("POST") && text.contains("503"), "{text}");
    assert!(text.contains("down for maintenance"), "{text}");
    assert_eq!(e.exit_code(), 20);
    let posted = s.platform.requests().pop().unwrap();
    assert_eq!(posted.body, r#"{"a":1}"#);
}

/// A POST whose answer never comes (the platform took it, then stalled) is not sent again: a
/// second note would appear. A GET in the same situation is retried.
#[tokio::test]
async fn post_without_an_answer_is_not_sent_again() {
    let stall = || {
        let body = futures::stream::pending::<Result<Vec<u8>, std::io::Error>>();
        let mut resp = Response::new(axum::body::Body::from_stream(body));
        *resp.status_mut() = StatusCode::CREATED;
        resp
    };
    let s = start(Box::new(move |r: &Rec, _| {
        r.path
            .starts_with("/rest/orgs/201/incidents/2/")
            .then(stall)
    }))
    .await;
    let mut config = s.config(api_key(), Some("Test Org"));
    config.timeout = Duration::from_millis(300);
    let c = RestClient::connect(config).await.unwrap();
    let e = c
        .post("/incidents/2/comments", &json!({"text": "once"}))
        .await
        .unwrap_err();
    assert!(matches!(e, RestError::Unconfirmed { .. }), "{e:?}");
    let text = e.to_string();
    assert!(text.contains("may or may not have done it"), "{text}");
    assert_eq!(
        s.platform
            .count("POST", "/rest/orgs/201/incidents/2/comments"),
        1
    );
    assert_err_clean(&e);

    let e = c.get("/incidents/2/comments").await.unwrap_err();
    assert!(matches!(e, RestError::Timeout { .. }), "{e:?}");
    assert_eq!(
        s.platform
            .count("GET", "/rest/orgs/201/incidents/2/comments"),
        4
    );
}

/// A POST refused with 500 may have half happened: not sent again. 429 and 503 say the server
/// did not act on it: sent again.
#[tokio::test]
async fn post_is_sent_again_only_when_the_platform_did_not_act() {
    let s = start(Box::new(|r: &Rec, earlier| match r.path.as_str() {
        "/rest/orgs/201/artifacts_500" => Some(reply(500, json!({"message": "boom"}))),
        "/rest/orgs/201/artifacts_429" if earlier == 0 => {
            Some(reply(429, json!({"message": "slow down"})))
        }
        "/rest/orgs/201/artifacts_429" => Some(reply(200, json!({"id": 1}))),
        _ => None,
    }))
    .await;
    let c = s.connect(api_key(), Some("Test Org")).await.unwrap();
    let e = c.post("/artifacts_500", &json!({})).await.unwrap_err();
    assert!(matches!(e, RestError::Http { status: 500, .. }), "{e:?}");
    assert_eq!(s.platform.count("POST", "/rest/orgs/201/artifacts_500"), 1);
    assert_eq!(
        c.post("/artifacts_429", &json!({})).await.unwrap(),
        json!({"id": 1})
    );
    assert_eq!(s.platform.count("POST", "/rest/orgs/201/artifacts_429"), 2);
}

#[tokio::test]
async fn put_500_is_not_retried() {
    let s = start(Box::new(|r: &Rec, _| {
        (r.method == "PUT").then(|| reply(500, json!({"message": "boom"})))
    }))
    .await;
    let c = s.connect(api_key(), Some("Test Org")).await.unwrap();
    let e = c.put("/incidents/3", &json!({"x": 1})).await.unwrap_err();
    assert!(matches!(e, RestError::Http { status: 500, .. }), "{e:?}");
    assert!(e.to_string().contains("boom"), "{e}");
    assert_eq!(s.platform.count("PUT", "/rest/orgs/201/incidents/3"), 1);
}

#[tokio::test]
async fn get_function_404_is_none_without_retries() {
    let s = start(Box::new(|r: &Rec, _| match r.path.as_str() {
        "/rest/orgs/201/functions/fn_hello?handle_format=names" => Some(reply(
            200,
            json!({"name": "fn_hello", "destination_handle": "fn_hello_q"}),
        )),
        _ => None,
    }))
    .await;
    let c = s.connect(api_key(), Some("Test Org")).await.unwrap();
    let f = c.get_function("fn_hello").await.unwrap().unwrap();
    assert_eq!(f["destination_handle"], "fn_hello_q");
    assert_eq!(c.get_function("fn_missing").await.unwrap(), None);
    assert_eq!(
        s.platform.count(
            "GET",
            "/rest/orgs/201/functions/fn_missing?handle_format=names"
        ),
        1
    );
}

#[tokio::test]
async fn patch_sends_handle_format_and_delete_204_is_none() {
    let s = start(Box::new(|r: &Rec, _| match r.method.as_str() {
        "PATCH" => Some(reply(200, json!({"success": true}))),
        "DELETE" => Some(StatusCode::NO_CONTENT.into_response()),
        _ => None,
    }))
    .await;
    let c = s.connect(api_key(), Some("Test Org")).await.unwrap();
    c.patch("/incidents/4", &json!({"changes": []}))
        .await
        .unwrap();
    assert_eq!(c.delete("/incidents/4/notes/1").await.unwrap(), None);
    let reqs = s.platform.requests();
    let patch = reqs.iter().find(|r| r.method == "PATCH").unwrap();
    assert_eq!(patch.headers["handle_format"], "names");
    let get = reqs.iter().find(|r| r.method == "GET").unwrap();
    assert!(get.headers.get("handle_format").is_none());
}

#[tokio::test]
async fn resource_prefix_is_applied() {
    let s = start_with("/api/respond", none()).await;
    let mut config = s.config(api_key(), Some("Test Org"));
    config.resource_prefix = Some("/api/respond".into());
    let c = RestClient::connect(config).await.unwrap();
    assert_eq!(
        c.base_url(),
        format!("https://127.0.0.1:{}/api/respond", s.port)
    );
    c.get_absolute("/const").await.unwrap();
    let reqs = s.platform.requests();
    assert_eq!(reqs.len(), 4);
    for r in reqs {
        assert!(
            r.full_path.starts_with("/api/respond/rest/"),
            "{}",
            r.full_path
        );
    }
}

#[tokio::test]
async fn wrong_ca_is_a_tls_error_naming_the_certificate() {
    let s = start(none()).await;
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Some Other CA");
    let other = params
        .self_signed(&rcgen::KeyPair::generate().unwrap())
        .unwrap();
    let mut config = s.config(api_key(), Some("Test Org"));
    config.tls = tls_trusting(other.der());
    let e = RestClient::connect(config).await.unwrap_err();
    assert!(matches!(e, RestError::Tls { .. }), "{e:?}");
    assert_eq!(e.exit_code(), 23);
    let text = e.to_string();
    assert!(text.contains("certificate verify failed"), "{text}");
    assert!(text.contains("UnknownIssuer"), "{text}");
    assert!(text.contains("cafile"), "{text}");
    assert!(text.contains(&format!("127.0.0.1:{}", s.port)), "{text}");
    assert_err_clean(&e);
    // Not retried: certificate failures are deterministic.
    assert!(s.platform.requests().is_empty());
}

#[tokio::test]
async fn connection_refused_names_host_and_port() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let mut config = RestConfig::new("127.0.0.1", port, api_key(), tls_trusting(cert.cert.der()));
    config.org = Some("Test Org".into());
    config.retry = RetryPolicy {
        max_retries: 1,
        delay: Duration::from_millis(1),
        backoff: 1.0,
    };
    let e = RestClient::connect(config).await.unwrap_err();
    assert!(matches!(e, RestError::Connect { .. }), "{e:?}");
    assert_eq!(e.exit_code(), 20);
    assert!(e.to_string().contains(&format!("127.0.0.1:{port}")), "{e}");
    assert_err_clean(&e);
}

#[test]
fn secrets_absent_from_debug() {
    let auth = format!("{:?}", api_key());
    assert_eq!(auth, r#"ApiKey { id: "key-id-1", secret: *** }"#);
    assert_no_secret(&format!("{:?}", password()));
    let proxy = Proxy {
        url: "http://proxy:3128".into(),
        user: Some("u".into()),
        password: Some("proxy-SECRET".into()),
    };
    assert_no_secret(&format!("{proxy:?}"));
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let mut config = RestConfig::new("h", 443, password(), tls_trusting(cert.cert.der()));
    config.proxy = Some(proxy);
    assert_no_secret(&format!("{config:?}"));
}

#[test]
fn base_url_joins_like_urljoin() {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let mut c = RestConfig::new(
        "soar.example.com",
        443,
        api_key(),
        tls_trusting(cert.cert.der()),
    );
    assert_eq!(c.base_url(), "https://soar.example.com:443");
    c.resource_prefix = Some("/api/respond/".into());
    assert_eq!(c.base_url(), "https://soar.example.com:443/api/respond");
    c.resource_prefix = Some("api/respond".into());
    assert_eq!(c.base_url(), "https://soar.example.com:443/api/respond");
}
