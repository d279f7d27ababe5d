//! Protocol tracing (`-V`, `trace: true`) in nats-server's wording, so the lines read
//! the same in either server's log: `<<- [OP]` for what a client sent (CONNECT with its
//! secrets redacted), `<<- MSG_PAYLOAD: ["..."]` after a PUB, `->> [OK]`, `->> [PONG]`,
//! `->> [-ERR ...]` and `->> [MSG ...]` for what it was sent, `<-> [DELSUB sid]` when a
//! subscription goes. Every line carries the connection's prefix (`addr - cid:N - ` and,
//! after CONNECT, the client and user tag). Nothing here runs unless tracing is on.

use super::{Client, Conn, LogPrefix};
use crate::protocol::Op;

impl Conn {
    /// An inbound op, then its payload for PUB/HPUB.
    pub(super) fn trace_in(&self, op: &Op<'_>) {
        let who = self.who();
        match op {
            Op::Connect(json) => {
                tracing::trace!("{who}<<- [CONNECT {}]", crate::auth::redact_connect(json))
            }
            Op::Pub {
                payload, hdr_len, ..
            } => {
                tracing::trace!("{who}<<- [{op}]");
                if hdr_len.is_some() && !self.opts.headers {
                    // Refused before its payload is read (the connection closes).
                    return;
                }
                let max = self.cfg.max_traced_msg_len;
                tracing::trace!("{who}<<- MSG_PAYLOAD: [{}]", payload_text(payload, max));
            }
            _ => tracing::trace!("{who}<<- [{op}]"),
        }
    }

    /// A control line sent to the client: `what` is the op as nats-server names it
    /// (`OK`, `PONG`, `PING`, `-ERR text`).
    pub(super) fn trace_out(&self, what: &str) {
        if self.trace {
            trace_out(self.who(), what);
        }
    }

    /// A subscription removed (UNSUB, or a reload that no longer allows it).
    pub(super) fn trace_delsub(&self, sid: &[u8]) {
        if self.trace {
            trace_delsub(self.who(), sid);
        }
    }
}

pub(super) fn trace_out(who: LogPrefix<'_>, what: &str) {
    tracing::trace!("{who}->> [{what}]");
}

pub(super) fn trace_delsub(who: LogPrefix<'_>, sid: &[u8]) {
    tracing::trace!("{who}<-> [DELSUB {}]", String::from_utf8_lossy(sid));
}

/// `->> [MSG subject sid [reply] size]` (or HMSG with the header size) and its payload,
/// on the receiving connection's prefix. Called by publishers' delivery paths only when
/// [`crate::logging::trace_enabled`].
pub(crate) fn trace_msg_out(
    client: &Client,
    msg: (&[u8], &[u8], Option<&[u8]>),
    hdr_len: Option<usize>,
    payload: &[u8],
    max_traced: i32,
) {
    let (subject, sid, reply) = msg;
    let tag = client.meta.lock().log_tag.clone();
    let t = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let mut line = match hdr_len {
        Some(_) => format!("HMSG {} {}", t(subject), t(sid)),
        None => format!("MSG {} {}", t(subject), t(sid)),
    };
    if let Some(r) = reply {
        line.push(' ');
        line.push_str(&t(r));
    }
    if let Some(h) = hdr_len {
        line.push_str(&format!(" {h}"));
    }
    line.push_str(&format!(" {}", payload.len()));
    let who = client.prefix(&tag);
    tracing::trace!("{who}->> [{line}]");
    tracing::trace!(
        "{who}->> MSG_PAYLOAD: [{}]",
        payload_text(payload, max_traced)
    );
}

/// Go's `%q` of the payload; with `max_traced_msg_len`, nats-server keeps that many
/// bytes of the quoted text and adds `...` inside the quotes.
fn payload_text(payload: &[u8], max: i32) -> String {
    let max = max.max(0) as usize;
    if max > 0 && payload.len() > max {
        let quoted = crate::auth::permissions::go_quote(&payload[..max]);
        let inner: String = quoted.chars().skip(1).take(max).collect();
        format!("\"{inner}...\"")
    } else {
        crate::auth::permissions::go_quote(payload)
    }
}

#[cfg(test)]
mod tests {
    use super::payload_text;

    #[test]
    fn payload_is_go_quoted_and_truncated_like_nats_server() {
        assert_eq!(payload_text(b"a\x01\"", 0), r#""a\x01\"""#);
        assert_eq!(
            payload_text(b"NATS/1.0\r\n\r\nhi", 0),
            r#""NATS/1.0\r\n\r\nhi""#
        );
        assert_eq!(payload_text(b"hello world", 5), r#""hello...""#);
        assert_eq!(payload_text(b"hello", 5), r#""hello""#);
    }
}
