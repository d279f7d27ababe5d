//! TLS between servers (routes): both ends run TLS from the first byte, before any
//! INFO, as nats-server does on its cluster port. The accepting side is the TLS
//! server (requiring a peer certificate with `verify`), the dialing side the TLS client
//! presenting the same certificate and checking the peer's against `ca_file` and the
//! host of the route URL.

use std::sync::Arc;

use rustls::pki_types::ServerName;
use rustls::ClientConfig;
use tokio::net::TcpStream;
use tokio_rustls::{TlsAcceptor, TlsConnector};

use super::tls::{load_identity, read_roots, server_config};
use crate::client::{PeerCert, TlsSession};
use crate::config::TlsConfig;

/// Both halves of a server-to-server TLS setup, built from one `tls { }` block.
pub struct PeerTls {
    pub acceptor: TlsAcceptor,
    pub connector: TlsConnector,
    pub cfg: TlsConfig,
}

impl std::fmt::Debug for PeerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerTls").field("cfg", &self.cfg).finish()
    }
}

impl PeerTls {
    pub fn build(cfg: &TlsConfig) -> Result<PeerTls, String> {
        Ok(PeerTls {
            acceptor: TlsAcceptor::from(Arc::new(server_config(cfg)?)),
            connector: TlsConnector::from(Arc::new(client_config(cfg)?)),
            cfg: cfg.clone(),
        })
    }

    /// TLS server side of an accepted connection, bounded by the block's timeout.
    pub async fn accept(
        &self,
        stream: TcpStream,
    ) -> Result<tokio_rustls::server::TlsStream<TcpStream>, String> {
        match tokio::time::timeout(self.cfg.timeout(), self.acceptor.accept(stream)).await {
            Ok(Ok(s)) => Ok(s),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("timeout".into()),
        }
    }

    /// TLS client side of a dialed connection to `host` (a name or an IP address).
    pub async fn connect(
        &self,
        host: &str,
        stream: TcpStream,
    ) -> Result<tokio_rustls::client::TlsStream<TcpStream>, String> {
        let name = ServerName::try_from(host.to_string())
            .map_err(|e| format!("invalid server name \"{host}\": {e}"))?;
        match tokio::time::timeout(self.cfg.timeout(), self.connector.connect(name, stream)).await {
            Ok(Ok(s)) => Ok(s),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("timeout".into()),
        }
    }
}

/// A rustls client configuration for `cfg`: peers are checked against `ca_file`, and
/// our certificate goes to peers that ask for one.
pub fn client_config(cfg: &TlsConfig) -> Result<ClientConfig, String> {
    let ca = cfg
        .ca_file
        .as_deref()
        .ok_or("a ca_file is needed to verify the certificates of other servers")?;
    let roots = read_roots(ca)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_root_certificates(roots);
    let config = if cfg.cert_file.is_some() {
        let (certs, key) = load_identity(cfg)?;
        builder
            .with_client_auth_cert(certs, key)
            .map_err(|e| format!("TLS client certificate: {e}"))?
    } else {
        builder.with_no_client_auth()
    };
    Ok(config)
}

/// The session as monitoring shows it: version and cipher named as nats-server
/// names them (`"1.3"`, `TLS_AES_128_GCM_SHA256`) and the peer's certificates.
pub fn session(conn: &rustls::CommonState) -> TlsSession {
    let version = match conn.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_3) => "1.3".to_string(),
        Some(rustls::ProtocolVersion::TLSv1_2) => "1.2".to_string(),
        Some(v) => format!("{v:?}"),
        None => String::new(),
    };
    let cipher = conn
        .negotiated_cipher_suite()
        // rustls names TLS 1.3 suites TLS13_*; Go (and so nats-server) TLS_*.
        .map(|c| format!("{:?}", c.suite()).replacen("TLS13_", "TLS_", 1))
        .unwrap_or_default();
    let peer_certs = conn
        .peer_certificates()
        .unwrap_or_default()
        .iter()
        .map(|c| peer_cert(c.as_ref()))
        .collect();
    TlsSession {
        version,
        cipher,
        peer_certs,
        first: false,
    }
}

/// nats-server's TLSPeerCert: subject DN, and hex SHA-256 of the subject public key
/// info and of the whole certificate.
fn peer_cert(der: &[u8]) -> PeerCert {
    let sha = |b: &[u8]| hex(ring::digest::digest(&ring::digest::SHA256, b).as_ref());
    match x509_parser::parse_x509_certificate(der) {
        Ok((_, cert)) => PeerCert {
            subject: super::tls::subject_string(&cert),
            subject_pk_sha256: sha(cert.public_key().raw),
            cert_sha256: sha(der),
        },
        Err(_) => PeerCert {
            cert_sha256: sha(der),
            ..PeerCert::default()
        },
    }
}

fn hex(b: &[u8]) -> String {
    use std::fmt::Write;
    b.iter()
        .fold(String::with_capacity(b.len() * 2), |mut s, x| {
            let _ = write!(s, "{x:02x}");
            s
        })
}
