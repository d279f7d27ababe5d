//! A node restarted from its store_dir trusts its own log only once the group confirms
//! it is still a member; and a node that `tern cluster remove` took out while it was
//! down must stay out. Its store still has the old membership: it would campaign
//! forever (its votes are refused, the group moved on) and, restoring its last vote,
//! could even call itself leader.
//!
//! Until confirmed, and later whenever it has had no leader for a few seconds, the
//! node says Hello to the members it knows and the peers seen on routes. A peer of its
//! group that answers "not removed" confirms it (readiness may follow). A peer that
//! answers `removed` (the group's state machine lists the asking node id) makes the
//! node log it once, stop its Raft (no more elections) and stay a standalone server
//! for its own clients: never ready on /healthz, refused by the members' route
//! listeners. Wiping its store_dir is the way back in (a new node id).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::formation::hello;
use super::{ClusterNode, Discover, QUORUM_ACK_MS};

const TICK: Duration = Duration::from_millis(500);
/// Ticks without a leader before a confirmed node asks again (an election is < 1 s).
const LEADERLESS_TICKS: u32 = 6;

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
        let confirmed = node.confirmed.load(Ordering::Relaxed);
        if confirmed {
            if m.current_leader.is_some() {
                leaderless = 0;
                continue;
            }
            leaderless += 1;
            if leaderless < LEADERLESS_TICKS {
                continue;
            }
        } else {
            let voters = m.membership_config.membership().voter_ids().count();
            let leads = m.current_leader == Some(node.id)
                && (voters == 1
                    || m.millis_since_quorum_ack
                        .is_some_and(|ms| ms <= QUORUM_ACK_MS));
            if leads {
                confirm(&node);
                continue;
            }
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
        let group = node.group_id();
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
            let same_group = group.is_empty() || h.cluster_id == group;
            if !confirmed && h.initialized && same_group {
                confirm(&node);
                break;
            }
        }
    }
}

fn confirm(node: &ClusterNode) {
    if !node.confirmed.swap(true, Ordering::Relaxed) {
        tracing::debug!("Raft: node {} confirmed as a member by the group", node.id);
        node.publish();
    }
}
