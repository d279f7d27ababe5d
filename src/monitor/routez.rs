//! /routez, /gatewayz and /leafz, plus the route figures /varz and /metrics show.
//!
//! Every function that reads route state is here; gateways and leafnodes answer
//! with the empty shapes nats-server returns when none are configured.

use std::time::SystemTime;

use axum::extract::State;
use axum::response::Response;
use serde_json::{json, Value};

use std::sync::atomic::Ordering;

use super::format::{elapsed, rfc3339, rtt, uptime, Query};
use super::{respond, Params, QueryMap, St};
use crate::config::Config;
use crate::server::ServerShared;

/// One `routes[]` entry per route connection, in nats-server's RouteInfo shape
/// (`rid, remote_id, remote_name, did_solicit, is_configured, ip, port, start,
/// last_activity, rtt, uptime, idle, pending_size, in_msgs, out_msgs, in_bytes,
/// out_bytes, subscriptions, subscriptions_list(_detail), account, compression`).
/// `subs`/`detail` ask for the subscription lists.
pub fn route_infos(s: &ServerShared, subs: bool, detail: bool) -> Vec<Value> {
    let now = SystemTime::now();
    let mut routes = s.routes.routes();
    routes.sort_by_key(|r| r.conn.cid);
    routes
        .iter()
        .map(|r| {
            let c = &r.conn;
            let (out_msgs, out_bytes) = c.out.counters();
            let sub_list: Vec<_> = c.subs.lock().values().cloned().collect();
            let meta = c.meta.lock().clone();
            let last = c.last_activity();
            let mut v = json!({
                "rid": c.cid,
                "remote_id": r.remote_id,
                "remote_name": r.remote_name,
                "did_solicit": r.solicited,
                "is_configured": r.configured,
                "ip": c.addr.ip().to_string(),
                "port": c.addr.port(),
                "start": rfc3339(c.start),
                "last_activity": rfc3339(last),
                "rtt": rtt(meta.rtt),
                "uptime": uptime(elapsed(now, c.start)),
                "idle": uptime(elapsed(now, last)),
                "pending_size": c.out.pending(),
                "in_msgs": c.in_msgs.load(Ordering::Relaxed),
                "out_msgs": out_msgs,
                "in_bytes": c.in_bytes.load(Ordering::Relaxed),
                "out_bytes": out_bytes,
                "subscriptions": sub_list.len(),
                "compression": "off",
            });
            if detail {
                let d: Vec<Value> = sub_list
                    .iter()
                    .map(|sub| {
                        let mut o = json!({
                            "account": "$G",
                            "subject": String::from_utf8_lossy(&sub.subject),
                            "sid": "",
                            "msgs": sub.delivered.load(Ordering::Relaxed),
                            "cid": c.cid,
                        });
                        if let Some(q) = &sub.queue {
                            o["qgroup"] = json!(String::from_utf8_lossy(q));
                        }
                        o
                    })
                    .collect();
                v["subscriptions_list_detail"] = json!(d);
            } else if subs {
                let l: Vec<String> = sub_list
                    .iter()
                    .map(|sub| String::from_utf8_lossy(&sub.subject).into_owned())
                    .collect();
                v["subscriptions_list"] = json!(l);
            }
            v
        })
        .collect()
}

/// (in_msgs, in_bytes, out_msgs, out_bytes) over live route connections.
pub fn route_totals(s: &ServerShared) -> (u64, u64, u64, u64) {
    let mut t = (0, 0, 0, 0);
    for r in s.routes.routes() {
        let (om, ob) = r.conn.out.counters();
        t.0 += r.conn.in_msgs.load(Ordering::Relaxed);
        t.1 += r.conn.in_bytes.load(Ordering::Relaxed);
        t.2 += om;
        t.3 += ob;
    }
    t
}

/// Route connections (/varz `routes`).
pub fn num_routes(s: &ServerShared) -> usize {
    route_infos(s, false, false).len()
}

/// Distinct peer servers (/varz `remotes`).
pub fn num_remotes(s: &ServerShared) -> usize {
    s.routes.num_routes()
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
    let tls_timeout = cl
        .tls
        .as_ref()
        .map_or(crate::config::defaults::TLS_TIMEOUT, |t| t.timeout());
    v["tls_timeout"] = json!(tls_timeout.as_secs_f64());
    if let Some(t) = &cl.tls {
        v["tls_required"] = json!(true);
        if t.verify {
            v["tls_verify"] = json!(true);
        }
    }
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
