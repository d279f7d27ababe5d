//! Authorization: per-user `permissions { publish, subscribe, allow_responses }`.
//!
//! Parsed once per configuration into [`Permissions`] (shared by every connection of the
//! user). A connection keeps a [`ConnPerms`] with a verdict cache per publish subject, so a
//! permitted publish on a hot subject costs one hash lookup; connections of users without
//! permissions carry no `ConnPerms` at all. Rules follow nats-server: deny beats allow,
//! subscribe checks match the requested subject *as if literal* against the lists
//! (`SUB foo.>` passes `allow: ["foo.*"]`), `"subject queue"` entries restrict queue
//! groups, and `allow_responses` lets a user answer requests it received.
//!
//! Two checks happen at delivery time on the *receiving* connection ([`DeliveryHook`]):
//! the subscribe deny filter for wildcard subscriptions that overlap a deny entry, and the
//! recording of reply subjects for `allow_responses`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};
use serde_json::Value as J;

/// nats-server's DEFAULT_ALLOW_RESPONSE_MAX_MSGS and _EXPIRATION.
pub const DEFAULT_RESPONSE_MAX: i64 = 1;
pub const DEFAULT_RESPONSE_EXPIRES: Duration = Duration::from_secs(120);
/// Verdict caches are cleared when they reach this size (bounded memory per connection).
const CACHE_MAX: usize = 1024;
/// Tracked replies are pruned of expired entries past this many.
const REPLIES_PRUNE_AT: usize = 4096;

/// One allow/deny entry: a subject pattern, optionally restricted to a queue group.
#[derive(Debug, Clone, PartialEq)]
struct Entry {
    subject: Box<[u8]>,
    queue: Option<Box<[u8]>>,
}

impl Entry {
    fn parse(s: &str) -> Result<Entry, String> {
        let s = s.trim();
        let (subject, queue) = match s.split_once(char::is_whitespace) {
            Some((sub, q)) => (sub, Some(q.trim())),
            None => (s, None),
        };
        if !crate::subject::is_valid_subject(subject.as_bytes()) {
            return Err(format!("invalid subject \"{subject}\" in permissions"));
        }
        Ok(Entry {
            subject: subject.as_bytes().into(),
            queue: queue.map(|q| q.as_bytes().into()),
        })
    }

    /// Whether the pattern matches `subject` token by token; wildcard tokens of the
    /// subject are plain tokens here, so they are matched only by pattern wildcards
    /// (nats-server matches a requested subscription subject the same way).
    fn matches(&self, subject: &[u8]) -> bool {
        crate::subject::matches(&self.subject, subject)
    }
}

/// `queueMatches` of nats-server: the requested queue equals an entry's queue, or the
/// entry's queue is a wildcard pattern matching it.
fn queue_matches(queue: &[u8], entries: &[&Entry]) -> bool {
    entries.iter().any(|e| {
        let q = e.queue.as_deref().unwrap_or_default();
        q == queue || (crate::subject::subject_has_wildcard(q) && crate::subject::matches(q, queue))
    })
}

/// An allow and a deny list; `None` = no list (allow: everything; deny: nothing).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SubjectPerm {
    allow: Option<Vec<Entry>>,
    deny: Option<Vec<Entry>>,
}

impl SubjectPerm {
    fn is_empty(&self) -> bool {
        self.allow.is_none() && self.deny.is_none()
    }

    /// Publish verdict from the lists alone (no response tracking).
    fn publish_allowed(&self, subject: &[u8]) -> bool {
        let allowed = self
            .allow
            .as_ref()
            .is_none_or(|a| a.iter().any(|e| e.queue.is_none() && e.matches(subject)));
        allowed
            && self
                .deny
                .as_ref()
                .is_none_or(|d| !d.iter().any(|e| e.queue.is_none() && e.matches(subject)))
    }

    /// nats-server canSubscribe.
    fn subscribe_allowed(&self, subject: &[u8], queue: Option<&[u8]>) -> bool {
        let mut allowed = true;
        if let Some(allow) = &self.allow {
            let hits: Vec<&Entry> = allow.iter().filter(|e| e.matches(subject)).collect();
            allowed = hits.iter().any(|e| e.queue.is_none());
            let qhits: Vec<&Entry> = hits.into_iter().filter(|e| e.queue.is_some()).collect();
            if let Some(q) = queue {
                if !qhits.is_empty() {
                    allowed = queue_matches(q, &qhits);
                }
            }
        }
        if allowed {
            if let Some(deny) = &self.deny {
                let hits: Vec<&Entry> = deny.iter().filter(|e| e.matches(subject)).collect();
                allowed = !hits.iter().any(|e| e.queue.is_none());
                let qhits: Vec<&Entry> = hits.into_iter().filter(|e| e.queue.is_some()).collect();
                if let Some(q) = queue {
                    if !qhits.is_empty() {
                        allowed = !queue_matches(q, &qhits);
                    }
                }
            }
        }
        allowed
    }

