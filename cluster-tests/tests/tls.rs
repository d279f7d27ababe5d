//! Client TLS with certificates generated per test (rcgen): upgrade after INFO, mutual
//! TLS, `verify_and_map`, TLS first (with and without the plaintext fallback delay),
//! `allow_non_tls`, certificate reload, and what a plain client on a TLS port gets
//! (differential against nats-server).

use std::time::Duration;

use cluster_tests::diff::Diff;
use cluster_tests::harness::start;
use cluster_tests::pki::Pki;
use futures::StreamExt;
use tern::config::{TlsConfig, User};
use tern::Config;

fn config(tls: TlsConfig) -> Config {
    let mut c = Config::local();
    c.tls = Some(tls);
    c
}

fn opts(pki: &Pki) -> async_nats::ConnectOptions {
    async_nats::ConnectOptions::new()
        .require_tls(true)
        .add_root_certificates(pki.path("ca.pem"))
}

fn with_client_cert(
    o: async_nats::ConnectOptions,
    pki: &Pki,
    name: &str,
) -> async_nats::ConnectOptions {
    o.add_client_certificate(
        pki.path(&format!("{name}-cert.pem")),
        pki.path(&format!("{name}-key.pem")),
    )
}

/// Connects once (no retries) with `o`.
async fn try_connect(
    o: async_nats::ConnectOptions,
    addr: std::net::SocketAddr,
) -> Result<async_nats::Client, String> {
    let fut = o
        .connection_timeout(Duration::from_secs(2))
        .connect(format!("tls://{addr}"));
    match tokio::time::timeout(Duration::from_secs(5), fut).await {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(_) => Err("timed out".into()),
    }
}

/// Publishes and receives one message over `nc`.
async fn roundtrip(nc: &async_nats::Client, subject: &str) {
    let mut sub = nc.subscribe(subject.to_string()).await.expect("subscribe");
    nc.flush().await.expect("flush");
    nc.publish(subject.to_string(), "hi".into())
        .await
        .expect("publish");
    let m = tokio::time::timeout(Duration::from_secs(5), sub.next())
        .await
        .expect("message in time")
        .expect("message");
    assert_eq!(&m.payload[..], b"hi");
}

/// Reads the plaintext INFO line a TLS server sends first.
async fn first_info(addr: std::net::SocketAddr) -> serde_json::Value {
    use tokio::io::AsyncBufReadExt;
    let s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let mut r = tokio::io::BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line).await.expect("INFO");
    let json = line.trim().strip_prefix("INFO ").expect("INFO line");
    serde_json::from_str(json).expect("INFO json")
}

#[tokio::test]
async fn tls_upgrade_after_info() {
    let pki = Pki::new("upgrade");
    let mut t = pki.tls();
    t.ca_file = None;
    let server = start(config(t)).await;
    let info = first_info(server.client_addr()).await;
    assert_eq!(info["tls_required"], true);
    assert!(info.get("tls_verify").is_none());
    let nc = try_connect(opts(&pki), server.client_addr())
        .await
        .expect("TLS connect");
    roundtrip(&nc, "tls.a").await;
    server.shutdown().await;
}

#[tokio::test]
async fn mutual_tls_requires_a_client_certificate() {
    let pki = Pki::new("mtls");
    pki.client("client", "client@example.com");
    let mut t = pki.tls();
    t.verify = true;
    let server = start(config(t)).await;
    let info = first_info(server.client_addr()).await;
    assert_eq!(info["tls_verify"], true);
    let nc = try_connect(
        with_client_cert(opts(&pki), &pki, "client"),
        server.client_addr(),
    )
    .await
    .expect("mTLS connect");
    roundtrip(&nc, "mtls.a").await;
    assert!(try_connect(opts(&pki), server.client_addr()).await.is_err());
    // A certificate from another CA is refused too.
    let other = Pki::new("mtls-other");
    other.client("stranger", "x@example.com");
    let o = opts(&pki).add_client_certificate(
        other.path("stranger-cert.pem"),
        other.path("stranger-key.pem"),
    );
    assert!(try_connect(o, server.client_addr()).await.is_err());
    server.shutdown().await;
}

