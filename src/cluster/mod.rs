//! The control plane: Raft (openraft) over gRPC for cluster membership and the
//! cluster-scoped configuration, and nothing else (design rule 5).
//!
//! It reaches the data plane only through [`Membership`], a `tokio::sync::watch` of
//! [`ClusterState`]; the wiring in server.rs turns that into route targets and config.
//! It learns about peers only through the `Discover` callback the wiring hands it
//! (control addresses seen in route INFO). Off unless `cluster { control_listen }` is
//! configured: without it nothing here is constructed.
//!
//! Formation (see docs/raft.md): a fresh node says Hello to every peer it discovers.
//! If one is in a group, it asks that group's leader to Join (learner first, promoted
//! to voter by the leader once caught up). If none is, the lowest node id initialises
//! the group once it sees `bootstrap_expect` nodes (itself included); without
//! `bootstrap_expect`, a node with no seed routes bootstraps alone and seeded nodes wait
//! to join.

pub mod control_tls;
pub mod formation;
pub mod network;
pub mod raft;
pub mod service;
pub mod shared_config;
pub mod store;

/// Generated gRPC code for proto/raft.proto and proto/admin.proto.
pub mod proto {
    #![allow(clippy::all, missing_docs)]
    pub mod raft {
        tonic::include_proto!("tern.raft");
    }
    pub mod admin {
        tonic::include_proto!("tern.admin");
    }
}

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{ClientWriteError, RaftError};
use openraft::{ChangeMembers, ServerState};
use parking_lot::Mutex;
use tokio::sync::watch;

use self::raft::{NodeId, Raft, Request, Response, TernNode};
use self::shared_config::SharedConfig;
use self::store::{Identity, LogStore, StateMachineStore};

/// Default gRPC control port (`cluster { control_listen: "host" }`).
pub const DEFAULT_CONTROL_PORT: u16 = 6250;
/// Default cap on voters; more nodes join as learners (they still get routes).
pub const DEFAULT_MAX_VOTERS: usize = 5;
/// A learner within this many entries of the leader counts as caught up.
const CATCH_UP_LAG: u64 = 10;
/// How long a write may wait for its commit before we call it "no quorum".
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// What the control plane needs from the wiring.
#[derive(Debug, Clone)]
pub struct ControlOptions {
    pub store_dir: PathBuf,
    /// Address peers and the CLI use to reach this node's control listener.
    pub control_addr: String,
    /// `nats-route://host:port` of this node's route listener ("" without one).
    pub route_url: String,
    pub name: String,
    pub cluster_name: Option<String>,
    pub token: Option<String>,
    /// Client TLS towards other control listeners (`control_tls`).
    pub tls: Option<tonic::transport::ClientTlsConfig>,
    pub bootstrap_expect: Option<u32>,
    /// Seed routes are configured: without `bootstrap_expect` this node waits to join.
    pub has_seeds: bool,
    pub max_voters: usize,
}

/// Control addresses of peers seen on the data plane (route INFO), supplied by wiring.
pub type Discover = Arc<dyn Fn() -> Vec<String> + Send + Sync>;

/// One member as the data plane sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub node: TernNode,
    pub voter: bool,
}

/// The view published to the data plane on every change.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClusterState {
    pub node_id: NodeId,
    pub leader: Option<NodeId>,
    pub members: BTreeMap<NodeId, Member>,
    /// Nodes taken out with `tern cluster remove`: no routes to them.
    pub removed: BTreeSet<NodeId>,
    pub config: SharedConfig,
    pub config_version: u64,
    /// The node has applied the membership and config committed when it started.
    pub ready: bool,
}

/// The receiving end handed to the data plane.
pub type Membership = watch::Receiver<ClusterState>;

/// Why a control-plane operation failed; the admin API maps these to gRPC codes.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ClusterError {
    #[error("not the leader; the leader is node {leader_id} at {leader_addr}")]
    NotLeader {
        leader_id: NodeId,
        leader_addr: String,
    },
    #[error("no quorum: {0}")]
    NoQuorum(String),
    #[error("invalid: {0}")]
    Invalid(String),
    #[error("{0}")]
    Failed(String),
}

