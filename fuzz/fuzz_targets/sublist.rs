//! Fuzz the sublist against the brute-force oracle `subject::matches`.
//!
//! Arbitrary sequences of insert / remove / batch remove / match run on a cached and an
//! uncached sublist; every match must equal the oracle over the live set (as multisets,
//! queue groups by name), inserts must succeed exactly for valid subjects, and removes of
//! absent entries must report NotFound. Subjects come mostly from a tiny token alphabet
//! (so subscriptions overlap) and sometimes from raw bytes (to reach validation).
#![no_main]

use std::collections::BTreeMap;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use tern::subject::{is_valid_queue_name, is_valid_subject, matches};
use tern::sublist::{Sublist, SublistError, SublistResult};

#[derive(Debug, Arbitrary)]
enum Subject {
    /// Token codes mapped onto a small alphabet with wildcards.
    Tokens(Vec<u8>),
    /// Anything at all, to exercise validation and empty tokens.
    Raw(Vec<u8>),
}

impl Subject {
    fn bytes(&self) -> Vec<u8> {
        match self {
            Subject::Raw(b) => b.clone(),
            Subject::Tokens(codes) => {
                const ALPHABET: [&str; 8] = ["a", "b", "c", "*", ">", "a*", "", "d"];
                let toks: Vec<&str> = codes
                    .iter()
                    .take(6)
                    .map(|c| ALPHABET[usize::from(*c) % ALPHABET.len()])
                    .collect();
                toks.join(".").into_bytes()
            }
        }
    }
}

#[derive(Debug, Arbitrary)]
enum Op {
    Insert(Subject, Option<u8>, u8),
    Remove(u16),
    RemoveAbsent(Subject, Option<u8>, u8),
    RemoveBatch(Vec<u16>),
    Match(Subject),
}

fn queue_name(q: Option<u8>) -> Option<Vec<u8>> {
    // Mostly valid names; code 3 gives an invalid one (with a space).
    q.map(|c| match c % 4 {
        0 => b"q1".to_vec(),
        1 => b"q2".to_vec(),
        2 => b"q.*".to_vec(),
        _ => b"bad q".to_vec(),
    })
}

type Live = Vec<(Vec<u8>, Option<Vec<u8>>, u8)>;

fn sorted(mut v: Vec<u8>) -> Vec<u8> {
    v.sort_unstable();
    v
}

fn norm(r: &SublistResult<u8>) -> (Vec<u8>, Vec<Vec<u8>>) {
    (
        sorted(r.psubs.clone()),
        r.qsubs.iter().map(|g| sorted(g.clone())).collect(),
    )
}

fn oracle(live: &Live, subject: &[u8]) -> (Vec<u8>, Vec<Vec<u8>>) {
    let mut psubs = Vec::new();
    let mut groups: BTreeMap<&[u8], Vec<u8>> = BTreeMap::new();
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

fuzz_target!(|ops: Vec<Op>| {
    let lists = [Sublist::<u8>::new(), Sublist::<u8>::no_cache()];
    let mut live: Live = Vec::new();
    for op in ops.iter().take(256) {
        match op {
            Op::Insert(s, q, id) => {
                let (s, q) = (s.bytes(), queue_name(*q));
                let valid = is_valid_subject(&s) && q.as_deref().is_none_or(is_valid_queue_name);
                for sl in &lists {
                    let r = sl.insert(&s, q.as_deref(), *id);
                    assert_eq!(r.is_ok(), valid, "insert {s:?} {q:?}");
                }
                if valid {
                    live.push((s, q, *id));
                }
            }
            Op::Remove(i) => {
                if !live.is_empty() {
                    let (s, q, id) = live.swap_remove(usize::from(*i) % live.len());
                    for sl in &lists {
                        sl.remove(&s, q.as_deref(), &id).expect("live entry");
                    }
                }
            }
            Op::RemoveAbsent(s, q, id) => {
                let (s, q) = (s.bytes(), queue_name(*q));
                let valid = is_valid_subject(&s) && q.as_deref().is_none_or(is_valid_queue_name);
                let pos = live.iter().position(|e| e.0 == s && e.1 == q && e.2 == *id);
                for sl in &lists {
                    let r = sl.remove(&s, q.as_deref(), id);
                    match (valid, pos) {
                        (false, _) => assert!(matches!(r, Err(SublistError::InvalidSubject))),
                        (true, Some(_)) => assert!(r.is_ok()),
                        (true, None) => assert!(matches!(r, Err(SublistError::NotFound))),
                    }
                }
                if let Some(p) = pos {
                    live.swap_remove(p);
                }
            }
            Op::RemoveBatch(idx) => {
                let mut batch = Vec::new();
                for i in idx {
                    if !live.is_empty() {
                        batch.push(live.swap_remove(usize::from(*i) % live.len()));
                    }
                }
                for sl in &lists {
                    let n =
                        sl.remove_batch(batch.iter().map(|(s, q, i)| (&s[..], q.as_deref(), i)));
                    assert_eq!(n, batch.len());
                }
            }
            Op::Match(s) => {
                let s = s.bytes();
                let want = oracle(&live, &s);
                for sl in &lists {
                    assert_eq!(norm(&sl.match_subject(&s)), want, "match {s:?}");
                }
            }
        }
        for sl in &lists {
            assert_eq!(sl.count(), live.len());
        }
    }
    for sl in &lists {
        let mut all = sl.all();
        all.sort();
        let mut want = live.clone();
        want.sort();
        assert_eq!(all, want);
    }
});
