//! Whether an upstream's response is compressed on its way to the client
//! (`compress_proxied = true`): only an answer with a body that is a complete
//! representation (no 206, 204, 304, 1xx) of a compressible type the server did not encode itself, not marked `no-transform`, not
//! streamed event by event, and not known to be smaller than `compress_min`.

use super::{Codec, compressible, no_transform};

/// The response facts the decision reads (header values as the upstream sent them).
#[derive(Clone, Copy, Debug, Default)]
pub struct Facts<'a> {
    pub status: u16,
    /// The request was HEAD (no body to compress).
    pub head: bool,
    /// The body's length, if the upstream announced one.
    pub length: Option<u64>,
    /// The response has no body at all (204, 304, a bodyless framing).
    pub bodyless: bool,
    pub content_type: Option<&'a [u8]>,
    pub content_encoding: Option<&'a [u8]>,
    pub cache_control: Option<&'a [u8]>,
    pub content_range: Option<&'a [u8]>,
    /// X-Accel-Buffering: no, or a stream the front must not hold back.
    pub streams: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Choice {
    /// Relayed as it is, and nothing says it could have been otherwise.
    Leave,
    /// Relayed as it is, with `Vary: Accept-Encoding`: another client would have got it
    /// compressed.
    Vary,
    /// Compressed with this coding (and `Vary`).
    Encode(Codec),
}

/// `wanted`: the coding the client's Accept-Encoding chose among the route's.
pub fn decide(f: &Facts, wanted: Option<Codec>, min: u64) -> Choice {
    let Some(ctype) = f.content_type else {
        return Choice::Leave;
    };
    if !compressible(ctype)
        || f.content_encoding
            .is_some_and(|e| !e.trim_ascii().eq_ignore_ascii_case(b"identity"))
        || f.cache_control.is_some_and(no_transform)
        || f.content_range.is_some()
        || f.status < 200
        || matches!(f.status, 204 | 206 | 304)
    {
        return Choice::Leave;
    }
    if f.streams || f.head || f.bodyless || f.length.is_some_and(|n| n < min) {
        return Choice::Vary;
    }
    wanted.map_or(Choice::Vary, Choice::Encode)
}

/// The ETag of a compressed representation: weak (RFC 9110 8.8.1), since the bytes are
/// not the server's, as nginx does.
pub fn weak_etag(tag: &[u8]) -> Vec<u8> {
    let tag = tag.trim_ascii();
    if tag.starts_with(b"W/") {
        tag.to_vec()
    } else {
        [b"W/", tag].concat()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json() -> Facts<'static> {
        Facts {
            status: 200,
            content_type: Some(b"application/json"),
            length: Some(5000),
            ..Default::default()
        }
    }

    #[test]
    fn compressible_answers_are_encoded_when_the_client_takes_it() {
        assert_eq!(
            decide(&json(), Some(Codec::Br), 1024),
            Choice::Encode(Codec::Br)
        );
        assert_eq!(decide(&json(), None, 1024), Choice::Vary);
        let chunked = Facts {
            length: None,
            ..json()
        };
        assert_eq!(
            decide(&chunked, Some(Codec::Gzip), 1024),
            Choice::Encode(Codec::Gzip)
        );
        let identity = Facts {
            content_encoding: Some(b"identity"),
            ..json()
        };
        assert_eq!(
            decide(&identity, Some(Codec::Zstd), 1024),
            Choice::Encode(Codec::Zstd)
        );
        let error_page = Facts {
            status: 404,
            content_type: Some(b"text/html; charset=utf-8"),
            ..json()
        };
        assert_eq!(
            decide(&error_page, Some(Codec::Br), 1024),
            Choice::Encode(Codec::Br)
        );
    }

    #[test]
    fn what_must_not_be_touched_is_left_alone() {
        let z = Some(Codec::Zstd);
        for f in [
            Facts {
                content_type: Some(b"image/png"),
                ..json()
            },
            Facts {
                content_type: None,
                ..json()
            },
            Facts {
                content_encoding: Some(b"gzip"),
                ..json()
            },
            Facts {
                cache_control: Some(b"private, no-transform"),
                ..json()
            },
            Facts {
                content_range: Some(b"bytes 0-9/100"),
                ..json()
            },
            Facts {
                status: 206,
                ..json()
            },
            Facts {
                status: 204,
                ..json()
            },
            Facts {
                status: 304,
                ..json()
            },
            Facts {
                status: 101,
                ..json()
            },
        ] {
            assert_eq!(decide(&f, z, 1024), Choice::Leave, "{f:?}");
        }
        for f in [
            Facts {
                length: Some(100),
                ..json()
            },
            Facts {
                head: true,
                ..json()
            },
            Facts {
                streams: true,
                ..json()
            },
            Facts {
                bodyless: true,
                ..json()
            },
        ] {
            assert_eq!(decide(&f, z, 1024), Choice::Vary, "{f:?}");
        }
    }

    #[test]
    fn etags_become_weak() {
        assert_eq!(weak_etag(b"\"abc\""), b"W/\"abc\"");
        assert_eq!(weak_etag(b"W/\"abc\""), b"W/\"abc\"");
    }
}
