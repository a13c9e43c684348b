//! The doctor against fixture /proc and /sys trees: known inputs, expected grades and JSON.

use std::path::{Path, PathBuf};

use super::render;
use super::sys::Sys;
use super::*;
use crate::driver::uring::probe::KernelProbe;

struct Tree(PathBuf);

impl Tree {
    fn new(tag: &str) -> Tree {
        let p = std::env::temp_dir().join(format!(
            "uringd-doctor-{tag}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&p);
        Tree(p)
    }

    fn put(&self, rel: &str, text: &str) -> &Self {
        let p = self.0.join(rel.trim_start_matches('/'));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, format!("{text}\n")).unwrap();
        self
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn all_features() -> KernelProbe {
    KernelProbe {
        single_issuer: true,
        defer_taskrun: true,
        coop_taskrun: true,
        sqpoll: true,
        ext_arg: true,
        accept_multishot: true,
        recv_multishot: true,
        provided_buffer_rings: true,
        incremental_buffers: true,
        bundles: true,
        send_zc: true,
        splice: true,
        fixed_files: true,
        napi: true,
        zero_copy_receive: false,
    }
}

const LIMITS: &str = "Limit                     Soft Limit           Hard Limit           Units     \n\
Max open files            1024                 524288               files     \n\
Max locked memory         65536                65536                bytes     ";

fn busy_machine() -> Tree {
    let t = Tree::new("busy");
    t.put("/proc/sys/kernel/osrelease", "6.18.0-1-amd64")
        .put("/proc/sys/kernel/io_uring_disabled", "0")
        .put("/proc/self/limits", LIMITS)
        .put("/proc/sys/net/core/somaxconn", "128")
        .put("/proc/sys/net/ipv4/tcp_max_syn_backlog", "512")
        .put("/proc/sys/net/core/netdev_max_backlog", "1000")
        .put("/proc/sys/net/core/busy_poll", "0")
        .put("/proc/sys/net/core/busy_read", "50")
        .put("/proc/sys/net/ipv4/tcp_fastopen", "1")
        .put("/proc/sys/net/ipv4/ip_local_port_range", "32768\t60999")
        .put("/proc/sys/net/ipv4/tcp_rmem", "4096\t131072\t6291456")
        .put("/proc/sys/net/ipv4/tcp_wmem", "4096\t16384\t4194304")
        .put("/proc/sys/net/core/rmem_max", "212992")
        .put("/proc/sys/net/core/wmem_max", "212992")
        .put("/sys/devices/system/cpu/online", "0-3")
        .put("/sys/devices/system/cpu/isolated", "2-3")
        .put("/sys/devices/system/cpu/nohz_full", "(null)")
        .put(
            "/sys/kernel/mm/transparent_hugepage/enabled",
            "[always] madvise never",
        )
        .put("/sys/class/net/lo/queues/rx-0/rps_cpus", "0")
        .put("/sys/class/net/eth0/queues/rx-0/rps_cpus", "0")
        .put("/sys/class/net/eth0/queues/tx-0/xps_cpus", "0")
        .put("/sys/class/net/eth0/queues/tx-1/xps_cpus", "0")
        .put("/sys/class/net/eth0/device/msi_irqs/25", "msix")
        .put("/sys/class/net/eth0/device/msi_irqs/26", "msix")
        .put("/proc/irq/25/smp_affinity_list", "0")
        .put("/proc/irq/26/smp_affinity_list", "1")
        // A bridge: no device, not a NIC to tune.
        .put("/sys/class/net/br0/queues/rx-0/rps_cpus", "0");
    t
}

fn grade(found: &[Finding], key: &str) -> Grade {
    found
        .iter()
        .find(|f| f.key == key)
        .unwrap_or_else(|| panic!("no finding {key}"))
        .grade
}

#[test]
fn a_busy_machine_gets_advice_where_due() {
    let t = busy_machine();
    let x = gather(&Sys::new(t.path()), Ok(all_features()));
    let found = judge(&x);
    assert_eq!(grade(&found, "kernel"), Grade::Ok);
    assert_eq!(grade(&found, "io_uring"), Grade::Ok);
    assert_eq!(grade(&found, "recv_multishot"), Grade::Ok);
    assert_eq!(grade(&found, "zero_copy_receive"), Grade::Ok);
    assert_eq!(grade(&found, "nofile"), Grade::Problem);
    assert_eq!(
        grade(&found, "memlock"),
        Grade::Ok,
        "6.18 does not charge memlock"
    );
    assert_eq!(grade(&found, "somaxconn"), Grade::Advice);
    assert_eq!(grade(&found, "tcp_max_syn_backlog"), Grade::Advice);
    assert_eq!(grade(&found, "netdev_max_backlog"), Grade::Ok);
    assert_eq!(grade(&found, "ip_local_port_range"), Grade::Ok);
    assert_eq!(grade(&found, "transparent_hugepages"), Grade::Advice);
    assert_eq!(grade(&found, "nic_queues"), Grade::Advice);
    let some = found.iter().find(|f| f.key == "somaxconn").unwrap();
    assert_eq!(
        some.fix.as_deref(),
        Some("sysctl -w net.core.somaxconn=4096")
    );
    assert!(some.meaning.contains("capped at 128"));
    let nic = found.iter().find(|f| f.key == "nic_queues").unwrap();
    assert!(
        nic.value
            .contains("eth0: 1 rx / 2 tx queue(s); IRQs 25->0 26->1"),
        "{}",
        nic.value
    );
    assert_eq!(
        nic.fix.as_deref(),
        Some("echo f > /sys/class/net/eth0/queues/rx-0/rps_cpus")
    );
    assert_eq!(x.nics.len(), 1, "lo and a bridge are not NICs");

    let v = render::json(&x, &found);
    assert_eq!(v["kernel"], "6.18.0-1-amd64");
    assert_eq!(v["io_uring"]["available"], true);
    assert_eq!(v["io_uring"]["io_uring_disabled"], 0);
    assert_eq!(v["sysctls"]["somaxconn"], 128);
    assert_eq!(v["sysctls"]["busy_read"], 50);
    assert_eq!(
        v["sysctls"]["ip_local_port_range"],
        serde_json::json!([32768, 60999])
    );
    assert_eq!(
        v["sysctls"]["tcp_rmem"],
        serde_json::json!([4096, 131072, 6291456])
    );
    assert_eq!(v["limits"]["nofile"]["soft"], 1024);
    assert_eq!(v["limits"]["memlock"]["hard"], 65536);
    assert_eq!(v["features"]["recv_multishot"], true);
    assert_eq!(v["features"]["send_zc"], true);
    assert_eq!(v["features"]["defer_taskrun"], true);
    assert_eq!(v["features"]["napi"], true);
    assert_eq!(v["features"]["zero_copy_receive"], false);
    assert_eq!(v["cpus"]["count"], 4);
    assert_eq!(v["cpus"]["isolated"], "2-3");
    assert_eq!(v["cpus"]["nohz_full"], serde_json::Value::Null);
    assert_eq!(v["cpus"]["transparent_hugepages"], "always");
    assert_eq!(v["nics"][0]["irqs"][1]["cpus"], "1");
    assert_eq!(v["summary"]["problem"], 1);

    let text = render::text(&x, &found);
    assert!(
        text.starts_with("uringd doctor: Linux 6.18.0-1-amd64 on 4 CPU(s)"),
        "{text}"
    );
    assert!(text.contains("  [advice]  somaxconn = 128: "), "{text}");
    assert!(
        text.contains("fix: sysctl -w net.core.somaxconn=4096"),
        "{text}"
    );
    assert!(
        text.contains("[problem] nofile = 1024 (hard 524288)"),
        "{text}"
    );
}

#[test]
fn a_machine_without_io_uring() {
    let t = Tree::new("nouring");
    t.put("/proc/sys/kernel/osrelease", "5.10.0-28-amd64")
        .put("/proc/sys/kernel/io_uring_disabled", "2")
        .put("/proc/self/limits", LIMITS)
        .put("/proc/sys/net/ipv4/ip_local_port_range", "60000 61000")
        .put("/sys/devices/system/cpu/online", "0");
    let why = "io_uring is disabled on this machine: kernel.io_uring_disabled = 2".to_string();
    let x = gather(&Sys::new(t.path()), Err(why.clone()));
    let found = judge(&x);
    assert_eq!(grade(&found, "kernel"), Grade::Problem);
    assert_eq!(grade(&found, "io_uring"), Grade::Advice);
    let f = found.iter().find(|f| f.key == "io_uring").unwrap();
    assert!(f.meaning.starts_with(&why), "{}", f.meaning);
    assert!(f.meaning.contains("epoll"), "{}", f.meaning);
    assert_eq!(
        f.fix.as_deref(),
        Some("sysctl -w kernel.io_uring_disabled=0")
    );
    // No probe, so no feature findings rather than false "no"s.
    assert!(found.iter().all(|f| f.key != "recv_multishot"));
    // Old kernels charge rings to memlock: 64 KiB is too little.
    assert_eq!(grade(&found, "memlock"), Grade::Problem);
    assert_eq!(grade(&found, "ip_local_port_range"), Grade::Advice);
    // Absent sysctls are reported as such, not invented.
    assert_eq!(grade(&found, "somaxconn"), Grade::Ok);
    assert_eq!(
        found.iter().find(|f| f.key == "somaxconn").unwrap().value,
        "n/a"
    );
    assert_eq!(grade(&found, "nics"), Grade::Ok);

    let v = render::json(&x, &found);
    assert_eq!(v["io_uring"]["available"], false);
    assert_eq!(v["io_uring"]["reason"], why.as_str());
    assert_eq!(v["io_uring"]["io_uring_disabled"], 2);
    assert_eq!(v["features"], serde_json::Value::Null);
    assert_eq!(v["sysctls"]["somaxconn"], serde_json::Value::Null);
    // kernel, memlock, and nofile 1024 (no io_uring is advice: epoll runs instead).
    assert_eq!(v["summary"]["problem"], 3);
}

#[test]
fn kernel_tls_is_reported_from_the_available_upper_layer_protocols() {
    let ktls = |ulp: Option<&str>| {
        let t = Tree::new(&format!("ulp{}", ulp.map_or(0, str::len)));
        t.put("/proc/sys/kernel/osrelease", "6.18.0-1-amd64");
        if let Some(u) = ulp {
            t.put("/proc/sys/net/ipv4/tcp_available_ulp", u);
        }
        let x = gather(&Sys::new(t.path()), Ok(all_features()));
        let found = judge(&x);
        let f = found
            .iter()
            .find(|f| f.key == "tcp_available_ulp")
            .expect("a kTLS finding")
            .clone();
        (f, render::json(&x, &found))
    };
    let (f, v) = ktls(Some("mptcp"));
    assert_eq!(f.value, "mptcp");
    assert!(f.meaning.contains("no kernel TLS"), "{}", f.meaning);
    assert!(
        f.fix
            .as_deref()
            .is_some_and(|x| x.starts_with("modprobe tls"))
    );
    assert_eq!(v["sysctls"]["tcp_available_ulp"], "mptcp");
    let (f, _) = ktls(Some("espintcp mptcp tls"));
    assert!(f.meaning.contains("kTLS) is available"), "{}", f.meaning);
    assert_eq!(f.fix, None);
    let (f, v) = ktls(None);
    assert_eq!(f.value, "n/a");
    assert_eq!(v["sysctls"]["tcp_available_ulp"], serde_json::Value::Null);
}