    /// Message subjects a wildcard subscription must not receive (plain deny entries).
    fn deny_delivery(&self, subject: &[u8]) -> bool {
        self.deny
            .as_ref()
            .is_some_and(|d| d.iter().any(|e| e.queue.is_none() && e.matches(subject)))
    }

    fn has_plain_deny(&self) -> bool {
        self.deny
            .as_ref()
            .is_some_and(|d| d.iter().any(|e| e.queue.is_none()))
    }
}

/// `allow_responses`: how many replies per received request, for how long.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ResponsePerm {
    /// Replies allowed per request; negative = unlimited.
    pub max: i64,
    /// Zero or negative in the conf = default; `None` = never expires.
    pub expires: Option<Duration>,
}

/// The permissions of one user.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Permissions {
    publish: SubjectPerm,
    subscribe: SubjectPerm,
    response: Option<ResponsePerm>,
}

fn entries(v: &J, what: &str) -> Result<Vec<Entry>, String> {
    match v {
        J::String(s) => Ok(vec![Entry::parse(s)?]),
        J::Array(a) => a
            .iter()
            .map(|x| match x {
                J::String(s) => Entry::parse(s),
                other => Err(format!("{what}: expected a subject string, got {other}")),
            })
            .collect(),
        other => Err(format!("{what}: expected a subject or a list, got {other}")),
    }
}

fn subject_perm(v: &J, what: &str) -> Result<SubjectPerm, String> {
    match v {
        J::Object(m) => {
            let mut p = SubjectPerm::default();
            for (k, v) in m {
                match k.to_ascii_lowercase().as_str() {
                    "allow" => p.allow = Some(entries(v, what)?),
                    "deny" => p.deny = Some(entries(v, what)?),
                    other => return Err(format!("{what}: unknown field \"{other}\"")),
                }
            }
            Ok(p)
        }
        other => Ok(SubjectPerm {
            allow: Some(entries(other, what)?),
            deny: None,
        }),
    }
}

fn response_perm(v: &J) -> Result<Option<ResponsePerm>, String> {
    let mut rp = ResponsePerm {
        max: DEFAULT_RESPONSE_MAX,
        expires: Some(DEFAULT_RESPONSE_EXPIRES),
    };
    match v {
        J::Bool(false) => Ok(None),
        J::Bool(true) => Ok(Some(rp)),
        J::Object(m) => {
            for (k, v) in m {
                match k.to_ascii_lowercase().as_str() {
                    "max" | "max_msgs" | "max_messages" | "max_responses" => {
                        let n = v.as_i64().ok_or("allow_responses max must be an integer")?;
                        // 0 keeps the default, negative means unlimited (nats-server).
                        if n != 0 {
                            rp.max = n;
                        }
                    }
                    "expires" | "expiration" | "ttl" => {
                        let d = v
                            .as_str()
                            .ok_or("allow_responses expires must be a duration string")?;
                        let neg = d.trim_start().starts_with('-');
                        let d = crate::config::duration::parse_go_duration(
                            d.trim_start().trim_start_matches('-'),
                        )?;
                        if neg {
                            rp.expires = None;
                        } else if !d.is_zero() {
                            rp.expires = Some(d);
                        }
                    }
                    other => return Err(format!("allow_responses: unknown field \"{other}\"")),
                }
            }
            Ok(Some(rp))
        }
        other => Err(format!(
            "allow_responses: expected a boolean or a map, got {other}"
        )),
    }
}

impl Permissions {
    /// Parses a conf `permissions` block (as JSON).
    pub fn parse(v: &J) -> Result<Permissions, String> {
        let J::Object(m) = v else {
            return Err("permissions must be a map".into());
        };
        let mut p = Permissions::default();
        for (k, v) in m {
            match k.to_ascii_lowercase().as_str() {
                "publish" | "pub" | "import" => p.publish = subject_perm(v, "publish")?,
                "subscribe" | "sub" | "export" => p.subscribe = subject_perm(v, "subscribe")?,
                "allow_responses" | "allow_response" => p.response = response_perm(v)?,
                other => return Err(format!("permissions: unknown field \"{other}\"")),
            }
        }
        // Responses without a publish permission: publishing is otherwise denied.
        if p.response.is_some() && p.publish.allow.is_none() {
            p.publish.allow = Some(Vec::new());
        }
        Ok(p)
    }
}

/// A tracked reply subject (`allow_responses`).
#[derive(Debug, Clone, Copy)]
struct Reply {
    at: Instant,
    sent: i64,
}

