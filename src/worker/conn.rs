//! One client connection, in its layers: the transport (`Endpoint`), the HTTP/1 codec's
//! state (`Phase`, the input stash, the head scanner), and the exchanges under way
//! (`Exchanges`), each one request and its response. HTTP/1 runs one exchange at a time;
//! nothing else here assumes it.

use crate::driver::Sock;
use crate::transport::Key;

use super::accesslog::LineParts;
use super::pending::PendingQueue;
use super::proxy_req::Proxying;

use crate::http::chunked::ChunkedDecoder;
use crate::http::scan::HeadScanner;
use crate::transport::Endpoint;

/// Where the HTTP/1 codec is in reading the connection's requests.
pub enum Phase {
    /// Waiting for (the rest of) a request head.
    Head,
    /// Draining a request body the route does not need, then answering.
    Body(BodyLeft),
    /// Answered with a closing response: discard input until EOF or the linger deadline.
    Linger,
    /// An exchange is under way (`Conn::exchanges`): later requests wait their turn, and
    /// the input until then is that exchange's (a proxied request's body).
    Exchange,
}

/// The stream HTTP/1's one exchange at a time is filed under.
pub const H1_STREAM: u32 = 0;

/// One request and its response, whose handler waits on something beyond the connection.
/// (A fixed return, a static file or an error page is answered within the call that
/// parsed the head and needs no exchange here.)
pub enum Exchange {
    /// Proxied to an upstream.
    Proxy(Box<Proxying>),
    /// An admin page, gathered from every worker.
    Admin,
}

/// Names one exchange: its client connection and its stream on that connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExchangeKey {
    pub conn: Key,
    pub stream: u32,
}

/// The exchanges under way on a connection, by stream. Empty costs nothing; a connection
/// that proxied once keeps the (one-entry) allocation for its next requests.
#[derive(Default)]
pub struct Exchanges {
    list: Vec<(u32, Exchange)>,
}

impl Exchanges {
    pub fn insert(&mut self, stream: u32, e: Exchange) {
        debug_assert!(self.get(stream).is_none(), "stream {stream} is taken");
        self.list.push((stream, e));
    }

    pub fn get(&self, stream: u32) -> Option<&Exchange> {
        self.list.iter().find(|(s, _)| *s == stream).map(|(_, e)| e)
    }

    pub fn get_mut(&mut self, stream: u32) -> Option<&mut Exchange> {
        self.list
            .iter_mut()
            .find(|(s, _)| *s == stream)
            .map(|(_, e)| e)
    }

    pub fn remove(&mut self, stream: u32) -> Option<Exchange> {
        let i = self.list.iter().position(|(s, _)| *s == stream)?;
        Some(self.list.swap_remove(i).1)
    }

    /// The proxied exchange on `stream`.
    pub fn proxy(&self, stream: u32) -> Option<&Proxying> {
        match self.get(stream)? {
            Exchange::Proxy(p) => Some(p),
            Exchange::Admin => None,
        }
    }

    pub fn proxy_mut(&mut self, stream: u32) -> Option<&mut Proxying> {
        match self.get_mut(stream)? {
            Exchange::Proxy(p) => Some(p),
            Exchange::Admin => None,
        }
    }

    /// Every proxied exchange, with its stream.
    pub fn proxies(&self) -> impl Iterator<Item = (u32, &Proxying)> {
        self.list.iter().filter_map(|(s, e)| match e {
            Exchange::Proxy(p) => Some((*s, &**p)),
            Exchange::Admin => None,
        })
    }

    pub fn proxies_mut(&mut self) -> impl Iterator<Item = &mut Proxying> {
        self.list.iter_mut().filter_map(|(_, e)| match e {
            Exchange::Proxy(p) => Some(&mut **p),
            Exchange::Admin => None,
        })
    }

