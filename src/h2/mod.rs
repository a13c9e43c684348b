//! HTTP/2 (issue 20), built in steps. So far: HPACK, the header compression, as a pure
//! codec. The framing layer and the worker's second codec come next.

pub mod hpack;