/// A running Raft member.
pub struct ClusterNode {
    pub id: NodeId,
    pub raft: Raft,
    pub sm: StateMachineStore,
    pub opts: ControlOptions,
    log: LogStore,
    state_tx: watch::Sender<ClusterState>,
    identity: Mutex<Identity>,
    /// Commit index on disk at start: readiness waits until it is applied.
    committed_at_start: Option<u64>,
}

impl ClusterNode {
    /// Opens the store (identity, log, state machine), starts Raft and the background
    /// tasks (formation, leader duties, publishing the view).
    pub async fn start(
        opts: ControlOptions,
        discover: Discover,
        shutdown: watch::Receiver<bool>,
    ) -> Result<Arc<ClusterNode>, String> {
        let dir = opts.store_dir.join("raft");
        let identity = store::load_identity(&dir, opts.cluster_name.as_deref())?;
        let log = LogStore::open(&dir).map_err(|e| format!("cannot open the Raft log: {e}"))?;
        let sm = StateMachineStore::open(&dir)
            .map_err(|e| format!("cannot open the Raft state machine: {e}"))?;
        let cfg = raft::raft_config(opts.cluster_name.as_deref().unwrap_or("tern"))?;
        let network = network::Network {
            token: opts.token.clone(),
            tls: opts.tls.clone(),
        };
        let committed_at_start = log.committed().map(|l| l.index);
        let raft = Raft::new(
            identity.node_id,
            Arc::new(cfg),
            network,
            log.clone(),
            sm.clone(),
        )
        .await
        .map_err(|e| format!("cannot start Raft: {e}"))?;
        tracing::info!(
            "Raft node {} (control {}) starting from {}",
            identity.node_id,
            opts.control_addr,
            dir.display()
        );
        let (state_tx, _) = watch::channel(ClusterState {
            node_id: identity.node_id,
            ..Default::default()
        });
        let node = Arc::new(ClusterNode {
            id: identity.node_id,
            raft,
            sm,
            opts,
            log,
            state_tx,
            identity: Mutex::new(identity),
            committed_at_start,
        });
        node.publish();
        tokio::spawn(publish_loop(node.clone(), shutdown.clone()));
        tokio::spawn(leader_loop(node.clone(), shutdown.clone()));
        if !node.log.has_state() {
            tokio::spawn(formation::run(node.clone(), discover, shutdown));
        }
        Ok(node)
    }

    /// The membership view, for the data plane.
    pub fn membership(&self) -> Membership {
        self.state_tx.subscribe()
    }

    pub fn state(&self) -> ClusterState {
        self.state_tx.borrow().clone()
    }

    pub fn metrics(&self) -> openraft::RaftMetrics<NodeId, TernNode> {
        self.raft.metrics().borrow().clone()
    }

    /// Whether this node is in the group's membership (voter or learner).
    pub fn is_member(&self) -> bool {
        let m = self.metrics();
        let found = m.membership_config.nodes().any(|(id, _)| *id == self.id);
        found
    }

    /// The leader's id and control address, when known.
    pub fn leader(&self) -> Option<(NodeId, String)> {
        let m = self.metrics();
        let id = m.current_leader?;
        let addr = m
            .membership_config
            .membership()
            .get_node(&id)
            .map(|n| n.control_addr.clone())
            .unwrap_or_default();
        Some((id, addr))
    }

    pub fn cluster_id(&self) -> String {
        self.sm.data.lock().cluster_id.clone()
    }

