//! `host config -c|-u`: write `[resilient]` plus the sections of the selected components
//! (generated from their typed structs), or append the sections an existing file lacks (never
//! editing existing ones). A new file holds credentials, so it is created readable by its owner
//! only.

use std::io::Write;
use std::path::{Path, PathBuf};

use soar_engine::config::ini::Ini;
use soar_engine::config::template::{self, Part};
use soar_engine::load::select;

use super::confirm;

fn default_file() -> PathBuf {
    match std::env::var_os("APP_CONFIG_FILE") {
        Some(p) => PathBuf::from(p),
        None => soar_engine::config::resilient::resilient_dir().join("app.config"),
    }
}

pub fn run(create: bool, file: Option<PathBuf>, only: &[String], yes: bool) -> i32 {
    let path = file.unwrap_or_else(default_file);
    let parts = match select(only) {
        Ok(registrations) => {
            // A new file names what it leaves out; `-u` never edits existing lines.
            let left_out: Vec<&str> = soar_sdk::registered()
                .iter()
                .map(|r| r.name)
                .filter(|n| create && !registrations.iter().any(|r| r.name == *n))
                .collect();
            template::parts(&registrations, &left_out)
        }
        Err(e) => {
            eprintln!("error: {e}");
            return 1;
        }
    };
    let result = if create {
        create_file(&path, &parts, yes)
    } else {
        update_file(&path, &parts, only)
    };
    match result {
        Ok(message) => {
            outln!("{message}");
            0
        }
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}

fn names(parts: &[&Part]) -> String {
    parts
        .iter()
        .map(|p| format!("[{}]", p.name))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Opens `path` for writing, readable by its owner only when it is created.
fn open_private(path: &Path, append: bool) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if append {
        options.append(true);
    } else {
        options.create(true).truncate(true);
    }
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

fn create_file(path: &Path, parts: &[Part], yes: bool) -> Result<String, String> {
    if path.exists() && !yes && !confirm(&format!("{} exists. Overwrite it?", path.display())) {
        return Err(format!(
            "{} exists; not overwritten (use -u to add missing sections, or -y to overwrite)",
            path.display()
        ));
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let write = |mut f: std::fs::File| f.write_all(template::new_config(parts).as_bytes());
    open_private(path, false)
        .and_then(write)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    let all: Vec<&Part> = parts.iter().collect();
    Ok(format!(
        "Created {} with {}. Edit host, org and the credentials before `host run`.",
        path.display(),
        names(&all)
    ))
}

fn update_file(path: &Path, parts: &[Part], only: &[String]) -> Result<String, String> {
    // Only the section names matter: the file is not resolved ($ENV and ^secret values may
    // not be available where the file is edited).
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let existing =
        Ini::parse(text.trim_start_matches('\u{feff}'), path).map_err(|e| e.to_string())?;
    let missing: Vec<&Part> = parts
        .iter()
        .filter(|p| !p.present_in(&existing, parts))
        .collect();
    // Components named with -l that the file's noload still leaves out.
    let noload = existing
        .section("resilient")
        .and_then(|r| r.get("noload"))
        .unwrap_or_default();
    let disabled: Vec<&str> = noload
        .split(',')
        .map(str::trim)
        .filter(|n| only.iter().any(|o| o == n))
        .collect();
    let hint = if disabled.is_empty() {
        String::new()
    } else {
        format!(
            " {} still in `noload` of [resilient]: remove it there to enable it.",
            disabled.join(", ")
        )
    };
    if missing.is_empty() {
        return Ok(format!(
            "{} already has every section; nothing changed.{hint}",
            path.display()
        ));
    }
    let mut file =
        open_private(path, true).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    for part in &missing {
        write!(file, "\n{}", part.text)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    Ok(format!(
        "Appended {} to {}.{hint}",
        names(&missing),
        path.display()
    ))
}

#[cfg(test)]
mod tests {
    use soar_sdk::registered;

    /// Every key `host config -c` writes for a component (commented or not) is one it reads, and
    /// every section it writes is one it reads: the component loads from its filled-in template
    /// without an unknown key.
    #[test]
    fn every_key_written_is_read() {
        assert!(!registered().is_empty());
        for registration in registered() {
            for all in [false, true] {
                let source = registration.template_source(all);
                let setup = soar_sdk::Setup::from_source(&source).unwrap();
                if let Err(e) = (registration.build)(&source, &setup) {
                    // Commented keys hold examples, not always a working set (e.g. a proxy).
                    assert!(
                        all,
                        "{}: its template does not load: {e}",
                        registration.name
                    );
                }
                assert_eq!(
                    source.warnings(),
                    Vec::<String>::new(),
                    "{}",
                    registration.name
                );
                let read = source.sections_read();
                for section in (registration.template)() {
                    assert!(
                        read.contains(&section.name),
                        "{} writes [{}] but does not read it",
                        registration.name,
                        section.name
                    );
                }
            }
        }
    }
}
