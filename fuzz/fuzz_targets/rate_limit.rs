//! Rate limits (`shield::gcra`, `shield::table::RateTable`): a run of requests, each a key
//! (one of 8) and a time step, against the shared table and against a model that keeps
//! every key's arrival time in a map. With room for every key the two must agree on every
//! request; and the model itself must never admit more than `burst + 1 + elapsed / T`.
//!
//! Input: rate (1 byte), burst (1 byte), then pairs (key byte, time step byte).

#![no_main]

use std::collections::HashMap;

use libfuzzer_sys::fuzz_target;
use uringd::shield::gcra::{self, Rate};
use uringd::shield::table::RateTable;

fuzz_target!(|data: &[u8]| {
    let [n, burst, ops @ ..] = data else { return };
    let Some(rate) = Rate::new(u64::from(*n), 1_000_000, u64::from(*burst)) else {
        return;
    };
    let table = RateTable::new(rate, 1024);
    let mut model: HashMap<u8, u64> = HashMap::new();
    let mut admitted: HashMap<u8, u64> = HashMap::new();
    let start = 1_000_000_000u64;
    let mut now = start;
    for op in ops.chunks_exact(2) {
        let (key, step) = (op[0] % 8, op[1]);
        now += u64::from(step) * 1_000;
        let tat = model.get(&key).copied().unwrap_or(0);
        let want = gcra::decide(tat, now, rate);
        if let Ok(next) = want {
            model.insert(key, next);
            *admitted.entry(key).or_default() += 1;
        }
        let got = table.check(&[key], now);
        assert_eq!(got.is_ok(), want.is_ok(), "key {key} at {now}");
        if let (Err(a), Err(b)) = (got, want) {
            assert_eq!(a, b, "retry-after differs");
        }
        let allowed = u64::from(*burst) + 1 + (now - start) / rate.interval_us;
        assert!(admitted[&key] <= allowed, "more than the rate and burst admit");
    }
});
