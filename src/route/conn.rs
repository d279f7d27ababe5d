//! One route connection: handshake (INFO/CONNECT and their checks), interest
//! (RS+/RS- into the sublist as this route's subscriptions), messages (RMSG/HMSG to
//! local clients only), keepalive, and cleanup when the route goes away.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::TcpStream;

use super::{RegisterError, Route};
use crate::account::Account;
use crate::client::{Client, ConnKind, SubRef, Subscription};
use crate::dispatch::{self, Msg, Origin, Pcd, Rng};
use crate::error::CloseReason;
use crate::protocol::encode;
use crate::protocol::info::{RouteConnect, ServerInfo};
use crate::protocol::{ParseError, ParserLimits, RouteOp, RouteParser};
use crate::server::ServerShared;

/// How we came to have this connection.
#[derive(Debug, Clone)]
pub enum Side {
    Accepted,
    /// We dialed `url`; `configured` if it is a seed route from the config.
    Solicited {
        url: String,
        configured: bool,
        user: Option<String>,
        pass: Option<String>,
    },
}

/// How a route connection ended, so the dialer knows whether to retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteEnd {
    /// The peer is ourselves: never dial this URL again.
    ToSelf,
    /// Refused because a route to this peer (server_id) is already registered.
    Duplicate(String),
    /// Anything else: a configured route is retried.
    Closed(CloseReason),
}

struct RouteConn {
    server: Arc<ServerShared>,
    conn: Arc<Client>,
    side: Side,
    route: Option<Arc<Route>>,
    connected: bool,
    pings_out: u32,
    /// When our last PING left, for the route RTT in /routez.
    ping_sent_at: Option<std::time::Instant>,
    rng: Rng,
    /// The account of the last RS+/RMSG, so runs in one account skip the registry.
    last_account: Option<Arc<Account>>,
    pcd: Pcd,
    in_msgs: u64,
    in_bytes: u64,
    trace: bool,
}

struct End {
    reason: CloseReason,
    err: Option<String>,
    to_self: bool,
    /// The peer we already had a route to, when this one was a duplicate.
    duplicate_of: Option<String>,
}

impl End {
    fn close(reason: CloseReason, err: Option<String>) -> Self {
        End {
            reason,
            err,
            to_self: false,
            duplicate_of: None,
        }
    }
}

/// Serves one route connection until it closes. With `cluster { tls }` the TLS
/// handshake comes first, before any INFO (nats-server does the same).
pub async fn serve(
    server: Arc<ServerShared>,
    stream: TcpStream,
    addr: SocketAddr,
    side: Side,
) -> RouteEnd {
    let _ = stream.set_nodelay(true);
    let cid = server.next_cid.fetch_add(1, Ordering::Relaxed);
    let Some(tls) = server.security().route_tls.clone() else {
        let (rd, wr) = stream.into_split();
        let spawn = move |s: &Arc<ServerShared>, c: &Arc<Client>, d| {
            crate::client::spawn_tcp_writer(s, c, wr, d)
        };
        return run(server, cid, addr, side, None, rd, spawn).await;
    };
    let handshake = match &side {
        Side::Accepted => {
            tracing::debug!("{addr} - rid:{cid} - Starting TLS route server handshake");
            tls.accept(stream).await.map(|s| {
                let tls = crate::net::peer_tls::session(s.get_ref().1);
                let (rd, wr) = tokio::io::split(s);
                (tls, Box::new(rd) as BoxRead, Box::new(wr) as BoxWrite)
            })
        }
        Side::Solicited { url, .. } => {
            tracing::debug!("{addr} - rid:{cid} - Starting TLS route client handshake");
            let host = super::dialer::parse_route_url(url)
                .map(|u| u.host)
                .unwrap_or_else(|_| addr.ip().to_string());
            tls.connect(&host, stream).await.map(|s| {
                let tls = crate::net::peer_tls::session(s.get_ref().1);
                let (rd, wr) = tokio::io::split(s);
                (tls, Box::new(rd) as BoxRead, Box::new(wr) as BoxWrite)
            })
        }
    };
    match handshake {
        Ok((tls, rd, wr)) => {
            tracing::debug!("{addr} - rid:{cid} - TLS handshake complete");
            tracing::debug!(
                "{addr} - rid:{cid} - TLS version {}, cipher suite {}",
                tls.version,
                tls.cipher
            );
            let spawn = move |s: &Arc<ServerShared>, c: &Arc<Client>, d| {
                crate::client::spawn_writer(s, c, wr, d)
            };
            run(server, cid, addr, side, Some(tls), rd, spawn).await
        }
        Err(e) => {
            // nats-server's lines, so log-watching tools match both servers.
            tracing::error!("{addr} - rid:{cid} - TLS route handshake error: {e}");
            tracing::info!("{addr} - rid:{cid} - Router connection closed: TLS Handshake Failure");
            RouteEnd::Closed(CloseReason::TlsHandshakeFailure)
        }
    }
}

