//! Reading and writing settings: TOML text and files to a [`Setting`] and back, and the
//! hand-written serde forms of the values that take several shapes ([`ParamSource`]: a number, a
//! list, a matrix, `"reference"` or a sampled range; [`NodeValues`]: a number or a list), which
//! print integers as integers so that a written setting reads like a hand-written one.

use std::fmt;
use std::path::Path;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Unexpected, Visitor};
use serde::ser::{SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};

use super::error::ConfigError;
use super::schema::{NodeValues, ParamSource, SampledRange, Setting};

impl Setting {
    /// Parses and validates a TOML setting.
    pub fn from_toml_str(text: &str) -> Result<Setting, ConfigError> {
        let setting: Setting =
            toml::from_str(text).map_err(|e| ConfigError::Parse(e.to_string()))?;
        setting.validate()?;
        Ok(setting)
    }

    /// Reads, parses and validates a TOML setting file. A relative `demand.file` or
    /// `demand.calendar.file` is resolved against the setting file's directory (and made
    /// absolute, so that a run directory's copy of the setting still finds it); elsewhere (TOML
    /// text, overrides, training configurations) it is relative to the working directory.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Setting, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let mut setting: Setting =
            toml::from_str(&text).map_err(|e| ConfigError::Parse(e.to_string()))?;
        setting.resolve_data_paths(path.parent().unwrap_or(Path::new("")));
        setting.validate()?;
        Ok(setting)
    }

    /// Makes the relative data paths (`demand.file`, `demand.calendar.file`) absolute against
    /// `base`, with `.` and `..` components removed (lexically), so that the same file reached
    /// from two directories has one path. Absolute paths are left as they are.
    pub fn resolve_data_paths(&mut self, base: &Path) {
        let resolve = |file: &mut std::path::PathBuf| {
            if file.is_relative() {
                let joined = base.join(&*file);
                *file = normalize_lexically(&std::path::absolute(&joined).unwrap_or(joined));
            }
        };
        if let Some(file) = &mut self.demand.file {
            resolve(file);
        }
        if let Some(calendar) = &mut self.demand.calendar {
            resolve(&mut calendar.file);
        }
    }

    /// The setting as TOML text (round-trips through [`Setting::from_toml_str`]).
    pub fn to_toml_string(&self) -> Result<String, ConfigError> {
        toml::to_string(self).map_err(|e| ConfigError::Parse(e.to_string()))
    }
}

/// `path` without `.` components and with each `..` removing the component before it (no
/// file-system access: a symbolic link followed by `..` is not resolved).
pub fn normalize_lexically(path: &Path) -> std::path::PathBuf {
    use std::path::Component;
    let mut out = std::path::PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                if matches!(out.components().next_back(), Some(Component::Normal(_))) {
                    out.pop();
                } else {
                    out.push(component);
                }
            }
            other => out.push(other),
        }
    }
    out
}

const PARAM_SOURCE_EXPECTING: &str = "a number, a list with one number per store, a per-edge matrix \
     [[..], ..] (store lead times only), \"reference\", or a table { sample = \"per_store\" | \
     \"per_sample\", range = [low, high], seed = n }";

/// A number that prints as an integer when it is one (`3`, not `3.0`).
struct Number(f64);

impl Serialize for Number {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let v = self.0;
        if v.fract() == 0.0 && v.abs() < 9.0e15 {
            serializer.serialize_i64(v as i64)
        } else {
            serializer.serialize_f64(v)
        }
    }
}

/// Serialises a list of numbers with [`Number`].
pub(super) fn serialize_numbers<S: Serializer>(
    values: &[f64],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let mut seq = serializer.serialize_seq(Some(values.len()))?;
    for &v in values {
        seq.serialize_element(&Number(v))?;
    }
    seq.end()
}

impl Serialize for ParamSource {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            ParamSource::Constant(v) => Number(*v).serialize(serializer),
            ParamSource::PerStore(values) => serialize_numbers(values, serializer),
            ParamSource::PerEdge(rows) => {
                let rows: Vec<Vec<Number>> = rows
                    .iter()
                    .map(|row| row.iter().map(|&v| Number(v)).collect())
                    .collect();
                rows.serialize(serializer)
            }
            ParamSource::Sampled(range) => range.serialize(serializer),
            ParamSource::Reference => serializer.serialize_str("reference"),
        }
    }
}

/// A list element of a [`ParamSource`]: a number (per-store list) or a row (per-edge matrix).
enum NumberOrRow {
    Number(f64),
    Row(Vec<f64>),
}

impl<'de> Deserialize<'de> for NumberOrRow {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = NumberOrRow;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number or a list of numbers")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<NumberOrRow, E> {
                Ok(NumberOrRow::Number(v as f64))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<NumberOrRow, E> {
                Ok(NumberOrRow::Number(v as f64))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<NumberOrRow, E> {
                Ok(NumberOrRow::Number(v))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<NumberOrRow, A::Error> {
                let mut row = Vec::new();
                while let Some(x) = seq.next_element::<f64>()? {
                    row.push(x);
                }
                Ok(NumberOrRow::Row(row))
            }
        }
        deserializer.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for ParamSource {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ParamSource;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(PARAM_SOURCE_EXPECTING)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ParamSource, E> {
                Ok(ParamSource::Constant(v as f64))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ParamSource, E> {
                Ok(ParamSource::Constant(v as f64))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<ParamSource, E> {
                Ok(ParamSource::Constant(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ParamSource, E> {
                if v == "reference" {
                    Ok(ParamSource::Reference)
                } else {
                    Err(E::invalid_value(Unexpected::Str(v), &self))
                }
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ParamSource, A::Error> {
                let mut numbers = Vec::new();
                let mut rows = Vec::new();
                while let Some(item) = seq.next_element::<NumberOrRow>()? {
                    match item {
                        NumberOrRow::Number(x) => numbers.push(x),
                        NumberOrRow::Row(r) => rows.push(r),
                    }
                }
                match (numbers.is_empty(), rows.is_empty()) {
                    (false, true) => Ok(ParamSource::PerStore(numbers)),
                    (true, false) => Ok(ParamSource::PerEdge(rows)),
                    (true, true) => Ok(ParamSource::PerStore(Vec::new())),
                    (false, false) => Err(de::Error::custom(
                        "a list mixes numbers and lists; use either one number per store or \
                         one row per store",
                    )),
                }
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<ParamSource, A::Error> {
                SampledRange::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(ParamSource::Sampled)
            }
        }
        deserializer.deserialize_any(V)
    }
}

impl Serialize for NodeValues {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            NodeValues::All(v) => Number(*v).serialize(serializer),
            NodeValues::Each(values) => serialize_numbers(values, serializer),
        }
    }
}

impl<'de> Deserialize<'de> for NodeValues {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = NodeValues;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number (all warehouses) or a list with one number per warehouse")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<NodeValues, E> {
                Ok(NodeValues::All(v as f64))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<NodeValues, E> {
                Ok(NodeValues::All(v as f64))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<NodeValues, E> {
                Ok(NodeValues::All(v))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<NodeValues, A::Error> {
                let mut values = Vec::new();
                while let Some(x) = seq.next_element::<f64>()? {
                    values.push(x);
                }
                Ok(NodeValues::Each(values))
            }
        }
        deserializer.deserialize_any(V)
    }
}
