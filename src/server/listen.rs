//! The client listener: binding (SO_REUSEADDR, IPv6 dual stack), the accept loop with
//! lame-duck and back-off handling, and the client URLs a server advertises.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use super::{stopped, ServerShared};
use crate::client;
use crate::config::Config;
use crate::error::{CloseReason, StartError};

/// The client URLs this server advertises: `client_advertise`, else every
/// non-loopback interface for an unspecified host (as nats-server), else host:port.
pub(super) fn own_client_urls(config: &Config, port: u16) -> Vec<String> {
    if let Some(adv) = &config.client_advertise {
        return vec![if adv.contains(':') {
            adv.clone()
        } else {
            format!("{adv}:{port}")
        }];
    }
    own_client_urls_for(&config.host, port)
}

/// URLs of a listener on `host`: every non-loopback interface when unspecified.
pub(crate) fn own_client_urls_for(host: &str, port: u16) -> Vec<String> {
    let unspecified = host == "0.0.0.0" || host == "::" || host.is_empty();
    if !unspecified {
        return vec![fmt_host_port(host, port)];
    }
    let mut urls: Vec<String> = if_addrs::get_if_addrs()
        .unwrap_or_default()
        .into_iter()
        .filter(|i| !i.is_loopback())
        .filter(|i| host != "0.0.0.0" || i.ip().is_ipv4())
        .map(|i| fmt_host_port(&i.ip().to_string(), port))
        .collect();
    if urls.is_empty() {
        urls.push(fmt_host_port("127.0.0.1", port));
    }
    urls
}

/// `host:port`, with brackets for IPv6 as Go's net.JoinHostPort writes it.
pub fn fmt_host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

pub(crate) async fn bind(host: &str, port: u16) -> Result<TcpListener, StartError> {
    let display = fmt_host_port(host, port);
    let to_err = |source| StartError::Listen {
        addr: display.clone(),
        source,
    };
    let ip: std::net::IpAddr = match host.parse() {
        Ok(ip) => ip,
        Err(_) => {
            let resolved = tokio::net::lookup_host((host, port))
                .await
                .map_err(to_err)?
                .next()
                .ok_or_else(|| to_err(std::io::Error::other("no address")))?;
            resolved.ip()
        }
    };
    let sa = SocketAddr::new(ip, port);
    // SO_REUSEADDR so a restarted server can rebind at once (client harnesses do that).
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(sa),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )
    .map_err(to_err)?;
    socket.set_reuse_address(true).map_err(to_err)?;
    if sa.is_ipv6() {
        let _ = socket.set_only_v6(false);
    }
    socket.bind(&sa.into()).map_err(to_err)?;
    socket.listen(1024).map_err(to_err)?;
    socket.set_nonblocking(true).map_err(to_err)?;
    TcpListener::from_std(socket.into()).map_err(to_err)
}

pub(super) async fn accept_loop(shared: Arc<ServerShared>, listener: TcpListener) {
    let mut shutdown = shared.shutdown_rx();
    let mut backoff = Duration::from_millis(10);
    loop {
        // A shutdown sent before this task subscribed is not a "change": check it.
        if *shutdown.borrow() {
            break;
        }
        tokio::select! {
            _ = stopped(&mut shutdown) => break,
            // Lame duck: stop listening, as nats-server closes its listener.
            _ = shared.lame_duck_started() => {
                drop(listener);
                stopped(&mut shutdown).await;
                break;
            }
            r = listener.accept() => match r {
                Ok((stream, addr)) => {
                    backoff = Duration::from_millis(10);
                    if shared.is_lame_duck() {
                        drop(stream);
                        continue;
                    }
                    tokio::spawn(client::serve(shared.clone(), stream, addr));
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::error!("Temporary Client Accept Error ({e}), sleeping {}ms", backoff.as_millis());
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
            }
        }
    }
    // Close every client: they watch the same shutdown channel.
    for c in shared.clients.iter() {
        c.close_from_server(CloseReason::ServerShutdown);
    }
}