    /// Proposes `req` on this node, which must be the leader with a live quorum.
    pub async fn write(&self, req: Request) -> Result<Response, ClusterError> {
        let m = self.metrics();
        let voters = m.membership_config.membership().voter_ids().count();
        match m.current_leader {
            None => {
                return Err(ClusterError::NoQuorum(format!(
                    "no leader is elected; a majority of the {voters} voters must be up"
                )))
            }
            Some(l) if l != self.id => {
                let leader_addr = self.leader().map(|(_, a)| a).unwrap_or_default();
                return Err(ClusterError::NotLeader {
                    leader_id: l,
                    leader_addr,
                });
            }
            Some(_) => {}
        }
        // A leader cut off from its followers keeps its role until it hears a higher
        // term; do not let a write hang on it.
        let stale = m.millis_since_quorum_ack.is_none_or(|ms| ms > 1_500);
        if voters > 1 && stale {
            return Err(ClusterError::NoQuorum(format!(
                "the leader has not heard from a majority of the {voters} voters recently"
            )));
        }
        match tokio::time::timeout(WRITE_TIMEOUT, self.raft.client_write(req)).await {
            Err(_) => Err(ClusterError::NoQuorum(format!(
                "the write was not committed within {WRITE_TIMEOUT:?}"
            ))),
            Ok(Ok(r)) => match r.data.error {
                Some(e) => Err(ClusterError::Invalid(e)),
                None => Ok(r.data),
            },
            Ok(Err(e)) => Err(self.write_error(e)),
        }
    }

    fn write_error(
        &self,
        e: RaftError<NodeId, ClientWriteError<NodeId, TernNode>>,
    ) -> ClusterError {
        match e {
            RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => match f.leader_id {
                Some(id) => ClusterError::NotLeader {
                    leader_id: id,
                    leader_addr: f.leader_node.map(|n| n.control_addr).unwrap_or_default(),
                },
                None => ClusterError::NoQuorum("no leader is elected".into()),
            },
            other => ClusterError::Failed(other.to_string()),
        }
    }

    /// Leader side of a join: add the node as a learner (promotion follows).
    pub async fn add_node(&self, id: NodeId, node: TernNode) -> Result<(), ClusterError> {
        if self.sm.data.lock().removed.contains(&id) {
            return Err(ClusterError::Invalid(format!(
                "node {id} was removed from this cluster; wipe its store_dir to join again"
            )));
        }
        if let Some((l, addr)) = self.leader() {
            if l != self.id {
                return Err(ClusterError::NotLeader {
                    leader_id: l,
                    leader_addr: addr,
                });
            }
        }
        let m = self.metrics();
        if m.membership_config.membership().get_node(&id) == Some(&node) {
            return Ok(());
        }
        tracing::info!("Raft: adding node {id} ({node}) as a learner");
        self.raft
            .add_learner(id, node, false)
            .await
            .map(|_| ())
            .map_err(|e| self.write_error(e))
    }

    /// Takes `id` out: records it (routes close everywhere), then drops it from the
    /// membership (the leader loop finishes this if leadership changes midway).
    pub async fn remove_node(&self, id: NodeId) -> Result<(), ClusterError> {
        let m = self.metrics();
        if m.membership_config.membership().get_node(&id).is_none()
            && !self.sm.data.lock().removed.contains(&id)
        {
            return Err(ClusterError::Invalid(format!("node {id} is not a member")));
        }
        self.write(Request::RemoveNode { node_id: id }).await?;
        self.drop_from_membership(id).await
    }

    async fn drop_from_membership(&self, id: NodeId) -> Result<(), ClusterError> {
        let m = self.metrics();
        let membership = m.membership_config.membership();
        if membership.voter_ids().any(|v| v == id) {
            self.raft
                .change_membership(ChangeMembers::RemoveVoters(BTreeSet::from([id])), false)
                .await
                .map_err(|e| self.write_error(e))?;
        }
        if self
            .metrics()
            .membership_config
            .nodes()
            .any(|(n, _)| *n == id)
        {
            self.raft
                .change_membership(ChangeMembers::RemoveNodes(BTreeSet::from([id])), false)
                .await
                .map_err(|e| self.write_error(e))?;
        }
        Ok(())
    }

