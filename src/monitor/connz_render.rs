//! /connz as JSON, written straight from the page's rows to bytes.
//!
//! nats-server's ConnInfo has ~30 fields; building a `serde_json::Value` tree for a
//! 10k-connection page (a map with owned keys per connection, a string per time and
//! duration) cost far more than writing the text. Here each connection is a borrowed,
//! typed view serialised in place: times and uptimes go out through `Display` without
//! an intermediate `String`, and a connection's metadata is read under its lock for the
//! microseconds it takes to write that one entry.

use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use serde::ser::{SerializeSeq, SerializeStruct};
use serde::{Serialize, Serializer};

use super::connz::{Page, Row, Src};
use super::format::{elapsed, rtt, Rfc3339, Uptime};
use crate::client::{PeerCert, Subscription, TlsSession};
use crate::server::ClosedSub;

/// A /connz page with what rendering needs copied out of its connections: the only
/// way to render one, so writing the JSON never takes a connection's lock.
pub struct Snapshot {
    page: Page,
    /// One per row of `page`, in the same order.
    snaps: Vec<Snap>,
}

impl Page {
    /// Copies the page's strings and subscription lists out under the connections'
    /// short locks; the [`Snapshot`] can then be written at idle priority without
    /// ever holding up a reader that wants its connection's lock back.
    pub fn snapshot(self) -> Snapshot {
        let wanted = self.subs || self.detail;
        let snaps = self.rows.iter().map(|r| Snap::take(r, wanted)).collect();
        Snapshot { page: self, snaps }
    }
}

impl Snapshot {
    /// The document, pretty-printed (2 spaces) as nats-server writes it.
    pub fn to_json(&self) -> Vec<u8> {
        // ~1 KiB per connection without subscriptions; grows as needed.
        let mut out = Vec::with_capacity(512 + self.page.rows.len() * 1024);
        // Writing to a Vec cannot fail and every value here serialises.
        let _ = serde_json::to_writer_pretty(&mut out, self);
        out
    }
}

impl Serialize for Snapshot {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let page = &self.page;
        let mut m = s.serialize_struct("Connz", 7)?;
        let server_id = if page.unknown_account {
            ""
        } else {
            &page.server_id
        };
        m.serialize_field("server_id", server_id)?;
        m.serialize_field("now", &Rfc3339(page.now))?;
        m.serialize_field("num_connections", &page.rows.len())?;
        m.serialize_field("total", &page.total)?;
        m.serialize_field("offset", &page.offset)?;
        m.serialize_field("limit", &page.limit)?;
        if page.unknown_account {
            // nats-server leaves the list nil for an account it does not know.
            m.serialize_field("connections", &())?;
        } else {
            m.serialize_field("connections", &Connections(self))?;
        }
        m.end()
    }
}

/// A page row's strings and subscriptions, copied out under the connection's locks
/// (or from the immutable record of a closed connection).
struct Snap {
    name: String,
    lang: String,
    version: String,
    user: String,
    account: String,
    tls: Option<TlsSession>,
    subs: SubList,
}

impl Snap {
    fn take(r: &Row, wanted_subs: bool) -> Snap {
        let subs = SubList::of(r, wanted_subs);
        match &r.src {
            Src::Open(c) => {
                let m = c.meta.lock();
                Snap {
                    name: m.name.clone(),
                    lang: m.lang.clone(),
                    version: m.version.clone(),
                    user: m.user.clone(),
                    account: m
                        .account
                        .as_ref()
                        .map_or_else(|| "$G".to_string(), |a| a.name.clone()),
                    tls: m.tls.clone(),
                    subs,
                }
            }
            Src::Closed(c) => Snap {
                name: c.name.clone(),
                lang: c.lang.clone(),
                version: c.version.clone(),
                user: c.user.clone(),
                account: c.account.clone(),
                tls: c.tls.clone(),
                subs,
            },
        }
    }
}

struct Connections<'p>(&'p Snapshot);

