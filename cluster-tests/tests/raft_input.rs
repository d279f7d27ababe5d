//! The Raft control plane against bad input and races, in-process: three nodes started
//! at the same moment with the same seeds form exactly one group (20 times in a row),
//! malformed or unauthenticated admin calls get a clear gRPC status and change nothing,
//! and a node whose store_dir belongs to another Raft group is refused on Join.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use cluster_tests::cluster::node_config;
use cluster_tests::harness::{start, wait_until};
use tern::cluster::network::{channel, request};
use tern::cluster::proto::admin::admin_service_client::AdminServiceClient;
use tern::cluster::proto::admin::{
    GetConfigRequest, RemoveNodeRequest, SetConfigRequest, StatusRequest,
};
use tern::cluster::proto::raft::raft_service_client::RaftServiceClient;
use tern::cluster::proto::raft::JoinRequest;
use tern::{Config, ServerHandle};

static SEQ: AtomicU64 = AtomicU64::new(0);
const TOKEN: &str = "raft-input-token";
const RPC: Duration = Duration::from_secs(5);

struct Store(PathBuf);

impl Store {
    fn new() -> Store {
        let d = std::env::temp_dir().join(format!(
            "tern-raft-input-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("temp dir");
        Store(d)
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn free_port() -> u16 {
    cluster_tests::procs::reserve_port()
}

fn raft_node(i: usize, store: &Store, seeds: &[SocketAddr], expect: Option<u32>) -> Config {
    let mut c = node_config(i, "RI", None);
    c.cluster.routes = seeds.iter().map(|s| format!("nats-route://{s}")).collect();
    c.store_dir = Some(store.0.clone());
    c.cluster.control_listen = Some("127.0.0.1:0".into());
    c.cluster.control_token = Some(TOKEN.into());
    c.cluster.bootstrap_expect = expect;
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_started_together_form_one_group_20_times_in_a_row() {
    for round in 0..20 {
        let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let seeds: Vec<SocketAddr> = ports.iter().map(|p| ([127, 0, 0, 1], *p).into()).collect();
        let stores: Vec<Store> = (0..3).map(|_| Store::new()).collect();
        let cfg = |i: usize| {
            let mut c = raft_node(i, &stores[i], &seeds, Some(3));
            c.cluster.port = Some(i32::from(ports[i]));
            c
        };
        // Every node has every node (itself included) as a seed, and all start at once.
        let (a, b, c) = tokio::join!(start(cfg(0)), start(cfg(1)), start(cfg(2)));
        let nodes = [a, b, c];
        wait_until(
            Duration::from_secs(20),
            &format!("round {round}: one group of 3"),
            || {
                let views: Vec<_> = nodes
                    .iter()
                    .map(|n| {
                        let c = n.cluster().expect("raft on");
                        let m = c.metrics();
                        (
                            m.current_leader,
                            c.cluster_id(),
                            m.membership_config.nodes().count(),
                        )
                    })
                    .collect();
                let ok = views[0].0.is_some()
                    && !views[0].1.is_empty()
                    && views.iter().all(|v| *v == views[0] && v.2 == 3);
                async move { ok }
            },
        )
        .await;
        let ids: Vec<u64> = nodes.iter().map(|n| n.cluster().unwrap().id).collect();
        let members: Vec<u64> = nodes[0]
            .cluster()
            .unwrap()
            .metrics()
            .membership_config
            .nodes()
            .map(|(id, _)| *id)
            .collect();
        let mut want = ids.clone();
        want.sort_unstable();
        assert_eq!(members, want, "round {round}: the three nodes, nobody else");
        for n in nodes {
            n.shutdown().await;
        }
    }
}

async fn single_leader() -> (ServerHandle, Store) {
    let store = Store::new();
    let n = start(raft_node(0, &store, &[], None)).await;
    let c = n.cluster().expect("raft on").clone();
    wait_until(
        Duration::from_secs(10),
        "single node leads, group named",
        || {
            let ok = c.metrics().current_leader == Some(c.id) && !c.cluster_id().is_empty();
            async move { ok }
        },
    )
    .await;
    (n, store)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_or_unauthenticated_admin_calls_get_a_clear_status_and_change_nothing() {
    let (n, _store) = single_leader().await;
    let addr = n.control_addr().expect("control").to_string();
    let mut admin = AdminServiceClient::new(channel(&addr, None).unwrap());
    let set = |json: &str| SetConfigRequest {
        json: json.into(),
        dry_run: false,
    };

    for token in [None, Some("wrong")] {
        let e = admin
            .set_config(request(set(r#"{"max_payload": 2048}"#), token, RPC))
            .await
            .expect_err("no or wrong token");
        assert_eq!(e.code(), tonic::Code::Unauthenticated, "{e:?}");
        assert!(e.message().contains("control token"), "{e:?}");
        let e = admin
            .status(request(StatusRequest {}, token, RPC))
            .await
            .expect_err("reads need the token too");
        assert_eq!(e.code(), tonic::Code::Unauthenticated, "{e:?}");
    }

    let cases = [
        ("{not json", "invalid cluster config"),
        (r#"{"max_paylod": 1}"#, "unknown field"),
        (r#"{"max_payload": 0}"#, "max_payload 0 must be between"),
        (
            r#"{"max_payload": "2MB", "max_pending": "1MB"}"#,
            "cannot exceed max_pending",
        ),
    ];
    for (json, want) in cases {
        let e = admin
            .set_config(request(set(json), Some(TOKEN), RPC))
            .await
            .expect_err(json);
        assert_eq!(e.code(), tonic::Code::InvalidArgument, "{json}: {e:?}");
        assert!(e.message().contains(want), "{json}: {e:?}");
    }
    let e = admin
        .remove_node(request(
            RemoveNodeRequest { node_id: 12345 },
            Some(TOKEN),
            RPC,
        ))
        .await
        .expect_err("not a member");
    assert_eq!(e.code(), tonic::Code::FailedPrecondition, "{e:?}");
    assert!(e.message().contains("node 12345 is not a member"), "{e:?}");

    let cfg = admin
        .get_config(request(GetConfigRequest {}, Some(TOKEN), RPC))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (cfg.version, cfg.json.as_str()),
        (0, "{}"),
        "nothing was committed"
    );
    let s = admin
        .status(request(StatusRequest {}, Some(TOKEN), RPC))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(s.members.len(), 1);
    assert!(s.removed.is_empty());
    n.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_of_another_raft_group_is_refused_on_join() {
    let (n, _store) = single_leader().await;
    let c = n.cluster().unwrap().clone();
    let addr = n.control_addr().expect("control").to_string();
    let mut raft = RaftServiceClient::new(channel(&addr, None).unwrap());
    let join = |cluster_id: &str| JoinRequest {
        node_id: 777,
        control_addr: "127.0.0.1:1".into(),
        route_url: "nats-route://127.0.0.1:1".into(),
        name: "stray".into(),
        cluster_name: "RI".into(),
        cluster_id: cluster_id.into(),
    };
    let e = raft
        .join(request(join("0123456789abcdef"), Some(TOKEN), RPC))
        .await
        .expect_err("another group");
    assert_eq!(e.code(), tonic::Code::FailedPrecondition, "{e:?}");
    assert!(
        e.message()
            .contains("node 777 belongs to Raft group 0123456789abcdef, not to this group"),
        "{e:?}"
    );
    let e = raft
        .join(request(join(""), Some("wrong"), RPC))
        .await
        .expect_err("token checked on the Raft service too");
    assert_eq!(e.code(), tonic::Code::Unauthenticated, "{e:?}");
    assert_eq!(c.metrics().membership_config.nodes().count(), 1);
    n.shutdown().await;
}
