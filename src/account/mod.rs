//! Accounts: separate subject spaces on one server (nats-server's accounts).
//!
//! Every client is bound to one [`Account`] at CONNECT and holds an `Arc` of it, so
//! publishing never looks an account up by name. Clients without an account are in
//! the global account `$G`. Messages cross accounts only through imports:
//!
//! - stream import: a subscription in the importer that covers the import's local
//!   subjects gets a *shadow* subscription in the exporter's sublist (see
//!   [`shadow_subjects`]); a message delivered through it has its subject mapped
//!   (prefix / `to`). Shadows are announced to routes in the exporter's account, as
//!   nats-server does, so a peer forwards the exporter's messages to us.
//! - service import: a publish in the importer on the import's local subject is
//!   re-published in the exporter on the exported subject with a fresh `_R_.` reply;
//!   the response to that reply is delivered back in the importer (see `service.rs`).

pub mod service;

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use parking_lot::RwLock;

use crate::client::SubRef;
use crate::config::AccountConfig;
use crate::sublist::Sublist;

/// The account of clients that have none (nats-server's `$G`).
pub const GLOBAL_ACCOUNT: &str = "$G";

/// Per-account limits; -1 = unlimited (JWT claims set these; conf accounts do not).
#[derive(Debug)]
pub struct Limits {
    pub max_connections: AtomicI64,
    pub max_subscriptions: AtomicI64,
    pub max_payload: AtomicI64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: AtomicI64::new(-1),
            max_subscriptions: AtomicI64::new(-1),
            max_payload: AtomicI64::new(-1),
        }
    }
}

/// How a stream import maps the exporter's subjects into the importer's.
#[derive(Debug)]
pub struct StreamMap {
    /// Subject (possibly with wildcards) in the exporting account.
    pub from_subject: Box<[u8]>,
    /// `prefix.` prepended to the exported subject.
    pub prefix: Option<Box<[u8]>>,
    /// Literal rename (`to`) of a literal import subject.
    pub to: Option<Box<[u8]>>,
}

impl StreamMap {
    /// The importer's subject space (what its subscriptions must cover).
    pub fn local_space(&self) -> Vec<u8> {
        match (&self.prefix, &self.to) {
            (Some(p), _) => [&p[..], b".", &self.from_subject].concat(),
            (None, Some(t)) => t.to_vec(),
            _ => self.from_subject.to_vec(),
        }
    }

    /// The importer's subject for a message published on `subject` in the exporter.
    pub fn map(&self, subject: &[u8]) -> Vec<u8> {
        match (&self.prefix, &self.to) {
            (Some(p), _) => [&p[..], b".", subject].concat(),
            (None, Some(t)) => t.to_vec(),
            _ => subject.to_vec(),
        }
    }
}

/// A resolved stream import.
#[derive(Debug)]
pub struct StreamImport {
    pub from: Arc<Account>,
    pub map: Arc<StreamMap>,
}

/// A resolved service import: requests on `to` here go to `subject` in `from`.
#[derive(Debug)]
pub struct ServiceImport {
    pub from: Arc<Account>,
    pub subject: Box<[u8]>,
    pub to: Box<[u8]>,
}

/// Imports, set once every account of the configuration exists.
#[derive(Debug, Default)]
pub struct Imports {
    pub streams: Vec<StreamImport>,
    pub services: Vec<ServiceImport>,
}

/// One account: its subject space, counters, limits and imports.
#[derive(Debug)]
pub struct Account {
    pub name: String,
    pub sublist: Sublist<SubRef>,
    pub limits: Limits,
    /// Local client connections bound to this account.
    pub num_connections: AtomicU64,
    pub imports: OnceLock<Imports>,
    /// Exports as configured (for /accountz).
    pub exports: RwLock<Vec<crate::config::ExportConfig>>,
    /// Pending service responses whose `_R_.` reply lives in this (exporting) account.
    pub responses: service::Responses,
}

