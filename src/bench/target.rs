//! What to load: URLs parsed and resolved once, and each request's bytes built once, so
//! the hot path only copies a prepared slice.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;

use crate::http::parser::{is_tchar, is_value_byte};

/// One URL: where to connect and the exact bytes of its request.
#[derive(Clone, Debug)]
pub struct Target {
    pub url: String,
    pub addr: SocketAddr,
    pub request: Arc<[u8]>,
    /// A HEAD request: the response has no body whatever its headers say.
    pub head: bool,
    /// `https://`: over TLS, with this host as the server name (SNI, and what the
    /// certificate must cover).
    pub tls: Option<String>,
}

/// The parts of `http://host[:port][/path]`.
#[derive(Debug, PartialEq, Eq)]
pub struct UrlParts {
    pub tls: bool,
    pub host: String,
    pub port: u16,
    /// Origin-form request target, "/" when the URL has none.
    pub path: String,
}

pub fn parse_url(url: &str) -> Result<UrlParts, String> {
    let (tls, rest) = if let Some(r) = url.strip_prefix("http://") {
        (false, r)
    } else if let Some(r) = url.strip_prefix("https://") {
        (true, r)
    } else {
        return Err(format!(
            "{url}: not an http:// or https:// URL (write it like http://127.0.0.1:8080/path)"
        ));
    };
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let path = if path.starts_with('?') {
        format!("/{path}")
    } else {
        path.to_string()
    };
    if path.bytes().any(|b| b <= b' ' || b == 0x7f) || path.contains('#') {
        return Err(format!(
            "{url}: the path has spaces, control bytes or a fragment; percent-encode them"
        ));
    }
    if authority.contains('@') {
        return Err(format!("{url}: user info in URLs is not supported"));
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, tail) = v6
            .split_once(']')
            .ok_or_else(|| format!("{url}: unclosed [ in the host"))?;
        let port = match tail.strip_prefix(':') {
            Some(p) => Some(p),
            None if tail.is_empty() => None,
            None => return Err(format!("{url}: junk after the IPv6 address")),
        };
        (h.to_string(), port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (authority.to_string(), None),
        }
    };
    if host.is_empty() {
        return Err(format!("{url}: no host"));
    }
    let port = match port {
        None if tls => 443,
        None => 80,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|&p| p != 0)
            .ok_or_else(|| format!("{url}: `{p}` is not a port number"))?,
    };
    Ok(UrlParts {
        tls,
        host,
        port,
        path,
    })
}

/// What every request carries besides its URL.
#[derive(Clone, Debug, Default)]
pub struct RequestSpec {
    pub method: String,
    /// "Name: value" lines as the user wrote them (validated by `build`).
    pub headers: Vec<String>,
    pub body: Option<Vec<u8>>,
    pub keepalive: bool,
}

fn check_header(h: &str) -> Result<(&str, &str), String> {
    let (name, value) = h
        .split_once(':')
        .ok_or_else(|| format!("-H `{h}`: write a header as \"Name: value\""))?;
    let value = value.trim_matches([' ', '\t']);
    if name.is_empty() || !name.bytes().all(is_tchar) {
        return Err(format!("-H `{h}`: `{name}` is not a valid header name"));
    }
    if !value.bytes().all(is_value_byte) {
        return Err(format!("-H `{h}`: the value has control bytes"));
    }
    Ok((name, value))
}

