//! `Server::start(Config)`: shared state, listeners, tasks and shutdown.
//!
//! Wiring only: behaviour lives in client.rs (per connection), dispatch.rs (per
//! message) and monitor/ (HTTP). Other crates and the tests embed tern through this.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use dashmap::DashMap;
use parking_lot::{Mutex, RwLock};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::account::{Account, Accounts};
use crate::client::Client;
use crate::config::{defaults, Config};
use crate::error::{CloseReason, StartError};
use crate::net::Security;
use crate::protocol::info::ServerInfo;
use crate::route::RouteState;

mod closed;
mod listen;

pub use closed::{ClosedConn, ClosedSub};
pub use listen::fmt_host_port;
use listen::{accept_loop, own_client_urls};
pub(crate) use listen::{bind, own_client_urls_for};

/// The nats-server version tern speaks the protocol of. Clients gate features on the
/// INFO `version` (nats.py insists on semver, nats.go/nats.js unlock features >= 2.10).
pub const NATS_COMPAT_VERSION: &str = "2.15.1";

/// Server-wide counters. Message counters are summed from connections on demand
/// (no shared cache line touched per message); these are the rare events.
#[derive(Debug, Default)]
pub struct Stats {
    pub total_connections: AtomicU64,
    /// All kinds; the route share is also counted on its own (`*_stats.routes`).
    pub slow_consumers: AtomicU64,
    pub stale_connections: AtomicU64,
    pub slow_consumer_routes: AtomicU64,
    pub stale_routes: AtomicU64,
    pub stalled_clients: AtomicU64,
    /// Message counters of connections that already closed.
    pub closed_in_msgs: AtomicU64,
    pub closed_in_bytes: AtomicU64,
    pub closed_out_msgs: AtomicU64,
    pub closed_out_bytes: AtomicU64,
    /// Closed connections per close reason (tern_connections_closed_total); bumped once
    /// per close, so a mutex is cheap and new reasons need no new field.
    pub closed_by_reason: Mutex<BTreeMap<&'static str, u64>>,
    /// PING→PONG round trips of client connections and of routes (/metrics histograms).
    pub client_rtt: crate::monitor::histogram::Histogram,
    pub route_rtt: crate::monitor::histogram::Histogram,
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
    /// Accounts by name, each with its own sublist; `$G` always exists.
    pub accounts: Accounts,
    pub clients: DashMap<u64, Arc<Client>>,
    pub next_cid: AtomicU64,
    pub stats: Stats,
    /// Arcs so /connz can copy the list out and release the lock at once.
    pub closed: Mutex<VecDeque<Arc<ClosedConn>>>,
    /// INFO template; per-connection fields are filled in a copy.
    info: RwLock<ServerInfo>,
    lame_duck: AtomicBool,
    /// Set when lame duck mode begins: the client and websocket listeners close.
    stop_accepting: watch::Sender<bool>,
    shutdown: watch::Sender<bool>,
    pub http_requests: DashMap<String, u64>,
    /// Active client connections per JWT account (operator mode), for the account
    /// JWT's `conn` limit.
    pub account_conns: DashMap<String, i64>,
    /// Routes, local interest counts and the cluster name.
    pub routes: RouteState,
    /// This server's own client URLs (`host:port`), advertised in connect_urls.
    pub own_client_urls: Vec<String>,
    /// The bound cluster listen address, once listening.
    pub cluster_addr: OnceLock<SocketAddr>,
    /// OpenTelemetry exporters; unset (and free) unless telemetry is configured.
    pub telemetry: OnceLock<Arc<crate::telemetry::Telemetry>>,
    /// When the configuration was last loaded (start or reload), for /varz.
    config_load_time: Mutex<SystemTime>,
    /// Authenticator and TLS acceptor for new connections; replaced on reload.
    security: RwLock<Arc<Security>>,
    /// The node's own configuration (defaults, file, env, flags) before the
    /// cluster-wide keys from Raft are put over it; reloads replace this one.
    local_config: RwLock<Arc<Config>>,
    /// Cluster-scoped keys committed through Raft (none without Raft).
    cluster_overlay: RwLock<Option<crate::cluster::shared_config::SharedConfig>>,
    /// (Raft node id, control address), advertised in route INFO when Raft runs.
    pub raft_identity: OnceLock<(u64, String)>,
    /// The Raft node, for /metrics (term, leader, indexes); unset without Raft.
    pub raft_node: OnceLock<Arc<crate::cluster::ClusterNode>>,
    /// Why /healthz answers 503 (Raft has not applied what it saw at start).
    not_ready: Mutex<Option<String>>,
    /// The websocket listener, once bound (unset without a websocket block).
    pub websocket: OnceLock<Arc<crate::net::websocket::WsState>>,
}

