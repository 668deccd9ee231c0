//! The TruSTAR REST API v1.3 emulator: a standalone HTTP server that answers what the TruSTAR
//! integration and TruSTAR's own Python SDK (`trustar`) ask.
//!
//! [`TrustarEmulator::start`] binds a port and serves:
//! - `POST /oauth/token` (HTTP Basic `key:secret`, `grant_type=client_credentials`) and bearer
//!   tokens on every `/api/1.3/…` call, answered like TruSTAR: HTTP 400 with
//!   `error_description` "Invalid oauth2 access token" or "Expired oauth2 access token";
//! - `ping`, `version`, `enclaves`, `request-quotas`;
//! - `reports`: submit (answers the id as plain text), get, update (`PUT`), delete, by internal
//!   id or by external tracking id (`idType=external`); `reports/{id}/indicators` (extracted from
//!   the body, [`extract`]), `reports/{id}/tags` (the 2018 SDK) and `reports/{id}/alter-tags` (its successor);
//! - `indicators/related` (indicators of the other reports sharing one of the given values),
//!   `indicators/search` (GET and POST), `indicators/metadata` (GET and POST), with priority
//!   levels from seed data ([`TrustarEmulator::set_priority`]);
//! - `whitelist`: add (`POST` a JSON array of terms), delete (`DELETE ?value=&indicatorType=`),
//!   list; whitelisted values are no longer extracted.
//!
//! Lists are pages `{items, pageNumber, pageSize, totalElements, hasNext}`. Faults on demand:
//! expire every issued token ([`TrustarEmulator::expire_tokens`]), answer HTTP 429 with a
//! `waitTime` in milliseconds ([`TrustarEmulator::rate_limit_next`]), be down (HTTP 503,
//! [`TrustarEmulator::set_unavailable`]) or slow ([`TrustarEmulator::set_delay`]). The
//! inspection API shows the reports, whitelist, requests and tokens.
//!
//! Requests are routed by an axum router, one handler per call; what every request goes through
//! (the delay, the outage, the bearer token and rate limit, the request log) is a middleware
//! around it (`api`).
//!
//! The crate registers the emulator with the simulated platform's registry
//! ([`soar_sim::emulator`]) as "TruSTAR", for `fn_trustar`: started on a free port with
//! [`TrustarConfig::default`] and [`TrustarEmulator::seed`], its app.config sections are
//! `[trustar]`, `[trustar_threat_source]` and `[trustar_soc]` (see its
//! [`Emulator::app_config`]).

mod api;
pub mod extract;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::{Value, json};
use soar_sim::SimError;
use soar_sim::emulator::{Emulator, EmulatorRegistration, StartFuture};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The indicator the seed data rates HIGH ([`TrustarEmulator::seed`]; the demo's artifact).
pub const HIGH_PRIORITY_IP: &str = "203.0.113.7";

/// An indicator of the report in the seed data ([`TrustarEmulator::seed`]): an incident that
/// mentions it correlates with the report's other indicators.
pub const SHARED_INDICATOR: &str = "198.51.100.23";

/// Settings of a [`TrustarEmulator`].
#[derive(Clone)]
pub struct TrustarConfig {
    /// Address to bind (127.0.0.1).
    pub bind: IpAddr,
    /// Port; 0 = ephemeral.
    pub port: u16,
    /// The API key accepted at `/oauth/token`.
    pub api_key: String,
    /// The API secret accepted at `/oauth/token`.
    pub api_secret: String,
    /// The enclaves the user may read and write: `(id, name)`.
    pub enclaves: Vec<(String, String)>,
}

impl Default for TrustarConfig {
    fn default() -> Self {
        TrustarConfig {
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            api_key: "trustar-api-key".to_string(),
            api_secret: "trustar-api-secret".to_string(),
            enclaves: vec![
                (
                    "7a33144f-aef3-442b-87d4-dbf70d8afdb0".to_string(),
                    "My Enclave".to_string(),
                ),
                (
                    "2e6bd1a8-5c3b-4e1e-9e7a-0c9d6c0b6f11".to_string(),
                    "Community Enclave".to_string(),
                ),
            ],
        }
    }
}

impl std::fmt::Debug for TrustarConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrustarConfig")
            .field("bind", &self.bind)
            .field("port", &self.port)
            .field("api_key", &self.api_key)
            .field("api_secret", &"<redacted>")
            .field("enclaves", &self.enclaves)
            .finish()
    }
}

