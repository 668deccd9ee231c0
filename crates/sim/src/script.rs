//! An interpreter of the Python pre- and post-processing scripts of exported workflows.
//!
//! The simulated platform does not run Python. It interprets the small statement grammar that
//! our generator emits (see the customizations contract), one statement per line:
//!
//! ```text
//! inputs.incident_id = incident.id                                  # pre-processing
//! incident.properties.hello_last_echo = results.content.text        # post-processing
//! incident.description = results.content.text
//! incident.addNote(u"fn_hello echoed: {0}".format(results.content.text))
//! incident.addNote(u"A fixed note")
//! ```
//!
//! Blank lines and `#` comments are skipped. An expression is a dotted path over the JSON
//! objects of the context (`incident`, `note`, `artifact`, `task`, `attachment`, `rule`,
//! `workflow`, `inputs` before the function runs, `results` after it), a string literal (`u"…"`,
//! `"…"`, `'…'` with `\\`, `\"`, `\'`, `\n`, `\t`, `\r`, `\uXXXX` escapes), a string literal with
//! `.format(expr, …)` (`{0}`, `{}`, `{{`, `}}`), a number, `True`, `False` or `None`; `str(expr)`,
//! `expr.replace(old, new)` and `sep.join(list)` on strings and `a or b` (as Python: `a` unless it
//! is false). A path that
//! does not resolve is `None` (JSON null; `"None"` when formatted). Anything else is a
//! [`ScriptError`] naming the line: the interpreter never guesses and never panics.
//!
//! Running a script mutates the context (so that a later line sees an earlier assignment) and
//! returns the [`Effect`]s the workflow engine applies to the platform.

use serde_json::{Map, Value};

/// Which script is running: it decides which names exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `pre_processing_script`: `inputs` exists, `results` does not.
    Pre,
    /// `post_processing_script`: `results` exists, `inputs` does not.
    Post,
}

/// Something a script asks the platform to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// `inputs.<name> = value`.
    SetInput {
        /// Input field name.
        name: String,
        /// The value (JSON).
        value: Value,
    },
    /// `incident.<field> = value` (a built-in incident field).
    SetIncidentField {
        /// Field name.
        field: String,
        /// The value (JSON).
        value: Value,
    },
    /// `incident.properties.<field> = value` (a custom incident field).
    SetIncidentProperty {
        /// Custom field name.
        field: String,
        /// The value (JSON).
        value: Value,
    },
    /// `incident.addNote(text)`.
    AddNote {
        /// The note text.
        text: String,
    },
}

/// A script line the interpreter cannot run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("line {line}: {message}: `{text}`")]
pub struct ScriptError {
    /// 1-based line number.
    pub line: usize,
    /// The line as written (trimmed).
    pub text: String,
    /// What is wrong with it.
    pub message: String,
}

const ROOTS: &[&str] = &[
    "incident",
    "note",
    "artifact",
    "task",
    "attachment",
    "rule",
    "workflow",
    "row",
];

/// Runs `script` over `context` (a map of root names to JSON objects). Returns the effects in
/// order, or the first line that cannot be run.
pub fn run(
    script: &str,
    mode: Mode,
    context: &mut Map<String, Value>,
) -> Result<Vec<Effect>, ScriptError> {
    let mut effects = Vec::new();
    for (i, raw) in script.lines().enumerate() {
        let text = raw.trim();
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        let fail = |message: String| ScriptError {
            line: i + 1,
            text: text.to_string(),
            message,
        };
        let tokens = tokenize(text).map_err(fail)?;
        if tokens.is_empty() {
            continue;
        }
        let effect = Statement::parse(&tokens)
            .and_then(|s| s.execute(mode, context))
            .map_err(fail)?;
        effects.push(effect);
    }
    Ok(effects)
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    Str(String),
    Num(Value),
    Dot,
    Eq,
    LParen,
    RParen,
    Comma,
}

