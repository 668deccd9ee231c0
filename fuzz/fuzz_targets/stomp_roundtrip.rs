//! libFuzzer target `stomp_roundtrip`: see `fuzz_targets::stomp_roundtrip` in crates/fuzz-targets.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_targets::stomp_roundtrip(data));
