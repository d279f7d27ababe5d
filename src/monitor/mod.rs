//! HTTP monitoring in nats-server's shape: /varz /connz /subsz /healthz /accountz
//! /routez /gatewayz /leafz, the HTML index, and Prometheus /metrics.
//!
//! An edge of the server (design §3): handlers only read shared state and counters that
//! the data plane already keeps. They must never take a lock the message path holds for
//! long, and never make the message path do more work per message for them (counters
//! are published per read batch). One file per endpoint; `format.rs` holds the Go-style
//! time, duration and query-parameter handling they share.

mod accountz;
mod connz;
mod connz_render;
mod format;
mod healthz;
pub mod histogram;
mod metrics;
mod metrics_cluster;
mod routez;
mod subsz;
mod varz;
mod worker;

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use parking_lot::Mutex;
use serde_json::Value;
use tokio::net::TcpListener;

use crate::server::ServerShared;

pub use format::{rfc3339, uptime};

/// State of the monitoring server: the shared server state plus what only monitoring
/// needs (the CPU sampler behind /varz `cpu`).
pub(crate) struct Monitor {
    shared: Arc<ServerShared>,
    cpu: Mutex<varz::CpuSampler>,
    /// Counter high-water marks for /metrics.
    monotonic: metrics::Monotonic,
    /// Writes /connz JSON at idle CPU priority.
    worker: worker::Worker,
}

type St = State<Arc<Monitor>>;
/// Raw query parameters; nats-server reads each with `URL.Query().Get`.
type QueryMap = HashMap<String, String>;
use axum::extract::Query as Params;

/// Every endpoint tern serves, with the index page's label (nats-server's wording).
const ENDPOINTS: &[(&str, &str)] = &[
    ("/varz", "General"),
    ("/connz", "Connections"),
    ("/accountz", "Accounts"),
    ("/subsz", "Subscriptions"),
    ("/routez", "Routes"),
    ("/leafz", "LeafNodes"),
    ("/gatewayz", "Gateways"),
    ("/healthz", "Health Probe"),
    ("/metrics", "Prometheus Metrics"),
];

pub async fn serve(shared: Arc<ServerShared>, listener: TcpListener) {
    serve_on(shared, listener).await
}

/// Monitoring over TLS (`https_port` / `-ms`) with the client `tls { }` certificate
/// ([`crate::net::Security::monitor_tls`], so a reload's new certificate serves the
/// next handshake). Like nats-server, no client certificate is asked for.
pub async fn serve_tls(shared: Arc<ServerShared>, listener: TcpListener) {
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    let local = listener.local_addr();
    let mut shutdown = shared.shutdown_rx();
    // Handshakes run in their own tasks, so a slow or silent client does not hold up
    // the others; finished ones are handed to axum through the channel.
    let accepting = shared.clone();
    tokio::spawn(async move {
        loop {
            let (stream, addr) = tokio::select! {
                _ = crate::server::stopped(&mut shutdown) => return,
                r = listener.accept() => match r {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::error!("Temporary HTTPS Accept Error ({e})");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let Some(tls) = accepting.security().monitor_tls.clone() else {
                continue;
            };
            let acceptor = tokio_rustls::TlsAcceptor::from(tls);
            let tx = tx.clone();
            tokio::spawn(async move {
                let hs = acceptor.accept(stream);
                match tokio::time::timeout(std::time::Duration::from_secs(5), hs).await {
                    Ok(Ok(tls)) => {
                        let _ = tx.send((tls, addr)).await;
                    }
                    Ok(Err(e)) => tracing::debug!("{addr} - HTTPS TLS handshake error: {e}"),
                    Err(_) => tracing::debug!("{addr} - HTTPS TLS handshake timeout"),
                }
            });
        }
    });
    let Ok(local) = local else { return };
    serve_on(shared, TlsListener { rx, local }).await
}

/// Connections whose TLS handshake completed, as an axum listener.
struct TlsListener {
    rx: tokio::sync::mpsc::Receiver<(
        tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
        std::net::SocketAddr,
    )>,
    local: std::net::SocketAddr,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(x) => x,
            // The accept task ended (shutdown): wait for graceful shutdown to finish.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

async fn serve_on<L>(shared: Arc<ServerShared>, listener: L)
where
    L: axum::serve::Listener<Addr = std::net::SocketAddr>,
{
    let mut shutdown = shared.shutdown_rx();
    let state = Arc::new(Monitor {
        shared,
        cpu: Mutex::new(varz::CpuSampler::new()),
        monotonic: metrics::Monotonic::default(),
        worker: worker::Worker::start(),
    });
    let app = Router::new()
        .route("/", get(index))
        .route("/varz", get(varz::handle))
        .route("/connz", get(connz::handle))
        .route("/subsz", get(subsz::handle))
        .route("/subscriptionsz", get(subsz::handle))
        .route("/healthz", get(healthz::handle))
        .route("/accountz", get(accountz::handle))
        .route("/routez", get(routez::handle_routez))
        .route("/gatewayz", get(routez::handle_gatewayz))
        .route("/leafz", get(routez::handle_leafz))
        .route("/metrics", get(metrics::handle))
        // route_layer: only requests that hit an endpoint are counted, as nats-server's
        // http_req_stats has no entries for 404s.
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            count_requests,
        ))
        // nats-server's mux answers unknown paths with Go's NotFound text.
        .fallback(|| async {
            (
                StatusCode::NOT_FOUND,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                "404 page not found\n",
            )
        })
        .with_state(state);
    let _ = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = shutdown.wait_for(|s| *s).await;
        })
        .await;
}

