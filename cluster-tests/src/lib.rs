//! Test harness for tern.

pub mod bench;
