//! Writing the secret store that `^name` values are read from (`host secret set|list|delete`):
//! a directory store (one file per secret) or a file store (`name = value` lines), both kept
//! readable by their owner only. Writes go to a new private file that replaces the old one, so
//! a reader never sees half a value and a crash leaves the old store whole.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::secrets::{SecretError, check_private};

/// The store at `path` (created as a private directory when it does not exist).
#[derive(Debug, Clone)]
pub struct StoreAdmin {
    path: PathBuf,
}

fn io_error(path: &Path) -> impl Fn(io::Error) -> SecretError + '_ {
    move |source| SecretError::Io {
        path: path.to_owned(),
        source,
    }
}

fn invalid(name: &str, reason: &'static str) -> SecretError {
    SecretError::InvalidName {
        name: name.to_owned(),
        reason,
    }
}

/// Secret and section names: what a `^name` reference can name, and a plain file name.
fn check_name(name: &str) -> Result<(), SecretError> {
    let ok = !name.is_empty()
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '@' | '-'));
    if ok {
        Ok(())
    } else {
        Err(invalid(
            name,
            "use letters, digits and _ . @ - only (as in a ^name reference)",
        ))
    }
}

/// Creates `dir` readable by its owner only (if it does not exist).
fn private_dir(dir: &Path) -> Result<(), SecretError> {
    if dir.is_dir() {
        return check_private(dir);
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(io_error(dir))
}

/// Replaces `path` with `text` through a private temporary file in the same directory.
fn replace_file(path: &Path, text: &str) -> Result<(), SecretError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut temp = tempfile::Builder::new()
        .prefix(".secret-")
        .tempfile_in(dir)
        .map_err(io_error(dir))?;
    // tempfile creates it with mode 0600.
    temp.write_all(text.as_bytes()).map_err(io_error(path))?;
    temp.as_file().sync_all().map_err(io_error(path))?;
    temp.persist(path).map_err(|e| io_error(path)(e.error))?;
    Ok(())
}

impl StoreAdmin {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        StoreAdmin { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn is_file_store(&self) -> bool {
        self.path.is_file()
    }

    /// Stores `value` as `name`, for `section` only or (None) for every section.
    pub fn set(&self, section: Option<&str>, name: &str, value: &str) -> Result<(), SecretError> {
        check_name(name)?;
        if let Some(s) = section {
            check_name(s)?;
        }
        if value.contains(['\n', '\r']) {
            return Err(invalid(name, "a secret value is one line"));
        }
        if self.is_file_store() {
            check_private(&self.path)?;
            let text = std::fs::read_to_string(&self.path).map_err(io_error(&self.path))?;
            let edited = file_lines::set(&text, section, name, value);
            return replace_file(&self.path, &edited);
        }
        private_dir(&self.path)?;
        let dir = match section {
            Some(s) => {
                let sub = self.path.join(s);
                private_dir(&sub)?;
                sub
            }
            None => self.path.clone(),
        };
        replace_file(&dir.join(name), &format!("{value}\n"))
    }

    /// The names stored, `name` or `section/name`, sorted; never the values.
    pub fn list(&self) -> Result<Vec<String>, SecretError> {
        if !self.path.exists() {
            return Ok(Vec::new());
        }
        check_private(&self.path)?;
        let mut names = if self.is_file_store() {
            let text = std::fs::read_to_string(&self.path).map_err(io_error(&self.path))?;
            file_lines::names(&text)
        } else {
            let mut names = Vec::new();
            for entry in std::fs::read_dir(&self.path).map_err(io_error(&self.path))? {
                let entry = entry.map_err(io_error(&self.path))?;
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with(".secret-") {
                    continue;
                }
                if entry.path().is_dir() {
                    for inner in std::fs::read_dir(entry.path()).map_err(io_error(&entry.path()))? {
                        let inner = inner.map_err(io_error(&entry.path()))?;
                        names.push(format!("{name}/{}", inner.file_name().to_string_lossy()));
                    }
                } else {
                    names.push(name);
                }
            }
            names
        };
        names.sort();
        Ok(names)
    }

    /// Removes `name` (of `section`, or the one for every section); false if it was not there.
    pub fn delete(&self, section: Option<&str>, name: &str) -> Result<bool, SecretError> {
        check_name(name)?;
        if let Some(s) = section {
            check_name(s)?;
        }
        if !self.path.exists() {
            return Ok(false);
        }
        check_private(&self.path)?;
        if self.is_file_store() {
            let text = std::fs::read_to_string(&self.path).map_err(io_error(&self.path))?;
            let Some(edited) = file_lines::delete(&text, section, name) else {
                return Ok(false);
            };
            replace_file(&self.path, &edited)?;
            return Ok(true);
        }
        let file = match section {
            Some(s) => self.path.join(s).join(name),
            None => self.path.join(name),
        };
        match std::fs::remove_file(&file) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_error(&file)(e)),
        }
    }
}

/// Editing the lines of a file store, keeping its comments and order.
mod file_lines {
    /// The section a line starts (`[_]` is every section, as no section).
    fn header(line: &str) -> Option<Option<String>> {
        let name = line.trim().strip_prefix('[')?.strip_suffix(']')?.trim();
        Some((name != "_").then(|| name.to_string()))
    }

