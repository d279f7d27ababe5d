//! Client behaviour: CONNECT and auth, SUB/UNSUB, PUB/HPUB into dispatch, PING/PONG,
//! timers, and closing with nats-server's answers.
//!
//! The read loop owns the parser, the connection options and the match cache; shared
//! state (`Client`) is only what publishers on other connections need to deliver here.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::TcpStream;

use crate::account::Account;
use crate::auth::operator::JwtLimits;
use crate::auth::permissions::{self, ConnPerms};
use crate::config::Config;
use crate::dispatch::{self, MatchCache, Msg, Origin, Pcd, Rng};
use crate::error::CloseReason;
use crate::net::tls::Accepted;
use crate::net::Security;
use crate::protocol::encode;
use crate::protocol::info::ConnectInfo;
use crate::protocol::{Op, ParseError, Parser, ParserLimits};
use crate::server::{ClosedConn, ServerShared};
use crate::subject;

mod jwt_limits;
mod ops;
mod reload;
mod shared;
mod trace;
pub use shared::*;
pub(crate) use trace::trace_msg_out;

/// How a read-loop step wants the connection to end.
struct Close {
    reason: CloseReason,
    /// `-ERR` text to send first, if any.
    err: Option<&'static str>,
}

impl Close {
    fn new(reason: CloseReason, err: Option<&'static str>) -> Self {
        Close { reason, err }
    }
}

/// Read-loop state of one client connection.
struct Conn {
    server: Arc<ServerShared>,
    client: Arc<Client>,
    opts: ConnectInfo,
    connected: bool,
    auth_required: bool,
    first_pong_sent: bool,
    pings_out: u32,
    ping_sent_at: Option<Instant>,
    /// When the last RTT was measured (a PONG to our PING).
    rtt_at: Option<Instant>,
    /// Any inbound op since the last ping timer, so an active client is not pinged.
    active: bool,
    /// The account bound at CONNECT (`$G` until then and for users without one).
    account: Arc<Account>,
    cache: MatchCache,
    rng: Rng,
    pcd: Pcd,
    in_msgs: u64,
    in_bytes: u64,
    /// in_msgs when last_activity was stored, and whether a SUB/UNSUB came since: the
    /// batch-level test for "was there activity" (nats-server: msgs > 0 || subs > 0).
    activity_mark: u64,
    interest_changed: bool,
    trace: bool,
    /// Configuration snapshot, refreshed after a reload.
    cfg: Arc<Config>,
    cfg_gen: u64,
    /// Auth and TLS as of accept; a reload applies to new connections.
    sec: Arc<Security>,
    /// INFO nonce for nkey signatures (empty without nkey users).
    nonce: String,
    /// Client certificate identities (`verify_and_map`).
    cert_names: Vec<String>,
    /// `None` for users without permissions: no checks on the hot path.
    perms: Option<ConnPerms>,
    /// The configured secret the client matched at CONNECT ([`crate::auth::Authed::secret`]).
    proven_secret: Option<String>,
    /// nats-server's log prefix after CONNECT (`"v1.2:go:name" - "$G/user:NAME" - `,
    /// each part only when known); empty before CONNECT.
    tag: String,
    /// Operator mode: the user's account and JWT limits (counted in
    /// `ServerShared.account_conns` while connected).
    jwt_account: Option<String>,
    jwt: Option<JwtLimits>,
}

