//! Client TLS with rustls (ring provider): certificate loading, the three ways a client
//! connection starts (INFO then upgrade, TLS first, TLS first with a plaintext-INFO
//! fallback delay), optional non-TLS clients (`allow_non_tls`), and the client
//! certificate identities used by `verify_and_map`.
//!
//! Behaviour matches nats-server 2.15.1 as observed: a plain client that sends CONNECT to
//! a TLS-required port fails the handshake and is closed without any bytes; a silent
//! client is closed after the TLS timeout, also without `-ERR`.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use crate::config::TlsConfig;

/// First byte of a TLS record carrying a handshake (ClientHello).
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// A loaded TLS configuration.
pub struct TlsSetup {
    acceptor: TlsAcceptor,
    pub cfg: TlsConfig,
    pub allow_non_tls: bool,
}

impl std::fmt::Debug for TlsSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSetup").field("cfg", &self.cfg).finish()
    }
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("error loading certificate {}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("no certificate found in {}", path.display()));
    }
    Ok(certs)
}

/// The certificate chain and key named by `cert_file` and `key_file`.
pub(crate) fn load_identity(
    cfg: &TlsConfig,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), String> {
    let cert_file = cfg
        .cert_file
        .as_deref()
        .ok_or("missing 'cert_file' in TLS configuration")?;
    let key_file = cfg
        .key_file
        .as_deref()
        .ok_or("missing 'key_file' in TLS configuration")?;
    let certs = read_certs(cert_file)?;
    let key = PrivateKeyDer::from_pem_file(key_file)
        .map_err(|e| format!("error loading key {}: {e}", key_file.display()))?;
    Ok((certs, key))
}

/// The CA bundle in `ca` as a root store.
pub(crate) fn read_roots(ca: &Path) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    for c in read_certs(ca)? {
        roots
            .add(c)
            .map_err(|e| format!("bad CA certificate in {}: {e}", ca.display()))?;
    }
    Ok(roots)
}

impl TlsSetup {
    /// The acceptor, for listeners that share the client certificate (HTTPS monitoring).
    pub fn acceptor(&self) -> &TlsAcceptor {
        &self.acceptor
    }

    pub fn build(cfg: &TlsConfig, allow_non_tls: bool) -> Result<TlsSetup, String> {
        Ok(TlsSetup {
            acceptor: TlsAcceptor::from(Arc::new(server_config(cfg)?)),
            cfg: cfg.clone(),
            allow_non_tls,
        })
    }
}

/// A rustls server configuration for `cfg`: its certificate, and with `verify` a
/// required client certificate signed by `ca_file`.
pub(crate) fn server_config(cfg: &TlsConfig) -> Result<ServerConfig, String> {
    let (certs, key) = load_identity(cfg)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?;
    let builder = if cfg.verify_clients() {
        let ca = cfg
            .ca_file
            .as_deref()
            .ok_or("tls verify requires a ca_file")?;
        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::new(read_roots(ca)?), provider)
                .build()
                .map_err(|e| format!("TLS client verifier: {e}"))?;
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    builder
        .with_single_cert(certs, key)
        .map_err(|e| format!("TLS certificate/key mismatch or invalid: {e}"))
}

/// A client connection after the TLS phase.
pub enum Accepted {
    Tls {
        stream: Box<TlsStream<TcpStream>>,
        /// INFO still has to be sent (TLS-first: it goes over TLS).
        send_info: bool,
        /// Client certificate identities for `verify_and_map`.
        cert_names: Vec<String>,
    },
    /// `allow_non_tls` and the client did not start TLS; INFO was sent.
    Plain(TcpStream),
}

/// Waits up to `wait` for the first byte; `None` when nothing arrived.
async fn peek_first(stream: &TcpStream, wait: Duration) -> Option<u8> {
    let mut b = [0u8; 1];
    match tokio::time::timeout(wait, stream.peek(&mut b)).await {
        Ok(Ok(1)) => Some(b[0]),
        _ => None,
    }
}

