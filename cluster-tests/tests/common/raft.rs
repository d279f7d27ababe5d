//! Raft-enabled `tern` processes for the process-level control-plane tests: each node
//! has its own store_dir (kept across restarts), a control listener with a token, and
//! `bootstrap_expect`. Operators' view is read with the real `tern cluster` CLI, and
//! polled with the AdminService directly where many reads are needed (a CLI process
//! per poll would blur the failover time being measured).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const POLL: Duration = Duration::from_millis(20);

use cluster_tests::procs::{Impl, Node, NodeOpts, Ports};
use tern::cluster::network::{channel, request};
use tern::cluster::proto::admin::admin_service_client::AdminServiceClient;
use tern::cluster::proto::admin::{StatusReply, StatusRequest};

pub const TOKEN: &str = "procs-raft-token";

/// A directory removed on drop (store_dirs outlive node restarts, not the test).
pub struct TempDir(pub PathBuf);

static SEQ: AtomicUsize = AtomicUsize::new(0);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let d = std::env::temp_dir().join(format!(
            "tern-procs-raft-{tag}-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("temp dir");
        TempDir(d)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One Raft-enabled tern process.
pub struct RaftNode {
    pub node: Node,
    pub control: u16,
    pub store: TempDir,
}

/// How to configure a node's Raft block.
#[derive(Clone, Debug)]
pub struct RaftOpts {
    pub bootstrap_expect: Option<u32>,
    pub max_voters: Option<u32>,
    pub cluster_name: String,
    pub routes: Vec<String>,
    pub extra_args: Vec<String>,
}

impl Default for RaftOpts {
    fn default() -> Self {
        RaftOpts {
            bootstrap_expect: Some(3),
            max_voters: None,
            cluster_name: "C1".into(),
            routes: Vec::new(),
            extra_args: Vec::new(),
        }
    }
}

pub fn free_port() -> u16 {
    cluster_tests::procs::reserve_port()
}

impl RaftNode {
    pub fn start(name: &str, ports: Ports, o: &RaftOpts) -> RaftNode {
        Self::start_in(name, ports, o, TempDir::new(name), free_port())
    }

    /// Starts with a given store_dir and control port.
    pub fn start_in(
        name: &str,
        ports: Ports,
        o: &RaftOpts,
        store: TempDir,
        control: u16,
    ) -> RaftNode {
        let opts = node_opts(name, o, &store.0, control);
        RaftNode {
            node: Node::start(opts, ports),
            control,
            store,
        }
    }

    pub fn control_addr(&self) -> String {
        format!("127.0.0.1:{}", self.control)
    }

    pub fn name(&self) -> &str {
        &self.node.opts.name
    }

    /// AdminService status, or None while the node does not answer.
    pub async fn status(&self) -> Option<StatusReply> {
        let mut c = AdminServiceClient::new(channel(&self.control_addr(), None).ok()?);
        c.status(request(
            StatusRequest {},
            Some(TOKEN),
            Duration::from_secs(2),
        ))
        .await
        .ok()
        .map(|r| r.into_inner())
    }

    pub async fn node_id(&self) -> u64 {
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(s) = self.status().await {
                return s.node_id;
            }
            assert!(
                Instant::now() < end,
                "{} does not answer status",
                self.name()
            );
            tokio::time::sleep(POLL).await;
        }
    }
}

pub fn node_opts(name: &str, o: &RaftOpts, store: &Path, control: u16) -> NodeOpts {
    let mut n = NodeOpts::new(Impl::Tern, name);
    n.cluster_name = Some(o.cluster_name.clone());
    n.routes = o.routes.clone();
    let mut conf =
        format!("  control_listen: \"127.0.0.1:{control}\"\n  control_token: \"{TOKEN}\"\n");
    if let Some(e) = o.bootstrap_expect {
        conf.push_str(&format!("  bootstrap_expect: {e}\n"));
    }
    if let Some(v) = o.max_voters {
        conf.push_str(&format!("  max_voters: {v}\n"));
    }
    n.cluster_conf = Some(conf);
    n.args = vec!["--store_dir".into(), store.display().to_string()];
    n.args.extend(o.extra_args.iter().cloned());
    n
}

/// Starts `n` nodes (bootstrap_expect = n unless `tweak` changes it), node 0 as the
/// seed of the others.
pub fn start_group(n: usize, tweak: impl Fn(usize, &mut RaftOpts)) -> Vec<RaftNode> {
    let ports: Vec<Ports> = (0..n).map(|_| Ports::free()).collect();
    (0..n)
        .map(|i| {
            let mut o = RaftOpts {
                bootstrap_expect: Some(n as u32),
                ..Default::default()
            };
            if i > 0 {
                o.routes = vec![ports[0].route_url()];
            }
            tweak(i, &mut o);
            RaftNode::start(&format!("t{i}"), ports[i], &o)
        })
        .collect()
}

/// Waits until every node in `nodes` answers with `members` members, one agreed
/// leader among the members and one cluster id; returns that status (of `nodes[0]`).
pub async fn wait_group(nodes: &[&RaftNode], members: usize, within: Duration) -> StatusReply {
    let names: Vec<&str> = nodes.iter().map(|n| n.name()).collect();
    let end = Instant::now() + within;
    loop {
        let mut all = Vec::new();
        for n in nodes {
            if let Some(s) = n.status().await {
                all.push(s);
            }
        }
        let agreed = all.len() == nodes.len() && {
            let s0 = &all[0];
            s0.leader_id != 0
                && !s0.cluster_id.is_empty()
                && s0.members.iter().any(|m| m.node_id == s0.leader_id)
                && all.iter().all(|s| {
                    s.members.len() == members
                        && s.leader_id == s0.leader_id
                        && s.cluster_id == s0.cluster_id
                        && s.members.iter().any(|m| m.node_id == s.node_id)
                })
        };
        if agreed {
            return all.swap_remove(0);
        }
        assert!(
            Instant::now() < end,
            "timed out after {within:?}: {names:?} agree on one group of {members}; last: {all:?}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// Output of one `tern cluster ...` run.
#[derive(Debug)]
pub struct CliOut {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl CliOut {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|e| panic!("not JSON ({e}): {self:?}"))
    }
}

/// Runs `tern cluster --server 127.0.0.1:<control> ARGS` with `TERN_CONTROL_TOKEN`
/// set to `env_token` (unset when None).
pub async fn cli(control: u16, env_token: Option<&str>, args: &[&str]) -> CliOut {
    let mut cmd = tokio::process::Command::new(cluster_tests::diff::tern_bin());
    cmd.arg("cluster")
        .args(["--server", &format!("127.0.0.1:{control}")])
        .args(args)
        .env_remove("TERN_CONTROL_TOKEN");
    if let Some(t) = env_token {
        cmd.env("TERN_CONTROL_TOKEN", t);
    }
    let out = tokio::time::timeout(Duration::from_secs(30), cmd.output())
        .await
        .expect("tern cluster finishes")
        .expect("run tern cluster");
    CliOut {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
