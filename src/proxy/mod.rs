//! Reverse-proxy codecs: the request head forwarded to an HTTP/1.1 upstream,
//! the upstream's response head (parse and rewrite for the client), chunked
//! re-framing and the uwsgi protocol. Pure byte code, no I/O; output is only
//! ever appended to caller-provided buffers.

pub mod chunkenc;
pub mod exchange;
pub(crate) mod hop;
pub mod reqhead;
pub mod resphead;
pub mod upgrade;
pub mod uwsgi;
