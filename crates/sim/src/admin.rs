//! The simulator's HTTP admin interface, for a person (with curl) and for process tests.
//!
//! Served by the REST server under `/sim/admin` (outside any resource prefix), with the REST
//! API's authentication (HTTP Basic with the API key, or a password session). JSON in, JSON
//! out; a client mistake is a 4xx with the platform's error body (`{"success": false,
//! "message": …}`); `GET /sim/admin` lists every endpoint ([`ENDPOINTS`]).
//!
//! It drives the same Rust API as the tests ([`crate::Sim`]): incidents, notes, artifacts,
//! closing, manual rules (optionally waiting for their workflows and rule messages), threat
//! services, and a dump of the whole state for debugging.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use serde_json::{Map, Value, json};

use crate::rest::{Authed, IdKind, PathId, RestState, api_error, error_json};
use crate::rules::{ObjectRef, WorkflowStatus};
use crate::state::Snapshot;
use crate::threat::ThreatService;
use crate::{Sim, SimError};

type St = State<Arc<RestState>>;

/// The longest `wait_seconds` accepted by the rules endpoint.
pub const MAX_WAIT_SECONDS: u64 = 600;

/// Every admin endpoint: (method, path, what it does).
pub const ENDPOINTS: &[(&str, &str, &str)] = &[
    ("GET", "/sim/admin", "this help"),
    (
        "GET",
        "/sim/admin/incidents",
        "list incidents (id, name, status, counts of notes and artifacts)",
    ),
    (
        "POST",
        "/sim/admin/incidents",
        "create an incident: the body of POST /rest/orgs/{org}/incidents, e.g. {\"name\": \"Phish\", \"severity_code\": \"High\", \"workspace\": \"Default workspace\"}",
    ),
    (
        "GET",
        "/sim/admin/incidents/{id}",
        "an incident with its notes, artifacts (with threat hits), action status, workflow instances and threat lookups",
    ),
    (
        "DELETE",
        "/sim/admin/incidents/{id}",
        "delete an incident (with its notes and artifacts)",
    ),
    (
        "POST",
        "/sim/admin/incidents/{id}/notes",
        "add a note: {\"text\": \"…\", \"format\": \"text\"|\"html\"}",
    ),
    (
        "POST",
        "/sim/admin/incidents/{id}/artifacts",
        "add an artifact: {\"type\": \"IP Address\"|<type id>, \"value\": \"…\", \"description\": \"…\"}",
    ),
    (
        "POST",
        "/sim/admin/incidents/{id}/close",
        "close an incident: {\"resolution\": \"Resolved\", \"summary\": \"…\"}",
    ),
    (
        "POST",
        "/sim/admin/incidents/{id}/rules",
        "run a manual rule: {\"rule\": \"<name>\", \"properties\": {…}, \"wait_seconds\": 30, \"note_id\"|\"artifact_id\": n (for note and artifact rules)}",
    ),
    (
        "GET",
        "/sim/admin/threat_services",
        "list the threat services (resutil threatserviceshow)",
    ),
    (
        "POST",
        "/sim/admin/threat_services",
        "register or replace a threat service (resutil threatserviceedit): {\"name\", \"url\", \"user\", \"password\"}",
    ),
    (
        "DELETE",
        "/sim/admin/threat_services/{name}",
        "unregister a threat service (resutil threatservicedel)",
    ),
    (
        "POST",
        "/sim/admin/threat_services/{name}/test",
        "test a threat service (resutil threatservicetest)",
    ),
    (
        "GET",
        "/sim/admin/state",
        "everything the simulator holds (passwords redacted), for debugging",
    ),
];

/// An admin error: a status and a message, answered as the platform's error body.
#[derive(Debug)]
struct AdminError(Box<Response>);

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        *self.0
    }
}

impl From<Response> for AdminError {
    fn from(r: Response) -> AdminError {
        AdminError(Box::new(r))
    }
}

impl From<SimError> for AdminError {
    fn from(e: SimError) -> AdminError {
        sim_error(e).into()
    }
}

