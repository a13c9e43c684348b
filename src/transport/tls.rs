//! The TLS session of a connection, between the socket and the codec: rustls's unbuffered
//! API driven from completions. Ciphertext arrives in the receive buffer and is decrypted
//! there (rustls copies each record's plaintext out once); plaintext the codec queued is
//! encrypted at flush time straight into the wire queue, one send for the batch of records.
//!
//! The same session serves both sides (a client connection to the server, an upstream or
//! load-generator connection from it): only the rustls connection type differs.

use rustls::client::UnbufferedClientConnection;
use rustls::server::UnbufferedServerConnection;
use rustls::unbuffered::{
    ConnectionState, EncodeError, EncryptError, InsufficientSizeError, UnbufferedStatus,
};
use rustls::{CommonState, HandshakeKind, ProtocolVersion};

use crate::driver::outq::OutQueue;

/// Encrypt ahead of the socket by at most this much: a large body is pulled through in
/// steps as the kernel takes it, not encrypted whole into memory.
const WIRE_AHEAD: usize = 256 * 1024;
/// Plaintext taken per encrypt call (four full records).
const CHUNK: usize = 64 * 1024;
/// Unprocessed input a peer may leave: a full record and then some. More is an attack.
const PENDING_MAX: usize = 64 * 1024;
/// Per-record room for the header, tag and padding, over the plaintext.
const RECORD_OVERHEAD: usize = 64;
const MAX_RECORD: usize = 16 * 1024;

enum Peer {
    Server(Box<UnbufferedServerConnection>),
    Client(Box<UnbufferedClientConnection>),
}

/// Runs `$body` with `$c` bound to the rustls connection, whichever side it is.
macro_rules! each {
    ($peer:expr, $c:ident => $body:expr) => {
        match $peer {
            Peer::Server($c) => $body,
            Peer::Client($c) => $body,
        }
    };
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Handshaking,
    Open,
    Failed,
}

/// Why a session ended badly, for the failure counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The first bytes were plain HTTP, not a TLS record.
    PlainHttp,
    /// The peer's records or messages did not parse (a garbage hello, say).
    Malformed,
    /// No protocol version, cipher suite, group or ALPN in common.
    Incompatible,
    /// A certificate was missing, or did not verify.
    Certificate,
    /// The peer sent a fatal alert (it refused our certificate, typically).
    Alert,
    /// Anything else rustls refused.
    Other,
}

impl Failure {
    pub const ALL: [Failure; 6] = [
        Failure::PlainHttp,
        Failure::Malformed,
        Failure::Incompatible,
        Failure::Certificate,
        Failure::Alert,
        Failure::Other,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Failure::PlainHttp => "plain_http",
            Failure::Malformed => "malformed",
            Failure::Incompatible => "incompatible",
            Failure::Certificate => "certificate",
            Failure::Alert => "alert",
            Failure::Other => "other",
        }
    }

    fn of(e: &rustls::Error) -> Failure {
        use rustls::Error as E;
        match e {
            E::InvalidMessage(_)
            | E::InappropriateMessage { .. }
            | E::InappropriateHandshakeMessage { .. }
            | E::DecryptError => Failure::Malformed,
            E::PeerIncompatible(_) | E::NoApplicationProtocol => Failure::Incompatible,
            E::InvalidCertificate(_) | E::NoCertificatesPresented => Failure::Certificate,
            E::AlertReceived(_) => Failure::Alert,
            _ => Failure::Other,
        }
    }
}

/// What the handshake settled on, once it is done.
#[derive(Clone, Copy, Debug)]
pub struct Established {
    pub resumed: bool,
    pub tls13: bool,
    /// ALPN chose http/1.1 (false: no ALPN).
    pub alpn_http11: bool,
}

/// What one batch of input did.
#[derive(Debug, Default)]
pub struct Progress {
    /// The handshake finished in this batch (the peer's Finished was read).
    pub established: Option<Established>,
    /// The peer sent close_notify: it will send nothing more.
    pub peer_closed: bool,
    /// The session failed: close the connection (after sending what is queued: an alert,
    /// or for `PlainHttp` the caller's plain answer).
    pub failed: Option<Failure>,
}

