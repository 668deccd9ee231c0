//! Workflow scripts outside the interpreter's grammar (`if`/`else`, local variables, loops: the
//! original apps' own pre- and post-processing scripts) run in a real Python 3 when one is
//! installed: `$SOAR_SIM_PYTHON`, else `python3` on the `PATH`.
//!
//! The script runs in a child process (10 s at most, killed after) over the same context as the
//! interpreter's: every root object is a dict whose keys also read as attributes, so
//! `incident.properties.x`, `results["content"]` and `results.get("content")` all work. A
//! missing key is `None` both ways, as the interpreter's unresolved paths are: the original
//! TruSTAR app's scripts test `if not results['error']:` on success results that have no
//! `error` key, which only works where a missing key reads `None` (a plain dict raises
//! `KeyError` and fails every one of those workflows after a successful call).
//!
//! What the script does to the platform comes back as the interpreter's [`Effect`]s:
//! assignments to `inputs.<name>`, `incident.<field>` and `incident.properties.<field>`, and
//! `incident.addNote(text)`. `helper.createRichText(s)` / `createPlainText(s)` give `s`;
//! `log.*` and `workflow.addProperty` do nothing; Python 2 names (`unicode`, `basestring`,
//! `long`) are the Python 3 ones. A failing script is a [`ScriptError`] naming its line.

use std::process::Stdio;
use std::time::Duration;

use serde_json::{Map, Value, json};
use tokio::io::AsyncWriteExt;

use crate::script::{Effect, Mode, ScriptError};

/// How long a script may run.
const TIMEOUT: Duration = Duration::from_secs(10);

/// The driver: reads {script, mode, context} on stdin, prints {effects} or {error, line}.
const DRIVER: &str = r#"
import json, sys, traceback
req = json.load(sys.stdin)
effects = []

class Obj(dict):
    def __init__(self, data, path):
        dict.__init__(self, data)
        object.__setattr__(self, "_path", path)
        for k, v in list(self.items()):
            if isinstance(v, dict):
                dict.__setitem__(self, k, Obj(v, path + [k]))
    def __missing__(self, k):
        return None
    def __getattr__(self, k):
        if k.startswith("__"):
            raise AttributeError(k)
        return self.get(k)
    def __setattr__(self, k, v):
        dict.__setitem__(self, k, v)
        effects.append({"set": self._path + [k], "value": v})
    def addNote(self, text):
        effects.append({"note": text if isinstance(text, str) else str(text)})
    def addProperty(self, *a, **kw):
        pass

class Helper(object):
    def createRichText(self, s):
        return s
    def createPlainText(self, s):
        return s

class Nothing(object):
    def __getattr__(self, k):
        return lambda *a, **kw: None

scope = {"helper": Helper(), "log": Nothing(), "unicode": str, "basestring": str, "long": int}
for name, value in req["context"].items():
    scope[name] = Obj(value, [name]) if isinstance(value, dict) else value
try:
    exec(compile(req["script"], "<script>", "exec"), scope)
    print(json.dumps({"effects": effects}, default=str))
except BaseException as e:
    line = 0
    for frame in traceback.extract_tb(e.__traceback__):
        if frame.filename == "<script>":
            line = frame.lineno
    if isinstance(e, SyntaxError):
        line = e.lineno or 0
    print(json.dumps({"error": "%s: %s" % (type(e).__name__, e), "line": line}))
"#;

/// Runs a workflow script: in the interpreter when its grammar covers the script (the scripts
/// our exporter writes), else in Python when there is one (see the module header).
pub async fn run_script(
    script: &str,
    mode: Mode,
    context: &mut Map<String, Value>,
) -> Result<Vec<Effect>, ScriptError> {
    let before = context.clone();
    match crate::script::run(script, mode, context) {
        Ok(effects) => Ok(effects),
        Err(e) => match interpreter() {
            Some(python) => {
                *context = before;
                run(&python, script, mode, context).await
            }
            None => Err(ScriptError {
                message: format!(
                    "{} (scripts beyond this grammar run in Python 3: install python3 or set SOAR_SIM_PYTHON)",
                    e.message
                ),
                ..e
            }),
        },
    }
}

/// The Python to run scripts with, when one is configured or on the `PATH`.
pub fn interpreter() -> Option<String> {
    if let Some(p) = std::env::var_os("SOAR_SIM_PYTHON") {
        return Some(p.to_string_lossy().into_owned());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("python3"))
        .find(|p| p.is_file())
        .map(|p| p.to_string_lossy().into_owned())
}

