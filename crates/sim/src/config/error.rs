//! The one error type of settings: [`ConfigError`], which names the field, the value and what is
//! allowed. Every check of [`super`] reports through it; nothing in a setting panics.

/// Everything that can be wrong with a setting. Never a panic.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The setting file could not be read.
    #[error("cannot read setting file `{path}`: {source}")]
    Io {
        /// The path that was read.
        path: String,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The text is not TOML, or a key/type does not match the schema.
    #[error("setting does not parse: {0}")]
    Parse(String),
    /// A field has a value outside its allowed set.
    #[error("`{field}`: {message}")]
    Invalid {
        /// Dotted path of the field, e.g. `stores.lead_time`.
        field: String,
        /// What is wrong and what is allowed.
        message: String,
    },
    /// A `key=value` override could not be applied.
    #[error("override `{key}`: {message}")]
    Override {
        /// The key as given.
        key: String,
        /// What is wrong (lists the valid keys when the key is unknown).
        message: String,
    },
    /// No embedded setting has this name.
    #[error("unknown setting `{name}`; valid names: {valid}")]
    UnknownSetting {
        /// The name asked for.
        name: String,
        /// Comma-separated valid names.
        valid: String,
    },
}

impl ConfigError {
    /// The dotted field name for [`ConfigError::Invalid`], if any.
    pub fn field(&self) -> Option<&str> {
        match self {
            ConfigError::Invalid { field, .. } => Some(field),
            _ => None,
        }
    }
}

/// A [`ConfigError::Invalid`] naming `field`.
pub(super) fn invalid(field: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field: field.into(),
        message: message.into(),
    }
}
