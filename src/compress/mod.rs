//! Response compression: which coding a client gets (`negotiate`), which responses are
//! worth compressing (`compressible`), and the streaming encoders (`encoder`), over the
//! flate2, zstd and brotli crates. Pure: no sockets.

pub mod encoder;
pub mod negotiate;
pub mod proxied;

/// A content coding uringd can produce (its number indexes per-coding counters).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Codec {
    Zstd = 0,
    Br = 1,
    Gzip = 2,
}

impl Codec {
    pub const ALL: [Codec; 3] = [Codec::Zstd, Codec::Br, Codec::Gzip];

    /// Its Content-Encoding token.
    pub fn token(self) -> &'static str {
        match self {
            Codec::Zstd => "zstd",
            Codec::Br => "br",
            Codec::Gzip => "gzip",
        }
    }

    /// The suffix of a precompressed sibling file (`app.js.zst`).
    pub fn ext(self) -> &'static str {
        match self {
            Codec::Zstd => ".zst",
            Codec::Br => ".br",
            Codec::Gzip => ".gz",
        }
    }

    pub fn parse(s: &str) -> Option<Codec> {
        Codec::ALL.into_iter().find(|c| c.token() == s)
    }
}

/// Worth compressing: text, and the structured text types (JSON, JavaScript, SVG, XML
/// and their `+json`/`+xml` kin). Not `text/event-stream` (each event must go out as it
/// comes), nor anything already compressed (images, fonts, archives, video).
pub fn compressible(content_type: &[u8]) -> bool {
    let essence = content_type
        .split(|&b| b == b';')
        .next()
        .unwrap_or(b"")
        .trim_ascii();
    let mut lower = [0u8; 64];
    let Some(t) = lower.get_mut(..essence.len()) else {
        return false;
    };
    t.copy_from_slice(essence);
    t.make_ascii_lowercase();
    let t = &*t;
    if t == b"text/event-stream" {
        return false;
    }
    t.starts_with(b"text/")
        || t.ends_with(b"+json")
        || t.ends_with(b"+xml")
        || matches!(
            t,
            b"application/json"
                | b"application/javascript"
                | b"application/x-javascript"
                | b"application/ecmascript"
                | b"application/xml"
                | b"application/wasm"
                | b"image/svg+xml"
                | b"image/x-icon"
                | b"image/vnd.microsoft.icon"
                | b"application/vnd.ms-fontobject"
                | b"font/ttf"
                | b"font/otf"
        )
}

/// A Cache-Control value that forbids transforming the response (RFC 9111 5.2.2.6).
pub fn no_transform(cache_control: &[u8]) -> bool {
    cache_control
        .split(|&b| b == b',')
        .any(|d| d.trim_ascii().eq_ignore_ascii_case(b"no-transform"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_structured_text_are_compressible_media_is_not() {
        for t in [
            "text/html",
            "text/html; charset=utf-8",
            "TEXT/CSS",
            "application/json",
            "application/ld+json",
            "application/javascript",
            "image/svg+xml",
            "application/atom+xml",
            " text/plain ;q",
        ] {
            assert!(compressible(t.as_bytes()), "{t}");
        }
        for t in [
            "image/png",
            "image/jpeg",
            "video/mp4",
            "application/zip",
            "application/gzip",
            "font/woff2",
            "text/event-stream",
            "application/octet-stream",
            "",
        ] {
            assert!(!compressible(t.as_bytes()), "{t}");
        }
        assert!(!compressible(&[b'a'; 100]));
    }

    #[test]
    fn no_transform_is_found_among_directives() {
        assert!(no_transform(b"public, No-Transform"));
        assert!(no_transform(b"no-transform"));
        assert!(!no_transform(b"no-store, max-age=60"));
    }

    #[test]
    fn codec_names() {
        for c in Codec::ALL {
            assert_eq!(Codec::parse(c.token()), Some(c));
        }
        assert_eq!(Codec::parse("deflate"), None);
    }
}
