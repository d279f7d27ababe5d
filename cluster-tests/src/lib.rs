//! Test harness for tern: in-process servers and state-based waiting (`harness`), and
//! differential conversations against the real nats-server (`diff`).

pub mod diff;
pub mod harness;
