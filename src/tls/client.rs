//! The client side's settings: what uringd verifies a TLS server against (an `https://`
//! upstream, or `uringd bench https://`), and the rustls client config for an upstream
//! pool.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::{ClientConfig, RootCertStore};

use crate::config::upstream::UpstreamTls;

/// Where Debian (and most distributions) keep the system's roots, unless SSL_CERT_FILE
/// says otherwise.
const SYSTEM_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// The roots in `ca`, or the system's; `what` names the setting in errors, with `fix`.
pub fn roots(ca: Option<&Path>, what: &str, fix: &str) -> Result<RootCertStore, String> {
    let (path, what) = match ca {
        Some(p) => (p.to_path_buf(), what),
        None => (
            std::env::var_os("SSL_CERT_FILE").map_or(PathBuf::from(SYSTEM_BUNDLE), PathBuf::from),
            "the system CA bundle",
        ),
    };
    let certs = super::certs::read_certs(&path).map_err(|e| format!("{what}: {e}; {fix}"))?;
    let mut store = RootCertStore::empty();
    let (_, bad) = store.add_parsable_certificates(certs);
    if store.is_empty() {
        return Err(format!(
            "{what} {}: none of its {bad} certificates is a usable root",
            path.display()
        ));
    }
    Ok(store)
}

/// The client config of pool `name`'s https:// servers (its `tls_*` keys).
pub fn upstream(name: &str, t: &UpstreamTls) -> Result<Arc<ClientConfig>, String> {
    let key = |k: &str| format!("upstream.{name}.{k}");
    let roots = roots(
        t.ca.as_deref(),
        &key("tls_ca"),
        &format!("set {} to the PEM file of the servers' CA", key("tls_ca")),
    )?;
    let builder = ClientConfig::builder_with_provider(super::provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("tls: {e}"))?
        .with_root_certificates(roots);
    let mut cfg = match &t.client_cert {
        None => builder.with_no_client_auth(),
        Some((cert, key_path)) => {
            let chain = super::certs::read_certs(cert)
                .map_err(|e| format!("{}: {e}", key("tls_client_cert")))?;
            let key_der = super::certs::read_key(key_path)
                .map_err(|e| format!("{}: {e}", key("tls_client_key")))?;
            builder
                .with_client_auth_cert(chain, key_der)
                .map_err(|e| match e {
                    rustls::Error::InconsistentKeys(_) => format!(
                        "{}: the key in {} does not match the certificate in {}",
                        key("tls_client_key"),
                        key_path.display(),
                        cert.display()
                    ),
                    e => format!("{}: {e}", key("tls_client_key")),
                })?
        }
    };
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}
