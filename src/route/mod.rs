//! Routes: the full mesh between tern nodes (and nats-server peers).
//!
//! Each node tells its peers which subjects its clients want (`RS+`/`RS-`, counted per
//! subject and queue in [`RouteState`]) and forwards a client's publish to each peer
//! with matching interest exactly once (`RMSG`, see dispatch.rs). A message that came
//! from a route is only delivered to local clients: one hop, never route to route.
//!
//! Must not: wait on Raft or anything else slow; interest and messages flow on routes only.

pub mod conn;
pub mod dialer;
pub mod members;

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use crate::client::Client;
use crate::protocol::encode;
use crate::protocol::info::ServerInfo;

/// The account of clients without one, as the route protocol spells it.
pub const GLOBAL_ACCOUNT: &[u8] = b"$G";

/// (account, subject, queue).
type InterestKey = (Box<[u8]>, Box<[u8]>, Option<Box<[u8]>>);

/// A registered route to one peer server.
#[derive(Debug)]
pub struct Route {
    pub conn: Arc<Client>,
    pub remote_id: String,
    pub remote_name: String,
    /// We dialed it (vs. accepted it).
    pub solicited: bool,
    /// It is one of the configured seed routes.
    pub configured: bool,
    /// The peer's INFO as last received (connect_urls, ldm, host/port).
    pub info: Mutex<ServerInfo>,
    /// `nats-route://host:port/` to reach the peer's cluster port (gossiped to others).
    pub url: String,
    /// Set when a duplicate connection to the same peer was refused: both sides may
    /// have refused opposite connections, so whoever loses this one dials again
    /// (nats-server does the same).
    pub retry: AtomicBool,
}

#[derive(Default)]
struct Inner {
    /// Local interest per (account, subject, queue): clients' subscriptions only, never
    /// remote ones.
    interest: HashMap<InterestKey, u32>,
    /// Registered routes by remote server_id.
    routes: HashMap<String, Arc<Route>>,
}

/// Cluster state shared by every connection of one server.
pub struct RouteState {
    enabled: bool,
    inner: Mutex<Inner>,
    /// Cluster name (adopted from a peer when ours was generated).
    name: RwLock<String>,
    dynamic_name: AtomicBool,
    /// server_ids we are dialing right now, so gossip does not start a second dial.
    dialing: Mutex<BTreeSet<String>>,
    /// Woken whenever a registered route goes away.
    route_gone: tokio::sync::Notify,
    /// Raft node ids taken out of the cluster (see members.rs): their routes are
    /// refused and not redialled.
    removed_nodes: RwLock<BTreeSet<u64>>,
}

impl RouteState {
    pub fn new(enabled: bool, name: Option<String>) -> Self {
        let dynamic = name.is_none();
        let name = name.unwrap_or_else(|| {
            // nats-server generates a random name when none is configured.
            let kp = nkeys::KeyPair::new_server();
            kp.public_key()[..22].to_string()
        });
        RouteState {
            enabled,
            inner: Mutex::new(Inner::default()),
            name: RwLock::new(name),
            dynamic_name: AtomicBool::new(dynamic),
            dialing: Mutex::new(BTreeSet::new()),
            route_gone: tokio::sync::Notify::new(),
            removed_nodes: RwLock::new(BTreeSet::new()),
        }
    }

    /// Whether a peer announcing Raft node id `node_id` was removed from the cluster.
    pub fn is_removed(&self, node_id: u64) -> bool {
        node_id != 0 && self.removed_nodes.read().contains(&node_id)
    }

