//! The simulated platform's HTTPS REST API (axum on hyper over tokio-rustls).
//!
//! It answers what a resilient-circuits host asks at startup (protocol spec §2.5 and §10):
//! sessions (API key Basic auth or email/password with a `JSESSIONID` cookie and `X-sess-id`),
//! the org, `/rest/const`, field types, rules (`/actions`), functions and message destinations;
//! and what `host customize` and integrations use: configuration imports and exports
//! (§6.2/§6.3), workflows and workflow instances, incidents, their notes and artifacts, artifact
//! types (built-in, imported and created with `POST /artifact_types`), workspaces, phases.
//! The admin interface ([`crate::admin`]) is served beside it, under `/sim/admin`.
//! Every request, answered or not, is appended to the platform's REST log.
//! Handlers take typed arguments: numeric path ids ([`PathId`], kinds of [`IdKind`]) and JSON
//! bodies (`JsonBody`), whose extractors answer an id that is not a number or a body that is not
//! JSON as the platform does, before the handler runs.

use std::marker::PhantomData;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, RawPathParams, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;

use crate::imports;
use crate::incidents::ApiError;
use crate::platform::{MessageDestination, Platform, RestSession};
use crate::{Sim, WeakSim};

/// The user id reported for the email/password user.
pub const USER_ID: i64 = 1;
/// The user who creates incidents in the simulator, as an incident's `creator` shows it.
pub(crate) fn creator() -> Value {
    json!({
        "id": USER_ID,
        "fname": "Sim",
        "lname": "User",
        "display_name": "Sim User",
        "email": "admin@example.com",
        "status": "A",
        "is_external": false,
    })
}

/// The API-key handle reported for the API key.
pub const API_KEY_HANDLE: i64 = 4;

/// What the REST handlers share.
#[derive(Debug)]
pub(crate) struct RestState {
    pub(crate) platform: Arc<Platform>,
    pub(crate) api_key_id: String,
    pub(crate) api_key_secret: String,
    pub(crate) email: String,
    pub(crate) password: String,
    /// The simulator, for the admin interface (set once it is built).
    pub(crate) sim: OnceLock<WeakSim>,
}

impl RestState {
    /// The simulator, unless it is gone.
    pub(crate) fn sim(&self) -> Option<Sim> {
        self.sim.get().and_then(WeakSim::upgrade)
    }
}

type St = State<Arc<RestState>>;

pub(crate) fn error_json(status: StatusCode, message: impl Into<String>) -> Response {
    (
        status,
        axum::Json(json!({
            "success": false,
            "title": null,
            "message": message.into(),
            "hints": [],
            "error_code": "generic",
        })),
    )
        .into_response()
}

fn not_found(what: impl Into<String>) -> Response {
    error_json(StatusCode::NOT_FOUND, what)
}

/// How a request authenticated.
#[derive(Debug, Clone)]
pub(crate) enum Authed {
    /// HTTP Basic with the API key pair.
    ApiKey,
    /// A password session (cookie + `X-sess-id`).
    Session(RestSession),
}

fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, pass) = text.split_once(':')?;
    Some((user.to_string(), pass.to_string()))
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

impl RestState {
    fn authenticate(&self, headers: &HeaderMap) -> Option<Authed> {
        if let Some((user, pass)) = basic_credentials(headers) {
            return (user == self.api_key_id && pass == self.api_key_secret)
                .then_some(Authed::ApiKey);
        }
        let session_id = cookie(headers, "JSESSIONID")?;
        let csrf = headers.get("X-sess-id")?.to_str().ok()?;
        let session = self.platform.state().sessions.get(&session_id).cloned()?;
        (session.csrf_token == csrf).then_some(Authed::Session(session))
    }
}

impl FromRequestParts<Arc<RestState>> for Authed {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<RestState>,
    ) -> Result<Self, Self::Rejection> {
        state.authenticate(&parts.headers).ok_or_else(|| {
            error_json(
                StatusCode::UNAUTHORIZED,
                "Unauthorized: no valid API key or session",
            )
        })
    }
}

