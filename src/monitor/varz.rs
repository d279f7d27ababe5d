//! /varz: server identity, limits, and counters in nats-server's field order.
//!
//! Message counters are summed from connections on demand (`message_totals`), so the
//! message path keeps no shared counters for this endpoint. `cpu` and `mem` come from
//! /proc, sampled here at request time rather than by a background task.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use axum::response::Response;
use serde_json::{json, Map, Value};

use super::format::{elapsed, rfc3339, uptime};
use super::{json_response, routez, Monitor, St};
use crate::config::defaults;
use crate::server::NATS_COMPAT_VERSION;

/// Linux reports /proc CPU times in USER_HZ, which is 100 on every supported platform
/// (the kernel fixes it for userspace regardless of CONFIG_HZ).
const CLOCK_TICKS_PER_SEC: f64 = 100.0;

/// Process CPU % the way nats-server's pse reports it: CPU time used over the last
/// (at least one second long) interval, as a percentage of one core.
pub(crate) struct CpuSampler {
    at: Instant,
    ticks: u64,
    pcpu: f64,
}

impl CpuSampler {
    pub fn new() -> Self {
        CpuSampler {
            at: Instant::now(),
            ticks: proc_cpu_ticks().unwrap_or(0),
            pcpu: 0.0,
        }
    }

    /// Refreshes the figure when the last interval is a second old; otherwise returns
    /// the previous one (nats-server updates it once a second too).
    pub fn sample(&mut self) -> f64 {
        let secs = self.at.elapsed().as_secs_f64();
        if secs >= 1.0 {
            if let Some(ticks) = proc_cpu_ticks() {
                let used = ticks.saturating_sub(self.ticks) as f64 / CLOCK_TICKS_PER_SEC;
                self.pcpu = (used / secs * 100.0 * 100.0).round() / 100.0;
                self.ticks = ticks;
                self.at = Instant::now();
            }
        }
        self.pcpu
    }
}

/// utime + stime of this process, in clock ticks.
fn proc_cpu_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name may contain spaces and parentheses: fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After ')' field 3 (state) is index 0, so utime (14) is 11 and stime (15) is 12.
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// CPU time used by this process, in seconds (`process_cpu_seconds_total`).
pub fn proc_cpu_seconds() -> Option<f64> {
    proc_cpu_ticks().map(|t| t as f64 / CLOCK_TICKS_PER_SEC)
}

