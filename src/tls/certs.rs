//! Reading a certificate and its key from PEM files, with an error that names the file and
//! the problem: unreadable, not PEM, key does not match the certificate.

use std::path::Path;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;

use crate::config::tls::CertPaths;

/// A certificate ready to serve, with what the log and the SNI table need to know of it.
#[derive(Debug)]
pub struct Loaded {
    pub key: Arc<CertifiedKey>,
    /// The DNS names it covers (subject alternative names).
    pub names: Vec<String>,
    /// Validity, Unix seconds, when it could be read.
    pub not_before: Option<u64>,
    pub not_after: Option<u64>,
}

fn read(path: &Path, what: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read the {what} {}: {e}", path.display()))
}

fn pem_problem(path: &Path, what: &str, e: &pem::Error) -> String {
    match e {
        pem::Error::NoItemsFound => format!(
            "{} is not a PEM {what} (no -----BEGIN {}----- block in it)",
            path.display(),
            if what == "private key" {
                "PRIVATE KEY"
            } else {
                "CERTIFICATE"
            }
        ),
        e => format!("{} is not valid PEM: {e:?}", path.display()),
    }
}

/// Certificates in a PEM file, in order (a full chain: leaf first).
pub fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let text = read(path, "certificate file")?;
    let certs = CertificateDer::pem_slice_iter(&text)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_problem(path, "certificate", &e))?;
    if certs.is_empty() {
        return Err(pem_problem(path, "certificate", &pem::Error::NoItemsFound));
    }
    Ok(certs)
}

/// The private key in a PEM file (PKCS#8, PKCS#1 or SEC1).
pub fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    let text = read(path, "key file")?;
    PrivateKeyDer::from_pem_slice(&text).map_err(|e| pem_problem(path, "private key", &e))
}

pub fn load(p: &CertPaths, provider: &CryptoProvider) -> Result<Loaded, String> {
    let chain = read_certs(&p.cert)?;
    let key = read_key(&p.key)?;
    let leaf = webpki::EndEntityCert::try_from(&chain[0]).map_err(|e| {
        format!(
            "{}: the first certificate does not parse ({e})",
            p.cert.display()
        )
    })?;
    let names: Vec<String> = leaf.valid_dns_names().map(str::to_string).collect();
    let validity = super::validity::validity(&chain[0]);
    let key = CertifiedKey::from_der(chain, key, provider).map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => format!(
            "the key in {} does not match the certificate in {}",
            p.key.display(),
            p.cert.display()
        ),
        e => format!("{}: unusable private key ({e})", p.key.display()),
    })?;
    Ok(Loaded {
        key: Arc::new(key),
        names,
        not_before: validity.map(|v| v.0),
        not_after: validity.map(|v| v.1),
    })
}
