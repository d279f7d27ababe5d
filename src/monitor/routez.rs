//! /routez, /gatewayz and /leafz, plus the route figures /varz and /metrics show.
//!
//! tern has no routes yet: every function that reads route state is here and answers
//! "none", in the exact empty shapes nats-server returns. The routes work extends
//! [`route_infos`], [`route_totals`], [`num_routes`] and [`num_remotes`] (and
//! `cluster_varz` for the configured cluster) without touching the other endpoints.

use std::time::SystemTime;

use axum::extract::State;
use axum::response::Response;
use serde_json::{json, Value};

use super::format::{rfc3339, Query};
use super::{respond, Params, QueryMap, St};
use crate::config::Config;
use crate::server::ServerShared;

/// One `routes[]` entry per route connection, in nats-server's RouteInfo shape
/// (`rid, remote_id, remote_name, did_solicit, is_configured, ip, port, start,
/// last_activity, rtt, uptime, idle, pending_size, in_msgs, out_msgs, in_bytes,
/// out_bytes, subscriptions, subscriptions_list(_detail), account, compression`).
/// `subs`/`detail` ask for the subscription lists.
pub fn route_infos(_s: &ServerShared, _subs: bool, _detail: bool) -> Vec<Value> {
    Vec::new()
}

/// (in_msgs, in_bytes, out_msgs, out_bytes) over route connections, live and closed.
pub fn route_totals(_s: &ServerShared) -> (u64, u64, u64, u64) {
    (0, 0, 0, 0)
}

/// Route connections (/varz `routes`).
pub fn num_routes(s: &ServerShared) -> usize {
    route_infos(s, false, false).len()
}

/// Distinct peer servers (/varz `remotes`).
pub fn num_remotes(_s: &ServerShared) -> usize {
    0
}

/// /varz `cluster`: `{}` without a cluster block, else its configured listen side.
pub fn cluster_varz(c: &Config) -> Value {
    let cl = &c.cluster;
    if !cl.enabled() {
        return json!({});
    }
    let mut v = json!({});
    if let Some(name) = &cl.name {
        v["name"] = json!(name);
    }
    v["addr"] = json!(cl.host.clone().unwrap_or_else(|| c.host.clone()));
    if let Some(port) = cl.port.filter(|p| *p > 0) {
        v["cluster_port"] = json!(port);
    }
    let auth = cl
        .authorization
        .timeout
        .unwrap_or(crate::config::defaults::AUTH_TIMEOUT);
    v["auth_timeout"] = json!(auth.as_secs_f64());
    if !cl.routes.is_empty() {
        v["urls"] = json!(cl.routes);
    }
    v["tls_timeout"] = json!(crate::config::defaults::TLS_TIMEOUT.as_secs_f64());
    v
}

pub async fn handle_routez(State(m): St, Params(q): Params<QueryMap>) -> Response {
    respond(routez(&m.shared, &Query(&q)))
}

/// The /routez document (also the source of the `gnatsd_routez_*` metrics).
pub fn routez(s: &ServerShared, q: &Query<'_>) -> Result<Value, String> {
    let (subs, detail) = q.subs()?;
    let routes = route_infos(s, subs, detail);
    Ok(json!({
        "server_id": s.server_id,
        "server_name": s.server_name,
        "now": rfc3339(SystemTime::now()),
        "num_routes": routes.len(),
        "routes": routes,
    }))
}

pub async fn handle_gatewayz(State(m): St, Params(q): Params<QueryMap>) -> Response {
    let q = Query(&q);
    respond(q.bool("accs").and_then(|_| q.subs()).map(|_| {
        json!({
            "server_id": m.shared.server_id,
            "now": rfc3339(SystemTime::now()),
            "outbound_gateways": {},
            "inbound_gateways": {},
        })
    }))
}

pub async fn handle_leafz(State(m): St, Params(q): Params<QueryMap>) -> Response {
    respond(Query(&q).subs().map(|_| {
        json!({
            "server_id": m.shared.server_id,
            "now": rfc3339(SystemTime::now()),
            "leafnodes": 0,
            "leafs": [],
        })
    }))
}
