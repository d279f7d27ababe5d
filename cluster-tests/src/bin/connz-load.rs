//! `connz-load`: does monitoring slow the message path? nats-server and tern side by
//! side, each with N idle client connections (one subscription each), measuring the
//! 16 B pub/sub 1→1 rate with and without a poller requesting `/connz?subs=detail`
//! several times a second.
//!
//! ```text
//! cargo build --release --bin tern -p cluster-tests --bin connz-load
//! ./target/release/connz-load [--tern PATH] [--nats PATH] [--conns 10000] [--hz 10]
//!     [--duration SECS] [--runs N] [--limit L]
//! ```
//!
//! Per side and run: a fresh server (`-a 127.0.0.1 -p P -m H`), N connections made and
//! handshaken (`CONNECT`, `SUB idle.<i> 1`, `PING` → `PONG`), then alternately a
//! pub/sub phase without and with the poller, `--runs` times. The poller sends
//! `GET /connz?subs=detail[&limit=L]` every 1/hz s on a fresh HTTP/1.0 connection and
//! records each response's latency and size. Before the runs, the server CPU time of
//! 50 sequential requests with no traffic gives the cost of one request. The publisher
//! and subscriber are the bench's own (same flow control as `tern-bench pubsub16`),
//! each on its own thread. "paired change" is the median over runs of each polling
//! phase against the quiet phase just before it.
//! The file descriptor limit is raised to the hard limit first (children inherit it).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use cluster_tests::bench::load::{publisher, subscriber, PubPlan, Shared};
use cluster_tests::bench::proto;
use cluster_tests::bench::server::{free_port, ServerSpec};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Args {
    tern: String,
    nats: String,
    conns: usize,
    hz: u32,
    duration: Duration,
    runs: usize,
    limit: Option<usize>,
}

fn parse_args() -> Result<Args> {
    let mut a = Args {
        tern: "target/release/tern".into(),
        nats: "nats-server".into(),
        conns: 10_000,
        hz: 10,
        duration: Duration::from_secs(4),
        runs: 2,
        limit: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--tern" => a.tern = val()?,
            "--nats" => a.nats = val()?,
            "--conns" => a.conns = val()?.parse()?,
            "--hz" => a.hz = val()?.parse()?,
            "--duration" => a.duration = Duration::from_secs_f64(val()?.parse()?),
            "--runs" => a.runs = val()?.parse()?,
            "--limit" => a.limit = Some(val()?.parse()?),
            "-h" | "--help" => {
                println!("see the header of cluster-tests/src/bin/connz-load.rs");
                std::process::exit(0);
            }
            f => bail!("unknown flag {f}"),
        }
    }
    Ok(a)
}

/// Raises RLIMIT_NOFILE to its hard limit: 10k client sockets here and 10k in the
/// server (a child, which inherits it).
#[allow(unsafe_code)]
fn raise_fd_limit() -> Result<u64> {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write only the struct passed in.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) != 0 {
            bail!("getrlimit: {}", std::io::Error::last_os_error());
        }
        r.rlim_cur = r.rlim_max;
        if libc::setrlimit(libc::RLIMIT_NOFILE, &r) != 0 {
            bail!("setrlimit: {}", std::io::Error::last_os_error());
        }
    }
    Ok(r.rlim_cur)
}

/// One phase's figures.
#[derive(Default, Clone)]
struct Phase {
    rate: f64,
    polls: usize,
    poll_ms: Vec<f64>,
    poll_bytes: usize,
}

/// GET `path` over HTTP/1.0; returns the body length.
async fn http_get(addr: &str, path: &str) -> Result<usize> {
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes())
        .await?;
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).await?;
    let head_end = memchr::memmem::find(&resp, b"\r\n\r\n").context("no HTTP header end")?;
    if !resp.starts_with(b"HTTP/1.1 200") && !resp.starts_with(b"HTTP/1.0 200") {
        bail!(
            "GET {path}: {}",
            String::from_utf8_lossy(&resp[..head_end.min(80)])
        );
    }
    Ok(resp.len() - head_end - 4)
}

