//! Accounts with real clients (async-nats) on real processes, the same conf on
//! nats-server and tern: service imports (request in the importer, responder in the
//! exporter, reply back through the `_R_.` mapping), stream imports with a prefix, and
//! isolation. On one node of each implementation, and across 2-node clusters of tern
//! only and mixed with nats-server in both directions (importer on one node, exporter
//! on the other), which proves the account name on RS+/RMSG is understood both ways.

mod common;

use std::time::Duration;

use cluster_tests::procs::{Impl, Node, Procs};
use futures::StreamExt;

use Impl::{Nats as N, Tern as T};

const ACCOUNTS: &str = r#"
accounts {
  A: { users: [ {user: a, password: a} ], exports: [ {stream: "a.>"}, {service: "svc.>"} ] }
  B: { users: [ {user: b, password: b} ], imports: [ {stream: {account: A, subject: "a.>"}, prefix: "fromA"}, {service: {account: A, subject: "svc.echo"}, to: "echo"} ] }
}
"#;

const REQUESTS: usize = 3;

async fn user(node: &Node, name: &str) -> async_nats::Client {
    async_nats::ConnectOptions::with_user_and_password(name.into(), name.into())
        .ignore_discovered_servers()
        .connect(node.client_url())
        .await
        .unwrap_or_else(|e| panic!("connect {name} to {}: {e}", node.opts.name))
}

async fn start(kinds: &[Impl]) -> Procs {
    Procs::start(kinds, |_, o| o.conf = Some(ACCOUNTS.into())).await
}