/// Serves one accepted client connection until it closes.
pub async fn serve(server: Arc<ServerShared>, stream: TcpStream, addr: SocketAddr) {
    let _ = stream.set_nodelay(true);
    let cid = server.next_cid.fetch_add(1, Ordering::Relaxed);
    server
        .stats
        .total_connections
        .fetch_add(1, Ordering::Relaxed);
    tracing::debug!("{addr} - cid:{cid} - Client connection created");
    let sec = server.security();
    let nonce = if sec.auth.needs_nonce() {
        crate::auth::new_nonce()
    } else {
        String::new()
    };
    let info = server.client_info_line(cid, &addr, &nonce);
    let Some(tls) = sec.tls.clone() else {
        // Plain TCP keeps its owned halves (no lock between reader and writer).
        let (rd, wr) = stream.into_split();
        let id = Identity::tcp(cid, addr, nonce);
        let spawn = move |s: &Arc<ServerShared>, c: &Arc<Client>, d| spawn_tcp_writer(s, c, wr, d);
        return run(server, sec, id, Some(info), Vec::new(), rd, spawn).await;
    };
    match crate::net::tls::accept(&tls, stream, addr, cid, &info).await {
        Ok(Accepted::Plain(stream)) => {
            let (rd, wr) = stream.into_split();
            let id = Identity::tcp(cid, addr, nonce);
            let spawn =
                move |s: &Arc<ServerShared>, c: &Arc<Client>, d| spawn_tcp_writer(s, c, wr, d);
            run(server, sec, id, None, Vec::new(), rd, spawn).await
        }
        Ok(Accepted::Tls {
            stream,
            send_info,
            cert_names,
        }) => {
            let mut session = crate::net::peer_tls::session(stream.get_ref().1);
            session.first = tls.cfg.handshake_first && send_info;
            let (rd, wr) = tokio::io::split(*stream);
            let info = send_info.then_some(info);
            let id = Identity {
                tls: Some(session),
                ..Identity::tcp(cid, addr, nonce)
            };
            let spawn = move |s: &Arc<ServerShared>, c: &Arc<Client>, d| spawn_writer(s, c, wr, d);
            run(server, sec, id, info, cert_names, rd, spawn).await
        }
        Err(e) => {
            // nats-server logs a failed handshake at debug level only.
            tracing::debug!("{addr} - cid:{cid} - {e}");
            tracing::debug!("{addr} - cid:{cid} - Client connection closed: TLS Handshake Failure");
        }
    }
}

/// Serves a websocket client once upgraded: `rd`/`wr` carry the plain NATS byte
/// stream (the websocket module frames it), so the protocol code is the same.
pub async fn serve_websocket<R, W>(
    server: Arc<ServerShared>,
    cid: u64,
    addr: SocketAddr,
    rd: R,
    wr: W,
) where
    R: AsyncRead + Unpin,
    W: tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let sec = server.security();
    let nonce = if sec.auth.needs_nonce() {
        crate::auth::new_nonce()
    } else {
        String::new()
    };
    let mut info = server.ws_info(server.info());
    info.client_id = cid;
    info.client_ip = addr.ip().to_string();
    info.nonce = nonce.clone();
    let id = Identity {
        cid,
        addr,
        nonce,
        tls: None,
        websocket: true,
    };
    let spawn = move |s: &Arc<ServerShared>, c: &Arc<Client>, d| spawn_writer(s, c, wr, d);
    run(server, sec, id, Some(info.to_line()), Vec::new(), rd, spawn).await
}

/// Who a new connection is before CONNECT.
/// nats-server's DEFAULT_RTT_MEASUREMENT_INTERVAL.
const RTT_REMEASURE: Duration = Duration::from_secs(3600);

/// A timer that never fires in practice: the auth and JWT-expiry timers start with
/// it and are reset to a real deadline only when one applies, so `select!` keeps a
/// single shape instead of optional branches.
const DISARMED: Duration = Duration::from_secs(86400 * 365);

struct Identity {
    cid: u64,
    addr: SocketAddr,
    nonce: String,
    /// The TLS session, shown in /connz.
    tls: Option<TlsSession>,
    websocket: bool,
}

impl Identity {
    fn tcp(cid: u64, addr: SocketAddr, nonce: String) -> Self {
        Identity {
            cid,
            addr,
            nonce,
            tls: None,
            websocket: false,
        }
    }
}