type BoxRead = Box<dyn AsyncRead + Unpin + Send>;
type BoxWrite = Box<dyn tokio::io::AsyncWrite + Unpin + Send>;

/// The route after its transport is ready; `spawn` starts the writer on the write half.
async fn run<R, S>(
    server: Arc<ServerShared>,
    cid: u64,
    addr: SocketAddr,
    side: Side,
    tls: Option<crate::client::TlsSession>,
    mut rd: R,
    spawn: S,
) -> RouteEnd
where
    R: AsyncRead + Unpin,
    S: FnOnce(
        &Arc<ServerShared>,
        &Arc<Client>,
        Duration,
    ) -> tokio::task::JoinHandle<Option<CloseReason>>,
{
    let cfg = server.config();
    // Routes carry every client's traffic: give them room before "slow consumer".
    let max_pending = (cfg.max_pending as usize).max(64 * 1024 * 1024) * 4;
    let conn = Arc::new(Client::with_kind(cid, addr, max_pending, ConnKind::Route));
    conn.meta.lock().tls = tls;
    let writer = spawn(&server, &conn, cfg.write_deadline);
    match &side {
        Side::Accepted => conn.out.push(&server.route_info_line()),
        Side::Solicited { user, pass, .. } => {
            let c = RouteConnect {
                echo: true,
                verbose: false,
                pedantic: false,
                user: user.clone(),
                pass: pass.clone(),
                tls_required: cfg.cluster.tls.is_some(),
                headers: true,
                name: server.server_id.clone(),
                cluster: server.routes.cluster_name(),
                cluster_dynamic: server.routes.name_is_dynamic(),
                lang: None,
                gateway: None,
            };
            let mut line = b"CONNECT ".to_vec();
            line.extend_from_slice(&serde_json::to_vec(&c).unwrap_or_default());
            line.extend_from_slice(b"\r\n");
            conn.out.push(&line);
            conn.out.push(&server.route_info_line());
        }
    }
    conn.out.kick();
    tracing::debug!("{addr} - rid:{cid} - Route connection created");

    let mut rc = RouteConn {
        rng: Rng::new(cid ^ 0xA5A5_5A5A),
        last_account: None,
        server: server.clone(),
        conn: conn.clone(),
        side,
        route: None,
        connected: false,
        pings_out: 0,
        ping_sent_at: None,
        pcd: Pcd::default(),
        in_msgs: 0,
        in_bytes: 0,
        trace: cfg.logging.trace,
    };
    let end = rc.read_loop(&mut rd).await;
    rc.finish(end, writer).await
}

