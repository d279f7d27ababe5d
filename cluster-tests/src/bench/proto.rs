//! Minimal raw NATS text-protocol helpers for the load generators.
//!
//! Only what the benchmark needs: the connect handshake and an incremental,
//! allocation-free parser that counts `MSG`/`HMSG` frames (skipping payloads by
//! their declared size), answers server `PING`s and surfaces `-ERR`.

use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The `CONNECT` line every load-generator connection sends.
pub const CONNECT: &[u8] =
    b"CONNECT {\"verbose\":false,\"pedantic\":false,\"headers\":false,\"name\":\"tern-bench\",\"lang\":\"rust-raw\",\"version\":\"0\",\"protocol\":1}\r\n";

/// How long the handshake (INFO, CONNECT/PING → PONG) may take.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Read the server's first line and check it is an `INFO`.
pub async fn read_info(stream: &mut TcpStream) -> Result<Vec<u8>> {
    let mut line = Vec::with_capacity(1024);
    let mut byte = [0u8; 512];
    loop {
        let n = stream.read(&mut byte).await?;
        if n == 0 {
            bail!("connection closed before INFO");
        }
        line.extend_from_slice(&byte[..n]);
        if let Some(pos) = memchr::memmem::find(&line, b"\r\n") {
            if !line.starts_with(b"INFO ") {
                bail!(
                    "expected INFO, got {:?}",
                    String::from_utf8_lossy(&line[..pos])
                );
            }
            // INFO is the only thing the server sends before CONNECT, so there
            // is nothing after the first line to preserve.
            line.truncate(pos);
            return Ok(line);
        }
        if line.len() > 64 * 1024 {
            bail!("INFO line too long");
        }
    }
}

/// Connect to `addr`, read INFO, send CONNECT + `extra` (e.g. `SUB` lines) +
/// `PING` and wait for the `PONG`, so everything in `extra` is registered
/// server-side when this returns.
pub async fn connect(addr: &str, extra: &[u8]) -> Result<TcpStream> {
    let fut = async {
        let mut stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connect {addr}"))?;
        stream.set_nodelay(true)?;
        read_info(&mut stream).await?;
        let mut hello = Vec::with_capacity(CONNECT.len() + extra.len() + 6);
        hello.extend_from_slice(CONNECT);
        hello.extend_from_slice(extra);
        hello.extend_from_slice(b"PING\r\n");
        stream.write_all(&hello).await?;
        let mut parser = Parser::default();
        let mut buf = vec![0u8; 4096];
        while parser.pongs == 0 {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                bail!("connection closed during handshake");
            }
            parser.feed(&buf[..n], |_| {})?;
        }
        if parser.pings > 0 {
            stream.write_all(b"PONG\r\n").await?;
        }
        Ok::<_, anyhow::Error>(stream)
    };
    tokio::time::timeout(HANDSHAKE_TIMEOUT, fut)
        .await
        .map_err(|_| anyhow!("handshake with {addr} timed out"))?
}

/// Incremental protocol parser. Feed it raw bytes in any chunking; it counts
/// frames and calls back with the reply subject of every `MSG` (if any).
#[derive(Default)]
pub struct Parser {
    /// Bytes of an incomplete control line carried over from the last feed.
    partial: Vec<u8>,
    /// Payload bytes (+ trailing CRLF) still to skip.
    skip: usize,
    /// `MSG`/`HMSG` frames seen.
    pub msgs: u64,
    /// `PONG`s seen.
    pub pongs: u64,
    /// Server `PING`s seen and not yet answered (caller answers and resets).
    pub pings: u64,
}

/// Longest control line we accept before declaring the stream garbage.
const MAX_LINE: usize = 64 * 1024;

