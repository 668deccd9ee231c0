//! `fn_trustar`: the TruSTAR integration. Incidents become TruSTAR reports, correlated
//! indicators come back as artifacts, analysts get priority scores and manage TruSTAR's
//! whitelist, and a custom threat service tells the platform which artifacts are HIGH or MEDIUM
//! priority in TruSTAR (spec parts C and D).
//!
//! Modules:
//! - [`client`]: the TruSTAR REST API v1.3 client (OAuth, 429 waits, paging).
//! - [`config`]: `[trustar]`, `[trustar_<account>]`, `[trustar_threat_source]`, `[webserver]`,
//!   `[custom_threat_service]`, validated at start.
//! - [`report`]: the report title, external id, body and the notes, as pure functions.
//! - [`flows`]: routing by workspace, submit/update, enrichment, delete.
//! - [`threat`]: the threat service HTTP server (`/cts/trustar`), run as a component service.
//!
//! The six functions and the rule handlers are wired in [`build`].

pub mod client;
pub mod config;
pub mod error;
pub mod flows;
pub mod report;
pub mod threat;

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Value, json};
use soar_sdk::config::{AppConfig, ConfigError};
use soar_sdk::{Component, ComponentRegistration, Context, FunctionError, FunctionResult};

use crate::config::TrustarConfig;
use crate::error::FlowError;
use crate::flows::{Integration, Routed, Submission};

/// The component's name.
pub const NAME: &str = "fn_trustar";

/// The section `host config -c` writes for this crate.
pub const DEFAULT_CONFIG: &str = "\
[trustar]
# Message destination of the TruSTAR functions and rules.
queue = trustar
proxy = false
secure_proxy = false
proxy_url =
proxy_username =
proxy_password =

[trustar_threat_source]
# The TruSTAR account the threat service searches.
url = https://api.trustar.co/
user_api_key = ^api_key_for_trustar_threat_source
user_api_secret = ^api_secret_for_trustar_threat_source
enclave_ids_for_search =

# One [trustar_<name>] section per TruSTAR account; incidents are routed by workspace.
[trustar_default]
url = https://api.trustar.co/
user_api_key = ^api_key_for_trustar_default
user_api_secret = ^api_secret_for_trustar_default
enclave_ids_for_submission =
enclave_ids_for_query =
# enable|disable
auto_submission = disable
incident_content_to_submit = summary,notes,breach,artifacts
# Incident type labels (exact, case sensitive)
incident_types_to_exclude =
# Workspace display names
workspace = Default workspace
tag =

[webserver]
server = localhost
port = 9000
secure = 0

[custom_threat_service]
urlbase = /cts
cache_ttl = 600
";

soar_sdk::register_component!(ComponentRegistration {
    name: NAME,
    version: env!("CARGO_PKG_VERSION"),
    description: "TruSTAR reports, correlated indicators, priority scores, whitelists and threat service",
    section: Some("trustar"),
    default_config: DEFAULT_CONFIG,
    build,
    customizations: soar_sdk::embed_customizations!("customize/fn_trustar.yaml"),
});

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
pub fn build(config: &AppConfig) -> Result<Component, ConfigError> {
    let cfg = Arc::new(TrustarConfig::from_app_config(config)?);
    let section = |name: &str| {
        config
            .section(name)
            .map(|s| s.invalid("url", "cannot build its TruSTAR client"))
    };
    let integration = match Integration::new(cfg.clone()) {
        Ok(i) => Arc::new(i),
        Err(e) => {
            let account = match &e {
                error::TrustarError::Setup { account, .. } => account.clone(),
                _ => String::new(),
            };
            tracing::error!("{e}");
            return Err(section(&account).unwrap_or(ConfigError::MissingSection {
                file: config.path().to_path_buf(),
                section: account,
            }));
        }
    };
    let q = cfg.queue.clone();
    let i = integration.clone();
    let mut component = Component::new()
        .demo_rule(rules::SEND_TO_TRUSTAR)
        .typed_function("submit_report_to_trustar", {
            let i = i.clone();
            move |ctx, inputs| submit_function(i.clone(), ctx, inputs)
        })
        .typed_function("get_priority_score_of_indicator", {
            let i = i.clone();
            move |ctx, inputs| priority_function(i.clone(), ctx, inputs)
        })
        .typed_function("get_correlated_indicators_from_trustar", {
            let i = i.clone();
            move |ctx, inputs| correlated_function(i.clone(), ctx, inputs)
        })
        .typed_function("delete_report_in_trustar", {
            let i = i.clone();
            move |ctx, inputs| delete_function(i.clone(), ctx, inputs)
        })
        .typed_function("whitelist_in_trustar", {
            let i = i.clone();
            move |ctx, inputs| whitelist_function(i.clone(), ctx, inputs)
        })
        .typed_function("undo_whitelist_in_trustar", {
            let i = i.clone();
            move |ctx, inputs| undo_whitelist_function(i.clone(), ctx, inputs)
        });
    for (rule, kind) in [
        (rules::CASE_CREATED, RuleKind::Created),
        (rules::UPDATE_INCIDENT, RuleKind::Updated),
        (rules::ARTIFACT_CREATED, RuleKind::ArtifactCreated),
        (rules::INCIDENT_DELETED, RuleKind::Deleted),
        (rules::SEND_TO_TRUSTAR, RuleKind::Send),
        (rules::WHITELIST, RuleKind::Whitelist),
        (rules::UNDO_WHITELIST, RuleKind::UndoWhitelist),
    ] {
        let i = i.clone();
        component = component.rule(q.clone(), rule, move |ctx| {
            let i = i.clone();
            async move { rule_handler(i, ctx, kind).await }
        });
    }
    if let Some(source) = &cfg.threat_source {
        match threat::ThreatService::new(source, &cfg.webserver) {
            Ok(svc) => {
                component = component.service(
                    "TruSTAR threat service",
                    move |mut shutdown: soar_sdk::Shutdown| {
                        let svc = svc.clone();
                        async move {
                            let running = threat::start(svc).await?;
                            shutdown.wait().await;
                            running.stop().await;
                            Ok(())
                        }
                    },
                );
            }
            Err(e) => {
                tracing::error!("{e}");
                return Err(config
                    .section(config::THREAT_SOURCE)
                    .map(|s| s.invalid("url", e.to_string()))
                    .unwrap_or(ConfigError::MissingSection {
                        file: config.path().to_path_buf(),
                        section: config::THREAT_SOURCE.to_string(),
                    }));
            }
        }
    }
    Ok(component
        .example(
            "get_priority_score_of_indicator",
            json!({"trustar_artifact_value": "evil.example.com"}),
        )
        .selftest(TrustarSelftest(integration)))
}

