//! The edge's rules (issue 18): sites by Host (and SNI), route header edits, allow/deny,
//! internal routes and X-Accel-Redirect, the client's real address from X-Forwarded-For
//! and from a PROXY protocol header. Raw bytes where the exact answer matters.

#[path = "common/backend.rs"]
mod backend;
mod common;
#[path = "common/tls.rs"]
mod tlsc;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::time::Duration;

use backend::{Mode, RawBackend, refused_addr, wait_until};
use common::*;

/// One request with this Host on a stream; the parsed response.
fn ask(s: &mut TcpStream, host: &str, path: &str, extra: &str) -> Resp {
    write!(s, "GET {path} HTTP/1.1\r\nHost: {host}\r\n{extra}\r\n").unwrap();
    read_response(s, false)
}

fn body(r: &Resp) -> String {
    String::from_utf8_lossy(&r.body).into_owned()
}

/// The header lines so named (every one of them), for checks that a line is there once.
fn lines_named(r: &Resp, name: &str) -> Vec<String> {
    r.head
        .lines()
        .skip(1)
        .filter_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
        .collect()
}

fn site(names: &str, body: &str) -> String {
    format!(
        "[[vhost]]\n{names}\n[[vhost.route]]\nprefix = \"/\"\nreturn = {{ status = 200, body = \"{body}\" }}\n"
    )
}

#[test]
fn hosts_pick_their_site_exact_before_wildcard_then_the_default() {
    let cfg = [
        site("names = [\"a.test\"]", "site a"),
        site("names = [\"*.a.test\", \"b.test\"]", "site b"),
        site("default = true", "default"),
    ]
    .concat();
    let s = Server::start(Some(&cfg), &[]);
    let mut c = s.connect();
    for (host, want) in [
        ("a.test", "site a"),
        ("A.TEST:8080", "site a"),
        ("a.test.", "site a"),
        ("www.a.test", "site b"),
        ("deep.www.A.test:1", "site b"),
        ("b.test", "site b"),
        ("c.test", "default"),
        ("127.0.0.1", "default"),
    ] {
        let r = ask(&mut c, host, "/", "");
        assert_eq!((r.status, body(&r).as_str()), (200, want), "Host: {host}");
    }
    // The absolute-form target's authority names the site, not the Host field.
    write!(c, "GET http://b.test/x HTTP/1.1\r\nHost: a.test\r\n\r\n").unwrap();
    assert_eq!(body(&read_response(&mut c, false)), "site b");
    // HTTP/1.0 without a Host goes to the default site.
    write!(c, "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").unwrap();
    assert_eq!(body(&read_response(&mut c, false)), "default");
}

#[test]
fn a_host_no_site_serves_is_421_and_the_connection_stays() {
    let cfg = [
        site("names = [\"a.test\"]", "a"),
        site("names = [\"b.test\"]", "b"),
    ]
    .concat();
    let s = Server::start(Some(&cfg), &[]);
    let mut c = s.connect();
    for host in ["c.test", "a.test.evil", "xa.test"] {
        let r = ask(&mut c, host, "/", "");
        assert_eq!(r.status, 421, "Host: {host:?}");
        assert!(body(&r).starts_with("421 Misdirected Request"));
    }
    let r = ask(&mut c, "b.test", "/", "");
    assert_eq!(
        (r.status, body(&r).as_str()),
        (200, "b"),
        "the same connection goes on"
    );
    write!(c, "GET / HTTP/1.0\r\n\r\n").unwrap();
    assert_eq!(
        read_response(&mut c, false).status,
        421,
        "no Host, no default"
    );
}

