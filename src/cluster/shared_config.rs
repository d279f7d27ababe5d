//! The cluster-scoped configuration kept in the Raft state machine: limits and
//! authorization that must be the same on every node. Each key is optional; an unset
//! key leaves the node's own (file/flag) value in force.
//!
//! Pure data and checks: no I/O. Validated by the CLI, by the leader before proposing,
//! and again by every node on apply, so an invalid config is rejected everywhere.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::{opt_duration, size, Authorization, Config};

/// Cluster-wide settings. Names are nats-server's conf keys.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SharedConfig {
    #[serde(
        deserialize_with = "opt_size_i64",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_payload: Option<i64>,
    #[serde(
        deserialize_with = "opt_size_i64",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_pending: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_subscriptions: Option<i32>,
    #[serde(
        deserialize_with = "opt_size_i64",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_control_line: Option<i64>,
    #[serde(with = "opt_duration", skip_serializing_if = "Option::is_none")]
    pub ping_interval: Option<Duration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ping_max: Option<u32>,
    #[serde(with = "opt_duration", skip_serializing_if = "Option::is_none")]
    pub write_deadline: Option<Duration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authorization: Option<Authorization>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_auth_user: Option<String>,
}

fn opt_size_i64<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let v = Option::<serde_json::Value>::deserialize(d)?;
    match v {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) => size::parse_size(&s)
            .map(Some)
            .map_err(serde::de::Error::custom),
        Some(serde_json::Value::Number(n)) => n
            .as_i64()
            .map(Some)
            .ok_or_else(|| serde::de::Error::custom(format!("invalid size {n}"))),
        Some(other) => Err(serde::de::Error::custom(format!("invalid size {other}"))),
    }
}

/// nats-server refuses payloads above 64 MB.
const MAX_PAYLOAD_LIMIT: i64 = 64 * 1024 * 1024;

/// The formats `tern cluster config set FILE` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigFormat {
    Json,
    Toml,
    Yaml,
    /// nats-server conf syntax (`max_payload: 2MB`, `authorization { ... }`).
    Nats,
}

impl ConfigFormat {
    /// By extension (`.json`, `.toml`, `.yaml`/`.yml`, `.conf`); otherwise by content:
    /// text starting with `{` is JSON, anything else nats conf (which also reads the
    /// common `key: value` / `key = value` lines).
    pub fn detect(path: &std::path::Path, text: &str) -> ConfigFormat {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("json") => ConfigFormat::Json,
            Some("toml") => ConfigFormat::Toml,
            Some("yaml" | "yml") => ConfigFormat::Yaml,
            Some("conf") => ConfigFormat::Nats,
            _ if text.trim_start().starts_with('{') => ConfigFormat::Json,
            _ => ConfigFormat::Nats,
        }
    }
}

impl SharedConfig {
    /// Parses `text` in `format`; keys are nats-server's names in every format.
    pub fn parse_as(text: &str, format: ConfigFormat) -> Result<SharedConfig, String> {
        let json = match format {
            ConfigFormat::Json => return Self::parse(text, false),
            ConfigFormat::Toml => return Self::parse(text, true),
            ConfigFormat::Yaml => config::Config::builder()
                .add_source(config::File::from_str(text, config::FileFormat::Yaml))
                .build()
                .and_then(|c| c.try_deserialize::<serde_json::Value>())
                .map_err(|e| e.to_string())?,
            ConfigFormat::Nats => {
                let map = crate::conf::parser::parse_str(text, std::path::Path::new("-")).map_err(
                    |errs| {
                        errs.iter()
                            .map(|e| e.to_string())
                            .collect::<Vec<_>>()
                            .join("; ")
                    },
                )?;
                // nats conf keys are case-insensitive; `X = 1` lines used only as
                // `$X` are variables, not settings.
                serde_json::Value::Object(
                    map.entries
                        .iter()
                        .filter(|e| !e.used_as_variable)
                        .map(|e| (e.key.to_ascii_lowercase(), e.value.to_json()))
                        .collect(),
                )
            }
        };
        serde_json::from_value(json).map_err(|e| e.to_string())
    }

