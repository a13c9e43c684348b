//! HTTP/1.1: strict head scanner and parser, chunked decoder, Date formatting, prepared
//! responses and the router.

pub mod chunked;
pub mod date;
pub mod parser;
pub mod path;
pub mod response;
pub mod router;
pub mod scan;
