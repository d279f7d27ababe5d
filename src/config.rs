//! Effective server configuration: the types every other module reads.
//!
//! Values arrive in layers: defaults (here, matching nats-server's) -> config file
//! (nats conf / TOML / YAML, see `conf/`) -> `TERN_` environment -> command-line flags
//! (see `cli.rs`). This module only holds the result; it never does I/O.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// nats-server's defaults (server/const.go), kept as named constants so docs and tests agree.
pub mod defaults {
    use std::time::Duration;
    pub const PORT: i32 = 4222;
    pub const HOST: &str = "0.0.0.0";
    pub const MAX_PAYLOAD: i64 = 1024 * 1024;
    pub const MAX_CONTROL_LINE: i32 = 4096;
    pub const MAX_PENDING: i64 = 64 * 1024 * 1024;
    pub const MAX_CONNECTIONS: i32 = 65536;
    pub const PING_INTERVAL: Duration = Duration::from_secs(120);
    pub const PING_MAX: u32 = 2;
    pub const WRITE_DEADLINE: Duration = Duration::from_secs(10);
    pub const AUTH_TIMEOUT: Duration = Duration::from_secs(2);
    pub const TLS_TIMEOUT: Duration = Duration::from_secs(2);
    pub const LAME_DUCK_DURATION: Duration = Duration::from_secs(120);
    pub const LAME_DUCK_GRACE_PERIOD: Duration = Duration::from_secs(10);
    pub const MAX_CLOSED_CLIENTS: usize = 10_000;
}

/// One configured user (authorization.users or accounts.*.users). The full model
/// (nkeys, permissions, accounts) arrives with the security issue; the fields are parsed now.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct User {
    pub user: Option<String>,
    pub password: Option<String>,
    pub nkey: Option<String>,
    /// Raw permissions block, kept for the security issue.
    pub permissions: Option<serde_json::Value>,
}

/// One `accounts { NAME: { users, exports, imports } }` entry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AccountConfig {
    pub name: String,
    pub users: Vec<User>,
    pub exports: Vec<ExportConfig>,
    pub imports: Vec<ImportConfig>,
}

/// `{stream: "a.>"}` or `{service: "svc.>", accounts: [B]}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ExportConfig {
    /// The exported subject (may hold wildcards).
    pub subject: String,
    /// Service (request/reply) rather than stream.
    pub service: bool,
    /// Accounts allowed to import it; empty = public.
    pub accounts: Vec<String>,
}

/// `{stream: {account, subject}, prefix|to}` or `{service: {account, subject}, to}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ImportConfig {
    pub account: String,
    pub subject: String,
    pub service: bool,
    /// Stream imports: prepended (with a dot) to the delivered subject.
    pub prefix: Option<String>,
    /// Local subject the import appears under (stream mapping or service name).
    pub to: Option<String>,
}

/// `authorization { ... }` plus `--user/--pass/--auth`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Authorization {
    pub user: Option<String>,
    pub password: Option<String>,
    pub token: Option<String>,
    pub users: Vec<User>,
    /// Auth timeout; `None` means nats-server's default (2 s, or tls timeout + 1 s with TLS).
    #[serde(with = "opt_duration")]
    pub timeout: Option<Duration>,
    /// Permissions of users configured without their own (raw conf block).
    pub default_permissions: Option<serde_json::Value>,
}

impl Authorization {
    /// Whether clients must authenticate (drives INFO `auth_required` and the auth timer).
    pub fn required(&self) -> bool {
        self.user.is_some() || self.token.is_some() || !self.users.is_empty()
    }
}

/// Client `tls { ... }` (and `--tls*` flags).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TlsConfig {
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    /// CA bundle for verifying client certificates.
    pub ca_file: Option<PathBuf>,
    /// Require and verify a client certificate.
    pub verify: bool,
    /// `verify` plus map the certificate identity to a configured user.
    pub verify_and_map: bool,
    /// Handshake timeout; `None` = nats-server's 2 s.
    #[serde(with = "opt_duration")]
    pub timeout: Option<Duration>,
    /// TLS before INFO (`handshake_first: true`).
    pub handshake_first: bool,
    /// `handshake_first: "300ms"`: send INFO in plaintext after this long if the client
    /// has not started TLS.
    #[serde(with = "opt_duration")]
    pub handshake_first_fallback: Option<Duration>,
}

impl TlsConfig {
    pub fn timeout(&self) -> Duration {
        self.timeout.unwrap_or(defaults::TLS_TIMEOUT)
    }