    /// The lowest stream above `after` with a proxied exchange: visiting streams in this
    /// order stays right while exchanges end or begin during the visit.
    pub fn next_proxy_stream(&self, after: Option<u32>) -> Option<u32> {
        self.proxies()
            .map(|(s, _)| s)
            .filter(|&s| after.is_none_or(|a| s > a))
            .min()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
}

pub enum BodyLeft {
    Length(u64),
    /// Boxed: the decoder is large and rarely needed, and every idle slot would carry it.
    Chunked(Box<ChunkedDecoder>),
}

/// The answer owed once the request body has been drained.
#[derive(Clone, Copy)]
pub struct Owed {
    /// Route index, or None for 404.
    pub route: Option<usize>,
    /// An error page owed instead of the route's answer (405, 404 ...), keeping the
    /// connection.
    pub error: Option<u16>,
    pub head_only: bool,
    pub keep_alive: bool,
    pub http10: bool,
    /// Seconds for a Retry-After on the error page (0: none): a 429 from a limit.
    pub retry_after: u32,
    /// The coding of a fixed answer's precompressed body Accept-Encoding chose.
    pub coding: Option<crate::compress::Codec>,
}

pub struct Conn {
    /// The socket: receive state, send queue, write shutdown, abort (`transport::Endpoint`).
    pub ep: Endpoint,
    /// Accepted on the admin listener.
    pub admin: bool,
    /// A request head has begun (its first byte time is `req_start_us`).
    pub in_head: bool,
    pub req_start_us: u64,
    pub pending: PendingQueue,
    /// Client address, looked up when the access log or a proxy route needs it.
    pub peer: Option<std::net::SocketAddr>,
    /// Port of the listener that accepted it (uwsgi SERVER_PORT).
    pub local_port: u16,
    pub log: LineParts,
    /// The HTTP/1 codec's reading state.
    pub phase: Phase,
    /// The exchanges under way (HTTP/1: at most one, on `H1_STREAM`).
    pub exchanges: Exchanges,
    pub owed: Option<Owed>,
    /// Bytes of an unfinished request (only when a request spans receive buffers).
    pub inbuf: Vec<u8>,
    pub scanner: HeadScanner,
    /// Input is held back: the client is not reading its answers, or the upstream is not
    /// taking the request body. Request handling sets it; `settle` pauses the endpoint and
    /// clears it once the queues have drained.
    pub hold_input: bool,
    /// Close once everything queued has been sent.
    pub close_after_flush: bool,
    /// No byte of a request is buffered (timeouts close silently).
    pub idle: bool,
    pub requests: u64,
    /// Tick at which the current wait began (idle, head, body progress, linger).
    pub since: u64,
    pub wheel_tick: u64,
    pub last_send_tick: u64,
    /// TLS: waits in the deferred-handshake list for the next loop turn.
    pub tls_deferred: bool,
    /// Tick at which the current request's head was parsed: its body must be in by
    /// `body_deadline` after it.
    pub body_start: u64,
    /// Its count in `max_connections_per_ip`'s table, released when the slot is freed.
    pub ip_bucket: Option<u32>,
    /// Accepted on a TLS listener (the session itself is `ep.tls`, which request handling
    /// does not see: it is taken out while records are decrypted).
    pub secure: bool,
    /// The current request's client address: the peer, or who a trusted proxy says it
    /// forwards (`real_ip`). Set when the request is routed.
    pub client: Option<std::net::IpAddr>,
    /// Whose header edits the current request's responses get (errors included).
    pub edit: super::router::EditBy,
    /// The site the TLS handshake's server name chose (sites configured only).
    pub sni: Sni,
    /// A ClientHello split over reads, kept until it is whole (`tls::hello`).
    pub hello: Vec<u8>,
    /// Accepted on a proxy_protocol listener and its PROXY header not read yet.
    pub await_proxy: bool,
}

/// What the TLS server name says about the connection's site.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Sni {
    /// Not read (yet, or not needed: plain, or no sites configured).
    #[default]
    Unread,
    /// The client named no server: its requests may name any site.
    Absent,
    /// The site the name chose (None: no site, or a hello that could not be read):
    /// requests must name the same one.
    Site(Option<crate::edge::host::SiteId>),
}

