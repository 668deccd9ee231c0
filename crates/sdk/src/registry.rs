//! Component registration through `inventory`, and the checks of a component against the
//! platform objects it declares in YAML.
//!
//! A function crate registers itself once with [`register_component!`](crate::register_component);
//! the host iterates [`registered`] (sorted by name) and knows no integration by name. The crate
//! is linked in by a cargo feature of the host: without a `use fn_x as _;` in the binary (the
//! host's build script writes it) rustc drops the crate and its registration silently.

use soar_customizations::{Customizations, Source, check_input};

use crate::component::Component;
use crate::config::{ConfigError, ConfigSource, Setup, TemplateSection};
use crate::message::rule_key;

/// A customization file embedded in a function crate (see [`embed_customizations!`](crate::embed_customizations)).
#[derive(Debug, Clone, Copy)]
pub struct EmbeddedFile {
    /// Where it came from, for messages (`fn_hello/customize/fn_hello.yaml`).
    pub path: &'static str,
    pub text: &'static str,
}

/// Embeds a crate's customization YAML files at build time.
#[macro_export]
macro_rules! embed_customizations {
    ($($file:literal),* $(,)?) => {
        &[$($crate::EmbeddedFile {
            path: concat!(env!("CARGO_PKG_NAME"), "/", $file),
            text: include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/", $file)),
        }),*]
    };
}

/// What a function crate tells the host about itself (written by
/// [`register_component!`](crate::register_component)).
#[derive(Debug)]
pub struct ComponentRegistration {
    /// The component's name, conventionally the crate name (`fn_slack`).
    pub name: &'static str,
    /// The crate version, reported in result metrics.
    pub version: &'static str,
    /// One line for `host list`.
    pub description: &'static str,
    /// Its app.config sections' templates (what `host config -c|-u` writes).
    pub template: fn() -> Vec<TemplateSection>,
    /// Reads its sections and builds its handlers.
    pub build: fn(&ConfigSource, &Setup) -> Result<Component, ConfigError>,
    /// Its platform objects (message destinations, functions, fields, rules, workflows).
    pub customizations: &'static [EmbeddedFile],
    /// The custom threat services it serves (names under `/cts/`).
    pub threat_services: &'static [&'static str],
}

inventory::collect!(ComponentRegistration);

/// Every linked component, sorted by name.
pub fn registered() -> Vec<&'static ComponentRegistration> {
    let mut all: Vec<_> = inventory::iter::<ComponentRegistration>
        .into_iter()
        .collect();
    all.sort_by_key(|r| r.name);
    all
}

/// The registration of component `name`.
pub fn find(name: &str) -> Option<&'static ComponentRegistration> {
    registered().into_iter().find(|r| r.name == name)
}

/// Registers a component with the host. Use once per function crate:
///
/// ```
/// use soar_sdk::prelude::*;
///
/// soar_sdk::register_component! {
///     name: "fn_doc",
///     description: "Echoes its inputs",
///     config: (),                          // a Section, an Option of one, a Sections type, or ()
///     build: build,                        // fn(config, &Setup) -> Result<Component<S>, ConfigError>
///     customizations: [],                  // e.g. ["customize/fn_doc.yaml"]
///     threat_services: [],                 // custom threat services it serves, if any
/// }
///
/// fn build(_: (), _: &Setup) -> Result<Component, ConfigError> {
///     Ok(Component::new().function("fn_doc", |inputs: Inputs| async move {
///         Ok(FunctionResult::new(inputs.get("text").cloned().unwrap_or_default()))
///     }))
/// }
///
/// assert!(soar_sdk::registered().iter().any(|r| r.name == "fn_doc"));
/// ```
#[macro_export]
macro_rules! register_component {
    (
        name: $name:expr,
        description: $description:expr,
        config: $config:ty,
        build: $build:path,
        customizations: [$($file:literal),* $(,)?]
        $(, threat_services: [$($service:literal),* $(,)?])?
        $(,)?
    ) => {
        const _: () = {
            fn __soar_build(
                source: &$crate::config::ConfigSource,
                setup: &$crate::config::Setup,
            ) -> ::core::result::Result<$crate::Component, $crate::ConfigError> {
                let config = <$config as $crate::config::Sections>::load(source)?;
                ::core::result::Result::map($build(config, setup), $crate::Component::erase)
            }
            $crate::inventory::submit! {
                $crate::ComponentRegistration {
                    name: $name,
                    version: env!("CARGO_PKG_VERSION"),
                    description: $description,
                    template: <$config as $crate::config::Sections>::template,
                    build: __soar_build,
                    customizations: $crate::embed_customizations!($($file),*),
                    threat_services: &[$($($service),*)?],
                }
            }
        };
    };
}

