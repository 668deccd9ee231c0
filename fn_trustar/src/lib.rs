//! `fn_trustar`: the TruSTAR integration. Incidents become TruSTAR reports, correlated
//! indicators come back as artifacts, analysts get priority scores and manage TruSTAR's
//! whitelist, and a custom threat service tells the platform which artifacts are HIGH or MEDIUM
//! priority in TruSTAR (spec parts C and D).
//!
//! Modules:
//! - [`client`]: the TruSTAR REST API v1.3 client (OAuth, 429 waits, paging).
//! - [`config`]: `[trustar]`, `[trustar_<account>]`, `[trustar_threat_source]` as typed
//!   sections, validated at start.
//! - [`report`]: the report title, external id, body and the notes, as pure functions.
//! - [`flows`]: routing by workspace, submit/update, enrichment, delete.
//! - [`threat`]: the threat service's lookup (the host serves it at `/cts/trustar`).
//!
//! The six functions, the seven rule handlers and the threat service are wired in [`build`].

pub mod client;
pub mod config;
pub mod error;
pub mod flows;
pub mod report;
pub mod threat;

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Value, json};
use soar_sdk::prelude::*;
use soar_sdk::{ArtifactType, Rest};
use tokio::sync::OwnedMutexGuard;

use crate::config::{TrustarConfig, TrustarSections};
use crate::error::FlowError;
use crate::flows::{Integration, Routed, Submission};

/// The component's name.
pub const NAME: &str = "fn_trustar";

soar_sdk::register_component! {
    name: NAME,
    description: "TruSTAR reports, correlated indicators, priority scores, whitelists and threat service",
    config: TrustarSections,
    build: build,
    customizations: ["customize/fn_trustar.yaml"],
    threat_services: ["trustar"],
}

/// Rule display names handled here (D.3).
pub mod rules {
    pub const CASE_CREATED: &str = "CaseCreated";
    pub const UPDATE_INCIDENT: &str = "UpdateIncident";
    pub const ARTIFACT_CREATED: &str = "ArtifactCreated";
    pub const INCIDENT_DELETED: &str = "Incident Deleted";
    pub const SEND_TO_TRUSTAR: &str = "Send To TruSTAR";
    pub const WHITELIST: &str = "Whitelist in TruSTAR";
    pub const UNDO_WHITELIST: &str = "Undo Whitelist in TruSTAR";
}

/// The status text of a rule that did its job.
pub const DONE: &str = "Task Completed Successfully";

/// Inputs: `trustar_incident_id`.
#[derive(Debug, Deserialize)]
pub struct IncidentInputs {
    pub trustar_incident_id: Option<i64>,
}

/// Inputs of `get_priority_score_of_indicator`.
#[derive(Debug, Deserialize)]
pub struct PriorityInputs {
    pub trustar_artifact_value: Option<String>,
    pub trustar_incident_id: Option<i64>,
}

/// Inputs of `whitelist_in_trustar`.
#[derive(Debug, Deserialize)]
pub struct WhitelistInputs {
    pub trustar_incident_id: Option<i64>,
    pub trustar_artifact_value: Option<String>,
}

/// Inputs of `undo_whitelist_in_trustar`.
#[derive(Debug, Deserialize)]
pub struct UndoWhitelistInputs {
    pub trustar_artifact_value: Option<String>,
    pub trustar_incident_id: Option<i64>,
    pub trustar_artifact_type: Option<String>,
}

