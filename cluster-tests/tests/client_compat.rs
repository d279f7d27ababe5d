//! A real client (async-nats) against an in-process tern server.

mod common;

use std::time::Duration;

use cluster_tests::harness::{local_config, monitor_json, start, wait_until, RawConn};
use futures::StreamExt;

async fn connect(addr: std::net::SocketAddr) -> async_nats::Client {
    async_nats::connect(format!("nats://{addr}"))
        .await
        .expect("async-nats connects")
}

#[tokio::test]
async fn pub_sub_and_request_reply() {
    let server = start(local_config()).await;
    let nc = connect(server.client_addr()).await;
    let mut sub = nc.subscribe("greet.*").await.unwrap();
    nc.publish("greet.joe", "hello".into()).await.unwrap();
    let msg = tokio::time::timeout(Duration::from_secs(5), sub.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(msg.subject.as_str(), "greet.joe");
    assert_eq!(&msg.payload[..], b"hello");

    let responder = connect(server.client_addr()).await;
    let mut svc = responder.subscribe("svc.echo").await.unwrap();
    tokio::spawn(async move {
        while let Some(m) = svc.next().await {
            if let Some(reply) = m.reply {
                responder.publish(reply, m.payload).await.unwrap();
            }
        }
    });
    responder_ready(&server).await;
    let resp = nc.request("svc.echo", "ping".into()).await.unwrap();
    assert_eq!(&resp.payload[..], b"ping");
    server.shutdown().await;
}

async fn responder_ready(server: &tern::ServerHandle) {
    let addr = server.monitor_addr().unwrap();
    wait_until(
        Duration::from_secs(5),
        "responder subscribed",
        || async move {
            let v = monitor_json(addr, "/subsz?subs=1&test=svc.echo").await;
            v["total"].as_u64() == Some(1)
        },
    )
    .await;
}

#[tokio::test]
async fn queue_group_delivers_each_message_once() {
    let server = start(local_config()).await;
    let nc = connect(server.client_addr()).await;
    let mut members = Vec::new();
    for _ in 0..3 {
        members.push(nc.queue_subscribe("work", "q".into()).await.unwrap());
    }
    let mut plain = nc.subscribe("work").await.unwrap();
    nc.flush().await.unwrap();
    for i in 0..30 {
        nc.publish("work", format!("{i}").into()).await.unwrap();
    }
    nc.flush().await.unwrap();
    for _ in 0..30 {
        tokio::time::timeout(Duration::from_secs(5), plain.next())
            .await
            .unwrap()
            .unwrap();
    }
    let mut total = 0;
    for m in members.iter_mut() {
        while let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(200), m.next()).await {
            total += 1;
        }
    }
    assert_eq!(total, 30, "each message to exactly one member");
    server.shutdown().await;
}

#[tokio::test]
async fn headers_and_no_responders() {
    let server = start(local_config()).await;
    let nc = connect(server.client_addr()).await;
    let mut sub = nc.subscribe("h").await.unwrap();
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("X-Test", "yes");
    nc.publish_with_headers("h", headers, "body".into())
        .await
        .unwrap();
    let m = tokio::time::timeout(Duration::from_secs(5), sub.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        m.headers.unwrap().get("X-Test").map(|v| v.as_str()),
        Some("yes")
    );
    assert_eq!(&m.payload[..], b"body");

    let err = nc.request("nobody.home", "x".into()).await.unwrap_err();
    assert_eq!(err.kind(), async_nats::RequestErrorKind::NoResponders);
    server.shutdown().await;
}

#[tokio::test]
async fn echo_false_suppresses_own_messages() {
    let server = start(local_config()).await;
    let nc = async_nats::ConnectOptions::new()
        .no_echo()
        .connect(format!("nats://{}", server.client_addr()))
        .await
        .unwrap();
    let other = connect(server.client_addr()).await;
    let mut own = nc.subscribe("e").await.unwrap();
    common::synced(&nc).await;
    nc.publish("e", "mine".into()).await.unwrap();
    other.publish("e", "theirs".into()).await.unwrap();
    other.flush().await.unwrap();
    let m = tokio::time::timeout(Duration::from_secs(5), own.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&m.payload[..], b"theirs", "own message must not be echoed");
    server.shutdown().await;
}

#[tokio::test]
async fn auto_unsubscribe_after_max() {
    let server = start(local_config()).await;
    let nc = connect(server.client_addr()).await;
    let mut sub = nc.subscribe("limited").await.unwrap();
    sub.unsubscribe_after(2).await.unwrap();
    for _ in 0..4 {
        nc.publish("limited", "x".into()).await.unwrap();
    }
    nc.flush().await.unwrap();
    let mut got = 0;
    while let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(300), sub.next()).await {
        got += 1;
    }
    assert_eq!(got, 2);
    let addr = server.monitor_addr().unwrap();
    let v = monitor_json(addr, "/subsz").await;
    assert_eq!(v["num_subscriptions"], 0, "sub removed after its limit");
    server.shutdown().await;
}

