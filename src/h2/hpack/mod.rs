//! HPACK (RFC 7541), written here rather than taken from a crate: the maintained ones
//! allocate per string, leave the header list limits to the caller after the fact, or
//! have had panics on one-octet inputs (docs/architecture.md, the HTTP/2 section). Pure:
//! bytes in, bytes or fields out; unit tests carry the RFC's Appendix C examples, and
//! `fuzz/fuzz_targets/hpack_decoder.rs` runs the decoder on anything.

pub mod decoder;
pub mod encoder;
pub mod huffman;
pub mod integer;
pub mod table;

pub use decoder::{DecodeError, Decoder, Limits};
pub use encoder::Encoder;
