//! End to end: the simulated platform, the host engine running fn_trustar, and the TruSTAR
//! emulator: rules, functions, the threat service and faults, as a user would see them.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use soar_engine::testkit::{Run, TestHost, TestOptions};
use soar_sim::{ObjectRef, ThreatService};
use trustar_emulator::{TrustarConfig, TrustarEmulator};

use fn_trustar as _;

async fn wait_until<F: FnMut() -> bool>(what: &str, timeout: Duration, mut f: F) {
    let start = Instant::now();
    while !f() {
        if start.elapsed() > timeout {
            panic!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn sections(emu: &TrustarEmulator, extra: &str) -> String {
    sections_on(emu, "trustar", extra)
}

/// The sections with `[trustar] queue = queue`.
fn sections_on(emu: &TrustarEmulator, queue: &str, extra: &str) -> String {
    let enclave = &emu.enclave_ids()[0];
    format!(
        "[trustar]\nqueue = {queue}\n\n\
         [trustar_soc]\nurl = {url}/\nuser_api_key = {key}\nuser_api_secret = {secret}\n\
         enclave_ids_for_submission = {enclave}\nworkspace = Default workspace,  SOC Team \n\
         auto_submission = enable\ntag = resilient\nincident_types_to_exclude = Malware\n\
         max_wait_secs = 5\n\n{extra}",
        url = emu.url(),
        key = emu.api_key(),
        secret = emu.api_secret(),
    )
}

/// The host running fn_trustar against `emu` with the default sections.
async fn start_host(emu: &TrustarEmulator) -> TestHost {
    TestHost::start_with(
        vec![Run::Registered("fn_trustar")],
        TestOptions {
            sections: sections(emu, ""),
            ..TestOptions::default()
        },
    )
    .await
    .unwrap()
}

fn http() -> reqwest::Client {
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incident_lifecycle_reports_enriches_updates_and_deletes() {
    let emu = TrustarEmulator::start(TrustarConfig::default())
        .await
        .unwrap();
    let enclave = emu.enclave_ids()[0].clone();
    // Another team's report shares 203.0.113.5 with our incident.
    emu.add_report(
        "Campaign X",
        "Seen 203.0.113.5 with 198.51.100.7, evil-domain.example and CVE-2017-0144 and HKEY_LOCAL_MACHINE\\Software\\Evil",
        &enclave,
    );
    let host = start_host(&emu).await;
    let sim = host.sim();
    sim.add_workspace("SOC Team").unwrap();
    let t0 = Instant::now();
    let incident = sim
        .create_incident(
            json!({"name": "Phish", "description": "<p>traffic to 203.0.113.5</p>",
                                "discovered_date": 1_700_000_000_000_i64, "workspace": "SOC Team"}),
        )
        .unwrap();
    let id = incident["id"].as_i64().unwrap();
    let ext = format!("RESILIENT{id}");
    wait_until("the report", Duration::from_secs(20), || {
        emu.report_by_external_id(&ext).is_some()
    })
    .await;
    wait_until("the correlated note", Duration::from_secs(20), || {
        sim.notes(id).len() >= 2
    })
    .await;
    eprintln!(
        "incident created → report + enrichment note: {:?}",
        t0.elapsed()
    );
    let report = emu.report_by_external_id(&ext).unwrap();
    assert_eq!(report["title"], format!("Resilient Incident {id}: Phish"));
    assert_eq!(report["enclaveIds"], json!([enclave]));
    let body = report["reportBody"].as_str().unwrap();
    assert!(body.starts_with(&format!(
        "Resilient Incident {id}: Phish\n\nSummary\n\tID: {id}"
    )));
    assert!(!body.contains("Notes"), "notes are not sent while active");
    let rid = report["id"].as_str().unwrap();
    assert_eq!(emu.report_tags(rid)[0]["name"], "resilient");
    // Tagged through the current endpoint, once (tags are no longer per enclave).
    let tagging: Vec<String> = emu
        .requests()
        .into_iter()
        .filter(|r| r.path.contains("/tags") || r.path.contains("alter-tags"))
        .map(|r| format!("{} {}?{} {}", r.method, r.path, r.query, r.status))
        .collect();
    assert_eq!(
        tagging,
        [format!("POST reports/{rid}/alter-tags?idType=internal 200")]
    );
    let notes = sim.notes(id);
    let texts: Vec<String> = notes
        .iter()
        .map(|n| {
            n["text"].as_str().map(str::to_string).unwrap_or_else(|| {
                n["text"]["content"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            })
        })
        .collect();
    assert!(
        texts[0].contains(&format!("/constellation/reports/{rid}")),
        "{texts:?}"
    );
    assert!(texts[1].starts_with("<h3>TruSTAR Enrichment</h3><h4>Indicators</h4>"));
    let artifacts = sim.artifacts(id);
    let values: Vec<&str> = artifacts
        .iter()
        .filter_map(|a| a["value"].as_str())
        .collect();
    assert!(values.contains(&"198.51.100.7"), "{values:?}");
    assert!(values.contains(&"evil-domain.example"), "{values:?}");
    assert!(values.contains(&"CVE-2017-0144"), "{values:?}");
    assert!(
        artifacts
            .iter()
            .all(|a| a["description"] == "TruSTAR Correlated Indicator")
    );
    // The registry key became a custom "TruSTAR REGISTRY_KEY" artifact.
    assert!(
        values.iter().any(|v| v.starts_with("HKEY_LOCAL_MACHINE")),
        "{values:?}"
    );

    // Send To TruSTAR twice: the report is updated, nothing is duplicated.
    for _ in 0..2 {
        let run = sim
            .run_manual_rule("Send To TruSTAR", id, json!({}))
            .await
            .unwrap();
        let reply = run.messages[0]
            .final_reply(Duration::from_secs(20))
            .await
            .unwrap();
        assert_eq!(reply.message_type, 0, "{reply:?}");
    }
    assert_eq!(emu.reports().len(), 2);
    assert_eq!(sim.artifacts(id).len(), artifacts.len());
    assert_eq!(sim.notes(id).len(), 2);

    // Functions.
    let reply = host
        .invoke(
            "get_correlated_indicators_from_trustar",
            json!({"trustar_incident_id": id}),
        )
        .await
        .unwrap()
        .final_reply(Duration::from_secs(20))
        .await
        .unwrap();
    let content = &reply.results.clone().unwrap()["content"];
    assert!(
        content["indicators"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["value"] == "198.51.100.7")
    );
    emu.set_priority("198.51.100.7", None, "HIGH");
    let reply = host
        .invoke(
            "get_priority_score_of_indicator",
            json!({"trustar_artifact_value": "198.51.100.7", "trustar_incident_id": id}),
        )
        .await
        .unwrap()
        .final_reply(Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(
        reply.results.clone().unwrap()["content"],
        json!({"priorityLevel": "HIGH", "note": "Priority of indicator 198.51.100.7 is HIGH."})
    );
    let reply = host
        .invoke(
            "whitelist_in_trustar",
            json!({"trustar_incident_id": id, "trustar_artifact_value": "evil-domain.example"}),
        )
        .await
        .unwrap()
        .final_reply(Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(
        reply.results.clone().unwrap()["content"],
        json!({
            "indicators": [{"type": "URL", "value": "evil-domain.example"}],
            "note": "Whitelisted indicators in TruSTAR\nURL: evil-domain.example\n"
        })
    );
    assert_eq!(emu.whitelist().len(), 1);
    let reply = host
        .invoke("undo_whitelist_in_trustar", json!({"trustar_incident_id": id, "trustar_artifact_value": "evil-domain.example", "trustar_artifact_type": "DNS Name"}))
        .await
        .unwrap()
        .final_reply(Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(
        reply.results.clone().unwrap()["content"],
        json!({
            "status": "Done",
            "note": "Indicator evil-domain.example removed from whitelist successfully"
        })
    );
    assert!(emu.whitelist().is_empty());
    // Manual whitelist rule on an artifact.
    let art = sim
        .artifacts(id)
        .into_iter()
        .find(|a| a["value"] == "198.51.100.7")
        .unwrap();
    let run = sim
        .run_manual_rule_on(
            "Whitelist in TruSTAR",
            ObjectRef::Artifact {
                incident_id: id,
                artifact_id: art["id"].as_i64().unwrap(),
            },
            json!({}),
        )
        .await
        .unwrap();
    let reply = run.messages[0]
        .final_reply(Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(reply.message_type, 0, "{reply:?}");
    assert_eq!(
        emu.whitelist(),
        vec![("IP".to_string(), "198.51.100.7".to_string())]
    );

    // Closing the incident updates the report with notes and resolution.
    sim.add_note(id, "analyst: blocked at the proxy").unwrap();
    sim.close_incident(id, "Resolved", "blocked").unwrap();
    wait_until("the closed report", Duration::from_secs(20), || {
        emu.report_by_external_id(&ext)
            .and_then(|r| {
                r["reportBody"]
                    .as_str()
                    .map(|b| b.contains("\tStatus: Closed"))
            })
            .unwrap_or(false)
    })
    .await;
    let body = emu.report_by_external_id(&ext).unwrap()["reportBody"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(body.contains("\tResolution Summary: blocked"), "{body}");
    assert!(
        body.contains("\tText: analyst: blocked at the proxy"),
        "{body}"
    );
    assert!(!body.contains("TruSTAR Enrichment"));

    // Deleting the incident deletes the report.
    sim.delete_incident(id).unwrap();
    wait_until("the report deletion", Duration::from_secs(20), || {
        emu.report_by_external_id(&ext).is_none()
    })
    .await;
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
    host.stop().await.unwrap();
}

/// A rule message about an incident deleted meanwhile (an update fired just before the
/// deletion) ends at once with a completed action: the platform's 404 is not retried for half
/// a minute while the incident's other flows, its deletion among them, wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rule_on_a_deleted_incident_ends_at_once() {
    let emu = TrustarEmulator::start(TrustarConfig::default())
        .await
        .unwrap();
    let host = start_host(&emu).await;
    let sim = host.sim();
    sim.add_workspace("SOC Team").unwrap();
    let gone = 999_999;
    let inv = sim
        .send_rule_message(
            "trustar",
            "Send To TruSTAR",
            json!({"incident": {"id": gone, "name": "Gone", "workspace": "SOC Team"}}),
        )
        .await
        .unwrap();
    let reply = inv.final_reply(Duration::from_secs(20)).await.unwrap();
    assert_eq!(reply.message_type, 0, "{reply:?}");
    assert!(
        reply
            .message
            .contains(&format!("Incident {gone} no longer exists")),
        "{reply:?}"
    );
    let gets: Vec<_> = sim
        .rest_log()
        .into_iter()
        .filter(|(_, path, _)| path.contains(&format!("/incidents/{gone}")))
        .collect();
    assert_eq!(gets.len(), 1, "{gets:?}");
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
    host.stop().await.unwrap();
}

/// `[trustar] queue` renamed, as the plugin's documentation invites: `customize` pushes the
/// destination, functions and rules under the new name, and the rules still run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renamed_queue_keeps_the_rules_working() {
    let emu = TrustarEmulator::start(TrustarConfig::default())
        .await
        .unwrap();
    let host = TestHost::start_with(
        vec![Run::Registered("fn_trustar")],
        TestOptions {
            sections: sections_on(&emu, "soc_trustar", ""),
            ..TestOptions::default()
        },
    )
    .await
    .unwrap();
    let sim = host.sim();
    sim.add_workspace("SOC Team").unwrap();
    let incident = sim
        .create_incident(json!({"name": "Renamed", "discovered_date": 1_700_000_000_000_i64, "workspace": "SOC Team"}))
        .unwrap();
    let ext = format!("RESILIENT{}", incident["id"]);
    wait_until("the report", Duration::from_secs(20), || {
        emu.report_by_external_id(&ext).is_some()
    })
    .await;
    host.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn excluded_types_and_unknown_workspaces_are_not_submitted() {
    let emu = TrustarEmulator::start(TrustarConfig::default())
        .await
        .unwrap();
    let host = start_host(&emu).await;
    let sim = host.sim();
    sim.add_workspace("Elsewhere").unwrap();
    let other = sim
        .create_incident(json!({"name": "elsewhere", "discovered_date": 1_700_000_000_000_i64, "workspace": "Elsewhere"}))
        .unwrap();
    let oid = other["id"].as_i64().unwrap();
    let reply = host
        .invoke(
            "submit_report_to_trustar",
            json!({"trustar_incident_id": oid}),
        )
        .await
        .unwrap()
        .final_reply(Duration::from_secs(20))
        .await
        .unwrap();
    let results = reply.results.clone().unwrap();
    assert_eq!(results["success"], false);
    assert!(
        results["content"]["error"]
            .as_str()
            .unwrap()
            .contains("'Elsewhere'"),
        "{results}"
    );
    assert!(emu.reports().is_empty());
    host.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_expired_token_429_and_trustar_down() {
    let emu = TrustarEmulator::start(TrustarConfig::default())
        .await
        .unwrap();
    let host = start_host(&emu).await;
    let sim = host.sim();
    let invoke_priority = || async {
        host.invoke(
            "get_priority_score_of_indicator",
            json!({"trustar_artifact_value": "203.0.113.99"}),
        )
        .await
        .unwrap()
        .final_reply(Duration::from_secs(20))
        .await
        .unwrap()
    };
    let reply = invoke_priority().await;
    assert_eq!(
        reply.results.clone().unwrap()["content"],
        json!({
            "priorityLevel": "NOT_FOUND",
            "note": "Priority of indicator 203.0.113.99 is NOT_FOUND."
        })
    );
    assert_eq!(emu.tokens_issued(), 1);
    // Expired token: refreshed once.
    emu.expire_tokens();
    let reply = invoke_priority().await;
    assert_eq!(
        reply.results.clone().unwrap()["content"]["priorityLevel"],
        "NOT_FOUND"
    );
    assert_eq!(emu.tokens_issued(), 2);
    // 429: waited.
    emu.rate_limit_next(2, 150);
    let t = Instant::now();
    let reply = invoke_priority().await;
    assert_eq!(
        reply.results.clone().unwrap()["content"]["priorityLevel"],
        "NOT_FOUND"
    );
    assert!(
        t.elapsed() >= Duration::from_millis(300),
        "{:?}",
        t.elapsed()
    );
    // TruSTAR down: a clear error, and the host keeps serving.
    emu.set_unavailable(true);
    let reply = invoke_priority().await;
    let results = reply.results.clone().unwrap();
    let error = results["content"]["error"].as_str().unwrap();
    assert!(
        error.contains("[trustar_soc]") && error.contains("HTTP 503"),
        "{error}"
    );
    assert!(!error.contains(emu.api_secret()));
    emu.set_unavailable(false);
    let reply = invoke_priority().await;
    assert_eq!(
        reply.results.clone().unwrap()["content"]["priorityLevel"],
        "NOT_FOUND"
    );
    // Rule handlers answer errors as error replies.
    emu.set_unavailable(true);
    let inc = sim
        .create_incident(json!({"name": "down", "discovered_date": 1_700_000_000_000_i64}))
        .unwrap();
    let run = sim
        .run_manual_rule("Send To TruSTAR", inc["id"].as_i64().unwrap(), json!({}))
        .await
        .unwrap();
    let reply = run.messages[0]
        .final_reply(Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(reply.message_type, 1, "{reply:?}");
    assert!(reply.message.contains("trustar_soc"), "{reply:?}");
    host.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn threat_service_over_http_and_from_the_platform() {
    let emu = TrustarEmulator::start(TrustarConfig::default())
        .await
        .unwrap();
    let enclave = emu.enclave_ids()[0].clone();
    emu.set_priority("203.0.113.66", Some("IP"), "HIGH");
    emu.set_priority("203.0.113.67", Some("IP"), "LOW");
    emu.set_priority("203.0.113.68", Some("IP"), "MEDIUM");
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = probe.local_addr().unwrap().port();
    drop(probe);
    let extra = format!(
        "[trustar_threat_source]\nurl = {}\nuser_api_key = {}\nuser_api_secret = {}\nenclave_ids_for_search = {enclave}\n\n\
         [webserver]\nserver = 127.0.0.1\nport = {port}\n\n[custom_threat_service]\nanswer_within_ms = 300\nfirst_retry_secs = 1\nlater_retry_secs = 1\nauth_user = cts\nauth_password = cts-pass\n",
        emu.url(),
        emu.api_key(),
        emu.api_secret()
    );
    let host = TestHost::start_with(
        vec![Run::Registered("fn_trustar")],
        TestOptions {
            sections: sections(&emu, &extra),
            ..TestOptions::default()
        },
    )
    .await
    .unwrap();
    let base = format!("http://127.0.0.1:{port}/cts/trustar");
    let c = http();
    // The service starts with the host.
    let start = Instant::now();
    loop {
        if c.request(reqwest::Method::OPTIONS, &base)
            .basic_auth("cts", Some("cts-pass"))
            .send()
            .await
            .is_ok()
        {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "threat service did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let post = |value: &str| {
        c.post(&base)
            .basic_auth("cts", Some("cts-pass"))
            .json(&json!({"type": "net.ip", "value": value}))
            .send()
    };
    // Wrong credentials: 401.
    let r = c
        .post(&base)
        .basic_auth("cts", Some("nope"))
        .json(&json!({"type": "net.ip", "value": "1.1.1.1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // The test probe.
    let r = c
        .post(&base)
        .basic_auth("cts", Some("cts-pass"))
        .json(&json!({"type": "net.name", "value": "localhost"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Fast: 200 with hits on the POST itself.
    let r = post("203.0.113.66").await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    // Only the documented property: no link (it would end up in the report body, be extracted
    // as an indicator and queried as a correlated one).
    assert_eq!(
        v["hits"],
        json!([{"props": [{"type": "string", "name": "Priority Level", "value": "HIGH"}]}])
    );
    // LOW and NOT_FOUND: no hits. MEDIUM: a hit.
    let v: Value = post("203.0.113.67").await.unwrap().json().await.unwrap();
    assert_eq!(v["hits"], json!([]));
    let v: Value = post("203.0.113.99").await.unwrap().json().await.unwrap();
    assert_eq!(v["hits"], json!([]));
    let v: Value = post("203.0.113.68").await.unwrap().json().await.unwrap();
    assert_eq!(v["hits"][0]["props"][0]["value"], "MEDIUM");
    // Slow TruSTAR: 303, polling, then hits; then cached.
    emu.set_priority("203.0.113.70", Some("IP"), "HIGH");
    emu.set_delay(Duration::from_millis(600));
    let r = post("203.0.113.70").await.unwrap();
    assert_eq!(r.status(), 303);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["retry_secs"], 1);
    let poll = format!("{base}/{}", v["id"].as_str().unwrap());
    let start = Instant::now();
    let hits = loop {
        let r = c
            .get(&poll)
            .basic_auth("cts", Some("cts-pass"))
            .send()
            .await
            .unwrap();
        if r.status() == 200 {
            let v: Value = r.json().await.unwrap();
            break v["hits"].clone();
        }
        assert_eq!(r.status(), 303);
        assert!(start.elapsed() < Duration::from_secs(10));
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(hits[0]["props"][0]["value"], "HIGH");
    let t = Instant::now();
    let r = post("203.0.113.70").await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        t.elapsed() < Duration::from_millis(500),
        "cached answer took {:?}",
        t.elapsed()
    );
    emu.set_delay(Duration::ZERO);

    // From the platform: a new artifact gets its hit stored.
    let sim = host.sim();
    sim.add_threat_service(ThreatService {
        name: "TruSTAR".to_string(),
        url: base.clone(),
        user: Some("cts".to_string()),
        password: Some("cts-pass".to_string()),
    })
    .unwrap();
    let inc = sim
        .create_incident(
            json!({"name": "cts", "discovered_date": 1_700_000_000_000_i64, "workspace": "Legal"}),
        )
        .or_else(|_| {
            sim.create_incident(json!({"name": "cts", "discovered_date": 1_700_000_000_000_i64}))
        })
        .unwrap();
    let id = inc["id"].as_i64().unwrap();
    emu.set_priority("203.0.113.80", Some("IP"), "HIGH");
    let t0 = Instant::now();
    let art = sim
        .add_artifact(id, json!({"type": "IP Address", "value": "203.0.113.80"}))
        .unwrap();
    let aid = art["id"].as_i64().unwrap();
    wait_until("the artifact's hit", Duration::from_secs(20), || {
        sim.artifacts(id)
            .iter()
            .find(|a| a["id"] == aid)
            .and_then(|a| a["hits"].as_array().map(|h| !h.is_empty()))
            .unwrap_or(false)
    })
    .await;
    eprintln!("artifact created → hit stored: {:?}", t0.elapsed());
    host.stop().await.unwrap();
}

/// A post-processing script in the original app's style: item access on `results`, and `error`
/// tested on a success result that has no such key.
const ORIGINAL_STYLE_SCRIPT: &str = concat!(
    "# as the original app's example workflows read results\n",
    "if not results['error']:\n",
    "  note = u\"Priority of indicator {} is {}.\".format(artifact.value, results['priorityLevel'])\n",
    "  incident.addNote(note)\n",
    "else:\n",
    "  incident.addNote(results['error'])\n",
);

/// Runs the manual rule `rule` on `object` and asserts that its workflow completed.
async fn run_to_completion(sim: &soar_sim::Sim, rule: &str, object: ObjectRef) {
    let run = sim
        .run_manual_rule_on(rule, object, json!({}))
        .await
        .unwrap();
    let workflows = run.wait(Duration::from_secs(60)).await.unwrap();
    assert_eq!(
        workflows[0].status,
        soar_sim::WorkflowStatus::Completed,
        "{:?}",
        workflows[0].status
    );
}

/// An org that still runs the original app's workflow scripts: they read the result's keys at
/// the top of `results` (`results['priorityLevel']`, `results['error']`), not under `content`,
/// and test `results['error']` on success. Both the success and the error branch write their
/// note.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_original_apps_workflow_scripts_read_our_results() {
    let emu = TrustarEmulator::start(TrustarConfig::default())
        .await
        .unwrap();
    let host = start_host(&emu).await;
    let sim = host.sim();
    let mut export = soar_engine::testkit::definitions_of("fn_trustar")
        .unwrap()
        .export();
    soar_engine::testkit::set_workflow_script(
        &mut export,
        "example_get_priority_score_of_indicator",
        "post_processing_script",
        ORIGINAL_STYLE_SCRIPT,
    );
    soar_engine::testkit::import_sim(sim, &export)
        .await
        .unwrap();

    emu.set_priority("198.51.100.23", None, "HIGH");
    let inc = sim
        .create_incident(
            json!({"name": "original scripts", "discovered_date": 1_700_000_000_000_i64}),
        )
        .unwrap();
    let id = inc["id"].as_i64().unwrap();
    let art = sim
        .add_artifact(id, json!({"type": "IP Address", "value": "198.51.100.23"}))
        .unwrap();
    let on_artifact = ObjectRef::Artifact {
        incident_id: id,
        artifact_id: art["id"].as_i64().unwrap(),
    };
    let rule = "Rule for workflow: Get Priority Score of Indicator";
    run_to_completion(sim, rule, on_artifact).await;
    let notes = |sim: &soar_sim::Sim| -> Vec<String> {
        sim.notes(id)
            .iter()
            .map(|n| match &n["text"] {
                Value::String(s) => s.clone(),
                rich => rich["content"].as_str().unwrap_or_default().to_string(),
            })
            .collect()
    };
    assert!(
        notes(sim).contains(&"Priority of indicator 198.51.100.23 is HIGH.".to_string()),
        "{:?}",
        notes(sim)
    );

    // A report whose indicators TruSTAR relates to nothing: the original's "no correlated
    // indicators" note, not an empty list under a heading.
    let ext = format!("RESILIENT{id}");
    wait_until("the incident's report", Duration::from_secs(20), || {
        emu.report_by_external_id(&ext).is_some()
    })
    .await;
    let report_id = emu.report_by_external_id(&ext).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(!emu.report_indicators(&report_id).is_empty());
    let reply = host
        .call(
            "get_correlated_indicators_from_trustar",
            json!({"trustar_incident_id": id}),
        )
        .await
        .unwrap();
    assert_eq!(
        reply.results.unwrap()["content"],
        json!({"indicators": [], "note": "No correlated indicators found for this incident."})
    );

    // TruSTAR down: the original's error branch writes the error.
    emu.set_unavailable(true);
    run_to_completion(sim, rule, on_artifact).await;
    assert!(
        notes(sim)
            .iter()
            .any(|n| n.contains("[trustar_soc]") && n.contains("HTTP 503")),
        "{:?}",
        notes(sim)
    );
    host.stop().await.unwrap();
}
