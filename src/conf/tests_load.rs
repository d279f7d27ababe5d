//! Tests of key mapping, layered loading (file -> env -> CLI) and validation, for nats
//! conf, TOML and YAML, including the conf files client test harnesses use.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{load_with_env, ConfError, Loaded};
use crate::cli::Overrides;
use crate::config::Config;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/conf")
        .join(name)
}

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A conf file in a fresh temp dir (tests run in parallel: one dir each).
fn temp_conf(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "tern-conf-test-{}-{}",
        std::process::id(),
        name.replace('.', "_")
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    let mut f = std::fs::File::create(&path).expect("create");
    f.write_all(text.as_bytes()).expect("write");
    path
}

fn load_text(name: &str, text: &str) -> Result<Loaded, Vec<ConfError>> {
    let path = temp_conf(name, text);
    load_with_env(Some(&path), &Overrides::default(), Some(env(&[])))
}

fn ok(name: &str, text: &str) -> Loaded {
    match load_text(name, text) {
        Ok(l) => l,
        Err(e) => panic!("load failed: {}", super::ConfErrors(e)),
    }
}

fn errs(name: &str, text: &str) -> Vec<String> {
    match load_text(name, text) {
        Ok(l) => panic!("expected errors, got {:?}", l.config),
        Err(e) => e.iter().map(|d| d.message.clone()).collect(),
    }
}

fn warning_texts(l: &Loaded) -> Vec<String> {
    l.warnings.iter().map(ToString::to_string).collect()
}

#[test]
fn nats_reference_captured_example() {
    let l = load_with_env(
        Some(&fixture("nats_ref.conf")),
        &Overrides::default(),
        Some(env(&[("TERN_TEST_SNAME", "envname")])),
    )
    .expect("loads");
    let c = &l.config;
    assert_eq!(c.server_name.as_deref(), Some("envname"));
    assert_eq!(c.host, "127.0.0.1");
    assert_eq!(c.port, 37431);
    assert_eq!(c.http_host.as_deref(), Some("127.0.0.1"));
    assert_eq!(c.http_port, Some(37432));
    assert_eq!(c.max_payload, 2_097_152);
    assert_eq!(c.max_pending, 33_554_432);
    assert_eq!(c.ping_interval, Duration::from_secs(30));
    assert_eq!(c.max_control_line, 2048);
    assert_eq!(c.ping_max, 3);
    assert_eq!(c.authorization.user.as_deref(), Some("alice"));
    assert_eq!(c.authorization.password.as_deref(), Some("s3cret"));
    assert_eq!(c.auth_timeout(), Duration::from_millis(1500));
    assert_eq!(
        c.config_file.as_deref(),
        Some(fixture("nats_ref.conf").as_path())
    );
    // PAYLOAD is a used variable, not an unknown field.
    assert!(l.warnings.is_empty(), "{:?}", warning_texts(&l));
}

#[test]
fn defaults_when_nothing_is_set() {
    let l = load_with_env(None, &Overrides::default(), Some(env(&[]))).expect("loads");
    assert_eq!(l.config, Config::default());
    let l = ok("empty.conf", "# nothing\n");
    assert_eq!(l.config.port, 4222);
    assert_eq!(l.config.max_payload, 1024 * 1024);
}

