//! The simulated REST API over HTTPS, checked with reqwest trusting the simulator's CA.

mod common;

use common::{WAIT, start_sim, start_sim_with};
use reqwest::StatusCode;
use serde_json::{Value, json};
use soar_sim::{Sim, SimConfig};

fn client(sim: &Sim) -> reqwest::Client {
    reqwest::Client::builder()
        .use_preconfigured_tls((*sim.client_tls_config()).clone())
        .timeout(WAIT)
        .build()
        .expect("reqwest client")
}

struct Api {
    http: reqwest::Client,
    base: String,
    id: String,
    secret: String,
}

impl Api {
    fn new(sim: &Sim) -> Api {
        Api {
            http: client(sim),
            base: sim.base_url(),
            id: sim.config().api_key_id.clone(),
            secret: sim.config().api_key_secret.clone(),
        }
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .basic_auth(&self.id, Some(&self.secret))
            .send()
            .await
            .expect("request");
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }
}

#[tokio::test]
async fn api_key_session_org_and_startup_calls() {
    let sim = start_sim().await;
    sim.register_function("fn_hello", "fn_queue");
    sim.add_rule(45, "Lookup Value", &["fn_queue"]);
    let api = Api::new(&sim);

    let (s, session) = api.get("/rest/session?include_permissions=false").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(session["orgs"][0]["id"], 201);
    assert_eq!(session["orgs"][0]["name"], "Test Org");
    assert_eq!(session["orgs"][0]["enabled"], true);
    assert!(session["orgs"][0]["uuid"].is_string());
    assert!(session["orgs"][0]["cloud_account"].is_string());
    assert!(session["api_key_handle"].is_i64());

    let (s, org) = api.get("/rest/orgs/201").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(org["id"], 201);
    assert_eq!(org["actions_framework_enabled"], true);

    for path in ["/rest/const", "/rest/const/"] {
        let (s, c) = api.get(path).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(c["server_version"]["version"], "51.0.0.0");
        assert_eq!(c["server_version"]["major"], 51);
        assert_eq!(
            c["actions_framework"]["action_invocation_message_types"]["1"],
            "Error"
        );
    }
    for t in ["incident", "actioninvocation", "__function"] {
        let (s, f) = api.get(&format!("/rest/orgs/201/types/{t}/fields")).await;
        assert_eq!(s, StatusCode::OK);
        // Only the built-in incident fields exist before any import.
        let names: Vec<&str> = f
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["name"].as_str().unwrap())
            .collect();
        if t == "incident" {
            assert!(names.contains(&"severity_code"), "{names:?}");
        } else {
            assert!(names.is_empty(), "{t}: {names:?}");
        }
    }
    let (s, actions) = api.get("/rest/orgs/201/actions").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(actions["entities"][0]["id"], 45);
    assert_eq!(actions["entities"][0]["name"], "Lookup Value");

    let (s, _) = api.get("/rest/orgs/201/connectors/queues").await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    let (s, f) = api
        .get("/rest/orgs/201/functions/fn_hello?handle_format=names")
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(f["name"], "fn_hello");
    assert_eq!(f["destination_handle"], "fn_queue");
    for key in ["id", "display_name", "uuid"] {
        assert!(!f[key].is_null(), "{key} missing in {f}");
    }
    let (s, body) = api
        .get("/rest/orgs/201/functions/fn_missing?handle_format=names")
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(body["success"], false);

    let (s, dests) = api.get("/rest/orgs/201/message_destinations").await;
    assert_eq!(s, StatusCode::OK);
    let d = &dests["entities"][0];
    assert_eq!(d["programmatic_name"], "fn_queue");
    assert_eq!(d["destination_type"], 0);
    assert_eq!(d["expect_ack"], true);
    assert_eq!(d["users"], json!([]));
    assert_eq!(d["api_keys"], json!([]));
    assert!(d["uuid"].is_string());

    // get_put of a destination, as `customize` does.
    let id = d["id"].as_i64().unwrap();
    let mut changed = d.clone();
    changed["api_keys"] = json!([4]);
    let r = api
        .http
        .put(format!(
            "{}/rest/orgs/201/message_destinations/{id}",
            api.base
        ))
        .basic_auth(&api.id, Some(&api.secret))
        .json(&changed)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let (_, d) = api
        .get(&format!("/rest/orgs/201/message_destinations/{id}"))
        .await;
    assert_eq!(d["api_keys"], json!([4]));

    let (s, body) = api.get("/rest/no/such/thing").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(body["success"], false);

    let log = sim.rest_log();
    assert_eq!(
        log[0],
        (
            "GET".to_string(),
            "/rest/session?include_permissions=false".to_string(),
            200
        )
    );
    assert!(log.contains(&(
        "PUT".into(),
        format!("/rest/orgs/201/message_destinations/{id}"),
        200
    )));
    assert!(log.contains(&("GET".into(), "/rest/no/such/thing".into(), 404)));
}

