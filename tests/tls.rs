//! TLS termination against the real binary: rustls as the raw-bytes client, curl and
//! openssl s_client as users run them. Certificates come from a throwaway CA per test.

#[path = "common/backend.rs"]
mod backend;
mod common;
#[path = "common/tls.rs"]
mod tlsc;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use backend::{Mode, RawBackend, wait_until};
use common::{Server, TempDir};
use tlsc::{Pki, client_config, connect, get, read_response, served_subject, tls_addr};

/// A server with one TLS listener serving `certs` (first = default), plus `extra` config.
fn tls_server(certs: &[(&Path, &Path)], extra: &str, args: &[&str]) -> (Server, SocketAddr) {
    let mut cfg = String::from("[tls]\nlisten = [\"127.0.0.1:0\"]\n");
    if let Some(rest) = extra.strip_prefix("[tls]\n") {
        cfg.push_str(rest.split("\n[").next().unwrap());
        cfg.push('\n');
    }
    for (c, k) in certs {
        cfg.push_str(&format!(
            "[[tls.cert]]\ncert = \"{}\"\nkey = \"{}\"\n",
            c.display(),
            k.display()
        ));
    }
    let rest = match extra.strip_prefix("[tls]\n") {
        Some(r) => r
            .split_once("\n[")
            .map_or(String::new(), |(_, r)| format!("[{r}")),
        None => extra.to_string(),
    };
    cfg.push_str(&rest);
    if !cfg.contains("[[route]]") {
        cfg.push_str(
            "[[route]]\nprefix = \"/\"\nreturn = { status = 200, body = \"hello tls\" }\n",
        );
    }
    let s = Server::start(Some(&cfg), args);
    let a = tls_addr(&s.log);
    (s, a)
}

fn pki() -> (TempDir, Pki) {
    let d = TempDir::new("tls");
    let p = Pki::new(&d.0);
    (d, p)
}

fn admin_json(admin: SocketAddr, path: &str) -> serde_json::Value {
    let r = common::request(admin, "GET", path, "");
    assert_eq!(r.status, 200);
    serde_json::from_slice(&r.body).unwrap()
}

/// Sum of one TLS counter over the workers (`/_uringd/workers`).
fn tls_counter(admin: SocketAddr, pick: impl Fn(&serde_json::Value) -> u64) -> u64 {
    admin_json(admin, "/_uringd/workers")
        .as_array()
        .unwrap()
        .iter()
        .map(|w| pick(&w["tls"]))
        .sum()
}

#[test]
fn curl_gets_a_page_over_tls_12_and_13() {
    let (_d, p) = pki();
    let (c, k) = p.leaf("a", &["a.test", "*.a.test"], 60);
    let (_s, addr) = tls_server(&[(&c, &k)], "", &[]);
    for (flags, want) in [
        (&["--tlsv1.3"][..], "TLSv1.3"),
        (&["--tlsv1.2", "--tls-max", "1.2"][..], "TLSv1.2"),
    ] {
        let out = Command::new("curl")
            .args(["-sS", "-v", "--cacert", p.ca.to_str().unwrap()])
            .args(flags)
            .args([
                "--resolve",
                &format!("www.a.test:{}:127.0.0.1", addr.port()),
            ])
            .arg(format!("https://www.a.test:{}/", addr.port()))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "curl failed: {err}");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "hello tls");
        assert!(err.contains(want), "{want} not negotiated: {err}");
        assert!(err.contains("ALPN: server accepted http/1.1"), "{err}");
    }
}