impl Account {
    pub fn new(name: &str) -> Self {
        Account {
            name: name.to_string(),
            sublist: Sublist::new(),
            limits: Limits::default(),
            num_connections: AtomicU64::new(0),
            imports: OnceLock::new(),
            exports: RwLock::new(Vec::new()),
            responses: service::Responses::default(),
        }
    }

    pub fn name_bytes(&self) -> &[u8] {
        self.name.as_bytes()
    }

    pub fn is_global(&self) -> bool {
        self.name == GLOBAL_ACCOUNT
    }

    /// Stream imports (empty until resolved, and for accounts without any).
    pub fn stream_imports(&self) -> &[StreamImport] {
        self.imports.get().map_or(&[], |i| &i.streams)
    }

    pub fn service_imports(&self) -> &[ServiceImport] {
        self.imports.get().map_or(&[], |i| &i.services)
    }

    pub fn connections(&self) -> u64 {
        self.num_connections.load(Ordering::Relaxed)
    }
}

/// The registry of a server's accounts by name. Looked up at CONNECT and for
/// route-origin protocol, never per client message.
pub struct Accounts {
    global: Arc<Account>,
    map: RwLock<HashMap<String, Arc<Account>>>,
}

impl Default for Accounts {
    fn default() -> Self {
        Self::new()
    }
}

impl Accounts {
    pub fn new() -> Self {
        let global = Arc::new(Account::new(GLOBAL_ACCOUNT));
        let mut map = HashMap::new();
        map.insert(GLOBAL_ACCOUNT.to_string(), global.clone());
        Accounts {
            global,
            map: RwLock::new(map),
        }
    }

    /// The configured accounts, with their imports resolved (the conf loader has
    /// already refused imports of unknown or unauthorized exports).
    pub fn from_config(cfgs: &[AccountConfig]) -> Self {
        let accs = Accounts::new();
        for c in cfgs {
            let a = accs.get_or_register(&c.name);
            *a.exports.write() = c.exports.clone();
        }
        for c in cfgs {
            let a = accs.get_or_register(&c.name);
            let mut imports = Imports::default();
            for i in &c.imports {
                let Some(from) = accs.get(&i.account) else {
                    continue;
                };
                if i.service {
                    imports.services.push(ServiceImport {
                        from,
                        subject: i.subject.as_bytes().into(),
                        to: i.to.as_deref().unwrap_or(&i.subject).as_bytes().into(),
                    });
                } else {
                    imports.streams.push(StreamImport {
                        from,
                        map: Arc::new(StreamMap {
                            from_subject: i.subject.as_bytes().into(),
                            prefix: i.prefix.as_deref().map(|p| p.as_bytes().into()),
                            to: i.to.as_deref().map(|t| t.as_bytes().into()),
                        }),
                    });
                }
            }
            let _ = a.imports.set(imports);
        }
        accs
    }

    pub fn global(&self) -> &Arc<Account> {
        &self.global
    }

    pub fn get(&self, name: &str) -> Option<Arc<Account>> {
        self.map.read().get(name).cloned()
    }

    /// By name as it appears on the route protocol (`RS+ <account> ...`).
    pub fn get_bytes(&self, name: &[u8]) -> Option<Arc<Account>> {
        if name == GLOBAL_ACCOUNT.as_bytes() {
            return Some(self.global.clone());
        }
        std::str::from_utf8(name).ok().and_then(|n| self.get(n))
    }

    /// The account `name`, created empty if it does not exist (JWT accounts are
    /// registered this way when their first user connects).
    pub fn get_or_register(&self, name: &str) -> Arc<Account> {
        if let Some(a) = self.get(name) {
            return a;
        }
        self.map
            .write()
            .entry(name.to_string())
            .or_insert_with(|| Arc::new(Account::new(name)))
            .clone()
    }

