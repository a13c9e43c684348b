//! `[[app]]` fleets that change while serving (issue 19): a reload (SIGHUP) replaces every
//! instance one at a time with the new config, adds and removes apps and instances;
//! cheaper mode (min_processes/max_processes) starts instances while requests wait and
//! stops them once idle; `user`/`group` run the app as another user.

#[path = "common/apps.rs"]
mod app;
#[path = "common/backend.rs"]
mod backend;
mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use app::*;
use backend::{process_group_members, wait_until};
use common::*;

/// The app config with ECHO_SERVER (which the app reports as "server") set to `tag`.
fn tagged(tag: &str, processes: usize, extra: &str) -> String {
    app_config(processes, extra).replace(
        "ECHO_SERVER = \"gunicorn\"",
        &format!("ECHO_SERVER = \"{tag}\""),
    )
}

/// The "server" the app answering a request reports.
fn server_of(s: &Server, path: &str) -> String {
    let r = request(s.addr, "GET", path, "Connection: close\r\n");
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    v["server"].as_str().unwrap_or_default().to_string()
}

/// Where uringd (pid `pid`) keeps its apps' sockets.
fn socket_dir(pid: u32) -> PathBuf {
    std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|p| p.is_dir())
        .unwrap_or_else(std::env::temp_dir)
        .join(format!("uringd-{pid}-apps"))
}