impl Serialize for Connections<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let Snapshot { page, snaps } = self.0;
        let mut seq = s.serialize_seq(Some(page.rows.len()))?;
        for (r, snap) in page.rows.iter().zip(snaps) {
            seq.serialize_element(&info(page, r, snap))?;
        }
        seq.end()
    }
}

fn info<'t>(page: &Page, r: &Row, t: &'t Snap) -> Info<'t> {
    let end = if r.stop.is_some() { r.end } else { page.now };
    let auth = page.auth;
    let nonempty = |v: &'t str| (!v.is_empty()).then_some(v);
    let (list, detail) = match &t.subs {
        SubList::None => (None, None),
        list if page.detail => (None, Some(Details { list, cid: r.cid })),
        list => (Some(Subjects(list)), None),
    };
    let (ip, port, websocket, open) = match &r.src {
        Src::Open(c) => (c.addr.ip(), c.addr.port(), c.websocket, true),
        Src::Closed(c) => (c.addr.ip(), c.addr.port(), c.websocket, false),
    };
    Info {
        cid: r.cid,
        kind: "Client",
        kind_type: if websocket { "websocket" } else { "nats" },
        ip: Shown(ip),
        port,
        start: Rfc3339(r.start),
        last_activity: Rfc3339(r.last),
        stop: r.stop.map(Rfc3339),
        reason: r.stop.map(|_| r.reason()),
        rtt: rtt(r.rtt),
        uptime: Uptime(elapsed(end, r.start)),
        idle: Uptime(elapsed(end, r.last)),
        pending_bytes: r.pending,
        in_msgs: r.in_msgs,
        out_msgs: r.out_msgs,
        in_bytes: r.in_bytes,
        out_bytes: r.out_bytes,
        subscriptions: r.subs,
        name: nonempty(&t.name),
        lang: nonempty(&t.lang),
        version: nonempty(&t.version),
        tls_version: t.tls.as_ref().map(|x| x.version.as_str()),
        tls_cipher_suite: t.tls.as_ref().map(|x| x.cipher.as_str()),
        // nats-server shows the peer's certificates only with auth=1.
        tls_peer_certs: t
            .tls
            .as_ref()
            .filter(|x| auth && !x.peer_certs.is_empty())
            .map(|x| x.peer_certs.as_slice()),
        tls_first: t.tls.as_ref().is_some_and(|x| x.first).then_some(true),
        authorized_user: nonempty(&t.user).filter(|_| auth),
        // `account` only for accounts other than $G; name_tag falls back to its name.
        account: (auth && t.account != "$G").then_some(t.account.as_str()),
        subscriptions_list: list,
        subscriptions_list_detail: detail,
        // nats-server tags open connections always, closed ones outside $G.
        name_tag: (auth && (open || t.account != "$G")).then_some(t.account.as_str()),
    }
}

/// One ConnInfo, keys in nats-server's order, empty optional fields left out.
#[derive(Serialize)]
struct Info<'t> {
    cid: u64,
    kind: &'static str,
    #[serde(rename = "type")]
    kind_type: &'static str,
    ip: Shown<IpAddr>,
    port: u16,
    start: Rfc3339,
    last_activity: Rfc3339,
    #[serde(skip_serializing_if = "Option::is_none")]
    stop: Option<Rfc3339>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
    rtt: String,
    uptime: Uptime,
    idle: Uptime,
    pending_bytes: usize,
    in_msgs: u64,
    out_msgs: u64,
    in_bytes: u64,
    out_bytes: u64,
    subscriptions: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'t str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    lang: Option<&'t str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<&'t str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_version: Option<&'t str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_cipher_suite: Option<&'t str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_peer_certs: Option<&'t [PeerCert]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_first: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    authorized_user: Option<&'t str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    account: Option<&'t str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    subscriptions_list: Option<Subjects<'t>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    subscriptions_list_detail: Option<Details<'t>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name_tag: Option<&'t str>,
}

/// Any `Display` value written as a JSON string without a `String` in between.
struct Shown<T>(T);

impl<T: std::fmt::Display> Serialize for Shown<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

/// A connection's subscriptions in sid order (a stable order instead of the hash
/// map's). Open connections' are taken as `Arc`s under the subs lock, which is
/// released before anything is written.
enum SubList {
    None,
    Open(Vec<Arc<Subscription>>),
    Closed(Arc<crate::server::ClosedConn>),
}

