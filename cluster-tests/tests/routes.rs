//! The routed mesh with in-process nodes: formation from one seed, interest
//! propagation, forwarding only to interested nodes, queue groups, request/reply,
//! route loss and a node's return.

use std::time::Duration;

use cluster_tests::cluster::{node_config, TestCluster};
use cluster_tests::harness::{start, wait_until, RawConn};
use futures::StreamExt;

async fn client(url: &str) -> async_nats::Client {
    async_nats::connect(url).await.expect("connect")
}

#[tokio::test]
async fn three_nodes_form_a_full_mesh_from_one_seed() {
    let c = TestCluster::start(3).await;
    // Nodes 1 and 2 only know node 0; they found each other through gossip.
    let id2 = c.nodes[2].shared.server_id.clone();
    assert!(c.nodes[1].shared.routes.has_route(&id2));
    c.shutdown().await;
}

#[tokio::test]
async fn interest_propagates_and_withdraws() {
    let c = TestCluster::start(3).await;
    let nc = client(&c.client_url(1)).await;
    let sub = nc.subscribe("orders.eu").await.unwrap();
    nc.flush().await.unwrap();
    c.wait_remote_interest(0, "orders.eu", 1).await;
    c.wait_remote_interest(2, "orders.eu", 1).await;
    drop(sub);
    nc.flush().await.unwrap();
    c.wait_remote_interest(0, "orders.eu", 0).await;
    c.wait_remote_interest(2, "orders.eu", 0).await;
    c.shutdown().await;
}

#[tokio::test]
async fn publish_goes_only_to_nodes_with_interest() {
    let c = TestCluster::start(3).await;
    let sub_nc = client(&c.client_url(1)).await;
    let mut sub = sub_nc.subscribe("only.b").await.unwrap();
    sub_nc.flush().await.unwrap();
    c.wait_remote_interest(0, "only.b", 1).await;
    let before_ac = c.route_out_msgs(0, 2);
    let before_ab = c.route_out_msgs(0, 1);
    let pub_nc = client(&c.client_url(0)).await;
    for i in 0..100 {
        pub_nc
            .publish("only.b", format!("{i}").into())
            .await
            .unwrap();
    }
    pub_nc.flush().await.unwrap();
    for _ in 0..100 {
        tokio::time::timeout(Duration::from_secs(5), sub.next())
            .await
            .expect("delivered across the route")
            .unwrap();
    }
    assert_eq!(
        c.route_out_msgs(0, 1) - before_ab,
        100,
        "one RMSG per message to B"
    );
    assert_eq!(
        c.route_out_msgs(0, 2) - before_ac,
        0,
        "nothing to C, which has no interest"
    );
    c.shutdown().await;
}

#[tokio::test]
async fn queue_group_across_three_nodes_delivers_each_message_once() {
    let c = TestCluster::start(3).await;
    let mut clients = Vec::new();
    let mut subs = Vec::new();
    for i in 0..3 {
        let nc = client(&c.client_url(i)).await;
        subs.push(nc.queue_subscribe("jobs", "workers".into()).await.unwrap());
        nc.flush().await.unwrap();
        clients.push(nc);
    }
    for i in 0..3 {
        c.wait_remote_interest(i, "jobs", 2).await;
    }
    let publisher = client(&c.client_url(0)).await;
    for i in 0..300 {
        publisher
            .publish("jobs", format!("{i}").into())
            .await
            .unwrap();
    }
    publisher.flush().await.unwrap();
    let mut counts = [0usize; 3];
    let mut seen = std::collections::HashSet::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while seen.len() < 300 && tokio::time::Instant::now() < deadline {
        for (i, s) in subs.iter_mut().enumerate() {
            while let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(20), s.next()).await
            {
                assert!(seen.insert(m.payload.clone()), "message delivered twice");
                counts[i] += 1;
            }
        }
    }
    assert_eq!(seen.len(), 300, "every message delivered: {counts:?}");
    assert!(
        counts.iter().all(|n| *n > 30),
        "spread over all nodes: {counts:?}"
    );
    c.shutdown().await;
}

#[tokio::test]
async fn request_reply_across_nodes() {
    let c = TestCluster::start(3).await;
    let responder = client(&c.client_url(2)).await;
    let mut svc = responder.subscribe("svc.time").await.unwrap();
    responder.flush().await.unwrap();
    tokio::spawn(async move {
        while let Some(m) = svc.next().await {
            if let Some(r) = m.reply {
                responder.publish(r, "now".into()).await.unwrap();
            }
        }
    });
    c.wait_remote_interest(0, "svc.time", 1).await;
    let requester = client(&c.client_url(0)).await;
    for _ in 0..10 {
        let resp = tokio::time::timeout(
            Duration::from_secs(5),
            requester.request("svc.time", "?".into()),
        )
        .await
        .expect("in time")
        .expect("answered");
        assert_eq!(&resp.payload[..], b"now");
    }
    // With no responder anywhere the requester gets no-responders, not a timeout.
    let err = requester.request("svc.none", "?".into()).await.unwrap_err();
    assert_eq!(err.kind(), async_nats::RequestErrorKind::NoResponders);
    c.shutdown().await;
}

