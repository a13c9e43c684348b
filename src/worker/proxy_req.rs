//! The client side of a proxied request: build the forwarded head when the request head is
//! parsed, then move the request body (re-framed by uringd) towards the upstream. The worker
//! (`upstream.rs`) owns the upstream connection and moves `to_up` into its send queue.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use crate::config::upstream::Proto;
use crate::http::chunked::{ChunkedDecoder, ChunkedError};
use crate::http::framing::{Decode, Encode};
use crate::http::parser::{self, Head, HeaderSpan, Method, Version};
use crate::proxy::chunkenc::{LAST_CHUNK, chunk_header};
use crate::proxy::reqhead::{Forward, write_request_head};
use crate::proxy::uwsgi::{self, UwsgiVars};

use super::conn::{Conn, Exchange, H1_STREAM, Phase};
use super::request::HttpCtx;
use super::spool::{Spool, SpoolError};
use crate::transport::Key;

/// How the request body travels to the upstream.
pub enum ReqBody {
    None,
    /// Content-Length: forwarded as is (streaming, or into `Proxying::store`).
    Length(u64),
    /// Chunked from the client, re-chunked by uringd towards an HTTP upstream (streaming).
    Chunked(ChunkedDecoder),
    /// Chunked from the client, decoded into `Proxying::store`, and sent once complete
    /// behind a head that gives its length: with request buffering, and always to a uwsgi
    /// upstream (which frames bodies by CONTENT_LENGTH only).
    Buffered {
        dec: ChunkedDecoder,
        head: Vec<u8>,
        /// The head's normalized path, for the head written once the body is complete.
        path: Vec<u8>,
    },
}

/// A request being proxied (`Exchange::Proxy`, boxed so a connection between requests
/// stays small).
pub struct Proxying {
    pub pool: usize,
    pub route: usize,
    /// Safe to send again on another connection (idempotent method, no body).
    pub retryable: bool,
    pub head_only: bool,
    pub keep_alive: bool,
    pub http10: bool,
    /// The forwarded head, kept until the upstream answers so a retry can resend it.
    pub req_head: Vec<u8>,
    pub body: ReqBody,
    /// Body bytes produced by the client side, not yet in the upstream's send queue.
    pub to_up: Vec<u8>,
    /// The whole body, held (request buffering): memory, then a temporary file. Kept
    /// until the response begins, so a retry sends it again.
    pub store: Option<Spool>,
    /// The upstream side starts once the body is complete (request buffering).
    pub deferred: bool,
    /// Waiting for a free slot of the pool's `max_conns` since this tick.
    pub queued_since: Option<u64>,
    /// ...and since this microsecond (the wait's histogram).
    pub queued_us: u64,
    /// The whole request has been read from the client.
    pub req_done: bool,
    /// The upstream connection serving this request.
    pub up: Option<Key>,
    /// Servers already tried for this request (bit per server index).
    pub tried: u64,
    pub attempts: u32,
    /// A response head has been written to the client (after this, errors cut the connection).
    pub resp_started: bool,
    /// Close the client connection after this response (HTTP/1.0 close-delimited, etc.).
    pub close_after: bool,
    /// The client asked to upgrade (WebSocket); forwarded, and a tunnel only after a 101.
    pub upgrade: bool,
    /// The upstream answered 101: bytes now flow both ways untouched until either closes.
    pub tunnel: bool,
    /// Status of the response being relayed (for the log and counters).
    pub status: u16,
    /// The client's conditional and range headers, for a file the upstream may name by
    /// X-Accel-Redirect (kept only when some route serves files and there are any).
    pub kept: Option<Box<crate::statics::Kept>>,
    /// The coding the client's Accept-Encoding chose, on a route that compresses its
    /// upstream's responses (`compress_proxied`).
    pub coding: Option<crate::compress::Codec>,
}

/// A routed request to proxy.
pub struct Begin<'a> {
    /// The head's bytes and its parse.
    pub buf: &'a [u8],
    pub head: &'a Head,
    /// The normalized path (http/path.rs) that routing matched.
    pub path: &'a [u8],
    pub route: usize,
    pub pool: usize,
    /// The client offers only upgrade protocols the route allows.
    pub upgrade: bool,
}