impl RouteConn {
    async fn read_loop<R: AsyncRead + Unpin>(&mut self, rd: &mut R) -> End {
        let server = self.server.clone();
        let cfg = server.config();
        let mut shutdown = server.shutdown_rx();
        let mut buf = BytesMut::with_capacity(64 * 1024);
        let mut parser = RouteParser::new();
        // nats-server: routes get 16x the client control line and no payload limit.
        let limits = ParserLimits {
            max_control_line: (cfg.max_control_line.max(0) as usize) * 16,
            max_payload: None,
        };
        let ping_interval = cfg
            .cluster
            .ping_interval
            .unwrap_or(cfg.ping_interval)
            .min(Duration::from_secs(30));
        let ping_max = cfg.cluster.ping_max.unwrap_or(cfg.ping_max);
        let ping = tokio::time::sleep(Duration::from_secs(1));
        tokio::pin!(ping);
        let auth_deadline = tokio::time::sleep(
            cfg.cluster
                .authorization
                .timeout
                .unwrap_or(crate::config::defaults::AUTH_TIMEOUT)
                .max(Duration::from_secs(2)),
        );
        tokio::pin!(auth_deadline);
        loop {
            if buf.capacity() - buf.len() < 16 * 1024 {
                buf.reserve(64 * 1024);
            }
            tokio::select! {
                biased;
                _ = self.conn.wait_killed() => {
                    return End::close(self.conn.close_reason().unwrap_or(CloseReason::ServerShutdown), None);
                }
                _ = crate::server::stopped(&mut shutdown) => return End::close(CloseReason::ServerShutdown, None),
                r = rd.read_buf(&mut buf) => {
                    match r {
                        Ok(0) => return End::close(CloseReason::ClientClosed, None),
                        Err(_) => return End::close(CloseReason::ReadError, None),
                        Ok(_) => {}
                    }
                    let mut off = 0;
                    let res = loop {
                        // Like nats-server: on an accepted route anything but CONNECT
                        // first is an authorization violation (garbage included).
                        if matches!(self.side, Side::Accepted)
                            && !self.connected
                            && buf.get(off).is_some_and(|b| !b.eq_ignore_ascii_case(&b'C'))
                        {
                            break Err(End::close(
                                CloseReason::AuthenticationViolation,
                                Some("Authorization Violation".into()),
                            ));
                        }
                        match parser.parse(&buf[off..], &limits) {
                            Ok(Some((op, n))) => {
                                if let Err(e) = self.process(op) {
                                    break Err(e);
                                }
                                off += n;
                            }
                            Ok(None) => break Ok(()),
                            Err(e) => break Err(parse_end(e)),
                        }
                    };
                    buf.advance(off);
                    self.pcd.flush();
                    self.conn.in_msgs.store(self.in_msgs, Ordering::Relaxed);
                    self.conn.in_bytes.store(self.in_bytes, Ordering::Relaxed);
                    // Once per read batch (not per message), for /routez last_activity.
                    self.conn.last_activity.store(
                        crate::client::unix_nanos(std::time::SystemTime::now()),
                        Ordering::Relaxed,
                    );
                    if let Err(end) = res {
                        return end;
                    }
                }
                _ = &mut auth_deadline, if !self.connected => {
                    return End::close(CloseReason::AuthenticationTimeout, Some("Authentication Timeout".into()));
                }
                _ = &mut ping => {
                    if self.pings_out + 1 > ping_max {
                        let stats = &self.server.stats;
                        stats.stale_connections.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        stats.stale_routes.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        tracing::error!("{} - rid:{} - Stale Route Connection - Closing", self.conn.addr, self.conn.cid);
                        return End::close(CloseReason::StaleConnection, Some("Stale Connection".into()));
                    }
                    self.pings_out += 1;
                    self.ping_sent_at = Some(std::time::Instant::now());
                    self.conn.out.push(encode::PING);
                    self.conn.out.kick();
                    ping.as_mut().reset(tokio::time::Instant::now() + ping_interval);
                }
            }
        }
    }

    fn process(&mut self, op: RouteOp<'_>) -> Result<(), End> {
        if self.trace {
            tracing::trace!("{} - rid:{} - <<- [{}]", self.conn.addr, self.conn.cid, op);
        }
        match op {
            RouteOp::Info(json) => self.process_info(json),
            RouteOp::Connect(json) => self.process_connect(json),
            RouteOp::Ping => {
                self.conn.out.push(encode::PONG);
                self.pcd.add(&self.conn);
                Ok(())
            }
            RouteOp::Pong => {
                self.pings_out = 0;
                if let Some(at) = self.ping_sent_at.take() {
                    let rtt = at.elapsed();
                    self.conn.meta.lock().rtt = Some(rtt);
                    self.server.stats.route_rtt.observe(rtt);
                }
                Ok(())
            }
            RouteOp::Ok | RouteOp::Ignored => Ok(()),
            RouteOp::Err(text) => {
                tracing::error!(
                    "{} - rid:{} - Route Error {}",
                    self.conn.addr,
                    self.conn.cid,
                    String::from_utf8_lossy(text)
                );
                Err(End::close(CloseReason::ClientClosed, None))
            }
            RouteOp::Sub {
                account,
                subject,
                queue,
                weight,
            } => {
                self.require_registered()?;
                self.remote_sub(account, subject, queue, weight.max(1));
                Ok(())
            }
            RouteOp::Unsub {
                account,
                subject,
                queue,
            } => {
                self.require_registered()?;
                self.remote_unsub(account, subject, queue);
                Ok(())
            }
            RouteOp::Msg {
                account,
                subject,
                reply,
                queues,
                hdr_len,
                payload,
            } => {
                self.require_registered()?;
                self.in_msgs += 1;
                self.in_bytes += payload.len() as u64;
                let Some(acc) = self.account(account) else {
                    tracing::debug!(
                        "{} - rid:{} - Unknown account {:?} for routed message on subject: {:?}",
                        self.conn.addr,
                        self.conn.cid,
                        String::from_utf8_lossy(account),
                        String::from_utf8_lossy(subject)
                    );
                    return Ok(());
                };
                let server = &*self.server;
                let result = acc.sublist.match_subject(subject);
                let msg = Msg {
                    subject,
                    reply,
                    hdr_len,
                    payload,
                };
                // Message tracing (telemetry::msg): only HMSG with tracing on gets past `start`.
                let traced = crate::telemetry::msg::start(server, hdr_len, payload);
                let delivered = dispatch::deliver(
                    server,
                    &acc,
                    &result,
                    &msg,
                    &Origin::Route { queues },
                    &mut self.rng,
                    &mut self.pcd,
                );
                if let Some(t) = traced {
                    t.routed(&self.conn, self.route.as_deref(), subject, delivered);
                }
                Ok(())
            }
        }
    }

