//! Maps a parsed nats conf tree onto the `Config` layout: nats keys and aliases
//! (`listen`, `net`, `max_conn`, `logfile`, ...) become `Config` field paths, values are
//! type-checked and normalized (sizes to integers, durations to Go duration strings).
//!
//! The result is a sparse JSON object holding only what the file set, so it can be layered
//! under environment and command-line overrides. Unknown keys are warnings (nats-server
//! makes them errors; tern prefers to start), keys of features tern lacks are accepted
//! with a "not supported yet" warning so existing conf files load.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{Map as JMap, Value as J};

use super::value::{Entry, Kind, Map, Value};
use super::{ConfError, Diagnostic, Pos};
use crate::config::duration::{format_duration, parse_go_duration};

/// Result of mapping one conf tree.
#[derive(Debug, Default)]
pub struct Mapped {
    /// Sparse `Config`-shaped JSON object.
    pub values: JMap<String, J>,
    /// Field path (`max_payload`, `cluster.name`) -> where the file set it.
    pub origins: HashMap<String, Pos>,
    pub warnings: Vec<Diagnostic>,
    pub errors: Vec<ConfError>,
}

/// Top-level keys of nats-server features tern does not implement yet: accepted, warned.
const UNSUPPORTED_TOP: &[&str] = &[
    "leafnodes",
    "leaf",
    "gateway",
    "mqtt",
    "root",
    "roots",
    "resolver_tls",
    "resolver_pinned_accounts",
    "no_system_account",
    "no_system",
    "trusted",
    "trusted_keys",
    "trusted_operators",
    "http_base_path",
    "max_sub_tokens",
    "max_closed_clients",
    "write_timeout",
    "syslog",
    "remote_syslog",
    "syslog_name",
    "logtime_utc",
    "connect_error_reports",
    "reconnect_error_reports",
    "default_js_domain",
    "disable_sublist_cache",
    "no_sublist_cache",
    "no_fast_producer_stall",
    "ocsp",
    "ocsp_cache",
    "prof_port",
    "prof_block_rate",
    "server_tags",
    "server_metadata",
    "mappings",
    "proxies",
    "tls_timeout",
    "pinned_certs",
];

/// Maps a root conf map. Never fails outright: problems land in `errors`/`warnings`.
pub fn map_root(root: &Map) -> Mapped {
    let mut m = Mapper::default();
    for e in &root.entries {
        m.top_key(e);
    }
    m.out
}

#[derive(Default)]
pub(super) struct Mapper {
    pub(super) out: Mapped,
}

impl Mapper {
    pub(super) fn set(&mut self, path: &str, v: J, pos: &Pos) {
        let mut cur = &mut self.out.values;
        let mut parts = path.split('.').peekable();
        while let Some(p) = parts.next() {
            if parts.peek().is_none() {
                cur.insert(p.to_string(), v);
                break;
            }
            let slot = cur
                .entry(p.to_string())
                .or_insert_with(|| J::Object(JMap::new()));
            if !slot.is_object() {
                *slot = J::Object(JMap::new());
            }
            match slot {
                J::Object(o) => cur = o,
                // Replaced by an object just above.
                _ => return,
            }
        }
        self.out.origins.insert(path.to_string(), pos.clone());
    }

    pub(super) fn error(&mut self, pos: &Pos, msg: impl Into<String>) {
        self.out.errors.push(ConfError::at(pos, msg));
    }

    pub(super) fn warn(&mut self, pos: &Pos, msg: impl Into<String>) {
        self.out.warnings.push(Diagnostic::at(pos, msg));
    }

    /// An entry no mapper knows. A key referenced as `$key` is a variable definition,
    /// not a typo (nats-server's rule), so it stays silent.
    pub(super) fn unknown_entry(&mut self, e: &Entry) {
        if !e.used_as_variable {
            self.warn(&e.key_pos, format!("unknown field \"{}\"", e.key));
        }
    }

    pub(super) fn unsupported(&mut self, pos: &Pos, what: &str) {
        self.warn(pos, format!("{what} is not supported yet, ignoring"));
    }

    fn wrong_type(&mut self, key: &str, v: &Value, want: &str) {
        self.error(
            &v.pos,
            format!(
                "invalid value for \"{key}\": expected {want}, got {}",
                v.kind.type_name()
            ),
        );
    }

    pub(super) fn string(&mut self, key: &str, v: &Value) -> Option<String> {
        match &v.kind {
            Kind::Str(s) => Some(s.clone()),
            _ => {
                self.wrong_type(key, v, "a string");
                None
            }
        }
    }

    /// Strings where nats would also take a bare number (names, users, tokens):
    /// `user: 123` is the string "123".
    pub(super) fn string_like(&mut self, key: &str, v: &Value) -> Option<String> {
        match &v.kind {
            Kind::Str(s) => Some(s.clone()),
            Kind::Int(i) => Some(i.to_string()),
            Kind::Float(f) => Some(f.to_string()),
            _ => {
                self.wrong_type(key, v, "a string");
                None
            }
        }
    }