async fn count_requests(State(m): St, req: Request, next: Next) -> Response {
    *m.shared
        .http_requests
        .entry(req.uri().path().to_string())
        .or_insert(0) += 1;
    next.run(req).await
}

/// nats-server answers JSON pretty-printed (2 spaces) with CORS open. Takes the
/// document by value so its numbers are rewritten in place, not in a copy.
fn json_response(mut v: Value) -> Response {
    go_numbers(&mut v);
    json_body(
        StatusCode::OK,
        serde_json::to_string_pretty(&v).unwrap_or_default(),
    )
}

/// Go writes a whole float64 without a fraction (`"auth_timeout": 2`, not `2.0`);
/// clients that decode into integers depend on it.
fn go_numbers(v: &mut Value) {
    match v {
        Value::Number(n) if n.is_f64() => {
            if let Some(f) = n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 1e15) {
                *v = Value::from(f as i64);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(go_numbers),
        Value::Object(o) => o.values_mut().for_each(go_numbers),
        _ => {}
    }
}

/// A document already written as JSON bytes (/connz).
fn json_bytes(body: Vec<u8>) -> Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
        ],
        body,
    )
        .into_response()
}

fn json_body(status: StatusCode, body: String) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
        ],
        body,
    )
        .into_response()
}

/// A rejected query: HTTP 400 with nats-server's plain-text message.
fn bad_request(msg: String) -> Response {
    (
        StatusCode::BAD_REQUEST,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        msg,
    )
        .into_response()
}

/// A document that could not be built (its builder panicked): HTTP 500.
fn internal_error(what: &str) -> Response {
    tracing::error!("Monitoring: building {what} failed");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{what}: internal error\n"),
    )
        .into_response()
}

/// Turns a handler's `Result` into a response: JSON, or 400 with the error text.
fn respond(r: Result<Value, String>) -> Response {
    match r {
        Ok(v) => json_response(v),
        Err(msg) => bad_request(msg),
    }
}

/// The index page: a link per endpoint, laid out like nats-server's.
async fn index() -> Response {
    let links: String = ENDPOINTS
        .iter()
        .enumerate()
        .map(|(i, (path, label))| {
            let class = if i + 1 == ENDPOINTS.len() {
                " class=last"
            } else {
                ""
            };
            format!("\t<a href=.{path}{class}>{label}<span class=\"endpoint\"> {path}</span></a>\n")
        })
        .collect();
    let body = format!(
        "<html lang=\"en\">\n\t<head>\n\t<style type=\"text/css\">\n\
         \t\tbody {{ font-family: ui-sans-serif,system-ui,sans-serif; margin-left: 32px }}\n\
         \t\ta {{ display:block; margin-left: 7px; padding-bottom: 6px; text-decoration: none }}\n\
         \t\t.endpoint {{ font-size: 12px; color: #999; font-family: monospace }}\n\
         \t</style>\n\t</head>\n\t<body>\n\t<h1>tern</h1>\n\
         \t<a class='version'>v{} (tern {})</a>\n\t<br/>\n{links}\
         \t<a href=https://docs.nats.io/running-a-nats-service/nats_admin/monitoring class=\"help\">Help</a>\n\
         \t</body>\n</html>\n",
        crate::server::NATS_COMPAT_VERSION,
        env!("CARGO_PKG_VERSION"),
    );
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response()
}
