//! One load-generating thread: its own ring, provided buffers and connections, the same
//! io_uring building blocks as the server (multishot recv into a buffer ring, batched
//! sends from an OutQueue, CONNECT through a Connector).
//!
//! Times are nanoseconds since `t0`, the moment all threads finished connecting. Each loop
//! turn reads the clock once after waking, so every completion in a batch is stamped when
//! the thread saw it.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;

use super::reader::{Event, Reader};
use super::schedule::{Arrival, Schedule};
use super::tally::{ErrorKind, Tally};
use super::target::Target;
use super::usage::thread_cpu_ns;
use crate::driver::bufring::BufRing;
use crate::driver::connect::{Connector, stream_socket};
use crate::driver::outq::SendResult;
use crate::driver::uring::SetupOptions;
use crate::driver::{Choice, Completion, Driver, Io, Op, Sock, Token};
use crate::stats::series::{Hist, MAX_US, new_hist};
use crate::transport::endpoint::UPSTREAM;
use crate::transport::tls::Session;
use crate::transport::{Endpoint, Key, Ops, Received};

/// Bodies at least this large go out with SEND_ZC (the server's measured default).
const ZC_THRESHOLD: usize = 1 << 20;
/// Pause before reconnecting after a failed connect, so a dead server is not hammered.
const RECONNECT_BACKOFF_NS: u64 = 10_000_000;
/// Longest sleep: the stop flag is polled at least this often.
const MAX_WAIT_NS: u64 = 100_000_000;
/// How long the final close may take before the thread gives up waiting on the kernel.
const CLOSE_GRACE: Duration = Duration::from_secs(1);
const INTERVAL_NS: u64 = 1_000_000_000;

/// Everything the threads share, fixed before they start.
#[derive(Clone)]
pub struct RunPlan {
    /// The I/O backend every thread builds, and why.
    pub backend: Choice,
    /// The client TLS settings, when some URL is https://.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    pub targets: Vec<Target>,
    /// Targets grouped by address; connection j talks to group j % groups.len().
    pub groups: Vec<Vec<usize>>,
    pub conns: usize,
    pub threads: usize,
    pub cpus: Option<Vec<usize>>,
    pub pipeline: usize,
    pub timeout_ns: u64,
    pub warmup_ns: u64,
    pub duration_ns: u64,
    /// Open loop: total requests per second.
    pub rate: Option<f64>,
    pub arrival: Arrival,
    pub seed: u64,
}

/// All threads connect, then meet here; the first one through fixes t0 for all.
pub struct Gate {
    barrier: Barrier,
    t0: OnceLock<Instant>,
}

impl Gate {
    pub fn new(threads: usize) -> Gate {
        Gate {
            barrier: Barrier::new(threads),
            t0: OnceLock::new(),
        }
    }

    fn pass(&self) -> Instant {
        self.barrier.wait();
        *self.t0.get_or_init(Instant::now)
    }
}

/// How well the generator itself kept up.
#[derive(Clone)]
pub struct GenStats {
    /// CPU time of the thread during the measured window, and the window's length.
    pub cpu_ns: u64,
    pub wall_ns: u64,
    /// Open loop: how late the thread sent requests that a free connection was ready for.
    pub lag: Hist,
    /// Open loop: requests that found every connection busy when due.
    pub waited: u64,
    pub max_wait_ns: u64,
    /// Open loop: due before the end but never sent (every connection stayed busy).
    pub unsent: u64,
}

pub enum Report {
    /// One second of the measured window (index 0 is the first).
    Interval {
        thread: usize,
        index: u64,
        tally: Tally,
    },
    /// The last, partial interval and the thread's own figures.
    Done {
        thread: usize,
        index: u64,
        tally: Tally,
        stats: Box<GenStats>,
    },
    Failed {
        thread: usize,
        error: String,
    },
}

