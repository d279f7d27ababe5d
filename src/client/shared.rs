//! The shared side of a client (or route) connection: what publishers on other
//! connections touch to deliver here (`Client`, `Subscription`), and the writer tasks.
//! The read loop that owns the rest lives in `client/mod.rs`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::account::{Account, StreamMap};
use crate::auth::permissions::HookSlot;
use crate::conn::outbound::Outbound;
use crate::error::CloseReason;
use crate::server::ServerShared;

/// A subscription as stored in the sublist: who gets the message and under which sid.
#[derive(Debug)]
pub struct Subscription {
    pub client: Arc<Client>,
    pub subject: Box<[u8]>,
    pub queue: Option<Box<[u8]>>,
    pub sid: Box<[u8]>,
    /// Auto-unsubscribe limit (`UNSUB <sid> <max>`); 0 = none.
    pub max: AtomicU64,
    /// Messages delivered so far (/connz subs=detail `msgs`; the limit check).
    pub delivered: AtomicU64,
    /// Queue weight: 1 for a local member; for remote interest (`RS+ ... <queue> <n>`)
    /// the number of members the peer has, used in cluster-wide queue selection.
    pub weight: AtomicU32,
    /// The account whose sublist holds it.
    pub account: Arc<Account>,
    /// Set on a stream import's shadow subscription: how the exporter's subjects map
    /// into the subscriber's account.
    pub import: Option<Arc<StreamMap>>,
    /// Shadow subscriptions in exporting accounts that came with this one.
    pub shadows: Vec<Arc<Subscription>>,
}

impl Subscription {
    /// A fresh subscription of `client` (weight 1, no limit).
    pub fn new(
        client: Arc<Client>,
        account: Arc<Account>,
        subject: &[u8],
        queue: Option<&[u8]>,
        sid: &[u8],
    ) -> Self {
        Subscription {
            client,
            account,
            import: None,
            shadows: Vec::new(),
            subject: subject.into(),
            queue: queue.map(Into::into),
            sid: sid.into(),
            max: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            weight: AtomicU32::new(1),
        }
    }
}

/// What is on the other end of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnKind {
    Client,
    Route,
}

/// Sublist handle with pointer identity, so removing one subscription never removes
/// another that looks the same.
#[derive(Debug, Clone)]
pub struct SubRef(pub Arc<Subscription>);

impl PartialEq for SubRef {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// Descriptive fields shown in /connz.
#[derive(Debug, Clone, Default)]
pub struct ConnMeta {
    pub name: String,
    pub lang: String,
    pub version: String,
    pub user: String,
    /// nats-server's log prefix after CONNECT (`"v1.2:go:name" - "$G/user:u" - `);
    /// empty before it.
    pub log_tag: String,
    pub rtt: Option<Duration>,
    /// The account bound at CONNECT (counted in its `num_connections` until close).
    pub account: Option<Arc<Account>>,
    /// The TLS session, for /connz and /routez; `None` on plain connections.
    pub tls: Option<TlsSession>,
}

/// What monitoring shows of a connection's TLS session.
#[derive(Debug, Clone, Default)]
pub struct TlsSession {
    /// "1.3" or "1.2", as nats-server prints it.
    pub version: String,
    /// IANA name (`TLS_AES_128_GCM_SHA256`).
    pub cipher: String,
    /// The peer's certificate chain (/connz `tls_peer_certs` with `auth=1`).
    pub peer_certs: Vec<PeerCert>,
    /// The handshake came before INFO (`handshake_first`).
    pub first: bool,
}

/// One entry of /connz `tls_peer_certs` (nats-server's TLSPeerCert).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct PeerCert {
    pub subject: String,
    pub subject_pk_sha256: String,
    pub cert_sha256: String,
}

/// nats-server's prefix of a connection's log lines: `ADDR - cid:N - ` and, after
/// CONNECT, the client and user tag (`"v1.2:go:name" - "$G/user:u" - `).
pub struct LogPrefix<'a> {
    pub addr: SocketAddr,
    pub cid: u64,
    pub tag: &'a str,
}

