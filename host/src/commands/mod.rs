//! One module per subcommand. Each returns the process exit code.

pub mod config;
pub mod customize;
#[cfg(feature = "sim")]
pub mod demo;
pub mod list;
pub mod new;
pub mod run;
pub mod secret;
pub mod selftest;
#[cfg(feature = "sim")]
pub mod sim;
pub mod status;
#[cfg(feature = "sim")]
pub mod world;

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

use soar_engine::config::{AppConfig, ResilientOptions};

/// Finds and loads app.config, printing a clear error.
pub fn load_config(explicit: Option<&Path>) -> Result<(AppConfig, ResilientOptions), i32> {
    let loaded = AppConfig::locate(explicit)
        .and_then(|path| AppConfig::load(&path))
        .and_then(|cfg| ResilientOptions::from_config(&cfg).map(|opts| (cfg, opts)));
    loaded.map_err(|e| {
        eprintln!("error: {e}");
        1
    })
}

/// Prints an error with its causes, one per line.
pub fn report(prefix: &str, err: &(dyn std::error::Error + 'static)) {
    eprintln!("error: {prefix}{err}");
    let mut source = err.source();
    while let Some(cause) = source {
        eprintln!("  caused by: {cause}");
        source = cause.source();
    }
}

/// `logdir/logfile` from `[resilient]`.
pub fn log_file(opts: &ResilientOptions) -> Option<PathBuf> {
    if opts.logfile.is_empty() {
        None
    } else {
        Some(PathBuf::from(&opts.logdir).join(&opts.logfile))
    }
}

/// Asks a yes/no question on the terminal; without a terminal the answer is no.
pub fn confirm(question: &str) -> bool {
    if !std::io::stdin().is_terminal() {
        eprintln!("{question} Not a terminal: pass -y to proceed without asking.");
        return false;
    }
    out!("{question} (y/n): ");
    let _ = std::io::stdout().flush();
    let mut answer = String::new();
    let _ = std::io::stdin().lock().read_line(&mut answer);
    matches!(answer.trim(), "y" | "Y" | "yes")
}