/// One request the emulator answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    /// HTTP method.
    pub method: String,
    /// Path relative to `/api/1.3` (`reports/RESILIENT5`), or `/oauth/token`.
    pub path: String,
    /// The raw query string.
    pub query: String,
    /// The status answered.
    pub status: u16,
}

#[derive(Debug, Clone)]
struct Report {
    id: String,
    title: String,
    body: String,
    time_began: i64,
    external_url: Value,
    distribution: String,
    external_id: Option<String>,
    enclaves: Vec<String>,
    created: i64,
    updated: i64,
    tags: Vec<Value>,
    indicators: Vec<(&'static str, String)>,
}

impl Report {
    fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "title": self.title,
            "reportBody": self.body,
            "timeBegan": self.time_began,
            "externalUrl": self.external_url,
            "distributionType": self.distribution,
            "externalTrackingId": self.external_id,
            "externalId": self.external_id,
            "enclaveIds": self.enclaves,
            "created": self.created,
            "updated": self.updated,
            "sector": {"id": 1, "label": "Other", "name": "Other"},
        })
    }
}

#[derive(Default)]
struct EmuState {
    reports: BTreeMap<String, Report>,
    order: Vec<String>,
    tokens: HashMap<String, bool>,
    tokens_issued: u64,
    priorities: HashMap<String, (String, String)>,
    whitelist: Vec<(String, String)>,
    requests: Vec<RequestRecord>,
    rate_limit: Option<(u32, u64)>,
    unavailable: bool,
    delay: Duration,
    counter: u64,
}

struct Shared {
    config: TrustarConfig,
    state: Mutex<EmuState>,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, EmuState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A running TruSTAR emulator; it stops when dropped or on [`TrustarEmulator::shutdown`].
pub struct TrustarEmulator {
    addr: SocketAddr,
    shared: Arc<Shared>,
    cancel: CancellationToken,
}

impl std::fmt::Debug for TrustarEmulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrustarEmulator")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Drop for TrustarEmulator {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

impl TrustarEmulator {
    /// Binds and serves until shut down.
    pub async fn start(config: TrustarConfig) -> std::io::Result<TrustarEmulator> {
        let listener = TcpListener::bind((config.bind, config.port)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            config,
            state: Mutex::new(EmuState::default()),
        });
        let cancel = CancellationToken::new();
        api::spawn(listener, shared.clone(), cancel.clone());
        Ok(TrustarEmulator {
            addr,
            shared,
            cancel,
        })
    }

    /// `http://127.0.0.1:PORT`: the `url` of a `[trustar_<name>]` section.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The configured API key.
    pub fn api_key(&self) -> &str {
        &self.shared.config.api_key
    }

    /// The configured API secret.
    pub fn api_secret(&self) -> &str {
        &self.shared.config.api_secret
    }

