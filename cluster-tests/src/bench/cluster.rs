//! 3-node cluster mode: start a full mesh of one server kind and prove that
//! interest has propagated between nodes, identically for every server.
//!
//! Formation and interest are detected end to end with the client protocol
//! only (no monitoring port, no knowledge of either server's route
//! internals): a probe connection subscribes on one node to a fresh probe
//! subject, and another connection publishes to it on a different node every
//! [`PROBE_EVERY`] until one message arrives. Because a server never forwards a
//! message received from a route to another route (one hop, see
//! nats-reference §4.5), delivery X → Y proves a direct X–Y route carrying
//! Y's interest; probing every ordered pair proves the full mesh.
//!
//! The same probe guards each timed run: after the run's subscriptions are
//! registered on the subscribing node, a probe subscription made *later* on
//! that node travels behind them on the same route connection (interest of an
//! account is sent in order on one connection, by nats-server (one pool
//! connection per account) and by tern (one connection per peer)), so once
//! the probe arrives the publishing node knows the run's interest too and no
//! message is published into a node that would drop it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::load::Exec;
use super::proto::{self, Parser};
use super::server::{free_ports, RunningServer, ServerSpec};

/// Node names, in start order; `B` and `C` are seeded with `A`'s route URL.
pub const NODE_NAMES: [&str; 3] = ["A", "B", "C"];
/// Cluster name passed to every node.
pub const CLUSTER_NAME: &str = "bench";
/// Probe publish interval while waiting for interest to arrive.
pub const PROBE_EVERY: Duration = Duration::from_millis(10);
/// How long the whole mesh may take to form.
pub const FORM_TIMEOUT: Duration = Duration::from_secs(20);

/// A running 3-node cluster of one server kind.
pub struct Cluster {
    /// Nodes A, B, C.
    pub nodes: Vec<RunningServer>,
    /// gRPC control addresses of A, B, C when started with Raft on
    /// ([`Cluster::start_opts`]), else empty.
    pub control: Vec<String>,
    /// From starting node A to the last successful mesh probe.
    pub formed_in: Duration,
}

impl Cluster {
    /// Start node A, then B and C with `--routes` to A, and wait for the full
    /// mesh (every ordered pair of nodes passes an interest probe).
    pub fn start(spec: &ServerSpec, exec: &Exec) -> Result<Cluster> {
        Self::start_opts(spec, exec, None)
    }

    /// [`Cluster::start`]; with `raft_store` (tern only) every node also runs the
    /// Raft control plane: `--store_dir <raft_store>/<NAME>` and
    /// `--cluster_control 127.0.0.1:<free port>`. A has no seed routes, so it
    /// initialises the group and B and C join it.
    pub fn start_opts(
        spec: &ServerSpec,
        exec: &Exec,
        raft_store: Option<&std::path::Path>,
    ) -> Result<Cluster> {
        let t0 = Instant::now();
        let ports = free_ports(3 * NODE_NAMES.len())?;
        let (client, rest) = ports.split_at(NODE_NAMES.len());
        let (route, control_ports) = rest.split_at(NODE_NAMES.len());
        let mut control = Vec::new();
        let seed = format!("nats://127.0.0.1:{}", route[0]);
        let mut nodes = Vec::new();
        for (i, name) in NODE_NAMES.iter().enumerate() {
            let mut args = vec![
                "--cluster".to_string(),
                format!("nats://127.0.0.1:{}", route[i]),
                "--cluster_name".into(),
                CLUSTER_NAME.into(),
                "-n".into(),
                (*name).into(),
            ];
            if i > 0 {
                args.extend(["--routes".to_string(), seed.clone()]);
            }
            if let Some(base) = raft_store {
                let addr = format!("127.0.0.1:{}", control_ports[i]);
                let dir = base.join(name);
                std::fs::create_dir_all(&dir).with_context(|| format!("create {dir:?}"))?;
                args.extend([
                    "--store_dir".to_string(),
                    dir.display().to_string(),
                    "--cluster_control".into(),
                    addr.clone(),
                ]);
                control.push(addr);
            }
            // On error the nodes started so far are dropped, which kills them.
            let node = spec
                .start_with(client[i], &args)
                .with_context(|| format!("{} node {name}", spec.label))?;
            nodes.push(node);
        }
        let mut cluster = Cluster {
            nodes,
            control,
            formed_in: Duration::ZERO,
        };
        let deadline = t0 + FORM_TIMEOUT;
        for (x, y) in ordered_pairs(cluster.nodes.len()) {
            let (from, to) = (cluster.nodes[x].addr(), cluster.nodes[y].addr());
            let left = deadline.saturating_duration_since(Instant::now());
            if let Err(e) = exec.block_on(await_interest(&from, &to, left)) {
                let logs = cluster.log_tails();
                cluster.stop();
                return Err(e.context(format!(
                    "{} mesh did not form: no delivery {} -> {} within {FORM_TIMEOUT:?}\n{logs}",
                    spec.label, NODE_NAMES[x], NODE_NAMES[y]
                )));
            }
        }
        cluster.formed_in = t0.elapsed();
        Ok(cluster)
    }

