//! Logging: stderr and `logdir/logfile` with size rotation, as resilient-circuits'
//! `RotatingFileHandler`; every line passes through a redactor that masks known secret values.

use std::fs::{File, OpenOptions};
use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use soar_engine::config::LogFormat;
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::{DefaultFields, Writer};
use tracing_subscriber::fmt::{FormatFields, MakeWriter};
use tracing_subscriber::prelude::*;
use tracing_subscriber::{EnvFilter, Layer, Registry, reload};

/// A file that rotates to `name.1 … name.N` when it would exceed `max_bytes` (0 = never).
///
/// A rotation that fails (a backup that cannot be renamed, a directory that refuses new
/// names) puts the current file back and writing goes on into it; stderr says so, and the
/// next attempt waits until another `max_bytes` have been written, so that repeated attempts
/// cannot shift the backups away one by one. Only the oldest backup is ever replaced.
#[derive(Debug)]
pub struct RotatingFile {
    path: PathBuf,
    max_bytes: u64,
    backups: u32,
    file: File,
    written: u64,
    /// No rotation before this many bytes are written (after a failed one).
    retry_at: u64,
}

impl RotatingFile {
    pub fn open(path: &Path, max_bytes: u64, backups: u32) -> io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let written = file.metadata()?.len();
        Ok(RotatingFile {
            path: path.to_path_buf(),
            max_bytes,
            backups,
            file,
            written,
            retry_at: 0,
        })
    }

    fn backup(&self, suffix: impl std::fmt::Display) -> PathBuf {
        let mut name = self.path.clone().into_os_string();
        name.push(format!(".{suffix}"));
        PathBuf::from(name)
    }

    fn rotate(&mut self) -> io::Result<()> {
        if self.backups == 0 {
            self.file.set_len(0)?;
            self.written = 0;
            return Ok(());
        }
        // The current file goes aside first: if that fails, nothing has changed.
        let aside = self.backup("rotating");
        std::fs::rename(&self.path, &aside)?;
        let moved = (1..self.backups)
            .rev()
            .map(|n| (self.backup(n), self.backup(n + 1)))
            .filter(|(from, _)| from.exists())
            .try_for_each(|(from, to)| std::fs::rename(from, to))
            .and_then(|()| std::fs::rename(&aside, self.backup(1)));
        if let Err(e) = moved {
            // Back where it was: the open handle still writes into it.
            std::fs::rename(&aside, &self.path)?;
            return Err(e);
        }
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        self.written = 0;
        self.retry_at = 0;
        Ok(())
    }
}

impl Write for RotatingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.max_bytes > 0
            && self.written > 0
            && self.written >= self.retry_at
            && self.written + buf.len() as u64 > self.max_bytes
            && let Err(e) = self.rotate()
        {
            self.retry_at = self.written + self.max_bytes;
            eprintln!(
                "cannot rotate the log file {} ({e}); writing on to it, next attempt after \
                 another {} bytes",
                self.path.display(),
                self.max_bytes
            );
        }
        self.file.write_all(buf)?;
        self.written += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// A log line with control characters escaped (`\n`, `\r`, `\u{1b}`…) but its final newline,
/// so that a value from outside (an artifact value, an error message quoting an answer) cannot
/// start a forged line. `keep_esc` keeps ESC for the colours of a terminal.
pub fn escape_line(line: &str, keep_esc: bool) -> std::borrow::Cow<'_, str> {
    let body = line.strip_suffix('\n').unwrap_or(line);
    let unsafe_char = |c: char| c.is_control() && c != '\t' && !(keep_esc && c == '\u{1b}');
    if !body.contains(unsafe_char) {
        return line.into();
    }
    let mut out = String::with_capacity(line.len() + 16);
    for c in body.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if unsafe_char(c) => out.push_str(&c.escape_unicode().to_string()),
            c => out.push(c),
        }
    }
    if body.len() < line.len() {
        out.push('\n');
    }
    out.into()
}

/// Replaces every known secret value with `***` before a line is written.
#[derive(Clone, Default)]
pub struct Redactor {
    secrets: Arc<Vec<String>>,
}

impl Redactor {
    pub fn new(mut secrets: Vec<String>) -> Self {
        // Longest first, so that a secret containing another is masked whole; very short values
        // would mask ordinary words and are left alone.
        secrets.retain(|s| s.len() >= 4);
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        Redactor {
            secrets: Arc::new(secrets),
        }
    }

    pub fn redact<'a>(&self, line: &'a str) -> std::borrow::Cow<'a, str> {
        let mut out = std::borrow::Cow::Borrowed(line);
        for s in self.secrets.iter() {
            if out.contains(s.as_str()) {
                out = std::borrow::Cow::Owned(out.replace(s.as_str(), "***"));
            }
        }
        out
    }
}