    /// Rebuilds the view from Raft metrics and the state machine; wakes watchers only
    /// when something changed.
    fn publish(&self) {
        let m = self.metrics();
        let (config, config_version, removed, cluster_id) = {
            let d = self.sm.data.lock();
            (
                d.config.clone(),
                d.config_version,
                d.removed.clone(),
                d.cluster_id.clone(),
            )
        };
        if !cluster_id.is_empty() {
            let mut ident = self.identity.lock();
            if ident.cluster_id.as_deref() != Some(cluster_id.as_str()) {
                ident.cluster_id = Some(cluster_id);
                let dir = self.opts.store_dir.join("raft");
                if let Err(e) = store::save_identity(&dir, &ident) {
                    tracing::error!("Raft: {e}");
                }
            }
        }
        let membership = m.membership_config.membership();
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        let members: BTreeMap<NodeId, Member> = membership
            .nodes()
            .map(|(id, n)| {
                (
                    *id,
                    Member {
                        node: n.clone(),
                        voter: voters.contains(id),
                    },
                )
            })
            .collect();
        let applied = m.last_applied.map(|l| l.index);
        let caught_up = match self.committed_at_start {
            None => true,
            Some(c) => applied.is_some_and(|a| a >= c),
        };
        let is_member = members.contains_key(&self.id);
        self.state_tx.send_if_modified(|s| {
            let new = ClusterState {
                node_id: self.id,
                leader: m.current_leader,
                members,
                removed,
                config,
                config_version,
                // Latched: once ready, a later election does not flap /healthz.
                ready: s.ready || (is_member && caught_up),
            };
            if *s == new {
                return false;
            }
            *s = new;
            true
        });
    }
}

/// Republishes the view whenever Raft metrics move or the state machine applies.
async fn publish_loop(node: Arc<ClusterNode>, mut shutdown: watch::Receiver<bool>) {
    let mut metrics = node.raft.metrics();
    loop {
        tokio::select! {
            _ = shutdown.wait_for(|s| *s) => break,
            r = metrics.changed() => if r.is_err() { break },
            _ = node.sm.changed.notified() => {}
        }
        node.publish();
    }
    // Stop Raft with the server so a restart in the same process can reopen the store.
    let _ = node.raft.shutdown().await;
}

/// Leader duties, every 300 ms: name the group once, finish removals, promote
/// caught-up learners to voters up to `max_voters`.
async fn leader_loop(node: Arc<ClusterNode>, mut shutdown: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(Duration::from_millis(300));
    loop {
        tokio::select! {
            _ = shutdown.wait_for(|s| *s) => return,
            _ = tick.tick() => {}
        }
        let m = node.metrics();
        if m.state != ServerState::Leader {
            continue;
        }
        if node.cluster_id().is_empty() {
            let req = Request::Init {
                cluster_id: format!("{:016x}", rand::random::<u64>()),
                cluster_name: node.opts.cluster_name.clone().unwrap_or_default(),
            };
            if let Err(e) = node.write(req).await {
                tracing::debug!("Raft: naming the group failed: {e}");
            }
            continue;
        }
        let removed = node.sm.data.lock().removed.clone();
        let membership = m.membership_config.membership().clone();
        for id in membership.nodes().map(|(id, _)| *id) {
            if removed.contains(&id) {
                if let Err(e) = node.drop_from_membership(id).await {
                    tracing::debug!("Raft: removing node {id}: {e}");
                }
            }
        }
        let voters = membership.voter_ids().count();
        if voters >= node.opts.max_voters {
            continue;
        }
        let last = m.last_log_index.unwrap_or(0);
        let learner = membership.learner_ids().find(|id| {
            !removed.contains(id)
                && m.replication
                    .as_ref()
                    .and_then(|r| r.get(id).cloned().flatten())
                    .is_some_and(|matched| matched.index + CATCH_UP_LAG >= last)
        });
        if let Some(id) = learner {
            tracing::info!("Raft: promoting caught-up learner {id} to voter");
            let change = ChangeMembers::AddVoterIds(BTreeSet::from([id]));
            if let Err(e) = node.raft.change_membership(change, true).await {
                tracing::debug!("Raft: promoting {id}: {e}");
            }
        }
    }
}
