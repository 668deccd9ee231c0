//! A serde deserializer over one section's `(key, value)` strings, with configparser's string
//! semantics: numbers and booleans are parsed from text, an empty value is `None`, a sequence is a
//! comma-separated list (items trimmed, empty ones dropped), an enum is its variant's name.
//! `#[serde(flatten)]` is not supported (serde would buffer values without knowing their types).

use std::fmt;
use std::path::Path;

use serde::de::value::StrDeserializer;
use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer, MapAccess, Visitor};

use super::{ConfigError, is_secret_key};

/// A failed read of one section: which key, and why.
#[derive(Debug)]
pub(crate) struct Error {
    key: Option<String>,
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    Missing(String),
    Message(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Missing(key) => write!(f, "{key}: required value is missing"),
            Kind::Message(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for Error {}

impl de::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Error {
            key: None,
            kind: Kind::Message(msg.to_string()),
        }
    }

    fn missing_field(field: &'static str) -> Self {
        Error {
            key: None,
            kind: Kind::Missing(field.to_string()),
        }
    }
}

impl Error {
    pub(crate) fn into_config_error(self, file: &Path, section: &str) -> ConfigError {
        match self.kind {
            Kind::Missing(key) => ConfigError::Missing {
                file: file.to_path_buf(),
                section: section.to_string(),
                key,
            },
            Kind::Message(reason) => ConfigError::Invalid {
                file: file.to_path_buf(),
                section: section.to_string(),
                key: self.key.unwrap_or_else(|| "(section)".into()),
                reason,
            },
        }
    }
}

/// Reads a section's entries into `T`.
pub(crate) fn from_entries<T: DeserializeOwned>(entries: &[(String, String)]) -> Result<T, Error> {
    T::deserialize(SectionDe { entries })
}

struct SectionDe<'a> {
    entries: &'a [(String, String)],
}

impl<'de> de::Deserializer<'de> for SectionDe<'_> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_map(Entries {
            iter: self.entries.iter(),
            current: None,
        })
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map struct enum identifier
        ignored_any
    }
}

struct Entries<'a> {
    iter: std::slice::Iter<'a, (String, String)>,
    current: Option<&'a (String, String)>,
}

impl<'de> MapAccess<'de> for Entries<'_> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        match self.iter.next() {
            Some(entry) => {
                self.current = Some(entry);
                let key: StrDeserializer<'_, Error> = entry.0.as_str().into_deserializer();
                seed.deserialize(key).map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let Some((key, value)) = self.current.take() else {
            return Err(de::Error::custom("a value without a key"));
        };
        seed.deserialize(ValueDe { key, value }).map_err(|mut e| {
            e.key.get_or_insert_with(|| key.clone());
            e
        })
    }
}

/// One value of key `key`.
struct ValueDe<'a> {
    key: &'a str,
    value: &'a str,
}

impl ValueDe<'_> {
    fn invalid(&self, what: &str, detail: impl fmt::Display) -> Error {
        let reason = if is_secret_key(self.key) {
            format!("not a valid {what}")
        } else {
            format!("invalid value '{}': {detail}", self.value)
        };
        de::Error::custom(reason)
    }

    fn parse<T: std::str::FromStr>(&self, what: &str) -> Result<T, Error>
    where
        T::Err: fmt::Display,
    {
        self.value
            .trim()
            .parse::<T>()
            .map_err(|e| self.invalid(what, e))
    }
}

macro_rules! parse_number {
    ($($method:ident $visit:ident $ty:ty),* $(,)?) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            visitor.$visit(self.parse::<$ty>(stringify!($ty))?)
        }
    )*};
}

