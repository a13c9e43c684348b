//! The listening sockets, owned by the supervisor for the life of the process: bound here,
//! or inherited (upgrade, socket activation). Workers only ever get duplicates, so a worker
//! that dies, or a generation replaced by a reload, never closes a listening socket.

use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use super::inherit::{self, Inherited};
use crate::config::Config;
use crate::worker::listener::{self, ListenKind};

pub struct Group {
    /// The address as configured (port 0 stays 0), which an upgrade matches on.
    pub key: String,
    /// The address it is bound to.
    pub actual: SocketAddr,
    pub kind: ListenKind,
    /// One per worker when bound here (a reuseport group); systemd passes one, shared.
    pub fds: Vec<OwnedFd>,
}

pub struct Sockets {
    pub groups: Vec<Group>,
}

impl Sockets {
    /// Binds what the config asks for, using inherited sockets where they match. Returns
    /// notes for the log.
    pub fn open(cfg: &Config, mut inh: Inherited) -> Result<(Sockets, Vec<String>), String> {
        let mut notes = Vec::new();
        let mut wanted: Vec<(String, ListenKind)> = Vec::new();
        let serving = |k: ListenKind| k != ListenKind::Admin;
        let tls_addrs = cfg.tls.iter().flat_map(|t| &t.listen);
        if inh.activated && inh.groups.iter().any(|g| serving(g.kind)) {
            notes.push("socket activation: serving on the sockets systemd passed (the listen addresses are not used)".into());
            wanted.extend(
                inh.groups
                    .iter()
                    .filter(|g| serving(g.kind))
                    .map(|g| (g.key.clone(), g.kind)),
            );
        } else {
            wanted.extend(cfg.listen.iter().map(|a| (a.to_string(), ListenKind::Http)));
            wanted.extend(tls_addrs.map(|a| (a.to_string(), ListenKind::Tls)));
            wanted.extend(
                cfg.proxy_protocol_listen
                    .iter()
                    .map(|a| (a.to_string(), ListenKind::Proxied)),
            );
        }
        match (
            cfg.admin,
            inh.groups.iter().find(|g| g.kind == ListenKind::Admin),
        ) {
            (_, Some(g)) => wanted.push((g.key.clone(), ListenKind::Admin)),
            (Some(a), None) => wanted.push((a.to_string(), ListenKind::Admin)),
            (None, None) => {}
        }
        let mut groups = Vec::new();
        for (key, kind) in wanted {
            let admin = kind == ListenKind::Admin;
            let pos = inh
                .groups
                .iter()
                .position(|g| g.key == key && g.kind == kind);
            let group = match pos {
                Some(p) => {
                    let g = inh.groups.swap_remove(p);
                    let actual = listener::local_addr(&g.fds[0])
                        .map_err(|e| format!("inherited socket for {key}: {e}"))?;
                    notes.push(format!(
                        "inherited {} listening socket{} for {actual}",
                        g.fds.len(),
                        if g.fds.len() == 1 { "" } else { "s" }
                    ));
                    Group {
                        key,
                        actual,
                        kind,
                        fds: g.fds,
                    }
                }
                None => {
                    let addr: SocketAddr = key.parse().map_err(|_| format!("bad address {key}"))?;
                    let (fds, actual) =
                        listener::reuseport_group(&addr, cfg.workers, &cfg.sockets, !admin)
                            .map_err(|e| listener::explain_bind_error(&addr, &e, kind))?;
                    Group {
                        key,
                        actual,
                        kind,
                        fds,
                    }
                }
            };
            groups.push(group);
        }
        for g in inh.groups {
            notes.push(format!(
                "closing an inherited socket for {} that the config no longer names",
                g.key
            ));
        }
        Ok((Sockets { groups }, notes))
    }

    /// Worker `i`'s duplicates: socket `i` of each reuseport group (shared ones wrap round).
    pub fn for_worker(&self, i: usize) -> std::io::Result<Vec<(OwnedFd, ListenKind)>> {
        self.groups
            .iter()
            .map(|g| g.fds[i % g.fds.len()].try_clone().map(|d| (d, g.kind)))
            .collect()
    }

    /// Every descriptor, for a child that must keep them across exec.
    pub fn raw_fds(&self) -> Vec<RawFd> {
        self.groups
            .iter()
            .flat_map(|g| g.fds.iter().map(|f| f.as_raw_fd()))
            .collect()
    }

    /// `URINGD_LISTEN_FDS` describing them to a new binary.
    pub fn export(&self) -> String {
        let groups: Vec<(String, ListenKind, Vec<RawFd>)> = self
            .groups
            .iter()
            .map(|g| {
                (
                    g.key.clone(),
                    g.kind,
                    g.fds.iter().map(|f| f.as_raw_fd()).collect(),
                )
            })
            .collect();
        inherit::encode(&groups)
    }
}
