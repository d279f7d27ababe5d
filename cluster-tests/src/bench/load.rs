//! Raw-protocol load generators: publisher, counting subscriber, request
//! responder and sequential requester, plus the executor that runs them.
//!
//! Every client takes an already-handshaken `std::net::TcpStream` (see
//! [`crate::bench::proto::connect`]) so connection setup is outside the timed
//! region and the client can be moved onto whatever runtime runs it.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{watch, Notify};

use super::proto::Parser;

/// Publisher write-chunk size: each `write` hands the kernel this much.
pub const CHUNK_BYTES: usize = 64 * 1024;
/// A PING is sent after at most this many messages…
pub const WINDOW_MSGS: u64 = 10_000;
/// …or this many bytes, whichever comes first.
pub const WINDOW_BYTES: u64 = 1024 * 1024;
/// At most this many PINGs outstanding (so the pipe never drains fully while
/// waiting for a PONG, yet the server holds ≤ ~2 windows of our input).
pub const MAX_PINGS_OUT: u64 = 2;
/// End-to-end window: published-but-not-yet-received bytes, per delivery.
pub const INFLIGHT_BYTES: u64 = 8 * 1024 * 1024;
/// Subscriber read buffer.
pub const READ_BUF: usize = 256 * 1024;

/// State shared by one publisher and its subscribers.
pub struct Shared {
    /// Messages received, summed over all subscribers.
    pub received: AtomicU64,
    /// Messages the subscribers must receive in total; `u64::MAX` until the
    /// publisher knows how many it sent.
    pub target: AtomicU64,
    /// Flipped to `true` once `received >= target`.
    pub stop: watch::Sender<bool>,
    /// Pinged by subscribers on progress (publisher waits on it when the
    /// end-to-end window is full).
    pub progress: Notify,
}

impl Shared {
    /// Fresh shared state.
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            received: AtomicU64::new(0),
            target: AtomicU64::new(u64::MAX),
            stop: watch::channel(false).0,
            progress: Notify::new(),
        })
    }

    fn check_done(&self) {
        if self.received.load(Ordering::SeqCst) >= self.target.load(Ordering::SeqCst) {
            self.stop.send_replace(true);
        }
    }
}

/// What a publisher should do.
#[derive(Clone, Debug)]
pub struct PubPlan {
    /// Subject to publish on.
    pub subject: String,
    /// Payload bytes per message.
    pub payload: usize,
    /// Maximum messages to send.
    pub count: u64,
    /// Stop sending at this instant even if `count` is not reached.
    pub send_until: Option<Instant>,
    /// Deliveries per published message (0 = no subscribers, no end-to-end
    /// window; 4 for a 4-way fan-out; 1 for a queue group).
    pub fanout: u64,
}

/// Publisher outcome.
#[derive(Clone, Copy, Debug)]
pub struct PubResult {
    /// Messages sent (and acknowledged by the final PONG).
    pub sent: u64,
    /// First byte written.
    pub start: Instant,
    /// Final PONG received: the server has processed every message.
    pub end: Instant,
}

/// Subscriber outcome.
#[derive(Clone, Copy, Debug)]
pub struct SubResult {
    /// Messages this subscriber received.
    pub msgs: u64,
    /// When the last one arrived.
    pub last: Option<Instant>,
    /// Whether it gave up at the hard deadline.
    pub timed_out: bool,
}

/// Requester outcome.
#[derive(Clone, Debug)]
pub struct ReqResult {
    /// Timed requests completed (warm-up excluded).
    pub done: u64,
    /// Wall time of the timed part.
    pub elapsed: Duration,
    /// Per-request round trip, nanoseconds (unsorted).
    pub lat_ns: Vec<u64>,
}

fn build_pub(subject: &str, reply: Option<&str>, payload: usize) -> Vec<u8> {
    let mut m = match reply {
        Some(r) => format!("PUB {subject} {r} {payload}\r\n").into_bytes(),
        None => format!("PUB {subject} {payload}\r\n").into_bytes(),
    };
    m.extend(std::iter::repeat_n(b'x', payload));
    m.extend_from_slice(b"\r\n");
    m
}

async fn wait_pongs(
    s: &mut TcpStream,
    p: &mut Parser,
    buf: &mut [u8],
    want_at_least: u64,
) -> Result<()> {
    while p.pongs < want_at_least {
        let n = s.read(buf).await?;
        if n == 0 {
            bail!("server closed publisher connection");
        }
        p.feed(&buf[..n], |_| {})?;
        if p.pings > 0 {
            p.pings = 0;
            s.write_all(b"PONG\r\n").await?;
        }
    }
    Ok(())
}

