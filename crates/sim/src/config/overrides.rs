//! Overrides: dotted `key=value` changes to a setting (`stores.underage_cost=19`, or a shortcut
//! such as `lead_time=7`), applied to its TOML form, deserialised and validated together; on error
//! the setting is unchanged. The setting's description gets a "(overridden: k=v, …)" note.

use super::error::ConfigError;
use super::schema::Setting;

/// Setting-level shortcut keys accepted by [`Setting::apply_override`] and the full keys they stand for.
pub const OVERRIDE_SHORTCUTS: &[(&str, &str)] = &[
    ("n_stores", "network.n_stores"),
    ("lead_time", "stores.lead_time"),
    ("holding_cost", "stores.holding_cost"),
    ("underage_cost", "stores.underage_cost"),
    ("correlation", "demand.correlation"),
];

/// Opens the note that [`Setting::apply_override`] appends to a description.
const OVERRIDE_NOTE: &str = " (overridden: ";

/// `description` with `pairs` added to its trailing "(overridden: k=v, …)" note, so that a
/// report never shows the embedded description ("L = 4, p = 9") of a setting whose parameters
/// were changed. A key given again replaces its earlier value in the note.
fn note_overrides(description: &str, pairs: &[(&str, &str)]) -> String {
    let (base, mut notes): (&str, Vec<String>) = match description.rfind(OVERRIDE_NOTE) {
        Some(i) if description.ends_with(')') => (
            &description[..i],
            description[i + OVERRIDE_NOTE.len()..description.len() - 1]
                .split(", ")
                .map(str::to_string)
                .collect(),
        ),
        _ => (description, Vec::new()),
    };
    for (key, value) in pairs {
        notes.retain(|n| n.split_once('=').map(|(k, _)| k) != Some(*key));
        notes.push(format!("{key}={value}"));
    }
    format!("{base}{OVERRIDE_NOTE}{})", notes.join(", "))
}

impl Setting {
    /// Applies one dotted override, e.g. `apply_override("stores.underage_cost", "19")`, then
    /// re-validates. The value is read as a TOML value (`19`, `0.5`, `[1, 2]`, `"reference"`,
    /// `{ sample = "per_store", range = [1, 2] }`); anything that is not TOML is taken as a
    /// string (so `unmet_demand=lost` works). Shortcut keys: see [`OVERRIDE_SHORTCUTS`]. On
    /// error the setting is unchanged.
    pub fn apply_override(&mut self, key: &str, value: &str) -> Result<(), ConfigError> {
        self.apply_pairs(&[(key, value)])
    }

    /// Applies `key=value` overrides together (in order), then validates once — so
    /// `splits.test.n_samples=100` and `splits.test.batch_size=50` can be given in either order.
    /// On error the setting is unchanged.
    pub fn apply_overrides<I, T>(&mut self, overrides: I) -> Result<(), ConfigError>
    where
        I: IntoIterator<Item = T>,
        T: AsRef<str>,
    {
        let items: Vec<String> = overrides
            .into_iter()
            .map(|item| item.as_ref().to_string())
            .collect();
        let mut pairs = Vec::with_capacity(items.len());
        for item in &items {
            let Some((key, value)) = item.split_once('=') else {
                return Err(ConfigError::Override {
                    key: item.clone(),
                    message: "expected `key=value`".to_string(),
                });
            };
            pairs.push((key.trim(), value.trim()));
        }
        self.apply_pairs(&pairs)
    }

    /// Sets every `(key, value)` in the TOML form of the setting, deserialises and validates.
    fn apply_pairs(&mut self, pairs: &[(&str, &str)]) -> Result<(), ConfigError> {
        let mut root = toml::Value::try_from(&*self).map_err(|e| ConfigError::Override {
            key: String::new(),
            message: format!("cannot serialise the setting: {e}"),
        })?;
        for &(key, value) in pairs {
            set_override(&mut root, key, value)?;
        }
        let keys: Vec<&str> = pairs.iter().map(|(k, _)| *k).collect();
        let updated: Setting = root.try_into().map_err(|e: toml::de::Error| {
            let mut message = e.message().trim().to_string();
            let top_level = pairs.iter().any(|(k, _)| !k.contains('.'));
            if top_level && message.contains("unknown field") {
                let shortcuts: Vec<&str> = OVERRIDE_SHORTCUTS.iter().map(|(s, _)| *s).collect();
                message.push_str(&format!(
                    " (top-level shortcut keys: {})",
                    shortcuts.join(", ")
                ));
            }
            ConfigError::Override {
                key: keys.join(", "),
                message,
            }
        })?;
        updated.validate()?;
        let description_overridden = pairs.iter().any(|(k, _)| *k == "description");
        *self = updated;
        if !description_overridden {
            self.description = note_overrides(&self.description, pairs);
        }
        Ok(())
    }
}

/// Sets `key` (dotted, or a shortcut) to `value` inside the TOML form of a setting, creating
/// missing tables on the way.
fn set_override(root: &mut toml::Value, key: &str, value: &str) -> Result<(), ConfigError> {
    let override_error = |message: String| ConfigError::Override {
        key: key.to_string(),
        message,
    };
    let full_key = OVERRIDE_SHORTCUTS
        .iter()
        .find(|(short, _)| *short == key)
        .map_or(key, |(_, full)| *full);
    let path: Vec<&str> = full_key.split('.').collect();
    if path.iter().any(|p| p.is_empty()) {
        return Err(override_error(
            "empty path component; write keys like `stores.lead_time`".to_string(),
        ));
    }
    let mut table = root;
    for (depth, component) in path.iter().enumerate() {
        let here = path[..depth].join(".");
        let map = match table {
            toml::Value::Table(map) => map,
            _ => {
                return Err(override_error(format!(
                    "`{here}` is a value, not a table; it has no key `{component}`"
                )));
            }
        };
        if depth + 1 == path.len() {
            map.insert((*component).to_string(), parse_override_value(value));
            break;
        }
        table = map
            .entry((*component).to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    }
    Ok(())
}

/// Parses an override value as TOML, falling back to a plain string.
fn parse_override_value(value: &str) -> toml::Value {
    toml::from_str::<toml::Table>(&format!("v = {value}"))
        .ok()
        .and_then(|mut table| table.remove("v"))
        .unwrap_or_else(|| toml::Value::String(value.to_string()))
}
