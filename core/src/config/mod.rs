//! The configuration contract (CONFIG.md): TOML read with `toml` + `serde`
//! into the raw structs of [`raw`] (strictly: a string is no bool, a float
//! no integer), then checked by [`validate`] into a [`Config`] whose
//! references are resolved to indices, or into a list of [`ConfigError`]s
//! that each name an object, a field and the line and column.
//!
//! Every object is deserialized on its own so one typo does not hide the
//! next: `sluiced --check-config` prints all of them.

mod cluster;
mod duration;
pub mod eal;
mod locate;
mod objects;
mod probes;
pub mod raw;
mod routing;
mod rules;
mod types;
mod validate;

pub use cluster::{MAX_INSTANCES, MIN_SECRET};
pub use duration::parse_duration;
pub use locate::Position;
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
    /// Where in the file: the key's line and column, or its object's.
    pub at: Option<Position>,
}

impl ConfigError {
    pub(crate) fn new(object: impl Into<String>, field: &str, reason: impl Into<String>) -> Self {
        ConfigError {
            object: object.into(),
            field: field.into(),
            reason: reason.into(),
            at: None,
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(p) = self.at {
            write!(f, "line {}, column {}: ", p.line, p.column)?;
        }
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

    /// Parses and validates TOML text. Every error carries the line and
    /// column of the key it names (or of its object) when they are known.
    pub fn from_toml_str(text: &str) -> Result<Config, ConfigErrors> {
        let top = text.parse::<toml::Table>().map_err(|e| {
            let mut err = ConfigError::new("file", "-", e.message().to_string());
            err.at = e
                .span()
                .map(|s| locate::Locator::new(text).position(s.start));
            ConfigErrors(vec![err])
        })?;
        validate::validate(top).map_err(|ConfigErrors(mut errors)| {
            let at = locate::Locator::new(text);
            for e in &mut errors {
                at.place(e);
            }
            ConfigErrors(errors)
        })
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod cluster_tests;

#[cfg(test)]
mod routing_tests;

#[cfg(test)]
mod strict_tests;

/// Puts the line and column of its key in `text` on each error that has
/// none (for checks made after loading, such as [`eal::check_eal`]).
pub fn place_errors(text: &str, errors: &mut [ConfigError]) {
    let at = locate::Locator::new(text);
    for e in errors {
        at.place(e);
    }
}
