//! nats-server configuration files, and loading a [`Config`](crate::config::Config) from a
//! file (nats conf, TOML or YAML), the `TERN_` environment and command-line overrides.
//!
//! Pipeline: [`lexer`] scans characters, [`parser`] builds a tree of [`Value`]s that keep
//! their file/line/column (resolving `$VARIABLES` and `include`s as it goes), [`map`] turns
//! nats keys and aliases into the `Config` field layout, and [`load`] plugs that into the
//! `config` crate as a custom `Format` so env overrides layer on top uniformly.
//!
//! This module only reads files and builds values; it never starts anything. Every problem
//! is collected (not just the first) so `tern config check` can show them all at once.

pub mod commands;
pub mod lexer;
pub mod load;
pub mod map;
pub mod map_blocks;
pub mod overrides;
pub mod parser;
pub mod value;

use std::fmt;
use std::sync::Arc;

pub use commands::{run_config_subcommand, run_config_subcommand_to};
pub use load::{check_with_env, load, load_with_env, validate, Loaded, NatsConfFormat, Report};
pub use parser::{parse_file, parse_partial, parse_str, parse_str_with_env};
pub use value::{Entry, Kind, Map, Value};

/// Where a token came from. Lines and columns are 1-based (nats-server prints 0-based
/// columns on the first line only, by accident of its lexer; editors use 1-based).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Pos {
    pub file: Arc<str>,
    pub line: u32,
    pub col: u32,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.col)
    }
}

/// One error or warning about the configuration. Displays as `file:line:col: message`
/// when the position is known (values from a nats conf file), else just the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub pos: Option<Pos>,
    pub message: String,
}

/// Errors and warnings share one shape; the alias keeps signatures readable.
pub type ConfError = Diagnostic;

impl Diagnostic {
    pub fn at(pos: &Pos, message: impl Into<String>) -> Self {
        Diagnostic {
            pos: Some(pos.clone()),
            message: message.into(),
        }
    }

    pub fn bare(message: impl Into<String>) -> Self {
        Diagnostic {
            pos: None,
            message: message.into(),
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.pos {
            Some(p) => write!(f, "{p}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for Diagnostic {}

/// A batch of errors, used where an API can only carry one `Error` (the `config` crate's
/// `Format::parse`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfErrors(pub Vec<ConfError>);

impl fmt::Display for ConfErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfErrors {}

#[cfg(test)]
mod tests_load;
#[cfg(test)]
mod tests_parse;