impl ServerShared {
    /// The global account `$G` (clients without an account).
    pub fn global(&self) -> &Arc<Account> {
        self.accounts.global()
    }

    pub fn config(&self) -> Arc<Config> {
        self.config.read().clone()
    }

    pub fn config_generation(&self) -> u64 {
        self.config_generation.load(Ordering::Acquire)
    }

    /// Installs a reloaded configuration (the caller has validated it and kept the
    /// settings that cannot change at run time).
    pub fn set_config(&self, c: Config) {
        *self.local_config.write() = Arc::new(c.clone());
        self.install_config(c);
    }

    /// Puts the cluster-wide configuration committed through Raft over the local one.
    pub fn set_cluster_config(&self, o: crate::cluster::shared_config::SharedConfig) {
        if self.cluster_overlay.read().as_ref() == Some(&o) {
            return;
        }
        *self.cluster_overlay.write() = Some(o);
        let local = (*self.local_config.read().clone()).clone();
        self.install_config(local);
    }

    /// None when ready; else why /healthz should answer 503.
    pub fn not_ready(&self) -> Option<String> {
        self.not_ready.lock().clone()
    }

    pub fn set_not_ready(&self, reason: Option<String>) {
        *self.not_ready.lock() = reason;
    }

    fn install_config(&self, c: Config) {
        let c = match &*self.cluster_overlay.read() {
            Some(o) => o.apply_to(c),
            None => c,
        };
        let c = c.normalized();
        {
            let mut info = self.info.write();
            info.max_payload = c.max_payload;
            // auth_required and the TLS flags follow the security settings
            // (`set_security`): users may come from accounts or an operator, not only
            // from `authorization`.
            info.headers = !c.no_header_support;
        }
        *self.config.write() = Arc::new(c);
        self.config_generation.fetch_add(1, Ordering::AcqRel);
        *self.config_load_time.lock() = SystemTime::now();
    }

    pub fn config_load_time(&self) -> SystemTime {
        *self.config_load_time.lock()
    }

    pub fn security(&self) -> Arc<Security> {
        self.security.read().clone()
    }

    /// Installs reloaded users, permissions and certificates (new connections use them),
    /// and the INFO fields that announce them.
    pub fn set_security(&self, s: Security) {
        security_info(&mut self.info.write(), &s);
        *self.security.write() = Arc::new(s);
    }

    pub fn shutdown_rx(&self) -> watch::Receiver<bool> {
        let mut rx = self.shutdown.subscribe();
        // A task that subscribes after shutdown was sent (spawned just before a quick
        // shutdown) must still see it: its first `changed()` would otherwise wait forever.
        if *rx.borrow() {
            rx.mark_changed();
        }
        rx
    }

