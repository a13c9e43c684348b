//! Turning received bytes into responses: scan, parse, route, drain bodies, answer.
//! Works on borrowed slices of the kernel's receive buffer; copies only a request that
//! spans buffers.

use super::router::{EditBy, Router, Target};
use crate::admin::{self, Decision};
use crate::config::LimitKey;
use crate::edge::headers::Edited;
use crate::http::chunked::{ChunkedDecoder, ChunkedError};
use crate::http::framing::Decode;
use crate::http::parser::{self, Head, HeaderSpan, Method, Version, find_header};
use crate::http::path::{self, Normalized, PathError};
use crate::http::redirect::{Values, Var};
use crate::http::response::{CONTINUE_100, ErrorPages, write_dynamic, write_redirect};
use crate::stats::{Counters, Recorder};

use super::accesslog::AccessLog;
use super::conn::{BodyLeft, Conn, Exchange, H1_STREAM, Owed, Phase};
use super::pending::Pending;

/// What request handling asks of the worker. Returned by every entry point and applied by
/// the worker as soon as the call returns, before anything else happens on the connection.
#[derive(Default)]
#[must_use]
pub struct Effects {
    /// An admin `POST /reset`: every worker's histograms are reset.
    pub reset: bool,
    /// What the connection now waits on (its phase says so too).
    pub start: Option<Start>,
}

/// Each names the exchange's stream on the connection (HTTP/1: `H1_STREAM`).
pub enum Start {
    /// A proxied request head was parsed: start the upstream exchange.
    Proxy { stream: u32 },
    /// An admin page is to be gathered from every worker.
    Gather { stream: u32, ask: admin::Ask },
}

/// Above this many queued response bytes a connection stops reading (the client is not
/// reading its answers); below `OUT_LOW` it resumes.
pub const OUT_HIGH: usize = 256 * 1024;
pub const OUT_LOW: usize = 64 * 1024;

/// Everything request handling needs besides the connection itself.
pub struct HttpCtx {
    pub router: Router,
    pub errors: ErrorPages,
    pub limits: parser::Limits,
    pub max_body: u64,
    pub headers: Vec<HeaderSpan>,
    pub date: [u8; 29],
    pub zc_threshold: usize,
    pub draining: bool,
    pub now_tick: u64,
    /// Microseconds since the worker started, read once per loop turn.
    pub now_us: u64,
    /// Wall-clock Unix seconds (the dashboard history's time base), once per tick.
    pub unix_s: u64,
    pub stats: Counters,
    pub recorder: Recorder,
    pub server_header: String,
    pub admin_token: Option<Vec<u8>>,
    pub log: Option<AccessLog>,
    /// The current request's normalized path (http/path.rs), reused across requests.
    pub path: Vec<u8>,
    /// The routing reading of a path that holds `%2F` (`path::route_key`).
    pub route_key: Vec<u8>,
    /// Reused for header lines built per request (a redirect's Location).
    pub scratch: Vec<u8>,
    /// Protocol of each upstream pool, by pool index.
    pub pools_proto: Vec<crate::config::upstream::Proto>,
    /// Each pool's buffering and admission settings.
    pub pools_shield: Vec<crate::config::upstream::Shielding>,
    /// Each pool's name (an app's is `app:NAME`).
    pub pools_names: Vec<String>,
    pub trusted_proxies: crate::edge::cidr::CidrSet,
    /// Where the client's address comes from (`real_ip`).
    pub real_ip: crate::config::RealIp,
    /// This worker's number, for its log lines.
    pub worker_id: usize,
    /// `underscores_in_headers`: forward header names with an underscore.
    pub underscores_in_headers: bool,
    /// The tables shared with the other workers (rate limits), and each route's limit key.
    pub shield: crate::shield::Shield,
    pub limit_keys: Vec<Option<LimitKey>>,
    /// This worker's start on the shared tables' clock (`shield::epoch`), microseconds.
    pub clock_base_us: u64,
    /// TLS handshake steps left this loop turn (`tls::HANDSHAKES_PER_TURN`).
    pub handshake_budget: u32,
    /// Rate-limited error lines (upstream failures, refusals by a limit).
    pub errlog: super::errlog::ErrLog,
}

impl HttpCtx {
    pub fn now_s(&self) -> u64 {
        self.now_us / 1_000_000
    }

    /// This turn's time on the clock every worker shares (`shield::epoch`).
    #[inline]
    pub fn shared_now_us(&self) -> u64 {
        self.clock_base_us + self.now_us
    }
}

/// Handles newly received bytes for a connection. `up_backlog`: request bytes still
/// queued towards the upstream of a proxied request (back-pressure on its body).
pub fn on_data(conn: &mut Conn, ctx: &mut HttpCtx, data: &[u8], up_backlog: usize) -> Effects {
    let mut fx = Effects::default();
    if matches!(conn.phase, Phase::Linger) {
        return fx;
    }
    if conn.await_proxy {
        conn.inbuf.extend_from_slice(data);
        return match proxy_header(conn, ctx) {
            true => consume_stash(conn, ctx, up_backlog),
            false => fx,
        };
    }
    if conn.inbuf.is_empty() {
        let used = consume(conn, ctx, &mut fx, data, up_backlog);
        if used < data.len() && !matches!(conn.phase, Phase::Linger) {
            conn.inbuf.extend_from_slice(&data[used..]);
        }
    } else {
        conn.inbuf.extend_from_slice(data);
        fx = consume_stash(conn, ctx, up_backlog);
    }
    fx
}