pub struct Session {
    peer: Peer,
    phase: Phase,
    /// Received bytes rustls has not consumed yet (a record cut by the end of a receive).
    pending: Vec<u8>,
    /// Ciphertext for the socket: what the endpoint really sends.
    pub wire: OutQueue,
    close_queued: bool,
    /// Application data could be sent once (the phase may have failed since).
    opened: bool,
    /// The handshake's end was reported (`Progress::established`).
    reported: bool,
    /// Nothing has arrived yet (the plain-HTTP check looks at the first byte).
    fresh: bool,
}

impl Session {
    pub fn server(cfg: std::sync::Arc<rustls::ServerConfig>) -> Result<Session, rustls::Error> {
        Ok(Session::of(Peer::Server(Box::new(
            UnbufferedServerConnection::new(cfg)?,
        ))))
    }

    pub fn client(
        cfg: std::sync::Arc<rustls::ClientConfig>,
        name: rustls::pki_types::ServerName<'static>,
    ) -> Result<Session, rustls::Error> {
        let mut s = Session::of(Peer::Client(Box::new(UnbufferedClientConnection::new(
            cfg, name,
        )?)));
        // A client speaks first: its hello is ready to encode now.
        s.pump(&mut Progress::default())?;
        Ok(s)
    }

    fn of(peer: Peer) -> Session {
        Session {
            peer,
            phase: Phase::Handshaking,
            pending: Vec::new(),
            wire: OutQueue::default(),
            close_queued: false,
            opened: false,
            reported: false,
            fresh: true,
        }
    }

    pub fn handshaking(&self) -> bool {
        self.phase == Phase::Handshaking
    }

    pub fn failed(&self) -> bool {
        self.phase == Phase::Failed
    }

    /// Application data could be sent at some point (a client's request may have left).
    pub fn was_open(&self) -> bool {
        self.opened
    }

    fn common(&self) -> &CommonState {
        each!(&self.peer, c => c)
    }

    /// Takes received ciphertext (the receive buffer, decrypted in place), hands every
    /// plaintext record to `plain` in order, and queues what the session must send
    /// (handshake messages, alerts) on the wire.
    pub fn receive(&mut self, data: &mut [u8], plain: &mut dyn FnMut(&[u8])) -> Progress {
        let mut p = Progress::default();
        if self.phase == Phase::Failed {
            return p;
        }
        if self.fresh
            && let Some(&first) = self.pending.first().or(data.first())
        {
            self.fresh = false;
            // A TLS connection starts with a handshake record (22); a letter is a method.
            if first.is_ascii_uppercase() && matches!(self.peer, Peer::Server(_)) {
                self.phase = Phase::Failed;
                p.failed = Some(Failure::PlainHttp);
                return p;
            }
        }
        let r = if self.pending.is_empty() {
            self.run(data, plain, &mut p).map(|used| {
                self.pending.extend_from_slice(&data[used..]);
            })
        } else {
            let mut buf = std::mem::take(&mut self.pending);
            buf.extend_from_slice(data);
            let r = self.run(&mut buf, plain, &mut p).map(|used| {
                buf.drain(..used);
            });
            // An idle connection keeps no input buffer (most records fit one receive).
            if !buf.is_empty() {
                self.pending = buf;
            }
            r
        };
        if let Err(e) = r {
            p.failed = Some(self.fail(&e));
        } else if self.pending.len() > PENDING_MAX {
            p.failed = Some(self.fail(&rustls::Error::General("record too large".into())));
        }
        if self.phase == Phase::Open {
            self.opened = true;
        }
        // Done when both directions carry data: a TLS 1.3 server may send from its first
        // flight, but the handshake ends with the client's Finished.
        if !self.reported && self.phase == Phase::Open && !self.common().is_handshaking() {
            self.reported = true;
            let c = self.common();
            p.established = Some(Established {
                resumed: c.handshake_kind() == Some(HandshakeKind::Resumed),
                tls13: c.protocol_version() == Some(ProtocolVersion::TLSv1_3),
                alpn_http11: c.alpn_protocol() == Some(b"http/1.1"),
            });
        }
        p
    }