/// Validates the TruSTAR sections and builds the component.
pub fn build(
    sections: TrustarSections,
    setup: &Setup,
) -> Result<Component<Arc<Integration>>, ConfigError> {
    let config = Arc::new(TrustarConfig::new(sections, setup)?);
    let q = config.queue.clone();
    let searcher = config.threat_source.as_ref().map(threat::Searcher::new);
    let mut component = Component::with_state(Arc::new(Integration::new(config)))
        .function("submit_report_to_trustar", submit_function)
        .function("get_priority_score_of_indicator", priority_function)
        .function(
            "get_correlated_indicators_from_trustar",
            correlated_function,
        )
        .function("delete_report_in_trustar", delete_function)
        .function("whitelist_in_trustar", whitelist_function)
        .function("undo_whitelist_in_trustar", undo_whitelist_function)
        .rule(q.clone(), rules::CASE_CREATED, case_created)
        .rule(q.clone(), rules::UPDATE_INCIDENT, incident_updated)
        .rule(q.clone(), rules::ARTIFACT_CREATED, artifact_created)
        .rule(q.clone(), rules::INCIDENT_DELETED, incident_deleted)
        .rule(q.clone(), rules::SEND_TO_TRUSTAR, send_to_trustar)
        .rule(q.clone(), rules::WHITELIST, whitelist_rule)
        .rule(q.clone(), rules::UNDO_WHITELIST, undo_whitelist_rule)
        .destination_named(config::DEFAULT_QUEUE, q)
        .selftest(selftest)
        .demo(DemoStep::IncidentText(
            "The floods are steered from 198.51.100.23.".into(),
        ))
        .demo(DemoStep::ManualRule(rules::SEND_TO_TRUSTAR.into()))
        .demo(DemoStep::Artifact {
            artifact_type: "IP Address".into(),
            value: "203.0.113.7".into(),
            description: "Top talker".into(),
        })
        .demo(DemoStep::Invoke {
            function: "get_priority_score_of_indicator".into(),
            inputs: json!({"trustar_artifact_value": "evil.example.com"}),
        });
    if let Some(searcher) = searcher {
        component = component.threat_service(threat::NAME, searcher);
    }
    Ok(component)
}

/// The selftest: every account answers `ping` with its credentials.
async fn selftest(State(i): State<Arc<Integration>>) -> SelftestReport {
    if i.config.accounts.is_empty() {
        return SelftestReport::failure("no [trustar_<name>] account section is configured");
    }
    for a in &i.config.accounts {
        if let Some(c) = i.client(&a.section)
            && let Err(e) = c.ping().await
        {
            return SelftestReport::failure(e.to_string());
        }
    }
    SelftestReport::success()
}

/// A result as the original plugin's workflows read it and as ours do: the content in the
/// `ResultPayload` envelope (`results.content.note`) and its keys also at the top of `results`,
/// where the original app's own post-processing scripts look (`results['priorityLevel']`,
/// `results['indicators']`, `results['id']`, `results['error']`).
fn result(content: Value) -> FunctionResult {
    FunctionResult::new(content).also_at_top()
}

/// A failed call: `{"error": …}` as the original plugin answered, with the same text as `note`
/// (what the example workflows write, like the original's `incident.addNote(results['error'])`),
/// as a failed (but normal) reply.
fn error_result(e: impl std::fmt::Display) -> FunctionResult {
    let msg = e.to_string();
    tracing::error!("{msg}");
    FunctionResult::failure(msg.clone(), json!({"error": msg, "note": msg})).also_at_top()
}

/// `TYPE: value` lines of a list of indicators, as the original workflows' notes.
fn indicator_lines(list: &[Value]) -> String {
    list.iter()
        .map(|x| {
            format!(
                "{}: {}\n",
                x["type"].as_str().unwrap_or_default(),
                x["value"].as_str().unwrap_or_default()
            )
        })
        .collect()
}

fn incident_id_of(id: Option<i64>) -> Result<i64, FunctionError> {
    id.ok_or_else(|| FunctionError::missing_input("trustar_incident_id"))
}

async fn routed_incident(
    i: &Integration,
    ctx: &Context,
    incident_id: i64,
) -> Result<(Value, Routed), FlowError> {
    let rest = ctx.rest().map_err(|e| FlowError::Other(e.to_string()))?;
    let incident = rest.get(&format!("/incidents/{incident_id}")).await?;
    let routed = i.route(rest, &incident).await?;
    Ok((incident, routed))
}