/// The PROXY header a proxy_protocol listener's connection starts with, from the stash:
/// true once it is read (the stash holds what follows it). Malformed, or not there at
/// all: the connection is closed without an answer (it is not a client's).
fn proxy_header(conn: &mut Conn, ctx: &mut HttpCtx) -> bool {
    use crate::edge::proxy_protocol::{Error, parse};
    match parse(&conn.inbuf) {
        Ok(h) => {
            conn.await_proxy = false;
            conn.inbuf.drain(..h.len);
            let trusted = conn
                .peer
                .is_some_and(|p| ctx.trusted_proxies.contains(p.ip()));
            if let Some(src) = h.source
                && trusted
                && ctx.real_ip == crate::config::RealIp::ProxyProtocol
            {
                conn.peer = Some(src);
            }
            true
        }
        Err(Error::Incomplete) => false,
        Err(Error::Invalid(why)) => {
            ctx.stats.proxy_header_errors += 1;
            let from = conn.peer.map_or_else(String::new, |p| format!(" from {p}"));
            let (id, now) = (ctx.worker_id, ctx.now_tick);
            ctx.errlog
                .line(id, now, || format!("closed a connection{from}: {why}"));
            conn.close_after_flush = true;
            conn.phase = Phase::Linger;
            conn.inbuf.clear();
            false
        }
    }
}

/// Processes bytes stashed in the connection's own buffer.
pub fn consume_stash(conn: &mut Conn, ctx: &mut HttpCtx, up_backlog: usize) -> Effects {
    let mut fx = Effects::default();
    let mut buf = std::mem::take(&mut conn.inbuf);
    let used = consume(conn, ctx, &mut fx, &buf, up_backlog);
    if matches!(conn.phase, Phase::Linger) {
        buf.clear();
    } else {
        buf.drain(..used);
    }
    conn.inbuf = buf;
    fx
}

/// Consumes as many whole requests (and body bytes) as `data` holds. Returns bytes used;
/// the rest is the start of an unfinished request.
fn consume(
    conn: &mut Conn,
    ctx: &mut HttpCtx,
    fx: &mut Effects,
    data: &[u8],
    up_backlog: usize,
) -> usize {
    let mut pos = 0;
    loop {
        if conn.close_after_flush {
            // Nothing after a closing response is answered.
            return data.len();
        }
        if conn.ep.unsent() > OUT_HIGH {
            conn.hold_input = true;
            return pos;
        }
        let rest = &data[pos..];
        if rest.is_empty() {
            return pos;
        }
        match &mut conn.phase {
            Phase::Linger => return data.len(),
            Phase::Exchange => {
                let Some(p) = conn.exchanges.proxy(H1_STREAM) else {
                    return pos; // an admin gather: the next pipelined request waits
                };
                if p.req_done && !p.tunnel {
                    return pos; // the next pipelined request waits for this response
                }
                if p.to_up.len() + up_backlog > OUT_HIGH {
                    conn.hold_input = true;
                    return pos;
                }
                let r = super::proxy_req::consume_body(conn, ctx, rest);
                if let Some(p) = conn.exchanges.proxy_mut(H1_STREAM)
                    && p.deferred
                    && p.req_done
                {
                    // The held body is complete: now a server is chosen.
                    p.deferred = false;
                    if p.store.as_ref().is_some_and(|s| s.on_disk()) {
                        ctx.stats.spooled_bodies += 1;
                    }
                    fx.start = Some(Start::Proxy { stream: H1_STREAM });
                }
                match r {
                    Ok(0) => return pos,
                    Ok(n) => {
                        pos += n;
                        conn.since = ctx.now_tick;
                    }
                    Err(status) => {
                        fail(conn, ctx, status);
                        return data.len();
                    }
                }
            }
            Phase::Head => {
                if !conn.in_head {
                    conn.in_head = true;
                    conn.req_start_us = ctx.now_us;
                }
                match conn.scanner.scan(rest, &ctx.limits) {
                    Ok(None) => {
                        if conn.idle {
                            conn.idle = false;
                            conn.since = ctx.now_tick;
                        }
                        return pos;
                    }
                    Ok(Some(n)) => {
                        conn.scanner.reset();
                        conn.idle = false;
                        head(conn, ctx, fx, &rest[..n]);
                        pos += n;
                    }
                    Err(e) => {
                        conn.log.clear(); // this request never got a head to log
                        fail(conn, ctx, e.status());
                        return data.len();
                    }
                }
            }
            Phase::Body(BodyLeft::Length(left)) => {
                let take = (*left).min(rest.len() as u64);
                *left -= take;
                pos += take as usize;
                conn.since = ctx.now_tick;
                if *left == 0 {
                    body_done(conn, ctx);
                }
            }
            Phase::Body(BodyLeft::Chunked(dec)) => match dec.feed(rest, &mut |_| {}) {
                Ok((used, done)) => {
                    pos += used;
                    conn.since = ctx.now_tick;
                    if done {
                        body_done(conn, ctx);
                    } else if used == 0 {
                        return pos;
                    }
                }
                Err(ChunkedError::TooLarge) => {
                    fail(conn, ctx, 413);
                    return data.len();
                }
                Err(ChunkedError::Malformed(_)) => {
                    fail(conn, ctx, 400);
                    return data.len();
                }
            },
        }
    }
}