fn tokenize(line: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = line.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            ' ' | '\t' => i += 1,
            '#' => break,
            '.' => {
                out.push(Token::Dot);
                i += 1;
            }
            '=' => {
                if chars.get(i + 1) == Some(&'=') {
                    return Err("comparisons are not supported".into());
                }
                out.push(Token::Eq);
                i += 1;
            }
            '(' => {
                out.push(Token::LParen);
                i += 1;
            }
            ')' => {
                out.push(Token::RParen);
                i += 1;
            }
            ',' => {
                out.push(Token::Comma);
                i += 1;
            }
            '"' | '\'' => {
                let (s, next) = string_literal(&chars, i)?;
                out.push(Token::Str(s));
                i = next;
            }
            c if c.is_ascii_digit()
                || (c == '-' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit())) =>
            {
                let start = i;
                i += 1;
                while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                    // A '.' followed by a letter is attribute access, not a decimal point.
                    if chars[i] == '.' && !chars.get(i + 1).is_some_and(|d| d.is_ascii_digit()) {
                        break;
                    }
                    i += 1;
                }
                let text: String = chars[start..i].iter().collect();
                let value = if text.contains('.') {
                    text.parse::<f64>()
                        .ok()
                        .and_then(serde_json::Number::from_f64)
                        .map(Value::Number)
                } else {
                    text.parse::<i64>().ok().map(Value::from)
                };
                out.push(Token::Num(
                    value.ok_or_else(|| format!("invalid number {text}"))?,
                ));
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let start = i;
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
                let ident: String = chars[start..i].iter().collect();
                // Python string prefix u"…" (and U"…").
                if (ident == "u" || ident == "U") && matches!(chars.get(i), Some('"' | '\'')) {
                    let (s, next) = string_literal(&chars, i)?;
                    out.push(Token::Str(s));
                    i = next;
                } else {
                    out.push(Token::Ident(ident));
                }
            }
            other => {
                return Err(format!(
                    "unsupported syntax: unexpected character {other:?}"
                ));
            }
        }
    }
    Ok(out)
}

/// Parses a string literal starting at the quote `chars[start]`; returns it and the index after it.
fn string_literal(chars: &[char], start: usize) -> Result<(String, usize), String> {
    let quote = chars[start];
    let mut s = String::new();
    let mut i = start + 1;
    while i < chars.len() {
        let c = chars[i];
        if c == quote {
            return Ok((s, i + 1));
        }
        if c == '\\' {
            let Some(&e) = chars.get(i + 1) else {
                break;
            };
            i += 2;
            match e {
                '\\' => s.push('\\'),
                '"' => s.push('"'),
                '\'' => s.push('\''),
                'n' => s.push('\n'),
                't' => s.push('\t'),
                'r' => s.push('\r'),
                'u' => {
                    let hex: String = chars.iter().skip(i).take(4).collect();
                    let ch = (hex.len() == 4)
                        .then(|| u32::from_str_radix(&hex, 16).ok())
                        .flatten()
                        .and_then(char::from_u32)
                        .ok_or_else(|| format!("invalid escape \\u{hex}"))?;
                    s.push(ch);
                    i += 4;
                }
                // Python keeps unknown escapes as written.
                other => {
                    s.push('\\');
                    s.push(other);
                }
            }
            continue;
        }
        s.push(c);
        i += 1;
    }
    Err("unterminated string literal".into())
}

#[derive(Debug, Clone, PartialEq)]
enum Expr {
    Path(Vec<String>),
    Literal(Value),
    /// `receiver.method(args)`: `format`, `replace` and `join` of a string.
    Method(Box<Expr>, String, Vec<Expr>),
    /// `str(arg)`.
    Str(Box<Expr>),
    /// `a or b`.
    Or(Box<Expr>, Box<Expr>),
}

#[derive(Debug)]
enum Statement {
    Assign(Vec<String>, Expr),
    AddNote(Expr),
}

