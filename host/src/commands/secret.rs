//! `host secret set|list|delete`: the secret store that `^name` values in app.config are read
//! from (`$APP_SECRETS`, else `[resilient] secrets`, else `~/.resilient/secrets`, created as a
//! private directory). Values are read without echo from a terminal, or from stdin; they are
//! never printed.

use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};

use soar_engine::config::AppConfig;
use soar_engine::config::ini::Ini;
use soar_engine::config::secret_admin::StoreAdmin;
use soar_engine::config::secrets::configured_store;

/// What to do.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum SecretCommand {
    /// Store a secret (the value is asked for without echo, or read from stdin).
    Set {
        /// The name a `^name` value refers to, e.g. api_key_secret.
        name: String,
        /// Only for this app.config section (default: for every section).
        #[arg(long)]
        section: Option<String>,
    },
    /// List the names stored (never the values).
    List,
    /// Remove a secret.
    Delete {
        name: String,
        #[arg(long)]
        section: Option<String>,
    },
}

/// The store to write: the one `^name` lookups read first.
fn store(config_file: Option<&Path>) -> (StoreAdmin, String) {
    let home = std::env::home_dir();
    // Only the file's text: its own ^secrets may be what is being set up. Without a file,
    // only $APP_SECRETS can name the store.
    let (ini, path) = AppConfig::locate(config_file)
        .ok()
        .and_then(|path| {
            let text = std::fs::read_to_string(&path).ok()?;
            let ini = Ini::parse(text.trim_start_matches('\u{feff}'), &path).ok()?;
            Some((ini, path))
        })
        .or_else(|| {
            let path = PathBuf::from("app.config");
            Ini::parse("", &path).ok().map(|ini| (ini, path))
        })
        .expect("empty text parses");
    let env = |name: &str| std::env::var(name).ok();
    let configured = configured_store(&env, home.as_deref(), &ini, &path);
    match configured {
        Some((path, origin)) => (StoreAdmin::new(path), origin.to_string()),
        None => {
            let path = home.unwrap_or_default().join(".resilient").join("secrets");
            (StoreAdmin::new(path), "the default".to_string())
        }
    }
}

fn read_value(name: &str) -> Result<String, String> {
    if std::io::stdin().is_terminal() {
        return rpassword::prompt_password(format!("Value of {name} (not shown): "))
            .map_err(|e| format!("cannot read the value: {e}"));
    }
    let mut value = String::new();
    std::io::stdin()
        .read_to_string(&mut value)
        .map_err(|e| format!("cannot read the value from stdin: {e}"))?;
    let value = value.strip_suffix('\n').unwrap_or(&value);
    let value = value.strip_suffix('\r').unwrap_or(value);
    Ok(value.to_string())
}

pub fn run(config_file: Option<PathBuf>, command: SecretCommand) -> i32 {
    let (store, origin) = store(config_file.as_deref());
    let where_ = format!("{} ({origin})", store.path().display());
    let result = match command {
        SecretCommand::Set { name, section } => read_value(&name).and_then(|value| {
            if value.is_empty() {
                return Err("the value is empty; nothing stored".to_string());
            }
            store
                .set(section.as_deref(), &name, &value)
                .map_err(|e| e.to_string())
                .map(|()| {
                    outln!(
                        "Stored {name} in {where_}; app.config refers to it as ^{name}{}.",
                        section.map(|s| format!(" in [{s}]")).unwrap_or_default()
                    )
                })
        }),
        SecretCommand::List => store.list().map_err(|e| e.to_string()).map(|names| {
            if names.is_empty() {
                eprintln!("no secret in {where_}");
            }
            for n in names {
                outln!("{n}");
            }
        }),
        SecretCommand::Delete { name, section } => store
            .delete(section.as_deref(), &name)
            .map_err(|e| e.to_string())
            .and_then(|found| {
                if found {
                    outln!("Deleted {name} from {where_}.");
                    Ok(())
                } else {
                    Err(format!("{name} is not in {where_}"))
                }
            }),
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}