    /// The enclave ids the user may use.
    pub fn enclave_ids(&self) -> Vec<String> {
        self.shared
            .config
            .enclaves
            .iter()
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Stops serving.
    pub async fn shutdown(&self) {
        self.cancel.cancel();
    }

    /// Every report, oldest first, as `GET reports/{id}` answers it.
    pub fn reports(&self) -> Vec<Value> {
        let st = self.shared.state();
        st.order
            .iter()
            .filter_map(|id| st.reports.get(id))
            .map(Report::to_json)
            .collect()
    }

    /// The report with external tracking id `external_id` (`RESILIENT5`).
    pub fn report_by_external_id(&self, external_id: &str) -> Option<Value> {
        let st = self.shared.state();
        st.reports
            .values()
            .find(|r| r.external_id.as_deref() == Some(external_id))
            .map(Report::to_json)
    }

    /// The tags of a report (by internal id).
    pub fn report_tags(&self, id: &str) -> Vec<Value> {
        self.shared
            .state()
            .reports
            .get(id)
            .map(|r| r.tags.clone())
            .unwrap_or_default()
    }

    /// The indicators extracted from a report (by internal id), as `(type, value)`.
    pub fn report_indicators(&self, id: &str) -> Vec<(String, String)> {
        self.shared
            .state()
            .reports
            .get(id)
            .map(|r| {
                r.indicators
                    .iter()
                    .map(|(t, v)| (t.to_string(), v.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Stores a report as if another TruSTAR user had submitted it (for correlations); returns
    /// its id.
    pub fn add_report(&self, title: &str, body: &str, enclave_id: &str) -> String {
        let mut st = self.shared.state();
        let id = next_uuid(&mut st);
        let now = now_ms();
        let indicators = extract_unlisted(&st, body);
        st.reports.insert(
            id.clone(),
            Report {
                id: id.clone(),
                title: title.to_string(),
                body: body.to_string(),
                time_began: now,
                external_url: Value::Null,
                distribution: "ENCLAVE".to_string(),
                external_id: None,
                enclaves: vec![enclave_id.to_string()],
                created: now,
                updated: now,
                tags: Vec::new(),
                indicators,
            },
        );
        st.order.push(id.clone());
        id
    }

    /// Seeds the priority level (`HIGH`, `MEDIUM`, `LOW`) of an indicator; its type is guessed
    /// when `indicator_type` is `None`.
    pub fn set_priority(&self, value: &str, indicator_type: Option<&str>, level: &str) {
        let ty = indicator_type
            .map(str::to_string)
            .or_else(|| extract::classify(value).map(str::to_string))
            .unwrap_or_else(|| "URL".to_string());
        self.shared
            .state()
            .priorities
            .insert(value.to_ascii_lowercase(), (ty, level.to_string()));
    }

    /// The whitelist as `(indicatorType, value)`.
    pub fn whitelist(&self) -> Vec<(String, String)> {
        self.shared.state().whitelist.clone()
    }

    /// Every request answered so far.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared.state().requests.clone()
    }

    /// Forgets the request log.
    pub fn clear_requests(&self) {
        self.shared.state().requests.clear();
    }

    /// How many tokens `/oauth/token` issued.
    pub fn tokens_issued(&self) -> u64 {
        self.shared.state().tokens_issued
    }

    /// Makes every token issued so far expired: the next call with one gets HTTP 400
    /// "Expired oauth2 access token".
    pub fn expire_tokens(&self) {
        for expired in self.shared.state().tokens.values_mut() {
            *expired = true;
        }
    }

    /// The next `count` API calls get HTTP 429 with `waitTime` = `wait_ms`.
    pub fn rate_limit_next(&self, count: u32, wait_ms: u64) {
        self.shared.state().rate_limit = (count > 0).then_some((count, wait_ms));
    }

    /// While `down`, every request gets HTTP 503.
    pub fn set_unavailable(&self, down: bool) {
        self.shared.state().unavailable = down;
    }

    /// Delays every API answer (to make lookups slow).
    pub fn set_delay(&self, delay: Duration) {
        self.shared.state().delay = delay;
    }

    /// Adds the seed data of a local run: [`HIGH_PRIORITY_IP`] rated HIGH, and a report other
    /// analysts shared ("Botnet C2 infrastructure", in the first enclave) that mentions
    /// [`SHARED_INDICATOR`], so that an incident mentioning it gets the others as correlated
    /// indicators.
    pub fn seed(&self) {
        self.set_priority(HIGH_PRIORITY_IP, Some("IP"), "HIGH");
        if let Some(enclave) = self.enclave_ids().first() {
            self.add_report(
                "Botnet C2 infrastructure",
                &format!(
                    "C2 server {SHARED_INDICATOR} resolves botnet-c2.example.net; the dropper's MD5 \
                     is 44d88612fea8a8f36de82e1278abb02f."
                ),
                enclave,
            );
        }
    }
}

soar_sim::register_emulator!(EmulatorRegistration {
    name: "TruSTAR",
    component: "fn_trustar",
    start: start_registered,
});

/// The registry's start: the default configuration on a free port, with the seed data.
fn start_registered() -> StartFuture {
    Box::pin(async {
        let trustar = TrustarEmulator::start(TrustarConfig::default())
            .await
            .map_err(SimError::Io)?;
        trustar.seed();
        Ok(Box::new(trustar) as Box<dyn Emulator>)
    })
}

impl Emulator for TrustarEmulator {
    /// The API's base URL ([`TrustarEmulator::url`]).
    fn url(&self) -> String {
        TrustarEmulator::url(self)
    }

    /// `[trustar]` (the queue), `[trustar_threat_source]` (what the threat service searches)
    /// and `[trustar_soc]` (where incidents are submitted), all pointing at this emulator with
    /// its first enclave. The host adds `[webserver]`, `[custom_threat_service]` and
    /// `answer_within_ms` itself.
    fn app_config(&self) -> String {
        let enclave = self.enclave_ids().first().cloned().unwrap_or_default();
        format!(
            "[trustar]\nqueue = trustar\n\n\
             [trustar_threat_source]\nurl = {url}\nuser_api_key = {key}\n\
             user_api_secret = {secret}\nenclave_ids_for_search = {enclave}\n\n\
             [trustar_soc]\nurl = {url}\nuser_api_key = {key}\nuser_api_secret = {secret}\n\
             enclave_ids_for_submission = {enclave}\nenclave_ids_for_query = {enclave}\n\
             auto_submission = enable\nincident_content_to_submit = summary,notes,breach,artifacts\n\
             incident_types_to_exclude =\nworkspace = Default workspace\ntag = soar-sim\n",
            url = TrustarEmulator::url(self),
            key = self.api_key(),
            secret = self.api_secret(),
        )
    }

    /// "TruSTAR reports:" then one line per report (title, id, external id), or "(none)".
    fn summary(&self) -> String {
        let mut out = String::from("TruSTAR reports:\n");
        let reports = self.reports();
        if reports.is_empty() {
            out.push_str("  (none)\n");
        }
        for r in reports {
            out.push_str(&format!(
                "  {} ({}, external id {})\n",
                r["title"].as_str().unwrap_or("?"),
                r["id"].as_str().unwrap_or("?"),
                r["externalTrackingId"].as_str().unwrap_or("-")
            ));
        }
        out
    }
}

/// Milliseconds since the epoch, now.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn next_uuid(st: &mut EmuState) -> String {
    st.counter += 1;
    uuid::Uuid::new_v4().to_string()
}

fn extract_unlisted(st: &EmuState, body: &str) -> Vec<(&'static str, String)> {
    extract::extract(body)
        .into_iter()
        .filter(|(_, v)| !st.whitelist.iter().any(|(_, w)| w.eq_ignore_ascii_case(v)))
        .collect()
}

/// The report `id` names: its internal id, or its external tracking id when `external`.
fn find_report<'a>(st: &'a EmuState, id: &str, external: bool) -> Option<&'a Report> {
    if external {
        st.reports
            .values()
            .find(|r| r.external_id.as_deref() == Some(id))
    } else {
        st.reports.get(id)
    }
}

fn time_began(v: Option<&Value>) -> i64 {
    match v {
        Some(Value::Number(n)) => {
            let n = n.as_i64().unwrap_or_default();
            if n < 10_000_000_000 { n * 1000 } else { n }
        }
        Some(Value::String(s)) => parse_iso8601_ms(s).unwrap_or_else(now_ms),
        _ => now_ms(),
    }
}

/// Milliseconds since the epoch of an ISO-8601 time such as `2024-01-02T10:00:00.5+01:00`.
fn parse_iso8601_ms(s: &str) -> Option<i64> {
    let s = s.trim();
    let num = |a: usize, b: usize| -> Option<i64> { s.get(a..b)?.parse().ok() };
    let (y, mo, d) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (h, mi, sec) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    let mut rest = s.get(19..)?;
    let mut ms = 0;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits: String = frac.chars().take_while(char::is_ascii_digit).collect();
        ms = format!("{digits:0<3}").get(..3)?.parse().ok()?;
        rest = &frac[digits.len()..];
    }
    let offset_min = match rest {
        "" | "Z" | "z" => 0,
        tz => {
            let sign = if tz.starts_with('-') { -1 } else { 1 };
            let tz = tz.get(1..)?.replace(':', "");
            sign * (tz.get(0..2)?.parse::<i64>().ok()? * 60 + tz.get(2..4)?.parse::<i64>().ok()?)
        }
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if mo > 2 { mo - 3 } else { mo + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 86_400 + h * 3600 + mi * 60 + sec - offset_min * 60) * 1000) + ms)
}

