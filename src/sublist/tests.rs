//! Sublist tests: classic cases, cache coherence, and a proptest against the brute-force
//! `subject::matches` oracle.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use proptest::prelude::*;

use super::*;

fn sorted(mut v: Vec<u32>) -> Vec<u32> {
    v.sort_unstable();
    v
}

/// psubs sorted, and each queue group sorted (groups are already in name order).
fn norm(r: &SublistResult<u32>) -> (Vec<u32>, Vec<Vec<u32>>) {
    (
        sorted(r.psubs.clone()),
        r.qsubs.iter().map(|g| sorted(g.clone())).collect(),
    )
}

fn m(sl: &Sublist<u32>, subject: &str) -> (Vec<u32>, Vec<Vec<u32>>) {
    norm(&sl.match_subject(subject.as_bytes()))
}

fn plain(sl: &Sublist<u32>, subject: &str) -> Vec<u32> {
    let (p, q) = m(sl, subject);
    assert!(q.is_empty(), "unexpected queue subs for {subject}");
    p
}

fn both() -> [Sublist<u32>; 2] {
    [Sublist::new(), Sublist::no_cache()]
}

#[test]
fn literal_match() {
    for sl in both() {
        sl.insert(b"foo.bar", None, 1).unwrap();
        assert_eq!(plain(&sl, "foo.bar"), vec![1]);
        assert_eq!(plain(&sl, "foo"), Vec::<u32>::new());
        assert_eq!(plain(&sl, "foo.bar.baz"), Vec::<u32>::new());
        assert_eq!(plain(&sl, "foo.baz"), Vec::<u32>::new());
        assert_eq!(sl.count(), 1);
    }
}

#[test]
fn partial_wildcard() {
    for sl in both() {
        sl.insert(b"foo.*", None, 1).unwrap();
        sl.insert(b"*.bar", None, 2).unwrap();
        sl.insert(b"*", None, 3).unwrap();
        sl.insert(b"foo.*.baz", None, 4).unwrap();
        assert_eq!(plain(&sl, "foo.bar"), vec![1, 2]);
        assert_eq!(plain(&sl, "foo.baz"), vec![1]);
        assert_eq!(plain(&sl, "x.bar"), vec![2]);
        assert_eq!(plain(&sl, "foo"), vec![3]);
        assert_eq!(plain(&sl, "foo.x.baz"), vec![4]);
        assert_eq!(plain(&sl, "foo.x.y"), Vec::<u32>::new());
    }
}

#[test]
fn full_wildcard() {
    for sl in both() {
        sl.insert(b"foo.>", None, 1).unwrap();
        sl.insert(b">", None, 2).unwrap();
        sl.insert(b"foo.*.>", None, 3).unwrap();
        // `foo.>` needs at least one more token.
        assert_eq!(plain(&sl, "foo"), vec![2]);
        assert_eq!(plain(&sl, "foo.bar"), vec![1, 2]);
        assert_eq!(plain(&sl, "foo.bar.baz"), vec![1, 2, 3]);
        assert_eq!(plain(&sl, "bar.baz.x.y"), vec![2]);
    }
}

#[test]
fn non_literal_publish_subject_matches_token_wise() {
    for sl in both() {
        sl.insert(b"foo.bar", None, 1).unwrap();
        sl.insert(b"foo.*", None, 2).unwrap();
        sl.insert(b"foo.>", None, 3).unwrap();
        sl.insert(b"*.*", None, 4).unwrap();
        assert_eq!(plain(&sl, "foo.*"), vec![2, 3, 4]);
        assert_eq!(plain(&sl, "foo.>"), vec![2, 3, 4]);
        assert_eq!(plain(&sl, "*.bar"), vec![4]);
    }
}

#[test]
fn empty_tokens_in_publish_subject_match_nothing() {
    for sl in both() {
        sl.insert(b">", None, 1).unwrap();
        for s in ["", ".", "foo.", ".foo", "foo..bar"] {
            assert!(sl.match_subject(s.as_bytes()).is_empty(), "{s:?}");
        }
        assert_eq!(sl.stats().num_cache, 0);
    }
}

