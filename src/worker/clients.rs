//! The client connections part: the slab of `Conn`s (typed keys), the list of those with
//! bytes to flush this turn, and the timer wheel their deadlines are filed in. What
//! happens on a connection is in `flow.rs`; this is where connections live.

use crate::driver::Io;
use crate::transport::endpoint::CLIENT;
use crate::transport::{Key, Slab};

use super::accept::Accepted;
use super::conn::Conn;
use super::timer::Wheel;

pub(super) struct Clients {
    slab: Slab<Conn>,
    /// Connections with bytes queued to flush this turn.
    dirty: Vec<Key>,
    /// TLS connections whose handshake step waits for the next turn, oldest first.
    deferred: Vec<Key>,
    wheel: Wheel,
    fired: Vec<(u32, u32, u64)>,
    due: Vec<Key>,
    max: usize,
    /// Client addresses are looked up (getpeername) only if something needs them.
    need_peer: bool,
    /// `max_connections_per_ip`: the counts every worker shares.
    per_ip: Option<std::sync::Arc<crate::shield::table::ConnTable>>,
}

impl Clients {
    pub fn new(
        max: usize,
        need_peer: bool,
        per_ip: Option<std::sync::Arc<crate::shield::table::ConnTable>>,
    ) -> Clients {
        Clients {
            // Reserved up front, not grown: growth by doubling copies the slab and leaves
            // the old copies as heap holes that count against every idle connection. Pages
            // not yet used are never touched, so this costs no memory until they are.
            slab: Slab::with_capacity(max.min(1 << 20)),
            dirty: Vec::new(),
            deferred: Vec::new(),
            wheel: Wheel::new(0),
            fired: Vec::new(),
            due: Vec::new(),
            max,
            need_peer,
            per_ip,
        }
    }

    /// Takes a freshly accepted socket into a slot (reset from `Conn::new`). False with the
    /// key when its address is at `max_connections_per_ip` (the caller refuses it).
    pub fn open(&mut self, a: &Accepted, now: u64) -> (Key, bool) {
        let (sock, port) = (a.sock, a.port);
        let admin = a.kind == super::listener::ListenKind::Admin;
        let open = move |c: &mut Conn| c.open(sock, admin, port, now);
        let k = self.slab.insert(
            || {
                let mut c = Conn::new();
                open(&mut c);
                c
            },
            open,
        );
        // A registered descriptor has no getpeername (config validation keeps the two apart).
        if self.need_peer
            && let Some(fd) = a.fd
        {
            self.slab[k].peer = super::listener::peer_addr(fd);
        }
        // Behind a PROXY header the peer is the balancer, not a client: it is not counted.
        let proxied = a.kind == super::listener::ListenKind::Proxied;
        self.slab[k].await_proxy = proxied;
        if let Some(t) = self.per_ip.as_ref().filter(|_| !proxied)
            && let Some(ip) = self.slab[k].peer.map(|p| p.ip())
        {
            match t.acquire(ip) {
                Some(b) => self.slab[k].ip_bucket = Some(b),
                None => return (k, false),
            }
        }
        (k, true)
    }

    #[inline]
    pub fn get(&self, k: Key) -> Option<&Conn> {
        self.slab.get(k)
    }

    #[inline]
    pub fn get_mut(&mut self, k: Key) -> Option<&mut Conn> {
        self.slab.get_mut(k)
    }

    #[inline]
    pub fn len(&self) -> usize {
        self.slab.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slab.is_empty()
    }

    /// Below the connection cap.
    #[inline]
    pub fn room(&self) -> bool {
        self.slab.len() < self.max
    }

    /// The keys of every live connection (a snapshot: the caller may free some).
    pub fn keys(&self) -> Vec<Key> {
        self.slab.iter().map(|(k, _)| k).collect()
    }

    /// Queues `k`'s send queue for this turn's flush (once).
    #[inline]
    pub fn mark_dirty(&mut self, k: Key) {
        if let Some(c) = self.slab.get_mut(k)
            && !c.ep.dirty
        {
            c.ep.dirty = true;
            self.dirty.push(k);
        }
    }

    /// Hands every dirty connection's queued bytes to the kernel. Those whose bytes could
    /// not be prepared (TLS) are listed in `broken` for the caller to abort.
    pub fn flush(&mut self, io: &mut Io, zc_threshold: usize, broken: &mut Vec<Key>) {
        for &k in &self.dirty {
            if let Some(c) = self.slab.get_mut(k)
                && !c.ep.flush(io, k, &CLIENT, zc_threshold)
            {
                broken.push(k);
            }
        }
        self.dirty.clear();
    }

    #[inline]
    pub fn has_deferred(&self) -> bool {
        !self.deferred.is_empty()
    }

    pub fn defer_handshake(&mut self, k: Key) {
        self.deferred.push(k);
    }

    /// The deferred handshakes, to run; give back what is left with `put_back_deferred`
    /// (those deferred meanwhile are kept after them).
    pub fn take_deferred(&mut self) -> Vec<Key> {
        std::mem::take(&mut self.deferred)
    }

    pub fn put_back_deferred(&mut self, mut left: Vec<Key>) {
        left.append(&mut self.deferred);
        self.deferred = left;
    }

    /// Files `k` at `deadline` unless it is already filed no later.
    #[inline]
    pub fn schedule(&mut self, k: Key, deadline: u64) {
        let c = &mut self.slab[k];
        if c.wheel_tick == 0 || c.wheel_tick > deadline {
            c.wheel_tick = self.wheel.schedule(deadline, k.index, k.generation);
        }
    }

    /// The connections whose filed tick has come (and that are still filed there and not
    /// aborting): each is unfiled. Give the list back with `done_due`.
    pub fn take_due(&mut self, now: u64) -> Vec<Key> {
        let mut due = std::mem::take(&mut self.due);
        self.wheel.advance(now, &mut self.fired);
        for &(index, generation, filed) in &self.fired {
            let k = Key { index, generation };
            let Some(c) = self.slab.get_mut(k) else {
                continue; // stale entry: the slot moved on
            };
            if c.wheel_tick != filed {
                continue; // re-filed elsewhere
            }
            c.wheel_tick = 0;
            if !c.ep.aborting() {
                due.push(k);
            }
        }
        self.fired.clear();
        due
    }

    pub fn done_due(&mut self, mut due: Vec<Key>) {
        due.clear();
        self.due = due;
    }

    /// The socket is closed: the slot goes back to the slab, keeping no buffers (that is
    /// what makes 10k idle connections cheap) and nothing of this client.
    pub fn free(&mut self, k: Key) {
        let c = &mut self.slab[k];
        if let (Some(b), Some(t)) = (c.ip_bucket.take(), &self.per_ip) {
            t.release(b);
        }
        *c = Conn {
            ep: std::mem::take(&mut c.ep),
            ..Conn::new()
        };
        self.slab.remove(k);
    }

    /// Closes every socket still open (the worker is going away).
    pub fn release_sockets(&mut self) {
        for c in self.slab.values_mut() {
            if let Some(fd) = c.ep.take_fd() {
                crate::driver::close_owned(fd);
            }
        }
    }
}

impl std::ops::Index<Key> for Clients {
    type Output = Conn;
    fn index(&self, k: Key) -> &Conn {
        &self.slab[k]
    }
}

impl std::ops::IndexMut<Key> for Clients {
    fn index_mut(&mut self, k: Key) -> &mut Conn {
        &mut self.slab[k]
    }
}