async fn submit_function(
    State(i): State<Arc<Integration>>,
    ctx: Context,
    inputs: IncidentInputs,
) -> Result<FunctionResult, FunctionError> {
    let id = incident_id_of(inputs.trustar_incident_id)?;
    let _guard = i.incident_lock(id).lock_owned().await;
    let run = async {
        let (incident, routed) = routed_incident(&i, &ctx, id).await?;
        ctx.status(format!(
            "Submitting incident {id} to [{}]",
            routed.account.section
        ))
        .await;
        i.submit_or_update(
            ctx.rest().map_err(|e| FlowError::Other(e.to_string()))?,
            &routed,
            &incident,
        )
        .await
    };
    Ok(match run.await {
        Ok(Submission::Created(r) | Submission::Updated(r)) => {
            let mut content = serde_json::to_value(r).unwrap_or_default();
            content["note"] = content["id"].clone();
            result(content)
        }
        Err(e) => error_result(e),
    })
}

async fn priority_function(
    State(i): State<Arc<Integration>>,
    ctx: Context,
    inputs: PriorityInputs,
) -> Result<FunctionResult, FunctionError> {
    let value = inputs
        .trustar_artifact_value
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| FunctionError::missing_input("trustar_artifact_value"))?;
    let run = async {
        // The original used the workspace of the first incident of `GET /incidents/`; we use the
        // given incident's workspace, else the only account.
        let client = match inputs.trustar_incident_id {
            Some(id) => routed_incident(&i, &ctx, id).await?.1.client,
            None => match i.config.accounts.as_slice() {
                [only] => i
                    .client(&only.section)
                    .cloned()
                    .ok_or_else(|| FlowError::Other("no TruSTAR client".to_string()))?,
                [] => {
                    return Err(FlowError::Other(
                        "no [trustar_<name>] account is configured".to_string(),
                    ));
                }
                _ => {
                    return Err(FlowError::Other(
                        "several TruSTAR accounts are configured: set trustar_incident_id so that the incident's workspace chooses one".to_string(),
                    ));
                }
            },
        };
        let found = client.search_indicators(value.trim(), &[]).await?;
        Ok::<_, FlowError>(
            found
                .into_iter()
                .find(|x| x.value == value.trim())
                .and_then(|x| x.priority_level)
                .unwrap_or_else(|| "NOT_FOUND".to_string()),
        )
    };
    Ok(match run.await {
        Ok(level) => result(json!({
            "priorityLevel": level,
            "note": format!("Priority of indicator {} is {level}.", value.trim()),
        })),
        Err(e) => error_result(e),
    })
}

async fn correlated_function(
    State(i): State<Arc<Integration>>,
    ctx: Context,
    inputs: IncidentInputs,
) -> Result<FunctionResult, FunctionError> {
    let id = incident_id_of(inputs.trustar_incident_id)?;
    let run = async {
        let (_, routed) = routed_incident(&i, &ctx, id).await?;
        i.correlated(&routed, id).await
    };
    Ok(match run.await {
        Ok(None) => result(json!({
            "indicators": [],
            "note": "No correlated indicators found for this incident."
        })),
        Ok(Some(list)) => {
            let indicators: Vec<Value> = list
                .into_iter()
                .take(flows::MAX_CORRELATED)
                .map(|x| json!({"type": x.indicator_type, "value": x.value}))
                .collect();
            let note = format!(
                "Correalted indicators from workflow\n{}",
                indicator_lines(&indicators)
            );
            result(json!({"indicators": indicators, "note": note}))
        }
        Err(e) => error_result(e),
    })
}

async fn delete_function(
    State(i): State<Arc<Integration>>,
    ctx: Context,
    inputs: IncidentInputs,
) -> Result<FunctionResult, FunctionError> {
    let id = incident_id_of(inputs.trustar_incident_id)?;
    let run = async {
        let (_, routed) = routed_incident(&i, &ctx, id).await?;
        if i.delete(&routed, id).await? {
            Ok(())
        } else {
            Err(FlowError::Other(format!(
                "TruSTAR account [{}] has no report RESILIENT{id}",
                routed.account.section
            )))
        }
    };
    Ok(match run.await {
        Ok(()) => result(json!({"status": "Done", "note": "Report deleted successfully"})),
        Err(e) => error_result(e),
    })
}

