//! `tern-bench`: side-by-side end-to-end benchmark of nats-server and tern.
//!
//! ```text
//! cargo build --release --bin tern            # the server under test
//! cargo run --release -p cluster-tests --bin tern-bench -- \
//!     [--tern PATH] [--nats PATH] [--runs N] [--duration SECS] [--scale F] \
//!     [--only pub16,reqrep] [--cluster] [--markdown FILE] [--runtime thread|shared]
//!     [--nice N]
//! ```
//!
//! Scenarios: `pub16,pubsub16,pubsub1k,fanout4,queue4,reqrep` (single
//! server, the default set) and `x16,x1k,xreqrep` (3-node cluster; selected
//! with `--cluster` or by name in `--only`).
//!
//! # Method
//!
//! * **Servers.** Each side is started *fresh for every run of every
//!   scenario* as `PROGRAM -a 127.0.0.1 -p <free port> [extra args]`; the bench
//!   waits until the port accepts and the server sends `INFO`, and kills it
//!   after the run. Fresh processes make peak RSS (VmHWM) per-scenario and
//!   stop one scenario's leftovers (caches, buffers) from helping/hurting the
//!   next. Runs alternate sides: for each scenario, `nats, tern, nats, tern, …`
//!   (`--runs` pairs), so slow drifts in machine state hit both sides equally.
//!   Reported figures are medians over runs.
//! * **Load generators** speak the raw NATS text protocol over tokio TCP (no
//!   client library). All connections (subscribers first, then the
//!   publisher) are made and handshaken (`CONNECT`, `SUB`…, `PING` → `PONG`)
//!   before the timed region, so subscriptions are registered server-side.
//! * **Publisher flow control (identical for both servers).** Messages are
//!   pre-serialised into a 64 KiB chunk written with one `write` per chunk.
//!   A `PING` follows every window of min(10 000 msgs, 1 MiB); at most 2 PINGs
//!   may be outstanding (the publisher waits for a `PONG` before exceeding
//!   that), so the server never holds more than ~2 windows of unread input.
//!   With subscribers there is also an end-to-end window: the publisher
//!   pauses while published×fanout − received exceeds 8 MiB-worth of
//!   messages per delivery, so no server ever needs to buffer enough to hit
//!   slow-consumer limits. The run ends with a final `PING`/`PONG`.
//! * **Subscribers** parse the stream incrementally (memchr for line ends,
//!   payloads skipped by their declared size), count `MSG`s, answer `PING`s,
//!   and stop once the total over all subscribers equals published×fanout
//!   (or at `--timeout`, which fails the run). Any `-ERR` fails the run.
//! * **Metrics.** pub msgs/s = sent / (first write → final PONG). sub msgs/s =
//!   total received / (first write → last receipt). The headline msgs/s is
//!   the publish rate for `pub16`, the delivered rate (summed over
//!   subscribers, so 4× the publish rate for `fanout4`) for the pub/sub
//!   scenarios and requests/s for `reqrep`. Server CPU = Δ(utime+stime) of
//!   the server process from `/proc/<pid>/stat` across the timed region
//!   (ticks from `sysconf(_SC_CLK_TCK)`, so 10 ms resolution at 100 Hz),
//!   divided by headline messages, per million. RSS = VmHWM from
//!   `/proc/<pid>/status` after the run. `reqrep` is sequential (one
//!   request in flight) with unique reply subjects under a wildcard inbox;
//!   p50/p99 are of per-request round trips, after a 5 % (≤ 2000) warm-up.
//! * **Scheduling.** The machine this was written on has 2 cores shared by
//!   server and load generator. `--runtime thread` (default) runs each client
//!   on its own OS thread with a `current_thread` runtime; `--runtime shared`
//!   puts all clients on one multi-thread runtime (`--workers`, default 2).
//!   Measured nats-vs-nats with 5 runs each, neither mode was clearly
//!   quieter; `shared --workers 2` had the widest spread on `queue4`
//!   (1.15–2.34 M/s vs 2.23–2.56 M/s thread-per-client), so thread-per-client
//!   is the default. The load generator's own CPU per million messages is
//!   printed per run (≈ 10 % of the server's for pub/sub, ~0 for pub16).
//! * **Bounds.** Every run is bounded by message count (defaults sized for
//!   ~2–3 s on nats-server on a 2-core box; `--scale` multiplies them), by
//!   `--duration` (publish for at most that long, default 10 s, so a slow
//!   server cannot make the bench crawl; rates are per-message so unequal
//!   counts are fine) and hard-limited by `--timeout`. All traffic is on
//!   127.0.0.1.
//! * **Noise.** Each run also reports how many cores were busy *outside*
//!   the server and the bench (from `/proc/stat`) and flags the run `NOISY`
//!   above 0.25 cores: on a shared 2-core machine other processes are the
//!   biggest error source, so compare only quiet runs. `--nice -10` (root)
//!   runs the bench and the servers ahead of such neighbours: on a 2-core box
//!   busy with compiles, request/reply tails otherwise measure the kernel
//!   scheduler's wake-up delay (ms) more than the servers. Background load
//!   is elastic (it takes whatever CPU a server leaves idle), so a cheaper
//!   server also shows more "cores busy elsewhere".
//!
//! # 3-node cluster scenarios (`x16`, `x1k`, `xreqrep`)
//!
//! * **Cluster.** For every run each side gets a fresh 3-node cluster on
//!   127.0.0.1, started in order A, B, C with the same flags for both servers:
//!   `-a 127.0.0.1 -p P --cluster nats://127.0.0.1:CP --cluster_name bench
//!   -n NAME`, and `--routes nats://127.0.0.1:<A's CP>` for B and C (B–C
//!   is found by gossip). All six ports are reserved together.
//! * **Mesh formation** is detected the same way for both servers, with the
//!   client protocol only: for every ordered pair (X, Y) of nodes a probe
//!   connection subscribes on Y to a fresh subject and another publishes to it
//!   on X every 10 ms until one arrives (20 s limit for the whole mesh).
//!   Servers never forward route→route, so each delivery proves a direct
//!   X–Y route carrying Y's interest. Formation time is printed per run.
//! * **Per-run interest.** After a run's subscriptions are registered on B
//!   (handshake PONG), one more probe (sub on B, pub on A) is made; its
//!   interest travels behind the run's on the same route connection, so when
//!   it arrives, A knows the run's interest (for `xreqrep` also the reverse
//!   direction for the requester's inbox on A). Only then does timing start.
//! * **Load.** `x16`/`x1k`: publisher on A, one subscriber on B, 16 B / 1 KiB,
//!   same flow control and counting as `pubsub16`/`pubsub1k` (headline =
//!   delivered at B per second; every published message must arrive).
//!   `xreqrep`: requester on A, responder on B, as `reqrep`. Node C has no
//!   clients (its routes and idle traffic are still measured).
//! * **Resources.** CPU = Δ(utime+stime) *summed over the 3 nodes* per
//!   million headline messages. RSS in the table = VmHWM of the *largest*
//!   node; the per-run line also prints the sum over nodes. All three nodes
//!   are killed after every run.
//!
//! If the tern binary does not exist the bench says so and runs nats-server
//! alone.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Parser, ValueEnum};
use cluster_tests::bench::report::fmt_rate;
use cluster_tests::bench::scenario::run_on;
use cluster_tests::bench::server::set_nice;
use cluster_tests::bench::{
    run_once, Exec, Report, RtMode, RunParams, Scenario, ServerSpec, SideStats,
};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Runtime {
    /// One OS thread + current_thread runtime per client.
    Thread,
    /// One multi-thread runtime for all clients.
    Shared,
}

