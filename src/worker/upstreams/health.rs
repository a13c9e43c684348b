//! Active health checks: per worker, per server, every `health_interval` with +-10% jitter
//! (so workers do not probe in lockstep): `GET health_path` on a fresh connection, as HTTP
//! or as a uwsgi request, 2xx/3xx being healthy. (Not the uwsgi ping packet: Debian's uWSGI
//! does not load the ping plugin and just closes, and a GET checks the app, not only the
//! socket.) A probe that fails, times out or gets another answer takes the server out until
//! a later probe succeeds.

use std::net::{IpAddr, Ipv4Addr};

use crate::config::upstream::Proto;
use crate::driver::Io;
use crate::http::parser::{self, Limits};
use crate::proxy::resphead::{RespError, parse_response_head};
use crate::proxy::uwsgi::{self, UwsgiVars};
use crate::transport::Key;

use super::super::ctx::{Ctx, to_ticks};
use super::Upstreams;

impl Upstreams {
    /// A request to a server failed (passive health); says so when that takes the server
    /// out of rotation.
    pub fn server_failed(&mut self, ctx: &Ctx, pool: usize, server: usize) {
        let pc = &ctx.cfg.pools[pool];
        let window = to_ticks(pc.fail_timeout);
        if self.pools[pool].failed(server, pc.max_fails, window, ctx.now()) {
            crate::say!(
                "uringd: worker {}: upstream {}: out of rotation for {:?} after {} failure(s)",
                ctx.id,
                pc.servers[server].url,
                pc.fail_timeout,
                pc.max_fails
            );
        }
    }

    /// A request to a server succeeded; says so when that brings it back.
    pub fn server_succeeded(&mut self, ctx: &Ctx, pool: usize, server: usize) {
        if self.pools[pool].succeeded(server) {
            say_back(ctx, pool, server, "a request succeeded");
        }
    }

    /// An active probe's verdict; a change of side is said once.
    fn server_probed(&mut self, ctx: &Ctx, pool: usize, server: usize, healthy: bool) {
        match self.pools[pool].probed(server, healthy) {
            Some(true) => crate::say!(
                "uringd: worker {}: upstream {}: out of rotation: its health check ({}) failed",
                ctx.id,
                ctx.cfg.pools[pool].servers[server].url,
                ctx.cfg.pools[pool].health_path
            ),
            Some(false) => say_back(ctx, pool, server, "its health check passed"),
            None => {}
        }
    }

    fn jitter(&mut self, ticks: u64) -> u64 {
        // xorshift64: cheap, good enough to spread probes; not for anything secret.
        let mut x = self.probe_rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.probe_rng = x;
        let spread = (ticks / 5).max(1); // +-10%
        ticks - ticks / 10 + x % spread
    }

    /// Called every tick: starts due probes, fails probes that outlived their interval.
    pub fn run_probes(&mut self, io: &mut Io, ctx: &mut Ctx) {
        let now = ctx.now();
        let cfg = ctx.cfg.clone();
        for (pi, pc) in cfg.pools.iter().enumerate() {
            let Some(interval) = pc.health_interval else {
                continue;
            };
            let every = to_ticks(interval);
            for si in 0..pc.servers.len() {
                let s = &self.pools[pi].servers[si];
                if s.next_probe == 0 {
                    // First probe at a random point of the first interval.
                    let first = now + 1 + self.jitter(every) % every;
                    self.pools[pi].servers[si].next_probe = first;
                    continue;
                }
                if now < s.next_probe {
                    continue;
                }
                if let Some(u) = s.probe {
                    // Still unanswered after a whole interval: a failure.
                    self.close(io, u);
                    self.server_probed(ctx, pi, si, false);
                }
                let next = now + self.jitter(every);
                self.pools[pi].servers[si].next_probe = next;
                self.probe_start(io, ctx, pi, si);
            }
        }
    }

    fn probe_start(&mut self, io: &mut Io, ctx: &mut Ctx, pool: usize, server: usize) {
        let Ok(u) = self.open(io, &ctx.cfg, pool, server) else {
            return self.server_probed(ctx, pool, server, false);
        };
        let http = format!(
            "GET {} HTTP/1.1\r\nHost: localhost\r\nUser-Agent: uringd-health\r\nConnection: close\r\n\r\n",
            ctx.cfg.pools[pool].health_path
        );
        let mut req = Vec::new();
        match ctx.cfg.pools[pool].servers[server].proto {
            Proto::Http => req.extend_from_slice(http.as_bytes()),
            Proto::Uwsgi => {
                let Ok(h) =
                    parser::parse_head(http.as_bytes(), &Limits::default(), &mut ctx.http.headers)
                else {
                    return self.server_probed(ctx, pool, server, false);
                };
                let v = UwsgiVars {
                    path: h.path_or_root(http.as_bytes()),
                    remote_addr: IpAddr::V4(Ipv4Addr::LOCALHOST),
                    remote_port: 0,
                    server_name: "uringd-health",
                    server_port: 0,
                    scheme: "http",
                    content_length: 0,
                    client_trusted: true,
                    real_ip: None,
                    underscores: false,
                };
                if uwsgi::write_request(&mut req, http.as_bytes(), &h, &ctx.http.headers, &v)
                    .is_err()
                {
                    return self.server_probed(ctx, pool, server, false);
                }
            }
        }
        let up = &mut self.slab[u];
        up.probe = true;
        up.ep.out.bytes().extend_from_slice(&req);
        up.ep.out.commit(req.len());
        self.pools[pool].servers[server].probe = Some(u);
        self.settle_alone(io, u);
    }

    /// Bytes from a probe connection: decide as soon as the answer's head is in.
    pub fn probe_data(&mut self, io: &mut Io, ctx: &mut Ctx, u: Key, data: &[u8]) {
        let up = &mut self.slab[u];
        up.head_buf.extend_from_slice(data);
        // uWSGI answers a uwsgi request with an HTTP response too.
        let healthy =
            match parse_response_head(&up.head_buf, false, 16 * 1024, &mut ctx.http.headers) {
                Err(RespError::Incomplete) => return,
                Err(_) => false,
                Ok(r) => (200..400).contains(&r.status),
            };
        self.probe_done(io, ctx, u, healthy);
    }

    pub fn probe_done(&mut self, io: &mut Io, ctx: &Ctx, u: Key, healthy: bool) {
        let (pool, server) = (self.slab[u].pool, self.slab[u].server);
        self.slab[u].probe = false;
        self.server_probed(ctx, pool, server, healthy);
        self.close(io, u);
    }
}

fn say_back(ctx: &Ctx, pool: usize, server: usize, why: &str) {
    crate::say!(
        "uringd: worker {}: upstream {}: back in rotation ({why})",
        ctx.id,
        ctx.cfg.pools[pool].servers[server].url
    );
}
