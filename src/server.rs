//! `Server::start(Config)`: shared state, listeners, tasks and shutdown.
//!
//! Wiring only: behaviour lives in client.rs (per connection), dispatch.rs (per
//! message) and monitor.rs (HTTP). Other crates and the tests embed tern through this.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use dashmap::DashMap;
use parking_lot::{Mutex, RwLock};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::client::{self, Client, SubRef};
use crate::config::{defaults, Config};
use crate::error::{CloseReason, StartError};
use crate::net::Security;
use crate::protocol::info::ServerInfo;
use crate::sublist::Sublist;

/// The nats-server version tern speaks the protocol of. Clients gate features on the
/// INFO `version` (nats.py insists on semver, nats.go/nats.js unlock features >= 2.10).
pub const NATS_COMPAT_VERSION: &str = "2.15.1";

/// Server-wide counters. Message counters are summed from connections on demand
/// (no shared cache line touched per message); these are the rare events.
#[derive(Debug, Default)]
pub struct Stats {
    pub total_connections: AtomicU64,
    pub slow_consumers: AtomicU64,
    pub stale_connections: AtomicU64,
    pub stalled_clients: AtomicU64,
    /// Message counters of connections that already closed.
    pub closed_in_msgs: AtomicU64,
    pub closed_in_bytes: AtomicU64,
    pub closed_out_msgs: AtomicU64,
    pub closed_out_bytes: AtomicU64,
}

/// A closed connection as kept for `/connz?state=closed`.
#[derive(Debug, Clone)]
pub struct ClosedConn {
    pub cid: u64,
    pub addr: SocketAddr,
    pub start: SystemTime,
    pub stop: SystemTime,
    pub reason: CloseReason,
    pub name: String,
    pub lang: String,
    pub version: String,
    pub in_msgs: u64,
    pub in_bytes: u64,
    pub out_msgs: u64,
    pub out_bytes: u64,
    pub subscriptions: usize,
}

impl ClosedConn {
    pub fn from_client(c: &Client, reason: CloseReason, subscriptions: usize) -> Self {
        let meta = c.meta.lock().clone();
        let (out_msgs, out_bytes) = c.out.counters();
        ClosedConn {
            cid: c.cid,
            addr: c.addr,
            start: c.start,
            stop: SystemTime::now(),
            reason,
            name: meta.name,
            lang: meta.lang,
            version: meta.version,
            in_msgs: c.in_msgs.load(Ordering::Relaxed),
            in_bytes: c.in_bytes.load(Ordering::Relaxed),
            out_msgs,
            out_bytes,
            subscriptions,
        }
    }
}

/// State shared by every task of one server.
pub struct ServerShared {
    /// Replaced whole on reload; readers take an `Arc` and refresh when
    /// `config_generation` moves (once per read batch, not per message).
    config: RwLock<Arc<Config>>,
    config_generation: AtomicU64,
    pub server_id: String,
    pub server_name: String,
    pub start: SystemTime,
    pub sublist: Sublist<SubRef>,
    pub clients: DashMap<u64, Arc<Client>>,
    pub next_cid: AtomicU64,
    pub stats: Stats,
    pub closed: Mutex<VecDeque<ClosedConn>>,
    /// INFO template; per-connection fields are filled in a copy.
    info: RwLock<ServerInfo>,
    lame_duck: AtomicBool,
    shutdown: watch::Sender<bool>,
    pub http_requests: DashMap<String, u64>,
    /// Authenticator and TLS acceptor for new connections; replaced on reload.
    security: RwLock<Arc<Security>>,
}

impl ServerShared {
    pub fn config(&self) -> Arc<Config> {
        self.config.read().clone()
    }

    pub fn config_generation(&self) -> u64 {
        self.config_generation.load(Ordering::Acquire)
    }

    /// Installs a reloaded configuration (the caller has validated it and kept the
    /// settings that cannot change at run time).
    pub fn set_config(&self, c: Config) {
        *self.config.write() = Arc::new(c);
        self.config_generation.fetch_add(1, Ordering::AcqRel);
    }

    pub fn security(&self) -> Arc<Security> {
        self.security.read().clone()
    }

    /// Installs reloaded users, permissions and certificates (new connections use them).
    pub fn set_security(&self, s: Security) {
        *self.security.write() = Arc::new(s);
    }

