//! Incremental parser for the client protocol.
//!
//! Lines are found with memchr; the parser remembers how far it already scanned so a slow
//! writer (slowloris) costs O(bytes), and rejects a line as soon as its argument part
//! passes max_control_line, before the line end arrives. Ops borrow from the caller's
//! buffer: the caller processes the op, then drops the consumed prefix. Any split of an
//! input parses exactly as the whole input does (fuzzed in fuzz/).
//!
//! Must not: allocate per op, block, or know about connections.

use super::{Op, ParserLimits};

/// Why the parser gave up. Each maps to one nats-server answer (see client.rs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Bad op name, client-forbidden op, or a payload not followed by CRLF:
    /// `-ERR 'Unknown Protocol Operation'` and close.
    #[error("Unknown Protocol Operation")]
    UnknownOp,
    /// `-ERR 'maximum control line exceeded'` and close.
    #[error("maximum control line exceeded")]
    MaxControlLine,
    /// `-ERR 'Maximum Payload Violation'` and close, before the payload is read.
    #[error("Maximum Payload Violation")]
    MaxPayload,
    /// Wrong argument count or an unparsable size: nats-server closes without a word.
    #[error("malformed arguments")]
    BadArgs,
}

/// Parser state that survives between reads: how much of the current line was scanned.
#[derive(Debug, Default, Clone)]
pub struct Parser {
    scanned: usize,
}

/// nats-server refuses sizes with more than 9 digits (parseSize in util.go).
const MAX_SIZE_DIGITS: usize = 9;

