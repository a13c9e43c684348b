//! Reads responses off a connection: the shared strict head parser, then the body by its
//! framing (length, chunked, or until close), without keeping body bytes.

use crate::http::chunked::ChunkedDecoder;
use crate::http::framing::Decode;
use crate::http::parser::HeaderSpan;
use crate::proxy::resphead::{RespError, parse_response_head};

/// Largest response head accepted; beyond it the response is a parse error.
const MAX_HEAD: usize = 64 * 1024;

#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    /// A whole response arrived. `close`: the server will not take more on this connection.
    Done {
        status: u16,
        close: bool,
    },
    Invalid(&'static str),
}

enum Body {
    Head,
    Length(u64),
    Chunked(ChunkedDecoder),
    UntilClose,
}

pub struct Reader {
    body: Body,
    /// A head split across reads is gathered here (empty on the fast path).
    acc: Vec<u8>,
    headers: Vec<HeaderSpan>,
    status: u16,
    keep_alive: bool,
}

impl Default for Reader {
    fn default() -> Self {
        Reader {
            body: Body::Head,
            acc: Vec::new(),
            headers: Vec::with_capacity(16),
            status: 0,
            keep_alive: true,
        }
    }
}

impl Reader {
    pub fn reset(&mut self) {
        self.body = Body::Head;
        self.acc.clear();
    }

    /// Nothing of a response has arrived yet.
    pub fn idle(&self) -> bool {
        matches!(self.body, Body::Head) && self.acc.is_empty()
    }

    /// Consumes a prefix of `data`. Returns the bytes consumed and, when a response
    /// completed or failed there, what happened. Call again with the rest.
    pub fn feed(&mut self, data: &[u8], head_request: bool) -> (usize, Option<Event>) {
        match &mut self.body {
            Body::Head => self.head(data, head_request),
            Body::Length(left) => {
                let n = (*left).min(data.len() as u64);
                *left -= n;
                if *left == 0 {
                    (n as usize, Some(self.done()))
                } else {
                    (n as usize, None)
                }
            }
            Body::Chunked(d) => match d.feed(data, &mut |_| {}) {
                Ok((n, true)) => (n, Some(self.done())),
                Ok((n, false)) => (n, None),
                Err(_) => (data.len(), Some(Event::Invalid("bad chunked body"))),
            },
            Body::UntilClose => (data.len(), None),
        }
    }

    /// The server closed. A close-delimited body ends here; anything else was cut short.
    pub fn eof(&mut self) -> Option<Event> {
        match self.body {
            Body::UntilClose => {
                self.keep_alive = false;
                Some(self.done())
            }
            _ => None,
        }
    }

    fn done(&mut self) -> Event {
        self.body = Body::Head;
        Event::Done {
            status: self.status,
            close: !self.keep_alive,
        }
    }

    fn head(&mut self, data: &[u8], head_request: bool) -> (usize, Option<Event>) {
        let old = self.acc.len();
        let parsed = if old == 0 {
            parse_response_head(data, head_request, MAX_HEAD, &mut self.headers)
        } else {
            self.acc.extend_from_slice(data);
            parse_response_head(&self.acc, head_request, MAX_HEAD, &mut self.headers)
        };
        let h = match parsed {
            Ok(h) => h,
            Err(RespError::Incomplete) => {
                if old == 0 {
                    self.acc.extend_from_slice(data);
                }
                return (data.len(), None);
            }
            Err(RespError::TooLarge) => {
                return (data.len(), Some(Event::Invalid("response head too large")));
            }
            Err(RespError::Invalid(why)) => return (data.len(), Some(Event::Invalid(why))),
        };
        // The head ends inside `data` (an earlier read alone did not complete it).
        let used = h.head_len - old;
        self.acc.clear();
        if h.upgrade {
            return (used, Some(Event::Invalid("101 Switching Protocols")));
        }
        if h.status < 200 {
            // Interim response (100 Continue, 103): the real one follows.
            return (used, None);
        }
        self.status = h.status;
        self.keep_alive = h.keep_alive;
        self.body = match h.body {
            Decode::None | Decode::Length(0) => return (used, Some(self.done())),
            Decode::Length(n) => Body::Length(n),
            Decode::Chunked => Body::Chunked(ChunkedDecoder::new(u64::MAX, MAX_HEAD)),
            Decode::UntilClose => Body::UntilClose,
        };
        (used, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` in pieces of `step` bytes and collects events.
    fn run(input: &[u8], step: usize, head: bool) -> (Vec<Event>, Reader) {
        let mut r = Reader::default();
        let mut ev = Vec::new();
        for piece in input.chunks(step) {
            let mut pos = 0;
            while pos < piece.len() {
                let (n, e) = r.feed(&piece[pos..], head);
                pos += n;
                if let Some(e) = e {
                    let stop = matches!(e, Event::Invalid(_));
                    ev.push(e);
                    if stop {
                        // The connection is dropped after an invalid response.
                        return (ev, r);
                    }
                }
                if n == 0 && pos < piece.len() && !r.idle() {
                    panic!("no progress");
                }
            }
        }
        (ev, r)
    }

    const TWO: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloHTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";

    #[test]
    fn pipelined_responses_at_any_split() {
        for step in [1, 2, 7, 40, TWO.len()] {
            let (ev, r) = run(TWO, step, false);
            assert_eq!(
                ev,
                vec![
                    Event::Done {
                        status: 200,
                        close: false
                    },
                    Event::Done {
                        status: 404,
                        close: false
                    }
                ],
                "step {step}"
            );
            assert!(r.idle());
        }
    }

    #[test]
    fn interim_close_and_eof_framing() {
        let (ev, _) = run(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n",
            5,
            false,
        );
        assert_eq!(
            ev,
            vec![Event::Done {
                status: 204,
                close: true
            }]
        );

        let (ev, mut r) = run(b"HTTP/1.0 200 OK\r\n\r\nbody until close", 4, false);
        assert!(ev.is_empty());
        assert_eq!(
            r.eof(),
            Some(Event::Done {
                status: 200,
                close: true
            })
        );

        // A HEAD response's Content-Length describes a body that is not sent.
        let (ev, _) = run(b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n", 3, true);
        assert_eq!(
            ev,
            vec![Event::Done {
                status: 200,
                close: false
            }]
        );

        // Cut short: EOF inside a length-framed body is not a response.
        let (_, mut r) = run(
            b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc",
            100,
            false,
        );
        assert_eq!(r.eof(), None);
    }

    #[test]
    fn garbage_is_invalid() {
        let (ev, _) = run(b"SSH-2.0-OpenSSH\r\n\r\n", 100, false);
        assert!(matches!(ev[..], [Event::Invalid(_)]), "{ev:?}");
        let (ev, _) = run(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            100,
            false,
        );
        assert_eq!(ev, vec![Event::Invalid("bad chunked body")]);
        let big = [b"HTTP/1.1 200 OK\r\nX: ".as_slice(), &[b'a'; 70_000]].concat();
        let (ev, _) = run(&big, 1000, false);
        assert_eq!(ev, vec![Event::Invalid("response head too large")]);
    }
}