    /// Keeps received bytes for a later `receive` (the handshake was put off). False if the
    /// peer has sent more than a handshake can need meanwhile.
    pub fn defer(&mut self, data: &[u8]) -> bool {
        self.pending.extend_from_slice(data);
        self.pending.len() <= PENDING_MAX
    }

    /// Processes the complete records in `buf`; returns how many bytes were consumed (the
    /// rest is an unfinished record, kept for the next receive).
    fn run(
        &mut self,
        buf: &mut [u8],
        plain: &mut dyn FnMut(&[u8]),
        p: &mut Progress,
    ) -> Result<usize, rustls::Error> {
        let mut used = 0;
        loop {
            let (discard, go_on) = each!(&mut self.peer, c => {
                let st = c.process_tls_records(&mut buf[used..]);
                step(st, &mut self.wire, &mut self.phase, Some(&mut *plain), p)?
            });
            used += discard;
            if !go_on {
                return Ok(used);
            }
        }
    }

    /// Moves the session on without new input (queues what it has to send).
    fn pump(&mut self, p: &mut Progress) -> Result<(), rustls::Error> {
        loop {
            let pending = &mut self.pending;
            let r = each!(&mut self.peer, c => {
                let st = c.process_tls_records(pending);
                step(st, &mut self.wire, &mut self.phase, None, p)
            });
            let (discard, go_on) = r?;
            debug_assert_eq!(discard, 0, "pending holds only an unfinished record");
            if !go_on {
                return Ok(());
            }
        }
    }

    /// Encrypts plaintext the codec queued into the wire queue, up to `WIRE_AHEAD` bytes
    /// ahead of the socket. Does nothing until the handshake is done.
    pub fn encrypt(&mut self, out: &mut OutQueue) -> Result<(), rustls::Error> {
        if self.phase != Phase::Open {
            return Ok(());
        }
        while !out.is_empty() && self.wire.len() < WIRE_AHEAD {
            let wire = &mut self.wire;
            let mut failed = None;
            // Always the kept input, never an empty slice: rustls may hold a handshake
            // message joined in place there (a post-handshake one cut across receives), and
            // remembers where.
            let pending = &mut self.pending;
            each!(&mut self.peer, c => {
                let st = c.process_tls_records(pending);
                match st.state? {
                    ConnectionState::WriteTraffic(mut w) => {
                        let read = out.take_front(CHUNK, &mut |chunk: &[u8]| {
                            if failed.is_none()
                                && let Err(e) = seal(wire, chunk, |d, o| w.encrypt(d, o))
                            {
                                failed = Some(e);
                            }
                        });
                        if let Err(e) = read {
                            failed = Some(rustls::Error::General(format!("reading a file: {e}")));
                        }
                    }
                    // Post-handshake messages first (a TLS 1.3 ticket, a key update).
                    other => {
                        let mut p = Progress::default();
                        if !step_state(other, wire, &mut self.phase, None, &mut p)? {
                            break; // nothing more it can do without input
                        }
                    }
                }
            });
            if let Some(e) = failed {
                return Err(e);
            }
        }
        Ok(())
    }

    /// Queues close_notify (once): the peer can tell our close from a cut connection.
    pub fn close_notify(&mut self) {
        if self.close_queued || self.phase != Phase::Open {
            return;
        }
        self.close_queued = true;
        let (wire, pending) = (&mut self.wire, &mut self.pending);
        each!(&mut self.peer, c => {
            if let Ok(ConnectionState::WriteTraffic(mut w)) = c.process_tls_records(pending).state {
                let _ = seal(wire, &[], |_, o| w.queue_close_notify(o));
            }
        });
    }

    /// Marks the session failed and queues the alert rustls prepared for the peer.
    fn fail(&mut self, e: &rustls::Error) -> Failure {
        self.phase = Phase::Failed;
        // rustls hands out what it queued (the fatal alert) before anything else; it is
        // asked only while something is queued, because past that it would read the input
        // again, which after an error no longer matches what it remembers of it.
        while self.common().wants_write() {
            let (wire, pending) = (&mut self.wire, &mut self.pending);
            let encoded = each!(&mut self.peer, c => match c.process_tls_records(pending).state {
                Ok(ConnectionState::EncodeTlsData(mut e)) => encode(wire, &mut e).is_ok(),
                _ => false,
            });
            if !encoded {
                break;
            }
        }
        Failure::of(e)
    }
}

