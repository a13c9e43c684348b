//! `[[app]]` (issue 19): uringd runs gunicorn and uWSGI instances on sockets it owns,
//! routes to an idle one, brings back one that dies, kills one past harakiri, recycles
//! them, and leaves none behind, even when it is killed itself. Reloads, cheaper mode and
//! users: tests/apps_fleet.rs.

#[path = "common/apps.rs"]
mod app;
#[path = "common/backend.rs"]
mod backend;
mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use app::*;
use backend::{process_group_members, wait_until};
use common::*;

#[test]
fn two_instances_serve_two_slow_requests_at_once_and_each_its_own() {
    let s = Server::start(Some(&app_config(2, "")), &[]);
    assert_eq!(
        instance_pids(&s, 2).len(),
        2,
        "both instances said they are ready"
    );
    let a = std::thread::spawn({
        let addr = s.addr;
        move || request(addr, "GET", "/slow/3000", "Connection: close\r\n").status
    });
    std::thread::sleep(Duration::from_millis(300));
    let t0 = Instant::now();
    let (status, _) = served_by(&s, "/x");
    assert_eq!(status, 200);
    assert!(
        t0.elapsed() < Duration::from_secs(2),
        "the second request went to the idle instance, not behind the busy one (3 s): {:?}",
        t0.elapsed()
    );
    assert_eq!(a.join().unwrap(), 200);
    let pids: std::collections::HashSet<_> = (0..6).filter_map(|_| served_by(&s, "/y").1).collect();
    assert!(!pids.is_empty());
}

