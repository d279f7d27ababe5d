//! /connz: open and closed client connections, sorted and paged as nats-server does.
//!
//! A request first takes a small sortable row per connection (counters, times; no
//! strings), orders the rows, and renders JSON (`connz_render`) only for the requested
//! page, straight to bytes, so a large server costs O(connections) cheap reads, not
//! O(connections) documents. Each open
//! connection's counters are read with one short lock of its outbound buffer; the
//! message path is not asked to do anything for this endpoint.

use std::cmp::Ordering as CmpOrdering;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::format::{elapsed, page_bounds, window, Query};
use super::{bad_request, json_bytes, Params, QueryMap, St};
use crate::client::Client;
use crate::server::{ClosedConn, ServerShared};
use axum::extract::State;
use axum::response::Response;

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

pub(super) enum Src {
    Open(Arc<Client>),
    Closed(Arc<ClosedConn>),
}

/// What sorting needs, read once per connection.
pub struct Row {
    pub(super) cid: u64,
    pub(super) start: SystemTime,
    pub(super) last: SystemTime,
    /// `now` for open connections: idle and uptime run to the stop time otherwise.
    pub(super) end: SystemTime,
    pub(super) stop: Option<SystemTime>,
    pub(super) rtt: Option<Duration>,
    pub(super) subs: usize,
    pub(super) pending: usize,
    pub(super) in_msgs: u64,
    pub(super) out_msgs: u64,
    pub(super) in_bytes: u64,
    pub(super) out_bytes: u64,
    pub(super) src: Src,
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

