//! Operator-mode keys: `operator`, `resolver`, `resolver_preload`, `system_account`.
//! The JWTs themselves are read and verified when the authenticator is built (the
//! `operator` value may be a file path, and the config layer does no I/O).

use serde_json::{Map as JMap, Value as J};

use super::map::Mapper;
use super::value::{Kind, Value};

impl Mapper {
    /// `operator: "path or JWT"` or a list of them (tern trusts one operator).
    pub(super) fn operator(&mut self, key: &str, v: &Value) {
        let one = match &v.kind {
            Kind::Array(a) => {
                if a.len() > 1 {
                    self.error(&v.pos, "tern supports a single trusted operator");
                    return;
                }
                match a.first() {
                    Some(x) => x,
                    None => return,
                }
            }
            _ => v,
        };
        if let Some(s) = self.string(key, one) {
            self.set("operator", J::String(s), &v.pos);
        }
    }

    /// `resolver: MEMORY`, or a `{ type: ... }` block (only MEMORY is supported; the
    /// type is kept so building the authenticator reports it).
    pub(super) fn resolver(&mut self, key: &str, v: &Value) {
        let ty = match &v.kind {
            Kind::Map(m) => match m.get("type") {
                Some(t) => self.string("type", t),
                None => Some("full".to_string()),
            },
            _ => self.string(key, v),
        };
        if let Some(t) = ty {
            self.set("resolver", J::String(t), &v.pos);
        }
    }

    /// `resolver_preload { ACCOUNT_PUBLIC_KEY: "account JWT", ... }`.
    pub(super) fn resolver_preload(&mut self, v: &Value) {
        let Some(m) = v.as_map() else {
            self.error(&v.pos, "resolver_preload should be a map");
            return;
        };
        let mut out = JMap::new();
        for e in &m.entries {
            if let Some(s) = self.string(&e.key, &e.value) {
                out.insert(e.key.clone(), J::String(s));
            }
        }
        self.set("resolver_preload", J::Object(out), &v.pos);
    }
}
