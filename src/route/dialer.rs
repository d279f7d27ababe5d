//! Dialing routes: configured seed routes are retried forever with backoff and jitter;
//! routes learned by gossip (implicit) up to `connect_retries` times.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;

use super::conn::{self, RouteEnd, Side};
use crate::protocol::info::ServerInfo;
use crate::server::ServerShared;

/// nats-server's route connect backoff: 1 s growing to 30 s.
const RETRY_MIN: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(30);

/// A parsed `nats-route://user:pass@host:port` (or `nats://`) URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteUrl {
    pub host: String,
    pub port: u16,
    pub user: Option<String>,
    pub pass: Option<String>,
}

pub fn parse_route_url(url: &str) -> Result<RouteUrl, String> {
    let rest = url
        .split_once("://")
        .map(|(_, r)| r)
        .unwrap_or(url)
        .trim_end_matches('/');
    let (cred, hostport) = match rest.rsplit_once('@') {
        Some((c, h)) => (Some(c), h),
        None => (None, rest),
    };
    let (user, pass) = match cred {
        Some(c) => match c.split_once(':') {
            Some((u, p)) => (Some(u.to_string()), Some(p.to_string())),
            None => (Some(c.to_string()), None),
        },
        None => (None, None),
    };
    let (host, port) = hostport
        .rsplit_once(':')
        .ok_or_else(|| format!("route URL \"{url}\" has no port"))?;
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = port
        .parse::<u16>()
        .map_err(|_| format!("route URL \"{url}\" has a bad port"))?;
    Ok(RouteUrl {
        host,
        port,
        user,
        pass,
    })
}

fn jitter(d: Duration) -> Duration {
    let extra = rand::random::<u64>() % (d.as_millis() as u64 / 5 + 1);
    d + Duration::from_millis(extra)
}

/// Starts a task per configured route.
pub fn start_configured(server: &Arc<ServerShared>) {
    for url in server.config().cluster.routes.clone() {
        let server = server.clone();
        tokio::spawn(async move { dial_loop(server, url, true, u32::MAX, None).await });
    }
}

/// Dials a server learned from gossip (INFO with `ip`), unless already connected.
pub fn dial_implicit(server: &Arc<ServerShared>, info: &ServerInfo) {
    if server.routes.has_route(&info.server_id)
        || info.server_id == server.server_id
        || server.routes.is_removed(info.tern_node_id)
    {
        return;
    }
    if !server.routes.start_dialing(&info.server_id) {
        return;
    }
    let retries = server.config().cluster.connect_retries.unwrap_or(3);
    let server = server.clone();
    let id = info.server_id.clone();
    let url = info.ip.clone();
    tokio::spawn(async move {
        dial_loop(server.clone(), url, false, retries, Some(id.clone())).await;
        server.routes.done_dialing(&id);
    });
}

/// How long to wait before dialing a peer whose route was just lost while both
/// sides may dial again: the lower server_id goes first, the other one later, so
/// the two new connections do not collide (and get refused as duplicates) again.
fn turn_delay(own_id: &str, peer_id: &str) -> Duration {
    let jitter = Duration::from_millis(rand::random::<u64>() % 100);
    if own_id < peer_id {
        jitter
    } else {
        Duration::from_millis(500) + jitter
    }
}

/// Dials a peer again after losing the one connection both sides kept (see
/// `Route::retry`).
pub fn redial(server: &Arc<ServerShared>, server_id: &str, url: &str) {
    if server.routes.has_route(server_id) || !server.routes.start_dialing(server_id) {
        return;
    }
    let retries = server.config().cluster.connect_retries.unwrap_or(3).max(1);
    let server = server.clone();
    let id = server_id.to_string();
    let url = url.to_string();
    tokio::spawn(async move {
        tokio::time::sleep(turn_delay(&server.server_id, &id)).await;
        dial_loop(server.clone(), url, false, retries, Some(id.clone())).await;
        server.routes.done_dialing(&id);
    });
}