fn head(conn: &mut Conn, ctx: &mut HttpCtx, fx: &mut Effects, buf: &[u8]) {
    conn.in_head = false;
    conn.edit = EditBy::None;
    conn.body_start = ctx.now_tick;
    conn.log.clear();
    let h = match parser::parse_head(buf, &ctx.limits, &mut ctx.headers) {
        Ok(h) => h,
        Err(e) => return fail(conn, ctx, e.status()),
    };
    if ctx.log.is_some() && !conn.admin {
        conn.log.begin(buf, &h, &ctx.headers);
    }
    // Routing and the backend read the same path: the normalized one, or a 400.
    let mut path = std::mem::take(&mut ctx.path);
    match path::normalize(h.path_or_root(buf), &mut path) {
        Ok(n) => routed(conn, ctx, fx, buf, &h, &path, n),
        Err(_) => fail(conn, ctx, 400),
    }
    ctx.path = path;
}

/// The route of `site` a normalized path selects. Admin data is never served on traffic
/// listeners, whatever the routes say.
fn route_of(
    ctx: &mut HttpCtx,
    site: crate::edge::host::SiteId,
    path: &[u8],
    n: Normalized,
) -> Result<Option<usize>, PathError> {
    let key = if n.encoded_slash {
        path::route_key(path, &mut ctx.route_key)?;
        &ctx.route_key[..]
    } else {
        path
    };
    Ok(if key.starts_with(admin::PREFIX) {
        None
    } else {
        ctx.router.find(site, key)
    })
}

/// The site a request names by its Host (the absolute-form authority wins), checked on TLS
/// against the site the handshake's server name chose. None: 421.
fn site_of(conn: &Conn, ctx: &HttpCtx, buf: &[u8], h: &Head) -> Option<crate::edge::host::SiteId> {
    let host = h.authority.or(h.host).map(|s| s.get(buf));
    let site = ctx.router.site(host)?;
    if conn.secure && ctx.router.has_sites() {
        match conn.sni {
            super::conn::Sni::Site(s) if s != Some(site) => return None,
            super::conn::Sni::Unread => return None,
            _ => {}
        }
    }
    Some(site)
}

/// The request's client address: the peer (which a PROXY header may have set), or with
/// `real_ip = "x-forwarded-for"` the address a trusted peer forwards for.
fn client_of(conn: &Conn, ctx: &HttpCtx, buf: &[u8]) -> Option<std::net::IpAddr> {
    let peer = conn.peer?.ip();
    if ctx.real_ip != crate::config::RealIp::ForwardedFor {
        return Some(peer);
    }
    let fields = ctx
        .headers
        .iter()
        .filter(|s| s.name.get(buf).eq_ignore_ascii_case(b"x-forwarded-for"))
        .map(|s| s.value.get(buf));
    Some(crate::edge::realip::from_forwarded_for(
        fields,
        peer,
        &ctx.trusted_proxies,
    ))
}

