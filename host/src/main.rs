//! `host`: the integration host for IBM SOAR, a drop-in for resilient-circuits.
//!
//! CLI and wiring only: the engine does the work, and the linked function crates (cargo
//! features) register themselves. The host knows no integration by name.

/// `println!` that ignores a closed stdout (`host list | head -1`): output nobody reads is not
/// an error, and a push under way (`customize -y | head -1`) goes on.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// `print!` that ignores a closed stdout; see `outln!`.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout(), $($arg)*);
    }};
}

/// jemalloc instead of glibc's malloc (as ripgrep does on musl): the journal's records are made on
/// the async threads and freed on its writer thread, and glibc's frees across threads (arena
/// locks, consolidation) cost more than the journal's own work.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

mod commands;
mod lock;
mod logging;

// `use x as _;` for every crate an enabled feature links (written by build.rs): without it rustc
// drops a crate nothing names, and its registrations with it.
include!(concat!(env!("OUT_DIR"), "/linked.rs"));

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, CommandFactory, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "host",
    version,
    about = "Integration host for IBM SOAR (resilient-circuits compatible)"
)]
struct Cli {
    /// More output: `run` logs at DEBUG (unless --loglevel says otherwise), other commands log
    /// their progress.
    #[arg(short, long, global = true)]
    verbose: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Args)]
