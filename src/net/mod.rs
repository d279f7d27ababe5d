//! Transport security of client connections: the per-configuration [`Security`]
//! (authenticator + TLS acceptor) and the TLS handshake ([`tls`]).
//!
//! Built at start and again on reload (SIGHUP), so new certificates and users apply to
//! new connections while existing ones keep running.

pub mod peer_tls;
pub mod tls;
pub mod websocket;

use std::sync::Arc;

use crate::auth::Authenticator;
use crate::config::Config;

/// What a new client connection needs to know about auth and TLS.
#[derive(Debug)]
pub struct Security {
    pub auth: Authenticator,
    pub tls: Option<Arc<tls::TlsSetup>>,
    /// `cluster { tls { } }`: route connections made after a reload use the new one.
    pub route_tls: Option<Arc<peer_tls::PeerTls>>,
    /// HTTPS monitoring (`https_port` without `http_port`): the client `tls { }`
    /// certificate without client-certificate checks; new HTTPS connections after a
    /// reload use the new certificate.
    pub monitor_tls: Option<Arc<rustls::ServerConfig>>,
}

impl Security {
    /// Builds from the configuration: parses permissions and nkeys, loads certificates.
    pub fn build(cfg: &Config) -> Result<Security, String> {
        let auth = Authenticator::build(cfg)?;
        // Logged here, once per start or reload: the config check's own build is silent.
        auth.log_warnings();
        let tls = match &cfg.tls {
            Some(t) => Some(Arc::new(tls::TlsSetup::build(t, cfg.allow_non_tls)?)),
            None => None,
        };
        let route_tls = match &cfg.cluster.tls {
            Some(t) => Some(Arc::new(
                peer_tls::PeerTls::build(t).map_err(|e| format!("cluster tls: {e}"))?,
            )),
            None => None,
        };
        let monitor_tls = if cfg.https_port.is_some() && cfg.http_port.is_none() {
            let Some(t) = &cfg.tls else {
                return Err("TLS cert and key required for HTTPS".into());
            };
            // nats-server asks HTTPS clients for no certificate, even with `verify`.
            let no_client_certs = crate::config::TlsConfig {
                verify: false,
                verify_and_map: false,
                ..t.clone()
            };
            Some(Arc::new(tls::server_config(&no_client_certs)?))
        } else {
            None
        };
        Ok(Security {
            auth,
            tls,
            route_tls,
            monitor_tls,
        })
    }
}
