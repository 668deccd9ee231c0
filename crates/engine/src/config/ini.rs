//! An INI parser with the exact semantics of Python's
//! `configparser.ConfigParser(interpolation=None)` (default options, `strict=True`), which is what
//! resilient-circuits uses to read `app.config` (spec §1.1, dependencies §3).
//!
//! What that means, line by line:
//!
//! * A leading UTF-8 BOM is skipped. `\r\n`, `\r` and `\n` all end a line (Python's universal
//!   newlines).
//! * A line whose stripped text starts with `#` or `;` is a comment. There are **no inline
//!   comments**: `value ; not a comment` is the whole value.
//! * `[name]` starts a section. The name is everything between the first `[` and the *last* `]`,
//!   not stripped, case-sensitive; text after the last `]` is ignored (as Python does).
//! * `key = value` or `key : value`: the first `=` or `:` delimits. Keys are stripped and
//!   lower-cased, values stripped. `%` is literal (no interpolation).
//! * A line indented deeper than the line that started the current option continues its value
//!   (`"\n" + stripped line`). Blank lines inside a multi-line value are kept; trailing ones are
//!   dropped. Comment lines are skipped without ending the value.
//! * `[DEFAULT]` holds defaults that cascade into every section (it may appear more than once).
//! * Errors: an option before any section header, a duplicate section, a duplicate option in a
//!   section (after lower-casing), a line without a delimiter and an empty key. As in Python, the
//!   first three stop parsing at once while the last two are reported after the whole file has been
//!   read (unless one of the first three comes later).
//!
//! "Whitespace" is Python's `str.isspace()` set, so the results match Python byte for byte; a golden
//! test (`tests/config_ini_golden.rs`) compares them with `python3`.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

/// Name of the section whose options cascade into every other section.
pub const DEFAULT_SECTION: &str = "DEFAULT";

/// A syntax error in an INI file, with the file and the 1-based line number.
///
/// Messages never quote the offending line, because it may hold a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IniError {
    /// An option line before the first `[section]` header (Python's `MissingSectionHeaderError`).
    #[error("{}:{line}: option outside of any section (a [section] header must come first)", .file.display())]
    MissingSectionHeader {
        /// The file being parsed.
        file: PathBuf,
        /// The offending line.
        line: usize,
    },
    /// The same `[section]` header twice (Python's `DuplicateSectionError`).
    #[error("{}:{line}: duplicate section [{section}] (first at line {first_line})", .file.display())]
    DuplicateSection {
        /// The file being parsed.
        file: PathBuf,
        /// The second header.
        line: usize,
        /// The section name.
        section: String,
        /// The first header.
        first_line: usize,
    },
    /// The same option twice in one section, compared after lower-casing (Python's
    /// `DuplicateOptionError`).
    #[error("{}:{line}: duplicate option '{key}' in section [{section}] (first at line {first_line})", .file.display())]
    DuplicateOption {
        /// The file being parsed.
        file: PathBuf,
        /// The second occurrence.
        line: usize,
        /// The section (`DEFAULT` for the defaults).
        section: String,
        /// The lower-cased option name.
        key: String,
        /// The first occurrence.
        first_line: usize,
    },
    /// A line that is neither a comment, a header, a continuation nor `key = value` (Python's
    /// `ParsingError`).
    #[error("{}:{line}: expected 'key = value' or 'key: value' (no '=' or ':' on this line)", .file.display())]
    NoDelimiter {
        /// The file being parsed.
        file: PathBuf,
        /// The first such line.
        line: usize,
    },
    /// A line that starts with its delimiter, e.g. `= value` (Python's `ParsingError`).
    #[error("{}:{line}: empty option name before '=' or ':'", .file.display())]
    EmptyKey {
        /// The file being parsed.
        file: PathBuf,
        /// The first such line.
        line: usize,
    },
}

impl IniError {
    /// The file the error is about.
    pub fn file(&self) -> &Path {
        match self {
            IniError::MissingSectionHeader { file, .. }
            | IniError::DuplicateSection { file, .. }
            | IniError::DuplicateOption { file, .. }
            | IniError::NoDelimiter { file, .. }
            | IniError::EmptyKey { file, .. } => file,
        }
    }