type Answer = Result<Response, AdminError>;

fn sim_error(e: SimError) -> Response {
    let status = match &e {
        SimError::UnknownIncident(_)
        | SimError::UnknownRule(_)
        | SimError::UnknownObject(_)
        | SimError::UnknownFunction(_)
        | SimError::UnknownThreatService(_) => StatusCode::NOT_FOUND,
        SimError::Rejected(_) => StatusCode::BAD_REQUEST,
        SimError::ThreatService { .. } | SimError::External(_) => StatusCode::BAD_GATEWAY,
        SimError::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
        SimError::Shutdown => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    error_json(status, e.to_string())
}

fn bad_request(message: impl Into<String>) -> AdminError {
    error_json(StatusCode::BAD_REQUEST, message).into()
}

/// The request body as a JSON object; an empty body is `{}`.
struct JsonObject(Map<String, Value>);

impl<S: Send + Sync> FromRequest<S> for JsonObject {
    type Rejection = AdminError;

    async fn from_request(req: Request, state: &S) -> Result<Self, AdminError> {
        let body = Bytes::from_request(req, state)
            .await
            .map_err(|r| AdminError::from(r.into_response()))?;
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(JsonObject(Map::new()));
        }
        match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Object(m)) => Ok(JsonObject(m)),
            Ok(other) => Err(bad_request(format!(
                "the request body must be a JSON object, not {other}"
            ))),
            Err(e) => Err(bad_request(format!(
                "the request body is not valid JSON: {e}"
            ))),
        }
    }
}

/// The simulator, for the handlers that drive it (503 while it shuts down).
struct LiveSim(Sim);

impl FromRequestParts<Arc<RestState>> for LiveSim {
    type Rejection = AdminError;

    async fn from_request_parts(
        _parts: &mut Parts,
        state: &Arc<RestState>,
    ) -> Result<Self, AdminError> {
        let sim = state.sim().ok_or_else(|| {
            let message = "the simulated platform is shutting down";
            error_json(StatusCode::SERVICE_UNAVAILABLE, message)
        })?;
        Ok(LiveSim(sim))
    }
}

/// An incident (`/sim/admin/incidents/{id}`): blanks around the id are ignored, and one that is
/// not a number is a client mistake (400), not an unknown incident.
enum Incident {}

impl IdKind for Incident {
    fn parse(text: &str) -> Option<i64> {
        text.trim().parse().ok()
    }

    fn unknown(text: &str) -> Response {
        let message = format!("'{text}' is not an incident id (a number)");
        error_json(StatusCode::BAD_REQUEST, message)
    }
}

fn optional_string(m: &Map<String, Value>, key: &str) -> Result<Option<String>, AdminError> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(bad_request(format!(
            "'{key}' must be a string, not {other}"
        ))),
    }
}

fn optional_id(m: &Map<String, Value>, key: &str) -> Result<Option<i64>, AdminError> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_i64()
            .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
            .map(Some)
            .ok_or_else(|| bad_request(format!("'{key}' must be an id (a number), not {v}"))),
    }
}

fn ok(v: Value) -> Answer {
    Ok(axum::Json(v).into_response())
}

async fn help(State(state): St, _auth: Authed) -> Answer {
    let endpoints: Vec<Value> = ENDPOINTS
        .iter()
        .map(|(m, p, d)| json!({"method": m, "path": p, "description": d}))
        .collect();
    ok(json!({
        "name": "soar-sim admin interface",
        "org_id": state.platform.org_id,
        "authentication": "HTTP Basic with the API key id and secret (or a REST session)",
        "endpoints": endpoints,
    }))
}

async fn list_incidents(State(state): St, _auth: Authed) -> Answer {
    let st = state.platform.state();
    let list: Vec<Value> = st
        .incidents
        .values()
        .map(|inc| {
            let id = inc["id"].as_i64().unwrap_or_default();
            let named = st.incident_names(inc);
            json!({
                "id": id,
                "name": inc["name"],
                "plan_status": inc["plan_status"],
                "severity_code": named["severity_code"],
                "phase_id": named["phase_id"],
                "workspace": inc["workspace"],
                "create_date": inc["create_date"],
                "notes": st.notes.get(&id).map_or(0, Vec::len),
                "artifacts": st.artifacts.get(&id).map_or(0, Vec::len),
            })
        })
        .collect();
    ok(Value::Array(list))
}

