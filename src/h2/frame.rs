//! HTTP/2 frames (RFC 9113 section 4 and 6): the 9-octet header, each frame type's payload
//! checked as section 6 requires before anything reads it, and the frames a server writes.
//! Pure: bytes in, a borrowed `Frame` or the error the RFC names (connection or stream)
//! out. Connection state (which stream may send what, flow control, header block
//! assembly) is the connection's, not this file's.

/// What a client sends first (RFC 9113 section 3.4), before its SETTINGS.
pub const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
pub const HEADER_LEN: usize = 9;
/// The smallest SETTINGS_MAX_FRAME_SIZE, every peer's until it says otherwise.
pub const DEFAULT_MAX_FRAME: u32 = 16_384;
pub const MAX_WINDOW: u32 = (1 << 31) - 1;

pub const DATA: u8 = 0;
pub const HEADERS: u8 = 1;
pub const PRIORITY: u8 = 2;
pub const RST_STREAM: u8 = 3;
pub const SETTINGS: u8 = 4;
pub const PUSH_PROMISE: u8 = 5;
pub const PING: u8 = 6;
pub const GOAWAY: u8 = 7;
pub const WINDOW_UPDATE: u8 = 8;
pub const CONTINUATION: u8 = 9;

pub const END_STREAM: u8 = 0x1;
pub const ACK: u8 = 0x1;
pub const END_HEADERS: u8 = 0x4;
pub const PADDED: u8 = 0x8;
pub const PRIORITY_FLAG: u8 = 0x20;

/// Error codes (RFC 9113 section 7).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Code {
    NoError = 0,
    Protocol = 1,
    Internal = 2,
    FlowControl = 3,
    SettingsTimeout = 4,
    StreamClosed = 5,
    FrameSize = 6,
    RefusedStream = 7,
    Cancel = 8,
    Compression = 9,
    Connect = 10,
    EnhanceYourCalm = 11,
    InadequateSecurity = 12,
    Http11Required = 13,
}

/// What a malformed frame costs: the connection (GOAWAY), or one stream (RST_STREAM).
#[derive(Debug, PartialEq, Eq)]
pub enum FrameError {
    Connection(Code, &'static str),
    Stream(u32, Code, &'static str),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Head {
    pub len: u32,
    pub kind: u8,
    pub flags: u8,
    pub stream: u32,
}

/// The frame header at the start of `b` (the reserved bit of the stream id ignored, as
/// the RFC says).
pub fn head(b: &[u8; HEADER_LEN]) -> Head {
    Head {
        len: u32::from_be_bytes([0, b[0], b[1], b[2]]),
        kind: b[3],
        flags: b[4],
        stream: u32::from_be_bytes([b[5], b[6], b[7], b[8]]) & MAX_WINDOW,
    }
}

/// A frame longer than what we advertised as SETTINGS_MAX_FRAME_SIZE is the
/// connection's FRAME_SIZE_ERROR, whatever its type: checked before its payload is read.
pub fn check_len(h: &Head, max_frame: u32) -> Result<(), FrameError> {
    if h.len > max_frame {
        return Err(FrameError::Connection(
            Code::FrameSize,
            "a frame longer than SETTINGS_MAX_FRAME_SIZE",
        ));
    }
    Ok(())
}

#[derive(Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    Data {
        stream: u32,
        end_stream: bool,
        data: &'a [u8],
        /// The whole payload, padding included: what flow control counts.
        flow_len: u32,
    },
    Headers {
        stream: u32,
        end_stream: bool,
        end_headers: bool,
        block: &'a [u8],
    },
    /// PRIORITY frames are read and ignored (RFC 9113 deprecates the scheme).
    Priority,
    RstStream {
        stream: u32,
        code: u32,
    },
    Settings {
        ack: bool,
        /// Six octets per setting; `settings()` reads them.
        payload: &'a [u8],
    },
    Ping {
        ack: bool,
        data: [u8; 8],
    },
    Goaway {
        last_stream: u32,
        code: u32,
    },
    WindowUpdate {
        stream: u32,
        increment: u32,
    },
    Continuation {
        stream: u32,
        end_headers: bool,
        block: &'a [u8],
    },
    /// Unknown frame types are ignored (RFC 9113 section 4.1).
    Unknown,
}

