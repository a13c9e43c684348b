//! HTTP/2 (issue 20), built in steps. So far the pure codecs: frames (`frame`) and HPACK,
//! the header compression (`hpack`). The connection state machine and the worker's second
//! codec come next.

pub mod frame;
pub mod hpack;
