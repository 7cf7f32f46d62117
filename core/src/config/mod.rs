//! The configuration contract (CONFIG.md): TOML read with `config` + `serde`
//! into the raw structs of [`raw`], then checked by [`validate`] into a
//! [`Config`] whose references are resolved to indices, or into a list of
//! [`ConfigError`]s that each name an object and a field.
//!
//! Every object is deserialized on its own so one typo does not hide the
//! next: `sluiced --check-config` prints all of them.

mod cluster;
mod duration;
mod objects;
pub mod raw;
mod routing;
mod rules;
mod types;
mod validate;

pub use cluster::{MAX_INSTANCES, MIN_SECRET};
pub use duration::parse_duration;
pub use routing::{DEFAULT_DRAIN, MAX_DRAIN};
pub use types::*;

use std::fmt;
use std::path::Path;

/// One thing wrong with a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The object: `port "ext"`, `lb_rule "http"`, `[dpdk]`, `port[2]`.
    pub object: String,
    /// The field (key) within the object.
    pub field: String,
    /// What is wrong, in words an operator can act on.
    pub reason: String,
}

impl ConfigError {
    pub(crate) fn new(object: impl Into<String>, field: &str, reason: impl Into<String>) -> Self {
        ConfigError {
            object: object.into(),
            field: field.into(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: field `{}`: {}",
            self.object, self.field, self.reason
        )
    }
}

/// Every error found, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl Config {
    /// Reads and validates a TOML file.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigErrors(vec![ConfigError::new(
                format!("file {}", path.display()),
                "-",
                format!("cannot read: {e}"),
            )])
        })?;
        Self::from_toml_str(&text)
    }

    /// Parses and validates TOML text.
    pub fn from_toml_str(text: &str) -> Result<Config, ConfigErrors> {
        let source = config::Config::builder()
            .add_source(config::File::from_str(text, config::FileFormat::Toml))
            .build()
            .and_then(|c| c.try_deserialize::<config::Map<String, config::Value>>())
            .map_err(|e| ConfigErrors(vec![ConfigError::new("file", "-", e.to_string())]))?;
        validate::validate(source)
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod cluster_tests;

#[cfg(test)]
mod routing_tests;
