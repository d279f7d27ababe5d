//! OpenTelemetry: OTLP/gRPC export of metrics (the figures of `/metrics`) and of spans
//! for connection, route and admin lifecycles and for traced messages (see [`msg`]).
//!
//! Off by default, and then free: [`install`] returns before building anything, so there
//! is no exporter thread, and every hook below starts with `server.telemetry.get()`
//! (one load) and returns. Nothing here runs per message unless the message carries
//! headers and message tracing is on.
//!
//! One [`Telemetry`] per server (not the OTel globals): tests run several nodes in one
//! process, each with its own `service.instance.id`.

pub mod msg;
pub mod settings;
pub mod traceparent;

mod metrics;

use std::borrow::Cow;
use std::sync::Arc;
use std::time::SystemTime;

use opentelemetry::trace::{Span as _, SpanKind, Tracer as _, TracerProvider as _};
use opentelemetry::{KeyValue, Value};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::trace::{Sampler, SdkTracer, SdkTracerProvider};
use opentelemetry_sdk::Resource;

use crate::client::Client;
use crate::error::CloseReason;
use crate::route::Route;
use crate::server::{ClosedConn, ServerShared};
use settings::Settings;

/// Instrumentation scope name for tern's spans and metrics.
const SCOPE: &str = "tern";

/// A server's exporters. Lives in `ServerShared::telemetry` once installed.
pub struct Telemetry {
    tracer: Option<SdkTracer>,
    tracer_provider: Option<SdkTracerProvider>,
    meter_provider: Option<SdkMeterProvider>,
    /// Traced messages are recorded (traces on and a non-zero ratio).
    pub(crate) msg_tracing: bool,
    /// Trace-id threshold for traced messages ([`traceparent::ratio_threshold`]).
    msg_threshold: u64,
    server_id: String,
    server_name: String,
}

/// Starts export for `shared` when the configuration (or `OTEL_*`) asks for it. Must run
/// inside the tokio runtime: the tonic channel spawns its connection task there.
pub fn install(shared: &Arc<ServerShared>) {
    let cfg = shared.config();
    let Some(s) = Settings::resolve(&cfg.telemetry, |k| std::env::var(k).ok()) else {
        return;
    };
    match Telemetry::build(shared, &s) {
        Ok(t) => {
            tracing::info!(
                "OpenTelemetry export to {} (traces: {}, metrics: {}, sample ratio: {})",
                s.endpoint_display,
                s.traces,
                s.metrics,
                s.ratio
            );
            let t = Arc::new(t);
            t.admin_span("tern.server.start", shared.start, Vec::new());
            let _ = shared.telemetry.set(t);
        }
        // Telemetry is never a reason not to serve: say so and run without it.
        Err(e) => tracing::error!("OpenTelemetry export disabled: {e}"),
    }
}

impl Telemetry {
    fn build(shared: &Arc<ServerShared>, s: &Settings) -> Result<Telemetry, String> {
        // Resource::builder() applies OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES; the
        // conf's service_name goes over them, "tern" is the fallback.
        let mut rb = Resource::builder();
        let env_named = std::env::var("OTEL_SERVICE_NAME").is_ok_and(|v| !v.is_empty())
            || std::env::var("OTEL_RESOURCE_ATTRIBUTES").is_ok_and(|v| v.contains("service.name"));
        match &s.service_name {
            Some(n) => rb = rb.with_service_name(n.clone()),
            None if !env_named => rb = rb.with_service_name("tern"),
            None => {}
        }
        let resource = rb
            .with_attributes([
                KeyValue::new("service.instance.id", shared.server_id.clone()),
                KeyValue::new("service.version", env!("CARGO_PKG_VERSION")),
                KeyValue::new("nats.server.name", shared.server_name.clone()),
            ])
            .build();

        let (tracer, tracer_provider) = if s.traces {
            let mut b = opentelemetry_otlp::SpanExporter::builder().with_tonic();
            if let Some(e) = &s.endpoint {
                b = b.with_endpoint(e.clone());
            }
            let exporter = b.build().map_err(|e| format!("span exporter: {e}"))?;
            let mut pb = SdkTracerProvider::builder()
                .with_batch_exporter(exporter)
                .with_resource(resource.clone());
            if !s.sampler_from_env {
                pb = pb.with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
                    s.ratio,
                ))));
            }
            let provider = pb.build();
            (Some(provider.tracer(SCOPE)), Some(provider))
        } else {
            (None, None)
        };

        let meter_provider = if s.metrics {
            let mut b = opentelemetry_otlp::MetricExporter::builder().with_tonic();
            if let Some(e) = &s.endpoint {
                b = b.with_endpoint(e.clone());
            }
            let exporter = b.build().map_err(|e| format!("metric exporter: {e}"))?;
            let mut rb = PeriodicReader::builder(exporter);
            if let Some(i) = s.metrics_interval {
                rb = rb.with_interval(i);
            }
            let provider = SdkMeterProvider::builder()
                .with_reader(rb.build())
                .with_resource(resource)
                .build();
            metrics::register(&provider, shared);
            Some(provider)
        } else {
            None
        };

        Ok(Telemetry {
            msg_tracing: tracer.is_some() && s.ratio > 0.0,
            msg_threshold: traceparent::ratio_threshold(s.ratio),
            tracer,
            tracer_provider,
            meter_provider,
            server_id: shared.server_id.clone(),
            server_name: shared.server_name.clone(),
        })
    }

    /// Exports everything buffered now. Blocks (call from a blocking context).
    pub fn flush(&self) {
        if let Some(p) = &self.tracer_provider {
            let _ = p.force_flush();
        }
        if let Some(p) = &self.meter_provider {
            let _ = p.force_flush();
        }
    }

    /// A finished span with explicit start and end, no parent (lifecycle spans are
    /// roots: the sampler's ratio applies to them).
    fn root_span(
        &self,
        name: &'static str,
        kind: SpanKind,
        start: SystemTime,
        end: SystemTime,
        mut attrs: Vec<KeyValue>,
    ) {
        let Some(tracer) = &self.tracer else { return };
        attrs.push(KeyValue::new("nats.server.id", self.server_id.clone()));
        attrs.push(KeyValue::new("nats.server.name", self.server_name.clone()));
        let mut span = tracer
            .span_builder(Cow::Borrowed(name))
            .with_kind(kind)
            .with_start_time(start)
            .with_attributes(attrs)
            .start(tracer);
        span.end_with_timestamp(end);
    }

    /// An admin operation (start, reload, lame duck, shutdown) from `start` until now.
    fn admin_span(&self, name: &'static str, start: SystemTime, attrs: Vec<KeyValue>) {
        self.root_span(name, SpanKind::Internal, start, SystemTime::now(), attrs);
    }
}