    /// A client certificate is required.
    pub fn verify_clients(&self) -> bool {
        self.verify || self.verify_and_map
    }
}

/// `cluster { ... }`: parsed now, used by the routed-mesh issue.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClusterConfig {
    pub name: Option<String>,
    pub host: Option<String>,
    pub port: Option<i32>,
    pub routes: Vec<String>,
    pub advertise: Option<String>,
    pub no_advertise: bool,
    pub connect_retries: Option<u32>,
    pub authorization: Authorization,
    #[serde(with = "opt_duration")]
    pub ping_interval: Option<Duration>,
    pub ping_max: Option<u32>,
    /// gRPC control listener (`host:port`, port 6250 when omitted) for Raft and the
    /// admin API. Raft runs only when this is set (and then store_dir is required).
    pub control_listen: Option<String>,
    /// Control address given to peers and the CLI when the listen address is not
    /// reachable as is (0.0.0.0, NAT).
    pub control_advertise: Option<String>,
    /// Bearer token required on the control listener (Raft peers and admin).
    pub control_token: Option<String>,
    /// Nodes to wait for before the lowest node id initialises the Raft group.
    pub bootstrap_expect: Option<u32>,
    /// Voters cap (default 5); further nodes stay learners.
    pub max_voters: Option<u32>,
    /// `cluster { tls { } }`: routes run TLS from the first byte, both ways (the
    /// dialing side is the TLS client and presents the same certificate).
    pub tls: Option<TlsConfig>,
    /// `cluster { control_tls { } }`: TLS on the gRPC control listener and for the
    /// Raft peer clients; `verify: true` requires a client certificate (mTLS).
    pub control_tls: Option<TlsConfig>,
}

impl ClusterConfig {
    /// A cluster is configured when it has a listen port.
    pub fn enabled(&self) -> bool {
        self.port.is_some()
    }
}

/// `websocket { ... }`: the WebSocket client listener (nats-server's keys).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WebsocketConfig {
    pub host: Option<String>,
    /// Listener port; the listener runs only when set (-1 = random).
    pub port: Option<i32>,
    /// `host:port` given to clients (connect_urls) instead of the listen address.
    pub advertise: Option<String>,
    pub tls: Option<TlsConfig>,
    /// Plain `ws://` without TLS; nats-server refuses a websocket block with neither.
    pub no_tls: bool,
    /// Negotiate permessage-deflate with clients that offer it.
    pub compression: bool,
    /// Reject (403) an upgrade whose `Origin` is not the request's `Host`.
    pub same_origin: bool,
    /// Origins (`scheme://host[:port]`) accepted; empty = any.
    pub allowed_origins: Vec<String>,
    /// Time allowed for the TLS and HTTP upgrade handshakes; `None` = 2 s.
    #[serde(with = "opt_duration")]
    pub handshake_timeout: Option<Duration>,
    /// User assumed by websocket clients that send no credentials.
    pub no_auth_user: Option<String>,
}

impl WebsocketConfig {
    pub fn enabled(&self) -> bool {
        self.port.is_some()
    }

    pub fn handshake_timeout(&self) -> Duration {
        self.handshake_timeout.unwrap_or(defaults::TLS_TIMEOUT)
    }
}

/// Logging and process files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Logging {
    pub debug: bool,
    pub trace: bool,
    pub logtime: bool,
    pub log_file: Option<PathBuf>,
    pub pid_file: Option<PathBuf>,
    pub ports_file_dir: Option<PathBuf>,
    #[serde(deserialize_with = "size::deserialize_u64")]
    pub log_size_limit: u64,
    /// `logfile_max_num`: log files kept, the active one included (0 = all). Older
    /// rotated files are removed after each rotation, as nats-server does.
    pub log_max_num: u32,
    /// `log_format: json` / `--log_json`: one JSON object per line instead of nats text.
    pub log_format: LogFormat,
}

/// Shape of log lines.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// nats-server's `[pid] date [INF] text` (harnesses grep it).
    #[default]
    Text,
    /// `{"time":..,"level":..,"msg":..,"pid":..}` for log shippers.
    Json,
}