async fn whitelist_function(
    State(i): State<Arc<Integration>>,
    ctx: Context,
    inputs: WhitelistInputs,
) -> Result<FunctionResult, FunctionError> {
    let (Some(id), Some(value)) = (
        inputs.trustar_incident_id,
        inputs
            .trustar_artifact_value
            .filter(|v| !v.trim().is_empty()),
    ) else {
        return Err(FunctionError::msg(
            "whitelist_in_trustar needs trustar_incident_id and trustar_artifact_value",
        ));
    };
    let run = async {
        let (_, routed) = routed_incident(&i, &ctx, id).await?;
        Ok::<_, FlowError>(
            routed
                .client
                .whitelist_add(std::slice::from_ref(&value))
                .await?,
        )
    };
    Ok(match run.await {
        Ok(list) => {
            let indicators: Vec<Value> = list
                .into_iter()
                .map(|x| json!({"type": x.indicator_type, "value": x.value}))
                .collect();
            let note = format!(
                "Whitelisted indicators in TruSTAR\n{}",
                indicator_lines(&indicators)
            );
            result(json!({"indicators": indicators, "note": note}))
        }
        Err(e) => error_result(e),
    })
}

async fn undo_whitelist_function(
    State(i): State<Arc<Integration>>,
    ctx: Context,
    inputs: UndoWhitelistInputs,
) -> Result<FunctionResult, FunctionError> {
    let id = incident_id_of(inputs.trustar_incident_id)?;
    let value = inputs
        .trustar_artifact_value
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| FunctionError::missing_input("trustar_artifact_value"))?;
    let run = async {
        let (_, routed) = routed_incident(&i, &ctx, id).await?;
        let ty = inputs
            .trustar_artifact_type
            .as_deref()
            .and_then(flows::indicator_type_for);
        routed
            .client
            .whitelist_delete(&value, ty.as_deref())
            .await?;
        Ok::<_, FlowError>(())
    };
    Ok(match run.await {
        Ok(()) => result(json!({
            "status": "Done",
            "note": format!("Indicator {value} removed from whitelist successfully"),
        })),
        Err(e) => error_result(e),
    })
}

/// How an automatic rule goes on.
enum Automatic {
    Run(RuleRun),
    /// Nothing to do: the action's answer.
    Done(String),
}

/// A rule message's incident routed to its account, with the incident's lock held.
struct RuleRun {
    routed: Routed,
    rest: Rest,
    _guard: OwnedMutexGuard<()>,
}

impl RuleRun {
    async fn start(
        i: &Integration,
        ctx: &Context,
        incident: &Incident,
    ) -> Result<Self, FunctionError> {
        Ok(Self::route(i, ctx.rest()?.clone(), incident).await?)
    }

    async fn route(i: &Integration, rest: Rest, incident: &Incident) -> Result<Self, FlowError> {
        let routed = i.route(&rest, incident.json()).await?;
        let guard = i.incident_lock(incident.id).lock_owned().await;
        Ok(RuleRun {
            routed,
            rest,
            _guard: guard,
        })
    }

    /// For an automatic rule: the run, or the answer that completes the action at once when
    /// no account lists the incident's workspace or the account does not submit automatically
    /// (each says which setting to change; neither is an error of the rule).
    async fn start_automatic(
        i: &Integration,
        ctx: &Context,
        incident: &Incident,
    ) -> Result<Automatic, FunctionError> {
        let run = match Self::route(i, ctx.rest()?.clone(), incident).await {
            Ok(run) => run,
            Err(FlowError::NoAccount { workspace }) => {
                return Ok(Automatic::Done(format!(
                    "No TruSTAR account for workspace '{workspace}': nothing submitted (to \
                     submit its incidents, add it to `workspace` in a [trustar_<name>] section)"
                )));
            }
            Err(e) => return Err(e.into()),
        };
        Ok(if run.routed.account.auto_submission {
            Automatic::Run(run)
        } else {
            Automatic::Done(format!(
                "Automatic submission is disabled in [{}]",
                run.routed.account.section
            ))
        })
    }

