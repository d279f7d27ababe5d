//! TLS on the gRPC control listener (`cluster { control_tls { verify: true } }`): a
//! Raft group forms over mutual TLS, the admin API answers a client with a
//! certificate, and `tern cluster` is refused without a client certificate (or
//! without TLS).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use cluster_tests::cluster::node_config;
use cluster_tests::harness::{start, wait_until};
use cluster_tests::pki::Pki;
use tern::cluster::control_tls::client_config;
use tern::cluster::network::channel;
use tern::cluster::proto::admin::admin_service_client::AdminServiceClient;
use tern::cluster::proto::admin::StatusRequest;
use tern::config::TlsConfig;
use tern::{Config, ServerHandle};

fn store(pki: &Pki, i: usize) -> PathBuf {
    let d = pki.path(&format!("store-{i}"));
    std::fs::create_dir_all(&d).expect("store dir");
    d
}

fn raft_tls_config(pki: &Pki, i: usize, seed: Option<SocketAddr>) -> Config {
    let mut c = node_config(i, "R", seed);
    c.store_dir = Some(store(pki, i));
    c.cluster.control_listen = Some("127.0.0.1:0".into());
    c.cluster.bootstrap_expect = Some(3);
    c.cluster.control_tls = Some(TlsConfig {
        verify: true,
        ..pki.tls()
    });
    c
}

async fn wait_group(nodes: &[ServerHandle]) {
    wait_until(
        Duration::from_secs(30),
        "three members agree on a leader over TLS",
        || {
            let ok = nodes.iter().all(|n| {
                let c = n.cluster().expect("raft on");
                let m = c.metrics();
                c.is_member()
                    && m.membership_config.nodes().count() == 3
                    && m.current_leader.is_some()
                    && m.current_leader == nodes[0].cluster().unwrap().metrics().current_leader
            });
            async move { ok }
        },
    )
    .await;
}

/// `tern cluster status` against `addr` with extra flags; (exit ok, stdout+stderr).
fn cli(addr: &str, flags: &[String]) -> (bool, String) {
    let out = std::process::Command::new(cluster_tests::diff::tern_bin())
        .args(["cluster", "status", "--server", addr])
        .args(flags)
        .output()
        .expect("run tern cluster");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raft_forms_over_mutual_tls_and_the_cli_needs_a_certificate() {
    let pki = Pki::new("control-tls");
    let seed = start(raft_tls_config(&pki, 0, None)).await;
    let seed_addr = seed.cluster_addr().expect("route listener");
    let mut nodes = vec![seed];
    for i in 1..3 {
        nodes.push(start(raft_tls_config(&pki, i, Some(seed_addr))).await);
    }
    wait_group(&nodes).await;

    // The admin API over TLS with our certificate.
    let addr = nodes[1].control_addr().expect("control").to_string();
    let p = |f: &str| pki.path(f);
    let tls = client_config(
        Some(&p("ca.pem")),
        Some(&p("server-cert.pem")),
        Some(&p("server-key.pem")),
    )
    .expect("client tls");
    let mut a = AdminServiceClient::new(channel(&addr, Some(&tls)).expect("channel"));
    let s = a
        .status(tonic::Request::new(StatusRequest {}))
        .await
        .expect("status over mTLS")
        .into_inner();
    assert_eq!(s.members.len(), 3);

    let s = |f: &str| p(f).display().to_string();
    let ca = vec!["--tlscacert".to_string(), s("ca.pem")];
    let mut with_cert = ca.clone();
    with_cert.extend([
        "--tlscert".into(),
        s("server-cert.pem"),
        "--tlskey".into(),
        s("server-key.pem"),
    ]);
    let (ok, out) = cli(&addr, &with_cert);
    assert!(ok, "with a client certificate: {out}");
    let (ok, out) = cli(&addr, &ca);
    assert!(!ok, "mTLS refuses a client without a certificate: {out}");
    let (ok, out) = cli(&addr, &[]);
    assert!(!ok, "plaintext gRPC to a TLS listener fails: {out}");
    for n in nodes {
        n.shutdown().await;
    }
}
