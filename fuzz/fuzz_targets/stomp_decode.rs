//! libFuzzer target `stomp_decode`: see `fuzz_targets::stomp_decode` in crates/fuzz-targets.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_targets::stomp_decode(data));