/// `telemetry { ... }`: OpenTelemetry (OTLP/gRPC) export. Unset values fall back to the
/// standard `OTEL_*` environment variables (see `telemetry::settings`); nothing runs
/// unless an endpoint is given here or there.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TelemetryConfig {
    /// Collector address, e.g. `http://127.0.0.1:4317`.
    pub otlp_endpoint: Option<String>,
    pub service_name: Option<String>,
    /// Export spans (connection, route, admin lifecycles and traced messages).
    pub traces: Option<bool>,
    /// Export metrics (the figures of `/metrics`).
    pub metrics: Option<bool>,
    /// Share of traces recorded, 0.0..=1.0 (also applied to traced messages).
    pub sample_ratio: Option<f64>,
    /// How often metrics are pushed (default 60 s, `OTEL_METRIC_EXPORT_INTERVAL`).
    #[serde(with = "opt_duration")]
    pub metrics_interval: Option<Duration>,
}

impl Default for Logging {
    fn default() -> Self {
        Logging {
            debug: false,
            trace: false,
            logtime: true,
            log_file: None,
            pid_file: None,
            ports_file_dir: None,
            log_size_limit: 0,
            log_max_num: 0,
            log_format: LogFormat::Text,
        }
    }
}

/// The whole server configuration. Field names are nats-server's conf keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    pub server_name: Option<String>,
    /// `accounts { ... }`: named accounts with their users, exports and imports.
    pub accounts: Vec<AccountConfig>,
    pub host: String,
    /// Client port; -1 picks a random free port (nats-server's RANDOM_PORT), 0 means 4222.
    pub port: i32,
    pub client_advertise: Option<String>,
    pub http_host: Option<String>,
    /// Monitoring port (`-m`, `http`); `None` = monitoring off; -1 = random.
    pub http_port: Option<i32>,
    pub https_port: Option<i32>,
    #[serde(deserialize_with = "size::deserialize_i64")]
    pub max_payload: i64,
    #[serde(deserialize_with = "size::deserialize_i32")]
    pub max_control_line: i32,
    #[serde(deserialize_with = "size::deserialize_i64")]
    pub max_pending: i64,
    /// 0 in a conf file means "reject every client" (nats-server maps it to -1).
    pub max_connections: i32,
    /// 0 = unlimited.
    pub max_subscriptions: i32,
    #[serde(with = "duration")]
    pub ping_interval: Duration,
    pub ping_max: u32,
    #[serde(with = "duration")]
    pub write_deadline: Duration,
    #[serde(with = "duration")]
    pub lame_duck_duration: Duration,
    #[serde(with = "duration")]
    pub lame_duck_grace_period: Duration,
    pub no_header_support: bool,
    pub authorization: Authorization,
    pub no_auth_user: Option<String>,
    pub logging: Logging,
    pub store_dir: Option<PathBuf>,
    pub jetstream: bool,
    pub cluster: ClusterConfig,
    /// Client TLS; `None` = plaintext only.
    pub tls: Option<TlsConfig>,
    /// With `tls`, also accept clients that do not start TLS (INFO `tls_available`).
    pub allow_non_tls: bool,
    /// Truncate traced message bodies to this many bytes (0 = no limit); nats `max_traced_msg_len`.
    pub max_traced_msg_len: i32,
    pub telemetry: TelemetryConfig,
    pub websocket: WebsocketConfig,
    /// Operator mode: the trusted operator JWT (a file path, or the JWT inline).
    pub operator: Option<String>,
    /// Account resolver; only `MEMORY` is supported.
    pub resolver: Option<String>,
    /// Account public key -> account JWT, for `resolver: MEMORY`.
    pub resolver_preload: std::collections::BTreeMap<String, String>,
    /// The system account's public key (accepted; tern has no system account events).
    pub system_account: Option<String>,
    /// The file this config was read from (for reload); not a conf key.
    #[serde(skip)]
    pub config_file: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            server_name: None,
            accounts: Vec::new(),
            host: defaults::HOST.to_string(),
            port: defaults::PORT,
            client_advertise: None,
            http_host: None,
            http_port: None,
            https_port: None,
            max_payload: defaults::MAX_PAYLOAD,
            max_control_line: defaults::MAX_CONTROL_LINE,
            max_pending: defaults::MAX_PENDING,
            max_connections: defaults::MAX_CONNECTIONS,
            max_subscriptions: 0,
            ping_interval: defaults::PING_INTERVAL,
            ping_max: defaults::PING_MAX,
            write_deadline: defaults::WRITE_DEADLINE,
            lame_duck_duration: defaults::LAME_DUCK_DURATION,
            lame_duck_grace_period: defaults::LAME_DUCK_GRACE_PERIOD,
            no_header_support: false,
            authorization: Authorization::default(),
            no_auth_user: None,
            logging: Logging::default(),
            store_dir: None,
            jetstream: false,
            cluster: ClusterConfig::default(),
            tls: None,
            allow_non_tls: false,
            max_traced_msg_len: 0,
            telemetry: TelemetryConfig::default(),
            websocket: WebsocketConfig::default(),
            operator: None,
            resolver: None,
            resolver_preload: Default::default(),
            system_account: None,
            config_file: None,
        }
    }
}