    pub(super) fn reason(&self) -> &'static str {
        match &self.src {
            Src::Open(_) => "",
            Src::Closed(c) => c.reason.as_str(),
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
    // Two steps, so monitoring never slows the message path. Choosing the page and
    // copying its connections' strings and subscription lists takes short locks the
    // connections' own tasks also take: that runs at normal priority on the blocking
    // pool (never on an async worker). Writing the JSON, most of the CPU for a large
    // page, takes no lock and runs on the idle-priority monitoring thread.
    let shared = m.shared.clone();
    let page =
        tokio::task::spawn_blocking(move || connz(&shared, &Query(&q)).map(Page::snapshot)).await;
    match page {
        Ok(Ok(page)) => m
            .worker
            .run(move || json_bytes(page.to_json()))
            .await
            .unwrap_or_else(|| super::internal_error("connz")),
        Ok(Err(msg)) => bad_request(msg),
        Err(_) => super::internal_error("connz"),
    }
}

/// One /connz answer: the rows of the requested page, already ordered, and what the
/// document around them says. Rendered by `connz_render` straight to bytes.
pub struct Page {
    pub(super) server_id: String,
    pub(super) now: SystemTime,
    pub(super) total: usize,
    pub(super) offset: usize,
    pub(super) limit: usize,
    pub(super) rows: Vec<Row>,
    pub(super) auth: bool,
    pub(super) subs: bool,
    pub(super) detail: bool,
    /// `acc=` named no account: nats-server's all-but-empty document.
    pub(super) unknown_account: bool,
}

impl Page {
    /// Sum of one counter over the page's rows (the exporter's `gnatsd_connz_*` sums).
    pub fn sum(&self, f: impl Fn(&Row) -> u64) -> u64 {
        self.rows.iter().map(f).sum()
    }
}

/// The /connz page for these query parameters (also used for `gnatsd_connz_*`).
pub fn connz(s: &ServerShared, q: &Query<'_>) -> Result<Page, String> {
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
    let mut page = Page {
        server_id: s.server_id.clone(),
        now,
        total: 0,
        offset,
        limit,
        rows: Vec::new(),
        auth,
        subs,
        detail,
        unknown_account: false,
    };
    let acc = q.get("acc");
    if acc.is_some_and(|a| s.accounts.get(a).is_none()) {
        page.unknown_account = true;
        return Ok(page);
    }
    let want_open = state != ConnState::Closed;
    let want_closed = state != ConnState::Open;
    let closed: Vec<Arc<ClosedConn>> = if want_closed {
        s.closed.lock().iter().cloned().collect()
    } else {
        Vec::new()
    };
    let filter = Filter {
        cid,
        acc,
        user: q.get("user"),
        // tern has no MQTT clients: any mqtt_client= matches none, as on a
        // nats-server without MQTT connections.
        mqtt: q.get("mqtt_client").is_some(),
    };
    // total counts before the cid and user filters, as nats-server's does; with acc=
    // it is the account's count.
    let mut total = if want_open { s.clients.len() } else { 0 } + closed.len();
    let (rows, in_acc) = if sort == SortBy::Cid {
        // Ordering by cid needs nothing but the cid: the page is chosen from bare
        // (cid, where) pairs and counters are read only for connections on it, so the
        // others are neither cloned nor locked (unless acc= or user= must look).
        let (mut picks, in_acc) = gather(
            s,
            &filter,
            want_open,
            &closed,
            |cid, _| (cid, OPEN),
            |i, c| (c.cid, i as u32),
        );
        take_page(&mut picks, offset, limit, |a, b| a.0.cmp(&b.0));
        let rows = picks
            .into_iter()
            .filter_map(|(cid, at)| match at {
                // Gone since it was counted: left out rather than shown half-read.
                OPEN => s.clients.get(&cid).map(|c| Row::open(c.value(), now)),
                i => Some(Row::closed(&closed[i as usize])),
            })
            .collect();
        (rows, in_acc)
    } else {
        let (mut rows, in_acc) = gather(
            s,
            &filter,
            want_open,
            &closed,
            |_, c| Row::open(c, now),
            |_, c| Row::closed(c),
        );
        take_page(&mut rows, offset, limit, |a, b| compare(a, b, sort));
        (rows, in_acc)
    };
    if acc.is_some() {
        total = in_acc;
    }
    page.total = total;
    page.rows = rows;
    Ok(page)
}

/// Walks the open (`want_open`) and closed connections through the filters, making an
/// item for each one shown. Returns the items and how many count toward an `acc=`
/// total. Open connections are found by their map key, so a filter that need not look
/// (no acc=, user=) and an `open` that uses only the cid touch no connection.
fn gather<T>(
    s: &ServerShared,
    filter: &Filter<'_>,
    want_open: bool,
    closed: &[Arc<ClosedConn>],
    mut open: impl FnMut(u64, &Arc<Client>) -> T,
    mut shut: impl FnMut(usize, &Arc<ClosedConn>) -> T,
) -> (Vec<T>, usize) {
    let mut out = Vec::with_capacity(if want_open { s.clients.len() } else { 0 } + closed.len());
    let mut in_acc = 0;
    if want_open {
        let mut consider = |cid: u64, c: &Arc<Client>| {
            let (counted, pass) = filter.open(c);
            in_acc += usize::from(counted);
            if pass {
                out.push(open(cid, c));
            }
        };
        if filter.cid > 0 {
            if let Some(c) = s.clients.get(&filter.cid) {
                consider(filter.cid, c.value());
            }
        } else {
            s.clients.iter().for_each(|e| consider(*e.key(), e.value()));
        }
    }
    for (i, c) in closed.iter().enumerate() {
        let (counted, pass) = filter.closed(c);
        in_acc += usize::from(counted);
        if pass {
            out.push(shut(i, c));
        }
    }
    (out, in_acc)
}

/// Marks an open connection in the cid-only page selection (else: index into closed).
const OPEN: u32 = u32::MAX;

/// Leaves `v` holding the `[offset, offset+limit)` window of its items in `cmp` order.
/// Only the first offset+limit items need ordering: they are partitioned out in linear
/// time and only they are sorted (every order here ends on the cid, so it is total and
/// the page equals the one after a full sort). With 10k connections and the default
/// page this avoids sorting, or even moving, most of them.
fn take_page<T>(v: &mut Vec<T>, offset: usize, limit: usize, cmp: impl Fn(&T, &T) -> CmpOrdering) {
    let keep = offset.saturating_add(limit);
    if keep > 0 && keep < v.len() {
        v.select_nth_unstable_by(keep - 1, &cmp);
        v.truncate(keep);
    }
    v.sort_unstable_by(&cmp);
    let w = window(v.len(), offset, limit);
    v.truncate(w.end);
    v.drain(..w.start);
}

/// The cid=, acc= and user= filters.
struct Filter<'q> {
    cid: u64,
    acc: Option<&'q str>,
    user: Option<&'q str>,
    mqtt: bool,
}

impl Filter<'_> {
    /// (counts toward an acc= total, is shown). `c` was found by the cid= filter's
    /// key already, so only the other filters look at it.
    fn open(&self, c: &Client) -> (bool, bool) {
        if self.acc.is_none() && self.user.is_none() {
            return (true, !self.mqtt);
        }
        let m = c.meta.lock();
        let account = m.account.as_ref().map_or("$G", |a| a.name.as_str());
        let in_acc = self.acc.is_none_or(|a| a == account);
        let shown = in_acc && !self.mqtt && self.user.is_none_or(|u| u == m.user);
        (in_acc, shown)
    }

    fn closed(&self, c: &ClosedConn) -> (bool, bool) {
        if self.cid > 0 && c.cid != self.cid {
            return (false, false);
        }
        let in_acc = self.acc.is_none_or(|a| a == c.account);
        let shown = in_acc && !self.mqtt && self.user.is_none_or(|u| u == c.user);
        (in_acc, shown)
    }
}