#[tokio::test]
async fn verify_and_map_picks_the_user_from_the_certificate() {
    let pki = Pki::new("map");
    pki.client("alice", "alice@example.com");
    pki.client("mallory", "mallory@example.com");
    let mut t = pki.tls();
    t.verify_and_map = true;
    let mut c = config(t);
    c.authorization.users = vec![User {
        user: Some("alice@example.com".into()),
        permissions: Some(serde_json::json!({"publish": "map.>", "subscribe": "map.>"})),
        ..User::default()
    }];
    let server = start(c).await;
    let nc = try_connect(
        with_client_cert(opts(&pki), &pki, "alice"),
        server.client_addr(),
    )
    .await
    .expect("mapped user connects");
    roundtrip(&nc, "map.a").await;
    let conns = server
        .shared
        .clients
        .iter()
        .map(|c| c.meta.lock().user.clone())
        .collect::<Vec<_>>();
    assert!(conns.iter().any(|u| u == "alice@example.com"), "{conns:?}");
    let err = try_connect(
        with_client_cert(opts(&pki), &pki, "mallory"),
        server.client_addr(),
    )
    .await
    .expect_err("unmapped certificate is refused");
    assert!(err.to_lowercase().contains("authorization"), "{err}");
    server.shutdown().await;
}

#[tokio::test]
async fn handshake_first_and_fallback_delay() {
    let pki = Pki::new("first");
    let mut t = pki.tls();
    t.handshake_first = true;
    let server = start(config(t.clone())).await;
    let nc = try_connect(opts(&pki).tls_first(), server.client_addr())
        .await
        .expect("TLS-first connect");
    roundtrip(&nc, "first.a").await;
    server.shutdown().await;

    // With a fallback delay a client that waits for INFO gets it in plaintext.
    t.handshake_first_fallback = Some(Duration::from_millis(100));
    let server = start(config(t)).await;
    let info = first_info(server.client_addr()).await;
    assert_eq!(info["tls_required"], true);
    let nc = try_connect(opts(&pki), server.client_addr())
        .await
        .expect("late INFO, then TLS");
    roundtrip(&nc, "first.b").await;
    let nc2 = try_connect(opts(&pki).tls_first(), server.client_addr())
        .await
        .expect("TLS first still works");
    roundtrip(&nc2, "first.c").await;
    server.shutdown().await;
}

#[tokio::test]
async fn allow_non_tls_serves_both() {
    let pki = Pki::new("optional");
    let mut c = config(pki.tls());
    c.allow_non_tls = true;
    let server = start(c).await;
    let info = first_info(server.client_addr()).await;
    assert_eq!(info["tls_available"], true);
    assert!(info.get("tls_required").is_none());
    let plain = async_nats::connect(format!("nats://{}", server.client_addr()))
        .await
        .expect("plain connect");
    roundtrip(&plain, "opt.a").await;
    let tls = try_connect(opts(&pki), server.client_addr())
        .await
        .expect("TLS connect");
    roundtrip(&tls, "opt.b").await;
    server.shutdown().await;
}

#[tokio::test]
async fn certificate_reload_keeps_connections() {
    let a = Pki::new("reload-a");
    let b = Pki::new("reload-b");
    let server = start(config(a.tls())).await;
    let nc = try_connect(opts(&a), server.client_addr())
        .await
        .expect("connect with A");
    let mut new_cfg = (*server.shared.config()).clone();
    new_cfg.tls = Some(b.tls());
    let reload: tern::run::Reloader = {
        let new_cfg = new_cfg.clone();
        Box::new(move || Ok(new_cfg.clone()))
    };
    tern::run::apply_reload(&server.shared, &reload);
    roundtrip(&nc, "reload.old").await;
    let nb = try_connect(opts(&b), server.client_addr())
        .await
        .expect("connect with B");
    roundtrip(&nb, "reload.new").await;
    assert!(try_connect(opts(&a), server.client_addr()).await.is_err());
    server.shutdown().await;
}

