//! /connz: open and closed client connections, sorted and paged as nats-server does.
//!
//! A request first takes a small sortable row per connection (counters, times; no
//! strings), sorts the rows, and renders JSON only for the requested page, so a large
//! server costs O(connections) cheap reads, not O(connections) documents. Each open
//! connection's counters are read with one short lock of its outbound buffer; the
//! message path is not asked to do anything for this endpoint.

use std::cmp::Ordering as CmpOrdering;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::extract::State;
use axum::response::Response;
use serde_json::{json, Map, Value};

use super::format::{elapsed, page_bounds, rfc3339, rtt, uptime, window, Query};
use super::{respond, Params, QueryMap, St};
use crate::client::Client;
use crate::server::{ClosedConn, ServerShared};

/// nats-server's DefaultConnListSize.
const DEFAULT_LIMIT: usize = 1024;

/// `sort=` options (nats-server's SortOpt). Counters, `last`, `idle`, `stop` and `rtt`
/// sort largest first; `cid`, `start`, `uptime` and `reason` ascending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SortBy {
    Cid,
    Subs,
    Pending,
    MsgsTo,
    MsgsFrom,
    BytesTo,
    BytesFrom,
    Last,
    Idle,
    Uptime,
    Stop,
    Reason,
    Rtt,
}