/// A parsed request with its normalized path: answer it, or start what answers it.
fn routed(
    conn: &mut Conn,
    ctx: &mut HttpCtx,
    fx: &mut Effects,
    buf: &[u8],
    h: &Head,
    path: &[u8],
    n: Normalized,
) {
    if conn.admin {
        return admin_head(conn, ctx, fx, buf, h, path);
    }
    // Traffic only: admin requests stay out of the counters they report.
    ctx.stats.requests += 1;
    let http10 = h.version == Version::Http10;
    #[cfg(debug_assertions)]
    super::debug_hook::maybe_panic(path);
    conn.client = client_of(conn, ctx, buf);
    let keep_alive = h.keep_alive && !ctx.draining;
    let owe = move |status: u16| Owed {
        route: None,
        error: Some(status),
        head_only: h.method_kind == Method::Head,
        keep_alive,
        http10,
        retry_after: 0,
        coding: None,
    };
    let Some(site) = site_of(conn, ctx, buf, h) else {
        ctx.stats.misdirected += 1;
        return answer_after_body(conn, ctx, h, owe(421));
    };
    conn.edit = EditBy::Site(site);
    let mut route = match route_of(ctx, site, path, n) {
        Ok(r) => r,
        Err(_) => return fail(conn, ctx, 400),
    };
    if let Some(r) = route {
        let edge = ctx.router.edge(r);
        if edge.internal {
            // Only an upstream's X-Accel-Redirect reaches it; to anyone else it is not there.
            route = None;
        } else {
            conn.edit = EditBy::Route(r as u32);
            if let Some(a) = &edge.access
                && !conn.client.is_some_and(|ip| a.permits(ip))
            {
                ctx.stats.forbidden += 1;
                return answer_after_body(conn, ctx, h, owe(403));
            }
        }
    }
    if let Some(r) = route
        && let Some(wait) = over_limit(conn, ctx, buf, r)
    {
        // Over the route's limit: 429 once the body is read, the connection kept.
        ctx.stats.limited += 1;
        if let Some(n) = ctx.stats.limited_by_route.get_mut(r) {
            *n += 1;
        }
        let owed = Owed {
            route: Some(r),
            error: Some(429),
            head_only: h.method_kind == Method::Head,
            keep_alive: h.keep_alive && !ctx.draining,
            http10,
            retry_after: wait,
            coding: None,
        };
        return answer_after_body(conn, ctx, h, owed);
    }
    if let Some(r) = route {
        match ctx.router.target(r) {
            Target::Upstream { pool, upgrades } => {
                let pool = *pool;
                let upgrade = h.upgrade
                    && crate::proxy::upgrade::offered_allowed(buf, &ctx.headers, upgrades);
                let req = super::proxy_req::Begin {
                    buf,
                    head: h,
                    path,
                    route: r,
                    pool,
                    upgrade,
                };
                if super::proxy_req::begin(conn, ctx, &req)
                    && conn.exchanges.proxy(H1_STREAM).is_some_and(|p| !p.deferred)
                {
                    fx.start = Some(Start::Proxy { stream: H1_STREAM });
                }
                return;
            }
            Target::Static(..) => return static_file(conn, ctx, buf, h, path, r),
            Target::Redirect { .. } => return redirect(conn, ctx, buf, h, path, r),
            Target::Respond(..) => {}
        }
    }
    let coding = match route {
        Some(r) if matches!(ctx.router.target(r), Target::Respond(_, e) if !e.is_empty()) => {
            let ae = find_header(buf, &ctx.headers, b"accept-encoding");
            crate::compress::negotiate::choose(ae, &ctx.router.edge(r).compress)
        }
        _ => None,
    };
    let owed = Owed {
        route,
        error: None,
        head_only: h.method_kind == Method::Head,
        keep_alive: h.keep_alive && !ctx.draining,
        http10,
        retry_after: 0,
        coding,
    };
    answer_after_body(conn, ctx, h, owed);
}

/// Answers a redirect route: its status and a Location built from this request. A request
/// with a body is answered and closed (its body is discarded, never read as a request).
fn redirect(conn: &mut Conn, ctx: &mut HttpCtx, buf: &[u8], h: &Head, path: &[u8], r: usize) {
    let Target::Redirect { status, to } = ctx.router.target(r) else {
        return;
    };
    let status = *status;
    // The absolute-form target's authority wins over Host (RFC 9112 3.2.2).
    let host = h.authority.or(h.host).map_or(&b""[..], |s| s.get(buf));
    if host.is_empty() && to.uses(Var::Host) {
        return fail(conn, ctx, 400); // nothing to build the target from
    }
    let request_uri_end = h.query.map_or(h.path.end, |q| q.end) as usize;
    let request_uri = match buf.get(h.path.start as usize..request_uri_end) {
        Some(u) if !u.is_empty() => u,
        _ => b"/",
    };
    let values = Values {
        scheme: conn.scheme().as_bytes(),
        host,
        request_uri,
        uri: path,
        args: h.query.map_or(&b""[..], |q| q.get(buf)),
    };
    // The values come from the request's own parse, which admits no CR, LF or control
    // byte: nothing the client sent can end the Location line.
    let mut location = std::mem::take(&mut ctx.scratch);
    location.clear();
    to.expand(&values, &mut location);
    let with_body = !matches!(h.body, Decode::None | Decode::Length(0));
    let keep_alive = h.keep_alive && !ctx.draining && !with_body;
    let head_only = h.method_kind == Method::Head;
    let http10_keep_alive = keep_alive && h.version == Version::Http10;
    let body = write_redirect(
        &mut Edited::new(&mut conn.ep.out, ctx.router.edit(conn.edit)),
        status,
        &ctx.server_header,
        &location,
        &ctx.date,
        keep_alive,
        http10_keep_alive,
        head_only,
    );
    ctx.scratch = location;
    ctx.stats.count_status(status);
    track(conn, ctx, Some(r), status);
    log(conn, ctx, status, body);
    conn.requests += 1;
    if !keep_alive {
        conn.close_after_flush = true;
    }
    if with_body {
        conn.phase = Phase::Linger;
    }
}

