//! What this kernel's io_uring offers, tried rather than guessed from the version: each
//! setup flag by building a small ring with it, each op through IORING_REGISTER_PROBE, and
//! each registration by doing it (and undoing it) on a scratch ring. Used by `uringd doctor`.

use std::io;

use io_uring::{IoUring, Probe, opcode};

use crate::driver::bufring::Mapping;

/// Probe results, by the names `uringd doctor --json` uses.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KernelProbe {
    pub single_issuer: bool,
    pub defer_taskrun: bool,
    pub coop_taskrun: bool,
    pub sqpoll: bool,
    pub ext_arg: bool,
    pub accept_multishot: bool,
    pub recv_multishot: bool,
    pub provided_buffer_rings: bool,
    pub incremental_buffers: bool,
    pub bundles: bool,
    pub send_zc: bool,
    pub splice: bool,
    pub fixed_files: bool,
    pub napi: bool,
    pub zero_copy_receive: bool,
}

/// IOU_PBUF_RING_INC: buffers consumed incrementally (Linux 6.12).
const PBUF_RING_INC: u16 = 2;

fn try_build(f: impl Fn(&mut io_uring::Builder)) -> bool {
    let mut b = IoUring::builder();
    f(&mut b);
    b.build(8).is_ok()
}

/// Runs every probe. Fails only when io_uring itself is unavailable (the error says why:
/// pass it to `explain_setup_error`).
pub fn probe_kernel() -> io::Result<KernelProbe> {
    let uring = IoUring::new(8)?;
    let mut k = KernelProbe {
        ext_arg: uring.params().is_feature_ext_arg(),
        bundles: uring.params().is_feature_recvsend_bundle(),
        single_issuer: try_build(|b| {
            b.setup_single_issuer();
        }),
        defer_taskrun: try_build(|b| {
            b.setup_single_issuer().setup_defer_taskrun();
        }),
        coop_taskrun: try_build(|b| {
            b.setup_coop_taskrun().setup_taskrun_flag();
        }),
        sqpoll: try_build(|b| {
            b.setup_sqpoll(10);
        }),
        ..KernelProbe::default()
    };
    let mut p = Probe::new();
    if uring.submitter().register_probe(&mut p).is_ok() {
        // Multishot accept came with IORING_OP_SOCKET (5.19), multishot recv with SEND_ZC
        // (6.0): there is no opcode for a flag, so the op of the same release stands in.
        k.accept_multishot = p.is_supported(opcode::Socket::CODE);
        k.send_zc = p.is_supported(opcode::SendZc::CODE);
        k.recv_multishot = k.send_zc;
        k.splice = p.is_supported(opcode::Splice::CODE);
        k.zero_copy_receive = p.is_supported(opcode::RecvZc::CODE);
    }
    k.fixed_files = uring.submitter().register_files_sparse(4).is_ok();
    let mut napi = io_uring::types::Napi::new().set_busy_poll_timeout(1);
    if uring.submitter().register_napi(&mut napi).is_ok() {
        k.napi = true;
        let _ = uring.submitter().unregister_napi(&mut napi);
    }
    (k.provided_buffer_rings, k.incremental_buffers) = probe_buf_rings(&uring);
    Ok(k)
}

fn probe_buf_rings(uring: &IoUring) -> (bool, bool) {
    let Ok(map) = Mapping::new(4096, false) else {
        return (false, false);
    };
    let mut out = [false, false];
    for (slot, (bgid, flags)) in out.iter_mut().zip([(1u16, 0u16), (2, PBUF_RING_INC)]) {
        // SAFETY: the page-aligned mapping holds 8 entries and outlives the registration,
        // which is undone right away; no op ever selects from these groups.
        let ok = unsafe {
            uring
                .submitter()
                .register_buf_ring_with_flags(map.ptr as u64, 8, bgid, flags)
                .is_ok()
        };
        if ok {
            *slot = true;
            let _ = uring.submitter().unregister_buf_ring(bgid);
        }
    }
    (out[0], out[1])
}
