//! The edge's part of the config: sites (`[[vhost]]`), each route's header edits,
//! `allow`/`deny` and `internal`, and where the client's real address comes from
//! (`trusted_proxies`, `real_ip`, `proxy_protocol_listen`).

use super::raw::{RawConfig, RawRoute};
use crate::edge::cidr::{Access, CidrSet};
use crate::edge::headers::{HeaderEdit, RESERVED};
use crate::edge::host::{NameError, config_name};

/// A site: the Host names it answers (lowercase; `*.a.test` wildcards) and whether it
/// takes the requests no other site's names match.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vhost {
    pub names: Vec<String>,
    pub default: bool,
    /// `headers` of every response of the site (its routes' own win).
    pub headers: Vec<(String, String)>,
}

/// What a route does at the edge besides answering.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RouteEdge {
    pub edit: HeaderEdit,
    pub access: Option<Access>,
    /// Reachable only through an upstream's X-Accel-Redirect (a direct request: 404).
    pub internal: bool,
    /// `compress`: codings offered, the route's preference first (empty: none).
    pub compress: Vec<crate::compress::Codec>,
    /// Smaller bodies are sent as they are (`compress_min`).
    pub compress_min: u64,
    /// Upstream responses are compressed too (`compress_proxied`).
    pub compress_proxied: bool,
}

/// Where the client address the edge uses (log, allow/deny, limits, X-Real-IP) comes
/// from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RealIp {
    /// The connection's peer.
    #[default]
    Peer,
    /// The rightmost X-Forwarded-For address not in trusted_proxies, from a trusted peer.
    ForwardedFor,
    /// The PROXY protocol header's source, from a trusted peer on a proxy_protocol
    /// listener.
    ProxyProtocol,
}

/// A route as written, with the key that names it in messages and its site.
pub struct Placed<'a> {
    pub key: String,
    pub raw: &'a RawRoute,
    pub site: usize,
    /// The site's `headers`, under the route's own.
    pub site_headers: &'a [(String, String)],
}

/// The sites and every route placed in one. Without `[[vhost]]` the top-level routes are
/// the one site, which takes every Host; with them, routes belong to a site.
pub fn sites<'a>(raw: &'a RawConfig, e: &mut Vec<String>) -> (Vec<Vhost>, Vec<Placed<'a>>) {
    if raw.vhost.is_empty() {
        let placed = raw
            .route
            .iter()
            .enumerate()
            .map(|(i, r)| Placed {
                key: format!("route[{i}]"),
                raw: r,
                site: 0,
                site_headers: &[],
            })
            .collect();
        let implicit = Vhost {
            names: Vec::new(),
            default: true,
            headers: Vec::new(),
        };
        return (vec![implicit], placed);
    }
    if !raw.route.is_empty() {
        e.push(format!(
            "route[0]: with [[vhost]] sites every route belongs to one; move the {} top-level [[route]] into a [[vhost]] as [[vhost.route]] (a site with default = true takes the Hosts no other names)",
            raw.route.len()
        ));
    }
    let mut vhosts: Vec<Vhost> = Vec::new();
    let mut placed = Vec::new();
    let mut seen: Vec<(String, usize)> = Vec::new();
    for (i, v) in raw.vhost.iter().enumerate() {
        let key = format!("vhost[{i}]");
        let default = v.default.unwrap_or(false);
        let mut names = Vec::new();
        for n in v.names.iter().flatten() {
            match config_name(n) {
                Ok(name) => match seen.iter().find(|(s, _)| *s == name) {
                    Some((_, j)) => e.push(format!(
                        "{key}.names: \"{n}\" is also a name of vhost[{j}]; a name belongs to one site"
                    )),
                    None => {
                        seen.push((name.clone(), i));
                        names.push(name);
                    }
                },
                Err(why) => e.push(format!(
                    "{key}.names: \"{n}\" {}",
                    match why {
                        NameError::Empty => "is empty",
                        NameError::TooLong => "is longer than a host name can be",
                        NameError::Invalid =>
                            "is not a host name (letters, digits, '-' and '.', optionally starting with \"*.\"; no port)",
                    }
                )),
            }
        }
        if names.is_empty() && !default {
            e.push(format!(
                "{key}: give it names = [\"example.com\", \"*.example.com\"], or default = true for the Hosts no other site names"
            ));
        }
        if default && let Some(j) = vhosts.iter().position(|v| v.default) {
            e.push(format!(
                "{key}.default: vhost[{j}] is the default already; one site takes the unmatched Hosts"
            ));
        }
        if v.route.is_empty() {
            e.push(format!(
                "{key}: a site needs at least one [[vhost.route]], e.g. prefix = \"/\" with static, upstream, return or redirect"
            ));
        }
        let site_headers = v.headers.as_ref().map_or(&[][..], |h| &h.0[..]);
        if let Err(m) = header_pairs(&format!("{key}.headers"), site_headers) {
            e.push(m);
        }
        for (j, r) in v.route.iter().enumerate() {
            placed.push(Placed {
                key: format!("{key}.route[{j}]"),
                raw: r,
                site: i,
                site_headers,
            });
        }
        vhosts.push(Vhost {
            names,
            default,
            headers: site_headers.to_vec(),
        });
    }
    (vhosts, placed)
}

