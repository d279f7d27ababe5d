//! Authentication and permissions through a real client (async-nats) against an
//! in-process tern: bcrypt users, nkey users, tokens, permission errors reported to the
//! client, request/reply with `allow_responses`, and secrets kept out of logs and /connz.

mod common;

use std::time::Duration;

use cluster_tests::diff::{tern_bin, ServerProc, ServerSetup};
use cluster_tests::harness::{local_config, monitor_json, start, RawConn};
use futures::StreamExt;
use tern::config::User;
use tern::Config;

fn user(name: &str, password: &str, perms: Option<serde_json::Value>) -> User {
    User {
        user: Some(name.into()),
        password: Some(password.into()),
        permissions: perms,
        ..User::default()
    }
}

async fn connect(
    o: async_nats::ConnectOptions,
    addr: std::net::SocketAddr,
) -> Result<async_nats::Client, String> {
    let fut = o
        .connection_timeout(Duration::from_secs(2))
        .connect(format!("nats://{addr}"));
    match tokio::time::timeout(Duration::from_secs(5), fut).await {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(_) => Err("timed out".into()),
    }
}

/// Connects with `o`, the client's events (e.g. `-ERR`s) going to the returned channel.
async fn connect_with_events(
    o: async_nats::ConnectOptions,
    addr: std::net::SocketAddr,
) -> (
    async_nats::Client,
    tokio::sync::mpsc::UnboundedReceiver<String>,
) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let o = o.event_callback(move |e| {
        let tx = tx.clone();
        async move {
            let _ = tx.send(e.to_string());
        }
    });
    (connect(o, addr).await.expect("connect"), rx)
}

/// User `a` (password `b`) connected, with its events.
async fn user_a_with_events(
    addr: std::net::SocketAddr,
) -> (
    async_nats::Client,
    tokio::sync::mpsc::UnboundedReceiver<String>,
) {
    let o = async_nats::ConnectOptions::with_user_and_password("a".into(), "b".into());
    connect_with_events(o, addr).await
}

fn with_users(users: Vec<User>) -> Config {
    let mut c = local_config();
    c.authorization.users = users;
    c
}

#[tokio::test]
async fn bcrypt_user_and_token() {
    let hash = bcrypt::hash("s3cret", 4).expect("bcrypt");
    let server = start(with_users(vec![user("bob", &hash, None)])).await;
    let o = async_nats::ConnectOptions::with_user_and_password("bob".into(), "s3cret".into());
    let nc = connect(o, server.client_addr()).await.expect("bcrypt user");
    nc.flush().await.expect("flush");
    let bad = async_nats::ConnectOptions::with_user_and_password("bob".into(), "nope".into());
    let err = connect(bad, server.client_addr())
        .await
        .expect_err("wrong password");
    assert!(err.to_lowercase().contains("authorization"), "{err}");
    server.shutdown().await;

    let mut c = local_config();
    c.authorization.token = Some(bcrypt::hash("t0k", 4).expect("bcrypt"));
    let server = start(c).await;
    let o = async_nats::ConnectOptions::with_token("t0k".into());
    connect(o, server.client_addr())
        .await
        .expect("bcrypt token");
    let o = async_nats::ConnectOptions::with_token("x".into());
    assert!(connect(o, server.client_addr()).await.is_err());
    server.shutdown().await;
}

#[tokio::test]
async fn nkey_user_signs_the_nonce() {
    let kp = nkeys::KeyPair::new_user();
    let server = start(with_users(vec![User {
        nkey: Some(kp.public_key()),
        ..User::default()
    }]))
    .await;
    let o = async_nats::ConnectOptions::with_nkey(kp.seed().expect("seed"));
    let nc = connect(o, server.client_addr()).await.expect("nkey user");
    let mut sub = nc.subscribe("nk").await.expect("sub");
    nc.publish("nk", "x".into()).await.expect("pub");
    let m = tokio::time::timeout(Duration::from_secs(5), sub.next()).await;
    assert!(matches!(m, Ok(Some(_))));
    let stranger = nkeys::KeyPair::new_user();
    let o = async_nats::ConnectOptions::with_nkey(stranger.seed().expect("seed"));
    assert!(connect(o, server.client_addr()).await.is_err());
    server.shutdown().await;
}

