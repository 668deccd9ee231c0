//! libFuzzer target `message_json`: see `fuzz_targets::message_json` in crates/fuzz-targets.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_targets::message_json(data));
