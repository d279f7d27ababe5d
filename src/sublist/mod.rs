//! The sublist: every subscription of the server (local clients and, later, remote route
//! interest) in a token trie, plus a shared match cache keyed by publish subject.
//!
//! Used through `&self` (typically `Arc<Sublist<T>>`): the trie sits behind a
//! `parking_lot::RwLock`, the cache is a `DashMap`, so a cache hit takes no trie lock and
//! does not allocate (it clones an `Arc`). Generic over the stored handle `T`; tern stores a
//! newtype around `Arc<Subscription>` whose `PartialEq` is pointer equality.
//!
//! Must not: do I/O, block on anything but its own locks, or hand out references into
//! the trie (results are owned `Arc`s so callers drop no guard late; design rule 6).
//!
//! Place in the PUB flow: `client::process_sub` -> [`Sublist::insert`];
//! `dispatch` -> [`Sublist::match_subject`] (per-connection caches keyed by
//! [`Sublist::generation`]); connection close -> [`Sublist::remove_batch`].
//!
//! Cache coherence: the trie and the cache change together under the trie's write lock
//! (insert/remove invalidate every cached subject the changed subscription matches), and a
//! cache fill happens while the filler still holds the trie's read lock. So a filled entry
//! always reflects the trie as it is until the next writer, which then invalidates it:
//! the cache never returns a stale result.

#[cfg(test)]
mod tests;
mod trie;

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use dashmap::DashMap;
use hashbrown::DefaultHashBuilder;
use parking_lot::RwLock;

use crate::subject::{
    is_valid_queue_name, is_valid_subject, matches, subject_has_wildcard, tokens,
};
use trie::{Acc, Level};

/// Cached publish subjects before a sweep (nats-server's slCacheMax).
const CACHE_MAX: usize = 1024;
/// A sweep keeps about this many entries, chosen at random, so hot subjects tend to
/// survive and the sweep runs rarely (once per ~256 misses when the cache is full).
const CACHE_KEEP: usize = CACHE_MAX - 256;
/// Above this many wildcard subscriptions in one batch removal, clearing the whole cache
/// is cheaper than a scan of the cache per wildcard.
const BATCH_CLEAR_WILDCARDS: usize = 8;

/// What a publish subject matched.
#[derive(Debug, Clone)]
pub struct SublistResult<T> {
    /// Plain subscriptions: each gets a copy.
    pub psubs: Vec<T>,
    /// One Vec per distinct queue group name (merged across subjects), sorted by queue
    /// name; one member of each gets the message.
    pub qsubs: Vec<Vec<T>>,
}

impl<T> Default for SublistResult<T> {
    fn default() -> Self {
        SublistResult {
            psubs: Vec::new(),
            qsubs: Vec::new(),
        }
    }
}

impl<T> SublistResult<T> {
    /// No subscription matched.
    pub fn is_empty(&self) -> bool {
        self.psubs.is_empty() && self.qsubs.is_empty()
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone, Copy)]
pub enum SublistError {
    /// Subject (or queue name) fails [`is_valid_subject`] / [`is_valid_queue_name`].
    #[error("invalid subject")]
    InvalidSubject,
    /// Remove of a subscription that is not in the sublist.
    #[error("subscription not found")]
    NotFound,
}

/// One subscription as listed by [`Sublist::all`]: `(subject, queue, item)`.
pub type SubEntry<T> = (Vec<u8>, Option<Vec<u8>>, T);

/// The /subsz counters (nats-server's SublistStats).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct SublistStats {
    pub num_subscriptions: u64,
    pub num_cache: u64,
    pub num_inserts: u64,
    pub num_removes: u64,
    pub num_matches: u64,
    pub cache_hit_rate: f64,
    /// Over cached results: plain subs + queue groups of the largest one.
    pub max_fanout: u64,
    pub avg_fanout: f64,
}

/// Keeps a counter written on every match off the cache line of fields that are only
/// read on the hot path (`generation`, the cache pointer), so cores do not fight over it.
#[repr(align(128))]
#[derive(Default)]
struct Padded<T>(T);

type Cache<T> = DashMap<Box<[u8]>, Arc<SublistResult<T>>, DefaultHashBuilder>;