struct Parser<'a> {
    tokens: &'a [Token],
    pos: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self) -> Option<&Token> {
        let t = self.tokens.get(self.pos);
        self.pos += 1;
        t
    }

    fn expect(&mut self, t: &Token, what: &str) -> Result<(), String> {
        match self.next() {
            Some(x) if x == t => Ok(()),
            _ => Err(format!("expected {what}")),
        }
    }

    /// ident ('.' ident)*
    fn path(&mut self, first: String) -> Result<Vec<String>, String> {
        let mut segs = vec![first];
        while self.peek() == Some(&Token::Dot) {
            // `.format(` after a string is handled by the caller; here a dot is always a segment.
            self.pos += 1;
            match self.next() {
                Some(Token::Ident(s)) => segs.push(s.clone()),
                _ => return Err("expected a name after '.'".into()),
            }
        }
        Ok(segs)
    }

    /// or_expr := postfix ('or' postfix)*
    fn expr(&mut self) -> Result<Expr, String> {
        let mut left = self.postfix()?;
        while self.peek() == Some(&Token::Ident("or".into())) {
            self.pos += 1;
            left = Expr::Or(Box::new(left), Box::new(self.postfix()?));
        }
        Ok(left)
    }

    /// postfix := primary ('.' method '(' args)*
    fn postfix(&mut self) -> Result<Expr, String> {
        let mut e = self.primary()?;
        while self.peek() == Some(&Token::Dot) {
            self.pos += 1;
            let method = match self.next() {
                Some(Token::Ident(m)) => m.clone(),
                _ => return Err("expected a method name after '.'".into()),
            };
            self.expect(&Token::LParen, &format!("'(' after .{method}"))?;
            e = self.method(e, method)?;
        }
        Ok(e)
    }

    /// A method call on `receiver`, its '(' already read.
    fn method(&mut self, receiver: Expr, method: String) -> Result<Expr, String> {
        let args = self.args()?;
        match (method.as_str(), args.len()) {
            ("format", _) | ("replace", 2) | ("join", 1) => {
                Ok(Expr::Method(Box::new(receiver), method, args))
            }
            ("replace", _) => Err(".replace takes two arguments".into()),
            ("join", _) => Err(".join takes one argument".into()),
            _ => Err(format!("unsupported string method .{method}()")),
        }
    }

    fn primary(&mut self) -> Result<Expr, String> {
        match self.next().cloned() {
            Some(Token::Ident(id)) => match id.as_str() {
                "True" => Ok(Expr::Literal(Value::Bool(true))),
                "False" => Ok(Expr::Literal(Value::Bool(false))),
                "None" => Ok(Expr::Literal(Value::Null)),
                "str" if self.peek() == Some(&Token::LParen) => {
                    self.pos += 1;
                    let mut args = self.args()?;
                    if args.len() != 1 {
                        return Err("str takes exactly one argument".into());
                    }
                    Ok(Expr::Str(Box::new(args.remove(0))))
                }
                _ => {
                    let mut path = self.path(id)?;
                    if self.peek() == Some(&Token::LParen) {
                        // `a.b.replace(…)`: the last segment is a method of the path before it.
                        if path.len() < 2 {
                            return Err(format!("unsupported call {}(…)", path.join(".")));
                        }
                        self.pos += 1;
                        let method = path.pop().unwrap_or_default();
                        return self.method(Expr::Path(path), method);
                    }
                    Ok(Expr::Path(path))
                }
            },
            Some(Token::Num(n)) => Ok(Expr::Literal(n)),
            Some(Token::Str(s)) => Ok(Expr::Literal(Value::String(s))),
            Some(t) => Err(format!("unexpected {}", describe(&t))),
            None => Err("expected an expression".into()),
        }
    }

    /// Arguments after '(' up to and including ')'.
    fn args(&mut self) -> Result<Vec<Expr>, String> {
        let mut args = Vec::new();
        if self.peek() == Some(&Token::RParen) {
            self.pos += 1;
            return Ok(args);
        }
        loop {
            args.push(self.expr()?);
            match self.next() {
                Some(Token::Comma) => {}
                Some(Token::RParen) => return Ok(args),
                _ => return Err("expected ',' or ')'".into()),
            }
        }
    }
}

fn describe(t: &Token) -> String {
    match t {
        Token::Ident(s) => format!("name {s}"),
        Token::Str(_) => "string".into(),
        Token::Num(n) => format!("number {n}"),
        Token::Dot => "'.'".into(),
        Token::Eq => "'='".into(),
        Token::LParen => "'('".into(),
        Token::RParen => "')'".into(),
        Token::Comma => "','".into(),
    }
}

