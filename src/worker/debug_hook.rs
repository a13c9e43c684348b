//! Fault injection for tests, compiled into debug builds only: a request whose path equals
//! `URINGD_DEBUG_PANIC_PATH` makes the worker that parses it panic, so the supervisor's
//! restart can be tested against the real binary. Release builds have no such hook.

use std::sync::OnceLock;

static PANIC_PATH: OnceLock<Option<Vec<u8>>> = OnceLock::new();

pub fn maybe_panic(path: &[u8]) {
    let want = PANIC_PATH.get_or_init(|| {
        std::env::var_os("URINGD_DEBUG_PANIC_PATH").map(|v| v.into_encoded_bytes())
    });
    if want.as_deref() == Some(path) {
        panic!(
            "debug hook: a request for {} asked this worker to panic",
            String::from_utf8_lossy(path)
        );
    }
}