#[inline]
fn is_space(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Splits the argument part of a line on runs of spaces/tabs into `out`; returns the
/// number of arguments, or `None` if there are more than `out` can hold.
#[inline]
pub fn split_args<'a, const N: usize>(mut s: &'a [u8], out: &mut [&'a [u8]; N]) -> Option<usize> {
    let mut n = 0;
    loop {
        while let [first, rest @ ..] = s {
            if is_space(*first) {
                s = rest;
            } else {
                break;
            }
        }
        if s.is_empty() {
            return Some(n);
        }
        let end = s.iter().position(|b| is_space(*b)).unwrap_or(s.len());
        if n == N {
            return None;
        }
        out[n] = &s[..end];
        n += 1;
        s = &s[end..];
    }
}

/// Parses a decimal size as nats-server does: digits only, at most 9 of them.
#[inline]
pub fn parse_size(d: &[u8]) -> Option<usize> {
    if d.is_empty() || d.len() > MAX_SIZE_DIGITS {
        return None;
    }
    let mut n = 0usize;
    for &b in d {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n * 10 + usize::from(b - b'0');
    }
    Some(n)
}

/// The ops a client may send, by their first byte (nats-server's OP_START state).
#[inline]
fn valid_first_byte(b: u8) -> bool {
    matches!(
        b.to_ascii_uppercase(),
        b'C' | b'P' | b'S' | b'U' | b'H' | b'I' | b'+' | b'-'
    )
}

#[inline]
fn starts_with_ci(s: &[u8], prefix: &[u8]) -> bool {
    s.len() >= prefix.len() && s[..prefix.len()].eq_ignore_ascii_case(prefix)
}

/// Length of the op name at the start of a line (up to the first space or tab).
#[inline]
fn op_len(line: &[u8]) -> usize {
    line.iter().position(|b| is_space(*b)).unwrap_or(line.len())
}

/// Bytes that count against max_control_line: the arguments after the op name and
/// the spaces that follow it (nats-server starts counting at the first argument).
#[inline]
fn arg_len(line: &[u8]) -> usize {
    let name = op_len(line);
    let spaces = line[name..].iter().take_while(|b| is_space(**b)).count();
    line.len() - name - spaces
}

impl Parser {
    pub fn new() -> Self {
        Parser::default()
    }

    /// Parses one op from the front of `buf`. `Ok(None)` means more bytes are needed;
    /// `Ok(Some((op, n)))` means the op used the first `n` bytes of `buf`.
    pub fn parse<'a>(
        &mut self,
        buf: &'a [u8],
        limits: &ParserLimits,
    ) -> Result<Option<(Op<'a>, usize)>, ParseError> {
        let Some(&first) = buf.first() else {
            return Ok(None);
        };
        if !valid_first_byte(first) {
            return Err(ParseError::UnknownOp);
        }
        let start = self.scanned.min(buf.len());
        let Some(pos) = memchr::memchr(b'\n', &buf[start..]) else {
            self.scanned = buf.len();
            // A trailing CR may be the first half of the line end: not counted.
            let partial = buf.strip_suffix(b"\r").unwrap_or(buf);
            let arg_len = arg_len(partial);
            if arg_len > limits.max_control_line {
                return Err(ParseError::MaxControlLine);
            }
            return Ok(None);
        };
        let nl = start + pos;
        let mut line = &buf[..nl];
        if let [rest @ .., b'\r'] = line {
            line = rest;
        }
        let name_len = op_len(line);
        if arg_len(line) > limits.max_control_line {
            return Err(ParseError::MaxControlLine);
        }
        let name = &line[..name_len];
        let args = &line[name_len..];
        let after_line = nl + 1;

        let op = match name.len() {
            3 if name.eq_ignore_ascii_case(b"PUB") => {
                return self.parse_pub(buf, args, after_line, false, limits);
            }
            4 if name.eq_ignore_ascii_case(b"HPUB") => {
                return self.parse_pub(buf, args, after_line, true, limits);
            }
            3 if name.eq_ignore_ascii_case(b"SUB") => {
                if args.is_empty() {
                    return Err(ParseError::UnknownOp);
                }
                let mut a = [&b""[..]; 3];
                match split_args(args, &mut a) {
                    Some(2) => Op::Sub {
                        subject: a[0],
                        queue: None,
                        sid: a[1],
                    },
                    Some(3) => Op::Sub {
                        subject: a[0],
                        queue: Some(a[1]),
                        sid: a[2],
                    },
                    _ => return Err(ParseError::BadArgs),
                }
            }
            5 if name.eq_ignore_ascii_case(b"UNSUB") => {
                if args.is_empty() {
                    return Err(ParseError::UnknownOp);
                }
                let mut a = [&b""[..]; 2];
                match split_args(args, &mut a) {
                    Some(1) => Op::Unsub {
                        sid: a[0],
                        max: None,
                    },
                    Some(2) => Op::Unsub {
                        sid: a[0],
                        max: Some(parse_size(a[1]).ok_or(ParseError::BadArgs)? as u64),
                    },
                    _ => return Err(ParseError::BadArgs),
                }
            }
            4 if name.eq_ignore_ascii_case(b"-ERR") => Op::Err(trim(args)),
            _ => {
                // Ops that need no space after their name: everything after PING, PONG
                // and +OK is ignored, CONNECT and INFO may be glued to their JSON.
                if starts_with_ci(line, b"PING") {
                    Op::Ping
                } else if starts_with_ci(line, b"PONG") {
                    Op::Pong
                } else if starts_with_ci(line, b"+OK") {
                    Op::Ok
                } else if starts_with_ci(line, b"CONNECT") {
                    Op::Connect(trim(&line[7..]))
                } else if starts_with_ci(line, b"INFO") {
                    Op::Info
                } else {
                    return Err(ParseError::UnknownOp);
                }
            }
        };
        self.scanned = 0;
        Ok(Some((op, after_line)))
    }

    fn parse_pub<'a>(
        &mut self,
        buf: &'a [u8],
        args: &'a [u8],
        after_line: usize,
        with_headers: bool,
        limits: &ParserLimits,
    ) -> Result<Option<(Op<'a>, usize)>, ParseError> {
        // PUB and HPUB need a separator after the name: `PUB\r\n` is an unknown op.
        if args.is_empty() {
            return Err(ParseError::UnknownOp);
        }
        let mut a = [&b""[..]; 4];
        let n = split_args(args, &mut a).ok_or(ParseError::BadArgs)?;
        let (subject, reply, hdr, total) = match (with_headers, n) {
            (false, 2) => (a[0], None, None, a[1]),
            (false, 3) => (a[0], Some(a[1]), None, a[2]),
            (true, 3) => (a[0], None, Some(a[1]), a[2]),
            (true, 4) => (a[0], Some(a[1]), Some(a[2]), a[3]),
            _ => return Err(ParseError::BadArgs),
        };
        let size = parse_size(total).ok_or(ParseError::BadArgs)?;
        let hdr_len = match hdr {
            Some(h) => {
                let h = parse_size(h).ok_or(ParseError::BadArgs)?;
                if h > size {
                    return Err(ParseError::BadArgs);
                }
                Some(h)
            }
            None => None,
        };
        if limits.max_payload.is_some_and(|max| size > max) {
            return Err(ParseError::MaxPayload);
        }
        let Some((payload, end)) = take_payload(buf, after_line, size, &mut self.scanned)? else {
            return Ok(None);
        };
        Ok(Some((
            Op::Pub {
                subject,
                reply,
                hdr_len,
                payload,
            },
            end,
        )))
    }
}