pub fn spawn(
    plan: Arc<RunPlan>,
    thread: usize,
    gate: Arc<Gate>,
    stop: Arc<AtomicBool>,
    tx: Sender<Report>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(format!("bench-{thread}"))
        .spawn(move || {
            if let Some(cpus) = &plan.cpus {
                let id = cpus[thread % cpus.len()];
                core_affinity::set_for_current(core_affinity::CoreId { id });
            }
            match Gen::new(plan, thread, stop, tx.clone()) {
                Ok(mut g) => g.run(&gate),
                Err(error) => {
                    // Let the others through the gate before saying why this one stopped.
                    gate.pass();
                    let _ = tx.send(Report::Failed { thread, error });
                }
            }
        })
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum State {
    /// No socket: waiting until `retry_at` (or done, once sending stopped).
    Down,
    Connecting,
    Open,
    /// The socket is closed; waiting for the kernel to finish the ops it still holds.
    Closing,
}

struct Sent {
    intended: u64,
    sent: u64,
    head: bool,
}

struct Conn {
    /// Its slot (fixed) and the generation of the current socket in it.
    key: Key,
    state: State,
    group: usize,
    rr: usize,
    /// The socket: receive state, send queue, connect (`transport::Endpoint`).
    ep: Endpoint,
    connect_started: u64,
    /// The connect was cancelled for taking too long: its ECANCELED is a connect error.
    connect_cancelled: bool,
    retry_at: u64,
    inflight: VecDeque<Sent>,
    reader: Reader,
    /// Listed in `ready` (open loop).
    listed: bool,
    /// The server announced close: finish reading, then reconnect.
    closing_after: bool,
}

struct Gen {
    io: Io,
    plan: Arc<RunPlan>,
    thread: usize,
    stop: Arc<AtomicBool>,
    tx: Sender<Report>,
    conns: Vec<Conn>,
    cqes: Vec<Completion>,
    dirty: Vec<usize>,
    t0: Instant,
    now: u64,
    measure_start: u64,
    end: u64,
    sending: bool,
    /// The gate was passed: connections that open now start sending at once.
    started: bool,
    inflight: usize,
    // Open loop.
    sched: Option<Schedule>,
    ready: VecDeque<usize>,
    /// Since when some connection has been ready without a break.
    free_since: Option<u64>,
    /// Intended times of requests to send again (the server closed before answering).
    retry: VecDeque<u64>,
    // Counting.
    tally: Tally,
    interval: u64,
    next_tick: u64,
    next_scan: u64,
    own: GenStats,
    cpu_at_start: u64,
}

/// The generator's connections are outgoing ones, like the server's upstreams.
const OPS: &Ops = &UPSTREAM;

impl Gen {
    fn new(
        plan: Arc<RunPlan>,
        thread: usize,
        stop: Arc<AtomicBool>,
        tx: Sender<Report>,
    ) -> Result<Gen, String> {
        // Connections are dealt out like cards: thread t gets t, t+T, t+2T, ...
        let mine: Vec<usize> = (thread..plan.conns).step_by(plan.threads).collect();
        let entries = (mine.len() * (plan.pipeline + 2)).clamp(64, 4096) as u32;
        let opts = SetupOptions {
            entries: entries.next_power_of_two(),
            ..SetupOptions::default()
        };
        let ring = Driver::new(plan.backend.kind, &opts)?;
        let nbufs = (mine.len() * 2).clamp(64, 4096).next_power_of_two() as u16;
        let io = BufRing::new(0, nbufs, 16 * 1024)
            .and_then(|bufs| Io::new(ring, bufs))
            .map_err(|e| {
                format!("cannot register receive buffers: {e} (is RLIMIT_MEMLOCK too low? `uringd doctor` tells)")
            })?;
        let conns = mine
            .iter()
            .enumerate()
            .map(|(i, &j)| {
                let group = j % plan.groups.len();
                let addr = plan.targets[plan.groups[group][0]].addr;
                let mut ep = Endpoint::default();
                ep.connector = Some(Connector::tcp(&addr));
                Conn {
                    key: Key {
                        index: i as u32,
                        generation: 0,
                    },
                    state: State::Down,
                    group,
                    rr: j / plan.groups.len(),
                    ep,
                    connect_started: 0,
                    connect_cancelled: false,
                    retry_at: 0,
                    inflight: VecDeque::with_capacity(plan.pipeline),
                    reader: Reader::default(),
                    listed: false,
                    closing_after: false,
                }
            })
            .collect();
        let sched = plan
            .rate
            .map(|r| Schedule::new(plan.arrival, r, thread, plan.threads, plan.seed));
        Ok(Gen {
            io,
            measure_start: plan.warmup_ns,
            end: plan.warmup_ns + plan.duration_ns,
            next_tick: plan.warmup_ns + INTERVAL_NS,
            plan,
            thread,
            stop,
            tx,
            conns,
            cqes: Vec::with_capacity(1024),
            dirty: Vec::new(),
            t0: Instant::now(),
            now: 0,
            sending: true,
            started: false,
            inflight: 0,
            sched,
            ready: VecDeque::new(),
            free_since: None,
            retry: VecDeque::new(),
            tally: Tally::default(),
            interval: 0,
            next_scan: 0,
            own: GenStats {
                cpu_ns: 0,
                wall_ns: 0,
                lag: new_hist(),
                waited: 0,
                max_wait_ns: 0,
                unsent: 0,
            },
            cpu_at_start: 0,
        })
    }

    fn open_loop(&self) -> bool {
        self.sched.is_some()
    }

    fn clock(&mut self) {
        self.now = self.t0.elapsed().as_nanos() as u64;
    }

    fn run(&mut self, gate: &Gate) {
        // Connect everything before the clock starts, so the first second is not a
        // connection storm measured as latency.
        for i in 0..self.conns.len() {
            self.connect(i);
        }
        while self.conns.iter().any(|c| c.state == State::Connecting) {
            if self.turn(MAX_WAIT_NS).is_err() || self.stop.load(Ordering::Relaxed) {
                break;
            }
            self.expire_connects();
        }
        self.t0 = gate.pass();
        self.now = 0;
        self.started = true;
        self.cpu_at_start = thread_cpu_ns();
        for i in 0..self.conns.len() {
            if self.conns[i].state == State::Open {
                self.became_open(i);
            }
        }
        if let Err(e) = self.main_loop() {
            let _ = self.tx.send(Report::Failed {
                thread: self.thread,
                error: format!("io_uring wait failed: {e}"),
            });
            return;
        }
        self.shutdown();
        let tally = std::mem::take(&mut self.tally);
        let _ = self.tx.send(Report::Done {
            thread: self.thread,
            index: self.interval,
            tally,
            stats: Box::new(self.own.clone()),
        });
    }

    fn main_loop(&mut self) -> std::io::Result<()> {
        loop {
            self.clock();
            if self.sending && (self.now >= self.end || self.stop.load(Ordering::Relaxed)) {
                self.stop_sending();
            }
            if self.sending && self.open_loop() {
                self.release_due();
            }
            if self.now >= self.next_tick {
                self.tick();
            }
            if self.now >= self.next_scan {
                self.scan();
            }
            self.flush_dirty();
            if !self.sending && self.inflight == 0 {
                return Ok(());
            }
            let wait = self.next_wake().saturating_sub(self.now).max(1);
            self.turn(wait)?;
        }
    }

    /// Submits, waits up to `wait_ns`, and handles what completed.
    fn turn(&mut self, wait_ns: u64) -> std::io::Result<()> {
        self.io.bufs().publish();
        self.io
            .driver()
            .submit_and_wait(Duration::from_nanos(wait_ns))?;
        self.clock();
        loop {
            let mut cqes = std::mem::take(&mut self.cqes);
            self.io.driver().drain(&mut cqes);
            let n = cqes.len();
            for c in &cqes {
                self.dispatch(*c);
            }
            self.cqes = cqes;
            if n < self.cqes.capacity() {
                return Ok(());
            }
        }
    }

    fn next_wake(&self) -> u64 {
        let mut t = self.now + MAX_WAIT_NS;
        t = t.min(self.next_tick).min(self.next_scan);
        if self.sending {
            t = t.min(self.end);
            if let Some(s) = &self.sched
                && (!self.ready.is_empty() || !self.retry.is_empty())
            {
                t = t.min(if self.retry.is_empty() {
                    s.peek()
                } else {
                    self.now
                });
            }
        }
        t
    }

    fn dispatch(&mut self, c: Completion) {
        let Some(t) = Token::unpack(c.user_data) else {
            return;
        };
        match t.op {
            Op::UpRecv => self.on_recv(t, c),
            Op::UpSend => self.on_send(t, c),
            Op::UpConnect => self.on_connect(t, c),
            // Close and cancel report only failures, which change nothing here.
            _ => {}
        }
    }

    fn live(&self, t: Token) -> Option<usize> {
        let i = t.index as usize;
        (self.conns.get(i)?.key == Key::of(t)).then_some(i)
    }

    // ---- connections -------------------------------------------------------------------

    fn connect(&mut self, i: usize) {
        let family = self.conns[i]
            .ep
            .connector
            .as_ref()
            .map_or(libc::AF_INET, |c| c.family());
        let fd = match stream_socket(family) {
            Ok(fd) => fd,
            Err(_) => {
                // Out of fds or memory: count it and try again later.
                self.tally.error(ErrorKind::Connect);
                let c = &mut self.conns[i];
                c.state = State::Down;
                c.retry_at = self.now + RECONNECT_BACKOFF_NS;
                return;
            }
        };
        let c = &mut self.conns[i];
        let connector = c.ep.connector.take();
        c.ep.open(Sock::from(fd), false, connector);
        c.state = State::Connecting;
        c.connect_started = self.now;
        c.connect_cancelled = false;
        c.closing_after = false;
        c.ep.connect(&mut self.io, c.key, OPS);
    }

    fn on_connect(&mut self, t: Token, cq: Completion) {
        let Some(i) = self.live(t) else { return };
        let c = &mut self.conns[i];
        let _ = c.ep.on_connect(&cq);
        if c.state != State::Connecting || cq.result < 0 {
            // Refused, unreachable, or cancelled because it took longer than --timeout.
            if cq.result < 0
                && self.sending
                && (c.state == State::Connecting || c.connect_cancelled)
            {
                self.tally.error(ErrorKind::Connect);
            }
            if c.state == State::Connecting {
                self.close(i);
            }
            self.conns[i].retry_at = self.now + RECONNECT_BACKOFF_NS;
            self.settle(i);
            return;
        }
        if !self.start_tls(i) {
            self.tally.error(ErrorKind::Tls);
            self.close(i);
            self.settle(i);
            return;
        }
        let c = &mut self.conns[i];
        c.state = State::Open;
        c.ep.want_input(&mut self.io, c.key, OPS);
        // Before t0 the opening waits for the gate (run() calls became_open then).
        if self.started {
            self.became_open(i);
        }
    }

    /// An https:// connection gets its session, whose ClientHello goes out at the next
    /// flush; requests queue behind the handshake. False if none could be made.
    fn start_tls(&mut self, i: usize) -> bool {
        let c = &mut self.conns[i];
        let group = &self.plan.groups[c.group];
        let (Some(cfg), Some(host)) = (&self.plan.tls, &self.plan.targets[group[0]].tls) else {
            return true;
        };
        let Ok(name) = super::tls::server_name(host) else {
            return false;
        };
        match Session::client(cfg.clone(), name) {
            Ok(s) => c.ep.tls = Some(Box::new(s)),
            Err(_) => return false,
        }
        if !c.ep.dirty {
            c.ep.dirty = true;
            self.dirty.push(i);
        }
        true
    }

    fn became_open(&mut self, i: usize) {
        if !self.sending {
            return;
        }
        if self.open_loop() {
            self.mark_ready(i);
        } else {
            for _ in 0..self.plan.pipeline {
                self.send_request(i, self.now);
            }
        }
    }

    /// Stops the socket's ops; it is closed, and the slot reused, once the kernel has
    /// returned them all (`settle`).
    fn close(&mut self, i: usize) {
        let c = &mut self.conns[i];
        if matches!(c.state, State::Down | State::Closing) {
            return;
        }
        if c.state == State::Connecting {
            c.connect_cancelled = true;
        }
        c.ep.abort(&mut self.io, c.key, OPS);
        c.state = State::Closing;
        c.retry_at = self.now;
    }

    /// A closing slot whose ops have all returned is closed, reset and reconnected.
    fn settle(&mut self, i: usize) {
        let c = &mut self.conns[i];
        if c.state != State::Closing || !c.ep.close_when_idle(&mut self.io, c.key) {
            return;
        }
        c.reader.reset();
        c.key.generation = c.key.generation.wrapping_add(1) & crate::driver::token::GEN_MASK;
        c.state = State::Down;
        if self.sending && c.retry_at <= self.now {
            self.connect(i);
        }
    }

    /// Every request still in flight on `i` failed with `kind`; then the slot closes.
    fn fail(&mut self, i: usize, kind: ErrorKind) {
        while let Some(s) = self.conns[i].inflight.pop_front() {
            self.inflight -= 1;
            self.tally.error(kind);
            if kind == ErrorKind::Timeout && s.intended >= self.measure_start {
                // Recorded at the time it was given, not dropped.
                let waited = (self.now - s.sent).min(self.plan.timeout_ns);
                self.tally.latency(s.sent - s.intended + waited, waited);
            }
        }
        self.close(i);
        self.settle(i);
    }

    // ---- sending -------------------------------------------------------------------------

    fn send_request(&mut self, i: usize, intended: u64) {
        let c = &mut self.conns[i];
        let group = &self.plan.groups[c.group];
        let ti = group[c.rr % group.len()];
        c.rr = c.rr.wrapping_add(1);
        let target = &self.plan.targets[ti];
        c.ep.out.push_shared(&target.request, ZC_THRESHOLD);
        c.inflight.push_back(Sent {
            intended,
            sent: self.now,
            head: target.head,
        });
        self.inflight += 1;
        if !c.ep.dirty {
            c.ep.dirty = true;
            self.dirty.push(i);
        }
    }

    fn flush_dirty(&mut self) {
        let mut broken = Vec::new();
        for k in 0..self.dirty.len() {
            let i = self.dirty[k];
            let c = &mut self.conns[i];
            if c.state == State::Open {
                if !c.ep.flush(&mut self.io, c.key, OPS, ZC_THRESHOLD) {
                    broken.push(i); // TLS could not encrypt
                }
            } else {
                c.ep.dirty = false;
            }
        }
        self.dirty.clear();
        for i in broken {
            self.fail(i, ErrorKind::Tls);
        }
    }

    fn on_send(&mut self, t: Token, cq: Completion) {
        let Some(i) = self.live(t) else { return };
        match self.conns[i].ep.on_send(&cq) {
            SendResult::Failed(_) if self.conns[i].state == State::Open => {
                self.fail(i, ErrorKind::Write)
            }
            SendResult::Progress if self.conns[i].ep.has_unsent() => {
                let c = &mut self.conns[i];
                if !c.ep.dirty && c.state == State::Open {
                    c.ep.dirty = true;
                    self.dirty.push(i);
                }
            }
            _ => {}
        }
        self.settle(i);
    }

    // ---- open loop -----------------------------------------------------------------------

    fn mark_ready(&mut self, i: usize) {
        let c = &mut self.conns[i];
        if c.listed || c.state != State::Open || c.closing_after {
            return;
        }
        if c.inflight.len() >= self.plan.pipeline {
            return;
        }
        c.listed = true;
        self.ready.push_back(i);
        if self.free_since.is_none() {
            self.free_since = Some(self.now);
        }
    }

    fn pop_ready(&mut self) -> Option<usize> {
        while let Some(i) = self.ready.pop_front() {
            let c = &mut self.conns[i];
            c.listed = false;
            if c.state == State::Open && !c.closing_after && c.inflight.len() < self.plan.pipeline {
                return Some(i);
            }
        }
        self.free_since = None;
        None
    }

    /// Sends every request that is due, on connections that can take one.
    fn release_due(&mut self) {
        loop {
            let (intended, from_retry) = match self.retry.front() {
                Some(&t) => (t, true),
                None => {
                    let Some(s) = &self.sched else { return };
                    let due = s.peek();
                    if due > self.now || due >= self.end {
                        return;
                    }
                    (due, false)
                }
            };
            let free_since = self.free_since;
            let Some(i) = self.pop_ready() else { return };
            if self.ready.is_empty() {
                self.free_since = None;
            }
            // The generator's own lateness: from when it could have sent (due, and a
            // connection free) to now. Waiting for a busy connection is the server's.
            let could = intended.max(free_since.unwrap_or(self.now));
            let lag = self.now.saturating_sub(could);
            if intended >= self.measure_start {
                let _ = self.own.lag.record((lag / 1000).clamp(1, MAX_US));
                if let Some(f) = free_since
                    && f > intended
                {
                    self.own.waited += 1;
                    self.own.max_wait_ns = self.own.max_wait_ns.max(f - intended);
                }
            }
            if from_retry {
                self.retry.pop_front();
            } else if let Some(s) = &mut self.sched {
                s.advance();
            }
            self.send_request(i, intended);
            self.mark_ready(i);
        }
    }

    // ---- receiving -----------------------------------------------------------------------

    fn on_recv(&mut self, t: Token, cq: Completion) {
        let buf = self.io.bufs_ref().take(cq.flags, cq.result);
        let Some(i) = self.live(t) else {
            if let Some(b) = buf {
                self.io.bufs().recycle(b);
            }
            return;
        };
        let what = self.conns[i].ep.on_recv(&cq);
        if what == Received::Data {
            if let Some(mut b) = buf {
                if self.now >= self.measure_start {
                    self.tally.bytes += cq.result.max(0) as u64;
                }
                let failed = if self.conns[i].ep.tls.is_some() {
                    let data = self.io.bufs().data_mut(&mut b);
                    let c = &mut self.conns[i];
                    let (failed, flush) = tls_consume(
                        c,
                        data,
                        &mut self.tally,
                        &mut self.inflight,
                        (self.now, self.measure_start),
                    );
                    if flush && !c.ep.dirty {
                        c.ep.dirty = true;
                        self.dirty.push(i);
                    }
                    failed
                } else {
                    let data = self.io.bufs_ref().data(&b);
                    consume(
                        &mut self.conns[i],
                        data,
                        &mut self.tally,
                        &mut self.inflight,
                        self.now,
                        self.measure_start,
                    )
                };
                self.io.bufs().recycle(b);
                self.after_data(i, failed);
            }
        } else if matches!(what, Received::Eof | Received::Failed(_))
            && self.conns[i].state == State::Open
        {
            self.on_eof(i);
        }
        // Out of buffers for a moment, or a multishot that ended without an EOF (a full
        // CQ): receive again rather than drop the connection.
        let c = &mut self.conns[i];
        if c.state == State::Open {
            c.ep.want_input(&mut self.io, c.key, OPS);
        }
        self.settle(i);
    }

    /// After responses were read: keep the connection busy, or close it.
    fn after_data(&mut self, i: usize, failed: Option<ErrorKind>) {
        if let Some(kind) = failed {
            self.fail(i, kind);
            return;
        }
        let c = &self.conns[i];
        if c.closing_after && c.reader.idle() {
            self.reconnect_after_close(i);
            return;
        }
        if !self.sending {
            return;
        }
        if self.open_loop() {
            self.mark_ready(i);
        } else {
            let want = self.plan.pipeline - self.conns[i].inflight.len().min(self.plan.pipeline);
            for _ in 0..want {
                self.send_request(i, self.now);
            }
        }
    }

    /// The server said close: requests it never answered were never processed (RFC 9112
    /// 9.6), so they go again on a fresh connection, keeping their intended times.
    fn reconnect_after_close(&mut self, i: usize) {
        while let Some(s) = self.conns[i].inflight.pop_back() {
            self.inflight -= 1;
            if self.open_loop() {
                self.retry.push_front(s.intended);
            }
        }
        self.close(i);
        self.settle(i);
    }

    fn on_eof(&mut self, i: usize) {
        let c = &mut self.conns[i];
        if let Some(Event::Done { status, .. }) = c.reader.eof()
            && let Some(s) = c.inflight.pop_front()
        {
            self.inflight -= 1;
            if s.intended >= self.measure_start {
                self.tally
                    .response(status, self.now - s.intended, self.now - s.sent);
            }
            self.reconnect_after_close(i);
            return;
        }
        if self.conns[i].inflight.is_empty() && self.conns[i].reader.idle() {
            // An idle keep-alive connection closed by the server: just reconnect.
            self.close(i);
            self.settle(i);
        } else {
            self.fail(i, ErrorKind::Read);
        }
    }

    // ---- time ----------------------------------------------------------------------------

    fn tick(&mut self) {
        let tally = std::mem::take(&mut self.tally);
        let _ = self.tx.send(Report::Interval {
            thread: self.thread,
            index: self.interval,
            tally,
        });
        self.interval += 1;
        self.next_tick += INTERVAL_NS;
    }

    /// Timeouts, stalled connects and reconnect back-off: a scan every few milliseconds,
    /// cheaper than a timer per request.
    fn scan(&mut self) {
        let timeout = self.plan.timeout_ns;
        self.next_scan = self.now + (timeout / 8).clamp(1_000_000, 10_000_000);
        for i in 0..self.conns.len() {
            let c = &self.conns[i];
            match c.state {
                State::Open => {
                    if let Some(s) = c.inflight.front()
                        && self.now.saturating_sub(s.sent) >= timeout
                    {
                        self.fail(i, ErrorKind::Timeout);
                    }
                }
                State::Connecting => self.expire_connect(i),
                State::Down => {
                    if self.sending && c.retry_at <= self.now {
                        self.connect(i);
                    }
                }
                State::Closing => {}
            }
        }
    }

    fn expire_connects(&mut self) {
        self.clock();
        for i in 0..self.conns.len() {
            self.expire_connect(i);
        }
    }

    fn expire_connect(&mut self, i: usize) {
        let c = &self.conns[i];
        if c.state == State::Connecting
            && self.now.saturating_sub(c.connect_started) >= self.plan.timeout_ns
        {
            // The CONNECT completes with ECANCELED and is counted there.
            self.close(i);
            self.settle(i);
        }
    }

    fn stop_sending(&mut self) {
        self.sending = false;
        self.own.wall_ns = self.now.saturating_sub(self.measure_start).max(1);
        self.own.cpu_ns = thread_cpu_ns().saturating_sub(self.cpu_at_start);
        // Requests that were due but never found a free connection.
        if let Some(s) = &mut self.sched {
            let end = self.end.min(self.now);
            while s.peek() < end {
                if s.peek() >= self.measure_start {
                    self.own.unsent += 1;
                }
                s.advance();
            }
        }
        self.own.unsent += self.retry.len() as u64;
        self.retry.clear();
    }

    /// Closes every connection and waits (briefly) for the kernel to let go of them.
    fn shutdown(&mut self) {
        for i in 0..self.conns.len() {
            self.close(i);
            self.settle(i);
        }
        let until = Instant::now() + CLOSE_GRACE;
        while self.conns.iter().any(|c| c.state == State::Closing) && Instant::now() < until {
            if self.turn(10_000_000).is_err() {
                break;
            }
        }
        if self.conns.iter().all(|c| c.state != State::Closing) {
            self.io.receives_done();
        }
    }
}

/// Feeds received bytes to the connection's reader, recording each response. Returns the
/// error that ends the connection, if one did.
fn consume(
    c: &mut Conn,
    data: &[u8],
    tally: &mut Tally,
    inflight: &mut usize,
    now: u64,
    measure_start: u64,
) -> Option<ErrorKind> {
    let mut pos = 0;
    while pos < data.len() {
        let head = c.inflight.front().map(|s| s.head);
        let Some(head) = head else {
            // Bytes nobody asked for.
            tally.error(ErrorKind::Parse);
            return Some(ErrorKind::Read);
        };
        let (n, ev) = c.reader.feed(&data[pos..], head);
        pos += n;
        match ev {
            None => {}
            Some(Event::Done { status, close }) => {
                if let Some(s) = c.inflight.pop_front() {
                    *inflight -= 1;
                    if s.intended >= measure_start {
                        tally.response(status, now - s.intended, now - s.sent);
                    }
                }
                if close {
                    c.closing_after = true;
                    return None;
                }
            }
            Some(Event::Invalid(_)) => {
                if c.inflight.pop_front().is_some() {
                    *inflight -= 1;
                    tally.error(ErrorKind::Parse);
                }
                return Some(ErrorKind::Read);
            }
        }
    }
    None
}

/// Ciphertext for an https:// connection: each record's plaintext goes to the reader as
/// plain bytes would. Returns the error that ends the connection, if one did, and whether
/// the session has bytes to send (the handshake's end, requests that waited for it).
fn tls_consume(
    c: &mut Conn,
    data: &mut [u8],
    tally: &mut Tally,
    inflight: &mut usize,
    (now, measure_start): (u64, u64),
) -> (Option<ErrorKind>, bool) {
    let Some(mut s) = c.ep.tls.take() else {
        return (None, false);
    };
    let mut failed = None;
    let p = s.receive(data, &mut |plain: &[u8]| {
        if failed.is_none() {
            failed = consume(c, plain, tally, inflight, now, measure_start);
        }
    });
    c.ep.tls = Some(s);
    if let Some(e) = p.established
        && now >= measure_start
    {
        tally.handshakes[usize::from(e.resumed)] += 1;
    }
    if p.failed.is_some() {
        // Each request in flight on it is then a `tls` error (`Gen::fail`).
        return (Some(ErrorKind::Tls), false);
    }
    (failed, c.ep.has_unsent())
}