fn conn(code: Code, why: &'static str) -> FrameError {
    FrameError::Connection(code, why)
}

/// Strips PADDED's padding: the pad length octet and that many octets at the end.
fn unpad(h: &Head, p: &[u8]) -> Result<(usize, usize), FrameError> {
    if h.flags & PADDED == 0 {
        return Ok((0, p.len()));
    }
    let pad = *p
        .first()
        .ok_or(conn(Code::FrameSize, "PADDED without a pad length"))? as usize;
    if pad >= p.len() {
        return Err(conn(Code::Protocol, "padding as long as the payload"));
    }
    Ok((1, p.len() - pad))
}

/// Reads the payload of a frame with header `h` (its length already checked against
/// ours) as a client's frame to a server.
pub fn parse<'a>(h: &Head, p: &'a [u8]) -> Result<Frame<'a>, FrameError> {
    let on_stream = |what: &'static str| {
        if h.stream == 0 {
            Err(conn(Code::Protocol, what))
        } else {
            Ok(())
        }
    };
    let on_connection = |what: &'static str| {
        if h.stream != 0 {
            Err(conn(Code::Protocol, what))
        } else {
            Ok(())
        }
    };
    let word = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    Ok(match h.kind {
        DATA => {
            on_stream("DATA on stream 0")?;
            let (start, end) = unpad(h, p)?;
            Frame::Data {
                stream: h.stream,
                end_stream: h.flags & END_STREAM != 0,
                data: &p[start..end],
                flow_len: p.len() as u32,
            }
        }
        HEADERS => {
            on_stream("HEADERS on stream 0")?;
            let (mut start, end) = unpad(h, p)?;
            if h.flags & PRIORITY_FLAG != 0 {
                if end < start + 5 {
                    return Err(conn(Code::FrameSize, "HEADERS too short for its priority"));
                }
                if word(&p[start..]) & MAX_WINDOW == h.stream {
                    return Err(FrameError::Stream(
                        h.stream,
                        Code::Protocol,
                        "a stream that depends on itself",
                    ));
                }
                start += 5;
            }
            Frame::Headers {
                stream: h.stream,
                end_stream: h.flags & END_STREAM != 0,
                end_headers: h.flags & END_HEADERS != 0,
                block: &p[start..end],
            }
        }
        PRIORITY => {
            on_stream("PRIORITY on stream 0")?;
            if p.len() != 5 {
                return Err(FrameError::Stream(
                    h.stream,
                    Code::FrameSize,
                    "PRIORITY not 5 octets",
                ));
            }
            if word(p) & MAX_WINDOW == h.stream {
                return Err(FrameError::Stream(
                    h.stream,
                    Code::Protocol,
                    "a stream that depends on itself",
                ));
            }
            Frame::Priority
        }
        RST_STREAM => {
            on_stream("RST_STREAM on stream 0")?;
            if p.len() != 4 {
                return Err(conn(Code::FrameSize, "RST_STREAM not 4 octets"));
            }
            Frame::RstStream {
                stream: h.stream,
                code: word(p),
            }
        }
        SETTINGS => {
            on_connection("SETTINGS on a stream")?;
            let ack = h.flags & ACK != 0;
            if ack && !p.is_empty() {
                return Err(conn(Code::FrameSize, "a SETTINGS ACK with a payload"));
            }
            if !p.len().is_multiple_of(6) {
                return Err(conn(Code::FrameSize, "SETTINGS not a multiple of 6 octets"));
            }
            Frame::Settings { ack, payload: p }
        }
        PUSH_PROMISE => return Err(conn(Code::Protocol, "PUSH_PROMISE from a client")),
        PING => {
            on_connection("PING on a stream")?;
            let data: [u8; 8] = p
                .try_into()
                .map_err(|_| conn(Code::FrameSize, "PING not 8 octets"))?;
            Frame::Ping {
                ack: h.flags & ACK != 0,
                data,
            }
        }
        GOAWAY => {
            on_connection("GOAWAY on a stream")?;
            if p.len() < 8 {
                return Err(conn(Code::FrameSize, "GOAWAY shorter than 8 octets"));
            }
            Frame::Goaway {
                last_stream: word(p) & MAX_WINDOW,
                code: word(&p[4..]),
            }
        }
        WINDOW_UPDATE => {
            if p.len() != 4 {
                return Err(conn(Code::FrameSize, "WINDOW_UPDATE not 4 octets"));
            }
            let increment = word(p) & MAX_WINDOW;
            if increment == 0 {
                return Err(match h.stream {
                    0 => conn(Code::Protocol, "a WINDOW_UPDATE of 0"),
                    s => FrameError::Stream(s, Code::Protocol, "a WINDOW_UPDATE of 0"),
                });
            }
            Frame::WindowUpdate {
                stream: h.stream,
                increment,
            }
        }
        CONTINUATION => {
            on_stream("CONTINUATION on stream 0")?;
            Frame::Continuation {
                stream: h.stream,
                end_headers: h.flags & END_HEADERS != 0,
                block: p,
            }
        }
        _ => Frame::Unknown,
    })
}