/// A writer that escapes and redacts each line (one `write` is one event), then writes it to
/// the inner writer.
pub struct RedactingWriter<W: Write> {
    inner: W,
    redactor: Redactor,
    /// Keep ESC (the colours of a terminal).
    keep_esc: bool,
}

impl<W: Write> Write for RedactingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        let text = escape_line(&text, self.keep_esc);
        self.inner
            .write_all(self.redactor.redact(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Stderr; `.1`: colours are on, so ESC is kept.
#[derive(Clone)]
struct Stderr(Redactor, bool);

impl<'a> MakeWriter<'a> for Stderr {
    type Writer = RedactingWriter<io::Stderr>;
    fn make_writer(&'a self) -> Self::Writer {
        RedactingWriter {
            inner: io::stderr(),
            redactor: self.0.clone(),
            keep_esc: self.1,
        }
    }
}

#[derive(Clone)]
struct Shared(Arc<Mutex<RotatingFile>>, Redactor);

struct SharedGuard(Arc<Mutex<RotatingFile>>);

impl Write for SharedGuard {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.0.lock() {
            Ok(mut f) => f.write(buf),
            Err(_) => Ok(buf.len()),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self.0.lock() {
            Ok(mut f) => f.flush(),
            Err(_) => Ok(()),
        }
    }
}

impl<'a> MakeWriter<'a> for Shared {
    type Writer = RedactingWriter<SharedGuard>;
    fn make_writer(&'a self) -> Self::Writer {
        RedactingWriter {
            inner: SharedGuard(self.0.clone()),
            redactor: self.1.clone(),
            keep_esc: false,
        }
    }
}

/// Where and how much to log.
#[derive(Debug, Clone)]
pub struct LogSettings {
    /// `loglevel` (DEBUG, INFO, WARNING, ERROR, CRITICAL); `RUST_LOG` overrides it when set.
    pub level: String,
    /// `logdir/logfile`, if file logging is wanted.
    pub file: Option<PathBuf>,
    pub max_bytes: u64,
    pub backups: u32,
    pub format: LogFormat,
    pub secrets: Vec<String>,
}

impl LogSettings {
    /// Text on stderr only, at `level`.
    pub fn stderr(level: &str) -> LogSettings {
        LogSettings {
            level: level.to_string(),
            file: None,
            max_bytes: 0,
            backups: 0,
            format: LogFormat::Text,
            secrets: Vec::new(),
        }
    }
}

fn directive(level: &str) -> &'static str {
    match level.to_ascii_uppercase().as_str() {
        // Our crates at debug; the HTTP and TLS libraries stay at info unless RUST_LOG says so.
        "DEBUG" => "debug,hyper_util=info,hyper=info,h2=info,rustls=info,reqwest=info",
        "WARNING" | "WARN" => "warn",
        "ERROR" | "CRITICAL" => "error",
        _ => "info",
    }
}

/// Colours only for a person at a terminal who has not asked for none (`NO_COLOR`).
fn stderr_colours() -> bool {
    io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

type Boxed = Box<dyn Layer<Registry> + Send + Sync>;

/// Span fields formatted for the file's layer alone. Two fmt layers with the same field
/// formatter type share the formatted fields of a span, and each appends what `Span::record`
/// adds, so every recorded field would show twice; a type of its own keeps them apart.
struct FileFields(DefaultFields);

impl<'w> FormatFields<'w> for FileFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'w>, fields: R) -> std::fmt::Result {
        self.0.format_fields(writer, fields)
    }
}

/// Where a layer writes.
#[derive(Clone, Copy)]
enum Output {
    /// Colours if `ansi`; no timestamp unless `time` (journald adds its own).
    Stderr {
        ansi: bool,
        time: bool,
    },
    File,
}

/// One output's layer: text or JSON.
fn layer<W>(writer: W, format: LogFormat, output: Output) -> Boxed
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let ansi = matches!(output, Output::Stderr { ansi: true, .. });
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_target(false)
        .with_ansi(ansi);
    match (format, output) {
        // JSON fields are merged by key, never repeated.
        (LogFormat::Json, _) => Box::new(fmt.json().with_current_span(true).with_span_list(false)),
        (LogFormat::Text, Output::File) => {
            Box::new(fmt.fmt_fields(FileFields(DefaultFields::new())))
        }
        (LogFormat::Text, Output::Stderr { time: true, .. }) => Box::new(fmt),
        (LogFormat::Text, Output::Stderr { time: false, .. }) => Box::new(fmt.without_time()),
    }
}

/// Changes the level of the installed subscriber (a reload of app.config); `RUST_LOG`, when
/// set, keeps precedence.
pub struct LevelHandle(Option<reload::Handle<EnvFilter, Registry>>);