#[tokio::test]
async fn reconnects_after_server_restart() {
    let server = start(local_config()).await;
    let addr = server.client_addr();
    let nc = async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .connect(format!("nats://{addr}"))
        .await
        .unwrap();
    let mut sub = nc.subscribe("after.restart").await.unwrap();
    nc.flush().await.unwrap();
    server.shutdown().await;

    let mut cfg = local_config();
    cfg.port = i32::from(addr.port());
    let server = start(cfg).await;
    let maddr = server.monitor_addr().unwrap();
    // The client re-subscribes on reconnect; wait until the new server sees it.
    wait_until(
        Duration::from_secs(10),
        "client resubscribed",
        || async move { monitor_json(maddr, "/subsz").await["num_subscriptions"] == 1 },
    )
    .await;
    nc.publish("after.restart", "again".into()).await.unwrap();
    let m = tokio::time::timeout(Duration::from_secs(5), sub.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&m.payload[..], b"again");
    server.shutdown().await;
}

#[tokio::test]
async fn slow_consumer_is_closed_and_others_unaffected() {
    let mut cfg = local_config();
    cfg.max_pending = 256 * 1024;
    cfg.max_payload = 64 * 1024;
    let server = start(cfg).await;
    let addr = server.client_addr();
    // A subscriber that never reads its socket.
    let (mut slow, _) = RawConn::connect(addr).await;
    slow.send(b"CONNECT {\"verbose\":false}\r\nSUB flood 1\r\n")
        .await;
    slow.flush().await;
    let nc = connect(addr).await;
    let mut good = nc.subscribe("flood").await.unwrap();
    nc.flush().await.unwrap();
    let payload = bytes::Bytes::from(vec![b'x'; 16 * 1024]);
    let maddr = server.monitor_addr().unwrap();
    let mut received = 0usize;
    let mut sent = 0usize;
    // Publish until the slow one is cut off (bounded: at most 64 MiB).
    for _ in 0..4096 {
        nc.publish("flood", payload.clone()).await.unwrap();
        sent += 1;
        // Flush every 8 x 16 KiB: the reading subscriber never has more than
        // ~128 KiB (half its max_pending) outstanding, however loaded the machine is.
        if sent.is_multiple_of(8) {
            nc.flush().await.unwrap();
            let v = monitor_json(maddr, "/varz").await;
            if v["slow_consumers"] == 1 {
                break;
            }
        }
    }
    let v = monitor_json(maddr, "/varz").await;
    assert_eq!(v["slow_consumers"], 1);
    wait_until(
        Duration::from_secs(5),
        "slow consumer in closed list",
        || async move {
            let closed = monitor_json(maddr, "/connz?state=closed").await;
            closed["connections"][0]["reason"] == "Slow Consumer (Pending Bytes)"
        },
    )
    .await;
    nc.flush().await.unwrap();
    while received < sent {
        tokio::time::timeout(Duration::from_secs(10), good.next())
            .await
            .expect("the reading subscriber keeps receiving")
            .unwrap();
        received += 1;
    }
    server.shutdown().await;
}

#[tokio::test]
async fn connz_reports_client_name_and_counters() {
    let server = start(local_config()).await;
    let nc = async_nats::ConnectOptions::new()
        .name("demo-client")
        .connect(format!("nats://{}", server.client_addr()))
        .await
        .unwrap();
    let _s1 = nc.subscribe("a").await.unwrap();
    let _s2 = nc.subscribe("b.*").await.unwrap();
    nc.publish("a", "12345".into()).await.unwrap();
    nc.flush().await.unwrap();
    let maddr = server.monitor_addr().unwrap();
    wait_until(Duration::from_secs(5), "counters visible", || async move {
        let v = monitor_json(maddr, "/connz?subs=1").await;
        let c = &v["connections"][0];
        c["in_msgs"] == 1 && c["out_msgs"] == 1 && c["subscriptions"] == 2
    })
    .await;
    let v = monitor_json(maddr, "/connz?subs=1").await;
    let c = &v["connections"][0];
    assert_eq!(c["name"], "demo-client");
    assert_eq!(c["lang"], "rust");
    assert_eq!(c["in_bytes"], 5);
    server.shutdown().await;
}

#[tokio::test]
async fn unanswered_pings_close_a_stale_connection() {
    let mut cfg = local_config();
    cfg.ping_interval = Duration::from_millis(100);
    cfg.ping_max = 2;
    let server = start(cfg).await;
    // No CONNECT: the ping timer runs at ping_interval from accept.
    let (mut raw, _info) = RawConn::connect(server.client_addr()).await;
    assert_eq!(raw.read_line().await, "PING");
    assert_eq!(raw.read_line().await, "PING");
    assert_eq!(raw.read_line().await, "-ERR 'Stale Connection'");
    assert_eq!(raw.read_line().await, "", "closed after the error");
    let maddr = server.monitor_addr().unwrap();
    wait_until(
        Duration::from_secs(5),
        "stale connection counted",
        || async move { monitor_json(maddr, "/varz").await["stale_connections"] == 1 },
    )
    .await;
    drop(raw);
    server.shutdown().await;
}