/// The error response for a request about another org, if it is one.
fn org_error(state: &RestState, org_id: &str) -> Option<Response> {
    (org_id.parse::<i64>().ok() != Some(state.platform.org_id)).then(|| {
        error_json(
            StatusCode::FORBIDDEN,
            format!("The user is not a member of org {org_id}"),
        )
    })
}

#[derive(Debug, Deserialize)]
struct HandleFormat {
    handle_format: Option<String>,
}

impl HandleFormat {
    fn names(&self) -> bool {
        self.handle_format.as_deref() == Some("names")
    }
}

fn session_json(state: &RestState, auth: &Authed) -> Value {
    let mut body = json!({
        "user_email": state.email,
        "user_fname": "Sim",
        "user_lname": "User",
        "is_ldap": false,
        "is_saml": false,
        "saml_alias": null,
        "session_ip": "127.0.0.1",
        "orgs": [state.platform.session_org_json()],
    });
    match auth {
        Authed::ApiKey => {
            body["api_key_handle"] = json!(API_KEY_HANDLE);
        }
        Authed::Session(s) => {
            body["csrf_token"] = json!(s.csrf_token);
            body["user_id"] = json!(s.user_id);
        }
    }
    body
}

async fn get_session(State(state): St, auth: Authed) -> Response {
    axum::Json(session_json(&state, &auth)).into_response()
}

async fn post_session(State(state): St, body: Bytes) -> Response {
    #[derive(Deserialize)]
    struct Login {
        email: Option<String>,
        password: Option<String>,
    }
    let login: Option<Login> = serde_json::from_slice(&body).ok();
    let ok = login.is_some_and(|l| {
        l.email.as_deref() == Some(state.email.as_str())
            && l.password.as_deref() == Some(state.password.as_str())
    });
    if !ok {
        return error_json(StatusCode::UNAUTHORIZED, "Invalid user name or password");
    }
    let session_id = uuid::Uuid::new_v4().simple().to_string().to_uppercase();
    let session = RestSession {
        csrf_token: uuid::Uuid::new_v4().simple().to_string(),
        user_id: USER_ID,
    };
    state
        .platform
        .state_quiet()
        .sessions
        .insert(session_id.clone(), session.clone());
    let mut resp = axum::Json(session_json(&state, &Authed::Session(session))).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!(
        "JSESSIONID={session_id}; Path=/; Secure; HttpOnly"
    )) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

