//! Side-by-side end-to-end benchmark of NATS-protocol servers (nats-server vs
//! tern). See `src/bin/tern-bench.rs` for the method; this module is the
//! reusable part so other code (tests, docs tooling) can drive it.

pub mod cluster;
pub mod load;
pub mod proto;
pub mod report;
pub mod scenario;
pub mod server;
pub mod tls;

pub use load::{Exec, RtMode};
pub use report::{Report, SideStats};
pub use scenario::{run_once, RunParams, RunResult, Scenario};
pub use server::ServerSpec;
