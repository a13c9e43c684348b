//! HTTP/1.1, the codec: strict head scanner and parser, chunked decoder, Date formatting,
//! prepared responses written into a `Sink`. Imports nothing from the driver, the config
//! or the static files (the router lives in `worker/router.rs`).

pub mod chunked;
pub mod date;
pub mod fields;
pub mod framing;
pub mod parser;
pub mod path;
pub mod redirect;
pub mod response;
pub mod scan;
pub mod sink;