/// Publish per `plan` with PING/PONG flow control (see module constants).
pub async fn publisher(
    stream: std::net::TcpStream,
    plan: PubPlan,
    shared: Option<Arc<Shared>>,
    hard_deadline: Instant,
) -> Result<PubResult> {
    let mut s = TcpStream::from_std(stream)?;
    let one = build_pub(&plan.subject, None, plan.payload);
    let msg_len = one.len() as u64;
    let per_chunk = (CHUNK_BYTES / one.len()).max(1);
    let chunk: Vec<u8> = one.repeat(per_chunk);
    let window = WINDOW_MSGS.min(WINDOW_BYTES / msg_len).max(1);
    let inflight_max = plan.fanout * (INFLIGHT_BYTES / msg_len).max(window);

    let mut parser = Parser::default();
    let mut rbuf = vec![0u8; 4096];
    let mut sent = 0u64;
    let mut since_ping = 0u64;
    let mut pings = 0u64;
    let start = Instant::now();
    let run = async {
        while sent < plan.count {
            if plan.send_until.is_some_and(|t| Instant::now() >= t) {
                break;
            }
            if let (Some(sh), true) = (&shared, plan.fanout > 0) {
                loop {
                    let notified = sh.progress.notified();
                    let rec = sh.received.load(Ordering::SeqCst);
                    if (sent * plan.fanout).saturating_sub(rec) <= inflight_max {
                        break;
                    }
                    // The timeout only guards against a stuck subscriber.
                    let _ = tokio::time::timeout(Duration::from_millis(100), notified).await;
                    if Instant::now() > hard_deadline {
                        bail!("publisher: subscribers stalled (end-to-end window full)");
                    }
                }
            }
            if pings >= MAX_PINGS_OUT {
                wait_pongs(&mut s, &mut parser, &mut rbuf, pings + 1 - MAX_PINGS_OUT).await?;
            }
            let n = (per_chunk as u64).min(plan.count - sent);
            s.write_all(&chunk[..(n * msg_len) as usize]).await?;
            sent += n;
            since_ping += n;
            if since_ping >= window {
                s.write_all(b"PING\r\n").await?;
                pings += 1;
                since_ping = 0;
            }
        }
        s.write_all(b"PING\r\n").await?;
        pings += 1;
        wait_pongs(&mut s, &mut parser, &mut rbuf, pings).await?;
        Ok::<_, anyhow::Error>(())
    };
    tokio::time::timeout_at(hard_deadline.into(), run)
        .await
        .map_err(|_| anyhow!("publisher timed out after {sent} msgs"))??;
    let end = Instant::now();
    if let Some(sh) = &shared {
        sh.target.store(sent * plan.fanout, Ordering::SeqCst);
        sh.check_done();
    }
    Ok(PubResult { sent, start, end })
}

/// Count messages until the shared target is reached (or the deadline).
pub async fn subscriber(
    stream: std::net::TcpStream,
    shared: Arc<Shared>,
    hard_deadline: Instant,
) -> Result<SubResult> {
    let mut s = TcpStream::from_std(stream)?;
    let mut stop = shared.stop.subscribe();
    let mut parser = Parser::default();
    let mut buf = vec![0u8; READ_BUF];
    let mut last = None;
    let mut seen = 0u64;
    let sleep = tokio::time::sleep_until(hard_deadline.into());
    tokio::pin!(sleep);
    loop {
        if *stop.borrow_and_update() {
            return Ok(SubResult {
                msgs: seen,
                last,
                timed_out: false,
            });
        }
        tokio::select! {
            biased;
            r = s.read(&mut buf) => {
                let n = r.context("subscriber read")?;
                if n == 0 {
                    bail!("server closed subscriber connection after {seen} msgs");
                }
                parser.feed(&buf[..n], |_| {})?;
                if parser.pings > 0 {
                    parser.pings = 0;
                    s.write_all(b"PONG\r\n").await?;
                }
                let delta = parser.msgs - seen;
                if delta > 0 {
                    seen = parser.msgs;
                    last = Some(Instant::now());
                    shared.received.fetch_add(delta, Ordering::SeqCst);
                    shared.progress.notify_one();
                    shared.check_done();
                }
            }
            _ = stop.changed() => {}
            _ = &mut sleep => {
                return Ok(SubResult { msgs: seen, last, timed_out: true });
            }
        }
    }
}

/// Answer every request on the subscribed subject with a `payload`-byte reply
/// until `stop` flips, the connection closes or the deadline passes.
pub async fn responder(
    stream: std::net::TcpStream,
    payload: usize,
    mut stop: watch::Receiver<bool>,
    hard_deadline: Instant,
) -> Result<u64> {
    let mut s = TcpStream::from_std(stream)?;
    let mut parser = Parser::default();
    let mut buf = vec![0u8; 64 * 1024];
    let mut out = Vec::with_capacity(64 * 1024);
    let body = {
        let mut b = vec![b'x'; payload];
        b.extend_from_slice(b"\r\n");
        b
    };
    let sleep = tokio::time::sleep_until(hard_deadline.into());
    tokio::pin!(sleep);
    loop {
        if *stop.borrow_and_update() {
            return Ok(parser.msgs);
        }
        tokio::select! {
            biased;
            r = s.read(&mut buf) => {
                let n = r?;
                if n == 0 {
                    return Ok(parser.msgs);
                }
                parser.feed(&buf[..n], |reply| {
                    out.extend_from_slice(b"PUB ");
                    out.extend_from_slice(reply);
                    out.extend_from_slice(format!(" {payload}\r\n").as_bytes());
                    out.extend_from_slice(&body);
                })?;
                if parser.pings > 0 {
                    parser.pings = 0;
                    out.extend_from_slice(b"PONG\r\n");
                }
                if !out.is_empty() {
                    s.write_all(&out).await?;
                    out.clear();
                }
            }
            _ = stop.changed() => {}
            _ = &mut sleep => return Ok(parser.msgs),
        }
    }
}

