//! Parser fuzz target: any input, split at any points, parses exactly as the whole
//! input does (same ops, same error), and nothing panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tern::protocol::{Parser, ParserLimits};

/// Parses `chunks` fed one after another, as a connection reading them would;
/// returns the ops (debug-printed) and the error, if any.
fn run(chunks: &[&[u8]], limits: &ParserLimits) -> (Vec<String>, Option<String>) {
    let mut p = Parser::new();
    let mut buf: Vec<u8> = Vec::new();
    let mut ops = Vec::new();
    for c in chunks {
        buf.extend_from_slice(c);
        loop {
            match p.parse(&buf, limits) {
                Ok(Some((op, n))) => {
                    ops.push(format!("{op:?}"));
                    buf.drain(..n);
                }
                Ok(None) => break,
                Err(e) => return (ops, Some(format!("{e:?}"))),
            }
        }
    }
    (ops, None)
}

fuzz_target!(|data: &[u8]| {
    // First byte picks the split points' seed, second a small control-line limit so the
    // limit paths are reached often.
    if data.len() < 2 {
        return;
    }
    let seed = data[0];
    let limits = ParserLimits {
        max_control_line: 16 + usize::from(data[1]) * 4,
        max_payload: Some(512),
    };
    let input = &data[2..];
    let whole = run(&[input], &limits);
    let mut chunks = Vec::new();
    let mut rest = input;
    let mut step = usize::from(seed % 7) + 1;
    while !rest.is_empty() {
        let n = step.min(rest.len());
        chunks.push(&rest[..n]);
        rest = &rest[n..];
        step = step * 3 % 11 + 1;
    }
    let split = run(&chunks, &limits);
    // An error found while the line was still incomplete may come earlier in a split
    // read, but it must be the same error and the ops before it the same.
    assert_eq!(whole, split, "split input parsed differently");
});