impl<'de> de::Deserializer<'de> for ValueDe<'_> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_str(self.value)
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match parse_bool(self.value) {
            Some(b) => visitor.visit_bool(b),
            None => Err(self.invalid(
                "boolean",
                "expected a boolean (true/false, yes/no, on/off, 1/0)",
            )),
        }
    }

    parse_number! {
        deserialize_i8 visit_i8 i8, deserialize_i16 visit_i16 i16, deserialize_i32 visit_i32 i32,
        deserialize_i64 visit_i64 i64, deserialize_u8 visit_u8 u8, deserialize_u16 visit_u16 u16,
        deserialize_u32 visit_u32 u32, deserialize_u64 visit_u64 u64, deserialize_f32 visit_f32 f32,
        deserialize_f64 visit_f64 f64,
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let mut chars = self.value.chars();
        match (chars.next(), chars.next()) {
            (Some(c), None) => visitor.visit_char(c),
            _ => Err(self.invalid("character", "expected exactly one character")),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        if self.value.trim().is_empty() {
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let key = self.key;
        let items = self
            .value
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(move |value| ValueDe { key, value });
        visitor.visit_seq(de::value::SeqDeserializer::new(items))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let value: StrDeserializer<'_, Error> = self.value.trim().into_deserializer();
        visitor.visit_enum(value)
    }

    serde::forward_to_deserialize_any! {
        i128 u128 str string bytes byte_buf unit_struct tuple tuple_struct map struct identifier
        ignored_any
    }
}

impl<'de, 'a> IntoDeserializer<'de, Error> for ValueDe<'a> {
    type Deserializer = ValueDe<'a>;

    fn into_deserializer(self) -> Self::Deserializer {
        self
    }
}

/// Python-ish booleans: `1/true/yes/on`, `0/false/no/off`, any case.
pub(crate) fn parse_bool(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "lowercase")]
    enum Mode {
        Enable,
        Disable,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Sample {
        name: String,
        count: u32,
        #[serde(default)]
        flag: bool,
        ratio: Option<f64>,
        empty: Option<String>,
        #[serde(default)]
        list: Vec<String>,
        mode: Option<Mode>,
        secret: Option<crate::Secret>,
    }

    fn entries(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn read(pairs: &[(&str, &str)]) -> Result<Sample, ConfigError> {
        from_entries::<Sample>(&entries(pairs))
            .map_err(|e| e.into_config_error(Path::new("app.config"), "s"))
    }

    #[test]
    fn reads_strings_as_configparser_values() {
        let s = read(&[
            ("name", "x"),
            ("count", "5"),
            ("flag", "Yes"),
            ("ratio", "0.5"),
            ("empty", ""),
            ("list", " a, b ,,c "),
            ("mode", "disable"),
            ("secret", "hunter2"),
        ])
        .unwrap();
        assert_eq!(s.count, 5);
        assert!(s.flag);
        assert_eq!(s.ratio, Some(0.5));
        assert_eq!(s.empty, None);
        assert_eq!(s.list, ["a", "b", "c"]);
        assert_eq!(s.mode, Some(Mode::Disable));
        assert_eq!(s.secret.unwrap().expose(), "hunter2");
    }

    #[test]
    fn errors_name_the_key_and_hide_secrets() {
        let e = read(&[("name", "x"), ("count", "many")]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "app.config: [s] count: invalid value 'many': invalid digit found in string"
        );
        let e = read(&[("count", "1")]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "app.config: [s] name: required value is missing"
        );
        let e = read(&[("name", "x"), ("count", "1"), ("flag", "maybe")]).unwrap_err();
        assert!(
            e.to_string().contains("[s] flag: invalid value 'maybe'"),
            "{e}"
        );
        let e = read(&[("name", "x"), ("count", "1"), ("mode", "sometimes")]).unwrap_err();
        assert!(e.to_string().contains("[s] mode: unknown variant"), "{e}");
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Pin {
            api_secret: u32,
        }
        let e = from_entries::<Pin>(&entries(&[("api_secret", "hunter2")]))
            .unwrap_err()
            .into_config_error(Path::new("f"), "s")
            .to_string();
        assert_eq!(e, "f: [s] api_secret: not a valid u32");
    }
}