async fn delete_session(State(state): St, headers: HeaderMap, auth: Authed) -> Response {
    if let (Authed::Session(_), Some(id)) = (auth, cookie(&headers, "JSESSIONID")) {
        state.platform.state_quiet().sessions.remove(&id);
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn get_const(_auth: Authed) -> Response {
    axum::Json(json!({
        "server_version": {"major": 51, "minor": 0, "build_number": 0, "version": "51.0.0.0"},
        "actions_framework": {
            "destination_types": {"0": "Queue", "1": "Topic"},
            "action_types": {"0": "Automatic", "1": "Manual"},
            "action_object_types": {
                "0": "Incident", "1": "Task", "2": "Note", "3": "Milestone", "4": "Artifact",
                "5": "Attachment", "6": "Datatable", "13": "Email"
            },
            "action_invocation_statuses": {"0": "Complete", "1": "Pending", "2": "Error", "3": "Timed Out"},
            "action_invocation_message_types": {"0": "Information", "1": "Error", "2": "Warning"}
        }
    }))
    .into_response()
}

async fn get_org(State(state): St, _auth: Authed) -> Response {
    axum::Json(state.platform.org_json()).into_response()
}

async fn get_type_fields(
    State(state): St,
    _auth: Authed,
    Path((_org_id, type_name)): Path<(String, String)>,
) -> Response {
    axum::Json(state.platform.state().type_fields(&type_name)).into_response()
}

async fn get_type_field(
    State(state): St,
    _auth: Authed,
    Path((_org_id, type_name, field)): Path<(String, String, String)>,
) -> Response {
    let fields = state.platform.state().type_fields(&type_name);
    match fields
        .into_iter()
        .find(|f| f["name"] == field.as_str() || field.parse::<i64>().is_ok_and(|n| f["id"] == n))
    {
        Some(f) => axum::Json(f).into_response(),
        None => not_found(format!("Field '{field}' of type '{type_name}' not found")),
    }
}

pub(crate) fn api_error(e: ApiError) -> Response {
    error_json(
        StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST),
        e.message,
    )
}

/// What a numeric id in a request path names: the route parameter holding it, and the answer
/// for an id that names nothing (one that is not a number, or one a handler does not find).
pub(crate) trait IdKind {
    /// The route parameter.
    const PARAM: &'static str = "id";

    /// The id in the parameter's text, if there is one.
    fn parse(text: &str) -> Option<i64> {
        text.parse().ok()
    }

    /// The answer for `text`, the id as the client wrote it.
    fn unknown(text: &str) -> Response;
}

/// A numeric id of kind `K` from the request path: the handler gets the number, or the client
/// gets `K`'s answer and the handler does not run. A handler that also takes a query lists it
/// first, so that a query that does not parse is answered first (as it was before this type).
pub(crate) struct PathId<K> {
    pub(crate) id: i64,
    text: String,
    kind: PhantomData<fn() -> K>,
}

impl<K: IdKind> PathId<K> {
    /// `K`'s answer for this id, named as the client wrote it.
    fn unknown(&self) -> Response {
        K::unknown(&self.text)
    }
}

/// The text of the route parameter `name` (percent-decoded).
async fn path_param<S: Send + Sync>(
    parts: &mut Parts,
    state: &S,
    name: &str,
) -> Result<String, Response> {
    let params = RawPathParams::from_request_parts(parts, state)
        .await
        .map_err(IntoResponse::into_response)?;
    let value = params.iter().find(|(k, _)| *k == name).map(|(_, v)| v);
    value.map(str::to_string).ok_or_else(|| {
        let message = format!("the route has no parameter {name}");
        error_json(StatusCode::INTERNAL_SERVER_ERROR, message)
    })
}

impl<K: IdKind, S: Send + Sync> FromRequestParts<S> for PathId<K> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        let text = path_param(parts, state, K::PARAM).await?;
        match K::parse(&text) {
            Some(id) => Ok(PathId {
                id,
                text,
                kind: PhantomData,
            }),
            None => Err(K::unknown(&text)),
        }
    }
}

/// An incident (`…/incidents/{id}`).
enum Incident {}

impl IdKind for Incident {
    fn unknown(text: &str) -> Response {
        not_found(format!("Incident {text} not found"))
    }
}

/// An artifact of an incident (`…/artifacts/{aid}`).
enum Artifact {}

impl IdKind for Artifact {
    const PARAM: &'static str = "aid";

    fn unknown(text: &str) -> Response {
        not_found(format!("Artifact {text} not found"))
    }
}

/// A configuration import.
enum Import {}

impl IdKind for Import {
    fn unknown(text: &str) -> Response {
        not_found(format!("Configuration import {text} not found"))
    }
}

/// A workflow instance.
enum WorkflowInstance {}

impl IdKind for WorkflowInstance {
    fn unknown(text: &str) -> Response {
        not_found(format!("Workflow instance {text} not found"))
    }
}

/// A message destination.
enum Destination {}

impl IdKind for Destination {
    fn unknown(text: &str) -> Response {
        not_found(format!("Message destination '{text}' not found"))
    }
}

/// Both ids of `…/incidents/{id}/artifacts/{aid}` for a delete, which answers the same when
/// either is not a number.
struct ArtifactIds {
    incident: i64,
    artifact: i64,
}

impl<S: Send + Sync> FromRequestParts<S> for ArtifactIds {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        let incident = path_param(parts, state, "id").await?;
        let artifact = path_param(parts, state, "aid").await?;
        match (incident.parse(), artifact.parse()) {
            (Ok(incident), Ok(artifact)) => Ok(ArtifactIds { incident, artifact }),
            _ => Err(not_found("Artifact not found")),
        }
    }
}

