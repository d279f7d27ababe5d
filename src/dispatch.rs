//! Delivering one message: match the subject, write MSG/HMSG into each receiver's
//! outbound buffer, pick one member per queue group, and remember whom to flush.
//!
//! Must not: do I/O or hold the sublist lock while writing (it works on an
//! `Arc<SublistResult>` taken from the publisher's match cache).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use smallvec::SmallVec;

use crate::account::{service, Account};
use crate::client::{Client, ConnKind, SubRef, Subscription};
use crate::protocol::encode;
use crate::server::ServerShared;
use crate::sublist::SublistResult;

/// How many receivers per read batch are flushed inline by the publishing task.
const INLINE_FLUSHES: usize = 4;

/// Connections written to during one read batch; each is woken once at the end
/// (nats-server's "pcd" / flushClients).
#[derive(Default)]
pub struct Pcd {
    clients: Vec<Arc<Client>>,
}

impl Pcd {
    #[inline]
    pub fn add(&mut self, c: &Arc<Client>) {
        // Nearly always one or a few receivers per batch: a linear scan beats hashing.
        if self.clients.iter().rev().any(|x| Arc::ptr_eq(x, c)) {
            return;
        }
        self.clients.push(c.clone());
    }

    /// Wakes every touched writer. Returns the fullest receiver if it is past 75 % of
    /// its max_pending, so the publisher can stall briefly (nats-server's fast-producer
    /// stall) instead of pushing a merely busy consumer over the limit.
    pub fn flush(&mut self) -> Option<Arc<Client>> {
        if self.clients.is_empty() {
            return None;
        }
        // A delivery is activity for the receiver too (/connz last_activity, as
        // nats-server's): one clock read per batch, one store per receiver.
        let now = crate::client::unix_nanos(std::time::SystemTime::now());
        let mut fullest: Option<(usize, Arc<Client>)> = None;
        for (i, c) in self.clients.drain(..).enumerate() {
            c.last_activity
                .store(now, std::sync::atomic::Ordering::Relaxed);
            // The first few receivers are written from here (no wake-up: low latency);
            // a larger fan-out is handed to the writer tasks so it spreads over cores.
            if i < INLINE_FLUSHES {
                c.out.kick();
            } else {
                c.out.signal();
            }
            let p = c.out.pending();
            if p > c.out.max_pending() / 4 * 3 && fullest.as_ref().is_none_or(|(fp, _)| p > *fp) {
                fullest = Some((p, c));
            }
        }
        fullest.map(|(_, c)| c)
    }
}

/// A message being delivered. `payload` includes the header block when `hdr_len` is set.
#[derive(Clone, Copy)]
pub struct Msg<'a> {
    pub subject: &'a [u8],
    pub reply: Option<&'a [u8]>,
    pub hdr_len: Option<usize>,
    pub payload: &'a [u8],
}

/// Where a message came from: a local client (echo suppression applies, routes get
/// one RMSG each) or a route (local delivery only, queue groups as listed).
pub enum Origin<'a> {
    Client {
        cid: u64,
        echo: bool,
    },
    /// `queues` is the RMSG queue list: the groups this node must serve.
    Route {
        queues: &'a [u8],
    },
}

/// Small per-connection cache of match results, valid while the sublist generation is
/// unchanged: a publish on a hot subject touches no shared lock at all.
pub struct MatchCache {
    generation: u64,
    map: HashMap<Box<[u8]>, Arc<SublistResult<SubRef>>>,
}

const MATCH_CACHE_MAX: usize = 512;

impl Default for MatchCache {
    fn default() -> Self {
        MatchCache {
            generation: u64::MAX,
            map: HashMap::new(),
        }
    }
}

impl MatchCache {
    /// Forgets everything (the connection was bound to another account).
    pub fn reset(&mut self) {
        self.map.clear();
        self.generation = u64::MAX;
    }

    #[inline]
    pub fn lookup(&mut self, account: &Account, subject: &[u8]) -> Arc<SublistResult<SubRef>> {
        let g = account.sublist.generation();
        if g != self.generation {
            self.map.clear();
            self.generation = g;
        }
        if let Some(r) = self.map.get(subject) {
            return r.clone();
        }
        let r = if has_empty_token(subject) {
            // nats-server matches nothing for a subject with an empty token (`foo..bar`).
            Arc::new(SublistResult {
                psubs: Vec::new(),
                qsubs: Vec::new(),
            })
        } else {
            account.sublist.match_subject(subject)
        };
        if self.map.len() >= MATCH_CACHE_MAX {
            self.map.clear();
        }
        self.map.insert(subject.into(), r.clone());
        r
    }
}

