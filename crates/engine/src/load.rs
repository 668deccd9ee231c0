//! Building the linked components from app.config: each registration reads its typed sections
//! and builds its handlers, which are then checked against the platform objects it declares.

use soar_customizations::Customizations;
use soar_sdk::config::Setup;
use soar_sdk::registry::{CheckError, check_component};
use soar_sdk::{Component, ComponentRegistration, registered};

use crate::app::AppError;
use crate::config::AppConfig;

/// A component ready to serve: who it is, its handlers and its validated platform objects.
#[derive(Debug, Clone)]
pub struct LoadedComponent {
    pub name: String,
    pub version: String,
    pub component: Component,
    /// Its validated platform objects (none for components without customizations).
    pub definitions: Option<Customizations>,
}

/// Builds one registered component from app.config (reading and validating its sections).
/// Keys its sections do not know are logged as warnings.
pub fn load_component(
    registration: &ComponentRegistration,
    config: &AppConfig,
) -> Result<LoadedComponent, AppError> {
    let source = config.to_source();
    let component_error = |source| AppError::Component {
        component: registration.name.to_string(),
        source,
    };
    let setup = Setup::from_source(&source).map_err(component_error)?;
    let component = (registration.build)(&source, &setup).map_err(component_error)?;
    for warning in source.warnings() {
        tracing::warn!("{warning}");
    }
    let definitions = if registration.customizations.is_empty() {
        None
    } else {
        let definitions = registration.definitions()?;
        check_component(
            registration.name,
            &component,
            &definitions,
            registration.threat_services,
        )?;
        Some(definitions)
    };
    Ok(LoadedComponent {
        name: registration.name.to_string(),
        version: registration.version.to_string(),
        component,
        definitions,
    })
}

/// The registrations named in `only` (all when empty); an unknown name is an error that lists
/// the linked components.
pub fn select(only: &[String]) -> Result<Vec<&'static ComponentRegistration>, AppError> {
    let all = registered();
    if let Some(unknown) = only.iter().find(|n| !all.iter().any(|r| r.name == *n)) {
        return Err(AppError::UnknownComponent {
            name: unknown.clone(),
            linked: all.iter().map(|r| r.name).collect::<Vec<_>>().join(", "),
        });
    }
    Ok(all
        .into_iter()
        .filter(|r| only.is_empty() || only.iter().any(|n| n == r.name))
        .collect())
}

/// Builds every linked component (or only those named), skipping `[resilient] noload` ones.
pub fn load_components(
    config: &AppConfig,
    only: &[String],
    noload: &[String],
) -> Result<Vec<LoadedComponent>, AppError> {
    select(only)?
        .into_iter()
        .filter(|r| !noload.iter().any(|n| n == r.name))
        .map(|r| load_component(r, config))
        .collect()
}

/// Checks `component` against YAML written in a test (for components built in a test, whose
/// threat services need no declaration).
pub fn check_adhoc(
    name: &str,
    component: &Component,
    definitions: &Customizations,
) -> Result<(), CheckError> {
    let services: Vec<&str> = component
        .threat_services()
        .iter()
        .map(|t| t.name.as_str())
        .collect();
    check_component(name, component, definitions, &services)
}