/// A JSON request body, whatever its content type says; one that does not parse is a 400 with
/// the platform's error body.
struct JsonBody<T>(T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Response> {
        let body = Bytes::from_request(req, state)
            .await
            .map_err(IntoResponse::into_response)?;
        serde_json::from_slice(&body).map(JsonBody).map_err(|e| {
            let message = format!("The request body is not valid JSON: {e}");
            error_json(StatusCode::BAD_REQUEST, message)
        })
    }
}

async fn post_import(
    State(state): St,
    _auth: Authed,
    JsonBody(payload): JsonBody<Value>,
) -> Response {
    let dto = imports::post(&mut state.platform.state(), payload);
    axum::Json(dto).into_response()
}

async fn get_import(State(state): St, _auth: Authed, id: PathId<Import>) -> Response {
    let st = state.platform.state();
    match st.imports.iter().find(|r| r.dto["id"] == id.id) {
        Some(r) => axum::Json(r.dto.clone()).into_response(),
        None => id.unknown(),
    }
}

async fn put_import(
    State(state): St,
    _auth: Authed,
    PathId { id, .. }: PathId<Import>,
    JsonBody(body): JsonBody<Value>,
) -> Response {
    match imports::decide(&mut state.platform.state(), id, &body) {
        Ok(dto) => axum::Json(dto).into_response(),
        Err(imports::DecideError::NotFound(m)) => not_found(m),
        Err(imports::DecideError::BadRequest(m)) => error_json(StatusCode::BAD_REQUEST, m),
        Err(imports::DecideError::Conflict(m)) => error_json(StatusCode::CONFLICT, m),
    }
}

async fn post_export(State(state): St, _auth: Authed) -> Response {
    axum::Json(imports::export(&state.platform.state())).into_response()
}

async fn get_workflows(State(state): St, _auth: Authed) -> Response {
    let st = state.platform.state();
    let entities: Vec<Value> = st
        .store
        .list("workflows")
        .iter()
        .map(|o| st.workflow_json(o))
        .collect();
    axum::Json(json!({ "entities": entities })).into_response()
}

async fn get_workflow(
    State(state): St,
    _auth: Authed,
    Path((_org_id, id)): Path<(String, String)>,
) -> Response {
    let st = state.platform.state();
    match st
        .store
        .list("workflows")
        .iter()
        .find(|o| o.key == id || o.id.to_string() == id)
    {
        Some(o) => axum::Json(st.workflow_json(o)).into_response(),
        None => not_found(format!("Workflow '{id}' not found")),
    }
}

async fn get_workflow_instance(
    State(state): St,
    _auth: Authed,
    id: PathId<WorkflowInstance>,
) -> Response {
    match state.platform.state().workflow_instances.get(&id.id) {
        Some(w) => axum::Json(w.clone()).into_response(),
        None => id.unknown(),
    }
}

async fn post_incident(
    State(state): St,
    _auth: Authed,
    Query(hf): Query<HandleFormat>,
    JsonBody(body): JsonBody<Value>,
) -> Response {
    let mut st = state.platform.state();
    match st.create_incident(state.platform.org_id, &body) {
        Ok(inc) if hf.names() => axum::Json(st.incident_names(&inc)).into_response(),
        Ok(inc) => axum::Json(inc).into_response(),
        Err(e) => api_error(e),
    }
}

async fn get_incident(
    State(state): St,
    _auth: Authed,
    Query(hf): Query<HandleFormat>,
    PathId { id, .. }: PathId<Incident>,
) -> Response {
    match state.platform.state().incident_json(id, hf.names()) {
        Some(inc) => axum::Json(inc).into_response(),
        None => api_error(ApiError::not_found_incident(id)),
    }
}

async fn put_incident(
    State(state): St,
    _auth: Authed,
    Query(hf): Query<HandleFormat>,
    PathId { id, .. }: PathId<Incident>,
    JsonBody(body): JsonBody<Value>,
) -> Response {
    let mut st = state.platform.state();
    match st.update_incident(id, &body) {
        Ok((_, new)) if hf.names() => axum::Json(st.incident_names(&new)).into_response(),
        Ok((_, new)) => axum::Json(new).into_response(),
        Err(e) => api_error(e),
    }
}

