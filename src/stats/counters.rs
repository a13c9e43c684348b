//! Per-worker counters: plain integers owned by the worker thread (no atomics, no locks).

/// Connections given up on because a timeout ran out, by what was awaited. An idle
/// keep-alive connection reaching `keepalive_timeout` is not among them: that close is
/// the normal end of a connection (`Counters::idle_closes`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Timeouts {
    /// A request head (or the first byte of one) did not arrive in `header_timeout`.
    pub header: u64,
    /// A request body stalled past `body_timeout`.
    pub body: u64,
    /// The client did not take its response within `send_timeout`.
    pub send: u64,
    /// The upstream did not connect, take the request or answer in time (504).
    pub upstream: u64,
    /// No `max_conns` slot freed up within `queue_timeout` (503).
    pub queue: u64,
}

impl Timeouts {
    pub fn total(&self) -> u64 {
        self.header
            .saturating_add(self.body)
            .saturating_add(self.send)
            .saturating_add(self.upstream)
            .saturating_add(self.queue)
    }

    fn add(&mut self, o: &Timeouts) {
        self.header = self.header.saturating_add(o.header);
        self.body = self.body.saturating_add(o.body);
        self.send = self.send.saturating_add(o.send);
        self.upstream = self.upstream.saturating_add(o.upstream);
        self.queue = self.queue.saturating_add(o.queue);
    }
}

/// TLS handshakes on the TLS listeners: how they went, what they settled on, and why the
/// failed ones failed (indexed as `transport::tls::Failure::ALL`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TlsCounters {
    pub full: u64,
    pub resumed: u64,
    pub tls13: u64,
    pub tls12: u64,
    pub alpn_http11: u64,
    /// The client offered no ALPN.
    pub alpn_none: u64,
    pub failures: [u64; 6],
    /// close_notify received from clients.
    pub peer_close_notify: u64,
    /// Handshakes put off to a later loop turn by the per-turn cap.
    pub deferred: u64,
}

impl TlsCounters {
    pub fn failed(&self) -> u64 {
        self.failures.iter().fold(0u64, |a, &b| a.saturating_add(b))
    }

    fn add(&mut self, o: &TlsCounters) {
        let sum = |a: &mut u64, b: u64| *a = a.saturating_add(b);
        sum(&mut self.full, o.full);
        sum(&mut self.resumed, o.resumed);
        sum(&mut self.tls13, o.tls13);
        sum(&mut self.tls12, o.tls12);
        sum(&mut self.alpn_http11, o.alpn_http11);
        sum(&mut self.alpn_none, o.alpn_none);
        for (a, b) in self.failures.iter_mut().zip(o.failures) {
            sum(a, b);
        }
        sum(&mut self.peer_close_notify, o.peer_close_notify);
        sum(&mut self.deferred, o.deferred);
    }
}

#[derive(Clone, Debug, Default)]
pub struct Counters {
    pub accepts: u64,
    pub requests: u64,
    pub rejected: u64,
    pub status_2xx: u64,
    pub status_3xx: u64,
    pub status_4xx: u64,
    pub status_5xx: u64,
    pub bytes_in: u64,
    pub enobufs: u64,
    pub accept_errors: u64,
    pub timeouts: Timeouts,
    /// Idle keep-alive connections closed at `keepalive_timeout` (not an error).
    pub idle_closes: u64,
    pub bytes_out: u64,
    pub upstream_errors: u64,
    /// Proxied bodies moved socket -> pipe -> socket by splice.
    pub spliced_bodies: u64,
    /// Access-log lines dropped because the disk could not keep up, and failed writes.
    pub log_dropped_lines: u64,
    pub log_write_errors: u64,
    pub tls: TlsCounters,
    /// Requests refused (429) by a route's `limit`, all routes and by route index.
    pub limited: u64,
    pub limited_by_route: Vec<u64>,
    /// Connections refused by `max_connections_per_ip`.
    pub ip_refused: u64,
    /// Requests that waited for a max_conns slot; responses spilled to a temporary file;
    /// request bodies held in one.
    pub queued: u64,
    pub spilled_responses: u64,
    pub spooled_bodies: u64,
    /// 421s (a Host no site serves, or another site than the TLS server name's), 403s
    /// from a route's allow/deny, connections closed for a bad or missing PROXY header.
    pub misdirected: u64,
    pub forbidden: u64,
    pub proxy_header_errors: u64,
    /// Responses sent with a content coding, by `Codec::ALL`'s order (zstd, br, gzip):
    /// compressed by uringd or read from a precompressed sibling.
    pub compressed: [u64; 3],
}

impl Counters {
    pub fn count_status(&mut self, status: u16) {
        match status / 100 {
            2 => self.status_2xx += 1,
            3 => self.status_3xx += 1,
            4 => self.status_4xx += 1,
            5 => self.status_5xx += 1,
            _ => {} // 1xx are interim, not answers
        }
    }

    /// Adds another worker's counters (for merged views), saturating.
    pub fn add(&mut self, o: &Counters) {
        let sum = |a: &mut u64, b: u64| *a = a.saturating_add(b);
        sum(&mut self.accepts, o.accepts);
        sum(&mut self.requests, o.requests);
        sum(&mut self.rejected, o.rejected);
        sum(&mut self.status_2xx, o.status_2xx);
        sum(&mut self.status_3xx, o.status_3xx);
        sum(&mut self.status_4xx, o.status_4xx);
        sum(&mut self.status_5xx, o.status_5xx);
        sum(&mut self.bytes_in, o.bytes_in);
        sum(&mut self.bytes_out, o.bytes_out);
        sum(&mut self.enobufs, o.enobufs);
        sum(&mut self.accept_errors, o.accept_errors);
        self.timeouts.add(&o.timeouts);
        sum(&mut self.idle_closes, o.idle_closes);
        sum(&mut self.upstream_errors, o.upstream_errors);
        sum(&mut self.spliced_bodies, o.spliced_bodies);
        sum(&mut self.log_dropped_lines, o.log_dropped_lines);
        sum(&mut self.log_write_errors, o.log_write_errors);
        self.tls.add(&o.tls);
        sum(&mut self.limited, o.limited);
        if self.limited_by_route.len() < o.limited_by_route.len() {
            self.limited_by_route.resize(o.limited_by_route.len(), 0);
        }
        for (a, &b) in self.limited_by_route.iter_mut().zip(&o.limited_by_route) {
            sum(a, b);
        }
        sum(&mut self.ip_refused, o.ip_refused);
        sum(&mut self.queued, o.queued);
        sum(&mut self.spilled_responses, o.spilled_responses);
        sum(&mut self.spooled_bodies, o.spooled_bodies);
        sum(&mut self.misdirected, o.misdirected);
        sum(&mut self.forbidden, o.forbidden);
        sum(&mut self.proxy_header_errors, o.proxy_header_errors);
        for (a, &b) in self.compressed.iter_mut().zip(&o.compressed) {
            sum(a, b);
        }
    }

    /// Counts a response sent with this content coding.
    pub fn count_coding(&mut self, c: Option<crate::compress::Codec>) {
        if let Some(c) = c {
            self.compressed[c as usize] += 1;
        }
    }
}
