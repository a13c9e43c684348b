//! Redirect templates (`http::redirect`): what a `redirect` route's Location is built from.
//!
//! Input: a template, a NUL, then the bytes every variable expands to. A template is either
//! refused with a reason or accepted; an accepted one holds no space or control byte, and
//! expanding it equals an independent reading: each `$name` or `${name}` replaced by the
//! value, every other byte kept.

#![no_main]

use libfuzzer_sys::fuzz_target;
use uringd::http::redirect::{Template, Values};

fn model(t: &str, value: &[u8]) -> Vec<u8> {
    let b = t.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'$' {
            out.push(b[i]);
            i += 1;
            continue;
        }
        i += 1;
        if b.get(i) == Some(&b'{') {
            while b[i] != b'}' {
                i += 1;
            }
            i += 1;
        } else {
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
        }
        out.extend_from_slice(value);
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    let Ok(t) = std::str::from_utf8(&data[..split]) else {
        return;
    };
    let value = data.get(split + 1..).unwrap_or(&[]);
    match Template::parse(t) {
        Err(why) => assert!(!why.is_empty()),
        Ok(tpl) => {
            assert!(t.bytes().all(|b| b > 0x20 && b != 0x7f), "accepted {t:?}");
            let v = Values {
                scheme: value,
                host: value,
                request_uri: value,
                uri: value,
                args: value,
            };
            let mut out = Vec::new();
            tpl.expand(&v, &mut out);
            assert_eq!(out, model(t, value), "{t:?}");
        }
    }
});