async fn patch_incident(
    State(state): St,
    _auth: Authed,
    PathId { id, .. }: PathId<Incident>,
    JsonBody(body): JsonBody<Value>,
) -> Response {
    match state.platform.state().patch_incident(id, &body) {
        Ok(_) => axum::Json(json!({"success": true, "title": null, "message": null, "hints": []}))
            .into_response(),
        Err(e) => api_error(e),
    }
}

async fn delete_incident(
    State(state): St,
    _auth: Authed,
    PathId { id, .. }: PathId<Incident>,
) -> Response {
    match state.platform.state().delete_incident(id) {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => api_error(e),
    }
}

async fn get_artifact_types(State(state): St, _auth: Authed) -> Response {
    axum::Json(json!({"entities": state.platform.state().artifact_types()})).into_response()
}

async fn get_artifacts(
    State(state): St,
    _auth: Authed,
    Query(hf): Query<HandleFormat>,
    PathId { id, .. }: PathId<Incident>,
) -> Response {
    let st = state.platform.state();
    if !st.incidents.contains_key(&id) {
        return api_error(ApiError::not_found_incident(id));
    }
    let list: Vec<Value> = st
        .artifacts
        .get(&id)
        .map(|l| l.iter().map(|a| st.artifact_json(a, hf.names())).collect())
        .unwrap_or_default();
    axum::Json(list).into_response()
}

async fn post_artifact(
    State(state): St,
    _auth: Authed,
    Query(hf): Query<HandleFormat>,
    PathId { id, .. }: PathId<Incident>,
    JsonBody(body): JsonBody<Value>,
) -> Response {
    let mut st = state.platform.state();
    match st.add_artifact(id, &body) {
        // The platform answers a list of the created artifacts.
        Ok(a) => axum::Json(json!([st.artifact_json(&a, hf.names())])).into_response(),
        Err(e) => api_error(e),
    }
}

async fn get_artifact(
    State(state): St,
    _auth: Authed,
    Query(hf): Query<HandleFormat>,
    PathId { id, .. }: PathId<Incident>,
    aid: PathId<Artifact>,
) -> Response {
    let st = state.platform.state();
    match st
        .artifacts
        .get(&id)
        .and_then(|l| l.iter().find(|a| a["id"] == aid.id))
    {
        Some(a) => axum::Json(st.artifact_json(a, hf.names())).into_response(),
        None => aid.unknown(),
    }
}

async fn delete_artifact(State(state): St, _auth: Authed, ids: ArtifactIds) -> Response {
    match state
        .platform
        .state()
        .delete_artifact(ids.incident, ids.artifact)
    {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => api_error(e),
    }
}

async fn get_comments(
    State(state): St,
    _auth: Authed,
    PathId { id, .. }: PathId<Incident>,
) -> Response {
    let st = state.platform.state();
    if !st.incidents.contains_key(&id) {
        return api_error(ApiError::not_found_incident(id));
    }
    axum::Json(st.notes.get(&id).cloned().unwrap_or_default()).into_response()
}

async fn post_comment(
    State(state): St,
    _auth: Authed,
    PathId { id, .. }: PathId<Incident>,
    JsonBody(body): JsonBody<Value>,
) -> Response {
    match state.platform.state().add_note(id, &body) {
        Ok(note) => axum::Json(note).into_response(),
        Err(e) => api_error(e),
    }
}

async fn get_actions(State(state): St, _auth: Authed, Query(hf): Query<HandleFormat>) -> Response {
    let st = state.platform.state();
    let entities: Vec<Value> = st
        .rules
        .values()
        .map(|r| st.rule_json(r, hf.names()))
        .collect();
    axum::Json(json!({ "entities": entities })).into_response()
}

async fn get_connector_queues(_auth: Authed) -> Response {
    not_found("connectors are not available on this platform")
}

async fn get_functions(
    State(state): St,
    _auth: Authed,
    Query(hf): Query<HandleFormat>,
) -> Response {
    let st = state.platform.state();
    let entities: Vec<Value> = st
        .functions
        .values()
        .map(|f| st.function_json(f, hf.names()))
        .collect();
    axum::Json(json!({ "entities": entities })).into_response()
}