/// Checks `headers` entries: a field name and a value that can be sent as they are, and
/// none of the names uringd frames the message with.
fn header_pairs(key: &str, pairs: &[(String, String)]) -> Result<(), String> {
    for (n, v) in pairs {
        if n.is_empty() || !n.bytes().all(crate::http::parser::is_tchar) {
            return Err(format!("{key}: \"{n}\" is not a header name"));
        }
        if RESERVED.iter().any(|r| r.eq_ignore_ascii_case(n)) {
            return Err(format!(
                "{key}: uringd writes {n} itself (it frames the message or the hop); remove it"
            ));
        }
        if !v
            .bytes()
            .all(|b| b == b'\t' || (b' '..=b'~').contains(&b) || b >= 0x80)
        {
            return Err(format!(
                "{key}.\"{n}\": the value holds a control character (CR, LF, NUL ...); header values cannot"
            ));
        }
    }
    Ok(())
}

/// A route's edge settings, its site's headers under its own.
pub fn route_edge(p: &Placed) -> Result<RouteEdge, String> {
    let key = &p.key;
    let r = p.raw;
    let own = r.headers.as_ref().map_or(&[][..], |h| &h.0[..]);
    header_pairs(&format!("{key}.headers"), own)?;
    let mut headers: Vec<(String, String)> = p
        .site_headers
        .iter()
        .filter(|(n, _)| !own.iter().any(|(o, _)| o.eq_ignore_ascii_case(n)))
        .cloned()
        .collect();
    headers.extend(own.iter().cloned());
    let hide = r.hide_headers.clone().unwrap_or_default();
    for h in &hide {
        if h.is_empty() || !h.bytes().all(crate::http::parser::is_tchar) {
            return Err(format!("{key}.hide_headers: \"{h}\" is not a header name"));
        }
        if RESERVED.iter().any(|x| x.eq_ignore_ascii_case(h)) {
            return Err(format!(
                "{key}.hide_headers: {h} is never passed on as the upstream wrote it (uringd frames the message itself); remove it"
            ));
        }
    }
    if !hide.is_empty() && r.upstream.is_none() {
        return Err(format!(
            "{key}.hide_headers: only an upstream route has upstream headers to hide; remove it"
        ));
    }
    let list = |name: &str, l: &Option<Vec<String>>| -> Result<CidrSet, String> {
        CidrSet::parse(l.as_deref().unwrap_or(&[])).map_err(|m| format!("{key}.{name}: {m}"))
    };
    let (allow, deny) = (list("allow", &r.allow)?, list("deny", &r.deny)?);
    let access = (!allow.is_empty() || !deny.is_empty()).then_some(Access { deny, allow });
    let (compress, compress_min, compress_proxied) = compression(key, r)?;
    Ok(RouteEdge {
        edit: HeaderEdit::new(&headers, &hide),
        access,
        internal: r.internal.unwrap_or(false),
        compress,
        compress_min,
        compress_proxied,
    })
}

