//! Input schemas of typed handlers, traced from their `Deserialize` implementation, so that
//! validation can check every input a handler reads against its function's definition before
//! anything is sent to the platform.

use serde::de::DeserializeOwned;
use serde_reflection::{ContainerFormat, Format, Samples, Tracer, TracerConfig};
pub use soar_customizations::ValueKind;

/// The inputs a typed handler reads, with the kind of value it expects for each.
#[derive(Debug, Clone, PartialEq)]
pub struct InputSchema {
    pub inputs: Vec<(String, ValueKind)>,
}

fn kind(format: &Format) -> ValueKind {
    match format {
        Format::Str | Format::Char => ValueKind::Text,
        Format::I8
        | Format::I16
        | Format::I32
        | Format::I64
        | Format::I128
        | Format::U8
        | Format::U16
        | Format::U32
        | Format::U64
        | Format::U128 => ValueKind::Integer,
        Format::F32 | Format::F64 => ValueKind::Float,
        Format::Bool => ValueKind::Bool,
        Format::Seq(_) => ValueKind::List,
        Format::Option(inner) => kind(inner),
        _ => ValueKind::Any,
    }
}

/// [`trace`] of `I`, computed once per type (`None` when it cannot be traced).
pub fn cached<I: DeserializeOwned + 'static>() -> Option<std::sync::Arc<InputSchema>> {
    use std::any::TypeId;
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex, OnceLock};
    static CACHE: OnceLock<Mutex<HashMap<TypeId, Option<Arc<InputSchema>>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Mutex::default);
    let mut cache = cache.lock().unwrap_or_else(|p| p.into_inner());
    cache
        .entry(TypeId::of::<I>())
        .or_insert_with(|| trace::<I>().ok().map(Arc::new))
        .clone()
}

/// Traces the fields of a struct of inputs (`#[derive(Deserialize)] struct MyInputs { ... }`).
pub fn trace<I: DeserializeOwned>() -> Result<InputSchema, String> {
    let mut tracer = Tracer::new(TracerConfig::default());
    let samples = Samples::new();
    let (format, _) = tracer
        .trace_type::<I>(&samples)
        .map_err(|e| format!("cannot trace the inputs type: {e}"))?;
    let registry = tracer.registry_unchecked();
    let Format::TypeName(name) = format else {
        return Err("the inputs type must be a struct with named fields".into());
    };
    match registry.get(&name) {
        Some(ContainerFormat::Struct(fields)) => Ok(InputSchema {
            inputs: fields
                .iter()
                .map(|f| (f.name.clone(), kind(&f.value)))
                .collect(),
        }),
        _ => Err(format!(
            "the inputs type {name} must be a struct with named fields"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize)]
    #[allow(dead_code)]
    struct Sample {
        text: Option<String>,
        count: i64,
        ratio: Option<f64>,
        flag: bool,
        names: Vec<String>,
        #[serde(rename = "renamed_input")]
        other: Option<String>,
    }

    #[test]
    fn traces_fields_and_kinds() {
        let schema = trace::<Sample>().unwrap();
        assert_eq!(
            schema.inputs,
            vec![
                ("text".to_string(), ValueKind::Text),
                ("count".to_string(), ValueKind::Integer),
                ("ratio".to_string(), ValueKind::Float),
                ("flag".to_string(), ValueKind::Bool),
                ("names".to_string(), ValueKind::List),
                ("renamed_input".to_string(), ValueKind::Text),
            ]
        );
    }
}