#[test]
fn aliases_map_to_fields() {
    let l = ok(
        "aliases.conf",
        "net: 10.0.0.1\nport: 5000\nmonitor_port: 8000\nhttps_port: 8443\nmax_conn: 10\nmax_subs: 20\nlogfile: /tmp/x.log\npidfile: /tmp/x.pid\nlogfile_size_limit: 1MB\ntrace: true\ndebug: true\nlogtime: false\nports_file_dir: /tmp\nno_header_support: true\nno_auth_user: bob\nclient_advertise: \"h:1\"\nstore_dir: /data\nwrite_deadline: \"5s\"\nlame_duck_duration: \"1m\"\nlame_duck_grace_period: \"3s\"\nmax_traced_msg_len: 64\n",
    );
    let c = &l.config;
    assert_eq!(c.host, "10.0.0.1");
    assert_eq!(c.port, 5000);
    assert_eq!(c.http_port, Some(8000));
    assert_eq!(c.https_port, Some(8443));
    assert_eq!(c.max_connections, 10);
    assert_eq!(c.max_subscriptions, 20);
    assert_eq!(c.logging.log_file.as_deref(), Some(Path::new("/tmp/x.log")));
    assert_eq!(c.logging.pid_file.as_deref(), Some(Path::new("/tmp/x.pid")));
    assert_eq!(c.logging.log_size_limit, 1 << 20);
    assert!(c.logging.trace && c.logging.debug && !c.logging.logtime);
    assert_eq!(c.logging.ports_file_dir.as_deref(), Some(Path::new("/tmp")));
    assert!(c.no_header_support);
    assert_eq!(c.no_auth_user.as_deref(), Some("bob"));
    assert_eq!(c.client_advertise.as_deref(), Some("h:1"));
    assert_eq!(c.store_dir.as_deref(), Some(Path::new("/data")));
    assert_eq!(c.write_deadline, Duration::from_secs(5));
    assert_eq!(c.lame_duck_duration, Duration::from_secs(60));
    assert_eq!(c.lame_duck_grace_period, Duration::from_secs(3));
    assert_eq!(c.max_traced_msg_len, 64);
    assert!(l.warnings.is_empty(), "{:?}", warning_texts(&l));
}

#[test]
fn listen_and_http_forms() {
    let c = ok("l1.conf", "listen: 4999\nhttp: 8999\n").config;
    assert_eq!(
        (c.host.as_str(), c.port, c.http_port),
        ("0.0.0.0", 4999, Some(8999))
    );
    let c = ok("l2.conf", "listen: \"[::1]:-1\"\nhttps: 127.0.0.1:8443\n").config;
    assert_eq!((c.host.as_str(), c.port), ("::1", -1));
    assert_eq!(
        (c.http_host.as_deref(), c.https_port),
        (Some("127.0.0.1"), Some(8443))
    );
    let e = errs("l3.conf", "listen: localhost\n");
    assert!(e[0].contains("could not parse listen address"), "{e:?}");
}

#[test]
fn known_key_used_as_variable_still_applies() {
    let l = ok(
        "kv.conf",
        "port = 4999\nhttp_port: $port\nMYVAR: 1\nping_max: $MYVAR\n",
    );
    assert_eq!(l.config.port, 4999);
    assert_eq!(l.config.http_port, Some(4999));
    assert_eq!(l.config.ping_max, 1);
    assert!(l.warnings.is_empty(), "{:?}", warning_texts(&l));
}

#[test]
fn max_connections_zero_in_file_rejects_all() {
    assert_eq!(
        ok("mc.conf", "max_connections: 0\n").config.max_connections,
        -1
    );
}

#[test]
fn durations_bare_int_is_seconds_with_warning() {
    let l = ok("d.conf", "ping_interval: 30\nwrite_deadline: \"500ms\"\n");
    assert_eq!(l.config.ping_interval, Duration::from_secs(30));
    assert_eq!(l.config.write_deadline, Duration::from_millis(500));
    assert_eq!(l.warnings.len(), 1);
    let w = l.warnings[0].to_string();
    assert!(
        w.ends_with("d.conf:1:16: ping_interval should be converted to a duration"),
        "{w}"
    );
    // The nats trap: bare 2m is the integer 2,000,000, so 2,000,000 seconds.
    let l = ok("d2.conf", "ping_interval: 2m\n");
    assert_eq!(l.config.ping_interval, Duration::from_secs(2_000_000));
    let l = ok(
        "d3.conf",
        "ping_interval: 10s\nlame_duck_duration: \"1h30m\"\n",
    );
    assert_eq!(l.config.ping_interval, Duration::from_secs(10));
    assert_eq!(l.config.lame_duck_duration, Duration::from_secs(5400));
    let e = errs("d4.conf", "ping_interval: \"10 parsecs\"\n");
    assert!(e[0].starts_with("error parsing ping_interval"), "{e:?}");
}

