//! W3C `traceparent` in a NATS header block (`NATS/1.0\r\nKey: Value\r\n...\r\n\r\n`),
//! and the trace-id ratio test that decides whether a traced message is recorded.
//!
//! Pure and allocation-free: it runs only for messages that carry headers while message
//! tracing is on, but then once per message on every node it crosses.

/// The publisher's span context as carried by `traceparent: 00-<trace>-<span>-<flags>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceParent {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub flags: u8,
}

impl TraceParent {
    /// The W3C "sampled" flag: the publisher recorded its side of the trace.
    pub fn sampled(&self) -> bool {
        self.flags & 1 == 1
    }
}

/// Finds and parses the `traceparent` header (name matched case-insensitively, as HTTP
/// and the NATS clients treat header names). `None` when absent or malformed.
pub fn find(hdr: &[u8]) -> Option<TraceParent> {
    // Skip the status line ("NATS/1.0 ..."): it is never a header.
    let mut rest = &hdr[memchr::memchr(b'\n', hdr)? + 1..];
    while !rest.is_empty() {
        let end = memchr::memchr(b'\n', rest).unwrap_or(rest.len());
        let line = &rest[..end];
        rest = &rest[(end + 1).min(rest.len())..];
        let Some(colon) = memchr::memchr(b':', line) else {
            continue;
        };
        if line[..colon]
            .trim_ascii()
            .eq_ignore_ascii_case(b"traceparent")
        {
            return parse(line[colon + 1..].trim_ascii());
        }
    }
    None
}

/// `00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01`. Version 00 is exactly 55
/// bytes; later versions may append fields after the flags, which are ignored.
pub fn parse(v: &[u8]) -> Option<TraceParent> {
    if v.len() < 55 || v[2] != b'-' || v[35] != b'-' || v[52] != b'-' {
        return None;
    }
    let version = hex_byte(&v[0..2])?;
    // "ff" is forbidden; version 00 has no trailing fields.
    if version == 0xff || (version == 0 && v.len() != 55) || (v.len() > 55 && v[55] != b'-') {
        return None;
    }
    let mut trace_id = [0u8; 16];
    for (i, b) in trace_id.iter_mut().enumerate() {
        *b = hex_byte(&v[3 + 2 * i..5 + 2 * i])?;
    }
    let mut span_id = [0u8; 8];
    for (i, b) in span_id.iter_mut().enumerate() {
        *b = hex_byte(&v[36 + 2 * i..38 + 2 * i])?;
    }
    // All-zero ids are invalid by the spec.
    if trace_id == [0; 16] || span_id == [0; 8] {
        return None;
    }
    let flags = hex_byte(&v[53..55])?;
    Some(TraceParent {
        trace_id,
        span_id,
        flags,
    })
}

fn hex_byte(two: &[u8]) -> Option<u8> {
    fn nib(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            // Lowercase only: the spec rejects uppercase hex.
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        }
    }
    Some(nib(two[0])? << 4 | nib(two[1])?)
}

/// The threshold [`keep`] compares against for a keep ratio (0.0..=1.0).
pub fn ratio_threshold(ratio: f64) -> u64 {
    // Same arithmetic as the SDK's TraceIdRatioBased, so a trace kept by a publisher
    // using that sampler at the same ratio is kept here too, on every node.
    (ratio.clamp(0.0, 1.0) * (1u64 << 63) as f64) as u64
}

/// Whether a trace is kept at `threshold` (from [`ratio_threshold`]).
pub fn keep(trace_id: &[u8; 16], threshold: u64) -> bool {
    let mut low = [0u8; 8];
    low.copy_from_slice(&trace_id[8..]);
    (u64::from_be_bytes(low) >> 1) < threshold
}

#[cfg(test)]
mod tests {
    use super::*;

    const TP: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

    #[test]
    fn finds_header_case_insensitively() {
        let hdr = format!("NATS/1.0\r\nX-A: 1\r\nTraceParent: {TP}\r\n\r\n");
        let tp = find(hdr.as_bytes()).unwrap();
        assert_eq!(tp.trace_id[0], 0x0a);
        assert_eq!(tp.span_id[7], 0x31);
        assert!(tp.sampled());
        assert_eq!(find(b"NATS/1.0\r\nX-A: 1\r\n\r\n"), None);
        assert_eq!(find(b"NATS/1.0 503\r\n\r\n"), None);
        assert_eq!(find(b""), None);
    }

    #[test]
    fn rejects_malformed() {
        assert!(parse(TP.as_bytes()).is_some());
        for bad in [
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-0",
            "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
            "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-x",
        ] {
            assert_eq!(parse(bad.as_bytes()), None, "{bad}");
        }
        let future = "01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00-extra";
        assert!(!parse(future.as_bytes()).unwrap().sampled());
    }

    #[test]
    fn ratio_bounds() {
        let id = [0xff; 16];
        assert!(keep(&id, ratio_threshold(1.0)));
        assert!(!keep(&[1; 16], ratio_threshold(0.0)));
        assert!(keep(&[0; 16], ratio_threshold(0.5)));
        assert!(!keep(&id, ratio_threshold(0.5)));
    }
}
