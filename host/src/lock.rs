//! The lock file that stops two hosts from sharing one configuration by accident
//! (`APP_LOCK_FILE`, else `~/.resilient/resilient_circuits_lockfile`, as resilient-circuits).

use std::fs::{File, OpenOptions};
use std::path::PathBuf;

/// Holds the lock until dropped.
#[derive(Debug)]
pub struct AppLock {
    _file: File,
    pub path: PathBuf,
}

pub fn default_path() -> PathBuf {
    if let Some(p) = std::env::var_os("APP_LOCK_FILE") {
        return PathBuf::from(p);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    home.join(".resilient").join("resilient_circuits_lockfile")
}

/// Takes the lock or explains who holds it.
pub fn acquire() -> anyhow::Result<AppLock> {
    let path = default_path();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
    }
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| anyhow::anyhow!("cannot open the lock file {}: {e}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(AppLock { _file: file, path }),
        Err(_) => anyhow::bail!(
            "Failed to acquire lock on {} - you may have another instance of the host running. \
             Set APP_LOCK_FILE to a different path to run several instances.",
            path.display()
        ),
    }
}
