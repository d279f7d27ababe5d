//! TLS for the gRPC control listener (`cluster { control_tls { } }`): the listener's
//! certificate, a required client certificate with `verify: true` (mTLS), and the
//! client side used by Raft peers, join/hello, admin forwarding and `tern cluster`.

use std::path::Path;

use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};

use crate::config::TlsConfig;

fn read(path: &Path, what: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("control_tls {what} {}: {e}", path.display()))
}

/// The listener side: our certificate; with `verify` peers must present one signed
/// by `ca_file`.
pub fn server_config(cfg: &TlsConfig) -> Result<ServerTlsConfig, String> {
    let cert = cfg
        .cert_file
        .as_deref()
        .ok_or("control_tls needs cert_file")?;
    let key = cfg
        .key_file
        .as_deref()
        .ok_or("control_tls needs key_file")?;
    // Fail at startup on unreadable or mismatched files, not at the first connection.
    crate::net::tls::server_config(cfg).map_err(|e| format!("control_tls: {e}"))?;
    let mut s = ServerTlsConfig::new().identity(Identity::from_pem(
        read(cert, "cert_file")?,
        read(key, "key_file")?,
    ));
    if cfg.verify_clients() {
        let ca = cfg
            .ca_file
            .as_deref()
            .ok_or("control_tls verify needs ca_file")?;
        s = s.client_ca_root(Certificate::from_pem(read(ca, "ca_file")?));
    }
    Ok(s.timeout(cfg.timeout()))
}

/// The client side: trust `ca` and present `cert`/`key` when given.
pub fn client_config(
    ca: Option<&Path>,
    cert: Option<&Path>,
    key: Option<&Path>,
) -> Result<ClientTlsConfig, String> {
    let mut c = ClientTlsConfig::new();
    match ca {
        Some(ca) => c = c.ca_certificate(Certificate::from_pem(read(ca, "ca_file")?)),
        None => return Err("TLS to the control listener needs a CA certificate".into()),
    }
    match (cert, key) {
        (Some(cert), Some(key)) => {
            c = c.identity(Identity::from_pem(
                read(cert, "cert_file")?,
                read(key, "key_file")?,
            ))
        }
        (None, None) => {}
        _ => return Err("a client certificate needs both the certificate and the key".into()),
    }
    Ok(c)
}

/// The client side of a node's own `control_tls` block (same certificate both ways).
pub fn peer_client_config(cfg: &TlsConfig) -> Result<ClientTlsConfig, String> {
    client_config(
        cfg.ca_file.as_deref(),
        cfg.cert_file.as_deref(),
        cfg.key_file.as_deref(),
    )
}
