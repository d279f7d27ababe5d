//! INFO (server -> client) and CONNECT (client -> server) JSON, as nats-server shapes them.
//!
//! Field order follows nats-server's `Info` struct so the bytes look alike; `omitempty`
//! fields are skipped when empty, exactly as Go's encoding/json would.

use serde::{Deserialize, Serialize};

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The INFO a server sends. One template per server; per-connection fields
/// (`client_id`, `client_ip`, `nonce`...) are filled in a copy.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct ServerInfo {
    pub server_id: String,
    pub server_name: String,
    pub version: String,
    pub proto: i32,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub git_commit: String,
    pub go: String,
    pub host: String,
    pub port: u16,
    pub headers: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub auth_required: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub tls_required: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub tls_verify: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub tls_available: bool,
    pub max_payload: i64,
    #[serde(default, skip_serializing_if = "is_false")]
    pub jetstream: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ip: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub client_id: u64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub client_ip: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub nonce: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cluster: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub cluster_dynamic: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub connect_urls: Vec<String>,
    /// Route INFO only: this server's websocket URLs (nats-server's `ws_connect_urls`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ws_connect_urls: Vec<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub ldm: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub connect_info: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub remote_account: String,
    /// tern extension on route INFO: the Raft node id, so routes map to members
    /// (nats-server ignores unknown INFO fields).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub tern_node_id: u64,
    /// tern extension on route INFO: the gRPC control address, for Raft discovery.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub tern_control: String,
}

impl ServerInfo {
    /// `INFO <json> \r\n` — nats-server puts a space before the CRLF.
    pub fn to_line(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(512);
        out.extend_from_slice(b"INFO ");
        // Serializing a struct of strings, numbers and bools into a Vec cannot fail.
        serde_json::to_writer(&mut out, self).unwrap_or_default();
        out.extend_from_slice(b" \r\n");
        out
    }
}

/// CONNECT on a route (the soliciting side sends it first). `name` is the server_id.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct RouteConnect {
    pub echo: bool,
    pub verbose: bool,
    pub pedantic: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pass: Option<String>,
    pub tls_required: bool,
    pub headers: bool,
    pub name: String,
    pub cluster: String,
    #[serde(skip_serializing_if = "is_false")]
    pub cluster_dynamic: bool,
    /// A client's CONNECT carries `lang`; on the route port that means a client
    /// dialed the wrong port.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lang: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
}

fn yes() -> bool {
    true
}

/// CONNECT options. Absent `verbose`, `pedantic` and `echo` default to true, as in
/// nats-server (`CONNECT {}` turns verbose on). Unknown fields are ignored.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ConnectInfo {
    #[serde(default = "yes")]
    pub verbose: bool,
    #[serde(default = "yes")]
    pub pedantic: bool,
    #[serde(default)]
    pub tls_required: bool,
    #[serde(default)]
    pub auth_token: Option<String>,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub pass: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub lang: Option<String>,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub protocol: i64,
    #[serde(default = "yes")]
    pub echo: bool,
    #[serde(default)]
    pub headers: bool,
    #[serde(default)]
    pub no_responders: bool,
    #[serde(default)]
    pub sig: Option<String>,
    #[serde(default)]
    pub jwt: Option<String>,
    #[serde(default)]
    pub nkey: Option<String>,
    #[serde(default)]
    pub account: Option<serde_json::Value>,
    #[serde(default)]
    pub new_account: Option<serde_json::Value>,
}

impl Default for ConnectInfo {
    /// The options a client has before (or without) CONNECT.
    fn default() -> Self {
        ConnectInfo {
            verbose: true,
            pedantic: true,
            tls_required: false,
            auth_token: None,
            user: None,
            pass: None,
            name: None,
            lang: None,
            version: None,
            protocol: 0,
            echo: true,
            headers: false,
            no_responders: false,
            sig: None,
            jwt: None,
            nkey: None,
            account: None,
            new_account: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_defaults() {
        let c: ConnectInfo = serde_json::from_slice(b"{}").unwrap();
        assert!(c.verbose && c.pedantic && c.echo && !c.headers);
        let c: ConnectInfo =
            serde_json::from_slice(br#"{"verbose":false,"headers":true,"x":1}"#).unwrap();
        assert!(!c.verbose && c.headers);
    }

    #[test]
    fn info_line_shape() {
        let info = ServerInfo {
            server_id: "N1".into(),
            server_name: "s".into(),
            version: "2.15.1".into(),
            proto: 1,
            go: "go".into(),
            host: "0.0.0.0".into(),
            port: 4222,
            headers: true,
            max_payload: 1048576,
            client_id: 3,
            client_ip: "127.0.0.1".into(),
            ..Default::default()
        };
        let line = String::from_utf8(info.to_line()).unwrap();
        assert!(line.starts_with("INFO {\"server_id\":\"N1\""));
        assert!(line.ends_with("} \r\n"));
        assert!(!line.contains("auth_required"));
    }
}
