//! Custom threat services (§7): the platform's lookups of new artifacts against a test service
//! (303 and polling, Basic credentials, failures), the hits stored on artifacts, and the
//! `threatservicetest` probe.

mod common;

use std::time::Duration;

use common::cts::{Cts, PASSWORD, USER};
use common::{Api, WAIT, start_sim, start_sim_with};
use reqwest::StatusCode;
use serde_json::json;
use soar_sim::{Sim, SimConfig, SimError, ThreatLookupOutcome, ThreatService};

fn service(name: &str, url: String) -> ThreatService {
    ThreatService {
        name: name.into(),
        url,
        user: None,
        password: None,
    }
}

fn incident(sim: &Sim) -> i64 {
    sim.create_incident(json!({"name": "Lookups"})).unwrap()["id"]
        .as_i64()
        .unwrap()
}

#[tokio::test]
async fn a_303_is_polled_until_hits_arrive_and_they_are_stored_on_the_artifact() {
    let cts = Cts::start().await;
    let sim = start_sim().await;
    sim.add_threat_service(service("poll", cts.url("poll")))
        .unwrap();
    let source_id = sim.threat_service_id("poll").unwrap();
    let id = incident(&sim);
    let api = Api::new(&sim);

    // Created over REST: the lookup starts in the background, the answer does not wait.
    let (s, created) = api
        .post(
            &format!("/rest/orgs/201/incidents/{id}/artifacts"),
            &json!({"type": "IP Address", "value": "10.1.2.3"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{created}");
    assert_eq!(created[0]["hits"], json!([]));
    let aid = created[0]["id"].as_i64().unwrap();
    let lookups = sim.threat_lookups();
    assert_eq!(lookups.len(), 1);
    assert_eq!(lookups[0].outcome, ThreatLookupOutcome::Pending);

    sim.wait_threat_lookups_idle(WAIT).await.unwrap();

    let seen = cts.seen();
    let methods: Vec<&str> = seen.iter().map(|r| r.method.as_str()).collect();
    assert_eq!(methods, ["OPTIONS", "POST", "GET", "GET"], "{seen:?}");
    assert_eq!(seen[1].body, json!({"type": "net.ip", "value": "10.1.2.3"}));
    assert_eq!(seen[1].content_type.as_deref(), Some("application/json"));
    assert_eq!(seen[1].authorization, None);
    assert_eq!(seen[2].path, "/cts/poll/lookup-1");
    // retry_secs 1 was honoured.
    assert!(
        seen[2].at.duration_since(seen[1].at) >= Duration::from_millis(950),
        "polled after {:?}",
        seen[2].at.duration_since(seen[1].at)
    );

    let lookup = &sim.threat_lookups()[0];
    assert_eq!(lookup.outcome, ThreatLookupOutcome::Completed { hits: 1 });
    assert_eq!(lookup.service, "poll");
    assert_eq!(lookup.service_id, source_id);
    assert_eq!((lookup.incident_id, lookup.artifact_id), (id, aid));
    assert_eq!(lookup.artifact_type, "net.ip");
    let statuses: Vec<Option<u16>> = lookup.requests.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [Some(200), Some(303), Some(303), Some(200)]);
    assert!(lookup.finished.is_some());

    // The hit, in the platform's shape, over REST and through the Rust API.
    let (s, list) = api
        .get(&format!("/rest/orgs/201/incidents/{id}/artifacts"))
        .await;
    assert_eq!(s, StatusCode::OK);
    let hits = list[0]["hits"].as_array().unwrap();
    assert_eq!(hits.len(), 1, "{list}");
    let hit = &hits[0];
    assert_eq!(hit["threat_source_id"], source_id);
    assert_eq!(hit["threat_source_name"], "poll");
    assert_eq!(hit["artifact_id"], aid);
    assert_eq!(hit["active"], true);
    assert!(hit["id"].is_i64());
    assert_eq!(
        hit["properties"],
        json!([
            {"type": "string", "name": "Priority Level", "value": "HIGH"},
            {"type": "string", "name": "Looked up", "value": "polled"},
            {"type": "number", "name": "Score", "value": "87"}
        ])
    );
    assert_eq!(sim.artifacts(id)[0]["hits"], list[0]["hits"]);
    let (_, one) = api
        .get(&format!("/rest/orgs/201/incidents/{id}/artifacts/{aid}"))
        .await;
    assert_eq!(one["hits"], list[0]["hits"]);
}

#[tokio::test]
async fn basic_credentials_are_sent_and_wrong_ones_leave_no_hits() {
    let cts = Cts::start().await;
    let sim = start_sim().await;
    let mut good = service("auth", cts.url("auth"));
    good.user = Some(USER.into());
    good.password = Some(PASSWORD.into());
    sim.add_threat_service(good.clone()).unwrap();
    let id = incident(&sim);

    let a = sim
        .add_artifact(id, json!({"type": "URL", "value": "http://evil.example/x"}))
        .unwrap();
    sim.wait_threat_lookups_idle(WAIT).await.unwrap();
    let seen = cts.seen();
    assert!(
        seen.iter().all(|r| r
            .authorization
            .as_deref()
            .is_some_and(|a| a.starts_with("Basic "))),
        "{seen:?}"
    );
    assert_eq!(
        seen[1].body,
        json!({"type": "net.uri", "value": "http://evil.example/x"})
    );
    let stored = &sim.artifacts(id)[0];
    assert_eq!(stored["id"], a["id"]);
    assert_eq!(stored["hits"].as_array().unwrap().len(), 1);
    assert_eq!(
        sim.threat_lookups()[0].outcome,
        ThreatLookupOutcome::Completed { hits: 1 }
    );

    // Re-registering the same name with a wrong password replaces it (same id).
    let before = sim.threat_service_id("auth");
    let mut bad = good.clone();
    bad.password = Some("wrong".into());
    sim.add_threat_service(bad).unwrap();
    assert_eq!(sim.threat_service_id("auth"), before);
    assert_eq!(sim.threat_services().len(), 1);
    sim.add_artifact(id, json!({"type": "DNS Name", "value": "evil.example"}))
        .unwrap();
    sim.wait_threat_lookups_idle(WAIT).await.unwrap();
    assert_eq!(sim.artifacts(id)[1]["hits"], json!([]));
    match &sim.threat_lookups()[1].outcome {
        ThreatLookupOutcome::Failed { error } => assert!(error.contains("401"), "{error}"),
        other => panic!("{other:?}"),
    }
    // The wrong credentials were sent, not none.
    assert!(cts.seen().last().unwrap().authorization.is_some());
    assert!(matches!(
        sim.test_threat_service("auth").await,
        Err(SimError::ThreatService { .. })
    ));
}

#[tokio::test]
async fn an_unreachable_service_leaves_no_hits_and_the_platform_keeps_working() {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let cts = Cts::start().await;
    let sim = start_sim().await;
    sim.add_threat_service(service(
        "gone",
        format!("http://127.0.0.1:{closed}/cts/gone"),
    ))
    .unwrap();
    sim.add_threat_service(service("ok", cts.url("hitsforall")))
        .unwrap();
    sim.register_function("fn_hello", "fn_hello");
    sim.add_rule(77, "Notify", &["fn_hello"]);
    let id = incident(&sim);

    sim.add_artifact(id, json!({"type": "IP Address", "value": "10.0.0.1"}))
        .unwrap();
    sim.wait_threat_lookups_idle(WAIT).await.unwrap();
    let lookups = sim.threat_lookups();
    assert_eq!(lookups.len(), 2);
    let gone = lookups.iter().find(|l| l.service == "gone").unwrap();
    match &gone.outcome {
        ThreatLookupOutcome::Failed { error } => {
            assert!(error.contains("OPTIONS"), "{error}");
            assert_eq!(gone.requests.len(), 1);
            assert!(gone.requests[0].error.is_some());
        }
        other => panic!("{other:?}"),
    }
    // Only the working service's hit is stored.
    let hits = sim.artifacts(id)[0]["hits"].as_array().unwrap().clone();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0]["threat_source_name"], "ok");

    // Everything else still works.
    sim.add_artifact(id, json!({"type": "String", "value": "another"}))
        .unwrap();
    let run = sim.run_manual_rule("Notify", id, json!({})).await.unwrap();
    assert_eq!(run.messages.len(), 1);
    let (s, inc) = Api::new(&sim)
        .get(&format!("/rest/orgs/201/incidents/{id}"))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(inc["id"], id);
    sim.wait_threat_lookups_idle(WAIT).await.unwrap();
    assert_eq!(sim.threat_lookups().len(), 4);
    assert_eq!(sim.artifacts(id).len(), 2);

    // Unregistered: no more lookups by it.
    sim.remove_threat_service("gone").unwrap();
    assert!(matches!(
        sim.remove_threat_service("gone"),
        Err(SimError::UnknownThreatService(_))
    ));
    sim.add_artifact(id, json!({"type": "String", "value": "third"}))
        .unwrap();
    sim.wait_threat_lookups_idle(WAIT).await.unwrap();
    assert_eq!(sim.threat_lookups().len(), 5);
}