fn enclaves_of(shared: &Shared, b: &Value) -> Result<Vec<String>, String> {
    let list: Vec<String> = b
        .get("enclaveIds")
        .and_then(Value::as_array)
        .map(|l| {
            l.iter()
                .filter_map(Value::as_str)
                .map(|s| s.trim().to_string())
                .collect()
        })
        .unwrap_or_default();
    for e in &list {
        if !shared.config.enclaves.iter().any(|(id, _)| id == e) {
            return Err(format!(
                "Enclave {e} not found or not writable by this user"
            ));
        }
    }
    Ok(list)
}

/// Indicators of the reports (in `enclaves`, when given) that contain one of `values`, other
/// than `values` themselves.
fn related(st: &EmuState, values: &[String], enclaves: &[String]) -> Vec<Value> {
    let wanted: HashSet<String> = values.iter().map(|v| v.to_ascii_lowercase()).collect();
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for id in &st.order {
        let Some(r) = st.reports.get(id) else {
            continue;
        };
        if !enclaves.is_empty() && !r.enclaves.iter().any(|e| enclaves.contains(e)) {
            continue;
        }
        if !r
            .indicators
            .iter()
            .any(|(_, v)| wanted.contains(&v.to_ascii_lowercase()))
        {
            continue;
        }
        for (t, v) in &r.indicators {
            let key = v.to_ascii_lowercase();
            if wanted.contains(&key) || !seen.insert(key) {
                continue;
            }
            out.push(json!({"indicatorType": t, "value": v}));
        }
    }
    out
}

