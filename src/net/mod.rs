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
        Ok(Security {
            auth,
            tls,
            route_tls,
        })
    }
}
