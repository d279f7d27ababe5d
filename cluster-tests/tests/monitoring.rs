//! Monitoring endpoints and /metrics: tern against itself (a real async-nats client,
//! paging, sorting, closed connections, Prometheus text) and against a live nats-server
//! (the same client activity on both, then equal JSON key sets and equal 400 texts).
//!
//! The differential tests need `nats-server` on PATH (or `NATS_SERVER_BIN`), as the
//! differential protocol suite does.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use cluster_tests::harness::{local_config, monitor_json, start, wait_until};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const WAIT: Duration = Duration::from_secs(10);

/// GET over HTTP/1.0: (status, body).
async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).await.expect("connect monitor");
    let req = format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n");
    s.write_all(req.as_bytes()).await.expect("write");
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).await.expect("read");
    let text = String::from_utf8_lossy(&resp).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, body.to_string())
}

/// A live nats-server process, killed on drop.
struct NatsServer {
    child: Child,
    client: SocketAddr,
    monitor: SocketAddr,
}

impl NatsServer {
    async fn start() -> NatsServer {
        let bin = std::env::var("NATS_SERVER_BIN").unwrap_or_else(|_| "nats-server".into());
        let port = cluster_tests::procs::reserve_port();
        let mport = cluster_tests::procs::reserve_port();
        let child = Command::new(&bin)
            .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-m"])
            .arg(mport.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {bin}: {e}"));
        let srv = NatsServer {
            child,
            client: SocketAddr::from(([127, 0, 0, 1], port)),
            monitor: SocketAddr::from(([127, 0, 0, 1], mport)),
        };
        let m = srv.monitor;
        wait_until(WAIT, "nats-server monitor up", || async move {
            TcpStream::connect(m).await.is_ok()
        })
        .await;
        srv
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn connect(addr: SocketAddr, name: &str) -> async_nats::Client {
    async_nats::ConnectOptions::new()
        .name(name)
        .connect(format!("nats://{addr}"))
        .await
        .expect("async-nats connects")
}

/// The same activity on either server: a subscriber with a plain and a queue
/// subscription, a publisher, and a client that connects and leaves (a closed entry).
/// Returns the clients that must stay connected.
async fn activity(client: SocketAddr, monitor: SocketAddr) -> Vec<async_nats::Client> {
    let sub = connect(client, "subscriber").await;
    let s1 = sub.subscribe("foo").await.unwrap();
    let s2 = sub.queue_subscribe("q.*", "workers".into()).await.unwrap();
    sub.flush().await.unwrap();
    subscribed(monitor, "subscriber", 2).await;
    let publ = connect(client, "publisher").await;
    for i in 0..3 {
        publ.publish("foo", format!("m{i}").into()).await.unwrap();
        publ.publish("q.x", "hi".into()).await.unwrap();
    }
    publ.flush().await.unwrap();
    let gone = connect(client, "gone").await;
    let _keep = gone.subscribe("bar").await.unwrap();
    gone.flush().await.unwrap();
    drop(_keep);
    drop(gone);
    // Keep the subscriptions alive with their clients.
    std::mem::forget((s1, s2));
    vec![sub, publ]
}

/// Key paths of a JSON document: `a.b`, arrays as `a[]` (union over elements).
/// Children of `opaque` paths are not listed (maps keyed by data, e.g. request paths).
fn key_paths(v: &Value, prefix: &str, opaque: &[&str], out: &mut BTreeSet<String>) {
    match v {
        Value::Object(o) => {
            for (k, child) in o {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                out.insert(p.clone());
                if !opaque.contains(&p.as_str()) {
                    key_paths(child, &p, opaque, out);
                }
            }
        }
        Value::Array(a) => {
            for child in a {
                key_paths(child, &format!("{prefix}[]"), opaque, out);
            }
        }
        _ => {}
    }
}

fn keys(v: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    key_paths(v, "", &["http_req_stats"], &mut out);
    out
}

/// nats-server keys tern does not fill, and why. Everything else must match both ways.
const NOT_FILLED: &[(&str, &str)] = &[
    // tern is not built from a nats-server git tree; no commit to report.
    ("/varz git_commit", "no nats-server build info"),
    // JetStream feature flags: tern has no JetStream.
    ("/varz feature_flags", "no JetStream"),
    ("/varz feature_flags.js_ack_fc_v2", "no JetStream"),
    ("/varz feature_flags.js_api_reply_v2", "no JetStream"),
    ("/varz feature_flags.js_raft_delete_range", "no JetStream"),
    ("/varz feature_flags.js_snapshot_sources", "no JetStream"),
    // The automatic $SYS service imports of $G: tern has no system account services.
    (
        "/accountz?acc=$G account_detail.imports",
        "no $SYS services",
    ),
    (
        "/accountz?acc=$G account_detail.imports[].subject",
        "no $SYS services",
    ),
    (
        "/accountz?acc=$G account_detail.imports[].account",
        "no $SYS services",
    ),
    (
        "/accountz?acc=$G account_detail.imports[].to",
        "no $SYS services",
    ),
    (
        "/accountz?acc=$G account_detail.imports[].local_subject",
        "no $SYS services",
    ),
    (
        "/accountz?acc=$G account_detail.imports[].type",
        "no $SYS services",
    ),
    (
        "/accountz?acc=$G account_detail.imports[].invalid",
        "no $SYS services",
    ),
    (
        "/accountz?acc=$G account_detail.imports[].share",
        "no $SYS services",
    ),
    (
        "/accountz?acc=$G account_detail.imports[].tracking",
        "no $SYS services",
    ),
];

const COMPARED: &[&str] = &[
    "/varz",
    "/connz?subs=detail&auth=1",
    "/connz?subs=1&state=closed",
    "/connz?state=all&limit=1&sort=bytes_to",
    "/subsz",
    "/subsz?subs=1",
    "/healthz",
    "/healthz?js-enabled-only=true",
    "/accountz",
    "/accountz?acc=$G",
    "/routez",
    "/gatewayz",
    "/leafz",
];

#[tokio::test]
async fn key_sets_match_nats_server() {
    let nats = NatsServer::start().await;
    let tern = start(local_config()).await;
    let tm = tern.monitor_addr().unwrap();
    let _a = activity(nats.client, nats.monitor).await;
    let _b = activity(tern.client_addr(), tm).await;
    // Both must have recorded the closed client before the documents are compared.
    for m in [nats.monitor, tm] {
        wait_until(WAIT, "closed connection recorded", || async move {
            monitor_json(m, "/connz?state=closed").await["total"].as_u64() == Some(1)
        })
        .await;
    }
    let mut report = String::new();
    for path in COMPARED {
        let theirs = keys(&monitor_json(nats.monitor, path).await);
        let ours = keys(&monitor_json(tm, path).await);
        for k in theirs.difference(&ours) {
            let tag = format!("{} {k}", path);
            if !NOT_FILLED.iter().any(|(p, _)| *p == tag) {
                report.push_str(&format!("missing in tern: {tag}\n"));
            }
        }
        for k in ours.difference(&theirs) {
            report.push_str(&format!("extra in tern: {path} {k}\n"));
        }
    }
    assert!(report.is_empty(), "key sets differ:\n{report}");
    // Page counts too, where tern must agree on what is listed.
    for path in [
        "/connz?mqtt_client=x",
        "/connz?state=all",
        "/connz?state=closed&cid=999",
    ] {
        let count = |v: Value| (v["num_connections"].clone(), v["total"].clone());
        let theirs = count(monitor_json(nats.monitor, path).await);
        let ours = count(monitor_json(tm, path).await);
        assert_eq!(ours, theirs, "{path}");
    }
    tern.shutdown().await;
}

#[tokio::test]
async fn bad_query_values_match_nats_server() {
    let nats = NatsServer::start().await;
    let tern = start(local_config()).await;
    let tm = tern.monitor_addr().unwrap();
    let cases = [
        "/connz?subs=x",
        "/connz?auth=maybe",
        "/connz?limit=x",
        "/connz?offset=1.5",
        "/connz?cid=x",
        "/connz?state=bad",
        "/connz?sort=bad",
        "/connz?sort=stop",
        "/connz?sort=reason&state=all",
        "/subsz?subs=x",
        "/subsz?limit=x",
        "/subsz?subs=1&test=foo.*",
        "/routez?subs=x",
        "/leafz?subs=x",
        "/gatewayz?accs=x",
        "/healthz?js-enabled-only=x",
        "/healthz?stream=s",
        "/healthz?details=1&stream=s",
        "/accountz?acc=NOPE",
    ];
    for path in cases {
        let (ns, nb) = http_get(nats.monitor, path).await;
        let (ts, tb) = http_get(tm, path).await;
        assert_eq!(ns, 400, "nats-server {path}: {nb}");
        assert_eq!((ts, tb.trim()), (ns, nb.trim()), "{path}");
    }
    // Accepted forms stay accepted.
    for path in [
        "/connz?subs=detail",
        "/connz?subs=DETAIL&auth=t",
        "/connz?state=ANY&sort=idle",
        "/connz?state=closed&sort=reason",
        "/connz?limit=-1&offset=-5",
        "/subsz?subs=1&test=foo.bar",
        "/healthz?js-server-only=1&details=true",
    ] {
        let (ns, _) = http_get(nats.monitor, path).await;
        let (ts, tb) = http_get(tm, path).await;
        assert_eq!((ns, ts), (200, 200), "{path}: {tb}");
    }
    tern.shutdown().await;
}

fn conn_by_name<'a>(connz: &'a Value, name: &str) -> &'a Value {
    connz["connections"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["name"] == name))
        .unwrap_or_else(|| panic!("no connection {name} in {connz}"))
}

