//! The benchmark scenarios and one timed run of a scenario against a server.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::cluster::{self, Cluster};
use super::load::{self, Exec, PubPlan, ReqPlan, RtMode, Shared};
use super::proto;
use super::server::{machine_busy_secs, ProcSample, RunningServer, ServerSpec};

/// A benchmark scenario.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    /// Publish-only, 16 B payloads, no subscribers.
    Pub16,
    /// 1 publisher → 1 subscriber, 16 B.
    PubSub16,
    /// 1 publisher → 1 subscriber, 1 KiB.
    PubSub1k,
    /// 1 publisher → 4 plain subscribers, 16 B (each gets every message).
    Fanout4,
    /// 1 publisher → queue group of 4, 16 B (each message to exactly one).
    Queue4,
    /// Sequential request/reply through a responder, 16 B each way.
    ReqRep,
    /// 3-node cluster: publisher on A → 1 subscriber on B, 16 B.
    X16,
    /// 3-node cluster: publisher on A → 1 subscriber on B, 1 KiB.
    X1k,
    /// 3-node cluster: requester on A, responder on B, 16 B each way.
    XReqRep,
}

impl Scenario {
    /// All scenarios, in report order.
    pub const ALL: [Scenario; 6] = [
        Scenario::Pub16,
        Scenario::PubSub16,
        Scenario::PubSub1k,
        Scenario::Fanout4,
        Scenario::Queue4,
        Scenario::ReqRep,
    ];

    /// The 3-node cluster scenarios, in report order.
    pub const CLUSTER: [Scenario; 3] = [Scenario::X16, Scenario::X1k, Scenario::XReqRep];

    /// Runs against a 3-node cluster (publisher on node A, subscriber or
    /// responder on node B) instead of a single server.
    pub fn is_cluster(self) -> bool {
        Scenario::CLUSTER.contains(&self)
    }

    /// CLI / report name.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Pub16 => "pub16",
            Scenario::PubSub16 => "pubsub16",
            Scenario::PubSub1k => "pubsub1k",
            Scenario::Fanout4 => "fanout4",
            Scenario::Queue4 => "queue4",
            Scenario::ReqRep => "reqrep",
            Scenario::X16 => "x16",
            Scenario::X1k => "x1k",
            Scenario::XReqRep => "xreqrep",
        }
    }

    /// Parse a CLI name.
    pub fn parse(s: &str) -> Option<Scenario> {
        Scenario::ALL
            .into_iter()
            .chain(Scenario::CLUSTER)
            .find(|sc| sc.name() == s)
    }

    /// Message payload size.
    pub fn payload(self) -> usize {
        match self {
            Scenario::PubSub1k | Scenario::X1k => 1024,
            _ => 16,
        }
    }

    /// Published messages (requests for `reqrep`) per run at scale 1.0,
    /// sized for a few seconds per run on a 2-core box.
    pub fn default_count(self) -> u64 {
        match self {
            Scenario::Pub16 => 20_000_000,
            Scenario::PubSub16 | Scenario::X16 => 8_000_000,
            Scenario::PubSub1k | Scenario::X1k => 3_000_000,
            Scenario::Fanout4 => 3_000_000,
            Scenario::Queue4 => 6_000_000,
            Scenario::ReqRep | Scenario::XReqRep => 100_000,
        }
    }

    /// Subscribers and deliveries per published message.
    fn subs(self) -> (usize, u64) {
        match self {
            Scenario::Pub16 => (0, 0),
            Scenario::PubSub16 | Scenario::PubSub1k | Scenario::X16 | Scenario::X1k => (1, 1),
            Scenario::Fanout4 => (4, 4),
            Scenario::Queue4 => (4, 1),
            Scenario::ReqRep | Scenario::XReqRep => (1, 1),
        }
    }

    /// What the headline msgs/s counts.
    pub fn metric(self) -> &'static str {
        match self {
            Scenario::Pub16 => "published msgs/s",
            Scenario::ReqRep => "requests/s",
            Scenario::X16 | Scenario::X1k => "delivered msgs/s at node B, published on node A",
            Scenario::XReqRep => "requests/s, requester on node A, responder on node B",
            _ => "delivered msgs/s (sum over subscribers)",
        }
    }
}

