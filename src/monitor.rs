//! HTTP monitoring in nats-server's JSON shape: /varz /connz /subsz /healthz and the
//! index page. Handlers read shared state and counters; they never take a lock that
//! the message path holds for long (the sublist is read via its own read lock).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::extract::{Query, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Map, Value};
use tokio::net::TcpListener;

use crate::config::duration::format_duration;
use crate::server::{ServerShared, NATS_COMPAT_VERSION};

type Shared = Arc<ServerShared>;

pub async fn serve(shared: Shared, listener: TcpListener) {
    let mut shutdown = shared.shutdown_rx();
    let app = Router::new()
        .route("/", get(index))
        .route("/varz", get(varz))
        .route("/connz", get(connz))
        .route("/subsz", get(subsz))
        .route("/subscriptionsz", get(subsz))
        .route("/healthz", get(healthz))
        .layer(middleware::from_fn_with_state(
            shared.clone(),
            count_requests,
        ))
        .with_state(shared);
    let _ = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = shutdown.changed().await;
        })
        .await;
}

async fn count_requests(State(s): State<Shared>, req: Request, next: Next) -> Response {
    *s.http_requests
        .entry(req.uri().path().to_string())
        .or_insert(0) += 1;
    next.run(req).await
}

/// nats-server answers pretty JSON with CORS open.
fn json_response(v: &Value) -> Response {
    let body = serde_json::to_string_pretty(v).unwrap_or_default();
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
        ],
        body,
    )
        .into_response()
}

fn bad_request(msg: String) -> Response {
    (StatusCode::BAD_REQUEST, msg).into_response()
}

/// RFC 3339 UTC with nanoseconds, as Go marshals time.Time.
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    let (y, m, dd) = civil_from_days(days);
    let nanos = d.subsec_nanos();
    let frac = if nanos == 0 {
        String::new()
    } else {
        let s = format!(".{nanos:09}");
        s.trim_end_matches('0').to_string()
    };
    format!(
        "{y:04}-{m:02}-{dd:02}T{:02}:{:02}:{:02}{frac}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// nats-server's uptime style: "9s", "1m29s", "2h0m5s", "2d3h0m5s".
pub fn uptime(d: Duration) -> String {
    let s = d.as_secs();
    let (days, h, m, sec) = (s / 86400, (s % 86400) / 3600, (s % 3600) / 60, s % 60);
    if days > 0 {
        format!("{days}d{h}h{m}m{sec}s")
    } else if h > 0 {
        format!("{h}h{m}m{sec}s")
    } else if m > 0 {
        format!("{m}m{sec}s")
    } else {
        format!("{sec}s")
    }
}

fn since(t: SystemTime) -> Duration {
    SystemTime::now().duration_since(t).unwrap_or_default()
}

/// Go strconv.ParseBool forms, plus nats-server's error text.
fn parse_bool(q: &HashMap<String, String>, key: &str) -> Result<bool, String> {
    match q.get(key).map(String::as_str) {
        None | Some("") => Ok(false),
        Some("1" | "t" | "T" | "true" | "TRUE" | "True") => Ok(true),
        Some("0" | "f" | "F" | "false" | "FALSE" | "False") => Ok(false),
        Some(v) => Err(format!(
            "Error decoding boolean for '{key}': strconv.ParseBool: parsing \"{v}\": invalid syntax"
        )),
    }
}

fn parse_int(q: &HashMap<String, String>, key: &str, default: usize) -> Result<usize, String> {
    match q.get(key) {
        None => Ok(default),
        Some(v) => v.parse::<i64>().map(|n| n.max(0) as usize).map_err(|_| {
            format!(
                "Error decoding integer for '{key}': strconv.Atoi: parsing \"{v}\": invalid syntax"
            )
        }),
    }
}

async fn index() -> Response {
    let links = ["varz", "connz", "subsz", "healthz"];
    let body: String = links
        .iter()
        .map(|l| format!("<a href=\"./{l}\">{l}</a><br/>\n"))
        .collect();
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        format!("<html><body><h1>tern monitoring</h1>\n{body}</body></html>\n"),
    )
        .into_response()
}