/// Resolves `url` and builds its request bytes.
pub fn build(url: &str, spec: &RequestSpec) -> Result<Target, String> {
    let p = parse_url(url)?;
    let addr = (p.host.as_str(), p.port)
        .to_socket_addrs()
        .map_err(|e| format!("{url}: cannot resolve `{}`: {e}", p.host))?
        .next()
        .ok_or_else(|| format!("{url}: `{}` has no address", p.host))?;
    if spec.method.is_empty() || !spec.method.bytes().all(is_tchar) {
        return Err(format!("-m `{}` is not a valid method", spec.method));
    }
    let mut r = Vec::with_capacity(128);
    r.extend_from_slice(spec.method.as_bytes());
    r.push(b' ');
    r.extend_from_slice(p.path.as_bytes());
    r.extend_from_slice(b" HTTP/1.1\r\n");
    let mut has_host = false;
    for h in &spec.headers {
        let (name, value) = check_header(h)?;
        let lower = name.to_ascii_lowercase();
        match lower.as_str() {
            "host" => has_host = true,
            "content-length" | "transfer-encoding" | "connection" => {
                return Err(format!(
                    "-H `{h}`: {name} is set by uringd bench itself (use --body and --no-keepalive)"
                ));
            }
            _ => {}
        }
        r.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    if !has_host {
        let host = if p.host.contains(':') {
            format!("[{}]", p.host)
        } else {
            p.host.clone()
        };
        let host = if p.port == if p.tls { 443 } else { 80 } {
            host
        } else {
            format!("{host}:{}", p.port)
        };
        // Host goes first, as clients conventionally send it.
        let line = format!("Host: {host}\r\n");
        let at = r.iter().position(|&b| b == b'\n').map_or(0, |i| i + 1);
        r.splice(at..at, line.bytes());
    }
    if let Some(b) = &spec.body {
        r.extend_from_slice(format!("Content-Length: {}\r\n", b.len()).as_bytes());
    }
    if !spec.keepalive {
        r.extend_from_slice(b"Connection: close\r\n");
    }
    r.extend_from_slice(b"\r\n");
    if let Some(b) = &spec.body {
        r.extend_from_slice(b);
    }
    Ok(Target {
        url: url.to_string(),
        addr,
        request: r.into(),
        head: spec.method.eq_ignore_ascii_case("HEAD"),
        tls: p.tls.then_some(p.host),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> RequestSpec {
        RequestSpec {
            method: "GET".into(),
            keepalive: true,
            ..Default::default()
        }
    }

    #[test]
    fn urls() {
        let p = parse_url("http://127.0.0.1:8080/a/b?x=1").unwrap();
        assert_eq!(
            (p.host.as_str(), p.port, p.path.as_str()),
            ("127.0.0.1", 8080, "/a/b?x=1")
        );
        let p = parse_url("http://localhost").unwrap();
        assert_eq!((p.port, p.path.as_str()), (80, "/"));
        let p = parse_url("http://[::1]:9000?q").unwrap();
        assert_eq!(
            (p.host.as_str(), p.port, p.path.as_str()),
            ("::1", 9000, "/?q")
        );
        let p = parse_url("https://a.test/x").unwrap();
        assert!(p.tls && p.port == 443 && p.host == "a.test" && p.path == "/x");
        assert!(!parse_url("http://a.test/").unwrap().tls);
        assert!(
            parse_url("ftp://x/")
                .unwrap_err()
                .contains("not an http:// or https:// URL")
        );
        assert!(parse_url("http://x:0/").unwrap_err().contains("not a port"));
        assert!(parse_url("http://x:99999/").is_err());
        assert!(parse_url("http:///a").unwrap_err().contains("no host"));
        assert!(parse_url("http://x/a b").is_err());
    }

    #[test]
    fn request_bytes() {
        let t = build("http://127.0.0.1:8080/p", &spec()).unwrap();
        assert_eq!(
            &t.request[..],
            b"GET /p HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n"
        );
        assert!(!t.head);

        let mut s = spec();
        s.method = "POST".into();
        s.headers = vec!["X-A: 1".into(), "host:example.org".into()];
        s.body = Some(b"hi".to_vec());
        s.keepalive = false;
        let t = build("http://127.0.0.1:80/", &s).unwrap();
        assert_eq!(
            &t.request[..],
            b"POST / HTTP/1.1\r\nX-A: 1\r\nhost: example.org\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi"
        );

        let mut s = spec();
        s.method = "HEAD".into();
        assert!(build("http://127.0.0.1:1/", &s).unwrap().head);
        s.headers = vec!["Bad Name: x".into()];
        assert!(
            build("http://127.0.0.1:1/", &s)
                .unwrap_err()
                .contains("not a valid header name")
        );
        s.headers = vec!["Content-Length: 5".into()];
        assert!(
            build("http://127.0.0.1:1/", &s)
                .unwrap_err()
                .contains("set by uringd bench")
        );
        s.headers = vec!["novalue".into()];
        assert!(build("http://127.0.0.1:1/", &s).is_err());
    }
}