/// Side-by-side end-to-end benchmark: nats-server vs tern.
#[derive(Parser, Debug)]
#[command(name = "tern-bench")]
struct Args {
    /// tern server binary [default: <workspace>/target/release/tern].
    #[arg(long)]
    tern: Option<PathBuf>,
    /// nats-server binary.
    #[arg(long, default_value = "nats-server")]
    nats: PathBuf,
    /// Extra argument for tern (repeatable), after `-a 127.0.0.1 -p PORT`.
    #[arg(long = "tern-arg", allow_hyphen_values = true)]
    tern_args: Vec<String>,
    /// Extra argument for nats-server (repeatable).
    #[arg(long = "nats-arg", allow_hyphen_values = true)]
    nats_args: Vec<String>,
    /// Runs per side per scenario (alternating); medians are reported.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Publish for at most this many seconds per run (counts still cap it;
    /// 0 = no time cap).
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Multiply the default message counts.
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
    /// Comma-separated scenarios: pub16,pubsub16,pubsub1k,fanout4,queue4,reqrep
    /// (single server) and x16,x1k,xreqrep (3-node cluster).
    #[arg(long)]
    only: Option<String>,
    /// Run the 3-node cluster scenarios (x16,x1k,xreqrep): alone, or in
    /// addition to the scenarios named by --only.
    #[arg(long)]
    cluster: bool,
    /// Also write the result table as markdown to this file.
    #[arg(long)]
    markdown: Option<PathBuf>,
    /// Hard time limit per run, seconds.
    #[arg(long, default_value_t = 120.0)]
    timeout: f64,
    /// Load-generator scheduling.
    #[arg(long, value_enum, default_value_t = Runtime::Thread)]
    runtime: Runtime,
    /// Worker threads for `--runtime shared`.
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// Run the bench and (inherited) every server at this nice value, e.g.
    /// -10 (negative needs root), so that on a shared machine other
    /// processes steal less CPU and wake-up latency from the measured ones.
    #[arg(long, allow_hyphen_values = true)]
    nice: Option<i32>,
    /// Instead of the scenarios: pub/sub 1 -> 1 over client TLS (16 B and 1 KiB),
    /// both servers with the same freshly generated certificate.
    #[arg(long)]
    tls: bool,
}