    fn entry_name(line: &str) -> Option<&str> {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') || t.starts_with(';') {
            return None;
        }
        t.split_once('=').map(|(n, _)| n.trim())
    }

    /// Index of the line holding `name` in `section`.
    fn find(lines: &[&str], section: Option<&str>, name: &str) -> Option<usize> {
        let mut current: Option<String> = None;
        for (i, line) in lines.iter().enumerate() {
            if let Some(h) = header(line) {
                current = h;
            } else if current.as_deref() == section && entry_name(line) == Some(name) {
                return Some(i);
            }
        }
        None
    }

    fn join(lines: Vec<String>) -> String {
        let mut text = lines.join("\n");
        text.push('\n');
        text
    }

    pub fn set(text: &str, section: Option<&str>, name: &str, value: &str) -> String {
        let lines: Vec<&str> = text.lines().collect();
        let line = format!("{name} = {value}");
        let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
        if let Some(i) = find(&lines, section, name) {
            out[i] = line;
            return join(out);
        }
        match section {
            // Global entries go before the first section.
            None => {
                let at = lines
                    .iter()
                    .position(|l| header(l).is_some())
                    .unwrap_or(lines.len());
                out.insert(at, line);
            }
            Some(s) => {
                let start = lines
                    .iter()
                    .position(|l| header(l) == Some(Some(s.to_string())));
                match start {
                    Some(start) => {
                        let end = lines[start + 1..]
                            .iter()
                            .position(|l| header(l).is_some())
                            .map_or(lines.len(), |p| start + 1 + p);
                        out.insert(end, line);
                    }
                    None => {
                        out.push(format!("[{s}]"));
                        out.push(line);
                    }
                }
            }
        }
        join(out)
    }

    pub fn delete(text: &str, section: Option<&str>, name: &str) -> Option<String> {
        let lines: Vec<&str> = text.lines().collect();
        let i = find(&lines, section, name)?;
        let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
        out.remove(i);
        Some(join(out))
    }

    pub fn names(text: &str) -> Vec<String> {
        let mut current: Option<String> = None;
        let mut names = Vec::new();
        for line in text.lines() {
            if let Some(h) = header(line) {
                current = h;
            } else if let Some(n) = entry_name(line) {
                names.push(match &current {
                    Some(s) => format!("{s}/{n}"),
                    None => n.to_string(),
                });
            }
        }
        names
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::secrets::{DirectoryStore, FileStore, SecretStore};

    #[cfg(unix)]
    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_directory_store_is_created_private_and_read_back() {
        let tmp = tempfile::tempdir().unwrap();
        let store = StoreAdmin::new(tmp.path().join("secrets"));
        store.set(None, "api_key_secret", "k3y").unwrap();
        store
            .set(Some("fn_slack"), "slack_token", "xoxb-1")
            .unwrap();
        store.set(None, "api_key_secret", "k3y-2").unwrap();
        #[cfg(unix)]
        {
            assert_eq!(mode(store.path()), 0o700);
            assert_eq!(mode(&store.path().join("api_key_secret")), 0o600);
            assert_eq!(mode(&store.path().join("fn_slack")), 0o700);
        }
        assert_eq!(
            store.list().unwrap(),
            ["api_key_secret", "fn_slack/slack_token"]
        );
        let read = DirectoryStore::open(store.path()).unwrap();
        assert_eq!(
            read.lookup("x", "api_key_secret").unwrap().as_deref(),
            Some("k3y-2")
        );
        assert_eq!(
            read.lookup("fn_slack", "slack_token").unwrap().as_deref(),
            Some("xoxb-1")
        );
        assert!(store.delete(Some("fn_slack"), "slack_token").unwrap());
        assert!(!store.delete(Some("fn_slack"), "slack_token").unwrap());
        assert_eq!(read.lookup("fn_slack", "slack_token").unwrap(), None);
        assert!(store.set(None, "../escape", "v").is_err());
        assert!(store.set(None, "ok", "two\nlines").is_err());
    }

    #[test]
    fn a_file_store_is_edited_in_place_keeping_its_comments() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("app.secrets");
        std::fs::write(&path, "# mine\nglobal = 1\n[fn_a]\nk = old\n").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let store = StoreAdmin::new(&path);
        store.set(Some("fn_a"), "k", "new").unwrap();
        store.set(None, "other", "2").unwrap();
        store.set(Some("fn_b"), "t", "3").unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "# mine\nglobal = 1\nother = 2\n[fn_a]\nk = new\n[fn_b]\nt = 3\n"
        );
        #[cfg(unix)]
        assert_eq!(mode(&path), 0o600);
        assert_eq!(
            store.list().unwrap(),
            ["fn_a/k", "fn_b/t", "global", "other"]
        );
        assert!(store.delete(None, "global").unwrap());
        let read = FileStore::open(&path).unwrap();
        assert_eq!(read.lookup("fn_a", "k").unwrap().as_deref(), Some("new"));
        assert_eq!(read.lookup("fn_a", "global").unwrap(), None);
    }

    #[cfg(unix)]
    #[test]
    fn a_store_others_can_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("secrets");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let e = StoreAdmin::new(&dir).set(None, "n", "v").unwrap_err();
        assert!(
            e.to_string().contains("0755") || e.to_string().contains("755"),
            "{e}"
        );
    }
}