    fn require_registered(&self) -> Result<(), End> {
        if self.route.is_some() {
            Ok(())
        } else {
            Err(End::close(CloseReason::ProtocolViolation, None))
        }
    }

    /// The account a route names; the last one is remembered, since a peer sends runs
    /// of protocol in one account.
    fn account(&mut self, name: &[u8]) -> Option<Arc<Account>> {
        if let Some(a) = &self.last_account {
            if a.name_bytes() == name {
                return Some(a.clone());
            }
        }
        let a = self.server.accounts.get_bytes(name)?;
        self.last_account = Some(a.clone());
        Some(a)
    }

    /// `RS+`: add or re-weigh this route's subscription. Interest in an account this
    /// server does not have is ignored, as nats-server does.
    fn remote_sub(&mut self, account: &[u8], subject: &[u8], queue: Option<&[u8]>, weight: u32) {
        let Some(acc) = self.account(account) else {
            tracing::debug!(
                "{} - rid:{} - Unknown account {:?} for subject {:?}",
                self.conn.addr,
                self.conn.cid,
                String::from_utf8_lossy(account),
                String::from_utf8_lossy(subject)
            );
            return;
        };
        let key = interest_key(account, subject, queue);
        let mut subs = self.conn.subs.lock();
        if let Some(existing) = subs.get(&key) {
            existing.weight.store(weight, Ordering::Relaxed);
            // Weight is read at delivery time; no sublist change needed.
            return;
        }
        let sub = Arc::new(Subscription::new(
            self.conn.clone(),
            acc.clone(),
            subject,
            queue,
            b"",
        ));
        sub.weight.store(weight, Ordering::Relaxed);
        if acc
            .sublist
            .insert(subject, queue, SubRef(sub.clone()))
            .is_ok()
        {
            subs.insert(key, sub);
        }
    }

    fn remote_unsub(&mut self, account: &[u8], subject: &[u8], queue: Option<&[u8]>) {
        let removed = self
            .conn
            .subs
            .lock()
            .remove(&interest_key(account, subject, queue));
        if let Some(s) = removed {
            let _ = s
                .account
                .sublist
                .remove(&s.subject, s.queue.as_deref(), &SubRef(s.clone()));
        }
    }

    fn process_connect(&mut self, json: &[u8]) -> Result<(), End> {
        let Ok(c) = serde_json::from_slice::<RouteConnect>(json) else {
            return Err(End::close(CloseReason::ProtocolViolation, None));
        };
        if c.lang.as_deref().is_some_and(|l| !l.is_empty()) {
            return Err(End::close(
                CloseReason::ProtocolViolation,
                Some("attempted to connect to route port".into()),
            ));
        }
        if let Some(gw) = &c.gateway {
            return Err(End::close(
                CloseReason::ProtocolViolation,
                Some(format!(
                    "Rejecting connection from gateway \"{gw}\" on the Route port"
                )),
            ));
        }
        self.check_cluster_name(&c.cluster, c.cluster_dynamic)?;
        let cfg = self.server.config();
        let auth = &cfg.cluster.authorization;
        if auth.required() && !crate::auth::check_route(auth, c.user.as_deref(), c.pass.as_deref())
        {
            tracing::error!(
                "{} - rid:{} - authentication error",
                self.conn.addr,
                self.conn.cid
            );
            return Err(End::close(
                CloseReason::AuthenticationViolation,
                Some("Authorization Violation".into()),
            ));
        }
        self.connected = true;
        Ok(())
    }

