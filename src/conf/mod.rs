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
//!
//! How main uses it:
//!
//! ```no_run
//! use tern::cli::{parse_args, usage, version_string, Command};
//! use tern::conf::{load, run_config_subcommand};
//!
//! let code = match parse_args(std::env::args().skip(1)) {
//!     Ok(Command::Run(args)) => match load(args.config_file.as_deref(), &args.overrides) {
//!         Ok(loaded) => {
//!             for w in &loaded.warnings {
//!                 eprintln!("tern: warning: {w}");
//!             }
//!             // start the server with loaded.config ...
//!             0
//!         }
//!         Err(errors) => {
//!             for e in &errors {
//!                 eprintln!("tern: {e}");
//!             }
//!             1
//!         }
//!     },
//!     Ok(cmd @ (Command::ConfigCheck(_) | Command::ConfigPrint { .. } | Command::TestConfig(_))) => {
//!         run_config_subcommand(&cmd)
//!     }
//!     Ok(Command::Signal { command, pid }) => { /* kill(pid, sig(command)) */ 0 }
//!     Ok(Command::Help) => { println!("{}", usage()); 0 }
//!     Ok(Command::Version) => { println!("{}", version_string()); 0 }
//!     Ok(other) => { /* client tools (pub, sub, ...): see main.rs */ let _ = other; 0 }
//!     Err(e) => {
//!         eprintln!("tern: {e}");
//!         if e.wants_usage() { eprintln!("{}", usage()); }
//!         1
//!     }
//! };
//! std::process::exit(code);
//! ```
//!
//! Columns in positions are 1-based (see [`Pos`]).

pub mod commands;
pub mod lexer;
pub mod load;
pub mod map;
pub mod map_accounts;
pub mod map_blocks;
pub mod map_operator;
pub mod map_tls;
pub mod map_ws;
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
