//! `host sim`: the simulated platform on its own, for a person developing an integration. It
//! prints its ports, credentials and a ready-to-use app.config (or writes it with
//! `--write-config`), serves an HTTP admin interface under `/sim/admin`, keeps its state in a
//! file with `--state`, and runs until SIGINT/SIGTERM. The emulators of the linked components'
//! outside services run beside it; the app.config it prints points the components at them.

use std::io::Write;
use std::path::PathBuf;

use soar_sim::SimConfig;

use super::run::shutdown_signal;
use super::world::World;

/// Options of `host sim`.
#[derive(Debug, clap::Args)]
pub struct SimArgs {
    /// HTTPS REST port (0: any free port).
    #[arg(long, default_value_t = 0)]
    pub rest_port: u16,
    /// STOMP+TLS port (0: any free port).
    #[arg(long, default_value_t = 0)]
    pub stomp_port: u16,
    /// Write the [resilient] section for a host to this file.
    #[arg(long, value_name = "FILE")]
    pub write_config: Option<PathBuf>,
    /// Keep the platform's state (incidents, customizations, ...) in this file across restarts.
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
}

pub async fn run(args: SimArgs) -> i32 {
    let config = SimConfig {
        rest_port: args.rest_port,
        stomp_port: args.stomp_port,
        state_file: args.state.clone(),
        ..SimConfig::default()
    };
    let world = match World::start(config).await {
        Ok(w) => w,
        Err(e) => {
            eprintln!("error: cannot start the simulated platform: {e:#}");
            return 1;
        }
    };
    let sim = &world.sim;
    let c = sim.config();
    let app_config = world.app_config();
    if let Some(path) = &args.write_config
        && let Err(e) = std::fs::write(path, &app_config)
    {
        eprintln!("error: cannot write {}: {e}", path.display());
        return 1;
    }
    let ca = sim.ca_file().display().to_string();
    outln!("Simulated IBM SOAR platform");
    outln!(
        "  REST:    https://localhost:{}/rest  (org \"{}\", id {})",
        sim.rest_port(),
        c.org_name,
        c.org_id
    );
    outln!("  STOMP:   localhost:{} over TLS", sim.stomp_port());
    outln!(
        "  API key: {} / {}   (or {} / {})",
        c.api_key_id,
        c.api_key_secret,
        c.email,
        c.password
    );
    outln!("  CA:      {ca}");
    for (name, emulator) in &world.emulators {
        outln!("  {name}: {} (emulator)", emulator.url());
    }
    for t in sim.threat_services() {
        outln!("  threat service registered: {} → {}", t.name, t.url);
    }
    match &args.state {
        Some(p) => outln!("  state:   {}", p.display()),
        None => outln!("  state:   in memory (use --state FILE to keep it)"),
    }
    outln!(
        "  admin:   curl --cacert {ca} -u {}:{} https://localhost:{}/sim/admin",
        c.api_key_id,
        c.api_key_secret,
        sim.rest_port()
    );
    match &args.write_config {
        Some(p) => outln!("app.config for a host written to {}", p.display()),
        None => outln!("app.config for a host:\n\n{app_config}"),
    }
    outln!("Ready. Ctrl-C stops.");
    shutdown_signal().await;
    // What the emulators saw; stdout may be gone by now (a closed pipe is not an error here).
    let _ = writeln!(std::io::stdout(), "{}", world.summary());
    sim.shutdown().await;
    0
}