    pub(super) fn int(&mut self, key: &str, v: &Value) -> Option<i64> {
        match v.kind {
            Kind::Int(i) => Some(i),
            _ => {
                self.wrong_type(key, v, "an integer");
                None
            }
        }
    }

    pub(super) fn int_in(&mut self, key: &str, v: &Value, lo: i64, hi: i64) -> Option<i64> {
        let i = self.int(key, v)?;
        if i > hi {
            self.error(&v.pos, format!("{key} value is too big"));
            return None;
        }
        if i < lo {
            self.error(&v.pos, format!("{key} value {i} is too small"));
            return None;
        }
        Some(i)
    }

    pub(super) fn boolean(&mut self, key: &str, v: &Value) -> Option<bool> {
        match v.kind {
            Kind::Bool(b) => Some(b),
            _ => {
                self.wrong_type(key, v, "a boolean");
                None
            }
        }
    }

    /// A Go duration string; a bare number is seconds with a warning (nats-server's rule,
    /// which is also why bare `2m` means 2,000,000 seconds).
    pub(super) fn duration(&mut self, key: &str, v: &Value) -> Option<Duration> {
        match &v.kind {
            Kind::Str(s) => match parse_go_duration(s) {
                Ok(d) => Some(d),
                Err(e) => {
                    self.error(&v.pos, format!("error parsing {key}: {e}"));
                    None
                }
            },
            Kind::Int(i) if *i >= 0 => {
                self.warn(&v.pos, format!("{key} should be converted to a duration"));
                Some(Duration::from_secs(i.unsigned_abs()))
            }
            Kind::Float(f) if *f >= 0.0 && f.is_finite() => {
                self.warn(&v.pos, format!("{key} should be converted to a duration"));
                Some(Duration::from_secs_f64(*f))
            }
            _ => {
                self.wrong_type(key, v, "a duration such as \"30s\"");
                None
            }
        }
    }

    pub(super) fn set_duration(&mut self, path: &str, key: &str, v: &Value) {
        if let Some(d) = self.duration(key, v) {
            self.set(path, J::String(format_duration(d)), &v.pos);
        }
    }

    pub(super) fn set_string(&mut self, path: &str, key: &str, v: &Value) {
        if let Some(s) = self.string(key, v) {
            self.set(path, J::String(s), &v.pos);
        }
    }

    pub(super) fn set_bool(&mut self, path: &str, key: &str, v: &Value) {
        if let Some(b) = self.boolean(key, v) {
            self.set(path, J::Bool(b), &v.pos);
        }
    }

    pub(super) fn set_int(&mut self, path: &str, key: &str, v: &Value, lo: i64, hi: i64) {
        if let Some(i) = self.int_in(key, v, lo, hi) {
            self.set(path, J::from(i), &v.pos);
        }
    }

    /// `listen`-style values: `"host:port"`, `port`, or a URL `nats://host:port`.
    pub(super) fn host_port(&mut self, key: &str, v: &Value) -> Option<(Option<String>, i64)> {
        match &v.kind {
            Kind::Int(p) => Some((None, *p)),
            Kind::Str(s) => match split_host_port(s) {
                Ok(hp) => Some(hp),
                Err(e) => {
                    self.error(
                        &v.pos,
                        format!("could not parse {key} address \"{s}\": {e}"),
                    );
                    None
                }
            },
            _ => {
                self.wrong_type(key, v, "\"host:port\" or a port");
                None
            }
        }
    }

