//! Compression (issue 18): codings negotiated from Accept-Encoding, precompressed static
//! siblings, files and fixed answers compressed by uringd, proxied responses compressed
//! where the route opts in, and what is never compressed. Bodies are decoded by real
//! clients (curl --compressed, Python requests) and compared byte for byte.

#[path = "common/backend.rs"]
mod backend;
mod common;

use std::io::Read;
use std::process::Command;

use backend::{Mode, RawBackend};
use common::*;

/// Text that compresses like a real JSON API answer (repetitive keys, varied values).
fn corpus(n: usize) -> Vec<u8> {
    let mut v = b"[".to_vec();
    let mut i = 0u64;
    while v.len() < n {
        let s = format!(
            "{{\"id\":{i},\"name\":\"user {}\",\"email\":\"u{}@example.com\",\"active\":{}}},\n",
            i * 7919 % 10007,
            i * 31 % 997,
            i.is_multiple_of(3)
        );
        v.extend_from_slice(s.as_bytes());
        i += 1;
    }
    v.truncate(n);
    v
}

fn decode(coding: &str, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    match coding {
        "gzip" => {
            flate2::read::GzDecoder::new(data)
                .read_to_end(&mut out)
                .unwrap();
        }
        "zstd" => out = zstd::stream::decode_all(data).unwrap(),
        "br" => {
            brotli::Decompressor::new(data, 4096)
                .read_to_end(&mut out)
                .unwrap();
        }
        other => panic!("no decoder for {other}"),
    }
    out
}

fn get(s: &Server, path: &str, extra: &str) -> Resp {
    let mut c = s.connect();
    std::io::Write::write_all(
        &mut c,
        format!("GET {path} HTTP/1.1\r\nHost: t\r\n{extra}\r\n").as_bytes(),
    )
    .unwrap();
    read_response(&mut c, false)
}

fn static_server(dir: &TempDir, extra: &str) -> Server {
    let cfg = format!(
        "[[route]]\nprefix = \"/\"\nstatic = \"{}\"\ncompress = [\"zstd\", \"br\", \"gzip\"]\n{extra}",
        dir.0.display()
    );
    Server::start(Some(&cfg), &["--admin", "127.0.0.1:0"])
}

/// This worker's responses sent with `coding` (`/_uringd/workers`).
fn compressed(s: &Server, coding: &str) -> u64 {
    let r = request(s.admin.unwrap(), "GET", "/_uringd/workers", "");
    let w: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    w[0]["compressed"][coding].as_u64().unwrap()
}

