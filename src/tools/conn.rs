//! A small raw-protocol NATS client for the `tern pub|sub|req|reply|bench` commands.
//!
//! One connection, driven by one task: writes are buffered and sent on [`Conn::flush`],
//! reads parse `MSG`/`HMSG`/`PING`/`PONG`/`+OK`/`-ERR`/`INFO` and answer server PINGs.
//! No reconnect logic here: the commands retry by calling [`Conn::connect`] again with
//! the server list. Not used by the server; it keeps the `tern` binary free of a full
//! client library.

use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// The connection's byte stream: TCP, or TLS over it.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// One server from `--server`: `nats://[user:pass@|token@]host[:port]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerUrl {
    pub host: String,
    pub port: u16,
    pub user: Option<String>,
    pub pass: Option<String>,
    pub token: Option<String>,
    /// `tls://`: TLS whatever the server's INFO says.
    pub tls: bool,
}

impl ServerUrl {
    pub fn addr(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// Parses a comma-separated server list the way the nats CLI takes `--server`.
pub fn parse_servers(list: &str) -> Result<Vec<ServerUrl>> {
    let urls: Vec<ServerUrl> = list
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(parse_url)
        .collect::<Result<_>>()?;
    if urls.is_empty() {
        bail!("no server given");
    }
    Ok(urls)
}

fn parse_url(s: &str) -> Result<ServerUrl> {
    let (rest, tls) = match s.split_once("://") {
        Some(("nats", r)) => (r, false),
        Some(("tls", r)) => (r, true),
        Some((scheme, _)) => bail!("unsupported scheme \"{scheme}\" in {s} (nats:// or tls://)"),
        None => (s, false),
    };
    let rest = rest.trim_end_matches('/');
    let (auth, hostport) = match rest.rsplit_once('@') {
        Some((a, h)) => (Some(a), h),
        None => (None, rest),
    };
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (h, p) = v6
            .split_once(']')
            .ok_or_else(|| anyhow!("bad IPv6 address in {s}"))?;
        (h.to_string(), p.strip_prefix(':'))
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (hostport.to_string(), None),
        }
    };
    let port = match port {
        Some(p) => p.parse().with_context(|| format!("bad port in {s}"))?,
        None => 4222,
    };
    let host = if host.is_empty() {
        "127.0.0.1".to_string()
    } else {
        host
    };
    let (mut user, mut pass, mut token) = (None, None, None);
    match auth.map(|a| a.split_once(':')) {
        Some(Some((u, p))) => {
            user = Some(u.to_string());
            pass = Some(p.to_string());
        }
        Some(None) => token = auth.map(String::from),
        None => {}
    }
    Ok(ServerUrl {
        host,
        port,
        user,
        pass,
        token,
        tls,
    })
}

/// Credentials given by flags; they win over those in the URL.
#[derive(Debug, Clone, Default)]
pub struct Auth {
    pub user: Option<String>,
    pub pass: Option<String>,
    pub token: Option<String>,
    pub tls: super::tls::TlsOpts,
    /// User JWT (`--creds`), sent with the nonce signature.
    pub jwt: Option<String>,
    /// User nkey seed (`--creds` or `--nkey`) that signs the INFO nonce.
    pub seed: Option<String>,
}

/// CONNECT members proving the seed: `sig` over the INFO nonce, plus `jwt` with a
/// credentials file or `nkey` (the public key) without one.
fn sign_nonce(
    info: &serde_json::Value,
    auth: &Auth,
    connect: &mut serde_json::Value,
) -> Result<()> {
    use base64::Engine as _;
    let Some(seed) = &auth.seed else {
        return Ok(());
    };
    let kp = nkeys::KeyPair::from_seed(seed).map_err(|e| anyhow!("bad nkey seed: {e}"))?;
    let nonce = info["nonce"].as_str().unwrap_or("");
    let sig = kp
        .sign(nonce.as_bytes())
        .map_err(|e| anyhow!("signing the nonce: {e}"))?;
    connect["sig"] = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sig)
        .into();
    match &auth.jwt {
        Some(jwt) => connect["jwt"] = jwt.clone().into(),
        None => connect["nkey"] = kp.public_key().into(),
    }
    Ok(())
}