/// Delivery-time checks of a receiving connection; installed only when needed.
#[derive(Debug)]
pub struct DeliveryHook {
    perms: Arc<Permissions>,
    /// Set by the first wildcard subscription while a plain deny entry exists.
    deny_active: AtomicBool,
    deny_cache: Mutex<HashMap<Box<[u8]>, bool>>,
    replies: Mutex<HashMap<Box<[u8]>, Reply>>,
}

impl DeliveryHook {
    /// Whether a message on `subject` may be delivered; records its reply subject for
    /// `allow_responses`.
    pub fn admit(&self, subject: &[u8], reply: Option<&[u8]>) -> bool {
        if self.deny_active.load(Ordering::Relaxed) {
            let mut c = self.deny_cache.lock();
            let denied = match c.get(subject) {
                Some(d) => *d,
                None => {
                    let d = self.perms.subscribe.deny_delivery(subject);
                    if c.len() >= CACHE_MAX {
                        c.clear();
                    }
                    c.insert(subject.into(), d);
                    d
                }
            };
            if denied {
                return false;
            }
        }
        if let (Some(rp), Some(reply)) = (self.perms.response, reply) {
            let mut r = self.replies.lock();
            if r.len() >= REPLIES_PRUNE_AT {
                if let Some(exp) = rp.expires {
                    r.retain(|_, v| v.at.elapsed() <= exp);
                }
                if r.len() >= REPLIES_PRUNE_AT {
                    r.clear();
                }
            }
            r.insert(
                reply.into(),
                Reply {
                    at: Instant::now(),
                    sent: 0,
                },
            );
        }
        true
    }
}

/// Slot on a `Client` for its [`DeliveryHook`]; one relaxed load when empty.
#[derive(Debug, Default)]
pub struct HookSlot {
    set: AtomicBool,
    hook: RwLock<Option<Arc<DeliveryHook>>>,
}

impl HookSlot {
    /// Delivery check for the connection owning this slot (true = deliver).
    #[inline]
    pub fn admit(&self, subject: &[u8], reply: Option<&[u8]>) -> bool {
        if !self.set.load(Ordering::Relaxed) {
            return true;
        }
        match &*self.hook.read() {
            Some(h) => h.admit(subject, reply),
            None => true,
        }
    }

    fn install(&self, h: Option<Arc<DeliveryHook>>) {
        let set = h.is_some();
        *self.hook.write() = h;
        self.set.store(set, Ordering::Release);
    }
}

/// Per-connection permission state of an authenticated user with permissions.
#[derive(Debug)]
pub struct ConnPerms {
    perms: Arc<Permissions>,
    /// Publish verdicts from the static lists, per subject.
    pub_cache: HashMap<Box<[u8]>, bool>,
    hook: Option<Arc<DeliveryHook>>,
}

impl ConnPerms {
    /// Sets up a connection for `perms` and installs the delivery hook in `slot` when the
    /// permissions need one (or clears a previous one, after a re-CONNECT).
    pub fn new(perms: Arc<Permissions>, slot: &HookSlot) -> ConnPerms {
        let hook = (perms.response.is_some() || perms.subscribe.has_plain_deny()).then(|| {
            Arc::new(DeliveryHook {
                perms: perms.clone(),
                deny_active: AtomicBool::new(false),
                deny_cache: Mutex::new(HashMap::new()),
                replies: Mutex::new(HashMap::new()),
            })
        });
        slot.install(hook.clone());
        ConnPerms {
            perms,
            pub_cache: HashMap::new(),
            hook,
        }
    }

    /// Clears the delivery hook of a connection that no longer has permissions.
    pub fn clear(slot: &HookSlot) {
        slot.install(None);
    }

    /// Whether this connection may publish to `subject`.
    #[inline]
    pub fn can_publish(&mut self, subject: &[u8]) -> bool {
        if self.perms.publish.is_empty() {
            return true;
        }
        let allowed = match self.pub_cache.get(subject) {
            Some(v) => *v,
            None => {
                let v = self.perms.publish.publish_allowed(subject);
                if self.pub_cache.len() >= CACHE_MAX {
                    self.pub_cache.clear();
                }
                self.pub_cache.insert(subject.into(), v);
                v
            }
        };
        allowed || self.response_allowed(subject)
    }

    /// A reply to a request this connection received (`allow_responses`).
    fn response_allowed(&self, subject: &[u8]) -> bool {
        let (Some(rp), Some(h)) = (self.perms.response, &self.hook) else {
            return false;
        };
        let mut replies = h.replies.lock();
        let Some(r) = replies.get_mut(subject) else {
            return false;
        };
        r.sent += 1;
        let too_many = rp.max > 0 && r.sent > rp.max;
        let expired = rp.expires.is_some_and(|e| r.at.elapsed() > e);
        if too_many || expired {
            replies.remove(subject);
            return false;
        }
        true
    }

