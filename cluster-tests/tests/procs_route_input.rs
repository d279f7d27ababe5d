//! Bad input on the route port of a real tern process, compared with nats-server
//! where both answer: wrong cluster name, a client on the route port, garbage; and a
//! fake route flooding RS+ and RMSG without taking the node or its other routes down.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use cluster_tests::harness::RawConn;
use cluster_tests::procs::{wait_for, Impl, Node, NodeOpts, Ports, Procs};
use common::{next_msg, pinned_client};

/// Opens a raw connection to a route port, sends `bytes`, and returns the first
/// non-PING line after the INFO and whether the server then closed the connection.
async fn answer(addr: SocketAddr, bytes: &[u8]) -> (String, bool) {
    let (mut c, info) = RawConn::connect(addr).await;
    assert!(
        info.starts_with("INFO "),
        "route port greets with INFO: {info}"
    );
    c.send(bytes).await;
    let mut line = c.read_line().await;
    while line == "PING" {
        line = c.read_line().await;
    }
    let mut closed = false;
    for _ in 0..10 {
        let l = c.read_line().await;
        if l.is_empty() {
            closed = true;
            break;
        }
    }
    (line, closed)
}

const WRONG_CLUSTER: &[u8] = b"CONNECT {\"echo\":true,\"verbose\":false,\"pedantic\":false,\"tls_required\":false,\"headers\":true,\"name\":\"NFAKEROUTE\",\"cluster\":\"WRONG\"}\r\n";
const CLIENT_CONNECT: &[u8] =
    b"CONNECT {\"verbose\":false,\"pedantic\":false,\"lang\":\"go\",\"version\":\"1.0\",\"protocol\":1}\r\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_cluster_client_and_garbage_match_nats_server() {
    let tern = Node::start(NodeOpts::new(Impl::Tern, "t"), Ports::free());
    let nats = Node::start(NodeOpts::new(Impl::Nats, "n"), Ports::free());
    let cases: [(&str, &[u8], &str); 5] = [
        (
            "wrong cluster",
            WRONG_CLUSTER,
            "-ERR 'Rejecting connection, cluster name \"WRONG\" does not match \"C1\"'",
        ),
        (
            "client on route port",
            CLIENT_CONNECT,
            "-ERR 'attempted to connect to route port'",
        ),
        (
            "garbage before CONNECT",
            b"FOO bar\r\n",
            "-ERR 'Authorization Violation'",
        ),
        (
            "unknown op starting like CONNECT",
            b"CFOO bar\r\n",
            "-ERR 'Unknown Protocol Operation'",
        ),
        (
            "garbage after CONNECT",
            &[
                WRONG_CLUSTER
                    .split(|b| *b == b'W')
                    .next()
                    .unwrap_or_default(),
                b"C1\"}\r\nFOO bar\r\n",
            ]
            .concat(),
            "-ERR 'Unknown Protocol Operation'",
        ),
    ];
    for (what, bytes, want) in cases {
        let t = answer(tern.cluster_addr(), bytes).await;
        let n = answer(nats.cluster_addr(), bytes).await;
        assert_eq!(t, n, "{what}: tern vs nats-server");
        assert_eq!(t, (want.to_string(), true), "{what}");
    }
}

