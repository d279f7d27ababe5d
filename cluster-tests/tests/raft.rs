//! The Raft control plane with in-process nodes: identity kept in store_dir, single-node
//! bootstrap, 3-node formation with bootstrap_expect (exactly one group), learner ->
//! voter promotion, leader failover (timed), restart from store_dir, cluster-wide config
//! applied everywhere, "no quorum" while pub/sub keeps working, node removal, readiness.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cluster_tests::cluster::node_config;
use cluster_tests::harness::{monitor_json, start, wait_until};
use futures::StreamExt;
use tern::cluster::network::{channel, Channel};
use tern::cluster::proto::admin::admin_service_client::AdminServiceClient;
use tern::cluster::proto::admin::{SetConfigRequest, StatusRequest};
use tern::{Config, ServerHandle};

static SEQ: AtomicU64 = AtomicU64::new(0);

fn temp_store() -> PathBuf {
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let d = std::env::temp_dir().join(format!("tern-raft-{}-{nanos}-{n}", std::process::id()));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// Node `i` with Raft on: random ports, its own store_dir, seeded with `seed`.
fn raft_config(i: usize, seed: Option<SocketAddr>, expect: Option<u32>) -> Config {
    let mut c = node_config(i, "R", seed);
    c.store_dir = Some(temp_store());
    c.cluster.control_listen = Some("127.0.0.1:0".into());
    c.cluster.bootstrap_expect = expect;
    c
}

fn leader_of(n: &ServerHandle) -> Option<u64> {
    n.cluster()?.metrics().current_leader
}

/// Waits until every node in `nodes` is a member, agrees on one leader among them, and
/// sees `members` members; returns the leader's index in `nodes`.
async fn wait_group(nodes: &[&ServerHandle], members: usize) -> usize {
    wait_until(
        Duration::from_secs(20),
        "one group with an agreed leader",
        || {
            let ok = nodes.iter().all(|n| {
                let c = n.cluster().expect("raft on");
                let m = c.metrics();
                c.is_member()
                    && m.membership_config.nodes().count() == members
                    && m.current_leader.is_some()
                    && m.current_leader == leader_of(nodes[0])
            });
            async move { ok }
        },
    )
    .await;
    let leader = leader_of(nodes[0]).expect("leader");
    nodes
        .iter()
        .position(|n| n.cluster().map(|c| c.id) == Some(leader))
        .expect("the leader is one of the nodes")
}

async fn admin(n: &ServerHandle) -> AdminServiceClient<Channel> {
    let addr = n.control_addr().expect("control listener").to_string();
    AdminServiceClient::new(channel(&addr, None).expect("channel"))
}

async fn start_three(expect: Option<u32>) -> Vec<ServerHandle> {
    let seed = start(raft_config(0, None, expect)).await;
    let seed_addr = seed.cluster_addr().expect("route listener");
    let mut nodes = vec![seed];
    for i in 1..3 {
        nodes.push(start(raft_config(i, Some(seed_addr), expect)).await);
    }
    nodes
}

#[tokio::test]
async fn single_node_bootstraps_and_keeps_its_identity_across_restarts() {
    let cfg = raft_config(0, None, None);
    let n = start(cfg.clone()).await;
    let c = n.cluster().expect("raft on").clone();
    wait_until(Duration::from_secs(10), "single node leads", || {
        let ok = c.is_member() && c.metrics().current_leader == Some(c.id);
        async move { ok }
    })
    .await;
    let mon = n.monitor_addr().expect("monitor");
    wait_until(Duration::from_secs(10), "healthz ready", || async move {
        monitor_json(mon, "/healthz").await["status"] == "ok"
    })
    .await;
    let id = c.id;
    let control = n.control_addr().expect("control");
    drop(c);
    n.shutdown().await;

    let mut again = cfg;
    again.cluster.control_listen = Some(control.to_string());
    let n = start(again).await;
    let c = n.cluster().expect("raft on").clone();
    assert_eq!(c.id, id, "the node id is kept in store_dir");
    wait_until(
        Duration::from_secs(10),
        "restarted node leads again",
        || {
            let ok = c.metrics().current_leader == Some(id);
            async move { ok }
        },
    )
    .await;
    n.shutdown().await;
}

#[tokio::test]
async fn store_dir_of_another_cluster_is_refused() {
    let cfg = raft_config(0, None, None);
    let n = start(cfg.clone()).await;
    let c = n.cluster().expect("raft on").clone();
    wait_until(Duration::from_secs(10), "bootstrapped", || {
        let ok = c.is_member();
        async move { ok }
    })
    .await;
    drop(c);
    n.shutdown().await;
    let mut other = cfg;
    other.cluster.name = Some("other".into());
    let e = tern::Server::start(other).await.err().expect("refused");
    assert!(e.to_string().contains("belongs to cluster \"R\""), "{e}");
}

#[tokio::test]
async fn three_nodes_form_exactly_one_group_and_fail_over() {
    let nodes = start_three(Some(3)).await;
    let refs: Vec<&ServerHandle> = nodes.iter().collect();
    let leader = wait_group(&refs, 3).await;
    // One group: every node has the same group id and all three are voters.
    wait_until(Duration::from_secs(10), "group named", || {
        let ids: Vec<String> = nodes
            .iter()
            .map(|n| n.cluster().unwrap().cluster_id())
            .collect();
        async move { !ids[0].is_empty() && ids.iter().all(|i| *i == ids[0]) }
    })
    .await;
    for n in &nodes {
        let voters = n
            .cluster()
            .unwrap()
            .metrics()
            .membership_config
            .voter_ids()
            .count();
        assert_eq!(voters, 3);
    }

    // Kill the leader: a new one among the survivors.
    let mut nodes = nodes;
    let old = nodes.remove(leader);
    let old_id = old.cluster().unwrap().id;
    let t0 = Instant::now();
    old.shutdown().await;
    let refs: Vec<&ServerHandle> = nodes.iter().collect();
    wait_until(Duration::from_secs(10), "new leader", || {
        let ok = refs.iter().all(|n| {
            let l = leader_of(n);
            l.is_some() && l != Some(old_id) && l == leader_of(refs[0])
        });
        async move { ok }
    })
    .await;
    println!("leader failover took {:?}", t0.elapsed());
    for n in nodes {
        n.shutdown().await;
    }
}

#[tokio::test]
async fn seeded_nodes_join_as_learners_and_are_promoted() {
    // No bootstrap_expect: the seedless node bootstraps alone, the others join.
    let nodes = start_three(None).await;
    let refs: Vec<&ServerHandle> = nodes.iter().collect();
    wait_group(&refs, 3).await;
    wait_until(
        Duration::from_secs(15),
        "learners promoted to voters",
        || {
            let ok = nodes.iter().all(|n| {
                n.cluster()
                    .unwrap()
                    .metrics()
                    .membership_config
                    .voter_ids()
                    .count()
                    == 3
            });
            async move { ok }
        },
    )
    .await;
    for n in nodes {
        n.shutdown().await;
    }
}

#[tokio::test]
async fn a_restarted_follower_rejoins_from_its_store() {
    let mut nodes = start_three(Some(3)).await;
    let refs: Vec<&ServerHandle> = nodes.iter().collect();
    let leader = wait_group(&refs, 3).await;
    let i = (leader + 1) % 3;
    let f = nodes.remove(i);
    let id = f.cluster().unwrap().id;
    let mut cfg = f.shared.config().as_ref().clone();
    cfg.cluster.control_listen = Some(f.control_addr().unwrap().to_string());
    cfg.cluster.port = Some(f.cluster_addr().unwrap().port() as i32);
    f.shutdown().await;
    let back = start(cfg).await;
    assert_eq!(back.cluster().unwrap().id, id, "same identity");
    nodes.push(back);
    let refs: Vec<&ServerHandle> = nodes.iter().collect();
    wait_group(&refs, 3).await;
    for n in nodes {
        n.shutdown().await;
    }
}

#[tokio::test]
async fn cluster_config_set_is_applied_on_every_node() {
    let nodes = start_three(Some(3)).await;
    let refs: Vec<&ServerHandle> = nodes.iter().collect();
    let leader = wait_group(&refs, 3).await;
    // Through a follower: forwarded to the leader.
    let follower = &nodes[(leader + 1) % 3];
    let mut a = admin(follower).await;
    let dry = a
        .set_config(SetConfigRequest {
            json: r#"{"max_payload": 4096}"#.into(),
            dry_run: true,
        })
        .await
        .expect("dry run")
        .into_inner();
    assert!(!dry.committed);
    assert_eq!(dry.diff, vec!["+ max_payload: 4096".to_string()]);
    let bad = a
        .set_config(SetConfigRequest {
            json: r#"{"max_payload": 0}"#.into(),
            dry_run: false,
        })
        .await
        .expect_err("invalid config rejected");
    assert!(bad.message().contains("max_payload"), "{}", bad.message());
    let t0 = Instant::now();
    let r = a
        .set_config(SetConfigRequest {
            json: r#"{"max_payload": 4096}"#.into(),
            dry_run: false,
        })
        .await
        .expect("committed")
        .into_inner();
    assert!(r.committed && r.version == 1);
    for n in &nodes {
        let mon = n.monitor_addr().unwrap();
        wait_until(
            Duration::from_secs(2),
            "max_payload applied",
            || async move { monitor_json(mon, "/varz").await["max_payload"] == 4096 },
        )
        .await;
    }
    println!("config applied on all nodes after {:?}", t0.elapsed());
    let s = a.status(StatusRequest {}).await.unwrap().into_inner();
    assert_eq!((s.config_version, s.members.len()), (1, 3));
    for n in nodes {
        n.shutdown().await;
    }
}

#[tokio::test]
async fn without_quorum_config_writes_fail_and_pub_sub_keeps_working() {
    // Three voters and a fourth node that stays a learner (max_voters 3).
    let seed = start(raft_config(0, None, Some(3))).await;
    let seed_addr = seed.cluster_addr().unwrap();
    let mut nodes = vec![seed];
    for i in 1..4 {
        let mut c = raft_config(i, Some(seed_addr), Some(3));
        c.cluster.max_voters = Some(3);
        nodes.push(start(c).await);
    }
    let refs: Vec<&ServerHandle> = nodes.iter().collect();
    wait_group(&refs, 4).await;
    // Stop two voters (any two that are not the node we keep).
    let voters: Vec<u64> = nodes[0]
        .cluster()
        .unwrap()
        .metrics()
        .membership_config
        .voter_ids()
        .collect();
    let mut keep = Vec::new();
    let mut stopped = 0;
    for n in nodes {
        if stopped < 2 && voters.contains(&n.cluster().unwrap().id) {
            n.shutdown().await;
            stopped += 1;
        } else {
            keep.push(n);
        }
    }
    assert_eq!(keep.len(), 2);
    let mut a = admin(&keep[0]).await;
    let deadline = Instant::now() + Duration::from_secs(15);
    let last = loop {
        let r = a
            .set_config(SetConfigRequest {
                json: r#"{"max_payload": 2048}"#.into(),
                dry_run: false,
            })
            .await;
        let msg = match r {
            Ok(_) => "committed".to_string(),
            Err(e) => e.message().to_string(),
        };
        if msg.contains("no quorum") {
            break msg;
        }
        assert!(Instant::now() < deadline, "no clear no-quorum error: {msg}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    println!("write without quorum: {last}");
    // Messages still flow between the survivors over their route.
    let sub_nc = async_nats::connect(format!("nats://{}", keep[1].client_addr()))
        .await
        .unwrap();
    let mut sub = sub_nc.subscribe("still.up").await.unwrap();
    sub_nc.flush().await.unwrap();
    let pub_nc = async_nats::connect(format!("nats://{}", keep[0].client_addr()))
        .await
        .unwrap();
    let got = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            pub_nc.publish("still.up", "x".into()).await.unwrap();
            pub_nc.flush().await.unwrap();
            if let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(200), sub.next()).await
            {
                return m;
            }
        }
    })
    .await
    .expect("pub/sub between survivors");
    assert_eq!(&got.payload[..], b"x");
    for n in keep {
        n.shutdown().await;
    }
}

