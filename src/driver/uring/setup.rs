//! Ring setup as a checklist of flags, each with its fallback, and the op probe.
//!
//! 1. SINGLE_ISSUER (6.0): one thread submits; lets the kernel skip locking.
//! 2. DEFER_TASKRUN (6.1): completions run when we ask (at enter), not by IPI mid-loop.
//!    Incompatible with SQPOLL.
//! 3. else COOP_TASKRUN + TASKRUN_FLAG (5.19): no IPI, the flag tells us to enter.
//! 4. else plain.
//!
//! The CQ is sized 4x the SQ: multishot recv/accept can post many CQEs per SQE.

use std::io;

use io_uring::{IoUring, Probe, opcode};

#[derive(Clone, Debug)]
pub struct SetupOptions {
    pub entries: u32,
    pub sqpoll: bool,
    pub sqpoll_cpu: Option<u32>,
    pub sqpoll_idle_ms: u32,
    /// None: use when available. Some(false): never (experiments). Some(true): required.
    pub defer_taskrun: Option<bool>,
}

impl Default for SetupOptions {
    fn default() -> Self {
        SetupOptions {
            entries: 1024,
            sqpoll: false,
            sqpoll_cpu: None,
            sqpoll_idle_ms: 1000,
            defer_taskrun: None,
        }
    }
}

/// What this ring actually got: reported by doctor, logged at start, and used for fallbacks.
#[derive(Clone, Debug, Default)]
pub struct Features {
    pub single_issuer: bool,
    pub defer_taskrun: bool,
    pub coop_taskrun: bool,
    pub sqpoll: bool,
    pub ext_arg: bool,
    pub send_zc: bool,
    /// Inferred from the SEND_ZC op (both arrived in 6.0); there is no opcode for a flag.
    pub recv_multishot: bool,
}

impl Features {
    /// Nothing negotiated (the epoll backend).
    pub const fn none() -> Features {
        Features {
            single_issuer: false,
            defer_taskrun: false,
            coop_taskrun: false,
            sqpoll: false,
            ext_arg: false,
            send_zc: false,
            recv_multishot: false,
        }
    }

    pub fn summary(&self) -> String {
        let mut v = Vec::new();
        let mut add = |on: bool, name: &str| {
            if on {
                v.push(name.to_string())
            }
        };
        add(self.single_issuer, "single_issuer");
        add(self.defer_taskrun, "defer_taskrun");
        add(self.coop_taskrun, "coop_taskrun");
        add(self.sqpoll, "sqpoll");
        add(self.send_zc, "send_zc");
        add(self.recv_multishot, "recv_multishot");
        v.join(",")
    }
}

type Flavor = (bool, bool, bool); // (single_issuer, defer_taskrun, coop_taskrun)

pub(super) fn build(opts: &SetupOptions) -> io::Result<(IoUring, Features)> {
    let mut tries: Vec<Flavor> = Vec::new();
    if opts.sqpoll {
        tries.push((true, false, false));
        tries.push((false, false, false));
    } else {
        if opts.defer_taskrun != Some(false) {
            tries.push((true, true, false));
        }
        if opts.defer_taskrun != Some(true) {
            tries.push((true, false, true));
            tries.push((false, false, true));
            tries.push((false, false, false));
        }
    }
    let mut last_err = None;
    for (single, defer, coop) in tries {
        let mut b = IoUring::builder();
        b.setup_cqsize(opts.entries * 4).setup_submit_all();
        if single {
            b.setup_single_issuer();
        }
        if defer {
            b.setup_defer_taskrun();
        }
        if coop {
            b.setup_coop_taskrun().setup_taskrun_flag();
        }
        if opts.sqpoll {
            b.setup_sqpoll(opts.sqpoll_idle_ms);
            if let Some(cpu) = opts.sqpoll_cpu {
                b.setup_sqpoll_cpu(cpu);
            }
        }
        match b.build(opts.entries) {
            Ok(uring) => {
                let mut f = Features {
                    single_issuer: single,
                    defer_taskrun: defer,
                    coop_taskrun: coop,
                    sqpoll: opts.sqpoll,
                    ext_arg: uring.params().is_feature_ext_arg(),
                    ..Features::default()
                };
                // Not registered: io-uring 0.7's Submitter is rebuilt on every call, so a
                // registered ring index would be forgotten at once (see architecture.md).
                probe(&uring, &mut f)?;
                return Ok((uring, f));
            }
            // EINVAL: a flag this kernel does not know; try the next flavor.
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => last_err = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last_err.unwrap_or_else(|| io::Error::from_raw_os_error(libc::EINVAL)))
}

fn probe(uring: &IoUring, f: &mut Features) -> io::Result<()> {
    let mut p = Probe::new();
    uring.submitter().register_probe(&mut p)?;
    let needed = [
        (opcode::AcceptMulti::CODE, "accept"),
        (opcode::RecvMulti::CODE, "recv"),
        (opcode::Send::CODE, "send"),
        (opcode::AsyncCancel::CODE, "async_cancel"),
        (opcode::Close::CODE, "close"),
        (opcode::Shutdown::CODE, "shutdown"),
        (opcode::Read::CODE, "read"),
        (opcode::Write::CODE, "write"),
        (opcode::Connect::CODE, "connect"),
        (opcode::Splice::CODE, "splice"),
    ];
    for (code, name) in needed {
        if !p.is_supported(code) {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("io_uring op {name} is not supported by this kernel"),
            ));
        }
    }
    f.send_zc = p.is_supported(opcode::SendZc::CODE);
    f.recv_multishot = f.send_zc;
    if !f.ext_arg || !f.recv_multishot {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "this kernel's io_uring lacks multishot recv or EXT_ARG waits (Linux 6.0 or newer is needed)",
        ));
    }
    Ok(())
}