/// Answers `owed` once the request's body, if any, has been read and discarded (a body
/// left unread would be parsed as the next request).
fn answer_after_body(conn: &mut Conn, ctx: &mut HttpCtx, h: &Head, owed: Owed) {
    let http10 = owed.http10;
    let body = match h.body {
        // A request without a length has no body (`UntilClose` is a response's framing).
        Decode::None | Decode::UntilClose | Decode::Length(0) => return answer(conn, ctx, owed),
        Decode::Length(n) if n > ctx.max_body => return fail(conn, ctx, 413),
        Decode::Length(n) => BodyLeft::Length(n),
        Decode::Chunked => BodyLeft::Chunked(Box::new(ChunkedDecoder::new(
            ctx.max_body,
            ctx.limits.max_header_bytes,
        ))),
    };
    if h.expect_continue && !http10 {
        conn.ep.out.bytes().extend_from_slice(CONTINUE_100);
        conn.ep.out.commit(CONTINUE_100.len());
    }
    conn.owed = Some(owed);
    conn.phase = Phase::Body(body);
    conn.since = ctx.now_tick;
}

fn body_done(conn: &mut Conn, ctx: &mut HttpCtx) {
    conn.phase = Phase::Head;
    if let Some(owed) = conn.owed.take() {
        answer(conn, ctx, owed);
    }
}

/// Writes the answer to a well-formed request: its route's prepared response, or the
/// (non-closing) error page `owed.error` (403, 404, 405, or 404 when no route answers).
fn answer(conn: &mut Conn, ctx: &mut HttpCtx, owed: Owed) {
    let error = owed.error;
    let page = match (error, owed.route.map(|i| ctx.router.target(i))) {
        (Some(status), _) => ctx.errors.get(status),
        (None, Some(Target::Respond(p, encoded))) => {
            match owed
                .coding
                .and_then(|c| encoded.iter().find(|(e, _)| *e == c))
            {
                Some((c, e)) => {
                    ctx.stats.count_coding(Some(*c));
                    e
                }
                None => p,
            }
        }
        _ => ctx.errors.get(404),
    };
    ctx.stats.count_status(page.status);
    let mut extra = [0u8; 32];
    let extra = retry_after_line(&mut extra, owed.retry_after);
    page.write_with(
        &mut Edited::new(&mut conn.ep.out, ctx.router.edit(conn.edit)),
        &ctx.date,
        owed.keep_alive,
        owed.http10 && owed.keep_alive,
        owed.head_only,
        ctx.zc_threshold,
        extra,
    );
    let status = page.status;
    let body = if owed.head_only { 0 } else { page.body_len() };
    let route = if error.is_some() { None } else { owed.route };
    track(conn, ctx, route, status);
    log(conn, ctx, status, body);
    conn.requests += 1;
    if !owed.keep_alive {
        conn.close_after_flush = true;
    }
}

/// A connection over `max_connections_per_ip`: 503 with Retry-After before it sent
/// anything, then the close. No request was read, so none is counted or timed.
pub fn refuse_connection(conn: &mut Conn, ctx: &mut HttpCtx) {
    ctx.stats.count_status(503);
    ctx.errors.get(503).write_with(
        &mut conn.ep.out,
        &ctx.date,
        false,
        false,
        false,
        ctx.zc_threshold,
        b"Retry-After: 1\r\n",
    );
    conn.close_after_flush = true;
    conn.phase = Phase::Linger;
}

/// `Retry-After: N\r\n` in `buf` (empty for 0), formatted without allocating.
fn retry_after_line(buf: &mut [u8; 32], secs: u32) -> &[u8] {
    if secs == 0 {
        return &[];
    }
    let mut w = &mut buf[..];
    let _ = std::io::Write::write_fmt(&mut w, format_args!("Retry-After: {secs}\r\n"));
    let left = w.len();
    &buf[..32 - left]
}

/// A route's `limit`: the key this request counts under (a header's value, or the client's
/// address) against the shared table. Some(seconds to wait) when it is over.
fn over_limit(conn: &Conn, ctx: &HttpCtx, buf: &[u8], r: usize) -> Option<u32> {
    let table = ctx.shield.limits.get(r)?.as_ref()?;
    let ip = conn.client;
    let ip_bytes;
    let key: &[u8] = match ctx.limit_keys.get(r) {
        Some(Some(LimitKey::Header(name))) => {
            match crate::http::parser::find_header(buf, &ctx.headers, name) {
                Some(v) if !v.is_empty() => v,
                _ => {
                    ip_bytes = ip_key(ip);
                    &ip_bytes
                }
            }
        }
        _ => {
            ip_bytes = ip_key(ip);
            &ip_bytes
        }
    };
    let wait_us = table.check(key, ctx.shared_now_us()).err()?;
    Some(wait_us.div_ceil(1_000_000).clamp(1, u64::from(u32::MAX)) as u32)
}

/// An address as a limit key: its 16 bytes (IPv4 mapped), never equal to a header value
/// (a header's value is checked apart from addresses by its own route's table anyway).
fn ip_key(ip: Option<std::net::IpAddr>) -> [u8; 16] {
    match ip {
        Some(std::net::IpAddr::V4(a)) => a.to_ipv6_mapped().octets(),
        Some(std::net::IpAddr::V6(a)) => a.octets(),
        None => [0; 16],
    }
}