impl LevelHandle {
    pub fn set(&self, level: &str) {
        let Some(handle) = &self.0 else {
            tracing::info!("RUST_LOG is set: loglevel {level} not applied");
            return;
        };
        match handle.reload(EnvFilter::new(directive(level))) {
            Ok(()) => tracing::info!("log level now {level}"),
            Err(e) => tracing::warn!("log level {level} not applied: {e}"),
        }
    }
}

/// Installs the global subscriber. Returns a warning to print when the log file can't be
/// opened, and the handle that changes the level.
///
/// Under systemd (`JOURNAL_STREAM` set) stderr lines carry no timestamp: journald adds its own.
pub fn init(settings: &LogSettings) -> (Option<String>, LevelHandle) {
    let from_env = EnvFilter::try_from_env("RUST_LOG").ok();
    let fixed = from_env.is_some();
    let (filter, handle) =
        reload::Layer::new(from_env.unwrap_or_else(|| EnvFilter::new(directive(&settings.level))));
    let redactor = Redactor::new(settings.secrets.clone());
    let journald = std::env::var_os("JOURNAL_STREAM").is_some();
    let ansi = stderr_colours();
    let stderr = layer(
        Stderr(redactor.clone(), ansi),
        settings.format,
        Output::Stderr {
            ansi,
            time: !journald,
        },
    );
    let mut warning = None;
    let file_layer = settings.file.as_ref().and_then(|path| {
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        match RotatingFile::open(path, settings.max_bytes, settings.backups) {
            Ok(file) => Some(layer(
                Shared(Arc::new(Mutex::new(file)), redactor.clone()),
                settings.format,
                Output::File,
            )),
            Err(e) => {
                warning = Some(format!(
                    "cannot open the log file {}: {e}; logging to stderr only",
                    path.display()
                ));
                None
            }
        }
    });
    let layers: Vec<Boxed> = std::iter::once(stderr).chain(file_layer).collect();
    let _ = tracing_subscriber::registry()
        .with(layers.with_filter(filter))
        .try_init();
    (warning, LevelHandle((!fixed).then_some(handle)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotates_by_size_and_keeps_n_backups() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        let mut f = RotatingFile::open(&path, 100, 2).unwrap();
        for i in 0..10 {
            writeln!(f, "{i:0>60}").unwrap();
        }
        assert!(path.exists());
        assert!(dir.path().join("app.log.1").exists());
        assert!(dir.path().join("app.log.2").exists());
        assert!(!dir.path().join("app.log.3").exists());
        assert!(std::fs::metadata(&path).unwrap().len() <= 100);
    }

    #[test]
    fn a_failed_rotation_keeps_writing_and_loses_no_backup() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        std::fs::write(dir.path().join("app.log.1"), "backup one\n").unwrap();
        std::fs::write(dir.path().join("app.log.2"), "backup two\n").unwrap();
        // app.log.2 cannot move up: app.log.3 is a directory that is not empty.
        std::fs::create_dir_all(dir.path().join("app.log.3/x")).unwrap();
        let mut f = RotatingFile::open(&path, 100, 3).unwrap();
        for i in 0..30 {
            writeln!(f, "{i:0>60}").unwrap();
        }
        let current = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            current.lines().count(),
            30,
            "every line is in the current file"
        );
        let one = std::fs::read_to_string(dir.path().join("app.log.1")).unwrap();
        let two = std::fs::read_to_string(dir.path().join("app.log.2")).unwrap();
        assert_eq!(
            (one.as_str(), two.as_str()),
            ("backup one\n", "backup two\n")
        );
        assert!(!dir.path().join("app.log.rotating").exists());

        // Once the obstacle is gone, rotation works again.
        std::fs::remove_dir_all(dir.path().join("app.log.3")).unwrap();
        for i in 0..60 {
            writeln!(f, "{i:0>60}").unwrap();
        }
        assert!(std::fs::metadata(&path).unwrap().len() <= 100);
        assert!(dir.path().join("app.log.3").is_file());
    }

    #[test]
    fn control_characters_cannot_forge_a_line() {
        assert_eq!(escape_line("plain line\n", false), "plain line\n");
        assert_eq!(
            escape_line("lookup value=a\nINFO forged\r\u{1b}[2J\n", false),
            "lookup value=a\\nINFO forged\\r\\u{1b}[2J\n"
        );
        assert_eq!(
            escape_line("\u{1b}[32mINFO\u{1b}[0m x\n", true),
            "\u{1b}[32mINFO\u{1b}[0m x\n"
        );
        assert_eq!(escape_line("tab\tkept", false), "tab\tkept");
    }

    #[test]
    fn redacts_secret_values() {
        let r = Redactor::new(vec!["s3cr3t-value".into(), "ab".into()]);
        assert_eq!(r.redact("login with s3cr3t-value ok"), "login with *** ok");
        assert_eq!(r.redact("ab stays"), "ab stays");
    }
}
