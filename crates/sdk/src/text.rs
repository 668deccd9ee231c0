//! Work on text that comes from users (incident descriptions, notes, artifact values): a size
//! limit with a visible truncation note, and [`offload`] to run a CPU-heavy transformation
//! (HTML to text, a report body) where it cannot hold up the async threads that carry
//! heart-beats and every other invocation.

use std::sync::{Arc, LazyLock};

use tokio::sync::Semaphore;

use crate::FunctionError;

/// The most of one text value (a description, a note) that an integration transforms: 1 MiB.
/// Longer values are cut there with [`truncated`]'s note, so that work stays bounded.
pub const MAX_TEXT_BYTES: usize = 1 << 20;

/// `text` cut to at most `max` bytes (at a character boundary) followed by a note saying how
/// much was left out; `text` itself when it fits.
pub fn truncated(text: &str, max: usize) -> std::borrow::Cow<'_, str> {
    if text.len() <= max {
        return text.into();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!(
        "{}\n[truncated: {} of {} bytes left out; values over {} bytes are cut]",
        &text[..end],
        text.len() - end,
        text.len(),
        max
    )
    .into()
}

/// Above this size, parsing or serializing a message or an answer is worth [`offload`]ing:
/// 10 MB of JSON takes tens of milliseconds, which on the async threads would delay
/// heart-beats and every other invocation.
pub const OFFLOAD_ABOVE: usize = 256 * 1024;

/// CPU-heavy jobs running at once: one per core, so that they cannot take every thread.
static SLOTS: LazyLock<Arc<Semaphore>> = LazyLock::new(|| {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    Arc::new(Semaphore::new(cores))
});

/// Runs `job` on a thread of its own at a lower scheduling priority (nice +10), at most one
/// such job per core at a time, and waits for its result. For work that is linear but may be
/// large (megabytes of HTML or JSON): on the async threads it would delay heart-beats and every
/// other invocation, and at the same priority it would still take the cores from the threads
/// that carry them. A panic in `job` becomes an error.
pub async fn offload<T, F>(job: F) -> Result<T, FunctionError>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let permit = SLOTS
        .clone()
        .acquire_owned()
        .await
        .map_err(|_| FunctionError::msg("the text workers are shut down"))?;
    let (done, result) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("soar-offload".into())
        .spawn(move || {
            let _permit = permit;
            lower_this_threads_priority();
            let _ = done.send(job());
        })
        .map_err(|e| FunctionError::msg(format!("cannot start a text worker thread: {e}")))?;
    result
        .await
        .map_err(|_| FunctionError::msg("a text transformation failed (it panicked)"))
}

/// Nice +10 for the calling thread only (Linux gives each thread its own nice value); where
/// that fails or is not possible the job runs at the normal priority.
fn lower_this_threads_priority() {
    #[cfg(target_os = "linux")]
    {
        let me = rustix::thread::gettid();
        if let Ok(nice) = rustix::process::getpriority_process(Some(me)) {
            let _ = rustix::process::setpriority_process(Some(me), (nice + 10).min(19));
        }
    }
}

/// Python's `html.unescape` for the common entities.
pub fn html_unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        // An entity name is short: look for its `;` in the next 11 bytes only.
        let end = after.bytes().take(11).position(|b| b == b';');
        let decoded = end.and_then(|e| {
            let name = &after[..e];
            let c = match name {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" | "#39" => Some('\''),
                "nbsp" => Some('\u{a0}'),
                n if n.starts_with("#x") || n.starts_with("#X") => u32::from_str_radix(&n[2..], 16)
                    .ok()
                    .and_then(char::from_u32),
                n if n.starts_with('#') => n[1..].parse().ok().and_then(char::from_u32),
                _ => None,
            };
            c.map(|c| (c, e))
        });
        match decoded {
            Some((c, e)) => {
                out.push(c);
                rest = &after[e + 1..];
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Tags whose start or end begins a new line in [`html_to_plain`].
const BLOCK_TAGS: &[&str] = &[
    "br", "p", "div", "h1", "h2", "h3", "h4", "h5", "h6", "li", "tr", "ul", "ol", "table",
];

/// HTML as plain lines for a terminal or a log: block tags (`p`, `div`, `br`, headings, list
/// items, table rows) start lines, other tags go, entities are decoded, each line is trimmed
/// and empty lines dropped. One pass; a `<` that starts no tag stays text, and so does the
/// rest of the input after a tag that never closes.
pub fn html_to_plain(html: &str) -> String {
    let mut text = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(lt) = rest.find('<') {
        text.push_str(&rest[..lt]);
        let after = &rest[lt + 1..];
        // A tag starts with a letter, `/` or `!`; any other `<` is text.
        if !after.starts_with(|c: char| c.is_ascii_alphabetic() || c == '/' || c == '!') {
            text.push('<');
            rest = after;
            continue;
        }
        let Some(gt) = after.find('>') else {
            text.push_str(&rest[lt..]);
            rest = "";
            break;
        };
        let name: String = after[..gt]
            .trim_start_matches('/')
            .chars()
            .take_while(char::is_ascii_alphanumeric)
            .map(|c| c.to_ascii_lowercase())
            .collect();
        if BLOCK_TAGS.contains(&name.as_str()) {
            text.push('\n');
        }
        rest = &after[gt + 1..];
    }
    text.push_str(rest);
    html_unescape(&text)
        .lines()
        .map(|l| l.trim().replace('\u{a0}', " "))
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_becomes_plain_lines() {
        assert_eq!(
            html_to_plain(
                "<div><h3>TruSTAR Enrichment</h3><b>Submitted.   </b><br /><a href=x>link</a></div>"
            ),
            "TruSTAR Enrichment\nSubmitted.\nlink"
        );
        assert_eq!(html_to_plain("1 &lt; 2 &amp;&nbsp;3 < 4"), "1 < 2 & 3 < 4");
        assert_eq!(html_to_plain("\t<b>URL: </b>x\n\n\ty"), "URL: x\ny");
        // Linear in the input, whatever it holds.
        let big = "<".repeat(1 << 20) + &"<p>".repeat(1 << 18);
        assert_eq!(html_to_plain(&big).len(), 1 << 20);
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn offloaded_jobs_run_at_a_lower_priority() {
        use rustix::process::getpriority_process;
        let nice = || getpriority_process(Some(rustix::thread::gettid())).expect("getpriority");
        let ours = nice();
        let theirs = offload(nice).await.expect("job ran");
        assert_eq!(theirs, (ours + 10).min(19), "the job's thread is niced");
        assert_eq!(nice(), ours, "the caller's priority is unchanged");
    }

    #[test]
    fn truncation_keeps_whole_characters_and_says_so() {
        assert_eq!(truncated("short", 10), "short");
        let cut = truncated("ééééé", 5);
        assert!(
            cut.starts_with("éé\n[truncated: 6 of 10 bytes left out"),
            "{cut}"
        );
    }

    #[tokio::test]
    async fn offloaded_jobs_return_and_panics_are_errors() {
        assert_eq!(offload(|| 2 + 2).await.unwrap(), 4);
        let e = offload(|| -> u8 { panic!("boom") }).await.unwrap_err();
        assert!(e.to_string().contains("text transformation failed"), "{e}");
    }
}