/// async-nats' `flush` waits for no PONG, so a publish from another connection could
/// overtake the SUBs: wait until the server lists them (a round trip through the
/// client would add a subscription and messages these tests count).
async fn subscribed(monitor: SocketAddr, name: &str, subs: u64) {
    let what = format!("{name} has {subs} subscriptions");
    wait_until(WAIT, &what, || async move {
        let c = monitor_json(monitor, "/connz").await;
        c["connections"]
            .as_array()
            .and_then(|a| a.iter().find(|c| c["name"] == name))
            .is_some_and(|c| c["subscriptions"] == subs)
    })
    .await;
}

#[tokio::test]
async fn connz_with_real_clients() {
    let server = start(local_config()).await;
    let m = server.monitor_addr().unwrap();
    let alpha = connect(server.client_addr(), "alpha").await;
    let _s: Vec<_> = futures::future::join_all(["a.1", "a.2", "a.>"].map(|s| alpha.subscribe(s)))
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    alpha.flush().await.unwrap();
    subscribed(m, "alpha", 3).await;
    let beta = connect(server.client_addr(), "beta").await;
    for _ in 0..5 {
        beta.publish("a.1", "12345".into()).await.unwrap();
    }
    beta.flush().await.unwrap();
    wait_until(WAIT, "counters published", || async move {
        let c = monitor_json(m, "/connz").await;
        conn_by_name(&c, "beta")["in_msgs"] == 5 && conn_by_name(&c, "alpha")["out_msgs"] == 10
    })
    .await;

    let c = monitor_json(m, "/connz?subs=1").await;
    assert_eq!(c["total"], 2);
    assert_eq!(c["num_connections"], 2);
    assert_eq!(c["limit"], 1024);
    let a = conn_by_name(&c, "alpha");
    assert_eq!(a["subscriptions"], 3);
    assert_eq!(a["lang"], "rust");
    assert_eq!(a["out_bytes"], 50);
    let mut subs: Vec<&str> = a["subscriptions_list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    subs.sort();
    assert_eq!(subs, ["a.1", "a.2", "a.>"]);
    let b = conn_by_name(&c, "beta");
    assert_eq!(
        (b["in_bytes"].as_u64(), b["subscriptions"].as_u64()),
        (Some(25), Some(0))
    );
    // beta published after alpha subscribed: its last activity is later.
    assert!(b["last_activity"].as_str() > a["last_activity"].as_str());
    // alpha's moved when beta's messages were delivered to it, as in nats-server:
    // after beta connected, although alpha itself sent nothing since subscribing.
    assert!(a["last_activity"].as_str() > b["start"].as_str(), "{a} {b}");

    // Sorting: counters largest first; cid ascending.
    let by = |sort: &'static str| async move {
        let v = monitor_json(m, &format!("/connz?sort={sort}")).await;
        v["connections"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(by("msgs_from").await, ["beta", "alpha"]);
    assert_eq!(by("msgs_to").await, ["alpha", "beta"]);
    assert_eq!(by("subs").await, ["alpha", "beta"]);
    assert_eq!(by("last").await, ["beta", "alpha"]);
    assert_eq!(by("cid").await, ["alpha", "beta"]);

    // Paging.
    let p = monitor_json(m, "/connz?limit=1&offset=1").await;
    assert_eq!(
        (p["total"].as_u64(), p["num_connections"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(
        (p["offset"].as_u64(), p["limit"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(p["connections"][0]["name"], "beta");
    let past = monitor_json(m, "/connz?offset=7").await;
    assert_eq!(past["connections"].as_array().map(Vec::len), Some(0));

    // cid filter and subscription details.
    let cid = a["cid"].as_u64().unwrap();
    let one = monitor_json(m, &format!("/connz?cid={cid}&subs=detail")).await;
    assert_eq!(one["limit"], 1);
    let det = &one["connections"][0]["subscriptions_list_detail"];
    assert_eq!(det.as_array().map(Vec::len), Some(3));
    let a1 = det
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["subject"] == "a.1")
        .unwrap();
    assert_eq!(
        (a1["msgs"].as_u64(), a1["cid"].as_u64()),
        (Some(5), Some(cid))
    );

    // Closing: the entry moves to state=closed with its reason and counters.
    drop(beta);
    wait_until(WAIT, "beta closed", || async move {
        monitor_json(m, "/connz?state=closed").await["total"] == 1
    })
    .await;
    let closed = monitor_json(m, "/connz?state=closed&sort=reason").await;
    let b = conn_by_name(&closed, "beta");
    assert_eq!(b["reason"], "Client Closed");
    assert_eq!(b["in_msgs"], 5);
    assert!(b["stop"].is_string());
    let all = monitor_json(m, "/connz?state=all").await;
    assert_eq!(all["total"], 2);
    let open = monitor_json(m, "/connz").await;
    assert_eq!(open["total"], 1);

    // A closed connection's subscriptions are kept in nats-server's full SubDetail
    // shape: with the account, without the auto-unsubscribe limit, in sid order.
    let mut gamma = TcpStream::connect(server.client_addr()).await.unwrap();
    let ops = "CONNECT {\"name\":\"gamma\",\"verbose\":false}\r\nSUB a.10 10\r\n\
               SUB a.9 q 9\r\nUNSUB 10 5\r\nSUB a.2 2\r\nPING\r\n";
    gamma.write_all(ops.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    while !String::from_utf8_lossy(&buf).contains("PONG") {
        let mut chunk = [0u8; 512];
        let n = gamma.read(&mut chunk).await.unwrap();
        assert!(
            n > 0,
            "gamma closed early: {}",
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&chunk[..n]);
    }
    let open = monitor_json(m, "/connz?subs=detail").await;
    let det = &conn_by_name(&open, "gamma")["subscriptions_list_detail"];
    assert_eq!((&det[2]["sid"], &det[2]["max"]), (&"10".into(), &5.into()));
    assert!(det[0].get("account").is_none(), "{det}");
    drop(gamma);
    wait_until(WAIT, "gamma closed", || async move {
        monitor_json(m, "/connz?state=closed").await["total"] == 2
    })
    .await;
    let closed = monitor_json(m, "/connz?state=closed&subs=detail").await;
    let det = conn_by_name(&closed, "gamma")["subscriptions_list_detail"]
        .as_array()
        .cloned()
        .unwrap();
    let sids: Vec<&str> = det.iter().map(|d| d["sid"].as_str().unwrap()).collect();
    assert_eq!(sids, ["2", "9", "10"]);
    assert_eq!(
        (&det[1]["account"], &det[1]["account_tag"]),
        (&"$G".into(), &"$G".into())
    );
    assert_eq!(
        (&det[1]["subject"], &det[1]["qgroup"]),
        (&"a.9".into(), &"q".into())
    );
    assert!(det[2].get("max").is_none(), "{det:?}");
    server.shutdown().await;
}

/// Prometheus text: `name{labels} value` samples, with the TYPE of each family.
struct Exposition {
    types: BTreeMap<String, String>,
    samples: Vec<(String, BTreeMap<String, String>, f64)>,
}

fn parse_exposition(text: &str) -> Exposition {
    let mut e = Exposition {
        types: BTreeMap::new(),
        samples: Vec::new(),
    };
    for line in text.lines().filter(|l| !l.is_empty()) {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE line");
            assert!(
                e.types.insert(name.into(), kind.into()).is_none(),
                "family {name} declared twice"
            );
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("sample line");
        let (name, labels) = match series.split_once('{') {
            Some((n, l)) => (n, l.strip_suffix('}').expect("closing brace")),
            None => (series, ""),
        };
        let mut map = BTreeMap::new();
        // Label values here never contain `",`; enough for this test's parser.
        for pair in labels.split("\",").filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once("=\"").expect("label pair");
            map.insert(k.to_string(), v.trim_end_matches('"').to_string());
        }
        let v: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value in {line}"));
        // A histogram's samples are its family name plus _bucket, _sum or _count.
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .filter_map(|suffix| name.strip_suffix(suffix))
            .find(|f| e.types.get(*f).map(String::as_str) == Some("histogram"))
            .unwrap_or(name);
        assert!(
            e.types.contains_key(family),
            "sample {name} before its TYPE"
        );
        e.samples.push((name.to_string(), map, v));
    }
    e
}

impl Exposition {
    fn value(&self, name: &str) -> f64 {
        self.samples
            .iter()
            .find(|s| s.0 == name)
            .unwrap_or_else(|| panic!("no sample {name}"))
            .2
    }
}

#[tokio::test]
async fn metrics_match_varz() {
    let server = start(local_config()).await;
    let m = server.monitor_addr().unwrap();
    let _clients = activity(server.client_addr(), m).await;
    wait_until(WAIT, "closed recorded", || async move {
        monitor_json(m, "/connz?state=closed").await["total"] == 1
    })
    .await;
    let (status, text) = http_get(m, "/metrics").await;
    assert_eq!(status, 200);
    let e = parse_exposition(&text);
    let varz = monitor_json(m, "/varz").await;
    let sid = varz["server_id"].as_str().unwrap();
    for s in &e.samples {
        assert_eq!(s.1.get("server_id").map(String::as_str), Some(sid), "{s:?}");
    }
    for family in [
        "gnatsd_varz_in_msgs",
        "gnatsd_varz_out_bytes",
        "gnatsd_varz_connections",
        "gnatsd_varz_total_connections",
        "gnatsd_varz_mem",
        "gnatsd_varz_cpu",
        "gnatsd_varz_slow_consumers",
        "gnatsd_varz_subscriptions",
        "gnatsd_varz_server_name",
        "gnatsd_connz_total",
        "gnatsd_connz_num_connections",
        "gnatsd_connz_in_msgs",
        "gnatsd_subsz_num_subscriptions",
        "gnatsd_subsz_cache_hit_rate",
        "gnatsd_routez_num_routes",
        "gnatsd_healthz_status",
        "tern_connections_closed_total",
        "tern_slow_consumers_total",
        "tern_stalled_clients_total",
        "tern_sublist_cache_hit_ratio",
        "tern_messages_received_total",
        "process_resident_memory_bytes",
    ] {
        assert!(e.types.contains_key(family), "missing family {family}");
    }
    assert_eq!(e.types["tern_messages_received_total"], "counter");
    assert_eq!(e.types["gnatsd_varz_in_msgs"], "gauge");
    // Quiet server: the message counters and counts equal /varz.
    for k in [
        "in_msgs",
        "in_bytes",
        "out_msgs",
        "connections",
        "subscriptions",
    ] {
        assert_eq!(
            e.value(&format!("gnatsd_varz_{k}")),
            varz[k].as_f64().unwrap(),
            "{k}"
        );
    }
    assert_eq!(
        e.value("tern_messages_received_total"),
        varz["in_msgs"].as_f64().unwrap()
    );
    assert_eq!(e.value("gnatsd_connz_total"), 2.0);
    assert_eq!(e.value("gnatsd_connz_in_msgs"), 6.0);
    assert_eq!(e.value("gnatsd_subsz_num_subscriptions"), 2.0);
    assert_eq!(e.value("gnatsd_healthz_status"), 0.0);
    let closed = e
        .samples
        .iter()
        .find(|s| s.0 == "tern_connections_closed_total")
        .expect("a closed-reason sample");
    assert_eq!(closed.1["reason"], "Client Closed");
    assert_eq!(closed.2, 1.0);
    server.shutdown().await;
}

#[tokio::test]
async fn index_healthz_and_empty_endpoints() {
    let server = start(local_config()).await;
    let m = server.monitor_addr().unwrap();
    let (status, html) = http_get(m, "/").await;
    assert_eq!(status, 200);
    for ep in [
        "varz", "connz", "subsz", "routez", "gatewayz", "leafz", "accountz", "healthz", "metrics",
    ] {
        assert!(html.contains(&format!("href=./{ep}")), "index lacks {ep}");
    }
    for path in [
        "/healthz",
        "/healthz?js-enabled-only=true",
        "/healthz?js-server-only=1",
        "/healthz?account=$G&stream=s",
    ] {
        let (status, body) = http_get(m, path).await;
        assert_eq!(
            (status, body.as_str()),
            (200, r#"{"status":"ok"}"#),
            "{path}"
        );
    }
    let (status, body) = http_get(m, "/nope").await;
    assert_eq!((status, body.as_str()), (404, "404 page not found\n"));
    let varz = monitor_json(m, "/varz").await;
    let stats = varz["http_req_stats"].as_object().unwrap();
    assert!(stats.contains_key("/healthz") && !stats.contains_key("/nope"));
    assert_eq!(monitor_json(m, "/routez").await["num_routes"], 0);
    assert_eq!(
        monitor_json(m, "/leafz").await["leafs"],
        Value::Array(vec![])
    );
    assert_eq!(monitor_json(m, "/accountz").await["accounts"][0], "$G");
    assert_eq!(
        varz["auth_timeout"].to_string(),
        "2",
        "Go prints whole floats as integers"
    );
    server.shutdown().await;
}