struct ConfigFile {
    /// app.config to use (default: $APP_CONFIG_FILE, ./app.config, ~/.resilient/app.config).
    #[arg(long = "config-file", short = 'c', value_name = "FILE")]
    config_file: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Connect to the platform and run the linked functions until SIGINT/SIGTERM; SIGHUP
    /// reloads app.config.
    Run {
        #[command(flatten)]
        config: ConfigFile,
        /// Overrides `loglevel` (DEBUG, INFO, WARNING, ERROR, CRITICAL).
        #[arg(long)]
        loglevel: Option<String>,
        /// Overrides `num_workers` (1 to 2000).
        #[arg(long = "num-workers", value_name = "N")]
        num_workers: Option<u32>,
        /// Watch app.config and apply its changes without dropping work (as SIGHUP does).
        #[arg(short = 'r', long = "auto-restart")]
        auto_restart: bool,
    },
    /// List the linked components, their functions, rule handlers and config sections.
    List,
    /// Write a new app.config (-c) or append the missing sections to one (-u).
    Config {
        /// Create a new file with every linked component's section.
        #[arg(
            short = 'c',
            long = "create",
            conflicts_with = "update",
            required_unless_present = "update"
        )]
        create: bool,
        /// Append the sections of components that the file does not have yet.
        #[arg(short = 'u', long = "update")]
        update: bool,
        /// The file (default: ~/.resilient/app.config, or $APP_CONFIG_FILE).
        file: Option<PathBuf>,
        /// Only these components.
        #[arg(short = 'l', long = "list", num_args = 1..)]
        components: Vec<String>,
        /// Overwrite an existing file with -c without asking.
        #[arg(short = 'y', long)]
        yes: bool,
    },
    /// Push the linked components' platform objects (destinations, functions, fields, rules,
    /// workflows) to the platform, or write them as an export.res with --export.
    Customize {
        #[command(flatten)]
        config: ConfigFile,
        /// Only these components.
        #[arg(short = 'l', long = "list", num_args = 1..)]
        components: Vec<String>,
        /// Import without asking.
        #[arg(short = 'y', long)]
        yes: bool,
        /// Write an export.res file instead of pushing.
        #[arg(long, value_name = "FILE")]
        export: Option<PathBuf>,
    },
    /// Create a new function crate in this workspace (run in the repository): one typed
    /// function, its YAML, a typed config section and tests; added to the host as a feature.
    New {
        /// The crate's and component's name, e.g. fn_example.
        name: String,
    },
    /// Check the REST login, the STOMP subscription and each component's own selftest.
    Selftest {
        #[command(flatten)]
        config: ConfigFile,
        /// Only these components.
        #[arg(short = 'l', long = "list", num_args = 1..)]
        components: Vec<String>,
        /// First print the host's version, its components and the environment it reads.
        #[arg(long = "print-env")]
        print_env: bool,
    },
    /// What the running host is doing (from its `[monitoring]` endpoint): the broker link, the
    /// subscriptions and the invocations in flight. Exit code 0 connected, 2 not connected, 3
    /// unreachable.
    Status {
        #[command(flatten)]
        config: ConfigFile,
    },
    /// Store, list or delete the secrets that `^name` values in app.config refer to (in
    /// $APP_SECRETS, `[resilient] secrets` or ~/.resilient/secrets, readable by the owner only).
    Secret {
        #[command(flatten)]
        config: ConfigFile,
        #[command(subcommand)]
        command: commands::secret::SecretCommand,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) to stdout.
    Completions { shell: clap_complete::Shell },
    /// Print the man page (roff) to stdout: `host man > host.1`.
    Man,
    /// Run the simulated platform on its own (REST, STOMP broker, admin interface).
    #[cfg(feature = "sim")]
    Sim(commands::sim::SimArgs),
    /// Run the linked functions against the simulated platform and show what happens.
    #[cfg(feature = "sim")]
    Demo {
        /// How many rounds of the examples to run.
        #[arg(long, default_value_t = 1)]
        repeat: usize,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let verbose = cli.verbose;
    // `run` logs as app.config says; the others to stderr only, more with -v.
    let level = match cli.command {
        Command::Run { .. } => None,
        #[cfg(feature = "sim")]
        Command::Sim(_) => Some(if verbose { "DEBUG" } else { "INFO" }),
        // The demo prints its own story; the log only adds errors.
        #[cfg(feature = "sim")]
        Command::Demo { .. } => Some(if verbose { "INFO" } else { "ERROR" }),
        _ => Some(if verbose { "DEBUG" } else { "WARNING" }),
    };
    if let Some(level) = level {
        let _ = logging::init(&logging::LogSettings::stderr(level));
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let code = runtime.block_on(async move {
        match cli.command {
            Command::Run {
                config,
                loglevel,
                num_workers,
                auto_restart,
            } => {
                commands::run::run(commands::run::RunOptions {
                    config_file: config.config_file,
                    loglevel: loglevel.or_else(|| verbose.then(|| "DEBUG".to_string())),
                    num_workers,
                    auto_restart,
                })
                .await
            }
            Command::List => commands::list::run(),
            Command::Config {
                create,
                file,
                components,
                yes,
                ..
            } => commands::config::run(create, file, &components, yes),
            Command::Customize {
                config,
                components,
                yes,
                export,
            } => commands::customize::run(config.config_file, &components, yes, export).await,
            Command::New { name } => commands::new::run(&name),
            Command::Selftest {
                config,
                components,
                print_env,
            } => commands::selftest::run(config.config_file, &components, print_env).await,
            Command::Status { config } => commands::status::run(config.config_file).await,
            Command::Secret { config, command } => {
                commands::secret::run(config.config_file, command)
            }
            Command::Completions { shell } => {
                let mut text = Vec::new();
                clap_complete::generate(shell, &mut Cli::command(), "host", &mut text);
                out!("{}", String::from_utf8_lossy(&text));
                0
            }
            Command::Man => {
                let mut page = Vec::new();
                match clap_mangen::Man::new(Cli::command()).render(&mut page) {
                    Ok(()) => {
                        out!("{}", String::from_utf8_lossy(&page));
                        0
                    }
                    Err(e) => {
                        eprintln!("error: cannot render the man page: {e}");
                        1
                    }
                }
            }
            #[cfg(feature = "sim")]
            Command::Sim(args) => commands::sim::run(args).await,
            #[cfg(feature = "sim")]
            Command::Demo { repeat } => commands::demo::run(repeat).await,
        }
    });
    ExitCode::from(code.clamp(0, 255) as u8)
}
