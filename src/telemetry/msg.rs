//! Message tracing: a published message whose headers carry a W3C `traceparent` gets
//! spans on every node it crosses, all children of the publisher's span, so one publish
//! shows up as one trace across the cluster:
//!
//! * `tern.msg.publish` (server kind): received from a client, with one
//!   `tern.msg.route_send` (producer) per peer it is forwarded to and a
//!   `tern.msg.deliver` (producer) for local subscribers;
//! * `tern.msg.route_receive` (consumer): received from a route, with its
//!   `tern.msg.deliver`.
//!
//! The receiving node parents its spans on the same `traceparent` (the header travels
//! unchanged in HMSG: tern never rewrites a message), so both nodes' spans share the
//! publisher's trace id. Kept when the publisher sampled the trace and the trace id
//! passes the configured ratio; the test is on the trace id, so every node agrees.
//!
//! Cost: [`start`] is inlined into the publish paths; without headers it is the
//! `hdr_len` check alone, with headers and telemetry off one more load.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::SystemTime;

use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, TraceContextExt as _, TraceFlags, TraceId, TraceState,
    Tracer as _,
};
use opentelemetry::{Context, KeyValue};

use super::traceparent;
use super::{count, kv, Telemetry};
use crate::client::{Client, ConnKind, SubRef};
use crate::route::Route;
use crate::server::ServerShared;
use crate::sublist::SublistResult;

/// A traced message being handled: the publisher's context and when it arrived.
pub struct MsgTrace {
    tel: Arc<Telemetry>,
    parent: Context,
    start: SystemTime,
    size: usize,
}

/// Begins tracing a message when it carries headers, message tracing is on, and its
/// `traceparent` is sampled and within the ratio. `payload` includes the header block.
#[inline]
pub fn start(server: &ServerShared, hdr_len: Option<usize>, payload: &[u8]) -> Option<MsgTrace> {
    let h = hdr_len?;
    let tel = server.telemetry.get()?;
    if !tel.msg_tracing {
        return None;
    }
    start_traced(
        tel,
        &payload[..h.min(payload.len())],
        payload.len() - h.min(payload.len()),
    )
}

#[cold]
fn start_traced(tel: &Arc<Telemetry>, hdr: &[u8], size: usize) -> Option<MsgTrace> {
    let tp = traceparent::find(hdr)?;
    if !tp.sampled() || !traceparent::keep(&tp.trace_id, tel.msg_threshold) {
        return None;
    }
    let sc = SpanContext::new(
        TraceId::from_bytes(tp.trace_id),
        SpanId::from_bytes(tp.span_id),
        TraceFlags::new(tp.flags),
        true,
        TraceState::default(),
    );
    Some(MsgTrace {
        tel: tel.clone(),
        parent: Context::new().with_remote_span_context(sc),
        start: SystemTime::now(),
        size,
    })
}

impl MsgTrace {
    fn attrs(&self, subject: &[u8]) -> Vec<KeyValue> {
        vec![
            kv("messaging.system", "nats"),
            kv(
                "messaging.destination.name",
                String::from_utf8_lossy(subject).into_owned(),
            ),
            kv("messaging.message.body.size", count(self.size as u64)),
            kv("nats.server.id", self.tel.server_id.clone()),
            kv("nats.server.name", self.tel.server_name.clone()),
        ]
    }

    /// Starts a finished-later span under `parent`.
    fn span(
        &self,
        name: &'static str,
        kind: SpanKind,
        parent: &Context,
        attrs: Vec<KeyValue>,
    ) -> Option<Context> {
        let tracer = self.tel.tracer.as_ref()?;
        let span = tracer
            .span_builder(Cow::Borrowed(name))
            .with_kind(kind)
            .with_start_time(self.start)
            .with_attributes(attrs)
            .start_with_context(tracer, parent);
        Some(parent.with_span(span))
    }

    /// A client's publish was dispatched: `result` is what it matched, `delivered`
    /// what `dispatch::deliver` returned (local subscriptions plus routes).
    pub fn published(
        self,
        server: &ServerShared,
        client: &Client,
        subject: &[u8],
        result: &SublistResult<SubRef>,
        delivered: usize,
    ) {
        let mut attrs = self.attrs(subject);
        attrs.push(kv("nats.client.id", count(client.cid)));
        let Some(cx) = self.span("tern.msg.publish", SpanKind::Server, &self.parent, attrs) else {
            return;
        };
        // Routes the message went to: every route with plain interest, and routes
        // holding queue interest (one of them was picked unless a local member won).
        let mut routes: Vec<&Arc<Client>> = Vec::new();
        let route_subs = result.psubs.iter().chain(result.qsubs.iter().flatten());
        for s in route_subs.filter(|s| s.0.client.kind == ConnKind::Route) {
            if !routes.iter().any(|r| Arc::ptr_eq(r, &s.0.client)) {
                routes.push(&s.0.client);
            }
        }
        let peers = if routes.is_empty() {
            Vec::new()
        } else {
            server.routes.routes()
        };
        for r in &routes {
            let mut a = self.attrs(subject);
            a.push(kv("nats.route.id", count(r.cid)));
            if let Some(p) = peers.iter().find(|p| Arc::ptr_eq(&p.conn, r)) {
                a.push(kv("nats.route.remote_name", p.remote_name.clone()));
                a.push(kv("nats.route.remote_id", p.remote_id.clone()));
            }
            if let Some(s) = self.span("tern.msg.route_send", SpanKind::Producer, &cx, a) {
                s.span().end();
            }
        }
        let local = delivered.saturating_sub(routes.len());
        self.deliver(&cx, subject, local);
        cx.span().end();
    }

    /// A message from a route was delivered to `delivered` local subscriptions.
    pub fn routed(self, conn: &Client, route: Option<&Route>, subject: &[u8], delivered: usize) {
        let mut attrs = self.attrs(subject);
        attrs.push(kv("nats.route.id", count(conn.cid)));
        if let Some(r) = route {
            attrs.push(kv("nats.route.remote_name", r.remote_name.clone()));
            attrs.push(kv("nats.route.remote_id", r.remote_id.clone()));
        }
        let Some(cx) = self.span(
            "tern.msg.route_receive",
            SpanKind::Consumer,
            &self.parent,
            attrs,
        ) else {
            return;
        };
        self.deliver(&cx, subject, delivered);
        cx.span().end();
    }

    fn deliver(&self, parent: &Context, subject: &[u8], n: usize) {
        if n == 0 {
            return;
        }
        let mut a = self.attrs(subject);
        a.push(kv("nats.deliveries", count(n as u64)));
        if let Some(s) = self.span("tern.msg.deliver", SpanKind::Producer, parent, a) {
            s.span().end();
        }
    }
}