    /// Whether this connection may subscribe; a permitted wildcard subscription that may
    /// overlap a deny entry turns on the delivery-time deny filter.
    pub fn can_subscribe(&mut self, subject: &[u8], queue: Option<&[u8]>) -> bool {
        let s = &self.perms.subscribe;
        if s.is_empty() {
            return true;
        }
        let ok = s.subscribe_allowed(subject, queue);
        if ok && s.has_plain_deny() && crate::subject::subject_has_wildcard(subject) {
            if let Some(h) = &self.hook {
                h.deny_active.store(true, Ordering::Relaxed);
            }
        }
        ok
    }
}

/// Subjects no client may publish to: gateway-routed reply prefixes (nats-server
/// hasGWRoutedReplyPrefix).
#[inline]
pub fn reserved_subject(s: &[u8]) -> bool {
    match s.first() {
        Some(b'_') => s.starts_with(b"_GR_."),
        Some(b'$') => s.starts_with(b"$GR."),
        _ => false,
    }
}

/// Reply subjects no client may use: service import, JetStream ack and gateway reply
/// prefixes (nats-server isReservedReply).
#[inline]
pub fn reserved_reply(r: &[u8]) -> bool {
    match r.first() {
        Some(b'_') => r.starts_with(b"_R_.") || (r.len() > 5 && r.starts_with(b"_GR_.")),
        Some(b'$') => r.len() > 8 && r.starts_with(b"$JS.ACK."),
        _ => false,
    }
}

/// Go's `%q` for the subjects in violation messages.
pub fn go_quote(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(b);
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\x7f' => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn perms(v: J) -> Permissions {
        Permissions::parse(&v).expect("valid permissions")
    }

    #[test]
    fn publish_allow_deny_and_cache() {
        let p = perms(json!({"publish": {"allow": ["foo.>"], "deny": ["foo.secret"]}}));
        let slot = HookSlot::default();
        let mut c = ConnPerms::new(Arc::new(p), &slot);
        assert!(c.can_publish(b"foo.a"));
        assert!(c.can_publish(b"foo.a"));
        assert!(!c.can_publish(b"foo.secret"));
        assert!(!c.can_publish(b"bar"));
        assert!(!c.can_publish(b"foo"));
        assert!(slot.admit(b"anything", None));
    }

    #[test]
    fn subscribe_rules_follow_nats_server() {
        let p = perms(
            json!({"subscribe": {"allow": ["bar", "q.* qq", "foo.*"], "deny": ["foo.secret"]}}),
        );
        let slot = HookSlot::default();
        let mut c = ConnPerms::new(Arc::new(p), &slot);
        assert!(c.can_subscribe(b"bar", None));
        assert!(c.can_subscribe(b"bar", Some(b"any")));
        assert!(!c.can_subscribe(b"q.x", None));
        assert!(c.can_subscribe(b"q.x", Some(b"qq")));
        assert!(!c.can_subscribe(b"q.x", Some(b"qz")));
        assert!(c.can_subscribe(b"foo.>", None));
        assert!(!c.can_subscribe(b"foo.secret", None));
        // foo.> overlapped the deny entry: delivery of foo.secret is now filtered.
        assert!(!slot.admit(b"foo.secret", None));
        assert!(slot.admit(b"foo.open", None));
    }

    #[test]
    fn responses_once_by_default() {
        let p = perms(json!({"subscribe": "svc", "allow_responses": true}));
        let slot = HookSlot::default();
        let mut c = ConnPerms::new(Arc::new(p), &slot);
        assert!(!c.can_publish(b"free"));
        assert!(slot.admit(b"svc", Some(b"rep.1")));
        assert!(c.can_publish(b"rep.1"));
        assert!(!c.can_publish(b"rep.1"));
        let p = perms(json!({"allow_responses": {"max": 2, "expires": "1m"}}));
        let mut c = ConnPerms::new(Arc::new(p), &slot);
        assert!(slot.admit(b"svc", Some(b"rep.2")));
        assert!(c.can_publish(b"rep.2") && c.can_publish(b"rep.2"));
        assert!(!c.can_publish(b"rep.2"));
    }

    #[test]
    fn entry_matching() {
        let e = Entry::parse("a.*.>").expect("ok");
        assert!(e.matches(b"a.b.c") && e.matches(b"a.b.c.d") && !e.matches(b"a.b"));
        assert!(Entry::parse("a..b").is_err());
        assert_eq!(go_quote(b"a\"b"), "\"a\\\"b\"");
    }
}
