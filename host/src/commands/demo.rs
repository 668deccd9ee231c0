//! `host demo`: the README's first command. With no platform to talk to, it starts the simulated
//! platform in-process (with the emulators of the linked components' outside services),
//! customizes it from every linked crate, runs this host against it over real TLS sockets, and
//! tells the story of one incident: created, each manual rule, a note, artifacts, closed,
//! deleted. The components contribute their demo steps (text for the incident, manual rules,
//! artifacts, direct invocations). After each step it prints what the integrations did (action
//! status, notes, artifacts and their hits) and how long it took, and at the end what the
//! outside services show. Then it invokes each component's example functions directly.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use soar_engine::app;
use soar_engine::config::{AppConfig, ResilientOptions};
use soar_engine::customize;
use soar_rest::RestClient;
use soar_sdk::DemoStep;
use soar_sim::{InvocationEvent, InvokeRequest, Sim, SimConfig};

use super::report;
use super::world::World;

const WAIT: Duration = Duration::from_secs(30);

pub async fn run(repeat: usize) -> i32 {
    match demo(repeat).await {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e:#}");
            1
        }
    }
}

/// What the platform shows of one incident, to print what changed after each step.
#[derive(Default)]
struct Seen {
    actions: usize,
    notes: usize,
    artifacts: usize,
}

/// A note's text as plain lines (notes are HTML).
fn note_text(note: &Value) -> String {
    let html = match &note["text"] {
        Value::String(s) => s.as_str(),
        other => other["content"].as_str().unwrap_or_default(),
    };
    soar_sdk::text::html_to_plain(html)
}

/// Milliseconds since the epoch, as the platform stamps its objects.
fn epoch_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Waits until the platform is idle, then prints what happened since the last step, each line
/// at the time the platform stamped it (ms after the step began at `began`, epoch ms).
async fn after(sim: &Sim, id: i64, seen: &mut Seen, began: i64) -> anyhow::Result<()> {
    sim.wait_rules_idle(WAIT).await?;
    // Rules started by this step may start more (a workflow adds a note, ...).
    for run in sim.rule_runs() {
        run.wait(WAIT).await?;
    }
    sim.wait_threat_lookups_idle(WAIT).await?;
    sim.wait_rules_idle(WAIT).await?;
    let mut lines: Vec<(i64, String)> = Vec::new();
    let actions = sim.action_status(id);
    for a in actions.iter().skip(seen.actions) {
        let what = [
            a.rule.as_deref().map(|r| format!("rule \"{r}\"")),
            a.workflow.as_deref().map(|w| format!("workflow {w}")),
            a.function.as_deref().map(|f| format!("function {f}")),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" → ");
        lines.push((
            a.time,
            format!("action: {what}: {:?}: {}", a.state, a.message),
        ));
    }
    seen.actions = actions.len();
    let notes = sim.notes(id);
    for n in notes.iter().skip(seen.notes) {
        let at = n["create_date"].as_i64().unwrap_or(began);
        let text = note_text(n).replace('\n', "\n                  ");
        lines.push((at, format!("note: {text}")));
    }
    seen.notes = notes.len();
    let artifacts = sim.artifacts(id);
    for a in artifacts.iter().skip(seen.artifacts) {
        let at = a["created"].as_i64().unwrap_or(began);
        let hits = a["hits"].as_array().map_or(0, Vec::len);
        lines.push((at, format!("artifact: {} (hits: {hits})", a["value"])));
    }
    seen.artifacts = artifacts.len();
    lines.sort_by_key(|(at, _)| *at);
    for (at, line) in lines {
        outln!("  {:>5} ms  {line}", (at - began).max(0));
    }
    outln!("  {:>5} ms  done", (epoch_ms() - began).max(0));
    Ok(())
}