/// Starts proxying the request whose head is `buf`. Returns false if it was answered with
/// an error instead (the caller must not continue with this request).
pub fn begin(conn: &mut Conn, ctx: &mut HttpCtx, req: &Begin) -> bool {
    let Begin {
        buf,
        head: h,
        path,
        route,
        pool,
        ..
    } = *req;
    let proto = ctx.pools_proto[pool];
    let idempotent = matches!(
        h.method_kind,
        Method::Get | Method::Head | Method::Options | Method::Put | Method::Delete | Method::Trace
    );
    // An upgrade is attempted only where it can be: a bodyless HTTP/1.1 GET to an HTTP upstream.
    let upgrade = req.upgrade
        && proto == Proto::Http
        && h.method_kind == Method::Get
        && h.version == Version::Http11
        && matches!(h.body, Decode::None | Decode::Length(0));
    let mut req_head = Vec::with_capacity(buf.len() + 128);
    let buffering = ctx.pools_shield[pool].request_buffering;
    let body = match (h.body, proto) {
        (Decode::Length(n), _) if n > ctx.max_body => return reject(conn, ctx, 413),
        // A request without a length has no body (`UntilClose` is a response's framing).
        (Decode::None | Decode::UntilClose | Decode::Length(0), _) => ReqBody::None,
        (Decode::Length(n), _) => ReqBody::Length(n),
        (Decode::Chunked, Proto::Http) if !buffering => ReqBody::Chunked(ChunkedDecoder::new(
            ctx.max_body,
            ctx.limits.max_header_bytes,
        )),
        (Decode::Chunked, _) => ReqBody::Buffered {
            dec: ChunkedDecoder::new(ctx.max_body, ctx.limits.max_header_bytes),
            head: buf.to_vec(),
            path: path.to_vec(),
        },
    };
    let store = match body {
        ReqBody::Buffered { .. } => true,
        ReqBody::Length(_) => buffering,
        _ => false,
    }
    .then(|| Spool::new(ctx.pools_shield[pool].body_buffer, ctx.max_body));
    if !matches!(body, ReqBody::Buffered { .. }) {
        let len = if let ReqBody::Length(n) = body { n } else { 0 };
        let framing = match &body {
            ReqBody::None => Encode::None,
            ReqBody::Length(n) => Encode::Length(*n),
            _ => Encode::Chunked,
        };
        let at = Request {
            buf,
            head: h,
            headers: &ctx.headers,
            path,
        };
        let f = Framed {
            framing,
            len,
            upgrade,
        };
        if !write_head(
            &mut req_head,
            proto,
            &ctx.trusted_proxies,
            peer_of(conn, ctx),
            &at,
            f,
        ) {
            return reject(conn, ctx, 431);
        }
    }
    if h.expect_continue && h.version == Version::Http11 && !matches!(body, ReqBody::None) {
        // We take the body ourselves (and re-frame it), so we invite it ourselves.
        conn.ep
            .out
            .bytes()
            .extend_from_slice(crate::http::response::CONTINUE_100);
        conn.ep
            .out
            .commit(crate::http::response::CONTINUE_100.len());
    }
    let req_done = matches!(body, ReqBody::None);
    conn.phase = Phase::Exchange;
    let p = Box::new(Proxying {
        pool,
        route,
        // A held body can be sent again.
        retryable: idempotent && (req_done || store.is_some()),
        head_only: h.method_kind == Method::Head,
        keep_alive: h.keep_alive && !ctx.draining,
        http10: h.version == Version::Http10,
        req_head,
        body,
        to_up: Vec::new(),
        deferred: store.is_some(),
        store,
        queued_since: None,
        queued_us: 0,
        req_done,
        up: None,
        tried: 0,
        attempts: 0,
        resp_started: false,
        close_after: false,
        upgrade,
        tunnel: false,
        status: 0,
        coding: {
            let e = ctx.router.edge(route);
            e.compress_proxied
                .then(|| {
                    let ae = parser::find_header(buf, &ctx.headers, b"accept-encoding");
                    crate::compress::negotiate::choose(ae, &e.compress)
                })
                .flatten()
        },
        kept: if ctx.router.has_statics() {
            crate::statics::Kept::capture(buf, &ctx.headers)
        } else {
            None
        },
    });
    conn.exchanges.insert(H1_STREAM, Exchange::Proxy(p));
    true
}

/// The client's address and our port, as the uwsgi vars need them.
#[derive(Clone, Copy)]
struct Peer {
    addr: Option<SocketAddr>,
    /// The client `real_ip` found behind trusted proxies (None: the peer is the client).
    real: Option<IpAddr>,
    local_port: u16,
    scheme: &'static str,
    underscores: bool,
}

/// A parsed request head and its normalized path.
struct Request<'a> {
    buf: &'a [u8],
    head: &'a Head,
    headers: &'a [HeaderSpan],
    path: &'a [u8],
}

/// How the forwarded head frames the body, beyond what the client's head says.
struct Framed {
    framing: Encode,
    /// The body's length (uwsgi's CONTENT_LENGTH).
    len: u64,
    upgrade: bool,
}

fn peer_of(conn: &Conn, ctx: &HttpCtx) -> Peer {
    let real = conn
        .client
        .filter(|_| ctx.real_ip == crate::config::RealIp::ForwardedFor);
    Peer {
        addr: conn.peer,
        real,
        local_port: conn.local_port,
        scheme: conn.scheme(),
        underscores: ctx.underscores_in_headers,
    }
}

