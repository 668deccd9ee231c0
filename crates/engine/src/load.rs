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
    check_filled_in(registration, config)?;
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
        let mut definitions = registration.definitions()?;
        for (declared, actual) in component.destination_names() {
            definitions.rename_destination(declared, actual);
        }
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

/// Fails when one of the component's sections still holds a placeholder of its template (a
/// required key's example marked `x-placeholder`, such as a dummy token).
fn check_filled_in(
    registration: &ComponentRegistration,
    config: &AppConfig,
) -> Result<(), AppError> {
    let template = (registration.template)();
    let named: Vec<&str> = template.iter().map(|t| t.name.as_str()).collect();
    for section in &template {
        let instances: Vec<&str> = match &section.family_prefix {
            Some(prefix) => config
                .section_names()
                .filter(|n| n.starts_with(prefix.as_str()) && !named.contains(n))
                .chain(Some(section.name.as_str()).filter(|n| config.has_section(n)))
                .collect(),
            None => vec![section.name.as_str()],
        };
        for name in instances {
            let Some(values) = config.section(name) else {
                continue;
            };
            let unfilled = section.keys.iter().find(|k| {
                k.placeholder && values.get(&k.name).map(str::trim) == Some(k.value.as_str())
            });
            if let Some(key) = unfilled {
                return Err(AppError::Placeholder {
                    component: registration.name.to_string(),
                    file: config.path().to_path_buf(),
                    section: name.to_string(),
                    key: key.name.clone(),
                });
            }
        }
    }
    Ok(())
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

/// Builds the components named in `only`, or when it is empty every linked one but those in
/// `[resilient] noload` (naming a component with `-l` loads it whatever noload says).
pub fn load_components(
    config: &AppConfig,
    only: &[String],
    noload: &[String],
) -> Result<Vec<LoadedComponent>, AppError> {
    select(only)?
        .into_iter()
        .filter(|r| !only.is_empty() || !noload.iter().any(|n| n == r.name))
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