/// The `size` payload bytes after a control line that ends at `after_line`, and the
/// end of the op (payload + CRLF). `Ok(None)` when they have not all arrived: `scanned`
/// then points at the line end so the next call does not rescan the line. A payload not
/// followed by CRLF is nats-server's 'Unknown Protocol Operation'.
#[inline]
pub(super) fn take_payload<'a>(
    buf: &'a [u8],
    after_line: usize,
    size: usize,
    scanned: &mut usize,
) -> Result<Option<(&'a [u8], usize)>, ParseError> {
    let end = after_line + size + 2;
    if buf.len() < end {
        *scanned = after_line - 1;
        return Ok(None);
    }
    if &buf[end - 2..end] != b"\r\n" {
        return Err(ParseError::UnknownOp);
    }
    *scanned = 0;
    Ok(Some((&buf[after_line..end - 2], end)))
}

fn trim(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|b| !is_space(*b)).unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|b| !is_space(*b))
        .map_or(start, |e| e + 1);
    &s[start..end.max(start)]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(input: &[u8]) -> Result<Vec<String>, ParseError> {
        let mut p = Parser::new();
        let limits = ParserLimits::default();
        let mut off = 0;
        let mut out = Vec::new();
        while let Some((op, n)) = p.parse(&input[off..], &limits)? {
            out.push(format!("{op:?}"));
            off += n;
        }
        Ok(out)
    }

    fn parse_split(input: &[u8], chunk: usize) -> Result<Vec<String>, ParseError> {
        let mut p = Parser::new();
        let limits = ParserLimits::default();
        let mut buf = Vec::new();
        let mut out = Vec::new();
        for c in input.chunks(chunk) {
            buf.extend_from_slice(c);
            while let Some((op, n)) = p.parse(&buf, &limits)? {
                out.push(format!("{op:?}"));
                buf.drain(..n);
            }
        }
        Ok(out)
    }

    #[test]
    fn pub_and_sub() {
        let ops = parse_all(b"SUB foo 1\r\nPUB foo 5\r\nhello\r\npub foo bar 2\r\nhi\r\n").unwrap();
        assert_eq!(ops.len(), 3);
        assert!(ops[0].contains("Sub"));
        assert!(ops[2].contains("reply: Some([98, 97, 114])"));
    }

    #[test]
    fn lf_only_and_tabs() {
        let ops = parse_all(b"PUB\tfoo  \t 2\nhi\r\nping\n").unwrap();
        assert_eq!(ops.len(), 2);
        assert_eq!(ops[1], "Ping");
    }

    #[test]
    fn ping_with_junk() {
        assert_eq!(parse_all(b"PING foo\r\n").unwrap(), vec!["Ping"]);
    }

    #[test]
    fn connect_glued() {
        let ops = parse_all(b"CONNECT{\"verbose\":false}\r\n").unwrap();
        assert!(ops[0].starts_with("Connect"));
    }

    #[test]
    fn errors() {
        assert_eq!(parse_all(b"FOO bar\r\n"), Err(ParseError::UnknownOp));
        assert_eq!(parse_all(b"MSG foo 1 2\r\n"), Err(ParseError::UnknownOp));
        assert_eq!(parse_all(b"UNSUB\r\n"), Err(ParseError::UnknownOp));
        assert_eq!(parse_all(b"PUB\r\n"), Err(ParseError::UnknownOp));
        assert_eq!(parse_all(b"SUB a b c d\r\n"), Err(ParseError::BadArgs));
        assert_eq!(parse_all(b"PUB a b c 1\r\n"), Err(ParseError::BadArgs));
        assert_eq!(
            parse_all(b"PUB foo 5\r\nhelloXX"),
            Err(ParseError::UnknownOp)
        );
        assert_eq!(parse_all(b"PUB foo x\r\n"), Err(ParseError::BadArgs));
        assert_eq!(
            parse_all(b"PUB foo 1048577\r\n"),
            Err(ParseError::MaxPayload)
        );
        assert_eq!(parse_all(b"HPUB foo 5 2\r\n"), Err(ParseError::BadArgs));
        let long = format!("SUB {} 1\r\n", "a".repeat(5000));
        assert_eq!(parse_all(long.as_bytes()), Err(ParseError::MaxControlLine));
        // Rejected before the line ends.
        let partial = format!("SUB {}", "a".repeat(5000));
        assert_eq!(
            parse_all(partial.as_bytes()),
            Err(ParseError::MaxControlLine)
        );
    }

    #[test]
    fn split_input_parses_the_same() {
        let input: &[u8] = b"CONNECT {\"verbose\":false}\r\nSUB foo q 1\r\nHPUB foo r 12 14\r\nNATS/1.0\r\n\r\nhi\r\nPUB foo 0\r\n\r\nUNSUB 1 5\r\nPING\r\n";
        let whole = parse_all(input).unwrap();
        assert_eq!(whole.len(), 6);
        for chunk in 1..input.len() {
            assert_eq!(parse_split(input, chunk).unwrap(), whole, "chunk {chunk}");
        }
    }

    fn run(chunks: &[&[u8]], limits: &ParserLimits) -> (Vec<String>, Option<ParseError>) {
        let mut p = Parser::new();
        let mut buf = Vec::new();
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
                    Err(e) => return (ops, Some(e)),
                }
            }
        }
        (ops, None)
    }

    proptest::proptest! {
        /// The same property as the cargo-fuzz target, on stable so CI runs it:
        /// protocol-shaped random input parses the same whole and split.
        #[test]
        fn split_input_property(
            parts in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::strategy::Just(b"PUB a 3\r\nabc\r\n".to_vec()),
                    proptest::strategy::Just(b"HPUB a r 12 14\r\nNATS/1.0\r\n\r\nhi\r\n".to_vec()),
                    proptest::strategy::Just(b"sub a.* q 1\r\n".to_vec()),
                    proptest::strategy::Just(b"UNSUB 1 2\n".to_vec()),
                    proptest::strategy::Just(b"PING\r\n".to_vec()),
                    proptest::strategy::Just(b"CONNECT {}\r\n".to_vec()),
                    proptest::collection::vec(proptest::num::u8::ANY, 0..12),
                ],
                0..12,
            ),
            cuts in proptest::collection::vec(1usize..9, 1..40),
            mcl in 4usize..64,
        ) {
            let input: Vec<u8> = parts.concat();
            let limits = ParserLimits { max_control_line: mcl, max_payload: Some(64) };
            let whole = run(&[&input], &limits);
            let mut chunks = Vec::new();
            let mut rest = &input[..];
            let mut i = 0;
            while !rest.is_empty() {
                let n = cuts[i % cuts.len()].min(rest.len());
                chunks.push(&rest[..n]);
                rest = &rest[n..];
                i += 1;
            }
            proptest::prop_assert_eq!(whole, run(&chunks, &limits));
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size(b"0"), Some(0));
        assert_eq!(parse_size(b"123456789"), Some(123_456_789));
        assert_eq!(parse_size(b"1234567890"), None);
        assert_eq!(parse_size(b"-1"), None);
        assert_eq!(parse_size(b""), None);
    }
}