    pub fn shutdown_rx(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    pub fn is_lame_duck(&self) -> bool {
        self.lame_duck.load(Ordering::Acquire)
    }

    pub fn info(&self) -> ServerInfo {
        self.info.read().clone()
    }

    /// The INFO line sent on accept; `nonce` is empty unless nkey users are configured.
    pub fn client_info_line(&self, cid: u64, addr: &SocketAddr, nonce: &str) -> Vec<u8> {
        let mut info = self.info();
        info.client_id = cid;
        info.client_ip = addr.ip().to_string();
        info.nonce = nonce.to_string();
        info.to_line()
    }

    /// The async INFO sent after the first PONG to a protocol-1 client.
    pub fn connect_info_line(&self, cid: u64, addr: &SocketAddr) -> Vec<u8> {
        let mut info = self.info();
        info.client_id = cid;
        info.client_ip = addr.ip().to_string();
        info.connect_info = true;
        info.remote_account = "$G".into();
        info.to_line()
    }

    pub fn record_closed(&self, c: ClosedConn) {
        let s = &self.stats;
        s.closed_in_msgs.fetch_add(c.in_msgs, Ordering::Relaxed);
        s.closed_in_bytes.fetch_add(c.in_bytes, Ordering::Relaxed);
        s.closed_out_msgs.fetch_add(c.out_msgs, Ordering::Relaxed);
        s.closed_out_bytes.fetch_add(c.out_bytes, Ordering::Relaxed);
        let mut closed = self.closed.lock();
        if closed.len() >= defaults::MAX_CLOSED_CLIENTS {
            closed.pop_front();
        }
        closed.push_back(c);
    }

    /// (in_msgs, in_bytes, out_msgs, out_bytes) over live and closed connections.
    pub fn message_totals(&self) -> (u64, u64, u64, u64) {
        let s = &self.stats;
        let mut t = (
            s.closed_in_msgs.load(Ordering::Relaxed),
            s.closed_in_bytes.load(Ordering::Relaxed),
            s.closed_out_msgs.load(Ordering::Relaxed),
            s.closed_out_bytes.load(Ordering::Relaxed),
        );
        for c in self.clients.iter() {
            let (om, ob) = c.out.counters();
            t.0 += c.in_msgs.load(Ordering::Relaxed);
            t.1 += c.in_bytes.load(Ordering::Relaxed);
            t.2 += om;
            t.3 += ob;
        }
        t
    }

    /// Lame duck mode: stop accepting, tell clients (`ldm: true`), then close them
    /// spread over lame_duck_duration after the grace period, as nats-server does.
    pub async fn enter_lame_duck(self: &Arc<Self>) {
        if self.lame_duck.swap(true, Ordering::AcqRel) {
            return;
        }
        tracing::info!("Entering lame duck mode, stop accepting new clients");
        let line = {
            let mut info = self.info.write();
            info.ldm = true;
            info.clone()
        };
        let clients: Vec<Arc<Client>> = self.clients.iter().map(|c| c.value().clone()).collect();
        for c in &clients {
            let mut i = line.clone();
            i.client_id = c.cid;
            i.client_ip = c.addr.ip().to_string();
            c.out.push(&i.to_line());
            c.out.kick();
        }
        let cfg = self.config();
        let grace = cfg.lame_duck_grace_period;
        let duration = cfg.lame_duck_duration.saturating_sub(grace);
        tracing::info!("Closing existing clients after {:?} grace period", grace);
        tokio::time::sleep(grace).await;
        let n = clients.len().max(1) as u32;
        let step = (duration / n).min(Duration::from_secs(1));
        for c in clients {
            c.close_from_server(CloseReason::ServerShutdown);
            if !step.is_zero() {
                tokio::time::sleep(step).await;
            }
        }
        let _ = self.shutdown.send(true);
    }

    /// Stops accepting and closes every connection.
    pub fn shutdown(&self) {
        let _ = self.shutdown.send(true);
    }
}

/// A running server.
pub struct ServerHandle {
    pub shared: Arc<ServerShared>,
    client_addr: SocketAddr,
    monitor_addr: Option<SocketAddr>,
    tasks: Vec<JoinHandle<()>>,
}

impl ServerHandle {
    pub fn client_addr(&self) -> SocketAddr {
        self.client_addr
    }

    pub fn monitor_addr(&self) -> Option<SocketAddr> {
        self.monitor_addr
    }

    /// Resolves when the server has shut down (signal, lame duck or `shutdown`).
    pub async fn wait(&self) {
        let mut rx = self.shared.shutdown_rx();
        while !*rx.borrow_and_update() {
            if rx.changed().await.is_err() {
                break;
            }
        }
    }

