//! Judgement: each fact becomes a finding graded ok / advice / problem, with what it means
//! for uringd and, where something can be done, the command that does it.

use super::facts::Facts;
use super::sys::{count_cpu_list, version};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Grade {
    Ok,
    Advice,
    Problem,
}

impl Grade {
    pub fn name(self) -> &'static str {
        match self {
            Grade::Ok => "ok",
            Grade::Advice => "advice",
            Grade::Problem => "problem",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Finding {
    /// Section of the human report.
    pub section: &'static str,
    /// Stable snake_case key (the same as in the facts).
    pub key: &'static str,
    pub grade: Grade,
    pub value: String,
    pub meaning: String,
    pub fix: Option<String>,
}

fn f(
    section: &'static str,
    key: &'static str,
    grade: Grade,
    value: impl Into<String>,
    meaning: impl Into<String>,
    fix: Option<&str>,
) -> Finding {
    Finding {
        section,
        key,
        grade,
        value: value.into(),
        meaning: meaning.into(),
        fix: fix.map(str::to_string),
    }
}

const IO: &str = "io_uring";
const LIM: &str = "limits";
const NET: &str = "network";
const CPU: &str = "cpus and memory";
const NIC: &str = "nics";

pub fn judge(x: &Facts) -> Vec<Finding> {
    let mut out = Vec::new();
    kernel(x, &mut out);
    features(x, &mut out);
    limits(x, &mut out);
    network(x, &mut out);
    cpus(x, &mut out);
    nics(x, &mut out);
    out
}

fn kernel(x: &Facts, out: &mut Vec<Finding>) {
    let release = x.kernel.clone().unwrap_or_else(|| "unknown".into());
    let v = x.kernel.as_deref().and_then(version);
    out.push(match v {
        Some(v) if v >= (6, 1) => f(
            IO,
            "kernel",
            Grade::Ok,
            &release,
            "Linux 6.1 or newer: everything uringd uses is there",
            None,
        ),
        Some(v) if v >= (6, 0) => f(
            IO,
            "kernel",
            Grade::Advice,
            &release,
            "Linux 6.0 runs uringd, without DEFER_TASKRUN (6.1)",
            None,
        ),
        Some(_) => f(
            IO,
            "kernel",
            Grade::Problem,
            &release,
            "uringd needs Linux 6.0 or newer (multishot recv, SEND_ZC)",
            None,
        ),
        None => f(
            IO,
            "kernel",
            Grade::Advice,
            &release,
            "kernel release unreadable",
            None,
        ),
    });
    if let Some(c) = &x.backend {
        let uring = c.kind == crate::driver::Kind::IoUring;
        out.push(f(
            IO,
            "backend",
            if uring { Grade::Ok } else { Grade::Advice },
            c.kind.name(),
            format!(
                "`--backend auto` runs {} here ({})",
                c.kind.name(),
                c.reason
            ),
            None,
        ));
    }
    let disabled = x.sysctl_u64("io_uring_disabled");
    match &x.probe {
        Ok(_) => out.push(f(
            IO,
            "io_uring",
            if disabled == Some(1) { Grade::Advice } else { Grade::Ok },
            "available",
            match disabled {
                Some(1) => "available to this user, but kernel.io_uring_disabled = 1 restricts it to root and the io_uring_group",
                _ => "io_uring rings can be created here",
            },
            None,
        )),
        // Not fatal: uringd runs on its epoll backend (see the `backend` finding).
        Err(why) => out.push(Finding {
            section: IO,
            key: "io_uring",
            grade: Grade::Advice,
            value: "unavailable".into(),
            meaning: format!("{why}; uringd falls back to its epoll backend"),
            fix: Some(match disabled {
                Some(1 | 2) => "sysctl -w kernel.io_uring_disabled=0".into(),
                _ => "allow io_uring_setup/io_uring_enter/io_uring_register (seccomp profile), or use a kernel with io_uring".into(),
            }),
        }),
    }
}

fn features(x: &Facts, out: &mut Vec<Finding>) {
    let Ok(p) = &x.probe else { return };
    // (key, present, grade if missing, meaning if present, meaning if missing, fix if missing)
    let rows: [(&'static str, bool, Grade, &str, &str); 15] = [
        (
            "recv_multishot",
            p.recv_multishot,
            Grade::Problem,
            "one recv request serves a connection for its life",
            "uringd needs multishot recv (Linux 6.0)",
        ),
        (
            "accept_multishot",
            p.accept_multishot,
            Grade::Problem,
            "one accept request serves a listener",
            "uringd needs multishot accept (Linux 5.19)",
        ),
        (
            "provided_buffer_rings",
            p.provided_buffer_rings,
            Grade::Problem,
            "receive buffers are picked by the kernel: idle connections hold none",
            "uringd needs provided-buffer rings (Linux 5.19)",
        ),
        (
            "ext_arg",
            p.ext_arg,
            Grade::Problem,
            "waits carry their timeout (no timeout SQE per turn)",
            "uringd needs IORING_ENTER_EXT_ARG (Linux 5.11)",
        ),
        (
            "single_issuer",
            p.single_issuer,
            Grade::Advice,
            "each worker's ring is used by one thread: the kernel skips locking",
            "rings fall back to shared-issuer mode (slower)",
        ),
        (
            "defer_taskrun",
            p.defer_taskrun,
            Grade::Advice,
            "completion work runs when the worker waits, not by interrupting it",
            "falls back to COOP_TASKRUN (3% more CPU per request measured here)",
        ),
        (
            "coop_taskrun",
            p.coop_taskrun,
            Grade::Advice,
            "fallback for kernels without DEFER_TASKRUN",
            "falls back to plain task work",
        ),
        (
            "sqpoll",
            p.sqpoll,
            Grade::Advice,
            "--sqpoll can use a kernel thread to submit (burns a CPU)",
            "--sqpoll is not available",
        ),
        (
            "send_zc",
            p.send_zc,
            Grade::Advice,
            "bodies >= send_zc_threshold are sent without a copy",
            "large bodies are copied (send_zc_threshold has no effect)",
        ),
        (
            "splice",
            p.splice,
            Grade::Advice,
            "large files and proxied bodies move by splice, not through uringd",
            "large bodies are copied through uringd",
        ),
        (
            "fixed_files",
            p.fixed_files,
            Grade::Advice,
            "--fixed-files can register connection descriptors",
            "--fixed-files is not available",
        ),
        (
            "napi",
            p.napi,
            Grade::Advice,
            "--napi-busy-poll can busy-poll NIC queues from the ring (Linux 6.9+)",
            "--napi-busy-poll is not available (Linux 6.9+)",
        ),
        (
            "incremental_buffers",
            p.incremental_buffers,
            Grade::Ok,
            "provided buffers can be consumed in pieces (Linux 6.12); uringd does not use them yet",
            "not available (Linux 6.12); uringd does not need them",
        ),
        (
            "bundles",
            p.bundles,
            Grade::Ok,
            "recv/send bundles (Linux 6.10); uringd does not use them yet",
            "not available (Linux 6.10); uringd does not need them",
        ),
        (
            "zero_copy_receive",
            p.zero_copy_receive,
            Grade::Ok,
            "the RECV_ZC op exists (Linux 6.15); it also needs a NIC with header split and flow steering; uringd does not use it yet",
            "not available (Linux 6.15); uringd does not need it",
        ),
    ];
    for (key, present, missing, yes, no) in rows {
        out.push(if present {
            f(IO, key, Grade::Ok, "yes", yes, None)
        } else {
            f(IO, key, missing, "no", no, None)
        });
    }
}

fn limit_text(v: Option<u64>) -> String {
    v.map_or("unlimited".into(), |n| n.to_string())
}

fn limits(x: &Facts, out: &mut Vec<Finding>) {
    let nofile_fix = "ulimit -n 1048576 (systemd: LimitNOFILE=1048576)";
    out.push(match x.nofile {
        None => f(LIM, "nofile", Grade::Advice, "unknown", "could not read the open-files limit", None),
        Some(l) => {
            let soft = l.soft.unwrap_or(u64::MAX);
            let value = format!("{} (hard {})", limit_text(l.soft), limit_text(l.hard));
            if soft < 4096 {
                f(LIM, "nofile", Grade::Problem, value, "each connection is a descriptor (two when proxied): fewer than ~4000 connections fit", Some(nofile_fix))
            } else if soft < 65536 {
                f(LIM, "nofile", Grade::Advice, value, "each connection is a descriptor (two when proxied); 10k-connection tests need more", Some(nofile_fix))
            } else {
                f(LIM, "nofile", Grade::Ok, value, "room for many connections", None)
            }
        }
    });
    let new_kernel = x
        .kernel
        .as_deref()
        .and_then(version)
        .is_some_and(|v| v >= (5, 12));
    out.push(match x.memlock {
        None => f(
            LIM,
            "memlock",
            Grade::Advice,
            "unknown",
            "could not read the locked-memory limit",
            None,
        ),
        Some(l) => {
            let value = format!("{} (hard {})", limit_text(l.soft), limit_text(l.hard));
            if new_kernel {
                f(
                    LIM,
                    "memlock",
                    Grade::Ok,
                    value,
                    "this kernel charges io_uring memory to the cgroup, not to RLIMIT_MEMLOCK",
                    None,
                )
            } else if l.soft.unwrap_or(u64::MAX) < 64 << 20 {
                f(
                    LIM,
                    "memlock",
                    Grade::Problem,
                    value,
                    "kernels before 5.12 charge rings to RLIMIT_MEMLOCK: workers may fail to start",
                    Some("ulimit -l unlimited (systemd: LimitMEMLOCK=infinity)"),
                )
            } else {
                f(
                    LIM,
                    "memlock",
                    Grade::Ok,
                    value,
                    "enough for the rings",
                    None,
                )
            }
        }
    });
}

fn network(x: &Facts, out: &mut Vec<Finding>) {
    let missing = |key: &'static str, out: &mut Vec<Finding>| {
        out.push(f(
            NET,
            key,
            Grade::Ok,
            "n/a",
            "not present on this kernel",
            None,
        ))
    };
    match x.sysctl_u64("somaxconn") {
        Some(v) if v < 4096 => out.push(f(NET, "somaxconn", Grade::Advice, v.to_string(), format!("listen backlogs are capped at {v} (uringd asks for 4096): bursts of new connections beyond it are dropped or delayed"), Some("sysctl -w net.core.somaxconn=4096"))),
        Some(v) => out.push(f(NET, "somaxconn", Grade::Ok, v.to_string(), "uringd's backlog of 4096 is honoured", None)),
        None => missing("somaxconn", out),
    }
    match x.sysctl_u64("tcp_max_syn_backlog") {
        Some(v) if v < 4096 => out.push(f(
            NET,
            "tcp_max_syn_backlog",
            Grade::Advice,
            v.to_string(),
            "half-open connections beyond this are dropped under connection bursts",
            Some("sysctl -w net.ipv4.tcp_max_syn_backlog=8192"),
        )),
        Some(v) => out.push(f(
            NET,
            "tcp_max_syn_backlog",
            Grade::Ok,
            v.to_string(),
            "room for connection bursts",
            None,
        )),
        None => missing("tcp_max_syn_backlog", out),
    }
    match x.sysctl_u64("netdev_max_backlog") {
        Some(v) if v < 1000 => out.push(f(
            NET,
            "netdev_max_backlog",
            Grade::Advice,
            v.to_string(),
            "packets queued per CPU before the stack drops them; below the default 1000",
            Some("sysctl -w net.core.netdev_max_backlog=4096"),
        )),
        Some(v) => out.push(f(
            NET,
            "netdev_max_backlog",
            Grade::Ok,
            v.to_string(),
            "per-CPU input queue length",
            None,
        )),
        None => missing("netdev_max_backlog", out),
    }
    for key in ["busy_poll", "busy_read"] {
        match x.sysctl_u64(key) {
            Some(0) => out.push(f(NET, key, Grade::Ok, "0", "system-wide busy polling is off (the default); --busy-poll and --napi-busy-poll turn it on for uringd alone", None)),
            Some(v) => out.push(f(NET, key, Grade::Ok, v.to_string(), format!("system-wide busy polling for {v} us: lower latency, more CPU for every socket user"), None)),
            None => missing(key, out),
        }
    }
    match x.sysctl_u64("tcp_fastopen") {
        Some(v) => out.push(f(
            NET,
            "tcp_fastopen",
            Grade::Ok,
            v.to_string(),
            match v & 2 {
                0 => "server-side TCP Fast Open is off (uringd does not ask for it)",
                _ => "server-side TCP Fast Open is allowed",
            },
            None,
        )),
        None => missing("tcp_fastopen", out),
    }
    match x.sysctl("ip_local_port_range") {
        Some(r) => {
            let n: Vec<u64> = r
                .split_whitespace()
                .filter_map(|v| v.parse().ok())
                .collect();
            let span = match n[..] {
                [a, b] if b >= a => b - a + 1,
                _ => 0,
            };
            if span < 16384 {
                out.push(f(NET, "ip_local_port_range", Grade::Advice, r.replace('\t', " "), format!("{span} local ports for outgoing connections (proxy pools, `uringd bench --no-keepalive`): they run out under churn"), Some("sysctl -w net.ipv4.ip_local_port_range=\"1024 65535\"")));
            } else {
                out.push(f(
                    NET,
                    "ip_local_port_range",
                    Grade::Ok,
                    r.replace('\t', " "),
                    format!("{span} local ports for outgoing connections"),
                    None,
                ));
            }
        }
        None => missing("ip_local_port_range", out),
    }
    for (key, what) in [("tcp_rmem", "receive"), ("tcp_wmem", "send")] {
        match x.sysctl(key) {
            Some(v) => out.push(f(NET, key, Grade::Ok, v.replace('\t', " "), format!("TCP {what} buffer autotuning range (min default max); uringd leaves it to the kernel"), None)),
            None => missing(key, out),
        }
    }
    for key in ["rmem_max", "wmem_max"] {
        match x.sysctl_u64(key) {
            Some(v) => out.push(f(
                NET,
                key,
                Grade::Ok,
                v.to_string(),
                "cap for buffers set explicitly with SO_RCVBUF/SO_SNDBUF (uringd sets none)",
                None,
            )),
            None => missing(key, out),
        }
    }
    ktls(x, out);
}

/// Kernel TLS: whether this kernel could take over record encryption (`tls` among the
/// upper-layer protocols): whether a kTLS path could be built and measured here at all.
fn ktls(x: &Facts, out: &mut Vec<Finding>) {
    let key = "tcp_available_ulp";
    match x.sysctl(key) {
        Some(v) if v.split_whitespace().any(|u| u == "tls") => out.push(f(
            NET,
            key,
            Grade::Ok,
            v.trim(),
            "kernel TLS (kTLS) is available: after a user-space handshake the kernel could encrypt the records; uringd does not use it",
            None,
        )),
        Some(v) => out.push(f(
            NET,
            key,
            Grade::Ok,
            if v.trim().is_empty() { "none" } else { v.trim() },
            "no kernel TLS (kTLS) here: `tls` is not an available upper-layer protocol, so on this kernel TLS can only run in user space",
            Some("modprobe tls   # where the kernel has the module (CONFIG_TLS)"),
        )),
        None => out.push(f(
            NET,
            key,
            Grade::Ok,
            "n/a",
            "this kernel lists no upper-layer protocols: no kernel TLS (kTLS)",
            None,
        )),
    }
}

fn cpus(x: &Facts, out: &mut Vec<Finding>) {
    let online = x.cpus_online.clone().unwrap_or_else(|| "?".into());
    let n = count_cpu_list(&online);
    out.push(f(
        CPU,
        "cpus",
        Grade::Ok,
        format!("{online} ({n} online)"),
        format!("uringd starts one pinned worker per CPU by default ({n})"),
        None,
    ));
    let isolated = x.isolated.clone().unwrap_or_default();
    let nohz = x.nohz_full.clone().unwrap_or_default();
    out.push(if isolated.is_empty() && nohz.is_empty() {
        f(CPU, "isolated_cpus", Grade::Ok, "none", "no CPUs are isolated; for quiet experiments isolate some (isolcpus=, nohz_full=) and pin with --cpus", None)
    } else {
        f(CPU, "isolated_cpus", Grade::Ok, format!("isolcpus {} nohz_full {}", or_none(&isolated), or_none(&nohz)), "isolated CPUs get no other tasks: pin uringd there with --cpus (the scheduler will not put workers there by itself)", None)
    });
    match x.thp.as_deref().and_then(super::sys::bracketed) {
        Some("always") => out.push(f(
            CPU,
            "transparent_hugepages",
            Grade::Advice,
            "always",
            "page compaction for huge pages can stall a worker: it shows in p99.9",
            Some("echo madvise > /sys/kernel/mm/transparent_hugepage/enabled"),
        )),
        Some(m) => out.push(f(
            CPU,
            "transparent_hugepages",
            Grade::Ok,
            m.to_string(),
            "huge pages only where asked for",
            None,
        )),
        None => out.push(f(
            CPU,
            "transparent_hugepages",
            Grade::Ok,
            "n/a",
            "not present",
            None,
        )),
    }
}

fn or_none(s: &str) -> &str {
    if s.is_empty() { "none" } else { s }
}

fn nics(x: &Facts, out: &mut Vec<Finding>) {
    if x.nics.is_empty() {
        out.push(f(
            NIC,
            "nics",
            Grade::Ok,
            "none (loopback only)",
            "no hardware queues to tune here; loopback traffic is handled on the sending CPU",
            None,
        ));
        return;
    }
    let cpus = x.cpus_online.as_deref().map_or(1, count_cpu_list).max(1);
    for n in &x.nics {
        let irqs: Vec<String> = n.irqs.iter().map(|(i, a)| format!("{i}->{a}")).collect();
        let value = format!(
            "{}: {} rx / {} tx queue(s); IRQs {}",
            n.name,
            n.rx_queues,
            n.tx_queues,
            if irqs.is_empty() {
                "not shown".into()
            } else {
                irqs.join(" ")
            }
        );
        out.push(if n.rx_queues < cpus {
            Finding {
                section: NIC,
                key: "nic_queues",
                grade: Grade::Advice,
                value,
                meaning: format!("{} receive queue(s) for {cpus} CPUs: packet processing concentrates on few CPUs; spread it with RPS, and keep connections where their packets land with --reuseport-steering cpu", n.rx_queues),
                fix: Some(format!("echo {} > /sys/class/net/{}/queues/rx-0/rps_cpus", cpu_mask(cpus), n.name)),
            }
        } else {
            f(NIC, "nic_queues", Grade::Ok, value, "a receive queue per CPU or more (RSS spreads the load); align IRQ affinity with worker CPUs", None)
        });
    }
}

/// Hex mask of the first `n` CPUs ("3" for 2 CPUs).
fn cpu_mask(n: usize) -> String {
    if n >= 64 {
        return "ffffffffffffffff".into();
    }
    format!("{:x}", (1u64 << n) - 1)
}