#[test]
fn authorization_forms() {
    let c = ok(
        "a1.conf",
        "authorization { token: abc, timeout: \"1.5s\" }\n",
    )
    .config;
    assert_eq!(c.authorization.token.as_deref(), Some("abc"));
    assert_eq!(c.auth_timeout(), Duration::from_millis(1500));
    let c = ok(
        "a2.conf",
        "authorization { username: u, pass: p, timeout: 3 }\n",
    )
    .config;
    assert_eq!(c.authorization.user.as_deref(), Some("u"));
    assert_eq!(c.authorization.password.as_deref(), Some("p"));
    assert_eq!(c.auth_timeout(), Duration::from_secs(3));
    let l = load_with_env(
        Some(&fixture("harness_auth.conf")),
        &Overrides::default(),
        Some(env(&[])),
    )
    .expect("loads");
    let users = &l.config.authorization.users;
    assert_eq!(users.len(), 3);
    assert_eq!(users[0].user.as_deref(), Some("derek"));
    assert_eq!(users[0].password.as_deref(), Some("porkchop"));
    assert_eq!(
        users[1].permissions,
        Some(serde_json::json!({"publish": "foo", "subscribe": ["foo", "bar"]}))
    );
    assert!(users[2].nkey.as_deref().is_some_and(|k| k.starts_with('U')));
    assert_eq!(l.config.port, 4555);
    assert!(l.config.authorization.required());
}

#[test]
fn authorization_mutual_exclusion() {
    let e = errs("x1.conf", "authorization {\n  user: a\n  token: b\n}\n");
    assert_eq!(e, vec!["Cannot have a user/pass and token"]);
    let e = errs(
        "x2.conf",
        "authorization {\n  users: [{user: a, password: b}]\n  token: b\n}\n",
    );
    assert_eq!(e, vec!["Can not have a token and a users array"]);
    let e = errs(
        "x3.conf",
        "authorization {\n  users: [{user: a, password: b}]\n  user: c\n}\n",
    );
    assert_eq!(e, vec!["Can not have a single user/pass and a users array"]);
    let e = errs(
        "x4.conf",
        "authorization { users: [{password: b}, {user: a}, {user: a}] }\n",
    );
    assert_eq!(
        e,
        vec![
            "User entry requires a user",
            "Duplicate user \"a\" detected"
        ]
    );
}

#[test]
fn cluster_block() {
    let l = load_with_env(
        Some(&fixture("cluster.conf")),
        &Overrides::default(),
        Some(env(&[])),
    )
    .expect("loads");
    let c = &l.config.cluster;
    assert_eq!(c.name.as_deref(), Some("C1"));
    assert_eq!(c.host.as_deref(), Some("0.0.0.0"));
    assert_eq!(c.port, Some(6222));
    assert!(c.enabled());
    assert_eq!(
        c.routes,
        vec!["nats-route://b.example:6222", "nats-route://c.example:6222"]
    );
    assert_eq!(c.advertise.as_deref(), Some("10.0.0.1:6222"));
    assert!(c.no_advertise);
    assert_eq!(c.connect_retries, Some(5));
    assert_eq!(c.authorization.user.as_deref(), Some("ruser"));
    assert_eq!(c.authorization.password.as_deref(), Some("T0pS3cr3t"));
    assert_eq!(c.authorization.timeout, Some(Duration::from_millis(500)));
    assert_eq!(c.ping_interval, Some(Duration::from_secs(15)));
    assert_eq!(c.ping_max, Some(4));
    assert_eq!(l.config.server_name.as_deref(), Some("A"));
    assert_eq!(l.config.http_port, Some(8222));
    let w = warning_texts(&l);
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].ends_with("cluster.conf:14:3: cluster pool_size is not supported yet, ignoring"),
        "{w:?}"
    );
    let e = errs("ct.conf", "cluster { authorization { token: t } }\n");
    assert_eq!(e, vec!["Cluster authorization does not allow token"]);
}

#[test]
fn unknown_keys_warn_with_position() {
    let l = ok(
        "u.conf",
        "port: 1\n  foo_unknown: 1\ncluster {\n  bogus: 2\n}\nUNUSED_VAR = 3\n",
    );
    let w = warning_texts(&l);
    assert_eq!(w.len(), 3, "{w:?}");
    assert!(
        w[0].ends_with("u.conf:2:3: unknown field \"foo_unknown\""),
        "{w:?}"
    );
    assert!(
        w[1].ends_with("u.conf:4:3: unknown field \"bogus\""),
        "{w:?}"
    );
    assert!(
        w[2].ends_with("u.conf:6:1: unknown field \"UNUSED_VAR\""),
        "{w:?}"
    );
    assert_eq!(l.config.port, 1);
}

