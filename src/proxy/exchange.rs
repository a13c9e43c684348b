//! The decisions of a proxied exchange, apart from the sockets: how to relay the response
//! the upstream announced, and what to do when an attempt fails. The worker carries them
//! out; everything a front process must get right about them is here and unit-tested.

use super::resphead::RespHead;
use crate::config::upstream::Proto;
use crate::http::framing::{Decode, Encode};

/// What uringd knows of the client's request when the upstream answers.
#[derive(Clone, Copy, Debug)]
pub struct ReqFacts {
    pub http10: bool,
    /// The client may keep the connection after this response.
    pub keep_alive: bool,
    /// An upgrade was forwarded (so a 101 may be followed).
    pub upgrade: bool,
    /// A 101 switches to a protocol the route tunnels (see `upgrade::switch_allowed`).
    pub switch_allowed: bool,
    pub proto: Proto,
}

/// How a response is relayed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    /// The framing the client's head announces.
    pub framing: Encode,
    /// How the upstream's body is read (`None` for a tunnel: nothing is framed).
    pub decode: Decode,
    /// After a 101: raw bytes both ways until either side closes.
    pub tunnel: bool,
    /// The decoded body is re-chunked towards the client.
    pub rechunk: bool,
    /// The client connection closes after this response (close-delimited for HTTP/1.0,
    /// a tunnel).
    pub close_client: bool,
    /// The client's head says keep-alive.
    pub client_keep_alive: bool,
    /// The upstream connection may go back to its pool once the body is read.
    pub upstream_reusable: bool,
    /// The body is large enough to splice socket to socket.
    pub splice: bool,
}

/// Plans the relay of the response head `r` (a final status, or 101).
pub fn plan(r: &RespHead, req: &ReqFacts, splice_threshold: u64) -> Result<Plan, UpstreamError> {
    if r.status == 101 {
        if !req.upgrade {
            return Err(UpstreamError::UnaskedSwitch);
        }
        if !req.switch_allowed {
            return Err(UpstreamError::SwitchNotAllowed);
        }
        return Ok(Plan {
            framing: Encode::None,
            decode: Decode::None,
            tunnel: true,
            rechunk: false,
            close_client: true,
            client_keep_alive: false,
            upstream_reusable: false,
            splice: false,
        });
    }
    let (framing, decode, rechunk, close) = match r.body {
        Decode::None => (Encode::None, Decode::None, false, false),
        Decode::Length(n) => (
            Encode::Length(n),
            if n == 0 {
                Decode::None
            } else {
                Decode::Length(n)
            },
            false,
            false,
        ),
        // An HTTP/1.1 client gets it re-chunked; an HTTP/1.0 one cannot read chunks, so it
        // gets the bytes and a close.
        Decode::Chunked if !req.http10 => (Encode::Chunked, Decode::Chunked, true, false),
        Decode::Chunked => (Encode::None, Decode::Chunked, false, true),
        Decode::UntilClose if !req.http10 => (Encode::Chunked, Decode::UntilClose, true, false),
        Decode::UntilClose => (Encode::None, Decode::UntilClose, false, true),
    };
    Ok(Plan {
        framing,
        decode,
        tunnel: false,
        rechunk,
        close_client: close,
        client_keep_alive: req.keep_alive && !close,
        // uwsgi closes after each response; a close-delimited body ends the connection.
        upstream_reusable: r.keep_alive && req.proto == Proto::Http && decode != Decode::UntilClose,
        splice: matches!(decode, Decode::Length(n) if n >= splice_threshold),
    })
}

/// A response that streams even where the pool buffers: server-sent events, and what the
/// server marks `X-Accel-Buffering: no` (nginx's convention), read from the response head's
/// Content-Type and X-Accel-Buffering values.
pub fn streams_always(content_type: Option<&[u8]>, accel_buffering: Option<&[u8]>) -> bool {
    let sse = content_type.is_some_and(|t| {
        let mime = t.split(|&b| b == b';').next().unwrap_or(t);
        mime.trim_ascii().eq_ignore_ascii_case(b"text/event-stream")
    });
    sse || accel_buffering.is_some_and(|v| v.trim_ascii().eq_ignore_ascii_case(b"no"))
}