impl SubList {
    fn of(r: &Row, wanted: bool) -> SubList {
        if !wanted {
            return SubList::None;
        }
        let by_sid = |a: &[u8], b: &[u8]| a.len().cmp(&b.len()).then_with(|| a.cmp(b));
        match &r.src {
            Src::Open(c) => {
                let mut v: Vec<Arc<Subscription>> = c.subs.lock().values().cloned().collect();
                if v.is_empty() {
                    return SubList::None;
                }
                v.sort_by(|a, b| by_sid(&a.sid, &b.sid));
                SubList::Open(v)
            }
            Src::Closed(c) if c.subs.is_empty() => SubList::None,
            // Closed connections' subscriptions were recorded in sid order at close.
            Src::Closed(c) => SubList::Closed(c.clone()),
        }
    }

    fn len(&self) -> usize {
        match self {
            SubList::None => 0,
            SubList::Open(v) => v.len(),
            SubList::Closed(c) => c.subs.len(),
        }
    }
}

/// Subject text of a subscription held as bytes (NATS subjects are ASCII; anything
/// else is shown lossily rather than failing the page).
struct Utf8<'b>(&'b [u8]);

impl Serialize for Utf8<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match std::str::from_utf8(self.0) {
            Ok(v) => s.serialize_str(v),
            Err(_) => s.serialize_str(&String::from_utf8_lossy(self.0)),
        }
    }
}

/// `subscriptions_list`: subjects only.
struct Subjects<'l>(&'l SubList);

impl Serialize for Subjects<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        match self.0 {
            SubList::None => {}
            SubList::Open(v) => {
                for sub in v {
                    seq.serialize_element(&Utf8(&sub.subject))?;
                }
            }
            SubList::Closed(c) => {
                for sub in &c.subs {
                    seq.serialize_element(&sub.subject)?;
                }
            }
        }
        seq.end()
    }
}

/// `subscriptions_list_detail`: nats-server's client SubDetail (no account).
struct Details<'l> {
    list: &'l SubList,
    cid: u64,
}

#[derive(Serialize)]
struct Detail<T: Serialize> {
    /// Closed connections' subscriptions are recorded with their account (nats-server's
    /// full SubDetail); open ones are shown without.
    #[serde(skip_serializing_if = "Option::is_none")]
    account: Option<T>,
    #[serde(skip_serializing_if = "Option::is_none")]
    account_tag: Option<T>,
    subject: T,
    #[serde(skip_serializing_if = "Option::is_none")]
    qgroup: Option<T>,
    sid: T,
    msgs: u64,
    #[serde(skip_serializing_if = "is_zero")]
    max: u64,
    cid: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

impl Serialize for Details<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.list.len()))?;
        match self.list {
            SubList::None => {}
            SubList::Open(v) => {
                for sub in v {
                    seq.serialize_element(&Detail {
                        account: None,
                        account_tag: None,
                        subject: Utf8(&sub.subject),
                        qgroup: sub.queue.as_deref().map(Utf8),
                        sid: Utf8(&sub.sid),
                        msgs: sub.delivered.load(Ordering::Relaxed),
                        max: sub.max.load(Ordering::Relaxed),
                        cid: self.cid,
                    })?;
                }
            }
            SubList::Closed(c) => {
                for sub in &c.subs {
                    seq.serialize_element(&closed_detail(sub, &c.account, self.cid))?;
                }
            }
        }
        seq.end()
    }
}

/// A closed connection's subscription as nats-server keeps it: with the account, and
/// without the auto-unsubscribe limit (which it does not carry into the record).
fn closed_detail<'c>(sub: &'c ClosedSub, account: &'c str, cid: u64) -> Detail<&'c str> {
    Detail {
        account: Some(account),
        account_tag: Some(account),
        subject: &sub.subject,
        qgroup: sub.queue.as_deref(),
        sid: &sub.sid,
        msgs: sub.msgs,
        max: 0,
        cid,
    }
}