/// Says which limit refused a request and the key that sets it: an operator who sees
/// 413s in the access log needs to know what to raise.
fn log_limit(conn: &Conn, ctx: &mut HttpCtx, status: u16) {
    let l = &ctx.limits;
    let why = match status {
        413 => format!(
            "413: the request body is over {} bytes ([limits] max_body_bytes)",
            ctx.max_body
        ),
        414 => format!(
            "414: the request-target is over {} bytes ([limits] max_target_bytes)",
            l.max_target_bytes
        ),
        431 => format!(
            "431: the request head is over {} bytes ([limits] max_header_bytes) or {} fields ([limits] max_headers)",
            l.max_header_bytes, l.max_headers
        ),
        _ => return,
    };
    let from = conn
        .peer
        .map_or_else(String::new, |p| format!(" from {}", p.ip()));
    let (id, now) = (ctx.worker_id, ctx.now_tick);
    ctx.errlog
        .line(id, now, || format!("refused a request{from} with {why}"));
}

/// Answers with an error status and closes after it (no later byte is trusted).
pub fn fail(conn: &mut Conn, ctx: &mut HttpCtx, status: u16) {
    fail_retry_after(conn, ctx, status, 0);
}

/// `fail`, with a Retry-After of `secs` (0: none).
pub fn fail_retry_after(conn: &mut Conn, ctx: &mut HttpCtx, status: u16, secs: u32) {
    log_limit(conn, ctx, status);
    ctx.stats.count_status(status);
    ctx.stats.rejected += 1;
    let page = ctx.errors.get(status);
    let mut extra = [0u8; 32];
    let extra = retry_after_line(&mut extra, secs);
    page.write_with(
        &mut Edited::new(&mut conn.ep.out, ctx.router.edit(conn.edit)),
        &ctx.date,
        false,
        false,
        false,
        ctx.zc_threshold,
        extra,
    );
    if !conn.admin {
        track(conn, ctx, None, status);
        log(conn, ctx, status, page.body_len());
    }
    conn.in_head = false;
    conn.owed = None;
    conn.close_after_flush = true;
    conn.phase = Phase::Linger;
    conn.inbuf.clear();
}

fn log(conn: &Conn, ctx: &mut HttpCtx, status: u16, body_bytes: usize) {
    if let Some(l) = &mut ctx.log {
        let secs = ctx.now_us.saturating_sub(conn.req_start_us) as f64 / 1e6;
        let client = conn.client.or(conn.peer.map(|p| p.ip()));
        l.write(client, &conn.log, status, body_bytes, secs);
    }
}

/// A `static` route: answered at once from the file, for GET and HEAD. Other methods get
/// 405 (after their body, if any, is drained). A GET with a body gets the file and a
/// close: the body is discarded, never parsed as a request.
fn static_file(
    conn: &mut Conn,
    ctx: &mut HttpCtx,
    buf: &[u8],
    h: &Head,
    path: &[u8],
    route: usize,
) {
    let http10 = h.version == Version::Http10;
    let keep_alive = h.keep_alive && !ctx.draining;
    if !matches!(h.method_kind, Method::Get | Method::Head) {
        let owed = Owed {
            route: None,
            error: Some(405),
            head_only: false,
            keep_alive,
            http10,
            retry_after: 0,
            coding: None,
        };
        return answer_after_body(conn, ctx, h, owed);
    }
    let with_body = !matches!(h.body, Decode::None | Decode::Length(0));
    let keep_alive = keep_alive && !with_body;
    let hdr = |n: &[u8]| find_header(buf, &ctx.headers, n);
    let req = crate::statics::Req {
        head_only: h.method_kind == Method::Head,
        if_match: hdr(b"if-match"),
        if_unmodified_since: hdr(b"if-unmodified-since"),
        if_none_match: hdr(b"if-none-match"),
        if_modified_since: hdr(b"if-modified-since"),
        range: hdr(b"range"),
        if_range: hdr(b"if-range"),
        accept_encoding: hdr(b"accept-encoding"),
    };
    send_file(conn, ctx, route, path, &req, (keep_alive, http10), b"");
    if with_body {
        // The body is discarded, never read as the next request.
        conn.phase = Phase::Linger;
    }
}

/// Answers from a static route's files: `path` is the normalized path the route matched,
/// `extra` header lines the response carries beyond the route's own (an upstream's, for
/// X-Accel-Redirect). `conn` is `(keep_alive, http10)`.
fn send_file(
    conn: &mut Conn,
    ctx: &mut HttpCtx,
    route: usize,
    path: &[u8],
    req: &crate::statics::Req,
    (keep_alive, http10): (bool, bool),
    extra: &[u8],
) {
    let Target::Static(site, strip) = ctx.router.target(route) else {
        return;
    };
    let rel = path.get(*strip..).unwrap_or(b"");
    let merged;
    let edit = if extra.is_empty() {
        ctx.router.edit(conn.edit)
    } else {
        let mut e = ctx.router.edge(route).edit.clone();
        e.add.extend_from_slice(extra);
        merged = e;
        Some(&merged)
    };
    let r = crate::statics::respond(
        &mut conn.ep.out,
        edit,
        site,
        rel,
        req,
        &ctx.date,
        &ctx.server_header,
        keep_alive,
        http10 && keep_alive,
    );
    match r {
        Ok(reply) => {
            ctx.stats.count_status(reply.status);
            ctx.stats.count_coding(reply.coding);
            track(conn, ctx, Some(route), reply.status);
            log(conn, ctx, reply.status, reply.body_len as usize);
            conn.requests += 1;
            if !keep_alive || reply.cut {
                conn.close_after_flush = true;
            }
        }
        Err(status) if matches!(status, 403 | 404 | 412) => {
            let owed = Owed {
                route: None,
                error: Some(status),
                head_only: req.head_only,
                keep_alive,
                http10,
                retry_after: 0,
                coding: None,
            };
            answer(conn, ctx, owed);
        }
        Err(status) => fail(conn, ctx, status),
    }
}

