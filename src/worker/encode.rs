//! Compressing a proxied response (`compress_proxied`): the decision (`compress::proxied`)
//! carried into the relay plan (the client gets chunks, or a close-delimited body from
//! HTTP/1.0, never the upstream's length), the head's edits (Content-Encoding, Vary, a weak
//! ETag) and the streaming encoder `Flow::up_body` feeds.

use crate::compress::encoder::Encoder;
use crate::compress::proxied::{Choice, Facts, decide, weak_etag};
use crate::edge::headers::HeaderEdit;
use crate::http::framing::{Decode, Encode};
use crate::http::parser::{HeaderSpan, find_header};
use crate::proxy::exchange::Plan;
use crate::proxy::resphead::RespHead;

use super::proxy_req::Proxying;
use super::router::{EditBy, Router};

/// What compressing (or not) changes about relaying this response.
pub(super) struct Encoding {
    pub plan: Plan,
    /// The head's edits, when they differ from the route's own.
    pub edit: Option<HeaderEdit>,
    pub encoder: Option<Box<Encoder>>,
}

pub(super) fn plan_encoding(
    router: &Router,
    edit: EditBy,
    p: &Proxying,
    (buf, headers): (&[u8], &[HeaderSpan]),
    r: &RespHead,
    plan: Plan,
) -> Encoding {
    let keep = Encoding {
        plan,
        edit: None,
        encoder: None,
    };
    let e = router.edge(p.route);
    if !e.compress_proxied || plan.tunnel {
        return keep;
    }
    let h = |n: &[u8]| find_header(buf, headers, n);
    let facts = Facts {
        status: r.status,
        head: p.head_only,
        length: match r.body {
            Decode::Length(n) => Some(n),
            _ => None,
        },
        bodyless: matches!(r.body, Decode::None | Decode::Length(0)),
        content_type: h(b"content-type"),
        content_encoding: h(b"content-encoding"),
        cache_control: h(b"cache-control"),
        content_range: h(b"content-range"),
        streams: h(b"x-accel-buffering").is_some_and(|v| v.eq_ignore_ascii_case(b"no")),
    };
    let choice = decide(&facts, p.coding, e.compress_min);
    if choice == Choice::Leave {
        return keep;
    }
    let mut ed = router.edit(edit).cloned().unwrap_or_default();
    let mut line = |name: &str, value: &[u8]| {
        let lower: Box<[u8]> = name.to_ascii_lowercase().into_bytes().into();
        ed.add.extend_from_slice(name.as_bytes());
        ed.add.extend_from_slice(b": ");
        ed.add.extend_from_slice(value);
        ed.add.extend_from_slice(b"\r\n");
        ed.hides.push(lower);
    };
    let Choice::Encode(c) = choice else {
        ed.add.extend_from_slice(b"Vary: Accept-Encoding\r\n");
        return Encoding {
            plan,
            edit: Some(ed),
            encoder: None,
        };
    };
    let Ok(encoder) = Encoder::new(c) else {
        return keep;
    };
    line("Content-Encoding", c.token().as_bytes());
    if let Some(tag) = h(b"etag") {
        line("ETag", &weak_etag(tag));
    }
    ed.add.extend_from_slice(b"Vary: Accept-Encoding\r\n");
    // The encoded length is known only at the end: chunks, or a close for HTTP/1.0.
    let mut plan = plan;
    plan.splice = false;
    if p.http10 {
        plan.framing = Encode::None;
        plan.rechunk = false;
        plan.close_client = true;
        plan.client_keep_alive = false;
    } else {
        plan.framing = Encode::Chunked;
        plan.rechunk = true;
    }
    Encoding {
        plan,
        edit: Some(ed),
        encoder: Some(Box::new(encoder)),
    }
}