async fn get_function(
    State(state): St,
    _auth: Authed,
    Path((_org_id, name)): Path<(String, String)>,
    Query(hf): Query<HandleFormat>,
) -> Response {
    let st = state.platform.state();
    // The platform accepts a function's name or its numeric id.
    let f = st.functions.get(&name).or_else(|| {
        name.parse::<i64>()
            .ok()
            .and_then(|id| st.functions.values().find(|f| f.id == id))
    });
    match f {
        Some(f) => axum::Json(st.function_json(f, hf.names())).into_response(),
        None => not_found(format!("Function '{name}' not found")),
    }
}

async fn get_destinations(State(state): St, _auth: Authed) -> Response {
    let st = state.platform.state();
    let entities: Vec<&MessageDestination> = st.destinations.values().collect();
    axum::Json(json!({ "entities": entities })).into_response()
}

async fn get_destination(State(state): St, _auth: Authed, id: PathId<Destination>) -> Response {
    match state.platform.state().destinations.get(&id.id) {
        Some(d) => axum::Json(d).into_response(),
        None => id.unknown(),
    }
}

/// Its own message for a body that is not a destination, and a numeric id it does not have named
/// as a number.
async fn put_destination(
    State(state): St,
    _auth: Authed,
    PathId { id, .. }: PathId<Destination>,
    body: Bytes,
) -> Response {
    let mut dest: MessageDestination = match serde_json::from_slice(&body) {
        Ok(d) => d,
        Err(e) => {
            return error_json(
                StatusCode::BAD_REQUEST,
                format!("invalid message destination JSON: {e}"),
            );
        }
    };
    let mut st = state.platform.state();
    let Some(existing) = st.destinations.get_mut(&id) else {
        return not_found(format!("Message destination '{id}' not found"));
    };
    dest.id = id;
    if dest.programmatic_name.is_empty() {
        dest.programmatic_name = existing.programmatic_name.clone();
    }
    if dest.uuid.is_empty() {
        dest.uuid = existing.uuid.clone();
    }
    *existing = dest.clone();
    axum::Json(dest).into_response()
}

async fn get_workspaces(State(state): St, _auth: Authed) -> Response {
    axum::Json(json!({"entities": state.platform.state().workspaces_json()})).into_response()
}

async fn post_workspace(
    State(state): St,
    _auth: Authed,
    JsonBody(body): JsonBody<Value>,
) -> Response {
    let result = state.platform.state().add_workspace(&body);
    match result {
        Ok(w) => axum::Json(w.to_json()).into_response(),
        Err(e) => api_error(e),
    }
}

async fn get_workspace(
    State(state): St,
    _auth: Authed,
    Path((_org_id, id)): Path<(String, String)>,
) -> Response {
    let given = match id.parse::<i64>() {
        Ok(n) => json!(n),
        Err(_) => json!(id),
    };
    match state.platform.state().workspace(&given) {
        Some(w) => axum::Json(w.to_json()).into_response(),
        None => not_found(format!("Workspace {id} not found")),
    }
}

async fn get_phases(State(state): St, _auth: Authed) -> Response {
    axum::Json(json!({"entities": state.platform.state().phases()})).into_response()
}

async fn get_phase(
    State(state): St,
    _auth: Authed,
    Path((_org_id, id)): Path<(String, String)>,
) -> Response {
    match state.platform.state().phase(&id) {
        Some(p) => axum::Json(p).into_response(),
        None => not_found(format!("Phase {id} not found")),
    }
}

async fn post_artifact_type(
    State(state): St,
    _auth: Authed,
    JsonBody(body): JsonBody<Value>,
) -> Response {
    let result = state.platform.state().create_artifact_type(&body);
    match result {
        Ok(t) => axum::Json(t).into_response(),
        Err(e) => api_error(e),
    }
}

