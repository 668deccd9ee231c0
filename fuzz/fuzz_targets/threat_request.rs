//! libFuzzer target `threat_request`: see `fuzz_targets::threat_request` in crates/fuzz-targets.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_targets::threat_request(data));