impl Parser {
    /// Consume `data`. `on_msg` gets the reply subject of each `MSG` that has
    /// one (only the responder cares), called when the header line is parsed.
    pub fn feed(&mut self, mut data: &[u8], mut on_msg: impl FnMut(&[u8])) -> Result<()> {
        loop {
            if self.skip > 0 {
                let s = self.skip.min(data.len());
                self.skip -= s;
                data = &data[s..];
            }
            if data.is_empty() {
                return Ok(());
            }
            if !self.partial.is_empty() {
                // Finish the carried-over line; the line may end in this chunk
                // or the CR may be the last carried byte.
                let start = self.partial.len();
                self.partial.extend_from_slice(data);
                let search_from = start.saturating_sub(1);
                match memchr::memchr(b'\n', &self.partial[search_from..]) {
                    Some(rel) => {
                        let nl = search_from + rel;
                        let consumed_from_data = nl + 1 - start;
                        let line = std::mem::take(&mut self.partial);
                        self.line(&line[..nl], &mut on_msg)?;
                        data = &data[consumed_from_data..];
                        continue;
                    }
                    None => {
                        if self.partial.len() > MAX_LINE {
                            bail!("protocol line too long");
                        }
                        return Ok(());
                    }
                }
            }
            match memchr::memchr(b'\n', data) {
                Some(nl) => {
                    let (line, rest) = data.split_at(nl + 1);
                    self.line(&line[..nl], &mut on_msg)?;
                    data = rest;
                }
                None => {
                    if data.len() > MAX_LINE {
                        bail!("protocol line too long");
                    }
                    self.partial.extend_from_slice(data);
                    return Ok(());
                }
            }
        }
    }

    /// Handle one control line (without the `\n`; a trailing `\r` is allowed).
    fn line(&mut self, line: &[u8], on_msg: &mut impl FnMut(&[u8])) -> Result<()> {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        match line.first() {
            Some(b'M') | Some(b'H') if line.starts_with(b"MSG ") || line.starts_with(b"HMSG ") => {
                let is_hmsg = line[0] == b'H';
                // MSG <subj> <sid> [reply] <size>
                // HMSG <subj> <sid> [reply] <hdr size> <total size>
                let mut toks = line.split(|&b| b == b' ').filter(|t| !t.is_empty());
                let toks_vec: [Option<&[u8]>; 6] = [
                    toks.next(),
                    toks.next(),
                    toks.next(),
                    toks.next(),
                    toks.next(),
                    toks.next(),
                ];
                let n = toks_vec.iter().take_while(|t| t.is_some()).count();
                let size_idx = n.checked_sub(1).ok_or_else(|| anyhow!("empty MSG"))?;
                let size = toks_vec[size_idx]
                    .and_then(parse_usize)
                    .ok_or_else(|| anyhow!("bad MSG line {:?}", String::from_utf8_lossy(line)))?;
                let args = if is_hmsg { n - 1 } else { n };
                // args: verb subj sid [reply] size  → 4 without reply, 5 with.
                if args == 5 {
                    if let Some(reply) = toks_vec[3] {
                        on_msg(reply);
                    }
                }
                self.msgs += 1;
                self.skip = size + 2;
            }
            Some(b'P') if line == b"PONG" => self.pongs += 1,
            Some(b'P') if line == b"PING" => self.pings += 1,
            Some(b'+') if line == b"+OK" => {}
            Some(b'I') if line.starts_with(b"INFO") => {}
            Some(b'-') => bail!("server error: {}", String::from_utf8_lossy(line)),
            None => {}
            _ => bail!(
                "unexpected protocol line {:?}",
                String::from_utf8_lossy(line)
            ),
        }
        Ok(())
    }
}

fn parse_usize(s: &[u8]) -> Option<usize> {
    if s.is_empty() || s.len() > 18 {
        return None;
    }
    let mut v = 0usize;
    for &b in s {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v * 10 + usize::from(b - b'0');
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(chunks: &[&[u8]]) -> (Parser, Vec<Vec<u8>>) {
        let mut p = Parser::default();
        let mut replies = Vec::new();
        for c in chunks {
            p.feed(c, |r| replies.push(r.to_vec())).expect("parse");
        }
        (p, replies)
    }

    #[test]
    fn counts_messages_any_split() {
        let stream: &[u8] =
            b"MSG a 1 5\r\nMSG x\r\nPING\r\nMSG b 2 _INBOX.x 3\r\nabc\r\nHMSG c 1 12 14\r\nNATS/1.0\r\n\r\nhi\r\nPONG\r\n";
        for split in 0..stream.len() {
            for split2 in split..stream.len() {
                let (p, r) = run(&[&stream[..split], &stream[split..split2], &stream[split2..]]);
                assert_eq!(p.msgs, 3, "split {split}/{split2}");
                assert_eq!(p.pings, 1);
                assert_eq!(p.pongs, 1);
                assert_eq!(r, vec![b"_INBOX.x".to_vec()]);
            }
        }
    }

    #[test]
    fn err_is_error() {
        let mut p = Parser::default();
        assert!(p.feed(b"-ERR 'Slow Consumer'\r\n", |_| {}).is_err());
    }
}