#[test]
fn queue_groups() {
    for sl in both() {
        sl.insert(b"foo.bar", Some(b"q1"), 1).unwrap();
        sl.insert(b"foo.bar", Some(b"q1"), 2).unwrap();
        sl.insert(b"foo.*", Some(b"q1"), 3).unwrap();
        sl.insert(b"foo.bar", Some(b"q2"), 4).unwrap();
        sl.insert(b"foo.>", Some(b"a0"), 5).unwrap();
        sl.insert(b"foo.bar", None, 6).unwrap();
        // Groups merge across subjects by name and come sorted by name.
        assert_eq!(
            m(&sl, "foo.bar"),
            (vec![6], vec![vec![5], vec![1, 2, 3], vec![4]])
        );
        assert_eq!(m(&sl, "foo.baz"), (vec![], vec![vec![5], vec![3]]));
        sl.remove(b"foo.bar", Some(b"q2"), &4).unwrap();
        assert_eq!(m(&sl, "foo.bar"), (vec![6], vec![vec![5], vec![1, 2, 3]]));
        // A queue sub is removed only with its queue name.
        assert_eq!(sl.remove(b"foo.bar", None, &1), Err(SublistError::NotFound));
        assert_eq!(
            sl.remove(b"foo.bar", Some(b"q2"), &1),
            Err(SublistError::NotFound)
        );
        sl.remove(b"foo.bar", Some(b"q1"), &1).unwrap();
        assert_eq!(m(&sl, "foo.bar"), (vec![6], vec![vec![5], vec![2, 3]]));
    }
}

#[test]
fn removal_and_pruning() {
    for sl in both() {
        sl.insert(b"a.b.c", None, 1).unwrap();
        sl.insert(b"a.*.c", None, 2).unwrap();
        sl.insert(b"a.>", None, 3).unwrap();
        sl.remove(b"a.b.c", None, &1).unwrap();
        assert_eq!(plain(&sl, "a.b.c"), vec![2, 3]);
        assert_eq!(sl.remove(b"a.b.c", None, &1), Err(SublistError::NotFound));
        assert_eq!(sl.remove(b"a.b", None, &3), Err(SublistError::NotFound));
        assert_eq!(sl.remove(b"x.y", None, &3), Err(SublistError::NotFound));
        sl.remove(b"a.*.c", None, &2).unwrap();
        sl.remove(b"a.>", None, &3).unwrap();
        assert_eq!(sl.count(), 0);
        assert!(sl.trie.read().is_empty(), "empty nodes must be pruned");
        assert!(sl.all().is_empty());
    }
}

#[test]
fn duplicates_are_a_multiset() {
    let sl = Sublist::new();
    sl.insert(b"foo", None, 7).unwrap();
    sl.insert(b"foo", None, 7).unwrap();
    assert_eq!(plain(&sl, "foo"), vec![7, 7]);
    sl.remove(b"foo", None, &7).unwrap();
    assert_eq!(plain(&sl, "foo"), vec![7]);
    assert_eq!(sl.count(), 1);
}

#[test]
fn invalid_subjects_rejected() {
    let sl = Sublist::new();
    for s in [
        "",
        "foo..bar",
        "foo.>.bar",
        ".foo",
        "foo.",
        ">.foo",
        "foo bar",
        "foo\tbar",
        "foo\n",
    ] {
        assert_eq!(
            sl.insert(s.as_bytes(), None, 1),
            Err(SublistError::InvalidSubject),
            "{s:?}"
        );
        assert_eq!(
            sl.remove(s.as_bytes(), None, &1),
            Err(SublistError::InvalidSubject),
            "{s:?}"
        );
    }
    for q in ["", "a b", "a\r"] {
        assert_eq!(
            sl.insert(b"foo", Some(q.as_bytes()), 1),
            Err(SublistError::InvalidSubject),
            "{q:?}"
        );
    }
    assert_eq!(sl.count(), 0);
    assert_eq!(sl.generation(), 0);
    assert_eq!(sl.stats().num_inserts, 0);
}

