//! tern's cluster series in /metrics: per-route counters labelled by peer, client and
//! route round-trip histograms, and the Raft gauges (term, leader, indexes, members,
//! config version).

use std::time::Duration;

use cluster_tests::cluster::{node_config, TestCluster};
use cluster_tests::harness::{metric, monitor_text, start, wait_until};
use tern::cluster::network::channel;
use tern::cluster::proto::admin::admin_service_client::AdminServiceClient;
use tern::cluster::proto::admin::SetConfigRequest;

const WAIT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn route_counters_and_round_trip_histograms() {
    // Route and client PINGs every 100 ms, so round trips are measured in the test.
    let c = TestCluster::start_with(2, |_, cfg| {
        cfg.cluster.ping_interval = Some(Duration::from_millis(100));
        cfg.ping_interval = Duration::from_millis(100);
    })
    .await;
    let sub_nc = async_nats::connect(c.client_url(1)).await.unwrap();
    let mut sub = sub_nc.subscribe("m.x").await.unwrap();
    sub_nc.flush().await.unwrap();
    c.wait_remote_interest(0, "m.x", 1).await;
    let pub_nc = async_nats::connect(c.client_url(0)).await.unwrap();
    for _ in 0..25 {
        pub_nc.publish("m.x", "0123456789".into()).await.unwrap();
    }
    pub_nc.flush().await.unwrap();
    for _ in 0..25 {
        tokio::time::timeout(WAIT, futures::StreamExt::next(&mut sub))
            .await
            .expect("delivered")
            .expect("message");
    }
    let (m0, m1) = (
        c.nodes[0].monitor_addr().unwrap(),
        c.nodes[1].monitor_addr().unwrap(),
    );
    wait_until(WAIT, "route and client RTTs measured", || async move {
        let (a, b) = (
            monitor_text(m0, "/metrics").await,
            monitor_text(m1, "/metrics").await,
        );
        metric(&a, "tern_route_rtt_seconds_count", &[]).unwrap_or(0.0) >= 1.0
            && metric(&b, "tern_route_rtt_seconds_count", &[]).unwrap_or(0.0) >= 1.0
            && metric(&b, "tern_client_rtt_seconds_count", &[]).unwrap_or(0.0) >= 1.0
    })
    .await;
    let a = monitor_text(m0, "/metrics").await;
    let b = monitor_text(m1, "/metrics").await;
    // The publisher's node sent the 25 messages on its route to n1; n1 received them.
    let sent = metric(
        &a,
        "tern_route_messages_sent_total",
        &[("remote_name", "n1")],
    );
    let got = metric(
        &b,
        "tern_route_messages_received_total",
        &[("remote_name", "n0")],
    );
    assert_eq!(sent, Some(25.0), "{a}");
    assert_eq!(got, Some(25.0), "{b}");
    assert_eq!(
        metric(&a, "tern_route_bytes_sent_total", &[("remote_name", "n1")]),
        Some(250.0)
    );
    assert!(a.contains("# TYPE tern_route_rtt_seconds histogram"));
    assert!(a.contains("# TYPE tern_client_rtt_seconds histogram"));
    // Buckets are cumulative and +Inf equals the count.
    let count = metric(&a, "tern_route_rtt_seconds_count", &[]).unwrap();
    let inf = metric(&a, "tern_route_rtt_seconds_bucket", &[("le", "+Inf")]).unwrap();
    assert_eq!(inf, count);
    let small = metric(&a, "tern_route_rtt_seconds_bucket", &[("le", "0.0001")]).unwrap();
    assert!(small <= inf);
    // The subscriber's round trips to n1.
    assert!(
        metric(&b, "tern_client_rtt_seconds_count", &[]).unwrap() >= 1.0,
        "{b}"
    );
    c.shutdown().await;
}

#[tokio::test]
async fn raft_gauges_follow_the_group_and_config_version() {
    let dir = std::env::temp_dir().join(format!(
        "tern-metrics-raft-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    let mut cfg = node_config(0, "M", None);
    cfg.store_dir = Some(dir.clone());
    cfg.cluster.control_listen = Some("127.0.0.1:0".into());
    // No seeds and no bootstrap_expect: the node initialises a group of its own.
    let n = start(cfg).await;
    let m = n.monitor_addr().unwrap();
    wait_until(WAIT, "single-node group with a leader", || async move {
        let t = monitor_text(m, "/metrics").await;
        metric(&t, "tern_raft_is_leader", &[]) == Some(1.0)
            && metric(&t, "tern_raft_ready", &[]) == Some(1.0)
    })
    .await;
    let t = monitor_text(m, "/metrics").await;
    let id = n.cluster().unwrap().id as f64;
    assert_eq!(metric(&t, "tern_raft_leader", &[]), Some(id));
    assert_eq!(metric(&t, "tern_raft_members", &[]), Some(1.0));
    assert_eq!(metric(&t, "tern_raft_voters", &[]), Some(1.0));
    assert!(metric(&t, "tern_raft_term", &[]).unwrap() >= 1.0);
    assert_eq!(metric(&t, "tern_cluster_config_version", &[]), Some(0.0));
    let applied0 = metric(&t, "tern_raft_applied_index", &[]).unwrap();

    let addr = n.control_addr().unwrap().to_string();
    let mut admin = AdminServiceClient::new(channel(&addr, None).unwrap());
    admin
        .set_config(SetConfigRequest {
            json: r#"{"max_payload": 4096}"#.into(),
            dry_run: false,
        })
        .await
        .expect("config committed");
    wait_until(WAIT, "config version 1 in /metrics", || async move {
        let t = monitor_text(m, "/metrics").await;
        metric(&t, "tern_cluster_config_version", &[]) == Some(1.0)
    })
    .await;
    let t = monitor_text(m, "/metrics").await;
    let applied1 = metric(&t, "tern_raft_applied_index", &[]).unwrap();
    assert!(applied1 > applied0, "{applied0} -> {applied1}");
    // A single voter commits what it appends.
    assert_eq!(metric(&t, "tern_raft_commit_index", &[]), Some(applied1));
    assert_eq!(metric(&t, "tern_raft_last_log_index", &[]), Some(applied1));
    n.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}