#[test]
fn jetstream_accepted_with_warning() {
    for (i, text) in [
        "jetstream: true\n",
        "jetstream {}\n",
        "jetstream: enabled\n",
        "jetstream { strict: true, max_mem_store: 1GB, store_dir: \"/js\" }\n",
    ]
    .iter()
    .enumerate()
    {
        let l = ok(&format!("js{i}.conf"), text);
        assert!(l.config.jetstream, "{text}");
        let w = warning_texts(&l);
        assert_eq!(w.len(), 1, "{text}: {w:?}");
        assert!(
            w[0].ends_with(":1:12: jetstream is not supported yet, ignoring")
                || w[0].ends_with(":1:11: jetstream is not supported yet, ignoring"),
            "{w:?}"
        );
    }
    let l = ok("js-dir.conf", "jetstream { store_dir: \"/js\" }\n");
    assert_eq!(l.config.store_dir.as_deref(), Some(Path::new("/js")));
    let l = ok("js-off.conf", "jetstream: disabled\n");
    assert!(!l.config.jetstream && l.warnings.is_empty());
}

#[test]
fn client_harness_conf_files_load() {
    for name in [
        "harness_tls_accounts.conf",
        "harness_auth.conf",
        "cluster.conf",
    ] {
        let l = load_with_env(Some(&fixture(name)), &Overrides::default(), Some(env(&[])));
        let l = match l {
            Ok(l) => l,
            Err(e) => panic!("{name}: {}", super::ConfErrors(e)),
        };
        for w in &l.warnings {
            assert!(!w.message.contains("unknown field"), "{name}: {w}");
        }
    }
    let l = load_with_env(
        Some(&fixture("harness_tls_accounts.conf")),
        &Overrides::default(),
        Some(env(&[])),
    )
    .expect("loads");
    let w = warning_texts(&l);
    let names: Vec<&str> = l.config.accounts.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["A", "B"]);
    assert_eq!(l.config.accounts[0].users.len(), 2);
    assert!(l.config.accounts[0].users[0].permissions.is_some());
    assert!(
        w.iter()
            .any(|x| x.contains("jetstream is not supported yet")),
        "{w:?}"
    );
    assert_eq!(l.config.websocket.port, Some(-1));
    assert!(l.config.websocket.no_tls && l.config.websocket.compression);
    assert_eq!(l.config.host, "127.0.0.1");
    assert_eq!(l.config.ping_max, 5);
    assert_eq!(l.config.no_auth_user.as_deref(), Some("a"));
    let tls = l.config.tls.as_ref().expect("tls block");
    assert!(tls.verify && tls.handshake_first);
    assert_eq!(
        tls.handshake_first_fallback,
        Some(std::time::Duration::from_millis(300))
    );
    assert_eq!(tls.timeout, Some(std::time::Duration::from_secs(2)));
}

#[test]
fn validation_errors() {
    let e = errs("v1.conf", "max_payload: 64MB\nmax_pending: 32MB\n");
    assert_eq!(
        e,
        vec!["max_payload (67108864) cannot be higher than max_pending (33554432)"]
    );
    // 0 is the default payload (1 MiB), checked as it will run.
    let e = errs("v1b.conf", "max_payload: 0\nmax_pending: 1000\n");
    assert_eq!(
        e,
        vec!["max_payload (1048576) cannot be higher than max_pending (1000)"]
    );
    let e = errs("v2.conf", "lame_duck_duration: \"10s\"\n");
    assert_eq!(
        e,
        vec!["invalid lame_duck_duration of 10s, minimum is 30 seconds"]
    );
    let e = errs("v3.conf", "server_name: \"a b\"\n");
    assert_eq!(e, vec!["server name cannot contain spaces"]);
    let e = errs("v4.conf", "max_payload: 1t\n");
    assert_eq!(e, vec!["max_payload value is too big"]);
    let e = errs("v5.conf", "port: 70000\n");
    assert!(e[0].starts_with("invalid port 70000"), "{e:?}");
    let e = errs("v6.conf", "port: \"x\"\ndebug: 3\n");
    assert_eq!(e.len(), 2, "{e:?}");
}