    fn check_cluster_name(&self, theirs: &str, theirs_dynamic: bool) -> Result<(), End> {
        let ours = self.server.routes.cluster_name();
        if theirs.is_empty() || theirs == ours {
            return Ok(());
        }
        if self.server.routes.name_is_dynamic() && !theirs_dynamic {
            self.server.routes.adopt_name(theirs);
            return Ok(());
        }
        if theirs_dynamic {
            // They will adopt ours.
            return Ok(());
        }
        tracing::error!(
            "Rejecting connection, cluster name \"{theirs}\" does not match \"{ours}\""
        );
        Err(End::close(
            CloseReason::ClusterNameConflict,
            Some(format!(
                "Rejecting connection, cluster name \"{theirs}\" does not match \"{ours}\""
            )),
        ))
    }

    fn process_info(&mut self, json: &[u8]) -> Result<(), End> {
        let Ok(info) = serde_json::from_slice::<ServerInfo>(json) else {
            return Err(End::close(CloseReason::ProtocolViolation, None));
        };
        if let Some(route) = &self.route {
            if info.server_id != route.remote_id {
                // Gossip about a third server: dial it if we do not know it yet.
                if !info.ip.is_empty() {
                    super::dialer::dial_implicit(&self.server, &info);
                }
                return Ok(());
            }
            let ldm_changed = {
                let mut cur = route.info.lock();
                let changed = cur.ldm != info.ldm
                    || cur.connect_urls != info.connect_urls
                    || cur.ws_connect_urls != info.ws_connect_urls;
                *cur = info;
                changed
            };
            if ldm_changed {
                self.server.cluster_urls_changed();
            }
            return Ok(());
        }
        if info.server_id == self.server.server_id {
            tracing::debug!("Detected route to self, ignoring \"{}\"", self.conn.addr);
            return Err(End {
                reason: CloseReason::DuplicateRoute,
                err: None,
                to_self: true,
                duplicate_of: None,
            });
        }
        if self.server.routes.is_removed(info.tern_node_id) {
            // `tern cluster remove`: this peer is out of the cluster (members.rs).
            tracing::info!("Refusing route from removed node {}", info.tern_node_id);
            return Err(End::close(CloseReason::RouteRemoved, None));
        }
        if info.server_name == self.server.server_name {
            tracing::error!(
                "Remote server has a duplicate name: \"{}\"",
                info.server_name
            );
            return Err(End::close(CloseReason::DuplicateServerName, None));
        }
        if matches!(self.side, Side::Solicited { .. }) {
            self.check_cluster_name(&info.cluster, info.cluster_dynamic)?;
        } else if !self.connected {
            // An INFO before CONNECT on an accepted connection: not a route.
            return Err(End::close(CloseReason::ProtocolViolation, None));
        }
        let (solicited, configured) = match &self.side {
            Side::Solicited { configured, .. } => (true, *configured),
            Side::Accepted => (false, false),
        };
        let host = if info.host.is_empty() || info.host == "0.0.0.0" || info.host == "::" {
            self.conn.addr.ip().to_string()
        } else {
            info.host.clone()
        };
        let url = format!(
            "nats-route://{}/",
            crate::server::fmt_host_port(&host, info.port)
        );
        self.conn.headers.store(info.headers, Ordering::Relaxed);
        let route = Arc::new(Route {
            conn: self.conn.clone(),
            remote_id: info.server_id.clone(),
            remote_name: info.server_name.clone(),
            solicited,
            configured,
            info: parking_lot::Mutex::new(info.clone()),
            url: url.clone(),
            retry: std::sync::atomic::AtomicBool::new(false),
        });
        match self.server.routes.register(route.clone()) {
            Ok(()) => {}
            Err(RegisterError::Duplicate) => {
                tracing::debug!(
                    "{} - rid:{} - Detected duplicate remote route \"{}\"",
                    self.conn.addr,
                    self.conn.cid,
                    info.server_id
                );
                let mut end = End::close(CloseReason::DuplicateRoute, None);
                end.duplicate_of = Some(info.server_id);
                return Err(end);
            }
        }
        self.connected = true;
        self.route = Some(route);
        tracing::info!(
            "{} - rid:{} - Route connection to \"{}\" ({}) registered",
            self.conn.addr,
            self.conn.cid,
            info.server_name,
            info.server_id
        );
        // Tell the others about the new peer so they dial it (full mesh from one seed).
        let mut gossip = info;
        gossip.nonce.clear();
        gossip.ip = url;
        let mut line = b"INFO ".to_vec();
        line.extend_from_slice(&serde_json::to_vec(&gossip).unwrap_or_default());
        line.extend_from_slice(b"\r\n");
        self.server.routes.send_to_others(&gossip.server_id, &line);
        self.server.cluster_urls_changed();
        Ok(())
    }

