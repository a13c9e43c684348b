//! A TLS server session (`transport::tls::Session`, the glue between rustls's unbuffered
//! API and the worker) fed arbitrary client bytes: whole, and again cut into small receives.
//! Seeds are real ClientHellos (TLS 1.3 and 1.2) and a plain HTTP request.
//!
//! It must never panic, never hand out plaintext (no client can finish a handshake without
//! keys the fuzzer cannot compute), and, once failed, stay failed. After every receive the
//! worker's flush path runs too (encrypt what the codec queued, close_notify).

#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use uringd::config::tls::{CertPaths, TlsConfig};
use uringd::driver::outq::OutQueue;
use uringd::transport::tls::Session;

// A throwaway self-signed P-256 certificate for fuzz.test, made for this target only.
const CERT: &str = "-----BEGIN CERTIFICATE-----
MIIBlDCCATugAwIBAgIUen3SKBhEX2N04TWDE3EFOudaiWowCgYIKoZIzj0EAwIw
FDESMBAGA1UEAwwJZnV6ei50ZXN0MCAXDTI2MTIwMjA2NDAxMloYDzIxMjYxMTA4
MDY0MDEyWjAUMRIwEAYDVQQDDAlmdXp6LnRlc3QwWTATBgcqhkjOPQIBBggqhkjO
PQMBBwNCAAS6m56fih3L6ZJEK1HnulAWi44k6bHwj0nbwTqvh7yxhV2SK8cdTScm
JHRWglkHzRVWiHzNLmBFb+6AV6+p+ghUo2kwZzAdBgNVHQ4EFgQU2KhSrpWP1hRe
hWc4gC0MmVmG/pMwHwYDVR0jBBgwFoAU2KhSrpWP1hRehWc4gC0MmVmG/pMwDwYD
VR0TAQH/BAUwAwEB/zAUBgNVHREEDTALgglmdXp6LnRlc3QwCgYIKoZIzj0EAwID
RwAwRAIgDQ6TFlmypyPMmQc4jzuCnMtVCRLDa2A953wCSZ4IXBYCIGexEp2dW/Qr
7NdL4t/FwoUMsqCmLk8eXdwBwMk3pZfL
-----END CERTIFICATE-----
";
const KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgThiFL8vzWbsWYuf/
IE4dQlOTb2OsQeEevcXGfNkmacOhRANCAAS6m56fih3L6ZJEK1HnulAWi44k6bHw
j0nbwTqvh7yxhV2SK8cdTScmJHRWglkHzRVWiHzNLmBFb+6AV6+p+ghU
-----END PRIVATE KEY-----
";

fn config() -> Arc<rustls::ServerConfig> {
    static C: OnceLock<Arc<rustls::ServerConfig>> = OnceLock::new();
    C.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("uringd-fuzz-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (cert, key) = (dir.join("c.pem"), dir.join("k.pem"));
        std::fs::write(&cert, CERT).unwrap();
        std::fs::write(&key, KEY).unwrap();
        let cfg = TlsConfig {
            listen: Vec::new(),
            certs: vec![CertPaths { cert, key }],
            client_ca: None,
        };
        uringd::tls::build(&cfg, 0).unwrap().0.config
    })
    .clone()
}

fn run(data: &[u8], chunk: usize) {
    let mut s = Session::server(config()).unwrap();
    let mut out = OutQueue::default();
    let mut failed = false;
    for piece in data.chunks(chunk.max(1)) {
        let mut buf = piece.to_vec();
        let p = s.receive(&mut buf, &mut |plain: &[u8]| {
            panic!("plaintext before any handshake could finish: {plain:?}")
        });
        assert!(!(failed && p.established.is_some()), "a failed session came back");
        failed |= p.failed.is_some();
        assert_eq!(failed, s.failed());
        out.bytes().extend_from_slice(b"HTTP/1.1 200 OK\r\n\r\n");
        out.commit(19);
        let _ = s.encrypt(&mut out);
        s.close_notify();
        // The wire queue only grows by what a handshake or an alert needs.
        assert!(s.wire.len() < 64 * 1024, "{} bytes queued", s.wire.len());
    }
}

fuzz_target!(|data: &[u8]| {
    run(data, data.len());
    run(data, 1 + data.len() % 7);
});
