//! In-process servers and state-based waiting.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use tern::{Config, Server, ServerHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Starts a tern server in this process on 127.0.0.1 with a random port.
pub async fn start(config: Config) -> ServerHandle {
    if std::env::var_os("TERN_TEST_LOG").is_some() {
        let _ = tern::logging::init(true, false, true, None);
    }
    Server::start(config).await.expect("server starts")
}

/// A loopback config with a random client port and monitoring on a random port.
pub fn local_config() -> Config {
    let mut c = Config::local();
    c.http_port = Some(-1);
    c
}

/// Polls `check` until it returns true, failing the test with `what` at the deadline.
pub async fn wait_until<F, Fut>(deadline: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let end = tokio::time::Instant::now() + deadline;
    loop {
        if check().await {
            return;
        }
        if tokio::time::Instant::now() > end {
            panic!("timed out after {deadline:?} waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// GETs a monitoring endpoint and parses the JSON.
pub async fn monitor_json(addr: SocketAddr, path: &str) -> serde_json::Value {
    let body = monitor_text(addr, path).await;
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("bad JSON from {path}: {e}: {body}"))
}

/// GETs a monitoring endpoint's body as text (e.g. /metrics).
pub async fn monitor_text(addr: SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect(addr).await.expect("connect monitor");
    let req = format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n");
    s.write_all(req.as_bytes()).await.expect("write");
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).await.expect("read");
    let text = String::from_utf8_lossy(&resp);
    text.split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_string()
}

/// The value of the first Prometheus sample named `name` whose labels contain every
/// `k="v"` in `labels`; `None` when there is none.
pub fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (series, value) = l.rsplit_once(' ')?;
        let (n, rest) = series.split_once('{').unwrap_or((series, ""));
        let ok = n == name
            && labels
                .iter()
                .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")));
        ok.then(|| value.parse().ok()).flatten()
    })
}

/// A raw protocol connection for byte-level tests.
pub struct RawConn {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl RawConn {
    /// Connects and reads the INFO line.
    pub async fn connect(addr: SocketAddr) -> (RawConn, String) {
        let stream = TcpStream::connect(addr).await.expect("connect");
        let mut c = RawConn {
            stream,
            buf: Vec::new(),
        };
        let info = c.read_line().await;
        (c, info)
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("send");
    }

    /// Reads one CRLF-terminated line (without the CRLF); empty string on EOF.
    pub async fn read_line(&mut self) -> String {
        loop {
            if let Some(p) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line: Vec<u8> = self.buf.drain(..p + 2).collect();
                return String::from_utf8_lossy(&line[..p]).into_owned();
            }
            let mut tmp = [0u8; 65536];
            let n = tokio::time::timeout(Duration::from_secs(5), self.stream.read(&mut tmp))
                .await
                .expect("read timed out")
                .unwrap_or(0);
            if n == 0 {
                return String::new();
            }
            self.buf.extend_from_slice(&tmp[..n]);
        }
    }

    /// Sends PING and reads lines until PONG; returns the lines before it.
    pub async fn flush(&mut self) -> Vec<String> {
        self.send(b"PING\r\n").await;
        let mut lines = Vec::new();
        loop {
            let l = self.read_line().await;
            if l == "PONG" || l.is_empty() {
                return lines;
            }
            lines.push(l);
        }
    }
}