impl Config {
    /// Effective auth timeout (nats-server: 2 s without TLS, TLS timeout + 1 s with it).
    pub fn auth_timeout(&self) -> Duration {
        self.authorization
            .timeout
            .unwrap_or_else(|| match &self.tls {
                Some(t) => t.timeout() + Duration::from_secs(1),
                None => defaults::AUTH_TIMEOUT,
            })
    }

    /// nats-server treats 0 as "use the default" for these settings (and port 0 as
    /// 4222, http port 0 as off); tern does the same rather than taking 0 literally
    /// (a max_pending of 0 would cut off every subscriber).
    pub fn normalized(mut self) -> Self {
        if self.port == 0 {
            self.port = defaults::PORT;
        }
        if self.http_port == Some(0) {
            self.http_port = None;
        }
        if self.https_port == Some(0) {
            self.https_port = None;
        }
        if self.max_payload <= 0 {
            self.max_payload = defaults::MAX_PAYLOAD;
        }
        if self.max_control_line <= 0 {
            self.max_control_line = defaults::MAX_CONTROL_LINE;
        }
        if self.max_pending <= 0 {
            self.max_pending = defaults::MAX_PENDING;
        }
        if self.write_deadline.is_zero() {
            self.write_deadline = defaults::WRITE_DEADLINE;
        }
        if self.ping_interval.is_zero() {
            self.ping_interval = defaults::PING_INTERVAL;
        }
        if self.ping_max == 0 {
            self.ping_max = defaults::PING_MAX;
        }
        if self.authorization.timeout.is_some_and(|t| t.is_zero()) {
            self.authorization.timeout = None;
        }
        self
    }

    /// A config for tests and embedding: loopback, random port, everything else default.
    pub fn local() -> Self {
        Config {
            host: "127.0.0.1".into(),
            port: -1,
            ..Config::default()
        }
    }
}

/// Durations serialize as nats-server duration strings ("2m", "10s"); integers are seconds.
pub mod duration {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(*d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        parse_value(&v).map_err(serde::de::Error::custom)
    }

    /// Accepts a Go duration string, an integer or float number of seconds.
    pub fn parse_value(v: &serde_json::Value) -> Result<Duration, String> {
        match v {
            serde_json::Value::String(s) => parse_go_duration(s),
            serde_json::Value::Number(n) => n
                .as_f64()
                .filter(|f| *f >= 0.0)
                .map(Duration::from_secs_f64)
                .ok_or_else(|| format!("invalid duration {n}")),
            other => Err(format!("invalid duration {other}")),
        }
    }

    /// Go's time.ParseDuration subset: sequences of `<number><unit>`, units ns us µs ms s m h.
    pub fn parse_go_duration(s: &str) -> Result<Duration, String> {
        let s = s.trim();
        if s == "0" {
            return Ok(Duration::ZERO);
        }
        if let Ok(secs) = s.parse::<f64>() {
            if secs >= 0.0 {
                return Ok(Duration::from_secs_f64(secs));
            }
        }
        let mut total = 0f64;
        let mut rest = s;
        if rest.is_empty() {
            return Err("empty duration".into());
        }
        while !rest.is_empty() {
            let num_end = rest
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .ok_or_else(|| format!("missing unit in duration \"{s}\""))?;
            if num_end == 0 {
                return Err(format!("invalid duration \"{s}\""));
            }
            let n: f64 = rest[..num_end]
                .parse()
                .map_err(|_| format!("invalid duration \"{s}\""))?;
            rest = &rest[num_end..];
            let unit_end = rest
                .find(|c: char| c.is_ascii_digit() || c == '.')
                .unwrap_or(rest.len());
            let mult = match &rest[..unit_end] {
                "ns" => 1e-9,
                "us" | "µs" | "μs" => 1e-6,
                "ms" => 1e-3,
                "s" => 1.0,
                "m" => 60.0,
                "h" => 3600.0,
                u => return Err(format!("unknown unit \"{u}\" in duration \"{s}\"")),
            };
            total += n * mult;
            rest = &rest[unit_end..];
        }
        Ok(Duration::from_secs_f64(total))
    }