/// Resident set size in bytes (nats-server's `mem` is RSS).
pub fn proc_mem_bytes() -> u64 {
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

pub async fn handle(axum::extract::State(m): St) -> Response {
    json_response(build(&m))
}

/// The /varz document (also the source of the `gnatsd_varz_*` metrics).
pub fn build(m: &Arc<Monitor>) -> Value {
    let s = &m.shared;
    let c = s.config();
    let info = s.info();
    let now = SystemTime::now();
    let cpu = m.cpu.lock().sample();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    // Client connections only for now; route traffic joins in_msgs/out_msgs (but not
    // the *_client_* fields) when routes exist (see routez::route_totals).
    let (cin_msgs, cin_bytes, cout_msgs, cout_bytes) = s.message_totals();
    let (rin_msgs, rin_bytes, rout_msgs, rout_bytes) = routez::route_totals(s);
    let mut http: Vec<(String, u64)> = s
        .http_requests
        .iter()
        .map(|e| (e.key().clone(), *e.value()))
        .collect();
    // Go marshals map keys sorted.
    http.sort();
    let http: Map<String, Value> = http.into_iter().map(|(k, v)| (k, json!(v))).collect();
    let st = &s.stats;
    let slow = st.slow_consumers.load(Ordering::Relaxed);
    let stale = st.stale_connections.load(Ordering::Relaxed);

    let mut v = Map::new();
    let mut put = |k: &str, val: Value| {
        v.insert(k.to_string(), val);
    };
    put("server_id", json!(s.server_id));
    put("server_name", json!(s.server_name));
    put("version", json!(NATS_COMPAT_VERSION));
    put("proto", json!(info.proto));
    if !info.git_commit.is_empty() {
        put("git_commit", json!(info.git_commit));
    }
    put("go", json!(info.go));
    put("host", json!(c.host));
    put("port", json!(info.port));
    if info.auth_required {
        put("auth_required", json!(true));
    }
    if info.tls_required {
        put("tls_required", json!(true));
    }
    if info.tls_verify {
        put("tls_verify", json!(true));
    }
    if !info.ip.is_empty() {
        put("ip", json!(info.ip));
    }
    if !info.connect_urls.is_empty() {
        put("connect_urls", json!(info.connect_urls));
    }
    put("max_connections", json!(c.max_connections));
    if c.max_subscriptions > 0 {
        put("max_subscriptions", json!(c.max_subscriptions));
    }
    put("ping_interval", json!(c.ping_interval.as_nanos() as u64));
    put("ping_max", json!(c.ping_max));
    put(
        "http_host",
        json!(c.http_host.clone().unwrap_or_else(|| c.host.clone())),
    );
    put("http_port", json!(c.http_port.unwrap_or(0)));
    put("http_base_path", json!(""));
    put("https_port", json!(c.https_port.unwrap_or(0)));
    put("auth_timeout", json!(c.auth_timeout().as_secs_f64()));
    put("max_control_line", json!(c.max_control_line));
    put("max_payload", json!(c.max_payload));
    put("max_pending", json!(c.max_pending));
    put("cluster", routez::cluster_varz(&c));
    put("gateway", json!({}));
    put("leaf", json!({}));
    put("mqtt", json!({}));
    put(
        "websocket",
        s.websocket.get().map_or_else(|| json!({}), |w| w.varz()),
    );
    put("jetstream", json!({}));
    let tls_timeout = c
        .tls
        .as_ref()
        .map_or(defaults::TLS_TIMEOUT, |t| t.timeout());
    put("tls_timeout", json!(tls_timeout.as_secs_f64()));
    put("write_deadline", json!(c.write_deadline.as_nanos() as u64));
    put("start", json!(rfc3339(s.start)));
    put("now", json!(rfc3339(now)));
    put("uptime", json!(uptime(elapsed(now, s.start))));
    put("mem", json!(proc_mem_bytes()));
    put("cores", json!(cores));
    put("gomaxprocs", json!(cores));
    put("cpu", json!(cpu));
    put("connections", json!(s.clients.len()));
    put(
        "total_connections",
        json!(st.total_connections.load(Ordering::Relaxed)),
    );
    put("routes", json!(routez::num_routes(s)));
    put("remotes", json!(routez::num_remotes(s)));
    put("leafnodes", json!(0));
    put("in_msgs", json!(cin_msgs + rin_msgs));
    put("in_bytes", json!(cin_bytes + rin_bytes));
    put("in_client_msgs", json!(cin_msgs));
    put("in_client_bytes", json!(cin_bytes));
    put("out_msgs", json!(cout_msgs + rout_msgs));
    put("out_bytes", json!(cout_bytes + rout_bytes));
    put("out_client_msgs", json!(cout_msgs));
    put("out_client_bytes", json!(cout_bytes));
    put("slow_consumers", json!(slow));
    put("stale_connections", json!(stale));
    put(
        "stalled_clients",
        json!(st.stalled_clients.load(Ordering::Relaxed)),
    );
    put("subscriptions", json!(s.accounts.total_subscriptions()));
    put("http_req_stats", Value::Object(http));
    put("config_load_time", json!(rfc3339(s.config_load_time())));
    // nats-server's digest is "" without a config file; tern computes none for files, so
    // it leaves the key out rather than show a wrong digest.
    if c.config_file.is_none() {
        put("config_digest", json!(""));
    }
    put("system_account", json!("$SYS"));
    let by_kind = |all: u64, routes: u64| {
        let clients = all.saturating_sub(routes);
        json!({"clients": clients, "routes": routes, "gateways": 0, "leafs": 0})
    };
    let slow_routes = st.slow_consumer_routes.load(Ordering::Relaxed);
    let stale_routes = st.stale_routes.load(Ordering::Relaxed);
    put("slow_consumer_stats", by_kind(slow, slow_routes));
    put("stale_connection_stats", by_kind(stale, stale_routes));
    // No JetStream store, so nothing ever waits on disk I/O.
    put(
        "disk_io_wait_stats",
        json!({"waiters": 0, "waits": 0, "wait_time": 0, "max_wait_time": 0}),
    );
    Value::Object(v)
}
