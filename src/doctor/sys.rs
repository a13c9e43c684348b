//! Reads /proc and /sys below a root directory ("/" normally; a fixture tree in tests), so
//! every fact the doctor reports can be checked against known inputs.

use std::path::{Path, PathBuf};

pub struct Sys {
    root: PathBuf,
}

impl Sys {
    pub fn new(root: &Path) -> Sys {
        Sys {
            root: root.to_path_buf(),
        }
    }

    fn path(&self, p: &str) -> PathBuf {
        self.root.join(p.trim_start_matches('/'))
    }

    pub fn read(&self, p: &str) -> Option<String> {
        std::fs::read_to_string(self.path(p))
            .ok()
            .map(|s| s.trim_end().to_string())
    }

    pub fn sysctl(&self, name: &str) -> Option<String> {
        self.read(&format!("/proc/sys/{}", name.replace('.', "/")))
    }

    pub fn sysctl_u64(&self, name: &str) -> Option<u64> {
        self.sysctl(name)?.trim().parse().ok()
    }

    /// Names of the entries of a directory, sorted.
    pub fn list(&self, p: &str) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.path(p))
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }
}

/// A soft/hard limit pair from /proc/self/limits ("unlimited" is None).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limit {
    pub soft: Option<u64>,
    pub hard: Option<u64>,
}

/// Parses the row of /proc/PID/limits that starts with `name`, e.g. "Max open files".
pub fn parse_limit(text: &str, name: &str) -> Option<Limit> {
    let line = text.lines().find(|l| l.starts_with(name))?;
    let rest = line[name.len()..].split_whitespace().collect::<Vec<_>>();
    let val = |s: &str| -> Option<Option<u64>> {
        if s == "unlimited" {
            Some(None)
        } else {
            s.parse().ok().map(Some)
        }
    };
    Some(Limit {
        soft: val(rest.first()?)?,
        hard: val(rest.get(1)?)?,
    })
}

/// "0-3,6" -> 5 CPUs; empty -> 0.
pub fn count_cpu_list(s: &str) -> usize {
    s.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('-') {
            Some((a, b)) => match (a.parse::<usize>(), b.parse::<usize>()) {
                (Ok(a), Ok(b)) if b >= a => b - a + 1,
                _ => 0,
            },
            None => usize::from(p.parse::<usize>().is_ok()),
        })
        .sum()
}

/// The selected value of a sysfs choice file: "always [madvise] never" -> "madvise".
pub fn bracketed(s: &str) -> Option<&str> {
    let a = s.find('[')?;
    let b = s[a..].find(']')? + a;
    Some(&s[a + 1..b])
}

/// Kernel release "6.18.0-1-amd64" -> (6, 18).
pub fn version(release: &str) -> Option<(u32, u32)> {
    let mut it = release.split(|c: char| !c.is_ascii_digit());
    let major = it.next()?.parse().ok()?;
    let minor = it.next()?.parse().ok()?;
    Some((major, minor))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsers() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max open files            1024                 524288               files     \n\
                      Max locked memory         unlimited            unlimited            bytes     \n";
        assert_eq!(
            parse_limit(limits, "Max open files"),
            Some(Limit {
                soft: Some(1024),
                hard: Some(524288)
            })
        );
        assert_eq!(
            parse_limit(limits, "Max locked memory"),
            Some(Limit {
                soft: None,
                hard: None
            })
        );
        assert_eq!(parse_limit(limits, "Max processes"), None);
        assert_eq!(count_cpu_list("0-3,6"), 5);
        assert_eq!(count_cpu_list(""), 0);
        assert_eq!(bracketed("always [madvise] never"), Some("madvise"));
        assert_eq!(version("6.18.0-1-amd64"), Some((6, 18)));
        assert_eq!(version("5.4.0"), Some((5, 4)));
        assert_eq!(version("garbage"), None);
    }
}