#[test]
fn validation_error_points_at_the_file_line() {
    let Err(e) = load_text("vp.conf", "port: 1\nmax_payload: 64MB\nmax_pending: 1MB\n") else {
        panic!("expected error")
    };
    assert!(
        e[0].to_string()
            .contains("vp.conf:2:14: max_payload (67108864)"),
        "{}",
        e[0]
    );
}

#[test]
fn large_payload_warns() {
    let l = ok("big.conf", "max_payload: 16MB\n");
    assert!(warning_texts(&l)[0].contains("Maximum payloads over 8.00 MB"));
}

#[test]
fn all_mapping_errors_reported_together() {
    let e = errs(
        "many.conf",
        "port: abc\nmax_payload: true\nping_interval: []\nserver_name: \"x y\"\n",
    );
    assert_eq!(e.len(), 4, "{e:?}");
}

#[test]
fn env_overrides_file() {
    let path = fixture("nats_ref.conf");
    let l = load_with_env(
        Some(&path),
        &Overrides::default(),
        Some(env(&[
            ("TERN_TEST_SNAME", "envname"),
            ("TERN_MAX_PAYLOAD", "1MB"),
            ("TERN_CLUSTER__NAME", "x"),
            ("TERN_CLUSTER__ROUTES", "nats://a:1,nats://b:2"),
            ("TERN_PING_INTERVAL", "45s"),
            ("TERN_PORT", "5222"),
            ("TERN_LOGGING__DEBUG", "true"),
            ("TERN_SERVER_NAME", "123"),
        ])),
    )
    .expect("loads");
    let c = &l.config;
    assert_eq!(c.max_payload, 1 << 20);
    assert_eq!(c.cluster.name.as_deref(), Some("x"));
    assert_eq!(c.cluster.routes, vec!["nats://a:1", "nats://b:2"]);
    assert_eq!(c.ping_interval, Duration::from_secs(45));
    assert_eq!(c.port, 5222);
    assert!(c.logging.debug);
    assert_eq!(c.server_name.as_deref(), Some("123"));
    assert_eq!(c.max_pending, 33_554_432, "file value kept");
}

#[test]
fn cli_overrides_env_and_file() {
    let o = Overrides {
        port: Some(6000),
        server_name: Some("cli".into()),
        user: Some("bob".into()),
        pass: Some("pw".into()),
        cluster_listen: Some("nats://r:rp@127.0.0.1:6999".into()),
        routes: Some(vec!["nats://z:1".into()]),
        ..Overrides::default()
    };
    let l = load_with_env(
        Some(&fixture("nats_ref.conf")),
        &o,
        Some(env(&[
            ("TERN_TEST_SNAME", "envname"),
            ("TERN_PORT", "5222"),
        ])),
    )
    .expect("loads");
    let c = &l.config;
    assert_eq!(c.port, 6000);
    assert_eq!(c.server_name.as_deref(), Some("cli"));
    assert_eq!(c.authorization.user.as_deref(), Some("bob"));
    assert_eq!(c.authorization.password.as_deref(), Some("pw"));
    assert_eq!(c.cluster.host.as_deref(), Some("127.0.0.1"));
    assert_eq!(c.cluster.port, Some(6999));
    assert_eq!(c.cluster.authorization.user.as_deref(), Some("r"));
    assert_eq!(c.cluster.routes, vec!["nats://z:1"]);
    assert_eq!(c.host, "127.0.0.1", "file value kept");
}

#[test]
fn cli_token_conflicting_with_file_users_is_an_error() {
    let o = Overrides {
        token: Some("t".into()),
        ..Overrides::default()
    };
    let e = load_with_env(Some(&fixture("harness_auth.conf")), &o, Some(env(&[]))).unwrap_err();
    assert_eq!(e[0].message, "Can not have a token and a users array");
}