#[test]
fn sni_picks_exact_then_wildcard_then_default() {
    let (_d, p) = pki();
    let (c1, k1) = p.leaf("first", &["default.test"], 60);
    let (c2, k2) = p.leaf("wild", &["*.a.test", "a.test"], 60);
    let (c3, k3) = p.leaf("www", &["www.a.test"], 60);
    let (_s, addr) = tls_server(&[(&c1, &k1), (&c2, &k2), (&c3, &k3)], "", &[]);
    let cn = |sni| served_subject(addr, sni);
    assert!(
        cn(Some("www.a.test")).contains("CN = www.a.test"),
        "exact beats wildcard"
    );
    assert!(cn(Some("img.a.test")).contains("CN = *.a.test"));
    assert!(
        cn(Some("a.test")).contains("CN = *.a.test"),
        "the second name of the second"
    );
    assert!(
        cn(Some("x.img.a.test")).contains("CN = default.test"),
        "one label only"
    );
    assert!(cn(Some("other.test")).contains("CN = default.test"));
    assert!(
        cn(None).contains("CN = default.test"),
        "no SNI: the first certificate"
    );
    // And the chosen one verifies for that name.
    let cfg = client_config(&p.ca);
    assert_eq!(get(addr, "img.a.test", &cfg, "/").0, 200);
}