/// The conf text both servers load; paths are absolute (the harness runs elsewhere).
fn tls_conf(pki: &Pki, extra: &str) -> String {
    let p = |f: &str| pki.path(f).display().to_string();
    format!(
        "tls {{\n  cert_file: \"{}\"\n  key_file: \"{}\"\n  timeout: 0.5\n{extra}}}\n",
        p("server-cert.pem"),
        p("server-key.pem")
    )
}

#[test]
fn plain_client_on_tls_port_matches_nats_server() {
    let pki = Pki::new("diff-plain");
    Diff::new("plain_client_on_tls_port")
        .conf(&tls_conf(&pki, ""))
        .send("CONNECT {\"verbose\":false}\r\nPING\r\n")
        .wait_close()
        .on(1)
        // A silent client: closed after the TLS timeout, no -ERR.
        .wait_close()
        .expect("\"tls_required\":true")
        .expect_not("-ERR")
        .expect_not("PONG")
        .expect_closed(0)
        .expect_closed(1)
        .run();
}

#[test]
fn tls_verify_info_matches_nats_server() {
    let pki = Pki::new("diff-verify");
    let ca = pki.path("ca.pem").display().to_string();
    Diff::new("tls_verify_info")
        .conf(&tls_conf(
            &pki,
            &format!("  ca_file: \"{ca}\"\n  verify: true\n"),
        ))
        .send("CONNECT {}\r\n")
        .wait_close()
        .expect("\"tls_verify\":true")
        .expect_closed(0)
        .run();
}

/// `tern sub` and `tern pub` (the client commands the Helm test and drills use) over
/// TLS: with `--tlsca`, with a `tls://` URL, and with a client certificate when the
/// server verifies clients; without the CA the server's certificate is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_commands_speak_tls() {
    let pki = Pki::new("tools");
    pki.client("tool", "tool@example.com");
    let mut cfg = cluster_tests::harness::local_config();
    let mut tls = pki.tls();
    tls.verify = true;
    cfg.tls = Some(tls);
    let s = start(cfg).await;
    let url = format!("tls://127.0.0.1:{}", s.client_addr().port());
    let bin = cluster_tests::diff::tern_bin();
    let p = |f: &str| pki.path(f).to_string_lossy().into_owned();
    let cert_args = [
        "--tlsca".to_string(),
        p("ca.pem"),
        "--tlscert".into(),
        p("tool-cert.pem"),
        "--tlskey".into(),
        p("tool-key.pem"),
    ];
    let sub = std::process::Command::new(&bin)
        .args([
            "sub",
            "tls.tools",
            "--count",
            "1",
            "--raw",
            "--wait",
            "10s",
            "-s",
            &url,
        ])
        .args(&cert_args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("tern sub");
    // Interest registered before publishing: the server counts the subscription.
    let h = s.shared.clone();
    cluster_tests::harness::wait_until(Duration::from_secs(10), "tern sub subscribed", || {
        let n = h.sublist.count();
        async move { n >= 1 }
    })
    .await;
    let out = std::process::Command::new(&bin)
        .args(["pub", "tls.tools", "over tls", "-s", &url])
        .args(&cert_args)
        .output()
        .expect("tern pub");
    assert!(out.status.success(), "{out:?}");
    let got = sub.wait_with_output().expect("sub output");
    assert!(got.status.success(), "{got:?}");
    assert_eq!(String::from_utf8_lossy(&got.stdout).trim(), "over tls");

    // No client certificate: the server requires one, so the handshake fails.
    let plain_url = format!("nats://127.0.0.1:{}", s.client_addr().port());
    let out = std::process::Command::new(&bin)
        .args([
            "pub",
            "tls.tools",
            "x",
            "-s",
            &plain_url,
            "--tlsca",
            &p("ca.pem"),
        ])
        .output()
        .expect("tern pub");
    assert!(!out.status.success(), "{out:?}");
    // A CA that did not sign the server's certificate: refused by the client.
    let other = Pki::new("tools-other");
    let out = std::process::Command::new(&bin)
        .args(["pub", "tls.tools", "x", "-s", &url])
        .args(["--tlsca", &other.path("ca.pem").to_string_lossy()])
        .args(&cert_args[2..])
        .output()
        .expect("tern pub");
    assert!(!out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("TLS handshake"),
        "{out:?}"
    );
    s.shutdown().await;
}
