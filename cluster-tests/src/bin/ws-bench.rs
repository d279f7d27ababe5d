//! `ws-bench`: WebSocket publish throughput, nats-server vs tern side by side.
//!
//! ```text
//! cargo build --release --bin tern -p cluster-tests --bin ws-bench
//! ./target/release/ws-bench [--tern PATH] [--nats PATH] [--runs N] [--count N]
//! ```
//!
//! Each run starts the server fresh with `websocket { no_tls: true }` on a free port,
//! connects a raw TCP subscriber (`SUB bench`) and a raw websocket publisher, then
//! times `count` 16-byte `PUB`s from the publisher's first frame to the subscriber's
//! last `MSG`. The publisher writes 64 KiB of pre-serialised `PUB`s per binary frame
//! (masked with key 0, which RFC 6455 allows, so one frame is reused) and pauses while
//! more than 500 000 messages are in flight, so neither server has to buffer more
//! than that. Runs alternate sides; the median msgs/s per side is printed.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use cluster_tests::bench::proto::{self, Parser};
use cluster_tests::bench::server::free_port;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const WINDOW: u64 = 500_000;

struct Side {
    label: &'static str,
    program: PathBuf,
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let runs: usize = arg(&args, "--runs").map_or(Ok(3), |s| s.parse())?;
    let count: u64 = arg(&args, "--count").map_or(Ok(2_000_000), |s| s.parse())?;
    let tern = arg(&args, "--tern").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/release/tern"),
        PathBuf::from,
    );
    let nats = arg(&args, "--nats").map_or_else(|| PathBuf::from("nats-server"), PathBuf::from);
    let sides = [
        Side {
            label: "nats-server",
            program: nats,
        },
        Side {
            label: "tern",
            program: tern,
        },
    ];
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); sides.len()];
    for run in 0..runs {
        for (i, side) in sides.iter().enumerate() {
            let r = rt.block_on(one_run(side, count))?;
            println!("run {run} {:<12} {:>12.0} msgs/s", side.label, r);
            rates[i].push(r);
        }
    }
    println!("\n| ws pub 16 B -> TCP sub | msgs/s (median of {runs}) |\n|---|---|");
    for (side, r) in sides.iter().zip(rates.iter_mut()) {
        r.sort_by(f64::total_cmp);
        println!("| {} | {:.0} |", side.label, r[r.len() / 2]);
    }
    Ok(())
}

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn one_run(side: &Side, count: u64) -> Result<f64> {
    let port = free_port()?;
    let ws_port = free_port()?;
    let dir = std::env::temp_dir().join(format!("ws-bench-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let conf = dir.join("ws.conf");
    std::fs::write(
        &conf,
        format!("websocket {{ listen: \"127.0.0.1:{ws_port}\", no_tls: true }}\n"),
    )?;
    let child = Command::new(&side.program)
        .arg("-c")
        .arg(&conf)
        .args(["-a", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("start {}", side.program.display()))?;
    let _proc = Proc(child);
    let addr = format!("127.0.0.1:{port}");
    let ws_addr = format!("127.0.0.1:{ws_port}");
    let start = Instant::now();
    while TcpStream::connect(&ws_addr).await.is_err() || TcpStream::connect(&addr).await.is_err() {
        if start.elapsed() > Duration::from_secs(10) {
            bail!("{} did not listen", side.label);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let received = Arc::new(AtomicU64::new(0));
    let mut sub = proto::connect(&addr, b"SUB bench 1\r\n").await?;
    let got = received.clone();
    let subscriber = tokio::spawn(async move {
        let mut p = Parser::default();
        let mut buf = vec![0u8; 256 * 1024];
        while p.msgs < count {
            let n = sub.read(&mut buf).await?;
            if n == 0 {
                bail!("subscriber closed");
            }
            p.feed(&buf[..n], |_| {})?;
            got.store(p.msgs, Ordering::Relaxed);
        }
        Ok::<Instant, anyhow::Error>(Instant::now())
    });

    let mut ws = ws_publisher(&ws_addr).await?;
    let msg = b"PUB bench 16\r\n0123456789abcdef\r\n";
    let per_frame = (64 * 1024 / msg.len()) as u64;
    let frame_for = |n: u64| frame(&msg.repeat(n as usize));
    let full = frame_for(per_frame);
    let t0 = Instant::now();
    let mut sent = 0u64;
    while sent < count {
        while sent - received.load(Ordering::Relaxed) > WINDOW {
            tokio::task::yield_now().await;
        }
        let n = per_frame.min(count - sent);
        if n == per_frame {
            ws.write_all(&full).await?;
        } else {
            ws.write_all(&frame_for(n)).await?;
        }
        sent += n;
    }
    let end = tokio::time::timeout(Duration::from_secs(120), subscriber).await???;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(count as f64 / (end - t0).as_secs_f64())
}

/// A masked (key 0) binary frame.
fn frame(payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0x82];
    if payload.len() < 126 {
        f.push(0x80 | payload.len() as u8);
    } else if payload.len() <= u16::MAX as usize {
        f.push(0x80 | 126);
        f.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    } else {
        f.push(0x80 | 127);
        f.extend_from_slice(&(payload.len() as u64).to_be_bytes());
    }
    f.extend_from_slice(&[0, 0, 0, 0]);
    f.extend_from_slice(payload);
    f
}

/// Upgrade, CONNECT, and wait for the PONG; server frames after that are drained.
async fn ws_publisher(addr: &str) -> Result<tokio::net::tcp::OwnedWriteHalf> {
    let mut s = TcpStream::connect(addr).await?;
    s.set_nodelay(true)?;
    let req = format!(
        "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await?;
    let mut hello = proto::CONNECT.to_vec();
    hello.extend_from_slice(b"PING\r\n");
    s.write_all(&frame(&hello)).await?;
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while memchr::memmem::find(&seen, b"PONG\r\n").is_none() {
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf)).await??;
        if n == 0 {
            bail!(
                "websocket closed during handshake: {:?}",
                String::from_utf8_lossy(&seen)
            );
        }
        seen.extend_from_slice(&buf[..n]);
    }
    if !seen.starts_with(b"HTTP/1.1 101") {
        bail!("no upgrade: {:?}", String::from_utf8_lossy(&seen));
    }
    // Nothing else is expected from the server; keep reading so it never blocks.
    let (mut rd, wr) = s.into_split();
    tokio::spawn(async move {
        let mut b = [0u8; 4096];
        while matches!(rd.read(&mut b).await, Ok(n) if n > 0) {}
    });
    Ok(wr)
}
