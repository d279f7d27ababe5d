//! Process-level cluster nodes: real `tern` and `nats-server` child processes on
//! 127.0.0.1 with fixed (pre-chosen free) client, cluster and monitor ports, so a node
//! can be killed, frozen (SIGSTOP/SIGCONT) and restarted on the same ports.
//!
//! Binaries are located like the differential suite does ([`crate::diff::tern_bin`],
//! [`crate::diff::reference_bin`]). Every process is killed when its [`Node`] drops.
//! Waiting is on state (`/routez`, `/subsz`), never on fixed sleeps.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use crate::harness::monitor_json;

/// Which server a node runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Impl {
    Tern,
    Nats,
}

impl Impl {
    fn bin(self) -> PathBuf {
        match self {
            Impl::Tern => crate::diff::tern_bin(),
            Impl::Nats => crate::diff::reference_bin(),
        }
    }
}

/// How to start one node. Ports are chosen by [`Ports::free`].
#[derive(Clone, Debug)]
pub struct NodeOpts {
    pub imp: Impl,
    pub name: String,
    pub cluster_name: Option<String>,
    /// Route URLs (`nats-route://127.0.0.1:PORT`).
    pub routes: Vec<String>,
    /// Extra command-line flags (e.g. `--user u --pass p`).
    pub args: Vec<String>,
    /// Extra lines for the conf file's `cluster { }` block. When set, the cluster
    /// (listen, name, routes) is configured in a conf file instead of flags.
    pub cluster_conf: Option<String>,
    /// Top-level conf lines (e.g. an `accounts { }` block); like `cluster_conf`, puts
    /// the cluster in a conf file.
    pub conf: Option<String>,
}

impl NodeOpts {
    pub fn new(imp: Impl, name: &str) -> Self {
        NodeOpts {
            imp,
            name: name.to_string(),
            cluster_name: Some("C1".into()),
            routes: Vec::new(),
            args: Vec::new(),
            cluster_conf: None,
            conf: None,
        }
    }
}

/// The three ports of a node.
#[derive(Clone, Copy, Debug)]
pub struct Ports {
    pub client: u16,
    pub cluster: u16,
    pub http: u16,
}

impl Ports {
    /// Three free loopback ports, each reserved with [`reserve_port`].
    pub fn free() -> Ports {
        Ports {
            client: reserve_port(),
            cluster: reserve_port(),
            http: reserve_port(),
        }
    }

    pub fn route_url(&self) -> String {
        format!("nats-route://127.0.0.1:{}", self.cluster)
    }
}

/// A free loopback port for a server a test is about to start, reserved against the
/// other test processes running at the same time.
///
/// Ports come from 20000-32767, below Linux's ephemeral range (32768-60999): a port the
/// kernel hands out for `bind(0)` or as the source port of an outgoing connection
/// comes from that range, so between a probe and the server's bind one of the many
/// connections other tests make could take it. Below it, the only competitors are
/// other tests picking the same way: each pick creates `<tmp>/tern-test-ports/<port>`
/// exclusively, so no two processes choose the same port while the file is fresh
/// (reservations older than 10 minutes are reclaimed; a port still bound by then
/// fails the bind probe anyway). A restarted node keeps its port: it is still
/// reserved.
pub fn reserve_port() -> u16 {
    use std::hash::{BuildHasher, Hasher};
    let dir = std::env::temp_dir().join("tern-test-ports");
    let _ = std::fs::create_dir_all(&dir);
    for tries in 0..20_000u64 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(tries);
        let port = 20000 + (h.finish() % 12768) as u16;
        let mark = dir.join(port.to_string());
        let stale = std::fs::metadata(&mark)
            .and_then(|m| m.modified())
            .is_ok_and(|t| t.elapsed().unwrap_or_default() > Duration::from_secs(600));
        if stale {
            let _ = std::fs::remove_file(&mark);
        }
        let claimed = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&mark)
            .is_ok();
        if claimed && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in 20000-32767");
}