/// An upstream answered with `X-Accel-Redirect: target`: its body is dropped and the file
/// `target` names is served through the route of the request's site that matches it
/// (internal routes included), with the upstream's `extra` header lines kept. A target
/// that is not a clean path (`..`, `.`, no leading '/') or whose route does not serve
/// files is the upstream's fault: 502, logged.
pub fn accel_redirect(
    conn: &mut Conn,
    ctx: &mut HttpCtx,
    p: &super::proxy_req::Proxying,
    target: &[u8],
    extra: &[u8],
) -> Effects {
    conn.phase = Phase::Head;
    let keep_alive = p.keep_alive && !p.close_after && p.req_done && !ctx.draining;
    let site = ctx.router.site_of_route(p.route);
    let mut path = std::mem::take(&mut ctx.path);
    let found = match accel_path(target, &mut path) {
        Ok(()) => Ok(ctx.router.find(site, &path)),
        Err(why) => Err(why),
    };
    let owed = |status| Owed {
        route: None,
        error: Some(status),
        head_only: p.head_only,
        keep_alive,
        http10: p.http10,
        retry_after: 0,
        coding: None,
    };
    match found {
        Ok(Some(r)) if matches!(ctx.router.target(r), Target::Static(..)) => {
            conn.edit = EditBy::Route(r as u32);
            let plain = crate::statics::Req::plain(p.head_only);
            let req = p.kept.as_ref().map_or(plain, |k| k.req(p.head_only));
            send_file(conn, ctx, r, &path, &req, (keep_alive, p.http10), extra);
        }
        Ok(None) => answer(conn, ctx, owed(404)),
        other => {
            let why = match other {
                Err(why) => why.to_string(),
                _ => "its route does not serve files (only static routes can be named)".into(),
            };
            let shown = String::from_utf8_lossy(&target[..target.len().min(200)]).into_owned();
            let (id, now) = (ctx.worker_id, ctx.now_tick);
            ctx.errlog.line(id, now, || {
                format!("upstream answered X-Accel-Redirect: {shown:?}, refused (502): {why}")
            });
            ctx.stats.upstream_errors += 1;
            answer(conn, ctx, owed(502));
        }
    }
    ctx.path = path;
    if !keep_alive {
        conn.close_after_flush = true;
    }
    if !conn.inbuf.is_empty() && !conn.close_after_flush {
        return consume_stash(conn, ctx, 0);
    }
    Effects::default()
}

/// An X-Accel-Redirect target as the path routing reads: it must start with '/', and no
/// segment may be `.` or `..` in any spelling (the app may have built it from a client's
/// file name; resolving the dots would let that name reach outside the directory meant).
/// A query is dropped (files have none).
fn accel_path(target: &[u8], out: &mut Vec<u8>) -> Result<(), &'static str> {
    let path = target.split(|&b| b == b'?').next().unwrap_or(b"");
    if path.first() != Some(&b'/') {
        return Err("the target must be a path starting with '/'");
    }
    let dot = |seg: &[u8]| {
        let mut rest = seg;
        let mut dots = 0;
        while !rest.is_empty() {
            if rest[0] == b'.' {
                rest = &rest[1..];
            } else if rest.len() >= 3
                && rest[0] == b'%'
                && rest[1] == b'2'
                && rest[2] | 0x20 == b'e'
            {
                rest = &rest[3..];
            } else {
                return false;
            }
            dots += 1;
        }
        (1..=2).contains(&dots)
    };
    if path.split(|&b| b == b'/' || b == b'\\').any(dot) {
        return Err("the target has a `.` or `..` segment");
    }
    match path::normalize(path, out) {
        Ok(n) if !n.encoded_slash => Ok(()),
        Ok(_) => Err("the target holds an encoded '/'"),
        Err(_) => Err("the target is not a valid path"),
    }
}

/// A proxied response has been relayed in full (its exchange is gone): count, time and
/// log it, and read the next request.
pub fn proxied_done(conn: &mut Conn, ctx: &mut HttpCtx, route: usize, status: u16) -> Effects {
    conn.phase = Phase::Head;
    ctx.stats.count_status(status);
    track(conn, ctx, Some(route), status);
    log(conn, ctx, status, 0);
    conn.requests += 1;
    if !conn.inbuf.is_empty() && !conn.close_after_flush {
        return consume_stash(conn, ctx, 0);
    }
    Effects::default()
}