#[test]
fn on_tls_a_host_of_another_site_than_the_sni_name_is_421() {
    let d = TempDir::new("edge-tls");
    let pki = tlsc::Pki::new(&d.0);
    let (cert, key) = pki.leaf("ab", &["a.test", "b.test"], 10);
    let cfg = format!(
        "[tls]\nlisten = [\"127.0.0.1:0\"]\n[[tls.cert]]\ncert = \"{}\"\nkey = \"{}\"\n{}{}",
        cert.display(),
        key.display(),
        site("names = [\"a.test\"]", "site a"),
        site("names = [\"b.test\"]", "site b"),
    );
    let s = Server::start(Some(&cfg), &[]);
    let addr = tlsc::tls_addr(&s.log);
    let client = tlsc::client_config(&pki.ca);
    let mut t = tlsc::connect(addr, "a.test", &client).unwrap();
    let mut on = |host: &str| {
        write!(t, "GET / HTTP/1.1\r\nHost: {host}\r\n\r\n").unwrap();
        t.flush().unwrap();
        let (head, body) = tlsc::read_response(&mut t);
        (
            head[9..12].parse::<u16>().unwrap(),
            String::from_utf8(body).unwrap(),
        )
    };
    assert_eq!(on("a.test"), (200, "site a".into()));
    assert_eq!(
        on("b.test").0,
        421,
        "SNI a.test, Host b.test: domain fronting"
    );
    assert_eq!(
        on("A.test:443"),
        (200, "site a".into()),
        "the connection goes on"
    );
    let (status, _, body) = tlsc::get(addr, "b.test", &client, "/");
    assert_eq!((status, body.as_slice()), (200, &b"site b"[..]));
}

#[test]
fn route_headers_reach_200_404_and_502_and_replace_their_namesakes() {
    let backend = RawBackend::start(Mode::Fixed(
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Powered-By: PHP/5\r\nCache-Control: public\r\nX-Accel-Buffering: no\r\nX-Kept: 1\r\n\r\nhi".into(),
    ));
    let dir = TempDir::new("edge-files");
    std::fs::write(dir.0.join("a.txt"), "file a").unwrap();
    let hsts = "\"Strict-Transport-Security\" = \"max-age=63072000\"";
    let cfg = format!(
        "[[route]]\nprefix = \"/files/\"\nstatic = \"{}\"\nheaders = {{ {hsts}, \"X-Frame-Options\" = \"DENY\" }}\n\
         [[route]]\nprefix = \"/dead/\"\nupstream = \"http://{}\"\nheaders = {{ {hsts} }}\n\
         [[route]]\nprefix = \"/app/\"\nupstream = \"http://{}\"\nheaders = {{ {hsts}, \"Cache-Control\" = \"no-store\" }}\nhide_headers = [\"X-Powered-By\"]\n\
         [[route]]\nprefix = \"/\"\nreturn = {{ status = 200, body = \"ok\" }}\nheaders = {{ {hsts}, \"Server\" = \"edge\" }}\n",
        dir.0.display(),
        refused_addr(),
        backend.addr
    );
    let s = Server::start(Some(&cfg), &[]);
    let mut c = s.connect();
    let hsts_of = |r: &Resp| lines_named(r, "strict-transport-security");
    let r = ask(&mut c, "t", "/", "");
    assert_eq!(
        (r.status, hsts_of(&r)),
        (200, vec!["max-age=63072000".to_string()])
    );
    assert_eq!(
        lines_named(&r, "server"),
        ["edge"],
        "replaced, not added: {}",
        r.head
    );
    let r = ask(&mut c, "t", "/files/a.txt", "");
    assert_eq!((r.status, body(&r).as_str()), (200, "file a"));
    assert_eq!(hsts_of(&r).len(), 1);
    assert_eq!(r.header("x-frame-options").as_deref(), Some("DENY"));
    let r = ask(&mut c, "t", "/files/missing", "");
    assert_eq!(r.status, 404);
    assert_eq!(
        hsts_of(&r).len(),
        1,
        "an error page carries them too: {}",
        r.head
    );
    let r = ask(&mut c, "t", "/app/", "");
    assert_eq!((r.status, body(&r).as_str()), (200, "hi"));
    assert_eq!(hsts_of(&r).len(), 1);
    assert_eq!(lines_named(&r, "cache-control"), ["no-store"], "{}", r.head);
    assert!(r.header("x-powered-by").is_none(), "hidden: {}", r.head);
    assert!(
        r.header("x-accel-buffering").is_none(),
        "X-Accel-* stay with uringd"
    );
    assert_eq!(r.header("x-kept").as_deref(), Some("1"));
    let mut d = s.connect();
    let r = ask(&mut d, "t", "/dead/", "");
    assert_eq!(r.status, 502);
    assert_eq!(hsts_of(&r).len(), 1, "a 502 carries them too: {}", r.head);
}

