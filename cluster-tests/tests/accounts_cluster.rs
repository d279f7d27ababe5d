//! Accounts on an in-process tern cluster: interest is kept per (account, subject) on
//! every route, a routed message is delivered in its own account only, and a stream
//! import's shadow interest reaches the node where the exporter publishes.

use std::time::Duration;

use cluster_tests::cluster::TestCluster;
use futures::StreamExt;
use tern::config::{AccountConfig, ExportConfig, ImportConfig, User};

fn user(name: &str) -> User {
    User {
        user: Some(name.into()),
        password: Some(name.into()),
        ..Default::default()
    }
}

fn accounts() -> Vec<AccountConfig> {
    vec![
        AccountConfig {
            name: "A".into(),
            users: vec![user("a")],
            exports: vec![ExportConfig {
                subject: "a.>".into(),
                ..Default::default()
            }],
            ..Default::default()
        },
        AccountConfig {
            name: "B".into(),
            users: vec![user("b")],
            imports: vec![ImportConfig {
                account: "A".into(),
                subject: "a.>".into(),
                prefix: Some("fromA".into()),
                ..Default::default()
            }],
            ..Default::default()
        },
    ]
}

async fn connect(c: &TestCluster, i: usize, name: &str) -> async_nats::Client {
    async_nats::ConnectOptions::with_user_and_password(name.into(), name.into())
        .ignore_discovered_servers()
        .connect(c.client_url(i))
        .await
        .unwrap_or_else(|e| panic!("connect {name}: {e}"))
}

async fn next(sub: &mut async_nats::Subscriber, what: &str) -> async_nats::Message {
    tokio::time::timeout(Duration::from_secs(5), sub.next())
        .await
        .unwrap_or_else(|_| panic!("no message: {what}"))
        .expect("subscription open")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interest_and_messages_are_per_account_across_routes() {
    let c = TestCluster::start_with(3, |_, cfg| cfg.accounts = accounts()).await;
    let a1 = connect(&c, 1, "a").await;
    let b1 = connect(&c, 1, "b").await;
    let a0 = connect(&c, 0, "a").await;
    let b0 = connect(&c, 0, "b").await;

    let mut sa = a1.subscribe("same").await.expect("sub");
    let mut sb = b1.subscribe("same").await.expect("sub");
    a1.flush().await.expect("flush");
    b1.flush().await.expect("flush");
    c.wait_remote_interest_in(0, "A", "same", 1).await;
    c.wait_remote_interest_in(0, "B", "same", 1).await;
    c.wait_remote_interest_in(2, "B", "same", 1).await;

    a0.publish("same", "in-a".into()).await.expect("pub");
    a0.flush().await.expect("flush");
    b0.publish("same", "in-b".into()).await.expect("pub");
    b0.flush().await.expect("flush");
    assert_eq!(&next(&mut sa, "A's message").await.payload[..], b"in-a");
    assert_eq!(&next(&mut sb, "B's message").await.payload[..], b"in-b");

    // B's interest goes; A's on the same subject stays.
    sb.unsubscribe().await.expect("unsub");
    b1.flush().await.expect("flush");
    c.wait_remote_interest_in(0, "B", "same", 0).await;
    c.wait_remote_interest_in(0, "A", "same", 1).await;
    b0.publish("same", "lost".into()).await.expect("pub");
    b0.flush().await.expect("flush");
    a0.publish("same", "still".into()).await.expect("pub");
    a0.flush().await.expect("flush");
    assert_eq!(
        &next(&mut sa, "A after B's unsub").await.payload[..],
        b"still"
    );

    // Stream import: the importer on node 2, the exporter publishing on node 0.
    let b2 = connect(&c, 2, "b").await;
    let mut imported = b2.subscribe("fromA.a.>").await.expect("sub");
    b2.flush().await.expect("flush");
    c.wait_remote_interest_in(0, "A", "a.x", 1).await;
    a0.publish("a.x", "exported".into()).await.expect("pub");
    a0.flush().await.expect("flush");
    let m = next(&mut imported, "stream import across routes").await;
    assert_eq!(m.subject.as_str(), "fromA.a.x");
    assert_eq!(&m.payload[..], b"exported");
    // The $G account of a client without a user is untouched by all of this.
    assert_eq!(
        c.nodes[0].shared.global().sublist.count(),
        0,
        "no interest landed in $G"
    );
    c.shutdown().await;
}