    /// The 1-based line the error is about.
    pub fn line(&self) -> usize {
        match self {
            IniError::MissingSectionHeader { line, .. }
            | IniError::DuplicateSection { line, .. }
            | IniError::DuplicateOption { line, .. }
            | IniError::NoDelimiter { line, .. }
            | IniError::EmptyKey { line, .. } => *line,
        }
    }

    /// The name of the Python `configparser` exception class that reports the same problem.
    pub fn python_class(&self) -> &'static str {
        match self {
            IniError::MissingSectionHeader { .. } => "MissingSectionHeaderError",
            IniError::DuplicateSection { .. } => "DuplicateSectionError",
            IniError::DuplicateOption { .. } => "DuplicateOptionError",
            IniError::NoDelimiter { .. } | IniError::EmptyKey { .. } => "ParsingError",
        }
    }
}

/// One `key = value` option.
#[derive(Clone, PartialEq, Eq)]
pub struct IniEntry {
    /// Lower-cased, stripped key.
    pub key: String,
    /// Stripped value; continuation lines joined with `\n`.
    pub value: String,
    /// 1-based line of the key.
    pub line: usize,
}

impl fmt::Debug for IniEntry {
    // Values may be secrets: never print them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.key, self.line)
    }
}

/// One `[section]` with its own options (without the `[DEFAULT]` ones), in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IniSection {
    /// The name between the brackets, exactly as written.
    pub name: String,
    /// 1-based line of the header.
    pub line: usize,
    /// The section's own options in file order.
    pub entries: Vec<IniEntry>,
}

impl IniSection {
    /// The section's own value for `key` (already lower-cased), without defaults.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|e| e.key == key)
            .map(|e| e.value.as_str())
    }
}

/// A parsed INI document.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ini {
    /// Options of `[DEFAULT]`, in file order.
    pub defaults: Vec<IniEntry>,
    /// Every other section in file order.
    pub sections: Vec<IniSection>,
}

/// Python's `str.isspace()`: Unicode White_Space plus the four information separators.
pub(crate) fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python's `str.strip()`.
pub(crate) fn py_strip(s: &str) -> &str {
    s.trim_matches(is_py_space)
}

/// Splits like Python's universal-newline text reading: `\r\n`, `\r` and `\n` end a line; a last
/// line without terminator counts; no empty line after a final terminator.
fn split_lines(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        match rest.find(['\r', '\n']) {
            Some(i) => {
                let line = &rest[..i];
                let skip = if rest[i..].starts_with("\r\n") { 2 } else { 1 };
                rest = &rest[i + skip..];
                Some(line)
            }
            None => {
                let line = rest;
                rest = "";
                Some(line)
            }
        }
    })
}