fn instances(s: &Server, app: usize) -> Vec<serde_json::Value> {
    apps_json(s)["apps"][app]["instances"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn serving(i: &serde_json::Value) -> bool {
    matches!(i["state"].as_str(), Some("ready" | "busy"))
}

fn reload(s: &Server, path: &Path, cfg: &str) {
    std::fs::write(path, cfg).unwrap();
    signal(s.pid(), libc::SIGHUP);
}

/// uringd on a config file of its own (`cfg`) that a test rewrites and reloads.
fn start_reloadable(tag: &str, cfg: &str) -> (TempDir, PathBuf, Server) {
    let d = TempDir::new(tag);
    let path = d.0.join("u.toml");
    std::fs::write(&path, cfg).unwrap();
    let p = path.to_str().unwrap();
    let s = Server::start(None, &["--config", p, "--admin", "127.0.0.1:0"]);
    (d, path, s)
}

#[test]
fn sighup_replaces_every_instance_one_at_a_time_with_the_new_config_under_load() {
    let (_d, path, s) = start_reloadable("apps-hup", &tagged("v1", 2, ""));
    let before = instance_pids(&s, 2);
    assert_eq!(server_of(&s, "/a"), "v1");
    let stop = Arc::new(AtomicBool::new(false));
    let loads: Vec<_> = (0..2).map(|_| steady_load(s.addr, stop.clone())).collect();
    std::thread::sleep(Duration::from_millis(300));
    // A new tag and one instance more.
    reload(&s, &path, &tagged("v2", 3, ""));
    let mut least = usize::MAX;
    let replaced = wait_until(Duration::from_secs(40), || {
        let list = instances(&s, 0);
        least = least.min(list.iter().take(2).filter(|i| serving(i)).count());
        list.len() == 3
            && list.iter().all(serving)
            && list
                .iter()
                .all(|i| !before.iter().any(|&b| i["pid"] == u64::from(b)))
    });
    assert!(replaced, "all replaced: {}", apps_json(&s));
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::Relaxed);
    let (ok, failed) = loads
        .into_iter()
        .map(|l| l.join().unwrap())
        .fold((0, 0), |(a, b), (c, d)| (a + c, b + d));
    assert_eq!(failed, 0, "{ok} answered, {failed} failed");
    assert!(ok > 20, "the load ran: {ok}");
    assert!(least >= 1, "capacity never below processes - 1");
    assert_eq!(
        server_of(&s, "/b"),
        "v2",
        "the new config's instances answer"
    );

    // Down to one: the other two stop, and their sockets go.
    reload(&s, &path, &tagged("v3", 1, ""));
    let dir = socket_dir(s.pid());
    let shrunk = wait_until(Duration::from_secs(30), || {
        let list = instances(&s, 0);
        list.len() == 1
            && serving(&list[0])
            && !dir.join("web-1.sock").exists()
            && !dir.join("web-2.sock").exists()
    });
    assert!(shrunk, "one instance left: {}", apps_json(&s));
    assert!(dir.join("web-0.sock").exists());
    assert_eq!(server_of(&s, "/c"), "v3");
}

#[test]
fn a_reload_starts_a_new_app_and_stops_a_removed_one() {
    let (_d, path, s) = start_reloadable("apps-add", &tagged("web", 1, ""));
    instance_pids(&s, 1);
    let api = tagged("api", 1, "")
        .replace("name = \"web\"", "name = \"api\"")
        .replace("upstream = \"app:web\"", "upstream = \"app:api\"")
        .replace("prefix = \"/\"", "prefix = \"/api/\"");
    reload(&s, &path, &format!("{}{api}", tagged("web", 1, "")));
    let up = wait_until(Duration::from_secs(30), || {
        let v = apps_json(&s);
        v["apps"][1]["name"] == "api" && v["apps"][1]["instances"][0]["state"] == "ready"
    });
    assert!(up, "the new app started: {}", apps_json(&s));
    assert_eq!(server_of(&s, "/api/x"), "api");
    assert_eq!(server_of(&s, "/x"), "web");
    let api_shim = instances(&s, 1)[0]["pid"].as_u64().unwrap() as u32;
    let group = app_master(api_shim);
    reload(&s, &path, &tagged("web", 1, ""));
    let gone = wait_until(Duration::from_secs(30), || {
        apps_json(&s)["apps"]
            .as_array()
            .is_some_and(|a| a.len() == 1)
            && process_group_members(group).is_empty()
            && !socket_dir(s.pid()).join("api-0.sock").exists()
    });
    assert!(gone, "the removed app stopped: {}", apps_json(&s));
    assert_eq!(server_of(&s, "/api/x"), "web", "its route went with it");
}

#[test]
fn cheaper_mode_starts_instances_while_requests_wait_and_stops_them_when_idle() {
    let extra =
        "min_processes = 1\nmax_processes = 3\nidle_timeout = \"1s\"\nqueue_timeout = \"30s\"";
    let s = Server::start(Some(&app_config(1, extra)), &["--admin", "127.0.0.1:0"]);
    instance_pids(&s, 1);
    let states = |s: &Server| -> Vec<String> {
        instances(s, 0)
            .iter()
            .map(|i| i["state"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    assert!(
        wait_until(Duration::from_secs(5), || states(&s)
            == ["ready", "stopped", "stopped"]),
        "one of three running: {}",
        apps_json(&s)
    );
    let v = apps_json(&s);
    assert_eq!(v["apps"][0]["min_processes"], 1);
    assert_eq!(v["apps"][0]["max_processes"], 3);
    // Three slow requests at once: two wait, and the queue brings up two more instances.
    let addr = s.addr;
    let slow: Vec<_> = (0..3)
        .map(|_| {
            std::thread::spawn(move || {
                request(addr, "GET", "/slow/3000", "Connection: close\r\n").status
            })
        })
        .collect();
    let grew = wait_until(Duration::from_secs(20), || {
        instances(&s, 0).iter().filter(|i| serving(i)).count() == 3
    });
    let codes: Vec<u16> = slow.into_iter().map(|t| t.join().unwrap()).collect();
    assert!(grew, "three instances ran: {}", apps_json(&s));
    assert_eq!(codes, [200, 200, 200]);
    let shrank = wait_until(Duration::from_secs(20), || {
        states(&s) == ["ready", "stopped", "stopped"]
    });
    assert!(shrank, "back to min_processes once idle: {}", apps_json(&s));
    let m = request(s.admin.unwrap(), "GET", "/_uringd/metrics", "");
    let text = String::from_utf8_lossy(&m.body);
    assert!(
        text.contains("uringd_app_instances{app=\"web\",state=\"stopped\"} 2\n"),
        "{text}"
    );
    assert_eq!(served_by(&s, "/x").0, 200);
}

#[test]
fn user_runs_the_app_as_that_user_or_says_it_needs_root() {
    let id = |flag: &str| -> u64 {
        let out = std::process::Command::new("id")
            .args([flag, "nobody"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    };
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        let e = start_error(&app_config(1, "user = \"nobody\""));
        assert!(e.contains("needs uringd started as root"), "{e}");
        return;
    }
    // The app's files where nobody can read them (the checkout may not be).
    let d = TempDir::new("apps-user");
    let src = std::env::current_dir()
        .unwrap()
        .join("tests/backends/echo_app.py");
    std::fs::copy(src, d.0.join("echo_app.py")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&d.0, std::fs::Permissions::from_mode(0o755)).unwrap();
    let backends = std::env::current_dir().unwrap().join("tests/backends");
    let cfg = app_config(1, "user = \"nobody\"")
        .replace(&backends.display().to_string(), &d.0.display().to_string());
    let s = Server::start(Some(&cfg), &[]);
    instance_pids(&s, 1);
    let r = request(s.addr, "GET", "/who", "Connection: close\r\n");
    assert_eq!(r.status, 200);
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["uid"], id("-u"), "{v}");
    assert_eq!(v["gid"], id("-g"), "{v}");
    use std::os::unix::fs::MetadataExt;
    let sock = std::fs::metadata(socket_dir(s.pid()).join("web-0.sock")).unwrap();
    assert_eq!(
        u64::from(sock.uid()),
        id("-u"),
        "the socket is the app user's"
    );
    assert_eq!(sock.mode() & 0o777, 0o600);
}
