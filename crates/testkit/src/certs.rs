//! Certificates for the TLS tests, made on the spot by `rcgen`: a private
//! CA and server certificates it signs for `localhost` and `127.0.0.1`,
//! written as PEM files in a temporary directory (what `chinwagd
//! --tls-cert`, `--tls-key` and `chinwag --ca` read).

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    SerialNumber,
};

/// A CA, and the server certificate it issued last, in PEM files.
#[derive(Debug)]
pub struct TestCerts {
    dir: tempfile::TempDir,
    issuer: Issuer<'static, KeyPair>,
    /// The CA's certificate (`chinwag --ca`).
    pub ca: PathBuf,
    /// The server's certificate (`chinwagd --tls-cert`).
    pub cert: PathBuf,
    /// The server's key (`chinwagd --tls-key`).
    pub key: PathBuf,
}

impl TestCerts {
    /// A new CA and a server certificate with `serial` and the common name
    /// `chinwag test server {serial}`.
    pub fn new(serial: u64) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let ca_key = KeyPair::generate().expect("a CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        (params.distinguished_name).push(DnType::CommonName, "chinwag test CA");
        let ca = params.self_signed(&ca_key).expect("the CA's certificate");
        let ca_path = dir.path().join("ca.pem");
        std::fs::write(&ca_path, ca.pem()).expect("writing ca.pem");
        let mut certs = Self {
            cert: dir.path().join("cert.pem"),
            key: dir.path().join("key.pem"),
            ca: ca_path,
            issuer: Issuer::new(params, ca_key),
            dir,
        };
        certs.issue(serial);
        certs
    }

    /// Issues a new server certificate with `serial` (and a new key) and
    /// writes it over the old files, as a renewal does.
    pub fn issue(&mut self, serial: u64) {
        let key = KeyPair::generate().expect("a server key");
        let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
        let mut params = CertificateParams::new(names).expect("server parameters");
        params.serial_number = Some(SerialNumber::from(serial.to_be_bytes().to_vec()));
        (params.distinguished_name).push(DnType::CommonName, Self::common_name(serial));
        let cert = params.signed_by(&key, &self.issuer).expect("signing");
        std::fs::write(&self.cert, cert.pem()).expect("writing cert.pem");
        std::fs::write(&self.key, key.serialize_pem()).expect("writing key.pem");
    }

    /// The common name of the server certificate with `serial`.
    pub fn common_name(serial: u64) -> String {
        format!("chinwag test server {serial}")
    }

    /// The directory the files are in (removed on drop).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}