#[test]
fn keep_alive_pipelining_and_close_notify() {
    let (_d, p) = pki();
    let (c, k) = p.leaf("a", &["a.test"], 60);
    let (_s, addr) = tls_server(&[(&c, &k)], "", &[]);
    let cfg = client_config(&p.ca);
    let mut s = connect(addr, "a.test", &cfg).unwrap();
    // Three requests in one write (one TLS record), then one more after the answers.
    s.write_all(&b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n".repeat(3))
        .unwrap();
    s.flush().unwrap();
    for _ in 0..3 {
        let (head, body) = read_response(&mut s);
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert_eq!(body, b"hello tls");
    }
    // A request cut across two records is put back together.
    s.write_all(b"GET / HTTP/1.1\r\nHo").unwrap();
    s.flush().unwrap();
    std::thread::sleep(Duration::from_millis(50));
    s.write_all(b"st: a.test\r\nConnection: close\r\n\r\n")
        .unwrap();
    s.flush().unwrap();
    let (head, _) = read_response(&mut s);
    assert!(head.contains("Connection: close"), "{head}");
    // A clean close: close_notify before the FIN (rustls reads it as Ok(0); a bare FIN is
    // UnexpectedEof).
    let mut rest = Vec::new();
    match s.read_to_end(&mut rest) {
        Ok(_) => assert!(rest.is_empty(), "bytes after the last response: {rest:?}"),
        Err(e) => panic!("no close_notify before the close: {e}"),
    }
}

#[test]
fn plain_http_on_the_tls_port_gets_a_clear_400() {
    let (_d, p) = pki();
    let (c, k) = p.leaf("a", &["a.test"], 60);
    let (s, addr) = tls_server(&[(&c, &k)], "", &["--admin", "127.0.0.1:0"]);
    let r = common::raw(addr, b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n");
    assert!(r.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{r}");
    assert!(
        r.ends_with("400 Bad Request: a plain HTTP request sent to an HTTPS port\n"),
        "{r}"
    );
    assert!(r.contains("Connection: close"));
    let admin = s.admin.unwrap();
    assert!(wait_until(Duration::from_secs(5), || {
        tls_counter(admin, |t| t["failures"]["plain_http"].as_u64().unwrap()) == 1
    }));
}

#[test]
fn garbage_hellos_close_cleanly_and_are_counted() {
    let (_d, p) = pki();
    let (c, k) = p.leaf("a", &["a.test"], 60);
    let (s, addr) = tls_server(&[(&c, &k)], "", &["--admin", "127.0.0.1:0"]);
    let cases: [&[u8]; 3] = [
        // A handshake record header with a body that is no ClientHello.
        b"\x16\x03\x01\x00\x10\x01\x00\x00\x0c\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff",
        // Not a record type at all.
        b"\x00\x01\x02\x03\x04\x05\x06\x07",
        // A record claiming 64 KiB, past the protocol's limit.
        b"\x16\x03\x01\xff\xff",
    ];
    for bytes in cases {
        let mut t = TcpStream::connect(addr).unwrap();
        t.write_all(bytes).unwrap();
        // An alert may come first; then the close, never a hang.
        t.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut got = Vec::new();
        let r = t.read_to_end(&mut got);
        assert!(
            r.is_ok() || matches!(&r, Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset),
            "{bytes:?}: not closed: {r:?}"
        );
        assert!(got.len() < 64, "{bytes:?}: at most an alert: {got:?}");
        if let Some(&first) = got.first() {
            assert_eq!(first, 0x15, "an alert record");
        }
    }
    let admin = s.admin.unwrap();
    assert!(wait_until(Duration::from_secs(5), || {
        tls_counter(admin, |t| t["failed"].as_u64().unwrap()) == 3
    }));
    // The listener still serves.
    assert_eq!(get(addr, "a.test", &client_config(&p.ca), "/").0, 200);
}

#[test]
fn a_stalled_handshake_is_cut_at_header_timeout() {
    let (_d, p) = pki();
    let (c, k) = p.leaf("a", &["a.test"], 60);
    let (_s, addr) = tls_server(&[(&c, &k)], "[limits]\nheader_timeout = \"1s\"\n", &[]);
    // Half a ClientHello's record header, then nothing.
    let mut t = TcpStream::connect(addr).unwrap();
    t.write_all(b"\x16\x03\x01").unwrap();
    let start = std::time::Instant::now();
    assert!(common::closed_within(&mut t, Duration::from_secs(5)));
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(800),
        "closed too early: {took:?}"
    );
}

#[test]
fn resumption_works_across_workers_for_12_and_13() {
    let (_d, p) = pki();
    let (c, k) = p.leaf("a", &["a.test"], 60);
    let (s, addr) = tls_server(
        &[(&c, &k)],
        "",
        &["--workers", "2", "--admin", "127.0.0.1:0"],
    );
    let sess = p.dir.join("sess");
    for version in ["-tls1_3", "-tls1_2"] {
        // A request on stdin, and -ign_eof: s_client stays until the answer and the close,
        // so it sees the TLS 1.3 ticket that follows the handshake.
        let run = |extra: &[&str]| {
            let mut child = Command::new("openssl")
                .args([
                    "s_client",
                    "-connect",
                    &addr.to_string(),
                    version,
                    "-servername",
                    "a.test",
                ])
                .arg("-ign_eof")
                .args(extra)
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap();
            let mut stdin = child.stdin.take().unwrap();
            stdin
                .write_all(b"GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")
                .unwrap();
            drop(stdin);
            let out = child.wait_with_output().unwrap();
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        let first = run(&["-sess_out", sess.to_str().unwrap()]);
        assert!(
            first.contains("\nNew, ") && first.contains("hello tls"),
            "{first}"
        );
        // Connections spread over both workers by the kernel's hash: every one resumes.
        for i in 0..6 {
            let again = run(&["-sess_in", sess.to_str().unwrap()]);
            assert!(
                again.contains("\nReused, "),
                "{version} attempt {i}: {again}"
            );
        }
    }
    let admin = s.admin.unwrap();
    let per_worker: Vec<u64> = admin_json(admin, "/_uringd/workers")
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["tls"]["handshakes"]["resumed"].as_u64().unwrap())
        .collect();
    assert_eq!(per_worker.iter().sum::<u64>(), 12, "{per_worker:?}");
    assert!(tls_counter(admin, |t| t["versions"]["1.2"].as_u64().unwrap()) >= 7);
}

#[test]
fn large_static_files_and_proxied_bodies_arrive_intact() {
    let (_d, p) = pki();
    let (c, k) = p.leaf("a", &["a.test"], 60);
    let www = TempDir::new("tls-www");
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(www.0.join("big.bin"), &big).unwrap();
    // The proxied body is above splice_threshold: on TLS it must be copied, not spliced.
    let body = "x".repeat(400_000);
    let b = RawBackend::start(Mode::Fixed(format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )));
    let extra = format!(
        "[[route]]\nprefix = \"/s/\"\nstatic = \"{}\"\n[[route]]\nprefix = \"/\"\nupstream = \"http://{}\"\n",
        www.0.display(),
        b.addr
    );
    let (_s, addr) = tls_server(&[(&c, &k)], &extra, &[]);
    let cfg = client_config(&p.ca);
    let (status, _, got) = get(addr, "a.test", &cfg, "/s/big.bin");
    assert_eq!(status, 200);
    assert!(got == big, "static body differs ({} bytes)", got.len());
    let mut s = connect(addr, "a.test", &cfg).unwrap();
    s.write_all(b"GET /s/big.bin HTTP/1.1\r\nHost: a.test\r\nRange: bytes=1000-1999\r\n\r\n")
        .unwrap();
    let (head, part) = read_response(&mut s);
    assert!(head.starts_with("HTTP/1.1 206"), "{head}");
    assert_eq!(part, &big[1000..2000]);
    s.write_all(b"GET /app HTTP/1.1\r\nHost: a.test\r\n\r\n")
        .unwrap();
    let (head, got) = read_response(&mut s);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(got, body.as_bytes());
    let seen = String::from_utf8_lossy(&b.requests()[0]).into_owned();
    assert!(seen.contains("\r\nX-Forwarded-Proto: https\r\n"), "{seen}");
}

#[test]
fn redirects_from_tls_say_https() {
    let (_d, p) = pki();
    let (c, k) = p.leaf("a", &["a.test"], 60);
    let extra = "[[route]]\nprefix = \"/old/\"\nredirect = { to = \"$scheme://$host/new$uri\", status = 308 }\n";
    let (_s, addr) = tls_server(&[(&c, &k)], extra, &[]);
    let (status, head, _) = get(addr, "a.test", &client_config(&p.ca), "/old/x");
    assert_eq!(status, 308);
    assert!(
        head.contains("\r\nLocation: https://a.test/new/old/x\r\n"),
        "{head}"
    );
}

#[test]
fn client_certificates_are_required_with_client_ca() {
    let (_d, p) = pki();
    let (c, k) = p.leaf("a", &["a.test"], 60);
    let (cc, ck) = p.leaf("client", &["client.test"], 60);
    let extra = format!("[tls]\nclient_ca = \"{}\"\n", p.ca.display());
    let (s, addr) = tls_server(&[(&c, &k)], &extra, &["--admin", "127.0.0.1:0"]);
    let with = tlsc::client_config_with(&p.ca, Some((&cc, &ck)));
    assert_eq!(get(addr, "a.test", &with, "/").0, 200);
    // Without one the handshake (or the first read, in TLS 1.3) fails.
    let without = client_config(&p.ca);
    let refused = match connect(addr, "a.test", &without) {
        Err(_) => true,
        Ok(mut t) => {
            let _ = t.write_all(b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n");
            let mut b = [0u8; 64];
            !matches!(t.read(&mut b), Ok(n) if n > 0)
        }
    };
    assert!(refused, "served a client without a certificate");
    let admin = s.admin.unwrap();
    let w = || admin_json(admin, "/_uringd/workers")[0]["tls"].clone();
    assert!(
        wait_until(Duration::from_secs(5), || w()["failures"]["certificate"]
            == 1),
        "{}",
        w()
    );
}

#[test]
fn sighup_swaps_certificates_and_refuses_a_bad_one() {
    let (_d, p) = pki();
    let (c1, k1) = p.leaf("one", &["a.test"], 60);
    let (c2, k2) = p.leaf("two", &["a.test", "two.a.test"], 60);
    let live_cert = p.dir.join("live.pem");
    let live_key = p.dir.join("live.key");
    std::fs::copy(&c1, &live_cert).unwrap();
    std::fs::copy(&k1, &live_key).unwrap();
    let (s, addr) = tls_server(&[(&live_cert, &live_key)], "", &[]);
    let cfg = client_config(&p.ca);
    assert!(
        connect(addr, "two.a.test", &cfg).is_err(),
        "the first certificate lacks the name"
    );
    let mut open = connect(addr, "a.test", &cfg).unwrap();
    let reload = |want: &str| {
        // SAFETY: a signal to our own child.
        unsafe { libc::kill(s.pid() as i32, libc::SIGHUP) };
        let found = wait_until(Duration::from_secs(10), || {
            s.log.try_iter().any(|l| l.contains(want))
        });
        assert!(found, "no '{want}' in the log");
    };
    // A new certificate: new connections get it, the open one carries on.
    std::fs::copy(&c2, &live_cert).unwrap();
    std::fs::copy(&k2, &live_key).unwrap();
    reload("reloaded");
    // The open connection is its old worker's to finish: it is answered.
    open.write_all(b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n")
        .unwrap();
    assert!(read_response(&mut open).0.starts_with("HTTP/1.1 200"));
    // Only the new certificate covers two.a.test (the old one's default answer would not
    // verify for it).
    assert_eq!(get(addr, "two.a.test", &cfg, "/").0, 200);
    // A key that does not match: refused, named, and the running certificate stays.
    std::fs::copy(&k1, &live_key).unwrap();
    reload("does not match the certificate");
    assert_eq!(get(addr, "two.a.test", &cfg, "/").0, 200);
    // Not PEM at all.
    std::fs::write(&live_cert, "garbage\n").unwrap();
    reload("is not a PEM certificate");
    assert_eq!(get(addr, "two.a.test", &cfg, "/").0, 200);
}

#[test]
fn a_certificate_close_to_expiry_is_a_loud_warning() {
    let (_d, p) = pki();
    let (c, k) = p.leaf("soon", &["a.test"], 5);
    let (s, _addr) = tls_server(&[(&c, &k)], "", &[]);
    let warned = s
        .startup
        .iter()
        .find(|l| l.contains("WARNING") && l.contains("soon.pem"))
        .unwrap_or_else(|| panic!("no warning in {:?}", s.startup));
    assert!(
        warned.contains("expires in 4 days") || warned.contains("expires in 5 days"),
        "{warned}"
    );
    assert!(warned.contains(" GMT"), "the date: {warned}");
}

#[test]
fn metrics_and_workers_page_show_handshakes() {
    let (_d, p) = pki();
    let (c, k) = p.leaf("a", &["a.test"], 60);
    let (s, addr) = tls_server(&[(&c, &k)], "", &["--admin", "127.0.0.1:0"]);
    let cfg = client_config(&p.ca);
    for _ in 0..3 {
        assert_eq!(get(addr, "a.test", &cfg, "/").0, 200);
    }
    let admin = s.admin.unwrap();
    // The rustls client keeps its session: the second and third connections resume.
    let w = || admin_json(admin, "/_uringd/workers")[0]["tls"].clone();
    assert!(
        wait_until(Duration::from_secs(5), || w()["handshakes"]["resumed"] == 2),
        "{}",
        w()
    );
    let t = &w();
    assert_eq!(t["handshakes"]["full"], 1);
    assert_eq!(t["versions"]["1.3"], 3);
    assert_eq!(t["alpn"]["http/1.1"], 3, "{t}");
    assert_eq!(t["handshake_us"]["count"], 3);
    assert!(t["handshake_us"]["p50"].as_u64().unwrap() > 0);
    let m = common::request(admin, "GET", "/_uringd/metrics", "");
    let text = String::from_utf8_lossy(&m.body);
    assert!(
        text.contains("uringd_tls_handshakes_total{worker=\"0\",kind=\"resumed\"} 2"),
        "{text}"
    );
    assert!(text.contains("uringd_tls_handshake_duration_seconds_count{worker=\"0\"} 3"));
}

#[test]
fn config_errors_name_the_key_and_the_file() {
    let (_d, p) = pki();
    let (c, k) = p.leaf("a", &["a.test"], 60);
    let (_, k2) = p.leaf("b", &["b.test"], 60);
    let check = |args: &[&str]| {
        let out = Command::new(common::BIN)
            .arg("check")
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (cs, ks, k2s) = (
        c.to_str().unwrap(),
        k.to_str().unwrap(),
        k2.to_str().unwrap(),
    );
    let l = ["--tls-listen", "127.0.0.1:8443"];
    let (code, err) = check(&[&l[..], &["--tls-cert", cs, "--tls-key", k2s]].concat());
    assert_eq!(code, Some(1));
    assert!(
        err.contains("does not match the certificate") && err.contains("b.key"),
        "{err}"
    );
    let (code, err) =
        check(&[&l[..], &["--tls-cert", "/nonexistent.pem", "--tls-key", ks]].concat());
    assert_eq!(code, Some(1));
    assert!(
        err.contains("cannot read the certificate file /nonexistent.pem"),
        "{err}"
    );
    let (_, err) = check(&[&l[..], &["--tls-cert", ks, "--tls-key", ks]].concat());
    assert!(err.contains("is not a PEM certificate"), "{err}");
    let (_, err) = check(&l);
    assert!(
        err.contains("tls.listen is set but there is no certificate"),
        "{err}"
    );
    let (_, err) = check(&[&l[..], &["--tls-cert", cs]].concat());
    assert!(err.contains("`key` is missing"), "{err}");
    let (code, out) = check(&[&l[..], &["--tls-cert", cs, "--tls-key", ks]].concat());
    assert_eq!(code, Some(0), "{out}");
}

/// `uringd bench https://`: its JSON report.
fn bench(args: &[&str]) -> serde_json::Value {
    let out = Command::new(common::BIN)
        .arg("bench")
        .args(args)
        .args(["-t", "1", "-d", "1s", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "bench {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn bench_loads_https_with_keep_alive_and_with_a_handshake_per_request() {
    let (_d, p) = pki();
    let (c, k) = p.leaf("ip", &["IP:127.0.0.1", "a.test"], 60);
    let (s, addr) = tls_server(&[(&c, &k)], "", &["--admin", "127.0.0.1:0"]);
    let url = format!("https://{addr}/");
    let ca = p.ca.to_str().unwrap();
    // Keep-alive: one full handshake per connection, then requests only.
    let r = bench(&[&url, "--cacert", ca, "-c", "4"]);
    assert_eq!(r["errors"]["total"], 0, "{r}");
    assert!(r["requests"].as_u64().unwrap() > 100, "{r}");
    assert_eq!(r["status"]["2xx"], r["requests"]);
    assert_eq!(r["tls_handshakes"]["full"], 4, "{r}");
    // --close: a handshake for every request, full ones unless --tls-resume.
    let r = bench(&[&url, "--cacert", ca, "-c", "2", "--close"]);
    let (full, n) = (
        r["tls_handshakes"]["full"].as_u64().unwrap(),
        r["requests"].as_u64().unwrap(),
    );
    assert!(
        n > 10 && full + 2 >= n && r["tls_handshakes"]["resumed"] == 0,
        "{r}"
    );
    let r = bench(&[&url, "--cacert", ca, "-c", "2", "--close", "--tls-resume"]);
    let resumed = r["tls_handshakes"]["resumed"].as_u64().unwrap();
    assert!(
        resumed * 2 > r["requests"].as_u64().unwrap(),
        "most resume: {r}"
    );
    let admin = s.admin.unwrap();
    assert!(tls_counter(admin, |t| t["handshakes"]["resumed"].as_u64().unwrap()) >= resumed);
}

#[test]
fn bench_checks_the_certificate_unless_insecure() {
    let (_d, p) = pki();
    let (c, k) = p.leaf("other", &["other.test"], 60);
    let (_s, addr) = tls_server(&[(&c, &k)], "", &[]);
    let url = format!("https://{addr}/");
    // The certificate does not cover 127.0.0.1: every handshake fails, and says so.
    let r = bench(&[&url, "--cacert", p.ca.to_str().unwrap(), "-c", "1"]);
    assert_eq!(r["requests"], 0, "{r}");
    assert!(r["errors"]["tls"].as_u64().unwrap() > 0, "{r}");
    let r = bench(&[&url, "--insecure", "-c", "1"]);
    assert_eq!(r["errors"]["total"], 0, "{r}");
    assert!(r["requests"].as_u64().unwrap() > 10, "{r}");
    // A CA file that is not one is a clear start-up error.
    let key = k.to_str().unwrap();
    let out = Command::new(common::BIN)
        .args(["bench", &url, "--cacert", key])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--cacert") && err.contains("not a PEM certificate"),
        "{err}"
    );
}

/// uringd A proxies to https:// uringd B (a TLS listener in front of the echo backend):
/// the upstream side of TLS. In both configs `CA` stands for the test CA's file; in A's,
/// `CLIENTCERT` and `CLIENTKEY` for a client certificate it signed.
fn https_chain(pool_tls: &str, b_tls: &str) -> (Server, Server, RawBackend, TempDir) {
    let (d, p) = pki();
    let (c, k) = p.leaf("b", &["b.internal"], 60);
    let (cc, ck) = p.leaf("a-client", &["a.client"], 60);
    let fill = |s: &str| {
        s.replace("CLIENTCERT", cc.to_str().unwrap())
            .replace("CLIENTKEY", ck.to_str().unwrap())
            .replace("CA", p.ca.to_str().unwrap())
    };
    let echo = RawBackend::start(Mode::Echo);
    let extra = format!(
        "{}[[route]]\nprefix = \"/\"\nupstream = \"http://{}\"\n",
        fill(b_tls),
        echo.addr
    );
    let (b, b_addr) = tls_server(&[(&c, &k)], &extra, &[]);
    let cfg = format!(
        "[upstream.app]\nservers = [\"https://{b_addr}\"]\n{}\n[[route]]\nprefix = \"/\"\nupstream = \"app\"\n",
        fill(pool_tls)
    );
    let a = Server::start(Some(&cfg), &[]);
    (a, b, echo, d)
}

#[test]
fn https_upstreams_are_verified_and_carry_requests() {
    let (a, _b, echo, _d) = https_chain("tls_ca = \"CA\"\ntls_server_name = \"b.internal\"", "");
    let mut t = a.connect();
    // Keep-alive both ways: two requests on one client connection.
    for i in 0..2 {
        t.write_all(format!("GET /x{i} HTTP/1.1\r\nHost: a\r\n\r\n").as_bytes())
            .unwrap();
        let r = common::read_response(&mut t, false);
        assert_eq!(r.status, 200, "{r:?}");
        let seen = String::from_utf8_lossy(&r.body);
        assert!(seen.starts_with(&format!("GET /x{i} HTTP/1.1")), "{seen}");
        // B saw A's request arrive over TLS.
        assert!(seen.contains("\r\nX-Forwarded-Proto: https\r\n"), "{seen}");
    }
    assert_eq!(echo.requests().len(), 2);
}

#[test]
fn an_https_upstream_that_does_not_verify_is_a_502() {
    // The system roots do not know the test CA.
    let (a, _b, echo, _d) = https_chain("tls_server_name = \"b.internal\"", "");
    let r = common::request(a.addr, "GET", "/", "");
    assert_eq!(r.status, 502);
    // The wrong name with the right CA: refused too.
    let (a2, _b2, echo2, _d2) =
        https_chain("tls_ca = \"CA\"\ntls_server_name = \"c.internal\"", "");
    assert_eq!(common::request(a2.addr, "GET", "/", "").status, 502);
    let logged = wait_until(Duration::from_secs(5), || {
        a2.log
            .try_iter()
            .any(|l| l.contains("TLS handshake failed"))
    });
    assert!(logged, "the error log names the TLS failure");
    assert!(echo.requests().is_empty() && echo2.requests().is_empty());
}

#[test]
fn https_upstreams_present_a_client_certificate() {
    let verify = "tls_ca = \"CA\"\ntls_server_name = \"b.internal\"";
    let need = "[tls]\nclient_ca = \"CA\"\n";
    // B requires a client certificate: A without one is refused (502)...
    let (a, _b, echo, _d) = https_chain(verify, need);
    assert_eq!(common::request(a.addr, "GET", "/", "").status, 502);
    assert!(echo.requests().is_empty());
    // ...and served with one.
    let with =
        format!("{verify}\ntls_client_cert = \"CLIENTCERT\"\ntls_client_key = \"CLIENTKEY\"");
    let (a, _b, echo, _d) = https_chain(&with, need);
    assert_eq!(common::request(a.addr, "GET", "/", "").status, 200);
    assert_eq!(echo.requests().len(), 1);
}

#[test]
fn https_upstream_settings_are_checked() {
    let check = |cfg: &str| {
        let d = TempDir::new("tls-up-check");
        let path = d.0.join("u.toml");
        std::fs::write(&path, cfg).unwrap();
        let out = Command::new(common::BIN)
            .args(["check", "--config", path.to_str().unwrap()])
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let route = "[[route]]\nprefix = \"/\"\nupstream = \"app\"\n";
    let (code, err) = check(&format!(
        "[upstream.app]\nservers = [\"http://127.0.0.1:1\"]\ntls_ca = \"/x.pem\"\n{route}"
    ));
    assert_eq!(code, Some(1));
    assert!(
        err.contains("upstream.app.tls_ca") && err.contains("https://"),
        "{err}"
    );
    let (_, err) = check(&format!(
        "[upstream.app]\nservers = [\"https://127.0.0.1:1\", \"http://127.0.0.1:2\"]\n{route}"
    ));
    assert!(err.contains("a pool speaks one protocol"), "{err}");
    let (_, err) = check(&format!(
        "[upstream.app]\nservers = [\"https://127.0.0.1:1\"]\ntls_client_cert = \"/c.pem\"\n{route}"
    ));
    assert!(err.contains("upstream.app.tls_client_key"), "{err}");
    let (_, err) = check(&format!(
        "[upstream.app]\nservers = [\"https://127.0.0.1:1\"]\ntls_ca = \"/nonexistent.pem\"\n{route}"
    ));
    assert!(
        err.contains("upstream.app.tls_ca") && err.contains("/nonexistent.pem"),
        "{err}"
    );
}

/// A burst of new connections past the per-turn handshake cap: the handshakes put off wait
/// for later turns, and every one of them completes and is answered. (Debug builds, which
/// the suite runs, take the cap from URINGD_DEBUG_HANDSHAKES_PER_TURN: 1 here.)
#[test]
fn handshakes_past_the_per_turn_cap_wait_and_all_complete() {
    let (_d, p) = pki();
    let (c, k) = p.leaf("a", &["a.test"], 60);
    let cfg = format!(
        "[tls]\nlisten = [\"127.0.0.1:0\"]\n[[tls.cert]]\ncert = \"{}\"\nkey = \"{}\"\n\
         [[route]]\nprefix = \"/\"\nreturn = {{ status = 200, body = \"hello tls\" }}\n",
        c.display(),
        k.display()
    );
    let d = TempDir::new("tls-cap");
    let path = d.0.join("u.toml");
    std::fs::write(&path, cfg).unwrap();
    let mut cmd = Command::new(common::BIN);
    cmd.args([
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--workers",
        "1",
        "--admin",
        "127.0.0.1:0",
    ])
    .arg("--config")
    .arg(&path)
    .env("URINGD_DEBUG_HANDSHAKES_PER_TURN", "1");
    let s = Server::spawn(cmd, None);
    let addr = tls_addr(&s.log);
    let client = client_config(&p.ca);
    // The hellos go out together, from raw sockets, before any handshake is read.
    let hellos: Vec<_> = (0..40)
        .map(|_| {
            let client = client.clone();
            std::thread::spawn(move || get(addr, "a.test", &client, "/").0)
        })
        .collect();
    for h in hellos {
        assert_eq!(h.join().unwrap(), 200);
    }
    let admin = s.admin.unwrap();
    let w = admin_json(admin, "/_uringd/workers");
    let t = &w[0]["tls"];
    let done =
        t["handshakes"]["full"].as_u64().unwrap() + t["handshakes"]["resumed"].as_u64().unwrap();
    assert_eq!(done, 40, "{t}");
    assert_eq!(t["failed"], 0, "{t}");
    if cfg!(debug_assertions) {
        assert!(
            t["deferred"].as_u64().unwrap() > 0,
            "the cap of 1 put some off: {t}"
        );
    }
}
