//! The WebSocket client listener (`websocket { }`): TLS (wss) when configured, the HTTP
//! upgrade ([`handshake`]), then frames ([`frames`]) carrying the unchanged NATS
//! protocol into the ordinary client read loop.
//!
//! Two pump tasks sit between the socket and the client's byte stream (an in-memory
//! duplex pipe): inbound decodes client frames and answers pings, outbound frames what
//! the client writer produces. A bad frame ends only its own connection.

pub mod frames;
pub mod handshake;
#[cfg(test)]
mod proptests;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use parking_lot::Mutex;
use soketto::base::OpCode;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use crate::config::{Config, WebsocketConfig};
use crate::error::StartError;
use crate::net::tls::TlsSetup;
use crate::protocol::info::ServerInfo;
use crate::server::{fmt_host_port, stopped, ServerShared};

use frames::{status, Control, FrameDecoder, FrameEncoder};
use handshake::OriginPolicy;

/// Size of the in-memory pipes between the pumps and the client read loop / writer.
const PIPE: usize = 64 * 1024;

/// The websocket listener's settings, checked at start.
pub struct WsSetup {
    pub cfg: WebsocketConfig,
    tls: Option<TlsSetup>,
    origins: OriginPolicy,
}

impl WsSetup {
    /// `None` without a websocket block; errors as nats-server words them.
    pub fn build(cfg: &Config) -> Result<Option<WsSetup>, String> {
        let ws = &cfg.websocket;
        if !ws.enabled() {
            return Ok(None);
        }
        let tls = match (&ws.tls, ws.no_tls) {
            (Some(t), _) => Some(TlsSetup::build(t, false)?),
            (None, true) => None,
            (None, false) => return Err("websocket requires TLS configuration".into()),
        };
        let origins = OriginPolicy::new(ws.same_origin, &ws.allowed_origins)?;
        Ok(Some(WsSetup {
            cfg: ws.clone(),
            tls,
            origins,
        }))
    }

    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() {
            "wss"
        } else {
            "ws"
        }
    }
}

/// The running listener: what INFO to websocket clients says.
pub struct WsState {
    pub setup: WsSetup,
    pub host: String,
    pub port: u16,
    /// This server's websocket URLs (`host:port`), gossiped as `ws_connect_urls`.
    pub own_urls: Vec<String>,
    /// connect_urls for websocket clients: own and peers' URLs once there are peers.
    connect_urls: Mutex<Vec<String>>,
}

impl WsState {
    pub fn connect_urls(&self) -> Vec<String> {
        self.connect_urls.lock().clone()
    }

    /// Recomputes connect_urls from the peers' URLs; true when they changed.
    pub fn set_peer_urls(&self, peers: Vec<String>) -> bool {
        let mut urls = Vec::new();
        if !peers.is_empty() {
            urls = self.own_urls.clone();
            for u in peers {
                if !urls.contains(&u) {
                    urls.push(u);
                }
            }
        }
        let mut cur = self.connect_urls.lock();
        if *cur == urls {
            return false;
        }
        *cur = urls;
        true
    }

    /// The /varz `websocket` object (nats-server's field set, empty values omitted).
    pub fn varz(&self) -> serde_json::Value {
        let c = &self.setup.cfg;
        let mut m = serde_json::Map::new();
        m.insert("host".into(), self.host.clone().into());
        m.insert("port".into(), self.port.into());
        if let Some(a) = &c.advertise {
            m.insert("advertise".into(), a.clone().into());
        }
        if let Some(u) = &c.no_auth_user {
            m.insert("no_auth_user".into(), u.clone().into());
        }
        if !c.allowed_origins.is_empty() {
            m.insert("allowed_origins".into(), c.allowed_origins.clone().into());
        }
        if c.no_tls {
            m.insert("no_tls".into(), true.into());
        }
        if c.same_origin {
            m.insert("same_origin".into(), true.into());
        }
        if c.compression {
            m.insert("compression".into(), true.into());
        }
        if let Some(t) = c.handshake_timeout {
            m.insert("handshake_timeout".into(), (t.as_nanos() as u64).into());
        }
        serde_json::Value::Object(m)
    }
}

impl ServerShared {
    /// INFO for a websocket client: the websocket listener's host, port and TLS, and
    /// the cluster's websocket URLs as connect_urls.
    pub fn ws_info(&self, base: ServerInfo) -> ServerInfo {
        let mut info = base;
        if let Some(ws) = self.websocket.get() {
            info.host = ws.host.clone();
            info.port = ws.port;
            info.tls_required = ws.setup.tls.is_some();
            info.tls_available = false;
            info.tls_verify = ws
                .setup
                .tls
                .as_ref()
                .is_some_and(|t| t.cfg.verify_clients());
            info.connect_urls = ws.connect_urls();
        }
        info
    }
}

