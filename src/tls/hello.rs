//! The server name (SNI) a client's ClientHello asks for, read from the connection's first
//! bytes beside rustls (its unbuffered server connection does not say which name it
//! served). Needed per connection: a request whose Host names another site than the one
//! the handshake chose gets 421 (no domain fronting between sites). Pure, fuzzed
//! (`fuzz_targets/client_hello.rs`); handles a hello split across records and reads.

/// Past this many bytes without a whole ClientHello the connection is given up on (rustls
/// refuses far smaller hellos than this anyway).
pub const MAX_HELLO: usize = 20 * 1024;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sni {
    /// The hello is not complete yet: call again with more bytes (all of them so far).
    Incomplete,
    /// The client named no server.
    Absent,
    /// The host name, as sent (the caller lowercases it).
    Name(Vec<u8>),
    /// Not a ClientHello this reader understands (rustls will likely refuse it too).
    Invalid,
}

/// Reads the ClientHello at the start of `wire` (TLS records as received).
pub fn server_name(wire: &[u8]) -> Sni {
    // Reassemble the handshake message from as many records as it spans.
    let mut msg = Vec::new();
    let mut at = 0;
    let need = loop {
        if msg.len() >= 4 {
            let len = u32::from_be_bytes([0, msg[1], msg[2], msg[3]]) as usize;
            if msg[0] != 1 || len + 4 > MAX_HELLO {
                return Sni::Invalid;
            }
            if msg.len() >= len + 4 {
                break len + 4;
            }
        }
        let Some(rec) = wire.get(at..at + 5) else {
            return incomplete(wire);
        };
        if rec[0] != 22 || rec[1] != 3 {
            return Sni::Invalid;
        }
        let len = usize::from(u16::from_be_bytes([rec[3], rec[4]]));
        if len == 0 || len > 16 * 1024 + 256 {
            return Sni::Invalid;
        }
        let Some(frag) = wire.get(at + 5..at + 5 + len) else {
            return incomplete(wire);
        };
        msg.extend_from_slice(frag);
        at += 5 + len;
    };
    hello(&msg[4..need]).unwrap_or(Sni::Invalid)
}

fn incomplete(wire: &[u8]) -> Sni {
    if wire.len() > MAX_HELLO {
        Sni::Invalid
    } else {
        Sni::Incomplete
    }
}

/// A cursor over a message's bytes; every read is bounds-checked.
struct Cur<'a>(&'a [u8]);

impl<'a> Cur<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (a, b) = (self.0.get(..n)?, self.0.get(n..)?);
        self.0 = b;
        Some(a)
    }

    fn u8(&mut self) -> Option<usize> {
        self.take(1).map(|b| usize::from(b[0]))
    }

    fn u16(&mut self) -> Option<usize> {
        self.take(2)
            .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
    }

    /// A vector with a length prefix of `width` bytes.
    fn vec(&mut self, width: usize) -> Option<Cur<'a>> {
        let n = if width == 1 { self.u8()? } else { self.u16()? };
        self.take(n).map(Cur)
    }
}

fn hello(body: &[u8]) -> Option<Sni> {
    let mut c = Cur(body);
    c.take(2 + 32)?; // legacy_version, random
    c.vec(1)?; // legacy_session_id
    c.vec(2)?; // cipher_suites
    c.vec(1)?; // legacy_compression_methods
    if c.0.is_empty() {
        return Some(Sni::Absent); // no extensions at all (TLS 1.2 allows it)
    }
    let mut exts = c.vec(2)?;
    while !exts.0.is_empty() {
        let kind = exts.u16()?;
        let mut data = exts.vec(2)?;
        if kind != 0 {
            continue;
        }
        let mut list = data.vec(2)?;
        while !list.0.is_empty() {
            let name_type = list.u8()?;
            let name = list.vec(2)?;
            if name_type == 0 {
                let n = name.0;
                let ok = !n.is_empty() && n.iter().all(|&b| b.is_ascii_graphic());
                return Some(if ok {
                    Sni::Name(n.to_vec())
                } else {
                    Sni::Invalid
                });
            }
        }
        return Some(Sni::Absent);
    }
    Some(Sni::Absent)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ClientHello naming `name` (or none), with one other extension before it.
    fn hello_bytes(name: Option<&str>) -> Vec<u8> {
        let mut body = vec![3, 3];
        body.extend_from_slice(&[7; 32]);
        body.push(0); // session id
        body.extend_from_slice(&[0, 2, 0x13, 0x01]);
        body.extend_from_slice(&[1, 0]);
        let mut exts = vec![0, 10, 0, 4, 0, 2, 0, 29]; // supported_groups
        if let Some(n) = name {
            let n = n.as_bytes();
            let entry_len = 3 + n.len();
            exts.extend_from_slice(&[0, 0]);
            exts.extend_from_slice(&((entry_len + 2) as u16).to_be_bytes());
            exts.extend_from_slice(&(entry_len as u16).to_be_bytes());
            exts.push(0);
            exts.extend_from_slice(&(n.len() as u16).to_be_bytes());
            exts.extend_from_slice(n);
        }
        body.extend_from_slice(&(exts.len() as u16).to_be_bytes());
        body.extend_from_slice(&exts);
        let mut msg = vec![1, 0];
        msg.extend_from_slice(&(body.len() as u16).to_be_bytes());
        msg.extend_from_slice(&body);
        msg
    }

    fn records(msg: &[u8], size: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for part in msg.chunks(size) {
            out.extend_from_slice(&[22, 3, 1]);
            out.extend_from_slice(&(part.len() as u16).to_be_bytes());
            out.extend_from_slice(part);
        }
        out
    }

    #[test]
    fn reads_the_name_from_one_record_or_many_and_from_every_prefix() {
        let msg = hello_bytes(Some("A.test"));
        for size in [msg.len(), 10, 1] {
            let wire = records(&msg, size);
            assert_eq!(server_name(&wire), Sni::Name(b"A.test".to_vec()), "{size}");
            for n in 0..wire.len() {
                assert_eq!(server_name(&wire[..n]), Sni::Incomplete, "{size} {n}");
            }
        }
        let mut more = records(&msg, msg.len());
        more.extend_from_slice(&[23, 3, 3, 0, 1, 0]);
        assert_eq!(server_name(&more), Sni::Name(b"A.test".to_vec()));
    }

    #[test]
    fn no_name_and_not_a_hello() {
        assert_eq!(server_name(&records(&hello_bytes(None), 4096)), Sni::Absent);
        assert_eq!(server_name(b"GET / HTTP/1.1\r\n"), Sni::Invalid);
        let mut server_hello = hello_bytes(Some("a"));
        server_hello[0] = 2;
        assert_eq!(server_name(&records(&server_hello, 4096)), Sni::Invalid);
        let mut short = hello_bytes(Some("a.test"));
        short.truncate(20);
        let len = (short.len() - 4) as u16;
        short[2..4].copy_from_slice(&len.to_be_bytes());
        assert_eq!(server_name(&records(&short, 4096)), Sni::Invalid);
    }
}