impl std::fmt::Display for LogPrefix<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} - cid:{} - {}", self.addr, self.cid, self.tag)
    }
}

/// The part of a client connection other connections touch.
#[derive(Debug)]
pub struct Client {
    pub cid: u64,
    pub kind: ConnKind,
    pub addr: SocketAddr,
    pub start: SystemTime,
    pub out: Outbound,
    /// Wakes the read loop when someone else decides this connection must close.
    kill: Notify,
    close_reason: Mutex<Option<CloseReason>>,
    /// Set with a wake-up on `kill` (no close reason) when a reload changed
    /// authorization: the read loop checks its user and permissions again.
    recheck_auth: AtomicBool,
    /// Whether this client accepts HMSG; other publishers strip headers otherwise.
    pub headers: AtomicBool,
    pub in_msgs: AtomicU64,
    pub in_bytes: AtomicU64,
    /// Unix nanos of the last PUB/SUB/UNSUB or delivery (nats-server's `c.last`, /connz
    /// last_activity and idle). Stored once per read batch by the connection's own read
    /// loop and by each publisher that delivered to it, never per message.
    pub last_activity: AtomicU64,
    /// sid -> subscription.
    pub subs: Mutex<HashMap<Box<[u8]>, Arc<Subscription>>>,
    pub meta: Mutex<ConnMeta>,
    /// Set once a protocol-1 client has had its first PONG: from then on it may be
    /// sent async INFO (cluster URL changes, lame duck).
    pub async_info: AtomicBool,
    /// Delivery-time permission checks (deny filter, allow_responses); empty for users
    /// without permissions.
    pub perm_hook: HookSlot,
    /// A websocket client (INFO fields, /connz `type`); set before the client is shared.
    pub websocket: bool,
}

impl Client {
    pub fn new(cid: u64, addr: SocketAddr, max_pending: usize) -> Self {
        Self::with_kind(cid, addr, max_pending, ConnKind::Client)
    }

    pub fn with_kind(cid: u64, addr: SocketAddr, max_pending: usize, kind: ConnKind) -> Self {
        Client {
            cid,
            kind,
            async_info: AtomicBool::new(false),
            addr,
            start: SystemTime::now(),
            out: Outbound::new(max_pending),
            kill: Notify::new(),
            close_reason: Mutex::new(None),
            recheck_auth: AtomicBool::new(false),
            headers: AtomicBool::new(false),
            in_msgs: AtomicU64::new(0),
            in_bytes: AtomicU64::new(0),
            last_activity: AtomicU64::new(unix_nanos(SystemTime::now())),
            subs: Mutex::new(HashMap::new()),
            meta: Mutex::new(ConnMeta::default()),
            perm_hook: HookSlot::default(),
            websocket: false,
        }
    }

    /// Records why the connection closes; the first reason wins.
    pub(crate) fn set_close_reason(&self, r: CloseReason) -> bool {
        let mut g = self.close_reason.lock();
        if g.is_none() {
            *g = Some(r);
            true
        } else {
            false
        }
    }

    /// Resolves when someone else decided this connection must close.
    pub async fn wait_killed(&self) {
        self.kill.notified().await
    }

    pub fn close_reason(&self) -> Option<CloseReason> {
        *self.close_reason.lock()
    }