#[tokio::test]
async fn permission_errors_reach_the_client_and_keep_it_connected() {
    let perms =
        serde_json::json!({"publish": {"allow": ["ok.>"]}, "subscribe": {"deny": ["secret"]}});
    let server = start(with_users(vec![user("a", "b", Some(perms))])).await;
    let (nc, mut rx) = user_a_with_events(server.client_addr()).await;
    nc.publish("nope", "x".into()).await.expect("queued");
    nc.flush().await.expect("flush");
    let ev = permission_event(&mut rx).await;
    assert!(ev.contains("Publish to \"nope\""), "{ev}");
    // Still usable afterwards.
    let mut sub = nc.subscribe("ok.x").await.expect("sub");
    nc.publish("ok.x", "y".into()).await.expect("pub");
    let m = tokio::time::timeout(Duration::from_secs(5), sub.next()).await;
    assert!(matches!(m, Ok(Some(_))));
    server.shutdown().await;
}

#[tokio::test]
async fn request_reply_with_allow_responses() {
    let svc_perms = serde_json::json!({"subscribe": "svc.>", "allow_responses": true});
    let server = start(with_users(vec![
        user("svc", "p", Some(svc_perms)),
        user("cli", "p", None),
    ]))
    .await;
    let svc = connect(
        async_nats::ConnectOptions::with_user_and_password("svc".into(), "p".into()),
        server.client_addr(),
    )
    .await
    .expect("svc");
    let mut reqs = svc.subscribe("svc.echo").await.expect("sub");
    svc.flush().await.expect("flush");
    tokio::spawn(async move {
        while let Some(m) = reqs.next().await {
            if let Some(r) = m.reply {
                let _ = svc.publish(r, m.payload).await;
                let _ = svc.flush().await;
            }
        }
    });
    let cli = connect(
        async_nats::ConnectOptions::with_user_and_password("cli".into(), "p".into()),
        server.client_addr(),
    )
    .await
    .expect("cli");
    for i in 0..3 {
        let resp = tokio::time::timeout(
            Duration::from_secs(5),
            cli.request("svc.echo", format!("r{i}").into()),
        )
        .await
        .expect("in time")
        .expect("reply");
        assert_eq!(resp.payload, format!("r{i}").as_bytes());
    }
    server.shutdown().await;
}

#[tokio::test]
async fn secrets_stay_out_of_connz() {
    let server = start(with_users(vec![user("alice", "hunter2-secret", None)])).await;
    let (mut raw, _) = RawConn::connect(server.client_addr()).await;
    raw.send(b"CONNECT {\"verbose\":false,\"user\":\"alice\",\"pass\":\"hunter2-secret\"}\r\n")
        .await;
    assert!(raw.flush().await.is_empty());
    let connz = monitor_json(server.monitor_addr().expect("monitor"), "/connz?auth=1").await;
    let text = connz.to_string();
    assert!(!text.contains("hunter2-secret"), "{text}");
    server.shutdown().await;
}

