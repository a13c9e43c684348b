//! `static` routes: content, validators, conditionals, ranges, HEAD, and the path rules
//! (no `..`, no symlink escape, no directory listing). Large files go out by splice.

mod common;

use std::io::Write;
use std::os::unix::fs::symlink;

use common::*;

struct Site {
    _dir: TempDir,
    root: std::path::PathBuf,
    big: Vec<u8>,
}

fn site() -> Site {
    let dir = TempDir::new("static");
    let root = dir.0.join("www");
    std::fs::create_dir_all(root.join("sub")).unwrap();
    std::fs::create_dir_all(root.join("nested")).unwrap();
    std::fs::write(root.join("index.html"), "<h1>home</h1>").unwrap();
    std::fs::write(root.join("a.css"), "body{color:red}").unwrap();
    std::fs::write(root.join("sub/index.html"), "sub home").unwrap();
    std::fs::write(root.join("nested/file.txt"), "0123456789abcdefghij").unwrap();
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(root.join("big.bin"), &big).unwrap();
    std::fs::write(dir.0.join("secret.txt"), "outside the root").unwrap();
    symlink(dir.0.join("secret.txt"), root.join("escape.txt")).unwrap();
    symlink("a.css", root.join("alias.css")).unwrap();
    // RESOLVE_BENEATH refuses absolute symlinks even when they point inside: documented.
    symlink(root.join("a.css"), root.join("absolute-alias.css")).unwrap();
    Site {
        root,
        big,
        _dir: dir,
    }
}

fn serve(site: &Site) -> Server {
    Server::start(
        None,
        &["--static", &format!("/static/={}", site.root.display())],
    )
}

#[test]
fn files_with_type_length_and_validators() {
    let st = site();
    let s = serve(&st);
    let r = request(s.addr, "GET", "/static/a.css", "");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"body{color:red}");
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("text/css; charset=utf-8")
    );
    assert_eq!(r.header("content-length").as_deref(), Some("15"));
    assert_eq!(r.header("accept-ranges").as_deref(), Some("bytes"));
    assert!(r.header("etag").unwrap().starts_with('"'));
    assert!(r.header("last-modified").unwrap().ends_with(" GMT"));
    assert_eq!(
        request(s.addr, "GET", "/static/", "").body,
        b"<h1>home</h1>"
    );
    assert_eq!(request(s.addr, "GET", "/static/sub/", "").body, b"sub home");
    // `--static` alone serves its files only: no embedded "Hello, World!" beside them.
    assert_eq!(request(s.addr, "GET", "/", "").status, 404);
    assert_eq!(request(s.addr, "GET", "/other", "").status, 404);
}