    /// Parses a file's text: JSON, or TOML when `toml` is set.
    pub fn parse(text: &str, toml: bool) -> Result<SharedConfig, String> {
        if toml {
            let v: toml::Value = toml::from_str(text).map_err(|e| e.to_string())?;
            let j = serde_json::to_value(v).map_err(|e| e.to_string())?;
            serde_json::from_value(j).map_err(|e| e.to_string())
        } else {
            serde_json::from_str(text).map_err(|e| e.to_string())
        }
    }

    pub fn to_json(&self) -> String {
        // A struct of plain fields always serializes.
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }

    /// Every problem at once (design rule 9), empty when valid.
    pub fn validate(&self) -> Vec<String> {
        let mut errs = Vec::new();
        if let Some(p) = self.max_payload {
            if p <= 0 || p > MAX_PAYLOAD_LIMIT {
                errs.push(format!(
                    "max_payload {p} must be between 1 and {MAX_PAYLOAD_LIMIT}"
                ));
            }
            let pending = self
                .max_pending
                .unwrap_or(crate::config::defaults::MAX_PENDING);
            if p > pending {
                errs.push(format!(
                    "max_payload {p} cannot exceed max_pending {pending}"
                ));
            }
        }
        if self.max_pending.is_some_and(|p| p <= 0) {
            errs.push("max_pending must be positive".into());
        }
        if self.max_connections.is_some_and(|c| c < 0) {
            errs.push("max_connections must not be negative".into());
        }
        if self.max_subscriptions.is_some_and(|c| c < 0) {
            errs.push("max_subscriptions must not be negative".into());
        }
        if let Some(l) = self.max_control_line {
            if l <= 0 || l > i64::from(i32::MAX) {
                errs.push(format!("max_control_line {l} is out of range"));
            }
        }
        if self.ping_max == Some(0) {
            errs.push("ping_max must be at least 1".into());
        }
        for (k, d) in [
            ("ping_interval", self.ping_interval),
            ("write_deadline", self.write_deadline),
        ] {
            if d.is_some_and(|d| d.is_zero()) {
                errs.push(format!("{k} must be greater than zero"));
            }
        }
        if let Some(a) = &self.authorization {
            if a.user.is_some() && !a.users.is_empty() {
                errs.push(
                    "authorization: can not have a single user/pass and a users array".into(),
                );
            }
            if a.token.is_some() && (a.user.is_some() || !a.users.is_empty()) {
                errs.push("authorization: can not have a token and users".into());
            }
            for (i, u) in a.users.iter().enumerate() {
                if u.user.as_deref().unwrap_or("").is_empty() && u.nkey.is_none() {
                    errs.push(format!(
                        "authorization: user #{} has no name or nkey",
                        i + 1
                    ));
                }
            }
        }
        if let Some(n) = &self.no_auth_user {
            let known = self
                .authorization
                .as_ref()
                .is_some_and(|a| a.users.iter().any(|u| u.user.as_deref() == Some(n)));
            if !known {
                errs.push(format!(
                    "no_auth_user \"{n}\" is not one of the authorization users"
                ));
            }
        }
        errs
    }

    /// `base` (the node's own configuration) with every key set here put over it.
    pub fn apply_to(&self, mut base: Config) -> Config {
        if let Some(v) = self.max_payload {
            base.max_payload = v;
        }
        if let Some(v) = self.max_pending {
            base.max_pending = v;
        }
        if let Some(v) = self.max_connections {
            base.max_connections = v;
        }
        if let Some(v) = self.max_subscriptions {
            base.max_subscriptions = v;
        }
        if let Some(v) = self.max_control_line {
            base.max_control_line = i32::try_from(v).unwrap_or(i32::MAX);
        }
        if let Some(v) = self.ping_interval {
            base.ping_interval = v;
        }
        if let Some(v) = self.ping_max {
            base.ping_max = v;
        }
        if let Some(v) = self.write_deadline {
            base.write_deadline = v;
        }
        if let Some(v) = &self.authorization {
            base.authorization = v.clone();
        }
        if let Some(v) = &self.no_auth_user {
            base.no_auth_user = Some(v.clone());
        }
        base
    }