#[tokio::test]
async fn polling_is_bounded_by_max_polls_and_the_deadline() {
    let cts = Cts::start().await;
    let sim = start_sim_with(SimConfig {
        threat_max_polls: 3,
        threat_lookup_deadline: Duration::from_secs(60),
        ..SimConfig::default()
    })
    .await;
    sim.add_threat_service(service("pending", cts.url("pending")))
        .unwrap();
    sim.add_threat_service(service("later", cts.url("later")))
        .unwrap();
    let id = incident(&sim);
    sim.add_artifact(
        id,
        json!({"type": "Malware MD5 Hash", "value": "d41d8cd98f00b204e9800998ecf8427e"}),
    )
    .unwrap();
    sim.wait_threat_lookups_idle(WAIT).await.unwrap();
    for l in sim.threat_lookups() {
        assert_eq!(l.artifact_type, "hash.md5");
        let ThreatLookupOutcome::Failed { error } = &l.outcome else {
            panic!("{l:?}");
        };
        match l.service.as_str() {
            "pending" => {
                assert!(error.contains("after 3 polls"), "{error}");
                assert_eq!(l.requests.len(), 2 + 3);
            }
            _ => {
                assert!(error.contains("deadline"), "{error}");
                assert_eq!(l.requests.len(), 2);
            }
        }
    }
    assert_eq!(sim.artifacts(id)[0]["hits"], json!([]));
}