pub struct Sublist<T> {
    /// All subscriptions. Writers (insert/remove) also update the cache under this lock.
    trie: RwLock<Level<T>>,
    /// Publish subject -> result. `None` for a sublist made with [`Sublist::no_cache`].
    cache: Option<Cache<T>>,
    /// Entries in `cache`, kept beside it because `DashMap::len` locks every shard.
    cache_len: AtomicUsize,
    /// One sweeper at a time; others skip instead of waiting.
    sweeping: AtomicBool,
    /// Shared empty result so no-interest publishes allocate nothing.
    empty: Arc<SublistResult<T>>,
    /// Bumped (Release) after every change, once the trie and cache reflect it.
    generation: AtomicU64,
    /// Number of subscriptions; changed only under the write lock, read lock-free.
    count: AtomicUsize,
    inserts: AtomicU64,
    removes: AtomicU64,
    /// Every match call; written on the hot path, hence padded.
    matches: Padded<AtomicU64>,
    /// Matches that missed the cache (hits = matches - misses).
    misses: Padded<AtomicU64>,
}

impl<T> fmt::Debug for Sublist<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sublist")
            .field("count", &self.count.load(Ordering::Relaxed))
            .field("generation", &self.generation.load(Ordering::Relaxed))
            .field("cache", &self.cache.is_some())
            .finish_non_exhaustive()
    }
}

impl<T: Clone + PartialEq + Send + Sync> Default for Sublist<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Clone + PartialEq + Send + Sync> Sublist<T> {
    /// A sublist with the match cache on.
    pub fn new() -> Self {
        Self::build(true)
    }

    /// A sublist without match cache: every match walks the trie. For sublists that are
    /// changed far more often than matched, and for benchmarking the trie.
    pub fn no_cache() -> Self {
        Self::build(false)
    }

    fn build(cache: bool) -> Self {
        Sublist {
            trie: RwLock::new(Level::default()),
            cache: cache.then(|| DashMap::with_hasher(DefaultHashBuilder::default())),
            cache_len: AtomicUsize::new(0),
            sweeping: AtomicBool::new(false),
            empty: Arc::new(SublistResult::default()),
            generation: AtomicU64::new(0),
            count: AtomicUsize::new(0),
            inserts: AtomicU64::new(0),
            removes: AtomicU64::new(0),
            matches: Padded::default(),
            misses: Padded::default(),
        }
    }

    /// Adds a subscription. The same `item` may be inserted more than once (it is then
    /// delivered once per insert and must be removed as often).
    pub fn insert(
        &self,
        subject: &[u8],
        queue: Option<&[u8]>,
        item: T,
    ) -> Result<(), SublistError> {
        check(subject, queue)?;
        let mut trie = self.trie.write();
        trie.insert(subject, queue, item);
        self.count.fetch_add(1, Ordering::Relaxed);
        self.inserts.fetch_add(1, Ordering::Relaxed);
        self.invalidate(subject);
        // Release after trie and cache are updated: a reader that sees the new
        // generation (Acquire) also sees the invalidated cache.
        self.generation.fetch_add(1, Ordering::Release);
        Ok(())
    }

    /// Removes one instance of `item` inserted with exactly this subject and queue.
    pub fn remove(
        &self,
        subject: &[u8],
        queue: Option<&[u8]>,
        item: &T,
    ) -> Result<(), SublistError> {
        check(subject, queue)?;
        let mut trie = self.trie.write();
        let removed = trie
            .remove(subject, queue, item)
            .ok_or(SublistError::NotFound)?;
        self.count.fetch_sub(1, Ordering::Relaxed);
        self.removes.fetch_add(1, Ordering::Relaxed);
        self.invalidate(subject);
        self.generation.fetch_add(1, Ordering::Release);
        drop(trie);
        // Drop the handle outside the lock: it may be the last reference to a
        // subscription whose destructor should not run under the sublist's write lock.
        drop(removed);
        Ok(())
    }

