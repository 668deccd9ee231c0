//! Golden parity of `soar_engine::config::ini` with Python's `configparser`, the parser
//! resilient-circuits uses: every fixture in `tests/fixtures/ini/` and a few thousand generated
//! documents are parsed by both, and the sections (with `[DEFAULT]` cascaded) or the error class
//! and line must be identical.
//!
//! `python3` is required: without it these tests FAIL (CI installs it).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{Value, json};
use soar_engine::config::ini::Ini;

/// Reads each file exactly as `resilient/co3argparse.py` does and prints one JSON line per file.
const PY: &str = r#"
import configparser, json, sys
out = []
for path in sys.argv[1:]:
    config = configparser.ConfigParser(interpolation=None)
    try:
        with open(path, 'r', encoding='utf-8') as f:
            first = f.read(1)
            if first != u'\ufeff':
                f.seek(0)
            config.read_file(f)
        sections = []
        for s in config.sections():
            sections.append([s, [[k, config.get(s, k)] for k in config.options(s)]])
        out.append({"sections": sections})
    except configparser.Error as e:
        if isinstance(e, configparser.MissingSectionHeaderError) or not isinstance(e, configparser.ParsingError):
            line = e.lineno
        else:
            line = e.errors[0][0]
        out.append({"error": type(e).__name__, "line": line})
json.dump(out, sys.stdout)
"#;

fn python_parse(files: &[PathBuf]) -> Vec<Value> {
    let output = Command::new("python3")
        .arg("-c")
        .arg(PY)
        .args(files)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "python3 is required for the configparser golden tests but could not be run ({e}); \
                 install python3 (CI does) — these tests must not be skipped"
            )
        });
    assert!(
        output.status.success(),
        "python3 failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("python3 printed invalid JSON")
}

fn rust_parse(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap();
    match Ini::parse(&text, path) {
        Ok(ini) => json!({
            "sections": ini
                .sections
                .iter()
                .map(|s| json!([s.name, ini.items(&s.name).unwrap()
                    .into_iter()
                    .map(|(k, v)| json!([k, v]))
                    .collect::<Vec<_>>()]))
                .collect::<Vec<_>>()
        }),
        Err(e) => {
            assert_eq!(e.file(), path);
            json!({"error": e.python_class(), "line": e.line()})
        }
    }
}

fn fixtures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ini");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "config"))
        .collect();
    files.sort();
    files
}

fn compare(files: &[PathBuf]) -> Vec<Value> {
    let expected = python_parse(files);
    assert_eq!(expected.len(), files.len());
    let mut mismatches = Vec::new();
    for (path, want) in files.iter().zip(&expected) {
        let got = rust_parse(path);
        if &got != want {
            mismatches.push(format!(
                "{}\n  text:   {:?}\n  python: {want}\n  rust:   {got}",
                path.display(),
                std::fs::read_to_string(path).unwrap()
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} files differ from python3 configparser:\n{}",
        mismatches.len(),
        files.len(),
        mismatches.join("\n")
    );
    expected
}

#[test]
fn fixtures_match_python_configparser() {
    let files = fixtures();
    assert!(files.len() >= 16, "fixtures missing: {files:?}");
    compare(&files);
    // The fixtures really exercise both outcomes.
    let results: Vec<Value> = files.iter().map(|p| rust_parse(p)).collect();
    let errors = results.iter().filter(|r| r.get("error").is_some()).count();
    assert!(errors >= 8 && results.len() - errors >= 8);
}

#[test]
fn fixture_values_spot_checks() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ini");
    let read = |name: &str| {
        let path = dir.join(name);
        Ini::parse(&std::fs::read_to_string(&path).unwrap(), &path).unwrap()
    };
    let ini = read("ok_01_bom_comments.config");
    let r = ini.section("resilient").unwrap();
    assert_eq!(r.get("port"), Some("443"));
    assert_eq!(r.get("api_key_id"), Some("5a1b"));
    assert_eq!(r.get("api_key_secret"), Some("pa#ss;word%%x"));
    let ini = read("ok_02_literal_values.config");
    let v = ini.section("fn_values").unwrap();
    assert_eq!(v.get("percent"), Some("100%"));
    assert_eq!(v.get("semi"), Some("value ; not a comment"));
    assert_eq!(v.get("quoted"), Some("\"quoted\""));
    assert_eq!(v.get("winpath"), Some("C:\\temp\\new"));
    assert_eq!(v.get("empty"), Some(""));
    let ini = read("ok_03_continuations.config");
    let m = ini.section("multi").unwrap();
    assert_eq!(m.get("three"), Some("line one\nline two\nline three"));
    assert_eq!(m.get("blank_inside"), Some("first\n\nafter blank"));
    assert_eq!(m.get("trailing_blanks"), Some("a\nb"));
    let path = dir.join("err_02_duplicate_key.config");
    let err = Ini::parse(&std::fs::read_to_string(&path).unwrap(), &path).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}:5: duplicate option 'host' in section [resilient] (first at line 2)",
            path.display()
        )
    );
}

/// A tiny deterministic generator (xorshift64*), so failures are reproducible.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
}

#[test]
fn generated_documents_match_python_configparser() {
    const LINES: &[&str] = &[
        "[a]",
        "[b]",
        "[DEFAULT]",
        "[ a ]",
        "[A]",
        "[c] tail",
        "[]",
        "[x]y]",
        "k = v",
        "K: v2",
        "k=",
        "j = 1 ; 2",
        "j2 : a=b",
        "= v",
        ": v",
        "m = x # y",
        "  continued",
        "\tcontinued tab",
        "      deep",
        "",
        "   ",
        "\t",
        "# comment",
        "  ; comment",
        "nodelim",
        "  [a]",
        "\u{a0}nb = sp",
        "q\u{a0}= r",
        "\u{1c}sep = 1",
        "Σ = σ",
        "%(x)s = 100%",
        "url = http://h/?a=1&b=2",
        "\u{2028}ls = x",
        "e = \u{85}",
    ];
    const ENDINGS: &[&str] = &["\n", "\n", "\n", "\r\n", "\r"];
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut files = Vec::new();
    for i in 0..3000 {
        let mut text = String::new();
        if rng.next().is_multiple_of(10) {
            text.push('\u{feff}');
        }
        // Most documents start with a header so that they get past the first line.
        if !rng.next().is_multiple_of(4) {
            text.push_str(rng.pick(&["[a]", "[DEFAULT]", "[b]"]));
            text.push('\n');
        }
        let n = rng.next() % 12;
        for _ in 0..n {
            text.push_str(rng.pick(LINES));
            text.push_str(rng.pick(ENDINGS));
        }
        if rng.next().is_multiple_of(3) {
            text.push_str(rng.pick(LINES));
        }
        let path = dir.path().join(format!("gen_{i:04}.config"));
        let mut f = std::fs::File::create(&path).unwrap();
        f.write_all(text.as_bytes()).unwrap();
        files.push(path);
    }
    let mut results = Vec::new();
    for chunk in files.chunks(500) {
        results.extend(compare(chunk));
    }
    // The generator must cover both outcomes and multi-line values, or the test proves little.
    let ok = results
        .iter()
        .filter(|r| r.get("sections").is_some())
        .count();
    let multiline = results
        .iter()
        .filter(|r| r.to_string().contains("\\n"))
        .count();
    eprintln!(
        "generated: {} documents, {ok} parsed, {multiline} with multi-line values",
        results.len()
    );
    assert!(
        ok > 600 && results.len() - ok > 600 && multiline > 100,
        "{ok} {multiline}"
    );
}
