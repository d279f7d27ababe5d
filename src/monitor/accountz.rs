//! /accountz: tern has the global account `$G` only (no multi-account support yet), and
//! names `$SYS` as the system account the way nats-server's /varz does.

use std::time::SystemTime;

use axum::extract::State;
use axum::response::Response;
use serde_json::json;

use super::format::{rfc3339, Query};
use super::{respond, Params, QueryMap, St};

pub async fn handle(State(m): St, Params(q): Params<QueryMap>) -> Response {
    let s = &m.shared;
    let q = Query(&q);
    let now = rfc3339(SystemTime::now());
    let r = match q.get("acc") {
        None => Ok(json!({
            "server_id": s.server_id,
            "now": now,
            "system_account": "$SYS",
            "accounts": ["$G"],
        })),
        Some("$G") => {
            let subs = s.global().sublist.count();
            let st = s.global().sublist.stats();
            Ok(json!({
                "server_id": s.server_id,
                "now": now,
                "system_account": "$SYS",
                "account_detail": {
                    "account_name": "$G",
                    "update_time": rfc3339(s.start),
                    "expired": false,
                    "complete": true,
                    "jetstream_enabled": false,
                    "leafnode_connections": 0,
                    "client_connections": s.clients.len(),
                    "subscriptions": subs,
                    "name_tag": "$G",
                    "sublist_stats": st,
                },
            }))
        }
        Some(other) => Err(format!("Account {other} does not exist")),
    };
    respond(r)
}
