//! tern: a NATS-compatible message server.
//!
//! The path of one PUB: `client.rs` reads bytes and hands them to
//! `protocol::parser`, which yields an `Op::Pub` borrowing the payload from the read
//! buffer; `client::process_pub` looks the subject up in its per-connection match cache
//! (backed by `sublist`), and `dispatch` writes `MSG` into each receiver's
//! `conn::outbound` buffer. After the read batch every touched connection's writer is
//! woken once. See docs/architecture.md for the full map.

// serde_json::json! of the /varz object nests deeper than the default limit.
#![recursion_limit = "256"]

pub mod account;
pub mod admin;
pub mod auth;
pub mod cli;
pub mod client;
pub mod cluster;
pub mod conf;
pub mod config;
pub mod conn;
pub mod control;
pub mod dispatch;
pub mod error;
pub mod logging;
pub mod monitor;
pub mod net;
pub mod protocol;
pub mod route;
pub mod run;
pub mod server;
pub mod subject;
pub mod sublist;
pub mod telemetry;
pub mod tools;

pub use config::Config;
pub use server::{Server, ServerHandle};