/// Runs `script` in `python` over `context`; the effects in order, or the line that failed.
pub async fn run(
    python: &str,
    script: &str,
    mode: Mode,
    context: &Map<String, Value>,
) -> Result<Vec<Effect>, ScriptError> {
    let fail = |line: usize, message: String| ScriptError {
        line,
        text: script
            .lines()
            .nth(line.saturating_sub(1))
            .unwrap_or_default()
            .trim()
            .to_string(),
        message,
    };
    let request = json!({"script": script, "mode": format!("{mode:?}"), "context": context});
    let mut child = tokio::process::Command::new(python)
        .args(["-I", "-c", DRIVER])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| fail(0, format!("cannot start {python}: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        let body = request.to_string();
        stdin
            .write_all(body.as_bytes())
            .await
            .map_err(|e| fail(0, format!("cannot write to {python}: {e}")))?;
    }
    let out = tokio::time::timeout(TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| fail(0, format!("the script ran longer than {TIMEOUT:?}")))?
        .map_err(|e| fail(0, format!("{python}: {e}")))?;
    let answer: Value = serde_json::from_slice(&out.stdout)
        .map_err(|_| fail(0, format!("{python} gave no answer ({})", out.status)))?;
    if let Some(error) = answer.get("error").and_then(Value::as_str) {
        let line = answer.get("line").and_then(Value::as_u64).unwrap_or(0) as usize;
        return Err(fail(line, error.to_string()));
    }
    let effects = answer.get("effects").and_then(Value::as_array);
    (effects.into_iter().flatten())
        .map(|e| effect(e, mode).map_err(|m| fail(0, m)))
        .collect()
}

/// One effect the driver reported, as the interpreter's.
fn effect(e: &Value, mode: Mode) -> Result<Effect, String> {
    if let Some(text) = e.get("note").and_then(Value::as_str) {
        return Ok(Effect::AddNote {
            text: text.to_string(),
        });
    }
    let path: Vec<&str> = (e.get("set").and_then(Value::as_array).into_iter().flatten())
        .filter_map(Value::as_str)
        .collect();
    let value = e.get("value").cloned().unwrap_or(Value::Null);
    match path.as_slice() {
        ["inputs", name] if mode == Mode::Pre => Ok(Effect::SetInput {
            name: name.to_string(),
            value,
        }),
        ["incident", "properties", field] => Ok(Effect::SetIncidentProperty {
            field: field.to_string(),
            value,
        }),
        ["incident", field] => Ok(Effect::SetIncidentField {
            field: field.to_string(),
            value,
        }),
        other => Err(format!("unsupported assignment to {}", other.join("."))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn python() -> Option<String> {
        let p = interpreter();
        if p.is_none() {
            eprintln!("no python3: the Python runner is not tested here");
        }
        p
    }

    fn context() -> Map<String, Value> {
        let mut c = Map::new();
        c.insert(
            "incident".into(),
            json!({"id": 12, "name": "Phish \"x\"", "properties": {"slack_thread_id": null},
                   "incident_type_ids": ["Phishing"]}),
        );
        c.insert(
            "rule".into(),
            json!({"properties": {"rule_slack_text": null}}),
        );
        c.insert("workflow".into(), json!({"properties": {}}));
        c
    }

    /// A pre-processing script in the original apps' style: locals, if/else, a loop, Python 2
    /// names, helper and log calls.
    #[tokio::test]
    async fn the_original_apps_scripts_run_in_python() {
        let Some(py) = python() else { return };
        let script = r#"
# As the original apps write them
additional = rule.properties.rule_slack_text or ''
types = ""
for t in incident.incident_type_ids:
    types += unicode(t) + ";"
if incident.properties.slack_thread_id:
    inputs.slack_thread_id = incident.properties.slack_thread_id
else:
    log.info("no thread yet")
inputs.slack_text = u"{0}|{1}|{2}".format(incident.name.replace('"', '\\"'), types, additional)
inputs.incident_id = incident.id
workflow.addProperty("x", {})
"#;
        let mut c = context();
        c.insert("inputs".into(), json!({}));
        let effects = run_script(script, Mode::Pre, &mut c).await.unwrap();
        assert_eq!(
            effects,
            [
                Effect::SetInput {
                    name: "slack_text".into(),
                    value: json!("Phish \\\"x\\\"|Phishing;|")
                },
                Effect::SetInput {
                    name: "incident_id".into(),
                    value: json!(12)
                },
            ]
        );
        assert!(!py.is_empty());
    }

    #[tokio::test]
    async fn post_processing_sets_fields_and_adds_notes_in_python() {
        let Some(_) = python() else { return };
        let script = r#"
if results.get("error"):
    incident.addNote(results["error"])
else:
    ts = results.content.ts
    incident.properties.slack_thread_id = ts
    incident.addNote(helper.createRichText(u"Posted (thread {}).".format(ts)))
"#;
        let mut c = context();
        c.insert("results".into(), json!({"content": {"ts": "1.2"}}));
        let effects = run_script(script, Mode::Post, &mut c).await.unwrap();
        assert_eq!(
            effects,
            [
                Effect::SetIncidentProperty {
                    field: "slack_thread_id".into(),
                    value: json!("1.2")
                },
                Effect::AddNote {
                    text: "Posted (thread 1.2).".into()
                },
            ]
        );
    }

    #[tokio::test]
    async fn a_failing_script_names_its_line() {
        let Some(_) = python() else { return };
        let mut c = context();
        let e = run_script(
            "x = 1\nif x:\n    y = incident.nope.deeper\n",
            Mode::Post,
            &mut c,
        )
        .await
        .unwrap_err();
        assert_eq!(e.line, 3, "{e}");
        assert!(e.message.contains("AttributeError"), "{e}");
        assert_eq!(e.text, "y = incident.nope.deeper");
        c.insert("note".into(), json!({"text": "n"}));
        let e = run_script("note.text = 'x'\nif True:\n    pass\n", Mode::Post, &mut c)
            .await
            .unwrap_err();
        assert!(
            e.message.contains("unsupported assignment to note.text"),
            "{e}"
        );
    }
}