static DIR_COUNTER: AtomicUsize = AtomicUsize::new(0);
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// A running (or killed, restartable) server process.
pub struct Node {
    pub opts: NodeOpts,
    pub ports: Ports,
    child: Option<Child>,
    log: Arc<Mutex<String>>,
    dir: PathBuf,
}

impl Node {
    /// Starts a node on `ports` and waits for "Server is ready" and the route
    /// listener.
    pub fn start(opts: NodeOpts, ports: Ports) -> Node {
        let dir = std::env::temp_dir().join(format!(
            "tern-procs-{}-{}",
            std::process::id(),
            DIR_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let mut n = Node {
            opts,
            ports,
            child: None,
            log: Arc::new(Mutex::new(String::new())),
            dir,
        };
        n.spawn();
        n
    }

    fn spawn(&mut self) {
        let o = &self.opts;
        let p = self.ports;
        let mut cmd = Command::new(o.imp.bin());
        cmd.args(["-a", "127.0.0.1", "-p", &p.client.to_string()])
            .args(["-m", &p.http.to_string(), "-n", &o.name]);
        if o.cluster_conf.is_some() || o.conf.is_some() {
            let extra = o.cluster_conf.as_deref().unwrap_or_default();
            let mut conf = format!("cluster {{\n  listen: \"127.0.0.1:{}\"\n", p.cluster);
            if let Some(name) = &o.cluster_name {
                conf.push_str(&format!("  name: \"{name}\"\n"));
            }
            if !o.routes.is_empty() {
                let r: Vec<String> = o.routes.iter().map(|r| format!("\"{r}\"")).collect();
                conf.push_str(&format!("  routes: [{}]\n", r.join(", ")));
            }
            conf.push_str(extra);
            conf.push_str("\n}\n");
            conf.push_str(o.conf.as_deref().unwrap_or_default());
            let file = self.dir.join("node.conf");
            std::fs::write(&file, conf).expect("write conf");
            cmd.arg("-c").arg(file);
        } else {
            cmd.args(["--cluster", &format!("nats://127.0.0.1:{}", p.cluster)]);
            if let Some(name) = &o.cluster_name {
                cmd.args(["--cluster_name", name]);
            }
            if !o.routes.is_empty() {
                cmd.args(["--routes", &o.routes.join(",")]);
            }
        }
        cmd.args(&o.args);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {:?}: {e}", o.imp));
        let (tx, rx) = mpsc::channel::<()>();
        let pipes: Vec<Box<dyn Read + Send>> = vec![
            Box::new(child.stdout.take().expect("stdout")),
            Box::new(child.stderr.take().expect("stderr")),
        ];
        for pipe in pipes {
            let log = Arc::clone(&self.log);
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines() {
                    let Ok(line) = line else { break };
                    // nats-server says "ready" before its route listener is up.
                    if line.contains("Server is ready")
                        || line.contains("Listening for route connections")
                    {
                        let _ = tx.send(());
                    }
                    if let Ok(mut l) = log.lock() {
                        l.push_str(&line);
                        l.push('\n');
                    }
                }
            });
        }
        drop(tx);
        self.child = Some(child);
        let deadline = Instant::now() + READY_TIMEOUT;
        let both = (0..2).all(|_| {
            let left = deadline.saturating_duration_since(Instant::now());
            rx.recv_timeout(left).is_ok()
        });
        if !both {
            panic!(
                "{} ({:?}) did not become ready; log:\n{}",
                self.opts.name,
                self.opts.imp,
                self.log()
            );
        }
    }

    pub fn log(&self) -> String {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().expect("running").id() as i32
    }

