//! `host new NAME`: a new function crate in the workspace, ready to build and test: one typed
//! function with its YAML, a typed config section and behavioural tests; the crate is added to
//! the workspace and to the host as a cargo feature (on by default). The host's build script
//! links every crate a feature enables, so nothing in `host/src` changes.

use std::path::{Path, PathBuf};

use toml_edit::{Array, DocumentMut, InlineTable, Item, Value};

const LIB: &str = include_str!("new/lib.rs.txt");
const TEST: &str = include_str!("new/test.rs.txt");
const YAML: &str = include_str!("new/customize.yaml.txt");
const MANIFEST: &str = include_str!("new/Cargo.toml.txt");

/// `fn_example` → `FnExample` (for the generated type names).
fn type_name(name: &str) -> String {
    name.split('_')
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

fn check_name(name: &str) -> Result<(), String> {
    let ok = name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.len() <= 40;
    if ok {
        Ok(())
    } else {
        Err(format!(
            "'{name}' cannot be a crate and component name: use lower-case letters, digits and _ \
             (at most 40), starting with a letter, e.g. fn_example"
        ))
    }
}

/// The workspace root: the nearest directory above `start` with a `[workspace]` Cargo.toml
/// and a `host/Cargo.toml`.
fn workspace_root(start: &Path) -> Result<PathBuf, String> {
    start
        .ancestors()
        .find(|dir| {
            dir.join("host/Cargo.toml").is_file()
                && std::fs::read_to_string(dir.join("Cargo.toml"))
                    .is_ok_and(|t| t.contains("[workspace]"))
        })
        .map(Path::to_path_buf)
        .ok_or_else(|| {
            format!(
                "no soar-host workspace at or above {} (run `host new` in the repository)",
                start.display()
            )
        })
}

fn read_manifest(path: &Path) -> Result<DocumentMut, String> {
    std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?
        .parse::<DocumentMut>()
        .map_err(|e| format!("{} is not valid TOML: {e}", path.display()))
}

fn table<'a>(doc: &'a mut DocumentMut, path: &[&str]) -> Result<&'a mut toml_edit::Table, String> {
    let mut item: &mut Item = doc.as_item_mut();
    for key in path {
        item = item
            .get_mut(key)
            .ok_or_else(|| format!("no [{}] in the manifest", path.join(".")))?;
    }
    item.as_table_mut()
        .ok_or_else(|| format!("[{}] is not a table", path.join(".")))
}

fn inline(pairs: &[(&str, Value)]) -> Item {
    let mut t = InlineTable::new();
    for (k, v) in pairs {
        t.insert(*k, v.clone());
    }
    Item::Value(Value::InlineTable(t))
}

/// Adds the crate to the workspace's members and dependencies.
fn add_to_workspace(doc: &mut DocumentMut, name: &str) -> Result<(), String> {
    let members = table(doc, &["workspace"])?
        .get_mut("members")
        .and_then(Item::as_array_mut)
        .ok_or("no workspace.members array")?;
    if !members.iter().any(|m| m.as_str() == Some(name)) {
        // Written like the last member (one per line, indented), not reformatted.
        let prefix = members
            .iter()
            .last()
            .and_then(|m| m.decor().prefix())
            .and_then(|p| p.as_str())
            .unwrap_or(" ")
            .to_string();
        let mut value = Value::from(name);
        value.decor_mut().set_prefix(prefix);
        members.push_formatted(value);
    }
    table(doc, &["workspace", "dependencies"])?.insert(name, inline(&[("path", name.into())]));
    Ok(())
}

/// Adds the crate to the host: an optional dependency and a feature, on by default.
fn add_to_host(doc: &mut DocumentMut, name: &str) -> Result<(), String> {
    let deps = table(doc, &["dependencies"])?;
    deps.insert(
        name,
        inline(&[("workspace", true.into()), ("optional", true.into())]),
    );
    let features = table(doc, &["features"])?;
    let mut feature = Array::new();
    feature.push(format!("dep:{name}"));
    features.insert(name, Item::Value(Value::Array(feature)));
    if let Some(default) = features.get_mut("default").and_then(Item::as_array_mut)
        && !default.iter().any(|f| f.as_str() == Some(name))
    {
        default.push(name);
    }
    Ok(())
}