#[test]
fn curl_and_python_requests_decode_every_coding_byte_exact() {
    let dir = TempDir::new("compress-curl");
    let body = corpus(200_000);
    std::fs::write(dir.0.join("api.json"), &body).unwrap();
    let s = static_server(&dir, "");
    let url = format!("http://{}/api.json", s.addr);
    for coding in ["zstd", "br", "gzip"] {
        let out_file = dir.0.join(format!("curl-{coding}"));
        let hdr_file = dir.0.join(format!("curl-{coding}.h"));
        let st = Command::new("curl")
            .args(["-sS", "--compressed", "-H"])
            .arg(format!("Accept-Encoding: {coding}"))
            .arg("-o")
            .arg(&out_file)
            .arg("-D")
            .arg(&hdr_file)
            .arg(&url)
            .status()
            .expect("curl (scripts/setup installs it)");
        assert!(st.success());
        let head = std::fs::read_to_string(&hdr_file)
            .unwrap()
            .to_ascii_lowercase();
        assert!(
            head.contains(&format!("content-encoding: {coding}\r\n")),
            "{head}"
        );
        assert!(head.contains("vary: accept-encoding\r\n"), "{head}");
        assert!(
            std::fs::read(&out_file).unwrap() == body,
            "curl decoded {coding}"
        );
        let script = format!(
            "import requests, sys\nr = requests.get({url:?}, headers={{'Accept-Encoding': {coding:?}}})\n\
             assert r.headers['Content-Encoding'] == {coding:?}, r.headers\n\
             sys.stdout.buffer.write(r.content)\n"
        );
        let out = Command::new("python3")
            .args(["-c", &script])
            .output()
            .expect("python3 with requests, brotli and backports.zstd (scripts/setup)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.stdout == body, "Python requests decoded {coding}");
    }
    // The client's preference order and q-values choose; ours breaks ties.
    let r = get(&s, "/api.json", "Accept-Encoding: gzip;q=0.5, br;q=0.9\r\n");
    assert_eq!(r.header("content-encoding").as_deref(), Some("br"));
    let r = get(&s, "/api.json", "Accept-Encoding: gzip, br, zstd\r\n");
    assert_eq!(r.header("content-encoding").as_deref(), Some("zstd"));
    assert!(r.body.len() < body.len() / 4, "{}", r.body.len());
    let r = get(&s, "/api.json", "Accept-Encoding: identity\r\n");
    assert!(r.header("content-encoding").is_none() && r.body == body);
    assert_eq!(r.header("vary").as_deref(), Some("Accept-Encoding"));
}

#[test]
fn precompressed_siblings_are_served_with_their_own_etags() {
    let dir = TempDir::new("compress-siblings");
    let js = corpus(50_000);
    std::fs::write(dir.0.join("app.js"), &js).unwrap();
    let br = {
        let mut w = brotli::CompressorWriter::new(Vec::new(), 4096, 11, 22);
        std::io::Write::write_all(&mut w, &js).unwrap();
        w.into_inner()
    };
    std::fs::write(dir.0.join("app.js.br"), &br).unwrap();
    std::fs::write(
        dir.0.join("app.js.zst"),
        zstd::encode_all(&js[..], 19).unwrap(),
    )
    .unwrap();
    let s = static_server(&dir, "");
    let r = get(&s, "/app.js", "Accept-Encoding: br\r\n");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-encoding").as_deref(), Some("br"));
    assert!(
        r.header("content-type")
            .unwrap()
            .starts_with("text/javascript")
    );
    assert_eq!(r.body, br, "the sibling's own bytes");
    let br_tag = r.header("etag").unwrap();
    let zst = get(&s, "/app.js", "Accept-Encoding: zstd, br\r\n");
    assert_eq!(zst.header("content-encoding").as_deref(), Some("zstd"));
    assert_eq!(decode("zstd", &zst.body), js);
    let gz = get(&s, "/app.js", "Accept-Encoding: gzip\r\n");
    assert_eq!(
        gz.header("content-encoding").as_deref(),
        Some("gzip"),
        "no .gz: compressed now"
    );
    assert_eq!(decode("gzip", &gz.body), js);
    let plain = get(&s, "/app.js", "");
    assert!(plain.header("content-encoding").is_none() && plain.body == js);
    let counts = [
        compressed(&s, "br"),
        compressed(&s, "zstd"),
        compressed(&s, "gzip"),
    ];
    assert_eq!(counts, [1, 1, 1], "counted by coding, identity not at all");
    let tags = [
        br_tag.clone(),
        zst.header("etag").unwrap(),
        gz.header("etag").unwrap(),
        plain.header("etag").unwrap(),
    ];
    for (i, a) in tags.iter().enumerate() {
        for b in &tags[i + 1..] {
            assert_ne!(a, b, "one tag per representation: {tags:?}");
        }
    }
    let r = get(
        &s,
        "/app.js",
        &format!("Accept-Encoding: br\r\nIf-None-Match: {br_tag}\r\n"),
    );
    assert_eq!(r.status, 304);
    assert_eq!(r.header("vary").as_deref(), Some("Accept-Encoding"));
    let r = get(
        &s,
        "/app.js",
        &format!("Accept-Encoding: zstd\r\nIf-None-Match: {br_tag}\r\n"),
    );
    assert_eq!(
        r.status, 200,
        "the br tag does not validate the zstd representation"
    );
}

#[test]
fn ranges_images_small_files_and_no_transform_are_not_compressed() {
    let dir = TempDir::new("compress-never");
    let text = corpus(20_000);
    std::fs::write(dir.0.join("a.txt"), &text).unwrap();
    std::fs::write(dir.0.join("small.txt"), &text[..500]).unwrap();
    let png: Vec<u8> = (0..20_000u32).map(|i| (i % 7) as u8).collect();
    std::fs::write(dir.0.join("logo.png"), &png).unwrap();
    let s = static_server(&dir, "");
    let ae = "Accept-Encoding: gzip, br, zstd\r\n";
    let r = get(&s, "/a.txt", &format!("{ae}Range: bytes=0-99\r\n"));
    assert_eq!(r.status, 206);
    assert!(r.header("content-encoding").is_none());
    assert_eq!(r.body, &text[..100]);
    let r = get(&s, "/logo.png", ae);
    assert!(r.header("content-encoding").is_none() && r.header("vary").is_none());
    assert_eq!(r.body, png);
    let r = get(&s, "/small.txt", ae);
    assert!(r.header("content-encoding").is_none(), "under compress_min");
    assert_eq!(r.header("vary").as_deref(), Some("Accept-Encoding"));

    // Proxied: compressed only where the route opts in, and never what the server
    // encoded itself or marked no-transform.
    let json = String::from_utf8(corpus(8_000)).unwrap();
    let answer = |extra: &str| {
        RawBackend::start(Mode::Fixed(format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nETag: \"v1\"\r\n{extra}Content-Length: {}\r\n\r\n{json}",
            json.len()
        )))
    };
    let (plain, no_transform, encoded) = (
        answer(""),
        answer("Cache-Control: public, no-transform\r\n"),
        answer("Content-Encoding: gzip\r\n"),
    );
    let route = |prefix: &str, b: &RawBackend, opt: &str| {
        format!(
            "[[route]]\nprefix = \"{prefix}\"\nupstream = \"http://{}\"\ncompress = [\"gzip\", \"br\"]\n{opt}\n",
            b.addr
        )
    };
    let cfg = [
        route("/on/", &plain, "compress_proxied = true"),
        route("/off/", &plain, ""),
        route("/nt/", &no_transform, "compress_proxied = true"),
        route("/enc/", &encoded, "compress_proxied = true"),
    ]
    .concat();
    let s = Server::start(Some(&cfg), &[]);
    let raw = raw_response(
        s.addr,
        "GET /on/x HTTP/1.1\r\nHost: t\r\nAccept-Encoding: br\r\nConnection: close\r\n\r\n",
    );
    let (head, body) = split_head(&raw);
    assert!(head.contains("Content-Encoding: br\r\n"), "{head}");
    assert!(
        head.contains("ETag: W/\"v1\"\r\n"),
        "weak: not the server's bytes: {head}"
    );
    assert!(!head.contains("Content-Length"), "{head}");
    assert_eq!(decode("br", &chunks(&body)), json.as_bytes());
    for path in ["/off/x", "/nt/x", "/enc/x"] {
        let r = get(&s, path, "Accept-Encoding: br, gzip\r\n");
        let ce = r.header("content-encoding");
        assert!(ce.is_none() || path == "/enc/x", "{path}: {}", r.head);
        assert_eq!(r.body.len(), json.len(), "{path}: relayed as it is");
    }
}

