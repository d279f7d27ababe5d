//! Service imports: a request published in the importing account is re-published in
//! the exporting account on the exported subject, with its reply replaced by a fresh
//! `_R_.<prefix>.<n>` subject remembered here; the first message on that subject in
//! the exporting account goes back to the original reply in the importer (nats-server's
//! response service imports, singleton responses).
//!
//! The `_R_.<prefix>.>` interest is announced to routes in the exporting account, so a
//! responder on another node has its reply forwarded here.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::Account;
use crate::dispatch::{self, Msg, Origin, Pcd, Rng};
use crate::server::ServerShared;

/// Responses not answered within this are forgotten (nats-server's default
/// response threshold is 2 minutes).
const RESPONSE_TTL: Duration = Duration::from_secs(120);
/// Bound on pending responses per account, so unanswered requests cannot grow it.
const MAX_PENDING_RESPONSES: usize = 100_000;

/// Pending responses of one exporting account.
#[derive(Debug)]
pub struct Responses {
    /// Set once a response mapping exists: publishes in the account check the map.
    active: AtomicBool,
    /// `_R_.<prefix>.` for replies created here.
    prefix: Box<[u8]>,
    next: AtomicU64,
    pending: Mutex<HashMap<Box<[u8]>, Pending>>,
}

#[derive(Debug)]
struct Pending {
    to: Arc<Account>,
    reply: Box<[u8]>,
    at: Instant,
}

impl Default for Responses {
    fn default() -> Self {
        let kp = nkeys::KeyPair::new_server();
        let id = kp.public_key();
        Responses {
            active: AtomicBool::new(false),
            prefix: format!("_R_.{}.", &id[1..7]).into_bytes().into(),
            next: AtomicU64::new(1),
            pending: Mutex::new(HashMap::new()),
        }
    }
}

impl Responses {
    pub fn is_active(&self) -> bool {
        self.active.load(Ordering::Relaxed)
    }

    /// Remembers where the reply to a mapped request goes; returns the mapped reply.
    fn create(
        &self,
        server: &ServerShared,
        exporter: &Account,
        to: &Arc<Account>,
        reply: &[u8],
    ) -> Vec<u8> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let mut r = self.prefix.to_vec();
        r.extend_from_slice(n.to_string().as_bytes());
        let mut pending = self.pending.lock();
        if pending.len() >= MAX_PENDING_RESPONSES {
            pending.retain(|_, p| p.at.elapsed() < RESPONSE_TTL);
            if pending.len() >= MAX_PENDING_RESPONSES {
                pending.clear();
            }
        }
        pending.insert(
            r.as_slice().into(),
            Pending {
                to: to.clone(),
                reply: reply.into(),
                at: Instant::now(),
            },
        );
        drop(pending);
        if !self.active.swap(true, Ordering::AcqRel) {
            // Responders on other nodes reply in the exporting account: ask for it.
            let mut wc = self.prefix.to_vec();
            wc.push(b'>');
            server
                .routes
                .local_interest_added(exporter.name_bytes(), &wc, None);
        }
        r
    }

    fn take(&self, subject: &[u8]) -> Option<Pending> {
        if !subject.starts_with(&self.prefix) {
            return None;
        }
        self.pending
            .lock()
            .remove(subject)
            .filter(|p| p.at.elapsed() < RESPONSE_TTL)
    }
}

/// Whether publishes in `acc` need [`cross_account`] (service imports or responses).
#[inline]
pub fn has_hooks(acc: &Account) -> bool {
    !acc.service_imports().is_empty() || acc.responses.is_active()
}

/// Delivers `msg`, published in `acc`, across accounts: as a request through a
/// matching service import (client publishes only), or as the response to a mapped
/// request. Returns how many deliveries that made.
pub fn cross_account(
    server: &ServerShared,
    acc: &Arc<Account>,
    msg: &Msg<'_>,
    from_client: bool,
    rng: &mut Rng,
    pcd: &mut Pcd,
) -> usize {
    let origin = Origin::Client { cid: 0, echo: true };
    let mut delivered = 0;
    if acc.responses.is_active() {
        if let Some(p) = acc.responses.take(msg.subject) {
            let m = Msg {
                subject: &p.reply,
                reply: None,
                ..*msg
            };
            let r = p.to.sublist.match_subject(&p.reply);
            delivered += dispatch::deliver_in(server, &p.to, &r, &m, &origin, rng, pcd);
        }
    }
    if !from_client {
        return delivered;
    }
    for si in acc.service_imports() {
        if !crate::subject::matches(&si.to, msg.subject) {
            continue;
        }
        let subject: &[u8] = if crate::subject::subject_has_wildcard(&si.to) {
            msg.subject
        } else {
            &si.subject
        };
        let reply = msg
            .reply
            .map(|r| si.from.responses.create(server, &si.from, acc, r));
        let m = Msg {
            subject,
            reply: reply.as_deref(),
            ..*msg
        };
        let r = si.from.sublist.match_subject(subject);
        delivered += dispatch::deliver_in(server, &si.from, &r, &m, &origin, rng, pcd);
    }
    delivered
}
