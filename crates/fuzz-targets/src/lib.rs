//! The logic of every fuzz target, as plain functions `pub fn <target>(data: &[u8])`.
//!
//! The libFuzzer binaries in `fuzz/fuzz_targets/*.rs` (a crate outside this workspace, run by
//! `scripts/fuzz.sh`) are one-line calls of these functions, and `tests/replay.rs` replays every
//! committed seed, corpus and regression file under `fuzz/` through them in a normal
//! `cargo test -p fuzz-targets`. A target panics when it finds a bug: a panic in the code under
//! test, or a broken property checked here (a round trip, a differential decode, escaping).
//!
//! | target | what it drives | input |
//! |---|---|---|
//! | [`stomp_decode`] | `soar_stomp::StompCodec` as a decoder | 4 parameter bytes, then the stream |
//! | [`stomp_roundtrip`] | decode, encode, decode again | a STOMP byte stream |
//! | [`app_config`] | `AppConfig::parse_with`, secrets, typed sections | app.config `\0` secrets `\0` env |
//! | [`message_json`] | `Dispatcher::dispatch` with the linked components | destination, payload type, body |
//! | [`threat_request`] | the threat-service router behind hyper's HTTP/1 parser | raw HTTP request bytes |
//! | [`slack_render`] | `fn_slack::render` | `slack_details` JSON or HTML |
//! | [`trustar_report`] | `fn_trustar::report` and its helpers | incident JSON or HTML text |
//!
//! The text targets (`app_config`, `slack_render`, `trustar_report`) accept a first line
//! `REPEAT <n>` that repeats the rest of the input, or the part of it between two `\x01` bytes,
//! `n` times (at most [`MAX_EXPANDED`] bytes; see [`expand`]), so that a short input can
//! describe a big one and work that grows faster than the input shows up as a libFuzzer
//! timeout.

mod config;
mod message;
mod slack;
mod stomp;
mod threat;
mod trustar;

use std::borrow::Cow;
use std::sync::OnceLock;

pub use config::app_config;
pub use message::message_json;
pub use slack::slack_render;
pub use stomp::{stomp_decode, stomp_roundtrip};
pub use threat::threat_request;
pub use trustar::trustar_report;

/// A fuzz target: a function of the input bytes that panics on a bug.
pub type Target = fn(&[u8]);

/// Every target by the name of its libFuzzer binary and of its directories under `fuzz/`.
pub const TARGETS: &[(&str, Target)] = &[
    ("stomp_decode", stomp_decode),
    ("stomp_roundtrip", stomp_roundtrip),
    ("app_config", app_config),
    ("message_json", message_json),
    ("threat_request", threat_request),
    ("slack_render", slack_render),
    ("trustar_report", trustar_report),
];

/// The largest input a `REPEAT` line may expand to: 2 MiB.
pub const MAX_EXPANDED: usize = 2 * 1024 * 1024;

/// The expansion limit in force: `$FUZZ_MAX_EXPANDED` bytes when set (long campaigns lower it
/// for speed: `scripts/fuzz.sh --max-expanded`), else [`MAX_EXPANDED`].
fn max_expanded() -> usize {
    static LIMIT: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *LIMIT.get_or_init(|| {
        std::env::var("FUZZ_MAX_EXPANDED")
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .map_or(MAX_EXPANDED, |n: usize| n.min(MAX_EXPANDED))
    })
}

/// The input with a leading `REPEAT <n>\n` line applied, any other input unchanged. After the
/// line comes `prefix \x01 unit \x01 suffix` (without `\x01`: all of it is the unit), and the
/// result is the prefix, the unit `n` times (at most [`MAX_EXPANDED`] bytes in all, or
/// `$FUZZ_MAX_EXPANDED`) and the
/// suffix: `REPEAT 3\n[s]\nk = \x01${A}\x01\n` is `[s]\nk = ${A}${A}${A}\n`.
pub fn expand(data: &[u8]) -> Cow<'_, [u8]> {
    let Some(rest) = data.strip_prefix(b"REPEAT ") else {
        return Cow::Borrowed(data);
    };
    let Some(nl) = rest.iter().position(|&b| b == b'\n') else {
        return Cow::Borrowed(data);
    };
    let Some(n) = std::str::from_utf8(&rest[..nl])
        .ok()
        .and_then(|s| s.trim().parse::<usize>().ok())
    else {
        return Cow::Borrowed(data);
    };
    let body = &rest[nl + 1..];
    let mut parts = body.splitn(3, |&b| b == 1);
    let (prefix, unit, suffix) = match (parts.next(), parts.next(), parts.next()) {
        (Some(p), Some(u), s) => (p, u, s.unwrap_or_default()),
        _ => (&[][..], body, &[][..]),
    };
    let room = max_expanded().saturating_sub(prefix.len() + suffix.len());
    let count = match unit.len() {
        0 => 0,
        len => n.min(room / len),
    };
    let mut out = Vec::with_capacity(prefix.len() + unit.len() * count + suffix.len());
    out.extend_from_slice(prefix);
    for _ in 0..count {
        out.extend_from_slice(unit);
    }
    out.extend_from_slice(suffix);
    Cow::Owned(out)
}

/// The bytes as text, invalid UTF-8 replaced (the targets whose real input is always text).
pub fn text(data: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(data)
}

/// One single-threaded tokio runtime for the async targets, made once per process.
pub(crate) fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a current-thread tokio runtime")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeat_lines_expand_within_the_cap() {
        assert_eq!(&*expand(b"REPEAT 3\nab"), b"ababab");
        assert_eq!(&*expand(b"no repeat"), b"no repeat");
        assert_eq!(&*expand(b"REPEAT x\nab"), b"REPEAT x\nab");
        assert_eq!(expand(b"REPEAT 99999999999\n<").len(), MAX_EXPANDED);
        assert_eq!(&*expand(b"REPEAT 0\nab"), b"");
        assert_eq!(
            &*expand(b"REPEAT 3\n[s]\nk = \x01${A}\x01\n"),
            b"[s]\nk = ${A}${A}${A}\n"
        );
        assert_eq!(&*expand(b"REPEAT 2\n<p>\x01x"), b"<p>xx");
    }
}
