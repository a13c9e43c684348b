//! The HTTP/2 frame reader (`h2::frame`): a byte stream cut into frames by their headers,
//! each length checked against SETTINGS_MAX_FRAME_SIZE and each payload parsed, never
//! panics; what it hands out lies inside the payload it was given; settings read without
//! a panic; and a header block written by `write_headers` reads back whole.

#![no_main]

use libfuzzer_sys::fuzz_target;
use uringd::h2::frame::{self, Frame};

fuzz_target!(|data: &[u8]| {
    let mut at = 0;
    while let Some(h) = data.get(at..at + frame::HEADER_LEN) {
        let h = frame::head(h.try_into().unwrap());
        if frame::check_len(&h, frame::DEFAULT_MAX_FRAME).is_err() {
            break;
        }
        let start = at + frame::HEADER_LEN;
        let Some(p) = data.get(start..start + h.len as usize) else {
            break;
        };
        match frame::parse(&h, p) {
            Ok(Frame::Data { data: d, flow_len, .. }) => {
                assert!(d.len() <= p.len() && flow_len as usize == p.len())
            }
            Ok(Frame::Headers { block, .. }) => {
                assert!(block.len() <= p.len());
                let mut out = Vec::new();
                frame::write_headers(&mut out, h.stream.max(1), block, false, 16_384);
                let mut back = Vec::new();
                let mut i = 0;
                while i < out.len() {
                    let fh = frame::head(out[i..i + 9].try_into().unwrap());
                    let fp = &out[i + 9..i + 9 + fh.len as usize];
                    match frame::parse(&fh, fp) {
                        Ok(Frame::Headers { block, .. } | Frame::Continuation { block, .. }) => {
                            back.extend_from_slice(block)
                        }
                        other => panic!("{other:?}"),
                    }
                    i += 9 + fh.len as usize;
                }
                assert_eq!(back, block);
            }
            Ok(Frame::Settings { payload, .. }) => frame::settings(payload).for_each(drop),
            _ => {}
        }
        at = start + h.len as usize;
    }
});
