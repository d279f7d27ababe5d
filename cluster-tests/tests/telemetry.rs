//! OpenTelemetry export against an OTLP receiver started inside the test (a tonic
//! server implementing the collector's TraceService and MetricsService): metrics and
//! lifecycle spans from one node, a message trace across two in-process nodes, and
//! reload of run-time settings without dropping connections.
//!
//! Log format, rotation and the log level on SIGHUP need the real process (the logger
//! is global): they are in the tern package's `tests/logging.rs`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use cluster_tests::cluster::TestCluster;
use cluster_tests::harness::{local_config, start, wait_until, RawConn};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use tern::config::TelemetryConfig;
use tern::ServerHandle;
use tokio::sync::Mutex;

const WAIT: Duration = Duration::from_secs(15);

/// One received span, flattened.
#[derive(Debug, Clone)]
struct Got {
    name: String,
    trace_id: Vec<u8>,
    parent_span_id: Vec<u8>,
    /// service.instance.id of the sender (its server_id).
    instance: String,
    attrs: Vec<KeyValue>,
}

impl Got {
    fn attr(&self, k: &str) -> Option<String> {
        attr_str(&self.attrs, k)
    }
}

fn attr_str(attrs: &[KeyValue], k: &str) -> Option<String> {
    let v = attrs
        .iter()
        .find(|a| a.key == k)?
        .value
        .as_ref()?
        .value
        .as_ref()?;
    Some(match v {
        AnyValue::StringValue(s) => s.clone(),
        AnyValue::IntValue(i) => i.to_string(),
        AnyValue::BoolValue(b) => b.to_string(),
        AnyValue::DoubleValue(d) => d.to_string(),
        other => format!("{other:?}"),
    })
}

/// What the receiver has seen.
#[derive(Default)]
struct Received {
    spans: Vec<Got>,
    /// (instance, metric name, attrs, value) of every int data point.
    points: Vec<(String, String, Vec<KeyValue>, i64)>,
}

#[derive(Clone, Default)]
struct Receiver(Arc<Mutex<Received>>);

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        req: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut r = self.0.lock().await;
        for rs in req.into_inner().resource_spans {
            let res_attrs = rs.resource.map(|r| r.attributes).unwrap_or_default();
            let instance = attr_str(&res_attrs, "service.instance.id").unwrap_or_default();
            for ss in rs.scope_spans {
                for s in ss.spans {
                    r.spans.push(Got {
                        name: s.name,
                        trace_id: s.trace_id,
                        parent_span_id: s.parent_span_id,
                        instance: instance.clone(),
                        attrs: s.attributes,
                    });
                }
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl MetricsService for Receiver {
    async fn export(
        &self,
        req: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        use opentelemetry_proto::tonic::metrics::v1::number_data_point::Value as N;
        let mut r = self.0.lock().await;
        for rm in req.into_inner().resource_metrics {
            let res_attrs = rm.resource.map(|r| r.attributes).unwrap_or_default();
            let instance = attr_str(&res_attrs, "service.instance.id").unwrap_or_default();
            for sm in rm.scope_metrics {
                for m in sm.metrics {
                    let points = match m.data {
                        Some(Data::Sum(s)) => s.data_points,
                        Some(Data::Gauge(g)) => g.data_points,
                        _ => continue,
                    };
                    for p in points {
                        let v = match p.value {
                            Some(N::AsInt(i)) => i,
                            Some(N::AsDouble(d)) => d as i64,
                            None => continue,
                        };
                        r.points
                            .push((instance.clone(), m.name.clone(), p.attributes, v));
                    }
                }
            }
        }
        Ok(tonic::Response::new(ExportMetricsServiceResponse::default()))
    }
}

/// Starts the receiver on a random loopback port.
async fn receiver() -> (Receiver, SocketAddr) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind receiver");
    let addr = listener.local_addr().expect("addr");
    let r = Receiver::default();
    let svc = tonic::transport::Server::builder()
        .add_service(TraceServiceServer::new(r.clone()))
        .add_service(MetricsServiceServer::new(r.clone()));
    tokio::spawn(svc.serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)));
    (r, addr)
}

fn telemetry_to(addr: SocketAddr) -> TelemetryConfig {
    TelemetryConfig {
        otlp_endpoint: Some(format!("http://{addr}")),
        metrics_interval: Some(Duration::from_millis(200)),
        ..Default::default()
    }
}