async fn healthz() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        r#"{"status":"ok"}"#,
    )
        .into_response()
}

fn proc_mem_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<u64>().ok())
            })
        })
        .map_or(0, |kb| kb * 1024)
}

async fn varz(State(s): State<Shared>) -> Response {
    let c = s.config();
    let (in_msgs, in_bytes, out_msgs, out_bytes) = s.message_totals();
    let info = s.info();
    let now = SystemTime::now();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let http_stats: Map<String, Value> = s
        .http_requests
        .iter()
        .map(|e| (e.key().clone(), json!(*e.value())))
        .collect();
    let slow = s.stats.slow_consumers.load(Ordering::Relaxed);
    let mut v = json!({
        "server_id": s.server_id,
        "server_name": s.server_name,
        "version": NATS_COMPAT_VERSION,
        "proto": 1,
        "go": info.go,
        "host": c.host,
        "port": info.port,
        "max_connections": c.max_connections,
        "ping_interval": c.ping_interval.as_nanos() as u64,
        "ping_max": c.ping_max,
        "http_host": c.http_host.clone().unwrap_or_else(|| c.host.clone()),
        "http_port": c.http_port.unwrap_or(0),
        "http_base_path": "",
        "https_port": c.https_port.unwrap_or(0),
        "auth_timeout": c.auth_timeout().as_secs_f64(),
        "max_control_line": c.max_control_line,
        "max_payload": c.max_payload,
        "max_pending": c.max_pending,
        "cluster": {},
        "gateway": {},
        "leaf": {},
        "mqtt": {},
        "websocket": {},
        "jetstream": {},
        "tls_timeout": 2,
        "write_deadline": c.write_deadline.as_nanos() as u64,
        "start": rfc3339(s.start),
        "now": rfc3339(now),
        "uptime": uptime(since(s.start)),
        "mem": proc_mem_bytes(),
        "cores": cores,
        "gomaxprocs": cores,
        "cpu": 0,
        "connections": s.clients.len(),
        "total_connections": s.stats.total_connections.load(Ordering::Relaxed),
        "routes": 0,
        "remotes": 0,
        "leafnodes": 0,
        "in_msgs": in_msgs,
        "in_bytes": in_bytes,
        "out_msgs": out_msgs,
        "out_bytes": out_bytes,
        "slow_consumers": slow,
        "stale_connections": s.stats.stale_connections.load(Ordering::Relaxed),
        "stalled_clients": s.stats.stalled_clients.load(Ordering::Relaxed),
        "subscriptions": s.sublist.count(),
        "http_req_stats": http_stats,
        "config_load_time": rfc3339(s.start),
        "system_account": "$SYS",
        "slow_consumer_stats": {"clients": slow, "routes": 0, "gateways": 0, "leafs": 0},
    });
    if info.auth_required {
        v["auth_required"] = json!(true);
    }
    json_response(&v)
}

async fn connz(State(s): State<Shared>, Query(q): Query<HashMap<String, String>>) -> Response {
    match connz_inner(&s, &q) {
        Ok(v) => json_response(&v),
        Err(msg) => bad_request(msg),
    }
}