#[test]
fn secrets_stay_out_of_the_trace_log() {
    let setup = ServerSetup {
        args: vec!["-DV".into()],
        conf: Some(
            "authorization { users = [ {user: alice, password: \"hunter2-secret\"} ] }\n".into(),
        ),
    };
    let server = ServerProc::start(&tern_bin(), &setup).expect("tern starts");
    let mut s = std::net::TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
    use std::io::{Read, Write};
    s.write_all(b"CONNECT {\"verbose\":false,\"user\":\"alice\",\"pass\":\"hunter2-secret\",\"auth_token\":\"tok-secret\"}\r\nPING\r\n")
        .expect("write");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut buf = [0u8; 4096];
    let mut got = Vec::new();
    while !got.windows(6).any(|w| w == b"PONG\r\n") {
        let n = s.read(&mut buf).expect("read");
        assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    std::thread::sleep(Duration::from_millis(100));
    let log = server.log();
    assert!(log.contains("[REDACTED]"), "{log}");
    assert!(
        !log.contains("hunter2-secret") && !log.contains("tok-secret"),
        "{log}"
    );
}

/// Operator mode with async-nats: a `.creds` user (JWT + nonce signature) connects,
/// pub/sub and request/reply work, its JWT permissions are enforced, and a user of an
/// account the resolver does not know is refused.
#[tokio::test]
async fn jwt_creds_with_async_nats() {
    use cluster_tests::jwt::{user, OperatorSetup};
    use serde_json::json;
    let mut op = OperatorSetup::default();
    let acc = op.account(None, json!({}));
    let server = start(operator_config(&op)).await;
    let addr = server.client_addr();

    let free = user(&acc, None, json!({}), json!({}));
    let o = async_nats::ConnectOptions::with_credentials(&free.creds_file()).expect("creds");
    let nc = connect(o, addr).await.expect("jwt user connects");
    let limited = user(
        &acc,
        None,
        json!({ "pub": { "deny": ["secret.>"] }, "sub": { "allow": ["svc", "_INBOX.>"] } }),
        json!({}),
    );
    let o = async_nats::ConnectOptions::with_credentials(&limited.creds_file()).expect("creds");
    let lc = connect(o, addr).await.expect("limited user connects");

    let mut svc = nc.subscribe("svc").await.expect("sub");
    nc.flush().await.expect("flush");
    tokio::spawn(async move {
        if let Some(m) = svc.next().await {
            if let Some(r) = m.reply {
                let _ = nc.publish(r, "pong".into()).await;
                let _ = nc.flush().await;
            }
        }
    });
    let reply = tokio::time::timeout(Duration::from_secs(5), lc.request("svc", "ping".into()))
        .await
        .expect("request in time")
        .expect("reply");
    assert_eq!(&reply.payload[..], b"pong");

    // Denied by the user JWT: the server's -ERR reaches the client as an event.
    let o = async_nats::ConnectOptions::with_credentials(&limited.creds_file()).expect("creds");
    let (ec, mut rx) = connect_with_events(o, addr).await;
    ec.publish("secret.x", "no".into()).await.expect("publish");
    ec.flush().await.expect("flush");
    let ev = permission_event(&mut rx).await;
    assert!(ev.contains("secret.x"), "{ev}");

    let stranger = nkeys::KeyPair::new_account();
    let orphan = user(&stranger, None, json!({}), json!({}));
    let o = async_nats::ConnectOptions::with_credentials(&orphan.creds_file()).expect("creds");
    let err = connect(o, addr).await.expect_err("unknown account");
    assert!(err.to_lowercase().contains("authorization"), "{err}");
    server.shutdown().await;
}

/// JWT users of two accounts get separate subject spaces: a publish in one account
/// never reaches a subscriber of the other on the same subject, and reaches one of its
/// own account.
#[tokio::test]
async fn jwt_accounts_are_isolated() {
    use cluster_tests::jwt::{user, OperatorSetup};
    use serde_json::json;
    let mut op = OperatorSetup::default();
    let (a, b) = (op.account(None, json!({})), op.account(None, json!({})));
    let server = start(operator_config(&op)).await;
    let addr = server.client_addr();
    let creds = |acc| {
        let u = user(acc, None, json!({}), json!({}));
        async_nats::ConnectOptions::with_credentials(&u.creds_file()).expect("creds")
    };
    let a_sub = connect(creds(&a), addr).await.expect("A subscriber");
    let b_sub = connect(creds(&b), addr).await.expect("B subscriber");
    let a_pub = connect(creds(&a), addr).await.expect("A publisher");
    let mut sa = a_sub.subscribe("iso").await.unwrap();
    let mut sb = b_sub.subscribe("iso").await.unwrap();
    common::synced(&a_sub).await;
    common::synced(&b_sub).await;
    a_pub.publish("iso", "for A".into()).await.unwrap();
    a_pub.flush().await.unwrap();
    let m = tokio::time::timeout(Duration::from_secs(5), sa.next())
        .await
        .expect("A's subscriber gets it")
        .expect("message");
    assert_eq!(&m.payload[..], b"for A");
    // B's subscriber saw nothing: a round trip on B's connection after A's message was
    // delivered, then nothing is queued on B's subscription.
    common::synced(&b_sub).await;
    let none = tokio::time::timeout(Duration::from_millis(200), sb.next()).await;
    assert!(none.is_err(), "B got A's message: {none:?}");
    let acc_names: Vec<String> = server
        .shared
        .accounts
        .all()
        .iter()
        .map(|x| x.name.clone())
        .collect();
    assert!(acc_names.contains(&a.public_key()) && acc_names.contains(&b.public_key()));
    server.shutdown().await;
}

/// A reload that narrows a user's permissions reaches an async-nats client at once: its
/// now-forbidden subscription is removed with a Permissions Violation event, publishing
/// where it no longer may is refused, and the connection stays up.
#[tokio::test]
async fn reload_narrows_permissions_of_a_connected_client() {
    let wide = serde_json::json!({"publish": ["ok.>", "was.>", "_INBOX.>"], "subscribe": ["ok.>", "was.>", "_INBOX.>"]});
    let server = start(with_users(vec![user("a", "b", Some(wide))])).await;
    let (nc, mut rx) = user_a_with_events(server.client_addr()).await;
    let mut kept = nc.subscribe("ok.x").await.expect("sub ok");
    let _gone = nc.subscribe("was.x").await.expect("sub was");
    common::synced(&nc).await;

    let mut narrow = (*server.shared.config()).clone();
    narrow.authorization.users = vec![user(
        "a",
        "b",
        Some(
            serde_json::json!({"publish": ["ok.>", "_INBOX.>"], "subscribe": ["ok.>", "_INBOX.>"]}),
        ),
    )];
    let reload: tern::run::Reloader = Box::new(move || Ok(narrow.clone()));
    tern::run::apply_reload(&server.shared, &reload);
    let ev = permission_event(&mut rx).await;
    assert!(ev.contains("Subscription to \"was.x\""), "{ev}");

    nc.publish("was.x", "no".into()).await.expect("queued");
    nc.flush().await.expect("flush");
    let ev = permission_event(&mut rx).await;
    assert!(ev.contains("Publish to \"was.x\""), "{ev}");
    nc.publish("ok.x", "yes".into()).await.expect("pub");
    let m = tokio::time::timeout(Duration::from_secs(5), kept.next())
        .await
        .expect("the allowed subscription still gets messages")
        .expect("open");
    assert_eq!(&m.payload[..], b"yes");
    assert_eq!(
        server.shared.global().sublist.count(),
        // ok.x and async-nats' request inbox: was.x is gone.
        2,
        "was.x left the sublist"
    );
    server.shutdown().await;
}

/// Operator mode with the setup's operator and preloaded accounts.
fn operator_config(op: &cluster_tests::jwt::OperatorSetup) -> tern::Config {
    let mut c = local_config();
    c.operator = Some(op.operator_jwt.clone());
    c.resolver = Some("MEMORY".into());
    c.resolver_preload = op.preload.iter().cloned().collect();
    c
}

/// The first client event that reports a Permissions Violation (5 s at most).
async fn permission_event(rx: &mut tokio::sync::mpsc::UnboundedReceiver<String>) -> String {
    tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match rx.recv().await {
                Some(e) if e.contains("Permissions Violation") => return e,
                Some(_) => continue,
                None => return String::new(),
            }
        }
    })
    .await
    .expect("a Permissions Violation event")
}
