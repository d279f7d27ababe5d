//! The token trie behind [`super::Sublist`]: levels of literal children plus separate `*`
//! and `>` children, with plain and queue subscriptions stored at the node where a
//! subscription subject ends.
//!
//! Not thread-safe by itself and knows nothing about the match cache or counters: the
//! `Sublist` wraps it in a `RwLock` and keeps the cache coherent. Callers pass subjects
//! that were already validated (`insert`/`remove`) or checked for empty tokens (`match`).

use hashbrown::HashMap;
use memchr::memchr;

use super::SubEntry;
use crate::subject::{FWC, PWC, TSEP};

/// Splits off the first token: `(token, rest after the '.')`; `rest` is `None` for the
/// last token.
#[inline]
fn split_token(s: &[u8]) -> (&[u8], Option<&[u8]>) {
    match memchr(TSEP, s) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    }
}

/// One level of the trie: the children for one token position.
pub(super) struct Level<T> {
    /// Literal tokens. hashbrown's default hasher (foldhash) is fast on short byte keys.
    nodes: HashMap<Box<[u8]>, Node<T>>,
    /// The `*` child, kept apart so matching never has to scan literal keys.
    pwc: Option<Box<Node<T>>>,
    /// The `>` child; it never has a `next` level because `>` must be last.
    fwc: Option<Box<Node<T>>>,
}

/// Where subscription subjects end, and the way down to longer ones.
pub(super) struct Node<T> {
    next: Option<Box<Level<T>>>,
    /// Plain subscriptions. A Vec, not a set: `T` is only `PartialEq` (pointer equality in
    /// tern), and a Vec is the cheapest to clone into match results. Duplicates are kept
    /// (multiset), so a caller may insert the same handle twice and remove it twice.
    psubs: Vec<T>,
    /// Queue subscriptions grouped by queue name, in first-insert order.
    qsubs: Vec<QueueGroup<T>>,
}

struct QueueGroup<T> {
    name: Box<[u8]>,
    members: Vec<T>,
}

// Manual impls: derive would demand `T: Default`.
impl<T> Default for Level<T> {
    fn default() -> Self {
        Level {
            nodes: HashMap::default(),
            pwc: None,
            fwc: None,
        }
    }
}

impl<T> Default for Node<T> {
    fn default() -> Self {
        Node {
            next: None,
            psubs: Vec::new(),
            qsubs: Vec::new(),
        }
    }
}

impl<T> Node<T> {
    fn is_empty(&self) -> bool {
        self.next.is_none() && self.psubs.is_empty() && self.qsubs.is_empty()
    }
}

/// Match results under construction, borrowing queue names from the trie so grouping
/// does not allocate names.
pub(super) struct Acc<'a, T> {
    pub(super) psubs: Vec<T>,
    pub(super) groups: Vec<(&'a [u8], Vec<T>)>,
}

impl<'a, T: Clone> Acc<'a, T> {
    pub(super) fn new() -> Self {
        Acc {
            psubs: Vec::new(),
            groups: Vec::new(),
        }
    }

    fn add_node(&mut self, n: &'a Node<T>) {
        self.psubs.extend_from_slice(&n.psubs);
        for g in &n.qsubs {
            // Groups with one name from different nodes (`foo.*` and `foo.bar` both in
            // queue `q`) form one group: one delivery per queue name per message. The list
            // of groups is short, so a linear scan beats hashing.
            match self.groups.iter_mut().find(|(name, _)| *name == &*g.name) {
                Some((_, members)) => members.extend_from_slice(&g.members),
                None => self.groups.push((&g.name, g.members.clone())),
            }
        }
    }
}

impl<T> Level<T> {
    pub(super) fn is_empty(&self) -> bool {
        self.nodes.is_empty() && self.pwc.is_none() && self.fwc.is_none()
    }

    fn child_mut_or_insert(&mut self, tok: &[u8]) -> &mut Node<T> {
        match tok {
            [PWC] => self.pwc.get_or_insert_with(Box::default),
            [FWC] => self.fwc.get_or_insert_with(Box::default),
            // entry_ref allocates the key only when the token is new.
            _ => self.nodes.entry_ref(tok).or_default(),
        }
    }

    fn child_mut(&mut self, tok: &[u8]) -> Option<&mut Node<T>> {
        match tok {
            [PWC] => self.pwc.as_deref_mut(),
            [FWC] => self.fwc.as_deref_mut(),
            _ => self.nodes.get_mut(tok),
        }
    }

    fn remove_child(&mut self, tok: &[u8]) {
        match tok {
            [PWC] => self.pwc = None,
            [FWC] => self.fwc = None,
            _ => {
                self.nodes.remove(tok);
                // Give memory back after churn (e.g. millions of `_INBOX.x` subs came and
                // went); only when mostly empty so the cost stays amortized.
                let cap = self.nodes.capacity();
                if cap > 64 && self.nodes.len() * 4 < cap {
                    self.nodes.shrink_to(self.nodes.len() * 2);
                }
            }
        }
    }