async fn create_incident(
    _auth: Authed,
    LiveSim(sim): LiveSim,
    JsonObject(body): JsonObject,
) -> Answer {
    ok(sim.create_incident(Value::Object(body))?)
}

/// An incident with everything that hangs off it: the incident (select values as labels), its
/// notes, artifacts (type names, hits), action status, workflow instances and threat lookups.
pub fn incident_details(sim: &Sim, id: i64) -> Option<Value> {
    let st = sim.platform().state();
    let inc = st.incident_json(id, true)?;
    let artifacts: Vec<Value> = st
        .artifacts
        .get(&id)
        .map(|l| l.iter().map(|a| st.artifact_json(a, true)).collect())
        .unwrap_or_default();
    let actions: Vec<Value> = st
        .action_status
        .iter()
        .filter(|a| a.incident_id == id)
        .filter_map(|a| serde_json::to_value(a).ok())
        .collect();
    let instances: Vec<Value> = st
        .workflow_instances
        .values()
        .filter(|w| w["incident_id"] == id)
        .cloned()
        .collect();
    let lookups: Vec<Value> = st
        .threat_lookups
        .iter()
        .filter(|l| l.incident_id == id)
        .filter_map(|l| serde_json::to_value(l).ok())
        .collect();
    Some(json!({
        "incident": inc,
        "notes": st.notes.get(&id).cloned().unwrap_or_default(),
        "artifacts": artifacts,
        "action_status": actions,
        "workflow_instances": instances,
        "threat_lookups": lookups,
    }))
}

async fn show_incident(
    _auth: Authed,
    LiveSim(sim): LiveSim,
    PathId { id, .. }: PathId<Incident>,
) -> Answer {
    match incident_details(&sim, id) {
        Some(v) => ok(v),
        None => Err(SimError::UnknownIncident(id).into()),
    }
}

async fn delete_incident(
    _auth: Authed,
    LiveSim(sim): LiveSim,
    PathId { id, .. }: PathId<Incident>,
) -> Answer {
    ok(json!({"deleted": sim.delete_incident(id)?}))
}

async fn add_note(
    State(state): St,
    _auth: Authed,
    PathId { id, .. }: PathId<Incident>,
    JsonObject(body): JsonObject,
) -> Answer {
    let text =
        optional_string(&body, "text")?.ok_or_else(|| bad_request("a note needs a \"text\""))?;
    let format = optional_string(&body, "format")?.unwrap_or_else(|| "text".into());
    let note = json!({"text": {"format": format, "content": text}});
    let result = state.platform.state().add_note(id, &note);
    match result {
        Ok(n) => ok(n),
        Err(e) => Err(api_error(e).into()),
    }
}

async fn add_artifact(
    State(state): St,
    _auth: Authed,
    PathId { id, .. }: PathId<Incident>,
    JsonObject(body): JsonObject,
) -> Answer {
    let mut st = state.platform.state();
    match st.add_artifact(id, &Value::Object(body)) {
        Ok(a) => ok(st.artifact_json(&a, true)),
        Err(e) => Err(api_error(e).into()),
    }
}

async fn close_incident(
    _auth: Authed,
    LiveSim(sim): LiveSim,
    PathId { id, .. }: PathId<Incident>,
    JsonObject(body): JsonObject,
) -> Answer {
    let resolution = match body.get("resolution") {
        None | Some(Value::Null) => json!("Resolved"),
        Some(v @ (Value::String(_) | Value::Number(_))) => v.clone(),
        Some(other) => {
            return Err(bad_request(format!(
                "'resolution' must be a label (e.g. \"Resolved\") or an id, not {other}"
            )));
        }
    };
    let summary = optional_string(&body, "summary")?
        .unwrap_or_else(|| "Closed in the simulated platform".into());
    let inc = sim.update_incident(
        id,
        json!({"plan_status": "C", "resolution_id": resolution, "resolution_summary": summary}),
    )?;
    let named = sim.platform().state().incident_names(&inc);
    ok(named)
}