    /// `- key: old` / `+ key: new` lines for every top-level key that differs.
    pub fn diff(&self, new: &SharedConfig) -> Vec<String> {
        let flat = |c: &SharedConfig| -> BTreeMap<String, String> {
            match serde_json::to_value(c) {
                Ok(serde_json::Value::Object(m)) => {
                    m.into_iter().map(|(k, v)| (k, v.to_string())).collect()
                }
                _ => BTreeMap::new(),
            }
        };
        let (a, b) = (flat(self), flat(new));
        let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
        keys.sort();
        keys.dedup();
        let mut out = Vec::new();
        for k in keys {
            match (a.get(k), b.get(k)) {
                (Some(x), Some(y)) if x == y => {}
                (x, y) => {
                    if let Some(x) = x {
                        out.push(format!("- {k}: {x}"));
                    }
                    if let Some(y) = y {
                        out.push(format!("+ {k}: {y}"));
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sizes_durations_and_rejects_unknown_keys() {
        let c = SharedConfig::parse(
            r#"{"max_payload":"2MB","ping_interval":"30s","max_connections":10}"#,
            false,
        )
        .unwrap();
        assert_eq!(c.max_payload, Some(2 * 1024 * 1024));
        assert_eq!(c.ping_interval, Some(Duration::from_secs(30)));
        assert!(c.validate().is_empty());
        let t = SharedConfig::parse("max_payload = 4096\nwrite_deadline = \"5s\"\n", true).unwrap();
        assert_eq!(t.max_payload, Some(4096));
        let e = SharedConfig::parse(r#"{"max_paylod":1}"#, false).unwrap_err();
        assert!(e.contains("unknown field"), "{e}");
    }

    #[test]
    fn reads_nats_conf_and_yaml_like_json() {
        let want = SharedConfig::parse(
            r#"{"max_payload":"2MB","max_connections":10,"ping_interval":"30s"}"#,
            false,
        )
        .unwrap();
        let conf = "# limits\nmax_payload: 2MB\nMAX_CONNECTIONS = 10\nping_interval: \"30s\"\n";
        assert_eq!(
            SharedConfig::parse_as(conf, ConfigFormat::Nats).unwrap(),
            want
        );
        let yaml = "max_payload: 2MB\nmax_connections: 10\nping_interval: 30s\n";
        assert_eq!(
            SharedConfig::parse_as(yaml, ConfigFormat::Yaml).unwrap(),
            want
        );
        let e = SharedConfig::parse_as("max_paylod: 1\n", ConfigFormat::Nats).unwrap_err();
        assert!(e.contains("unknown field"), "{e}");
        let p = std::path::Path::new;
        assert_eq!(ConfigFormat::detect(p("a.yml"), ""), ConfigFormat::Yaml);
        assert_eq!(ConfigFormat::detect(p("a.conf"), "{"), ConfigFormat::Nats);
        assert_eq!(
            ConfigFormat::detect(p("limits"), " {\"a\":1}"),
            ConfigFormat::Json
        );
        assert_eq!(
            ConfigFormat::detect(p("limits"), "a: 1"),
            ConfigFormat::Nats
        );
    }

    #[test]
    fn validation_reports_every_problem() {
        let c = SharedConfig {
            max_payload: Some(0),
            max_connections: Some(-1),
            ping_max: Some(0),
            ..Default::default()
        };
        assert_eq!(c.validate().len(), 3, "{:?}", c.validate());
        let big = SharedConfig {
            max_payload: Some(2048),
            max_pending: Some(1024),
            ..Default::default()
        };
        assert!(big.validate()[0].contains("cannot exceed max_pending"));
    }

    #[test]
    fn apply_and_diff() {
        let c = SharedConfig {
            max_payload: Some(1234),
            ..Default::default()
        };
        assert_eq!(c.apply_to(Config::default()).max_payload, 1234);
        let d = SharedConfig::default().diff(&c);
        assert_eq!(d, vec!["+ max_payload: 1234".to_string()]);
        assert!(c.diff(&c).is_empty());
    }
}
