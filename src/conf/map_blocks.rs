//! Block-valued nats keys: `authorization { }` (with its users), `cluster { }`,
//! `jetstream` and `telemetry { }` (plus `log_format`). Split from `map.rs` to keep
//! files small; same `Mapper`, same rules.

use serde_json::{Map as JMap, Value as J};

use super::map::Mapper;
use super::value::{Kind, Map, Value};
use super::Pos;
use crate::config::duration::format_duration;

/// `authorization` as written, before it is placed (top level or cluster).
#[derive(Default)]
struct AuthBlock {
    user: Option<String>,
    password: Option<String>,
    token: Option<String>,
    users: Option<Vec<J>>,
    timeout: Option<(std::time::Duration, Pos)>,
    default_permissions: Option<(J, Pos)>,
}

const CLUSTER_UNSUPPORTED: &[&str] = &[
    "permissions",
    "pool_size",
    "accounts",
    "pinned_accounts",
    "compression",
    "connect_backoff",
    "write_deadline",
    "write_timeout",
];

impl Mapper {
    fn block<'v>(&mut self, key: &str, v: &'v Value) -> Option<&'v Map> {
        match &v.kind {
            Kind::Map(m) => Some(m),
            other => {
                self.error(
                    &v.pos,
                    format!(
                        "invalid value for \"{key}\": expected a map, got {}",
                        other.type_name()
                    ),
                );
                None
            }
        }
    }

    fn auth_block(&mut self, v: &Value, in_cluster: bool) -> Option<AuthBlock> {
        let m = self.block("authorization", v)?;
        let mut a = AuthBlock::default();
        for e in &m.entries {
            let key = e.key.to_ascii_lowercase();
            let v = &e.value;
            match key.as_str() {
                "user" | "username" => a.user = self.string_like(&key, v),
                "password" | "pass" => a.password = self.string_like(&key, v),
                "token" => a.token = self.string_like(&key, v),
                "timeout" => {
                    // Seconds as int or float, or a duration string; no warning (nats).
                    let d = match &v.kind {
                        Kind::Int(i) if *i >= 0 => {
                            Some(std::time::Duration::from_secs(i.unsigned_abs()))
                        }
                        Kind::Float(f) if *f >= 0.0 && f.is_finite() => {
                            Some(std::time::Duration::from_secs_f64(*f))
                        }
                        Kind::Str(_) => self.duration(&key, v),
                        _ => {
                            self.error(
                                &v.pos,
                                "authorization timeout must be a number of seconds or a duration",
                            );
                            None
                        }
                    };
                    a.timeout = d.map(|d| (d, v.pos.clone()));
                }
                "users" => a.users = self.users(v),
                "default_permissions" if !in_cluster => {
                    if let Some(p) = self.permissions(v) {
                        a.default_permissions = Some((p, v.pos.clone()));
                    }
                }
                "permissions" | "auth_callout" | "nkeys" if !in_cluster => {
                    self.unsupported(&e.key_pos, &format!("authorization {}", e.key))
                }
                _ => self.unknown_entry(e),
            }
        }
        Some(a)
    }

    pub(super) fn authorization(&mut self, kpos: &Pos, v: &Value) {
        let Some(a) = self.auth_block(v, false) else {
            return;
        };
        if (a.user.is_some() || a.password.is_some()) && a.token.is_some() {
            return self.error(kpos, "Cannot have a user/pass and token");
        }
        if a.users.is_some() {
            if a.user.is_some() {
                return self.error(kpos, "Can not have a single user/pass and a users array");
            }
            if a.token.is_some() {
                return self.error(kpos, "Can not have a token and a users array");
            }
        }
        let pos = &v.pos;
        if let Some(u) = a.user {
            self.set("authorization.user", J::String(u), pos);
        }
        if let Some(p) = a.password {
            self.set("authorization.password", J::String(p), pos);
        }
        if let Some(t) = a.token {
            self.set("authorization.token", J::String(t), pos);
        }
        if let Some(users) = a.users {
            self.set("authorization.users", J::Array(users), pos);
        }
        if let Some((d, p)) = a.timeout {
            self.set("authorization.timeout", J::String(format_duration(d)), &p);
        }
        if let Some((j, p)) = a.default_permissions {
            self.set("authorization.default_permissions", j, &p);
        }
    }

    /// A `permissions` block as JSON, checked now so mistakes are reported with a position.
    fn permissions(&mut self, v: &Value) -> Option<J> {
        if v.as_map().is_none() {
            self.error(&v.pos, "permissions must be a map");
            return None;
        }
        let j = v.to_json();
        match crate::auth::permissions::Permissions::parse(&j) {
            Ok(_) => Some(j),
            Err(e) => {
                self.error(&v.pos, e);
                None
            }
        }
    }

    /// `users: [ {user, password|pass, nkey, permissions}, ... ]`
    fn users(&mut self, v: &Value) -> Option<Vec<J>> {
        let Kind::Array(items) = &v.kind else {
            self.error(
                &v.pos,
                format!("expected an array of users, got {}", v.kind.type_name()),
            );
            return None;
        };
        let mut out = Vec::new();
        let mut seen: Vec<String> = Vec::new();
        for item in items {
            let Some(m) = self.block("users", item) else {
                continue;
            };
            let mut u = JMap::new();
            for e in &m.entries {
                let key = e.key.to_ascii_lowercase();
                let v = &e.value;
                match key.as_str() {
                    "user" | "username" => {
                        if let Some(s) = self.string_like(&key, v) {
                            u.insert("user".into(), J::String(s));
                        }
                    }
                    "password" | "pass" => {
                        if let Some(s) = self.string_like(&key, v) {
                            u.insert("password".into(), J::String(s));
                        }
                    }
                    "nkey" => {
                        if let Some(s) = self.string(&key, v) {
                            if !(s.starts_with('U') && s.len() == 56) {
                                self.error(&v.pos, "Not a valid public nkey for a user");
                            }
                            u.insert("nkey".into(), J::String(s));
                        }
                    }
                    "permissions" | "permission" => {
                        if let Some(p) = self.permissions(v) {
                            u.insert("permissions".into(), p);
                        }
                    }
                    "allowed_connection_types" | "connection_types" | "account" => {
                        self.unsupported(&e.key_pos, &format!("user {}", e.key))
                    }
                    _ => self.unknown_entry(e),
                }
            }
            let name = u.get("user").or_else(|| u.get("nkey")).and_then(J::as_str);
            match name {
                None => self.error(&item.pos, "User entry requires a user"),
                Some(n) if seen.iter().any(|s| s == n) => {
                    self.error(&item.pos, format!("Duplicate user \"{n}\" detected"))
                }
                Some(n) => {
                    seen.push(n.to_string());
                    out.push(J::Object(u));
                }
            }
        }
        Some(out)
    }

    pub(super) fn cluster(&mut self, v: &Value) {
        let Some(m) = self.block("cluster", v) else {
            return;
        };
        for e in &m.entries {
            let key = e.key.to_ascii_lowercase();
            let v = &e.value;
            match key.as_str() {
                "name" => {
                    if let Some(s) = self.string_like(&key, v) {
                        if s.contains(char::is_whitespace) {
                            self.error(&v.pos, "cluster name cannot contain spaces or new lines");
                        } else {
                            self.set("cluster.name", J::String(s), &v.pos);
                        }
                    }
                }
                "listen" => {
                    if let Some((host, port)) = self.host_port(&key, v) {
                        if let Some(h) = host {
                            self.set("cluster.host", J::String(h), &v.pos);
                        }
                        self.set("cluster.port", J::from(port), &v.pos);
                    }
                }
                "host" | "net" => self.set_string("cluster.host", &key, v),
                "port" => self.set_int("cluster.port", &key, v, i32::MIN.into(), i32::MAX.into()),
                "routes" => {
                    let routes = match &v.kind {
                        Kind::Array(items) => items
                            .iter()
                            .filter_map(|i| self.string("routes", i))
                            .collect(),
                        Kind::Str(s) => vec![s.clone()],
                        _ => {
                            self.error(&v.pos, "routes must be an array of URLs");
                            continue;
                        }
                    };
                    let routes = routes.into_iter().map(J::String).collect();
                    self.set("cluster.routes", J::Array(routes), &v.pos);
                }
                "advertise" | "cluster_advertise" => self.set_string("cluster.advertise", &key, v),
                "no_advertise" => self.set_bool("cluster.no_advertise", &key, v),
                "connect_retries" => {
                    self.set_int("cluster.connect_retries", &key, v, 0, u32::MAX.into())
                }
                "ping_interval" => self.set_duration("cluster.ping_interval", &key, v),
                "ping_max" => self.set_int("cluster.ping_max", &key, v, 0, u32::MAX.into()),
                "authorization" => self.cluster_auth(v),
                "tls" => self.tls_block("cluster.tls", &e.key_pos, v),
                "control_tls" => self.tls_block("cluster.control_tls", &e.key_pos, v),
                "control_listen" | "control_advertise" | "control_token" => {
                    self.set_string(&format!("cluster.{key}"), &key, v)
                }
                "bootstrap_expect" | "max_voters" => {
                    self.set_int(&format!("cluster.{key}"), &key, v, 1, 1000)
                }
                k if CLUSTER_UNSUPPORTED.contains(&k) => {
                    self.unsupported(&e.key_pos, &format!("cluster {}", e.key))
                }
                _ => self.unknown_entry(e),
            }
        }
    }

    fn cluster_auth(&mut self, v: &Value) {
        let Some(a) = self.auth_block(v, true) else {
            return;
        };
        if a.token.is_some() {
            return self.error(&v.pos, "Cluster authorization does not allow token");
        }
        if a.users.is_some() {
            return self.error(
                &v.pos,
                "Cluster authorization does not allow multiple users",
            );
        }
        if let Some(u) = a.user {
            self.set("cluster.authorization.user", J::String(u), &v.pos);
        }
        if let Some(p) = a.password {
            self.set("cluster.authorization.password", J::String(p), &v.pos);
        }
        if let Some((d, p)) = a.timeout {
            self.set(
                "cluster.authorization.timeout",
                J::String(format_duration(d)),
                &p,
            );
        }
    }

    /// `jetstream: true|false|enabled|disabled` or a block. Recorded so harness conf files
    /// load; the "not supported yet" warning comes from validation (all sources).
    pub(super) fn jetstream(&mut self, v: &Value) {
        let enabled = match &v.kind {
            Kind::Bool(b) => *b,
            Kind::Str(s) => match s.to_ascii_lowercase().as_str() {
                "enabled" | "enable" | "true" | "yes" | "on" => true,
                "disabled" | "disable" | "false" | "no" | "off" => false,
                _ => {
                    return self.error(&v.pos, format!("invalid jetstream value \"{s}\""));
                }
            },
            Kind::Map(m) => {
                if let Some(dir) = m.get("store_dir").or_else(|| m.get("store")) {
                    self.set_string("store_dir", "store_dir", dir);
                }
                !matches!(m.get("enabled").and_then(Value::as_bool), Some(false))
            }
            other => {
                return self.error(
                    &v.pos,
                    format!(
                        "invalid jetstream value: expected a boolean or a map, got {}",
                        other.type_name()
                    ),
                )
            }
        };
        self.set("jetstream", J::Bool(enabled), &v.pos);
    }

    /// `log_format: text|json`.
    pub(super) fn log_format(&mut self, v: &Value) {
        let Some(f) = self.string("log_format", v) else {
            return;
        };
        match f.to_ascii_lowercase().as_str() {
            f @ ("text" | "json") => self.set("logging.log_format", J::String(f.into()), &v.pos),
            _ => self.error(
                &v.pos,
                format!("invalid log_format \"{f}\": expected \"text\" or \"json\""),
            ),
        }
    }

    /// `telemetry { otlp_endpoint, service_name, traces, metrics, sample_ratio,
    /// metrics_interval }`: OpenTelemetry export (tern's own block; nats-server has none).
    pub(super) fn telemetry(&mut self, v: &Value) {
        let Some(m) = self.block("telemetry", v) else {
            return;
        };
        for e in &m.entries {
            let key = e.key.to_ascii_lowercase();
            let v = &e.value;
            match key.as_str() {
                "otlp_endpoint" | "endpoint" => self.set_string("telemetry.otlp_endpoint", &key, v),
                "service_name" => self.set_string("telemetry.service_name", &key, v),
                "traces" => self.set_bool("telemetry.traces", &key, v),
                "metrics" => self.set_bool("telemetry.metrics", &key, v),
                "metrics_interval" => self.set_duration("telemetry.metrics_interval", &key, v),
                "sample_ratio" => {
                    let r = match v.kind {
                        Kind::Float(f) => Some(f),
                        Kind::Int(i) => Some(i as f64),
                        _ => None,
                    };
                    match r {
                        Some(r) if (0.0..=1.0).contains(&r) => {
                            self.set("telemetry.sample_ratio", J::from(r), &v.pos)
                        }
                        _ => self.error(&v.pos, "sample_ratio must be a number from 0 to 1"),
                    }
                }
                _ => self.unknown_entry(e),
            }
        }
    }
}