/// Binds the websocket listener and starts accepting; `None` without a websocket block.
pub async fn start(
    shared: &Arc<ServerShared>,
    setup: Option<WsSetup>,
) -> Result<Option<tokio::task::JoinHandle<()>>, StartError> {
    let Some(setup) = setup else {
        return Ok(None);
    };
    let cfg = shared.config();
    let host = setup.cfg.host.clone().unwrap_or_else(|| cfg.host.clone());
    let port = setup.cfg.port.unwrap_or(0).max(0) as u16;
    let listener = crate::server::bind(&host, port).await?;
    let port = listener.local_addr()?.port();
    tracing::info!(
        "Listening for websocket clients on {}://{}",
        setup.scheme(),
        fmt_host_port(&host, port)
    );
    if setup.tls.is_none() {
        tracing::warn!("Websocket not configured with TLS. DO NOT USE IN PRODUCTION!");
    }
    let own_urls = match &setup.cfg.advertise {
        Some(a) if a.contains(':') => vec![a.clone()],
        Some(a) => vec![fmt_host_port(a, port)],
        None => crate::server::own_client_urls_for(&host, port),
    };
    let state = Arc::new(WsState {
        setup,
        host,
        port,
        own_urls,
        connect_urls: Mutex::new(Vec::new()),
    });
    let _ = shared.websocket.set(state.clone());
    Ok(Some(tokio::spawn(accept_loop(
        shared.clone(),
        listener,
        state,
    ))))
}

async fn accept_loop(shared: Arc<ServerShared>, listener: TcpListener, ws: Arc<WsState>) {
    let mut shutdown = shared.shutdown_rx();
    loop {
        if *shutdown.borrow() || shared.is_lame_duck() {
            break;
        }
        tokio::select! {
            _ = stopped(&mut shutdown) => break,
            // Lame duck: close the listener at once, as the client listener does.
            _ = shared.lame_duck_started() => break,
            r = listener.accept() => match r {
                Ok((stream, addr)) => {
                    if shared.is_lame_duck() {
                        continue;
                    }
                    tokio::spawn(serve(shared.clone(), ws.clone(), stream, addr));
                }
                Err(e) => {
                    tracing::error!("Temporary Websocket Accept Error ({e})");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        }
    }
}

/// TLS (wss), then the upgrade within handshake_timeout, then the client.
async fn serve(shared: Arc<ServerShared>, ws: Arc<WsState>, stream: TcpStream, addr: SocketAddr) {
    let _ = stream.set_nodelay(true);
    let timeout = ws.setup.cfg.handshake_timeout();
    let deadline = tokio::time::Instant::now() + timeout;
    match &ws.setup.tls {
        None => upgrade(shared, ws.clone(), stream, addr, deadline).await,
        Some(tls) => {
            let accepted = tokio::time::timeout_at(deadline, tls.acceptor().accept(stream)).await;
            match accepted {
                Ok(Ok(s)) => upgrade(shared, ws.clone(), s, addr, deadline).await,
                Ok(Err(e)) => {
                    tracing::debug!("{addr} - websocket TLS handshake error: {e}")
                }
                Err(_) => tracing::debug!("{addr} - websocket TLS handshake timeout"),
            }
        }
    }
}

async fn upgrade<S>(
    shared: Arc<ServerShared>,
    ws: Arc<WsState>,
    mut stream: S,
    addr: SocketAddr,
    deadline: tokio::time::Instant,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut buf = Vec::with_capacity(1024);
    let read = async {
        loop {
            let mut chunk = [0u8; 2048];
            let n = stream.read(&mut chunk).await.map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("connection closed".to_string());
            }
            buf.extend_from_slice(&chunk[..n]);
            match handshake::parse_request(&buf) {
                Ok(Some((req, used))) => return Ok(Ok((req, used))),
                Ok(None) => continue,
                Err(reject) => return Ok(Err(reject)),
            }
        }
    };
    let parsed = match tokio::time::timeout_at(deadline, read).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            tracing::debug!("{addr} - websocket handshake error: {e}");
            return;
        }
        Err(_) => {
            tracing::debug!("{addr} - websocket handshake error: timeout");
            return;
        }
    };
    let tls = ws.setup.tls.is_some();
    let checked = parsed.and_then(|(req, used)| {
        ws.setup
            .origins
            .check(&req, tls)
            .map(|()| (req, used))
            .map_err(|r| handshake::Reject {
                status: 403,
                reason: format!("origin not allowed: {r}"),
            })
    });
    let (req, used) = match checked {
        Ok(r) => r,
        Err(reject) => {
            tracing::error!("{addr} - websocket handshake error: {}", reject.reason);
            let _ = stream.write_all(&reject.response()).await;
            let _ = stream.shutdown().await;
            return;
        }
    };
    let compress = ws.setup.cfg.compression && req.offers_deflate;
    if stream
        .write_all(&handshake::accept_response(&req.key, compress))
        .await
        .is_err()
    {
        return;
    }
    // Frames the client pipelined right behind its request.
    let early = buf.split_off(used);
    let cfg = shared.config();
    let max_frame = (cfg.max_payload.max(0) as usize)
        .saturating_mul(2)
        .saturating_add(cfg.max_control_line.max(0) as usize + 64 * 1024);
    let cid = shared.next_cid.fetch_add(1, Ordering::Relaxed);
    shared
        .stats
        .total_connections
        .fetch_add(1, Ordering::Relaxed);
    tracing::debug!("{addr} - wid:{cid} - Client connection created (websocket)");

    let (net_rd, net_wr) = tokio::io::split(stream);
    // client side <-> pump side of the two pipes.
    let (client_rd, mut inbound_wr) = tokio::io::simplex(PIPE);
    let (mut outbound_rd, client_wr) = tokio::io::simplex(PIPE);
    let (ctrl_tx, ctrl_rx) = mpsc::unbounded_channel();
    let decoder = FrameDecoder::new(compress, max_frame);
    let inbound = tokio::spawn(async move {
        pump_in(net_rd, &mut inbound_wr, decoder, early, ctrl_tx, addr, cid).await;
    });
    let outbound = tokio::spawn(async move {
        pump_out(
            &mut outbound_rd,
            net_wr,
            FrameEncoder::new(compress),
            ctrl_rx,
        )
        .await;
    });
    crate::client::serve_websocket(shared, cid, addr, client_rd, client_wr).await;
    // The read loop is done: the inbound pump has nobody to feed. The outbound pump
    // flushes what is left and the close frame, unless the peer stopped reading.
    inbound.abort();
    let abort = outbound.abort_handle();
    if tokio::time::timeout(std::time::Duration::from_secs(2), outbound)
        .await
        .is_err()
    {
        abort.abort();
    }
}

