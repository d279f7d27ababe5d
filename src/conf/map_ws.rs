//! The `websocket { }` block (alias `ws`): listener address, TLS or `no_tls`,
//! compression, origin checks and the handshake timeout. Keys tern does not implement
//! (cookies, extra headers, a websocket-only authorization) load with a warning.

use serde_json::Value as J;

use super::map::Mapper;
use super::value::{Kind, Value};

const WS_UNSUPPORTED: &[&str] = &[
    "authorization",
    "authentication",
    "jwt_cookie",
    "user_cookie",
    "pass_cookie",
    "token_cookie",
    "headers",
    "ping_interval",
];

impl Mapper {
    pub(super) fn websocket(&mut self, v: &Value) {
        let Kind::Map(m) = &v.kind else {
            return self.error(&v.pos, "websocket must be a map");
        };
        for e in &m.entries {
            let key = e.key.to_ascii_lowercase();
            let v = &e.value;
            match key.as_str() {
                "listen" => {
                    if let Some((host, port)) = self.host_port(&key, v) {
                        if let Some(h) = host {
                            self.set("websocket.host", J::String(h), &v.pos);
                        }
                        self.set("websocket.port", J::from(port), &v.pos);
                    }
                }
                "host" | "net" => self.set_string("websocket.host", &key, v),
                "port" => self.set_int("websocket.port", &key, v, -1, u16::MAX.into()),
                "advertise" => self.set_string("websocket.advertise", &key, v),
                "tls" => self.tls_block("websocket.tls", &e.key_pos, v),
                "no_tls" => self.set_bool("websocket.no_tls", &key, v),
                "compression" => self.set_bool("websocket.compression", &key, v),
                "same_origin" => self.set_bool("websocket.same_origin", &key, v),
                "allowed_origins" | "allowed_origin" | "allow_origins" | "allow_origin"
                | "origins" | "origin" => {
                    let list: Vec<J> = match &v.kind {
                        Kind::Array(items) => items
                            .iter()
                            .filter_map(|i| self.string(&key, i))
                            .map(J::String)
                            .collect(),
                        Kind::Str(s) => vec![J::String(s.clone())],
                        _ => {
                            self.error(&v.pos, "allowed_origins must be an array of URLs");
                            continue;
                        }
                    };
                    self.set("websocket.allowed_origins", J::Array(list), &v.pos);
                }
                "handshake_timeout" => {
                    // Seconds as a number, or a duration string, as nats-server takes it.
                    match &v.kind {
                        Kind::Int(i) if *i >= 0 => self.set(
                            "websocket.handshake_timeout",
                            J::String(format!("{i}s")),
                            &v.pos,
                        ),
                        _ => self.set_duration("websocket.handshake_timeout", &key, v),
                    }
                }
                "no_auth_user" => self.set_string("websocket.no_auth_user", &key, v),
                k if WS_UNSUPPORTED.contains(&k) => {
                    self.unsupported(&e.key_pos, &format!("websocket {}", e.key))
                }
                _ => self.unknown_entry(e),
            }
        }
    }
}