/// Knobs for a run.
#[derive(Clone, Debug)]
pub struct RunParams {
    /// Multiplies the default counts.
    pub scale: f64,
    /// Time-bounded mode: publish for this long instead of a fixed count
    /// (the fixed count still caps it).
    pub duration: Option<Duration>,
    /// Hard limit for a single run.
    pub timeout: Duration,
    /// Load-generator scheduling.
    pub mode: RtMode,
}

/// Measurements of one run.
#[derive(Clone, Debug, Default)]
pub struct RunResult {
    /// Headline rate (see [`Scenario::metric`]).
    pub rate: f64,
    /// Publisher-side msgs/s (sent / time to final PONG).
    pub pub_rate: f64,
    /// Subscriber-side msgs/s, summed (received / time from first publish to
    /// last receipt).
    pub sub_rate: f64,
    /// Messages counted by the headline rate.
    pub msgs: u64,
    /// Server CPU seconds (utime+stime) per million headline messages.
    pub cpu_per_m: f64,
    /// Load generator CPU seconds per million headline messages.
    pub gen_cpu_per_m: f64,
    /// Server peak RSS (VmHWM), bytes; in cluster mode the largest of the
    /// three nodes.
    pub peak_rss: u64,
    /// Sum of the nodes' peak RSS (equals `peak_rss` for a single server).
    pub peak_rss_sum: u64,
    /// Cluster mode: time from starting node A until the full mesh passed
    /// the interest probes.
    pub mesh_formed: Option<Duration>,
    /// Average cores used by everything else on the machine (other
    /// processes, unattributed softirq) during the run: a noise indicator.
    pub background_cores: f64,
    /// reqrep latency percentiles, µs.
    pub p50_us: Option<f64>,
    /// reqrep latency percentiles, µs.
    pub p99_us: Option<f64>,
}

fn self_sample() -> Result<ProcSample> {
    // /proc/self/stat of the whole bench process (all threads).
    super::server::proc_sample(std::process::id())
}

/// Where the clients of a run connect and whose resources are measured.
struct Topology<'a> {
    /// Publisher / requester connect here.
    pub_node: &'a RunningServer,
    /// Subscribers / responder connect here.
    sub_node: &'a RunningServer,
    /// Every server process of the side (CPU summed, RSS max and sum).
    all: Vec<&'a RunningServer>,
}

impl<'a> Topology<'a> {
    fn single(srv: &'a RunningServer) -> Self {
        Topology {
            pub_node: srv,
            sub_node: srv,
            all: vec![srv],
        }
    }

    fn cross_node(&self) -> bool {
        self.pub_node.port != self.sub_node.port
    }

    /// In cluster mode, wait until interest registered on `to` so far is
    /// known on `from` (see [`cluster::await_interest`]).
    fn await_interest(&self, exec: &Exec, from: &RunningServer, to: &RunningServer) -> Result<()> {
        if self.cross_node() {
            exec.block_on(cluster::await_interest(
                &from.addr(),
                &to.addr(),
                INTEREST_TIMEOUT,
            ))
            .context("run interest did not propagate")?;
        }
        Ok(())
    }
}

/// Per-run limit for a run's subscriptions to reach the publishing node.
const INTEREST_TIMEOUT: Duration = Duration::from_secs(10);

/// Resource snapshot at the start/end of the timed region.
struct Snap {
    at: Instant,
    /// CPU summed over the servers; peak RSS the max over them.
    server: ProcSample,
    /// Sum of the servers' peak RSS.
    rss_sum: u64,
    gen: ProcSample,
    machine: f64,
}

impl Snap {
    fn take(t: &Topology) -> Result<Snap> {
        let machine = machine_busy_secs()?;
        let mut server = ProcSample::default();
        let mut rss_sum = 0;
        for srv in &t.all {
            let s = srv.sample()?;
            server.cpu_secs += s.cpu_secs;
            server.peak_rss = server.peak_rss.max(s.peak_rss);
            rss_sum += s.peak_rss;
        }
        Ok(Snap {
            machine,
            server,
            rss_sum,
            gen: self_sample()?,
            at: Instant::now(),
        })
    }

    /// (server CPU s, generator CPU s, background cores) since `self`.
    fn delta(&self, end: &Snap) -> (f64, f64, f64) {
        let server = end.server.cpu_secs - self.server.cpu_secs;
        let gen = end.gen.cpu_secs - self.gen.cpu_secs;
        let other = (end.machine - self.machine) - server - gen;
        let wall = (end.at - self.at).as_secs_f64().max(1e-9);
        (server, gen, (other / wall).max(0.0))
    }
}