#[test]
fn cache_invalidated_on_insert_and_remove() {
    let sl = Sublist::new();
    sl.insert(b"foo.bar", None, 1).unwrap();
    assert_eq!(plain(&sl, "foo.bar"), vec![1]);
    assert_eq!(plain(&sl, "foo.baz"), Vec::<u32>::new());
    assert_eq!(plain(&sl, "other"), Vec::<u32>::new());
    assert_eq!(sl.stats().num_cache, 3);
    // Cached hits return the very same Arc.
    assert!(Arc::ptr_eq(
        &sl.match_subject(b"foo.bar"),
        &sl.match_subject(b"foo.bar")
    ));

    // A literal insert invalidates only its own subject.
    sl.insert(b"foo.bar", None, 2).unwrap();
    assert_eq!(sl.stats().num_cache, 2);
    assert_eq!(plain(&sl, "foo.bar"), vec![1, 2]);

    // A wildcard insert invalidates every cached subject it matches.
    sl.insert(b"foo.*", None, 3).unwrap();
    assert_eq!(sl.stats().num_cache, 1, "only `other` survives");
    assert_eq!(plain(&sl, "foo.bar"), vec![1, 2, 3]);
    assert_eq!(plain(&sl, "foo.baz"), vec![3]);
    assert_eq!(plain(&sl, "other"), Vec::<u32>::new());

    sl.remove(b"foo.*", None, &3).unwrap();
    assert_eq!(plain(&sl, "foo.bar"), vec![1, 2]);
    assert_eq!(plain(&sl, "foo.baz"), Vec::<u32>::new());

    sl.remove(b"foo.bar", None, &1).unwrap();
    assert_eq!(plain(&sl, "foo.bar"), vec![2]);

    // Queue subscriptions invalidate too.
    sl.insert(b">", Some(b"q"), 9).unwrap();
    assert_eq!(m(&sl, "foo.bar"), (vec![2], vec![vec![9]]));
    sl.remove(b">", Some(b"q"), &9).unwrap();
    assert_eq!(m(&sl, "foo.bar"), (vec![2], vec![]));
}

#[test]
fn remove_batch_removes_and_invalidates() {
    let sl = Sublist::new();
    let mut subs: Vec<(Vec<u8>, Option<Vec<u8>>, u32)> = Vec::new();
    for i in 0..20u32 {
        let subj = if i % 2 == 0 {
            format!("a.{i}")
        } else {
            format!("a.*.{i}")
        };
        let q = (i % 3 == 0).then(|| b"q".to_vec());
        sl.insert(subj.as_bytes(), q.as_deref(), i).unwrap();
        subs.push((subj.into_bytes(), q, i));
    }
    sl.insert(b"a.>", None, 100).unwrap();
    for i in 0..20 {
        sl.match_subject(format!("a.{i}").as_bytes());
        sl.match_subject(format!("a.x.{i}").as_bytes());
    }
    let g = sl.generation();
    // A bogus entry and a missing one are skipped.
    let bogus: (Vec<u8>, Option<Vec<u8>>, u32) = (b"a..b".to_vec(), None, 1);
    let missing: (Vec<u8>, Option<Vec<u8>>, u32) = (b"zzz".to_vec(), None, 1);
    let n = sl.remove_batch(
        subs.iter()
            .chain([&bogus, &missing])
            .map(|(s, q, i)| (&s[..], q.as_deref(), i)),
    );
    assert_eq!(n, 20);
    assert_eq!(sl.count(), 1);
    assert!(sl.generation() > g);
    for i in 0..20 {
        assert_eq!(plain(&sl, &format!("a.{i}")), vec![100]);
        assert_eq!(plain(&sl, &format!("a.x.{i}")), vec![100]);
    }
    assert_eq!(sl.remove_batch(std::iter::empty()), 0);
}

#[test]
fn generation_bumps_on_changes_only() {
    let sl = Sublist::new();
    let g0 = sl.generation();
    sl.insert(b"foo", None, 1).unwrap();
    let g1 = sl.generation();
    assert!(g1 > g0);
    sl.match_subject(b"foo");
    assert_eq!(sl.generation(), g1);
    let _ = sl.remove(b"foo", None, &2);
    assert_eq!(sl.generation(), g1, "a failed remove changes nothing");
    sl.remove(b"foo", None, &1).unwrap();
    assert!(sl.generation() > g1);
}

#[test]
fn stats_counters() {
    let sl = Sublist::new();
    sl.insert(b"foo", None, 1).unwrap();
    sl.insert(b"foo", Some(b"q"), 2).unwrap();
    sl.insert(b"bar", None, 3).unwrap();
    sl.remove(b"bar", None, &3).unwrap();
    sl.match_subject(b"foo"); // miss
    sl.match_subject(b"foo"); // hit
    sl.match_subject(b"foo"); // hit
    sl.match_subject(b"bar"); // miss, empty
    let st = sl.stats();
    assert_eq!(st.num_subscriptions, 2);
    assert_eq!(st.num_inserts, 3);
    assert_eq!(st.num_removes, 1);
    assert_eq!(st.num_matches, 4);
    assert_eq!(st.num_cache, 2);
    assert!((st.cache_hit_rate - 0.5).abs() < 1e-9);
    assert_eq!(st.max_fanout, 2);
    assert!((st.avg_fanout - 1.0).abs() < 1e-9);
}