/// `compress`, `compress_min`, `compress_proxied`.
fn compression(
    key: &str,
    r: &RawRoute,
) -> Result<(Vec<crate::compress::Codec>, u64, bool), String> {
    use crate::compress::Codec;
    let mut list = Vec::new();
    for name in r.compress.iter().flatten() {
        let c = Codec::parse(name).ok_or_else(|| {
            format!("{key}.compress: \"{name}\" is not a coding uringd makes; use \"zstd\", \"br\" and \"gzip\", in the order you prefer")
        })?;
        if list.contains(&c) {
            return Err(format!("{key}.compress: \"{name}\" is listed twice"));
        }
        list.push(c);
    }
    let min = match &r.compress_min {
        None => 1024,
        Some(v) => {
            crate::config::units::parse_size(v).map_err(|m| format!("{key}.compress_min: {m}"))?
        }
    };
    let proxied = r.compress_proxied.unwrap_or(false);
    if list.is_empty() && (r.compress_min.is_some() || r.compress_proxied.is_some()) {
        return Err(format!(
            "{key}: compress_min and compress_proxied need compress = [\"zstd\", \"br\", \"gzip\"] (the codings to offer)"
        ));
    }
    if proxied && r.upstream.is_none() {
        return Err(format!(
            "{key}.compress_proxied: only an upstream route has proxied responses; remove it"
        ));
    }
    if !list.is_empty() && r.redirect.is_some() {
        return Err(format!(
            "{key}.compress: a redirect's body is a few bytes; remove it"
        ));
    }
    Ok((list, min, proxied))
}