/// Why an upstream attempt failed: one enum, mapped to a status in one place.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UpstreamError {
    /// No socket could be made for it (descriptors, memory).
    NoSocket,
    /// The connect failed (refused, unreachable, ...): nothing reached the server.
    Connect(i32),
    /// Sending the request failed.
    Send(i32),
    /// The server closed before answering.
    ClosedEarly,
    /// No answer (or no progress) in time.
    Timeout,
    /// The response head is not valid HTTP/1.1 (or its framing is ambiguous).
    BadHead(&'static str),
    HeadTooLarge,
    /// 101 without an upgrade request.
    UnaskedSwitch,
    /// 101 to a protocol the route does not tunnel.
    SwitchNotAllowed,
    /// Every server of the pool is out of rotation.
    NoServer,
    /// Every server still in rotation was tried for this request (the last failure stands).
    NoServerLeft,
    /// TLS with an https:// server failed (`why`: the failure's kind); `handshake`: before
    /// the handshake finished, so no byte of the request reached it.
    Tls {
        why: &'static str,
        handshake: bool,
    },
}

impl UpstreamError {
    /// The status the client gets when this ends the request.
    pub fn status(&self) -> u16 {
        match self {
            UpstreamError::Timeout => 504,
            UpstreamError::NoServer => 503,
            _ => 502,
        }
    }

    /// For the error log.
    pub fn why(&self) -> String {
        let errno = |e: i32| std::io::Error::from_raw_os_error(e).to_string();
        match self {
            UpstreamError::NoSocket => "cannot create a socket".into(),
            UpstreamError::Connect(e) => format!("connect failed: {}", errno(*e)),
            UpstreamError::Send(e) => format!("sending the request failed: {}", errno(*e)),
            UpstreamError::ClosedEarly => "closed the connection before answering".into(),
            UpstreamError::Timeout => "timed out".into(),
            UpstreamError::BadHead(why) => (*why).into(),
            UpstreamError::HeadTooLarge => "response head too large".into(),
            UpstreamError::UnaskedSwitch => {
                "101 Switching Protocols without an upgrade request".into()
            }
            UpstreamError::SwitchNotAllowed => "101 to a protocol the route does not tunnel".into(),
            UpstreamError::NoServer => "no server in rotation".into(),
            UpstreamError::NoServerLeft => "every server in rotation was tried".into(),
            UpstreamError::Tls {
                why,
                handshake: true,
            } => format!("TLS handshake failed ({why})"),
            UpstreamError::Tls { why, .. } => format!("TLS failed ({why})"),
        }
    }

    /// Nothing reached the server: the request may go to another one, whatever it is.
    fn nothing_sent(&self) -> bool {
        matches!(
            self,
            UpstreamError::Connect(_)
                | UpstreamError::NoSocket
                | UpstreamError::Tls {
                    handshake: true,
                    ..
                }
        )
    }

    /// A malformed or refused answer: retrying would only meet it again.
    fn answered_badly(&self) -> bool {
        matches!(
            self,
            UpstreamError::BadHead(_)
                | UpstreamError::HeadTooLarge
                | UpstreamError::UnaskedSwitch
                | UpstreamError::SwitchNotAllowed
        )
    }
}

/// What the attempt had got to when it failed.
#[derive(Clone, Copy, Debug, Default)]
pub struct Attempt {
    /// A response head already went to the client.
    pub resp_started: bool,
    /// The request may be sent again (idempotent method, no body).
    pub retryable: bool,
    /// Attempts made so far, this one included, and the extra ones allowed.
    pub attempts: u32,
    pub retries: u32,
    /// The connection came from the idle pool, and the server sent nothing on it.
    pub reused: bool,
    pub got_bytes: bool,
}

/// What to do after a failed attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// Try again; `same_server`: a pooled connection the server had closed, so that server
    /// is not to blame.
    Retry { same_server: bool },
    /// Answer the client with this status.
    Answer(u16),
    /// Part of the response is out: the client can only be cut off.
    Cut,
}