#[test]
fn cache_is_bounded() {
    let sl = Sublist::new();
    sl.insert(b"x.>", None, 1).unwrap();
    for i in 0..5000 {
        let r = sl.match_subject(format!("x.{i}").as_bytes());
        assert_eq!(r.psubs, vec![1]);
    }
    let st = sl.stats();
    assert!(st.num_cache as usize <= CACHE_MAX, "{}", st.num_cache);
    assert!(st.num_cache > 0);
    assert_eq!(sl.cache_len.load(Ordering::Relaxed) as u64, st.num_cache);
}

#[test]
fn all_lists_every_subscription() {
    let sl = Sublist::new();
    let want = vec![
        (b"a".to_vec(), None, 1),
        (b"a.b".to_vec(), Some(b"q".to_vec()), 2),
        (b"a.*".to_vec(), None, 3),
        (b"a.>".to_vec(), Some(b"q".to_vec()), 4),
        (b">".to_vec(), None, 5),
        (b"*.b.c".to_vec(), None, 6),
        (b"a.b".to_vec(), None, 7),
    ];
    for (s, q, i) in &want {
        sl.insert(s, q.as_deref(), *i).unwrap();
    }
    let mut got = sl.all();
    got.sort();
    let mut want = want;
    want.sort();
    assert_eq!(got, want);
}

#[test]
fn sublist_is_send_and_sync() {
    fn assert_send_sync<S: Send + Sync>() {}
    assert_send_sync::<Sublist<Arc<String>>>();
    assert_send_sync::<Arc<SublistResult<Arc<String>>>>();
}

/// Readers keep filling the cache while a writer changes interest in the same subject;
/// after each change returns, the writer's own match must see it. A fill that raced the
/// change and left a stale entry would fail this.
#[test]
fn concurrent_matches_never_see_stale_results_after_change() {
    let sl = Arc::new(Sublist::new());
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let sl = Arc::clone(&sl);
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    sl.match_subject(b"foo.bar");
                    sl.match_subject(b"foo.baz");
                }
            })
        })
        .collect();
    for i in 0..2000u32 {
        let (subj, q): (&[u8], Option<&[u8]>) = match i % 3 {
            0 => (b"foo.bar", None),
            1 => (b"foo.*", None),
            _ => (b"foo.>", Some(b"q")),
        };
        sl.insert(subj, q, i).unwrap();
        let r = sl.match_subject(b"foo.bar");
        let found = r.psubs.contains(&i) || r.qsubs.iter().any(|g| g.contains(&i));
        assert!(found, "insert of {i} not visible");
        sl.remove(subj, q, &i).unwrap();
        let r = sl.match_subject(b"foo.bar");
        assert!(r.is_empty(), "remove of {i} not visible");
    }
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        r.join().unwrap();
    }
}

// ---- property test against the brute-force oracle ----

type Live = Vec<(Vec<u8>, Option<Vec<u8>>, u32)>;

/// What `subject::matches` over the live set says a match must return, normalized like
/// [`norm`].
fn oracle(live: &Live, subject: &[u8]) -> (Vec<u32>, Vec<Vec<u32>>) {
    let mut psubs = Vec::new();
    let mut groups: BTreeMap<&[u8], Vec<u32>> = BTreeMap::new();
    for (pat, q, id) in live {
        if matches(pat, subject) {
            match q {
                None => psubs.push(*id),
                Some(q) => groups.entry(q).or_default().push(*id),
            }
        }
    }
    (sorted(psubs), groups.into_values().map(sorted).collect())
}

#[derive(Debug, Clone)]
enum Op {
    Insert(Vec<u8>, Option<Vec<u8>>, u32),
    /// Remove the live entry at this index (modulo the live count).
    Remove(usize),
    /// Remove something most likely absent: must be NotFound unless it is live.
    RemoveAbsent(Vec<u8>, Option<Vec<u8>>, u32),
    /// Remove several live entries at once (indices modulo the live count).
    RemoveBatch(Vec<usize>),
    Match(Vec<u8>),
}

