//! Sublist (temporary brute-force version; replaced by the trie).
use parking_lot::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

pub struct SublistResult<T> {
    pub psubs: Vec<T>,
    pub qsubs: Vec<Vec<T>>,
}

#[derive(Debug, thiserror::Error)]
pub enum SublistError {
    #[error("invalid subject")]
    InvalidSubject,
    #[error("not found")]
    NotFound,
}

#[derive(Debug, Default, Clone)]
pub struct SublistStats {
    pub num_subscriptions: u64,
    pub num_cache: u64,
    pub num_inserts: u64,
    pub num_removes: u64,
    pub num_matches: u64,
    pub cache_hit_rate: f64,
    pub max_fanout: u64,
    pub avg_fanout: f64,
}

type Entry<T> = (Vec<u8>, Option<Vec<u8>>, T);

pub struct Sublist<T> {
    subs: RwLock<Vec<Entry<T>>>,
    generation: AtomicU64,
}

impl<T: Clone + PartialEq + Send + Sync> Default for Sublist<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Clone + PartialEq + Send + Sync> Sublist<T> {
    pub fn new() -> Self {
        Sublist {
            subs: RwLock::new(Vec::new()),
            generation: AtomicU64::new(0),
        }
    }
    pub fn insert(
        &self,
        subject: &[u8],
        queue: Option<&[u8]>,
        item: T,
    ) -> Result<(), SublistError> {
        if !crate::subject::is_valid_subject(subject) {
            return Err(SublistError::InvalidSubject);
        }
        self.subs
            .write()
            .push((subject.to_vec(), queue.map(<[u8]>::to_vec), item));
        self.generation.fetch_add(1, Ordering::Release);
        Ok(())
    }
    pub fn remove(
        &self,
        subject: &[u8],
        queue: Option<&[u8]>,
        item: &T,
    ) -> Result<(), SublistError> {
        let mut s = self.subs.write();
        let pos = s
            .iter()
            .position(|(sub, q, t)| sub == subject && q.as_deref() == queue && t == item)
            .ok_or(SublistError::NotFound)?;
        s.swap_remove(pos);
        self.generation.fetch_add(1, Ordering::Release);
        Ok(())
    }
    pub fn match_subject(&self, subject: &[u8]) -> Arc<SublistResult<T>> {
        let s = self.subs.read();
        let mut r = SublistResult {
            psubs: Vec::new(),
            qsubs: Vec::new(),
        };
        let mut names: Vec<Vec<u8>> = Vec::new();
        for (p, q, t) in s.iter() {
            if crate::subject::matches(p, subject) {
                match q {
                    None => r.psubs.push(t.clone()),
                    Some(q) => match names.iter().position(|n| n == q) {
                        Some(i) => r.qsubs[i].push(t.clone()),
                        None => {
                            names.push(q.clone());
                            r.qsubs.push(vec![t.clone()]);
                        }
                    },
                }
            }
        }
        Arc::new(r)
    }
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }
    pub fn count(&self) -> usize {
        self.subs.read().len()
    }
    pub fn stats(&self) -> SublistStats {
        SublistStats {
            num_subscriptions: self.count() as u64,
            ..Default::default()
        }
    }
    pub fn all(&self) -> Vec<Entry<T>> {
        self.subs.read().clone()
    }
}
