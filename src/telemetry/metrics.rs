//! OTLP metrics: the figures `/metrics` serves as `tern_*`, as observable instruments
//! read from the server's own counters at export time (every metrics interval), so
//! nothing is counted twice and the hot path is untouched.
//!
//! Names follow OTel conventions (dots, units separate): `tern_messages_received_total`
//! in Prometheus is `tern.messages.received` with unit `{message}` here, and a Prometheus
//! backend fed through a collector shows the familiar name again.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use opentelemetry::metrics::{Meter, MeterProvider as _};
use opentelemetry::KeyValue;
use opentelemetry_sdk::metrics::SdkMeterProvider;

use crate::server::ServerShared;

/// Counters summed over live and closed connections can dip for one reading while a
/// connection moves from one to the other; a backend would take that for a reset. Each
/// cumulative series reports its high-water mark instead (as `/metrics` does).
#[derive(Default)]
struct HighWater(AtomicU64);

impl HighWater {
    fn clamp(&self, v: u64) -> u64 {
        self.0.fetch_max(v, Ordering::Relaxed).max(v)
    }
}

/// (client, route) totals of one direction/unit: (msgs in, bytes in, msgs out, bytes out).
fn totals(s: &ServerShared) -> [(u64, u64); 4] {
    let c = s.message_totals();
    // Route traffic as /routez and /varz count it: per registered route connection.
    let mut r = (0, 0, 0, 0);
    for route in s.routes.routes() {
        let (om, ob) = route.conn.out.counters();
        r.0 += route.conn.in_msgs.load(Ordering::Relaxed);
        r.1 += route.conn.in_bytes.load(Ordering::Relaxed);
        r.2 += om;
        r.3 += ob;
    }
    [(c.0, r.0), (c.1, r.1), (c.2, r.2), (c.3, r.3)]
}

/// Registers every instrument on `provider`; callbacks hold a weak reference so the
/// meter provider never keeps a stopped server alive.
pub(super) fn register(provider: &SdkMeterProvider, shared: &Arc<ServerShared>) {
    let meter = provider.meter(super::SCOPE);
    let weak = Arc::downgrade(shared);
    messages(&meter, &weak);
    connections(&meter, &weak);
    health(&meter, &weak);
}

/// Runs `f` with the server if it still exists.
fn with<T>(w: &Weak<ServerShared>, f: impl FnOnce(&ServerShared) -> T) -> Option<T> {
    w.upgrade().map(|s| f(&s))
}

fn messages(meter: &Meter, weak: &Weak<ServerShared>) {
    let series = [
        ("tern.messages.received", "{message}", "Messages received."),
        ("tern.bytes.received", "By", "Payload bytes received."),
        ("tern.messages.sent", "{message}", "Messages delivered."),
        ("tern.bytes.sent", "By", "Payload bytes delivered."),
    ];
    for (i, (name, unit, help)) in series.into_iter().enumerate() {
        let w = weak.clone();
        let marks: [HighWater; 2] = Default::default();
        meter
            .u64_observable_counter(name)
            .with_unit(unit)
            .with_description(format!("{help} By connection kind (client, route)."))
            .with_callback(move |o| {
                if let Some(t) = with(&w, totals) {
                    let (client, route) = t[i];
                    o.observe(marks[0].clamp(client), &[KeyValue::new("kind", "client")]);
                    o.observe(marks[1].clamp(route), &[KeyValue::new("kind", "route")]);
                }
            })
            .build();
    }
}

fn connections(meter: &Meter, weak: &Weak<ServerShared>) {
    let w = weak.clone();
    meter
        .i64_observable_up_down_counter("tern.connections")
        .with_unit("{connection}")
        .with_description("Open client connections.")
        .with_callback(move |o| {
            if let Some(n) = with(&w, |s| s.clients.len()) {
                o.observe(i64::try_from(n).unwrap_or(i64::MAX), &[]);
            }
        })
        .build();
    let w = weak.clone();
    meter
        .u64_observable_counter("tern.connections.accepted")
        .with_unit("{connection}")
        .with_description("Client connections accepted since start.")
        .with_callback(move |o| {
            if let Some(n) = with(&w, |s| s.stats.total_connections.load(Ordering::Relaxed)) {
                o.observe(n, &[]);
            }
        })
        .build();
    let w = weak.clone();
    meter
        .u64_observable_counter("tern.connections.closed")
        .with_unit("{connection}")
        .with_description("Closed client connections by close reason.")
        .with_callback(move |o| {
            if let Some(by) = with(&w, |s| s.stats.closed_by_reason.lock().clone()) {
                for (reason, n) in by {
                    o.observe(n, &[KeyValue::new("reason", reason)]);
                }
            }
        })
        .build();
    let w = weak.clone();
    meter
        .i64_observable_up_down_counter("tern.routes")
        .with_unit("{route}")
        .with_description("Registered route connections.")
        .with_callback(move |o| {
            if let Some(n) = with(&w, |s| s.routes.num_routes()) {
                o.observe(i64::try_from(n).unwrap_or(i64::MAX), &[]);
            }
        })
        .build();
    let w = weak.clone();
    meter
        .i64_observable_up_down_counter("tern.subscriptions")
        .with_unit("{subscription}")
        .with_description("Subscriptions in the sublist (local and remote).")
        .with_callback(move |o| {
            if let Some(n) = with(&w, |s| s.accounts.total_stats().num_subscriptions) {
                o.observe(i64::try_from(n).unwrap_or(i64::MAX), &[]);
            }
        })
        .build();
}

fn health(meter: &Meter, weak: &Weak<ServerShared>) {
    type Read = fn(&ServerShared) -> u64;
    let series: [(&'static str, &'static str, Read); 3] = [
        (
            "tern.slow_consumers",
            "Connections closed as slow consumers.",
            |s| s.stats.slow_consumers.load(Ordering::Relaxed),
        ),
        (
            "tern.stale_connections",
            "Connections closed as stale (missed pings).",
            |s| s.stats.stale_connections.load(Ordering::Relaxed),
        ),
        (
            "tern.stalled_clients",
            "Times a fast producer was paused for a receiver near max_pending.",
            |s| s.stats.stalled_clients.load(Ordering::Relaxed),
        ),
    ];
    for (name, help, read) in series {
        let w = weak.clone();
        meter
            .u64_observable_counter(name)
            .with_description(help)
            .with_callback(move |o| {
                if let Some(n) = with(&w, read) {
                    o.observe(n, &[KeyValue::new("kind", "client")]);
                }
            })
            .build();
    }
    let w = weak.clone();
    meter
        .u64_observable_counter("tern.sublist.matches")
        .with_unit("{lookup}")
        .with_description("Sublist match lookups.")
        .with_callback(move |o| {
            if let Some(n) = with(&w, |s| s.accounts.total_stats().num_matches) {
                o.observe(n, &[]);
            }
        })
        .build();
}
