//! The PROXY protocol header parser (`edge::proxy_protocol`): never panics, never claims
//! more bytes than it was given, reads the same header from exactly its own bytes (what
//! follows does not change it), and asks for more on every strict prefix of a header.

#![no_main]

use libfuzzer_sys::fuzz_target;
use uringd::edge::proxy_protocol::{Error, parse};

fuzz_target!(|data: &[u8]| {
    let Ok(h) = parse(data) else { return };
    assert!(h.len <= data.len() && h.len > 0);
    assert_eq!(parse(&data[..h.len]), Ok(h), "its own bytes read the same");
    for n in 0..h.len {
        assert_eq!(parse(&data[..n]), Err(Error::Incomplete), "prefix {n}");
    }
});