    /// Adds `item` under a valid `subject`.
    pub(super) fn insert(&mut self, subject: &[u8], queue: Option<&[u8]>, item: T) {
        let mut level = self;
        let mut rest = subject;
        loop {
            let (tok, next) = split_token(rest);
            let node = level.child_mut_or_insert(tok);
            match next {
                Some(r) => {
                    level = node.next.get_or_insert_with(Box::default);
                    rest = r;
                }
                None => {
                    match queue {
                        None => node.psubs.push(item),
                        Some(q) => match node.qsubs.iter_mut().find(|g| &*g.name == q) {
                            Some(g) => g.members.push(item),
                            None => node.qsubs.push(QueueGroup {
                                name: q.into(),
                                members: vec![item],
                            }),
                        },
                    }
                    return;
                }
            }
        }
    }

    /// Removes one instance of `item` stored under `subject` (and `queue`), pruning nodes
    /// and levels left empty. Returns the removed value, `None` if it was not there.
    ///
    /// Recursive so each level can prune its child on the way back up; depth is the token
    /// count of a subject that was accepted by `insert`, bounded by the control line size.
    pub(super) fn remove(&mut self, subject: &[u8], queue: Option<&[u8]>, item: &T) -> Option<T>
    where
        T: PartialEq,
    {
        let (tok, next) = split_token(subject);
        let node = self.child_mut(tok)?;
        let removed = match next {
            Some(rest) => {
                let child = node.next.as_deref_mut()?;
                let removed = child.remove(rest, queue, item)?;
                if child.is_empty() {
                    node.next = None;
                }
                removed
            }
            None => match queue {
                None => {
                    let i = node.psubs.iter().position(|s| s == item)?;
                    // Order of plain subs does not matter for delivery.
                    node.psubs.swap_remove(i)
                }
                Some(q) => {
                    let gi = node.qsubs.iter().position(|g| &*g.name == q)?;
                    let g = &mut node.qsubs[gi];
                    let i = g.members.iter().position(|s| s == item)?;
                    let removed = g.members.swap_remove(i);
                    if g.members.is_empty() {
                        // `remove`, not `swap_remove`: keep the groups' order stable.
                        node.qsubs.remove(gi);
                    }
                    removed
                }
            },
        };
        if node.is_empty() {
            self.remove_child(tok);
        }
        Some(removed)
    }

    /// Adds every subscription matching `subject` to `acc`. `subject` must have no empty
    /// token; its tokens are taken literally (a `*` token in a publish subject only meets
    /// wildcard subscriptions, like nats-server's matchLevel).
    pub(super) fn match_into<'a>(&'a self, subject: &[u8], acc: &mut Acc<'a, T>)
    where
        T: Clone,
    {
        let mut level = self;
        let mut rest = subject;
        loop {
            let (tok, next) = split_token(rest);
            // `>` here matches this token and everything after it.
            if let Some(fwc) = &level.fwc {
                acc.add_node(fwc);
            }
            if let Some(pwc) = &level.pwc {
                match next {
                    None => acc.add_node(pwc),
                    // Branch: recursion only for `*` levels, the literal path loops.
                    Some(r) => {
                        if let Some(l) = &pwc.next {
                            l.match_into(r, acc);
                        }
                    }
                }
            }
            let Some(node) = level.nodes.get(tok) else {
                return;
            };
            match next {
                None => {
                    acc.add_node(node);
                    return;
                }
                Some(r) => match &node.next {
                    Some(l) => {
                        level = l;
                        rest = r;
                    }
                    None => return,
                },
            }
        }
    }

    /// Appends `(subject, queue, item)` for every stored subscription, in no particular
    /// order. `prefix` holds the subject of this level (empty at the root).
    pub(super) fn collect(&self, prefix: &mut Vec<u8>, out: &mut Vec<SubEntry<T>>)
    where
        T: Clone,
    {
        let literal = self.nodes.iter().map(|(k, n)| (&**k, n));
        let pwc = self.pwc.as_deref().map(|n| (&[PWC][..], n));
        let fwc = self.fwc.as_deref().map(|n| (&[FWC][..], n));
        for (tok, node) in literal.chain(pwc).chain(fwc) {
            let len = prefix.len();
            if len > 0 {
                prefix.push(TSEP);
            }
            prefix.extend_from_slice(tok);
            for s in &node.psubs {
                out.push((prefix.clone(), None, s.clone()));
            }
            for g in &node.qsubs {
                for s in &g.members {
                    out.push((prefix.clone(), Some(g.name.to_vec()), s.clone()));
                }
            }
            if let Some(next) = &node.next {
                next.collect(prefix, out);
            }
            prefix.truncate(len);
        }
    }
}
