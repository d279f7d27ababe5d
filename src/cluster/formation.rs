//! Forming one Raft group from the seed routes with no manual step.
//!
//! Runs only on a node with an empty store, until the node appears in a membership:
//! every 300 ms it says Hello to the peers discovered on routes. If any peer is in a
//! group, it asks that group's leader to add it. If none is, and the rule allows (see
//! the module docs of `cluster`), the lowest node id initialises the group with the
//! nodes it sees as voters (up to `max_voters`). The decision must hold for three
//! rounds in a row, so a view still filling in (routes forming, gossip) or a group
//! whose leader is being elected is not mistaken for "no group yet".

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::network::{channel, request};
use super::proto::raft::raft_service_client::RaftServiceClient;
use super::proto::raft::{HelloReply, HelloRequest, JoinRequest};
use super::raft::TernNode;
use super::{ClusterNode, Discover};

const ROUND: Duration = Duration::from_millis(300);
const RPC_TIMEOUT: Duration = Duration::from_secs(1);
/// Rounds the bootstrap condition must hold before the group is initialised.
const STABLE_ROUNDS: u32 = 3;

pub async fn run(node: Arc<ClusterNode>, discover: Discover, mut shutdown: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(ROUND);
    let mut stable = 0u32;
    loop {
        tokio::select! {
            _ = shutdown.wait_for(|s| *s) => return,
            _ = tick.tick() => {}
        }
        if node.is_member() {
            tracing::info!("Raft: node {} is a member of the group", node.id);
            return;
        }
        match round(&node, &discover).await {
            Step::Wait => stable = 0,
            Step::Bootstrap(nodes) => {
                stable += 1;
                if stable < STABLE_ROUNDS {
                    continue;
                }
                tracing::info!(
                    "Raft: initialising the group with {} voter(s): {:?}",
                    nodes.len(),
                    nodes.keys().collect::<Vec<_>>()
                );
                if let Err(e) = node.raft.initialize(nodes).await {
                    tracing::warn!("Raft: initialise failed: {e}");
                }
            }
        }
    }
}

enum Step {
    Wait,
    Bootstrap(BTreeMap<u64, TernNode>),
}

pub async fn hello(node: &ClusterNode, addr: &str) -> Option<HelloReply> {
    let mut client = RaftServiceClient::new(channel(addr, node.opts.tls.as_ref()).ok()?);
    let req = HelloRequest {
        node_id: node.id,
        control_addr: node.opts.control_addr.clone(),
        cluster_name: node.opts.cluster_name.clone().unwrap_or_default(),
    };
    let r = client
        .hello(request(req, node.opts.token.as_deref(), RPC_TIMEOUT))
        .await;
    match r {
        Ok(r) => Some(r.into_inner()),
        Err(e) => {
            tracing::debug!("Raft: hello to {addr}: {e}");
            None
        }
    }
}

async fn round(node: &Arc<ClusterNode>, discover: &Discover) -> Step {
    let mut addrs = discover();
    addrs.sort();
    addrs.dedup();
    addrs.retain(|a| *a != node.opts.control_addr);
    let mut peers = Vec::new();
    for a in &addrs {
        if let Some(h) = hello(node, a).await {
            let ours = node.opts.cluster_name.as_deref().unwrap_or("");
            if !ours.is_empty() && !h.cluster_name.is_empty() && h.cluster_name != ours {
                tracing::warn!(
                    "Raft: ignoring peer {a} of cluster \"{}\" (we are \"{ours}\")",
                    h.cluster_name
                );
                continue;
            }
            if h.node_id != node.id {
                peers.push(h);
            }
        }
    }
    if peers.iter().any(|h| h.initialized) {
        if let Some(h) = peers
            .iter()
            .find(|h| h.initialized && !h.leader_addr.is_empty())
        {
            join(node, &h.leader_addr).await;
        }
        return Step::Wait;
    }
    let me = TernNode {
        control_addr: node.opts.control_addr.clone(),
        route_url: node.opts.route_url.clone(),
        name: node.opts.name.clone(),
    };
    let expect = match node.opts.bootstrap_expect {
        Some(n) => n as usize,
        None if node.opts.has_seeds => return Step::Wait,
        // The one node without seeds starts a group of its own; the seeded nodes
        // (possibly with lower ids, already routed to it) join it.
        None => return Step::Bootstrap(BTreeMap::from([(node.id, me)])),
    };
    let mut all: BTreeMap<u64, TernNode> = peers
        .iter()
        .map(|h| {
            (
                h.node_id,
                TernNode {
                    control_addr: h.control_addr.clone(),
                    route_url: h.route_url.clone(),
                    name: h.name.clone(),
                },
            )
        })
        .collect();
    all.insert(node.id, me);
    if all.len() < expect || all.keys().next() != Some(&node.id) {
        return Step::Wait;
    }
    Step::Bootstrap(all.into_iter().take(node.opts.max_voters.max(1)).collect())
}

/// Asks the leader at `addr` to add this node; follows one redirect.
async fn join(node: &ClusterNode, addr: &str) {
    let mut target = addr.to_string();
    for _ in 0..2 {
        let Ok(ch) = channel(&target, node.opts.tls.as_ref()) else {
            return;
        };
        let mut client = RaftServiceClient::new(ch);
        let req = JoinRequest {
            node_id: node.id,
            control_addr: node.opts.control_addr.clone(),
            route_url: node.opts.route_url.clone(),
            name: node.opts.name.clone(),
            cluster_name: node.opts.cluster_name.clone().unwrap_or_default(),
        };
        match client
            .join(request(req, node.opts.token.as_deref(), RPC_TIMEOUT * 3))
            .await
        {
            Ok(r) => {
                let r = r.into_inner();
                if r.leader_addr.is_empty() || r.leader_addr == target {
                    return;
                }
                target = r.leader_addr;
            }
            Err(e) => {
                tracing::warn!("Raft: join via {target}: {}", e.message());
                return;
            }
        }
    }
}
