//! Monitoring and TLS: HTTPS monitoring (`https_port` / `-ms`) with the client TLS
//! certificate, /connz TLS fields (`tls_version`, `tls_cipher_suite`, and
//! `tls_peer_certs` with `auth=1`), and /varz TLS settings.

use std::sync::Arc;
use std::time::Duration;

use cluster_tests::harness::{monitor_json, start};
use cluster_tests::pki::Pki;
use rustls::pki_types::ServerName;
use tern::config::TlsConfig;
use tern::Config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// GET `path` over HTTPS, trusting `pki`'s CA; returns (status line, body).
async fn https_get(pki: &Pki, addr: std::net::SocketAddr, path: &str) -> (String, String) {
    try_https_get(pki, addr, path)
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

/// [`https_get`], with a failed handshake as an error.
async fn try_https_get(
    pki: &Pki,
    addr: std::net::SocketAddr,
    path: &str,
) -> Result<(String, String), String> {
    let mut roots = rustls::RootCertStore::empty();
    let pem = std::fs::read(pki.path("ca.pem")).expect("ca");
    for c in rustls_pki_types_certs(&pem) {
        roots.add(c).expect("root");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(cfg));
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let name = ServerName::try_from("localhost").expect("name");
    let mut tls = tokio::time::timeout(Duration::from_secs(5), connector.connect(name, tcp))
        .await
        .map_err(|_| "handshake timed out".to_string())?
        .map_err(|e| format!("handshake: {e}"))?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    tls.write_all(req.as_bytes()).await.expect("write");
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), tls.read_to_end(&mut out)).await;
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("HTTP response");
    Ok((
        head.lines().next().unwrap_or("").to_string(),
        body.to_string(),
    ))
}

fn rustls_pki_types_certs(pem: &[u8]) -> Vec<rustls::pki_types::CertificateDer<'static>> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .expect("pem")
}

fn tls_config(pki: &Pki, verify: bool) -> Config {
    let mut c = Config::local();
    c.tls = Some(TlsConfig {
        verify,
        timeout: Some(Duration::from_millis(1500)),
        ..pki.tls()
    });
    c
}

async fn tls_client(pki: &Pki, addr: std::net::SocketAddr, cert: bool) -> async_nats::Client {
    let mut o = async_nats::ConnectOptions::new()
        .require_tls(true)
        .add_root_certificates(pki.path("ca.pem"));
    if cert {
        o = o.add_client_certificate(pki.path("alice-cert.pem"), pki.path("alice-key.pem"));
    }
    let nc = o.connect(format!("tls://{addr}")).await.expect("connect");
    nc.flush().await.expect("flush");
    nc
}

#[tokio::test]
async fn https_monitoring_uses_the_tls_certificate() {
    let pki = Pki::new("https-mon");
    pki.client("alice", "alice@example.com");
    // verify: true for clients; HTTPS still asks for no client certificate.
    let mut c = tls_config(&pki, true);
    c.https_port = Some(-1);
    let server = start(c).await;
    let addr = server.monitor_addr().expect("https monitor");
    let (status, body) = https_get(&pki, addr, "/varz").await;
    assert!(status.contains("200"), "{status}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("varz json");
    assert_ne!(v["https_port"], 0);
    assert_eq!(v["tls_required"], true);
    assert_eq!(v["tls_verify"], true);
    assert_eq!(v["tls_timeout"], 1.5);
    // Plain HTTP on the HTTPS port gets no answer.
    let mut plain = tokio::net::TcpStream::connect(addr).await.expect("connect");
    plain
        .write_all(b"GET /varz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), plain.read_to_end(&mut buf)).await;
    assert!(!String::from_utf8_lossy(&buf).contains("server_id"));
    server.shutdown().await;
}

#[tokio::test]
async fn https_monitoring_certificate_follows_a_reload() {
    let a = Pki::new("https-reload-a");
    let b = Pki::new("https-reload-b");
    let mut c = tls_config(&a, false);
    c.https_port = Some(-1);
    let server = start(c).await;
    let addr = server.monitor_addr().expect("https monitor");
    assert!(https_get(&a, addr, "/varz").await.0.contains("200"));
    let mut new_cfg = (*server.shared.config()).clone();
    new_cfg.tls = Some(b.tls());
    let reload: tern::run::Reloader = Box::new(move || Ok(new_cfg.clone()));
    tern::run::apply_reload(&server.shared, &reload);
    // The next handshake uses B's certificate: A's CA no longer trusts the server.
    assert!(https_get(&b, addr, "/healthz").await.0.contains("200"));
    let old = try_https_get(&a, addr, "/healthz").await;
    assert!(old.is_err(), "A's CA still accepted: {old:?}");
    server.shutdown().await;
}

#[test]
fn https_without_tls_block_fails_to_start() {
    let mut c = Config::local();
    c.https_port = Some(-1);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let r = rt.block_on(tern::Server::start(c));
    let err = r.err().expect("refused").to_string();
    assert!(err.contains("TLS cert and key required for HTTPS"), "{err}");
}

#[tokio::test]
async fn connz_shows_the_tls_session_and_peer_certificate() {
    let pki = Pki::new("connz-tls");
    pki.client("alice", "alice@example.com");
    let mut c = tls_config(&pki, true);
    c.http_port = Some(-1);
    let server = start(c).await;
    let _nc = tls_client(&pki, server.client_addr(), true).await;
    let m = server.monitor_addr().expect("monitor");
    let v = monitor_json(m, "/connz").await;
    let conn = &v["connections"][0];
    assert_eq!(conn["tls_version"], "1.3", "{conn}");
    let cipher = conn["tls_cipher_suite"].as_str().unwrap_or_default();
    assert!(cipher.starts_with("TLS_AES_"), "Go's suite name: {conn}");
    assert!(conn.get("tls_peer_certs").is_none(), "only with auth=1");
    let v = monitor_json(m, "/connz?auth=1").await;
    let certs = v["connections"][0]["tls_peer_certs"]
        .as_array()
        .cloned()
        .expect("tls_peer_certs with auth=1");
    assert_eq!(certs[0]["subject"], "CN=alice");
    assert_eq!(certs[0]["cert_sha256"].as_str().map(str::len), Some(64));
    assert_eq!(
        certs[0]["subject_pk_sha256"].as_str().map(str::len),
        Some(64)
    );
    let v = monitor_json(m, "/varz").await;
    assert_eq!(v["tls_required"], true);
    assert_eq!(v["tls_verify"], true);
    server.shutdown().await;
}