pub const SETTINGS_HEADER_TABLE_SIZE: u16 = 1;
pub const SETTINGS_ENABLE_PUSH: u16 = 2;
pub const SETTINGS_MAX_CONCURRENT_STREAMS: u16 = 3;
pub const SETTINGS_INITIAL_WINDOW_SIZE: u16 = 4;
pub const SETTINGS_MAX_FRAME_SIZE: u16 = 5;
pub const SETTINGS_MAX_HEADER_LIST_SIZE: u16 = 6;

/// The settings of a SETTINGS payload (a multiple of 6 octets, checked by `parse`), each
/// value checked as RFC 9113 section 6.5.2 requires; unknown ones passed on to be ignored.
pub fn settings(payload: &[u8]) -> impl Iterator<Item = Result<(u16, u32), FrameError>> + '_ {
    payload.chunks_exact(6).map(|s| {
        let id = u16::from_be_bytes([s[0], s[1]]);
        let v = u32::from_be_bytes([s[2], s[3], s[4], s[5]]);
        match id {
            SETTINGS_ENABLE_PUSH if v > 1 => Err(conn(Code::Protocol, "ENABLE_PUSH not 0 or 1")),
            SETTINGS_INITIAL_WINDOW_SIZE if v > MAX_WINDOW => {
                Err(conn(Code::FlowControl, "INITIAL_WINDOW_SIZE above 2^31-1"))
            }
            SETTINGS_MAX_FRAME_SIZE if !(DEFAULT_MAX_FRAME..=(1 << 24) - 1).contains(&v) => Err(
                conn(Code::Protocol, "MAX_FRAME_SIZE outside 16384..16777215"),
            ),
            _ => Ok((id, v)),
        }
    })
}

/// Appends a frame header.
pub fn write_head(out: &mut Vec<u8>, len: usize, kind: u8, flags: u8, stream: u32) {
    let l = (len as u32).to_be_bytes();
    out.extend_from_slice(&[l[1], l[2], l[3], kind, flags]);
    out.extend_from_slice(&(stream & MAX_WINDOW).to_be_bytes());
}

pub fn write_settings(out: &mut Vec<u8>, list: &[(u16, u32)]) {
    write_head(out, list.len() * 6, SETTINGS, 0, 0);
    for (id, v) in list {
        out.extend_from_slice(&id.to_be_bytes());
        out.extend_from_slice(&v.to_be_bytes());
    }
}

pub fn write_settings_ack(out: &mut Vec<u8>) {
    write_head(out, 0, SETTINGS, ACK, 0);
}

pub fn write_ping_ack(out: &mut Vec<u8>, data: &[u8; 8]) {
    write_head(out, 8, PING, ACK, 0);
    out.extend_from_slice(data);
}

pub fn write_goaway(out: &mut Vec<u8>, last_stream: u32, code: Code) {
    write_head(out, 8, GOAWAY, 0, 0);
    out.extend_from_slice(&(last_stream & MAX_WINDOW).to_be_bytes());
    out.extend_from_slice(&(code as u32).to_be_bytes());
}

pub fn write_rst(out: &mut Vec<u8>, stream: u32, code: Code) {
    write_head(out, 4, RST_STREAM, 0, stream);
    out.extend_from_slice(&(code as u32).to_be_bytes());
}