/// Remembers when the response just queued began, to record its latency once sent.
fn track(conn: &mut Conn, ctx: &HttpCtx, route: Option<usize>, status: u16) {
    if !ctx.recorder.enabled {
        return;
    }
    let end = conn.ep.out.committed();
    let route = route.map(|r| r as u16);
    let class = (status / 100) as u8;
    if let Some(last) = conn.pending.back_mut()
        && last.start_us == conn.req_start_us
        && last.route == route
        && last.class == class
    {
        last.end = end;
        last.count += 1;
        return;
    }
    conn.pending.push_back(Pending {
        end,
        start_us: conn.req_start_us,
        route,
        class,
        count: 1,
    });
}

/// Records every response whose last byte the kernel has now taken.
pub fn record_sent(conn: &mut Conn, ctx: &mut HttpCtx) {
    let sent = conn.ep.out.sent();
    while let Some(p) = conn.pending.front() {
        if p.end > sent {
            break;
        }
        let us = ctx.now_us.saturating_sub(p.start_us);
        let (now_s, unix_s) = (ctx.now_s(), ctx.unix_s);
        ctx.recorder.record(
            p.route.map(usize::from),
            us,
            p.count,
            now_s,
            (unix_s, p.class),
        );
        conn.pending.pop_front();
    }
}

/// A request on the admin listener: authenticate, then answer or start a gather.
fn admin_head(
    conn: &mut Conn,
    ctx: &mut HttpCtx,
    fx: &mut Effects,
    buf: &[u8],
    h: &Head,
    path: &[u8],
) {
    let keep_alive = h.keep_alive && !ctx.draining;
    let head_only = h.method_kind == Method::Head;
    let reply =
        |conn: &mut Conn, ctx: &HttpCtx, status: u16, extra: &str, ctype: &str, body: &[u8]| {
            let extra = format!("{extra}{}", admin::SECURITY_HEADERS);
            write_dynamic(
                &mut conn.ep.out,
                status,
                &ctx.server_header,
                ctype,
                &extra,
                body,
                &ctx.date,
                keep_alive,
                head_only,
            );
            // Admin pages are not traffic: they stay out of the latency histograms.
            if !keep_alive {
                conn.close_after_flush = true;
            }
        };
    let answer = |conn: &mut Conn, ctx: &mut HttpCtx, status: u16, extra: &str, msg: &str| {
        reply(conn, ctx, status, extra, "text/plain", msg.as_bytes())
    };
    if let Some(token) = &ctx.admin_token
        && !admin::auth::bearer_ok(find_header(buf, &ctx.headers, b"authorization"), token)
    {
        // No detail: not whether the header was missing, malformed or wrong.
        return answer(
            conn,
            ctx,
            401,
            "WWW-Authenticate: Bearer realm=\"uringd\"\r\n",
            "unauthorized\n",
        );
    }
    if h.body != Decode::None && h.body != Decode::Length(0) {
        return fail(conn, ctx, 400);
    }
    let query = h.query.map(|q| q.get(buf)).unwrap_or(b"");
    match admin::decide(h.method.get(buf), path, query, keep_alive) {
        Decision::Answer(status, msg) => {
            let extra = match status {
                405 => "Allow: GET, HEAD, POST\r\n",
                _ => "",
            };
            answer(conn, ctx, status, extra, msg)
        }
        Decision::Reset => {
            fx.reset = true;
            answer(conn, ctx, 200, "", "histograms reset\n")
        }
        Decision::Asset(a) => reply(conn, ctx, 200, "", a.content_type, a.body),
        Decision::Apps => {
            let view = crate::apps::report::view(&ctx.shield, &ctx.pools_names);
            let body = crate::apps::report::json(&view).to_string();
            reply(conn, ctx, 200, "", "application/json", body.as_bytes())
        }
        Decision::Gather(mut ask) => {
            ask.head_only = head_only;
            fx.start = Some(Start::Gather {
                stream: H1_STREAM,
                ask,
            });
            conn.phase = Phase::Exchange;
            conn.exchanges.insert(H1_STREAM, Exchange::Admin);
        }
    }
}

/// Writes a gathered admin page and lets the connection's next requests through.
pub fn admin_done(
    conn: &mut Conn,
    ctx: &mut HttpCtx,
    status: u16,
    ctype: &str,
    body: &[u8],
    ask: &admin::Ask,
) -> Effects {
    write_dynamic(
        &mut conn.ep.out,
        status,
        &ctx.server_header,
        ctype,
        admin::SECURITY_HEADERS,
        body,
        &ctx.date,
        ask.keep_alive,
        ask.head_only,
    );
    if !ask.keep_alive {
        conn.close_after_flush = true;
    }
    conn.exchanges.remove(H1_STREAM);
    conn.phase = Phase::Head;
    if !conn.inbuf.is_empty() {
        return consume_stash(conn, ctx, 0);
    }
    Effects::default()
}
