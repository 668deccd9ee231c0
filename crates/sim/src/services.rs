//! Stand-ins for the third-party services our integrations call (Slack, TruSTAR), started
//! together for `host sim` and `host demo`, with the app.config sections that point the
//! integrations at them and the platform's threat-source registration.

use std::net::{Ipv4Addr, TcpListener};

use crate::slack::{SlackConfig, SlackEmulator};
use crate::trustar::{TrustarConfig, TrustarEmulator};
use crate::{Sim, SimError, ThreatService};

/// The indicator the seed data rates HIGH in TruSTAR (the demo's artifact).
pub const HIGH_PRIORITY_IP: &str = "203.0.113.7";

/// An indicator of a TruSTAR report in the seed data (mention it in an incident to correlate).
pub const SHARED_INDICATOR: &str = "198.51.100.23";

/// The running emulators and the port chosen for the TruSTAR threat service.
pub struct Services {
    pub slack: SlackEmulator,
    pub trustar: TrustarEmulator,
    threat_service_port: u16,
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Services")
            .field("slack", &self.slack.api_url())
            .field("trustar", &self.trustar.url())
            .finish_non_exhaustive()
    }
}

fn free_port() -> Result<u16, SimError> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(SimError::Io)?;
    Ok(listener.local_addr().map_err(SimError::Io)?.port())
}

impl Services {
    /// Starts the Slack and TruSTAR emulators on free loopback ports, with seed data.
    pub async fn start() -> Result<Services, SimError> {
        let slack = SlackEmulator::start(SlackConfig::default())
            .await
            .map_err(|e| SimError::External(format!("Slack emulator: {e}")))?;
        let trustar = TrustarEmulator::start(TrustarConfig::default())
            .await
            .map_err(SimError::Io)?;
        trustar.set_priority(HIGH_PRIORITY_IP, Some("IP"), "HIGH");
        // A report other analysts shared: an incident that mentions one of its indicators gets
        // the others as correlated indicators.
        if let Some(enclave) = trustar.enclave_ids().first() {
            trustar.add_report(
                "Botnet C2 infrastructure",
                &format!(
                    "C2 server {SHARED_INDICATOR} resolves botnet-c2.example.net; the dropper's MD5 \
                     is 44d88612fea8a8f36de82e1278abb02f."
                ),
                enclave,
            );
        }
        Ok(Services {
            slack,
            trustar,
            threat_service_port: free_port()?,
        })
    }

    /// The TruSTAR threat service's URL, once fn_trustar serves it.
    pub fn threat_service_url(&self) -> String {
        format!("http://127.0.0.1:{}/cts/trustar", self.threat_service_port)
    }

    /// app.config sections that point fn_slack and fn_trustar at the emulators.
    pub fn app_config(&self) -> String {
        let enclave = self
            .trustar
            .enclave_ids()
            .first()
            .cloned()
            .unwrap_or_default();
        format!(
            "[fn_slack]\napi_token = {token}\nusername = Resilient\nchannel = incidents\napi_url = {slack}\n\n\
             [trustar]\nqueue = trustar\n\n\
             [trustar_threat_source]\nurl = {ts}\nuser_api_key = {key}\nuser_api_secret = {secret}\n\
             enclave_ids_for_search = {enclave}\nanswer_within_ms = 1000\n\n\
             [trustar_soc]\nurl = {ts}\nuser_api_key = {key}\nuser_api_secret = {secret}\n\
             enclave_ids_for_submission = {enclave}\nenclave_ids_for_query = {enclave}\n\
             auto_submission = enable\nincident_content_to_submit = summary,notes,breach,artifacts\n\
             incident_types_to_exclude =\nworkspace = Default workspace\ntag = soar-sim\n\n\
             [webserver]\nserver = 127.0.0.1\nport = {port}\nsecure = 0\n\n\
             [custom_threat_service]\nurlbase = /cts\ncache_ttl = 600\n",
            token = self.slack.token(),
            slack = self.slack.api_url(),
            ts = self.trustar.url(),
            key = self.trustar.api_key(),
            secret = self.trustar.api_secret(),
            port = self.threat_service_port,
        )
    }

    /// Registers the TruSTAR threat service with the platform (`resutil threatserviceedit`).
    pub fn register_threat_service(&self, sim: &Sim) -> Result<(), SimError> {
        sim.add_threat_service(ThreatService {
            name: "trustar".into(),
            url: self.threat_service_url(),
            ..ThreatService::default()
        })
    }
}

impl Services {
    /// What a person would see in Slack and TruSTAR now.
    pub fn summary(&self) -> String {
        let mut out = String::from("Slack, as a person sees it:\n");
        out.push_str(&self.slack.transcript());
        out.push_str("\nTruSTAR reports:\n");
        let reports = self.trustar.reports();
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