    /// Submits (or updates) the incident's report and enriches the incident.
    async fn submit(&self, i: &Integration, incident: &Incident) -> Result<String, FunctionError> {
        let answer = match i
            .submit_or_update(&self.rest, &self.routed, incident.json())
            .await
        {
            Ok(_) => i
                .enrich(&self.rest, &self.routed, incident.id)
                .await
                .map(|_| DONE.to_string()),
            Err(FlowError::Excluded { .. }) => {
                Ok("This type of incident can't be submitted to TruSTAR".to_string())
            }
            Err(e) => Err(e),
        };
        gone_is_done(answer)
    }

    /// Updates an existing report and enriches the incident.
    async fn update(&self, i: &Integration, id: i64) -> Result<String, FunctionError> {
        let answer = match i.update(&self.rest, &self.routed, id).await {
            Ok(_) => i
                .enrich(&self.rest, &self.routed, id)
                .await
                .map(|_| DONE.to_string()),
            Err(FlowError::Trustar(e)) if e.is_not_found() => Ok(format!(
                "Incident {id} has no TruSTAR report yet in [{}]",
                self.routed.account.section
            )),
            Err(e) => Err(e),
        };
        gone_is_done(answer)
    }
}

/// A rule that fired just before its incident was deleted has nothing left to do: the
/// "Incident Deleted" rule deletes the report.
fn gone_is_done(answer: Result<String, FlowError>) -> Result<String, FunctionError> {
    match answer {
        Err(FlowError::IncidentGone(id)) => {
            Ok(format!("Incident {id} no longer exists: nothing to do"))
        }
        other => other.map_err(FunctionError::from),
    }
}

/// "CaseCreated": submit a new incident when the account submits automatically.
async fn case_created(
    State(i): State<Arc<Integration>>,
    ctx: Context,
    incident: Incident,
) -> Result<String, FunctionError> {
    match RuleRun::start_automatic(&i, &ctx, &incident).await? {
        Automatic::Done(answer) => Ok(answer),
        Automatic::Run(run) => run.submit(&i, &incident).await,
    }
}

/// "UpdateIncident": update the report of a changed incident.
async fn incident_updated(
    State(i): State<Arc<Integration>>,
    ctx: Context,
    incident: Incident,
) -> Result<String, FunctionError> {
    match RuleRun::start_automatic(&i, &ctx, &incident).await? {
        Automatic::Done(answer) => Ok(answer),
        Automatic::Run(run) => run.update(&i, incident.id).await,
    }
}

/// "ArtifactCreated": update the report with a new artifact (not with our own correlated ones).
async fn artifact_created(
    State(i): State<Arc<Integration>>,
    ctx: Context,
    incident: Incident,
    artifact: Artifact,
) -> Result<String, FunctionError> {
    let run = match RuleRun::start_automatic(&i, &ctx, &incident).await? {
        Automatic::Done(answer) => return Ok(answer),
        Automatic::Run(run) => run,
    };
    if artifact.description == report::CORRELATED_DESCRIPTION {
        return Ok("Correlated indicator: nothing to do".to_string());
    }
    run.update(&i, incident.id).await
}

/// "Incident Deleted": delete the incident's report.
async fn incident_deleted(
    State(i): State<Arc<Integration>>,
    ctx: Context,
    incident: Incident,
) -> Result<String, FunctionError> {
    let run = match RuleRun::start_automatic(&i, &ctx, &incident).await? {
        Automatic::Done(answer) => return Ok(answer),
        Automatic::Run(run) => run,
    };
    Ok(if i.delete(&run.routed, incident.id).await? {
        DONE.to_string()
    } else {
        format!("Incident {} had no TruSTAR report", incident.id)
    })
}

/// "Send To TruSTAR" (manual): submit or update whatever the account's setting.
async fn send_to_trustar(
    State(i): State<Arc<Integration>>,
    ctx: Context,
    incident: Incident,
) -> Result<String, FunctionError> {
    let run = RuleRun::start(&i, &ctx, &incident).await?;
    run.submit(&i, &incident).await
}

/// "Whitelist in TruSTAR" (manual, on an artifact).
async fn whitelist_rule(
    State(i): State<Arc<Integration>>,
    ctx: Context,
    incident: Incident,
    artifact: Artifact,
) -> Result<String, FunctionError> {
    let run = RuleRun::start(&i, &ctx, &incident).await?;
    run.routed
        .client
        .whitelist_add(&[artifact.value])
        .await
        .map_err(FlowError::from)?;
    Ok(DONE.to_string())
}

