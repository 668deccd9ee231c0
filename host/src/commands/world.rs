//! The simulated world that `host sim` and `host demo` run in: the simulated platform, the
//! emulators of the linked components' outside services (each from its registry), the
//! app.config that points the host at all of them, and the threat services registered with the
//! platform. No integration is named here: what runs is what is linked.

use std::net::{Ipv4Addr, TcpListener};

use soar_sim::emulator::{self, Emulator};
use soar_sim::{Sim, SimConfig, ThreatService};

/// The platform and the emulators.
pub struct World {
    pub sim: Sim,
    /// `(name, emulator)`, sorted by name.
    pub emulators: Vec<(&'static str, Box<dyn Emulator>)>,
    /// Where the host serves threat services (`[webserver] port`).
    pub threat_port: u16,
}

impl std::fmt::Debug for World {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("World")
            .field(
                "emulators",
                &self.emulators.iter().map(|e| e.0).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

fn free_port() -> std::io::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}

impl World {
    /// Starts the platform and the emulator of every linked component's outside service, and
    /// registers the components' threat services with the platform (as `resutil
    /// threatserviceedit` does on an appliance).
    pub async fn start(config: SimConfig) -> anyhow::Result<World> {
        let sim = Sim::start(config).await?;
        let linked = soar_sdk::registered();
        let mut emulators = Vec::new();
        for registration in emulator::registered() {
            if linked.iter().any(|c| c.name == registration.component) {
                let running = (registration.start)()
                    .await
                    .map_err(|e| anyhow::anyhow!("{} emulator: {e}", registration.name))?;
                emulators.push((registration.name, running));
            }
        }
        let threat_port = free_port()?;
        for name in linked.iter().flat_map(|c| c.threat_services.iter()) {
            sim.add_threat_service(ThreatService {
                name: name.to_string(),
                url: format!("http://127.0.0.1:{threat_port}/cts/{name}"),
                ..ThreatService::default()
            })?;
        }
        Ok(World {
            sim,
            emulators,
            threat_port,
        })
    }

    /// The app.config for a host: the platform's `[resilient]`, the emulators' sections, and
    /// `[webserver]` for the threat services.
    pub fn app_config(&self) -> String {
        let mut text = self.sim.app_config();
        for (_, e) in &self.emulators {
            text.push('\n');
            text.push_str(&e.app_config());
        }
        if soar_sdk::registered()
            .iter()
            .any(|c| !c.threat_services.is_empty())
        {
            text.push_str(&format!(
                "\n[webserver]\nserver = 127.0.0.1\nport = {}\nsecure = 0\n",
                self.threat_port
            ));
        }
        text
    }

    /// What a person would see in each outside service now.
    pub fn summary(&self) -> String {
        self.emulators
            .iter()
            .map(|(_, e)| e.summary())
            .collect::<Vec<_>>()
            .join("\n")
    }
}
