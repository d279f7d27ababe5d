//! /subsz (alias /subscriptionsz): the sublist's counters and cache statistics, and with
//! `subs=1` a page of subscriptions, optionally only those a `test` subject would reach.
//!
//! The listing walks the sublist under its read lock once ([`Sublist::all`]); only the
//! requested page is turned into JSON.
//!
//! [`Sublist::all`]: crate::sublist::Sublist::all

use std::sync::atomic::Ordering;
use std::time::SystemTime;

use axum::extract::State;
use axum::response::Response;
use serde_json::{json, Value};

use super::format::{page_bounds, rfc3339, window, Query};
use super::{respond, Params, QueryMap, St};
use crate::server::ServerShared;
use crate::sublist::SublistStats;

/// nats-server's DefaultSubListSize.
const DEFAULT_LIMIT: usize = 1024;

pub async fn handle(State(m): St, Params(q): Params<QueryMap>) -> Response {
    respond(subsz(&m.shared, &Query(&q)))
}

/// Stats of the account `acc` names (an unknown one is empty), or summed over all.
pub fn stats_for(s: &ServerShared, acc: Option<&str>) -> SublistStats {
    match acc {
        None => s.accounts.total_stats(),
        Some(name) => s
            .accounts
            .get(name)
            .map(|a| a.sublist.stats())
            .unwrap_or_default(),
    }
}

fn subsz(s: &ServerShared, q: &Query<'_>) -> Result<Value, String> {
    let subs = q.bool("subs")?;
    let (offset, limit) = page_bounds(q.int("offset")?, q.int("limit")?, DEFAULT_LIMIT);
    let test = q.get("test");
    if let Some(t) = test {
        if !crate::subject::is_valid_literal_subject(t.as_bytes()) {
            return Err(format!(
                "invalid test subject, must be valid publish subject: {t}"
            ));
        }
    }
    let acc = q.get("acc");
    let st = stats_for(s, acc);
    let mut v = json!({
        "server_id": s.server_id,
        "now": rfc3339(SystemTime::now()),
    });
    if let (Value::Object(o), Ok(Value::Object(stats))) = (&mut v, serde_json::to_value(&st)) {
        o.extend(stats);
    }
    let mut total = 0;
    let mut list = Vec::new();
    if subs {
        let accounts = match acc {
            None => s.accounts.all(),
            Some(name) => s.accounts.get(name).into_iter().collect(),
        };
        let mut all: Vec<_> = accounts
            .iter()
            .flat_map(|a| a.sublist.all())
            .filter(|(subj, _, _)| test.is_none_or(|t| crate::subject::matches(subj, t.as_bytes())))
            .collect();
        // The trie has no stable order; sort so that paging with offset is consistent.
        all.sort_by(|a, b| (a.2 .0.client.cid, &a.2 .0.sid).cmp(&(b.2 .0.client.cid, &b.2 .0.sid)));
        total = all.len();
        list = all[window(total, offset, limit)]
            .iter()
            .map(|(subj, queue, sub)| {
                let sub = &sub.0;
                let mut o = json!({
                    "account": sub.account.name,
                    "account_tag": sub.account.name,
                    "subject": String::from_utf8_lossy(subj),
                });
                if let Some(qg) = queue {
                    o["qgroup"] = json!(String::from_utf8_lossy(qg));
                }
                o["sid"] = json!(String::from_utf8_lossy(&sub.sid));
                o["msgs"] = json!(sub.delivered.load(Ordering::Relaxed));
                let max = sub.max.load(Ordering::Relaxed);
                if max > 0 {
                    o["max"] = json!(max);
                }
                o["cid"] = json!(sub.client.cid);
                o
            })
            .collect();
    }
    v["total"] = json!(total);
    v["offset"] = json!(offset);
    v["limit"] = json!(limit);
    if !list.is_empty() {
        v["subscriptions_list"] = json!(list);
    }
    Ok(v)
}
