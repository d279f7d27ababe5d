//! What /connz `state=closed` keeps of a connection after it is gone.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::client::{Client, Subscription};
use crate::error::CloseReason;

/// A closed connection as kept for `/connz?state=closed`.
#[derive(Debug, Clone)]
pub struct ClosedConn {
    pub cid: u64,
    pub addr: SocketAddr,
    pub start: SystemTime,
    pub stop: SystemTime,
    pub reason: CloseReason,
    pub name: String,
    pub lang: String,
    pub version: String,
    pub in_msgs: u64,
    pub in_bytes: u64,
    pub out_msgs: u64,
    pub out_bytes: u64,
    pub subscriptions: usize,
    pub last_activity: SystemTime,
    pub rtt: Option<Duration>,
    pub user: String,
    /// The account the connection was bound to (`$G` without one).
    pub account: String,
    pub tls: Option<crate::client::TlsSession>,
    /// Came in over the websocket listener (/connz `type`).
    pub websocket: bool,
    /// The subscriptions held at close (nats-server keeps them for `subs=1|detail`).
    pub subs: Vec<ClosedSub>,
}

/// A subscription of a closed connection, as /connz `subs=detail` shows it.
#[derive(Debug, Clone)]
pub struct ClosedSub {
    pub subject: String,
    pub queue: Option<String>,
    pub sid: String,
    pub msgs: u64,
}

impl ClosedConn {
    pub fn from_client(c: &Client, reason: CloseReason, subs: &[Arc<Subscription>]) -> Self {
        let meta = c.meta.lock().clone();
        let (out_msgs, out_bytes) = c.out.counters();
        ClosedConn {
            cid: c.cid,
            addr: c.addr,
            start: c.start,
            stop: SystemTime::now(),
            reason,
            name: meta.name,
            lang: meta.lang,
            version: meta.version,
            in_msgs: c.in_msgs.load(Ordering::Relaxed),
            in_bytes: c.in_bytes.load(Ordering::Relaxed),
            out_msgs,
            out_bytes,
            subscriptions: subs.len(),
            last_activity: c.last_activity(),
            rtt: meta.rtt,
            user: meta.user,
            account: meta
                .account
                .as_ref()
                .map_or_else(|| "$G".to_string(), |a| a.name.clone()),
            tls: meta.tls,
            websocket: c.websocket,
            subs: closed_subs(subs),
        }
    }
}

/// The subscriptions of a closing connection in sid order (numeric for the usual
/// numeric sids), the order /connz lists them in.
fn closed_subs(subs: &[Arc<Subscription>]) -> Vec<ClosedSub> {
    let lossy = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let mut out: Vec<ClosedSub> = subs
        .iter()
        .map(|s| ClosedSub {
            subject: lossy(&s.subject),
            queue: s.queue.as_deref().map(lossy),
            sid: lossy(&s.sid),
            msgs: s.delivered.load(Ordering::Relaxed),
        })
        .collect();
    out.sort_by(|a, b| {
        a.sid
            .len()
            .cmp(&b.sid.len())
            .then_with(|| a.sid.cmp(&b.sid))
    });
    out
}
