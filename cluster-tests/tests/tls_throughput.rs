//! Throughput over client TLS with real async-nats clients, against tern and against
//! nats-server: a subscriber gets every message of a 300k-message run.
//!
//! Why the publisher keeps a window: async-nats buffers at most 65,536 messages per
//! subscription and drops the rest with a `SlowConsumer` event (the server has
//! delivered them). A throughput run that publishes without waiting for the
//! subscriber therefore "stalls" short of its count with both servers, which is what
//! an earlier TLS run showed. Drops are counted and reported, so a failure here tells
//! a server-side stall (no drops) from a client-side one.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cluster_tests::harness::start;
use cluster_tests::pki::Pki;
use cluster_tests::procs::{Impl, Node, NodeOpts, Ports};
use futures::StreamExt;
use tern::Config;

const MSGS: u64 = 300_000;
/// Well under async-nats' 65,536-message subscription buffer.
const WINDOW: u64 = 20_000;

async fn tls_client(pki: &Pki, addr: &str, drops: Arc<AtomicU64>) -> async_nats::Client {
    async_nats::ConnectOptions::new()
        .require_tls(true)
        .add_root_certificates(pki.path("ca.pem"))
        .event_callback(move |e| {
            let drops = drops.clone();
            async move {
                if matches!(e, async_nats::Event::SlowConsumer(_)) {
                    drops.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
        .connect(format!("tls://{addr}"))
        .await
        .expect("connect")
}

/// Publishes MSGS 16-byte messages over TLS, at most WINDOW ahead of the subscriber,
/// and waits for all of them at the subscriber.
async fn every_message_arrives(pki: &Pki, addr: &str, server: &str) {
    let drops = Arc::new(AtomicU64::new(0));
    let sub_nc = tls_client(pki, addr, drops.clone()).await;
    let mut sub = sub_nc.subscribe("tput").await.expect("sub");
    sub_nc.flush().await.expect("flush");
    let pub_nc = tls_client(pki, addr, drops.clone()).await;
    let received = Arc::new(AtomicU64::new(0));
    let progress = Arc::new(tokio::sync::Notify::new());
    let (r, p) = (received.clone(), progress.clone());
    let publisher = tokio::spawn(async move {
        let payload = bytes::Bytes::from_static(b"0123456789abcdef");
        for sent in 0..MSGS {
            while sent.saturating_sub(r.load(Ordering::Acquire)) >= WINDOW {
                let n = p.notified();
                if sent.saturating_sub(r.load(Ordering::Acquire)) < WINDOW {
                    break;
                }
                let _ = tokio::time::timeout(Duration::from_millis(50), n).await;
            }
            pub_nc.publish("tput", payload.clone()).await.expect("pub");
        }
        pub_nc.flush().await.expect("flush");
    });
    let mut got = 0u64;
    while got < MSGS {
        match tokio::time::timeout(Duration::from_secs(10), sub.next()).await {
            Ok(Some(_)) => {
                got += 1;
                if got.is_multiple_of(1000) {
                    received.store(got, Ordering::Release);
                    progress.notify_one();
                }
            }
            Ok(None) => panic!("{server}: subscription ended after {got}"),
            Err(_) => panic!(
                "{server}: stalled after {got} of {MSGS} messages ({} client-side drops)",
                drops.load(Ordering::Relaxed)
            ),
        }
    }
    publisher.await.expect("publisher");
    assert_eq!(drops.load(Ordering::Relaxed), 0, "{server}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_nats_subscriber_over_tls_gets_every_message() {
    let pki = Pki::new("tls-throughput");
    let mut c = Config::local();
    c.tls = Some(pki.tls());
    let server = start(c).await;
    every_message_arrives(&pki, &server.client_addr().to_string(), "tern").await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_nats_subscriber_over_tls_gets_every_message_from_nats_server() {
    let pki = Pki::new("tls-throughput-nats");
    let mut o = NodeOpts::new(Impl::Nats, "n0");
    o.args = vec![
        "--tls".into(),
        "--tlscert".into(),
        pki.path("server-cert.pem").display().to_string(),
        "--tlskey".into(),
        pki.path("server-key.pem").display().to_string(),
    ];
    let n = Node::start(o, Ports::free());
    every_message_arrives(&pki, &n.client_addr().to_string(), "nats-server").await;
}