/// Client frames -> NATS bytes for the read loop; pings and close go to the outbound
/// pump. Returning drops the pipe, which the read loop sees as the client closing.
async fn pump_in<R: AsyncRead + Unpin>(
    mut net: R,
    to_client: &mut (impl AsyncWrite + Unpin),
    mut decoder: FrameDecoder,
    early: Vec<u8>,
    ctrl_tx: mpsc::UnboundedSender<Control>,
    addr: SocketAddr,
    cid: u64,
) {
    let mut chunk = vec![0u8; 32 * 1024];
    let mut out = Vec::with_capacity(32 * 1024);
    let mut ctrl = Vec::new();
    let mut input = early;
    loop {
        out.clear();
        if let Err(e) = decoder.feed(&input, &mut out, &mut ctrl) {
            tracing::error!("{addr} - wid:{cid} - websocket frame error: {}", e.reason);
            let _ = ctrl_tx.send(Control::Close(Some(e.status)));
            return;
        }
        if !out.is_empty() && to_client.write_all(&out).await.is_err() {
            return;
        }
        for c in ctrl.drain(..) {
            let close = matches!(c, Control::Close(_));
            let _ = ctrl_tx.send(c);
            if close {
                return;
            }
        }
        match net.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => input = chunk[..n].to_vec(),
        }
    }
}

/// What the client writer produced -> binary frames; pongs and the close frame.
async fn pump_out<W: AsyncWrite + Unpin>(
    from_client: &mut (impl AsyncRead + Unpin),
    mut net: W,
    mut encoder: FrameEncoder,
    mut ctrl_rx: mpsc::UnboundedReceiver<Control>,
) {
    let mut chunk = vec![0u8; PIPE];
    let mut frame = Vec::with_capacity(PIPE + 16);
    let mut ctrl_open = true;
    let close = loop {
        frame.clear();
        tokio::select! {
            // Control first: a frame error's close code beats the pipe's EOF it causes.
            biased;
            c = ctrl_rx.recv(), if ctrl_open => match c {
                Some(Control::Ping(p)) => encoder.encode(OpCode::Pong, &p, &mut frame),
                // The client closed (answer with its code, as RFC 6455 asks) or sent a
                // frame we cannot read (our code).
                Some(Control::Close(code)) => break code.unwrap_or(status::NORMAL),
                None => ctrl_open = false,
            },
            r = from_client.read(&mut chunk) => match r {
                Ok(0) | Err(_) => break status::NORMAL,
                Ok(n) => encoder.encode(OpCode::Binary, &chunk[..n], &mut frame),
            },
        }
        if !frame.is_empty() && net.write_all(&frame).await.is_err() {
            return;
        }
    };
    frame.clear();
    encoder.close(close, "", &mut frame);
    let _ = net.write_all(&frame).await;
    let _ = net.shutdown().await;
}
