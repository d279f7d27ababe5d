//! WebSocket transport: real clients (async-nats over ws:// and wss://, soketto with
//! permessage-deflate) against tern, pub/sub with TCP clients on one node and across a
//! cluster, origin checks, bad frames, and a differential check of the handshake and
//! INFO against nats-server.

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use cluster_tests::cluster::TestCluster;
use cluster_tests::diff::{reference_bin, tern_bin, ServerProc, ServerSetup};
use cluster_tests::harness::{local_config, monitor_json, start, wait_until};
use futures::StreamExt;
use tern::config::{TlsConfig, WebsocketConfig};
use tern::Config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

fn ws_plain() -> WebsocketConfig {
    WebsocketConfig {
        host: Some("127.0.0.1".into()),
        port: Some(-1),
        no_tls: true,
        ..Default::default()
    }
}

fn with_ws(ws: WebsocketConfig) -> Config {
    let mut c = local_config();
    c.websocket = ws;
    c
}

fn ws_url(addr: SocketAddr) -> String {
    format!("ws://{addr}")
}

async fn connect_nats(url: &str) -> async_nats::Client {
    async_nats::ConnectOptions::new()
        .connect(url)
        .await
        .unwrap_or_else(|e| panic!("connect {url}: {e}"))
}

/// Sends an upgrade request with `extra` headers; returns the stream and what came back
/// up to the end of the HTTP headers (plus anything after, in `rest`).
async fn raw_upgrade(addr: SocketAddr, extra: &str) -> (TcpStream, String, Vec<u8>) {
    let mut s = TcpStream::connect(addr).await.expect("connect ws port");
    let req = format!(
        "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    );
    s.write_all(req.as_bytes()).await.expect("write request");
    let mut buf = Vec::new();
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut chunk))
            .await
            .expect("response in time")
            .expect("read response");
        assert!(n > 0, "closed before the response: {buf:?}");
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let rest = buf[end..].to_vec();
    (s, head, rest)
}

/// Reads until EOF (or 5 s), returning everything.
async fn read_to_end(s: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
    out
}