/// Start a fresh server (or, for cluster scenarios, a fresh 3-node cluster)
/// from `spec`, run `sc` once against it, stop it.
pub fn run_once(spec: &ServerSpec, sc: Scenario, p: &RunParams, exec: &Exec) -> Result<RunResult> {
    if sc.is_cluster() {
        let mut c = Cluster::start(spec, exec)?;
        let topo = Topology {
            pub_node: &c.nodes[0],
            sub_node: &c.nodes[1],
            all: c.nodes.iter().collect(),
        };
        let res = run_topo(&topo, sc, p, exec).map(|mut r| {
            r.mesh_formed = Some(c.formed_in);
            r
        });
        if res.is_err() {
            let alive = c.all_alive();
            let tails = c.log_tails();
            c.stop();
            return res.map_err(|e| {
                let what = if alive {
                    "all nodes alive"
                } else {
                    "a node died"
                };
                e.context(format!("{what}; node logs:\n{tails}"))
            });
        }
        c.stop();
        return res;
    }
    let mut srv = spec.start()?;
    let res = run_on(&srv, sc, p, exec);
    if res.is_err() && !srv.alive() {
        let tail = srv.log_tail();
        srv.stop();
        return res.map_err(|e| e.context(format!("server died; log tail:\n{tail}")));
    }
    srv.stop();
    res
}

/// Run cluster scenario `sc` once on an already running cluster (node A
/// publishes, B subscribes), e.g. twice on one cluster to compare conditions.
pub fn run_on_cluster(c: &Cluster, sc: Scenario, p: &RunParams, exec: &Exec) -> Result<RunResult> {
    if !sc.is_cluster() {
        bail!("{} is not a cluster scenario", sc.name());
    }
    let topo = Topology {
        pub_node: &c.nodes[0],
        sub_node: &c.nodes[1],
        all: c.nodes.iter().collect(),
    };
    run_topo(&topo, sc, p, exec)
}

/// Run single-server scenario `sc` once against an already running server.
pub fn run_on(srv: &RunningServer, sc: Scenario, p: &RunParams, exec: &Exec) -> Result<RunResult> {
    if sc.is_cluster() {
        bail!("{} needs a cluster (use run_once)", sc.name());
    }
    run_topo(&Topology::single(srv), sc, p, exec)
}

