//! `[tls]`: the TLS listeners and their certificates. Only paths and addresses are checked
//! here; reading the files (and saying what is wrong with one) is `crate::tls`'s job, at
//! start-up, on `uringd check` and on every reload.

use std::net::SocketAddr;
use std::path::PathBuf;

use super::read::Table;

#[derive(Default, Debug, Clone)]
pub struct RawTls {
    pub listen: Option<Vec<String>>,
    pub cert: Vec<RawCert>,
    pub client_ca: Option<String>,
}

#[derive(Default, Debug, Clone)]
pub struct RawCert {
    pub cert: Option<String>,
    pub key: Option<String>,
}

impl RawTls {
    pub fn read(t: &Table) -> RawTls {
        RawTls {
            listen: t.get("listen"),
            cert: t
                .tables("cert")
                .into_iter()
                .map(|c| {
                    let v = RawCert {
                        cert: c.get("cert"),
                        key: c.get("key"),
                    };
                    c.finish();
                    v
                })
                .collect(),
            client_ca: t.get("client_ca"),
        }
    }
}

/// One certificate: a PEM chain (leaf first) and its private key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertPaths {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsConfig {
    pub listen: Vec<SocketAddr>,
    /// The first is the default (a client that sends no SNI, or a name none covers).
    pub certs: Vec<CertPaths>,
    /// Client certificates are required and verified against these roots (mTLS).
    pub client_ca: Option<PathBuf>,
}

/// The `[tls]` table with the command line's `--tls-listen` and `--tls-cert/--tls-key`
/// (each replaces the file's list when given). None when nothing asks for TLS.
pub fn validate(
    raw: &RawTls,
    ov_listen: &[String],
    ov_certs: &[(String, String)],
    plain: &[SocketAddr],
    errors: &mut Vec<String>,
) -> Option<TlsConfig> {
    let listen_strs: Vec<String> = if ov_listen.is_empty() {
        raw.listen.clone().unwrap_or_default()
    } else {
        ov_listen.to_vec()
    };
    let certs_raw: Vec<(Option<String>, Option<String>)> = if ov_certs.is_empty() {
        raw.cert
            .iter()
            .map(|c| (c.cert.clone(), c.key.clone()))
            .collect()
    } else {
        ov_certs
            .iter()
            .map(|(c, k)| (Some(c.clone()), Some(k.clone())))
            .collect()
    };
    if listen_strs.is_empty() {
        if !certs_raw.is_empty() || raw.client_ca.is_some() {
            errors.push(
                "tls.listen is empty but certificates are configured; give the TLS addresses, e.g. [tls] listen = [\"127.0.0.1:8443\"] (or --tls-listen)"
                    .into(),
            );
        }
        return None;
    }
    let mut listen = Vec::new();
    for l in &listen_strs {
        match l.parse::<SocketAddr>() {
            Ok(a) if a.port() != 0 && (listen.contains(&a) || plain.contains(&a)) => errors.push(
                format!("tls.listen: `{l}` is listed twice (or also in server.listen); each address serves one protocol"),
            ),
            Ok(a) => listen.push(a),
            Err(_) => errors.push(format!(
                "tls.listen: `{l}` is not an address with a port; write it like \"127.0.0.1:8443\""
            )),
        }
    }
    if certs_raw.is_empty() {
        errors.push(
            "tls.listen is set but there is no certificate; add one [[tls.cert]] with cert = \"/path/fullchain.pem\" and key = \"/path/key.pem\" (or --tls-cert and --tls-key)"
                .into(),
        );
    }
    let mut certs = Vec::new();
    for (i, (c, k)) in certs_raw.iter().enumerate() {
        match (c.as_deref(), k.as_deref()) {
            (Some(c), Some(k)) if !c.is_empty() && !k.is_empty() => certs.push(CertPaths {
                cert: c.into(),
                key: k.into(),
            }),
            (None | Some(""), _) => errors.push(format!(
                "tls.cert[{i}]: `cert` is missing; give the PEM file of the certificate chain"
            )),
            _ => errors.push(format!(
                "tls.cert[{i}]: `key` is missing; give the PEM file of the certificate's private key"
            )),
        }
    }
    let client_ca = raw
        .client_ca
        .as_deref()
        .filter(|p| !p.is_empty())
        .map(PathBuf::from);
    Some(TlsConfig {
        listen,
        certs,
        client_ca,
    })
}