/// Exports whatever a node has buffered (the batch span processor waits 5 s otherwise).
async fn flush(h: &ServerHandle) {
    let t = h.shared.telemetry.get().expect("telemetry on").clone();
    tokio::task::spawn_blocking(move || t.flush())
        .await
        .expect("flush");
}

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT: &str = "00f067aa0ba902b7";

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_trace_crosses_two_nodes() {
    let (rx, addr) = receiver().await;
    let c = TestCluster::start_with(2, |_, cfg| {
        cfg.telemetry = telemetry_to(addr);
        cfg.telemetry.metrics = Some(false);
    })
    .await;
    let (mut sub, _) = RawConn::connect(c.nodes[1].client_addr()).await;
    sub.send(b"CONNECT {\"verbose\":false,\"headers\":true,\"protocol\":1}\r\nSUB traced 1\r\n")
        .await;
    sub.flush().await;
    c.wait_remote_interest(0, "traced", 1).await;

    let (mut publ, _) = RawConn::connect(c.nodes[0].client_addr()).await;
    let hdr = format!("NATS/1.0\r\ntraceparent: 00-{TRACE_ID}-{PARENT}-01\r\n\r\n");
    let body = "hello";
    let msg = format!(
        "CONNECT {{\"verbose\":false,\"headers\":true,\"protocol\":1}}\r\nHPUB traced {} {}\r\n{hdr}{body}\r\n",
        hdr.len(),
        hdr.len() + body.len()
    );
    publ.send(msg.as_bytes()).await;
    // Untraced traffic on the same path: it must produce no message spans.
    publ.send(b"PUB traced 2\r\nno\r\nHPUB traced 12 14\r\nNATS/1.0\r\n\r\nhi\r\n")
        .await;
    publ.flush().await;
    // Protocol-1 clients may get an async INFO first.
    let mut got = sub.read_line().await;
    while got.starts_with("INFO ") {
        got = sub.read_line().await;
    }
    assert!(got.starts_with("HMSG traced 1 "), "{got}");

    let (n0, n1) = (
        c.nodes[0].shared.server_id.clone(),
        c.nodes[1].shared.server_id.clone(),
    );
    let want = hex(TRACE_ID);
    wait_until(WAIT, "message spans from both nodes", || async {
        flush(&c.nodes[0]).await;
        flush(&c.nodes[1]).await;
        let r = rx.0.lock().await;
        let of = |inst: &str, name: &str| {
            r.spans
                .iter()
                .any(|s| s.instance == inst && s.name == name && s.trace_id == want)
        };
        of(&n0, "tern.msg.publish")
            && of(&n0, "tern.msg.route_send")
            && of(&n1, "tern.msg.route_receive")
            && of(&n1, "tern.msg.deliver")
    })
    .await;

    let r = rx.0.lock().await;
    let msg_spans: Vec<&Got> = r
        .spans
        .iter()
        .filter(|s| s.name.starts_with("tern.msg."))
        .collect();
    assert!(
        msg_spans.iter().all(|s| s.trace_id == want),
        "only the traced message has spans: {msg_spans:#?}"
    );
    let publish = msg_spans
        .iter()
        .find(|s| s.name == "tern.msg.publish")
        .expect("publish span");
    assert_eq!(
        publish.parent_span_id,
        hex(PARENT),
        "child of the publisher"
    );
    assert_eq!(
        publish.attr("messaging.destination.name").as_deref(),
        Some("traced")
    );
    let recv = msg_spans
        .iter()
        .find(|s| s.name == "tern.msg.route_receive")
        .expect("route receive span");
    assert_eq!(recv.parent_span_id, hex(PARENT));
    assert_eq!(recv.attr("nats.route.remote_name").as_deref(), Some("n0"));
    let send = msg_spans
        .iter()
        .find(|s| s.name == "tern.msg.route_send")
        .expect("route send span");
    assert_eq!(send.attr("nats.route.remote_name").as_deref(), Some("n1"));
    let deliver = msg_spans
        .iter()
        .find(|s| s.name == "tern.msg.deliver" && s.instance == n1)
        .expect("deliver span");
    assert_eq!(deliver.attr("nats.deliveries").as_deref(), Some("1"));
    drop(r);
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_connection_spans() {
    let (rx, addr) = receiver().await;
    let mut cfg = local_config();
    cfg.server_name = Some("otel-metrics".into());
    cfg.telemetry = telemetry_to(addr);
    let h = start(cfg).await;
    let id = h.shared.server_id.clone();

    let (mut c, _) = RawConn::connect(h.client_addr()).await;
    c.send(b"CONNECT {\"verbose\":false,\"name\":\"otel-client\"}\r\nSUB m 1\r\n")
        .await;
    for _ in 0..5 {
        c.send(b"PUB m 3\r\nabc\r\n").await;
    }
    c.flush().await;
    drop(c);

    wait_until(WAIT, "metrics with the client's messages", || async {
        flush(&h).await;
        let r = rx.0.lock().await;
        let point = |name: &str, kind: Option<&str>| {
            r.points.iter().any(|(inst, n, attrs, v)| {
                inst == &id
                    && n == name
                    && *v >= 5
                    && kind.is_none_or(|k| attr_str(attrs, "kind").as_deref() == Some(k))
            })
        };
        point("tern.messages.received", Some("client"))
            && point("tern.messages.sent", Some("client"))
            && point("tern.bytes.received", Some("client"))
            && r.points
                .iter()
                .any(|(i, n, _, _)| i == &id && n == "tern.connections")
    })
    .await;

    wait_until(WAIT, "the closed connection's span", || async {
        flush(&h).await;
        let r = rx.0.lock().await;
        r.spans.iter().any(|s| {
            s.instance == id
                && s.name == "tern.client.connection"
                && s.attr("nats.client.name").as_deref() == Some("otel-client")
                && s.attr("nats.in_msgs").as_deref() == Some("5")
        }) && r
            .spans
            .iter()
            .any(|s| s.instance == id && s.name == "tern.server.start")
    })
    .await;
    h.shutdown().await;
}

/// Control-plane spans: a Raft node that initialises its own group reports the leader
/// change and, after a cluster config commit through the admin API, the admin call and
/// the version it applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raft_leader_and_config_spans() {
    let (rx, addr) = receiver().await;
    let dir = std::env::temp_dir().join(format!(
        "tern-otel-raft-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    let mut cfg = cluster_tests::cluster::node_config(0, "O", None);
    cfg.store_dir = Some(dir.clone());
    cfg.cluster.control_listen = Some("127.0.0.1:0".into());
    cfg.telemetry = telemetry_to(addr);
    cfg.telemetry.metrics = Some(false);
    let h = start(cfg).await;
    let id = h.shared.server_id.clone();
    wait_until(WAIT, "a leader", || async {
        h.cluster().unwrap().metrics().current_leader.is_some()
    })
    .await;
    let control = h.control_addr().unwrap().to_string();
    let mut admin = tern::cluster::proto::admin::admin_service_client::AdminServiceClient::new(
        tern::cluster::network::channel(&control, None).unwrap(),
    );
    admin
        .set_config(tern::cluster::proto::admin::SetConfigRequest {
            json: r#"{"max_payload": 2048}"#.into(),
            dry_run: false,
        })
        .await
        .expect("committed");
    let node_id = h.cluster().unwrap().id.to_string();
    wait_until(WAIT, "leader_change and config_applied spans", || async {
        flush(&h).await;
        let r = rx.0.lock().await;
        let span = |name: &str| {
            r.spans
                .iter()
                .find(|s| s.instance == id && s.name == name)
                .cloned()
        };
        let admin_ok =
            span("tern.admin.set_config").is_some_and(|a| a.attr("tern.admin.error").is_none());
        admin_ok
            && matches!(
                (span("tern.raft.leader_change"), span("tern.raft.config_applied")),
                (Some(l), Some(c))
                    if l.attr("tern.raft.leader_id").as_deref() == Some(node_id.as_str())
                        && c.attr("tern.cluster.config_version").as_deref() == Some("1")
            )
    })
    .await;
    h.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telemetry_off_by_default() {
    let h = start(local_config()).await;
    assert!(h.shared.telemetry.get().is_none());
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_applies_limits_and_reports_fixed_settings() {
    let (rx, addr) = receiver().await;
    let mut cfg = local_config();
    cfg.telemetry = telemetry_to(addr);
    cfg.telemetry.metrics = Some(false);
    let h = start(cfg.clone()).await;
    let (mut c, info) = RawConn::connect(h.client_addr()).await;
    assert!(info.contains("\"max_payload\":1048576"), "{info}");
    c.send(b"CONNECT {\"verbose\":false}\r\n").await;
    c.flush().await;

    let mut next = cfg.clone();
    next.max_payload = 100;
    next.logging.debug = true;
    next.port = 1; // cannot change at run time
    next.host = "0.0.0.0".into(); // nor this
    let reloader: tern::run::Reloader = Box::new(move || Ok(next.clone()));
    tern::run::apply_reload(&h.shared, &reloader);

    let now = h.shared.config();
    assert_eq!(now.max_payload, 100);
    assert!(now.logging.debug);
    assert_eq!(now.port, cfg.port, "port kept");
    assert_eq!(now.host, cfg.host, "host kept");
    // The open connection survived and runs under the new limit.
    c.send(b"PUB a 200\r\n").await;
    assert_eq!(c.read_line().await, "-ERR 'Maximum Payload Violation'");
    let (_c2, info) = RawConn::connect(h.client_addr()).await;
    assert!(info.contains("\"max_payload\":100,"), "{info}");

    wait_until(WAIT, "the reload span naming what was refused", || async {
        flush(&h).await;
        let r = rx.0.lock().await;
        r.spans.iter().any(|s| {
            s.name == "tern.server.reload"
                && s.attr("nats.reload.refused").as_deref() == Some("host,port")
        })
    })
    .await;
    h.shutdown().await;
}