/// Flushes and stops the exporters (server shutdown). The SDK's shutdown blocks on its
/// export threads, so it runs on the blocking pool.
pub async fn shutdown(shared: &ServerShared) {
    let Some(t) = shared.telemetry.get().cloned() else {
        return;
    };
    t.admin_span("tern.server.shutdown", SystemTime::now(), Vec::new());
    let _ = tokio::task::spawn_blocking(move || {
        if let Some(p) = &t.tracer_provider {
            let _ = p.shutdown();
        }
        if let Some(p) = &t.meter_provider {
            let _ = p.shutdown();
        }
    })
    .await;
}

/// An admin operation that started at `start` and just finished (reload, lame duck).
pub fn admin(shared: &ServerShared, name: &'static str, start: SystemTime, attrs: Vec<KeyValue>) {
    if let Some(t) = shared.telemetry.get() {
        t.admin_span(name, start, attrs);
    }
}

fn kv(k: &'static str, v: impl Into<Value>) -> KeyValue {
    KeyValue::new(k, v)
}

fn count(v: u64) -> Value {
    Value::I64(i64::try_from(v).unwrap_or(i64::MAX))
}

/// A client connection's whole life, recorded when it is closed (from /connz's closed
/// record, so the hot path keeps no span open).
pub fn connection_closed(shared: &ServerShared, c: &ClosedConn) {
    let Some(t) = shared.telemetry.get() else {
        return;
    };
    let attrs = vec![
        kv("nats.client.id", count(c.cid)),
        kv("network.peer.address", c.addr.ip().to_string()),
        kv("network.peer.port", i64::from(c.addr.port())),
        kv("nats.client.name", c.name.clone()),
        kv("nats.client.lang", c.lang.clone()),
        kv("nats.client.version", c.version.clone()),
        kv("nats.close_reason", c.reason.as_str()),
        kv("nats.in_msgs", count(c.in_msgs)),
        kv("nats.in_bytes", count(c.in_bytes)),
        kv("nats.out_msgs", count(c.out_msgs)),
        kv("nats.out_bytes", count(c.out_bytes)),
    ];
    t.root_span(
        "tern.client.connection",
        SpanKind::Server,
        c.start,
        c.stop,
        attrs,
    );
}

/// A route connection's whole life, recorded when it closes.
pub fn route_closed(
    shared: &ServerShared,
    conn: &Client,
    route: Option<&Route>,
    reason: CloseReason,
) {
    let Some(t) = shared.telemetry.get() else {
        return;
    };
    let (om, ob) = conn.out.counters();
    let mut attrs = vec![
        kv("nats.route.id", count(conn.cid)),
        kv("network.peer.address", conn.addr.ip().to_string()),
        kv("network.peer.port", i64::from(conn.addr.port())),
        kv("nats.close_reason", reason.as_str()),
        kv(
            "nats.in_msgs",
            count(conn.in_msgs.load(std::sync::atomic::Ordering::Relaxed)),
        ),
        kv(
            "nats.in_bytes",
            count(conn.in_bytes.load(std::sync::atomic::Ordering::Relaxed)),
        ),
        kv("nats.out_msgs", count(om)),
        kv("nats.out_bytes", count(ob)),
    ];
    if let Some(r) = route {
        attrs.push(kv("nats.route.remote_id", r.remote_id.clone()));
        attrs.push(kv("nats.route.remote_name", r.remote_name.clone()));
        attrs.push(kv("nats.route.solicited", r.solicited));
    }
    t.root_span(
        "tern.route.connection",
        SpanKind::Server,
        conn.start,
        SystemTime::now(),
        attrs,
    );
}