/// Resolve `p` like the shell would: paths with a `/` as-is, bare names via
/// `$PATH`.
fn resolve(p: &Path) -> Option<PathBuf> {
    if p.components().count() > 1 {
        return p.is_file().then(|| p.to_path_buf());
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(p))
            .find(|c| c.is_file())
    })
}

fn nats_version(p: &Path) -> String {
    std::process::Command::new(p)
        .arg("--version")
        .output()
        .ok()
        .map(|o| {
            let s = String::from_utf8_lossy(&o.stdout);
            s.trim()
                .trim_start_matches("nats-server:")
                .trim()
                .to_string()
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown version".into())
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|m| m.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    format!("{cores} cores, {cpu}, Linux {kernel}")
}

fn main() -> Result<()> {
    let args = Args::parse();
    if let Some(n) = args.nice {
        // Before any thread or server exists, so all of them inherit it.
        set_nice(n)?;
    }
    if args.runs == 0 {
        bail!("--runs must be at least 1");
    }
    let mut scenarios: Vec<Scenario> = match &args.only {
        None if args.cluster => Vec::new(),
        None => Scenario::ALL.to_vec(),
        Some(list) => list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| Scenario::parse(s).with_context(|| format!("unknown scenario {s:?}")))
            .collect::<Result<_>>()?,
    };
    if args.cluster {
        for sc in Scenario::CLUSTER {
            if !scenarios.contains(&sc) {
                scenarios.push(sc);
            }
        }
    }

    let nats_path = resolve(&args.nats)
        .with_context(|| format!("nats-server binary {:?} not found", args.nats))?;
    let tern_path = args
        .tern
        .clone()
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release/tern"));
    let mut sides = vec![ServerSpec {
        label: "nats".into(),
        program: nats_path.clone(),
        extra_args: args.nats_args.clone(),
    }];
    match resolve(&tern_path) {
        Some(p) => sides.push(ServerSpec {
            label: "tern".into(),
            program: p,
            extra_args: args.tern_args.clone(),
        }),
        None => eprintln!(
            "NOTE: tern binary {tern_path:?} not found (build it with \
             `cargo build --release --bin tern` or pass --tern PATH); \
             running nats-server only."
        ),
    }

    if args.tls {
        let pki = cluster_tests::pki::Pki::new("bench");
        let dur = Duration::from_secs_f64(args.duration.max(0.5));
        let md = cluster_tests::bench::tls::run(
            &sides,
            &pki.path("server-cert.pem"),
            &pki.path("server-key.pem"),
            &pki.path("ca.pem"),
            args.runs,
            dur,
        )?;
        println!("\nMedians over {} runs:\n\n{md}", args.runs);
        if let Some(path) = &args.markdown {
            let head = format!(
                "Machine: {}. nats-server: {}. TLS 1.3, pub/sub 1 -> 1, {} runs per side, \
                 alternating, fresh server per run, {}s each; medians of delivered msgs/s.\n\n",
                machine(),
                nats_version(&nats_path),
                args.runs,
                args.duration
            );
            std::fs::write(path, head + &md).with_context(|| format!("write {path:?}"))?;
        }
        return Ok(());
    }

    let mode = match args.runtime {
        Runtime::Thread => RtMode::ThreadPerClient,
        Runtime::Shared => RtMode::Shared(args.workers),
    };
    let params = RunParams {
        scale: args.scale,
        duration: (args.duration > 0.0).then(|| Duration::from_secs_f64(args.duration)),
        timeout: Duration::from_secs_f64(args.timeout),
        mode,
    };
    let exec = Exec::new(mode)?;

    let version = nats_version(&nats_path);
    println!("machine: {}", machine());
    println!("nats: {} ({version})", nats_path.display());
    if let Some(t) = sides.get(1) {
        println!("tern: {}", t.program.display());
    }
    println!(
        "runs: {} per side, alternating; scale {}; duration cap {}s; runtime {:?}; nice {}",
        args.runs,
        args.scale,
        args.duration,
        mode,
        args.nice.map_or("unchanged".into(), |n| n.to_string())
    );

    // Probe + warm-up: start each side once, show what actually runs (wrappers
    // such as pyenv shims exec the real binary, so /proc/<pid>/exe tells
    // whose CPU/RSS is measured), and run a short untimed pub16 so the first
    // timed run is not penalised by cold caches. A side that cannot start is
    // dropped.
    let warm = RunParams {
        scale: 0.05,
        ..params.clone()
    };
    let mut ok_sides = Vec::new();
    for spec in sides {
        match spec.start() {
            Ok(mut srv) => {
                let exe = srv.exe().map(|p| p.display().to_string());
                println!(
                    "{} runs as: {}",
                    spec.label,
                    exe.as_deref().unwrap_or("(unknown exe)")
                );
                if let Some(e) = exe.filter(|e| e.contains("python") || e.ends_with("sh")) {
                    eprintln!(
                        "WARNING: {} is a wrapper process ({e}); CPU/RSS measure the wrapper",
                        spec.label
                    );
                }
                if let Err(e) = run_on(&srv, Scenario::Pub16, &warm, &exec) {
                    eprintln!("WARNING: {} warm-up failed: {e:#}", spec.label);
                }
                srv.stop();
                ok_sides.push(spec);
            }
            Err(e) => eprintln!("ERROR: {} failed to start, skipping it: {e:#}", spec.label),
        }
    }
    let sides = ok_sides;
    if sides.is_empty() {
        bail!("no server could be started");
    }

    let mut report = Report {
        sides: sides.iter().map(|s| s.label.clone()).collect(),
        rows: Vec::new(),
    };
    for &sc in &scenarios {
        println!("\n== {} ({})", sc.name(), sc.metric());
        let mut stats = vec![SideStats::default(); sides.len()];
        for run in 1..=args.runs {
            for (i, spec) in sides.iter().enumerate() {
                match run_once(spec, sc, &params, &exec) {
                    Ok(r) => {
                        let lat = match (r.p50_us, r.p99_us) {
                            (Some(a), Some(b)) => format!("  p50 {a:.1}µs p99 {b:.1}µs"),
                            _ => String::new(),
                        };
                        let mesh = match r.mesh_formed {
                            Some(d) => format!(
                                "  (rss sum {:.1} MiB; mesh formed in {} ms)",
                                r.peak_rss_sum as f64 / 1048576.0,
                                d.as_millis()
                            ),
                            None => String::new(),
                        };
                        let noisy = if r.background_cores > 0.25 {
                            format!("  [NOISY: {:.2} cores busy elsewhere]", r.background_cores)
                        } else {
                            String::new()
                        };
                        println!(
                            "  run {run}/{} {:<5} {:>9}/s  (pub {:>8}/s sub {:>8}/s)  \
                             cpu {:.3} s/M  gen-cpu {:.3} s/M  rss {:.1} MiB  n={}{lat}{mesh}{noisy}",
                            args.runs,
                            spec.label,
                            fmt_rate(r.rate),
                            fmt_rate(r.pub_rate),
                            fmt_rate(r.sub_rate),
                            r.cpu_per_m,
                            r.gen_cpu_per_m,
                            r.peak_rss as f64 / 1048576.0,
                            r.msgs,
                        );
                        stats[i].runs.push(r);
                    }
                    Err(e) => {
                        println!("  run {run}/{} {:<5} FAILED: {e:#}", args.runs, spec.label);
                        stats[i].errors.push(format!("{e:#}"));
                    }
                }
                // Let sockets from the previous server drain.
                std::thread::sleep(Duration::from_millis(200));
            }
        }
        for (spec, st) in sides.iter().zip(&stats) {
            if let Some((lo, hi)) = st.rate_range() {
                println!(
                    "  {:<5} median {}/s, range {}..{}",
                    spec.label,
                    fmt_rate(st.rate().unwrap_or(0.0)),
                    fmt_rate(lo),
                    fmt_rate(hi)
                );
            }
        }
        report.rows.push((sc, stats));
    }

    println!(
        "\nMedians over {} runs (ratio = tern/nats; msgs/s higher is better, CPU lower is better):\n",
        args.runs
    );
    print!("{}", report.to_text());

    if let Some(path) = &args.markdown {
        let md = format!(
            "Machine: {}. nats-server: {version}. {} runs per side, alternating, \
             fresh server per run; medians. Scale {}, runtime {:?}, nice {}.\n\
             msgs/s: pub16 = published/s; pubsub*/fanout4/queue4 = delivered/s summed over \
             subscribers; reqrep/xreqrep = sequential requests/s; x16/x1k = delivered/s at \
             node B of a 3-node cluster. CPU s/M = server CPU seconds (summed over nodes) per \
             million of those messages. RSS = peak (VmHWM; largest node in a cluster).\n\n{}",
            machine(),
            args.runs,
            args.scale,
            mode,
            args.nice.map_or("unchanged".into(), |n| n.to_string()),
            report.to_markdown()
        );
        std::fs::write(path, md).with_context(|| format!("write {path:?}"))?;
        println!("\nmarkdown written to {}", path.display());
    }
    let failed = report
        .rows
        .iter()
        .any(|(_, st)| st.iter().any(|s| !s.errors.is_empty()));
    if failed {
        bail!("some runs failed (see above)");
    }
    Ok(())
}