fn run_topo(t: &Topology, sc: Scenario, p: &RunParams, exec: &Exec) -> Result<RunResult> {
    let count = ((sc.default_count() as f64 * p.scale) as u64).max(1);
    if matches!(sc, Scenario::ReqRep | Scenario::XReqRep) {
        return run_reqrep(t, count, p, exec);
    }
    let sub_addr = t.sub_node.addr();
    let subject = format!("bench.{}", sc.name());
    let (nsubs, fanout) = sc.subs();
    let mut sub_streams = Vec::new();
    for i in 0..nsubs {
        let sub = if sc == Scenario::Queue4 {
            format!("SUB {subject} q 1\r\n")
        } else {
            format!("SUB {subject} 1\r\n")
        };
        let s = exec.block_on(proto::connect(&sub_addr, sub.as_bytes()))?;
        sub_streams.push((i, s.into_std()?));
    }
    t.await_interest(exec, t.pub_node, t.sub_node)?;
    let pub_stream = exec
        .block_on(proto::connect(&t.pub_node.addr(), b""))?
        .into_std()?;

    let shared = Shared::new();
    let snap0 = Snap::take(t)?;
    let t0 = Instant::now();
    let hard = t0 + p.timeout;
    let mut subs = Vec::new();
    for (i, s) in sub_streams {
        subs.push(exec.spawn(
            &format!("sub{i}"),
            load::subscriber(s, shared.clone(), hard),
        )?);
    }
    let plan = PubPlan {
        subject,
        payload: sc.payload(),
        count,
        send_until: p.duration.map(|d| t0 + d),
        fanout,
    };
    let sh = (nsubs > 0).then(|| shared.clone());
    let pubr = exec.join(exec.spawn("pub", load::publisher(pub_stream, plan, sh, hard))?);
    if pubr.is_err() {
        // Unblock subscribers before propagating.
        shared.stop.send_replace(true);
    }
    let mut sub_res = Vec::new();
    for h in subs {
        sub_res.push(exec.join(h));
    }
    let pubr = pubr?;
    let snap1 = Snap::take(t)?;
    let (server_cpu, gen_cpu, background_cores) = snap0.delta(&snap1);

    let pub_secs = (pubr.end - pubr.start).as_secs_f64();
    let pub_rate = pubr.sent as f64 / pub_secs;
    let mut received = 0;
    let mut last = pubr.start;
    for r in sub_res {
        let r = r?;
        if r.timed_out {
            bail!(
                "subscriber timed out: got {} of expected {} (total)",
                r.msgs,
                pubr.sent * fanout
            );
        }
        received += r.msgs;
        if let Some(l) = r.last {
            last = last.max(l);
        }
    }
    if received != pubr.sent * fanout {
        bail!(
            "received {received} messages, expected {}",
            pubr.sent * fanout
        );
    }
    let sub_rate = if nsubs > 0 {
        received as f64 / (last - pubr.start).as_secs_f64()
    } else {
        0.0
    };
    let (rate, msgs) = if nsubs > 0 {
        (sub_rate, received)
    } else {
        (pub_rate, pubr.sent)
    };
    let per_m = 1e6 / msgs.max(1) as f64;
    Ok(RunResult {
        rate,
        pub_rate,
        sub_rate,
        msgs,
        cpu_per_m: server_cpu * per_m,
        gen_cpu_per_m: gen_cpu * per_m,
        peak_rss: snap1.server.peak_rss,
        peak_rss_sum: snap1.rss_sum,
        mesh_formed: None,
        background_cores,
        p50_us: None,
        p99_us: None,
    })
}

fn run_reqrep(t: &Topology, count: u64, p: &RunParams, exec: &Exec) -> Result<RunResult> {
    let inbox = "_INBOX.bench".to_string();
    let resp = exec
        .block_on(proto::connect(&t.sub_node.addr(), b"SUB svc 1\r\n"))?
        .into_std()?;
    t.await_interest(exec, t.pub_node, t.sub_node)?;
    let req = exec
        .block_on(proto::connect(
            &t.pub_node.addr(),
            format!("SUB {inbox}.* 1\r\n").as_bytes(),
        ))?
        .into_std()?;
    // Replies travel B -> A: the requester's inbox interest must be on B.
    t.await_interest(exec, t.sub_node, t.pub_node)?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let snap0 = Snap::take(t)?;
    let t0 = Instant::now();
    let hard = t0 + p.timeout;
    let responder = exec.spawn("responder", load::responder(resp, 16, stop_rx, hard))?;
    let warmup = (count / 20).clamp(1, 2000);
    let plan = ReqPlan {
        subject: "svc".into(),
        inbox,
        payload: 16,
        warmup,
        count,
        send_until: p.duration.map(|d| t0 + d),
    };
    let r = exec.join(exec.spawn("requester", load::requester(req, plan, hard))?);
    stop_tx.send_replace(true);
    let answered = exec.join(responder);
    let mut r = r?;
    answered?;
    let snap1 = Snap::take(t)?;
    let (server_cpu, gen_cpu, background_cores) = snap0.delta(&snap1);
    r.lat_ns.sort_unstable();
    let pct = |q: f64| -> Option<f64> {
        if r.lat_ns.is_empty() {
            return None;
        }
        let idx = ((r.lat_ns.len() as f64 - 1.0) * q).round() as usize;
        Some(r.lat_ns[idx] as f64 / 1000.0)
    };
    let rate = r.done as f64 / r.elapsed.as_secs_f64();
    // Server CPU covers the untimed warm-up requests too.
    let per_m = 1e6 / (r.done + warmup) as f64;
    Ok(RunResult {
        rate,
        pub_rate: rate,
        sub_rate: rate,
        msgs: r.done,
        cpu_per_m: server_cpu * per_m,
        gen_cpu_per_m: gen_cpu * per_m,
        peak_rss: snap1.server.peak_rss,
        peak_rss_sum: snap1.rss_sum,
        mesh_formed: None,
        background_cores,
        p50_us: pct(0.50),
        p99_us: pct(0.99),
    })
}