/// "Undo Whitelist in TruSTAR" (manual, on an artifact).
async fn undo_whitelist_rule(
    State(i): State<Arc<Integration>>,
    ctx: Context,
    incident: Incident,
    artifact: Artifact,
) -> Result<String, FunctionError> {
    let run = RuleRun::start(&i, &ctx, &incident).await?;
    let type_name = match &artifact.artifact_type {
        ArtifactType::Name(name) => Some(name.clone()),
        ArtifactType::Id(id) => {
            let types = run.rest.get("/artifact_types").await?;
            types["entities"]
                .as_array()
                .or(types.as_array())
                .and_then(|l| l.iter().find(|t| t["id"] == *id))
                .and_then(|t| t["name"].as_str().map(str::to_string))
        }
    };
    let ty = type_name.as_deref().and_then(flows::indicator_type_for);
    run.routed
        .client
        .whitelist_delete(&artifact.value, ty.as_deref())
        .await
        .map_err(FlowError::from)?;
    Ok(DONE.to_string())
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use soar_sdk::config::ConfigSource;
    use soar_sdk::platform::Method;
    use soar_sdk::testkit::TestKit;

    #[test]
    fn customizations_validate_against_the_handlers() {
        soar_sdk::testkit::validate_registered(super::NAME).unwrap();
    }

    fn kit() -> TestKit {
        let account = [
            ("url", "http://127.0.0.1:9"),
            ("user_api_key", "k"),
            ("user_api_secret", "s"),
            ("enclave_ids_for_submission", "e1"),
            ("workspace", "SOC Team"),
        ];
        let source = ConfigSource::new("app.config").with_section("trustar_soc", account);
        TestKit::with_config(super::NAME, source).unwrap()
    }

    /// The kit, with incident 9 in workspace "Legal", which no account lists.
    fn kit_with_unrouted_incident() -> (TestKit, serde_json::Value) {
        let kit = kit();
        kit.platform().answer(
            Method::Get,
            "/workspaces/5",
            json!({"id": 5, "display_name": "Legal"}),
        );
        (
            kit,
            json!({"incident": {"id": 9, "name": "x", "workspace": 5}}),
        )
    }

    #[tokio::test]
    async fn an_incident_of_an_unrouted_workspace_is_refused_by_name() {
        let (kit, body) = kit_with_unrouted_incident();
        let call = kit.rule(super::rules::SEND_TO_TRUSTAR, body).await;
        let e = call.result.unwrap_err().to_string();
        assert!(e.contains("workspace 'Legal'"), "{e}");
        let calls = kit.platform().calls();
        assert_eq!(calls.len(), 1, "{calls:?}");
        assert_eq!(calls[0].path, "/workspaces/5");
    }

    /// An automatic rule on an incident of a workspace that no account lists completes with
    /// the setting to change; it is not an error on every new incident.
    #[tokio::test]
    async fn automatic_rules_of_an_unrouted_workspace_complete_saying_what_to_set() {
        let (kit, body) = kit_with_unrouted_incident();
        for rule in [
            super::rules::CASE_CREATED,
            super::rules::UPDATE_INCIDENT,
            super::rules::INCIDENT_DELETED,
        ] {
            let call = kit.rule(rule, body.clone()).await;
            let answer = call.result.unwrap_or_else(|e| panic!("{rule}: {e}"));
            assert_eq!(
                answer.as_deref(),
                Some(
                    "No TruSTAR account for workspace 'Legal': nothing submitted (to submit its \
                     incidents, add it to `workspace` in a [trustar_<name>] section)"
                ),
                "{rule}"
            );
        }
    }

    #[tokio::test]
    async fn a_rule_message_without_its_artifact_names_it() {
        let body = json!({"incident": {"id": 9, "name": "x", "workspace": "SOC Team"}});
        let call = kit().rule(super::rules::WHITELIST, body).await;
        let e = call.result.unwrap_err().to_string();
        assert_eq!(e, "the message carries no artifact");
    }
}
