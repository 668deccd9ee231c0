//! libFuzzer target `app_config`: see `fuzz_targets::app_config` in crates/fuzz-targets.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_targets::app_config(data));
