//! /accountz: the accounts this server knows (configured ones and `$G`), and with
//! `?acc=NAME` one account's connections, subscriptions, imports and exports in
//! nats-server's shape. `$SYS` is named as the system account the way nats-server's
//! /varz does, although tern runs no system account services.

use std::time::SystemTime;

use axum::extract::State;
use axum::response::Response;
use serde_json::{json, Value};

use super::format::{rfc3339, Query};
use super::{respond, Params, QueryMap, St};
use crate::account::Account;
use crate::server::ServerShared;

pub async fn handle(State(m): St, Params(q): Params<QueryMap>) -> Response {
    let s = &m.shared;
    let q = Query(&q);
    let now = rfc3339(SystemTime::now());
    let r = match q.get("acc") {
        None => Ok(json!({
            "server_id": s.server_id,
            "now": now,
            "system_account": "$SYS",
            "accounts": s.accounts.all().iter().map(|a| a.name.clone()).collect::<Vec<_>>(),
        })),
        Some(name) => match s.accounts.get(name) {
            Some(a) => Ok(json!({
                "server_id": s.server_id,
                "now": now,
                "system_account": "$SYS",
                "account_detail": detail(s, &a),
            })),
            None => Err(format!("Account {name} does not exist")),
        },
    };
    respond(r)
}

fn detail(s: &ServerShared, a: &Account) -> Value {
    let st = a.sublist.stats();
    let mut d = json!({
        "account_name": a.name,
        "update_time": rfc3339(s.start),
        "expired": false,
        "complete": true,
        "jetstream_enabled": false,
        "leafnode_connections": 0,
        "client_connections": a.connections(),
        "subscriptions": st.num_subscriptions,
    });
    let mut imports: Vec<Value> = Vec::new();
    for i in a.stream_imports() {
        imports.push(json!({
            "subject": String::from_utf8_lossy(&i.map.from_subject),
            "account": i.from.name,
            "local_subject": String::from_utf8_lossy(&i.map.local_space()),
            "type": "stream",
            "invalid": false,
            "share": false,
            "tracking": false,
        }));
    }
    for i in a.service_imports() {
        imports.push(json!({
            "subject": String::from_utf8_lossy(&i.subject),
            "account": i.from.name,
            "to": String::from_utf8_lossy(&i.to),
            "local_subject": String::from_utf8_lossy(&i.to),
            "type": "service",
            "invalid": false,
            "share": false,
            "tracking": false,
        }));
    }
    if !imports.is_empty() {
        d["imports"] = Value::Array(imports);
    }
    let exports: Vec<Value> = a
        .exports
        .read()
        .iter()
        .map(|x| {
            let mut e = json!({
                "subject": x.subject,
                "type": if x.service { "service" } else { "stream" },
            });
            if x.service {
                // tern answers every service request once, as nats-server's default.
                e["response_type"] = json!("Singleton");
            }
            if !x.accounts.is_empty() {
                e["approved_accounts"] = json!(x.accounts);
            }
            e
        })
        .collect();
    if !exports.is_empty() {
        d["exports"] = Value::Array(exports);
    }
    d["name_tag"] = json!(a.name);
    d["sublist_stats"] = serde_json::to_value(&st).unwrap_or_default();
    d
}