    pub fn client_url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.ports.client)
    }

    pub fn client_addr(&self) -> SocketAddr {
        ([127, 0, 0, 1], self.ports.client).into()
    }

    pub fn cluster_addr(&self) -> SocketAddr {
        ([127, 0, 0, 1], self.ports.cluster).into()
    }

    pub fn http_addr(&self) -> SocketAddr {
        ([127, 0, 0, 1], self.ports.http).into()
    }

    /// SIGKILL and reap.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGSTOP (freeze) or SIGCONT (thaw).
    #[allow(unsafe_code)]
    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child's pid.
        let rc = unsafe { libc::kill(self.pid(), sig) };
        assert_eq!(rc, 0, "kill({sig}) failed");
    }

    /// Starts the node again with the same options and ports (after `kill9`).
    pub fn restart(&mut self) {
        self.kill9();
        self.log.lock().expect("log").clear();
        self.spawn();
    }

    pub async fn json(&self, path: &str) -> serde_json::Value {
        monitor_json(self.http_addr(), path).await
    }

    pub async fn server_id(&self) -> String {
        self.json("/varz").await["server_id"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Distinct peers (`remote_id`) in `/routez`: nats-server pools several
    /// connections per peer, tern has one.
    pub async fn route_peers(&self) -> BTreeSet<String> {
        let v = self.json("/routez").await;
        v["routes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r["remote_id"].as_str().map(str::to_string))
            .collect()
    }

    /// Route connections in `/routez` (all pool connections counted).
    pub async fn route_conns(&self) -> usize {
        let v = self.json("/routez").await;
        v["routes"].as_array().map_or(0, Vec::len)
    }

    /// Waits until this node has routes to exactly `n` distinct peers.
    pub async fn wait_routes(&self, n: usize) {
        let name = self.opts.name.clone();
        wait_for(
            Duration::from_secs(10),
            &format!("{name} has {n} peers"),
            || async { self.route_peers().await.len() == n },
        )
        .await;
    }

    /// Peers (remote_id) that told this node about interest in `subject`.
    pub async fn peers_with_interest(&self, subject: &str) -> BTreeSet<String> {
        let v = self.json("/routez?subs=1").await;
        v["routes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|r| {
                r["subscriptions_list"]
                    .as_array()
                    .is_some_and(|l| l.iter().any(|s| s.as_str() == Some(subject)))
            })
            .filter_map(|r| r["remote_id"].as_str().map(str::to_string))
            .collect()
    }

    /// Waits until exactly `n` peers have announced interest in `subject` here.
    pub async fn wait_interest(&self, subject: &str, n: usize) {
        let what = format!(
            "{} sees {n} peers with interest in {subject}",
            self.opts.name
        );
        wait_for(Duration::from_secs(10), &what, || async {
            self.peers_with_interest(subject).await.len() == n
        })
        .await;
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        // SIGKILL also ends a stopped (SIGSTOP) process.
        self.kill9();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Polls `check` every 20 ms until true; panics with `what` after `deadline`.
pub async fn wait_for<F, Fut>(deadline: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let end = Instant::now() + deadline;
    loop {
        if check().await {
            return;
        }
        assert!(Instant::now() < end, "timed out after {deadline:?}: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A cluster of processes; node 0 is the seed the others route to (unless the
/// caller gives explicit routes).
pub struct Procs {
    pub nodes: Vec<Node>,
}

impl Procs {
    /// Starts one node per entry of `kinds`, named `<kind><i>` (t0, n1, ...), all in
    /// cluster "C1", every node after the first seeded with node 0; `tweak` may
    /// adjust options. Waits for the full mesh.
    pub async fn start(kinds: &[Impl], tweak: impl Fn(usize, &mut NodeOpts)) -> Procs {
        let ports: Vec<Ports> = kinds.iter().map(|_| Ports::free()).collect();
        let mut nodes = Vec::new();
        for (i, k) in kinds.iter().enumerate() {
            let tag = if *k == Impl::Tern { "t" } else { "n" };
            let mut o = NodeOpts::new(*k, &format!("{tag}{i}"));
            if i > 0 {
                o.routes = vec![ports[0].route_url()];
            }
            tweak(i, &mut o);
            nodes.push(Node::start(o, ports[i]));
        }
        let c = Procs { nodes };
        c.wait_mesh().await;
        c
    }

    /// Waits until every node routes to every other node.
    pub async fn wait_mesh(&self) {
        let want = self.nodes.len() - 1;
        for n in &self.nodes {
            n.wait_routes(want).await;
        }
    }

    pub fn logs(&self) -> String {
        let mut s = String::new();
        for n in &self.nodes {
            s.push_str(&format!("==== {} ====\n{}", n.opts.name, n.log()));
        }
        s
    }
}
