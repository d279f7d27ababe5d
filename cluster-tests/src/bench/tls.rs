//! `tern-bench --tls`: publish/subscribe 1 -> 1 over client TLS (16 B and 1 KiB
//! payloads), both servers started with the same certificate (`--tls --tlscert
//! --tlskey`). Clients speak the raw protocol over tokio-rustls: plaintext INFO,
//! TLS upgrade, CONNECT, then a publisher writing 64 KiB batches kept within an
//! end-to-end window of the subscriber's count.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use super::proto::{read_info, Parser, CONNECT};
use super::server::{free_port, ServerSpec};

/// Published-but-not-received bytes allowed in flight.
const INFLIGHT_BYTES: u64 = 8 * 1024 * 1024;

/// The client TLS setup trusting the bench CA.
pub fn connector(ca: &Path) -> Result<TlsConnector> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_file_iter(ca)? {
        roots.add(c?)?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(cfg)))
}

/// INFO in plaintext, TLS, CONNECT + `extra` + PING, wait for PONG.
async fn connect(addr: &str, tls: &TlsConnector, extra: &[u8]) -> Result<TlsStream<TcpStream>> {
    let mut tcp = TcpStream::connect(addr)
        .await
        .with_context(|| format!("connect {addr}"))?;
    tcp.set_nodelay(true)?;
    read_info(&mut tcp).await?;
    let mut s = tls
        .connect(ServerName::try_from("localhost")?, tcp)
        .await
        .context("TLS handshake")?;
    let mut hello = CONNECT.to_vec();
    hello.extend_from_slice(extra);
    hello.extend_from_slice(b"PING\r\n");
    s.write_all(&hello).await?;
    let mut p = Parser::default();
    let mut buf = vec![0u8; 4096];
    while p.pongs == 0 {
        let n = s.read(&mut buf).await?;
        if n == 0 {
            bail!("closed during handshake");
        }
        p.feed(&buf[..n], |_| {})?;
    }
    Ok(s)
}

/// One run: delivered messages per second at the subscriber.
pub async fn pubsub(addr: &str, tls: &TlsConnector, payload: usize, dur: Duration) -> Result<f64> {
    let mut sub = connect(addr, tls, b"SUB bench.tls 1\r\n").await?;
    let mut publ = connect(addr, tls, b"").await?;
    let received = Arc::new(AtomicU64::new(0));
    let target = Arc::new(AtomicU64::new(u64::MAX));
    let progress = Arc::new(tokio::sync::Notify::new());
    let deadline = Instant::now() + dur + Duration::from_secs(30);
    let (r, t, pr) = (received.clone(), target.clone(), progress.clone());
    let reader = tokio::spawn(async move {
        let mut p = Parser::default();
        let mut buf = vec![0u8; 256 * 1024];
        let mut last = Instant::now();
        while p.msgs < t.load(Ordering::Acquire) {
            let n = tokio::time::timeout_at(deadline.into(), sub.read(&mut buf))
                .await
                .map_err(|_| anyhow!("subscriber stalled at {} msgs", p.msgs))??;
            if n == 0 {
                bail!("subscriber closed after {} msgs", p.msgs);
            }
            p.feed(&buf[..n], |_| {})?;
            if p.pings > 0 {
                p.pings = 0;
                sub.write_all(b"PONG\r\n").await?;
            }
            r.store(p.msgs, Ordering::Release);
            pr.notify_one();
            last = Instant::now();
        }
        Ok::<_, anyhow::Error>((p.msgs, last))
    });
    let mut one = format!("PUB bench.tls {payload}\r\n").into_bytes();
    one.extend(std::iter::repeat_n(b'x', payload));
    one.extend_from_slice(b"\r\n");
    let per_chunk = (64 * 1024 / one.len()).max(1);
    let chunk = one.repeat(per_chunk);
    let window = (INFLIGHT_BYTES / one.len() as u64).max(per_chunk as u64);
    let start = Instant::now();
    let stop_at = start + dur;
    let mut sent = 0u64;
    while Instant::now() < stop_at {
        loop {
            let notified = progress.notified();
            if sent.saturating_sub(received.load(Ordering::Acquire)) <= window {
                break;
            }
            let _ = tokio::time::timeout(Duration::from_millis(100), notified).await;
            if Instant::now() > deadline {
                bail!("publisher: subscriber stalled (window full)");
            }
        }
        publ.write_all(&chunk).await?;
        sent += per_chunk as u64;
    }
    publ.flush().await?;
    target.store(sent, Ordering::Release);
    progress.notify_one();
    let (got, last) = reader.await??;
    Ok(got as f64 / last.duration_since(start).as_secs_f64())
}

/// Runs `runs` alternating rounds per side and size; prints each run and returns
/// the markdown table of medians (msgs/s, ratio tern/nats).
pub fn run(
    sides: &[ServerSpec],
    cert: &Path,
    key: &Path,
    ca: &Path,
    runs: usize,
    dur: Duration,
) -> Result<String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let tls = connector(ca)?;
    let args: Vec<String> = vec![
        "--tls".into(),
        "--tlscert".into(),
        cert.display().to_string(),
        "--tlskey".into(),
        key.display().to_string(),
    ];
    let mut md = String::from("| scenario | ");
    md.push_str(
        &sides
            .iter()
            .map(|s| format!("{} msgs/s", s.label))
            .collect::<Vec<_>>()
            .join(" | "),
    );
    md.push_str(" | tern/nats |\n|---|");
    md.push_str(&"---|".repeat(sides.len() + 1));
    md.push('\n');
    for (name, payload) in [("tls-pubsub16", 16usize), ("tls-pubsub1k", 1024)] {
        println!("\n== {name} (delivered msgs/s, 1 -> 1 over TLS)");
        let mut rates: Vec<Vec<f64>> = vec![Vec::new(); sides.len()];
        for run in 1..=runs {
            for (i, spec) in sides.iter().enumerate() {
                let mut srv = spec.start_with(free_port()?, &args)?;
                let addr = srv.addr();
                let r = rt.block_on(pubsub(&addr, &tls, payload, dur));
                srv.stop();
                match r {
                    Ok(rate) => {
                        println!("  run {run}/{runs} {:<5} {:>12.0}/s", spec.label, rate);
                        rates[i].push(rate);
                    }
                    Err(e) => println!("  run {run}/{runs} {:<5} FAILED: {e:#}", spec.label),
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        }
        let medians: Vec<Option<f64>> = rates
            .iter_mut()
            .map(|v| {
                v.sort_by(|a, b| a.total_cmp(b));
                v.get(v.len() / 2).copied()
            })
            .collect();
        let cell = |m: Option<f64>| m.map_or("failed".into(), |r| format!("{r:.0}"));
        let ratio = match (
            medians.first().copied().flatten(),
            medians.get(1).copied().flatten(),
        ) {
            (Some(n), Some(t)) if n > 0.0 => format!("{:.2}x", t / n),
            _ => "-".into(),
        };
        md.push_str(&format!(
            "| {name} | {} | {ratio} |\n",
            medians
                .iter()
                .map(|m| cell(*m))
                .collect::<Vec<_>>()
                .join(" | ")
        ));
    }
    Ok(md)
}
