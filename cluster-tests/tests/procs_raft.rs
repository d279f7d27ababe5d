//! The Raft control plane with real `tern` processes, each with its own store_dir:
//! kill -9 of the leader (failover time printed) and a membership change afterwards,
//! removing a node while it is down (it stays out when it comes back), a follower and
//! then the whole cluster restarted from their store_dirs (membership and committed
//! config survive), losing 2 of 3 voters ("no quorum" from the CLI while pub/sub keeps
//! flowing), and the bad-input cases: a store_dir of another cluster, a store_dir of
//! another Raft group, an unreachable seed.
//!
//! Run with `--no-capture` to see the measured failover time.

mod common;

use std::time::{Duration, Instant};

use cluster_tests::procs::{wait_for, Ports};
use common::raft::{cli, free_port, start_group, wait_group, RaftNode, RaftOpts, TempDir, TOKEN};
use common::{client, next_msg};
use tern::cluster::network::{channel, request};
use tern::cluster::proto::admin::admin_service_client::AdminServiceClient;
use tern::cluster::proto::admin::SetConfigRequest;

const GROUP: Duration = Duration::from_secs(20);

fn index_of(nodes: &[RaftNode], name: &str) -> usize {
    nodes
        .iter()
        .position(|n| n.name() == name)
        .unwrap_or_else(|| panic!("no node named {name}"))
}