impl Statement {
    fn parse(tokens: &[Token]) -> Result<Statement, String> {
        let mut p = Parser { tokens, pos: 0 };
        let first = match p.next() {
            Some(Token::Ident(s)) => s.clone(),
            _ => return Err("unsupported statement".into()),
        };
        let target = p.path(first)?;
        let stmt = match p.next() {
            Some(Token::Eq) => Statement::Assign(target, p.expr()?),
            Some(Token::LParen) => {
                if target != ["incident", "addNote"] {
                    return Err(format!("unsupported call {}(…)", target.join(".")));
                }
                let mut args = p.args()?;
                if args.len() != 1 {
                    return Err("incident.addNote takes exactly one argument".into());
                }
                Statement::AddNote(args.remove(0))
            }
            _ => return Err("unsupported statement".into()),
        };
        if p.pos < tokens.len() {
            return Err("unexpected text after the statement".into());
        }
        Ok(stmt)
    }

    fn execute(self, mode: Mode, ctx: &mut Map<String, Value>) -> Result<Effect, String> {
        match self {
            Statement::AddNote(e) => {
                let text = match eval(&e, mode, ctx)? {
                    Value::String(s) => s,
                    other => py_str(&other),
                };
                Ok(Effect::AddNote { text })
            }
            Statement::Assign(target, e) => {
                let value = eval(&e, mode, ctx)?;
                let segs: Vec<&str> = target.iter().map(String::as_str).collect();
                match segs.as_slice() {
                    ["inputs", name] if mode == Mode::Pre => {
                        set(ctx, &["inputs", name], value.clone());
                        Ok(Effect::SetInput {
                            name: name.to_string(),
                            value,
                        })
                    }
                    ["incident", "properties", field] => {
                        set(ctx, &["incident", "properties", field], value.clone());
                        Ok(Effect::SetIncidentProperty {
                            field: field.to_string(),
                            value,
                        })
                    }
                    ["incident", field] if *field != "properties" => {
                        set(ctx, &["incident", field], value.clone());
                        Ok(Effect::SetIncidentField {
                            field: field.to_string(),
                            value,
                        })
                    }
                    _ => Err(format!(
                        "unsupported assignment to {} in a {} script",
                        target.join("."),
                        match mode {
                            Mode::Pre => "pre-processing",
                            Mode::Post => "post-processing",
                        }
                    )),
                }
            }
        }
    }
}

fn set(ctx: &mut Map<String, Value>, path: &[&str], value: Value) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut cur = ctx;
    for seg in parents {
        let entry = cur
            .entry(seg.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if !entry.is_object() {
            *entry = Value::Object(Map::new());
        }
        match entry {
            Value::Object(m) => cur = m,
            _ => return,
        }
    }
    cur.insert(last.to_string(), value);
}

fn eval(e: &Expr, mode: Mode, ctx: &Map<String, Value>) -> Result<Value, String> {
    match e {
        Expr::Literal(v) => Ok(v.clone()),
        Expr::Path(segs) => {
            let root = segs[0].as_str();
            let known = ROOTS.contains(&root)
                || (root == "inputs" && mode == Mode::Pre)
                || (root == "results" && mode == Mode::Post);
            if !known {
                return Err(format!("unknown name {root}"));
            }
            let mut cur = ctx.get(root).unwrap_or(&Value::Null);
            for seg in &segs[1..] {
                cur = cur.get(seg.as_str()).unwrap_or(&Value::Null);
            }
            Ok(cur.clone())
        }
        Expr::Method(receiver, method, args) => {
            let Value::String(s) = eval(receiver, mode, ctx)? else {
                return Err(format!(".{method}() of a value that is not a string"));
            };
            let values = args
                .iter()
                .map(|a| eval(a, mode, ctx))
                .collect::<Result<Vec<_>, _>>()?;
            match (method.as_str(), values.as_slice()) {
                ("replace", [Value::String(from), Value::String(to)]) => {
                    Ok(Value::String(if from.is_empty() {
                        s
                    } else {
                        s.replace(from.as_str(), to)
                    }))
                }
                ("replace", _) => Err(".replace takes two strings".into()),
                // As Python: a list's items (strings) or a string's characters.
                ("join", [Value::Array(items)]) => Ok(Value::String(
                    (items.iter())
                        .map(|i| match i {
                            Value::String(s) => Ok(s.as_str()),
                            _ => Err(".join of a list with an item that is not a string"),
                        })
                        .collect::<Result<Vec<_>, _>>()?
                        .join(&s),
                )),
                ("join", [Value::String(chars)]) => Ok(Value::String(
                    chars.chars().map(String::from).collect::<Vec<_>>().join(&s),
                )),
                ("join", _) => Err(".join of a value that is not a list".into()),
                _ => format_template(&s, &values).map(Value::String),
            }
        }
        Expr::Str(arg) => Ok(Value::String(py_str(&eval(arg, mode, ctx)?))),
        Expr::Or(a, b) => {
            let left = eval(a, mode, ctx)?;
            if truthy(&left) {
                Ok(left)
            } else {
                eval(b, mode, ctx)
            }
        }
    }
}

