//! Test harness for tern.

pub mod diff;