/// A message delivered to one of our subscriptions.
#[derive(Debug, Clone)]
pub struct Msg {
    pub subject: String,
    pub sid: u64,
    pub reply: Option<String>,
    pub headers: Option<Bytes>,
    pub payload: Bytes,
}

pub struct Conn {
    stream: Box<dyn Io>,
    rbuf: BytesMut,
    wbuf: Vec<u8>,
    /// The server's INFO.
    pub info: serde_json::Value,
    /// Which entry of the server list we are on.
    pub server: ServerUrl,
    next_sid: u64,
}

const HANDSHAKE: Duration = Duration::from_secs(5);

impl Conn {
    /// Connects to the first server of `servers` that answers, starting at `start`
    /// (mod the list length), and completes CONNECT + PING/PONG.
    pub async fn connect(servers: &[ServerUrl], start: usize, auth: &Auth) -> Result<Conn> {
        let mut last = anyhow!("no server given");
        for i in 0..servers.len() {
            let s = &servers[(start + i) % servers.len()];
            match tokio::time::timeout(HANDSHAKE, Conn::connect_one(s, auth)).await {
                Ok(Ok(c)) => return Ok(c),
                Ok(Err(e)) => last = e.context(format!("nats://{}", s.addr())),
                Err(_) => last = anyhow!("nats://{}: handshake timed out", s.addr()),
            }
        }
        Err(last)
    }

    async fn connect_one(s: &ServerUrl, auth: &Auth) -> Result<Conn> {
        let stream = TcpStream::connect(s.addr()).await?;
        stream.set_nodelay(true)?;
        let mut c = Conn {
            stream: Box::new(stream),
            rbuf: BytesMut::with_capacity(64 * 1024),
            wbuf: Vec::with_capacity(64 * 1024),
            info: serde_json::Value::Null,
            server: s.clone(),
            next_sid: 1,
        };
        let line = c.read_line().await?;
        let json = line
            .strip_prefix("INFO ")
            .ok_or_else(|| anyhow!("expected INFO, got {line:?}"))?;
        c.info = serde_json::from_str(json).context("bad INFO")?;
        let tls_required = c.info["tls_required"].as_bool() == Some(true);
        if tls_required || s.tls || auth.tls.requested() {
            c.upgrade(s, auth).await?;
        }
        let mut connect = serde_json::json!({
            "verbose": false, "pedantic": false, "tls_required": s.tls || auth.tls.requested(),
            "name": "tern-cli", "lang": "rust-tern", "version": env!("CARGO_PKG_VERSION"),
            "protocol": 1, "headers": true, "no_responders": true, "echo": true,
        });
        let user = auth.user.clone().or_else(|| s.user.clone());
        let pass = auth.pass.clone().or_else(|| s.pass.clone());
        let token = auth.token.clone().or_else(|| s.token.clone());
        if let Some(u) = user {
            connect["user"] = u.into();
            connect["pass"] = pass.unwrap_or_default().into();
        }
        if let Some(t) = token {
            connect["auth_token"] = t.into();
        }
        sign_nonce(&c.info, auth, &mut connect)?;
        c.wbuf
            .extend_from_slice(format!("CONNECT {connect}\r\nPING\r\n").as_bytes());
        c.flush().await?;
        loop {
            let line = c.read_line().await?;
            match line.as_str() {
                "PONG" => return Ok(c),
                "+OK" => {}
                "PING" => c.wbuf.extend_from_slice(b"PONG\r\n"),
                l if l.starts_with("-ERR") => bail!("server error: {}", &l[5..]),
                l if l.starts_with("INFO ") => {}
                l => bail!("unexpected {l:?} during handshake"),
            }
        }
    }