fn has_empty_token(s: &[u8]) -> bool {
    s.is_empty()
        || s[0] == b'.'
        || s[s.len() - 1] == b'.'
        || memchr::memmem::find(s, b"..").is_some()
}

/// Cheap per-connection random numbers for queue member choice.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed | 1)
    }

    #[inline]
    pub fn below(&mut self, n: usize) -> usize {
        // xorshift64*: plenty for spreading queue deliveries.
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32) as usize % n
    }
}

/// One RMSG to send: the route and the queue groups it must serve.
type RouteTarget<'r> = (&'r Arc<Client>, SmallVec<[&'r [u8]; 4]>);

/// Delivers `msg`, published in `account`, to the subscriptions in `result` (see
/// [`deliver_in`]) and then across accounts through service imports and responses.
#[inline]
pub fn deliver(
    server: &ServerShared,
    account: &Arc<Account>,
    result: &SublistResult<SubRef>,
    msg: &Msg<'_>,
    origin: &Origin<'_>,
    rng: &mut Rng,
    pcd: &mut Pcd,
) -> usize {
    let mut delivered = deliver_in(server, account, result, msg, origin, rng, pcd);
    if service::has_hooks(account) {
        let from_client = matches!(origin, Origin::Client { .. });
        delivered += service::cross_account(server, account, msg, from_client, rng, pcd);
    }
    delivered
}

/// Delivers `msg` to the subscriptions in `result` of `account`: MSG to local clients
/// and, for a client's message, one RMSG per route with interest. Returns how many
/// local subscriptions or routes took it.
pub fn deliver_in(
    server: &ServerShared,
    account: &Account,
    result: &SublistResult<SubRef>,
    msg: &Msg<'_>,
    origin: &Origin<'_>,
    rng: &mut Rng,
    pcd: &mut Pcd,
) -> usize {
    let mut delivered = 0;
    let (from_route, skip_cid, queue_filter) = match origin {
        Origin::Client { cid, echo } => (false, if *echo { None } else { Some(*cid) }, None),
        Origin::Route { queues } => (true, None, Some(*queues)),
    };
    let mut routes: SmallVec<[RouteTarget<'_>; 4]> = SmallVec::new();
    for sub in &result.psubs {
        let s = &sub.0;
        if s.client.kind == ConnKind::Route {
            // One hop: what came from a route never goes to another route.
            if !from_route && !routes.iter().any(|(c, _)| Arc::ptr_eq(c, &s.client)) {
                routes.push((&s.client, SmallVec::new()));
            }
            continue;
        }
        if skip_cid == Some(s.client.cid) {
            continue;
        }
        if deliver_to(server, s, msg, pcd) {
            delivered += 1;
        }
    }
    for group in &result.qsubs {
        let Some(first) = group.first() else { continue };
        let name: &[u8] = first.0.queue.as_deref().unwrap_or_default();
        if let Some(list) = queue_filter {
            // From a route: serve only the groups it listed, with a local member.
            if !list.split(|b| *b == b' ').any(|q| q == name) {
                continue;
            }
            if pick_local(server, group, None, msg, rng, pcd) {
                delivered += 1;
            }
            continue;
        }
        // From a client: one member cluster-wide, remote nodes weighted by their count.
        let total: u64 = group.iter().map(|s| weight(&s.0)).sum();
        if total == 0 {
            continue;
        }
        let mut r = rng.below(total as usize) as u64;
        let mut winner = &group[0].0;
        for s in group {
            let w = weight(&s.0);
            if r < w {
                winner = &s.0;
                break;
            }
            r -= w;
        }
        if winner.client.kind == ConnKind::Route {
            match routes
                .iter_mut()
                .find(|(c, _)| Arc::ptr_eq(c, &winner.client))
            {
                Some((_, qs)) => qs.push(name),
                None => routes.push((&winner.client, smallvec::smallvec![name])),
            }
            continue;
        }
        if pick_local(server, group, skip_cid, msg, rng, pcd) {
            delivered += 1;
        }
    }
    for (route, queues) in &routes {
        if forward_to_route(server, account, route, msg, queues, pcd) {
            delivered += 1;
        }
    }
    delivered
}

#[inline]
fn weight(s: &Subscription) -> u64 {
    u64::from(s.weight.load(Ordering::Relaxed))
}

/// Delivers to one local member of `group`, starting at a random one and moving on
/// past members that cannot take it (echo, limit reached, closing).
fn pick_local(
    server: &ServerShared,
    group: &[SubRef],
    skip_cid: Option<u64>,
    msg: &Msg<'_>,
    rng: &mut Rng,
    pcd: &mut Pcd,
) -> bool {
    let start = rng.below(group.len());
    for i in 0..group.len() {
        let sub = &group[(start + i) % group.len()].0;
        if sub.client.kind == ConnKind::Route || skip_cid == Some(sub.client.cid) {
            continue;
        }
        if deliver_to(server, sub, msg, pcd) {
            return true;
        }
    }
    false
}

/// Writes one RMSG/HMSG into a route's buffer. A route that cannot keep up is closed
/// (and logged) rather than blocking every publisher.
fn forward_to_route(
    server: &ServerShared,
    account: &Account,
    route: &Arc<Client>,
    msg: &Msg<'_>,
    queues: &[&[u8]],
    pcd: &mut Pcd,
) -> bool {
    let (hdr_len, payload) = match msg.hdr_len {
        Some(h) if !route.headers.load(Ordering::Relaxed) => (None, &msg.payload[h..]),
        other => (other, msg.payload),
    };
    let len = 64
        + account.name.len()
        + msg.subject.len()
        + msg.reply.map_or(0, <[u8]>::len)
        + queues.iter().map(|q| q.len() + 1).sum::<usize>()
        + payload.len();
    let res = route.out.push_msg(len, payload.len(), |out| {
        encode::write_rmsg(
            out,
            account.name_bytes(),
            msg.subject,
            msg.reply,
            queues,
            hdr_len,
            payload,
        )
    });
    if res.is_err() {
        tracing::error!(
            "{} - rid:{} - Slow Consumer Detected: route pending bytes exceeded, closing route",
            route.addr,
            route.cid
        );
        route.slow_consumer(server);
        return false;
    }
    pcd.add(route);
    true
}

/// Writes one MSG/HMSG for `sub`. Returns false if the subscription could not take it
/// (auto-unsubscribe limit reached, or its connection is closing).
#[inline]
pub fn deliver_to(server: &ServerShared, sub: &Subscription, msg: &Msg<'_>, pcd: &mut Pcd) -> bool {
    if let Some(map) = &sub.import {
        // A shadow subscription of a stream import: the importer sees its own subject.
        let mapped = map.map(msg.subject);
        let m = Msg {
            subject: &mapped,
            ..*msg
        };
        return deliver_plain(server, sub, &m, pcd);
    }
    deliver_plain(server, sub, msg, pcd)
}

#[inline]
fn deliver_plain(server: &ServerShared, sub: &Subscription, msg: &Msg<'_>, pcd: &mut Pcd) -> bool {
    // Subscribe deny filter and allow_responses tracking; one relaxed load when unused.
    if !sub.client.perm_hook.admit(msg.subject, msg.reply) {
        return false;
    }
    let max = sub.max.load(Ordering::Relaxed);
    let n = sub.delivered.fetch_add(1, Ordering::Relaxed) + 1;
    if max > 0 && n > max {
        return false;
    }
    let client = &sub.client;
    // A subscriber that did not ask for headers gets a plain MSG with the block removed.
    let (hdr_len, payload) = match msg.hdr_len {
        Some(h) if !client.headers.load(Ordering::Relaxed) => (None, &msg.payload[h..]),
        other => (other, msg.payload),
    };
    let len = encode::msg_len(msg.subject, &sub.sid, msg.reply, hdr_len, payload);
    let res = client.out.push_msg(len, payload.len(), |out| {
        encode::write_msg(out, msg.subject, &sub.sid, msg.reply, hdr_len, payload)
    });
    if res.is_err() {
        client.slow_consumer(server);
        return false;
    }
    pcd.add(client);
    if crate::logging::trace_enabled() {
        let max_traced = server.config().max_traced_msg_len;
        let line = (msg.subject, &sub.sid[..], msg.reply);
        crate::client::trace_msg_out(client, line, hdr_len, payload, max_traced);
    }
    if max > 0 && n == max {
        client.remove_sub_by_limit(server, sub);
    }
    true
}

/// The no-responders reply: a 503 status HMSG to the publisher's own plain subscription
/// on the reply subject (nats-server processInboundClientMsg).
pub fn send_no_responders(
    account: &Account,
    publisher: &Arc<Client>,
    subject: &[u8],
    reply: &[u8],
    pcd: &mut Pcd,
) {
    let r = account.sublist.match_subject(reply);
    if let Some(sub) = r.psubs.iter().find(|s| s.0.client.cid == publisher.cid) {
        let mut buf = Vec::with_capacity(64 + subject.len() + reply.len());
        encode::write_no_responders(&mut buf, reply, &sub.0.sid, subject);
        let res = publisher
            .out
            .push_msg(buf.len(), 0, |out| out.extend_from_slice(&buf));
        if res.is_ok() {
            pcd.add(publisher);
        }
    }
}
