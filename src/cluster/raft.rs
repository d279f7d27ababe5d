//! openraft type configuration: what a log entry carries (membership changes come from
//! openraft itself; the application commands are [`Request`]), the node record kept
//! in the membership, and the timing of elections.
//!
//! Must not: carry anything of the message path. Raft holds membership and the
//! cluster-scoped configuration only (design rule 5).

use std::io::Cursor;

use serde::{Deserialize, Serialize};

use super::shared_config::SharedConfig;

/// Everything the membership records about one node, so any node can reach it over the
/// control plane and dial its route port without another lookup.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TernNode {
    /// gRPC control address (`host:port`) for Raft and admin.
    pub control_addr: String,
    /// `nats-route://host:port` of the node's route listener ("" when it has none).
    pub route_url: String,
    /// server_name, for humans.
    pub name: String,
}

impl std::fmt::Display for TernNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}", self.name, self.control_addr)
    }
}

/// Application commands in the Raft log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Request {
    /// Written once by the first leader: names the group, so a store_dir from another
    /// group is recognised.
    Init {
        cluster_id: String,
        cluster_name: String,
    },
    /// Replaces the cluster-scoped configuration (validated before it is proposed;
    /// validated again on apply so every node rejects the same invalid entries).
    SetConfig {
        /// Boxed: the config is much larger than the other commands.
        config: Box<SharedConfig>,
        unix_ms: u64,
    },
    /// Takes a node out: routes to it close and are not redialled; its later join
    /// attempts are refused. The membership change follows this entry.
    RemoveNode { node_id: u64 },
}

/// What applying a [`Request`] returned.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Response {
    pub config_version: u64,
    /// Set when the entry was committed but not applied (e.g. invalid config).
    pub error: Option<String>,
}

openraft::declare_raft_types!(
    /// tern's Raft: u64 node ids, [`TernNode`] records, snapshots as JSON bytes.
    pub TypeConfig:
        D = Request,
        R = Response,
        NodeId = u64,
        Node = TernNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

pub type Raft = openraft::Raft<TypeConfig>;
pub type NodeId = u64;
pub type LogId = openraft::LogId<NodeId>;
pub type StorageError = openraft::StorageError<NodeId>;
pub type StoredMembership = openraft::StoredMembership<NodeId, TernNode>;

/// Heartbeats every 100 ms and an election after 400-800 ms of silence: a lost leader
/// is replaced in about a second on a LAN, without elections on a busy 2-core box.
pub fn raft_config(cluster_name: &str) -> Result<openraft::Config, String> {
    openraft::Config {
        cluster_name: cluster_name.to_string(),
        heartbeat_interval: 100,
        election_timeout_min: 400,
        election_timeout_max: 800,
        install_snapshot_timeout: 2_000,
        // Membership and config only: a few entries a day. Snapshot rarely, keep some
        // log for followers that were briefly away.
        snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(1_000),
        max_in_snapshot_log_to_keep: 100,
        ..Default::default()
    }
    .validate()
    .map_err(|e| e.to_string())
}