/// Where decrypted application data goes.
type Plain<'a> = &'a mut dyn FnMut(&[u8]);

/// Handles one status: returns (bytes to discard, whether to call rustls again).
fn step<D>(
    st: UnbufferedStatus<'_, '_, D>,
    wire: &mut OutQueue,
    phase: &mut Phase,
    plain: Option<Plain<'_>>,
    p: &mut Progress,
) -> Result<(usize, bool), rustls::Error> {
    let UnbufferedStatus { discard, state } = st;
    let go_on = step_state(state?, wire, phase, plain, p)?;
    Ok((discard, go_on))
}

fn step_state<D>(
    state: ConnectionState<'_, '_, D>,
    wire: &mut OutQueue,
    phase: &mut Phase,
    plain: Option<Plain<'_>>,
    p: &mut Progress,
) -> Result<bool, rustls::Error> {
    Ok(match state {
        ConnectionState::ReadTraffic(mut r) => {
            let Some(plain) = plain else {
                debug_assert!(false, "records are read only with input");
                return Ok(false);
            };
            while let Some(rec) = r.next_record() {
                plain(rec?.payload);
            }
            true
        }
        ConnectionState::EncodeTlsData(mut e) => {
            encode(wire, &mut e)?;
            true
        }
        // Queued on the wire is as good as sent: the endpoint sends in order.
        ConnectionState::TransmitTlsData(t) => {
            t.done();
            true
        }
        ConnectionState::WriteTraffic(_) => {
            if *phase == Phase::Handshaking {
                *phase = Phase::Open;
            }
            false
        }
        ConnectionState::BlockedHandshake => false,
        ConnectionState::PeerClosed => {
            p.peer_closed = true;
            true
        }
        ConnectionState::Closed => {
            p.peer_closed = true;
            false
        }
        // Early data is never accepted (max_early_data_size is 0), and a future state we
        // do not know: stop and let the caller close.
        _ => return Err(rustls::Error::General("unexpected TLS state".into())),
    })
}

fn encode<D>(
    wire: &mut OutQueue,
    e: &mut rustls::unbuffered::EncodeTlsData<'_, D>,
) -> Result<(), rustls::Error> {
    seal(wire, &[], |_, o| e.encode(o)).map_err(|_| rustls::Error::EncryptError)
}

/// Something that writes `data` (as TLS records) into an output slice, failing with the
/// size it needs when the slice is too small.
trait SealErr {
    fn required(&self) -> Option<usize>;
}

impl SealErr for EncryptError {
    fn required(&self) -> Option<usize> {
        match self {
            EncryptError::InsufficientSize(InsufficientSizeError { required_size }) => {
                Some(*required_size)
            }
            _ => None,
        }
    }
}

impl SealErr for EncodeError {
    fn required(&self) -> Option<usize> {
        match self {
            EncodeError::InsufficientSize(InsufficientSizeError { required_size }) => {
                Some(*required_size)
            }
            _ => None,
        }
    }
}

/// Runs `f` on room at the end of the wire queue's byte buffer (grown to what it needs).
fn seal<E: SealErr>(
    wire: &mut OutQueue,
    data: &[u8],
    mut f: impl FnMut(&[u8], &mut [u8]) -> Result<usize, E>,
) -> Result<(), rustls::Error> {
    let v = wire.bytes();
    let start = v.len();
    let mut room = data.len() + data.len().div_ceil(MAX_RECORD).max(1) * RECORD_OVERHEAD;
    for _ in 0..2 {
        v.resize(start + room, 0);
        match f(data, &mut v[start..]) {
            Ok(n) => {
                v.truncate(start + n);
                wire.commit(n);
                return Ok(());
            }
            Err(e) => match e.required() {
                Some(need) => room = need,
                None => break,
            },
        }
    }
    v.truncate(start);
    Err(rustls::Error::EncryptError)
}