fn known_indicator(st: &EmuState, value: &str) -> Option<(String, String, usize, Vec<String>)> {
    let key = value.to_ascii_lowercase();
    let mut count = 0;
    let mut ty = None;
    let mut enclaves = Vec::new();
    for r in st.reports.values() {
        if let Some((t, _)) = r
            .indicators
            .iter()
            .find(|(_, v)| v.to_ascii_lowercase() == key)
        {
            count += 1;
            ty = Some(t.to_string());
            enclaves.extend(r.enclaves.iter().cloned());
        }
    }
    let seeded = st.priorities.get(&key);
    let level = match (seeded, count) {
        (Some((_, level)), _) => level.clone(),
        (None, 0) => return None,
        (None, _) => "LOW".to_string(),
    };
    let ty = ty
        .or_else(|| seeded.map(|(t, _)| t.clone()))
        .unwrap_or_default();
    enclaves.sort();
    enclaves.dedup();
    Some((ty, level, count, enclaves))
}

fn indicator_json(st: &EmuState, value: &str) -> Option<Value> {
    let (ty, level, count, enclaves) = known_indicator(st, value)?;
    let whitelisted = st
        .whitelist
        .iter()
        .any(|(_, v)| v.eq_ignore_ascii_case(value));
    let now = now_ms();
    Some(json!({
        "value": value,
        "indicatorType": ty,
        "priorityLevel": level,
        "correlationCount": count,
        "whitelisted": whitelisted,
        "weight": 1,
        "reason": null,
        "firstSeen": now - 86_400_000,
        "lastSeen": now,
        "sightings": count.max(1),
        "source": null,
        "notes": [],
        "tags": [],
        "enclaveIds": enclaves,
    }))
}

fn all_values(st: &EmuState) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut seen = HashSet::new();
    for id in &st.order {
        if let Some(r) = st.reports.get(id) {
            for (_, v) in &r.indicators {
                if seen.insert(v.to_ascii_lowercase()) {
                    out.push(v.clone());
                }
            }
        }
    }
    let mut seeded: Vec<&String> = st.priorities.keys().collect();
    seeded.sort();
    for v in seeded {
        if seen.insert(v.clone()) {
            out.push(v.clone());
        }
    }
    out
}

fn search(st: &EmuState, term: &str, enclaves: &[String]) -> Vec<Value> {
    let term = term.trim().to_ascii_lowercase();
    all_values(st)
        .iter()
        .filter(|v| v.to_ascii_lowercase().contains(&term))
        .filter_map(|v| indicator_json(st, v))
        .filter(|i| {
            enclaves.is_empty()
                || i["enclaveIds"].as_array().is_some_and(|l| l.is_empty())
                || i["enclaveIds"]
                    .as_array()
                    .is_some_and(|l| l.iter().any(|e| enclaves.iter().any(|x| e == x)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_iso_times() {
        assert_eq!(parse_iso8601_ms("1970-01-01T00:00:01Z"), Some(1000));
        assert_eq!(
            parse_iso8601_ms("2024-01-02T10:00:00.250+01:00"),
            Some(1_704_186_000_250)
        );
        assert_eq!(parse_iso8601_ms("garbage"), None);
    }
}
