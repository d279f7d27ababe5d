//! WebSocket fuzz target: client frames (plain and permessage-deflate) decode the same
//! whether the bytes arrive whole or split, and neither the frame decoder nor the
//! upgrade-request parser panics on any input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tern::net::websocket::frames::FrameDecoder;
use tern::net::websocket::handshake::parse_request;

type Decoded = (Vec<u8>, Vec<String>, Option<String>);

fn decode(chunks: &[&[u8]], compress: bool) -> Decoded {
    let mut d = FrameDecoder::new(compress, 1 << 16);
    let (mut out, mut ctrl) = (Vec::new(), Vec::new());
    for c in chunks {
        if let Err(e) = d.feed(c, &mut out, &mut ctrl) {
            return (out, ctrl.iter().map(|c| format!("{c:?}")).collect(), Some(e.reason));
        }
    }
    (out, ctrl.iter().map(|c| format!("{c:?}")).collect(), None)
}

fuzz_target!(|input: (u16, bool, &[u8])| {
    let (split, compress, data) = input;
    let _ = parse_request(data);
    let whole = decode(&[data], compress);
    let at = split as usize % (data.len() + 1);
    let parts = decode(&[&data[..at], &data[at..]], compress);
    // An error may be found later when split (the decoder stops at the first one),
    // but what was decoded before it and the error itself agree.
    assert_eq!(whole, parts);
});