/// The selftest: every account answers `ping` with its credentials.
struct TrustarSelftest(Arc<Integration>);

#[async_trait::async_trait]
impl soar_sdk::Selftest for TrustarSelftest {
    async fn selftest(
        &self,
        _rest: Option<&soar_sdk::rest::RestClient>,
    ) -> soar_sdk::SelftestReport {
        if self.0.config.accounts.is_empty() {
            return soar_sdk::SelftestReport::failure(
                "no [trustar_<name>] account section is configured",
            );
        }
        for a in &self.0.config.accounts {
            if let Some(c) = self.0.client(&a.section)
                && let Err(e) = c.ping().await
            {
                return soar_sdk::SelftestReport::failure(e.to_string());
            }
        }
        soar_sdk::SelftestReport::success()
    }
}

/// The original's `{"error": …}` results, as a failed (but normal) reply.
/// A failed call: `{"error": …}` as the original plugin answered, with the same text as `note`
/// (what the example workflows write, like the original's `incident.addNote(results['error'])`).
fn error_result(e: impl std::fmt::Display) -> FunctionResult {
    let msg = e.to_string();
    tracing::error!("{msg}");
    FunctionResult::failure(msg.clone(), json!({"error": msg, "note": msg}))
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
    i: Arc<Integration>,
    ctx: Context,
    inputs: IncidentInputs,
) -> Result<FunctionResult, FunctionError> {
    let id = incident_id_of(inputs.trustar_incident_id)?;
    let lock = i.incident_lock(id);
    let _guard = lock.lock().await;
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
            FunctionResult::new(content)
        }
        Err(e) => error_result(e),
    })
}

async fn priority_function(
    i: Arc<Integration>,
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
        Ok(level) => FunctionResult::new(json!({
            "priorityLevel": level,
            "note": format!("Priority of indicator {} is {level}.", value.trim()),
        })),
        Err(e) => error_result(e),
    })
}

async fn correlated_function(
    i: Arc<Integration>,
    ctx: Context,
    inputs: IncidentInputs,
) -> Result<FunctionResult, FunctionError> {
    let id = incident_id_of(inputs.trustar_incident_id)?;
    let run = async {
        let (_, routed) = routed_incident(&i, &ctx, id).await?;
        i.correlated(&routed, id).await
    };
    Ok(match run.await {
        Ok(None) => FunctionResult::new(json!({
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
            FunctionResult::new(json!({"indicators": indicators, "note": note}))
        }
        Err(e) => error_result(e),
    })
}

async fn delete_function(
    i: Arc<Integration>,
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
        Ok(()) => {
            FunctionResult::new(json!({"status": "Done", "note": "Report deleted successfully"}))
        }
        Err(e) => error_result(e),
    })
}