/// Turns an io_uring_setup failure into a sentence that names the cause and the fix.
pub fn explain_setup_error(e: &io::Error) -> String {
    let disabled = std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled")
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok());
    const SECCOMP_FIX: &str = "fix: a seccomp profile that allows io_uring_setup, io_uring_enter and io_uring_register, or --backend epoll";
    match e.raw_os_error() {
        Some(libc::ENOSYS) if seccomp_filtered() => format!(
            "io_uring_setup was refused (ENOSYS) by this process's seccomp filter (Seccomp: 2 in /proc/self/status) ({SECCOMP_FIX})"
        ),
        Some(libc::ENOSYS) => {
            "io_uring is not available: the kernel has no io_uring (built without it, or older than 5.1)".into()
        }
        Some(libc::EPERM) => match disabled {
            Some(2) => "io_uring is disabled on this machine: kernel.io_uring_disabled = 2 (fix: sysctl -w kernel.io_uring_disabled=0)".into(),
            Some(1) => "io_uring is restricted: kernel.io_uring_disabled = 1 allows only CAP_SYS_ADMIN or the group in kernel.io_uring_group (fix: sysctl -w kernel.io_uring_disabled=0, or run in that group)".into(),
            _ if seccomp_filtered() => format!(
                "io_uring_setup was refused (EPERM) by this process's seccomp filter (Seccomp: 2 in /proc/self/status), as Docker's default profile does ({SECCOMP_FIX})"
            ),
            _ => format!(
                "io_uring is blocked (EPERM): most likely a seccomp filter in a parent sandbox, as in Docker's default profile ({SECCOMP_FIX})"
            ),
        },
        Some(libc::ENOMEM) => {
            let memlock = memlock_kib().map(|k| format!("{k} KiB")).unwrap_or_else(|| "unknown".into());
            format!(
                "io_uring could not allocate its rings (ENOMEM): RLIMIT_MEMLOCK is {memlock}; raise it (ulimit -l unlimited, or LimitMEMLOCK=infinity in the systemd unit) or lower --ring-entries"
            )
        }
        _ => format!("io_uring setup failed: {e}"),
    }
}

/// A seccomp filter is installed on this process (mode 2 in /proc/self/status).
fn seccomp_filtered() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Seccomp:").map(|v| v.trim() == "2"))
        })
        .unwrap_or(false)
}

fn memlock_kib() -> Option<u64> {
    soft_rlimit(libc::RLIMIT_MEMLOCK).map(|b| b / 1024)
}

/// The soft limit of `resource` (RLIMIT_*), if it can be read.
pub fn soft_rlimit(resource: libc::__rlimit_resource_t) -> Option<u64> {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we pass and nothing else.
    let rc = unsafe { libc::getrlimit(resource, &mut r) };
    (rc == 0).then_some(r.rlim_cur)
}