/// Runs the TLS phase of a new client connection. `info` is the INFO line, written in
/// plaintext here unless the handshake comes first.
pub async fn accept(
    setup: &TlsSetup,
    mut stream: TcpStream,
    addr: SocketAddr,
    cid: u64,
    info: &[u8],
) -> Result<Accepted, String> {
    let timeout = setup.cfg.timeout();
    let mut info_sent = false;
    if setup.cfg.handshake_first {
        if let Some(delay) = setup.cfg.handshake_first_fallback {
            // nats-server: if the client has not started TLS within the delay, it gets
            // INFO in plaintext and upgrades the usual way.
            if peek_first(&stream, delay).await.is_none() {
                stream.write_all(info).await.map_err(|e| e.to_string())?;
                info_sent = true;
            }
        }
    } else {
        stream.write_all(info).await.map_err(|e| e.to_string())?;
        info_sent = true;
        if setup.allow_non_tls {
            match peek_first(&stream, timeout).await {
                Some(TLS_HANDSHAKE_RECORD) => {}
                _ => return Ok(Accepted::Plain(stream)),
            }
        }
    }
    tracing::debug!("{addr} - cid:{cid} - Starting TLS client connection handshake");
    let started = tokio::time::Instant::now();
    // Like Go's crypto/tls, a first record that is not a handshake ends the connection
    // without a TLS alert (rustls would answer with one): a plain client gets no bytes.
    match peek_first(&stream, timeout).await {
        Some(TLS_HANDSHAKE_RECORD) => {}
        Some(_) => {
            return Err(
                "TLS handshake error: tls: first record does not look like a TLS handshake".into(),
            )
        }
        None => return Err("TLS handshake timeout".into()),
    }
    let left = timeout.saturating_sub(started.elapsed());
    let tls = match tokio::time::timeout(left, setup.acceptor.accept(stream)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Err(format!("TLS handshake error: {e}")),
        Err(_) => return Err("TLS handshake timeout".into()),
    };
    tracing::debug!("{addr} - cid:{cid} - TLS handshake complete");
    let cert_names = if setup.cfg.verify_and_map {
        tls.get_ref()
            .1
            .peer_certificates()
            .and_then(|c| c.first())
            .map(|c| cert_identities(c.as_ref()))
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    Ok(Accepted::Tls {
        stream: Box::new(tls),
        send_info: !info_sent,
        cert_names,
    })
}

/// The identities nats-server tries for `verify_and_map`, in its order: email SANs, DNS
/// SANs, URI SANs, then the subject DN in RFC 2253 form (as Go prints it) and in
/// forward order.
pub fn cert_identities(der: &[u8]) -> Vec<String> {
    use x509_parser::extensions::GeneralName;
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        let names = &san.value.general_names;
        for n in names {
            if let GeneralName::RFC822Name(e) = n {
                out.push((*e).to_string());
            }
        }
        for n in names {
            if let GeneralName::DNSName(d) = n {
                out.push((*d).to_string());
            }
        }
        for n in names {
            if let GeneralName::URI(u) = n {
                out.push((*u).to_string());
            }
        }
    }
    let rdns = subject_rdns(&cert);
    if !rdns.is_empty() {
        let mut rev = rdns.clone();
        rev.reverse();
        out.push(rev.join(","));
        out.push(rdns.join(","));
    }
    out
}

/// The subject DN as Go's pkix.Name.String() prints it (RFC 2253, last RDN first).
pub(crate) fn subject_string(cert: &x509_parser::certificate::X509Certificate<'_>) -> String {
    let mut rdns = subject_rdns(cert);
    rdns.reverse();
    rdns.join(",")
}

/// The subject's RDNs in certificate order, each as `TYPE=value` (multi-valued with +).
fn subject_rdns(cert: &x509_parser::certificate::X509Certificate<'_>) -> Vec<String> {
    cert.subject()
        .iter()
        .map(|rdn| {
            rdn.iter()
                .map(|atv| {
                    let oid = atv.attr_type().to_id_string();
                    let value = atv.as_str().unwrap_or_default();
                    format!("{}={}", attr_name(&oid), escape_dn(value))
                })
                .collect::<Vec<_>>()
                .join("+")
        })
        .collect()
}

/// Go's pkix attribute names; others print as the dotted OID.
fn attr_name(oid: &str) -> &str {
    match oid {
        "2.5.4.6" => "C",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.3" => "CN",
        "2.5.4.5" => "SERIALNUMBER",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.9" => "STREET",
        "2.5.4.17" => "POSTALCODE",
        other => other,
    }
}

/// RFC 2253 value escaping as Go's pkix does it.
fn escape_dn(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let n = v.chars().count();
    for (i, c) in v.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (c == ' ' || c == '#'))
            || (i + 1 == n && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dn_escaping() {
        assert_eq!(escape_dn("a,b"), "a\\,b");
        assert_eq!(escape_dn(" x "), "\\ x\\ ");
        assert_eq!(attr_name("2.5.4.3"), "CN");
    }
}