/// The header of a section line (`SECTCRE = \[(?P<header>.+)\]` matched at the start): from the
/// first `[` to the last `]`, at least one character long.
fn section_header(value: &str) -> Option<&str> {
    let inner = value.strip_prefix('[')?;
    let close = inner.rfind(']')?;
    (close >= 1).then(|| &inner[..close])
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Cursor {
    Defaults,
    Section(usize),
}

/// An option while parsing: key, value lines, line number.
type RawOption = (String, Vec<String>, usize);

struct Parser {
    defaults: Vec<RawOption>,
    /// Name, header line, options.
    sections: Vec<(String, usize, Vec<RawOption>)>,
    section_index: HashMap<String, usize>,
    /// `(section, key)` -> first line, as Python's `elements_added`.
    options_added: HashMap<(String, String), usize>,
    sections_added: HashSet<String>,
}

impl Parser {
    fn options(&mut self, cur: Cursor) -> &mut Vec<RawOption> {
        match cur {
            Cursor::Defaults => &mut self.defaults,
            Cursor::Section(i) => &mut self.sections[i].2,
        }
    }
}

impl Ini {
    /// Parses `text`; `file` is only used in error messages.
    pub fn parse(text: &str, file: &Path) -> Result<Ini, IniError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut p = Parser {
            defaults: Vec::new(),
            sections: Vec::new(),
            section_index: HashMap::new(),
            options_added: HashMap::new(),
            sections_added: HashSet::new(),
        };
        let mut cursect: Option<Cursor> = None;
        let mut sectname: Option<String> = None;
        // Index (into the current section's options) of the option being continued. Python keeps
        // the option *name*; an empty name (from `= value`) never continues, hence `Option`.
        let mut optidx: Option<usize> = None;
        let mut indent_level: usize = 0;
        let mut first_error: Option<IniError> = None;

        for (idx, line) in split_lines(text).enumerate() {
            let lineno = idx + 1;
            let stripped = py_strip(line);
            let is_comment = stripped.starts_with('#') || stripped.starts_with(';');
            let value = if is_comment { "" } else { stripped };
            if value.is_empty() {
                // empty_lines_in_values=True: a blank (non-comment) line is part of the value.
                if !is_comment && let (Some(cur), Some(i)) = (cursect, optidx) {
                    p.options(cur)[i].1.push(String::new());
                }
                continue;
            }
            let cur_indent = line.chars().take_while(|c| is_py_space(*c)).count();
            if let (Some(cur), Some(i)) = (cursect, optidx)
                && cur_indent > indent_level
            {
                p.options(cur)[i].1.push(value.to_owned());
                continue;
            }
            indent_level = cur_indent;
            if let Some(header) = section_header(value) {
                if let Some(&i) = p.section_index.get(header) {
                    if p.sections_added.contains(header) {
                        return Err(IniError::DuplicateSection {
                            file: file.to_owned(),
                            line: lineno,
                            section: header.to_owned(),
                            first_line: p.sections[i].1,
                        });
                    }
                    cursect = Some(Cursor::Section(i));
                    p.sections_added.insert(header.to_owned());
                } else if header == DEFAULT_SECTION {
                    cursect = Some(Cursor::Defaults);
                } else {
                    p.sections.push((header.to_owned(), lineno, Vec::new()));
                    let i = p.sections.len() - 1;
                    p.section_index.insert(header.to_owned(), i);
                    p.sections_added.insert(header.to_owned());
                    cursect = Some(Cursor::Section(i));
                }
                sectname = Some(header.to_owned());
                optidx = None;
                continue;
            }
            let Some(cur) = cursect else {
                return Err(IniError::MissingSectionHeader {
                    file: file.to_owned(),
                    line: lineno,
                });
            };
            let Some(delim) = value.find(['=', ':']) else {
                first_error.get_or_insert(IniError::NoDelimiter {
                    file: file.to_owned(),
                    line: lineno,
                });
                continue;
            };
            let raw_key = value[..delim].trim_end_matches(is_py_space);
            let optval = py_strip(&value[delim + 1..]);
            if raw_key.is_empty() {
                first_error.get_or_insert(IniError::EmptyKey {
                    file: file.to_owned(),
                    line: lineno,
                });
            }
            let key = raw_key.to_lowercase();
            let sect = sectname.clone().unwrap_or_default();
            let added_key = (sect, key);
            if let Some(&first_line) = p.options_added.get(&added_key) {
                let (section, key) = added_key;
                return Err(IniError::DuplicateOption {
                    file: file.to_owned(),
                    line: lineno,
                    section,
                    key,
                    first_line,
                });
            }
            p.options_added.insert(added_key.clone(), lineno);
            let key = added_key.1;
            let opts = p.options(cur);
            // With strict=True a key is never seen twice in a section, so this always appends.
            opts.push((key.clone(), vec![optval.to_owned()], lineno));
            let i = opts.len() - 1;
            optidx = (!key.is_empty()).then_some(i);
        }
        if let Some(e) = first_error {
            return Err(e);
        }
        let join = |opts: Vec<RawOption>| -> Vec<IniEntry> {
            opts.into_iter()
                .map(|(key, parts, line)| IniEntry {
                    key,
                    value: parts.join("\n").trim_end_matches(is_py_space).to_owned(),
                    line,
                })
                .collect()
        };
        Ok(Ini {
            defaults: join(p.defaults),
            sections: p
                .sections
                .into_iter()
                .map(|(name, line, opts)| IniSection {
                    name,
                    line,
                    entries: join(opts),
                })
                .collect(),
        })
    }

    /// The section called `name` (case-sensitive), without defaults. `[DEFAULT]` is not a section.
    pub fn section(&self, name: &str) -> Option<&IniSection> {
        self.sections.iter().find(|s| s.name == name)
    }

    /// The options of section `name` with `[DEFAULT]` cascaded, in the order of Python's
    /// `config.options(name)`: the section's own keys in file order, then the default keys it does
    /// not override. `None` if there is no such section.
    pub fn items(&self, name: &str) -> Option<Vec<(&str, &str)>> {
        let section = self.section(name)?;
        let mut out: Vec<(&str, &str)> = section
            .entries
            .iter()
            .map(|e| (e.key.as_str(), e.value.as_str()))
            .collect();
        for d in &self.defaults {
            if section.get(&d.key).is_none() {
                out.push((d.key.as_str(), d.value.as_str()));
            }
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Ini, IniError> {
        Ini::parse(text, Path::new("/etc/app.config"))
    }

    fn items(ini: &Ini, s: &str) -> Vec<(String, String)> {
        ini.items(s)
            .unwrap()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    #[test]
    fn basics() {
        let ini = parse("\u{feff}[a]\nX = 1\ny: 2\n# c\n; c\nz=a ; b\n").unwrap();
        assert_eq!(
            items(&ini, "a"),
            vec![
                ("x".into(), "1".into()),
                ("y".into(), "2".into()),
                ("z".into(), "a ; b".into())
            ]
        );
    }

    #[test]
    fn continuation_and_blank_lines() {
        let ini = parse("[a]\nk = 1\n  2\n\n  3\n\n\nj = x\n").unwrap();
        assert_eq!(ini.section("a").unwrap().get("k"), Some("1\n2\n\n3"));
        assert_eq!(ini.section("a").unwrap().get("j"), Some("x"));
    }

    #[test]
    fn defaults_cascade() {
        let ini = parse("[DEFAULT]\nd = 1\ne = 2\n[a]\ne = 3\nf = 4\n").unwrap();
        assert_eq!(
            items(&ini, "a"),
            vec![
                ("e".into(), "3".into()),
                ("f".into(), "4".into()),
                ("d".into(), "1".into())
            ]
        );
        assert!(ini.section("DEFAULT").is_none());
    }

    #[test]
    fn errors() {
        let e = parse("[a]\nhost = 1\n\nHOST = 2\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "/etc/app.config:4: duplicate option 'host' in section [a] (first at line 2)"
        );
        let e = parse("[a]\n[b]\n[a]\n").unwrap_err();
        assert_eq!(
            e,
            IniError::DuplicateSection {
                file: "/etc/app.config".into(),
                line: 3,
                section: "a".into(),
                first_line: 1
            }
        );
        assert_eq!(parse("k = v\n[a]\n").unwrap_err().line(), 1);
        let e = parse("[a]\nnovalue\nk = [x\n").unwrap_err();
        assert!(matches!(e, IniError::NoDelimiter { line: 2, .. }));
        let e = parse("[a]\n= x\n").unwrap_err();
        assert!(matches!(e, IniError::EmptyKey { line: 2, .. }));
        // A fatal error after a non-fatal one wins, as in Python.
        let e = parse("[a]\nbogus\nk=1\nk=2\n").unwrap_err();
        assert!(matches!(e, IniError::DuplicateOption { line: 4, .. }));
    }

    #[test]
    fn section_header_quirks() {
        let ini = parse("[a] trailing\nk=1\n[ b ]\n[c]]\n[x=y]\n").unwrap();
        let names: Vec<_> = ini.sections.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["a", " b ", "c]", "x=y"]);
        assert!(parse("[]\n").is_err());
    }

    #[test]
    fn line_endings() {
        let ini = parse("[a]\r\nk = 1\r  2\rj=3").unwrap();
        assert_eq!(ini.section("a").unwrap().get("k"), Some("1\n2"));
        assert_eq!(ini.section("a").unwrap().get("j"), Some("3"));
    }
}