/// The object of a rules request: the incident, or one of its notes or artifacts.
fn rule_object(body: &Map<String, Value>, id: i64) -> Result<ObjectRef, AdminError> {
    match (
        optional_id(body, "note_id")?,
        optional_id(body, "artifact_id")?,
    ) {
        (None, None) => Ok(ObjectRef::Incident(id)),
        (Some(note_id), None) => Ok(ObjectRef::Note {
            incident_id: id,
            note_id,
        }),
        (None, Some(artifact_id)) => Ok(ObjectRef::Artifact {
            incident_id: id,
            artifact_id,
        }),
        (Some(_), Some(_)) => Err(bad_request(
            "give either 'note_id' or 'artifact_id', not both",
        )),
    }
}

async fn run_rule(
    _auth: Authed,
    LiveSim(sim): LiveSim,
    PathId { id, .. }: PathId<Incident>,
    JsonObject(body): JsonObject,
) -> Answer {
    let rule = optional_string(&body, "rule")?
        .filter(|r| !r.trim().is_empty())
        .ok_or_else(|| bad_request("a rule run needs \"rule\": the rule's name"))?;
    let properties = match body.get("properties") {
        None | Some(Value::Null) => json!({}),
        Some(v @ Value::Object(_)) => v.clone(),
        Some(other) => {
            return Err(bad_request(format!(
                "'properties' must be an object of activity fields, not {other}"
            )));
        }
    };
    let wait = match body.get("wait_seconds") {
        None | Some(Value::Null) => 0.0,
        Some(v) => v
            .as_f64()
            .filter(|w| (0.0..=MAX_WAIT_SECONDS as f64).contains(w))
            .ok_or_else(|| {
                bad_request(format!(
                    "'wait_seconds' must be a number from 0 to {MAX_WAIT_SECONDS}, not {v}"
                ))
            })?,
    };
    let object = rule_object(&body, id)?;
    let run = sim.run_manual_rule_on(&rule, object, properties).await?;
    let messages: Vec<Value> = run
        .messages
        .iter()
        .map(|m| json!({"queue": m.queue(), "correlation_id": m.correlation_id()}))
        .collect();
    let instances: Vec<Value> = run
        .workflow_instances()
        .into_iter()
        .map(|(w, i)| json!({"workflow": w, "instance_id": i}))
        .collect();
    let object_id = match object {
        ObjectRef::Incident(i) => i,
        ObjectRef::Note { note_id, .. } => note_id,
        ObjectRef::Artifact { artifact_id, .. } => artifact_id,
    };
    let mut out = json!({
        "rule": run.rule,
        "incident_id": id,
        "object": {"type": object.object_type(), "id": object_id},
        "messages": messages,
        "workflow_instances": instances,
        "waited": wait > 0.0,
    });
    if wait > 0.0 {
        match run.wait(Duration::from_secs_f64(wait)).await {
            Ok(runs) => {
                out["finished"] = json!(true);
                out["workflows"] = Value::Array(
                    runs.iter()
                        .map(|r| {
                            let (status, message) = match &r.status {
                                WorkflowStatus::Completed => ("completed", Value::Null),
                                WorkflowStatus::Failed(m) => ("failed", json!(m)),
                            };
                            json!({"workflow": r.workflow, "instance_id": r.instance_id,
                                   "status": status, "message": message})
                        })
                        .collect(),
                );
            }
            Err(e) => {
                out["finished"] = json!(false);
                out["error"] = json!(e.to_string());
            }
        }
    }
    let actions: Vec<Value> = sim
        .action_status(id)
        .iter()
        .filter_map(|a| serde_json::to_value(a).ok())
        .collect();
    out["action_status"] = Value::Array(actions);
    ok(out)
}

