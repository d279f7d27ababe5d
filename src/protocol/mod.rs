//! The NATS wire protocol, pure: no tokio, no locks.
//!
//! `parser` turns bytes into [`Op`]s that borrow from the read buffer (zero copy: the
//! payload is copied exactly once, into each receiver's outbound buffer), `encode` writes
//! server operations, `info` holds the INFO and CONNECT JSON shapes.

pub mod encode;
pub mod info;
pub mod parser;
pub mod route_ops;

pub use parser::{ParseError, Parser};
pub use route_ops::{RouteOp, RouteParser};

/// One operation read from a client connection. Slices borrow from the read buffer and
/// are valid until the caller consumes the bytes the parser reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op<'a> {
    /// `CONNECT <json>`
    Connect(&'a [u8]),
    /// `PUB <subject> [reply] <#bytes>` + payload, or `HPUB ... <#hdr> <#total>` + headers + payload.
    /// `hdr_len` is `None` for PUB; `payload` includes the header block for HPUB.
    Pub {
        subject: &'a [u8],
        reply: Option<&'a [u8]>,
        hdr_len: Option<usize>,
        payload: &'a [u8],
    },
    /// `SUB <subject> [queue] <sid>`
    Sub {
        subject: &'a [u8],
        queue: Option<&'a [u8]>,
        sid: &'a [u8],
    },
    /// `UNSUB <sid> [max_msgs]`
    Unsub {
        sid: &'a [u8],
        max: Option<u64>,
    },
    Ping,
    Pong,
    /// `INFO` from a client: accepted and ignored, as nats-server does.
    Info,
    /// `+OK` from a client: ignored.
    Ok,
    /// `-ERR` from a client: nats-server logs it and closes the connection.
    Err(&'a [u8]),
}

/// Limits the parser enforces before a payload is read.
#[derive(Debug, Clone, Copy)]
pub struct ParserLimits {
    /// Bytes allowed after the op name on one control line (nats-server max_control_line).
    pub max_control_line: usize,
    /// Largest PUB/HPUB payload (total incl. headers); `None` = no limit (routes).
    pub max_payload: Option<usize>,
}

impl Default for ParserLimits {
    fn default() -> Self {
        ParserLimits {
            max_control_line: 4096,
            max_payload: Some(1024 * 1024),
        }
    }
}

/// nats-server's trace form of an op (`PUB foo 5`), for `-V` logs.
impl std::fmt::Display for Op<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let t = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        match self {
            Op::Connect(j) => write!(f, "CONNECT {}", t(j)),
            Op::Pub {
                subject,
                reply,
                hdr_len,
                payload,
            } => {
                let op = if hdr_len.is_some() { "HPUB" } else { "PUB" };
                write!(f, "{op} {}", t(subject))?;
                if let Some(r) = reply {
                    write!(f, " {}", t(r))?;
                }
                if let Some(h) = hdr_len {
                    write!(f, " {h}")?;
                }
                write!(f, " {}", payload.len())
            }
            Op::Sub {
                subject,
                queue,
                sid,
            } => match queue {
                Some(q) => write!(f, "SUB {} {} {}", t(subject), t(q), t(sid)),
                None => write!(f, "SUB {} {}", t(subject), t(sid)),
            },
            Op::Unsub { sid, max } => match max {
                Some(m) => write!(f, "UNSUB {} {m}", t(sid)),
                None => write!(f, "UNSUB {}", t(sid)),
            },
            Op::Ping => f.write_str("PING"),
            Op::Pong => f.write_str("PONG"),
            Op::Info => f.write_str("INFO"),
            Op::Ok => f.write_str("+OK"),
            Op::Err(e) => write!(f, "-ERR {}", t(e)),
        }
    }
}
