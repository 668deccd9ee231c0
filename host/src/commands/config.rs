//! `host config -c|-u`: write the base `[resilient]` section plus every linked component's
//! default section, or append the sections an existing file lacks (never editing existing ones).

use std::io::Write;
use std::path::{Path, PathBuf};

use soar_sdk::config::generate::BASE_CONFIG;
use soar_sdk::config::ini::Ini;
use soar_sdk::registered;

use super::confirm;

fn first_section(text: &str) -> Option<&str> {
    text.lines().find_map(|l| {
        let l = l.trim();
        l.strip_prefix('[')?.strip_suffix(']')
    })
}

fn default_file() -> PathBuf {
    if let Some(p) = std::env::var_os("APP_CONFIG_FILE") {
        return PathBuf::from(p);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    home.join(".resilient").join("app.config")
}

fn sections(only: &[String]) -> Result<Vec<(&'static str, &'static str)>, String> {
    let all = registered();
    if let Some(unknown) = only.iter().find(|n| !all.iter().any(|r| r.name == *n)) {
        return Err(format!(
            "unknown component '{unknown}' (linked: {})",
            all.iter().map(|r| r.name).collect::<Vec<_>>().join(", ")
        ));
    }
    Ok(all
        .into_iter()
        .filter(|r| only.is_empty() || only.iter().any(|n| n == r.name))
        .filter(|r| !r.default_config.trim().is_empty())
        .map(|r| (r.name, r.default_config))
        .collect())
}

pub fn run(create: bool, file: Option<PathBuf>, only: &[String], yes: bool) -> i32 {
    let path = file.unwrap_or_else(default_file);
    let sections = match sections(only) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return 1;
        }
    };
    let result = if create {
        create_file(&path, &sections, yes)
    } else {
        update_file(&path, &sections)
    };
    match result {
        Ok(message) => {
            println!("{message}");
            0
        }
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}

fn create_file(path: &Path, sections: &[(&str, &str)], yes: bool) -> Result<String, String> {
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
    let mut parts = vec![BASE_CONFIG.trim_end()];
    parts.extend(sections.iter().map(|(_, text)| text.trim_end()));
    let text = parts.join("\n\n") + "\n";
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(format!(
        "Created {} with [resilient]{}{}. Edit host, org and the credentials before `host run`.",
        path.display(),
        if sections.is_empty() { "" } else { " and " },
        sections
            .iter()
            .filter_map(|(_, t)| first_section(t).map(|s| format!("[{s}]")))
            .collect::<Vec<_>>()
            .join(", ")
    ))
}

fn update_file(path: &Path, sections: &[(&str, &str)]) -> Result<String, String> {
    // Only the section names matter: the file is not resolved ($ENV and ^secret values may
    // not be available where the file is edited).
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let existing =
        Ini::parse(text.trim_start_matches('\u{feff}'), path).map_err(|e| e.to_string())?;
    let missing: Vec<&(&str, &str)> = sections
        .iter()
        .filter(|(_, text)| first_section(text).is_some_and(|s| existing.section(s).is_none()))
        .collect();
    if missing.is_empty() {
        return Ok(format!(
            "{} already has every section; nothing changed.",
            path.display()
        ));
    }
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    for (_, text) in &missing {
        write!(file, "\n{}\n", text.trim_end())
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    Ok(format!(
        "Appended {} to {}.",
        missing
            .iter()
            .filter_map(|(_, t)| first_section(t).map(|s| format!("[{s}]")))
            .collect::<Vec<_>>()
            .join(", "),
        path.display()
    ))
}
