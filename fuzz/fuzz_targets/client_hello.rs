//! The ClientHello server-name reader (`tls::hello`): never panics, and once it has an
//! answer, bytes arriving after the hello do not change it.

#![no_main]

use libfuzzer_sys::fuzz_target;
use uringd::tls::hello::{Sni, server_name};

fuzz_target!(|data: &[u8]| {
    let first = server_name(data);
    if first != Sni::Incomplete {
        let mut more = data.to_vec();
        more.extend_from_slice(&[0x17, 3, 3, 0, 2, 0, 0]);
        assert_eq!(server_name(&more), first);
    }
    if let Sni::Name(n) = first {
        assert!(!n.is_empty() && n.iter().all(u8::is_ascii_graphic));
    }
});
