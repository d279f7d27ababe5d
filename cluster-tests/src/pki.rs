//! Test certificates made with rcgen: a CA per `Pki`, a server certificate valid for
//! localhost and 127.0.0.1 (also usable as a client certificate, as servers use it on
//! routes and the control listener), and client certificates, as PEM files in a
//! private temp dir removed on drop.

use std::path::PathBuf;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};
use tern::config::TlsConfig;

/// A CA with a server certificate (localhost, 127.0.0.1) and client certificates, as PEM
/// files in a private temp dir (removed on drop).
pub struct Pki {
    dir: PathBuf,
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Pki {
    pub fn new(name: &str) -> Pki {
        let dir = std::env::temp_dir().join(format!("tern-tls-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("ca params");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, format!("tern test CA {name}"));
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let issuer =
            CertifiedIssuer::self_signed(ca, KeyPair::generate().expect("key")).expect("ca");
        std::fs::write(dir.join("ca.pem"), issuer.pem()).expect("write ca");
        let pki = Pki { dir, issuer };
        let mut server = CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()])
            .expect("server params");
        // Both uses: servers present it to clients and, on routes, to each other as
        // the dialing (TLS client) side.
        server.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        pki.issue("server", server);
        pki
    }

    pub fn issue(&self, name: &str, mut params: CertificateParams) {
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &self.issuer).expect("sign");
        std::fs::write(self.path(&format!("{name}-cert.pem")), cert.pem()).expect("write");
        std::fs::write(self.path(&format!("{name}-key.pem")), key.serialize_pem()).expect("write");
    }

    /// A client certificate with an email SAN.
    pub fn client(&self, name: &str, email: &str) {
        let mut p = CertificateParams::new(Vec::<String>::new()).expect("client params");
        p.subject_alt_names = vec![SanType::Rfc822Name(email.try_into().expect("ia5"))];
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.issue(name, p);
    }

    pub fn path(&self, f: &str) -> PathBuf {
        self.dir.join(f)
    }

    pub fn tls(&self) -> TlsConfig {
        TlsConfig {
            cert_file: Some(self.path("server-cert.pem")),
            key_file: Some(self.path("server-key.pem")),
            ca_file: Some(self.path("ca.pem")),
            ..TlsConfig::default()
        }
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