#[tokio::test]
async fn unauthenticated_and_wrong_credentials_get_401() {
    let sim = start_sim().await;
    let http = client(&sim);
    let base = sim.base_url();
    let r = http
        .get(format!("{base}/rest/orgs/201"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = http
        .get(format!("{base}/rest/session"))
        .basic_auth(&sim.config().api_key_id, Some("wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = http
        .post(format!("{base}/rest/session?include_permissions=false"))
        .json(&json!({"email": sim.config().email, "password": "wrong"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body,
        json!({"success": false, "title": null, "message": "Invalid user name or password",
               "hints": [], "error_code": "generic"})
    );
}

#[tokio::test]
async fn password_login_sets_a_session_cookie_and_csrf_token() {
    let sim = start_sim().await;
    let http = client(&sim);
    let base = sim.base_url();
    let r = http
        .post(format!("{base}/rest/session?include_permissions=false"))
        .json(&json!({"email": sim.config().email, "password": sim.config().password}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let cookie = r
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .expect("Set-Cookie")
        .to_string();
    assert!(cookie.starts_with("JSESSIONID="), "{cookie}");
    let session_id = cookie
        .trim_start_matches("JSESSIONID=")
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let body: Value = r.json().await.unwrap();
    let csrf = body["csrf_token"].as_str().expect("csrf_token").to_string();
    assert!(body["user_id"].is_i64());
    assert_eq!(body["orgs"][0]["id"], 201);

    let r = http
        .get(format!("{base}/rest/orgs/201"))
        .header("Cookie", format!("JSESSIONID={session_id}"))
        .header("X-sess-id", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // The cookie alone is not enough.
    let r = http
        .get(format!("{base}/rest/orgs/201"))
        .header("Cookie", format!("JSESSIONID={session_id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn resource_prefix_moves_every_path() {
    let sim = start_sim_with(SimConfig {
        resource_prefix: Some("/api/respond".into()),
        ..SimConfig::default()
    })
    .await;
    assert!(sim.base_url().ends_with("/api/respond"));
    let api = Api::new(&sim);
    let (s, _) = api.get("/rest/orgs/201").await;
    assert_eq!(s, StatusCode::OK);
    let r = api
        .http
        .get(format!(
            "https://localhost:{}/rest/orgs/201",
            sim.rest_port()
        ))
        .basic_auth(&api.id, Some(&api.secret))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(sim.app_config().contains("resource_prefix=/api/respond\n"));
}

#[tokio::test]
async fn app_config_points_at_the_sim() {
    let sim = start_sim().await;
    let text = sim.app_config();
    assert!(text.starts_with("[resilient]\n"));
    for line in [
        "host=localhost".to_string(),
        format!("port={}", sim.rest_port()),
        "org=Test Org".to_string(),
        format!("api_key_id={}", sim.config().api_key_id),
        format!("cafile={}", sim.ca_file().display()),
        format!("stomp_port={}", sim.stomp_port()),
        format!("stomp_cafile={}", sim.ca_file().display()),
    ] {
        assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
    }
    let pem = std::fs::read_to_string(sim.ca_file()).unwrap();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"));
    // Dropping the last handle removes the CA file.
    let path = sim.ca_file().to_path_buf();
    drop(sim);
    assert!(!path.exists());
}
