//! A fixed-bucket latency histogram for Prometheus: one atomic add per observation, no
//! lock, so it can sit where round trips are measured (PONGs, never per message).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds in seconds: 50 µs to 10 s, roughly x2.5 apart, from loopback round
/// trips to a congested WAN link.
pub const BOUNDS: [f64; 14] = [
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 10.0,
];

#[derive(Debug, Default)]
pub struct Histogram {
    /// Non-cumulative counts per bucket; the last slot is +Inf.
    buckets: [AtomicU64; BOUNDS.len() + 1],
    sum_nanos: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let i = BOUNDS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(BOUNDS.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum_nanos
            .fetch_add(d.as_nanos().min(u64::MAX as u128) as u64, Ordering::Relaxed);
    }

    /// (cumulative counts per bound then +Inf, sum in seconds, count).
    pub fn snapshot(&self) -> (Vec<u64>, f64, u64) {
        let mut acc = 0;
        let cumulative: Vec<u64> = self
            .buckets
            .iter()
            .map(|b| {
                acc += b.load(Ordering::Relaxed);
                acc
            })
            .collect();
        let sum = self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        (cumulative, sum, acc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_and_bounds_inclusive() {
        let h = Histogram::default();
        h.observe(Duration::from_micros(50)); // exactly the first bound
        h.observe(Duration::from_micros(300));
        h.observe(Duration::from_secs(20)); // past the last bound: +Inf only
        let (c, sum, n) = h.snapshot();
        assert_eq!(n, 3);
        assert_eq!(c.len(), BOUNDS.len() + 1);
        assert_eq!((c[0], c[2], c[3]), (1, 1, 2));
        assert_eq!(c[BOUNDS.len() - 1], 2);
        assert_eq!(c[BOUNDS.len()], 3);
        assert!((sum - 20.00035).abs() < 1e-9, "{sum}");
    }
}