    pub fn set_removed(&self, ids: BTreeSet<u64>) {
        *self.removed_nodes.write() = ids;
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    pub fn cluster_name(&self) -> String {
        self.name.read().clone()
    }

    pub fn name_is_dynamic(&self) -> bool {
        self.dynamic_name.load(Ordering::Acquire)
    }

    /// Adopts a peer's configured name when ours was generated.
    pub fn adopt_name(&self, name: &str) {
        *self.name.write() = name.to_string();
        self.dynamic_name.store(false, Ordering::Release);
    }

    /// A local subscription was added: tell every route on a 0->1 change (plain) or
    /// on every weight change (queue), as nats-server does.
    pub fn local_interest_added(&self, account: &[u8], subject: &[u8], queue: Option<&[u8]>) {
        if !self.enabled {
            return;
        }
        let mut inner = self.inner.lock();
        let key: InterestKey = (account.into(), subject.into(), queue.map(Into::into));
        let n = inner.interest.entry(key).or_insert(0);
        *n += 1;
        let n = *n;
        if queue.is_none() && n != 1 {
            return;
        }
        let mut line = Vec::with_capacity(subject.len() + 24);
        encode::write_rs_plus(&mut line, account, subject, queue.map(|q| (q, n)));
        broadcast(&inner, &line);
    }

    /// A local subscription went away (UNSUB, auto-unsubscribe, close).
    pub fn local_interest_removed(&self, account: &[u8], subject: &[u8], queue: Option<&[u8]>) {
        if !self.enabled {
            return;
        }
        let mut inner = self.inner.lock();
        let key: InterestKey = (account.into(), subject.into(), queue.map(Into::into));
        let Some(n) = inner.interest.get_mut(&key) else {
            return;
        };
        *n -= 1;
        let n = *n;
        if n == 0 {
            inner.interest.remove(&key);
        }
        let mut line = Vec::with_capacity(subject.len() + 24);
        match (queue, n) {
            (None, 0) => encode::write_rs_minus(&mut line, account, subject, None),
            (None, _) => return,
            (Some(q), 0) => encode::write_rs_minus(&mut line, account, subject, Some(q)),
            (Some(q), n) => encode::write_rs_plus(&mut line, account, subject, Some((q, n))),
        }
        broadcast(&inner, &line);
    }

    /// Registers a route after its INFO. Under the same lock as interest updates, so
    /// the full interest dump and later deltas neither miss nor repeat a change.
    ///
    /// A second connection to an already registered peer is refused and the one
    /// registered first is kept (nats-server's rule, so mixed clusters agree). Both
    /// sides may have kept opposite connections and then both lose theirs, so the
    /// kept one is marked `retry`: whoever loses it dials again.
    pub fn register(&self, route: Arc<Route>) -> Result<(), RegisterError> {
        let mut inner = self.inner.lock();
        if let Some(existing) = inner.routes.get(&route.remote_id) {
            existing.retry.store(true, Ordering::Release);
            return Err(RegisterError::Duplicate);
        }
        let mut dump = Vec::with_capacity(64 * inner.interest.len());
        for ((account, subject, queue), n) in &inner.interest {
            encode::write_rs_plus(
                &mut dump,
                account,
                subject,
                queue.as_deref().map(|q| (q, *n)),
            );
        }
        route.conn.out.push(&dump);
        route.conn.out.kick();
        inner.routes.insert(route.remote_id.clone(), route);
        Ok(())
    }

    /// Removes `route` if it is still the registered one for its peer.
    pub fn unregister(&self, route: &Arc<Route>) -> bool {
        let mut inner = self.inner.lock();
        match inner.routes.get(&route.remote_id) {
            Some(r) if Arc::ptr_eq(r, route) => {
                inner.routes.remove(&route.remote_id);
                self.route_gone.notify_waiters();
                true
            }
            _ => false,
        }
    }

    pub fn routes(&self) -> Vec<Arc<Route>> {
        self.inner.lock().routes.values().cloned().collect()
    }

    pub fn has_route(&self, server_id: &str) -> bool {
        self.inner.lock().routes.contains_key(server_id)
    }

    /// The server_id of a registered peer whose INFO advertises this cluster
    /// address (so a configured route to it need not be dialed).
    pub fn peer_at(&self, host: &str, port: u16) -> Option<String> {
        let inner = self.inner.lock();
        inner.routes.values().find_map(|r| {
            let info = r.info.lock();
            (info.host == host && info.port == port).then(|| r.remote_id.clone())
        })
    }

    pub fn num_routes(&self) -> usize {
        self.inner.lock().routes.len()
    }

    /// Client URLs of every peer not in lame duck mode (merged into our connect_urls).
    pub fn peer_client_urls(&self) -> Vec<String> {
        let inner = self.inner.lock();
        let mut urls = Vec::new();
        for r in inner.routes.values() {
            let info = r.info.lock();
            if !info.ldm {
                urls.extend(info.connect_urls.iter().cloned());
            }
        }
        urls
    }

    /// Websocket URLs of every peer not in lame duck mode (websocket connect_urls).
    pub fn peer_ws_urls(&self) -> Vec<String> {
        let inner = self.inner.lock();
        let mut urls = Vec::new();
        for r in inner.routes.values() {
            let info = r.info.lock();
            if !info.ldm {
                urls.extend(info.ws_connect_urls.iter().cloned());
            }
        }
        urls
    }

    /// Sends `line` to every route except the one to `except`.
    pub fn send_to_others(&self, except: &str, line: &[u8]) {
        let inner = self.inner.lock();
        for (id, r) in &inner.routes {
            if id != except {
                r.conn.out.push(line);
                r.conn.out.kick();
            }
        }
    }

    /// Marks `server_id` as being dialed; false if a dial is already under way.
    pub fn start_dialing(&self, server_id: &str) -> bool {
        self.dialing.lock().insert(server_id.to_string())
    }

    pub fn done_dialing(&self, server_id: &str) {
        self.dialing.lock().remove(server_id);
    }

    /// Waits until there is no registered route to `server_id`.
    pub async fn wait_no_route(&self, server_id: &str) {
        loop {
            let gone = self.route_gone.notified();
            tokio::pin!(gone);
            gone.as_mut().enable();
            if !self.has_route(server_id) {
                return;
            }
            gone.await;
        }
    }
}

fn broadcast(inner: &Inner, line: &[u8]) {
    for r in inner.routes.values() {
        r.conn.out.push(line);
        r.conn.out.kick();
    }
}

/// Why a route could not be registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegisterError {
    Duplicate,
}
