//! tern's cluster series for /metrics: per-route traffic and backlog, client and route
//! round-trip histograms, and the Raft control plane (term, leader, log indexes,
//! membership, cluster config version). Labels are route peer names and fixed roles,
//! bounded by the cluster size.

use std::sync::atomic::Ordering;

use super::histogram::{Histogram, BOUNDS};
use super::metrics::Text;
use crate::server::ServerShared;

pub(super) fn render(s: &ServerShared, t: &mut Text) {
    routes(s, t);
    histogram(
        t,
        "tern_client_rtt_seconds",
        "Round trip of server PINGs to client connections (the delivery path's latency).",
        &s.stats.client_rtt,
    );
    histogram(
        t,
        "tern_route_rtt_seconds",
        "Round trip of route PINGs to peer nodes.",
        &s.stats.route_rtt,
    );
    raft(s, t);
}

/// Per-route counters, labelled by the peer's server name (and id, which survives a
/// rename). They restart from 0 when a route reconnects, which `rate()` reads as a
/// counter reset, as it should.
fn routes(s: &ServerShared, t: &mut Text) {
    let mut routes = s.routes.routes();
    routes.sort_by_key(|r| r.conn.cid);
    let rows: Vec<(String, String, [f64; 6])> = routes
        .iter()
        .map(|r| {
            let c = &r.conn;
            let (out_msgs, out_bytes) = c.out.counters();
            let rtt = c.meta.lock().rtt.map_or(f64::NAN, |d| d.as_secs_f64());
            (
                r.remote_name.clone(),
                r.remote_id.clone(),
                [
                    c.in_msgs.load(Ordering::Relaxed) as f64,
                    out_msgs as f64,
                    c.in_bytes.load(Ordering::Relaxed) as f64,
                    out_bytes as f64,
                    c.out.pending() as f64,
                    rtt,
                ],
            )
        })
        .collect();
    let families = [
        (
            "tern_route_messages_received_total",
            "counter",
            "Messages received from the route.",
        ),
        (
            "tern_route_messages_sent_total",
            "counter",
            "Messages sent on the route.",
        ),
        (
            "tern_route_bytes_received_total",
            "counter",
            "Payload bytes received from the route.",
        ),
        (
            "tern_route_bytes_sent_total",
            "counter",
            "Payload bytes sent on the route.",
        ),
        (
            "tern_route_pending_bytes",
            "gauge",
            "Bytes queued for the route, not yet written.",
        ),
        (
            "tern_route_last_rtt_seconds",
            "gauge",
            "The route's last measured PING round trip.",
        ),
    ];
    for (i, (name, kind, help)) in families.iter().enumerate() {
        t.family(name, kind, help);
        for (remote_name, remote_id, v) in &rows {
            t.sample(
                name,
                &[("remote_name", remote_name), ("remote_id", remote_id)],
                v[i],
            );
        }
    }
}

fn histogram(t: &mut Text, name: &str, help: &str, h: &Histogram) {
    let (cumulative, sum, count) = h.snapshot();
    t.family(name, "histogram", help);
    let bucket = format!("{name}_bucket");
    for (i, n) in cumulative.iter().enumerate() {
        let le = BOUNDS.get(i).map_or("+Inf".to_string(), |b| b.to_string());
        t.sample(&bucket, &[("le", &le)], *n as f64);
    }
    t.sample(&format!("{name}_sum"), &[], sum);
    t.sample(&format!("{name}_count"), &[], count as f64);
}

/// The Raft node's view; nothing without Raft (`cluster { control_listen }` unset).
fn raft(s: &ServerShared, t: &mut Text) {
    let Some(node) = s.raft_node.get() else {
        return;
    };
    let m = node.metrics();
    let state = node.state();
    let membership = m.membership_config.membership();
    let voters = membership.voter_ids().count();
    let members = membership.nodes().count();
    let gauges: [(&str, &str, f64); 8] = [
        (
            "tern_raft_term",
            "Current Raft term.",
            m.current_term as f64,
        ),
        (
            "tern_raft_leader",
            "Raft node id of the leader this node knows (0 = none).",
            m.current_leader.unwrap_or(0) as f64,
        ),
        (
            "tern_raft_is_leader",
            "1 when this node is the Raft leader.",
            f64::from(u8::from(m.current_leader == Some(node.id))),
        ),
        (
            "tern_raft_last_log_index",
            "Index of the last entry in this node's Raft log.",
            m.last_log_index.unwrap_or(0) as f64,
        ),
        (
            "tern_raft_commit_index",
            "Highest committed log index: on the leader the index a majority of voters \
             hold, elsewhere the applied index (a follower applies what it learns is \
             committed at once).",
            commit_index(&m, node.id) as f64,
        ),
        (
            "tern_raft_applied_index",
            "Highest log index applied to this node's state machine.",
            m.last_applied.map_or(0, |l| l.index) as f64,
        ),
        (
            "tern_raft_members",
            "Members of the Raft group (voters and learners).",
            members as f64,
        ),
        (
            "tern_raft_voters",
            "Voters in the Raft group.",
            voters as f64,
        ),
    ];
    for (name, help, v) in gauges {
        t.single(name, "gauge", help, v);
    }
    t.single(
        "tern_cluster_config_version",
        "gauge",
        "Version of the cluster-wide configuration applied on this node.",
        state.config_version as f64,
    );
    t.single(
        "tern_raft_ready",
        "gauge",
        "1 once this node applied what was committed when it started (/healthz ok).",
        f64::from(u8::from(state.ready)),
    );
}

/// On the leader: the log index held by a majority of voters (its own last index for
/// itself, replication matches for the others). On any other node openraft does not
/// expose the commit index, and the applied index trails it by at most the entries
/// being applied.
fn commit_index(
    m: &openraft::RaftMetrics<crate::cluster::raft::NodeId, crate::cluster::raft::TernNode>,
    me: crate::cluster::raft::NodeId,
) -> u64 {
    let applied = m.last_applied.map_or(0, |l| l.index);
    let Some(repl) = &m.replication else {
        return applied;
    };
    let mut held: Vec<u64> = m
        .membership_config
        .membership()
        .voter_ids()
        .map(|id| {
            if id == me {
                m.last_log_index.unwrap_or(0)
            } else {
                repl.get(&id).cloned().flatten().map_or(0, |l| l.index)
            }
        })
        .collect();
    if held.is_empty() {
        return applied;
    }
    held.sort_unstable_by(|a, b| b.cmp(a));
    held[held.len() / 2].max(applied)
}