/// The connection after its transport is ready: `info` is pushed first when the TLS
/// phase did not already send it.
/// `spawn` starts the writer task for the connection's write half (the direct-write
/// TCP writer, or the generic one for TLS).
async fn run<R, S>(
    server: Arc<ServerShared>,
    sec: Arc<Security>,
    id: Identity,
    info: Option<Vec<u8>>,
    cert_names: Vec<String>,
    mut rd: R,
    spawn: S,
) where
    R: AsyncRead + Unpin,
    S: FnOnce(
        &Arc<ServerShared>,
        &Arc<Client>,
        Duration,
    ) -> tokio::task::JoinHandle<Option<CloseReason>>,
{
    let Identity {
        cid,
        addr,
        nonce,
        tls,
        websocket,
    } = id;
    let cfg_gen = server.config_generation();
    let cfg = server.config();
    let mut client = Client::new(cid, addr, cfg.max_pending as usize);
    client.websocket = websocket;
    let client = Arc::new(client);
    client.meta.lock().tls = tls;
    if let Some(info) = info {
        client.out.push(&info);
    }
    let writer = spawn(&server, &client, cfg.write_deadline);
    client.out.kick();

    let max_conn = cfg.max_connections;
    let over_limit = max_conn < 0 || server.clients.len() >= max_conn as usize;
    let close = if over_limit {
        Close::new(
            CloseReason::MaxConnectionsExceeded,
            Some("maximum connections exceeded"),
        )
    } else if server.is_lame_duck() {
        Close::new(CloseReason::ServerShutdown, None)
    } else {
        server.clients.insert(cid, client.clone());
        let mut conn = Conn {
            auth_required: sec.auth.required(),
            trace: cfg.logging.trace,
            cfg: cfg.clone(),
            cfg_gen,
            server: server.clone(),
            client: client.clone(),
            opts: ConnectInfo::default(),
            connected: false,
            first_pong_sent: false,
            pings_out: 0,
            ping_sent_at: None,
            rtt_at: None,
            active: false,
            account: server.global().clone(),
            cache: MatchCache::default(),
            rng: Rng::new(cid.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ nanos_seed()),
            pcd: Pcd::default(),
            in_msgs: 0,
            in_bytes: 0,
            activity_mark: 0,
            interest_changed: false,
            sec,
            nonce,
            cert_names,
            perms: None,
            proven_secret: None,
            tag: String::new(),
            jwt_account: None,
            jwt: None,
        };
        let close = conn.read_loop(&mut rd).await;
        conn.publish_counters();
        conn.release_account();
        close
    };
    finish(&server, &client, close, writer).await;
}

fn nanos_seed() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0x1234_5678)
}

/// Sends the final -ERR (if any), stops the writer, removes the client's interest and
/// records the closed connection for /connz.
async fn finish(
    server: &Arc<ServerShared>,
    client: &Arc<Client>,
    close: Close,
    writer: tokio::task::JoinHandle<Option<CloseReason>>,
) {
    let traced = crate::logging::trace_enabled();
    let tag = if traced {
        client.meta.lock().log_tag.clone()
    } else {
        String::new()
    };
    if let Some(text) = close.err {
        if traced {
            trace::trace_out(client.prefix(&tag), &format!("-ERR {text}"));
        }
        let mut b = Vec::with_capacity(text.len() + 10);
        encode::write_err(&mut b, text);
        client.out.push(&b);
    }
    client.set_close_reason(close.reason);
    client.out.close(true);
    let reason = client.close_reason().unwrap_or(close.reason);

    let subs: Vec<Arc<Subscription>> = client.subs.lock().drain().map(|(_, s)| s).collect();
    for s in &subs {
        remove_local_sub(server, s);
        if traced {
            trace::trace_delsub(client.prefix(&tag), &s.sid);
        }
    }
    if let Some(acc) = &client.meta.lock().account {
        acc.num_connections.fetch_sub(1, Ordering::Relaxed);
    }
    server.clients.remove(&client.cid);

    // A writer stuck on a peer that does not read is not waited for longer than needed.
    let mut writer = writer;
    let wait = if reason == CloseReason::SlowConsumerPendingBytes {
        Duration::from_millis(10)
    } else {
        Duration::from_secs(2)
    };
    if tokio::time::timeout(wait, &mut writer).await.is_err() {
        writer.abort();
    }
    tracing::debug!(
        "{}Client connection closed: {}",
        client.prefix(&client.meta.lock().log_tag),
        reason
    );
    server.record_closed(ClosedConn::from_client(client, reason, &subs));
}