async fn get_artifact_type(
    State(state): St,
    _auth: Authed,
    Path((_org_id, id)): Path<(String, String)>,
) -> Response {
    match state.platform.state().artifact_type(&json!(id)) {
        Some(t) => axum::Json(t).into_response(),
        None => not_found(format!("Artifact type {id} not found")),
    }
}

async fn get_incidents(
    State(state): St,
    _auth: Authed,
    Query(hf): Query<HandleFormat>,
) -> Response {
    let st = state.platform.state();
    let list: Vec<Value> = st
        .incidents
        .keys()
        .filter_map(|id| st.incident_json(*id, hf.names()))
        .collect();
    axum::Json(list).into_response()
}

async fn method_not_allowed(req: Request) -> Response {
    let hint = if req.uri().path().starts_with("/sim/admin") {
        " (GET /sim/admin lists the admin endpoints)"
    } else {
        ""
    };
    error_json(
        StatusCode::METHOD_NOT_ALLOWED,
        format!(
            "Method {} is not allowed for {}{hint}",
            req.method(),
            req.uri().path()
        ),
    )
}

async fn fallback(req: Request) -> Response {
    let hint = if req.uri().path().starts_with("/sim/admin") {
        " (GET /sim/admin lists the admin endpoints)"
    } else {
        ""
    };
    not_found(format!(
        "No such resource: {} {}{hint}",
        req.method(),
        req.uri().path()
    ))
}

/// Every org-relative call (`/rest/orgs/{org_id}/…`): authenticated first, then only for the
/// one org this platform has (403 like the platform for any other).
async fn check_org(State(state): St, params: RawPathParams, req: Request, next: Next) -> Response {
    let Some((_, org_id)) = params.iter().find(|(k, _)| *k == "org_id") else {
        return next.run(req).await;
    };
    let org_id = org_id.to_string();
    let (mut parts, body) = req.into_parts();
    if let Err(rejection) = Authed::from_request_parts(&mut parts, &state).await {
        return rejection.into_response();
    }
    if let Some(r) = org_error(&state, &org_id) {
        return r;
    }
    next.run(Request::from_parts(parts, body)).await
}

async fn log_requests(State(state): St, req: Request, next: Next) -> Response {
    let method = req.method().to_string();
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| req.uri().path().to_string());
    let resp = next.run(req).await;
    tracing::debug!(%method, %path, status = resp.status().as_u16(), "sim REST");
    state
        .platform
        .log_request(&method, &path, resp.status().as_u16());
    resp
}

/// Normalises a resource prefix: `api/respond/` -> `/api/respond`; empty or `/` -> none.
pub(crate) fn normalise_prefix(prefix: Option<&str>) -> Option<String> {
    let p = prefix?.trim().trim_matches('/');
    (!p.is_empty()).then(|| format!("/{p}"))
}

