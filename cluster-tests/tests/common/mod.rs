//! Checks shared by the process-level cluster tests: pub/sub in every direction,
//! queue groups across nodes, request/reply across routes (async-nats clients).

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cluster_tests::procs::{wait_for, Procs};
use futures::StreamExt;

pub async fn client(url: &str) -> async_nats::Client {
    async_nats::ConnectOptions::new()
        .connect(url)
        .await
        .unwrap_or_else(|e| panic!("connect {url}: {e}"))
}

/// A client that only ever talks to `url` (no discovered servers).
pub async fn pinned_client(url: &str) -> async_nats::Client {
    async_nats::ConnectOptions::new()
        .ignore_discovered_servers()
        .connect(url)
        .await
        .unwrap_or_else(|e| panic!("connect {url}: {e}"))
}

/// Returns once the server has read and applied everything `nc` sent before.
/// async-nats' `flush` only writes the socket and waits for no PONG, so a publish
/// from another connection can overtake this client's SUB. A request to a subject
/// nobody listens on comes back as no-responders only after the server processed
/// what came before it on this connection.
pub async fn synced(nc: &async_nats::Client) {
    let subject = nc.new_inbox();
    let answer =
        tokio::time::timeout(Duration::from_secs(10), nc.request(subject, "".into())).await;
    match answer {
        Ok(Err(e)) if e.kind() == async_nats::client::RequestErrorKind::NoResponders => {}
        other => panic!("round trip to the server: expected no-responders, got {other:?}"),
    }
}

/// Waits until every node other than `owners` sees interest in `subject` from
/// exactly `owners.len()` peers (each owner node from every other node).
pub async fn wait_interest_from(c: &Procs, subject: &str, owners: &[usize]) {
    for (i, n) in c.nodes.iter().enumerate() {
        let want = owners.iter().filter(|&&o| o != i).count();
        n.wait_interest(subject, want).await;
    }
}

/// Next message within `secs`, or a panic naming `what`.
pub async fn next_msg(
    sub: &mut async_nats::Subscriber,
    secs: u64,
    what: &str,
) -> async_nats::Message {
    tokio::time::timeout(Duration::from_secs(secs), sub.next())
        .await
        .unwrap_or_else(|_| panic!("no message within {secs}s: {what}"))
        .unwrap_or_else(|| panic!("subscription ended: {what}"))
}

/// Every node publishes to a subscriber on every other node: each subscriber gets
/// exactly the messages meant for it, from every other node.
pub async fn check_pub_sub_every_direction(c: &Procs, tag: &str) {
    const PER_PAIR: usize = 5;
    let n = c.nodes.len();
    let mut clients = Vec::new();
    for node in &c.nodes {
        clients.push(client(&node.client_url()).await);
    }
    let mut subs = Vec::new();
    for (to, nc) in clients.iter().enumerate() {
        subs.push(nc.subscribe(format!("{tag}.ps.{to}")).await.unwrap());
        nc.flush().await.unwrap();
    }
    for to in 0..n {
        wait_interest_from(c, &format!("{tag}.ps.{to}"), &[to]).await;
    }
    for (from, nc) in clients.iter().enumerate() {
        for to in (0..n).filter(|&t| t != from) {
            for k in 0..PER_PAIR {
                nc.publish(format!("{tag}.ps.{to}"), format!("{from}:{k}").into())
                    .await
                    .unwrap();
            }
        }
        nc.flush().await.unwrap();
    }
    for (to, sub) in subs.iter_mut().enumerate() {
        let mut got: HashMap<String, usize> = HashMap::new();
        for _ in 0..PER_PAIR * (n - 1) {
            let what = format!("node {to} ({}) receiving", c.nodes[to].opts.name);
            let m = next_msg(sub, 5, &what).await;
            *got.entry(String::from_utf8_lossy(&m.payload).into_owned())
                .or_default() += 1;
        }
        for from in (0..n).filter(|&f| f != to) {
            for k in 0..PER_PAIR {
                assert_eq!(
                    got.get(&format!("{from}:{k}")),
                    Some(&1),
                    "{} -> {}: message {k} missing or duplicated: {got:?}",
                    c.nodes[from].opts.name,
                    c.nodes[to].opts.name
                );
            }
        }
        // Nothing beyond what was sent (a duplicate would arrive right behind).
        let extra = tokio::time::timeout(Duration::from_millis(100), sub.next()).await;
        assert!(extra.is_err(), "extra message on node {to}: {extra:?}");
    }
}

