//! Connection plumbing shared by every connection kind: the outbound buffer and its
//! write loop. The client read loop lives in client.rs; routes will reuse this module.

pub mod outbound;