fn connz_inner(s: &ServerShared, q: &HashMap<String, String>) -> Result<Value, String> {
    let detail = q.get("subs").map(String::as_str) == Some("detail");
    let subs = detail || parse_bool(q, "subs")?;
    let auth = parse_bool(q, "auth")?;
    let offset = parse_int(q, "offset", 0)?;
    let limit = parse_int(q, "limit", 1024)?;
    let cid_filter = match q.get("cid") {
        Some(v) => Some(v.parse::<u64>().map_err(|_| {
            format!(
                "Error decoding integer for 'cid': strconv.Atoi: parsing \"{v}\": invalid syntax"
            )
        })?),
        None => None,
    };
    let state = q.get("state").map_or("open", String::as_str);
    let now = SystemTime::now();
    let mut conns: Vec<(u64, Value)> = Vec::new();
    if matches!(state, "open" | "any" | "all") {
        for c in s.clients.iter() {
            if cid_filter.is_some_and(|id| id != c.cid) {
                continue;
            }
            let meta = c.meta.lock().clone();
            let (out_msgs, out_bytes) = c.out.counters();
            let sub_list: Vec<_> = c.subs.lock().values().cloned().collect();
            let mut e = json!({
                "cid": c.cid,
                "kind": "Client",
                "type": "nats",
                "ip": c.addr.ip().to_string(),
                "port": c.addr.port(),
                "start": rfc3339(c.start),
                "last_activity": rfc3339(meta.last_activity.unwrap_or(c.start)),
                "rtt": meta.rtt.map(format_duration).unwrap_or_else(|| "0s".into()),
                "uptime": uptime(since(c.start)),
                "idle": uptime(since(meta.last_activity.unwrap_or(c.start))),
                "pending_bytes": c.out.pending(),
                "in_msgs": c.in_msgs.load(Ordering::Relaxed),
                "out_msgs": out_msgs,
                "in_bytes": c.in_bytes.load(Ordering::Relaxed),
                "out_bytes": out_bytes,
                "subscriptions": sub_list.len(),
            });
            for (k, v) in [
                ("name", &meta.name),
                ("lang", &meta.lang),
                ("version", &meta.version),
            ] {
                if !v.is_empty() {
                    e[k] = json!(v);
                }
            }
            if auth {
                if !meta.user.is_empty() {
                    e["authorized_user"] = json!(meta.user);
                }
                e["account"] = json!("$G");
            }
            if detail {
                let d: Vec<Value> = sub_list
                    .iter()
                    .map(|sub| {
                        let mut o = json!({
                            "account": "$G",
                            "subject": String::from_utf8_lossy(&sub.subject),
                            "sid": String::from_utf8_lossy(&sub.sid),
                            "msgs": sub.delivered.load(Ordering::Relaxed),
                            "cid": c.cid,
                        });
                        if let Some(qg) = &sub.queue {
                            o["qgroup"] = json!(String::from_utf8_lossy(qg));
                        }
                        let max = sub.max.load(Ordering::Relaxed);
                        if max > 0 {
                            o["max"] = json!(max);
                        }
                        o
                    })
                    .collect();
                e["subscriptions_list_detail"] = json!(d);
            } else if subs {
                let l: Vec<String> = sub_list
                    .iter()
                    .map(|sub| String::from_utf8_lossy(&sub.subject).into_owned())
                    .collect();
                e["subscriptions_list"] = json!(l);
            }
            conns.push((c.cid, e));
        }
    }
    if matches!(state, "closed" | "any" | "all") {
        for c in s.closed.lock().iter() {
            if cid_filter.is_some_and(|id| id != c.cid) {
                continue;
            }
            let mut e = json!({
                "cid": c.cid, "kind": "Client", "type": "nats",
                "ip": c.addr.ip().to_string(), "port": c.addr.port(),
                "start": rfc3339(c.start), "last_activity": rfc3339(c.stop),
                "stop": rfc3339(c.stop), "reason": c.reason.as_str(),
                "uptime": uptime(c.stop.duration_since(c.start).unwrap_or_default()),
                "idle": "0s", "pending_bytes": 0,
                "in_msgs": c.in_msgs, "out_msgs": c.out_msgs,
                "in_bytes": c.in_bytes, "out_bytes": c.out_bytes,
                "subscriptions": c.subscriptions,
            });
            for (k, v) in [
                ("name", &c.name),
                ("lang", &c.lang),
                ("version", &c.version),
            ] {
                if !v.is_empty() {
                    e[k] = json!(v);
                }
            }
            conns.push((c.cid, e));
        }
    }
    sort_conns(&mut conns, q.get("sort").map_or("cid", String::as_str))?;
    let total = conns.len();
    let page: Vec<Value> = conns
        .into_iter()
        .skip(offset)
        .take(limit)
        .map(|(_, v)| v)
        .collect();
    Ok(json!({
        "server_id": s.server_id,
        "now": rfc3339(now),
        "num_connections": page.len(),
        "total": total,
        "offset": offset,
        "limit": limit,
        "connections": page,
    }))
}