/// `real_ip`, checked against what it needs.
pub fn real_ip(
    raw: Option<&str>,
    trusted: &CidrSet,
    proxy_listeners: usize,
    e: &mut Vec<String>,
) -> RealIp {
    let r = match raw {
        None => RealIp::Peer,
        Some("x-forwarded-for") => RealIp::ForwardedFor,
        Some("proxy_protocol") => RealIp::ProxyProtocol,
        Some(other) => {
            e.push(format!(
                "real_ip = \"{other}\": use \"x-forwarded-for\" or \"proxy_protocol\" (or leave it out: the connection's peer)"
            ));
            return RealIp::Peer;
        }
    };
    if r != RealIp::Peer && trusted.is_empty() {
        e.push(
            "real_ip: trusted_proxies is empty, so no peer would be believed; list your load balancers' addresses, e.g. trusted_proxies = [\"10.0.0.0/8\"]".into(),
        );
    }
    if r == RealIp::ProxyProtocol && proxy_listeners == 0 {
        e.push(
            "real_ip = \"proxy_protocol\": no listener expects the header; add server.proxy_protocol_listen = [\"ADDR:PORT\"] (or --proxy-protocol-listen)".into(),
        );
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(toml: &str) -> Result<crate::config::Config, String> {
        let raw = crate::config::parse_toml(toml, "t").map_err(|e| e.0)?;
        crate::config::validate(raw, &Default::default()).map_err(|e| e.0)
    }

    #[test]
    fn sites_and_their_routes() {
        let cfg = check(
            "[[vhost]]\nnames = [\"A.test\", \"*.a.test\"]\n[[vhost.route]]\nprefix = \"/\"\nreturn = { status = 200, body = \"a\" }\n\
             [[vhost]]\ndefault = true\nheaders = { \"X-Site\" = \"d\" }\n[[vhost.route]]\nprefix = \"/\"\nreturn = { status = 200, body = \"d\" }\nheaders = { \"X-Route\" = \"r\" }\n",
        )
        .unwrap();
        assert_eq!(cfg.vhosts.len(), 2);
        assert_eq!(cfg.vhosts[0].names, ["a.test", "*.a.test"]);
        assert!(cfg.vhosts[1].default);
        let d = cfg.routes.iter().find(|r| r.vhost == 1).unwrap();
        let add = String::from_utf8(d.edge.edit.add.clone()).unwrap();
        assert_eq!(add, "X-Site: d\r\nX-Route: r\r\n");
        assert_eq!(d.name, "default/", "a site's route is named after the site");
    }

    #[test]
    fn bad_sites_are_named_with_the_fix() {
        let route = "[[vhost.route]]\nprefix = \"/\"\nreturn = { status = 200, body = \"a\" }\n";
        let e = check(&format!("[[vhost]]\nnames = [\"a.test:80\"]\n{route}")).unwrap_err();
        assert!(
            e.contains("vhost[0].names: \"a.test:80\" is not a host name"),
            "{e}"
        );
        let e = check(&format!(
            "[[vhost]]\nnames = [\"a.test\"]\n{route}[[vhost]]\nnames = [\"A.TEST\"]\n{route}"
        ))
        .unwrap_err();
        assert!(e.contains("also a name of vhost[0]"), "{e}");
        let e = check(&format!(
            "[[vhost]]\ndefault = true\n{route}[[vhost]]\ndefault = true\n{route}"
        ))
        .unwrap_err();
        assert!(e.contains("vhost[1].default"), "{e}");
        let e = check(&format!(
            "[[route]]\nprefix = \"/\"\nreturn = {{ status = 200 }}\n[[vhost]]\ndefault = true\n{route}"
        ))
        .unwrap_err();
        assert!(
            e.contains("move the 1 top-level [[route]] into a [[vhost]]"),
            "{e}"
        );
        let e = check("[[vhost]]\nnames = [\"a.test\"]\n").unwrap_err();
        assert!(
            e.contains("vhost[0]: a site needs at least one [[vhost.route]]"),
            "{e}"
        );
    }

    #[test]
    fn route_edge_keys_are_checked() {
        let r = |keys: &str| {
            check(&format!(
                "[[route]]\nprefix = \"/\"\nreturn = {{ status = 200 }}\n{keys}\n"
            ))
        };
        let cfg = r("allow = [\"127.0.0.0/8\", \"::1\"]\ndeny = [\"127.0.0.9\"]\ninternal = true")
            .unwrap();
        let edge = &cfg.routes[0].edge;
        assert!(edge.internal);
        let a = edge.access.as_ref().unwrap();
        assert!(
            !a.permits("127.0.0.9".parse().unwrap()) && a.permits("127.0.0.1".parse().unwrap())
        );
        for (keys, want) in [
            (
                "allow = [\"10.0.0.1/8\"]",
                "route[0].allow: `10.0.0.1/8` has bits set",
            ),
            (
                "headers = { \"Content-Length\" = \"1\" }",
                "uringd writes Content-Length itself",
            ),
            (
                "headers = { \"X A\" = \"1\" }",
                "\"X A\" is not a header name",
            ),
            (
                "headers = { \"X-A\" = \"a\\r\\nb\" }",
                "holds a control character",
            ),
            (
                "hide_headers = [\"X-Powered-By\"]",
                "only an upstream route has upstream headers",
            ),
        ] {
            let e = r(keys).unwrap_err();
            assert!(e.contains(want), "{keys}: {e}");
        }
    }

    #[test]
    fn real_ip_needs_trusted_proxies_and_a_listener() {
        let base = "[[route]]\nprefix = \"/\"\nreturn = { status = 200 }\n";
        let e = check(&format!("real_ip = \"x-forwarded-for\"\n{base}")).unwrap_err();
        assert!(e.contains("trusted_proxies is empty"), "{e}");
        let e = check(&format!(
            "real_ip = \"proxy_protocol\"\ntrusted_proxies = [\"127.0.0.1\"]\n{base}"
        ))
        .unwrap_err();
        assert!(e.contains("no listener expects the header"), "{e}");
        let e = check(&format!("real_ip = \"forwarded\"\n{base}")).unwrap_err();
        assert!(
            e.contains("use \"x-forwarded-for\" or \"proxy_protocol\""),
            "{e}"
        );
        let ok = check(&format!(
            "real_ip = \"x-forwarded-for\"\ntrusted_proxies = [\"10.0.0.0/8\", \"::1\"]\n{base}"
        ))
        .unwrap();
        assert_eq!(ok.real_ip, RealIp::ForwardedFor);
        assert!(ok.trusted_proxies.contains("10.1.1.1".parse().unwrap()));
    }
}
