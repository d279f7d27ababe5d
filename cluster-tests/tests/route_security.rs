//! Route security: routes over mutual TLS (`cluster { tls { verify: true } }`), a
//! peer with a certificate from another CA refused, tern and nats-server routing to
//! each other over TLS, and route authorization (`cluster { authorization }` with
//! credentials in the route URL) accepted and refused, also against nats-server.

mod common;

use std::time::Duration;

use cluster_tests::cluster::TestCluster;
use cluster_tests::pki::Pki;
use cluster_tests::procs::{wait_for, Impl, Node, NodeOpts, Ports, Procs};
use futures::StreamExt;
use tern::config::TlsConfig;

use Impl::{Nats as N, Tern as T};

/// The cluster `tls { }` block for `pki`, verifying peers.
fn tls_block(pki: &Pki) -> String {
    let p = |f: &str| pki.path(f).display().to_string();
    format!(
        "tls {{\n  cert_file: \"{}\"\n  key_file: \"{}\"\n  ca_file: \"{}\"\n  verify: true\n  timeout: 2\n}}",
        p("server-cert.pem"),
        p("server-key.pem"),
        p("ca.pem")
    )
}

#[tokio::test]
async fn three_nodes_route_over_mutual_tls() {
    let pki = Pki::new("route-mtls");
    let tls = TlsConfig {
        verify: true,
        ..pki.tls()
    };
    let c = TestCluster::start_with(3, |_, cfg| cfg.cluster.tls = Some(tls.clone())).await;
    // Every route runs TLS 1.3 (the session is what /routez and /connz report).
    for n in &c.nodes {
        for r in n.shared.routes.routes() {
            let meta = r.conn.meta.lock();
            let t = meta.tls.as_ref().expect("route has a TLS session");
            assert_eq!(t.version, "1.3");
            assert!(t.cipher.starts_with("TLS_"), "{}", t.cipher);
            assert!(!t.peer_certs.is_empty(), "peer certificate verified");
        }
    }
    let sub_nc = async_nats::connect(c.client_url(2)).await.expect("connect");
    let mut sub = sub_nc.subscribe("tls.route").await.expect("sub");
    sub_nc.flush().await.expect("flush");
    c.wait_remote_interest(0, "tls.route", 1).await;
    let pub_nc = async_nats::connect(c.client_url(0)).await.expect("connect");
    for i in 0..10 {
        pub_nc
            .publish("tls.route", format!("m{i}").into())
            .await
            .expect("pub");
    }
    pub_nc.flush().await.expect("flush");
    for i in 0..10 {
        let m = tokio::time::timeout(Duration::from_secs(5), sub.next())
            .await
            .expect("message over the TLS route")
            .expect("message");
        assert_eq!(m.payload, format!("m{i}").as_bytes());
    }
    c.shutdown().await;
}

/// Starts a seed (`seed` kind, CA A) and a peer (`peer` kind, CA B) routing to it;
/// the seed refuses the peer's certificate and no route forms on either side.
async fn other_ca_refused(seed: Impl, peer: Impl) {
    let a = Pki::new(&format!("route-ca-a-{seed:?}-{peer:?}"));
    let b = Pki::new(&format!("route-ca-b-{seed:?}-{peer:?}"));
    let pa = Ports::free();
    let mut oa = NodeOpts::new(seed, "seed");
    oa.cluster_conf = Some(tls_block(&a));
    let na = Node::start(oa, pa);
    let mut ob = NodeOpts::new(peer, "peer");
    ob.routes = vec![pa.route_url()];
    ob.cluster_conf = Some(tls_block(&b));
    let nb = Node::start(ob, Ports::free());
    // Each side fails the handshake: the seed does not trust the peer's certificate
    // and the peer does not trust the seed's.
    wait_for(
        Duration::from_secs(10),
        "the seed logs the refused handshake",
        || async { na.log().contains("TLS route handshake error") },
    )
    .await;
    wait_for(
        Duration::from_secs(10),
        "the peer logs the refused handshake",
        || async { nb.log().contains("TLS route handshake error") },
    )
    .await;
    assert!(na.route_peers().await.is_empty(), "{}", na.log());
    assert!(nb.route_peers().await.is_empty(), "{}", nb.log());
    assert!(
        na.log()
            .contains("Router connection closed: TLS Handshake Failure"),
        "{}",
        na.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_with_certificate_from_another_ca_is_refused() {
    other_ca_refused(T, T).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_server_peer_from_another_ca_is_refused() {
    other_ca_refused(T, N).await;
    other_ca_refused(N, T).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tern_and_nats_server_route_over_mutual_tls() {
    let pki = Pki::new("route-mixed");
    let block = tls_block(&pki);
    let c = Procs::start(&[T, N, T], |_, o| o.cluster_conf = Some(block.clone())).await;
    common::check_pub_sub_every_direction(&c, "tls").await;
    for n in &c.nodes {
        let v = n.json("/varz").await;
        assert_eq!(v["cluster"]["tls_required"], true, "{}", n.opts.name);
        assert_eq!(v["cluster"]["tls_verify"], true, "{}", n.opts.name);
    }
}

const ROUTE_AUTH: &str = "authorization { user: ruser, password: \"T0p\", timeout: 1 }";

/// A seed of kind `seed` requiring route credentials; a peer with them joins, a
/// peer without them is refused with nats-server's log lines on both sides.
async fn route_auth(seed: Impl, good: Impl, bad: Impl) {
    let pa = Ports::free();
    let mut oa = NodeOpts::new(seed, "seed");
    oa.cluster_conf = Some(ROUTE_AUTH.into());
    let na = Node::start(oa, pa);

    let mut og = NodeOpts::new(good, "good");
    og.routes = vec![format!("nats-route://ruser:T0p@127.0.0.1:{}", pa.cluster)];
    og.cluster_conf = Some(ROUTE_AUTH.into());
    let ng = Node::start(og, Ports::free());
    na.wait_routes(1).await;
    ng.wait_routes(1).await;

    let mut ob = NodeOpts::new(bad, "bad");
    ob.routes = vec![pa.route_url()];
    ob.cluster_conf = Some(String::new());
    let nb = Node::start(ob, Ports::free());
    wait_for(
        Duration::from_secs(10),
        "the seed refuses the peer without credentials",
        || async {
            na.log()
                .contains("Router connection closed: Authentication Failure")
        },
    )
    .await;
    wait_for(
        Duration::from_secs(10),
        "the refused peer logs the -ERR it got",
        || async { nb.log().contains("Route Error 'Authorization Violation'") },
    )
    .await;
    assert!(na.log().contains("authentication error"), "{}", na.log());
    // The seed's only route is the authenticated peer. (The refused peer itself needs
    // no credentials, so the good peer may still dial it after learning its address
    // from the gossip: a legitimate route, not a hole in the seed's authorization.)
    let seed_peers = na.route_peers().await;
    assert_eq!(seed_peers.len(), 1, "{}", na.log());
    let bad_id = nb.json("/varz").await["server_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(!seed_peers.contains(&bad_id), "{}", na.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_authorization_accepts_and_refuses() {
    route_auth(T, T, T).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_authorization_against_nats_server() {
    // nats-server requiring credentials from tern peers, and tern from nats-server.
    route_auth(N, T, T).await;
    route_auth(T, N, N).await;
}
