//! A certificate's validity period read from DER (`tls::validity`): never a panic on any
//! input, and a period it returns is one a certificate could hold (not before 1950, and
//! GeneralizedTime stops at 9999).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some((nb, na)) = uringd::tls::validity::validity(data) {
        // 9999-12-31T23:59:60Z is the latest either form can spell.
        assert!(nb <= 253_402_300_800 && na <= 253_402_300_800, "{nb} {na}");
    }
});
