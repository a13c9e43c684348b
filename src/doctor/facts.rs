//! Everything the doctor reads, gathered once into plain data (no judgement here).

use super::sys::{Limit, Sys, parse_limit};
use crate::driver::uring::probe::KernelProbe;

/// The sysctls reported, as (JSON key, sysctl name).
pub const SYSCTLS: &[(&str, &str)] = &[
    ("io_uring_disabled", "kernel.io_uring_disabled"),
    ("somaxconn", "net.core.somaxconn"),
    ("tcp_max_syn_backlog", "net.ipv4.tcp_max_syn_backlog"),
    ("netdev_max_backlog", "net.core.netdev_max_backlog"),
    ("busy_poll", "net.core.busy_poll"),
    ("busy_read", "net.core.busy_read"),
    ("tcp_fastopen", "net.ipv4.tcp_fastopen"),
    ("ip_local_port_range", "net.ipv4.ip_local_port_range"),
    ("tcp_rmem", "net.ipv4.tcp_rmem"),
    ("tcp_wmem", "net.ipv4.tcp_wmem"),
    ("rmem_max", "net.core.rmem_max"),
    ("wmem_max", "net.core.wmem_max"),
    ("tcp_available_ulp", "net.ipv4.tcp_available_ulp"),
];

#[derive(Clone, Debug)]
pub struct Nic {
    pub name: String,
    pub rx_queues: usize,
    pub tx_queues: usize,
    /// (IRQ number, CPUs it may run on).
    pub irqs: Vec<(u32, String)>,
}

#[derive(Clone, Debug)]
pub struct Facts {
    pub kernel: Option<String>,
    /// The probe, or why io_uring is unavailable.
    pub probe: Result<KernelProbe, String>,
    pub nofile: Option<Limit>,
    pub memlock: Option<Limit>,
    /// Raw sysctl values, in SYSCTLS order (None: not present on this kernel).
    pub sysctls: Vec<Option<String>>,
    pub cpus_online: Option<String>,
    pub isolated: Option<String>,
    pub nohz_full: Option<String>,
    pub thp: Option<String>,
    pub nics: Vec<Nic>,
    /// What `--backend auto` picks here, and why (None: not asked, as in unit tests).
    pub backend: Option<crate::driver::Choice>,
}

impl Facts {
    pub fn sysctl(&self, key: &str) -> Option<&str> {
        let i = SYSCTLS.iter().position(|(k, _)| *k == key)?;
        self.sysctls.get(i)?.as_deref()
    }

    pub fn sysctl_u64(&self, key: &str) -> Option<u64> {
        self.sysctl(key)?.trim().parse().ok()
    }
}

pub fn gather(sys: &Sys, probe: Result<KernelProbe, String>) -> Facts {
    let limits = sys.read("/proc/self/limits").unwrap_or_default();
    let nonempty = |s: Option<String>| s.filter(|v| !v.trim().is_empty());
    Facts {
        kernel: sys.read("/proc/sys/kernel/osrelease"),
        probe,
        nofile: parse_limit(&limits, "Max open files"),
        memlock: parse_limit(&limits, "Max locked memory"),
        sysctls: SYSCTLS.iter().map(|(_, name)| sys.sysctl(name)).collect(),
        cpus_online: sys.read("/sys/devices/system/cpu/online"),
        isolated: nonempty(sys.read("/sys/devices/system/cpu/isolated")),
        nohz_full: nonempty(sys.read("/sys/devices/system/cpu/nohz_full"))
            .filter(|v| v.trim() != "(null)"),
        thp: sys.read("/sys/kernel/mm/transparent_hugepage/enabled"),
        nics: nics(sys),
        backend: None,
    }
}

fn nics(sys: &Sys) -> Vec<Nic> {
    sys.list("/sys/class/net")
        .into_iter()
        .filter(|n| n != "lo")
        // Virtual interfaces (bridges, veth, tun) have no device link and no hardware queues
        // worth tuning; keep real NICs (and virtio ones, which have a device).
        .filter(|n| !sys.list(&format!("/sys/class/net/{n}/device")).is_empty())
        .map(|name| {
            let queues = sys.list(&format!("/sys/class/net/{name}/queues"));
            let irqs = sys
                .list(&format!("/sys/class/net/{name}/device/msi_irqs"))
                .into_iter()
                .filter_map(|i| i.parse::<u32>().ok())
                .map(|irq| {
                    let aff = sys
                        .read(&format!("/proc/irq/{irq}/smp_affinity_list"))
                        .unwrap_or_else(|| "?".into());
                    (irq, aff)
                })
                .collect();
            Nic {
                rx_queues: queues.iter().filter(|q| q.starts_with("rx-")).count(),
                tx_queues: queues.iter().filter(|q| q.starts_with("tx-")).count(),
                name,
                irqs,
            }
        })
        .collect()
}