#[test]
fn allow_and_deny_answer_403_by_client_address() {
    let cfg = "[[route]]\nprefix = \"/admin/\"\nallow = [\"127.0.0.2\", \"::1\"]\nreturn = { status = 200, body = \"admin\" }\n\
               [[route]]\nprefix = \"/\"\ndeny = [\"127.0.0.3/32\"]\nreturn = { status = 200, body = \"open\" }\n";
    let s = Server::start(Some(cfg), &[]);
    let from = |ip: [u8; 4], path: &str| {
        let mut c = connect_from(Ipv4Addr::from(ip), s.addr);
        let r = ask(&mut c, "t", path, "");
        (r.status, body(&r))
    };
    assert_eq!(from([127, 0, 0, 1], "/admin/x").0, 403);
    assert_eq!(from([127, 0, 0, 2], "/admin/x"), (200, "admin".into()));
    assert_eq!(from([127, 0, 0, 1], "/"), (200, "open".into()));
    assert_eq!(from([127, 0, 0, 3], "/").0, 403);
    // A 403 keeps the connection, like nginx's.
    let mut c = s.connect();
    assert_eq!(ask(&mut c, "t", "/admin/", "").status, 403);
    assert_eq!(ask(&mut c, "t", "/", "").status, 200);
}

/// A backend answering every request with X-Accel-Redirect to `target`.
fn accel_backend(target: &str) -> RawBackend {
    RawBackend::start(Mode::Fixed(format!(
        "HTTP/1.1 200 OK\r\nX-Accel-Redirect: {target}\r\nContent-Disposition: attachment; filename=\"report.pdf\"\r\nSet-Cookie: s=1; HttpOnly\r\nCache-Control: private\r\nContent-Type: text/html\r\nX-Other: dropped\r\nContent-Length: 7\r\n\r\nignored"
    )))
}

#[test]
fn x_accel_redirect_serves_the_internal_file_with_the_upstreams_headers() {
    let dir = TempDir::new("edge-accel");
    std::fs::create_dir(dir.0.join("private")).unwrap();
    let pdf: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(dir.0.join("private/report.pdf"), &pdf).unwrap();
    std::fs::write(dir.0.join("secret"), "secret").unwrap();
    let good = accel_backend("/private/report.pdf");
    let dots = accel_backend("/private/../secret");
    let encoded = accel_backend("/private/%2e%2e/secret");
    let relative = accel_backend("private/report.pdf");
    let cfg = format!(
        "[[route]]\nprefix = \"/private/\"\nstatic = \"{}/private\"\ninternal = true\nheaders = {{ \"X-Files\" = \"yes\" }}\n\
         [[route]]\nprefix = \"/dots/\"\nupstream = \"http://{}\"\n\
         [[route]]\nprefix = \"/encoded/\"\nupstream = \"http://{}\"\n\
         [[route]]\nprefix = \"/relative/\"\nupstream = \"http://{}\"\n\
         [[route]]\nprefix = \"/secret\"\nstatic = \"{}\"\n\
         [[route]]\nprefix = \"/\"\nupstream = \"http://{}\"\n",
        dir.0.display(),
        dots.addr,
        encoded.addr,
        relative.addr,
        dir.0.display(),
        good.addr
    );
    let s = Server::start(Some(&cfg), &[]);
    let mut c = s.connect();
    let r = ask(&mut c, "t", "/download/42", "");
    assert_eq!(r.status, 200, "{}", r.head);
    assert!(r.body == pdf, "the file, not the upstream's body");
    assert_eq!(r.header("content-type").as_deref(), Some("application/pdf"));
    assert_eq!(
        r.header("content-disposition").as_deref(),
        Some("attachment; filename=\"report.pdf\"")
    );
    assert_eq!(r.header("set-cookie").as_deref(), Some("s=1; HttpOnly"));
    assert_eq!(r.header("cache-control").as_deref(), Some("private"));
    assert_eq!(
        r.header("x-files").as_deref(),
        Some("yes"),
        "the file route's headers"
    );
    assert!(r.header("x-accel-redirect").is_none() && r.header("x-other").is_none());
    // The client's Range reaches the file; the connection goes on.
    let r = ask(&mut c, "t", "/download/42", "Range: bytes=10-19\r\n");
    assert_eq!(r.status, 206);
    assert_eq!(r.body, &pdf[10..20]);
    let etag = ask(&mut c, "t", "/download/42", "").header("etag").unwrap();
    let r = ask(&mut c, "t", "/x", &format!("If-None-Match: {etag}\r\n"));
    assert_eq!(r.status, 304);
    let r = ask(&mut c, "t", "/private/report.pdf", "");
    assert_eq!(r.status, 404, "an internal route is not there for clients");
    for path in ["/dots/", "/encoded/", "/relative/"] {
        let r = ask(&mut c, "t", path, "");
        assert_eq!(r.status, 502, "{path}: {}", body(&r));
    }
    assert!(
        wait_until(Duration::from_secs(5), || s
            .log
            .try_iter()
            .any(|l| l.contains("X-Accel-Redirect") && l.contains("segment"))),
        "the refusal is logged"
    );
}

