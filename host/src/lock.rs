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
    soar_engine::config::resilient::lock_file_path()
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
