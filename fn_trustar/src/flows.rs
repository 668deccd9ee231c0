//! The integration's flows (spec D.5) over the platform REST client and the TruSTAR client:
//! routing an incident to its account (D.2), submitting or updating its report, enrichment with
//! correlated indicators, deletion, whitelisting.
//!
//! Routing returns the account as a value (the original kept it in shared mutable state), and
//! per-incident locks keep two rule messages of one incident from adding the same artifacts twice.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use serde_json::{Value, json};
use soar_sdk::Rest as RestClient;

use crate::client::{IdType, Indicator, Report, TrustarClient};
use crate::config::{Account, TrustarConfig};
use crate::error::FlowError;
use crate::report::{self, CORRELATED_DESCRIPTION, IncidentData};

/// At most this many correlated indicators are added to an incident.
pub const MAX_CORRELATED: usize = 100;

/// The platform artifact type for TruSTAR URLs that the platform rejects as URLs.
pub const URL_STRING: &str = "URL String";

/// TruSTAR indicator type → platform artifact type name (D.5).
pub fn artifact_type_for(indicator_type: &str) -> String {
    match indicator_type {
        "EMAIL_ADDRESS" => "Email Sender",
        "IP" => "IP Address",
        "MD5" => "Malware MD5 Hash",
        "SHA1" => "Malware SHA-1 Hash",
        "SHA256" => "Malware SHA-256 Hash",
        "URL" => "URL",
        "MALWARE" => "Malware Family/Variant",
        "SOFTWARE" => "File Name",
        "CVE" => "Threat CVE ID",
        "CIDR_BLOCK" => "Network CIDR Range",
        other => return format!("TruSTAR {other}"),
    }
    .to_string()
}

/// Platform artifact type name → TruSTAR indicator type, `None` when there is none (then the
/// whitelist deletion sends no `indicatorType`, where the original sent an empty one).
pub fn indicator_type_for(artifact_type: &str) -> Option<String> {
    let t = match artifact_type {
        "Email Sender" => "EMAIL_ADDRESS",
        "IP Address" => "IP",
        "Malware MD5 Hash" => "MD5",
        "Malware SHA-1 Hash" => "SHA1",
        "Malware SHA-256 Hash" => "SHA256",
        "URL" | "URL String" | "url_string" => "URL",
        "Malware Family/Variant" => "MALWARE",
        "File Name" => "SOFTWARE",
        "Threat CVE ID" => "CVE",
        "Network CIDR Range" => "CIDR_BLOCK",
        other => return other.strip_prefix("TruSTAR ").map(str::to_string),
    };
    Some(t.to_string())
}

/// As the original's `validators.url`: `http`, `https` or `ftp` followed by `://`, a host that is
/// a name with a dot, `localhost` or an IP address, a port that exists (at most 65535), no blank.
/// Parsed with the `url` crate (WHATWG URL rules).
pub fn is_valid_url(value: &str) -> bool {
    let lower = value.to_ascii_lowercase();
    let has_scheme = ["http://", "https://", "ftp://"]
        .iter()
        .any(|s| lower.starts_with(s));
    if !has_scheme || value.contains(char::is_whitespace) {
        return false;
    }
    let Ok(url) = url::Url::parse(value) else {
        return false;
    };
    match url.host() {
        Some(url::Host::Domain(name)) => name == "localhost" || name.contains('.'),
        Some(url::Host::Ipv4(_) | url::Host::Ipv6(_)) => true,
        None => false,
    }
}

/// What happened to an incident's report.
#[derive(Debug, Clone)]
pub enum Submission {
    Created(Report),
    Updated(Report),
}

/// The integration's state: configuration, one client per account, per-incident locks.
#[derive(Debug)]
pub struct Integration {
    pub config: Arc<TrustarConfig>,
    clients: HashMap<String, TrustarClient>,
    /// Incidents whose flows are running; an entry goes once no flow holds its lock.
    locks: Mutex<HashMap<i64, Weak<tokio::sync::Mutex<()>>>>,
}

/// An incident routed to its account.
#[derive(Debug, Clone)]
pub struct Routed {
    pub account: Arc<Account>,
    pub client: TrustarClient,
    pub workspace: String,
}