/// The REST router, mounted under the resource prefix when there is one.
pub(crate) fn router(state: Arc<RestState>, prefix: Option<&str>) -> Router {
    let api = Router::new()
        .route(
            "/rest/session",
            get(get_session).post(post_session).delete(delete_session),
        )
        .route("/rest/const", get(get_const))
        .route("/rest/const/", get(get_const))
        .route("/rest/orgs/{org_id}", get(get_org))
        .route(
            "/rest/orgs/{org_id}/types/{type_name}/fields",
            get(get_type_fields),
        )
        .route(
            "/rest/orgs/{org_id}/types/{type_name}/fields/{field}",
            get(get_type_field),
        )
        .route(
            "/rest/orgs/{org_id}/configurations/imports",
            post(post_import),
        )
        .route(
            "/rest/orgs/{org_id}/configurations/imports/{id}",
            get(get_import).put(put_import),
        )
        .route(
            "/rest/orgs/{org_id}/configurations/exports",
            post(post_export),
        )
        .route(
            "/rest/orgs/{org_id}/configurations/exports/",
            post(post_export),
        )
        .route("/rest/orgs/{org_id}/workflows", get(get_workflows))
        .route("/rest/orgs/{org_id}/workflows/{id}", get(get_workflow))
        .route(
            "/rest/orgs/{org_id}/workflow_instances/{id}",
            get(get_workflow_instance),
        )
        .route(
            "/rest/orgs/{org_id}/incidents",
            get(get_incidents).post(post_incident),
        )
        .route("/rest/orgs/{org_id}/incidents/", get(get_incidents))
        .route(
            "/rest/orgs/{org_id}/incidents/{id}",
            get(get_incident)
                .put(put_incident)
                .patch(patch_incident)
                .delete(delete_incident),
        )
        .route(
            "/rest/orgs/{org_id}/incidents/{id}/artifacts",
            get(get_artifacts).post(post_artifact),
        )
        .route(
            "/rest/orgs/{org_id}/incidents/{id}/artifacts/{aid}",
            get(get_artifact).delete(delete_artifact),
        )
        .route(
            "/rest/orgs/{org_id}/artifact_types",
            get(get_artifact_types).post(post_artifact_type),
        )
        .route(
            "/rest/orgs/{org_id}/artifact_types/{id}",
            get(get_artifact_type),
        )
        .route(
            "/rest/orgs/{org_id}/workspaces",
            get(get_workspaces).post(post_workspace),
        )
        .route("/rest/orgs/{org_id}/workspaces/{id}", get(get_workspace))
        .route("/rest/orgs/{org_id}/phases", get(get_phases))
        .route("/rest/orgs/{org_id}/phases/{id}", get(get_phase))
        .route(
            "/rest/orgs/{org_id}/incidents/{id}/comments",
            get(get_comments).post(post_comment),
        )
        .route("/rest/orgs/{org_id}/actions", get(get_actions))
        .route(
            "/rest/orgs/{org_id}/connectors/queues",
            get(get_connector_queues),
        )
        .route("/rest/orgs/{org_id}/functions", get(get_functions))
        .route("/rest/orgs/{org_id}/functions/{name}", get(get_function))
        .route(
            "/rest/orgs/{org_id}/message_destinations",
            get(get_destinations),
        )
        .route(
            "/rest/orgs/{org_id}/message_destinations/{id}",
            get(get_destination).put(put_destination),
        );
    let app = match normalise_prefix(prefix) {
        Some(p) => Router::new().nest(&p, api),
        None => api,
    };
    app.merge(crate::admin::router())
        .route_layer(middleware::from_fn_with_state(state.clone(), check_org))
        .fallback(fallback)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), log_requests))
        .with_state(state)
}

/// Serves `app` over TLS on `listener` until `cancel` fires.
pub(crate) async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    app: Router,
    cancel: CancellationToken,
) {
    let acceptor = TlsAcceptor::from(tls);
    loop {
        let (tcp, peer) = tokio::select! {
            _ = cancel.cancelled() => return,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!("sim REST accept failed: {e}");
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let app = app.clone();
        let cancel = cancel.clone();
        tokio::spawn(async move {
            let tls =
                match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
                    Ok(Ok(tls)) => tls,
                    Ok(Err(e)) => {
                        tracing::debug!("sim REST TLS handshake with {peer} failed: {e}");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!("sim REST TLS handshake with {peer} timed out");
                        return;
                    }
                };
            let service =
                hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    app.clone().oneshot(req.map(axum::body::Body::new))
                });
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(tls), service);
            tokio::select! {
                _ = cancel.cancelled() => {}
                r = conn => if let Err(e) = r {
                    tracing::debug!("sim REST connection with {peer} ended: {e}");
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_normalised() {
        assert_eq!(normalise_prefix(None), None);
        assert_eq!(normalise_prefix(Some("")), None);
        assert_eq!(normalise_prefix(Some("/")), None);
        assert_eq!(
            normalise_prefix(Some("api/respond/")).as_deref(),
            Some("/api/respond")
        );
    }

    #[test]
    fn cookies_and_basic_are_parsed() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; JSESSIONID=xyz"),
        );
        assert_eq!(cookie(&h, "JSESSIONID").as_deref(), Some("xyz"));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic dXNlcjpwYTpzcw=="),
        );
        assert_eq!(
            basic_credentials(&h),
            Some(("user".to_string(), "pa:ss".to_string()))
        );
    }
}
