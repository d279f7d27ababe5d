//! Test harness for tern: in-process servers and state-based waiting (`harness`),
//! differential conversations against the real nats-server (`diff`), and the
//! side-by-side load generator behind `tern-bench` (`bench`).

pub mod bench;
pub mod cluster;
pub mod diff;
pub mod harness;
pub mod jwt;
pub mod pki;
pub mod procs;