    /// Resolves once lame duck mode has begun (at once if it already has): the
    /// listeners close on it. Every listener sees it, whenever it starts waiting.
    pub(crate) async fn lame_duck_started(&self) {
        let mut rx = self.stop_accepting.subscribe();
        let _ = rx.wait_for(|v| *v).await;
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

    /// The INFO sent on a route connection (no pooling, no compression: nats-server
    /// then treats us as a single-connection route peer carrying all accounts).
    pub fn route_info_line(&self) -> Vec<u8> {
        let cfg = self.config();
        let base = self.info();
        let (host, port) = match (&cfg.cluster.advertise, self.cluster_addr.get()) {
            (Some(adv), _) => match adv.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), p.parse().unwrap_or(0)),
                None => (adv.clone(), self.cluster_addr.get().map_or(0, |a| a.port())),
            },
            (None, Some(a)) => (
                cfg.cluster
                    .host
                    .clone()
                    .unwrap_or_else(|| a.ip().to_string()),
                a.port(),
            ),
            (None, None) => (String::new(), 0),
        };
        let info = ServerInfo {
            server_id: self.server_id.clone(),
            server_name: self.server_name.clone(),
            version: base.version,
            proto: 1,
            go: base.go,
            host,
            port,
            headers: true,
            auth_required: cfg.cluster.authorization.required(),
            tls_required: cfg.cluster.tls.is_some(),
            tls_verify: cfg.cluster.tls.as_ref().is_some_and(|t| t.verify),
            max_payload: cfg.max_payload,
            cluster: self.routes.cluster_name(),
            cluster_dynamic: self.routes.name_is_dynamic(),
            connect_urls: self.own_client_urls.clone(),
            ws_connect_urls: self
                .websocket
                .get()
                .map(|w| w.own_urls.clone())
                .unwrap_or_default(),
            ldm: self.is_lame_duck(),
            tern_node_id: self.raft_identity.get().map_or(0, |r| r.0),
            tern_control: self
                .raft_identity
                .get()
                .map(|r| r.1.clone())
                .unwrap_or_default(),
            ..Default::default()
        };
        info.to_line()
    }

    /// Routes came or went (or a peer entered lame duck): recompute connect_urls and
    /// tell protocol-1 clients with an async INFO, as nats-server does.
    pub fn cluster_urls_changed(&self) {
        let cfg = self.config();
        let mut urls = self.own_client_urls.clone();
        if !cfg.cluster.no_advertise {
            for u in self.routes.peer_client_urls() {
                if !urls.contains(&u) {
                    urls.push(u);
                }
            }
        }
        let ws_changed = self.websocket.get().is_some_and(|w| {
            let peers = if cfg.cluster.no_advertise {
                Vec::new()
            } else {
                self.routes.peer_ws_urls()
            };
            w.set_peer_urls(peers)
        });
        let (info, tcp_changed) = {
            let mut info = self.info.write();
            let changed = info.connect_urls != urls;
            if !changed && !ws_changed {
                return;
            }
            info.connect_urls = urls;
            info.cluster = self.routes.cluster_name();
            (info.clone(), changed)
        };
        for c in self.clients.iter() {
            let changed = if c.websocket { ws_changed } else { tcp_changed };
            if changed && c.async_info.load(Ordering::Acquire) {
                let mut i = if c.websocket {
                    self.ws_info(info.clone())
                } else {
                    info.clone()
                };
                i.client_id = c.cid;
                i.client_ip = c.addr.ip().to_string();
                c.out.push(&i.to_line());
                c.out.kick();
            }
        }
    }

    /// The async INFO sent after the first PONG to a protocol-1 client.
    pub fn connect_info_line(
        &self,
        cid: u64,
        addr: &SocketAddr,
        websocket: bool,
        account: &str,
    ) -> Vec<u8> {
        let mut info = self.info();
        if websocket {
            info = self.ws_info(info);
        }
        info.client_id = cid;
        info.client_ip = addr.ip().to_string();
        info.connect_info = true;
        info.remote_account = account.into();
        info.to_line()
    }

    pub fn record_closed(&self, c: ClosedConn) {
        let s = &self.stats;
        s.closed_in_msgs.fetch_add(c.in_msgs, Ordering::Relaxed);
        s.closed_in_bytes.fetch_add(c.in_bytes, Ordering::Relaxed);
        s.closed_out_msgs.fetch_add(c.out_msgs, Ordering::Relaxed);
        s.closed_out_bytes.fetch_add(c.out_bytes, Ordering::Relaxed);
        *s.closed_by_reason
            .lock()
            .entry(c.reason.as_str())
            .or_insert(0) += 1;
        crate::telemetry::connection_closed(self, &c);
        let mut closed = self.closed.lock();
        if closed.len() >= defaults::MAX_CLOSED_CLIENTS {
            closed.pop_front();
        }
        closed.push_back(Arc::new(c));
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
        let started = SystemTime::now();
        tracing::info!("Entering lame duck mode, stop accepting new clients");
        self.stop_accepting.send_replace(true);
        let line = {
            let mut info = self.info.write();
            info.ldm = true;
            info.clone()
        };
        let clients: Vec<Arc<Client>> = self.clients.iter().map(|c| c.value().clone()).collect();
        // Peers drop our client URLs from what they advertise.
        let route_info = self.route_info_line();
        for r in self.routes.routes() {
            r.conn.out.push(&route_info);
            r.conn.out.kick();
        }
        for c in &clients {
            // Only clients that take async INFO (protocol 1, past the first PONG).
            if !c.async_info.load(Ordering::Acquire) {
                continue;
            }
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
        crate::telemetry::admin(self, "tern.server.lame_duck", started, Vec::new());
        // send_replace: `send` drops the value when no task has subscribed yet.
        self.shutdown.send_replace(true);
    }

    /// Stops accepting and closes every connection.
    pub fn shutdown(&self) {
        // send_replace: `send` drops the value when no task has subscribed yet.
        self.shutdown.send_replace(true);
    }
}