    /// TLS after INFO, as the NATS clients do (the server sends nothing more until
    /// the handshake, so nothing is buffered past INFO).
    async fn upgrade(&mut self, s: &ServerUrl, auth: &Auth) -> Result<()> {
        let connector = auth.tls.connector()?;
        let name = rustls::pki_types::ServerName::try_from(s.host.clone())
            .map_err(|e| anyhow!("invalid server name {}: {e}", s.host))?;
        let plain = std::mem::replace(&mut self.stream, Box::new(tokio::io::duplex(1).0));
        let tls = connector
            .connect(name, plain)
            .await
            .context("TLS handshake")?;
        self.stream = Box::new(tls);
        Ok(())
    }

    /// The server's `max_payload`, 1 MiB when absent.
    pub fn max_payload(&self) -> usize {
        self.info["max_payload"].as_u64().unwrap_or(1 << 20) as usize
    }

    /// Queues `SUB subject [queue] sid` and returns the sid.
    pub fn subscribe(&mut self, subject: &str, queue: Option<&str>) -> u64 {
        let sid = self.next_sid;
        self.next_sid += 1;
        let line = match queue {
            Some(q) => format!("SUB {subject} {q} {sid}\r\n"),
            None => format!("SUB {subject} {sid}\r\n"),
        };
        self.wbuf.extend_from_slice(line.as_bytes());
        sid
    }

    /// Queues `UNSUB sid max` (auto-unsubscribe after `max` more messages).
    pub fn unsubscribe_after(&mut self, sid: u64, max: u64) {
        self.wbuf
            .extend_from_slice(format!("UNSUB {sid} {max}\r\n").as_bytes());
    }

    /// Queues a `PUB`.
    pub fn publish(&mut self, subject: &str, reply: Option<&str>, payload: &[u8]) {
        let line = match reply {
            Some(r) => format!("PUB {subject} {r} {}\r\n", payload.len()),
            None => format!("PUB {subject} {}\r\n", payload.len()),
        };
        self.wbuf.extend_from_slice(line.as_bytes());
        self.wbuf.extend_from_slice(payload);
        self.wbuf.extend_from_slice(b"\r\n");
    }

    /// Bytes queued and not yet written.
    pub fn pending(&self) -> usize {
        self.wbuf.len()
    }

    /// Writes everything queued.
    pub async fn flush(&mut self) -> Result<()> {
        if !self.wbuf.is_empty() {
            self.stream.write_all(&self.wbuf).await?;
            self.wbuf.clear();
        }
        Ok(())
    }

    /// Flushes, then sends PING and waits for the PONG: everything before it has been
    /// processed by the server. Messages that arrive meanwhile are returned.
    pub async fn round_trip(&mut self) -> Result<Vec<Msg>> {
        self.wbuf.extend_from_slice(b"PING\r\n");
        self.flush().await?;
        let mut msgs = Vec::new();
        loop {
            match self.next_event().await? {
                Event::Pong => return Ok(msgs),
                Event::Msg(m) => msgs.push(m),
            }
        }
    }

    /// The next message (server PINGs are answered on the way).
    pub async fn next_msg(&mut self) -> Result<Msg> {
        loop {
            if let Event::Msg(m) = self.next_event().await? {
                return Ok(m);
            }
        }
    }

    async fn next_event(&mut self) -> Result<Event> {
        loop {
            if let Some(ev) = self.parse()? {
                return Ok(ev);
            }
            self.fill().await?;
        }
    }