#[test]
fn no_listing_no_traversal_no_symlink_escape() {
    let st = site();
    let s = serve(&st);
    assert_eq!(
        request(s.addr, "GET", "/static/nested/", "").status,
        404,
        "directories are not listed"
    );
    assert_eq!(
        request(s.addr, "GET", "/static/missing.txt", "").status,
        404
    );
    assert_eq!(
        request(s.addr, "GET", "/static/escape.txt", "").status,
        404,
        "symlink out of the root"
    );
    assert_eq!(
        request(s.addr, "GET", "/static/alias.css", "").status,
        200,
        "symlink inside the root"
    );
    assert_eq!(
        request(s.addr, "GET", "/static/absolute-alias.css", "").status,
        404
    );
    for p in [
        "/static/%2e%2e/secret.txt",
        "/static/..%2fsecret.txt",
        "/static/nested/../../secret.txt",
        "/static/a%00.css",
    ] {
        let out = raw(
            s.addr,
            format!("GET {p} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes(),
        );
        assert!(matches!(status_of(&out), 400 | 404), "{p}: {out}");
        assert!(!out.contains("outside the root"), "{p}");
    }
    assert_eq!(
        request(s.addr, "POST", "/static/a.css", "Content-Length: 0\r\n").status,
        405
    );
}

#[test]
fn conditional_requests_get_304() {
    let st = site();
    let s = serve(&st);
    let r = request(s.addr, "GET", "/static/a.css", "");
    let etag = r.header("etag").unwrap();
    let lm = r.header("last-modified").unwrap();
    let r = request(
        s.addr,
        "GET",
        "/static/a.css",
        &format!("If-None-Match: W/\"x\", {etag}\r\n"),
    );
    assert_eq!(r.status, 304);
    assert!(r.body.is_empty());
    assert_eq!(r.header("etag").as_deref(), Some(etag.as_str()));
    assert_eq!(
        request(
            s.addr,
            "GET",
            "/static/a.css",
            &format!("If-Modified-Since: {lm}\r\n")
        )
        .status,
        304
    );
    assert_eq!(
        request(
            s.addr,
            "GET",
            "/static/a.css",
            "If-Modified-Since: Thu, 01 Jan 1970 00:00:00 GMT\r\n"
        )
        .status,
        200
    );
    assert_eq!(
        request(
            s.addr,
            "GET",
            "/static/a.css",
            "If-None-Match: \"other\"\r\n"
        )
        .status,
        200
    );
}

#[test]
fn single_ranges() {
    let st = site();
    let s = serve(&st);
    let r = request(
        s.addr,
        "GET",
        "/static/nested/file.txt",
        "Range: bytes=2-5\r\n",
    );
    assert_eq!(r.status, 206);
    assert_eq!(r.body, b"2345");
    assert_eq!(r.header("content-range").as_deref(), Some("bytes 2-5/20"));
    let r = request(
        s.addr,
        "GET",
        "/static/nested/file.txt",
        "Range: bytes=-3\r\n",
    );
    assert_eq!((r.status, r.body.as_slice()), (206, &b"hij"[..]));
    let r = request(
        s.addr,
        "GET",
        "/static/nested/file.txt",
        "Range: bytes=50-\r\n",
    );
    assert_eq!(r.status, 416);
    assert_eq!(r.header("content-range").as_deref(), Some("bytes */20"));
    // A range over a large file is spliced from the right offset.
    let r = request(
        s.addr,
        "GET",
        "/static/big.bin",
        "Range: bytes=1000000-1999999\r\n",
    );
    assert_eq!(r.status, 206);
    assert_eq!(r.body, st.big[1_000_000..2_000_000]);
    // If-Range with a different validator: the whole file.
    let r = request(
        s.addr,
        "GET",
        "/static/nested/file.txt",
        "Range: bytes=2-5\r\nIf-Range: \"stale\"\r\n",
    );
    assert_eq!(r.status, 200);
}

#[test]
fn head_and_large_files_over_keep_alive() {
    let st = site();
    let s = serve(&st);
    let mut c = s.connect();
    c.write_all(b"HEAD /static/big.bin HTTP/1.1\r\nHost: t\r\n\r\nGET /static/big.bin HTTP/1.1\r\nHost: t\r\n\r\nGET /static/a.css HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    let h = read_response(&mut c, true);
    assert_eq!(h.header("content-length").as_deref(), Some("3000000"));
    let b = read_response(&mut c, false);
    assert_eq!(b.body.len(), st.big.len());
    assert!(b.body == st.big, "spliced bytes differ");
    assert_eq!(read_response(&mut c, false).body, b"body{color:red}");
}

/// The status line of a raw response.
fn status_line(r: &Resp) -> &str {
    r.head.lines().next().unwrap_or("")
}

#[test]
fn reason_phrases_and_every_validator_rfc_9110_names() {
    let st = site();
    let s = serve(&st);
    let f = "/static/nested/file.txt";
    let r = request(s.addr, "GET", f, "Range: bytes=2-5\r\n");
    assert_eq!(status_line(&r), "HTTP/1.1 206 Partial Content");
    let r = request(s.addr, "GET", f, "Range: bytes=50-\r\n");
    assert_eq!(status_line(&r), "HTTP/1.1 416 Range Not Satisfiable");
    let full = request(s.addr, "GET", f, "");
    let (etag, lm) = (
        full.header("etag").unwrap(),
        full.header("last-modified").unwrap(),
    );
    // If-Range with the current date or tag: the range; with an older date: the whole file.
    let r = request(
        s.addr,
        "GET",
        f,
        &format!("Range: bytes=2-5\r\nIf-Range: {lm}\r\n"),
    );
    assert_eq!((r.status, r.body.as_slice()), (206, &b"2345"[..]));
    let r = request(
        s.addr,
        "GET",
        f,
        &format!("Range: bytes=2-5\r\nIf-Range: {etag}\r\n"),
    );
    assert_eq!(r.status, 206);
    let old = "Thu, 01 Jan 1970 00:00:00 GMT";
    let r = request(
        s.addr,
        "GET",
        f,
        &format!("Range: bytes=2-5\r\nIf-Range: {old}\r\n"),
    );
    assert_eq!((r.status, r.body.len()), (200, 20));
    // If-Match / If-Unmodified-Since: 412 when they do not hold, on a connection kept open.
    let mut c = s.connect();
    for (hdr, want) in [
        (format!("If-Match: {etag}"), 200),
        ("If-Match: \"other\"".to_string(), 412),
        ("If-Match: *".to_string(), 200),
        (format!("If-Match: W/{etag}"), 412),
        (format!("If-Unmodified-Since: {lm}"), 200),
        (format!("If-Unmodified-Since: {old}"), 412),
    ] {
        write!(c, "GET {f} HTTP/1.1\r\nHost: t\r\n{hdr}\r\n\r\n").unwrap();
        let r = read_response(&mut c, false);
        assert_eq!(r.status, want, "{hdr}");
        if want == 412 {
            assert_eq!(status_line(&r), "HTTP/1.1 412 Precondition Failed");
            assert!(r.header("connection").is_none(), "kept open: {r:?}");
        }
    }
}

#[test]
fn methods_bodies_and_trailing_slashes() {
    let st = site();
    let s = serve(&st);
    // A POST with a body: 405 once the body is read, and the connection goes on.
    let mut c = s.connect();
    c.write_all(
        b"POST /static/a.css HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhelloGET /static/a.css HTTP/1.1\r\nHost: t\r\n\r\n",
    )
    .unwrap();
    let r = read_response(&mut c, false);
    assert_eq!(r.status, 405, "{r:?}");
    assert_eq!(r.header("allow").as_deref(), Some("GET, HEAD"));
    assert!(r.header("connection").is_none(), "{r:?}");
    assert_eq!(read_response(&mut c, false).body, b"body{color:red}");
    // A chunked one too.
    let mut c = s.connect();
    c.write_all(
        b"PUT /static/x HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nGET /static/a.css HTTP/1.1\r\nHost: t\r\n\r\n",
    )
    .unwrap();
    assert_eq!(read_response(&mut c, false).status, 405);
    assert_eq!(read_response(&mut c, false).status, 200);
    // A GET with a body: the file, then a close; the body is never read as a request.
    let out = raw(
        s.addr,
        b"GET /static/a.css HTTP/1.1\r\nHost: t\r\nContent-Length: 32\r\n\r\nGET /static/index.html HTTP/1.1\r\n",
    );
    assert_eq!(status_of(&out), 200, "{out}");
    assert_eq!(out.matches("HTTP/1.1 ").count(), 1, "{out}");
    assert!(out.contains("Connection: close"), "{out}");
    // A file is not a directory.
    assert_eq!(request(s.addr, "GET", "/static/a.css/", "").status, 404);
    assert_eq!(
        request(s.addr, "GET", "/static/nested/file.txt/", "").status,
        404
    );
    assert_eq!(request(s.addr, "GET", "/static/sub/", "").status, 200);
}