fn sort_conns(conns: &mut [(u64, Value)], by: &str) -> Result<(), String> {
    let key = match by {
        "cid" | "start" | "" => None,
        "subs" => Some("subscriptions"),
        "pending" => Some("pending_bytes"),
        "msgs_to" => Some("out_msgs"),
        "msgs_from" => Some("in_msgs"),
        "bytes_to" => Some("out_bytes"),
        "bytes_from" => Some("in_bytes"),
        "last" | "idle" | "uptime" | "rtt" | "stop" | "reason" => None,
        other => return Err(format!("Invalid sorting option: {other}")),
    };
    match key {
        None => conns.sort_by_key(|(cid, _)| *cid),
        Some(k) => conns.sort_by(|a, b| {
            let av = a.1[k].as_u64().unwrap_or(0);
            let bv = b.1[k].as_u64().unwrap_or(0);
            bv.cmp(&av)
        }),
    }
    Ok(())
}

async fn subsz(State(s): State<Shared>, Query(q): Query<HashMap<String, String>>) -> Response {
    let subs = match parse_bool(&q, "subs") {
        Ok(b) => b,
        Err(r) => return bad_request(r),
    };
    let (offset, limit) = match (parse_int(&q, "offset", 0), parse_int(&q, "limit", 1024)) {
        (Ok(o), Ok(l)) => (o, l),
        (Err(r), _) | (_, Err(r)) => return bad_request(r),
    };
    let test = q.get("test").cloned();
    if let Some(t) = &test {
        if !crate::subject::is_valid_literal_subject(t.as_bytes()) {
            return bad_request(format!("Bad subject: {t}"));
        }
    }
    let st = s.sublist.stats();
    let mut v = json!({
        "server_id": s.server_id,
        "now": rfc3339(SystemTime::now()),
        "num_subscriptions": st.num_subscriptions,
        "num_cache": st.num_cache,
        "num_inserts": st.num_inserts,
        "num_removes": st.num_removes,
        "num_matches": st.num_matches,
        "cache_hit_rate": st.cache_hit_rate,
        "max_fanout": st.max_fanout,
        "avg_fanout": st.avg_fanout,
    });
    if subs {
        let mut list: Vec<Value> = s
            .sublist
            .all()
            .into_iter()
            .filter(|(subj, _, _)| {
                test.as_ref()
                    .is_none_or(|t| crate::subject::matches(subj, t.as_bytes()))
            })
            .map(|(subj, queue, sub)| {
                let mut o = json!({
                    "account": "$G",
                    "account_tag": "$G",
                    "subject": String::from_utf8_lossy(&subj),
                    "sid": String::from_utf8_lossy(&sub.0.sid),
                    "msgs": sub.0.delivered.load(Ordering::Relaxed),
                    "cid": sub.0.client.cid,
                });
                if let Some(qg) = queue {
                    o["qgroup"] = json!(String::from_utf8_lossy(&qg));
                }
                o
            })
            .collect();
        let total = list.len();
        list = list.into_iter().skip(offset).take(limit).collect();
        v["total"] = json!(total);
        v["offset"] = json!(offset);
        v["limit"] = json!(limit);
        v["subscriptions_list"] = json!(list);
    }
    json_response(&v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_formats() {
        assert_eq!(rfc3339(SystemTime::UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = SystemTime::UNIX_EPOCH + Duration::new(1_795_000_000, 500);
        assert_eq!(rfc3339(t), "2026-11-18T11:06:40.0000005Z");
        assert_eq!(uptime(Duration::from_secs(89)), "1m29s");
        assert_eq!(
            uptime(Duration::from_secs(2 * 86400 + 3 * 3600 + 5)),
            "2d3h0m5s"
        );
    }
}