    /// Go's Duration.String() style, e.g. "2m0s", "1.5s", "300ms".
    pub fn format_duration(d: Duration) -> String {
        let nanos = d.as_nanos();
        if nanos == 0 {
            return "0s".into();
        }
        if nanos < 1_000 {
            return format!("{nanos}ns");
        }
        if nanos < 1_000_000 {
            return format!("{}µs", trim_float(nanos as f64 / 1e3));
        }
        if nanos < 1_000_000_000 {
            return format!("{}ms", trim_float(nanos as f64 / 1e6));
        }
        let total_secs = d.as_secs();
        let h = total_secs / 3600;
        let m = (total_secs % 3600) / 60;
        let s = (total_secs % 60) as f64 + f64::from(d.subsec_nanos()) / 1e9;
        let mut out = String::new();
        if h > 0 {
            out.push_str(&format!("{h}h"));
        }
        if h > 0 || m > 0 {
            out.push_str(&format!("{m}m"));
        }
        out.push_str(&format!("{}s", trim_float(s)));
        out
    }

    fn trim_float(f: f64) -> String {
        let s = format!("{f:.9}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        s.to_string()
    }
}

/// Sizes: an integer, or a string with a nats size suffix ("1MB", "64k"), so TOML, YAML
/// and `TERN_` environment values accept what a nats conf file accepts.
pub mod size {
    use serde::{Deserialize, Deserializer};

    /// Parses `<digits><suffix>` with nats-server's suffixes, case-insensitive:
    /// k/m/g/t/p/e are powers of 1000, kb/ki/kib (mb, gb, ...) powers of 1024.
    pub fn parse_size(s: &str) -> Result<i64, String> {
        let t = s.trim();
        let (neg, body) = match t.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, t),
        };
        let digits_end = body
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(body.len());
        if digits_end == 0 {
            return Err(format!("invalid size \"{s}\""));
        }
        let n: i64 = body[..digits_end]
            .parse()
            .map_err(|_| format!("size \"{s}\" is too big"))?;
        let mult = suffix_multiplier(&body[digits_end..])
            .ok_or_else(|| format!("invalid size suffix in \"{s}\""))?;
        let v = n
            .checked_mul(mult)
            .ok_or_else(|| format!("size \"{s}\" is too big"))?;
        Ok(if neg { -v } else { v })
    }

    /// Multiplier for a size suffix ("" = 1); `None` when it is not a size suffix.
    pub fn suffix_multiplier(suffix: &str) -> Option<i64> {
        let lower = suffix.to_ascii_lowercase();
        let mut chars = lower.chars();
        let Some(unit) = chars.next() else {
            return Some(1);
        };
        let exp = match unit {
            'k' => 1,
            'm' => 2,
            'g' => 3,
            't' => 4,
            'p' => 5,
            'e' => 6,
            _ => return None,
        };
        let binary = match chars.as_str() {
            "" => false,
            "b" | "i" | "ib" => true,
            _ => return None,
        };
        let base: i64 = if binary { 1024 } else { 1000 };
        Some(base.pow(exp))
    }

    fn deserialize_any_size<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        match &v {
            serde_json::Value::Number(n) => n
                .as_i64()
                .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
                .ok_or_else(|| serde::de::Error::custom(format!("invalid size {n}"))),
            serde_json::Value::String(s) => parse_size(s).map_err(serde::de::Error::custom),
            other => Err(serde::de::Error::custom(format!("invalid size {other}"))),
        }
    }

    pub fn deserialize_i64<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        deserialize_any_size(d)
    }

    pub fn deserialize_i32<'de, D: Deserializer<'de>>(d: D) -> Result<i32, D::Error> {
        let v = deserialize_any_size(d)?;
        i32::try_from(v).map_err(|_| serde::de::Error::custom(format!("size {v} is too big")))
    }

    pub fn deserialize_u64<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        let v = deserialize_any_size(d)?;
        u64::try_from(v).map_err(|_| serde::de::Error::custom(format!("size {v} is negative")))
    }
}

/// `Option<Duration>` flavour of [`duration`].
pub mod opt_duration {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => super::duration::serialize(d, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let v = Option::<serde_json::Value>::deserialize(d)?;
        match v {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(v) => super::duration::parse_value(&v)
                .map(Some)
                .map_err(serde::de::Error::custom),
        }
    }
}
