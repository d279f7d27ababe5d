//! Prometheus `/metrics` in the text exposition format (0.0.4).
//!
//! Two groups:
//! * `gnatsd_<endpoint>_<field>` with a `server_id` label: the names
//!   prometheus-nats-exporter derives from /varz, /connz, /routez, /subsz and /healthz,
//!   so existing NATS dashboards work against tern directly. They are built from the
//!   very documents those endpoints serve (every top-level number of /varz and /subsz,
//!   the connz page sums, the routez per-route series), and typed as the exporter
//!   types them.
//! * `tern_*` and the standard `process_*`: tern's own series with proper counter
//!   types. Counters are clamped to never go down (see [`Monotonic`]).
//!
//! No per-subject or per-connection labels: series count stays bounded whatever the
//! traffic. The text format is written by hand: every value is read at scrape time from
//! counters the server already keeps, so a metrics library's instruments would only
//! duplicate them, and the exporter-compatible names (gauges without `_total`) are
//! easier to keep exact this way.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::SystemTime;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;
use serde_json::Value;

use super::format::Query;
use super::{connz, routez, subsz, varz, Monitor, St};

pub async fn handle(State(m): St) -> Response {
    // Off the async workers: a scrape reads every connection. At normal priority,
    // unlike /connz's JSON writing: building it takes locks (sublists, connections)
    // the message path also takes, and a scrape is ~1 ms every 15 s or so.
    let Ok(text) = tokio::task::spawn_blocking(move || render(&m)).await else {
        return super::internal_error("metrics");
    };
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

/// Text exposition writer: one `# HELP`/`# TYPE` header per family, then its samples.
pub(super) struct Text {
    out: String,
    server_id: String,
}

impl Text {
    pub(super) fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    /// A sample with `server_id` plus `labels`.
    pub(super) fn sample(&mut self, name: &str, labels: &[(&str, &str)], v: f64) {
        self.out.push_str(name);
        self.out.push_str("{server_id=\"");
        escape_into(&mut self.out, &self.server_id.clone());
        self.out.push('"');
        for (k, val) in labels {
            let _ = write!(self.out, ",{k}=\"");
            escape_into(&mut self.out, val);
            self.out.push('"');
        }
        self.out.push_str("} ");
        push_value(&mut self.out, v);
        self.out.push('\n');
    }

    pub(super) fn single(&mut self, name: &str, kind: &str, help: &str, v: f64) {
        self.family(name, kind, help);
        self.sample(name, &[], v);
    }
}

fn escape_into(out: &mut String, v: &str) {
    for ch in v.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn push_value(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        let _ = write!(out, "{}", v as i64);
    } else {
        let _ = write!(out, "{v}");
    }
}

/// High-water marks for counters assembled from several sources (live connections plus
/// the closed totals): a connection that is between the two while it closes would
/// otherwise make a sum dip for one scrape, which Prometheus reads as a counter reset.
#[derive(Default)]
pub(crate) struct Monotonic(Mutex<HashMap<String, f64>>);

impl Monotonic {
    fn clamp(&self, key: &str, v: f64) -> f64 {
        let mut m = self.0.lock();
        let e = m.entry(key.to_string()).or_insert(v);
        if v > *e {
            *e = v;
        }
        *e
    }
}

fn empty_query() -> HashMap<String, String> {
    HashMap::new()
}

/// The whole exposition.
pub fn render(m: &Arc<Monitor>) -> String {
    let s = &m.shared;
    let mut t = Text {
        out: String::with_capacity(16 * 1024),
        server_id: s.server_id.clone(),
    };
    let varz = varz::build(m);
    exporter_generic(&mut t, "varz", &varz);

    let q = empty_query();
    if let Ok(connz) = connz::connz(s, &Query(&q)) {
        exporter_connz(&mut t, &connz);
    }
    if let Ok(routez) = routez::routez(s, &Query(&q)) {
        exporter_routez(&mut t, &routez);
    }
    let subsz = serde_json::to_value(subsz::stats_for(s, None)).unwrap_or(Value::Null);
    let mut subsz = subsz;
    // The exporter also sees the paging fields of the default /subsz document.
    subsz["total"] = 0.into();
    subsz["offset"] = 0.into();
    subsz["limit"] = 1024.into();
    exporter_generic(&mut t, "subsz", &subsz);
    t.single(
        "gnatsd_healthz_status",
        "gauge",
        "status",
        0.0, // /healthz is always ok without JetStream; the exporter maps ok to 0.
    );

    tern_metrics(m, &mut t, &varz);
    super::metrics_cluster::render(s, &mut t);
    t.out
}

/// prometheus-nats-exporter's generic collector: a gauge per top-level number, and a
/// `{value="..."}` = 1 gauge for server_id, server_name and version.
fn exporter_generic(t: &mut Text, endpoint: &str, doc: &Value) {
    let Value::Object(o) = doc else { return };
    for (k, v) in o {
        let name = format!("gnatsd_{endpoint}_{k}");
        match v {
            Value::Number(n) => {
                t.family(&name, "gauge", k);
                t.sample(&name, &[], n.as_f64().unwrap_or(0.0));
            }
            Value::String(sv) if matches!(k.as_str(), "server_id" | "server_name" | "version") => {
                t.family(&name, "gauge", k);
                t.sample(&name, &[("value", sv)], 1.0);
            }
            _ => {}
        }
    }
}

/// The exporter's connz collector: page fields and sums over the default page.
fn exporter_connz(t: &mut Text, page: &connz::Page) {
    let fields = [
        ("num_connections", page.rows.len()),
        ("total", page.total),
        ("offset", page.offset),
        ("limit", page.limit),
    ];
    for (k, v) in fields {
        t.single(&format!("gnatsd_connz_{k}"), "gauge", k, v as f64);
    }
    type Field = fn(&connz::Row) -> u64;
    let sums: [(&str, Field); 6] = [
        ("pending_bytes", |r| r.pending as u64),
        ("subscriptions", |r| r.subs as u64),
        // The exporter types these as counters, but a sum over open connections drops
        // when one closes; they are gauges here so no reader mistakes a drop for a reset.
        ("in_bytes", |r| r.in_bytes),
        ("out_bytes", |r| r.out_bytes),
        ("in_msgs", |r| r.in_msgs),
        ("out_msgs", |r| r.out_msgs),
    ];
    for (k, f) in sums {
        t.single(&format!("gnatsd_connz_{k}"), "gauge", k, page.sum(f) as f64);
    }
}

/// The exporter's routez collector: identity, route count and per-route series.
fn exporter_routez(t: &mut Text, doc: &Value) {
    for k in ["server_id", "server_name"] {
        let name = format!("gnatsd_routez_{k}");
        t.family(&name, "gauge", k);
        t.sample(&name, &[("value", doc[k].as_str().unwrap_or(""))], 1.0);
    }
    t.single(
        "gnatsd_routez_num_routes",
        "gauge",
        "num_routes",
        doc["num_routes"].as_f64().unwrap_or(0.0),
    );
    let routes = doc["routes"].as_array().cloned().unwrap_or_default();
    if routes.is_empty() {
        return;
    }
    let str_of = |r: &Value, k: &str| match &r[k] {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        v => v.to_string(),
    };
    t.family("gnatsd_routez_route_info", "gauge", "route_info");
    for r in &routes {
        let labels = [
            "rid",
            "remote_id",
            "remote_name",
            "account",
            "ip",
            "compression",
        ]
        .map(|k| (k, str_of(r, k)));
        let l: Vec<(&str, &str)> = labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
        t.sample("gnatsd_routez_route_info", &l, 1.0);
    }
    for k in [
        "subscriptions",
        "in_msgs",
        "out_msgs",
        "in_bytes",
        "out_bytes",
    ] {
        let name = format!("gnatsd_routez_route_{k}");
        t.family(&name, "gauge", k);
        for r in &routes {
            let rid = str_of(r, "rid");
            t.sample(&name, &[("rid", &rid)], r[k].as_f64().unwrap_or(0.0));
        }
    }
}

/// tern's own series and the standard process metrics.
fn tern_metrics(m: &Arc<Monitor>, t: &mut Text, varz: &Value) {
    let s = &m.shared;
    let st = &s.stats;
    let mono = &m.monotonic;
    let num = |k: &str| varz[k].as_f64().unwrap_or(0.0);

    t.family("tern_info", "gauge", "Build information; always 1.");
    t.sample(
        "tern_info",
        &[
            ("version", env!("CARGO_PKG_VERSION")),
            ("nats_version", crate::server::NATS_COMPAT_VERSION),
        ],
        1.0,
    );
    t.single(
        "tern_connections",
        "gauge",
        "Open client connections.",
        num("connections"),
    );
    t.single(
        "tern_connections_accepted_total",
        "counter",
        "Client connections accepted since start.",
        st.total_connections.load(Ordering::Relaxed) as f64,
    );
    let reasons: BTreeMap<&'static str, u64> = st.closed_by_reason.lock().clone();
    t.family(
        "tern_connections_closed_total",
        "counter",
        "Closed client connections by close reason (nats-server's reason strings).",
    );
    for (reason, n) in &reasons {
        t.sample(
            "tern_connections_closed_total",
            &[("reason", reason)],
            *n as f64,
        );
    }
    for (name, help, key) in [
        (
            "tern_messages_received_total",
            "Messages received from clients.",
            "in_msgs",
        ),
        (
            "tern_bytes_received_total",
            "Payload bytes received from clients.",
            "in_bytes",
        ),
        (
            "tern_messages_sent_total",
            "Messages delivered to clients.",
            "out_msgs",
        ),
        (
            "tern_bytes_sent_total",
            "Payload bytes delivered to clients.",
            "out_bytes",
        ),
    ] {
        t.single(name, "counter", help, mono.clamp(name, num(key)));
    }
    let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    let (slow, slow_routes) = (load(&st.slow_consumers), load(&st.slow_consumer_routes));
    let (stale, stale_routes) = (load(&st.stale_connections), load(&st.stale_routes));
    for (name, help, all, routes) in [
        (
            "tern_slow_consumers_total",
            "Connections closed as slow consumers, by connection kind.",
            slow,
            slow_routes,
        ),
        (
            "tern_stale_connections_total",
            "Connections closed as stale (missed pings), by connection kind.",
            stale,
            stale_routes,
        ),
    ] {
        t.family(name, "counter", help);
        for (kind, v) in [
            ("client", all.saturating_sub(routes) as f64),
            ("route", routes as f64),
            ("gateway", 0.0),
            ("leaf", 0.0),
        ] {
            t.sample(name, &[("kind", kind)], v);
        }
    }
    t.single(
        "tern_stalled_clients_total",
        "counter",
        "Times a fast producer was paused for a receiver near max_pending.",
        st.stalled_clients.load(Ordering::Relaxed) as f64,
    );
    let sl = s.accounts.total_stats();
    t.single(
        "tern_subscriptions",
        "gauge",
        "Subscriptions in the sublist.",
        sl.num_subscriptions as f64,
    );
    t.single(
        "tern_sublist_inserts_total",
        "counter",
        "Sublist inserts.",
        sl.num_inserts as f64,
    );
    t.single(
        "tern_sublist_removes_total",
        "counter",
        "Sublist removes.",
        sl.num_removes as f64,
    );
    t.single(
        "tern_sublist_matches_total",
        "counter",
        "Sublist match lookups.",
        sl.num_matches as f64,
    );
    t.single(
        "tern_sublist_cache_entries",
        "gauge",
        "Entries in the sublist match cache.",
        sl.num_cache as f64,
    );
    t.single(
        "tern_sublist_cache_hit_ratio",
        "gauge",
        "Share of sublist matches answered from the cache since start.",
        sl.cache_hit_rate,
    );
    let mut reqs: Vec<(String, u64)> = s
        .http_requests
        .iter()
        .map(|e| (e.key().clone(), *e.value()))
        .collect();
    reqs.sort();
    t.family(
        "tern_http_requests_total",
        "counter",
        "Monitoring HTTP requests by endpoint.",
    );
    for (path, n) in &reqs {
        t.sample("tern_http_requests_total", &[("path", path)], *n as f64);
    }
    t.single(
        "process_resident_memory_bytes",
        "gauge",
        "Resident memory size in bytes.",
        num("mem"),
    );
    if let Some(cpu) = varz::proc_cpu_seconds() {
        t.single(
            "process_cpu_seconds_total",
            "counter",
            "Total user and system CPU time in seconds.",
            cpu,
        );
    }
    let start = s
        .start
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    t.single(
        "process_start_time_seconds",
        "gauge",
        "Start time of the process since the Unix epoch in seconds.",
        start.as_secs_f64(),
    );
}
