//! Which backend runs: `--backend auto|io_uring|epoll` (config key `backend`), decided once
//! at start-up by trying io_uring with the options the workers will use.

use crate::driver::uring::{Ring, SetupOptions, explain_setup_error};

/// What the operator asked for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Backend {
    /// io_uring with the needed ops, else epoll (with a line saying why).
    #[default]
    Auto,
    IoUring,
    Epoll,
}

impl Backend {
    pub fn parse(s: &str) -> Option<Backend> {
        match s {
            "auto" => Some(Backend::Auto),
            "io_uring" | "io-uring" | "uring" => Some(Backend::IoUring),
            "epoll" => Some(Backend::Epoll),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Backend::Auto => "auto",
            Backend::IoUring => "io_uring",
            Backend::Epoll => "epoll",
        }
    }
}

/// What runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    IoUring,
    Epoll,
}

impl Backend {
    /// The backend a resolved choice builds (`auto` is resolved before any worker starts).
    pub fn kind(self) -> Kind {
        match self {
            Backend::Epoll => Kind::Epoll,
            Backend::IoUring | Backend::Auto => Kind::IoUring,
        }
    }
}

impl From<Kind> for Backend {
    fn from(k: Kind) -> Backend {
        match k {
            Kind::IoUring => Backend::IoUring,
            Kind::Epoll => Backend::Epoll,
        }
    }
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::IoUring => "io_uring",
            Kind::Epoll => "epoll",
        }
    }
}

/// The decision and the sentence that explains it.
#[derive(Clone, Debug)]
pub struct Choice {
    pub kind: Kind,
    pub reason: String,
}

/// Whether io_uring starts here with `opts` and every op uringd uses; Err says why not
/// (seccomp/EPERM, the sysctl, memlock, or the missing ops).
pub fn probe_io_uring(opts: &SetupOptions) -> Result<(), String> {
    Ring::new(opts)
        .map(drop)
        .map_err(|e| explain_setup_error(&e))
}

/// Decides the backend. A forced `io_uring` that cannot start is an error naming the cause.
pub fn choose(want: Backend, opts: &SetupOptions) -> Result<Choice, String> {
    let choice = |kind, reason: String| Choice { kind, reason };
    match want {
        Backend::Epoll => Ok(choice(Kind::Epoll, "asked for".into())),
        Backend::IoUring => match probe_io_uring(opts) {
            Ok(()) => Ok(choice(Kind::IoUring, "asked for".into())),
            Err(why) => Err(format!(
                "backend io_uring was asked for and cannot start: {why}"
            )),
        },
        Backend::Auto => Ok(match probe_io_uring(opts) {
            Ok(()) => choice(
                Kind::IoUring,
                "auto: io_uring starts and has every op uringd uses".into(),
            ),
            Err(why) => choice(Kind::Epoll, format!("auto: io_uring not used: {why}")),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_epoll_needs_no_probe() {
        for b in [Backend::Auto, Backend::IoUring, Backend::Epoll] {
            assert_eq!(Backend::parse(b.name()), Some(b));
        }
        assert_eq!(Backend::parse("kqueue"), None);
        let c = choose(Backend::Epoll, &SetupOptions::default()).unwrap();
        assert_eq!(c.kind, Kind::Epoll);
    }
}