/// The importer's clients on node `imp`, the exporter's on node `exp` (may be equal).
async fn check_accounts(c: &Procs, imp: usize, exp: usize) {
    let (ni, ne) = (&c.nodes[imp], &c.nodes[exp]);
    let ctx = format!("importer on {}, exporter on {}", ni.opts.name, ne.opts.name);
    let a = user(ne, "a").await;
    let a_near = user(ni, "a").await;
    let b = user(ni, "b").await;
    let b_far = user(ne, "b").await;

    // The responder in A answers the REQUESTS requests on the reply subject it is
    // given, then goes (so a later check on the same cluster sees only its own).
    let mut svc = a
        .subscribe("svc.echo")
        .await
        .expect("sub svc.echo")
        .take(REQUESTS);
    let responder = a.clone();
    tokio::spawn(async move {
        while let Some(m) = svc.next().await {
            if let Some(reply) = m.reply {
                let mut body = b"echo:".to_vec();
                body.extend_from_slice(&m.payload);
                let _ = responder.publish(reply, body.into()).await;
                let _ = responder.flush().await;
            }
        }
    });
    let mut stream = b.subscribe("fromA.a.>").await.expect("sub fromA");
    let mut iso = a_near.subscribe("iso").await.expect("sub iso");
    for cl in [&a, &a_near, &b] {
        common::synced(cl).await;
    }
    if imp != exp {
        // Shadow interest in A for the importer's subscription, the service, and A's
        // own subscription, each announced in its account.
        ne.wait_interest("a.>", 1).await;
        ne.wait_interest("iso", 1).await;
        ni.wait_interest("svc.echo", 1).await;
    }

    a.publish("a.x", "s1".into()).await.expect("pub");
    a.flush().await.expect("flush");
    let m = common::next_msg(&mut stream, 5, &format!("stream import ({ctx})")).await;
    assert_eq!(m.subject.as_str(), "fromA.a.x", "{ctx}");
    assert_eq!(&m.payload[..], b"s1", "{ctx}");

    for i in 0..REQUESTS {
        let body = format!("r{i}");
        let resp = tokio::time::timeout(
            Duration::from_secs(5),
            b.request("echo", body.clone().into()),
        )
        .await
        .unwrap_or_else(|_| panic!("request timed out ({ctx})"))
        .unwrap_or_else(|e| panic!("request failed ({ctx}): {e}"));
        assert_eq!(resp.payload, format!("echo:{body}").into_bytes(), "{ctx}");
    }

    // B's publish on `iso` stays in B; A's reaches A's subscriber, and first.
    b_far.publish("iso", "from-b".into()).await.expect("pub");
    common::synced(&b_far).await;
    a.publish("iso", "from-a".into()).await.expect("pub");
    a.flush().await.expect("flush");
    let m = common::next_msg(&mut iso, 5, &format!("isolation marker ({ctx})")).await;
    assert_eq!(
        &m.payload[..],
        b"from-a",
        "{ctx}: a message from B crossed into A"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_one_node_nats_server() {
    let c = start(&[N]).await;
    check_accounts(&c, 0, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_one_node_tern() {
    let c = start(&[T]).await;
    check_accounts(&c, 0, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_across_tern_cluster() {
    let c = start(&[T, T, T]).await;
    check_accounts(&c, 0, 1).await;
    check_accounts(&c, 2, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_mixed_tern_imports_from_nats_server() {
    let c = start(&[T, N]).await;
    check_accounts(&c, 0, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_mixed_nats_server_imports_from_tern() {
    let c = start(&[T, N]).await;
    check_accounts(&c, 1, 0).await;
}

/// The monitoring fields both servers must agree on for accounts.
async fn check_monitoring(c: &Procs) {
    let n = &c.nodes[0];
    let what = &n.opts.name;
    let _a = user(n, "a").await;
    let b = user(n, "b").await;
    let _sub = b.subscribe("fromA.a.x").await.expect("sub");
    common::synced(&b).await;

    let v = n.json("/accountz").await;
    let names: Vec<&str> = v["accounts"]
        .as_array()
        .expect("accounts")
        .iter()
        .filter_map(|x| x.as_str())
        .collect();
    for want in ["A", "B", "$G"] {
        assert!(names.contains(&want), "{what}: /accountz lacks {want}: {v}");
    }
    let d = &n.json("/accountz?acc=B").await["account_detail"];
    assert_eq!(d["account_name"], "B", "{what}: {d}");
    assert_eq!(d["client_connections"], 1, "{what}: {d}");
    let imports = d["imports"].as_array().expect("imports");
    let stream = imports
        .iter()
        .find(|i| i["type"] == "stream")
        .expect("stream import");
    assert_eq!(stream["local_subject"], "fromA.a.>", "{what}: {d}");
    assert_eq!(stream["account"], "A", "{what}: {d}");
    let svc = imports
        .iter()
        .find(|i| i["type"] == "service" && i["account"] == "A")
        .expect("service import");
    assert_eq!(svc["subject"], "svc.echo", "{what}: {d}");
    assert_eq!(svc["local_subject"], "echo", "{what}: {d}");
    let d = &n.json("/accountz?acc=A").await["account_detail"];
    let exports = d["exports"].as_array().expect("exports");
    assert!(
        exports
            .iter()
            .any(|x| x["subject"] == "svc.>" && x["response_type"] == "Singleton"),
        "{what}: {d}"
    );

    let v = n.json("/connz?acc=B&auth=1").await;
    assert_eq!(v["total"], 1, "{what}: {v}");
    let conn = &v["connections"][0];
    assert_eq!(conn["account"], "B", "{what}: {v}");
    assert_eq!(conn["authorized_user"], "b", "{what}: {v}");
    let v = n.json("/connz?acc=NOPE").await;
    assert_eq!(v["total"], 0, "{what}: {v}");

    // The subscription in B and its shadow in A.
    let v = n.json("/subsz?subs=1&acc=A&test=a.x").await;
    assert_eq!(v["total"], 1, "{what}: shadow subscription in A: {v}");
    let v = n.json("/subsz?subs=1&acc=B&test=fromA.a.x").await;
    assert_eq!(v["total"], 1, "{what}: {v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_monitoring_nats_server() {
    check_monitoring(&start(&[N]).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_monitoring_tern() {
    check_monitoring(&start(&[T]).await).await;
}