#[test]
fn x_forwarded_for_is_believed_only_from_trusted_proxies() {
    let echo = RawBackend::start(Mode::Echo);
    let dir = TempDir::new("edge-xff");
    let log = dir.0.join("access.log");
    let cfg = format!(
        "trusted_proxies = [\"127.0.0.1\", \"10.0.0.0/8\"]\nreal_ip = \"x-forwarded-for\"\n[server]\naccess_log = \"{}\"\n\
         [[route]]\nprefix = \"/doc/\"\nallow = [\"203.0.113.0/24\"]\nreturn = {{ status = 200, body = \"doc\" }}\n\
         [[route]]\nprefix = \"/\"\nupstream = \"http://{}\"\n",
        log.display(),
        echo.addr
    );
    let s = Server::start(Some(&cfg), &[]);
    let xff = "X-Forwarded-For: 6.6.6.6, 203.0.113.7, 10.1.1.1\r\n";
    let mut trusted = s.connect();
    let seen = body(&ask(&mut trusted, "t", "/", xff));
    assert!(seen.contains("X-Real-IP: 203.0.113.7\r\n"), "{seen}");
    assert!(
        seen.contains("X-Forwarded-For: 6.6.6.6, 203.0.113.7, 10.1.1.1, 127.0.0.1\r\n"),
        "{seen}"
    );
    assert_eq!(ask(&mut trusted, "t", "/doc/", xff).status, 200);
    let mut spoofer = connect_from(Ipv4Addr::new(127, 0, 0, 2), s.addr);
    let seen = body(&ask(&mut spoofer, "t", "/", xff));
    assert!(seen.contains("X-Real-IP: 127.0.0.2\r\n"), "{seen}");
    assert!(seen.contains("X-Forwarded-For: 127.0.0.2\r\n"), "{seen}");
    assert_eq!(ask(&mut spoofer, "t", "/doc/", xff).status, 403);
    let lines = || std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        wait_until(Duration::from_secs(5), || lines().lines().count() >= 4),
        "{}",
        lines()
    );
    let text = lines();
    let firsts: Vec<&str> = text.lines().filter_map(|l| l.split(' ').next()).collect();
    assert_eq!(
        firsts,
        ["203.0.113.7", "203.0.113.7", "127.0.0.2", "127.0.0.2"]
    );
}

#[test]
fn rate_limits_count_the_real_client_not_the_balancer() {
    let cfg = "trusted_proxies = [\"127.0.0.1\"]\nreal_ip = \"x-forwarded-for\"\n\
               [[route]]\nprefix = \"/\"\nreturn = { status = 200, body = \"ok\" }\nlimit = { rate = \"1/m\" }\n";
    let s = Server::start(Some(cfg), &[]);
    let mut c = s.connect();
    let from = |c: &mut TcpStream, ip: &str| {
        ask(c, "t", "/", &format!("X-Forwarded-For: {ip}\r\n")).status
    };
    assert_eq!(from(&mut c, "203.0.113.1"), 200);
    assert_eq!(
        from(&mut c, "203.0.113.1"),
        429,
        "the same client, over its limit"
    );
    assert_eq!(
        from(&mut c, "203.0.113.2"),
        200,
        "another client behind the same balancer"
    );
}