    /// Shuts down and waits until every client connection has been closed.
    pub async fn shutdown(self) {
        self.shared.shutdown();
        for t in self.tasks {
            let _ = t.await;
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while !self.shared.clients.is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// The embeddable server.
pub struct Server;

impl Server {
    /// Binds the listeners and starts serving. Logs nats-server's startup lines.
    pub async fn start(config: Config) -> Result<ServerHandle, StartError> {
        let kp = nkeys::KeyPair::new_server();
        let server_id = kp.public_key();
        let server_name = config
            .server_name
            .clone()
            .unwrap_or_else(|| server_id.clone());

        tracing::info!("Starting nats-server");
        tracing::info!(
            "  Version:  {} (tern {})",
            NATS_COMPAT_VERSION,
            env!("CARGO_PKG_VERSION")
        );
        tracing::info!("  Name:     {}", server_name);
        tracing::info!("  ID:       {}", server_id);
        if let Some(f) = &config.config_file {
            tracing::info!("Using configuration file: {}", f.display());
        }
        if config.jetstream {
            tracing::warn!("JetStream is not supported by tern yet; continuing without it");
        }

        let port = if config.port < 0 {
            0
        } else {
            config.port as u16
        };
        let addr = format!("{}:{}", config.host, port);
        let listener = bind(&config.host, port).await?;
        let client_addr = listener.local_addr()?;

        let security = Security::build(&config).map_err(StartError::Config)?;
        let tls = security
            .tls
            .as_ref()
            .map(|t| (t.allow_non_tls, t.cfg.verify_clients()));
        let (shutdown, _) = watch::channel(false);
        let info = ServerInfo {
            server_id: server_id.clone(),
            server_name: server_name.clone(),
            version: NATS_COMPAT_VERSION.into(),
            proto: 1,
            go: format!("tern{}", env!("CARGO_PKG_VERSION")),
            host: config.host.clone(),
            port: client_addr.port(),
            headers: !config.no_header_support,
            auth_required: security.auth.required(),
            tls_required: tls.is_some_and(|(optional, _)| !optional),
            tls_available: tls.is_some_and(|(optional, _)| optional),
            tls_verify: tls.is_some_and(|(_, verify)| verify),
            max_payload: config.max_payload,
            ..Default::default()
        };
        let shared = Arc::new(ServerShared {
            server_id,
            server_name,
            start: SystemTime::now(),
            sublist: Sublist::new(),
            clients: DashMap::new(),
            next_cid: AtomicU64::new(1),
            stats: Stats::default(),
            closed: Mutex::new(VecDeque::new()),
            info: RwLock::new(info),
            lame_duck: AtomicBool::new(false),
            shutdown,
            http_requests: DashMap::new(),
            config: RwLock::new(Arc::new(config)),
            config_generation: AtomicU64::new(0),
            security: RwLock::new(Arc::new(security)),
        });

        let mut tasks = Vec::new();
        let mut monitor_addr = None;
        if let Some(mport) = shared.config().http_port {
            let cfg = shared.config();
            let host = cfg.http_host.clone().unwrap_or_else(|| cfg.host.clone());
            let mport = if mport < 0 { 0 } else { mport as u16 };
            let ml = bind(&host, mport).await?;
            let maddr = ml.local_addr()?;
            tracing::info!(
                "Starting http monitor on {}",
                fmt_host_port(&host, maddr.port())
            );
            monitor_addr = Some(maddr);
            tasks.push(tokio::spawn(crate::monitor::serve(shared.clone(), ml)));
        }

        tracing::info!(
            "Listening for client connections on {}",
            fmt_host_port(&shared.config().host, client_addr.port())
        );
        let _ = addr;
        if let Some(t) = &shared.security().tls {
            tracing::info!("TLS required for client connections");
            if t.cfg.handshake_first && t.cfg.handshake_first_fallback.is_none() {
                tracing::warn!(
                    "Clients that are not using \"TLS Handshake First\" option will fail to connect"
                );
            }
        }
        tasks.push(tokio::spawn(accept_loop(shared.clone(), listener)));
        tracing::info!("Server is ready");
        Ok(ServerHandle {
            shared,
            client_addr,
            monitor_addr,
            tasks,
        })
    }
}

/// `host:port`, with brackets for IPv6 as Go's net.JoinHostPort writes it.
pub fn fmt_host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

async fn bind(host: &str, port: u16) -> Result<TcpListener, StartError> {
    let display = fmt_host_port(host, port);
    let to_err = |source| StartError::Listen {
        addr: display.clone(),
        source,
    };
    let ip: std::net::IpAddr = match host.parse() {
        Ok(ip) => ip,
        Err(_) => {
            let resolved = tokio::net::lookup_host((host, port))
                .await
                .map_err(to_err)?
                .next()
                .ok_or_else(|| to_err(std::io::Error::other("no address")))?;
            resolved.ip()
        }
    };
    let sa = SocketAddr::new(ip, port);
    // SO_REUSEADDR so a restarted server can rebind at once (client harnesses do that).
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(sa),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )
    .map_err(to_err)?;
    socket.set_reuse_address(true).map_err(to_err)?;
    if sa.is_ipv6() {
        let _ = socket.set_only_v6(false);
    }
    socket.bind(&sa.into()).map_err(to_err)?;
    socket.listen(1024).map_err(to_err)?;
    socket.set_nonblocking(true).map_err(to_err)?;
    TcpListener::from_std(socket.into()).map_err(to_err)
}

async fn accept_loop(shared: Arc<ServerShared>, listener: TcpListener) {
    let mut shutdown = shared.shutdown_rx();
    let mut backoff = Duration::from_millis(10);
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            r = listener.accept() => match r {
                Ok((stream, addr)) => {
                    backoff = Duration::from_millis(10);
                    if shared.is_lame_duck() {
                        drop(stream);
                        continue;
                    }
                    tokio::spawn(client::serve(shared.clone(), stream, addr));
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::error!("Temporary Client Accept Error ({e}), sleeping {}ms", backoff.as_millis());
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
            }
        }
    }
    // Close every client: they watch the same shutdown channel.
    for c in shared.clients.iter() {
        c.close_from_server(CloseReason::ServerShutdown);
    }
}
