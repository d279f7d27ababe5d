//! The client `tls { }` block: certificate files, client verification, timeout and
//! `handshake_first`. Options tern does not implement (cipher suites, curves, pinned
//! certificates, OCSP, cert stores...) are accepted with a warning so conf files load.

use serde_json::Value as J;

use super::map::Mapper;
use super::value::{Kind, Value};
use super::Pos;
use crate::config::duration::format_duration;

const TLS_UNSUPPORTED: &[&str] = &[
    "cipher_suites",
    "curve_preferences",
    "min_version",
    "insecure",
    "pinned_certs",
    "verify_cert_and_check_known_urls",
    "connection_rate_limit",
    "cert_store",
    "cert_match",
    "cert_match_by",
    "cert_match_skip_invalid",
    "ca_certs_match",
    "ocsp_peer",
    "certs",
];

impl Mapper {
    pub(super) fn tls(&mut self, kpos: &Pos, v: &Value) {
        self.tls_block("tls", kpos, v)
    }

    /// A tls block placed at `prefix` (`tls`, `cluster.tls`, `cluster.control_tls`).
    pub(super) fn tls_block(&mut self, prefix: &str, kpos: &Pos, v: &Value) {
        let Some(m) = v.as_map() else {
            return self.error(&v.pos, "tls must be a map");
        };
        let k = |f: &str| format!("{prefix}.{f}");
        // Present even when empty, so `tls {}` is reported as missing a certificate.
        self.set(&k("verify"), J::Bool(false), kpos);
        for e in &m.entries {
            let key = e.key.to_ascii_lowercase();
            let v = &e.value;
            match key.as_str() {
                "cert_file" => self.set_string(&k("cert_file"), &key, v),
                "key_file" => self.set_string(&k("key_file"), &key, v),
                "ca_file" => self.set_string(&k("ca_file"), &key, v),
                "verify" => self.set_bool(&k("verify"), &key, v),
                "verify_and_map" => self.set_bool(&k("verify_and_map"), &key, v),
                "timeout" => {
                    // Seconds (int or float) or a duration string, as nats-server takes it.
                    let d = match &v.kind {
                        Kind::Int(i) if *i >= 0 => {
                            Some(std::time::Duration::from_secs(i.unsigned_abs()))
                        }
                        Kind::Float(f) if *f >= 0.0 && f.is_finite() => {
                            Some(std::time::Duration::from_secs_f64(*f))
                        }
                        Kind::Str(_) => self.duration(&key, v),
                        _ => {
                            self.error(&v.pos, "tls timeout must be a number of seconds");
                            None
                        }
                    };
                    if let Some(d) = d {
                        self.set(&k("timeout"), J::String(format_duration(d)), &v.pos);
                    }
                }
                "handshake_first" | "first" | "immediate" => match &v.kind {
                    Kind::Bool(b) => self.set(&k("handshake_first"), J::Bool(*b), &v.pos),
                    Kind::Str(s) if s.eq_ignore_ascii_case("auto") => {
                        // nats-server's "auto" is a 50 ms fallback delay.
                        self.set(&k("handshake_first"), J::Bool(true), &v.pos);
                        self.set(
                            &k("handshake_first_fallback"),
                            J::String("50ms".into()),
                            &v.pos,
                        );
                    }
                    Kind::Str(_) => {
                        if let Some(d) = self.duration(&key, v) {
                            self.set(&k("handshake_first"), J::Bool(true), &v.pos);
                            if !d.is_zero() {
                                self.set(
                                    &k("handshake_first_fallback"),
                                    J::String(format_duration(d)),
                                    &v.pos,
                                );
                            }
                        }
                    }
                    _ => self.error(
                        &v.pos,
                        "handshake_first must be a boolean, \"auto\" or a duration",
                    ),
                },
                k if TLS_UNSUPPORTED.contains(&k) => {
                    self.unsupported(&e.key_pos, &format!("tls {}", e.key))
                }
                _ => self.unknown_entry(e),
            }
        }
    }
}