#[tokio::test]
async fn removed_node_loses_its_routes_and_is_not_redialled() {
    let nodes = start_three(Some(3)).await;
    let refs: Vec<&ServerHandle> = nodes.iter().collect();
    let leader = wait_group(&refs, 3).await;
    let victim = (leader + 1) % 3;
    let victim_id = nodes[victim].cluster().unwrap().id;
    let mut a = admin(&nodes[leader]).await;
    a.remove_node(tern::cluster::proto::admin::RemoveNodeRequest { node_id: victim_id })
        .await
        .expect("removed");
    let others: Vec<&ServerHandle> = (0..3).filter(|i| *i != victim).map(|i| &nodes[i]).collect();
    wait_until(
        Duration::from_secs(10),
        "removed from membership and routes",
        || {
            let ok = others.iter().all(|n| {
                let c = n.cluster().unwrap();
                let gone = c
                    .metrics()
                    .membership_config
                    .nodes()
                    .all(|(id, _)| *id != victim_id);
                let no_route = n
                    .shared
                    .routes
                    .routes()
                    .iter()
                    .all(|r| r.info.lock().tern_node_id != victim_id);
                gone && no_route
            });
            async move { ok }
        },
    )
    .await;
    // Routes stay down: the victim's own seed dials are refused.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for n in &others {
        assert!(n
            .shared
            .routes
            .routes()
            .iter()
            .all(|r| r.info.lock().tern_node_id != victim_id));
    }
    for n in nodes {
        n.shutdown().await;
    }
}