    /// Removes many subscriptions under one write lock (a closing connection's subs, a
    /// lost route's interest). Entries that are invalid or not found are skipped. Returns
    /// how many were removed.
    ///
    /// ```
    /// # use tern::sublist::Sublist;
    /// let sl = Sublist::new();
    /// sl.insert(b"foo", None, 1).unwrap();
    /// sl.insert(b"bar", Some(b"q"), 1).unwrap();
    /// let subs: Vec<(Vec<u8>, Option<Vec<u8>>, i32)> =
    ///     vec![(b"foo".to_vec(), None, 1), (b"bar".to_vec(), Some(b"q".to_vec()), 1)];
    /// let n = sl.remove_batch(subs.iter().map(|(s, q, i)| (&s[..], q.as_deref(), i)));
    /// assert_eq!(n, 2);
    /// ```
    pub fn remove_batch<'a, I>(&self, items: I) -> usize
    where
        I: IntoIterator<Item = (&'a [u8], Option<&'a [u8]>, &'a T)>,
        T: 'a,
    {
        let mut removed_items = Vec::new();
        let mut literal_subjects: Vec<&[u8]> = Vec::new();
        let mut wildcard_subjects: Vec<&[u8]> = Vec::new();
        let mut trie = self.trie.write();
        for (subject, queue, item) in items {
            if check(subject, queue).is_err() {
                continue;
            }
            if let Some(r) = trie.remove(subject, queue, item) {
                removed_items.push(r);
                if subject_has_wildcard(subject) {
                    wildcard_subjects.push(subject);
                } else {
                    literal_subjects.push(subject);
                }
            }
        }
        let n = removed_items.len();
        if n == 0 {
            return 0;
        }
        self.count.fetch_sub(n, Ordering::Relaxed);
        self.removes.fetch_add(n as u64, Ordering::Relaxed);
        if wildcard_subjects.len() > BATCH_CLEAR_WILDCARDS {
            self.clear_cache();
        } else {
            // Each subject matched by a removed subscription leaves the cache; a
            // repeated subject finds nothing the second time.
            for s in literal_subjects.iter().chain(&wildcard_subjects) {
                self.invalidate(s);
            }
        }
        self.generation.fetch_add(1, Ordering::Release);
        drop(trie);
        drop(removed_items);
        n
    }

    /// Everything that matches the publish `subject`.
    ///
    /// Meant for a literal subject, but like nats-server (not pedantic) a subject with
    /// wildcard tokens is matched token-wise: its `*`/`>` tokens only meet wildcard
    /// subscriptions. A subject with an empty token matches nothing.
    ///
    /// Callers caching results per connection read [`Sublist::generation`] *before*
    /// calling this and keep the result only while the generation is unchanged.
    #[inline]
    pub fn match_subject(&self, subject: &[u8]) -> Arc<SublistResult<T>> {
        self.matches.0.fetch_add(1, Ordering::Relaxed);
        if let Some(cache) = &self.cache {
            if let Some(hit) = cache.get(subject) {
                return Arc::clone(hit.value());
            }
        }
        self.match_miss(subject)
    }

    /// Cache miss: walk the trie under the read lock, fill the cache before releasing it.
    #[inline(never)]
    fn match_miss(&self, subject: &[u8]) -> Arc<SublistResult<T>> {
        self.misses.0.fetch_add(1, Ordering::Relaxed);
        // nats-server's match gives no interest (and caches nothing) for an empty token.
        if subject.is_empty() || tokens(subject).any(|t| t.is_empty()) {
            return Arc::clone(&self.empty);
        }
        let trie = self.trie.read();
        let mut acc = Acc::new();
        trie.match_into(subject, &mut acc);
        let result = if acc.psubs.is_empty() && acc.groups.is_empty() {
            Arc::clone(&self.empty)
        } else {
            let mut groups = acc.groups;
            // Sort by name: a stable order whatever the trie's shape or history.
            groups.sort_unstable_by(|a, b| a.0.cmp(b.0));
            Arc::new(SublistResult {
                psubs: acc.psubs,
                qsubs: groups.into_iter().map(|(_, members)| members).collect(),
            })
        };
        let mut over = false;
        if let Some(cache) = &self.cache {
            // Still under the read lock: no writer can change the trie between our walk
            // and this fill, so the entry is not stale (see the module doc).
            if cache.insert(subject.into(), Arc::clone(&result)).is_none() {
                over = self.cache_len.fetch_add(1, Ordering::Relaxed) + 1 > CACHE_MAX;
            }
        }
        drop(trie);
        if over {
            self.sweep();
        }
        result
    }

    /// Invalidates the cached subjects `subject` (a subscription subject) matches. Must be
    /// called with the trie's write lock held.
    fn invalidate(&self, subject: &[u8]) {
        let Some(cache) = &self.cache else { return };
        if subject_has_wildcard(subject) {
            let mut removed = 0;
            cache.retain(|k, _| {
                let hit = matches(subject, k);
                removed += usize::from(hit);
                !hit
            });
            self.cache_len.fetch_sub(removed, Ordering::Relaxed);
        } else if cache.remove(subject).is_some() {
            // A literal subscription can only match the identical publish subject (a
            // cached non-literal subject has a wildcard token that no literal equals).
            self.cache_len.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Drops every cache entry. Must be called with the trie's write lock held.
    fn clear_cache(&self) {
        let Some(cache) = &self.cache else { return };
        let mut removed = 0;
        // retain instead of clear so the count stays exact with a concurrent sweep.
        cache.retain(|_, _| {
            removed += 1;
            false
        });
        self.cache_len.fetch_sub(removed, Ordering::Relaxed);
    }

    /// Shrinks an over-full cache to about `CACHE_KEEP` random entries. Dropping entries
    /// is always safe for coherence, so this needs no trie lock.
    fn sweep(&self) {
        let Some(cache) = &self.cache else { return };
        if self.sweeping.swap(true, Ordering::Acquire) {
            return;
        }
        let len = self.cache_len.load(Ordering::Relaxed);
        if len > CACHE_MAX {
            // Keep each entry with probability KEEP/len: random like Go's map order
            // (which nats-server relies on), and fair across DashMap's shards.
            let threshold = (u64::from(u32::MAX) * CACHE_KEEP as u64 / len as u64) as u32;
            // xorshift64: only needs to be unpredictable enough to spread evictions.
            let mut x = self.matches.0.load(Ordering::Relaxed) | 1;
            let mut removed = 0;
            cache.retain(|_, _| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let keep = (x >> 32) as u32 <= threshold;
                removed += usize::from(!keep);
                keep
            });
            self.cache_len.fetch_sub(removed, Ordering::Relaxed);
        }
        self.sweeping.store(false, Ordering::Release);
    }

    /// Changes with every insert and remove (and once per non-empty batch). A result of
    /// [`Sublist::match_subject`] called after reading generation `g` stays valid while
    /// `generation() == g`.
    #[inline]
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Number of subscriptions.
    pub fn count(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    /// The /subsz counters. Fanout figures are over the currently cached results, as in
    /// nats-server.
    pub fn stats(&self) -> SublistStats {
        let num_matches = self.matches.0.load(Ordering::Relaxed);
        let misses = self.misses.0.load(Ordering::Relaxed);
        let hits = num_matches.saturating_sub(misses);
        let (mut num_cache, mut total, mut max) = (0u64, 0u64, 0u64);
        if let Some(cache) = &self.cache {
            for e in cache.iter() {
                let fanout = (e.psubs.len() + e.qsubs.len()) as u64;
                num_cache += 1;
                total += fanout;
                max = max.max(fanout);
            }
        }
        SublistStats {
            num_subscriptions: self.count() as u64,
            num_cache,
            num_inserts: self.inserts.load(Ordering::Relaxed),
            num_removes: self.removes.load(Ordering::Relaxed),
            num_matches,
            cache_hit_rate: if num_matches > 0 && self.cache.is_some() {
                hits as f64 / num_matches as f64
            } else {
                0.0
            },
            max_fanout: max,
            avg_fanout: if num_cache > 0 {
                total as f64 / num_cache as f64
            } else {
                0.0
            },
        }
    }

    /// Every subscription as `(subject, queue, item)`, in no particular order (sort it for
    /// stable paging). Holds the read lock for the walk: meant for monitoring and for
    /// dumping interest to a new route, not for the hot path.
    pub fn all(&self) -> Vec<SubEntry<T>> {
        let trie = self.trie.read();
        let mut out = Vec::with_capacity(self.count());
        trie.collect(&mut Vec::new(), &mut out);
        out
    }
}

fn check(subject: &[u8], queue: Option<&[u8]>) -> Result<(), SublistError> {
    if is_valid_subject(subject) && queue.is_none_or(is_valid_queue_name) {
        Ok(())
    } else {
        Err(SublistError::InvalidSubject)
    }
}
