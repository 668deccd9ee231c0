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

#[cfg(test)]
mod tests {
    use super::*;

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
