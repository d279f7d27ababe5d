//! Route protocol ops (server to server), parsed with the same line/payload rules as
//! the client protocol: INFO, CONNECT, PING/PONG, RS+/RS-, RMSG/HMSG, LS+/LS-, -ERR.
//!
//! Control lines on routes may be 16x max_control_line and payloads are not limited
//! (nats-server routes have no payload limit).

use super::parser::{parse_size, take_payload, ParseError};
use super::ParserLimits;

/// One op read from a route connection; slices borrow from the read buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteOp<'a> {
    Info(&'a [u8]),
    Connect(&'a [u8]),
    Ping,
    Pong,
    Ok,
    Err(&'a [u8]),
    /// `RS+ <account> <subject> [<queue> <weight>]`
    Sub {
        account: &'a [u8],
        subject: &'a [u8],
        queue: Option<&'a [u8]>,
        weight: u32,
    },
    /// `RS- <account> <subject> [<queue>]`
    Unsub {
        account: &'a [u8],
        subject: &'a [u8],
        queue: Option<&'a [u8]>,
    },
    /// `RMSG`/`HMSG` with an optional reply and queue list (`queues` is the
    /// space-separated list exactly as on the wire, empty when absent).
    Msg {
        account: &'a [u8],
        subject: &'a [u8],
        reply: Option<&'a [u8]>,
        queues: &'a [u8],
        hdr_len: Option<usize>,
        payload: &'a [u8],
    },
    /// Leafnode-origin interest and messages (`LS+`, `LS-`, `LMSG`) and account
    /// interest (`A+`, `A-`): tolerated and ignored, tern has no leafnodes.
    Ignored,
}

/// nats-server's trace form (`RS+ $G foo`, `RMSG $G foo 5`), for `-V` logs.
impl std::fmt::Display for RouteOp<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let t = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        match self {
            RouteOp::Info(j) => write!(f, "INFO {}", t(j)),
            RouteOp::Connect(j) => write!(f, "CONNECT {}", t(j)),
            RouteOp::Ping => f.write_str("PING"),
            RouteOp::Pong => f.write_str("PONG"),
            RouteOp::Ok => f.write_str("+OK"),
            RouteOp::Err(e) => write!(f, "-ERR {}", t(e)),
            RouteOp::Sub {
                account,
                subject,
                queue,
                weight,
            } => match queue {
                Some(q) => write!(f, "RS+ {} {} {} {weight}", t(account), t(subject), t(q)),
                None => write!(f, "RS+ {} {}", t(account), t(subject)),
            },
            RouteOp::Unsub {
                account,
                subject,
                queue,
            } => match queue {
                Some(q) => write!(f, "RS- {} {} {}", t(account), t(subject), t(q)),
                None => write!(f, "RS- {} {}", t(account), t(subject)),
            },
            RouteOp::Msg {
                account,
                subject,
                reply,
                queues,
                hdr_len,
                payload,
            } => {
                let op = if hdr_len.is_some() { "HMSG" } else { "RMSG" };
                write!(f, "{op} {} {}", t(account), t(subject))?;
                match (reply, queues.is_empty()) {
                    (Some(r), true) => write!(f, " {}", t(r))?,
                    (Some(r), false) => write!(f, " + {} {}", t(r), t(queues))?,
                    (None, false) => write!(f, " | {}", t(queues))?,
                    (None, true) => {}
                }
                if let Some(h) = hdr_len {
                    write!(f, " {h}")?;
                }
                write!(f, " {}", payload.len())
            }
            RouteOp::Ignored => f.write_str("(ignored)"),
        }
    }
}

#[inline]
fn is_space(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Spans (start, end) of the space-separated tokens of `s`.
fn spans(s: &[u8]) -> impl Iterator<Item = (usize, usize)> + '_ {
    let mut i = 0;
    std::iter::from_fn(move || {
        while i < s.len() && is_space(s[i]) {
            i += 1;
        }
        if i >= s.len() {
            return None;
        }
        let start = i;
        while i < s.len() && !is_space(s[i]) {
            i += 1;
        }
        Some((start, i))
    })
}

/// Route-side op parser state (see [`super::Parser`] for the client side).
#[derive(Debug, Default, Clone)]
pub struct RouteParser {
    scanned: usize,
}

impl RouteParser {
    pub fn new() -> Self {
        RouteParser::default()
    }

