//! Routes that follow the Raft membership: the lower node id dials each member it has
//! no route to (the higher one waits to be dialled, so a pair makes one connection),
//! and routes to removed nodes are closed and refused.
//!
//! The view arrives on a `watch` channel of [`MemberRoutes`] (filled by the wiring from
//! the control plane's Membership); this module never waits on Raft. Seed routes and
//! gossip keep working beside it, for nats-server peers and before Raft is up.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::error::CloseReason;
use crate::server::ServerShared;

/// The route-plane view of the membership.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberRoutes {
    pub own_id: u64,
    /// Member node id -> `nats-route://host:port` ("" when it has no route listener).
    pub members: BTreeMap<u64, String>,
    pub removed: BTreeSet<u64>,
}

/// The route of the peer with Raft node id `id`, if connected.
fn has_route_to(server: &ServerShared, id: u64) -> bool {
    server
        .routes
        .routes()
        .iter()
        .any(|r| r.info.lock().tern_node_id == id)
}

/// Follows the view until shutdown.
pub async fn follow(server: Arc<ServerShared>, mut rx: watch::Receiver<MemberRoutes>) {
    let mut shutdown = server.shutdown_rx();
    let mut dialing: BTreeSet<u64> = BTreeSet::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        let view = rx.borrow_and_update().clone();
        server.routes.set_removed(view.removed.clone());
        for r in server.routes.routes() {
            let id = r.info.lock().tern_node_id;
            if server.routes.is_removed(id) {
                tracing::info!("Closing route to removed node {id}");
                r.conn.close_from_server(CloseReason::RouteRemoved);
            }
        }
        dialing.retain(|id| view.members.contains_key(id));
        for (id, url) in &view.members {
            if *id <= view.own_id || url.is_empty() || view.removed.contains(id) {
                continue;
            }
            if has_route_to(&server, *id) || !dialing.insert(*id) {
                continue;
            }
            let s = server.clone();
            let url = url.clone();
            let id = *id;
            let mut rx = rx.clone();
            tokio::spawn(async move {
                // Dial while it is a member and we have no route; the dial loop gives
                // up after a few attempts, so check the view between rounds.
                loop {
                    let still = {
                        let v = rx.borrow_and_update();
                        v.members.contains_key(&id) && !v.removed.contains(&id)
                    };
                    if !still || *s.shutdown_rx().borrow() {
                        return;
                    }
                    if !has_route_to(&s, id) {
                        super::dialer::dial_loop(s.clone(), url.clone(), false, 2, None).await;
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                        r = rx.changed() => if r.is_err() { return },
                    }
                }
            });
        }
        tokio::select! {
            _ = shutdown.wait_for(|s| *s) => return,
            r = rx.changed() => if r.is_err() { return },
            _ = tick.tick() => {}
        }
    }
}