/// A running server.
pub struct ServerHandle {
    pub shared: Arc<ServerShared>,
    client_addr: SocketAddr,
    monitor_addr: Option<SocketAddr>,
    tasks: Vec<JoinHandle<()>>,
    /// The Raft control plane, when `cluster { control_listen }` is configured.
    control: Option<crate::control::ControlHandle>,
}

impl ServerHandle {
    pub fn client_addr(&self) -> SocketAddr {
        self.client_addr
    }

    /// The websocket listener's address, when one runs.
    pub fn websocket_addr(&self) -> Option<SocketAddr> {
        let ws = self.shared.websocket.get()?;
        let ip = ws
            .host
            .parse()
            .unwrap_or(std::net::Ipv4Addr::LOCALHOST.into());
        Some(SocketAddr::new(ip, ws.port))
    }

    pub fn monitor_addr(&self) -> Option<SocketAddr> {
        self.monitor_addr
    }

    /// The websocket listener's state (host, port, scheme), when one runs.
    pub fn websocket(&self) -> Option<Arc<crate::net::websocket::WsState>> {
        self.shared.websocket.get().cloned()
    }

    /// The bound route listener, when clustering is configured.
    pub fn cluster_addr(&self) -> Option<SocketAddr> {
        self.shared.cluster_addr.get().copied()
    }

    /// The Raft node, when the control plane runs.
    pub fn cluster(&self) -> Option<&Arc<crate::cluster::ClusterNode>> {
        self.control.as_ref().map(|c| &c.node)
    }

