//! Process-level tern clusters: client failover after kill -9, a frozen node
//! (SIGSTOP) dropped and healed, restart on the same ports, `--routes` listing the
//! node itself, seed-only discovery with client auth, and two nodes dialing each
//! other at once (tern/tern and tern/nats-server).

mod common;

use std::time::{Duration, Instant};

use cluster_tests::procs::{wait_for, Impl, Node, NodeOpts, Ports, Procs};
use common::{client, next_msg, pinned_client, wait_interest_from};

const T: Impl = Impl::Tern;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_fails_over_after_kill9_using_discovered_urls() {
    let mut c = Procs::start(&[T, T, T], |_, _| {}).await;
    // Connect only to node 1; the other URLs come from INFO connect_urls.
    let sub_nc = client(&c.nodes[1].client_url()).await;
    wait_for(Duration::from_secs(5), "client learns 3 URLs", || async {
        sub_nc.server_info().connect_urls.len() == 3
    })
    .await;
    let mut sub = sub_nc.subscribe("fo.x").await.unwrap();
    sub_nc.flush().await.unwrap();
    wait_interest_from(&c, "fo.x", &[1]).await;
    let pub_nc = pinned_client(&c.nodes[2].client_url()).await;

    let t0 = Instant::now();
    c.nodes[1].kill9();
    let got = tokio::time::timeout(Duration::from_secs(10), async {
        let mut tick = tokio::time::interval(Duration::from_millis(10));
        loop {
            tokio::select! {
                m = futures::StreamExt::next(&mut sub) => break m,
                _ = tick.tick() => {
                    pub_nc.publish("fo.x", "after".into()).await.unwrap();
                }
            }
        }
    })
    .await
    .expect("no message within 10 s of killing the client's node");
    let elapsed = t0.elapsed();
    assert!(got.is_some());
    println!("failover: kill -9 to first message received: {elapsed:?}");
    let port = sub_nc.server_info().port;
    assert_ne!(
        port, c.nodes[1].ports.client,
        "client still on the killed node"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frozen_node_is_dropped_and_mesh_heals_after_sigcont() {
    let c = Procs::start(&[T, T, T], |_, o| {
        o.cluster_conf = Some("ping_interval: \"200ms\"\nping_max: 2".into());
    })
    .await;
    let nc2 = pinned_client(&c.nodes[2].client_url()).await;
    let mut sub = nc2.subscribe("fz.x").await.unwrap();
    nc2.flush().await.unwrap();
    wait_interest_from(&c, "fz.x", &[2]).await;

    let t0 = Instant::now();
    c.nodes[2].signal(libc::SIGSTOP);
    for n in &c.nodes[..2] {
        n.wait_routes(1).await;
        assert!(n.peers_with_interest("fz.x").await.is_empty());
    }
    println!("frozen node dropped by both peers after {:?}", t0.elapsed());
    c.nodes[2].signal(libc::SIGCONT);
    let t1 = Instant::now();
    c.wait_mesh().await;
    wait_interest_from(&c, "fz.x", &[2]).await;
    println!("mesh healed {:?} after SIGCONT", t1.elapsed());
    let nc0 = pinned_client(&c.nodes[0].client_url()).await;
    nc0.publish("fz.x", "thawed".into()).await.unwrap();
    nc0.flush().await.unwrap();
    let m = next_msg(&mut sub, 5, "message to the thawed node").await;
    assert_eq!(&m.payload[..], b"thawed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_restarted_on_same_ports_rejoins_with_its_interest() {
    let mut c = Procs::start(&[T, T, T], |_, _| {}).await;
    let old_id = c.nodes[0].server_id().await;
    let nc0 = pinned_client(&c.nodes[0].client_url()).await;
    let mut sub = nc0.subscribe("rs.x").await.unwrap();
    nc0.flush().await.unwrap();
    wait_interest_from(&c, "rs.x", &[0]).await;

    c.nodes[0].kill9();
    for n in &c.nodes[1..] {
        n.wait_routes(1).await;
        assert!(n.peers_with_interest("rs.x").await.is_empty());
    }
    let t0 = Instant::now();
    c.nodes[0].restart();
    assert_ne!(c.nodes[0].server_id().await, old_id);
    c.wait_mesh().await;
    // The pinned client reconnects to the same port and subscribes again.
    wait_interest_from(&c, "rs.x", &[0]).await;
    println!(
        "restarted seed rejoined with interest in {:?}",
        t0.elapsed()
    );
    let nc2 = pinned_client(&c.nodes[2].client_url()).await;
    nc2.publish("rs.x", "back".into()).await.unwrap();
    nc2.flush().await.unwrap();
    let m = next_msg(&mut sub, 5, "message to the restarted node").await;
    assert_eq!(&m.payload[..], b"back");
    common::check_pub_sub_every_direction(&c, "rs").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_listing_own_url_drop_the_self_route_and_form_the_mesh() {
    let ports: Vec<Ports> = (0..3).map(|_| Ports::free()).collect();
    let all: Vec<String> = ports.iter().map(Ports::route_url).collect();
    let t0 = Instant::now();
    let nodes: Vec<Node> = (0..3)
        .map(|i| {
            let mut o = NodeOpts::new(T, &format!("t{i}"));
            o.routes = all.clone();
            Node::start(o, ports[i])
        })
        .collect();
    let c = Procs { nodes };
    c.wait_mesh().await;
    println!("mesh with self-listing routes formed in {:?}", t0.elapsed());
    for n in &c.nodes {
        let id = n.server_id().await;
        let peers = n.route_peers().await;
        assert!(!peers.contains(&id), "{} routes to itself", n.opts.name);
        assert_eq!(
            n.route_conns().await,
            2,
            "{}: one connection per peer",
            n.opts.name
        );
    }
    common::check_pub_sub_every_direction(&c, "self").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_only_discovery_with_client_auth_and_failover() {
    let auth = ["--user", "u", "--pass", "p"].map(String::from).to_vec();
    let mut c = Procs::start(&[T, T, T], |_, o| o.args = auth.clone()).await;
    let connect = |url: String| async move {
        async_nats::ConnectOptions::with_user_and_password("u".into(), "p".into())
            .connect(url)
            .await
            .expect("connect with user/pass")
    };
    // Nodes 1 and 2 only know the seed: they found each other by gossip.
    let svc = connect(c.nodes[2].client_url()).await;
    let mut reqs = svc.subscribe("auth.svc").await.unwrap();
    svc.flush().await.unwrap();
    let responder = svc.clone();
    tokio::spawn(async move {
        while let Some(m) = futures::StreamExt::next(&mut reqs).await {
            if let Some(r) = m.reply {
                let _ = responder.publish(r, m.payload).await;
                let _ = responder.flush().await;
            }
        }
    });
    wait_interest_from(&c, "auth.svc", &[2]).await;
    let nc = connect(c.nodes[1].client_url()).await;
    let r = nc.request("auth.svc", "one".into()).await.expect("request");
    assert_eq!(&r.payload[..], b"one");
    wait_for(Duration::from_secs(5), "client learns 3 URLs", || async {
        nc.server_info().connect_urls.len() == 3
    })
    .await;

    // The requester's node dies: it moves to a discovered node within 2 s and
    // request/reply works across routes again.
    let t0 = Instant::now();
    c.nodes[1].kill9();
    let r = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match tokio::time::timeout(
                Duration::from_millis(250),
                nc.request("auth.svc", "two".into()),
            )
            .await
            {
                Ok(Ok(r)) => break r,
                _ => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    })
    .await
    .expect("request/reply after failover");
    assert_eq!(&r.payload[..], b"two");
    println!("auth cluster: kill -9 to first reply {:?}", t0.elapsed());
}

/// Two nodes whose configured routes point at each other dial at the same time:
/// whichever connection each side keeps, they must end with exactly one route and
/// stop dialing (no connection churn every retry interval).
async fn mutual_dial(a: Impl, b: Impl) {
    let ports = [Ports::free(), Ports::free()];
    let mut oa = NodeOpts::new(a, "a");
    oa.routes = vec![ports[1].route_url()];
    let mut ob = NodeOpts::new(b, "b");
    ob.routes = vec![ports[0].route_url()];
    let (na, nb) = (Node::start(oa, ports[0]), Node::start(ob, ports[1]));
    let c = Procs {
        nodes: vec![na, nb],
    };
    c.wait_mesh().await;
    // The retry interval is 1 s: over 2.5 s a dial loop that ignores the existing
    // route would open (and have refused) at least two more connections, each
    // taking a connection id on the accepting side.
    let ids = [c.nodes[0].server_id().await, c.nodes[1].server_id().await];
    let before = [next_cid(&c.nodes[0]).await, next_cid(&c.nodes[1]).await];
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let after = [next_cid(&c.nodes[0]).await, next_cid(&c.nodes[1]).await];
    for i in 0..2 {
        assert_eq!(
            after[i] - before[i],
            1,
            "{}: connections were opened while the route was up:\n{}",
            c.nodes[i].opts.name,
            c.logs()
        );
    }
    c.wait_mesh().await;
    // Still the same peers (no route was lost and re-made with a new node).
    assert!(c.nodes[0].route_peers().await.contains(&ids[1]));
    assert!(c.nodes[1].route_peers().await.contains(&ids[0]));
    common::check_pub_sub_every_direction(&c, "mut").await;
}

/// The connection id the node gives a new client (from its INFO).
async fn next_cid(n: &Node) -> u64 {
    let (_c, info) = cluster_tests::harness::RawConn::connect(n.client_addr()).await;
    let v: serde_json::Value =
        serde_json::from_str(info.trim_start_matches("INFO ").trim()).expect("INFO json");
    v["client_id"].as_u64().expect("client_id")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tern_and_tern_dialing_each_other_keep_one_route() {
    mutual_dial(T, T).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tern_and_nats_dialing_each_other_keep_one_route() {
    mutual_dial(T, Impl::Nats).await;
}
