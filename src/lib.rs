//! tern: a NATS-compatible message server.
//!
//! See docs/architecture.md for the map. Reading order: protocol/parser.rs ->
//! conn/mod.rs -> client.rs -> dispatch.rs -> sublist.rs.

pub mod cli;
pub mod conf;
pub mod config;
pub mod subject;
pub mod sublist;

pub use config::Config;
