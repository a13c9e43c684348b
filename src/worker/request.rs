//! Turning received bytes into responses: scan, parse, route, drain bodies, answer.
//! Works on borrowed slices of the kernel's receive buffer; copies only a request that
//! spans buffers.

use crate::http::chunked::{ChunkedDecoder, ChunkedError};
use crate::http::parser::{self, BodyKind, HeaderSpan, Method, Version};
use crate::http::response::{CONTINUE_100, ErrorPages};
use crate::http::router::Router;

use super::conn::{BodyLeft, Conn, Owed, Phase};
use super::stats::Counters;

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
    pub stats: Counters,
}

/// Handles newly received bytes for a connection.
pub fn on_data(conn: &mut Conn, ctx: &mut HttpCtx, data: &[u8]) {
    if matches!(conn.phase, Phase::Linger) {
        return;
    }
    if conn.inbuf.is_empty() {
        let used = consume(conn, ctx, data);
        if used < data.len() && !matches!(conn.phase, Phase::Linger) {
            conn.inbuf.extend_from_slice(&data[used..]);
        }
    } else {
        conn.inbuf.extend_from_slice(data);
        consume_stash(conn, ctx);
    }
}

/// Processes bytes stashed in the connection's own buffer.
pub fn consume_stash(conn: &mut Conn, ctx: &mut HttpCtx) {
    let mut buf = std::mem::take(&mut conn.inbuf);
    let used = consume(conn, ctx, &buf);
    if matches!(conn.phase, Phase::Linger) {
        buf.clear();
    } else {
        buf.drain(..used);
    }
    conn.inbuf = buf;
}

/// Consumes as many whole requests (and body bytes) as `data` holds. Returns bytes used;
/// the rest is the start of an unfinished request.
fn consume(conn: &mut Conn, ctx: &mut HttpCtx, data: &[u8]) -> usize {
    let mut pos = 0;
    loop {
        if conn.close_after_flush {
            // Nothing after a closing response is answered.
            return data.len();
        }
        if conn.out.len() > OUT_HIGH {
            conn.recv_paused = true;
            return pos;
        }
        let rest = &data[pos..];
        if rest.is_empty() {
            return pos;
        }
        match &mut conn.phase {
            Phase::Linger => return data.len(),
            Phase::Head => match conn.scanner.scan(rest, &ctx.limits) {
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
                    head(conn, ctx, &rest[..n]);
                    pos += n;
                }
                Err(e) => {
                    fail(conn, ctx, e.status());
                    return data.len();
                }
            },
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

fn head(conn: &mut Conn, ctx: &mut HttpCtx, buf: &[u8]) {
    let h = match parser::parse_head(buf, &ctx.limits, &mut ctx.headers) {
        Ok(h) => h,
        Err(e) => return fail(conn, ctx, e.status()),
    };
    ctx.stats.requests += 1;
    let http10 = h.version == Version::Http10;
    let owed = Owed {
        route: ctx.router.find(h.path_or_root(buf)),
        head_only: h.method_kind == Method::Head,
        keep_alive: h.keep_alive && !ctx.draining,
        http10,
    };
    let body = match h.body {
        BodyKind::None | BodyKind::Length(0) => return respond(conn, ctx, owed),
        BodyKind::Length(n) if n > ctx.max_body => return fail(conn, ctx, 413),
        BodyKind::Length(n) => BodyLeft::Length(n),
        BodyKind::Chunked => BodyLeft::Chunked(ChunkedDecoder::new(
            ctx.max_body,
            ctx.limits.max_header_bytes,
        )),
    };
    if h.expect_continue && !http10 {
        conn.out.bytes().extend_from_slice(CONTINUE_100);
        conn.out.commit(CONTINUE_100.len());
    }
    conn.owed = Some(owed);
    conn.phase = Phase::Body(body);
    conn.since = ctx.now_tick;
}

fn body_done(conn: &mut Conn, ctx: &mut HttpCtx) {
    conn.phase = Phase::Head;
    if let Some(owed) = conn.owed.take() {
        respond(conn, ctx, owed);
    }
}

fn respond(conn: &mut Conn, ctx: &mut HttpCtx, owed: Owed) {
    let page = match owed.route {
        Some(i) => ctx.router.response(i),
        None => ctx.errors.get(404),
    };
    ctx.stats.count_status(page.status);
    page.write(
        &mut conn.out,
        &ctx.date,
        owed.keep_alive,
        owed.http10 && owed.keep_alive,
        owed.head_only,
        ctx.zc_threshold,
    );
    conn.requests += 1;
    if !owed.keep_alive {
        conn.close_after_flush = true;
    }
}

/// Answers with an error status and closes after it (no later byte is trusted).
pub fn fail(conn: &mut Conn, ctx: &mut HttpCtx, status: u16) {
    ctx.stats.count_status(status);
    ctx.stats.rejected += 1;
    let page = ctx.errors.get(status);
    page.write(
        &mut conn.out,
        &ctx.date,
        false,
        false,
        false,
        ctx.zc_threshold,
    );
    conn.owed = None;
    conn.close_after_flush = true;
    conn.phase = Phase::Linger;
    conn.inbuf.clear();
}