impl SortBy {
    fn parse(s: Option<&str>) -> Result<SortBy, String> {
        Ok(match s.unwrap_or("cid") {
            "cid" | "start" => SortBy::Cid,
            "subs" => SortBy::Subs,
            "pending" => SortBy::Pending,
            "msgs_to" => SortBy::MsgsTo,
            "msgs_from" => SortBy::MsgsFrom,
            "bytes_to" => SortBy::BytesTo,
            "bytes_from" => SortBy::BytesFrom,
            "last" => SortBy::Last,
            "idle" => SortBy::Idle,
            "uptime" => SortBy::Uptime,
            "stop" => SortBy::Stop,
            "reason" => SortBy::Reason,
            "rtt" => SortBy::Rtt,
            other => return Err(format!("invalid sorting option: {other}")),
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ConnState {
    Open,
    Closed,
    All,
}

fn parse_state(v: Option<&str>) -> Result<ConnState, String> {
    let Some(v) = v else {
        return Ok(ConnState::Open);
    };
    match v.to_ascii_lowercase().as_str() {
        "open" => Ok(ConnState::Open),
        "closed" => Ok(ConnState::Closed),
        "any" | "all" => Ok(ConnState::All),
        _ => Err(format!("Error decoding state for {v}")),
    }
}

enum Src {
    Open(Arc<Client>),
    Closed(Arc<ClosedConn>),
}

/// What sorting needs, read once per connection.
struct Row {
    cid: u64,
    start: SystemTime,
    last: SystemTime,
    /// `now` for open connections: idle and uptime run to the stop time otherwise.
    end: SystemTime,
    stop: Option<SystemTime>,
    rtt: Option<Duration>,
    subs: usize,
    pending: usize,
    in_msgs: u64,
    out_msgs: u64,
    in_bytes: u64,
    out_bytes: u64,
    src: Src,
}

impl Row {
    fn open(c: &Arc<Client>, now: SystemTime) -> Row {
        let (out_msgs, out_bytes) = c.out.counters();
        Row {
            cid: c.cid,
            start: c.start,
            last: c.last_activity(),
            end: now,
            stop: None,
            rtt: c.meta.lock().rtt,
            subs: c.subs.lock().len(),
            pending: c.out.pending(),
            in_msgs: c.in_msgs.load(Ordering::Relaxed),
            out_msgs,
            in_bytes: c.in_bytes.load(Ordering::Relaxed),
            out_bytes,
            src: Src::Open(c.clone()),
        }
    }

    fn closed(c: &Arc<ClosedConn>) -> Row {
        Row {
            cid: c.cid,
            start: c.start,
            last: c.last_activity,
            end: c.stop,
            stop: Some(c.stop),
            rtt: c.rtt,
            subs: c.subscriptions,
            pending: 0,
            in_msgs: c.in_msgs,
            out_msgs: c.out_msgs,
            in_bytes: c.in_bytes,
            out_bytes: c.out_bytes,
            src: Src::Closed(c.clone()),
        }
    }

    fn reason(&self) -> &'static str {
        match &self.src {
            Src::Open(_) => "",
            Src::Closed(c) => c.reason.as_str(),
        }
    }

    fn account(&self) -> String {
        match &self.src {
            Src::Open(c) => c
                .meta
                .lock()
                .account
                .as_ref()
                .map_or_else(|| "$G".to_string(), |a| a.name.clone()),
            Src::Closed(c) => c.account.clone(),
        }
    }

    fn user(&self) -> String {
        match &self.src {
            Src::Open(c) => c.meta.lock().user.clone(),
            Src::Closed(c) => c.user.clone(),
        }
    }
}

fn compare(a: &Row, b: &Row, by: SortBy) -> CmpOrdering {
    let idle = |r: &Row| elapsed(r.end, r.last);
    let up = |r: &Row| elapsed(r.end, r.start);
    let ord = match by {
        SortBy::Cid => CmpOrdering::Equal,
        SortBy::Subs => b.subs.cmp(&a.subs),
        SortBy::Pending => b.pending.cmp(&a.pending),
        SortBy::MsgsTo => b.out_msgs.cmp(&a.out_msgs),
        SortBy::MsgsFrom => b.in_msgs.cmp(&a.in_msgs),
        SortBy::BytesTo => b.out_bytes.cmp(&a.out_bytes),
        SortBy::BytesFrom => b.in_bytes.cmp(&a.in_bytes),
        SortBy::Last => b.last.cmp(&a.last),
        SortBy::Idle => idle(b).cmp(&idle(a)),
        SortBy::Uptime => up(a).cmp(&up(b)),
        SortBy::Stop => b.stop.cmp(&a.stop),
        SortBy::Reason => a.reason().cmp(b.reason()),
        SortBy::Rtt => b.rtt.cmp(&a.rtt),
    };
    // Ties keep cid order so pages do not overlap between requests.
    ord.then(a.cid.cmp(&b.cid))
}

pub async fn handle(State(m): St, Params(q): Params<QueryMap>) -> Response {
    // A large page (10k connections, subs=detail) takes milliseconds of CPU to build
    // and serialise: on the blocking pool it never holds an async worker that client
    // and route tasks are waiting for.
    tokio::task::spawn_blocking(move || respond(connz(&m.shared, &Query(&q))))
        .await
        .unwrap_or_else(|e| respond(Err(format!("connz: {e}"))))
}

/// The /connz document for these query parameters (also used for `gnatsd_connz_*`).
pub fn connz(s: &ServerShared, q: &Query<'_>) -> Result<Value, String> {
    // Decoded in nats-server's order so the first bad parameter is the one reported.
    let sort = q.get("sort");
    let auth = q.bool("auth")?;
    let (subs, detail) = q.subs()?;
    let (offset, mut limit) = page_bounds(q.int("offset")?, q.int("limit")?, DEFAULT_LIMIT);
    let cid = q.uint64("cid")?;
    let state = parse_state(q.get("state"))?;
    let sort = SortBy::parse(sort)?;
    if sort == SortBy::Stop && state != ConnState::Closed {
        return Err("sort by stop only valid on closed connections".into());
    }
    if sort == SortBy::Reason && state != ConnState::Closed {
        return Err("sort by reason only valid on closed connections".into());
    }
    if cid > 0 {
        limit = 1;
    }
    let now = SystemTime::now();
    let acc = q.get("acc");
    if acc.is_some_and(|a| s.accounts.get(a).is_none()) {
        // nats-server answers an unknown account with an all-but-empty document.
        return Ok(json!({
            "server_id": "", "now": rfc3339(now), "num_connections": 0, "total": 0,
            "offset": offset, "limit": limit, "connections": null,
        }));
    }
    let want_open = state != ConnState::Closed;
    let want_closed = state != ConnState::Open;
    let closed: Vec<Arc<ClosedConn>> = if want_closed {
        s.closed.lock().iter().cloned().collect()
    } else {
        Vec::new()
    };
    // total counts before the cid and user filters, as nats-server's does.
    let mut total = if want_open { s.clients.len() } else { 0 } + closed.len();
    let mut rows: Vec<Row> = Vec::with_capacity(total);
    if want_open {
        if cid > 0 {
            if let Some(c) = s.clients.get(&cid) {
                rows.push(Row::open(c.value(), now));
            }
        } else {
            rows.extend(s.clients.iter().map(|c| Row::open(c.value(), now)));
        }
    }
    rows.extend(
        closed
            .iter()
            .filter(|c| cid == 0 || c.cid == cid)
            .map(Row::closed),
    );
    if let Some(acc) = acc {
        // nats-server serves an account's connz from that account's clients only.
        rows.retain(|r| r.account() == acc);
        total = rows.len();
    }
    if let Some(user) = q.get("user") {
        rows.retain(|r| r.user() == user);
    }
    // Only the requested page needs ordering: partition the first offset+limit rows
    // out in linear time, then sort just those (compare ends on cid, so the order is
    // total and the page is the same as after a full sort). With 10k connections and
    // the default page this avoids moving every row around in a full sort.
    let keep = offset.saturating_add(limit);
    if keep > 0 && keep < rows.len() {
        rows.select_nth_unstable_by(keep - 1, |a, b| compare(a, b, sort));
        rows.truncate(keep);
    }
    rows.sort_by(|a, b| compare(a, b, sort));
    let page: Vec<Value> = rows[window(rows.len(), offset, limit)]
        .iter()
        .map(|r| render(r, now, auth, subs, detail))
        .collect();
    Ok(json!({
        "server_id": s.server_id,
        "now": rfc3339(now),
        "num_connections": page.len(),
        "total": total,
        "offset": offset,
        "limit": limit,
        "connections": page,
    }))
}

/// One ConnInfo, keys in nats-server's order, empty optional fields left out.
fn render(r: &Row, now: SystemTime, auth: bool, subs: bool, detail: bool) -> Value {
    let mut o = Map::new();
    let mut put = |k: &str, v: Value| {
        o.insert(k.to_string(), v);
    };
    let (addr, name, lang, version, user, tls) = match &r.src {
        Src::Open(c) => {
            let m = c.meta.lock();
            (
                c.addr,
                m.name.clone(),
                m.lang.clone(),
                m.version.clone(),
                m.user.clone(),
                m.tls.clone(),
            )
        }
        Src::Closed(c) => (
            c.addr,
            c.name.clone(),
            c.lang.clone(),
            c.version.clone(),
            c.user.clone(),
            c.tls.clone(),
        ),
    };
    put("cid", json!(r.cid));
    put("kind", json!("Client"));
    let websocket = match &r.src {
        Src::Open(c) => c.websocket,
        Src::Closed(c) => c.websocket,
    };
    put("type", json!(if websocket { "websocket" } else { "nats" }));
    put("ip", json!(addr.ip().to_string()));
    put("port", json!(addr.port()));
    put("start", json!(rfc3339(r.start)));
    put("last_activity", json!(rfc3339(r.last)));
    if let Some(stop) = r.stop {
        put("stop", json!(rfc3339(stop)));
        put("reason", json!(r.reason()));
    }
    put("rtt", json!(rtt(r.rtt)));
    let end = if r.stop.is_some() { r.end } else { now };
    put("uptime", json!(uptime(elapsed(end, r.start))));
    put("idle", json!(uptime(elapsed(end, r.last))));
    put("pending_bytes", json!(r.pending));
    put("in_msgs", json!(r.in_msgs));
    put("out_msgs", json!(r.out_msgs));
    put("in_bytes", json!(r.in_bytes));
    put("out_bytes", json!(r.out_bytes));
    put("subscriptions", json!(r.subs));
    for (k, v) in [("name", name), ("lang", lang), ("version", version)] {
        if !v.is_empty() {
            put(k, json!(v));
        }
    }
    if let Some(t) = tls {
        put("tls_version", json!(t.version));
        put("tls_cipher_suite", json!(t.cipher));
        // nats-server shows the peer's certificates only with auth=1.
        if auth && !t.peer_certs.is_empty() {
            put("tls_peer_certs", json!(t.peer_certs));
        }
        if t.first {
            put("tls_first", json!(true));
        }
    }
    if auth && !user.is_empty() {
        put("authorized_user", json!(user));
    }
    let account = r.account();
    if auth && account != "$G" {
        put("account", json!(account));
    }
    if subs || detail {
        let list = sub_details(r);
        if !list.is_empty() {
            if detail {
                put("subscriptions_list_detail", Value::Array(list));
            } else {
                let names = list.into_iter().map(|mut d| d["subject"].take()).collect();
                put("subscriptions_list", Value::Array(names));
            }
        }
    }
    // `account` only for accounts other than $G; name_tag falls back to the account name.
    if auth && matches!(r.src, Src::Open(_)) {
        put("name_tag", json!(account));
    }
    Value::Object(o)
}

/// `subscriptions_list_detail` items (nats-server's client SubDetail: no account).
fn sub_details(r: &Row) -> Vec<Value> {
    let item = |subject: &str, queue: Option<&str>, sid: &str, msgs: u64, max: u64| {
        let mut d = json!({"subject": subject});
        if let Some(q) = queue {
            d["qgroup"] = json!(q);
        }
        d["sid"] = json!(sid);
        d["msgs"] = json!(msgs);
        if max > 0 {
            d["max"] = json!(max);
        }
        d["cid"] = json!(r.cid);
        d
    };
    let mut out: Vec<(Vec<u8>, Value)> = match &r.src {
        Src::Open(c) => c
            .subs
            .lock()
            .values()
            .map(|s| {
                let subject = String::from_utf8_lossy(&s.subject);
                let queue = s.queue.as_deref().map(String::from_utf8_lossy);
                let sid = String::from_utf8_lossy(&s.sid);
                let v = item(
                    &subject,
                    queue.as_deref(),
                    &sid,
                    s.delivered.load(Ordering::Relaxed),
                    s.max.load(Ordering::Relaxed),
                );
                (s.sid.to_vec(), v)
            })
            .collect(),
        Src::Closed(c) => c
            .subs
            .iter()
            .map(|s| {
                let v = item(&s.subject, s.queue.as_deref(), &s.sid, s.msgs, s.max);
                (s.sid.clone().into_bytes(), v)
            })
            .collect(),
    };
    // A stable order (by sid) instead of the hash map's.
    out.sort_by(|a, b| a.0.len().cmp(&b.0.len()).then_with(|| a.0.cmp(&b.0)));
    out.into_iter().map(|(_, v)| v).collect()
}
