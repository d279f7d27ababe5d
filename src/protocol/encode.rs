//! Server-side operations written into an outbound buffer.
//!
//! Everything appends to a `Vec<u8>` the connection already owns: no allocation per
//! message once the buffer has grown to its working size.

/// `MSG <subject> <sid> [reply] <#bytes>\r\n<payload>\r\n`, or the HMSG form when
/// `hdr_len` is set (payload then starts with the header block).
#[inline]
pub fn write_msg(
    out: &mut Vec<u8>,
    subject: &[u8],
    sid: &[u8],
    reply: Option<&[u8]>,
    hdr_len: Option<usize>,
    payload: &[u8],
) {
    let mut num = itoa::Buffer::new();
    out.reserve(subject.len() + sid.len() + reply.map_or(0, <[u8]>::len) + payload.len() + 32);
    match hdr_len {
        Some(h) => {
            out.extend_from_slice(b"HMSG ");
            push_head(out, subject, sid, reply);
            out.extend_from_slice(num.format(h).as_bytes());
            out.push(b' ');
        }
        None => {
            out.extend_from_slice(b"MSG ");
            push_head(out, subject, sid, reply);
        }
    }
    out.extend_from_slice(num.format(payload.len()).as_bytes());
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(payload);
    out.extend_from_slice(b"\r\n");
}

#[inline]
fn push_head(out: &mut Vec<u8>, subject: &[u8], sid: &[u8], reply: Option<&[u8]>) {
    out.extend_from_slice(subject);
    out.push(b' ');
    out.extend_from_slice(sid);
    out.push(b' ');
    if let Some(r) = reply {
        out.extend_from_slice(r);
        out.push(b' ');
    }
}

/// Bytes `write_msg` will append (for the max_pending check before copying).
#[inline]
pub fn msg_len(
    subject: &[u8],
    sid: &[u8],
    reply: Option<&[u8]>,
    hdr_len: Option<usize>,
    payload: &[u8],
) -> usize {
    // "HMSG " / "MSG ", spaces, two size fields of at most 10 digits, two CRLFs.
    subject.len()
        + sid.len()
        + reply.map_or(0, |r| r.len() + 1)
        + payload.len()
        + if hdr_len.is_some() { 5 + 11 } else { 4 }
        + 2
        + 10
        + 4
}

/// `-ERR '<text>'\r\n`
pub fn write_err(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(b"-ERR '");
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(b"'\r\n");
}

/// The no-responders status message nats-server sends back to a requester:
/// `HMSG <reply> <sid> N N\r\nNATS/1.0 503\r\nNats-Subject: <subject>\r\n\r\n\r\n`.
pub fn write_no_responders(out: &mut Vec<u8>, reply: &[u8], sid: &[u8], subject: &[u8]) {
    let mut hdr = Vec::with_capacity(40 + subject.len());
    hdr.extend_from_slice(b"NATS/1.0 503\r\nNats-Subject: ");
    hdr.extend_from_slice(subject);
    hdr.extend_from_slice(b"\r\n\r\n");
    write_msg(out, reply, sid, None, Some(hdr.len()), &hdr);
}

/// `RMSG $G <subject> [reply] <#bytes>` / with a queue list
/// `RMSG $G <subject> + <reply> <q1 q2> <#bytes>` or `| <q1 q2>`, or the HMSG forms;
/// `queues` is the space-separated group list.
#[inline]
pub fn write_rmsg(
    out: &mut Vec<u8>,
    account: &[u8],
    subject: &[u8],
    reply: Option<&[u8]>,
    queues: &[&[u8]],
    hdr_len: Option<usize>,
    payload: &[u8],
) {
    let mut num = itoa::Buffer::new();
    out.extend_from_slice(if hdr_len.is_some() {
        b"HMSG "
    } else {
        b"RMSG "
    });
    out.extend_from_slice(account);
    out.push(b' ');
    out.extend_from_slice(subject);
    out.push(b' ');
    if queues.is_empty() {
        if let Some(r) = reply {
            out.extend_from_slice(r);
            out.push(b' ');
        }
    } else {
        match reply {
            Some(r) => {
                out.extend_from_slice(b"+ ");
                out.extend_from_slice(r);
                out.push(b' ');
            }
            None => out.extend_from_slice(b"| "),
        }
        for q in queues {
            out.extend_from_slice(q);
            out.push(b' ');
        }
    }
    if let Some(h) = hdr_len {
        out.extend_from_slice(num.format(h).as_bytes());
        out.push(b' ');
    }
    out.extend_from_slice(num.format(payload.len()).as_bytes());
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(payload);
    out.extend_from_slice(b"\r\n");
}

