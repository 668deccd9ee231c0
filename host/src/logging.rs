//! Logging: stderr and `logdir/logfile` with size rotation, as resilient-circuits'
//! `RotatingFileHandler`; every line passes through a redactor that masks known secret values.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::prelude::*;

/// A file that rotates to `name.1 … name.N` when it would exceed `max_bytes` (0 = never).
#[derive(Debug)]
pub struct RotatingFile {
    path: PathBuf,
    max_bytes: u64,
    backups: u32,
    file: File,
    written: u64,
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
        })
    }

    fn backup(&self, n: u32) -> PathBuf {
        let mut name = self.path.clone().into_os_string();
        name.push(format!(".{n}"));
        PathBuf::from(name)
    }

    fn rotate(&mut self) -> io::Result<()> {
        if self.backups == 0 {
            self.file.set_len(0)?;
        } else {
            for n in (1..self.backups).rev() {
                let from = self.backup(n);
                if from.exists() {
                    std::fs::rename(&from, self.backup(n + 1))?;
                }
            }
            std::fs::rename(&self.path, self.backup(1))?;
        }
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        self.written = 0;
        Ok(())
    }
}

impl Write for RotatingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.max_bytes > 0
            && self.written > 0
            && self.written + buf.len() as u64 > self.max_bytes
        {
            self.rotate()?;
        }
        self.file.write_all(buf)?;
        self.written += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
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

/// A writer that redacts, then writes to the inner writer.
pub struct RedactingWriter<W: Write> {
    inner: W,
    redactor: Redactor,
}

impl<W: Write> Write for RedactingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        self.inner
            .write_all(self.redactor.redact(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[derive(Clone)]
struct Stderr(Redactor);

impl<'a> MakeWriter<'a> for Stderr {
    type Writer = RedactingWriter<io::Stderr>;
    fn make_writer(&'a self) -> Self::Writer {
        RedactingWriter {
            inner: io::stderr(),
            redactor: self.0.clone(),
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
    pub secrets: Vec<String>,
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

/// Installs the global subscriber. Returns a warning to print when the log file can't be opened.
pub fn init(settings: &LogSettings) -> Option<String> {
    let filter = EnvFilter::try_from_env("RUST_LOG")
        .unwrap_or_else(|_| EnvFilter::new(directive(&settings.level)));
    let redactor = Redactor::new(settings.secrets.clone());
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(Stderr(redactor.clone()))
        .with_target(false);
    let mut warning = None;
    let file_layer = settings.file.as_ref().and_then(|path| {
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        match RotatingFile::open(path, settings.max_bytes, settings.backups) {
            Ok(file) => Some(
                tracing_subscriber::fmt::layer()
                    .with_ansi(false)
                    .with_writer(Shared(Arc::new(Mutex::new(file)), redactor.clone())),
            ),
            Err(e) => {
                warning = Some(format!(
                    "cannot open the log file {}: {e}; logging to stderr only",
                    path.display()
                ));
                None
            }
        }
    });
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(stderr)
        .with(file_layer)
        .try_init();
    warning
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
    fn redacts_secret_values() {
        let r = Redactor::new(vec!["s3cr3t-value".into(), "ab".into()]);
        assert_eq!(r.redact("login with s3cr3t-value ok"), "login with *** ok");
        assert_eq!(r.redact("ab stays"), "ab stays");
    }
}