/// Why a component's declarations do not hold together.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("component {component}: {source}")]
    Definitions {
        component: String,
        #[source]
        source: soar_customizations::CustomizationError,
    },
    #[error("component {component}: {problems}")]
    Handlers { component: String, problems: String },
}

impl ComponentRegistration {
    /// Its embedded YAML, parsed and validated.
    pub fn definitions(&self) -> Result<Customizations, CheckError> {
        let sources: Vec<Source<'_>> = self
            .customizations
            .iter()
            .map(|f| Source {
                file: f.path,
                text: f.text,
            })
            .collect();
        Customizations::parse(&sources)
            .and_then(|c| c.validate().map(|()| c))
            .map_err(|source| CheckError::Definitions {
                component: self.name.to_string(),
                source,
            })
    }

    /// The template's sections as a config source, as an operator who filled in the template
    /// would have it (`all`: the commented keys too).
    pub fn template_source(&self, all: bool) -> ConfigSource {
        (self.template)()
            .iter()
            .fold(ConfigSource::new("(template)"), |source, section| {
                source.with_section(
                    section.name.clone(),
                    crate::config::template::entries(section, all),
                )
            })
    }
}

/// Checks a built component against its definitions: every function it serves is defined and
/// every input a typed handler reads is one of that function's inputs with a compatible type;
/// every rule it handles is defined and sends its messages to the handler's destination; every
/// threat service it serves is declared in its registration.
pub fn check_component(
    name: &str,
    component: &Component,
    definitions: &Customizations,
    threat_services: &[&str],
) -> Result<(), CheckError> {
    let mut problems = Vec::new();
    for f in component.functions() {
        let Some(def) = definitions.function(&f.name) else {
            problems.push(format!(
                "function '{}' has a handler but no definition in the crate's customizations",
                f.name
            ));
            continue;
        };
        if let Some(schema) = &f.schema {
            for (input, kind) in &schema.inputs {
                if let Err(e) = check_input(def, input, *kind) {
                    problems.push(format!("function '{}': {e}", f.name));
                }
            }
        }
    }
    for r in component.rules() {
        let key = rule_key(&r.rule);
        match definitions.rules.iter().find(|d| rule_key(&d.name) == key) {
            None => problems.push(format!(
                "rule '{}' has a handler but no definition in the crate's customizations (rules: {})",
                r.rule,
                definitions
                    .rules
                    .iter()
                    .map(|d| format!("'{}'", d.name))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            Some(d) if !d.destinations.contains(&r.destination) => problems.push(format!(
                "rule '{}' is handled on message destination '{}' but its definition sends it to {}",
                r.rule,
                r.destination,
                if d.destinations.is_empty() {
                    "no destination".to_string()
                } else {
                    d.destinations.join(", ")
                }
            )),
            Some(_) => {}
        }
    }
    for t in component.threat_services() {
        if !threat_services.contains(&t.name.as_str()) {
            problems.push(format!(
                "threat service '{}' is served but not declared in register_component!'s threat_services",
                t.name
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(CheckError::Handlers {
            component: name.to_string(),
            problems: problems.join("; "),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Note;

    const YAML: &str = r#"
message_destinations:
  - name: q
rules:
  - name: "Note added"
    type: automatic
    object_type: note
    destinations: [q]
"#;

    fn definitions() -> Customizations {
        let c = Customizations::parse(&[Source {
            file: "t.yaml",
            text: YAML,
        }])
        .unwrap();
        c.validate().unwrap();
        c
    }

    async fn on_note(note: Note) -> Result<String, crate::FunctionError> {
        Ok(note.text)
    }

    #[test]
    fn rule_handlers_are_checked_against_the_yaml() {
        let ok = Component::new().rule("q", "Note Added", on_note);
        check_component("c", &ok, &definitions(), &[]).unwrap();
        let typo = Component::new().rule("q", "Note adde", on_note);
        let e = check_component("c", &typo, &definitions(), &[])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("rule 'Note adde' has a handler but no definition")
                && e.contains("'Note added'"),
            "{e}"
        );
        let elsewhere = Component::new().rule("other", "Note added", on_note);
        let e = check_component("c", &elsewhere, &definitions(), &[])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("handled on message destination 'other' but its definition sends it to q"),
            "{e}"
        );
    }
}
