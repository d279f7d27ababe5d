//! `TestCluster`: several in-process tern nodes on 127.0.0.1 forming a mesh from one
//! seed, with helpers to wait on route and interest state.

use std::net::SocketAddr;
use std::time::Duration;

use tern::{Config, ServerHandle};

use crate::harness::{start, wait_until};

/// A cluster of in-process nodes. Node 0 is the seed every other node knows.
pub struct TestCluster {
    pub nodes: Vec<ServerHandle>,
    pub name: String,
}

/// The config of node `i`: loopback, random client/monitor/cluster ports, named `n<i>`.
pub fn node_config(i: usize, cluster: &str, seed: Option<SocketAddr>) -> Config {
    let mut c = crate::harness::local_config();
    c.server_name = Some(format!("n{i}"));
    c.cluster.name = Some(cluster.to_string());
    c.cluster.host = Some("127.0.0.1".into());
    c.cluster.port = Some(-1);
    if let Some(seed) = seed {
        c.cluster.routes = vec![format!("nats-route://{seed}")];
    }
    c
}

impl TestCluster {
    /// Starts `n` nodes, all seeded with node 0, and waits for the full mesh.
    pub async fn start(n: usize) -> TestCluster {
        Self::start_with(n, |_, _| {}).await
    }

    /// Like `start`, letting the caller adjust each node's config.
    pub async fn start_with(n: usize, tweak: impl Fn(usize, &mut Config)) -> TestCluster {
        let name = "T".to_string();
        let mut cfg = node_config(0, &name, None);
        tweak(0, &mut cfg);
        let seed = start(cfg).await;
        let seed_addr = seed.cluster_addr().expect("seed listens for routes");
        let mut nodes = vec![seed];
        for i in 1..n {
            let mut cfg = node_config(i, &name, Some(seed_addr));
            tweak(i, &mut cfg);
            nodes.push(start(cfg).await);
        }
        let c = TestCluster { nodes, name };
        c.wait_formed().await;
        c
    }

    /// Waits until every node has a route to every other node.
    pub async fn wait_formed(&self) {
        let want = self.nodes.len() - 1;
        for (i, n) in self.nodes.iter().enumerate() {
            let shared = n.shared.clone();
            wait_until(
                Duration::from_secs(10),
                &format!("node {i} has {want} routes"),
                || {
                    let shared = shared.clone();
                    async move { shared.routes.num_routes() == want }
                },
            )
            .await;
        }
    }

    pub fn client_url(&self, i: usize) -> String {
        format!("nats://{}", self.nodes[i].client_addr())
    }

    /// Waits until node `i` sees remote interest (from any route) on `subject`.
    pub async fn wait_remote_interest(&self, i: usize, subject: &str, want: usize) {
        self.wait_remote_interest_in(i, "$G", subject, want).await
    }

    /// Waits until node `i` sees remote interest on `subject` in `account`.
    pub async fn wait_remote_interest_in(
        &self,
        i: usize,
        account: &str,
        subject: &str,
        want: usize,
    ) {
        let acc = self.nodes[i].shared.accounts.get_or_register(account);
        let subject = subject.to_string();
        wait_until(
            Duration::from_secs(10),
            &format!("node {i} sees {want} remote subs on {subject}"),
            || {
                let acc = acc.clone();
                let subject = subject.clone();
                async move {
                    let r = acc.sublist.match_subject(subject.as_bytes());
                    let remote = r
                        .psubs
                        .iter()
                        .chain(r.qsubs.iter().flatten())
                        .filter(|s| s.0.client.kind == tern::client::ConnKind::Route)
                        .count();
                    remote == want
                }
            },
        )
        .await;
    }

    /// Messages node `from` has sent on its route to node `to`.
    pub fn route_out_msgs(&self, from: usize, to: usize) -> u64 {
        let to_id = &self.nodes[to].shared.server_id;
        self.nodes[from]
            .shared
            .routes
            .routes()
            .iter()
            .find(|r| &r.remote_id == to_id)
            .map_or(0, |r| r.conn.out.counters().0)
    }

    pub async fn shutdown(self) {
        for n in self.nodes {
            n.shutdown().await;
        }
    }
}
