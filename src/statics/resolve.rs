//! Turning a request path into an open file under a root, safely: percent-decoding first,
//! then refusing `..`, then `openat2` with RESOLVE_BENEATH so that no symlink (or anything
//! else) can lead outside the root unless the operator allowed it.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// Why a path does not resolve to a file we serve.
#[derive(Debug, PartialEq, Eq)]
pub enum Miss {
    /// Malformed path (bad escape, NUL, `..`): 400.
    Bad,
    /// Permission denied: 403.
    Forbidden,
    /// Anything else, including directories without an index and escapes: 404.
    NotFound,
}

pub struct Found {
    pub fd: OwnedFd,
    pub size: u64,
    pub mtime_s: i64,
    pub mtime_ns: i64,
    /// The file's name, for its Content-Type.
    pub name: Vec<u8>,
    /// The path it was opened by (a directory's index included): its siblings' stem.
    pub path: Vec<u8>,
}

/// `rel` (already stripped of the route prefix) -> a relative path for openat2.
pub fn clean_path(rel: &[u8]) -> Result<Vec<u8>, Miss> {
    let mut decoded = Vec::with_capacity(rel.len());
    let mut i = 0;
    while i < rel.len() {
        match rel[i] {
            b'%' => {
                let hex = rel.get(i + 1..i + 3).ok_or(Miss::Bad)?;
                let s = std::str::from_utf8(hex).map_err(|_| Miss::Bad)?;
                decoded.push(u8::from_str_radix(s, 16).map_err(|_| Miss::Bad)?);
                i += 3;
            }
            b => {
                decoded.push(b);
                i += 1;
            }
        }
    }
    let mut out = Vec::with_capacity(decoded.len());
    for seg in decoded.split(|&b| b == b'/') {
        match seg {
            b"" | b"." => continue,
            b".." => return Err(Miss::Bad),
            s if s.contains(&0) => return Err(Miss::Bad),
            s => {
                if !out.is_empty() {
                    out.push(b'/');
                }
                out.extend_from_slice(s);
            }
        }
    }
    if out.is_empty() {
        out.push(b'.');
    } else if decoded.ends_with(b"/") {
        // Kept, so a file named with a trailing slash (`/file.txt/`) is ENOTDIR: 404.
        out.push(b'/');
    }
    Ok(out)
}

fn open_beneath(root: &OwnedFd, path: &[u8], confine: bool) -> Result<OwnedFd, Miss> {
    let c = CString::new(path).map_err(|_| Miss::Bad)?;
    // SAFETY: open_how is plain old data; all-zero is a valid starting value.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NOCTTY) as u64;
    how.resolve = libc::RESOLVE_NO_MAGICLINKS;
    if confine {
        how.resolve |= libc::RESOLVE_BENEATH;
    }
    // SAFETY: openat2 with a valid dirfd, NUL-terminated path and a live open_how.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            root.as_raw_fd(),
            c.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    };
    if fd < 0 {
        return Err(match std::io::Error::last_os_error().raw_os_error() {
            Some(libc::EACCES | libc::EPERM) => Miss::Forbidden,
            _ => Miss::NotFound, // ENOENT, ENOTDIR, EXDEV (an escape), ELOOP, ...
        });
    }
    // SAFETY: fd is fresh and owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

fn stat(fd: &OwnedFd) -> Option<libc::stat> {
    // SAFETY: fstat fills the struct we pass.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: as above; fd is open.
    (unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } == 0).then_some(st)
}

/// Opens the file a cleaned path names (a directory's `index` file for a directory).
pub fn open_file(root: &OwnedFd, path: &[u8], index: &str, confine: bool) -> Result<Found, Miss> {
    let mut fd = open_beneath(root, path, confine)?;
    let mut st = stat(&fd).ok_or(Miss::NotFound)?;
    let mut name = path.rsplit(|&b| b == b'/').next().unwrap_or(b"").to_vec();
    let mut opened = path.to_vec();
    if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
        // Serve its index if there is one; directories are never listed.
        let mut p = path.to_vec();
        p.push(b'/');
        p.extend_from_slice(index.as_bytes());
        fd = open_beneath(root, &p, confine)?;
        st = stat(&fd).ok_or(Miss::NotFound)?;
        name = index.as_bytes().to_vec();
        opened = p;
    }
    if st.st_mode & libc::S_IFMT != libc::S_IFREG {
        return Err(Miss::NotFound);
    }
    Ok(Found {
        fd,
        size: st.st_size as u64,
        mtime_s: st.st_mtime,
        mtime_ns: st.st_mtime_nsec,
        name,
        path: opened,
    })
}

/// The regular file `path` + `suffix` (a precompressed sibling, `app.js.br`), if there is
/// one, under the same confinement.
pub fn open_sibling(root: &OwnedFd, path: &[u8], suffix: &str, confine: bool) -> Option<Found> {
    let mut p = path.to_vec();
    p.extend_from_slice(suffix.as_bytes());
    let fd = open_beneath(root, &p, confine).ok()?;
    let st = stat(&fd)?;
    (st.st_mode & libc::S_IFMT == libc::S_IFREG).then(|| Found {
        fd,
        size: st.st_size as u64,
        mtime_s: st.st_mtime,
        mtime_ns: st.st_mtime_nsec,
        name: Vec::new(),
        path: p,
    })
}

/// Opens a static root directory at start-up.
pub fn open_root(dir: &std::path::Path) -> std::io::Result<OwnedFd> {
    let c = CString::new(dir.as_os_str().as_encoded_bytes())
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "NUL in path"))?;
    // SAFETY: plain open of a NUL-terminated path; the result is checked.
    let fd = unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fd is fresh and owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleans_and_refuses() {
        assert_eq!(clean_path(b"a/b.txt").unwrap(), b"a/b.txt");
        assert_eq!(clean_path(b"/a//./b%20c").unwrap(), b"a/b c");
        assert_eq!(clean_path(b"a/b/").unwrap(), b"a/b/");
        assert_eq!(clean_path(b"").unwrap(), b".");
        assert_eq!(clean_path(b"a/../../etc/passwd"), Err(Miss::Bad));
        assert_eq!(
            clean_path(b"a/%2e%2e/b"),
            Err(Miss::Bad),
            "decoded before the check"
        );
        assert_eq!(clean_path(b"a%00b"), Err(Miss::Bad));
        assert_eq!(clean_path(b"a%zz"), Err(Miss::Bad));
        assert_eq!(clean_path(b"a%2"), Err(Miss::Bad));
    }
}