/// Connects to `url` and serves the route; reconnects after a loss (configured
/// routes forever, implicit ones while attempts remain). `peer` is the server_id
/// behind `url` once known: while a route to it is registered (it dialed us, or
/// our connection was refused as a duplicate) there is nothing to dial; a
/// configured route waits for that route to go away and then takes over.
pub(super) async fn dial_loop(
    server: Arc<ServerShared>,
    url: String,
    configured: bool,
    retries: u32,
    mut peer: Option<String>,
) {
    let parsed = match parse_route_url(&url) {
        Ok(u) => u,
        Err(e) => {
            tracing::error!("{e}");
            return;
        }
    };
    let mut shutdown = server.shutdown_rx();
    let mut delay = RETRY_MIN;
    let mut failures = 0u32;
    // A configured loop covers its peer for good: gossip and `retry` redials of
    // that peer leave it to us.
    let mut holding = None;
    loop {
        if *shutdown.borrow() {
            return;
        }
        if peer.is_none() {
            // The peer may have dialed us first (its INFO names its cluster address).
            peer = server.routes.peer_at(&parsed.host, parsed.port);
        }
        if let Some(id) = peer.clone().filter(|id| server.routes.has_route(id)) {
            if !configured {
                return;
            }
            if holding.as_ref() != Some(&id) {
                server.routes.start_dialing(&id);
                holding = Some(id.clone());
            }
            tokio::select! {
                _ = server.routes.wait_no_route(&id) => {}
                _ = crate::server::stopped(&mut shutdown) => return,
            }
            tokio::select! {
                _ = tokio::time::sleep(turn_delay(&server.server_id, &id)) => {}
                _ = crate::server::stopped(&mut shutdown) => return,
            }
            delay = RETRY_MIN;
            failures = 0;
            continue;
        }
        tracing::debug!(
            "Trying to connect to route on {}:{}",
            parsed.host,
            parsed.port
        );
        match TcpStream::connect((parsed.host.as_str(), parsed.port)).await {
            Ok(stream) => {
                let addr = stream
                    .peer_addr()
                    .unwrap_or_else(|_| ([0, 0, 0, 0], parsed.port).into());
                let side = Side::Solicited {
                    url: url.clone(),
                    configured,
                    user: parsed.user.clone(),
                    pass: parsed.pass.clone(),
                };
                let end = conn::serve(server.clone(), stream, addr, side).await;
                match end {
                    RouteEnd::ToSelf => return,
                    RouteEnd::Duplicate(id) => {
                        // Not an error: the peer is already connected.
                        peer = Some(id);
                        continue;
                    }
                    // Removed from the cluster (`tern cluster remove`): stop redialling.
                    RouteEnd::Closed(crate::error::CloseReason::RouteRemoved) => return,
                    RouteEnd::Closed(reason) => {
                        if !configured {
                            // Implicit routes are not redialed after they were up:
                            // gossip brings the peer back if it returns.
                            return;
                        }
                        tracing::debug!("Route to {url} closed ({reason}), reconnecting");
                        delay = RETRY_MIN;
                        failures = 0;
                    }
                }
            }
            Err(e) => {
                failures += 1;
                if failures > retries {
                    tracing::debug!("Giving up on route {url} after {retries} attempts");
                    return;
                }
                tracing::debug!("Error trying to connect to route {url}: {e}");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(jitter(delay)) => {}
            _ = crate::server::stopped(&mut shutdown) => return,
        }
        delay = (delay * 2).min(RETRY_MAX);
    }
}

/// Accepts route connections on the cluster listener.
pub async fn accept_loop(server: Arc<ServerShared>, listener: tokio::net::TcpListener) {
    let mut shutdown = server.shutdown_rx();
    loop {
        tokio::select! {
            _ = crate::server::stopped(&mut shutdown) => break,
            r = listener.accept() => match r {
                Ok((stream, addr)) => {
                    let server = server.clone();
                    tokio::spawn(async move { conn::serve(server, stream, addr, Side::Accepted).await });
                }
                Err(e) => {
                    tracing::error!("Temporary Route Accept Error ({e})");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_urls() {
        let u = parse_route_url("nats-route://ruser:T0p@127.0.0.1:6222").unwrap();
        assert_eq!(u.host, "127.0.0.1");
        assert_eq!(u.port, 6222);
        assert_eq!(u.user.as_deref(), Some("ruser"));
        assert_eq!(u.pass.as_deref(), Some("T0p"));
        let u = parse_route_url("nats://[::1]:7000/").unwrap();
        assert_eq!(u.host, "::1");
        assert!(parse_route_url("nats://host").is_err());
    }
}