/// Python's truth value of a JSON value.
fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(m) => !m.is_empty(),
    }
}

/// Python's `str.format` for `{}`, `{N}`, `{{` and `}}`.
pub fn format_template(template: &str, args: &[Value]) -> Result<String, String> {
    let mut out = String::new();
    let mut chars = template.chars().peekable();
    let mut auto = 0usize;
    let mut used_auto = false;
    let mut used_manual = false;
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                out.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                out.push('}');
            }
            '}' => return Err("single '}' encountered in format string".into()),
            '{' => {
                let mut field = String::new();
                loop {
                    match chars.next() {
                        Some('}') => break,
                        Some(ch) => field.push(ch),
                        None => return Err("single '{' encountered in format string".into()),
                    }
                }
                let index = if field.is_empty() {
                    used_auto = true;
                    auto += 1;
                    auto - 1
                } else if field.chars().all(|d| d.is_ascii_digit()) {
                    used_manual = true;
                    field
                        .parse::<usize>()
                        .map_err(|_| format!("invalid format field {{{field}}}"))?
                } else {
                    return Err(format!("unsupported format field {{{field}}}"));
                };
                if used_auto && used_manual {
                    return Err(
                        "cannot switch from automatic field numbering to manual field specification"
                            .into(),
                    );
                }
                let v = args
                    .get(index)
                    .ok_or_else(|| format!("format field {{{field}}} has no argument"))?;
                out.push_str(&py_str(v));
            }
            other => out.push(other),
        }
    }
    Ok(out)
}

/// Python's `str()` of a JSON value.
pub fn py_str(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => py_repr(other),
    }
}

