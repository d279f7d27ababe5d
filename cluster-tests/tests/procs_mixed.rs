//! Mixed clusters of real `nats-server` and `tern` processes: how users migrate node
//! by node. Node 0 is the seed every other node routes to, so each layout covers
//! "tern seeded with a nats-server node" or "nats-server seeded with a tern node",
//! and gossip makes the non-seed nodes dial each other (the other direction).
//!
//! Each layout must pass pub/sub in every direction, a queue group spread over all
//! nodes (each message exactly once) and request/reply across routes. tern is a
//! no-pool peer: one route connection per peer, all interest on it, while
//! nats-server's `$SYS` traffic and its dedicated-`$SYS`-route refusal are tolerated.

mod common;

use cluster_tests::procs::{Impl, Procs};

use Impl::{Nats as N, Tern as T};

async fn mixed(kinds: &[Impl], tag: &str) {
    let c = Procs::start(kinds, |_, _| {}).await;
    check_single_connection_per_tern_peer(&c).await;
    common::check_all(&c, tag).await;
    // Still exactly one mesh after all the traffic (no route was dropped or doubled).
    c.wait_mesh().await;
    check_single_connection_per_tern_peer(&c).await;
}

/// A tern node holds exactly one connection per peer, and a nats-server node holds
/// exactly one to each tern peer (no pool, no dedicated `$SYS` route).
async fn check_single_connection_per_tern_peer(c: &Procs) {
    let mut tern_ids = Vec::new();
    for n in &c.nodes {
        if n.opts.imp == T {
            tern_ids.push(n.server_id().await);
        }
    }
    for n in &c.nodes {
        let v = n.json("/routez").await;
        let routes = v["routes"].as_array().cloned().unwrap_or_default();
        let to = |id: &str| {
            routes
                .iter()
                .filter(|r| r["remote_id"].as_str() == Some(id))
                .count()
        };
        if n.opts.imp == T {
            let peers = n.route_peers().await;
            assert_eq!(
                routes.len(),
                peers.len(),
                "{}: more than one connection to a peer: {v}",
                n.opts.name
            );
        }
        for id in &tern_ids {
            if Some(id.as_str()) != v["server_id"].as_str() {
                assert_eq!(to(id), 1, "{}: connections to tern {id}: {v}", n.opts.name);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nats_one_tern_seeded_by_nats() {
    mixed(&[N, N, T], "nnt").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nats_one_tern_seeded_by_tern() {
    mixed(&[T, N, N], "tnn").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_nats_two_tern_seeded_by_tern() {
    mixed(&[T, T, N], "ttn").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_nats_two_tern_seeded_by_nats() {
    mixed(&[N, T, T], "ntt").await;
}