async fn whitelist_function(
    i: Arc<Integration>,
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
            FunctionResult::new(json!({"indicators": indicators, "note": note}))
        }
        Err(e) => error_result(e),
    })
}

async fn undo_whitelist_function(
    i: Arc<Integration>,
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
        Ok(()) => FunctionResult::new(json!({
            "status": "Done",
            "note": format!("Indicator {value} removed from whitelist successfully"),
        })),
        Err(e) => error_result(e),
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RuleKind {
    Created,
    Updated,
    ArtifactCreated,
    Deleted,
    Send,
    Whitelist,
    UndoWhitelist,
}

async fn rule_handler(
    i: Arc<Integration>,
    ctx: Context,
    kind: RuleKind,
) -> Result<Option<String>, FunctionError> {
    let message = ctx.message();
    let incident = message
        .incident()
        .cloned()
        .ok_or_else(|| FunctionError::msg("the rule message carries no incident"))?;
    let id = incident["id"]
        .as_i64()
        .ok_or_else(|| FunctionError::msg("the rule message's incident has no id"))?;
    let rest = ctx.rest()?;
    let routed = i.route(rest, &incident).await?;
    let auto = routed.account.auto_submission;
    let lock = i.incident_lock(id);
    let _guard = lock.lock().await;
    let status = match kind {
        RuleKind::Created => {
            if !auto {
                return Ok(Some(format!(
                    "Automatic submission is disabled in [{}]",
                    routed.account.section
                )));
            }
            match i.submit_or_update(rest, &routed, &incident).await {
                Ok(_) => {
                    i.enrich(rest, &routed, id).await?;
                    DONE.to_string()
                }
                Err(FlowError::Excluded { .. }) => {
                    "This type of incident can't be submitted to TruSTAR".to_string()
                }
                Err(e) => return Err(e.into()),
            }
        }
        RuleKind::Updated | RuleKind::ArtifactCreated => {
            if !auto {
                return Ok(Some(format!(
                    "Automatic submission is disabled in [{}]",
                    routed.account.section
                )));
            }
            if kind == RuleKind::ArtifactCreated
                && message
                    .object("artifact")
                    .is_some_and(|a| a["description"] == report::CORRELATED_DESCRIPTION)
            {
                return Ok(Some("Correlated indicator: nothing to do".to_string()));
            }
            match i.update(rest, &routed, id).await {
                Ok(_) => {
                    i.enrich(rest, &routed, id).await?;
                    DONE.to_string()
                }
                Err(FlowError::Trustar(e)) if e.is_not_found() => format!(
                    "Incident {id} has no TruSTAR report yet in [{}]",
                    routed.account.section
                ),
                Err(e) => return Err(e.into()),
            }
        }
        RuleKind::Send => match i.submit_or_update(rest, &routed, &incident).await {
            Ok(_) => {
                i.enrich(rest, &routed, id).await?;
                DONE.to_string()
            }
            Err(FlowError::Excluded { .. }) => {
                "This type of incident can't be submitted to TruSTAR".to_string()
            }
            Err(e) => return Err(e.into()),
        },
        RuleKind::Deleted => {
            if !auto {
                return Ok(Some(format!(
                    "Automatic submission is disabled in [{}]",
                    routed.account.section
                )));
            }
            if i.delete(&routed, id).await? {
                DONE.to_string()
            } else {
                format!("Incident {id} had no TruSTAR report")
            }
        }
        RuleKind::Whitelist | RuleKind::UndoWhitelist => {
            let artifact = message
                .object("artifact")
                .ok_or_else(|| FunctionError::msg("the rule message carries no artifact"))?;
            let value = artifact["value"].as_str().unwrap_or_default().to_string();
            if kind == RuleKind::Whitelist {
                routed
                    .client
                    .whitelist_add(&[value])
                    .await
                    .map_err(FlowError::from)?;
            } else {
                let type_name = match &artifact["type"] {
                    Value::String(s) => Some(s.clone()),
                    id => {
                        let types = rest.get("/artifact_types").await?;
                        types["entities"]
                            .as_array()
                            .or(types.as_array())
                            .and_then(|l| l.iter().find(|t| t["id"] == *id))
                            .and_then(|t| t["name"].as_str().map(str::to_string))
                    }
                };
                let ty = type_name.as_deref().and_then(flows::indicator_type_for);
                routed
                    .client
                    .whitelist_delete(&value, ty.as_deref())
                    .await
                    .map_err(FlowError::from)?;
            }
            DONE.to_string()
        }
    };
    Ok(Some(status))
}

#[cfg(test)]
mod tests {
    #[test]
    fn customizations_validate_against_the_handlers() {
        soar_sdk::testkit::validate_registered(super::NAME).unwrap();
    }
}
