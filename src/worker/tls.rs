//! A client connection on a TLS listener: its session is made at accept, received bytes go
//! through it to the HTTP codec, and what the handshake settled on (or why it failed) is
//! counted. The session itself is `transport::tls`.

use crate::http::response::PLAIN_HTTP_TO_TLS;
use crate::tls::Acceptor;
use crate::transport::tls::{Failure, Session};

use super::conn::{Conn, Phase, Sni};
use super::request::{self, Effects, HttpCtx};

/// Gives a freshly accepted connection its session. False if none could be made (the
/// caller closes the connection).
pub fn start(conn: &mut Conn, acceptor: Option<&Acceptor>, now_us: u64) -> bool {
    let Some(s) = acceptor.and_then(|a| Session::server(a.config.clone()).ok()) else {
        return false;
    };
    conn.ep.tls = Some(Box::new(s));
    conn.secure = true;
    conn.req_start_us = now_us; // the handshake's start, until a request head begins
    true
}

/// Handshake steps one loop turn may run; the rest wait for the next turn (a storm of new
/// connections must not starve the established ones, whose bytes are cheap).
pub const HANDSHAKES_PER_TURN: u32 = 32;

/// The cap in force: `HANDSHAKES_PER_TURN`, or in debug builds `URINGD_DEBUG_HANDSHAKES_PER_TURN`
/// (so the tests can make handshakes wait for later turns with a handful of connections).
pub fn handshakes_per_turn() -> u32 {
    #[cfg(debug_assertions)]
    {
        static CAP: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
        *CAP.get_or_init(|| {
            std::env::var("URINGD_DEBUG_HANDSHAKES_PER_TURN")
                .ok()
                .and_then(|v| v.parse().ok())
                .filter(|&n| n > 0)
                .unwrap_or(HANDSHAKES_PER_TURN)
        })
    }
    #[cfg(not(debug_assertions))]
    HANDSHAKES_PER_TURN
}

/// What became of received ciphertext.
pub enum Outcome {
    Done(Effects),
    /// The turn's handshake budget is spent: the bytes are kept in the session, to be
    /// handled (with an empty `data`) on the next turn.
    Deferred,
    /// The peer sent more than a handshake needs while it waited: close.
    Flooded,
}

/// Received ciphertext: decrypted in place, and each plaintext record handed to request
/// handling as if it had arrived on a plain connection.
pub fn on_data(conn: &mut Conn, http: &mut HttpCtx, data: &mut [u8], up_backlog: usize) -> Outcome {
    if conn.sni == Sni::Unread && http.router.has_sites() {
        read_sni(conn, http, data);
    }
    let Some(mut s) = conn.ep.tls.take() else {
        return Outcome::Done(Effects::default());
    };
    let handshaking = s.handshaking();
    // The accept time; a request in the same batch as the handshake's end resets it.
    let handshake_start = conn.req_start_us;
    if handshaking {
        if http.handshake_budget == 0 || conn.tls_deferred {
            let kept = s.defer(data);
            conn.ep.tls = Some(s);
            return if kept {
                Outcome::Deferred
            } else {
                Outcome::Flooded
            };
        }
        http.handshake_budget -= 1;
    }
    let mut fx = Effects::default();
    let p = s.receive(data, &mut |plain: &[u8]| {
        let f = request::on_data(conn, http, plain, up_backlog);
        fx.reset |= f.reset;
        if f.start.is_some() {
            fx.start = f.start;
        }
    });
    let now_s = http.now_s();
    let t = &mut http.stats.tls;
    if let Some(e) = p.established {
        *(if e.resumed {
            &mut t.resumed
        } else {
            &mut t.full
        }) += 1;
        *(if e.tls13 { &mut t.tls13 } else { &mut t.tls12 }) += 1;
        *(if e.alpn_http11 {
            &mut t.alpn_http11
        } else {
            &mut t.alpn_none
        }) += 1;
        let took = http.now_us.saturating_sub(handshake_start);
        http.recorder.record_handshake(took, now_s);
    }
    if p.peer_closed {
        t.peer_close_notify += 1;
    }
    if let Some(f) = p.failed {
        t.failures[Failure::ALL.iter().position(|&x| x == f).unwrap_or(0)] += 1;
        if handshaking && f == Failure::PlainHttp {
            // As nginx: a plain answer the client can read, then close.
            s.wire.bytes().extend_from_slice(PLAIN_HTTP_TO_TLS);
            s.wire.commit(PLAIN_HTTP_TO_TLS.len());
            http.stats.count_status(400);
        }
        // The alert rustls queued (or the answer above) goes out, then the close.
        conn.close_after_flush = true;
        conn.phase = Phase::Linger;
        conn.inbuf.clear();
    }
    conn.ep.tls = Some(s);
    Outcome::Done(fx)
}

/// Reads the server name from the ClientHello among the connection's first bytes (before
/// rustls decrypts anything in place), keeping a hello split over reads until it is whole.
fn read_sni(conn: &mut Conn, http: &HttpCtx, data: &[u8]) {
    use crate::tls::hello::{Sni as Hello, server_name};
    let sni = if conn.hello.is_empty() {
        server_name(data)
    } else {
        conn.hello.extend_from_slice(data);
        server_name(&conn.hello)
    };
    conn.sni = match sni {
        Hello::Incomplete => {
            if conn.hello.is_empty() {
                conn.hello.extend_from_slice(data);
            }
            return;
        }
        Hello::Absent => Sni::Absent,
        Hello::Name(n) => Sni::Site(http.router.site(Some(&n))),
        // rustls decides whether the handshake goes on; its requests name no site.
        Hello::Invalid => Sni::Site(None),
    };
    conn.hello = Vec::new();
}

/// The server name an https:// upstream is asked for: the pool's `tls_server_name`, else the
/// server's IP address (which its certificate must then cover).
pub fn upstream_name(
    pool: &crate::config::upstream::Pool,
    server: usize,
) -> Option<rustls::pki_types::ServerName<'static>> {
    use crate::config::upstream::Addr;
    use rustls::pki_types::ServerName;
    if let Some(n) = pool.tls.as_ref().and_then(|t| t.server_name.as_ref()) {
        return ServerName::try_from(n.clone()).ok();
    }
    match &pool.servers.get(server)?.addr {
        Addr::Tcp(a) => Some(ServerName::IpAddress(a.ip().into())),
        Addr::Unix(_) => None,
    }
}