#[test]
fn toml_and_yaml_equivalents() {
    for name in ["equiv.toml", "equiv.yaml"] {
        let l = load_with_env(Some(&fixture(name)), &Overrides::default(), Some(env(&[])));
        let l = match l {
            Ok(l) => l,
            Err(e) => panic!("{name}: {}", super::ConfErrors(e)),
        };
        let c = &l.config;
        assert!(
            c.server_name.as_deref().is_some_and(|n| n.ends_with("srv")),
            "{name}"
        );
        assert_eq!(c.host, "127.0.0.1", "{name}");
        assert_eq!(c.port, 4333, "{name}");
        assert_eq!(c.max_payload, 2_097_152, "{name}");
        assert_eq!(c.max_pending, 33_554_432, "{name}");
        assert_eq!(c.ping_interval, Duration::from_secs(30), "{name}");
        assert_eq!(c.max_control_line, 2048, "{name}");
        assert_eq!(c.ping_max, 3, "{name}");
        assert_eq!(c.http_port, Some(8333), "{name}");
        assert_eq!(c.authorization.user.as_deref(), Some("alice"), "{name}");
        assert_eq!(c.auth_timeout(), Duration::from_millis(1500), "{name}");
        assert!(c.logging.debug, "{name}");
        assert_eq!(c.cluster.name.as_deref(), Some("C1"), "{name}");
        assert_eq!(c.cluster.port, Some(6333), "{name}");
        assert_eq!(c.cluster.routes.len(), 2, "{name}");
        assert!(l.warnings.is_empty(), "{name}: {:?}", warning_texts(&l));
    }
    let l = load_with_env(
        Some(&fixture("equiv.toml")),
        &Overrides::default(),
        Some(env(&[])),
    )
    .expect("toml");
    assert_eq!(l.config.logging.log_size_limit, 1024);
}

#[test]
fn toml_unknown_keys_warn() {
    let l = load_with_env(
        Some(&fixture("unknown.toml")),
        &Overrides::default(),
        Some(env(&[])),
    )
    .expect("loads");
    let w = warning_texts(&l);
    assert_eq!(w.len(), 2, "{w:?}");
    assert!(
        w.iter().any(|x| x.ends_with("unknown field \"bogus\"")),
        "{w:?}"
    );
    assert!(
        w.iter()
            .any(|x| x.ends_with("unknown field \"cluster.nme\"")),
        "{w:?}"
    );
}

#[test]
fn toml_bad_values_are_errors() {
    let path = temp_conf("bad.toml", "port = \"abc\"\n");
    let e = load_with_env(Some(&path), &Overrides::default(), Some(env(&[]))).unwrap_err();
    assert!(e[0].message.contains("port"), "{:?}", e);
}

#[test]
fn missing_file_is_an_error() {
    let e = load_with_env(
        Some(Path::new("/nonexistent/x.conf")),
        &Overrides::default(),
        None,
    )
    .unwrap_err();
    assert!(e[0]
        .message
        .starts_with("error opening config file '/nonexistent/x.conf'"));
}

#[test]
fn syntax_errors_surface_from_load_with_positions() {
    let Err(e) = load_text("syn.conf", "port: 1\nhost: a b\nx: $NOPE\n") else {
        panic!("expected errors")
    };
    assert_eq!(e.len(), 2, "{e:?}");
    assert!(e[0].to_string().contains("syn.conf:2:9:"), "{}", e[0]);
    assert!(e[1]
        .to_string()
        .ends_with("variable reference for 'NOPE' on line 3 can not be found"));
}

#[test]
fn telemetry_block_and_log_format() {
    let l = ok(
        "otel.conf",
        "log_format: json\ntelemetry {\n  otlp_endpoint: \"http://127.0.0.1:4317\"\n  service_name: edge\n  traces: true\n  metrics: false\n  sample_ratio: 0.25\n  metrics_interval: \"5s\"\n}\n",
    );
    let c = &l.config;
    assert_eq!(c.logging.log_format, crate::config::LogFormat::Json);
    let t = &c.telemetry;
    assert_eq!(t.otlp_endpoint.as_deref(), Some("http://127.0.0.1:4317"));
    assert_eq!(t.service_name.as_deref(), Some("edge"));
    assert_eq!((t.traces, t.metrics), (Some(true), Some(false)));
    assert_eq!(t.sample_ratio, Some(0.25));
    assert_eq!(t.metrics_interval, Some(Duration::from_secs(5)));
    let e = errs(
        "otel_bad.conf",
        "log_format: xml\ntelemetry { sample_ratio: 2 }\n",
    );
    assert!(e.iter().any(|m| m.contains("invalid log_format")), "{e:?}");
    assert!(e.iter().any(|m| m.contains("sample_ratio")), "{e:?}");
}