    /// Process ids of all nodes.
    pub fn pids(&self) -> Vec<u32> {
        self.nodes.iter().map(RunningServer::pid).collect()
    }

    /// Whether every node is still running.
    pub fn all_alive(&mut self) -> bool {
        self.nodes.iter_mut().all(RunningServer::alive)
    }

    /// Log tails of every node, labelled.
    pub fn log_tails(&self) -> String {
        self.nodes
            .iter()
            .zip(NODE_NAMES)
            .map(|(n, name)| format!("--- node {name} log tail:\n{}", n.log_tail()))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Kill and reap every node.
    pub fn stop(&mut self) {
        for n in &mut self.nodes {
            n.stop();
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
    }
}

fn ordered_pairs(n: usize) -> Vec<(usize, usize)> {
    (0..n)
        .flat_map(|x| (0..n).filter(move |&y| y != x).map(move |y| (x, y)))
        .collect()
}

static PROBE_SEQ: AtomicU64 = AtomicU64::new(0);

/// Subscribe on `sub_addr` to a fresh probe subject, then publish to it on
/// `pub_addr` every [`PROBE_EVERY`] until one message arrives (or `timeout`).
/// Returns how long it took. Both probe connections are closed afterwards.
pub async fn await_interest(pub_addr: &str, sub_addr: &str, timeout: Duration) -> Result<Duration> {
    let t0 = Instant::now();
    let subject = format!(
        "_bench.probe.{}.{}",
        std::process::id(),
        PROBE_SEQ.fetch_add(1, Ordering::Relaxed)
    );
    let fut = async {
        let mut sub = proto::connect(sub_addr, format!("SUB {subject} 1\r\n").as_bytes()).await?;
        let mut publ = proto::connect(pub_addr, b"").await?;
        let msg = format!("PUB {subject} 0\r\n\r\n");
        let mut parser = Parser::default();
        let mut buf = vec![0u8; 4096];
        loop {
            publ.write_all(msg.as_bytes()).await?;
            let next = Instant::now() + PROBE_EVERY;
            while let Ok(r) = tokio::time::timeout_at(next.into(), sub.read(&mut buf)).await {
                let n = r?;
                if n == 0 {
                    bail!("probe subscriber connection closed by {sub_addr}");
                }
                parser.feed(&buf[..n], |_| {})?;
                if parser.pings > 0 {
                    parser.pings = 0;
                    sub.write_all(b"PONG\r\n").await?;
                }
                if parser.msgs > 0 {
                    return Ok(());
                }
            }
        }
    };
    tokio::time::timeout(timeout, fut)
        .await
        .map_err(|_| anyhow!("interest {pub_addr} -> {sub_addr} not seen within {timeout:?}"))??;
    Ok(t0.elapsed())
}
