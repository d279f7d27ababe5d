//! A node that comes back from its store_dir after `tern cluster remove` took it out
//! while it was down still has the old membership on disk and would campaign forever
//! (its votes are refused: the group moved on). This task notices that case and takes
//! the node out of Raft for good.
//!
//! While the node has no leader for a few seconds it says Hello to the members it
//! knows and the peers seen on routes; a peer answers `removed` when the group's state
//! machine lists the asking node id. Then the node logs it once, stops its Raft (no
//! more elections), and stays a standalone server for its own clients: never ready on
//! /healthz, refused by the members' route listeners. Wiping its store_dir is the way
//! back in (a new node id).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::formation::hello;
use super::{ClusterNode, Discover};

const TICK: Duration = Duration::from_secs(1);
/// Ticks without a leader before asking the peers (an election takes < 1 s).
const LEADERLESS_TICKS: u32 = 3;

pub async fn watch(
    node: Arc<ClusterNode>,
    discover: Discover,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(TICK);
    let mut leaderless = 0u32;
    loop {
        tokio::select! {
            _ = shutdown.wait_for(|s| *s) => return,
            _ = tick.tick() => {}
        }
        let m = node.metrics();
        if m.current_leader.is_some() {
            leaderless = 0;
            continue;
        }
        leaderless += 1;
        if leaderless < LEADERLESS_TICKS {
            continue;
        }
        let mut addrs: Vec<String> = m
            .membership_config
            .nodes()
            .filter(|(id, _)| **id != node.id)
            .map(|(_, n)| n.control_addr.clone())
            .chain(discover())
            .filter(|a| *a != node.opts.control_addr)
            .collect();
        addrs.sort();
        addrs.dedup();
        for a in &addrs {
            let Some(h) = hello(&node, a).await else {
                continue;
            };
            if h.removed {
                tracing::error!(
                    "Raft: node {} was removed from cluster group {} (`tern cluster remove`, \
                     reported by node {}); it stays out of the group and serves only its own \
                     clients. Point store_dir at an empty directory to join again as a new node",
                    node.id,
                    h.cluster_id,
                    h.node_id
                );
                let _ = node.raft.shutdown().await;
                return;
            }
        }
    }
}