#[test]
fn accounts_block() {
    let l = ok(
        "accounts.conf",
        r#"accounts {
  A: { users: [ {user: a, password: a} ], exports: [ {stream: "a.>"}, {service: "svc.>"}, {stream: "priv.>", accounts: [B]} ] }
  B: { users: [ {user: b, password: b} ], imports: [ {stream: {account: A, subject: "a.>"}, prefix: "fromA"}, {service: {account: A, subject: "svc.echo"}, to: "echo"}, {stream: {account: A, subject: "priv.x"}} ] }
}
"#,
    );
    let a = &l.config.accounts[0];
    assert_eq!(a.name, "A");
    assert_eq!(a.exports.len(), 3);
    assert!(a.exports[1].service);
    assert_eq!(a.exports[2].accounts, ["B"]);
    let b = &l.config.accounts[1];
    assert_eq!(b.imports[0].prefix.as_deref(), Some("fromA"));
    assert!(!b.imports[0].service);
    assert!(b.imports[1].service);
    assert_eq!(b.imports[1].to.as_deref(), Some("echo"));
    assert!(l.warnings.is_empty(), "{:?}", warning_texts(&l));

    let e = errs(
        "accounts_bad.conf",
        "accounts { A: { exports: [{service: \"s\"}, {stream: \"p\", accounts: [B]}] }\n B: { users: [{user: x}] }\n C: { users: [{user: x}], imports: [{stream: {account: Z, subject: q}}, {stream: {account: A, subject: s}}, {stream: {account: A, subject: p}}] } }\n",
    );
    assert_eq!(
        e,
        [
            "\"Z\" account not defined for stream import",
            "Error adding stream import \"s\": stream import not authorized",
            "Error adding stream import \"p\": stream import not authorized",
            "Duplicate user \"x\" detected",
        ]
    );
    assert!(errs("accounts_g.conf", "accounts { $G: {} }\n")[0].contains("reserved"));
}

#[test]
fn operator_mode_keys() {
    use crate::auth::jwt::issue;
    let op = nkeys::KeyPair::new_operator();
    let acc = nkeys::KeyPair::new_account();
    let op_jwt = issue::operator(&op, serde_json::json!({}));
    let acc_jwt = issue::account(&op, &acc.public_key(), serde_json::json!({}));
    let l = ok(
        "op.conf",
        &format!(
            "operator: \"{op_jwt}\"\nresolver: MEMORY\nsystem_account: {a}\n\
             resolver_preload: {{\n  {a}: \"{acc_jwt}\"\n}}\n",
            a = acc.public_key()
        ),
    );
    let c = &l.config;
    assert_eq!(c.operator.as_deref(), Some(op_jwt.as_str()));
    assert_eq!(c.resolver.as_deref(), Some("MEMORY"));
    assert_eq!(c.system_account, Some(acc.public_key()));
    assert_eq!(c.resolver_preload[&acc.public_key()], acc_jwt);
    assert!(crate::auth::Authenticator::build(c).is_ok_and(|a| a.operator_mode()));
    // A resolver block keeps its type, and only MEMORY is supported.
    let e = errs(
        "r.conf",
        &format!("operator: [\"{op_jwt}\"]\nresolver {{ type: full, dir: \"/tmp\" }}\n"),
    );
    assert!(e.iter().any(|m| m.contains("only MEMORY")), "{e:?}");
    // A JWT that does not verify is refused at load, as nats-server refuses to start.
    let e = errs(
        "bad.conf",
        "operator: \"eyJ0eXAiOiJKV1QifQ.e30.sig\"\nresolver: MEMORY\n",
    );
    assert!(
        e.iter().any(|m| m.contains("error parsing operator JWT")),
        "{e:?}"
    );
    let e = errs(
        "harness_jwt.conf",
        &std::fs::read_to_string(fixture("harness_jwt.conf")).expect("fixture"),
    );
    assert!(e.iter().any(|m| m.contains("operator JWT")), "{e:?}");
}