/// `RS+ <account> <subject>[ <queue> <weight>]\r\n`
pub fn write_rs_plus(
    out: &mut Vec<u8>,
    account: &[u8],
    subject: &[u8],
    queue: Option<(&[u8], u32)>,
) {
    out.extend_from_slice(b"RS+ ");
    out.extend_from_slice(account);
    out.push(b' ');
    out.extend_from_slice(subject);
    if let Some((q, w)) = queue {
        out.push(b' ');
        out.extend_from_slice(q);
        out.push(b' ');
        out.extend_from_slice(itoa::Buffer::new().format(w).as_bytes());
    }
    out.extend_from_slice(b"\r\n");
}

/// `RS- <account> <subject>[ <queue>]\r\n`
pub fn write_rs_minus(out: &mut Vec<u8>, account: &[u8], subject: &[u8], queue: Option<&[u8]>) {
    out.extend_from_slice(b"RS- ");
    out.extend_from_slice(account);
    out.push(b' ');
    out.extend_from_slice(subject);
    if let Some(q) = queue {
        out.push(b' ');
        out.extend_from_slice(q);
    }
    out.extend_from_slice(b"\r\n");
}

pub const PING: &[u8] = b"PING\r\n";
pub const PONG: &[u8] = b"PONG\r\n";
pub const OK: &[u8] = b"+OK\r\n";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn msg_forms() {
        let mut out = Vec::new();
        write_msg(&mut out, b"foo", b"1", None, None, b"hello");
        assert_eq!(out, b"MSG foo 1 5\r\nhello\r\n");
        out.clear();
        write_msg(&mut out, b"foo", b"1", Some(b"bar"), None, b"hi");
        assert_eq!(out, b"MSG foo 1 bar 2\r\nhi\r\n");
        out.clear();
        write_msg(
            &mut out,
            b"foo",
            b"1",
            Some(b"r"),
            Some(12),
            b"NATS/1.0\r\n\r\nhi",
        );
        assert_eq!(out, b"HMSG foo 1 r 12 14\r\nNATS/1.0\r\n\r\nhi\r\n");
    }

    #[test]
    fn route_forms() {
        let mut out = Vec::new();
        write_rmsg(
            &mut out,
            b"$G",
            b"q.x",
            Some(b"r.0"),
            &[b"grp", b"other"],
            None,
            b"0",
        );
        assert_eq!(out, b"RMSG $G q.x + r.0 grp other 1\r\n0\r\n");
        out.clear();
        write_rmsg(&mut out, b"$G", b"w", None, &[b"g"], None, b"0");
        assert_eq!(out, b"RMSG $G w | g 1\r\n0\r\n");
        out.clear();
        write_rmsg(
            &mut out,
            b"$G",
            b"foo",
            None,
            &[],
            Some(12),
            b"NATS/1.0\r\n\r\nhi",
        );
        assert_eq!(out, b"HMSG $G foo 12 14\r\nNATS/1.0\r\n\r\nhi\r\n");
        out.clear();
        write_rs_plus(&mut out, b"$G", b"q.x", Some((b"grp", 2)));
        write_rs_minus(&mut out, b"$G", b"foo", None);
        assert_eq!(out, b"RS+ $G q.x grp 2\r\nRS- $G foo\r\n");
    }

    #[test]
    fn no_responders_bytes() {
        let mut out = Vec::new();
        write_no_responders(&mut out, b"_INBOX.x", b"2", b"nobody");
        assert_eq!(
            out,
            b"HMSG _INBOX.x 2 38 38\r\nNATS/1.0 503\r\nNats-Subject: nobody\r\n\r\n\r\n".to_vec()
        );
    }

    #[test]
    fn msg_len_is_an_upper_bound() {
        let mut out = Vec::new();
        write_msg(&mut out, b"a.b", b"12", Some(b"r"), Some(3), b"xyzpayload");
        assert!(msg_len(b"a.b", b"12", Some(b"r"), Some(3), b"xyzpayload") >= out.len());
    }
}