/// Name of member `id` in a status reply.
fn name_of(s: &tern::cluster::proto::admin::StatusReply, id: u64) -> String {
    s.members
        .iter()
        .find(|m| m.node_id == id)
        .map(|m| m.name.clone())
        .unwrap_or_else(|| panic!("node {id} is not in {s:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_kill9_fails_over_and_a_node_removed_while_down_stays_out() {
    let mut nodes = start_group(3, |_, _| {});
    let refs: Vec<&RaftNode> = nodes.iter().collect();
    let before = wait_group(&refs, 3, GROUP).await;
    let old_leader = before.leader_id;
    let li = index_of(&nodes, &name_of(&before, old_leader));
    let dead_server_id = nodes[li].node.server_id().await;

    // (a) kill -9 the leader: the two survivors elect a new one.
    nodes[li].node.kill9();
    let t0 = Instant::now();
    let survivors: Vec<&RaftNode> = (0..3).filter(|&i| i != li).map(|i| &nodes[i]).collect();
    // Polled with the AdminService (a CLI process per poll would blur the time).
    let new_leader = loop {
        let mut leaders = Vec::new();
        for n in &survivors {
            leaders.push(n.status().await.map_or(0, |s| s.leader_id));
        }
        if leaders
            .iter()
            .all(|&l| l != 0 && l != old_leader && l == leaders[0])
        {
            break leaders[0];
        }
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "no new leader within 5 s of kill -9: {leaders:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let failover = t0.elapsed();
    println!(
        "procs_raft: new leader {new_leader} {failover:?} after kill -9 of leader {old_leader}"
    );
    eprintln!("procs_raft: leader failover after kill -9 took {failover:?}");

    // A membership change works again: (c) remove the dead node, through the CLI.
    let out = cli(
        survivors[0].control,
        Some(TOKEN),
        &["remove", &old_leader.to_string()],
    )
    .await;
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.contains(&format!("node {old_leader} removed")),
        "{out:?}"
    );
    let after = wait_group(&survivors, 2, GROUP).await;
    assert!(after.removed.contains(&old_leader), "{after:?}");

    // It comes back from its store_dir: it learns it was removed, says so and stays out.
    nodes[li].node.restart();
    let back = &nodes[li];
    wait_for(
        Duration::from_secs(20),
        "the removed node logs its removal",
        || async { back.node.log().contains("was removed from cluster group") },
    )
    .await;
    let survivors: Vec<&RaftNode> = (0..3).filter(|&i| i != li).map(|i| &nodes[i]).collect();
    let s = wait_group(&survivors, 2, GROUP).await;
    assert!(s.members.iter().all(|m| m.node_id != old_leader), "{s:?}");
    assert_eq!(
        s.leader_id, after.leader_id,
        "the comeback did not disturb the leader"
    );
    let restarted_id = nodes[li].node.server_id().await;
    assert_ne!(restarted_id, dead_server_id, "a new process");
    for n in &survivors {
        // Survivors refuse its routes (they may have dialled it since its restart).
        let peers = n.node.route_peers().await;
        assert!(
            !peers.contains(&restarted_id),
            "{} routes to the removed node",
            n.name()
        );
        assert_eq!(peers.len(), 1, "{}: {peers:?}", n.name());
    }
    let health = cluster_tests::harness::monitor_json(nodes[li].node.http_addr(), "/healthz").await;
    assert_eq!(
        health["status"], "unavailable",
        "removed node is never ready: {health}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarts_from_store_dir_keep_node_id_membership_and_config() {
    let mut nodes = start_group(3, |_, _| {});
    let refs: Vec<&RaftNode> = nodes.iter().collect();
    let first = wait_group(&refs, 3, GROUP).await;

    // Commit a config written in nats conf syntax; token from the environment.
    let dir = TempDir::new("conf");
    let file = dir.0.join("limits.conf");
    std::fs::write(
        &file,
        "# cluster-wide limits\nmax_payload: 2MB\nmax_connections = 500\n",
    )
    .unwrap();
    let set = cli(
        nodes[1].control,
        Some(TOKEN),
        &["--json", "config", "set", file.to_str().unwrap()],
    )
    .await;
    assert_eq!(set.code, 0, "{set:?}");
    let set = set.json();
    assert_eq!(set["committed"], true, "{set}");
    let version = set["version"].as_u64().expect("version");
    for n in &nodes {
        wait_for(GROUP, "max_payload 2MB in /varz", || async {
            n.node.json("/varz").await["max_payload"] == 2 * 1024 * 1024
        })
        .await;
    }

    // (b) a follower restarts from its store_dir: same node id, back in by itself.
    let fi = (0..3)
        .find(|&i| nodes[i].name() != name_of(&first, first.leader_id))
        .unwrap();
    let id = nodes[fi].node_id().await;
    nodes[fi].node.restart();
    assert_eq!(nodes[fi].node_id().await, id, "same node id after restart");
    let refs: Vec<&RaftNode> = nodes.iter().collect();
    let s = wait_group(&refs, 3, GROUP).await;
    assert_eq!(s.cluster_id, first.cluster_id);

    // (e) the whole cluster stops and starts again from the store_dirs.
    for n in nodes.iter_mut() {
        n.node.kill9();
    }
    for n in nodes.iter_mut() {
        n.node.restart();
    }
    let refs: Vec<&RaftNode> = nodes.iter().collect();
    let s = wait_group(&refs, 3, GROUP).await;
    assert_eq!(s.cluster_id, first.cluster_id, "the same group");
    let mut ids: Vec<u64> = s.members.iter().map(|m| m.node_id).collect();
    let mut ids_before: Vec<u64> = first.members.iter().map(|m| m.node_id).collect();
    ids.sort_unstable();
    ids_before.sort_unstable();
    assert_eq!(ids, ids_before, "the same members");

    // The operator's view through the CLI: --token flag, --json output.
    let st = cli(
        nodes[2].control,
        None,
        &["--token", TOKEN, "status", "--json"],
    )
    .await;
    assert_eq!(st.code, 0, "{st:?}");
    let st = st.json();
    assert_eq!(st["members"].as_array().map(Vec::len), Some(3), "{st}");
    assert_eq!(st["cluster_id"], first.cluster_id.as_str());
    let got = cli(nodes[0].control, Some(TOKEN), &["config", "get", "--json"]).await;
    assert_eq!(got.code, 0, "{got:?}");
    let got = got.json();
    assert_eq!(got["version"].as_u64(), Some(version), "{got}");
    assert_eq!(got["config"]["max_payload"], 2 * 1024 * 1024, "{got}");
    assert_eq!(got["config"]["max_connections"], 500, "{got}");
    for n in &nodes {
        wait_for(
            GROUP,
            "cluster config applied after a full restart",
            || async {
                let v = n.node.json("/varz").await;
                v["max_payload"] == 2 * 1024 * 1024 && v["max_connections"] == 500
            },
        )
        .await;
    }

    // Without the token the CLI is refused, and says why.
    let denied = cli(nodes[0].control, None, &["status"]).await;
    assert_ne!(denied.code, 0, "{denied:?}");
    assert!(
        denied.stderr.contains("control token") && denied.stderr.contains("Unauthenticated"),
        "{denied:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_two_of_three_voters_fails_config_writes_but_messages_flow() {
    // 3 voters (max_voters 3) + 1 learner: after two voters die, the surviving voter
    // and the learner still have a route between them to carry messages, while the
    // group (1 of 3 voters) has no quorum for config writes.
    let ports: Vec<Ports> = (0..4).map(|_| Ports::free()).collect();
    let opts = |i: usize| RaftOpts {
        bootstrap_expect: Some(3),
        max_voters: Some(3),
        routes: if i == 0 {
            vec![]
        } else {
            vec![ports[0].route_url()]
        },
        ..Default::default()
    };
    let mut nodes: Vec<RaftNode> = (0..3)
        .map(|i| RaftNode::start(&format!("t{i}"), ports[i], &opts(i)))
        .collect();
    let refs: Vec<&RaftNode> = nodes.iter().collect();
    wait_group(&refs, 3, GROUP).await;
    nodes.push(RaftNode::start("t3", ports[3], &opts(3)));
    let refs: Vec<&RaftNode> = nodes.iter().collect();
    let s = wait_group(&refs, 4, GROUP).await;
    let learner = s
        .members
        .iter()
        .find(|m| m.role == "learner")
        .unwrap_or_else(|| panic!("one learner: {s:?}"));
    assert_eq!(learner.name, "t3");
    let version = s.config_version;

    // Kill two voters, keep t2.
    nodes[0].node.kill9();
    nodes[1].node.kill9();
    let (voter, learner) = (&nodes[2], &nodes[3]);
    let dir = TempDir::new("conf");
    let file = dir.0.join("limits.yaml");
    std::fs::write(&file, "max_connections: 77\n").unwrap();
    for n in [voter, learner] {
        let out = cli(
            n.control,
            Some(TOKEN),
            &["config", "set", file.to_str().unwrap()],
        )
        .await;
        assert_ne!(out.code, 0, "{out:?}");
        assert!(
            out.stderr.contains("no quorum") && out.stderr.contains("Unavailable"),
            "{}: {out:?}",
            n.name()
        );
    }
    let mut admin = AdminServiceClient::new(channel(&voter.control_addr(), None).unwrap());
    let e = admin
        .set_config(request(
            SetConfigRequest {
                json: r#"{"max_connections": 77}"#.into(),
                dry_run: false,
            },
            Some(TOKEN),
            Duration::from_secs(15),
        ))
        .await
        .expect_err("no quorum");
    assert_eq!(e.code(), tonic::Code::Unavailable, "{e:?}");
    assert!(e.message().contains("no quorum"), "{e:?}");

    // Messages and interest keep flowing between the survivors.
    let a = client(&voter.node.client_url()).await;
    let b = client(&learner.node.client_url()).await;
    let mut sub_a = a.subscribe("nq.a").await.unwrap();
    let mut sub_b = b.subscribe("nq.b").await.unwrap();
    a.flush().await.unwrap();
    b.flush().await.unwrap();
    learner.node.wait_interest("nq.a", 1).await;
    voter.node.wait_interest("nq.b", 1).await;
    b.publish("nq.a", "to voter".into()).await.unwrap();
    a.publish("nq.b", "to learner".into()).await.unwrap();
    b.flush().await.unwrap();
    a.flush().await.unwrap();
    assert_eq!(
        &next_msg(&mut sub_a, 5, "learner -> voter").await.payload[..],
        b"to voter"
    );
    assert_eq!(
        &next_msg(&mut sub_b, 5, "voter -> learner").await.payload[..],
        b"to learner"
    );

    // Nothing was committed.
    let got = cli(voter.control, Some(TOKEN), &["config", "get", "--json"]).await;
    assert_eq!(got.json()["version"].as_u64(), Some(version), "{got:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_dir_of_another_cluster_or_group_is_refused() {
    // A single node of cluster "east" creates its store (group G1), then stops.
    let solo = RaftOpts {
        bootstrap_expect: None,
        cluster_name: "east".into(),
        ..Default::default()
    };
    let mut east = RaftNode::start("e0", Ports::free(), &solo);
    wait_group(&[&east], 1, GROUP).await;
    let g1 = east.status().await.unwrap().cluster_id;
    let ident = east.store.0.join("raft").join("identity.json");
    wait_for(GROUP, "identity.json records the group id", || async {
        std::fs::read_to_string(&ident).is_ok_and(|t| t.contains(&g1))
    })
    .await;
    east.node.kill9();

    // Same store_dir, cluster "west": refuses to start, one clear line, exit != 0.
    let p = Ports::free();
    let out = tokio::process::Command::new(cluster_tests::diff::tern_bin())
        .args(["-a", "127.0.0.1", "-p", &p.client.to_string()])
        .args(["--cluster", &format!("nats://127.0.0.1:{}", p.cluster)])
        .args([
            "--cluster_name",
            "west",
            "--store_dir",
            east.store.0.to_str().unwrap(),
        ])
        .args(["--cluster_control", &format!("127.0.0.1:{}", free_port())])
        .output();
    let out = tokio::time::timeout(Duration::from_secs(20), out)
        .await
        .unwrap()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("belongs to cluster \"east\""), "{err}");

    // Same cluster name but another Raft group: the store says G1 (its log was lost,
    // identity.json kept); a group G2 of "east" runs elsewhere. It must not join G2.
    let g2_node = RaftNode::start("e1", Ports::free(), &solo);
    wait_group(&[&g2_node], 1, GROUP).await;
    let g2 = g2_node.status().await.unwrap().cluster_id;
    assert_ne!(g1, g2);
    let raft_dir = east.store.0.join("raft");
    for e in std::fs::read_dir(&raft_dir).unwrap() {
        let e = e.unwrap();
        if e.file_name() != "identity.json" {
            let p = e.path();
            let _ = std::fs::remove_dir_all(&p).or_else(|_| std::fs::remove_file(&p));
        }
    }
    let ident = std::fs::read_to_string(raft_dir.join("identity.json")).unwrap();
    assert!(
        ident.contains(&g1),
        "identity.json records the group: {ident}"
    );
    let stray_opts = RaftOpts {
        routes: vec![g2_node.node.ports.route_url()],
        ..solo.clone()
    };
    let store = std::mem::replace(&mut east.store, TempDir::new("unused"));
    let stray = RaftNode::start_in("e0", east.node.ports, &stray_opts, store, east.control);
    drop(east);
    wait_for(
        GROUP,
        "the stray node refuses to join another group",
        || async {
            stray.node.log().contains(&format!(
                "it is in Raft group {g2}, this store_dir belongs to group {g1}"
            ))
        },
    )
    .await;
    let s = g2_node.status().await.unwrap();
    assert_eq!(
        s.members.len(),
        1,
        "G2 did not take the stray node in: {s:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_seed_is_logged_and_retried() {
    // a0 seeds with b0's route port before b0 exists; b0 has no seeds, so the two meet
    // only if a0 keeps dialling.
    let (pa, pb) = (Ports::free(), Ports::free());
    let a = RaftNode::start(
        "a0",
        pa,
        &RaftOpts {
            bootstrap_expect: Some(2),
            routes: vec![pb.route_url()],
            extra_args: vec!["-D".into()],
            ..Default::default()
        },
    );
    let url = format!("127.0.0.1:{}", pb.cluster);
    wait_for(GROUP, "a0 logs the failed seed", || async {
        a.node.log().contains("Error trying to connect to route") && a.node.log().contains(&url)
    })
    .await;
    let b = RaftNode::start(
        "b0",
        pb,
        &RaftOpts {
            bootstrap_expect: Some(2),
            ..Default::default()
        },
    );
    let s = wait_group(&[&a, &b], 2, Duration::from_secs(40)).await;
    assert_eq!(s.members.len(), 2);
}
