//! Wiring of the control plane (issue 5): binds the gRPC control listener, starts the
//! Raft node, and bridges its Membership watch to the data plane (route targets,
//! cluster-wide config, readiness). Nothing here runs unless
//! `cluster { control_listen }` is configured.
//!
//! Must not: touch the message path. The bridge only calls `set_cluster_config`,
//! `set_not_ready` and feeds the route follower's watch channel.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::cluster::{self, ClusterNode, ClusterState, ControlOptions, Discover};
use crate::error::StartError;
use crate::route::members::MemberRoutes;
use crate::server::{fmt_host_port, ServerShared};

/// The running control plane of one server.
pub struct ControlHandle {
    pub node: Arc<ClusterNode>,
    pub addr: SocketAddr,
    server: JoinHandle<()>,
}

impl ControlHandle {
    /// Stops the gRPC server and Raft (the server's shutdown signal has fired).
    pub async fn stop(self) {
        let abort = self.server.abort_handle();
        if tokio::time::timeout(Duration::from_secs(2), self.server)
            .await
            .is_err()
        {
            abort.abort();
        }
        let _ = self.node.raft.shutdown().await;
    }
}

/// `host:port`, `host` (port 6250) or `:port`.
fn split_listen(s: &str) -> Result<(String, u16), String> {
    let s = s
        .trim()
        .trim_start_matches("grpc://")
        .trim_start_matches("http://");
    match s.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(':') || h.starts_with('[') => {
            let port = p
                .parse::<u16>()
                .map_err(|_| format!("control_listen \"{s}\": bad port"))?;
            let host = h.trim_start_matches('[').trim_end_matches(']');
            Ok((
                if host.is_empty() { "0.0.0.0" } else { host }.to_string(),
                port,
            ))
        }
        _ => Ok((s.to_string(), cluster::DEFAULT_CONTROL_PORT)),
    }
}

fn unspecified(host: &str) -> bool {
    host.is_empty() || host == "0.0.0.0" || host == "::"
}

/// Starts the control plane when configured; `None` (and no cost) otherwise.
pub async fn start(shared: &Arc<ServerShared>) -> Result<Option<ControlHandle>, StartError> {
    let cfg = shared.config();
    let Some(listen) = cfg.cluster.control_listen.clone() else {
        return Ok(None);
    };
    let Some(store_dir) = cfg.store_dir.clone() else {
        return Err(StartError::Config(
            "cluster control_listen needs store_dir (-sd DIR): the Raft log and the node \
             identity are kept there"
                .into(),
        ));
    };
    let (host, port) = split_listen(&listen).map_err(StartError::Config)?;
    let listener = crate::server::bind(&host, port).await?;
    let addr = listener.local_addr()?;
    let control_addr = match &cfg.cluster.control_advertise {
        Some(a) => a.clone(),
        None if unspecified(&host) => fmt_host_port("127.0.0.1", addr.port()),
        None => fmt_host_port(&host, addr.port()),
    };
    let route_url = match (&cfg.cluster.advertise, shared.cluster_addr.get()) {
        (Some(a), _) => format!("nats-route://{a}"),
        (None, Some(a)) => {
            let h = cfg.cluster.host.clone().unwrap_or_else(|| cfg.host.clone());
            let h = if unspecified(&h) {
                "127.0.0.1".into()
            } else {
                h
            };
            format!("nats-route://{}", fmt_host_port(&h, a.port()))
        }
        (None, None) => String::new(),
    };
    let opts = ControlOptions {
        store_dir,
        control_addr: control_addr.clone(),
        route_url,
        name: shared.server_name.clone(),
        cluster_name: cfg.cluster.name.clone(),
        token: cfg.cluster.control_token.clone(),
        tls: match &cfg.cluster.control_tls {
            Some(t) => {
                Some(cluster::control_tls::peer_client_config(t).map_err(StartError::Config)?)
            }
            None => None,
        },
        bootstrap_expect: cfg.cluster.bootstrap_expect,
        has_seeds: !cfg.cluster.routes.is_empty(),
        max_voters: cfg
            .cluster
            .max_voters
            .map_or(cluster::DEFAULT_MAX_VOTERS, |n| n as usize),
    };
    let routes_of = shared.clone();
    let discover: Discover = Arc::new(move || {
        routes_of
            .routes
            .routes()
            .iter()
            .map(|r| r.info.lock().tern_control.clone())
            .filter(|c| !c.is_empty())
            .collect()
    });
    shared.set_not_ready(Some(
        "raft: waiting to apply the committed membership and configuration".into(),
    ));
    let node = ClusterNode::start(opts, discover, shared.shutdown_rx())
        .await
        .map_err(StartError::Config)?;
    let _ = shared.raft_identity.set((node.id, control_addr));
    let _ = shared.raft_node.set(node.clone());
    tracing::info!(
        "Listening for control (Raft, admin) connections on {}",
        fmt_host_port(&host, addr.port())
    );

    let (routes_tx, routes_rx) = watch::channel(MemberRoutes::default());
    tokio::spawn(crate::route::members::follow(shared.clone(), routes_rx));
    tokio::spawn(bridge(shared.clone(), node.membership(), routes_tx));

    let mut shutdown = shared.shutdown_rx();
    let mut builder = tonic::transport::Server::builder();
    if let Some(t) = &cfg.cluster.control_tls {
        let tls = cluster::control_tls::server_config(t).map_err(StartError::Config)?;
        builder = builder
            .tls_config(tls)
            .map_err(|e| StartError::Config(format!("control_tls: {e}")))?;
    }
    let router = builder
        .add_service(cluster::service::raft_service(node.clone()))
        .add_service(crate::admin::admin_service(node.clone(), shared.clone()));
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    let server = tokio::spawn(async move {
        let stop = async move {
            let _ = shutdown.wait_for(|s| *s).await;
        };
        if let Err(e) = router.serve_with_incoming_shutdown(incoming, stop).await {
            tracing::error!("Control listener failed: {e}");
        }
    });
    Ok(Some(ControlHandle { node, addr, server }))
}

