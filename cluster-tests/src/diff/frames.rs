//! Splitting what a server sent into frames and rendering transcripts to compare.

use super::*;

/// A frame the server sent: the control line (with its line end) and, for MSG/HMSG,
/// the payload including its trailing `\r\n`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// Upper-cased first token of the line (`INFO`, `MSG`, `+OK`, ...).
    pub op: String,
    /// Raw control line including `\r\n`.
    pub line: Vec<u8>,
    /// MSG/HMSG payload (headers + body) including the trailing `\r\n`.
    pub payload: Option<Vec<u8>>,
}

impl Frame {
    /// Whitespace-separated arguments of the control line (after the op).
    pub fn args(&self) -> Vec<String> {
        String::from_utf8_lossy(&self.line)
            .split_ascii_whitespace()
            .skip(1)
            .map(str::to_owned)
            .collect()
    }

    /// Payload without the trailing `\r\n` (and, for HMSG, including the header block).
    pub fn body(&self) -> &[u8] {
        match &self.payload {
            Some(p) if p.len() >= 2 => &p[..p.len() - 2],
            Some(p) => p,
            None => &[],
        }
    }
}

/// One recorded event.
#[derive(Clone, Debug)]
pub enum Entry {
    /// Bytes the client wrote.
    Sent(usize, Vec<u8>),
    /// A frame the server wrote.
    Recv(usize, Frame),
    /// `<EOF>`, `<TIMEOUT ...>` and similar.
    Marker(usize, String),
}

/// Everything that happened on all connections of one run.
#[derive(Clone, Debug)]
pub struct Transcript {
    /// Which server.
    pub side: Side,
    /// Client port of that server (for INFO masking).
    pub port: u16,
    /// Events in step order.
    pub entries: Vec<Entry>,
}

impl Transcript {
    /// Frames received on connection `conn`, server PINGs excluded.
    pub fn frames(&self, conn: usize) -> Vec<&Frame> {
        self.entries
            .iter()
            .filter_map(|e| match e {
                Entry::Recv(c, f) if *c == conn && f.op != "PING" => Some(f),
                _ => None,
            })
            .collect()
    }

    /// Whether `<EOF>` was seen on `conn`.
    pub fn closed(&self, conn: usize) -> bool {
        self.entries
            .iter()
            .any(|e| matches!(e, Entry::Marker(c, m) if *c == conn && m == "<EOF>"))
    }

    /// The normalised, human-readable transcript that is compared.
    pub fn render(&self) -> String {
        let mut conns: Vec<usize> = self
            .entries
            .iter()
            .map(|e| match e {
                Entry::Sent(c, _) | Entry::Recv(c, _) | Entry::Marker(c, _) => *c,
            })
            .collect();
        conns.sort_unstable();
        conns.dedup();
        let mut out = String::new();
        for conn in conns {
            for e in &self.entries {
                match e {
                    Entry::Sent(c, b) if *c == conn => {
                        let _ = writeln!(out, "c{c} > {}", escape_trunc(b, 160));
                    }
                    Entry::Recv(c, f) if *c == conn => {
                        if f.op == "PING" {
                            continue; // server RTT/keepalive pings: see module docs
                        }
                        let _ = writeln!(out, "c{c} < {}", render_frame(f, self.port));
                    }
                    Entry::Marker(c, m) if *c == conn => {
                        let _ = writeln!(out, "c{c} {m}");
                    }
                    _ => {}
                }
            }
        }
        out
    }
}

pub(super) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Escapes `\r`, `\n`, `\t`, `\\` and non-printable bytes.
pub fn escape(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len());
    for &b in bytes {
        match b {
            b'\r' => s.push_str("\\r"),
            b'\n' => s.push_str("\\n"),
            b'\t' => s.push_str("\\t"),
            b'\\' => s.push_str("\\\\"),
            0x20..=0x7e => s.push(b as char),
            _ => {
                let _ = write!(s, "\\x{b:02x}");
            }
        }
    }
    s
}