#[test]
fn proxied_bodies_stream_compressed_and_fixed_answers_are_precompressed() {
    let json = String::from_utf8(corpus(300_000)).unwrap();
    // A chunked upstream answer in many pieces, and an HTTP/1.0 client.
    let mut chunked = String::from(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=utf-8\r\nTransfer-Encoding: chunked\r\n\r\n",
    );
    for piece in json.as_bytes().chunks(7000) {
        chunked.push_str(&format!(
            "{:x}\r\n{}\r\n",
            piece.len(),
            String::from_utf8_lossy(piece)
        ));
    }
    chunked.push_str("0\r\n\r\n");
    let b = RawBackend::start(Mode::Fixed(chunked));
    let cfg = format!(
        "[[route]]\nprefix = \"/api/\"\nupstream = \"http://{}\"\ncompress = [\"zstd\", \"gzip\"]\ncompress_proxied = true\n\
         [[route]]\nprefix = \"/\"\nreturn = {{ status = 200, body = \"{}\", content_type = \"text/html\" }}\ncompress = [\"br\", \"gzip\"]\n",
        b.addr,
        "hello ".repeat(400)
    );
    let s = Server::start(Some(&cfg), &[]);
    for (coding, version) in [("zstd", "1.1"), ("gzip", "1.1"), ("gzip", "1.0")] {
        let raw = raw_response(
            s.addr,
            &format!(
                "GET /api/x HTTP/{version}\r\nHost: t\r\nAccept-Encoding: {coding}\r\nConnection: close\r\n\r\n"
            ),
        );
        let (head, body) = split_head(&raw);
        assert!(
            head.contains(&format!("Content-Encoding: {coding}\r\n")),
            "{head}"
        );
        let body = if version == "1.1" {
            assert!(head.contains("Transfer-Encoding: chunked\r\n"), "{head}");
            chunks(&body)
        } else {
            assert!(!head.contains("Transfer-Encoding"), "{head}");
            body
        };
        assert!(
            decode(coding, &body) == json.as_bytes(),
            "{coding} over HTTP/{version}"
        );
        assert!(body.len() < json.len() / 4);
    }
    let r = get(&s, "/", "Accept-Encoding: gzip, br\r\n");
    assert_eq!(r.header("content-encoding").as_deref(), Some("br"));
    assert_eq!(decode("br", &r.body), "hello ".repeat(400).as_bytes());
    let r = get(&s, "/", "");
    assert!(r.header("content-encoding").is_none());
    assert_eq!(r.body.len(), 2400);
    assert_eq!(r.header("vary").as_deref(), Some("Accept-Encoding"));
}

/// Everything a server sends before it closes.
fn raw_response(addr: std::net::SocketAddr, req: &str) -> Vec<u8> {
    let mut c = std::net::TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    std::io::Write::write_all(&mut c, req.as_bytes()).unwrap();
    let mut out = Vec::new();
    c.read_to_end(&mut out).unwrap();
    out
}

fn split_head(raw: &[u8]) -> (String, Vec<u8>) {
    let at = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a head")
        + 4;
    (
        String::from_utf8_lossy(&raw[..at]).into_owned(),
        raw[at..].to_vec(),
    )
}

/// A chunked body's data.
fn chunks(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line = b.windows(2).position(|w| w == b"\r\n").unwrap();
        let n = usize::from_str_radix(std::str::from_utf8(&b[..line]).unwrap(), 16).unwrap();
        b = &b[line + 2..];
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&b[..n]);
        b = &b[n + 2..];
    }
}