    /// When the client last published or changed its interest (for /connz).
    pub fn last_activity(&self) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_nanos(self.last_activity.load(Ordering::Relaxed))
    }

    /// The log prefix with `tag` (the read loop's own copy, or `meta.log_tag`).
    pub fn prefix<'a>(&self, tag: &'a str) -> LogPrefix<'a> {
        LogPrefix {
            addr: self.addr,
            cid: self.cid,
            tag,
        }
    }

    /// A reload changed authorization: wake the read loop to check this client again.
    pub fn request_auth_recheck(&self) {
        self.recheck_auth.store(true, Ordering::Release);
        self.kill.notify_one();
    }

    /// Whether a re-check was asked for since the last call.
    pub(crate) fn take_auth_recheck(&self) -> bool {
        self.recheck_auth.swap(false, Ordering::AcqRel)
    }

    /// Closes from outside the read loop (server shutdown, lame duck).
    pub fn close_from_server(&self, reason: CloseReason) {
        if self.set_close_reason(reason) {
            self.out.close(true);
            self.kill.notify_one();
        }
    }

    /// /varz `slow_consumers`, and `slow_consumer_stats.routes` for a route.
    fn count_slow_consumer(&self, server: &ServerShared) {
        server.stats.slow_consumers.fetch_add(1, Ordering::Relaxed);
        if self.kind == ConnKind::Route {
            server
                .stats
                .slow_consumer_routes
                .fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Called by a publisher whose delivery would pass max_pending: close without
    /// flushing and without -ERR, as nats-server does.
    pub fn slow_consumer(&self, server: &ServerShared) {
        if self.set_close_reason(CloseReason::SlowConsumerPendingBytes) {
            self.count_slow_consumer(server);
            tracing::info!(
                "{}Slow Consumer Detected: MaxPending of {} Exceeded",
                self.prefix(&self.meta.lock().log_tag),
                server.config().max_pending
            );
            self.out.close(false);
            self.kill.notify_one();
        }
    }

    /// The write loop stopped on an error or the write deadline.
    pub fn writer_failed(&self, server: &ServerShared, reason: CloseReason, deadline: Duration) {
        if !self.set_close_reason(reason) {
            return;
        }
        if reason == CloseReason::SlowConsumerWriteDeadline {
            self.count_slow_consumer(server);
            tracing::info!(
                "{}Slow Consumer Detected: WriteDeadline of {:?} exceeded",
                self.prefix(&self.meta.lock().log_tag),
                deadline
            );
        }
        self.out.close(false);
        self.kill.notify_one();
    }

    /// Auto-unsubscribe reached its limit.
    pub fn remove_sub_by_limit(&self, server: &ServerShared, sub: &Subscription) {
        let removed = {
            let mut subs = self.subs.lock();
            match subs.get(&sub.sid) {
                Some(s) if std::ptr::eq(Arc::as_ptr(s), sub) => subs.remove(&sub.sid),
                _ => None,
            }
        };
        if let Some(s) = removed {
            remove_local_sub(server, &s);
        }
    }
}

/// Nanoseconds since the Unix epoch (0 for a clock before 1970).
pub fn unix_nanos(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Starts the connection's write loop. A write that fails or passes write_deadline
/// closes the connection (and is counted as a slow consumer for the deadline).
pub fn spawn_writer<W>(
    server: &Arc<ServerShared>,
    conn: &Arc<Client>,
    w: W,
    deadline: Duration,
) -> tokio::task::JoinHandle<Option<CloseReason>>
where
    W: tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let server = server.clone();
    let conn = conn.clone();
    tokio::spawn(async move {
        let r = conn.out.write_loop(w, deadline).await;
        if let Some(reason) = r {
            conn.writer_failed(&server, reason, deadline);
        }
        r
    })
}

/// [`spawn_writer`] for a plain TCP connection: flushes write the socket directly.
pub fn spawn_tcp_writer(
    server: &Arc<ServerShared>,
    conn: &Arc<Client>,
    w: tokio::net::tcp::OwnedWriteHalf,
    deadline: Duration,
) -> tokio::task::JoinHandle<Option<CloseReason>> {
    let server = server.clone();
    let conn = conn.clone();
    tokio::spawn(async move {
        let r = conn.out.write_loop_tcp(w, deadline).await;
        if let Some(reason) = r {
            conn.writer_failed(&server, reason, deadline);
        }
        r
    })
}

/// Takes a client's subscription out of the sublist and, if it was there, out of
/// the interest told to routes (UNSUB, auto-unsubscribe limit, close).
pub(crate) fn remove_local_sub(server: &ServerShared, s: &Arc<Subscription>) {
    for sub in std::iter::once(s).chain(&s.shadows) {
        if sub
            .account
            .sublist
            .remove(&sub.subject, sub.queue.as_deref(), &SubRef(sub.clone()))
            .is_ok()
        {
            server.routes.local_interest_removed(
                sub.account.name_bytes(),
                &sub.subject,
                sub.queue.as_deref(),
            );
        }
    }
}