/// Fast-producer stall: give a receiver that is past 75 % of max_pending up to ~10 ms
/// to drain before this publisher reads more. Counted in /varz stalled_clients.
async fn stall(server: &ServerShared, target: &Client) {
    server.stats.stalled_clients.fetch_add(1, Ordering::Relaxed);
    let low = target.out.max_pending() / 2;
    for i in 0..20 {
        if target.out.pending() < low || target.out.is_closing() {
            return;
        }
        if i < 10 {
            tokio::task::yield_now().await;
        } else {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

impl Conn {
    fn limits(&self) -> ParserLimits {
        let mut max_payload = self.cfg.max_payload.max(0);
        if let Some(j) = &self.jwt {
            max_payload = crate::auth::operator::min_limit(j.max_payload, max_payload).max(0);
        }
        ParserLimits {
            max_control_line: self.cfg.max_control_line.max(0) as usize,
            max_payload: Some(max_payload as usize),
        }
    }

    /// Picks up a reloaded configuration (limits, logging, auth) between read batches.
    fn refresh_config(&mut self) {
        self.cfg_gen = self.server.config_generation();
        self.cfg = self.server.config();
        self.trace = self.cfg.logging.trace;
    }

    async fn read_loop<R: AsyncRead + Unpin>(&mut self, rd: &mut R) -> Close {
        let server = self.server.clone();
        let mut shutdown = server.shutdown_rx();
        let mut buf = BytesMut::with_capacity(64 * 1024);
        let mut parser = Parser::new();
        let mut limits = self.limits();
        let auth_deadline = tokio::time::sleep(if self.auth_required {
            self.cfg.auth_timeout()
        } else {
            DISARMED
        });
        tokio::pin!(auth_deadline);
        // When the user JWT expires (armed at CONNECT when it has `exp`).
        let expiry = tokio::time::sleep(DISARMED);
        tokio::pin!(expiry);
        let ping = tokio::time::sleep(self.cfg.ping_interval);
        tokio::pin!(ping);

        loop {
            if buf.capacity() - buf.len() < 16 * 1024 {
                buf.reserve(64 * 1024);
            }
            tokio::select! {
                biased;
                _ = self.client.wait_killed() => {
                    if let Some(reason) = self.client.close_reason() {
                        return Close::new(reason, None);
                    }
                    if self.client.take_auth_recheck() {
                        let res = self.recheck_auth();
                        self.pcd.flush();
                        if let Err(close) = res {
                            return close;
                        }
                        // A reloaded account JWT may have lowered max_payload.
                        limits = self.limits();
                    }
                }
                _ = crate::server::stopped(&mut shutdown) => {
                    return Close::new(CloseReason::ServerShutdown, None);
                }
                r = rd.read_buf(&mut buf) => {
                    match r {
                        Ok(0) => return Close::new(CloseReason::ClientClosed, None),
                        Err(_) => return Close::new(CloseReason::ReadError, None),
                        Ok(_) => {}
                    }
                    if server.config_generation() != self.cfg_gen {
                        self.refresh_config();
                        limits = self.limits();
                    }
                    let was_connected = self.connected;
                    let res = self.process_buffer(&mut parser, &mut buf, &limits);
                    let stalled_on = self.pcd.flush();
                    self.publish_counters();
                    if let Some(target) = stalled_on {
                        stall(&server, &target).await;
                    }
                    if let Err(close) = res {
                        return close;
                    }
                    self.active = true;
                    if self.connected && !was_connected {
                        // The JWT may have lowered max_payload.
                        limits = self.limits();
                        if let Some(exp) = self.jwt.map(|j| j.expires).filter(|e| *e > 0) {
                            let left = (exp - crate::auth::jwt::now_unix()).max(0) as u64;
                            expiry.as_mut().reset(tokio::time::Instant::now() + Duration::from_secs(left));
                        }
                        // nats-server's first RTT ping: ~2 s after CONNECT, +0-20 %.
                        let jitter = self.rng.below(400) as u64;
                        ping.as_mut().reset(tokio::time::Instant::now() + Duration::from_millis(2000 + jitter));
                    }
                }
                _ = &mut auth_deadline, if self.auth_required && !self.connected => {
                    tracing::error!("{} - cid:{} - authentication timeout", self.client.addr, self.client.cid);
                    return Close::new(CloseReason::AuthenticationTimeout, Some("Authentication Timeout"));
                }
                _ = &mut expiry, if self.jwt.is_some_and(|j| j.expires > 0) => {
                    tracing::debug!("{}User Authentication Expired", self.who());
                    return Close::new(CloseReason::AuthenticationExpired, Some("User Authentication Expired"));
                }
                _ = &mut ping => {
                    if let Err(close) = self.ping_timer() {
                        return close;
                    }
                    ping.as_mut().reset(tokio::time::Instant::now() + self.cfg.ping_interval);
                }
            }
        }
    }

    /// Parses and handles every complete op in `buf`, then drops the consumed bytes.
    fn process_buffer(
        &mut self,
        parser: &mut Parser,
        buf: &mut BytesMut,
        limits: &ParserLimits,
    ) -> Result<(), Close> {
        let mut off = 0;
        let result = loop {
            match parser.parse(&buf[off..], limits) {
                Ok(Some((op, n))) => {
                    if let Err(c) = self.process_op(op) {
                        break Err(c);
                    }
                    off += n;
                }
                Ok(None) => break Ok(()),
                Err(e) => break Err(self.parse_error(e)),
            }
        };
        buf.advance(off);
        result
    }

    fn parse_error(&self, e: ParseError) -> Close {
        tracing::error!("{}Client parser ERROR: {}", self.who(), e);
        match e {
            ParseError::UnknownOp => {
                Close::new(CloseReason::ParseError, Some("Unknown Protocol Operation"))
            }
            ParseError::MaxControlLine => Close::new(
                CloseReason::MaxControlLineExceeded,
                Some("maximum control line exceeded"),
            ),
            ParseError::MaxPayload => Close::new(
                CloseReason::MaxPayloadExceeded,
                Some("Maximum Payload Violation"),
            ),
            ParseError::BadArgs => Close::new(CloseReason::ProtocolViolation, None),
        }
    }

    /// Once per read batch: counters and last activity become visible to /connz.
    fn publish_counters(&mut self) {
        self.client.in_msgs.store(self.in_msgs, Ordering::Relaxed);
        self.client.in_bytes.store(self.in_bytes, Ordering::Relaxed);
        if self.in_msgs != self.activity_mark || self.interest_changed {
            self.activity_mark = self.in_msgs;
            self.interest_changed = false;
            self.client
                .last_activity
                .store(unix_nanos(SystemTime::now()), Ordering::Relaxed);
        }
    }

    /// nats-server's prefix for this connection's log lines.
    fn who(&self) -> LogPrefix<'_> {
        self.client.prefix(&self.tag)
    }

    fn send(&self, bytes: &[u8]) {
        self.client.out.push(bytes);
    }

    fn send_err(&self, text: &str) {
        if self.trace {
            self.trace_out(&format!("-ERR {text}"));
        }
        let mut b = Vec::with_capacity(text.len() + 10);
        encode::write_err(&mut b, text);
        self.client.out.push(&b);
    }

    fn ok(&mut self) {
        if self.opts.verbose {
            self.trace_out("OK");
            self.client.out.push(encode::OK);
            self.pcd.add(&self.client);
        }
    }

    fn process_op(&mut self, op: Op<'_>) -> Result<(), Close> {
        if self.trace {
            self.trace_in(&op);
        }
        if self.auth_required && !self.connected && !matches!(op, Op::Connect(_)) {
            return Err(Close::new(
                CloseReason::AuthenticationViolation,
                Some("Authorization Violation"),
            ));
        }
        match op {
            Op::Pub {
                subject,
                reply,
                hdr_len,
                payload,
            } => self.process_pub(subject, reply, hdr_len, payload),
            Op::Sub {
                subject,
                queue,
                sid,
            } => {
                self.process_sub(subject, queue, sid);
                Ok(())
            }
            Op::Unsub { sid, max } => {
                self.process_unsub(sid, max);
                Ok(())
            }
            Op::Ping => {
                self.process_ping();
                Ok(())
            }
            Op::Pong => {
                self.pings_out = 0;
                if let Some(at) = self.ping_sent_at.take() {
                    let rtt = at.elapsed();
                    self.rtt_at = Some(Instant::now());
                    self.client.meta.lock().rtt = Some(rtt);
                    self.server.stats.client_rtt.observe(rtt);
                }
                Ok(())
            }
            Op::Connect(json) => self.process_connect(json),
            Op::Info | Op::Ok => Ok(()),
            Op::Err(text) => {
                tracing::error!(
                    "{}Client Error {}",
                    self.who(),
                    String::from_utf8_lossy(text)
                );
                Err(Close::new(CloseReason::ClientClosed, None))
            }
        }
    }

    /// Server ping timer: stale check, then PING unless the client was active.
    fn ping_timer(&mut self) -> Result<(), Close> {
        // As nats-server: an active client is not pinged, and staleness is only
        // judged when a PING is about to go out. But the RTT is measured once after
        // CONNECT and again when an hour old, busy or not (/connz `rtt`).
        let need_rtt = self.connected
            && self.ping_sent_at.is_none()
            && self.rtt_at.is_none_or(|t| t.elapsed() > RTT_REMEASURE);
        if self.active && !need_rtt {
            self.active = false;
            return Ok(());
        }
        if self.pings_out + 1 > self.cfg.ping_max {
            self.server
                .stats
                .stale_connections
                .fetch_add(1, Ordering::Relaxed);
            tracing::debug!("{}Stale Client Connection - Closing", self.who());
            return Err(Close::new(
                CloseReason::StaleConnection,
                Some("Stale Connection"),
            ));
        }
        self.active = false;
        self.pings_out += 1;
        self.ping_sent_at = Some(Instant::now());
        self.trace_out("PING");
        self.client.out.push(encode::PING);
        self.client.out.kick();
        Ok(())
    }
}