fn create(root: &Path, name: &str) -> Result<Vec<PathBuf>, String> {
    let dir = root.join(name);
    if dir.exists() {
        return Err(format!("{} exists already", dir.display()));
    }
    let fill = |t: &str| {
        t.replace("{{name}}", name)
            .replace("{{Type}}", &type_name(name))
    };
    let files = [
        ("Cargo.toml", fill(MANIFEST)),
        ("src/lib.rs", fill(LIB)),
        (&format!("tests/{name}.rs") as &str, fill(TEST)),
        (&format!("customize/{name}.yaml") as &str, fill(YAML)),
    ]
    .map(|(p, t)| (dir.join(p), t));
    for (path, text) in &files {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    Ok(files.into_iter().map(|(p, _)| p).collect())
}

fn new_crate(start: &Path, name: &str) -> Result<(PathBuf, Vec<PathBuf>), String> {
    check_name(name)?;
    let root = workspace_root(start)?;
    let mut workspace = read_manifest(&root.join("Cargo.toml"))?;
    let mut host = read_manifest(&root.join("host/Cargo.toml"))?;
    if host.get("features").and_then(|f| f.get(name)).is_some() {
        return Err(format!("the host already has a feature '{name}'"));
    }
    add_to_workspace(&mut workspace, name)?;
    add_to_host(&mut host, name)?;
    let files = create(&root, name)?;
    let write = |path: PathBuf, doc: &DocumentMut| {
        std::fs::write(&path, doc.to_string())
            .map_err(|e| format!("cannot write {}: {e}", path.display()))
    };
    write(root.join("Cargo.toml"), &workspace)?;
    write(root.join("host/Cargo.toml"), &host)?;
    Ok((root, files))
}

pub fn run(name: &str) -> i32 {
    let cwd = std::env::current_dir().unwrap_or_default();
    match new_crate(&cwd, name) {
        Ok((root, files)) => {
            outln!("Created the function crate {name}:");
            for f in &files {
                outln!("  {}", f.strip_prefix(&root).unwrap_or(f).display());
            }
            outln!(
                "and added it to the workspace (Cargo.toml) and to the host as the feature \
                 {name}, on by default (host/Cargo.toml).\n\nNext:\n  \
                 cargo test -p {name}        # its tests, without any platform\n  \
                 cargo run -p host -- list   # the host now serves {name}\n  \
                 cargo run -p host -- demo   # and runs it against the simulated platform\n\
                 Then edit {name}/src/lib.rs (the handler and its config section) and \
                 {name}/customize/{name}.yaml (the function's inputs, rules, workflows)."
            );
            0
        }
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_types() {
        assert_eq!(type_name("fn_example"), "FnExample");
        assert!(check_name("fn_x2").is_ok());
        assert!(check_name("Fn-x").is_err());
        assert!(check_name("2x").is_err());
    }

    #[test]
    fn edits_the_manifests_and_keeps_their_layout() {
        let mut ws: DocumentMut =
            "[workspace]\n# the crates\nmembers = [\n    \"host\",\n]\n\n[workspace.dependencies]\nhost = { path = \"host\" }\n"
                .parse()
                .unwrap();
        add_to_workspace(&mut ws, "fn_x").unwrap();
        let text = ws.to_string();
        assert!(text.contains("# the crates\n"), "{text}");
        assert!(text.contains("    \"host\",\n    \"fn_x\",\n]"), "{text}");
        assert!(text.contains("fn_x = { path = \"fn_x\" }"), "{text}");
        let mut host: DocumentMut =
            "[features]\ndefault = [\"a\"]\na = [\"dep:a\"]\n\n[dependencies]\na = { workspace = true, optional = true }\n"
                .parse()
                .unwrap();
        add_to_host(&mut host, "fn_x").unwrap();
        let text = host.to_string();
        assert!(text.contains("default = [\"a\", \"fn_x\"]"), "{text}");
        assert!(text.contains("fn_x = [\"dep:fn_x\"]"), "{text}");
        assert!(
            text.contains("fn_x = { workspace = true, optional = true }"),
            "{text}"
        );
    }
}
