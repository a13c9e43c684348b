//! Which representation of a file a request gets on a route with `compress`: a
//! precompressed sibling (`app.js.br` beside `app.js`) when the client accepts its coding,
//! at no CPU cost; else, for a compressible file up to `ON_THE_FLY_MAX`, the file
//! compressed now; else the file itself. A range request always gets the file itself
//! (ranges of an encoding are ranges of different bytes).

use std::io::Read;

use super::resolve::{Found, open_sibling};
use super::{Req, Site};
use crate::compress::{Codec, compressible, encoder::compress_all, negotiate::choose};

/// Larger files without a sibling are sent as they are: compressing them per request
/// would hold the whole file and its output in memory (precompress them instead).
pub const ON_THE_FLY_MAX: u64 = 1 << 20;

pub enum Body {
    /// The file itself, or its sibling: sent from the descriptor.
    File(Found),
    /// Compressed just now.
    Memory(Vec<u8>),
}

pub struct Variant {
    pub body: Body,
    /// Content-Encoding, if not identity.
    pub coding: Option<Codec>,
    /// The response depends on Accept-Encoding (`Vary`): a compressible file on a route
    /// that compresses, whichever representation this request got.
    pub varies: bool,
    /// Its entity-tag: the file's, with the coding appended for an encoding (each
    /// representation has its own, RFC 9110 8.8.3).
    pub tag: String,
}

impl Variant {
    /// The body's length in bytes.
    pub fn size(&self) -> u64 {
        match &self.body {
            Body::File(f) => f.size,
            Body::Memory(v) => v.len() as u64,
        }
    }
}

fn tag_of(f: &Found, coding: Option<Codec>) -> String {
    let suffix = coding.map_or(String::new(), |c| format!("-{}", c.token()));
    format!("\"{:x}-{:x}{:x}{suffix}\"", f.size, f.mtime_s, f.mtime_ns)
}

/// The representation of `f` (its Content-Type is `ctype`) this request gets.
pub fn choose_variant(site: &Site, f: Found, ctype: &str, req: &Req) -> Variant {
    let offered = &site.compress[..];
    let varies = !offered.is_empty() && compressible(ctype.as_bytes());
    let identity = |f: Found| Variant {
        tag: tag_of(&f, None),
        body: Body::File(f),
        coding: None,
        varies,
    };
    if !varies || req.range.is_some() || req.accept_encoding.is_none() {
        return identity(f);
    }
    // The client's most preferred coding that has a sibling, in its order then ours.
    let mut left: Vec<Codec> = offered.to_vec();
    while let Some(c) = choose(req.accept_encoding, &left) {
        if let Some(s) = open_sibling(&site.root, &f.path, c.ext(), site.confine) {
            return Variant {
                tag: tag_of(&s, Some(c)),
                body: Body::File(s),
                coding: Some(c),
                varies,
            };
        }
        left.retain(|&o| o != c);
    }
    let Some(c) = choose(req.accept_encoding, offered) else {
        return identity(f);
    };
    if f.size < site.compress_min || f.size > ON_THE_FLY_MAX {
        return identity(f);
    }
    let (tag, plain_tag) = (tag_of(&f, Some(c)), tag_of(&f, None));
    let mut raw = Vec::with_capacity(f.size as usize);
    let mut file = std::fs::File::from(f.fd);
    // A read that fails or comes up short (the file changed) sends what was read, as it
    // is: its length is then the one announced.
    let whole = (&mut file)
        .take(ON_THE_FLY_MAX)
        .read_to_end(&mut raw)
        .is_ok()
        && raw.len() as u64 == f.size;
    match compress_all(c, &raw) {
        Ok(body) if whole => Variant {
            tag,
            body: Body::Memory(body),
            coding: Some(c),
            varies,
        },
        _ => Variant {
            tag: plain_tag,
            body: Body::Memory(raw),
            coding: None,
            varies,
        },
    }
}
