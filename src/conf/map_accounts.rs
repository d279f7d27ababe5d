//! `accounts { NAME: { users: [...], exports: [...], imports: [...] } }`: named
//! accounts, each with its own subject space, and the streams and services they share.
//!
//! Validated as nats-server validates them at startup, with its error texts: an
//! import naming an undefined account, or one the exporter does not allow, refuses to
//! start; a user name may appear in one account only.

use serde_json::{json, Value as J};

use super::map::Mapper;
use super::value::{Kind, Value};
use super::Pos;
use crate::subject;

/// The account nats-server reserves for clients without one.
const GLOBAL: &str = "$G";

struct Export {
    subject: String,
    service: bool,
    accounts: Vec<String>,
}

struct Import {
    account: String,
    subject: String,
    service: bool,
    prefix: Option<String>,
    to: Option<String>,
}

struct Account {
    name: String,
    users: Vec<J>,
    exports: Vec<Export>,
    imports: Vec<Import>,
}

impl Mapper {
    pub(super) fn accounts(&mut self, v: &Value) {
        let Some(m) = self.block("accounts", v) else {
            return;
        };
        let mut accounts = Vec::new();
        for e in &m.entries {
            if e.key == GLOBAL {
                self.error(&e.key_pos, "$G is a reserved account name");
                continue;
            }
            let mut acc = Account {
                name: e.key.clone(),
                users: Vec::new(),
                exports: Vec::new(),
                imports: Vec::new(),
            };
            let Some(body) = self.block(&e.key, &e.value) else {
                continue;
            };
            for f in &body.entries {
                match f.key.to_ascii_lowercase().as_str() {
                    "users" => acc.users = self.users(&f.value).unwrap_or_default(),
                    "exports" => acc.exports = self.exports(&f.value),
                    "imports" => acc.imports = self.imports(&f.value),
                    "jetstream" | "js" | "limits" | "mappings" | "default_permissions" | "nkey" => {
                        self.unsupported(&f.key_pos, &format!("account {}", f.key))
                    }
                    _ => self.unknown_entry(f),
                }
            }
            accounts.push(acc);
        }
        self.check_accounts(&accounts, &v.pos);
        let out: Vec<J> = accounts
            .into_iter()
            .map(|a| {
                json!({
                    "name": a.name,
                    "users": a.users,
                    "exports": a.exports.iter().map(|x| json!({
                        "subject": x.subject, "service": x.service, "accounts": x.accounts,
                    })).collect::<Vec<_>>(),
                    "imports": a.imports.iter().map(|i| json!({
                        "account": i.account, "subject": i.subject, "service": i.service,
                        "prefix": i.prefix, "to": i.to,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        self.set("accounts", J::Array(out), &v.pos);
    }

    fn list<'v>(&mut self, key: &str, v: &'v Value) -> &'v [Value] {
        match &v.kind {
            Kind::Array(items) => items,
            other => {
                self.error(
                    &v.pos,
                    format!("{key} should be an array, got {}", other.type_name()),
                );
                &[]
            }
        }
    }

    fn exports(&mut self, v: &Value) -> Vec<Export> {
        let mut out = Vec::new();
        for item in self.list("exports", v) {
            let Some(m) = self.block("exports", item) else {
                continue;
            };
            let mut x = Export {
                subject: String::new(),
                service: false,
                accounts: Vec::new(),
            };
            for e in &m.entries {
                match e.key.to_ascii_lowercase().as_str() {
                    "stream" | "service" => {
                        x.service = e.key.eq_ignore_ascii_case("service");
                        x.subject = self.string(&e.key, &e.value).unwrap_or_default();
                    }
                    "accounts" => {
                        for a in self.list("accounts", &e.value) {
                            if let Some(s) = self.string_like("accounts", a) {
                                x.accounts.push(s);
                            }
                        }
                    }
                    "response"
                    | "response_type"
                    | "response_threshold"
                    | "threshold"
                    | "latency"
                    | "account_token_position"
                    | "advertise"
                    | "allow_trace" => self.unsupported(&e.key_pos, &format!("export {}", e.key)),
                    _ => self.unknown_entry(e),
                }
            }
            if x.subject.is_empty() || !subject::is_valid_subject(x.subject.as_bytes()) {
                self.error(
                    &item.pos,
                    "Export requires a valid stream or service subject",
                );
                continue;
            }
            out.push(x);
        }
        out
    }

    fn imports(&mut self, v: &Value) -> Vec<Import> {
        let mut out = Vec::new();
        for item in self.list("imports", v) {
            let Some(m) = self.block("imports", item) else {
                continue;
            };
            let mut i = Import {
                account: String::new(),
                subject: String::new(),
                service: false,
                prefix: None,
                to: None,
            };
            for e in &m.entries {
                match e.key.to_ascii_lowercase().as_str() {
                    "stream" | "service" => {
                        i.service = e.key.eq_ignore_ascii_case("service");
                        let Some(src) = self.block(&e.key, &e.value) else {
                            continue;
                        };
                        for s in &src.entries {
                            match s.key.to_ascii_lowercase().as_str() {
                                "account" => {
                                    i.account =
                                        self.string_like("account", &s.value).unwrap_or_default()
                                }
                                "subject" => {
                                    i.subject = self.string("subject", &s.value).unwrap_or_default()
                                }
                                _ => self.unknown_entry(s),
                            }
                        }
                    }
                    "prefix" => i.prefix = self.string("prefix", &e.value),
                    "to" => i.to = self.string("to", &e.value),
                    "share" | "allow_trace" => {
                        self.unsupported(&e.key_pos, &format!("import {}", e.key))
                    }
                    _ => self.unknown_entry(e),
                }
            }
            if i.account.is_empty() || i.subject.is_empty() {
                self.error(&item.pos, "Import requires an account and a subject");
                continue;
            }
            out.push(i);
        }
        out
    }

    /// nats-server's startup checks, reported at `file:1:0` as it does (the
    /// position of the import is lost by then in nats-server too).
    fn check_accounts(&mut self, accounts: &[Account], pos: &Pos) {
        let at = Pos {
            file: pos.file.clone(),
            line: 1,
            col: 0,
        };
        let mut seen: Vec<&str> = Vec::new();
        for a in accounts {
            for u in &a.users {
                let name = u
                    .get("user")
                    .or_else(|| u.get("nkey"))
                    .and_then(J::as_str)
                    .unwrap_or_default();
                if seen.contains(&name) {
                    self.error(pos, format!("Duplicate user \"{name}\" detected"));
                }
                seen.push(name);
            }
        }
        for a in accounts {
            for i in &a.imports {
                let kind = if i.service { "service" } else { "stream" };
                let Some(exporter) = accounts.iter().find(|x| x.name == i.account) else {
                    self.error(
                        &at,
                        format!("\"{}\" account not defined for {kind} import", i.account),
                    );
                    continue;
                };
                let allowed = exporter.exports.iter().any(|x| {
                    x.service == i.service
                        && subject::is_subset_match(i.subject.as_bytes(), x.subject.as_bytes())
                        && (x.accounts.is_empty() || x.accounts.contains(&a.name))
                });
                if !allowed {
                    self.error(
                        &at,
                        format!(
                            "Error adding {kind} import \"{}\": {kind} import not authorized",
                            i.subject
                        ),
                    );
                }
            }
        }
    }
}
