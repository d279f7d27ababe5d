//! Test harness for tern.