#[test]
fn a_killed_instance_comes_back_and_the_other_keeps_serving() {
    let s = Server::start(Some(&app_config(2, "")), &["--admin", "127.0.0.1:0"]);
    let shims = instance_pids(&s, 2);
    assert_eq!(shims.len(), 2);
    let apps = |s: &Server| -> serde_json::Value {
        let r = request(s.admin.unwrap(), "GET", "/_uringd/apps", "");
        assert_eq!(r.status, 200);
        serde_json::from_slice(&r.body).unwrap()
    };
    // The supervisor's list is written after the lines it prints: wait for it to agree.
    wait_until(Duration::from_secs(5), || {
        apps(&s)["apps"][0]["instances"]
            .as_array()
            .is_some_and(|l| l.iter().all(|i| i["state"] == "ready"))
    });
    let before = apps(&s);
    let web = &before["apps"][0];
    assert_eq!(web["name"], "web");
    for (n, i) in web["instances"].as_array().unwrap().iter().enumerate() {
        assert_eq!(i["instance"], n);
        assert_eq!(i["pid"], shims[n], "{before}");
        assert_eq!(i["state"], "ready", "{before}");
        assert!(
            i["rss_kib"].as_u64().unwrap() > 1000,
            "a Python process: {before}"
        );
        assert_eq!(i["respawns"], 0);
    }
    let master = app_master(shims[0]);
    // SAFETY: a signal to a process this test started (through uringd).
    unsafe { libc::kill(master as i32, libc::SIGKILL) };
    // Requests go on being answered (the live instance, then both) while it comes back.
    let mut failed = 0;
    for _ in 0..20 {
        if served_by(&s, "/x").0 != 200 {
            failed += 1;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // Only a request in flight on the killed instance fails: requests go one at a time,
    // so at most the one its orphaned worker held when the shim took the group down (cut
    // short, a clean close). Those waiting on its socket are served by the next instance.
    assert!(failed <= 1, "{failed} requests failed");
    let mut back = false;
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline && !back {
        if let Ok(l) = s.log.recv_timeout(Duration::from_millis(200)) {
            back = l.contains("instance 0 (pid") && l.contains(") ready in ");
        }
    }
    assert!(back, "instance 0 was started again and is ready");
    let after = apps(&s);
    let i0 = &after["apps"][0]["instances"][0];
    assert_eq!(i0["respawns"], 1, "{after}");
    assert_ne!(i0["pid"], shims[0], "{after}");
    let served: u64 = after["apps"][0]["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["requests"].as_u64().unwrap())
        .sum();
    let m = request(s.admin.unwrap(), "GET", "/_uringd/metrics", "");
    let text = String::from_utf8_lossy(&m.body);
    assert!(
        text.contains("uringd_app_respawns_total{app=\"web\",instance=\"0\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("uringd_app_respawns_total{app=\"web\",instance=\"1\"} 0\n"),
        "{text}"
    );
    assert!(
        text.contains("# TYPE uringd_app_instances gauge\n"),
        "{text}"
    );
    assert!(
        text.contains("uringd_app_instances{app=\"web\",state=\"dead\"} 0\n"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "uringd_app_instance_info{{app=\"web\",instance=\"1\",pid=\"{}\",state=\"ready\"}} 1\n",
            shims[1]
        )),
        "{text}"
    );
    let rss = text
        .lines()
        .find_map(|l| l.strip_prefix("uringd_app_rss_bytes{app=\"web\",instance=\"1\"} "))
        .and_then(|v| v.parse::<u64>().ok());
    assert!(rss.is_some_and(|b| b > 1 << 20), "{text}");
    // The dashboard's overview has the same, with the app's own pid.
    let d = request(s.admin.unwrap(), "GET", "/_uringd/", "");
    let html = String::from_utf8_lossy(&d.body);
    let panel = html.split("<h2>Apps</h2>").nth(1).unwrap_or_default();
    let row = format!(
        "<tr><td>web</td><td>1</td><td>{}</td>",
        app_master(shims[1])
    );
    assert!(panel.contains(&row), "{html}");
    // Counted per instance since it started: what the killed one served is gone with it.
    assert!(served >= 18, "the 20 requests counted: {after}");
}

#[test]
fn sigkill_of_uringd_leaves_no_instance_running() {
    let mut s = Server::start(Some(&app_config(2, "")), &[]);
    let shims = instance_pids(&s, 2);
    let groups: Vec<u32> = shims.iter().map(|&p| app_master(p)).collect();
    for &g in &groups {
        assert!(!process_group_members(g).is_empty());
    }
    let _ = s.child.kill();
    let _ = s.child.wait();
    // Each shim leads a group of its own too. Gone means not running: an exited shim may
    // stay a zombie until init reaps it, which is init's pace, not ours.
    let gone = wait_until(Duration::from_secs(2), || {
        groups
            .iter()
            .chain(&shims)
            .all(|&g| process_group_members(g).is_empty())
    });
    assert!(
        gone,
        "processes left: {:?}",
        groups
            .iter()
            .chain(&shims)
            .map(|&g| process_group_members(g))
            .collect::<Vec<_>>()
    );
}

#[test]
fn a_stop_stops_the_instances_and_removes_their_sockets() {
    let mut s = Server::start(Some(&app_config(1, "kill_timeout = \"2s\"")), &[]);
    let shim = instance_pids(&s, 1)[0];
    let group = app_master(shim);
    let dir = format!("/tmp/uringd-{}-apps", s.pid());
    assert!(std::path::Path::new(&dir).is_dir() || std::env::var_os("XDG_RUNTIME_DIR").is_some());
    assert_eq!(s.terminate(Duration::from_secs(10)), Some(0));
    assert!(process_group_members(group).is_empty());
    assert!(!std::path::Path::new(&dir).exists(), "{dir} removed");
}

#[test]
fn a_missing_command_and_one_that_exits_at_once_are_clear_errors() {
    let route = "[[route]]\nprefix = \"/\"\nupstream = \"app:web\"\n";
    let e = start_error(&format!(
        "[[app]]\nname = \"web\"\ncommand = [\"no-such-app-server\", \"{{socket}}\"]\n{route}"
    ));
    assert!(
        e.contains("app web: cannot start `no-such-app-server`: no such program"),
        "{e}"
    );
    let e = start_error(&format!(
        "[[app]]\nname = \"web\"\ncommand = [\"sh\", \"-c\", \"echo cannot import mysite >&2; exit 3\"]\n{route}"
    ));
    assert!(e.contains("app web: `sh -c echo cannot import mysite >&2; exit 3` exited before it was ready (exit status: 3)"), "{e}");
    assert!(
        e.contains("    cannot import mysite"),
        "its last lines: {e}"
    );
}

#[test]
fn app_settings_are_checked() {
    let check = |cfg: &str| {
        let d = TempDir::new("apps-check");
        let p = d.0.join("u.toml");
        std::fs::write(&p, cfg).unwrap();
        let out = Command::new(BIN)
            .arg("check")
            .arg("--config")
            .arg(&p)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout)
    };
    let app = "[[app]]\nname = \"web\"\ncommand = [\"gunicorn\"]\n";
    let e = check(&format!(
        "{app}[[route]]\nprefix = \"/\"\nupstream = \"app:nope\"\n"
    ));
    assert!(e.contains("no [[app]] is named \"nope\""), "{e}");
    let route = "[[route]]\nprefix = \"/\"\nupstream = \"app:web\"\n";
    let e = check(&format!(
        "{app}min_processes = 4\nmax_processes = 2\n{route}"
    ));
    assert!(
        e.contains("app[0]: min_processes (4) <= processes (4) <= max_processes (2) does not hold"),
        "{e}"
    );
    let e = check(&format!("{app}max_processes = 65\n{route}"));
    assert!(e.contains("app[0].max_processes = 65: use 1 to 64"), "{e}");
    let e = check(&format!("{app}user = \"no-such-user-here\"\n{route}"));
    assert!(
        e.contains("app[0].user = \"no-such-user-here\": no such user on this machine"),
        "{e}"
    );
    let e = check(&format!("{app}group = \"no-such-group-here\"\n{route}"));
    assert!(
        e.contains("app[0].group = \"no-such-group-here\": no such group"),
        "{e}"
    );
    let e = check(&format!("{app}idle_timeout = \"soon\"\n{route}"));
    assert!(e.contains("app[0].idle_timeout"), "{e}");
    let e = check(
        "[[app]]\nname = \"web\"\nprotocol = \"fastcgi\"\ncommand = [\"x\"]\n[[route]]\nprefix = \"/\"\nreturn = { status = 200 }\n",
    );
    assert!(
        e.contains("app[0].protocol = \"fastcgi\": use \"http\" or \"uwsgi\""),
        "{e}"
    );
}

#[test]
fn uwsgi_instances_speak_the_uwsgi_protocol() {
    let dir = std::env::current_dir().unwrap().join("tests/backends");
    let cfg = format!(
        "[[app]]\nname = \"wsgi\"\ncommand = [\"uwsgi\", \"--need-plugin\", \"python3\", \"--master\", \"--processes\", \"1\", \"--chdir\", \"{}\", \"--module\", \"echo_app:app\", \"--socket\", \"{{socket}}\"]\nprotocol = \"uwsgi\"\nprocesses = 2\nenv = {{ PYTHONDONTWRITEBYTECODE = \"1\", ECHO_SERVER = \"uwsgi\" }}\n[[route]]\nprefix = \"/\"\nupstream = \"app:wsgi\"\n",
        dir.display()
    );
    let s = Server::start(Some(&cfg), &[]);
    assert_eq!(instance_pids(&s, 2).len(), 2);
    let r = request(s.addr, "GET", "/who?x=1", "Connection: close\r\n");
    assert_eq!(r.status, 200);
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["server"], "uwsgi", "{v}");
    assert_eq!(v["path"], "/who", "{v}");
}

#[test]
fn harakiri_answers_504_and_replaces_the_instance() {
    let s = Server::start(Some(&app_config(1, "harakiri = \"1s\"")), &[]);
    let first = instance_pids(&s, 1)[0];
    let t0 = Instant::now();
    let r = request(s.addr, "GET", "/slow/10000", "Connection: close\r\n");
    assert_eq!(r.status, 504);
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
    let mut next = None;
    let deadline = Instant::now() + Duration::from_secs(15);
    while next.is_none() && Instant::now() < deadline {
        if let Ok(l) = s.log.recv_timeout(Duration::from_millis(200)) {
            next = ready_pid(&l);
        }
    }
    let next = next.expect("the instance came back");
    assert_ne!(next, first, "a new process");
    assert_eq!(served_by(&s, "/x").0, 200);
}

#[test]
fn max_requests_recycles_instances_without_a_failed_request() {
    let s = Server::start(Some(&app_config(2, "max_requests = 50")), &[]);
    let pids = std::sync::Arc::new(std::sync::Mutex::new(std::collections::HashSet::new()));
    let failed = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (addr, pids, failed) = (s.addr, pids.clone(), failed.clone());
            std::thread::spawn(move || {
                for _ in 0..60 {
                    let r = request(addr, "GET", "/x", "Connection: close\r\n");
                    let pid = serde_json::from_slice::<serde_json::Value>(&r.body)
                        .ok()
                        .and_then(|v| v["pid"].as_u64());
                    match (r.status, pid) {
                        (200, Some(p)) => {
                            pids.lock().unwrap().insert(p);
                        }
                        _ => {
                            failed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(failed.load(std::sync::atomic::Ordering::Relaxed), 0);
    let n = pids.lock().unwrap().len();
    assert!(
        n >= 4,
        "240 requests over 2 instances recycled near every 50: {n} pids"
    );
}

/// Requests every 20 ms on a thread until `stop`; the failures.
#[test]
fn touch_reload_replaces_instances_one_at_a_time_with_no_failed_request() {
    let d = TempDir::new("apps-touch");
    let touch = d.0.join("reload");
    std::fs::write(&touch, "1").unwrap();
    let extra = format!("touch_reload = \"{}\"", touch.display());
    let s = Server::start(Some(&app_config(2, &extra)), &["--admin", "127.0.0.1:0"]);
    let before = instance_pids(&s, 2);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = steady_load(s.addr, stop.clone());
    std::thread::sleep(Duration::from_millis(300));
    std::fs::write(&touch, "2").unwrap();
    let mut least_ready = usize::MAX;
    let replaced = wait_until(Duration::from_secs(30), || {
        let v = apps_json(&s);
        let list = v["apps"][0]["instances"].as_array().unwrap().clone();
        let ready = list
            .iter()
            .filter(|i| matches!(i["state"].as_str(), Some("ready" | "busy")))
            .count();
        least_ready = least_ready.min(ready);
        list.iter()
            .zip(&before)
            .all(|(i, &old)| i["pid"].as_u64() != Some(u64::from(old)) && i["state"] == "ready")
    });
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (ok, failed) = load.join().unwrap();
    assert!(replaced, "both instances replaced: {}", apps_json(&s));
    assert!(least_ready >= 1, "capacity never below processes - 1");
    assert_eq!(failed, 0, "{ok} answered, {failed} failed");
}

#[test]
fn max_rss_recycles_an_instance_that_grew() {
    // Any Python process is past 1 MiB: each instance is recycled as soon as it is ready,
    // and requests still get answers (they wait in the queue while none is ready).
    let s = Server::start(Some(&app_config(1, "max_rss = \"1MiB\"")), &[]);
    let first = instance_pids(&s, 1)[0];
    let mut said = false;
    let mut next = None;
    let deadline = Instant::now() + Duration::from_secs(20);
    while next.is_none() && Instant::now() < deadline {
        if let Ok(l) = s.log.recv_timeout(Duration::from_millis(200)) {
            said |= l.contains("(max_rss 1 MiB): recycling it");
            next = ready_pid(&l).filter(|&p| p != first);
        }
    }
    assert!(said, "the recycling was logged with its reason");
    assert!(next.is_some(), "a new instance took over");
    assert_eq!(served_by(&s, "/x").0, 200);
}
