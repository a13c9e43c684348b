//! The send queue as the codec's sink: the one place where HTTP meets the transport.

use std::sync::Arc;

use crate::driver::outq::OutQueue;
use crate::http::sink::Sink;

impl Sink for OutQueue {
    fn bytes(&mut self) -> &mut Vec<u8> {
        OutQueue::bytes(self)
    }

    fn commit(&mut self, n: usize) {
        OutQueue::commit(self, n)
    }

    fn push_shared(&mut self, body: &Arc<[u8]>, zc_threshold: usize) {
        OutQueue::push_shared(self, body, zc_threshold)
    }
}