    /// Parses one op from the front of `buf`; `Ok(None)` = need more bytes.
    pub fn parse<'a>(
        &mut self,
        buf: &'a [u8],
        limits: &ParserLimits,
    ) -> Result<Option<(RouteOp<'a>, usize)>, ParseError> {
        let Some(&first) = buf.first() else {
            return Ok(None);
        };
        if !matches!(
            first.to_ascii_uppercase(),
            b'I' | b'C' | b'P' | b'R' | b'H' | b'L' | b'A' | b'+' | b'-'
        ) {
            return Err(ParseError::UnknownOp);
        }
        let start = self.scanned.min(buf.len());
        let Some(pos) = memchr::memchr(b'\n', &buf[start..]) else {
            self.scanned = buf.len();
            if buf.len() > limits.max_control_line {
                return Err(ParseError::MaxControlLine);
            }
            return Ok(None);
        };
        let nl = start + pos;
        let mut line = &buf[..nl];
        if let [rest @ .., b'\r'] = line {
            line = rest;
        }
        if line.len() > limits.max_control_line {
            return Err(ParseError::MaxControlLine);
        }
        let name_len = line.iter().position(|b| is_space(*b)).unwrap_or(line.len());
        let name = &line[..name_len];
        let args = &line[name_len..];
        let after = nl + 1;
        let upper = |n: &[u8], want: &[u8]| n.eq_ignore_ascii_case(want);
        let op = if upper(name, b"RMSG") {
            return self.parse_msg(buf, args, after, false);
        } else if upper(name, b"HMSG") {
            return self.parse_msg(buf, args, after, true);
        } else if upper(name, b"RS+") {
            let t: Vec<(usize, usize)> = spans(args).take(5).collect();
            let tok = |i: usize| &args[t[i].0..t[i].1];
            match t.len() {
                2 => RouteOp::Sub {
                    account: tok(0),
                    subject: tok(1),
                    queue: None,
                    weight: 0,
                },
                4 => RouteOp::Sub {
                    account: tok(0),
                    subject: tok(1),
                    queue: Some(tok(2)),
                    weight: parse_size(tok(3)).ok_or(ParseError::BadArgs)? as u32,
                },
                _ => return Err(ParseError::BadArgs),
            }
        } else if upper(name, b"RS-") {
            let t: Vec<(usize, usize)> = spans(args).take(4).collect();
            let tok = |i: usize| &args[t[i].0..t[i].1];
            match t.len() {
                2 => RouteOp::Unsub {
                    account: tok(0),
                    subject: tok(1),
                    queue: None,
                },
                3 => RouteOp::Unsub {
                    account: tok(0),
                    subject: tok(1),
                    queue: Some(tok(2)),
                },
                _ => return Err(ParseError::BadArgs),
            }
        } else if upper(name, b"LMSG") {
            // Skip its payload: the last field is the total size.
            let size = spans(args)
                .last()
                .and_then(|(s, e)| parse_size(&args[s..e]))
                .ok_or(ParseError::BadArgs)?;
            let end = after + size + 2;
            if buf.len() < end {
                self.scanned = nl;
                return Ok(None);
            }
            self.scanned = 0;
            return Ok(Some((RouteOp::Ignored, end)));
        } else if upper(name, b"LS+")
            || upper(name, b"LS-")
            || upper(name, b"A+")
            || upper(name, b"A-")
        {
            RouteOp::Ignored
        } else if upper(name, b"-ERR") {
            RouteOp::Err(args.trim_ascii())
        } else if line.len() >= 4 && upper(&line[..4], b"PING") {
            RouteOp::Ping
        } else if line.len() >= 4 && upper(&line[..4], b"PONG") {
            RouteOp::Pong
        } else if line.len() >= 3 && upper(&line[..3], b"+OK") {
            RouteOp::Ok
        } else if line.len() >= 7 && upper(&line[..7], b"CONNECT") {
            RouteOp::Connect(line[7..].trim_ascii())
        } else if line.len() >= 4 && upper(&line[..4], b"INFO") {
            RouteOp::Info(line[4..].trim_ascii())
        } else {
            return Err(ParseError::UnknownOp);
        };
        self.scanned = 0;
        Ok(Some((op, after)))
    }

    fn parse_msg<'a>(
        &mut self,
        buf: &'a [u8],
        args: &'a [u8],
        after: usize,
        headers: bool,
    ) -> Result<Option<(RouteOp<'a>, usize)>, ParseError> {
        let n = spans(args).count();
        let sizes = if headers { 2 } else { 1 };
        if n < 2 + sizes {
            return Err(ParseError::BadArgs);
        }
        let mut it = spans(args);
        let mut next = || it.next().map(|(s, e)| &args[s..e]);
        let account = next().ok_or(ParseError::BadArgs)?;
        let subject = next().ok_or(ParseError::BadArgs)?;
        let middle = n - 2 - sizes;
        let (reply, queues) = match middle {
            0 => (None, &b""[..]),
            1 => (next(), &b""[..]),
            _ => {
                let marker = next().ok_or(ParseError::BadArgs)?;
                let reply = match marker {
                    b"+" => Some(next().ok_or(ParseError::BadArgs)?),
                    b"|" => None,
                    _ => return Err(ParseError::BadArgs),
                };
                let qcount = middle - 1 - usize::from(reply.is_some());
                // The queue names as one slice of the line, without collecting spans
                // (this runs per cross-node queue message).
                let mut first = None;
                let mut last = 0;
                for (st, e) in spans(args).skip(n - sizes - qcount).take(qcount) {
                    first.get_or_insert(st);
                    last = e;
                }
                let q = first.map_or(&b""[..], |f| &args[f..last]);
                for _ in 0..qcount {
                    next();
                }
                (reply, q)
            }
        };
        let hdr_len = if headers {
            Some(parse_size(next().ok_or(ParseError::BadArgs)?).ok_or(ParseError::BadArgs)?)
        } else {
            None
        };
        let size = parse_size(next().ok_or(ParseError::BadArgs)?).ok_or(ParseError::BadArgs)?;
        if hdr_len.is_some_and(|h| h > size) {
            return Err(ParseError::BadArgs);
        }
        let Some((payload, end)) = take_payload(buf, after, size, &mut self.scanned)? else {
            return Ok(None);
        };
        Ok(Some((
            RouteOp::Msg {
                account,
                subject,
                reply,
                queues,
                hdr_len,
                payload,
            },
            end,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(input: &[u8]) -> RouteOp<'_> {
        let limits = ParserLimits {
            max_control_line: 65536,
            max_payload: None,
        };
        RouteParser::new().parse(input, &limits).unwrap().unwrap().0
    }

    #[test]
    fn captured_forms() {
        assert_eq!(
            one(b"RS+ $G q.x grp 2\r\n"),
            RouteOp::Sub {
                account: b"$G",
                subject: b"q.x",
                queue: Some(b"grp"),
                weight: 2
            }
        );
        assert_eq!(
            one(b"RS- $G foo\r\n"),
            RouteOp::Unsub {
                account: b"$G",
                subject: b"foo",
                queue: None
            }
        );
        match one(b"RMSG $G q.x + r.0 grp other 1\r\n0\r\n") {
            RouteOp::Msg {
                reply,
                queues,
                payload,
                ..
            } => {
                assert_eq!(reply, Some(&b"r.0"[..]));
                assert_eq!(queues, b"grp other");
                assert_eq!(payload, b"0");
            }
            other => panic!("{other:?}"),
        }
        match one(b"RMSG $G q.x | grp 5\r\nhello\r\n") {
            RouteOp::Msg { reply, queues, .. } => {
                assert_eq!(reply, None);
                assert_eq!(queues, b"grp");
            }
            other => panic!("{other:?}"),
        }
        match one(b"HMSG $G foo rr 12 14\r\nNATS/1.0\r\n\r\nhi\r\n") {
            RouteOp::Msg { reply, hdr_len, .. } => {
                assert_eq!(reply, Some(&b"rr"[..]));
                assert_eq!(hdr_len, Some(12));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            one(b"RMSG $G foo 5\r\nhello\r\n"),
            RouteOp::Msg { reply: None, .. }
        ));
        let limits = ParserLimits {
            max_control_line: 65536,
            max_payload: None,
        };
        assert_eq!(
            RouteParser::new().parse(b"RMSG $G foo 5\r\nhelloXX", &limits),
            Err(ParseError::UnknownOp)
        );
        assert_eq!(
            RouteParser::new().parse(b"RMSG $G foo x 1 5\r\nhello\r\n", &limits),
            Err(ParseError::BadArgs)
        );
    }
}
