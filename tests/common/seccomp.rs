//! Runs a child under a seccomp filter that refuses io_uring_setup, as Docker's default
//! profile does, to check the epoll fallback for real.

use std::os::unix::process::CommandExt;
use std::process::Command;

const BPF_LD_W_ABS: u16 = 0x20;
const BPF_JEQ_K: u16 = 0x15;
const BPF_RET_K: u16 = 0x06;
/// Offsets in `struct seccomp_data`.
const NR: u32 = 0;
const ARCH: u32 = 4;

#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xC000_003E;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xC000_00B7;

fn op(code: u16, jt: u8, jf: u8, k: u32) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

/// Makes `cmd`'s process see `errno` from io_uring_setup (EPERM is Docker's answer).
pub fn block_io_uring(cmd: &mut Command, errno: i32) {
    let prog = [
        op(BPF_LD_W_ABS, 0, 0, ARCH),
        op(BPF_JEQ_K, 1, 0, AUDIT_ARCH),
        op(BPF_RET_K, 0, 0, libc::SECCOMP_RET_ALLOW),
        op(BPF_LD_W_ABS, 0, 0, NR),
        op(BPF_JEQ_K, 0, 1, libc::SYS_io_uring_setup as u32),
        op(
            BPF_RET_K,
            0,
            0,
            libc::SECCOMP_RET_ERRNO | (errno as u32 & 0xffff),
        ),
        op(BPF_RET_K, 0, 0, libc::SECCOMP_RET_ALLOW),
    ];
    // SAFETY: runs in the child between fork and exec and calls only prctl (async-signal
    // safe); `prog` was built before the fork and is only read.
    unsafe {
        cmd.pre_exec(move || {
            let fprog = libc::sock_fprog {
                len: prog.len() as u16,
                filter: prog.as_ptr() as *mut libc::sock_filter,
            };
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
                || libc::prctl(
                    libc::PR_SET_SECCOMP,
                    libc::SECCOMP_MODE_FILTER,
                    &fprog as *const libc::sock_fprog,
                ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}
