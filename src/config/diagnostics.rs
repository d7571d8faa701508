//! What the checks report: the public [`ConfigError`] / [`ConfigErrors`], and the positioned
//! [`Problem`] (error or warning) each step collects, rendered as `FILE:LINE:COLUMN: message`.

use std::fmt;
use std::path::PathBuf;

use serde_saphyr::granit_parser::Marker;

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A problem at a place in the configuration file.
    #[error("{file}:{line}:{column}: {message}")]
    Invalid {
        /// The file name as given.
        file: String,
        /// 1-based line.
        line: usize,
        /// 1-based column (in characters).
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// The configuration file could not be read.
    #[error("{file}: cannot read: {source}")]
    Read {
        /// The file name as given.
        file: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A password or token file could not be read.
    #[error("cannot read secret file {}: {source}", path.display())]
    SecretFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A password or token source holds nothing.
    #[error("{origin} is empty")]
    EmptySecret {
        /// `file PATH` or `environment variable NAME`.
        origin: String,
    },
    /// A password environment variable is not set (or not UTF-8).
    #[error("environment variable {name} is not set or not valid UTF-8")]
    SecretEnv {
        /// The variable's name.
        name: String,
    },
}

/// Every error found in a configuration file, in file order; `Display` prints one per line.
#[derive(Debug)]
pub struct ConfigErrors(pub(super) Vec<ConfigError>);

impl ConfigErrors {
    /// The errors, in file order.
    pub fn errors(&self) -> &[ConfigError] {
        &self.0
    }

    /// Number of errors (at least one when returned by [`parse`](super::parse) or
    /// [`load`](super::load)).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there is no error.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, error) in self.0.iter().enumerate() {
            if index > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl IntoIterator for ConfigErrors {
    type Item = ConfigError;
    type IntoIter = std::vec::IntoIter<ConfigError>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

/// A 1-based line and column; `0:0` when unknown (values not read from a located tree).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub(super) struct Pos {
    pub(super) line: usize,
    pub(super) column: usize,
}

impl Pos {
    pub(super) fn of(marker: &Marker) -> Pos {
        Pos {
            line: marker.line(),
            column: marker.col() + 1,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Severity {
    Error,
    Warning,
}

/// Ordered by position, then errors before warnings.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Problem {
    pub(super) pos: Pos,
    pub(super) severity: Severity,
    pub(super) message: String,
}

impl Problem {
    pub(super) fn error(pos: Pos, message: impl Into<String>) -> Problem {
        Problem {
            pos,
            severity: Severity::Error,
            message: message.into(),
        }
    }

    pub(super) fn warning(pos: Pos, message: impl Into<String>) -> Problem {
        Problem {
            pos,
            severity: Severity::Warning,
            message: message.into(),
        }
    }

    pub(super) fn render(&self, file: &str) -> String {
        match self.severity {
            Severity::Error => self.to_error(file).to_string(),
            Severity::Warning => format!(
                "{file}:{}:{}: warning: {}",
                self.pos.line, self.pos.column, self.message
            ),
        }
    }

    pub(super) fn to_error(&self, file: &str) -> ConfigError {
        ConfigError::Invalid {
            file: file.to_owned(),
            line: self.pos.line,
            column: self.pos.column,
            message: self.message.clone(),
        }
    }
}