fn v2_header(src: [u8; 4], port: u16) -> Vec<u8> {
    let mut v = b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c".to_vec();
    v.extend_from_slice(&src);
    v.extend_from_slice(&[127, 0, 0, 1]);
    v.extend_from_slice(&port.to_be_bytes());
    v.extend_from_slice(&80u16.to_be_bytes());
    v
}

#[test]
fn proxy_protocol_v1_and_v2_name_the_client_and_anything_else_is_closed() {
    let echo = RawBackend::start(Mode::Echo);
    let cfg = format!(
        "trusted_proxies = [\"127.0.0.1\"]\nreal_ip = \"proxy_protocol\"\n[server]\nproxy_protocol_listen = [\"127.0.0.1:0\"]\n\
         [[route]]\nprefix = \"/\"\nupstream = \"http://{}\"\n",
        echo.addr
    );
    let s = Server::start(Some(&cfg), &[]);
    let pp = proxy_protocol_addr(&s);
    let get = b"GET / HTTP/1.1\r\nHost: t\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n";
    let via = |mut c: TcpStream, header: &[u8]| {
        // The header and the request in two writes: the header may arrive alone.
        c.write_all(header).unwrap();
        std::thread::sleep(Duration::from_millis(30));
        c.write_all(get).unwrap();
        let r = read_response(&mut c, false);
        (r.status, body(&r))
    };
    let (status, seen) = via(
        TcpStream::connect(pp).unwrap(),
        b"PROXY TCP4 198.51.100.9 127.0.0.1 40000 80\r\n",
    );
    assert_eq!(status, 200);
    assert!(seen.contains("X-Real-IP: 198.51.100.9\r\n"), "{seen}");
    assert!(
        seen.contains("X-Forwarded-For: 198.51.100.9\r\n"),
        "the client's own is not believed: {seen}"
    );
    let (_, seen) = via(
        TcpStream::connect(pp).unwrap(),
        &v2_header([192, 0, 2, 44], 5555),
    );
    assert!(seen.contains("X-Real-IP: 192.0.2.44\r\n"), "{seen}");
    let (_, seen) = via(
        TcpStream::connect(pp).unwrap(),
        b"PROXY TCP6 2001:db8::7 ::1 1 80\r\n",
    );
    assert!(seen.contains("X-Real-IP: 2001:db8::7\r\n"), "{seen}");
    // LOCAL (a balancer's health check) and UNKNOWN leave the peer as the client.
    let (_, seen) = via(
        TcpStream::connect(pp).unwrap(),
        b"\r\n\r\n\0\r\nQUIT\n\x20\x00\x00\x00",
    );
    assert!(seen.contains("X-Real-IP: 127.0.0.1\r\n"), "{seen}");
    let (_, seen) = via(TcpStream::connect(pp).unwrap(), b"PROXY UNKNOWN\r\n");
    assert!(seen.contains("X-Real-IP: 127.0.0.1\r\n"), "{seen}");
    // From a peer that is not a trusted proxy the header is read but not believed.
    let (_, seen) = via(
        connect_from(Ipv4Addr::new(127, 0, 0, 2), pp),
        b"PROXY TCP4 198.51.100.9 127.0.0.1 40000 80\r\n",
    );
    assert!(seen.contains("X-Real-IP: 127.0.0.2\r\n"), "{seen}");
    // Malformed or missing: closed without a byte.
    for bad in [
        &b"PROXY TCP4 198.51.100.9 40000 80\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nHost: t\r\n\r\n",
        b"PROXY TCP4 198.51.100.9 127.0.0.1 40000 80\nGET / HTTP/1.1\r\nHost: t\r\n\r\n",
        b"\r\n\r\n\0\r\nQUIT\n\x11\x11\x00\x0c012345678901",
    ] {
        let mut c = TcpStream::connect(pp).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        c.write_all(bad).unwrap();
        let mut got = Vec::new();
        let _ = c.read_to_end(&mut got);
        assert!(
            got.is_empty(),
            "{:?} got {:?}",
            String::from_utf8_lossy(bad),
            String::from_utf8_lossy(&got)
        );
    }
    // The plain listener takes no PROXY header: it is a bad request there.
    let r = raw(
        s.addr,
        b"PROXY TCP4 198.51.100.9 127.0.0.1 40000 80\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\n",
    );
    assert_eq!(status_of(&r), 400, "{r}");
}
