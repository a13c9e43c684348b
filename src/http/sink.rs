//! Where the codec writes a response: bytes appended in place, and shared bodies passed by
//! reference so the sender may send them without a copy. The transport's send queue
//! implements it (`transport/sink.rs`); the codec knows no sockets.

use std::sync::Arc;

pub trait Sink {
    /// The buffer to append to; `commit` says how much was appended.
    fn bytes(&mut self) -> &mut Vec<u8>;
    fn commit(&mut self, n: usize);
    /// Appends a body shared by many responses (sent zero-copy from `zc_threshold` up).
    fn push_shared(&mut self, body: &Arc<[u8]>, zc_threshold: usize);
}

/// A plain buffer as a sink (tests, and anything that wants the bytes in hand).
impl Sink for Vec<u8> {
    fn bytes(&mut self) -> &mut Vec<u8> {
        self
    }

    fn commit(&mut self, _n: usize) {}

    fn push_shared(&mut self, body: &Arc<[u8]>, _zc_threshold: usize) {
        self.extend_from_slice(body);
    }
}