impl Attempt {
    /// A pooled connection that turned out closed by the server before this request: the
    /// server did nothing wrong (it counts against nobody's health).
    pub fn stale(&self, e: &UpstreamError) -> bool {
        self.reused
            && !self.got_bytes
            && matches!(e, UpstreamError::ClosedEarly | UpstreamError::Send(_))
    }

    /// Whether the failure counts against the server's health: not a pooled connection it
    /// had closed, not an answer it did give (malformed or refused: the server is up; the
    /// request is answered 502 without taking the server out), not the pool's state.
    pub fn blames_server(&self, e: &UpstreamError) -> bool {
        !self.stale(e)
            && !e.answered_badly()
            && !matches!(e, UpstreamError::NoServer | UpstreamError::NoServerLeft)
    }
}

/// Decides after a failed attempt: retry where it is safe, else the status that belongs to
/// the failure, or a cut once the response has begun.
pub fn after_failure(e: &UpstreamError, a: &Attempt) -> Next {
    if a.resp_started {
        return Next::Cut;
    }
    if e.answered_badly()
        || matches!(
            e,
            UpstreamError::Timeout | UpstreamError::NoServer | UpstreamError::NoServerLeft
        )
    {
        return Next::Answer(e.status());
    }
    if a.stale(e) && a.retryable {
        return Next::Retry { same_server: true };
    }
    if (e.nothing_sent() || a.retryable) && a.attempts <= a.retries {
        return Next::Retry { same_server: false };
    }
    Next::Answer(e.status())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(status: u16, body: Decode, keep_alive: bool) -> RespHead {
        RespHead {
            head_len: 0,
            status,
            version: crate::http::parser::Version::Http11,
            reason: crate::http::parser::Span { start: 0, end: 0 },
            body,
            keep_alive,
            upgrade: status == 101,
        }
    }

    fn req(http10: bool) -> ReqFacts {
        ReqFacts {
            http10,
            keep_alive: true,
            upgrade: false,
            switch_allowed: false,
            proto: Proto::Http,
        }
    }

    #[test]
    fn responses_are_reframed_for_the_client() {
        let p = plan(&head(200, Decode::Length(10), true), &req(false), 1000).unwrap();
        assert_eq!(p.framing, Encode::Length(10));
        assert_eq!(p.decode, Decode::Length(10));
        assert!(p.client_keep_alive && p.upstream_reusable && !p.splice && !p.rechunk);
        // Large enough to splice.
        let p = plan(&head(200, Decode::Length(5000), true), &req(false), 1000).unwrap();
        assert!(p.splice);
        // Chunked: re-chunked for HTTP/1.1, raw and closing for HTTP/1.0.
        let p = plan(&head(200, Decode::Chunked, true), &req(false), 1000).unwrap();
        assert_eq!(
            (p.framing, p.rechunk, p.close_client),
            (Encode::Chunked, true, false)
        );
        let p = plan(&head(200, Decode::Chunked, true), &req(true), 1000).unwrap();
        assert_eq!(
            (p.framing, p.rechunk, p.close_client),
            (Encode::None, false, true)
        );
        assert!(!p.client_keep_alive);
        // Close-delimited: chunked to an HTTP/1.1 client; the upstream is never reused.
        let p = plan(&head(200, Decode::UntilClose, false), &req(false), 1000).unwrap();
        assert_eq!((p.framing, p.decode), (Encode::Chunked, Decode::UntilClose));
        assert!(!p.upstream_reusable && p.client_keep_alive);
        // No body, zero length: nothing to decode.
        let p = plan(&head(204, Decode::None, true), &req(false), 1000).unwrap();
        assert_eq!(p.decode, Decode::None);
        let p = plan(&head(200, Decode::Length(0), true), &req(false), 0).unwrap();
        assert_eq!((p.decode, p.splice), (Decode::None, false));
        // uwsgi connections are not pooled.
        let u = ReqFacts {
            proto: Proto::Uwsgi,
            ..req(false)
        };
        assert!(
            !plan(&head(200, Decode::Length(1), true), &u, 1000)
                .unwrap()
                .upstream_reusable
        );
        // The client asked to close: so does the response.
        let c = ReqFacts {
            keep_alive: false,
            ..req(false)
        };
        assert!(
            !plan(&head(200, Decode::Length(1), true), &c, 1000)
                .unwrap()
                .client_keep_alive
        );
    }

    #[test]
    fn a_switch_is_followed_only_when_asked_and_allowed() {
        let h = head(101, Decode::None, false);
        assert_eq!(plan(&h, &req(false), 0), Err(UpstreamError::UnaskedSwitch));
        let asked = ReqFacts {
            upgrade: true,
            ..req(false)
        };
        assert_eq!(plan(&h, &asked, 0), Err(UpstreamError::SwitchNotAllowed));
        let ok = ReqFacts {
            switch_allowed: true,
            ..asked
        };
        let p = plan(&h, &ok, 0).unwrap();
        assert!(p.tunnel && p.decode == Decode::None);
        assert!(p.close_client && !p.upstream_reusable);
    }

    #[test]
    fn event_streams_and_accel_no_always_stream() {
        assert!(streams_always(Some(b"text/event-stream"), None));
        assert!(streams_always(
            Some(b"Text/Event-Stream; charset=utf-8"),
            None
        ));
        assert!(streams_always(None, Some(b" No ")));
        assert!(!streams_always(Some(b"text/html"), Some(b"yes")));
        assert!(!streams_always(Some(b"text/event-streamx"), None));
        assert!(!streams_always(None, None));
    }

    #[test]
    fn statuses_come_from_one_place() {
        assert_eq!(UpstreamError::Timeout.status(), 504);
        assert_eq!(UpstreamError::NoServer.status(), 503);
        assert_eq!(UpstreamError::NoServerLeft.status(), 502);
        for e in [
            UpstreamError::Connect(libc::ECONNREFUSED),
            UpstreamError::ClosedEarly,
            UpstreamError::BadHead("x"),
            UpstreamError::UnaskedSwitch,
            UpstreamError::NoSocket,
        ] {
            assert_eq!(e.status(), 502, "{e:?}");
        }
        assert!(
            UpstreamError::Connect(libc::ECONNREFUSED)
                .why()
                .contains("refused")
        );
    }

    #[test]
    fn retries_only_where_safe() {
        let first = Attempt {
            attempts: 1,
            retries: 1,
            ..Attempt::default()
        };
        // Nothing was sent: retry on another server even for a POST.
        let refused = UpstreamError::Connect(libc::ECONNREFUSED);
        assert_eq!(
            after_failure(&refused, &first),
            Next::Retry { same_server: false }
        );
        // ...but not past the retry budget.
        let spent = Attempt {
            attempts: 2,
            ..first
        };
        assert_eq!(after_failure(&refused, &spent), Next::Answer(502));
        // The request may have reached the server: only idempotent, bodyless ones go again.
        assert_eq!(
            after_failure(&UpstreamError::ClosedEarly, &first),
            Next::Answer(502)
        );
        let get = Attempt {
            retryable: true,
            ..first
        };
        assert_eq!(
            after_failure(&UpstreamError::ClosedEarly, &get),
            Next::Retry { same_server: false }
        );
        // A pooled connection the server had closed: the same server again, and no blame.
        let pooled = Attempt {
            reused: true,
            ..get
        };
        assert_eq!(
            after_failure(&UpstreamError::ClosedEarly, &pooled),
            Next::Retry { same_server: true }
        );
        assert!(!pooled.blames_server(&UpstreamError::ClosedEarly));
        assert!(get.blames_server(&UpstreamError::ClosedEarly));
        // A bad answer or a timeout is answered, never retried; a bad answer does not take
        // the server out (it is up), a timeout does.
        assert!(!get.blames_server(&UpstreamError::BadHead("x")));
        assert!(get.blames_server(&UpstreamError::Timeout));
        assert_eq!(
            after_failure(&UpstreamError::BadHead("x"), &get),
            Next::Answer(502)
        );
        assert_eq!(
            after_failure(&UpstreamError::Timeout, &get),
            Next::Answer(504)
        );
        // Once the response began, only a cut is honest.
        let started = Attempt {
            resp_started: true,
            ..get
        };
        assert_eq!(
            after_failure(&UpstreamError::ClosedEarly, &started),
            Next::Cut
        );
    }
}