    /// The bound gRPC control listener, when the control plane runs.
    pub fn control_addr(&self) -> Option<SocketAddr> {
        self.control.as_ref().map(|c| c.addr)
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
        if let Some(c) = self.control {
            c.stop().await;
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while !self.shared.clients.is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        crate::telemetry::shutdown(&self.shared).await;
    }
}

/// The embeddable server.
pub struct Server;

impl Server {
    /// Binds the listeners and starts serving. Logs nats-server's startup lines.
    pub async fn start(config: Config) -> Result<ServerHandle, StartError> {
        let config = config.normalized();
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
        let ws_setup =
            crate::net::websocket::WsSetup::build(&config).map_err(StartError::Config)?;
        let (shutdown, _) = watch::channel(false);
        let own_client_urls = own_client_urls(&config, client_addr.port());
        let routes = RouteState::new(config.cluster.enabled(), config.cluster.name.clone());
        let mut info = ServerInfo {
            server_id: server_id.clone(),
            server_name: server_name.clone(),
            version: NATS_COMPAT_VERSION.into(),
            proto: 1,
            go: format!("tern{}", env!("CARGO_PKG_VERSION")),
            host: config.host.clone(),
            port: client_addr.port(),
            headers: !config.no_header_support,
            max_payload: config.max_payload,
            cluster: if routes.enabled() {
                routes.cluster_name()
            } else {
                String::new()
            },
            connect_urls: if routes.enabled() {
                own_client_urls.clone()
            } else {
                Vec::new()
            },
            ..Default::default()
        };
        security_info(&mut info, &security);
        let start = SystemTime::now();
        let shared = Arc::new(ServerShared {
            server_id,
            server_name,
            start,
            config_load_time: Mutex::new(start),
            accounts: Accounts::from_config(&config.accounts),
            clients: DashMap::new(),
            next_cid: AtomicU64::new(1),
            stats: Stats::default(),
            closed: Mutex::new(VecDeque::new()),
            info: RwLock::new(info),
            lame_duck: AtomicBool::new(false),
            stop_accepting: watch::channel(false).0,
            shutdown,
            http_requests: DashMap::new(),
            account_conns: DashMap::new(),
            local_config: RwLock::new(Arc::new(config.clone())),
            cluster_overlay: RwLock::new(None),
            raft_identity: OnceLock::new(),
            raft_node: OnceLock::new(),
            not_ready: Mutex::new(None),
            config: RwLock::new(Arc::new(config)),
            config_generation: AtomicU64::new(0),
            routes,
            own_client_urls,
            cluster_addr: OnceLock::new(),
            security: RwLock::new(Arc::new(security)),
            telemetry: OnceLock::new(),
            websocket: OnceLock::new(),
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
        } else if let Some(sport) = shared.config().https_port {
            // nats-server: `http` wins when both are set; HTTPS needs the tls block
            // (checked when the Security was built, which holds the acceptor).
            let cfg = shared.config();
            let host = cfg.http_host.clone().unwrap_or_else(|| cfg.host.clone());
            let sport = if sport < 0 { 0 } else { sport as u16 };
            let ml = bind(&host, sport).await?;
            let maddr = ml.local_addr()?;
            tracing::info!(
                "Starting https monitor on {}",
                fmt_host_port(&host, maddr.port())
            );
            monitor_addr = Some(maddr);
            tasks.push(tokio::spawn(crate::monitor::serve_tls(shared.clone(), ml)));
        }

        tracing::info!(
            "Listening for client connections on {}",
            fmt_host_port(&shared.config().host, client_addr.port())
        );
        let _ = addr;
        let cfg = shared.config();
        let mut route_listener = None;
        if cfg.cluster.enabled() {
            let chost = cfg.cluster.host.clone().unwrap_or_else(|| cfg.host.clone());
            let cport = cfg.cluster.port.unwrap_or(0);
            let cport = if cport < 0 { 0 } else { cport as u16 };
            let cl = bind(&chost, cport).await?;
            let caddr = cl.local_addr()?;
            let _ = shared.cluster_addr.set(caddr);
            tracing::info!("Cluster name is {}", shared.routes.cluster_name());
            tracing::info!(
                "Listening for route connections on {}",
                fmt_host_port(&chost, caddr.port())
            );
            route_listener = Some(cl);
        }
        // Between binding and using the route listener: the control plane advertises
        // the route URL, and the first route INFO already carries the Raft identity.
        let control = crate::control::start(&shared).await?;
        if let Some(cl) = route_listener {
            tasks.push(tokio::spawn(crate::route::dialer::accept_loop(
                shared.clone(),
                cl,
            )));
            crate::route::dialer::start_configured(&shared);
        }
        if let Some(t) = &shared.security().tls {
            tracing::info!("TLS required for client connections");
            if t.cfg.handshake_first && t.cfg.handshake_first_fallback.is_none() {
                tracing::warn!(
                    "Clients that are not using \"TLS Handshake First\" option will fail to connect"
                );
            }
        }
        if let Some(t) = crate::net::websocket::start(&shared, ws_setup).await? {
            tasks.push(t);
        }
        crate::telemetry::install(&shared);
        tasks.push(tokio::spawn(accept_loop(shared.clone(), listener)));
        tracing::info!("Server is ready");
        Ok(ServerHandle {
            shared,
            client_addr,
            monitor_addr,
            tasks,
            control,
        })
    }
}

/// The INFO fields that announce the security settings: whether credentials are
/// required (users from `authorization`, accounts or an operator) and the TLS mode.
fn security_info(info: &mut ServerInfo, s: &Security) {
    info.auth_required = s.auth.required();
    let tls = s
        .tls
        .as_ref()
        .map(|t| (t.allow_non_tls, t.cfg.verify_clients()));
    info.tls_required = tls.is_some_and(|(optional, _)| !optional);
    info.tls_available = tls.is_some_and(|(optional, _)| optional);
    info.tls_verify = tls.is_some_and(|(_, verify)| verify);
}

/// Resolves once shutdown has been signalled, also when it already was before the
/// call (`changed()` would wait for a change that never comes).
pub async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}