/// Two members of one queue group on every node; every node publishes: each
/// message is delivered exactly once cluster-wide and every node's members are used.
pub async fn check_queue_group(c: &Procs, tag: &str) {
    const PER_NODE: usize = 60;
    let n = c.nodes.len();
    let subject = format!("{tag}.qg.work");
    let seen: Arc<Mutex<HashMap<String, Vec<usize>>>> = Arc::default();
    let mut clients = Vec::new();
    for (i, node) in c.nodes.iter().enumerate() {
        let nc = client(&node.client_url()).await;
        for _ in 0..2 {
            let mut sub = nc
                .queue_subscribe(subject.clone(), "workers".into())
                .await
                .unwrap();
            let seen = seen.clone();
            tokio::spawn(async move {
                while let Some(m) = sub.next().await {
                    let key = String::from_utf8_lossy(&m.payload).into_owned();
                    seen.lock().unwrap().entry(key).or_default().push(i);
                }
            });
        }
        nc.flush().await.unwrap();
        clients.push(nc);
    }
    let all: Vec<usize> = (0..n).collect();
    wait_interest_from(c, &subject, &all).await;
    for (from, nc) in clients.iter().enumerate() {
        for k in 0..PER_NODE {
            nc.publish(subject.clone(), format!("{from}:{k}").into())
                .await
                .unwrap();
        }
        nc.flush().await.unwrap();
    }
    let total = PER_NODE * n;
    wait_for(
        Duration::from_secs(10),
        &format!("{total} queue messages delivered"),
        || async { seen.lock().unwrap().values().map(Vec::len).sum::<usize>() >= total },
    )
    .await;
    // Duplicates would arrive right behind the originals: give them a moment.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let seen = seen.lock().unwrap();
    let mut per_node = vec![0usize; n];
    for from in 0..n {
        for k in 0..PER_NODE {
            let key = format!("{from}:{k}");
            let got = seen.get(&key).cloned().unwrap_or_default();
            assert_eq!(got.len(), 1, "queue message {key} delivered {got:?}");
            per_node[got[0]] += 1;
        }
    }
    assert_eq!(seen.len(), total, "unexpected payloads");
    println!("{tag}: queue deliveries per node {per_node:?}");
    for (i, cnt) in per_node.iter().enumerate() {
        assert!(
            *cnt > 0,
            "node {i} ({}) members never used: {per_node:?}",
            c.nodes[i].opts.name
        );
    }
}

/// A responder on every node; every node's client calls every other node's service.
pub async fn check_request_reply(c: &Procs, tag: &str) {
    let n = c.nodes.len();
    let mut clients = Vec::new();
    for (i, node) in c.nodes.iter().enumerate() {
        let nc = client(&node.client_url()).await;
        let mut svc = nc.subscribe(format!("{tag}.svc.{i}")).await.unwrap();
        let responder = nc.clone();
        tokio::spawn(async move {
            while let Some(m) = svc.next().await {
                if let Some(reply) = m.reply {
                    let body = format!("{i}<{}", String::from_utf8_lossy(&m.payload));
                    let _ = responder.publish(reply, body.into()).await;
                    let _ = responder.flush().await;
                }
            }
        });
        nc.flush().await.unwrap();
        clients.push(nc);
    }
    for i in 0..n {
        wait_interest_from(c, &format!("{tag}.svc.{i}"), &[i]).await;
    }
    for (from, nc) in clients.iter().enumerate() {
        for to in (0..n).filter(|&t| t != from) {
            let r = tokio::time::timeout(
                Duration::from_secs(5),
                nc.request(format!("{tag}.svc.{to}"), format!("{from}").into()),
            )
            .await
            .unwrap_or_else(|_| panic!("request {from} -> {to} timed out"))
            .unwrap_or_else(|e| panic!("request {from} -> {to}: {e}"));
            assert_eq!(
                String::from_utf8_lossy(&r.payload),
                format!("{to}<{from}"),
                "reply {from} -> {to}"
            );
        }
    }
}

/// Every route-level check in turn.
pub async fn check_all(c: &Procs, tag: &str) {
    check_pub_sub_every_direction(c, tag).await;
    check_queue_group(c, tag).await;
    check_request_reply(c, tag).await;
}
pub mod raft;