/// Subscription subjects over a tiny alphabet so that subjects collide and overlap.
fn sub_subject() -> impl Strategy<Value = Vec<u8>> {
    let tok = prop_oneof![
        3 => Just("a"), 3 => Just("b"), 1 => Just("c"), 3 => Just("*"),
    ];
    (prop::collection::vec(tok, 1..4), any::<bool>()).prop_map(|(toks, fwc)| {
        let mut s = toks.join(".");
        if fwc {
            s.push_str(".>");
        }
        // Sometimes the whole subject is just `>`.
        if s == "c.>" {
            s = ">".into();
        }
        s.into_bytes()
    })
}

/// Publish subjects: mostly literal, sometimes with wildcard tokens (matched token-wise)
/// or an empty token (matches nothing).
fn pub_subject() -> impl Strategy<Value = Vec<u8>> {
    let tok = prop_oneof![
        4 => Just("a"), 4 => Just("b"), 2 => Just("c"), 1 => Just("d"),
        1 => Just("*"), 1 => Just(">"), 1 => Just(""),
    ];
    prop::collection::vec(tok, 1..6).prop_map(|t| t.join(".").into_bytes())
}

fn queue() -> impl Strategy<Value = Option<Vec<u8>>> {
    prop_oneof![
        3 => Just(None),
        1 => Just(Some(b"q1".to_vec())),
        1 => Just(Some(b"q2".to_vec())),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (sub_subject(), queue(), 0..8u32).prop_map(|(s, q, i)| Op::Insert(s, q, i)),
        2 => any::<usize>().prop_map(Op::Remove),
        1 => (sub_subject(), queue(), 0..8u32).prop_map(|(s, q, i)| Op::RemoveAbsent(s, q, i)),
        1 => prop::collection::vec(any::<usize>(), 0..4).prop_map(Op::RemoveBatch),
        6 => pub_subject().prop_map(Op::Match),
    ]
}

fn live_index(live: &Live, i: usize) -> Option<usize> {
    (!live.is_empty()).then(|| i % live.len())
}

fn run_ops(sl: &Sublist<u32>, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let mut live: Live = Vec::new();
    for op in ops {
        let g = sl.generation();
        match op {
            Op::Insert(s, q, i) => {
                sl.insert(&s, q.as_deref(), i).unwrap();
                prop_assert!(sl.generation() > g);
                live.push((s, q, i));
            }
            Op::Remove(i) => {
                if let Some(i) = live_index(&live, i) {
                    let (s, q, id) = live.swap_remove(i);
                    prop_assert_eq!(sl.remove(&s, q.as_deref(), &id), Ok(()));
                    prop_assert!(sl.generation() > g);
                }
            }
            Op::RemoveAbsent(s, q, id) => {
                let pos = live.iter().position(|e| *e == (s.clone(), q.clone(), id));
                let r = sl.remove(&s, q.as_deref(), &id);
                match pos {
                    Some(p) => {
                        prop_assert_eq!(r, Ok(()));
                        live.swap_remove(p);
                    }
                    None => {
                        prop_assert_eq!(r, Err(SublistError::NotFound));
                        prop_assert_eq!(sl.generation(), g);
                    }
                }
            }
            Op::RemoveBatch(idx) => {
                let mut batch = Vec::new();
                for i in idx {
                    if let Some(i) = live_index(&live, i) {
                        batch.push(live.swap_remove(i));
                    }
                }
                let n = sl.remove_batch(batch.iter().map(|(s, q, i)| (&s[..], q.as_deref(), i)));
                prop_assert_eq!(n, batch.len());
            }
            Op::Match(s) => {
                let got = norm(&sl.match_subject(&s));
                prop_assert_eq!(
                    got,
                    oracle(&live, &s),
                    "subject {:?}",
                    String::from_utf8_lossy(&s)
                );
            }
        }
        prop_assert_eq!(sl.count(), live.len());
    }
    let mut all = sl.all();
    all.sort();
    live.sort();
    prop_assert_eq!(all, live);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn prop_matches_oracle_cached(ops in prop::collection::vec(op(), 1..120)) {
        run_ops(&Sublist::new(), ops)?;
    }

    #[test]
    fn prop_matches_oracle_uncached(ops in prop::collection::vec(op(), 1..120)) {
        run_ops(&Sublist::no_cache(), ops)?;
    }
}