/// Writes the head the upstream gets: HTTP/1.1 or uwsgi vars. False: too large for uwsgi.
fn write_head(
    out: &mut Vec<u8>,
    proto: Proto,
    trusted: &crate::edge::cidr::CidrSet,
    peer: Peer,
    r: &Request,
    f: Framed,
) -> bool {
    let ip = peer
        .addr
        .map(|p| p.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let client_trusted = trusted.contains(ip);
    match proto {
        Proto::Http => {
            let fw = Forward {
                path: r.path,
                client_ip: ip,
                client_trusted,
                real_ip: peer.real,
                underscores: peer.underscores,
                scheme: peer.scheme,
                framing: f.framing,
                upgrade: f.upgrade,
                via: "1.1 uringd",
            };
            write_request_head(out, r.buf, r.head, r.headers, &fw);
            true
        }
        Proto::Uwsgi => {
            let v = UwsgiVars {
                path: r.path,
                remote_addr: ip,
                remote_port: peer.addr.map(|p| p.port()).unwrap_or(0),
                server_name: "uringd",
                server_port: peer.local_port,
                scheme: peer.scheme,
                content_length: f.len,
                client_trusted,
                real_ip: peer.real,
                underscores: peer.underscores,
            };
            uwsgi::write_request(out, r.buf, r.head, r.headers, &v).is_ok()
        }
    }
}

fn reject(conn: &mut Conn, ctx: &mut HttpCtx, status: u16) -> bool {
    super::request::fail(conn, ctx, status);
    false
}

/// Consumes request body bytes for a proxied request. Returns bytes used; stops (keeping
/// the rest stashed) once the request is complete, so a pipelined next request waits.
pub fn consume_body(conn: &mut Conn, ctx: &mut HttpCtx, rest: &[u8]) -> Result<usize, u16> {
    let peer = peer_of(conn, ctx);
    let Some(p) = conn.exchanges.proxy_mut(H1_STREAM) else {
        return Ok(0);
    };
    if p.tunnel {
        // After a 101 the client's bytes are the new protocol's: relayed untouched.
        p.to_up.extend_from_slice(rest);
        return Ok(rest.len());
    }
    if p.req_done {
        return Ok(0);
    }
    let dir = &ctx.pools_shield[p.pool].temp_dir;
    let mut held = Ok(());
    let used = match &mut p.body {
        ReqBody::None => {
            p.req_done = true;
            0
        }
        ReqBody::Length(left) => {
            let take = (*left).min(rest.len() as u64) as usize;
            match &mut p.store {
                Some(s) => held = s.push(&rest[..take], dir),
                None => p.to_up.extend_from_slice(&rest[..take]),
            }
            *left -= take as u64;
            p.req_done = *left == 0;
            take
        }
        ReqBody::Chunked(dec) => {
            let to_up = &mut p.to_up;
            let (used, done) = dec
                .feed(rest, &mut |d: &[u8]| {
                    chunk_header(to_up, d.len());
                    to_up.extend_from_slice(d);
                    to_up.extend_from_slice(b"\r\n");
                })
                .map_err(chunk_status)?;
            if done {
                to_up.extend_from_slice(LAST_CHUNK);
                p.req_done = true;
            }
            used
        }
        ReqBody::Buffered { dec, head, path } => {
            let Some(store) = p.store.as_mut() else {
                return Err(500);
            };
            let (used, done) = dec
                .feed(rest, &mut |d: &[u8]| {
                    if held.is_ok() {
                        held = store.push(d, dir);
                    }
                })
                .map_err(chunk_status)?;
            if done && held.is_ok() {
                // Now the length is known: the head that gives it, then the body.
                let head = std::mem::take(head);
                let h = parser::parse_head(&head, &ctx.limits, &mut ctx.headers)
                    .map_err(|e| e.status())?;
                let at = Request {
                    buf: &head,
                    head: &h,
                    headers: &ctx.headers,
                    path,
                };
                let f = Framed {
                    framing: Encode::Length(store.len()),
                    len: store.len(),
                    upgrade: false,
                };
                let proto = ctx.pools_proto[p.pool];
                if !write_head(&mut p.req_head, proto, &ctx.trusted_proxies, peer, &at, f) {
                    return Err(431);
                }
                p.req_done = true;
            }
            used
        }
    };
    if let Err(e) = held {
        return Err(spool_status(ctx, &e));
    }
    Ok(used)
}

/// A body that could not be held: 413 past the cap, 507 on a full disk, else 500; logged.
fn spool_status(ctx: &mut HttpCtx, e: &SpoolError) -> u16 {
    let status = match e {
        SpoolError::TooLarge => return 413,
        _ if e.disk_full() => 507,
        _ => 500,
    };
    let (id, now) = (ctx.worker_id, ctx.now_tick);
    let why = e.why();
    ctx.errlog.line(id, now, || {
        format!("{status}: a request body could not be held: {why}")
    });
    status
}

fn chunk_status(e: ChunkedError) -> u16 {
    match e {
        ChunkedError::TooLarge => 413,
        ChunkedError::Malformed(_) => 400,
    }
}
