//! TLS termination set-up: certificates read and checked, the SNI table, and the rustls
//! server config every worker's sessions are made from (`transport::tls` runs them).
//!
//! Built at start-up and again on every reload, from the files as they are then: a reload
//! whose certificate is bad is refused whole, so the running certificate stays. The
//! session-ticket key is the process's (`tickets`): shared by every worker, so a session
//! resumes on any of them, and by every generation, so tickets survive a reload.

pub mod certs;
pub mod client;
pub mod hello;
pub mod sni;
pub mod validity;

use std::sync::{Arc, OnceLock};

use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ProducesTickets, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, ServerConfig};

use crate::config::tls::TlsConfig;
use sni::SniTable;

/// A certificate this close to its end is warned about.
const EXPIRY_WARNING_DAYS: u64 = 30;

/// The rustls server config the workers make sessions from.
#[derive(Clone, Debug)]
pub struct Acceptor {
    pub config: Arc<ServerConfig>,
}

pub fn provider() -> Arc<CryptoProvider> {
    static P: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    P.get_or_init(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .clone()
}

/// The process's ticket key (rotated by rustls every 6 hours, the previous key still
/// accepted for as long again).
fn tickets() -> Result<Arc<dyn ProducesTickets>, String> {
    static T: OnceLock<Arc<dyn ProducesTickets>> = OnceLock::new();
    if let Some(t) = T.get() {
        return Ok(t.clone());
    }
    let t = rustls::crypto::aws_lc_rs::Ticketer::new()
        .map_err(|e| format!("cannot make a session-ticket key: {e}"))?;
    Ok(T.get_or_init(|| t).clone())
}

/// Picks the certificate by SNI.
#[derive(Debug)]
struct Resolver {
    table: SniTable,
    keys: Vec<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.keys.get(self.table.pick(hello.server_name())).cloned()
    }
}

/// Reads every certificate and builds the server config. `now`: Unix seconds, for the
/// expiry warnings. Returns the acceptor and lines for the log (one per certificate, and a
/// warning for each that has expired or soon will).
pub fn build(cfg: &TlsConfig, now: u64) -> Result<(Acceptor, Vec<String>), String> {
    let provider = provider();
    let mut notes = Vec::new();
    let mut keys = Vec::new();
    let mut names = Vec::new();
    for (i, p) in cfg.certs.iter().enumerate() {
        let c = certs::load(p, &provider)?;
        notes.push(format!(
            "tls: certificate {}{} for {}{}",
            p.cert.display(),
            if i == 0 { " (default)" } else { "" },
            if c.names.is_empty() {
                "no DNS names".to_string()
            } else {
                c.names.join(", ")
            },
            c.not_after
                .map(|t| format!(", valid until {}", date(t)))
                .unwrap_or_default()
        ));
        notes.extend(expiry_warning(
            &p.cert.display().to_string(),
            c.not_before,
            c.not_after,
            now,
        ));
        keys.push(c.key);
        names.push(c.names);
    }
    let versions = [&rustls::version::TLS13, &rustls::version::TLS12];
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| format!("tls: {e}"))?;
    let builder = match &cfg.client_ca {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let mut roots = RootCertStore::empty();
            for c in certs::read_certs(path)? {
                roots
                    .add(c)
                    .map_err(|e| format!("tls.client_ca {}: {e}", path.display()))?;
            }
            let v = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| format!("tls.client_ca {}: {e}", path.display()))?;
            builder.with_client_cert_verifier(v)
        }
    };
    let mut sc = builder.with_cert_resolver(Arc::new(Resolver {
        table: SniTable::new(&names),
        keys,
    }));
    sc.ticketer = tickets()?;
    sc.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((
        Acceptor {
            config: Arc::new(sc),
        },
        notes,
    ))
}

fn date(unix: u64) -> String {
    let mut b = [0u8; 29];
    crate::http::date::format_http_date(unix, &mut b);
    String::from_utf8_lossy(&b).into_owned()
}

/// A loud line for a certificate that is not valid now or ends within 30 days.
fn expiry_warning(
    what: &str,
    not_before: Option<u64>,
    not_after: Option<u64>,
    now: u64,
) -> Option<String> {
    if let Some(nb) = not_before
        && nb > now
    {
        return Some(format!(
            "tls: WARNING: certificate {what} is not valid yet: it starts on {}",
            date(nb)
        ));
    }
    let na = not_after?;
    if na <= now {
        Some(format!(
            "tls: WARNING: certificate {what} EXPIRED on {}; clients will refuse it",
            date(na)
        ))
    } else if na - now < EXPIRY_WARNING_DAYS * 86_400 {
        Some(format!(
            "tls: WARNING: certificate {what} expires in {} days, on {}",
            (na - now) / 86_400,
            date(na)
        ))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_warnings_name_the_date() {
        let day = 86_400;
        let now = 1_800_000_000;
        let w = |nb, na| expiry_warning("c.pem", Some(nb), Some(na), now);
        assert_eq!(w(now - day, now + 90 * day), None);
        let soon = w(now - day, now + 10 * day + 5).unwrap();
        assert!(
            soon.contains("expires in 10 days") && soon.contains("c.pem"),
            "{soon}"
        );
        let gone = w(now - 9 * day, now - day).unwrap();
        assert!(gone.contains("EXPIRED on Thu, 14 Jan 2027"), "{gone}");
        let early = w(now + day, now + 90 * day).unwrap();
        assert!(early.contains("not valid yet"), "{early}");
        assert_eq!(expiry_warning("c.pem", None, None, now), None);
    }
}