#[tokio::test]
async fn the_localhost_probe_tests_a_service() {
    let cts = Cts::start().await;
    let sim = start_sim().await;
    sim.add_threat_service(service("good", cts.url("good")))
        .unwrap();
    sim.test_threat_service("good").await.unwrap();
    let probe = cts.seen().pop().unwrap();
    assert_eq!(probe.method, "POST");
    assert_eq!(
        probe.body,
        json!({"type": "net.name", "value": "localhost"})
    );

    for (name, expect) in [("hitsforall", "hit"), ("broken", "500")] {
        sim.add_threat_service(service(name, cts.url(name)))
            .unwrap();
        match sim.test_threat_service(name).await {
            Err(SimError::ThreatService { name: n, message }) => {
                assert_eq!(n, name);
                assert!(message.contains(expect), "{message}");
            }
            other => panic!("{name}: {other:?}"),
        }
    }
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    sim.add_threat_service(service("gone", format!("http://127.0.0.1:{closed}/x")))
        .unwrap();
    assert!(matches!(
        sim.test_threat_service("gone").await,
        Err(SimError::ThreatService { .. })
    ));
    assert!(matches!(
        sim.test_threat_service("nope").await,
        Err(SimError::UnknownThreatService(_))
    ));
    // The probe is not an artifact lookup.
    assert!(sim.threat_lookups().is_empty());

    // Invalid registrations are refused with a message.
    for bad in [
        service("", cts.url("x")),
        service("x", "ftp://host/x".into()),
        service("x", "not a url".into()),
    ] {
        assert!(
            matches!(
                sim.add_threat_service(bad.clone()),
                Err(SimError::Rejected(_))
            ),
            "{bad:?}"
        );
    }
}
