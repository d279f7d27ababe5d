//! TLS for the client commands: `tls://` URLs, `--tlsca`, `--tlscert`/`--tlskey`, and
//! servers whose INFO says `tls_required`. As the NATS clients do, the connection starts
//! in plain text, reads INFO, then upgrades; the server's certificate is checked
//! against `--tlsca`, or the system bundle (`SSL_CERT_FILE`, else
//! /etc/ssl/certs/ca-certificates.crt, which the image carries) without one.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{anyhow, Result};
use tokio_rustls::TlsConnector;

use crate::config::TlsConfig;

/// TLS flags of a client command.
#[derive(Debug, Clone, Default)]
pub struct TlsOpts {
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

impl TlsOpts {
    /// Whether a flag asks for TLS even if the URL and the server do not.
    pub fn requested(&self) -> bool {
        self.ca.is_some() || self.cert.is_some()
    }

    /// The connector for these options.
    pub fn connector(&self) -> Result<TlsConnector> {
        if self.cert.is_some() != self.key.is_some() {
            return Err(anyhow!("--tlscert and --tlskey go together"));
        }
        let ca = match &self.ca {
            Some(ca) => ca.clone(),
            None => std::env::var_os("SSL_CERT_FILE")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("/etc/ssl/certs/ca-certificates.crt")),
        };
        let cfg = TlsConfig {
            ca_file: Some(ca),
            cert_file: self.cert.clone(),
            key_file: self.key.clone(),
            ..TlsConfig::default()
        };
        let c = crate::net::peer_tls::client_config(&cfg).map_err(|e| anyhow!(e))?;
        Ok(TlsConnector::from(Arc::new(c)))
    }
}