impl Conn {
    /// Between requests with nothing queued either way: closing it loses nothing.
    pub fn is_idle(&self) -> bool {
        matches!(self.phase, Phase::Head)
            && self.inbuf.is_empty()
            && !self.ep.has_unsent()
            && !self.ep.sending()
    }

    /// The one definition of a fresh connection: `open` starts from it, so a field added
    /// here cannot be forgotten on reuse.
    pub fn new() -> Conn {
        Conn {
            ep: Endpoint::default(),
            admin: false,
            in_head: false,
            req_start_us: 0,
            pending: PendingQueue::default(),
            peer: None,
            local_port: 0,
            log: LineParts::default(),
            phase: Phase::Head,
            exchanges: Exchanges::default(),
            owed: None,
            inbuf: Vec::new(),
            scanner: HeadScanner::new(),
            hold_input: false,
            close_after_flush: false,
            idle: true,
            requests: 0,
            since: 0,
            wheel_tick: 0,
            last_send_tick: 0,
            tls_deferred: false,
            secure: false,
            body_start: 0,
            ip_bucket: None,
            client: None,
            edit: Default::default(),
            sni: Sni::Unread,
            hello: Vec::new(),
            await_proxy: false,
        }
    }

    /// Resets a slot for a freshly accepted socket: everything from `new`, except the
    /// endpoint's buffers (emptied: another client's bytes must never reach this one).
    pub fn open(&mut self, sock: Sock, admin: bool, local_port: u16, now: u64) {
        let mut ep = std::mem::take(&mut self.ep);
        ep.open(sock, false, None);
        *self = Conn {
            ep,
            admin,
            local_port,
            since: now,
            ..Conn::new()
        };
    }

    /// "https" on a TLS connection, else "http" (X-Forwarded-Proto, a redirect's $scheme).
    #[inline]
    pub fn scheme(&self) -> &'static str {
        if self.secure { "https" } else { "http" }
    }

    /// Input is wanted: nothing holds it back and the peer may still send.
    pub fn wants_input(&self) -> bool {
        !self.hold_input && !self.ep.read_closed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exchanges_are_found_by_stream_and_visited_in_order() {
        let mut x = Exchanges::default();
        assert!(x.is_empty() && x.next_proxy_stream(None).is_none());
        x.insert(1, Exchange::Admin);
        x.insert(3, Exchange::Admin);
        assert!(x.get(1).is_some() && x.get(2).is_none());
        assert!(x.proxy(1).is_none(), "an admin exchange is no proxy");
        assert!(matches!(x.remove(1), Some(Exchange::Admin)));
        assert!(x.remove(1).is_none());
        assert!(x.get(3).is_some(), "removing one keeps the others");
        assert_eq!(x.next_proxy_stream(None), None, "no proxied exchange");
        x.insert(5, Exchange::Proxy(Box::new(proxying())));
        x.insert(7, Exchange::Proxy(Box::new(proxying())));
        x.insert(6, Exchange::Proxy(Box::new(proxying())));
        assert_eq!(x.next_proxy_stream(None), Some(5));
        x.remove(5); // ends while visited: the visit goes on from 5
        assert_eq!(x.next_proxy_stream(Some(5)), Some(6));
        assert_eq!(x.next_proxy_stream(Some(6)), Some(7));
        assert_eq!(x.next_proxy_stream(Some(7)), None);
        assert_eq!(x.proxies().count(), 2);
        x.proxy_mut(6).unwrap().keep_alive = false;
        assert!(!x.proxy(6).unwrap().keep_alive && x.proxy(7).unwrap().keep_alive);
    }

    fn proxying() -> Proxying {
        Proxying {
            pool: 0,
            route: 0,
            retryable: true,
            head_only: false,
            keep_alive: true,
            http10: false,
            req_head: Vec::new(),
            body: super::super::proxy_req::ReqBody::None,
            to_up: Vec::new(),
            store: None,
            deferred: false,
            queued_since: None,
            queued_us: 0,
            req_done: true,
            up: None,
            tried: 0,
            attempts: 0,
            resp_started: false,
            close_after: false,
            upgrade: false,
            tunnel: false,
            status: 0,
            kept: None,
            coding: None,
        }
    }
}