pub fn write_window_update(out: &mut Vec<u8>, stream: u32, increment: u32) {
    write_head(out, 4, WINDOW_UPDATE, 0, stream);
    out.extend_from_slice(&(increment & MAX_WINDOW).to_be_bytes());
}

/// A header block as HEADERS and as many CONTINUATION frames as `max_frame` (the peer's
/// SETTINGS_MAX_FRAME_SIZE) needs.
pub fn write_headers(
    out: &mut Vec<u8>,
    stream: u32,
    block: &[u8],
    end_stream: bool,
    max_frame: u32,
) {
    let max = max_frame.max(DEFAULT_MAX_FRAME) as usize;
    let mut parts = block.chunks(max).peekable();
    let first = parts.next().unwrap_or(&[]);
    let last = parts.peek().is_none();
    let flags = if end_stream { END_STREAM } else { 0 } | if last { END_HEADERS } else { 0 };
    write_head(out, first.len(), HEADERS, flags, stream);
    out.extend_from_slice(first);
    while let Some(part) = parts.next() {
        let flags = if parts.peek().is_none() {
            END_HEADERS
        } else {
            0
        };
        write_head(out, part.len(), CONTINUATION, flags, stream);
        out.extend_from_slice(part);
    }
}

/// The header of a DATA frame of `len` octets (the payload follows, written by the caller
/// from wherever it is).
pub fn write_data_head(out: &mut Vec<u8>, stream: u32, len: usize, end_stream: bool) {
    write_head(
        out,
        len,
        DATA,
        if end_stream { END_STREAM } else { 0 },
        stream,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(bytes: &[u8]) -> Result<Frame<'_>, FrameError> {
        let h = head(bytes[..9].try_into().unwrap());
        assert_eq!(h.len as usize, bytes.len() - 9, "the test's own length");
        parse(&h, &bytes[9..])
    }

    fn with(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        write_head(&mut out, payload.len(), kind, flags, stream);
        out.extend_from_slice(payload);
        out
    }

    #[test]
    fn the_header_and_the_reserved_bit() {
        let h = head(&[0, 0x40, 0x00, 1, 0x25, 0x80, 0, 0, 3]);
        assert_eq!(
            h,
            Head {
                len: 0x4000,
                kind: HEADERS,
                flags: 0x25,
                stream: 3
            }
        );
        assert!(check_len(&h, DEFAULT_MAX_FRAME).is_ok());
        assert!(check_len(&Head { len: 16_385, ..h }, DEFAULT_MAX_FRAME).is_err());
    }

    #[test]
    fn data_and_its_padding() {
        let f = with(DATA, PADDED | END_STREAM, 1, &[2, b'h', b'i', 0, 0]);
        assert_eq!(
            frame(&f),
            Ok(Frame::Data {
                stream: 1,
                end_stream: true,
                data: b"hi",
                flow_len: 5
            })
        );
        let bad = with(DATA, PADDED, 1, &[4, 1, 2, 3]);
        assert!(matches!(
            frame(&bad),
            Err(FrameError::Connection(Code::Protocol, _))
        ));
        let bad = with(DATA, 0, 0, b"x");
        assert!(matches!(
            frame(&bad),
            Err(FrameError::Connection(Code::Protocol, _))
        ));
        let bad = with(DATA, PADDED, 1, &[]);
        assert!(matches!(
            frame(&bad),
            Err(FrameError::Connection(Code::FrameSize, _))
        ));
    }

    #[test]
    fn headers_with_padding_and_priority() {
        let f = with(
            HEADERS,
            PADDED | PRIORITY_FLAG | END_HEADERS,
            5,
            &[1, 0, 0, 0, 3, 16, 0x82, 0],
        );
        assert_eq!(
            frame(&f),
            Ok(Frame::Headers {
                stream: 5,
                end_stream: false,
                end_headers: true,
                block: &[0x82]
            })
        );
        let own = with(HEADERS, PRIORITY_FLAG, 5, &[0, 0, 0, 5, 16, 0x82]);
        assert!(matches!(
            frame(&own),
            Err(FrameError::Stream(5, Code::Protocol, _))
        ));
        let short = with(HEADERS, PRIORITY_FLAG, 5, &[0, 0, 0]);
        assert!(matches!(
            frame(&short),
            Err(FrameError::Connection(Code::FrameSize, _))
        ));
    }

    #[test]
    fn control_frames_are_checked_as_section_6_says() {
        let conn_err = |f: &[u8], code: Code| {
            assert!(
                matches!(frame(f), Err(FrameError::Connection(c, _)) if c == code),
                "{f:?}: {:?}",
                frame(f)
            )
        };
        conn_err(&with(SETTINGS, 0, 1, &[]), Code::Protocol);
        conn_err(&with(SETTINGS, ACK, 0, &[0; 6]), Code::FrameSize);
        conn_err(&with(SETTINGS, 0, 0, &[0; 5]), Code::FrameSize);
        conn_err(&with(PING, 0, 0, &[0; 7]), Code::FrameSize);
        conn_err(&with(PING, 0, 1, &[0; 8]), Code::Protocol);
        conn_err(&with(RST_STREAM, 0, 1, &[0; 3]), Code::FrameSize);
        conn_err(&with(RST_STREAM, 0, 0, &[0; 4]), Code::Protocol);
        conn_err(&with(GOAWAY, 0, 0, &[0; 7]), Code::FrameSize);
        conn_err(&with(WINDOW_UPDATE, 0, 0, &[0; 4]), Code::Protocol);
        conn_err(&with(WINDOW_UPDATE, 0, 0, &[0; 3]), Code::FrameSize);
        conn_err(&with(PUSH_PROMISE, 0, 1, &[0; 4]), Code::Protocol);
        conn_err(&with(CONTINUATION, 0, 0, &[]), Code::Protocol);
        assert!(matches!(
            frame(&with(WINDOW_UPDATE, 0, 3, &[0; 4])),
            Err(FrameError::Stream(3, Code::Protocol, _))
        ));
        assert!(matches!(
            frame(&with(PRIORITY, 0, 3, &[0; 4])),
            Err(FrameError::Stream(3, Code::FrameSize, _))
        ));
        assert_eq!(frame(&with(0xfa, 0xff, 7, b"whatever")), Ok(Frame::Unknown));
        assert_eq!(
            frame(&with(PING, ACK, 0, b"12345678")),
            Ok(Frame::Ping {
                ack: true,
                data: *b"12345678"
            })
        );
    }

    #[test]
    fn settings_values_are_checked() {
        let read = |list: &[(u16, u32)]| {
            let mut out = Vec::new();
            write_settings(&mut out, list);
            let Ok(Frame::Settings { payload, .. }) = frame(&out) else {
                panic!("settings")
            };
            settings(payload).collect::<Result<Vec<_>, _>>()
        };
        assert_eq!(read(&[(3, 100), (99, 7)]), Ok(vec![(3, 100), (99, 7)]));
        assert!(read(&[(SETTINGS_ENABLE_PUSH, 2)]).is_err());
        assert!(read(&[(SETTINGS_INITIAL_WINDOW_SIZE, 1 << 31)]).is_err());
        assert!(read(&[(SETTINGS_MAX_FRAME_SIZE, 16_383)]).is_err());
        assert!(read(&[(SETTINGS_MAX_FRAME_SIZE, 1 << 24)]).is_err());
        assert!(read(&[(SETTINGS_MAX_FRAME_SIZE, (1 << 24) - 1)]).is_ok());
    }

    #[test]
    fn a_long_block_is_split_into_continuations() {
        let block = vec![0x82; 40_000];
        let mut out = Vec::new();
        write_headers(&mut out, 1, &block, true, DEFAULT_MAX_FRAME);
        let mut at = 0;
        let mut got = Vec::new();
        let mut kinds = Vec::new();
        while at < out.len() {
            let h = head(out[at..at + 9].try_into().unwrap());
            let p = &out[at + 9..at + 9 + h.len as usize];
            kinds.push((h.kind, h.flags));
            match parse(&h, p).unwrap() {
                Frame::Headers { block, .. } | Frame::Continuation { block, .. } => {
                    got.extend_from_slice(block)
                }
                f => panic!("{f:?}"),
            }
            at += 9 + h.len as usize;
        }
        assert_eq!(got, block);
        assert_eq!(
            kinds,
            [
                (HEADERS, END_STREAM),
                (CONTINUATION, 0),
                (CONTINUATION, END_HEADERS)
            ]
        );
    }
}