#[tokio::test]
async fn ws_client_and_tcp_client_exchange_messages() {
    let srv = start(with_ws(ws_plain())).await;
    let ws = connect_nats(&ws_url(srv.websocket_addr().expect("ws listener"))).await;
    let tcp = connect_nats(&format!("nats://{}", srv.client_addr())).await;

    let mut ws_sub = ws.subscribe("to.ws").await.unwrap();
    let mut tcp_sub = tcp.subscribe("to.tcp").await.unwrap();
    common::synced(&ws).await;
    common::synced(&tcp).await;
    tcp.publish("to.ws", "from tcp".into()).await.unwrap();
    ws.publish("to.tcp", "from ws".into()).await.unwrap();
    let m = tokio::time::timeout(Duration::from_secs(5), ws_sub.next())
        .await
        .expect("ws gets a message")
        .unwrap();
    assert_eq!(&m.payload[..], b"from tcp");
    let m = tokio::time::timeout(Duration::from_secs(5), tcp_sub.next())
        .await
        .expect("tcp gets a message")
        .unwrap();
    assert_eq!(&m.payload[..], b"from ws");

    // Request/reply with a 100 KiB body crosses many frames and write batches.
    let big = vec![b'x'; 100 * 1024];
    let mut echo = tcp.subscribe("echo").await.unwrap();
    let tcp2 = tcp.clone();
    tokio::spawn(async move {
        while let Some(m) = echo.next().await {
            if let Some(r) = m.reply {
                tcp2.publish(r, m.payload).await.unwrap();
            }
        }
    });
    common::synced(&tcp).await;
    let r = ws.request("echo", big.clone().into()).await.expect("reply");
    assert_eq!(r.payload.len(), big.len());

    let connz = monitor_json(srv.monitor_addr().unwrap(), "/connz").await;
    let types: Vec<&str> = connz["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["type"].as_str().unwrap())
        .collect();
    assert!(types.contains(&"websocket"), "{connz}");
    assert!(types.contains(&"nats"), "{connz}");
    let varz = monitor_json(srv.monitor_addr().unwrap(), "/varz").await;
    assert_eq!(
        varz["websocket"]["port"],
        srv.websocket_addr().unwrap().port()
    );
    assert_eq!(varz["websocket"]["no_tls"], true);
    srv.shutdown().await;
}

#[tokio::test]
async fn ws_across_a_cluster_and_ws_connect_urls() {
    let c = TestCluster::start_with(2, |_, cfg| cfg.websocket = ws_plain()).await;
    let ws_addrs: Vec<SocketAddr> = c
        .nodes
        .iter()
        .map(|n| n.websocket_addr().unwrap())
        .collect();
    let ws = connect_nats(&ws_url(ws_addrs[0])).await;
    let tcp = connect_nats(&c.client_url(1)).await;
    let mut sub = ws.subscribe("x.>").await.unwrap();
    ws.flush().await.unwrap();
    c.wait_remote_interest(1, "x.>", 1).await;
    tcp.publish("x.1", "hello".into()).await.unwrap();
    tcp.flush().await.unwrap();
    let m = tokio::time::timeout(Duration::from_secs(5), sub.next())
        .await
        .expect("message across the route")
        .unwrap();
    assert_eq!(&m.payload[..], b"hello");

    // INFO to a new ws client lists both nodes' websocket URLs (gossiped in route INFO).
    let want: Vec<String> = ws_addrs.iter().map(|a| a.to_string()).collect();
    wait_until(Duration::from_secs(10), "ws connect_urls", || {
        let want = want.clone();
        let addr = ws_addrs[0];
        async move {
            let (_s, _, rest) = raw_upgrade(addr, "").await;
            let text = String::from_utf8_lossy(&rest).into_owned();
            want.iter().all(|u| text.contains(u.as_str()))
        }
    })
    .await;
    c.shutdown().await;
}

/// A CA and a server certificate for localhost/127.0.0.1 in a temp dir.
fn pki(name: &str) -> PathBuf {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let dir = std::env::temp_dir().join(format!("tern-ws-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let issuer = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    std::fs::write(dir.join("ca.pem"), issuer.pem()).unwrap();
    let params = CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();
    std::fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
    dir
}

#[tokio::test]
async fn wss_with_generated_certificates() {
    let dir = pki("wss");
    let mut ws = ws_plain();
    ws.no_tls = false;
    ws.tls = Some(TlsConfig {
        cert_file: Some(dir.join("cert.pem")),
        key_file: Some(dir.join("key.pem")),
        ..Default::default()
    });
    let srv = start(with_ws(ws)).await;
    let port = srv.websocket_addr().unwrap().port();
    let client = async_nats::ConnectOptions::new()
        .add_root_certificates(dir.join("ca.pem"))
        .connect(format!("wss://localhost:{port}"))
        .await
        .expect("wss connect");
    let mut sub = client.subscribe("s").await.unwrap();
    client.flush().await.unwrap();
    let tcp = connect_nats(&format!("nats://{}", srv.client_addr())).await;
    tcp.publish("s", "over tls".into()).await.unwrap();
    let m = tokio::time::timeout(Duration::from_secs(5), sub.next())
        .await
        .expect("wss message")
        .unwrap();
    assert_eq!(&m.payload[..], b"over tls");
    // A plain ws client on the wss port gets no upgrade.
    let mut s = TcpStream::connect(srv.websocket_addr().unwrap())
        .await
        .unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let got = read_to_end(&mut s).await;
    assert!(!got.starts_with(b"HTTP/1.1 101"), "{got:?}");
    srv.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn websocket_block_without_tls_is_refused() {
    let mut ws = ws_plain();
    ws.no_tls = false;
    let err = tern::Server::start(with_ws(ws))
        .await
        .err()
        .expect("start fails");
    assert!(
        err.to_string()
            .contains("websocket requires TLS configuration"),
        "{err}"
    );
}

/// Raw deflate + sync flush, tail removed (RFC 7692).
fn deflate(data: &[u8]) -> Vec<u8> {
    let mut c = flate2::Compress::new(flate2::Compression::default(), false);
    let mut out = Vec::with_capacity(data.len() + 64);
    c.compress_vec(data, &mut out, flate2::FlushCompress::Sync)
        .unwrap();
    assert!(out.ends_with(&[0, 0, 0xff, 0xff]));
    out.truncate(out.len() - 4);
    out
}

fn inflate(data: &[u8]) -> Vec<u8> {
    let mut d = flate2::Decompress::new(false);
    let mut input = data.to_vec();
    input.extend_from_slice(&[0, 0, 0xff, 0xff]);
    let mut out = Vec::with_capacity(1 << 20);
    d.decompress_vec(&input, &mut out, flate2::FlushDecompress::Sync)
        .unwrap();
    out
}

/// Reads one server frame: (first byte, payload). Server frames are never masked.
async fn read_frame(s: &mut TcpStream, buf: &mut Vec<u8>) -> (u8, Vec<u8>) {
    loop {
        if buf.len() >= 2 {
            let (len, off) = match buf[1] & 0x7f {
                126 if buf.len() >= 4 => (u16::from_be_bytes([buf[2], buf[3]]) as usize, 4),
                127 if buf.len() >= 10 => (
                    u64::from_be_bytes(buf[2..10].try_into().unwrap()) as usize,
                    10,
                ),
                126 | 127 => (usize::MAX, 0),
                n => (n as usize, 2),
            };
            if len != usize::MAX && buf.len() >= off + len {
                let first = buf[0];
                let payload = buf[off..off + len].to_vec();
                buf.drain(..off + len);
                return (first, payload);
            }
        }
        let mut chunk = [0u8; 8192];
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut chunk))
            .await
            .expect("frame in time")
            .unwrap();
        assert!(n > 0, "closed");
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// A masked client frame; `rsv1` marks compressed data.
fn client_frame(payload: &[u8], rsv1: bool) -> Vec<u8> {
    let mask = [0x11u8, 0x22, 0x33, 0x44];
    let mut f = vec![if rsv1 { 0xc2 } else { 0x82 }];
    if payload.len() < 126 {
        f.push(0x80 | payload.len() as u8);
    } else {
        f.push(0x80 | 126);
        f.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    }
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

#[tokio::test]
async fn compression_is_negotiated_and_messages_flow() {
    let mut ws = ws_plain();
    ws.compression = true;
    let srv = start(with_ws(ws)).await;
    let addr = srv.websocket_addr().unwrap();
    let (mut s, head, mut buf) = raw_upgrade(
        addr,
        "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n",
    )
    .await;
    assert!(
        head.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
        "{head}"
    );
    assert!(
        head.contains("Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover\r\n"),
        "{head}"
    );
    // The INFO frame (> 64 bytes) is compressed: FIN + RSV1 + binary.
    let (first, payload) = read_frame(&mut s, &mut buf).await;
    assert_eq!(first, 0xc2);
    assert!(inflate(&payload).starts_with(b"INFO {"));

    // A compressed client frame is read; the small PONG comes back uncompressed.
    let connect = deflate(b"CONNECT {\"verbose\":false}\r\nSUB big 1\r\nPING\r\n");
    s.write_all(&client_frame(&connect, true)).await.unwrap();
    let (first, payload) = read_frame(&mut s, &mut buf).await;
    assert_eq!((first, &payload[..]), (0x82, &b"PONG\r\n"[..]));

    // A large message from a TCP client arrives compressed and intact; a compressed
    // PUB from the websocket client reaches TCP.
    let tcp = connect_nats(&format!("nats://{}", srv.client_addr())).await;
    let mut tcp_sub = tcp.subscribe("back").await.unwrap();
    tcp.flush().await.unwrap();
    let body = "abc".repeat(2000);
    tcp.publish("big", body.clone().into()).await.unwrap();
    tcp.flush().await.unwrap();
    let mut msg = Vec::new();
    while msg.len() < body.len() + 20 {
        let (first, payload) = read_frame(&mut s, &mut buf).await;
        let plain = if first & 0x40 != 0 {
            inflate(&payload)
        } else {
            payload
        };
        msg.extend_from_slice(&plain);
    }
    let text = String::from_utf8_lossy(&msg);
    assert!(text.starts_with("MSG big 1 6000\r\n"), "{text:.40}");
    assert!(text.contains(&body));
    let pub_back = format!("PUB back {}\r\n{}\r\n", body.len(), body);
    s.write_all(&client_frame(&deflate(pub_back.as_bytes()), true))
        .await
        .unwrap();
    let m = tokio::time::timeout(Duration::from_secs(5), tcp_sub.next())
        .await
        .expect("compressed PUB reaches tcp")
        .unwrap();
    assert_eq!(m.payload.len(), body.len());
    srv.shutdown().await;
}

#[tokio::test]
async fn origins_are_checked() {
    let mut ws = ws_plain();
    ws.same_origin = true;
    let srv = start(with_ws(ws)).await;
    let addr = srv.websocket_addr().unwrap();
    let (mut s, head, mut body) = raw_upgrade(addr, "Origin: http://evil.com\r\n").await;
    assert!(head.starts_with("HTTP/1.1 403 Forbidden\r\n"), "{head}");
    body.extend(read_to_end(&mut s).await);
    assert_eq!(body, b"Forbidden\n");
    let (_s, head, _) = raw_upgrade(addr, &format!("Origin: http://{addr}\r\n")).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    // No Origin header: accepted (non-browser clients).
    let (_s, head, _) = raw_upgrade(addr, "").await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    srv.shutdown().await;

    let mut ws = ws_plain();
    ws.allowed_origins = vec!["https://app.example.com".into()];
    let srv = start(with_ws(ws)).await;
    let addr = srv.websocket_addr().unwrap();
    let (_s, head, _) = raw_upgrade(addr, "Origin: https://app.example.com\r\n").await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let (_s, head, _) = raw_upgrade(addr, "Origin: http://app.example.com\r\n").await;
    assert!(head.starts_with("HTTP/1.1 403"), "{head}");
    srv.shutdown().await;
}

#[tokio::test]
async fn bad_frames_close_only_their_connection() {
    let srv = start(with_ws(ws_plain())).await;
    let addr = srv.websocket_addr().unwrap();
    let other = connect_nats(&ws_url(addr)).await;

    // A frame claiming 1 TiB of payload.
    let (mut s, head, _) = raw_upgrade(addr, "").await;
    assert!(head.starts_with("HTTP/1.1 101"));
    let mut frame = vec![0x82, 0xff];
    frame.extend_from_slice(&(1u64 << 40).to_be_bytes());
    frame.extend_from_slice(&[1, 2, 3, 4]);
    s.write_all(&frame).await.unwrap();
    let got = read_to_end(&mut s).await;
    // INFO frame, then a close frame with 1009 (message too big).
    let close = [0x88, 0x02, 0x03, 0xf1];
    assert!(got.windows(4).any(|w| w == close), "{got:?}");

    // An unmasked client frame.
    let (mut s, _, _) = raw_upgrade(addr, "").await;
    s.write_all(&[0x82, 0x06]).await.unwrap();
    s.write_all(b"PING\r\n").await.unwrap();
    let got = read_to_end(&mut s).await;
    let close = [0x88, 0x02, 0x03, 0xea];
    assert!(got.windows(4).any(|w| w == close), "{got:?}");

    // The well-behaved client is unaffected.
    other.flush().await.expect("other client still served");
    let mut sub = other.subscribe("still").await.unwrap();
    other.publish("still", "here".into()).await.unwrap();
    let m = tokio::time::timeout(Duration::from_secs(5), sub.next())
        .await
        .expect("still served")
        .unwrap();
    assert_eq!(&m.payload[..], b"here");
    srv.shutdown().await;
}

/// Waits for "Listening for websocket clients on ws://HOST:PORT" in a process log.
async fn ws_port(p: &ServerProc) -> u16 {
    let re = regex::Regex::new(r"Listening for websocket clients on ws://\S*?:(\d+)").unwrap();
    let mut port = 0;
    wait_until(Duration::from_secs(10), "websocket listener line", || {
        let found = re.captures(&p.log()).and_then(|c| c[1].parse::<u16>().ok());
        if let Some(f) = found {
            port = f;
        }
        async move { found.is_some() }
    })
    .await;
    port
}

/// The same upgrade requests against nats-server and tern: same 101 headers (the
/// accept key is derived from the same client key), same 403 answer, and tern's INFO
/// keys are nats-server's (minus the fields tern does not implement).
#[tokio::test]
async fn handshake_matches_nats_server() {
    let conf = "websocket { listen: \"127.0.0.1:-1\", no_tls: true, compression: true, same_origin: true }\n";
    let setup = ServerSetup {
        args: Vec::new(),
        conf: Some(conf.into()),
    };
    let mut answers = Vec::new();
    for bin in [reference_bin(), tern_bin()] {
        let p = ServerProc::start(&bin, &setup).expect("server starts");
        let addr: SocketAddr = format!("127.0.0.1:{}", ws_port(&p).await).parse().unwrap();
        let (_s, ok, _) = raw_upgrade(addr, "").await;
        let (_s, deflate, _) =
            raw_upgrade(addr, "Sec-WebSocket-Extensions: permessage-deflate\r\n").await;
        let (mut s, forbidden, mut forbidden_body) =
            raw_upgrade(addr, "Origin: http://evil.com\r\n").await;
        forbidden_body.extend(read_to_end(&mut s).await);
        // INFO keys from an uncompressed session.
        let (mut s, _, mut rest) = raw_upgrade(addr, "").await;
        while !rest.ends_with(b"\r\n") {
            let mut chunk = [0u8; 4096];
            let n = s.read(&mut chunk).await.unwrap();
            assert!(n > 0);
            rest.extend_from_slice(&chunk[..n]);
        }
        let text = String::from_utf8_lossy(&rest).into_owned();
        let json = &text[text.find('{').unwrap()..text.rfind('}').unwrap() + 1];
        let info: serde_json::Map<String, serde_json::Value> = serde_json::from_str(json).unwrap();
        let keys: Vec<String> = info
            .keys()
            .filter(|k| !matches!(k.as_str(), "git_commit" | "api_lvl" | "xkey"))
            .cloned()
            .collect();
        assert_eq!(info["port"], addr.port(), "INFO port is the ws port");
        // Forbidden answers carry a Date header from Go's http server; compare the rest.
        let forbidden: Vec<String> = forbidden
            .lines()
            .filter(|l| !l.starts_with("Date:"))
            .map(str::to_string)
            .collect();
        answers.push((ok, deflate, forbidden, forbidden_body, keys));
    }
    assert_eq!(answers[0], answers[1]);
}
