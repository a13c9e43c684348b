//! Body framing, the two directions: how a body that arrives is delimited (a head parser's
//! decision, RFC 9112 6.3), and how uringd delimits a body it writes. One enum each, for
//! requests and responses alike.

/// How a received body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decode {
    /// No body follows the head.
    None,
    Length(u64),
    Chunked,
    /// Until the sender closes (responses only: a request without a length has no body).
    UntilClose,
}

/// How uringd frames a body it sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encode {
    Length(u64),
    Chunked,
    /// Bodyless, or close-delimited.
    None,
}
