//! Sublist benchmarks: insert, cached match, uncached (trie) match, wildcard fanout, and a
//! sublist holding one million subscriptions.
//!
//! Short by design (2-core dev machines): run with
//! `cargo bench --bench sublist -- --warm-up-time 1 --measurement-time 2`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use tern::sublist::Sublist;

/// Stands in for tern's `Arc<Subscription>` handle: cloning it is an atomic increment.
type Handle = Arc<u64>;

fn h(i: u64) -> Handle {
    Arc::new(i)
}

/// A sublist shaped like a busy server: literal subjects, a few wildcards, queue groups.
fn typical(sl: &Sublist<Handle>) {
    for i in 0..1000u64 {
        sl.insert(format!("orders.{}.created", i % 100).as_bytes(), None, h(i))
            .expect("valid subject");
    }
    for i in 0..10u64 {
        sl.insert(b"orders.*.created", None, h(i)).expect("valid");
        sl.insert(b"orders.>", Some(b"workers"), h(i))
            .expect("valid");
    }
    sl.insert(b">", None, h(0)).expect("valid");
}

fn insert(c: &mut Criterion) {
    let mut g = c.benchmark_group("insert");
    const N: usize = 10_000;
    let literals: Vec<Vec<u8>> = (0..N).map(|i| format!("a.b.{i}").into_bytes()).collect();
    let wildcards: Vec<Vec<u8>> = (0..N).map(|i| format!("a.*.{i}.>").into_bytes()).collect();
    g.throughput(Throughput::Elements(N as u64));
    for (name, subjects) in [("literal", &literals), ("wildcard", &wildcards)] {
        g.bench_function(name, |b| {
            b.iter_batched(
                Sublist::<Handle>::new,
                |sl| {
                    for (i, s) in subjects.iter().enumerate() {
                        sl.insert(s, None, h(i as u64)).expect("valid");
                    }
                    sl
                },
                BatchSize::LargeInput,
            )
        });
    }
    // Insert then remove one subscription on a hot subject: the SUB/UNSUB churn cost,
    // including cache invalidation.
    let sl = Sublist::new();
    typical(&sl);
    sl.match_subject(b"orders.7.created");
    let x = h(u64::MAX);
    g.throughput(Throughput::Elements(1));
    g.bench_function("insert_remove_pair", |b| {
        b.iter(|| {
            sl.insert(b"orders.7.created", None, x.clone())
                .expect("valid");
            sl.remove(b"orders.7.created", None, &x).expect("present");
        })
    });
    g.finish();
}

fn matching(c: &mut Criterion) {
    let mut g = c.benchmark_group("match");
    g.throughput(Throughput::Elements(1));

    let cached = Sublist::new();
    typical(&cached);
    let uncached = Sublist::no_cache();
    typical(&uncached);

    // Cache hit: 10 plain + 10 `*` + 1 `>` subs and one queue group.
    cached.match_subject(b"orders.7.created");
    g.bench_function("cached_hit", |b| {
        b.iter(|| black_box(cached.match_subject(black_box(b"orders.7.created"))))
    });
    g.bench_function("cached_hit_no_interest", |b| {
        cached.match_subject(b"nobody.listens");
        b.iter(|| black_box(cached.match_subject(black_box(b"nobody.listens"))))
    });
    // Trie walk, same subject (fanout 21 plain + 1 group, clones included).
    g.bench_function("uncached_literal", |b| {
        b.iter(|| black_box(uncached.match_subject(black_box(b"orders.7.created"))))
    });
    g.bench_function("uncached_no_interest_but_fwc", |b| {
        b.iter(|| black_box(uncached.match_subject(black_box(b"nobody.listens"))))
    });
    // Cache miss on the cached sublist: trie walk + cache fill (+ periodic sweep), with
    // more distinct subjects than the cache holds.
    let misses: Vec<Vec<u8>> = (0..4096)
        .map(|i| format!("orders.{i}.created").into_bytes())
        .collect();
    let mut i = 0;
    g.bench_function("cache_miss_fill", |b| {
        b.iter(|| {
            i = (i + 1) % misses.len();
            black_box(cached.match_subject(&misses[i]))
        })
    });

    // Wildcard-heavy: many `*` and `>` subscriptions at several depths.
    let wild = Sublist::no_cache();
    for i in 0..100u64 {
        wild.insert(format!("sensors.*.t{i}").as_bytes(), None, h(i))
            .expect("valid");
        wild.insert(format!("sensors.r{i}.>").as_bytes(), None, h(i))
            .expect("valid");
        wild.insert(b"sensors.*.*", None, h(i)).expect("valid");
        wild.insert(b"*.*.t7", Some(format!("g{}", i % 4).as_bytes()), h(i))
            .expect("valid");
    }
    g.bench_function("uncached_wildcards", |b| {
        b.iter(|| black_box(wild.match_subject(black_box(b"sensors.r7.t7"))))
    });
    g.finish();
}

fn million(c: &mut Criterion) {
    const N: u64 = 1_000_000;
    let subjects: Vec<Vec<u8>> = (0..N).map(|i| format!("a.b.{i}").into_bytes()).collect();
    let sl = Sublist::new();
    let t = Instant::now();
    for (i, s) in subjects.iter().enumerate() {
        sl.insert(s, None, h(i as u64)).expect("valid");
    }
    for i in 0..1000u64 {
        sl.insert(format!("a.*.{i}").as_bytes(), None, h(i))
            .expect("valid");
    }
    sl.insert(b"a.>", None, h(0)).expect("valid");
    let took = t.elapsed();
    println!(
        "1M: inserted {} subscriptions in {:.2?} ({:.0} ns/insert)",
        sl.count(),
        took,
        took.as_nanos() as f64 / sl.count() as f64
    );

    let mut g = c.benchmark_group("1M");
    g.throughput(Throughput::Elements(1));
    sl.match_subject(b"a.b.500");
    g.bench_function("cached_hit", |b| {
        b.iter(|| black_box(sl.match_subject(black_box(b"a.b.500"))))
    });
    // Rotating over all 1M subjects: nearly every call misses, walks and fills.
    let mut i = 0usize;
    g.bench_function("miss_rotating", |b| {
        b.iter(|| {
            i = (i + 7919) % subjects.len();
            black_box(sl.match_subject(&subjects[i]))
        })
    });
    let x = h(u64::MAX);
    g.bench_function("insert_remove_pair", |b| {
        b.iter(|| {
            sl.insert(b"a.b.new", None, x.clone()).expect("valid");
            sl.remove(b"a.b.new", None, &x).expect("present");
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2));
    targets = insert, matching, million
}
criterion_main!(benches);