/// Applies each new ClusterState to the data plane.
async fn bridge(
    shared: Arc<ServerShared>,
    mut rx: watch::Receiver<ClusterState>,
    routes: watch::Sender<MemberRoutes>,
) {
    let mut shutdown = shared.shutdown_rx();
    let mut seen: Option<ClusterState> = None;
    loop {
        let s = rx.borrow_and_update().clone();
        raft_spans(&shared, seen.as_ref(), &s);
        seen = Some(s.clone());
        if s.config_version > 0 {
            shared.set_cluster_config(s.config.clone());
        }
        if s.ready && shared.not_ready().is_some() {
            tracing::info!("Raft: membership and configuration applied, ready");
            shared.set_not_ready(None);
        }
        let view = MemberRoutes {
            own_id: s.node_id,
            members: s
                .members
                .iter()
                .map(|(id, m)| (*id, m.node.route_url.clone()))
                .collect(),
            removed: s.removed.clone(),
        };
        routes.send_if_modified(|v| {
            if *v == view {
                return false;
            }
            *v = view;
            true
        });
        tokio::select! {
            _ = shutdown.wait_for(|s| *s) => return,
            r = rx.changed() => if r.is_err() { return },
        }
    }
}

/// OpenTelemetry spans for control-plane events (a no-op unless telemetry is on): a
/// new leader, a membership change, a cluster config version applied. Each is an
/// instant span on the node that saw it; comparing nodes' spans shows how long the
/// change took to reach each of them.
fn raft_spans(shared: &ServerShared, old: Option<&ClusterState>, new: &ClusterState) {
    use opentelemetry::KeyValue;
    let now = std::time::SystemTime::now();
    let id = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    let node = KeyValue::new("tern.raft.node_id", id(new.node_id));
    if old.map(|o| o.leader) != Some(new.leader) {
        if let Some(l) = new.leader {
            let mut attrs = vec![node.clone(), KeyValue::new("tern.raft.leader_id", id(l))];
            if let Some(p) = old.and_then(|o| o.leader) {
                attrs.push(KeyValue::new("tern.raft.previous_leader_id", id(p)));
            }
            crate::telemetry::admin(shared, "tern.raft.leader_change", now, attrs);
        }
    }
    let ids = |s: &ClusterState| s.members.keys().copied().collect::<Vec<_>>();
    if old.is_some_and(|o| ids(o) != ids(new) || o.removed != new.removed) {
        crate::telemetry::admin(
            shared,
            "tern.raft.membership_change",
            now,
            vec![
                node.clone(),
                KeyValue::new("tern.raft.members", new.members.len() as i64),
                KeyValue::new("tern.raft.removed", new.removed.len() as i64),
            ],
        );
    }
    if old.map(|o| o.config_version) != Some(new.config_version) && new.config_version > 0 {
        crate::telemetry::admin(
            shared,
            "tern.raft.config_applied",
            now,
            vec![
                node,
                KeyValue::new("tern.cluster.config_version", id(new.config_version)),
            ],
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_forms() {
        assert_eq!(
            split_listen("127.0.0.1:0").unwrap(),
            ("127.0.0.1".into(), 0)
        );
        assert_eq!(split_listen("0.0.0.0").unwrap(), ("0.0.0.0".into(), 6250));
        assert_eq!(split_listen(":7000").unwrap(), ("0.0.0.0".into(), 7000));
        assert_eq!(split_listen("[::1]:7000").unwrap(), ("::1".into(), 7000));
        assert!(split_listen("h:x").is_err());
    }
}