async fn demo(repeat: usize) -> anyhow::Result<()> {
    let t0 = Instant::now();
    let world = World::start(SimConfig::default()).await?;
    let sim = &world.sim;
    outln!(
        "simulated platform: REST https://localhost:{} and STOMP+TLS localhost:{} (org {}), CA {}",
        sim.rest_port(),
        sim.stomp_port(),
        sim.org_id(),
        sim.ca_file().display()
    );
    for (name, emulator) in &world.emulators {
        outln!("emulator: {name} {}", emulator.url());
    }
    let dir = tempfile_dir()?;
    let path = dir.join("app.config");
    let text = world.app_config().replacen(
        "[resilient]\n",
        &format!(
            "[resilient]\nnum_workers = 10\njournal_path = {}\n",
            dir.join("journal").display()
        ),
        1,
    );
    std::fs::write(&path, &text)?;
    let config = AppConfig::load(&path)?;
    let components =
        soar_engine::load_components(&config, &[], &[]).inspect_err(|e| report("", e))?;
    if components.is_empty() {
        anyhow::bail!(
            "no components are linked into this host: build it with a function crate feature"
        );
    }
    for c in &components {
        outln!(
            "component {} {}: functions {}",
            c.name,
            c.version,
            c.component.function_names().join(", ")
        );
    }
    let steps: Vec<DemoStep> = components
        .iter()
        .flat_map(|c| c.component.demo_steps().to_vec())
        .collect();

    // Set up the platform as an operator would: `host customize -y`.
    let definitions = customize::merged(components.iter().filter_map(|c| c.definitions.clone()))?;
    let opts = ResilientOptions::from_config(&config)?;
    let rest = RestClient::connect(app::rest_config(&opts)?).await?;
    let started = Instant::now();
    let report = customize::push(&rest, &definitions, |_| true, &mut |_| {}).await?;
    outln!(
        "customize: {} new object(s) imported, queue access granted on {}, in {} ms",
        report.plan.new.len(),
        report.granted.join(", "),
        started.elapsed().as_millis()
    );

    let started = Instant::now();
    let mut host = app::spawn(config, components);
    let queues = host.ready(WAIT).await?;
    outln!(
        "host: logged in and subscribed to {} in {} ms",
        queues.join(", "),
        started.elapsed().as_millis()
    );
    // Functions that take the incident's id as an input.
    let on_incident: Vec<String> = (definitions.functions.iter())
        .filter(|f| f.inputs.iter().any(|i| i.name == "incident_id"))
        .map(|f| f.name.clone())
        .collect();
    story(&world, &steps, repeat, &on_incident).await?;

    host.stop().await?;
    let stats = sim.stats();
    outln!(
        "\ndone in {} ms: {} message(s) delivered, {} acknowledged; protocol violations seen by the platform: {}",
        t0.elapsed().as_millis(),
        stats.delivered,
        stats.acked,
        sim.violations().len()
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// The story of one incident, with the components' steps; the components' example
/// invocations (`repeat` rounds) run on it before it is deleted.
async fn story(
    world: &World,
    steps: &[DemoStep],
    repeat: usize,
    on_incident: &[String],
) -> anyhow::Result<()> {
    let sim = &world.sim;
    let mut seen = Seen::default();
    outln!("\n[1] a new incident: \"DoS attack in EMEA\"");
    let started = epoch_ms();
    let mut description = String::from("Web front ends in Frankfurt answer slowly.");
    for step in steps {
        if let DemoStep::IncidentText(text) = step {
            description.push(' ');
            description.push_str(text);
        }
    }
    let incident = sim.create_incident(json!({
        "name": "DoS attack in EMEA",
        "description": description,
        "discovered_date": 1524857616000i64,
        "severity_code": "High",
    }))?;
    let id = incident["id"]
        .as_i64()
        .ok_or_else(|| anyhow::anyhow!("the platform answered an incident without an id"))?;
    after(sim, id, &mut seen, started).await?;

    let rules = steps.iter().filter_map(|s| match s {
        DemoStep::ManualRule(rule) => Some(rule),
        _ => None,
    });
    for (n, rule) in rules.enumerate() {
        outln!("\n[2.{}] manual rule \"{rule}\"", n + 1);
        let started = epoch_ms();
        let run = sim.run_manual_rule(rule, id, json!({})).await?;
        run.wait(WAIT).await?;
        after(sim, id, &mut seen, started).await?;
    }

    outln!("\n[3] an analyst adds a note");
    let started = epoch_ms();
    sim.add_note(id, "Traffic comes mostly from 203.0.113.0/24.")?;
    after(sim, id, &mut seen, started).await?;

    let artifacts = steps.iter().filter_map(|s| match s {
        DemoStep::Artifact {
            artifact_type,
            value,
            description,
        } => Some((artifact_type, value, description)),
        _ => None,
    });
    for (n, (artifact_type, value, description)) in artifacts.enumerate() {
        outln!("\n[4.{}] an artifact: {artifact_type} {value}", n + 1);
        let started = epoch_ms();
        sim.add_artifact(
            id,
            json!({"type": artifact_type, "value": value, "description": description}),
        )?;
        after(sim, id, &mut seen, started).await?;
    }

    outln!("\n[5] the incident is closed");
    let started = epoch_ms();
    sim.close_incident(id, "Resolved", "Blocked the networks at the edge.")?;
    after(sim, id, &mut seen, started).await?;
    if let Some(incident) = sim.incident(id) {
        let custom = incident["properties"]
            .as_object()
            .map(|p| {
                p.iter()
                    .filter(|(_, v)| !v.is_null())
                    .map(|(k, v)| format!("{k} = {v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default();
        outln!(
            "  incident {id}: plan_status {}, custom fields: {}",
            incident["plan_status"],
            if custom.is_empty() { "none" } else { &custom }
        );
    }

    outln!("\n{}", world.summary());

    let examples: Vec<(&String, &Value)> = steps
        .iter()
        .filter_map(|s| match s {
            DemoStep::Invoke { function, inputs } => Some((function, inputs)),
            _ => None,
        })
        .collect();
    if !examples.is_empty() {
        outln!("[6] the components' example functions, invoked on incident {id}");
    }
    let mut n = 0;
    for _ in 0..repeat {
        for (function, inputs) in &examples {
            n += 1;
            let mut inputs = (*inputs).clone();
            if let Value::Object(map) = &mut inputs
                && on_incident.contains(function)
            {
                map.insert("incident_id".into(), json!(id));
            }
            invoke(sim, id, function, inputs, n).await?;
        }
    }

    outln!("\n[7] the incident is deleted");
    let started = Instant::now();
    sim.delete_incident(id)?;
    sim.wait_rules_idle(WAIT).await?;
    for run in sim.rule_runs() {
        run.wait(WAIT).await?;
    }
    outln!("  {:>5} ms  done\n", started.elapsed().as_millis());
    outln!("{}", world.summary());
    Ok(())
}

/// Invokes `function` as a workflow on incident `id` would: the message carries the incident.
async fn invoke(sim: &Sim, id: i64, function: &str, inputs: Value, n: usize) -> anyhow::Result<()> {
    outln!("\n[6.{n}] invoke {function} with {inputs}");
    let started = Instant::now();
    let invocation = sim
        .invoke_with(InvokeRequest {
            function: function.to_string(),
            inputs,
            incident: sim.incident(id),
            ..InvokeRequest::default()
        })
        .await?;
    loop {
        match invocation.next_event(WAIT).await? {
            InvocationEvent::Status(r) => {
                outln!(
                    "  {:>5} ms  status: {}",
                    started.elapsed().as_millis(),
                    r.message
                )
            }
            InvocationEvent::Final(r) => {
                let kind = if r.message_type == 0 {
                    "result"
                } else {
                    "ERROR"
                };
                outln!(
                    "  {:>5} ms  {kind}: {}",
                    started.elapsed().as_millis(),
                    r.message
                );
                if let Some(results) = &r.results {
                    outln!(
                        "            content: {}",
                        results.get("content").unwrap_or(results)
                    );
                }
            }
            InvocationEvent::Acked => {
                outln!("  {:>5} ms  acknowledged", started.elapsed().as_millis());
                return Ok(());
            }
            _ => {}
        }
    }
}

fn tempfile_dir() -> std::io::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("soar-host-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