fn entities(v: Value) -> Vec<Value> {
    match v {
        Value::Array(a) => a,
        Value::Object(mut o) => match o.remove("entities") {
            Some(Value::Array(a)) => a,
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
}

impl Integration {
    pub fn new(config: Arc<TrustarConfig>) -> Integration {
        let clients = config
            .accounts
            .iter()
            .map(|a| (a.section.clone(), TrustarClient::new(a.connection.clone())))
            .collect();
        Integration {
            config,
            clients,
            locks: Mutex::new(HashMap::new()),
        }
    }

    /// The lock serialising the flows of one incident. The map keeps only locks that a flow
    /// holds or waits for, so it does not grow with the number of incidents ever seen.
    pub fn incident_lock(&self, incident_id: i64) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        locks.retain(|_, lock| lock.strong_count() > 0);
        if let Some(lock) = locks.get(&incident_id).and_then(Weak::upgrade) {
            return lock;
        }
        let lock = Arc::new(tokio::sync::Mutex::new(()));
        locks.insert(incident_id, Arc::downgrade(&lock));
        lock
    }

    /// How many incident locks the map holds (for tests).
    pub fn lock_entries(&self) -> usize {
        self.locks.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// The client of an account section.
    pub fn client(&self, section: &str) -> Option<&TrustarClient> {
        self.clients.get(section)
    }

    /// The account serving a workspace display name.
    pub fn route_name(&self, workspace: &str) -> Result<Routed, FlowError> {
        let account = self
            .config
            .account_for_workspace(workspace)
            .ok_or_else(|| FlowError::NoAccount {
                workspace: workspace.trim().to_string(),
            })?;
        let client = self
            .clients
            .get(&account.section)
            .cloned()
            .ok_or_else(|| FlowError::Other(format!("no client for [{}]", account.section)))?;
        Ok(Routed {
            account: account.clone(),
            client,
            workspace: workspace.trim().to_string(),
        })
    }

    /// Routes an incident by its workspace (`GET /workspaces/{id}` → `display_name`).
    pub async fn route(&self, rest: &RestClient, incident: &Value) -> Result<Routed, FlowError> {
        let name = workspace_name(rest, &incident["workspace"]).await?;
        self.route_name(&name)
    }

    /// Whether the incident's types include one the account excludes (exact label).
    pub async fn excluded_type(
        &self,
        rest: &RestClient,
        account: &Account,
        incident: &Value,
    ) -> Result<Option<String>, FlowError> {
        if account.types_to_exclude.is_empty() {
            return Ok(None);
        }
        let ids = incident["incident_type_ids"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if ids.is_empty() {
            return Ok(None);
        }
        let field = rest.get("/types/incident/fields/incident_type_ids").await?;
        let values = field["values"].as_array().cloned().unwrap_or_default();
        for id in ids {
            let label = match &id {
                Value::String(s) => Some(s.clone()),
                v => values
                    .iter()
                    .find(|x| x["value"] == *v)
                    .and_then(|x| x["label"].as_str().map(str::to_string)),
            };
            if let Some(label) = label
                && account.excludes(&label)
            {
                return Ok(Some(label));
            }
        }
        Ok(None)
    }

    /// Fetches what the report body needs.
    pub async fn incident_data(
        &self,
        rest: &RestClient,
        incident_id: i64,
    ) -> Result<IncidentData, FlowError> {
        let incident = incident(rest, incident_id).await?;
        let notes = entities(
            rest.get(&format!("/incidents/{incident_id}/comments"))
                .await?,
        );
        let artifacts = entities(
            rest.get(&format!("/incidents/{incident_id}/artifacts"))
                .await?,
        );
        let phase = match &incident["phase_id"] {
            Value::Null => None,
            Value::String(s) => Some(s.clone()),
            id => match rest.get(&format!("/phases/{id}")).await {
                Ok(p) => p["name"].as_str().map(str::to_string),
                Err(e) => {
                    tracing::warn!("cannot read phase {id}: {e}");
                    Some(report::py_str(id))
                }
            },
        };
        let label = |field: &Value, key: &str| -> Option<String> {
            let v = &incident[key];
            if let Value::String(s) = v {
                return Some(s.clone());
            }
            field["values"]
                .as_array()?
                .iter()
                .find(|x| x["value"] == *v)
                .and_then(|x| x["label"].as_str().map(str::to_string))
        };
        let severity = match rest.get("/types/incident/fields/severity_code").await {
            Ok(f) => label(&f, "severity_code"),
            Err(e) => {
                tracing::warn!("cannot read severity labels: {e}");
                None
            }
        };
        let resolution = if incident["plan_status"] == "C" {
            match rest.get("/types/incident/fields/resolution_id").await {
                Ok(f) => label(&f, "resolution_id"),
                Err(e) => {
                    tracing::warn!("cannot read resolution labels: {e}");
                    None
                }
            }
        } else {
            None
        };
        let artifact_types = artifact_types(rest)
            .await?
            .into_iter()
            .filter_map(|t| Some((t["id"].as_i64()?, t["name"].as_str()?.to_string())))
            .collect();
        Ok(IncidentData {
            incident,
            notes,
            artifacts,
            phase,
            severity,
            resolution,
            artifact_types,
        })
    }

    /// The incident's report as it should be now.
    async fn report_for(&self, account: &Account, data: IncidentData) -> Result<Report, FlowError> {
        let id = data.incident["id"].as_i64().unwrap_or_default();
        let title = report::title(&data.incident);
        // Megabytes of description or notes: built where it cannot hold up the async threads.
        let parts = account.content.clone();
        let body = soar_sdk::text::offload(move || report::body(&data, &parts))
            .await
            .map_err(|e| FlowError::Other(e.to_string()))?;
        Ok(Report {
            report_body: Some(body),
            title: Some(title),
            distribution_type: Some("ENCLAVE".to_string()),
            enclave_ids: account.enclaves_for_submission.clone(),
            external_tracking_id: Some(report::external_id(id)),
            time_began: Some(Value::String(
                chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, false),
            )),
            ..Report::default()
        })
    }

    /// Updates the existing report (GET by external id, then PUT the full report).
    pub async fn update(
        &self,
        rest: &RestClient,
        routed: &Routed,
        incident_id: i64,
    ) -> Result<Report, FlowError> {
        let mut existing = routed
            .client
            .get_report(&report::external_id(incident_id), IdType::External)
            .await?;
        let data = self.incident_data(rest, incident_id).await?;
        let fresh = self.report_for(&routed.account, data).await?;
        existing.report_body = fresh.report_body;
        existing.title = fresh.title;
        existing.enclave_ids = fresh.enclave_ids;
        routed.client.update_report(&existing).await?;
        Ok(existing)
    }

    /// Submits a new report: POST, tags, the deeplink note.
    pub async fn create(
        &self,
        rest: &RestClient,
        routed: &Routed,
        incident_id: i64,
    ) -> Result<Report, FlowError> {
        let data = self.incident_data(rest, incident_id).await?;
        let mut report = self.report_for(&routed.account, data).await?;
        let id = routed.client.submit_report(&report).await?;
        report.id = Some(id.clone());
        if let Some(tag) = &routed.account.tag
            && let Err(e) = routed
                .client
                .alter_report_tags(&id, &[tag.as_str()], &[])
                .await
        {
            tracing::error!("the report was submitted, but tagging it failed: {e}");
        }
        let link = routed.client.report_deeplink(&id);
        add_note(rest, incident_id, &report::submitted_note_html(&link)).await?;
        Ok(report)
    }

    /// Updates the report if it exists, else submits it unless the incident's type is excluded.
    pub async fn submit_or_update(
        &self,
        rest: &RestClient,
        routed: &Routed,
        incident: &Value,
    ) -> Result<Submission, FlowError> {
        let incident_id = incident["id"].as_i64().unwrap_or_default();
        match self.update(rest, routed, incident_id).await {
            Ok(r) => Ok(Submission::Updated(r)),
            Err(FlowError::Trustar(e)) if e.is_not_found() => {
                if let Some(label) = self.excluded_type(rest, &routed.account, incident).await? {
                    return Err(FlowError::Excluded {
                        account: routed.account.section.clone(),
                        label,
                    });
                }
                Ok(Submission::Created(
                    self.create(rest, routed, incident_id).await?,
                ))
            }
            Err(e) => Err(e),
        }
    }

    /// The indicators related to the incident's report (at most [`MAX_CORRELATED`]); `None` when
    /// there is nothing to correlate (no report yet, no indicators in it, none related).
    pub async fn correlated(
        &self,
        routed: &Routed,
        incident_id: i64,
    ) -> Result<Option<Vec<Indicator>>, FlowError> {
        // Right after a submission TruSTAR may not have the report or its indicators yet
        // (404): nothing to correlate this time, not a failure.
        let report = match routed
            .client
            .get_report(&report::external_id(incident_id), IdType::External)
            .await
        {
            Ok(r) => r,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let id = report.id.unwrap_or_default();
        let extracted: Vec<String> = match routed.client.report_indicators(&id).await {
            Ok(list) => list.into_iter().map(|i| i.value).collect(),
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        if extracted.is_empty() {
            return Ok(None);
        }
        let related = routed
            .client
            .related_indicators(&extracted, routed.account.query_enclaves())
            .await?;
        Ok(Some(related).filter(|r| !r.is_empty()))
    }

    /// Adds the correlated indicators as artifacts (no duplicates, at most 100) and one note
    /// listing them. Closed incidents are not enriched. Returns what was added.
    pub async fn enrich(
        &self,
        rest: &RestClient,
        routed: &Routed,
        incident_id: i64,
    ) -> Result<Vec<(String, String)>, FlowError> {
        let incident = incident(rest, incident_id).await?;
        if incident["plan_status"] == "C" {
            return Ok(Vec::new());
        }
        let Some(related) = self.correlated(routed, incident_id).await? else {
            return Ok(Vec::new());
        };
        let existing: Vec<String> = entities(
            rest.get(&format!("/incidents/{incident_id}/artifacts"))
                .await?,
        )
        .iter()
        .filter_map(|a| a["value"].as_str().map(str::to_string))
        .collect();
        let mut types = artifact_types(rest).await?;
        let mut added: Vec<(String, String)> = Vec::new();
        for indicator in related {
            if added.len() >= MAX_CORRELATED {
                break;
            }
            let value = indicator.value.clone();
            if value.is_empty()
                || existing.contains(&value)
                || added.iter().any(|(_, v)| *v == value)
            {
                continue;
            }
            let ty = indicator.indicator_type.clone().unwrap_or_default();
            let mut type_name = artifact_type_for(&ty);
            if type_name == "URL" && !is_valid_url(&value) {
                type_name = URL_STRING.to_string();
            }
            let type_id = match type_id(&types, &type_name) {
                Some(id) => id,
                None if type_name.starts_with("TruSTAR ") => {
                    create_artifact_type(rest, &ty, &type_name).await?;
                    types = artifact_types(rest).await?;
                    type_id(&types, &type_name).ok_or_else(|| {
                        FlowError::Other(format!("artifact type '{type_name}' was not created"))
                    })?
                }
                None => {
                    return Err(FlowError::Other(format!(
                        "the platform has no artifact type '{type_name}' (run `host customize`)"
                    )));
                }
            };
            let uri = format!("/incidents/{incident_id}/artifacts");
            let body = |t: i64| {
                json!({"type": t, "value": value, "description": CORRELATED_DESCRIPTION,
                       "properties": [], "whois": {"raw": null, "pending": null}, "pending_sources": []})
            };
            match rest.post(&uri, &body(type_id)).await {
                Ok(_) => {}
                Err(e) if e.to_string().contains("The specified URL is invalid") => {
                    let fallback = type_id_or_err(&types, URL_STRING)?;
                    rest.post(&uri, &body(fallback)).await?;
                }
                Err(e) => return Err(e.into()),
            }
            added.push((ty, value));
        }
        if !added.is_empty() {
            let listed: Vec<(String, String, String)> = added
                .iter()
                .map(|(t, v)| (t.clone(), v.clone(), routed.client.indicator_deeplink(t, v)))
                .collect();
            add_note(rest, incident_id, &report::correlated_note_html(&listed)).await?;
        }
        Ok(added)
    }

    /// Deletes the incident's report; `false` when there was none.
    pub async fn delete(&self, routed: &Routed, incident_id: i64) -> Result<bool, FlowError> {
        let report = match routed
            .client
            .get_report(&report::external_id(incident_id), IdType::External)
            .await
        {
            Ok(r) => r,
            Err(e) if e.is_not_found() => return Ok(false),
            Err(e) => return Err(e.into()),
        };
        match routed
            .client
            .delete_report(&report.id.unwrap_or_default(), IdType::Internal)
            .await
        {
            Ok(()) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e.into()),
        }
    }
}

/// `GET /incidents/{id}`; a 404 means the incident was deleted meanwhile (its own rule
/// deletes the report).
async fn incident(rest: &RestClient, incident_id: i64) -> Result<Value, FlowError> {
    rest.get(&format!("/incidents/{incident_id}"))
        .await
        .map_err(|e| match e.status() {
            Some(404) => FlowError::IncidentGone(incident_id),
            _ => e.into(),
        })
}

/// `GET /workspaces/{id}` → `display_name` (a name given instead of an id is used as it is).
pub async fn workspace_name(rest: &RestClient, workspace: &Value) -> Result<String, FlowError> {
    match workspace {
        Value::String(s) if s.parse::<i64>().is_err() => Ok(s.clone()),
        Value::Object(o) if o.get("display_name").is_some() => {
            Ok(report::py_str(&o["display_name"]))
        }
        Value::Null => Err(FlowError::Other(
            "the incident has no workspace, so no TruSTAR account can be chosen".to_string(),
        )),
        id => {
            let id = match id {
                Value::Object(o) => o.get("id").cloned().unwrap_or(Value::Null),
                v => v.clone(),
            };
            let id = report::py_str(&id);
            let w = rest.get(&format!("/workspaces/{id}")).await?;
            w["display_name"]
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| FlowError::Other(format!("workspace {id} has no display_name")))
        }
    }
}

async fn artifact_types(rest: &RestClient) -> Result<Vec<Value>, FlowError> {
    Ok(entities(rest.get("/artifact_types").await?))
}

fn type_id(types: &[Value], name: &str) -> Option<i64> {
    types
        .iter()
        .find(|t| t["name"] == name || t["programmatic_name"] == name)
        .and_then(|t| t["id"].as_i64())
}

fn type_id_or_err(types: &[Value], name: &str) -> Result<i64, FlowError> {
    type_id(types, name).ok_or_else(|| {
        FlowError::Other(format!(
            "the platform has no artifact type '{name}' (run `host customize`)"
        ))
    })
}

async fn create_artifact_type(
    rest: &RestClient,
    indicator_type: &str,
    name: &str,
) -> Result<(), FlowError> {
    let body = json!({
        "use_for_relationships": true,
        "enabled": true,
        "file": false,
        "multi_aware": false,
        "name": name,
        "programmatic_name": format!("trustar_{}", indicator_type.to_ascii_lowercase()),
        "desc": "TruSTAR Indicator Type.",
    });
    match rest.post("/artifact_types", &body).await {
        Ok(_) => Ok(()),
        // Created meanwhile by another flow.
        Err(e) if e.status() == Some(409) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Adds an HTML note to an incident.
pub async fn add_note(rest: &RestClient, incident_id: i64, html: &str) -> Result<(), FlowError> {
    rest.post(
        &format!("/incidents/{incident_id}/comments"),
        &json!({"text": {"format": "html", "content": html}}),
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn incident_locks_go_when_their_flows_end() {
        let i = Integration::new(Arc::new(TrustarConfig {
            queue: "trustar".into(),
            accounts: Vec::new(),
            threat_source: None,
        }));
        let a = i.incident_lock(1);
        let b = i.incident_lock(1);
        assert!(Arc::ptr_eq(&a, &b), "one lock per incident");
        for n in 2..100 {
            drop(i.incident_lock(n));
        }
        let _c = i.incident_lock(100);
        assert_eq!(i.lock_entries(), 2, "only incidents 1 and 100 are held");
        drop((a, b));
        let _d = i.incident_lock(101);
        assert_eq!(i.lock_entries(), 2);
    }

    use super::*;

    #[test]
    fn maps_types_both_ways() {
        assert_eq!(artifact_type_for("IP"), "IP Address");
        assert_eq!(artifact_type_for("REGISTRY_KEY"), "TruSTAR REGISTRY_KEY");
        assert_eq!(indicator_type_for("URL String").as_deref(), Some("URL"));
        assert_eq!(
            indicator_type_for("TruSTAR BITCOIN_ADDRESS").as_deref(),
            Some("BITCOIN_ADDRESS")
        );
        assert_eq!(indicator_type_for("DNS Name"), None);
    }

    #[test]
    fn urls_like_validators() {
        assert!(is_valid_url("http://evil.com/x"));
        assert!(is_valid_url("https://localhost:8080"));
        assert!(!is_valid_url("evil.com"));
        assert!(!is_valid_url("http://"));
        assert!(!is_valid_url("http://a b.com"));
        // Ports above 65535 do not exist: the original and the platform make it a URL String.
        assert!(!is_valid_url("http://evil.com:99999/x"));
        assert!(is_valid_url("http://evil.com:65535/x"));
        assert!(is_valid_url("http://10.0.0.1/x"));
        assert!(!is_valid_url("http:evil.com"));
    }
}