pub(super) fn escape_trunc(bytes: &[u8], max: usize) -> String {
    if bytes.len() <= max {
        escape(bytes)
    } else {
        format!(
            "{}...<{} bytes, fnv {:016x}>...{}",
            escape(&bytes[..max / 2]),
            bytes.len(),
            fnv1a(bytes),
            escape(&bytes[bytes.len() - 8..])
        )
    }
}

pub(super) fn render_frame(f: &Frame, port: u16) -> String {
    if f.op == "INFO" {
        return render_info(&f.line, port);
    }
    let mut s = escape_trunc(&f.line, 200);
    if let Some(p) = &f.payload {
        s.push_str(&escape_trunc(p, 96));
    }
    s
}

/// Keys ignored entirely in INFO (may be present or absent on either side).
pub const INFO_IGNORED: &[&str] = &["git_commit", "xkey", "api_lvl"];

pub(super) fn mask_info_value(key: &str, v: &serde_json::Value, port: u16) -> serde_json::Value {
    use serde_json::Value;
    let masked = |ok: bool, m: &str| {
        if ok {
            Value::String(m.to_owned())
        } else {
            v.clone()
        }
    };
    let nonempty = v.as_str().is_some_and(|s| !s.is_empty());
    match key {
        "server_id" | "server_name" | "go" => masked(nonempty, "<str>"),
        "version" => {
            let ok = v.as_str().is_some_and(|s| {
                let core = s.split(['-', '+']).next().unwrap_or("");
                let parts: Vec<&str> = core.split('.').collect();
                parts.len() == 3
                    && parts
                        .iter()
                        .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
            });
            masked(ok, "<semver>")
        }
        "client_id" => masked(v.as_u64().is_some_and(|id| id > 0), "<id>"),
        "port" => masked(v.as_u64() == Some(u64::from(port)), "<port>"),
        "nonce" => masked(nonempty, "<nonce>"),
        "connect_urls" => masked(v.is_array(), "<urls>"),
        _ => v.clone(),
    }
}

pub(super) fn render_info(line: &[u8], port: u16) -> String {
    let text = String::from_utf8_lossy(line);
    let (Some(start), Some(end)) = (text.find('{'), text.rfind('}')) else {
        return format!("<BAD INFO> {}", escape(line));
    };
    let prefix = &text[..start];
    let suffix = &text[end + 1..];
    match serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&text[start..=end]) {
        Ok(map) => {
            let sorted: BTreeMap<&String, serde_json::Value> = map
                .iter()
                .filter(|(k, _)| !INFO_IGNORED.contains(&k.as_str()))
                .map(|(k, v)| (k, mask_info_value(k, v, port)))
                .collect();
            let json = serde_json::to_string(&sorted).unwrap_or_default();
            format!(
                "{}{}{}",
                escape(prefix.as_bytes()),
                json,
                escape(suffix.as_bytes())
            )
        }
        Err(e) => format!("<BAD INFO JSON: {e}> {}", escape(line)),
    }
}

/// Splits complete frames off the front of `buf`.
pub(super) fn take_frames(buf: &mut Vec<u8>) -> Vec<Frame> {
    let mut frames = Vec::new();
    while let Some(nl) = buf.iter().position(|&b| b == b'\n') {
        let line = &buf[..=nl];
        let text = String::from_utf8_lossy(line);
        let op = text
            .split_ascii_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        let size = if op == "MSG" || op == "HMSG" {
            text.split_ascii_whitespace()
                .last()
                .and_then(|s| s.parse::<usize>().ok())
        } else {
            None
        };
        match size {
            Some(n) => {
                let need = nl + 1 + n + 2;
                if buf.len() < need {
                    break;
                }
                let line = buf[..=nl].to_vec();
                let payload = buf[nl + 1..need].to_vec();
                buf.drain(..need);
                frames.push(Frame {
                    op,
                    line,
                    payload: Some(payload),
                });
            }
            None => {
                let line = buf[..=nl].to_vec();
                buf.drain(..=nl);
                frames.push(Frame {
                    op,
                    line,
                    payload: None,
                });
            }
        }
    }
    frames
}