/// Python 3's `repr()` of a JSON value.
pub fn py_repr(v: &Value) -> String {
    match v {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => {
            if let Some(f) = n.as_f64().filter(|_| n.is_f64()) {
                if f.fract() == 0.0 && f.abs() < 1e16 {
                    format!("{f:.1}")
                } else {
                    format!("{f}")
                }
            } else {
                n.to_string()
            }
        }
        Value::String(s) => {
            let quote = if s.contains('\'') && !s.contains('"') {
                '"'
            } else {
                '\''
            };
            let mut out = String::new();
            out.push(quote);
            for c in s.chars() {
                match c {
                    '\\' => out.push_str("\\\\"),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    '\t' => out.push_str("\\t"),
                    c if c == quote => {
                        out.push('\\');
                        out.push(c);
                    }
                    c => out.push(c),
                }
            }
            out.push(quote);
            out
        }
        Value::Array(a) => format!("[{}]", a.iter().map(py_repr).collect::<Vec<_>>().join(", ")),
        Value::Object(m) => format!(
            "{{{}}}",
            m.iter()
                .map(|(k, v)| format!("{}: {}", py_repr(&Value::String(k.clone())), py_repr(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx() -> Map<String, Value> {
        let Value::Object(m) = json!({
            "incident": {"id": 2095, "name": "Phish \"x\"", "properties": {"a": 1}},
            "rule": {"properties": {"hello_note": "hi"}},
            "inputs": {},
            "results": {"content": {"text": "echo", "n": 3, "list": ["a", 1, null]}},
        }) else {
            unreachable!()
        };
        m
    }

    #[test]
    fn pre_processing_sets_inputs_from_paths_and_literals() {
        let mut c = ctx();
        let fx = run(
            "# header\n\ninputs.incident_id = incident.id\ninputs.hello_text = incident.name  # trailing\ninputs.note = rule.properties.hello_note\ninputs.missing = incident.nope.deeper\ninputs.n = -12\ninputs.f = 1.5\ninputs.b = True\ninputs.s = u\"a\\\"b\\\\c\\nd\"\ninputs.z = None\n",
            Mode::Pre,
            &mut c,
        )
        .unwrap();
        assert_eq!(fx.len(), 9);
        assert_eq!(
            fx[0],
            Effect::SetInput {
                name: "incident_id".into(),
                value: json!(2095)
            }
        );
        assert_eq!(
            c["inputs"],
            json!({"incident_id": 2095, "hello_text": "Phish \"x\"", "note": "hi", "missing": null,
                   "n": -12, "f": 1.5, "b": true, "s": "a\"b\\c\nd", "z": null})
        );
    }

    #[test]
    fn post_processing_sets_fields_and_adds_notes() {
        let mut c = ctx();
        let fx = run(
            "incident.properties.hello_last_echo = results.content.text\nincident.description = results.content.text\nincident.addNote(u\"fn_hello echoed: {0} ({1}) {{literal}} {2}\".format(results.content.text, results.content.n, results.nothing))\nincident.addNote(u\"A fixed note\")\nincident.addNote(u\"{} and {}\".format(incident.properties.hello_last_echo, results.content.list))",
            Mode::Post,
            &mut c,
        )
        .unwrap();
        assert_eq!(
            fx,
            vec![
                Effect::SetIncidentProperty {
                    field: "hello_last_echo".into(),
                    value: json!("echo")
                },
                Effect::SetIncidentField {
                    field: "description".into(),
                    value: json!("echo")
                },
                Effect::AddNote {
                    text: "fn_hello echoed: echo (3) {literal} None".into()
                },
                Effect::AddNote {
                    text: "A fixed note".into()
                },
                Effect::AddNote {
                    text: "echo and ['a', 1, None]".into()
                },
            ]
        );
        assert_eq!(c["incident"]["properties"]["hello_last_echo"], "echo");
    }

    #[test]
    fn escapes_and_single_quotes() {
        let mut c = ctx();
        let fx = run(
            r#"incident.addNote('it\'s \u00e9 \t x\d')"#,
            Mode::Post,
            &mut c,
        )
        .unwrap();
        assert_eq!(
            fx,
            vec![Effect::AddNote {
                text: "it's é \t x\\d".into()
            }]
        );
    }

    #[test]
    fn unsupported_lines_are_errors_naming_the_line() {
        let cases = [
            ("if True:", "unsupported syntax"),
            ("log.info(u\"x\")", "unsupported call log.info"),
            ("incident.addNote(u\"x\"", "expected ',' or ')'"),
            ("note.text = u\"x\"", "unsupported assignment to note.text"),
            ("inputs.x = foo.bar", "unknown name foo"),
            (
                "incident.addNote(u\"{name}\".format(incident.id))",
                "unsupported format field",
            ),
            ("incident.addNote(u\"}\".format())", "single '}'"),
            (
                "incident.addNote(u\"{1}\".format(incident.id))",
                "has no argument",
            ),
            (
                "incident.addNote(u\"x\".upper())",
                "unsupported string method",
            ),
            ("inputs.x = len(incident.name)", "unsupported call len"),
            ("inputs.x = u\"unterminated", "unterminated string"),
            ("inputs.x = incident.id + 1", "unexpected character '+'"),
            ("inputs.x == 1", "comparisons"),
            ("inputs.x = 1 2", "unexpected text"),
            ("incident.addNote()", "exactly one argument"),
        ];
        for (line, msg) in cases {
            let mut c = ctx();
            let script = format!("# ok\ninputs.a = 1\n{line}\n");
            let err = run(&script, Mode::Pre, &mut c).unwrap_err();
            assert_eq!(err.line, 3, "{line}");
            assert_eq!(err.text, line);
            assert!(err.message.contains(msg), "{line}: {}", err.message);
            assert!(err.to_string().contains("line 3"), "{err}");
        }
        // results only exist after the function; inputs only before.
        let mut c = ctx();
        assert!(run("inputs.x = results.a", Mode::Pre, &mut c).is_err());
        assert!(run("inputs.x = 1", Mode::Post, &mut c).is_err());
        assert!(run("incident.x = inputs.a", Mode::Post, &mut c).is_err());
    }

    /// What a `{json: …}` workflow input exports to: a JSON text whose values are the paths'
    /// `str()`, escaped for JSON, empty for a missing or false value.
    #[test]
    fn str_replace_and_or_build_json_text() {
        let mut c = ctx();
        c.insert(
            "incident".into(),
            json!({"id": 7, "name": "say \"hi\"\nback\\", "confirmed": false}),
        );
        let arg = |p: &str| {
            format!(
                r#"str({p} or u"").replace(u"\\", u"\\\\").replace(u"\"", u"\\\"").replace(u"\n", u"\\n")"#
            )
        };
        let template = r#"u"{{\"n\": \"{0}\", \"id\": \"{1}\", \"c\": \"{2}\", \"x\": \"{3}\"}}""#;
        let args = [
            "incident.name",
            "incident.id",
            "incident.confirmed",
            "incident.nothing",
        ]
        .map(arg)
        .join(", ");
        let script = "inputs.d = ".to_owned() + template + ".format(" + &args + ")\n";
        let effects = run(&script, Mode::Pre, &mut c).unwrap();
        let Effect::SetInput { value, .. } = &effects[0] else {
            panic!("{effects:?}")
        };
        let parsed: Value = serde_json::from_str(value.as_str().unwrap()).unwrap();
        assert_eq!(
            parsed,
            json!({"n": "say \"hi\"\nback\\", "id": "7", "c": "", "x": ""})
        );
        c.insert(
            "incident".into(),
            json!({"name": "say", "types": ["a", "b"]}),
        );
        let effects = run(
            "inputs.t = u\", \".join(incident.types or u\"\")\ninputs.u = u\", \".join(incident.none or u\"\")\n",
            Mode::Pre,
            &mut c,
        )
        .unwrap();
        assert_eq!(
            effects,
            [
                Effect::SetInput {
                    name: "t".into(),
                    value: json!("a, b")
                },
                Effect::SetInput {
                    name: "u".into(),
                    value: json!("")
                },
            ]
        );
        let effects = run(
            "inputs.y = incident.name.replace(u\"say\", u\"said\")\n",
            Mode::Pre,
            &mut c,
        )
        .unwrap();
        assert!(
            matches!(&effects[0], Effect::SetInput { value, .. } if value.as_str().unwrap().starts_with("said")),
            "{effects:?}"
        );
        for (line, message) in [
            ("inputs.x = str(1, 2)", "str takes exactly one argument"),
            (
                "inputs.x = incident.id.replace(u\"a\", u\"b\")",
                "not a string",
            ),
            ("inputs.x = u\"a\".replace(u\"a\")", "two arguments"),
        ] {
            let e = run(line, Mode::Pre, &mut c).unwrap_err();
            assert!(e.message.contains(message), "{line}: {e}");
        }
    }

    #[test]
    fn python_reprs() {
        assert_eq!(py_str(&json!(null)), "None");
        assert_eq!(py_str(&json!(true)), "True");
        assert_eq!(py_str(&json!(2.0)), "2.0");
        assert_eq!(
            py_str(&json!({"a": "it's", "b": [false]})),
            "{'a': \"it's\", 'b': [False]}"
        );
        assert_eq!(format_template("{{}}{}", &[json!(1)]).unwrap(), "{}1");
        assert!(format_template("{0}{}", &[json!(1)]).is_err());
        assert!(format_template("{", &[]).is_err());
    }
}