/// What a requester should do.
#[derive(Clone, Debug)]
pub struct ReqPlan {
    /// Service subject.
    pub subject: String,
    /// Reply prefix; the connection must already be subscribed to `<inbox>.*`.
    pub inbox: String,
    /// Request payload bytes.
    pub payload: usize,
    /// Untimed requests first.
    pub warmup: u64,
    /// Timed requests (at most).
    pub count: u64,
    /// Stop the timed part at this instant.
    pub send_until: Option<Instant>,
}

/// Sequential request/reply: `warmup` untimed requests then up to `count`
/// timed ones (or until `send_until`).
pub async fn requester(
    stream: std::net::TcpStream,
    plan: ReqPlan,
    hard_deadline: Instant,
) -> Result<ReqResult> {
    let ReqPlan {
        subject,
        inbox,
        payload,
        warmup,
        count,
        send_until,
    } = plan;
    let mut s = TcpStream::from_std(stream)?;
    let mut parser = Parser::default();
    let mut buf = vec![0u8; 64 * 1024];
    let mut req = Vec::with_capacity(128 + payload);
    let body = {
        let mut b = vec![b'x'; payload];
        b.extend_from_slice(b"\r\n");
        b
    };
    let mut lat_ns = Vec::with_capacity(count.min(10_000_000) as usize);
    let mut t_start = Instant::now();
    let run = async {
        for i in 0..warmup + count {
            if i == warmup {
                t_start = Instant::now();
            }
            if i >= warmup && send_until.is_some_and(|t| Instant::now() >= t) {
                break;
            }
            req.clear();
            req.extend_from_slice(format!("PUB {subject} {inbox}.{i} {payload}\r\n").as_bytes());
            req.extend_from_slice(&body);
            let want = parser.msgs + 1;
            let t0 = Instant::now();
            s.write_all(&req).await?;
            while parser.msgs < want {
                let n = s.read(&mut buf).await?;
                if n == 0 {
                    bail!("server closed requester connection");
                }
                parser.feed(&buf[..n], |_| {})?;
                if parser.pings > 0 {
                    parser.pings = 0;
                    s.write_all(b"PONG\r\n").await?;
                }
            }
            if i >= warmup {
                lat_ns.push(t0.elapsed().as_nanos() as u64);
            }
        }
        Ok::<_, anyhow::Error>(())
    };
    tokio::time::timeout_at(hard_deadline.into(), run)
        .await
        .map_err(|_| anyhow!("requester timed out"))??;
    Ok(ReqResult {
        done: lat_ns.len() as u64,
        elapsed: t_start.elapsed(),
        lat_ns,
    })
}

/// How load-generator clients are scheduled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RtMode {
    /// Each client on its own OS thread with a `current_thread` runtime.
    ThreadPerClient,
    /// All clients on one multi-thread runtime with this many workers.
    Shared(usize),
}

/// Runs client futures according to an [`RtMode`].
pub struct Exec {
    mode: RtMode,
    /// Runtime used for setup (connects); also the pool in `Shared` mode.
    rt: tokio::runtime::Runtime,
}

/// A running client.
pub enum Spawned<T> {
    /// On a dedicated thread.
    Thread(std::thread::JoinHandle<Result<T>>),
    /// On the shared runtime.
    Task(tokio::task::JoinHandle<Result<T>>),
}

impl Exec {
    /// Build the runtime(s) for `mode`.
    pub fn new(mode: RtMode) -> Result<Self> {
        let rt = match mode {
            RtMode::ThreadPerClient => tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?,
            RtMode::Shared(n) => tokio::runtime::Builder::new_multi_thread()
                .worker_threads(n.max(1))
                .enable_all()
                .build()?,
        };
        Ok(Self { mode, rt })
    }

    /// Run a setup future to completion on the calling thread.
    pub fn block_on<F: Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    /// Start a client.
    pub fn spawn<T, F>(&self, name: &str, fut: F) -> Result<Spawned<T>>
    where
        T: Send + 'static,
        F: Future<Output = Result<T>> + Send + 'static,
    {
        Ok(match self.mode {
            RtMode::ThreadPerClient => {
                Spawned::Thread(std::thread::Builder::new().name(name.to_string()).spawn(
                    move || {
                        tokio::runtime::Builder::new_current_thread()
                            .enable_all()
                            .build()?
                            .block_on(fut)
                    },
                )?)
            }
            RtMode::Shared(_) => Spawned::Task(self.rt.spawn(fut)),
        })
    }

    /// Wait for a client.
    pub fn join<T>(&self, s: Spawned<T>) -> Result<T> {
        match s {
            Spawned::Thread(h) => h
                .join()
                .map_err(|_| anyhow!("load-generator thread panicked"))?,
            Spawned::Task(h) => self.rt.block_on(h)?,
        }
    }
}
