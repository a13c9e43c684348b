//! Redirect targets: a template such as `https://$host$request_uri`, parsed once from the
//! config and expanded per request from that request's own parts. Knows no sockets.
//!
//! Variables (nginx's names and meanings): `$scheme` (`http`, or `https` on a TLS
//! listener), `$host` (the absolute-form target's authority, else the Host header),
//! `$request_uri` (the target's path and query as the client sent them), `$uri` (the
//! normalized path), `$args` (the query, without `?`). `${name}` may be used where a name
//! would run into the text after it.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Var {
    Scheme,
    Host,
    RequestUri,
    Uri,
    Args,
}

const VARS: &[(&str, Var)] = &[
    ("scheme", Var::Scheme),
    ("host", Var::Host),
    ("request_uri", Var::RequestUri),
    ("uri", Var::Uri),
    ("args", Var::Args),
];

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Lit(Vec<u8>),
    Var(Var),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

/// The request's values for the variables.
pub struct Values<'a> {
    pub scheme: &'a [u8],
    pub host: &'a [u8],
    pub request_uri: &'a [u8],
    pub uri: &'a [u8],
    pub args: &'a [u8],
}

fn known() -> String {
    let names: Vec<String> = VARS.iter().map(|(n, _)| format!("${n}")).collect();
    names.join(", ")
}

impl Template {
    /// Parses a template. The error says what is wrong in words a config error can carry.
    pub fn parse(s: &str) -> Result<Template, String> {
        if s.is_empty() {
            return Err("is empty; give the target, e.g. \"https://$host$request_uri\"".into());
        }
        if let Some(b) = s.bytes().find(|&b| b <= 0x20 || b == 0x7f) {
            return Err(format!(
                "holds the byte 0x{b:02x}: a Location carries no spaces or control characters (percent-encode them)"
            ));
        }
        let b = s.as_bytes();
        let mut parts = Vec::new();
        let mut lit = Vec::new();
        let mut i = 0;
        while i < b.len() {
            if b[i] != b'$' {
                lit.push(b[i]);
                i += 1;
                continue;
            }
            let braced = b.get(i + 1) == Some(&b'{');
            let start = i + 1 + braced as usize;
            let mut end = start;
            while b
                .get(end)
                .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
            {
                end += 1;
            }
            let name = &s[start..end];
            if braced && b.get(end) != Some(&b'}') {
                return Err(format!("`${{{name}` has no closing `}}`"));
            }
            let Some(&(_, var)) = VARS.iter().find(|(n, _)| *n == name) else {
                return Err(if name.is_empty() {
                    format!("a `$` must name a variable ({})", known())
                } else {
                    format!("unknown variable ${name} (known: {})", known())
                });
            };
            if !lit.is_empty() {
                parts.push(Part::Lit(std::mem::take(&mut lit)));
            }
            parts.push(Part::Var(var));
            i = end + braced as usize;
        }
        if !lit.is_empty() {
            parts.push(Part::Lit(lit));
        }
        Ok(Template { parts })
    }

    /// Appends the target for this request.
    pub fn expand(&self, v: &Values, out: &mut Vec<u8>) {
        for p in &self.parts {
            out.extend_from_slice(match p {
                Part::Lit(l) => l,
                Part::Var(Var::Scheme) => v.scheme,
                Part::Var(Var::Host) => v.host,
                Part::Var(Var::RequestUri) => v.request_uri,
                Part::Var(Var::Uri) => v.uri,
                Part::Var(Var::Args) => v.args,
            });
        }
    }

    /// Whether expanding needs the request's host (a request without one cannot be sent
    /// to a target built from it).
    pub fn uses(&self, var: Var) -> bool {
        self.parts.contains(&Part::Var(var))
    }
}

/// The redirect statuses a route may use: permanent or temporary, method kept or not.
pub fn status_allowed(status: u16) -> bool {
    matches!(status, 301 | 302 | 307 | 308)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand(t: &str) -> String {
        let v = Values {
            scheme: b"http",
            host: b"example.test:8080",
            request_uri: b"/a/%2e./b?x=1&y",
            uri: b"/b",
            args: b"x=1&y",
        };
        let mut out = Vec::new();
        Template::parse(t).unwrap().expand(&v, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn variables_expand_from_the_request() {
        assert_eq!(
            expand("https://$host$request_uri"),
            "https://example.test:8080/a/%2e./b?x=1&y"
        );
        assert_eq!(
            expand("$scheme://new.test$uri?$args"),
            "http://new.test/b?x=1&y"
        );
        assert_eq!(expand("https://x.test/${uri}_old"), "https://x.test//b_old");
        assert_eq!(expand("/fixed"), "/fixed");
    }

    #[test]
    fn names_run_as_far_as_they_can() {
        // `$uri_x` is one (unknown) name, not `$uri` then `_x`: nginx reads it the same way.
        let e = Template::parse("https://h$uri_x").unwrap_err();
        assert!(e.contains("unknown variable $uri_x"), "{e}");
        assert!(
            e.contains("$request_uri"),
            "the error lists the known names: {e}"
        );
    }

    #[test]
    fn bad_templates_are_refused_with_the_reason() {
        assert!(Template::parse("").unwrap_err().contains("empty"));
        assert!(
            Template::parse("https://h/$")
                .unwrap_err()
                .contains("must name")
        );
        assert!(
            Template::parse("https://h/${host")
                .unwrap_err()
                .contains("closing")
        );
        assert!(
            Template::parse("https://h/a b")
                .unwrap_err()
                .contains("0x20")
        );
        assert!(Template::parse("https://h/\r\nSet-Cookie: x").is_err());
        assert!(Template::parse("https://h/${}").is_err());
    }

    #[test]
    fn only_redirect_statuses() {
        for s in [301, 302, 307, 308] {
            assert!(status_allowed(s));
        }
        for s in [200, 300, 303, 304, 305, 400] {
            assert!(!status_allowed(s));
        }
    }

    #[test]
    fn uses_reports_the_host() {
        assert!(Template::parse("https://$host/").unwrap().uses(Var::Host));
        assert!(
            !Template::parse("https://a.test$request_uri")
                .unwrap()
                .uses(Var::Host)
        );
    }
}