#[tokio::test]
async fn lost_route_drops_interest_and_a_restarted_node_returns() {
    let mut c = TestCluster::start(3).await;
    let b = c.nodes.remove(1);
    let b_cfg_cluster = b.cluster_addr().unwrap();
    let b_client = b.client_addr();
    // A raw client: unlike async-nats it will not fail over to another node and
    // bring the interest back from there.
    let (mut raw, _) = RawConn::connect(b_client).await;
    raw.send(b"CONNECT {\"verbose\":false}\r\nSUB on.b 1\r\n")
        .await;
    raw.flush().await;
    c.wait_remote_interest(0, "on.b", 1).await;
    b.shutdown().await;
    // The route's subscriptions go with it.
    c.wait_remote_interest(0, "on.b", 0).await;
    let shared0 = c.nodes[0].shared.clone();
    wait_until(Duration::from_secs(5), "node 0 has one route left", || {
        let s = shared0.clone();
        async move { s.routes.num_routes() == 1 }
    })
    .await;

    // Restart B on the same ports; it rejoins and its interest returns.
    let seed = c.nodes[0].cluster_addr().unwrap();
    let mut cfg = node_config(1, &c.name, Some(seed));
    cfg.port = i32::from(b_client.port());
    cfg.cluster.port = Some(i32::from(b_cfg_cluster.port()));
    let b2 = start(cfg).await;
    c.nodes.insert(1, b2);
    c.wait_formed().await;
    let nc = client(&c.client_url(1)).await;
    let mut sub = nc.subscribe("on.b").await.unwrap();
    nc.flush().await.unwrap();
    c.wait_remote_interest(0, "on.b", 1).await;
    let p = client(&c.client_url(0)).await;
    p.publish("on.b", "back".into()).await.unwrap();
    p.flush().await.unwrap();
    let m = tokio::time::timeout(Duration::from_secs(5), sub.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&m.payload[..], b"back");
    c.shutdown().await;
}

#[tokio::test]
async fn clients_learn_cluster_urls() {
    let c = TestCluster::start(3).await;
    let shared = c.nodes[0].shared.clone();
    wait_until(
        Duration::from_secs(5),
        "connect_urls lists all three nodes",
        || {
            let s = shared.clone();
            async move { s.info().connect_urls.len() == 3 }
        },
    )
    .await;
    let urls = c.nodes[0].shared.info().connect_urls;
    for n in &c.nodes {
        assert!(urls.contains(&n.client_addr().to_string()), "{urls:?}");
    }
    c.shutdown().await;
}

#[tokio::test]
async fn routez_and_varz_show_the_mesh() {
    let c = TestCluster::start(3).await;
    let maddr = c.nodes[0].monitor_addr().unwrap();
    let nc = client(&c.client_url(1)).await;
    let _s = nc.subscribe("seen.in.routez").await.unwrap();
    nc.flush().await.unwrap();
    c.wait_remote_interest(0, "seen.in.routez", 1).await;
    let v = cluster_tests::harness::monitor_json(maddr, "/routez?subs=1").await;
    assert_eq!(v["num_routes"], 2);
    let names: Vec<&str> = v["routes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["remote_name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"n1") && names.contains(&"n2"), "{names:?}");
    let n1 = v["routes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["remote_name"] == "n1")
        .unwrap();
    assert!(n1["subscriptions_list"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s == "seen.in.routez"));
    let varz = cluster_tests::harness::monitor_json(maddr, "/varz").await;
    assert_eq!(varz["routes"], 2);
    assert_eq!(varz["remotes"], 2);
    assert_eq!(varz["cluster"]["name"], "T");
    c.shutdown().await;
}

#[tokio::test]
async fn connected_clients_get_async_info_when_a_node_joins() {
    let c = TestCluster::start(2).await;
    let (mut raw, info) = RawConn::connect(c.nodes[0].client_addr()).await;
    assert!(info.starts_with("INFO "));
    raw.send(b"CONNECT {\"verbose\":false,\"protocol\":1}\r\n")
        .await;
    raw.flush().await;
    // The async INFO after the first PONG comes first; from then on we get updates.
    let first = raw.read_line().await;
    assert!(first.contains("\"connect_info\":true"), "{first}");
    // A third node joins through the seed.
    let seed = c.nodes[0].cluster_addr().unwrap();
    let n2 = start(node_config(2, &c.name, Some(seed))).await;
    let want = n2.client_addr().to_string();
    let mut got = false;
    for _ in 0..10 {
        let line = raw.read_line().await;
        if line.starts_with("INFO ") && line.contains(&want) {
            got = true;
            break;
        }
    }
    assert!(got, "async INFO with the new node's URL {want}");
    n2.shutdown().await;
    c.shutdown().await;
}
