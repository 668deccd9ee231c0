//! `host customize`: export the linked components' platform objects as an `export.res`
//! (`--export FILE`), or push them to the platform in app.config: plan, confirm, import, accept,
//! grant queue access. Running it twice changes nothing the second time.

use std::path::PathBuf;

use soar_engine::app;
use soar_engine::config::AppConfig;
use soar_engine::customize::{self, CustomizeError};
use soar_rest::RestClient;

use super::{confirm, load_config, report};

pub async fn run(
    config_file: Option<PathBuf>,
    only: &[String],
    yes: bool,
    export: Option<PathBuf>,
) -> i32 {
    // Components are built from app.config when pushing; an export needs no platform.
    let config = if export.is_some() {
        AppConfig::locate(config_file.as_deref())
            .and_then(|p| AppConfig::load(&p))
            .unwrap_or_else(|_| AppConfig::empty())
    } else {
        match load_config(config_file.as_deref()) {
            Ok((c, _)) => c,
            Err(code) => return code,
        }
    };
    let noload = soar_engine::config::ResilientOptions::from_config(&config)
        .map(|o| o.noload)
        .unwrap_or_default();
    let components = match soar_engine::load_components(&config, only, &noload) {
        Ok(c) => c,
        Err(e) => {
            report("", &e);
            return 1;
        }
    };
    let names: Vec<&str> = components
        .iter()
        .filter(|c| c.definitions.is_some())
        .map(|c| c.name.as_str())
        .collect();
    if names.is_empty() {
        eprintln!("error: none of the selected components has customizations");
        return 1;
    }
    let definitions =
        match customize::merged(components.iter().filter_map(|c| c.definitions.clone())) {
            Ok(d) => d,
            Err(e) => {
                report("", &e);
                return 1;
            }
        };

    if let Some(path) = export {
        return match std::fs::write(&path, definitions.export_res()) {
            Ok(()) => {
                outln!(
                    "Wrote {} with the customizations of {}.",
                    path.display(),
                    names.join(", ")
                );
                0
            }
            Err(e) => {
                eprintln!("error: cannot write {}: {e}", path.display());
                1
            }
        };
    }

    let opts = match soar_engine::config::ResilientOptions::from_config(&config) {
        Ok(o) => o,
        Err(e) => {
            report("", &e);
            return 1;
        }
    };
    let rest = match app::rest_config(&opts) {
        Ok(rc) => RestClient::connect(rc).await.map_err(app::AppError::from),
        Err(e) => Err(e),
    };
    let rest = match rest {
        Ok(r) => r,
        Err(e) => {
            report("", &e);
            return e.exit_code();
        }
    };
    outln!(
        "Customizations of {} for {} org '{}':",
        names.join(", "),
        rest.base_url(),
        rest.org_name()
    );
    let decide = |_: &customize::model::plan::Plan| yes || confirm("Import these changes?");
    let result = customize::push(&rest, &definitions, decide, &mut |line| outln!("{line}")).await;
    match result {
        Ok(_) => 0,
        Err(CustomizeError::Declined(why)) => {
            eprintln!("{why}");
            1
        }
        Err(e) => {
            report("", &e);
            match e {
                CustomizeError::Rest(r) => r.exit_code(),
                _ => 1,
            }
        }
    }
}