    /// Sublist counters summed over every account (nats-server's /subsz without `acc`).
    pub fn total_stats(&self) -> crate::sublist::SublistStats {
        let mut t = crate::sublist::SublistStats::default();
        let (mut hits, mut fan) = (0.0, 0.0);
        for a in self.all() {
            let s = a.sublist.stats();
            t.num_subscriptions += s.num_subscriptions;
            t.num_cache += s.num_cache;
            t.num_inserts += s.num_inserts;
            t.num_removes += s.num_removes;
            t.num_matches += s.num_matches;
            t.max_fanout = t.max_fanout.max(s.max_fanout);
            hits += s.cache_hit_rate * s.num_matches as f64;
            fan += s.avg_fanout * s.num_cache as f64;
        }
        if t.num_matches > 0 {
            t.cache_hit_rate = hits / t.num_matches as f64;
        }
        if t.num_cache > 0 {
            t.avg_fanout = fan / t.num_cache as f64;
        }
        t
    }

    /// Subscriptions over every account.
    pub fn total_subscriptions(&self) -> usize {
        self.map.read().values().map(|a| a.sublist.count()).sum()
    }

    /// Every account, sorted by name.
    pub fn all(&self) -> Vec<Arc<Account>> {
        let mut v: Vec<_> = self.map.read().values().cloned().collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }
}

/// Subjects of the shadow subscriptions a subscription on `subject` in the importer
/// needs, one per stream import it overlaps (nats-server addShadowSubscriptions):
/// within the import's local space, the subject mapped back; wider than it, the
/// exported subject itself.
pub fn shadow_subjects<'a>(
    imports: &'a [StreamImport],
    subject: &'a [u8],
) -> impl Iterator<Item = (&'a StreamImport, Vec<u8>)> + 'a {
    imports.iter().filter_map(move |im| {
        let local = im.map.local_space();
        if crate::subject::is_subset_match(subject, &local) {
            let back = match (&im.map.prefix, &im.map.to) {
                (Some(p), _) => subject[p.len() + 1..].to_vec(),
                (None, Some(_)) => im.map.from_subject.to_vec(),
                _ => subject.to_vec(),
            };
            Some((im, back))
        } else if crate::subject::is_subset_match(&local, subject) {
            Some((im, im.map.from_subject.to_vec()))
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn imp(from: &str, prefix: Option<&str>, to: Option<&str>) -> StreamImport {
        StreamImport {
            from: Arc::new(Account::new("A")),
            map: Arc::new(StreamMap {
                from_subject: from.as_bytes().into(),
                prefix: prefix.map(|p| p.as_bytes().into()),
                to: to.map(|t| t.as_bytes().into()),
            }),
        }
    }

    #[test]
    fn shadows_follow_the_import_space() {
        let ims = [imp("a.>", Some("fromA"), None), imp("x.y", None, Some("z"))];
        let got = |s: &str| -> Vec<Vec<u8>> {
            shadow_subjects(&ims, s.as_bytes())
                .map(|(_, s)| s)
                .collect()
        };
        assert_eq!(got("fromA.a.b"), vec![b"a.b".to_vec()]);
        assert_eq!(got("fromA.>"), vec![b"a.>".to_vec()]);
        assert_eq!(got(">"), vec![b"a.>".to_vec(), b"x.y".to_vec()]);
        assert_eq!(got("z"), vec![b"x.y".to_vec()]);
        assert!(got("a.b").is_empty());
        assert_eq!(ims[0].map.map(b"a.q"), b"fromA.a.q");
        assert_eq!(ims[1].map.map(b"x.y"), b"z");
    }

    #[test]
    fn registry_by_name() {
        let a = Accounts::new();
        assert!(a.get_bytes(b"$G").is_some_and(|g| g.is_global()));
        assert!(a.get("B").is_none());
        let b = a.get_or_register("B");
        assert!(Arc::ptr_eq(&b, &a.get_or_register("B")));
        assert_eq!(a.all().len(), 2);
    }
}
