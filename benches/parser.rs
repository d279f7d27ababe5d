//! Parser throughput: a read buffer full of PUBs (16 B and 1 KiB), mixed ops, and
//! the same input fed in small splits.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use std::time::Duration;
use tern::protocol::{Parser, ParserLimits};

fn batch(payload: usize, n: usize) -> Vec<u8> {
    let mut v = Vec::new();
    let body = vec![b'x'; payload];
    for _ in 0..n {
        v.extend_from_slice(format!("PUB foo.bar {payload}\r\n").as_bytes());
        v.extend_from_slice(&body);
        v.extend_from_slice(b"\r\n");
    }
    v
}

fn parse_all(input: &[u8], limits: &ParserLimits) -> usize {
    let mut p = Parser::new();
    let mut off = 0;
    let mut ops = 0;
    while let Ok(Some((op, n))) = p.parse(&input[off..], limits) {
        black_box(op);
        off += n;
        ops += 1;
    }
    ops
}

fn bench_parser(c: &mut Criterion) {
    let limits = ParserLimits::default();
    let mut g = c.benchmark_group("parser");
    g.measurement_time(Duration::from_secs(3));
    g.warm_up_time(Duration::from_secs(1));
    for payload in [16usize, 1024] {
        let input = batch(payload, 1000);
        g.throughput(Throughput::Elements(1000));
        g.bench_with_input(BenchmarkId::new("pub_batch", payload), &input, |b, i| {
            b.iter(|| assert_eq!(parse_all(i, &limits), 1000))
        });
    }
    let mixed: Vec<u8> = (0..250)
        .flat_map(|i| {
            format!(
                "SUB foo.{i} q {i}\r\nPUB foo.{i} reply.{i} 5\r\nhello\r\nPING\r\nUNSUB {i} 3\r\n"
            )
            .into_bytes()
        })
        .collect();
    g.throughput(Throughput::Elements(1000));
    g.bench_function("mixed_ops", |b| {
        b.iter(|| assert_eq!(parse_all(&mixed, &limits), 1000))
    });

    // The same 16 B batch arriving in 100-byte reads (lines split across reads).
    let input = batch(16, 1000);
    g.bench_function("pub16_split_reads", |b| {
        b.iter(|| {
            let mut p = Parser::new();
            let mut buf: Vec<u8> = Vec::with_capacity(4096);
            let mut ops = 0;
            for chunk in input.chunks(100) {
                buf.extend_from_slice(chunk);
                let mut off = 0;
                while let Ok(Some((op, n))) = p.parse(&buf[off..], &limits) {
                    black_box(op);
                    off += n;
                    ops += 1;
                }
                buf.drain(..off);
            }
            assert_eq!(ops, 1000);
        })
    });
    g.finish();
}

criterion_group!(benches, bench_parser);
criterion_main!(benches);
