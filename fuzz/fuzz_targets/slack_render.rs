//! libFuzzer target `slack_render`: see `fuzz_targets::slack_render` in crates/fuzz-targets.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_targets::slack_render(data));
