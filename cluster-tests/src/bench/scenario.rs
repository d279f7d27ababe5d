//! The benchmark scenarios and one timed run of a scenario against a server.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};

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

    /// CLI / report name.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Pub16 => "pub16",
            Scenario::PubSub16 => "pubsub16",
            Scenario::PubSub1k => "pubsub1k",
            Scenario::Fanout4 => "fanout4",
            Scenario::Queue4 => "queue4",
            Scenario::ReqRep => "reqrep",
        }
    }

    /// Parse a CLI name.
    pub fn parse(s: &str) -> Option<Scenario> {
        Scenario::ALL.into_iter().find(|sc| sc.name() == s)
    }

    /// Message payload size.
    pub fn payload(self) -> usize {
        match self {
            Scenario::PubSub1k => 1024,
            _ => 16,
        }
    }

    /// Published messages (requests for `reqrep`) per run at scale 1.0,
    /// sized for a few seconds per run on a 2-core box.
    pub fn default_count(self) -> u64 {
        match self {
            Scenario::Pub16 => 20_000_000,
            Scenario::PubSub16 => 8_000_000,
            Scenario::PubSub1k => 3_000_000,
            Scenario::Fanout4 => 3_000_000,
            Scenario::Queue4 => 6_000_000,
            Scenario::ReqRep => 100_000,
        }
    }

    /// Subscribers and deliveries per published message.
    fn subs(self) -> (usize, u64) {
        match self {
            Scenario::Pub16 => (0, 0),
            Scenario::PubSub16 | Scenario::PubSub1k => (1, 1),
            Scenario::Fanout4 => (4, 4),
            Scenario::Queue4 => (4, 1),
            Scenario::ReqRep => (1, 1),
        }
    }

    /// What the headline msgs/s counts.
    pub fn metric(self) -> &'static str {
        match self {
            Scenario::Pub16 => "published msgs/s",
            Scenario::ReqRep => "requests/s",
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
    /// Server peak RSS (VmHWM), bytes.
    pub peak_rss: u64,
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

/// Resource snapshot at the start/end of the timed region.
struct Snap {
    at: Instant,
    server: ProcSample,
    gen: ProcSample,
    machine: f64,
}

impl Snap {
    fn take(srv: &RunningServer) -> Result<Snap> {
        Ok(Snap {
            machine: machine_busy_secs()?,
            server: srv.sample()?,
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

/// Start a fresh server from `spec`, run `sc` once against it, stop it.
pub fn run_once(spec: &ServerSpec, sc: Scenario, p: &RunParams, exec: &Exec) -> Result<RunResult> {
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

/// Run `sc` once against an already running server.
pub fn run_on(srv: &RunningServer, sc: Scenario, p: &RunParams, exec: &Exec) -> Result<RunResult> {
    let count = ((sc.default_count() as f64 * p.scale) as u64).max(1);
    if sc == Scenario::ReqRep {
        return run_reqrep(srv, count, p, exec);
    }
    let addr = srv.addr();
    let subject = format!("bench.{}", sc.name());
    let (nsubs, fanout) = sc.subs();
    let mut sub_streams = Vec::new();
    for i in 0..nsubs {
        let sub = if sc == Scenario::Queue4 {
            format!("SUB {subject} q 1\r\n")
        } else {
            format!("SUB {subject} 1\r\n")
        };
        let s = exec.block_on(proto::connect(&addr, sub.as_bytes()))?;
        sub_streams.push((i, s.into_std()?));
    }
    let pub_stream = exec.block_on(proto::connect(&addr, b""))?.into_std()?;

    let shared = Shared::new();
    let snap0 = Snap::take(srv)?;
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
    let snap1 = Snap::take(srv)?;
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
        background_cores,
        p50_us: None,
        p99_us: None,
    })
}

fn run_reqrep(srv: &RunningServer, count: u64, p: &RunParams, exec: &Exec) -> Result<RunResult> {
    let addr = srv.addr();
    let inbox = "_INBOX.bench".to_string();
    let resp = exec
        .block_on(proto::connect(&addr, b"SUB svc 1\r\n"))?
        .into_std()?;
    let req = exec
        .block_on(proto::connect(
            &addr,
            format!("SUB {inbox}.* 1\r\n").as_bytes(),
        ))?
        .into_std()?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let snap0 = Snap::take(srv)?;
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
    let snap1 = Snap::take(srv)?;
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
        background_cores,
        p50_us: pct(0.50),
        p99_us: pct(0.99),
    })
}