async fn list_services(State(state): St, _auth: Authed) -> Answer {
    let list: Vec<Value> = state
        .platform
        .state()
        .threat_services
        .values()
        .map(|r| {
            let mut j = r.service.to_public_json();
            j["id"] = json!(r.id);
            j
        })
        .collect();
    ok(Value::Array(list))
}

async fn add_service(State(state): St, _auth: Authed, JsonObject(body): JsonObject) -> Answer {
    let service = ThreatService {
        name: optional_string(&body, "name")?.unwrap_or_default(),
        url: optional_string(&body, "url")?.unwrap_or_default(),
        user: optional_string(&body, "user")?.filter(|u| !u.is_empty()),
        password: optional_string(&body, "password")?,
    };
    let result = state.platform.state().add_threat_service(service.clone());
    let id = result.map_err(|e| AdminError::from(api_error(e)))?;
    let mut j = service.to_public_json();
    j["name"] = json!(service.name.trim());
    j["url"] = json!(service.url.trim());
    j["id"] = json!(id);
    ok(j)
}

async fn delete_service(_auth: Authed, LiveSim(sim): LiveSim, Path(name): Path<String>) -> Answer {
    sim.remove_threat_service(&name)?;
    ok(json!({"deleted": name}))
}

async fn test_service(_auth: Authed, LiveSim(sim): LiveSim, Path(name): Path<String>) -> Answer {
    sim.test_threat_service(&name).await?;
    ok(json!({
        "name": name,
        "ok": true,
        "message": "the service answered the test lookup of 'localhost' with HTTP 200 and no hits",
    }))
}

/// The whole state as the admin interface shows it: the state file's content with passwords
/// redacted, plus runtime information.
pub fn state_json(sim: &Sim) -> Value {
    let queued = sim.saved_queues();
    let snap = {
        let st = sim.platform().state();
        Snapshot::of(&st, sim.org_id(), sim.invocation_counter(), queued)
    };
    let mut v = serde_json::to_value(&snap).unwrap_or(Value::Null);
    if let Some(list) = v["threat_services"].as_array_mut() {
        for s in list {
            if !s["service"]["password"].is_null() {
                s["service"]["password"] = json!("<redacted>");
            }
        }
    }
    v["runtime"] = json!({
        "rest_port": sim.rest_port(),
        "stomp_port": sim.stomp_port(),
        "base_url": sim.base_url(),
        "admin_url": sim.admin_url(),
        "state_file": sim.state_file().map(|p| p.display().to_string()),
        "connections": sim.connections(),
        "subscriptions": sim.subscriptions().iter().map(|s| format!("{s:?}")).collect::<Vec<_>>(),
        "violations": sim.violations(),
        "rule_runs": sim.rule_runs().len(),
        "rest_requests": sim.platform().state().rest_log.len(),
    });
    v
}

async fn dump_state(_auth: Authed, LiveSim(sim): LiveSim) -> Answer {
    ok(state_json(&sim))
}

/// The admin routes (merged at the root of the REST server).
pub(crate) fn router() -> Router<Arc<RestState>> {
    Router::new()
        .route("/sim/admin", get(help))
        .route("/sim/admin/", get(help))
        .route(
            "/sim/admin/incidents",
            get(list_incidents).post(create_incident),
        )
        .route(
            "/sim/admin/incidents/{id}",
            get(show_incident).delete(delete_incident),
        )
        .route("/sim/admin/incidents/{id}/notes", post(add_note))
        .route("/sim/admin/incidents/{id}/artifacts", post(add_artifact))
        .route("/sim/admin/incidents/{id}/close", post(close_incident))
        .route("/sim/admin/incidents/{id}/rules", post(run_rule))
        .route(
            "/sim/admin/threat_services",
            get(list_services).post(add_service),
        )
        .route("/sim/admin/threat_services/{name}", delete(delete_service))
        .route("/sim/admin/threat_services/{name}/test", post(test_service))
        .route("/sim/admin/state", get(dump_state))
}
