//! The customizations of IBM SOAR function crates: the platform objects a crate
//! needs (message destinations, functions, fields, artifact types, data tables,
//! workflows and rules), declared in YAML (`fn_x/customize/*.yaml`), validated,
//! and exported as the platform's `export.res` (an org export,
//! `export_format_version` 2) that `POST /configurations/imports` accepts and
//! IBM's `resilient-sdk codegen --exportfile` reads.
//!
//! * [`Customizations::parse`] reads YAML sources (errors name `file:line:column`)
//!   and merges them; [`Customizations::merge`] merges already parsed parts.
//! * [`Customizations::validate`] checks references, names and types, collecting
//!   every problem.
//! * [`Customizations::export`] / [`Customizations::export_res`] build the export:
//!   deterministic (uuids from [`uuid_for`], small stable ids, a fixed
//!   `export_date`), so two exports are byte-identical. Workflows become BPMN XML
//!   whose function step carries static inputs and the Python scripts of
//!   [`scripts`].
//! * [`plan::plan`] compares our export with the platform's current export.
//! * [`check_input`] tells whether a handler may read an input as a given kind.

mod export;
mod model;
pub mod plan;
pub mod scripts;
mod validate;
mod yaml;

pub use export::{EXPORT_DATE, SERVER_VERSION};
pub use model::*;
pub use validate::{BUILTIN_INCIDENT_FIELDS, MAX_API_NAME_LEN, MAX_DISPLAY_NAME_LEN};

use uuid::Uuid;

/// The namespace of every uuid this crate generates (fixed forever: changing it
/// would make every object look new to the platform).
pub const UUID_NAMESPACE: Uuid = Uuid::from_u128(0x5c3b_7a0e_94d1_4f6b_8e2a_1d07_c9f4_63ab);

/// The stable uuid of an object: uuid5([`UUID_NAMESPACE`], `"<kind>/<name>"`).
///
/// Kinds used by the export: `message_destination`, `function`, `field` (name =
/// export key, e.g. `__function/hello_text`), `field_value` (name =
/// `<export key>/<label>`), `workflow`, `rule`, `artifact_type`, `data_table`.
pub fn uuid_for(kind: &str, name: &str) -> Uuid {
    Uuid::new_v5(&UUID_NAMESPACE, format!("{kind}/{name}").as_bytes())
}

/// Errors of parsing, merging and validating customizations.
#[derive(Debug, thiserror::Error)]
pub enum CustomizationError {
    /// A YAML syntax or schema error (unknown key, wrong type, unknown input type, ...).
    #[error("{file}:{line}:{column}: {message}")]
    Yaml {
        /// The file.
        file: String,
        /// 1-based line (0 when unknown).
        line: u64,
        /// 1-based column (0 when unknown).
        column: u64,
        /// What is wrong, with the enclosing object when it is known.
        message: String,
    },
    /// The same name declared twice for one kind of object.
    #[error("{second_file}: {kind} \"{name}\" is already declared in {first_file}")]
    Duplicate {
        /// The kind of object, e.g. `function`.
        kind: &'static str,
        /// The name declared twice.
        name: String,
        /// Where it was declared first.
        first_file: String,
        /// Where it was declared again.
        second_file: String,
    },
    /// Validation problems, one per line, each naming the file and the object.
    #[error("{}", .0.join("\n"))]
    Invalid(Vec<String>),
}

/// How a handler reads an input value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ValueKind {
    /// A string.
    Text,
    /// An integer.
    Integer,
    /// A floating point number.
    Float,
    /// A boolean.
    Bool,
    /// A list.
    List,
    /// Anything (raw JSON).
    Any,
}

impl ValueKind {
    fn as_str(self) -> &'static str {
        match self {
            ValueKind::Text => "text",
            ValueKind::Integer => "an integer",
            ValueKind::Float => "a float",
            ValueKind::Bool => "a boolean",
            ValueKind::List => "a list",
            ValueKind::Any => "any value",
        }
    }
}

/// Whether a handler reading `input` as `kind` is compatible with the function's
/// declared field type: text/textarea/select are read as `Text`, number as
/// `Integer` or `Float`, boolean as `Bool`, multiselect as `List`,
/// datepicker/datetimepicker as `Integer` (milliseconds); `Any` reads everything.
pub fn check_input(function: &FunctionDef, input: &str, kind: ValueKind) -> Result<(), String> {
    let Some(field) = function.input(input) else {
        return Err(format!(
            "function \"{}\" has no input '{}'",
            function.name, input
        ));
    };
    let ok = matches!(
        (field.input_type, kind),
        (_, ValueKind::Any)
            | (
                InputType::Text | InputType::Textarea | InputType::Select,
                ValueKind::Text
            )
            | (InputType::Number, ValueKind::Integer | ValueKind::Float)
            | (InputType::Boolean, ValueKind::Bool)
            | (InputType::Multiselect, ValueKind::List)
            | (
                InputType::Datepicker | InputType::Datetimepicker,
                ValueKind::Integer
            )
    );
    if ok {
        Ok(())
    } else {
        Err(format!(
            "function \"{}\": input '{}' is declared as {}; it cannot be read as {}",
            function.name,
            input,
            field.input_type,
            kind.as_str()
        ))
    }
}