    /// Parses one event out of the read buffer; `Ok(None)` means more bytes are needed.
    fn parse(&mut self) -> Result<Option<Event>> {
        loop {
            let Some(nl) = memchr::memmem::find(&self.rbuf, b"\r\n") else {
                if self.rbuf.len() > 64 * 1024 {
                    bail!("protocol line too long");
                }
                return Ok(None);
            };
            let line = std::str::from_utf8(&self.rbuf[..nl])
                .context("non-UTF-8 control line")?
                .to_string();
            let mut toks = line.split_ascii_whitespace();
            let verb = toks.next().unwrap_or("");
            match verb {
                "MSG" | "HMSG" => {
                    let args: Vec<&str> = toks.collect();
                    let hmsg = verb == "HMSG";
                    let (fixed, has_reply) = match (hmsg, args.len()) {
                        (false, 3) | (true, 4) => (args.len(), false),
                        (false, 4) | (true, 5) => (args.len(), true),
                        _ => bail!("bad {verb} line {line:?}"),
                    };
                    let num = |s: &str| -> Result<usize> {
                        s.parse()
                            .with_context(|| format!("bad {verb} line {line:?}"))
                    };
                    let total = num(args[fixed - 1])?;
                    let hdr = if hmsg { num(args[fixed - 2])? } else { 0 };
                    if hdr > total {
                        bail!("bad {verb} line {line:?}");
                    }
                    if self.rbuf.len() < nl + 2 + total + 2 {
                        return Ok(None);
                    }
                    let msg = Msg {
                        subject: args[0].to_string(),
                        sid: num(args[1])? as u64,
                        reply: has_reply.then(|| args[2].to_string()),
                        headers: None,
                        payload: Bytes::new(),
                    };
                    self.rbuf.advance(nl + 2);
                    let mut body = self.rbuf.split_to(total).freeze();
                    self.rbuf.advance(2);
                    let headers = hmsg.then(|| body.split_to(hdr));
                    return Ok(Some(Event::Msg(Msg {
                        headers,
                        payload: body,
                        ..msg
                    })));
                }
                _ => {
                    self.rbuf.advance(nl + 2);
                    match verb {
                        "PING" => self.wbuf.extend_from_slice(b"PONG\r\n"),
                        "PONG" => return Ok(Some(Event::Pong)),
                        "+OK" | "INFO" | "" => {}
                        "-ERR" => bail!("server error: {}", line[4..].trim()),
                        _ => bail!("unexpected protocol line {line:?}"),
                    }
                }
            }
        }
    }

    async fn fill(&mut self) -> Result<()> {
        // Answer server PINGs (queued by parse) before blocking on the socket.
        self.flush().await?;
        if self.rbuf.capacity() - self.rbuf.len() < 16 * 1024 {
            self.rbuf.reserve(64 * 1024);
        }
        let n = self.stream.read_buf(&mut self.rbuf).await?;
        if n == 0 {
            bail!("connection closed by the server");
        }
        Ok(())
    }

    async fn read_line(&mut self) -> Result<String> {
        loop {
            if let Some(nl) = memchr::memmem::find(&self.rbuf, b"\r\n") {
                let line = String::from_utf8_lossy(&self.rbuf[..nl]).into_owned();
                self.rbuf.advance(nl + 2);
                return Ok(line);
            }
            if self.rbuf.len() > 64 * 1024 {
                bail!("protocol line too long");
            }
            self.fill().await?;
        }
    }
}

enum Event {
    Msg(Msg),
    Pong,
}

/// A new unique inbox subject.
pub fn new_inbox() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    let id: String = (0..22)
        .map(|_| {
            let c = rng.random_range(0..62u8);
            char::from(match c {
                0..=9 => b'0' + c,
                10..=35 => b'a' + c - 10,
                _ => b'A' + c - 36,
            })
        })
        .collect();
    format!("_INBOX.{id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls() {
        let u = parse_servers("nats://u:p@h1:4333, h2,[::1]:5,tok@h3:7").unwrap();
        assert_eq!(u.len(), 4);
        assert_eq!(
            (u[0].host.as_str(), u[0].port, u[0].user.as_deref()),
            ("h1", 4333, Some("u"))
        );
        assert_eq!(u[0].pass.as_deref(), Some("p"));
        assert_eq!((u[1].host.as_str(), u[1].port), ("h2", 4222));
        assert_eq!(u[2].addr(), "[::1]:5");
        assert_eq!(u[3].token.as_deref(), Some("tok"));
        let t = parse_servers("tls://h:1").unwrap();
        assert!(t[0].tls && !u[0].tls);
        assert!(parse_servers("ws://h:1").is_err());
        assert!(parse_servers("h:notaport").is_err());
        assert!(parse_servers(" , ").is_err());
    }

    #[test]
    fn inbox_is_unique() {
        assert_ne!(new_inbox(), new_inbox());
        assert!(new_inbox().starts_with("_INBOX."));
    }
}