/// A fake route's handshake: CONNECT + INFO as nats-server's no-pool peer would send.
fn fake_handshake(cluster_port: u16) -> Vec<u8> {
    let mut b = b"CONNECT {\"echo\":true,\"verbose\":false,\"pedantic\":false,\"tls_required\":false,\"headers\":true,\"name\":\"NFAKEROUTEID\",\"cluster\":\"C1\"}\r\n".to_vec();
    b.extend_from_slice(format!(
        "INFO {{\"server_id\":\"NFAKEROUTEID\",\"server_name\":\"fake\",\"version\":\"2.15.1\",\"proto\":1,\"host\":\"127.0.0.1\",\"port\":{cluster_port},\"headers\":true,\"max_payload\":1048576,\"cluster\":\"C1\",\"connect_urls\":[\"127.0.0.1:1\"]}}\r\n"
    ).as_bytes());
    b
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fake_route_floods_do_not_take_the_node_down() {
    let c = Procs::start(&[Impl::Tern, Impl::Tern], |_, _| {}).await;
    let nc1 = pinned_client(&c.nodes[1].client_url()).await;
    let mut real = nc1.subscribe("real.x").await.unwrap();
    nc1.flush().await.unwrap();
    c.nodes[0].wait_interest("real.x", 1).await;
    let subs_before = c.nodes[0].json("/subsz").await["num_subscriptions"]
        .as_u64()
        .unwrap();

    let (mut fake, _info) = RawConn::connect(c.nodes[0].cluster_addr()).await;
    fake.send(&fake_handshake(1)).await;
    // Interest flood (including other accounts), removals of unknown interest,
    // messages nobody wants, `$SYS` traffic, and one for a subject whose only
    // subscriber is on another node (a route message is never forwarded).
    const FLOOD: usize = 20_000;
    let mut b = Vec::with_capacity(FLOOD * 40);
    for i in 0..FLOOD {
        b.extend_from_slice(format!("RS+ $G flood.{i}\r\nRS+ $SYS $SYS.REQ.{i}\r\n").as_bytes());
    }
    b.extend_from_slice(b"RS+ $G flood.q grp 5\r\nRS- $G never.seen\r\nRS- $G never.seen grp\r\n");
    for i in 0..2_000 {
        b.extend_from_slice(format!("RMSG $G nobody.{i} 5\r\nhello\r\n").as_bytes());
        b.extend_from_slice(b"RMSG $SYS $SYS.REQ.SERVER.PING 2\r\n{}\r\n");
    }
    b.extend_from_slice(b"RMSG $G real.x 3\r\nhop\r\nRMSG $G real.x | grp 3\r\nhop\r\n");
    fake.send(&b).await;
    fake.flush().await;
    let n0 = &c.nodes[0];
    wait_for(
        Duration::from_secs(10),
        "flood interest registered",
        || async {
            let v = n0.json("/subsz").await;
            v["num_subscriptions"].as_u64() == Some(subs_before + FLOOD as u64 + 1)
        },
    )
    .await;
    // Node 0 does not re-gossip the fake route's interest to node 1.
    assert!(c.nodes[1].peers_with_interest("flood.1").await.is_empty());

    // Node 0 still serves clients and its route to node 1 carries traffic.
    c.nodes[0].wait_routes(2).await;
    let nc0 = pinned_client(&c.nodes[0].client_url()).await;
    nc0.publish("real.x", "direct".into()).await.unwrap();
    nc0.flush().await.unwrap();
    let m = next_msg(&mut real, 5, "real.x after the flood").await;
    assert_eq!(
        &m.payload[..],
        b"direct",
        "the fake route's RMSG was forwarded"
    );

    // A message for the flood interest goes to the fake route exactly once.
    nc0.publish("flood.7", "to-fake".into()).await.unwrap();
    nc0.flush().await.unwrap();
    let mut got = Vec::new();
    loop {
        let l = fake.read_line().await;
        if l.starts_with("RMSG $G flood.7") {
            got.push(l);
            break;
        }
        assert!(!l.is_empty(), "fake route closed");
    }
    assert_eq!(got, ["RMSG $G flood.7 7"]);

    // Garbage on the fake route closes only it; its interest goes with it.
    fake.send(b"RMSG $G foo 5\r\nhelloXX\r\n").await;
    let mut line = fake.read_line().await;
    while !line.is_empty() && !line.starts_with("-ERR") {
        line = fake.read_line().await;
    }
    assert_eq!(line, "-ERR 'Unknown Protocol Operation'");
    assert_eq!(fake.read_line().await, "", "closed after the error");
    wait_for(
        Duration::from_secs(10),
        "flood interest removed",
        || async { n0.json("/subsz").await["num_subscriptions"].as_u64() == Some(subs_before) },
    )
    .await;
    c.wait_mesh().await;
    c.nodes[0].wait_routes(1).await;
    nc0.publish("real.x", "still".into()).await.unwrap();
    nc0.flush().await.unwrap();
    let m = next_msg(&mut real, 5, "real.x after the fake route left").await;
    assert_eq!(&m.payload[..], b"still");
}

/// A route that stops answering PINGs is closed as stale, and /varz counts it under
/// `routes`, not `clients`, as nats-server's stale_connection_stats does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_route_is_closed_as_stale_and_counted_as_a_route() {
    let c = Procs::start(&[Impl::Tern], |_, o| {
        o.cluster_conf = Some("  ping_interval: \"100ms\"\n  ping_max: 2\n".into());
    })
    .await;
    let n0 = &c.nodes[0];
    let (mut fake, _info) = RawConn::connect(n0.cluster_addr()).await;
    fake.send(&fake_handshake(1)).await;
    // The fake never answers a PING.
    wait_for(Duration::from_secs(10), "stale route counted", || async {
        n0.json("/varz").await["stale_connection_stats"]["routes"] == 1
    })
    .await;
    let varz = n0.json("/varz").await;
    assert_eq!(varz["stale_connection_stats"]["clients"], 0, "{varz}");
    assert_eq!(varz["stale_connections"], 1);
    let metrics = cluster_tests::harness::monitor_text(n0.http_addr(), "/metrics").await;
    let line = metrics
        .lines()
        .find(|l| l.starts_with("tern_stale_connections_total{") && l.contains("kind=\"route\""));
    assert!(line.is_some_and(|l| l.ends_with("} 1")), "{line:?}");
}
