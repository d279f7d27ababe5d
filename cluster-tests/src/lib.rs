//! Test harness for tern: in-process servers, waiting on observable state, and a raw
//! protocol client for byte-level conversations.

pub mod harness;