/// One pub/sub 16 B phase of `duration`, polling /connz at `hz` when `poll` is set.
fn phase(
    addr: &str,
    http: &str,
    path: &str,
    duration: Duration,
    hz: u32,
    poll: bool,
) -> Result<Phase> {
    let rt = || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    };
    let subject = format!("bench.{}", free_port()?);
    let main_rt = rt()?;
    let sub_stream = main_rt
        .block_on(proto::connect(
            addr,
            format!("SUB {subject} 1\r\n").as_bytes(),
        ))?
        .into_std()?;
    let pub_stream = main_rt.block_on(proto::connect(addr, b""))?.into_std()?;
    let shared = Shared::new();
    let hard = Instant::now() + duration + Duration::from_secs(60);
    let stop_poll = Arc::new(AtomicBool::new(false));
    let poller = poll.then(|| {
        let (http, path, stop) = (http.to_string(), path.to_string(), stop_poll.clone());
        std::thread::spawn(move || -> Result<(Vec<f64>, usize)> {
            let rt = rt()?;
            rt.block_on(async {
                let mut lat = Vec::new();
                let mut bytes = 0;
                let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / hz as f64));
                while !stop.load(Ordering::Relaxed) {
                    tick.tick().await;
                    let t = Instant::now();
                    bytes = http_get(&http, &path).await?;
                    lat.push(t.elapsed().as_secs_f64() * 1e3);
                }
                Ok((lat, bytes))
            })
        })
    });
    let sh = shared.clone();
    let sub = std::thread::spawn(move || -> Result<_> {
        rt()?.block_on(subscriber(sub_stream, sh, hard))
    });
    let sh = shared.clone();
    let plan = PubPlan {
        subject,
        payload: 16,
        count: u64::MAX / 4,
        send_until: Some(Instant::now() + duration),
        fanout: 1,
    };
    let pubr = std::thread::spawn(move || -> Result<_> {
        rt()?.block_on(publisher(pub_stream, plan, Some(sh), hard))
    });
    let p = pubr.join().expect("publisher thread")?;
    let s = sub.join().expect("subscriber thread")?;
    stop_poll.store(true, Ordering::Relaxed);
    let mut out = Phase::default();
    if let Some(h) = poller {
        let (lat, bytes) = h.join().expect("poller thread")?;
        out.polls = lat.len();
        out.poll_ms = lat;
        out.poll_bytes = bytes;
    }
    if s.timed_out || s.msgs != p.sent {
        bail!("subscriber got {} of {} messages", s.msgs, p.sent);
    }
    let end = s.last.unwrap_or(p.end);
    out.rate = s.msgs as f64 / (end - p.start).as_secs_f64();
    Ok(out)
}

fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn side(label: &str, program: &str, a: &Args) -> Result<(Vec<Phase>, Vec<Phase>, f64)> {
    let http_port = free_port()?;
    let spec = ServerSpec {
        label: label.into(),
        program: program.into(),
        extra_args: vec!["-m".into(), http_port.to_string()],
    };
    let mut srv = spec.start()?;
    let addr = srv.addr();
    let http = format!("127.0.0.1:{http_port}");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let t0 = Instant::now();
    // Idle clients, 200 handshakes in flight at a time; kept open until the end.
    let idle: Vec<tokio::net::TcpStream> = rt.block_on(async {
        let mut all = Vec::with_capacity(a.conns);
        for chunk in (0..a.conns).collect::<Vec<_>>().chunks(200) {
            let mut set = tokio::task::JoinSet::new();
            for &i in chunk {
                let addr = addr.clone();
                set.spawn(async move {
                    proto::connect(&addr, format!("SUB idle.{i} 1\r\n").as_bytes()).await
                });
            }
            while let Some(r) = set.join_next().await {
                all.push(r??);
            }
        }
        Ok::<_, anyhow::Error>(all)
    })?;
    println!(
        "{label}: {} idle connections with a subscription each in {:.1?}",
        idle.len(),
        t0.elapsed()
    );
    let path = match a.limit {
        Some(l) => format!("/connz?subs=detail&limit={l}"),
        None => "/connz?subs=detail".to_string(),
    };
    // What one request costs the server, measured with no traffic: CPU time over a
    // run of sequential requests (the poller's own CPU is not the server's).
    let cpu0 = srv.sample()?.cpu_secs;
    let n = 50;
    rt.block_on(async {
        for _ in 0..n {
            http_get(&http, &path).await?;
        }
        Ok::<_, anyhow::Error>(())
    })?;
    let cpu_ms = (srv.sample()?.cpu_secs - cpu0) / n as f64 * 1e3;
    println!("{label}: {path} costs {cpu_ms:.2} ms of server CPU per request (idle, {n} requests)");
    let (mut without, mut with) = (Vec::new(), Vec::new());
    for run in 0..a.runs {
        let q = phase(&addr, &http, &path, a.duration, a.hz, false)?;
        let p = phase(&addr, &http, &path, a.duration, a.hz, true)?;
        let mut lat = p.poll_ms.clone();
        println!(
            "{label} run {}: no poll {:.2} M msgs/s | polling {:.2} M msgs/s, {} polls of {} KiB, \
             p50 {:.1} ms, max {:.1} ms",
            run + 1,
            q.rate / 1e6,
            p.rate / 1e6,
            p.polls,
            p.poll_bytes / 1024,
            median(&mut lat),
            pct(&mut lat, 1.0)
        );
        without.push(q);
        with.push(p);
    }
    drop(idle);
    srv.stop();
    Ok((without, with, cpu_ms))
}

fn main() -> Result<()> {
    let a = parse_args()?;
    let nofile = raise_fd_limit()?;
    println!(
        "connz-load: {} idle conns, /connz?subs=detail{} at {} Hz, {} runs of {:?} per phase \
         (fd limit {nofile})",
        a.conns,
        a.limit.map(|l| format!("&limit={l}")).unwrap_or_default(),
        a.hz,
        a.runs,
        a.duration
    );
    let mut rows = Vec::new();
    for (label, program) in [("nats", a.nats.clone()), ("tern", a.tern.clone())] {
        let (without, with, cpu_ms) = side(label, &program, &a)?;
        let mut r0: Vec<f64> = without.iter().map(|p| p.rate).collect();
        let mut r1: Vec<f64> = with.iter().map(|p| p.rate).collect();
        // Each polling phase against the quiet phase just before it: drift over the
        // runs (thermal, other load) cancels out of the pairs.
        let mut paired: Vec<f64> = without
            .iter()
            .zip(&with)
            .map(|(q, p)| (p.rate / q.rate - 1.0) * 100.0)
            .collect();
        let mut lat: Vec<f64> = with.iter().flat_map(|p| p.poll_ms.clone()).collect();
        let polls: usize = with.iter().map(|p| p.polls).sum();
        let secs = a.duration.as_secs_f64() * a.runs as f64;
        rows.push((
            label,
            median(&mut r0),
            median(&mut r1),
            median(&mut paired),
            polls as f64 / secs,
            median(&mut lat),
            pct(&mut lat, 0.99),
            cpu_ms,
        ));
    }
    println!(
        "\n| server | pubsub16 no poll | pubsub16 polling | change | paired change | polls/s \
         | /connz p50 | /connz p99 | server CPU per /connz |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for (label, r0, r1, paired, hz, p50, p99, cpu_ms) in rows {
        println!(
            "| {label} | {:.2} M/s | {:.2} M/s | {:+.1} % | {paired:+.1} % | {hz:.1} | {p50:.1} ms \
             | {p99:.1} ms | {cpu_ms:.2} ms |",
            r0 / 1e6,
            r1 / 1e6,
            (r1 / r0 - 1.0) * 100.0
        );
    }
    Ok(())
}
