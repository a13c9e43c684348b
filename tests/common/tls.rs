//! TLS test support: a throwaway CA and certificates made with the openssl CLI (installed by
//! scripts/setup), and a rustls client that speaks raw bytes over TLS to the real binary.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

pub type TlsStream = StreamOwned<ClientConnection, TcpStream>;

fn openssl(args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("run openssl (scripts/setup installs it)");
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA in `dir`, and leaf certificates it signs.
pub struct Pki {
    pub dir: PathBuf,
    pub ca: PathBuf,
    ca_key: PathBuf,
}

impl Pki {
    pub fn new(dir: &Path) -> Pki {
        let ca = dir.join("ca.pem");
        let ca_key = dir.join("ca.key");
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "30",
            "-subj",
            "/CN=uringd test CA",
            "-keyout",
            ca_key.to_str().unwrap(),
            "-out",
            ca.to_str().unwrap(),
        ]);
        Pki {
            dir: dir.to_path_buf(),
            ca,
            ca_key,
        }
    }

    /// A certificate for `names` (DNS subject alternative names), valid for `days` from
    /// now, as (cert, key) paths named after `tag`.
    pub fn leaf(&self, tag: &str, names: &[&str], days: u32) -> (PathBuf, PathBuf) {
        let cert = self.dir.join(format!("{tag}.pem"));
        let key = self.dir.join(format!("{tag}.key"));
        let csr = self.dir.join(format!("{tag}.csr"));
        let ext = self.dir.join(format!("{tag}.ext"));
        // "IP:127.0.0.1" stays as it is; anything else is a DNS name.
        let san: Vec<String> = names
            .iter()
            .map(|n| {
                if n.starts_with("IP:") {
                    n.to_string()
                } else {
                    format!("DNS:{n}")
                }
            })
            .collect();
        std::fs::write(&ext, format!("subjectAltName={}\n", san.join(","))).unwrap();
        openssl(&[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-subj",
            &format!("/CN={}", names[0].trim_start_matches("IP:")),
            "-keyout",
            key.to_str().unwrap(),
            "-out",
            csr.to_str().unwrap(),
        ]);
        openssl(&[
            "x509",
            "-req",
            "-in",
            csr.to_str().unwrap(),
            "-CA",
            self.ca.to_str().unwrap(),
            "-CAkey",
            self.ca_key.to_str().unwrap(),
            "-CAcreateserial",
            "-days",
            &days.to_string(),
            "-out",
            cert.to_str().unwrap(),
            "-extfile",
            ext.to_str().unwrap(),
        ]);
        (cert, key)
    }
}

/// A client that trusts only `ca`, offering ALPN http/1.1.
pub fn client_config(ca: &Path) -> Arc<ClientConfig> {
    client_config_with(ca, None)
}

/// The same, presenting a client certificate (cert, key) when asked.
pub fn client_config_with(ca: &Path, ident: Option<(&Path, &Path)>) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let b = ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots);
    let mut cfg = match ident {
        None => b.with_no_client_auth(),
        Some((cert, key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .unwrap()
                .map(Result::unwrap)
                .collect();
            let key = PrivateKeyDer::from_pem_file(key).unwrap();
            b.with_client_auth_cert(chain, key).unwrap()
        }
    };
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(cfg)
}

/// Connects and completes the handshake (for `name` as SNI).
pub fn connect(
    addr: SocketAddr,
    name: &str,
    cfg: &Arc<ClientConfig>,
) -> std::io::Result<TlsStream> {
    let tcp = TcpStream::connect(addr)?;
    tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
    tcp.set_nodelay(true)?;
    let name = ServerName::try_from(name.to_string()).unwrap();
    let conn = ClientConnection::new(cfg.clone(), name).map_err(std::io::Error::other)?;
    let mut s = StreamOwned::new(conn, tcp);
    while s.conn.is_handshaking() {
        s.conn.complete_io(&mut s.sock)?;
    }
    Ok(s)
}

/// Reads one response (head, then a Content-Length body): (head, body).
pub fn read_response(s: &mut impl Read) -> (String, Vec<u8>) {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = s.read(&mut b).expect("read head");
        assert_eq!(
            n,
            1,
            "closed mid-head: {:?}",
            String::from_utf8_lossy(&head)
        );
        head.push(b[0]);
    }
    let head = String::from_utf8(head).unwrap();
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().unwrap())
        })
        .unwrap_or(0);
    let mut body = vec![0; len];
    s.read_exact(&mut body).expect("read body");
    (head, body)
}

/// GET `path` on a new TLS connection: (status, head, body).
pub fn get(
    addr: SocketAddr,
    name: &str,
    cfg: &Arc<ClientConfig>,
    path: &str,
) -> (u16, String, Vec<u8>) {
    let mut s = connect(addr, name, cfg).expect("TLS connect");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    s.flush().unwrap();
    let (head, body) = read_response(&mut s);
    (head[9..12].parse().unwrap(), head, body)
}

/// The subject line `openssl s_client` prints for the certificate the server sent for `sni`
/// (None: no SNI sent).
pub fn served_subject(addr: SocketAddr, sni: Option<&str>) -> String {
    let mut args = vec!["s_client".to_string(), "-connect".into(), addr.to_string()];
    match sni {
        Some(n) => args.extend(["-servername".to_string(), n.to_string()]),
        None => args.push("-noservername".into()),
    }
    let out = Command::new("openssl")
        .args(&args)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find(|l| l.starts_with("subject="))
        .unwrap_or("")
        .to_string()
}

/// The TLS listener's address, from the "listening on https://" line.
pub fn tls_addr(log: &std::sync::mpsc::Receiver<String>) -> SocketAddr {
    loop {
        let line = log
            .recv_timeout(Duration::from_secs(10))
            .expect("a 'listening on https://' line");
        if let Some(rest) = line.split("listening on https://").nth(1) {
            return rest.split_whitespace().next().unwrap().parse().unwrap();
        }
    }
}
