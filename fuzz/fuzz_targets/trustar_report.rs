//! libFuzzer target `trustar_report`: see `fuzz_targets::trustar_report` in crates/fuzz-targets.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_targets::trustar_report(data));