    async fn finish(
        &mut self,
        end: End,
        writer: tokio::task::JoinHandle<Option<CloseReason>>,
    ) -> RouteEnd {
        if let Some(text) = &end.err {
            let mut b = Vec::new();
            encode::write_err(&mut b, text);
            self.conn.out.push(&b);
        }
        self.conn.out.close(true);
        crate::telemetry::route_closed(&self.server, &self.conn, self.route.as_deref(), end.reason);
        if let Some(route) = self.route.take() {
            let was_registered = self.server.routes.unregister(&route);
            // Every remote subscription of this route goes at once.
            let subs: Vec<Arc<Subscription>> =
                self.conn.subs.lock().drain().map(|(_, s)| s).collect();
            let refs: Vec<SubRef> = subs.iter().map(|s| SubRef(s.clone())).collect();
            // One batch per account (nearly always one or a few).
            let mut accounts: Vec<Arc<Account>> = Vec::new();
            for s in &subs {
                if !accounts.iter().any(|a| Arc::ptr_eq(a, &s.account)) {
                    accounts.push(s.account.clone());
                }
            }
            for acc in &accounts {
                acc.sublist.remove_batch(
                    subs.iter()
                        .zip(&refs)
                        .filter(|(s, _)| Arc::ptr_eq(&s.account, acc))
                        .map(|(s, r)| (&s.subject[..], s.queue.as_deref(), r)),
                );
            }
            if was_registered {
                tracing::info!(
                    "{} - rid:{} - Route connection to \"{}\" closed: {}",
                    self.conn.addr,
                    self.conn.cid,
                    route.remote_name,
                    end.reason
                );
                self.server.cluster_urls_changed();
                let shutting_down = *self.server.shutdown_rx().borrow();
                let redialed_by_loop = route.configured && route.solicited;
                if route.retry.load(Ordering::Acquire) && !shutting_down && !redialed_by_loop {
                    super::dialer::redial(&self.server, &route.remote_id, &route.url);
                }
            }
        } else if !end.to_self && end.duplicate_of.is_none() {
            // Refused before registration (authentication, cluster name...): the
            // line nats-server writes, so operators see why a peer never joined.
            tracing::info!(
                "{} - rid:{} - Router connection closed: {}",
                self.conn.addr,
                self.conn.cid,
                end.reason
            );
        }
        let mut writer = writer;
        if tokio::time::timeout(Duration::from_secs(2), &mut writer)
            .await
            .is_err()
        {
            writer.abort();
        }
        if end.to_self {
            RouteEnd::ToSelf
        } else if let Some(id) = end.duplicate_of {
            RouteEnd::Duplicate(id)
        } else {
            RouteEnd::Closed(end.reason)
        }
    }
}

fn parse_end(e: ParseError) -> End {
    match e {
        ParseError::UnknownOp => End::close(
            CloseReason::ParseError,
            Some("Unknown Protocol Operation".into()),
        ),
        ParseError::MaxControlLine => End::close(
            CloseReason::MaxControlLineExceeded,
            Some("maximum control line exceeded".into()),
        ),
        ParseError::MaxPayload | ParseError::BadArgs => {
            End::close(CloseReason::ProtocolViolation, None)
        }
    }
}

/// Key of a remote subscription in the route's map: `account subject[ queue]`.
fn interest_key(account: &[u8], subject: &[u8], queue: Option<&[u8]>) -> Box<[u8]> {
    let q = queue.unwrap_or_default();
    let mut k = Vec::with_capacity(account.len() + subject.len() + q.len() + 2);
    k.extend_from_slice(account);
    k.push(b' ');
    k.extend_from_slice(subject);
    if queue.is_some() {
        k.push(b' ');
        k.extend_from_slice(q);
    }
    k.into()
}