    fn top_key(&mut self, e: &Entry) {
        let key = e.key.to_ascii_lowercase();
        let key = key.as_str();
        let (kpos, v) = (&e.key_pos, &e.value);
        const I32: (i64, i64) = (i32::MIN as i64, i32::MAX as i64);
        match key {
            "listen" => {
                if let Some((host, port)) = self.host_port(key, v) {
                    if let Some(h) = host {
                        self.set("host", J::String(h), &v.pos);
                    }
                    self.set("port", J::from(port), &v.pos);
                }
            }
            "host" | "net" => self.set_string("host", key, v),
            "port" => self.set_int("port", key, v, I32.0, I32.1),
            "server_name" => {
                if let Some(s) = self.string_like(key, v) {
                    if s.contains(char::is_whitespace) {
                        self.error(&v.pos, "server name cannot contain spaces");
                    } else {
                        self.set("server_name", J::String(s), &v.pos);
                    }
                }
            }
            "client_advertise" => self.set_string("client_advertise", key, v),
            "http" | "https" => {
                if let Some((host, port)) = self.host_port(key, v) {
                    if let Some(h) = host {
                        self.set("http_host", J::String(h), &v.pos);
                    }
                    let field = if key == "http" {
                        "http_port"
                    } else {
                        "https_port"
                    };
                    self.set(field, J::from(port), &v.pos);
                }
            }
            "http_port" | "monitor_port" => self.set_int("http_port", key, v, I32.0, I32.1),
            "https_port" => self.set_int("https_port", key, v, I32.0, I32.1),
            "max_payload" => self.set_int("max_payload", key, v, I32.0, I32.1),
            "max_control_line" => self.set_int("max_control_line", key, v, I32.0, I32.1),
            "max_pending" => self.set_int("max_pending", key, v, i64::MIN, i64::MAX),
            "max_connections" | "max_conn" => {
                // nats-server: 0 in a file means "no connections allowed", i.e. -1.
                if let Some(i) = self.int_in(key, v, I32.0, I32.1) {
                    let i = if i == 0 { -1 } else { i };
                    self.set("max_connections", J::from(i), &v.pos);
                }
            }
            "max_subscriptions" | "max_subs" => {
                self.set_int("max_subscriptions", key, v, I32.0, I32.1)
            }
            "max_traced_msg_len" => self.set_int("max_traced_msg_len", key, v, I32.0, I32.1),
            "ping_interval" => self.set_duration("ping_interval", key, v),
            "ping_max" => self.set_int("ping_max", key, v, 0, u32::MAX.into()),
            "write_deadline" => self.set_duration("write_deadline", key, v),
            "lame_duck_duration" => self.set_duration("lame_duck_duration", key, v),
            "lame_duck_grace_period" => self.set_duration("lame_duck_grace_period", key, v),
            "no_header_support" => self.set_bool("no_header_support", key, v),
            "no_auth_user" => {
                if let Some(s) = self.string_like(key, v) {
                    self.set("no_auth_user", J::String(s), &v.pos);
                }
            }
            "authorization" => self.authorization(kpos, v),
            "accounts" => self.accounts(v),
            "debug" => self.set_bool("logging.debug", key, v),
            "trace" | "trace_verbose" => self.set_bool("logging.trace", key, v),
            "logtime" => self.set_bool("logging.logtime", key, v),
            "log_file" | "logfile" => self.set_string("logging.log_file", key, v),
            "pid_file" | "pidfile" => self.set_string("logging.pid_file", key, v),
            "ports_file_dir" => self.set_string("logging.ports_file_dir", key, v),
            "logfile_size_limit" | "log_size_limit" => {
                self.set_int("logging.log_size_limit", key, v, 0, i64::MAX)
            }
            "logfile_max_num" | "log_max_num" => {
                self.set_int("logging.log_max_num", key, v, 0, i64::from(u32::MAX))
            }
            "log_format" => self.log_format(v),
            "store_dir" => self.set_string("store_dir", key, v),
            "jetstream" => self.jetstream(v),
            "telemetry" => self.telemetry(v),
            "cluster" => self.cluster(v),
            "tls" => self.tls(kpos, v),
            "websocket" | "ws" => self.websocket(v),
            "allow_non_tls" => self.set_bool("allow_non_tls", key, v),
            "operator" | "operators" => self.operator(key, v),
            "resolver" => self.resolver(key, v),
            "resolver_preload" => self.resolver_preload(v),
            "system_account" | "system" => self.set_string("system_account", key, v),
            k if UNSUPPORTED_TOP.contains(&k) => self.unsupported(kpos, &e.key),
            _ => self.unknown_entry(e),
        }
    }
}

/// Splits `host:port`, `[v6]:port`, `scheme://[user:pass@]host:port` or a bare port.
/// Returns the host (None when absent or empty) and the port.
pub fn split_host_port(s: &str) -> Result<(Option<String>, i64), String> {
    let s = s.trim();
    let s = s.split_once("://").map_or(s, |(_, rest)| rest);
    let s = s.rsplit_once('@').map_or(s, |(_, rest)| rest);
    let s = s.trim_end_matches('/');
    if let Ok(p) = s.parse::<i64>() {
        return Ok((None, p));
    }
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, after) = rest.split_once(']').ok_or("missing ']' in address")?;
        let port = after.strip_prefix(':').ok_or("missing port in address")?;
        (h, port)
    } else {
        let (h, p) = s.rsplit_once(':').ok_or("missing port in address")?;
        if h.contains(':') {
            return Err("too many colons in address".into());
        }
        (h, p)
    };
    let port: i64 = port
        .parse()
        .map_err(|_| format!("invalid port \"{port}\""))?;
    let host = (!host.is_empty()).then(|| host.to_string());
    Ok((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_forms() {
        assert_eq!(
            split_host_port("127.0.0.1:4222"),
            Ok((Some("127.0.0.1".into()), 4222))
        );
        assert_eq!(split_host_port("4222"), Ok((None, 4222)));
        assert_eq!(
            split_host_port("[::1]:4222"),
            Ok((Some("::1".into()), 4222))
        );
        assert_eq!(split_host_port(":-1"), Ok((None, -1)));
        assert_eq!(
            split_host_port("nats://u:p@0.0.0.0:6222"),
            Ok((Some("0.0.0.0".into()), 6222))
        );
        assert!(split_host_port("localhost").is_err());
        assert!(split_host_port("::1:4222").is_err());
        assert!(split_host_port("h:x").is_err());
    }
}
