//! Templates of alert labels and annotations: the subset of Go's
//! `text/template` that Prometheus rule files use.
//!
//! Why by hand: there is no Go template engine in Rust's ecosystem that
//! follows Go's semantics (Tera, Handlebars and MiniJinja are other
//! languages), and rule files only need a narrow part of it: text, actions
//! `{{ ... }}` with trim markers and comments, the variables Prometheus
//! defines (`$labels`, `$value`, `$externalLabels`, `$externalURL`, `.Labels`,
//! `.Value`), pipelines, and the formatting functions (`humanize`,
//! `humanize1024`, `humanizeDuration`, `humanizePercentage`, `printf`,
//! `toUpper`, `toLower`, `title`, `index`). Anything else (`if`, `range`,
//! `query`) is refused at load time with the template's name and line, so a
//! rule never fails later at evaluation. Numbers print as Go prints a
//! `float64` ([`go_float`]).

use std::collections::BTreeMap;

use crate::format::{go_float, humanize, humanize_duration, humanize1024};

/// A template that does not parse or cannot be rendered.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("template: {name}:{line}: {msg}")]
pub struct TemplateError {
    /// The template's name (`__alert_<alertname>`, as Prometheus names it).
    pub name: String,
    /// Line in the template text, from 1.
    pub line: usize,
    /// What is wrong.
    pub msg: String,
}

/// What a template can read.
pub struct Data<'a> {
    /// The alert's labels (`$labels`, `.Labels`).
    pub labels: &'a BTreeMap<String, String>,
    /// The server's external labels (`$externalLabels`).
    pub external_labels: &'a BTreeMap<String, String>,
    /// The server's external URL (`$externalURL`).
    pub external_url: &'a str,
    /// The sample's value (`$value`, `.Value`).
    pub value: f64,
}

/// A parsed template.
#[derive(Clone, Debug, PartialEq)]
pub struct Template {
    name: String,
    nodes: Vec<Node>,
}

#[derive(Clone, Debug, PartialEq)]
enum Node {
    Text(String),
    Action { line: usize, pipe: Pipeline },
}

type Pipeline = Vec<Cmd>;

#[derive(Clone, Debug, PartialEq)]
enum Cmd {
    Operand(Operand),
    Call(Func, Vec<Operand>),
}

#[derive(Clone, Debug, PartialEq)]
enum Operand {
    Value,
    Labels(Option<String>),
    External(Option<String>),
    ExternalUrl,
    Str(String),
    Num(f64),
    Sub(Pipeline),
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Func {
    Humanize,
    Humanize1024,
    HumanizeDuration,
    HumanizePercentage,
    Printf,
    ToUpper,
    ToLower,
    Title,
    Index,
}

impl Func {
    fn by_name(s: &str) -> Option<Func> {
        Some(match s {
            "humanize" => Func::Humanize,
            "humanize1024" => Func::Humanize1024,
            "humanizeDuration" => Func::HumanizeDuration,
            "humanizePercentage" => Func::HumanizePercentage,
            "printf" => Func::Printf,
            "toUpper" => Func::ToUpper,
            "toLower" => Func::ToLower,
            "title" => Func::Title,
            "index" => Func::Index,
            _ => return None,
        })
    }
}

/// A value during rendering.
#[derive(Clone, Debug)]
enum Val {
    Num(f64),
    Str(String),
    Map(BTreeMap<String, String>),
}

impl Val {
    fn text(&self) -> String {
        match self {
            Val::Num(v) => go_float(*v, 'g', None),
            Val::Str(s) => s.clone(),
            Val::Map(m) => {
                let inner: Vec<String> = m.iter().map(|(k, v)| format!("{k}:{v}")).collect();
                format!("map[{}]", inner.join(" "))
            }
        }
    }
}

/// Longest template text accepted.
pub const TEMPLATE_BYTES_MAX: usize = 64 * 1024;

impl Template {
    /// Parses `src`; `name` is used in error messages.
    pub fn parse(name: &str, src: &str) -> Result<Template, TemplateError> {
        let err = |line: usize, msg: String| TemplateError {
            name: name.to_string(),
            line,
            msg,
        };
        if src.len() > TEMPLATE_BYTES_MAX {
            return Err(err(1, format!("longer than {TEMPLATE_BYTES_MAX} bytes")));
        }
        let mut nodes = Vec::new();
        let mut rest = src;
        let mut line = 1;
        while let Some(open) = rest.find("{{") {
            let mut text = &rest[..open];
            let mut inner_start = open + 2;
            if rest[inner_start..].starts_with("- ") || rest[inner_start..].starts_with("-\t") {
                text = text.trim_end();
                inner_start += 1;
            }
            if !text.is_empty() {
                nodes.push(Node::Text(text.to_string()));
            }
            line += rest[..inner_start].matches('\n').count();
            let Some(close) = rest[inner_start..].find("}}") else {
                return Err(err(line, "unclosed action".into()));
            };
            let mut inner = &rest[inner_start..inner_start + close];
            let mut after = inner_start + close + 2;
            let trim_right = inner.ends_with(" -") || inner.ends_with("\t-");
            if trim_right {
                inner = &inner[..inner.len() - 1];
            }
            let trimmed = inner.trim();
            if !(trimmed.starts_with("/*") && trimmed.ends_with("*/")) {
                let pipe = parse_pipeline(trimmed).map_err(|m| err(line, m))?;
                nodes.push(Node::Action { line, pipe });
            }
            line += inner.matches('\n').count();
            if trim_right {
                let skipped = rest[after..].len() - rest[after..].trim_start().len();
                line += rest[after..after + skipped].matches('\n').count();
                after += skipped;
            }
            rest = &rest[after..];
        }
        if !rest.is_empty() {
            nodes.push(Node::Text(rest.to_string()));
        }
        Ok(Template {
            name: name.to_string(),
            nodes,
        })
    }

    /// True if the template is plain text (no action).
    pub fn is_plain(&self) -> bool {
        self.nodes.iter().all(|n| matches!(n, Node::Text(_)))
    }

    /// Renders the template over `data`.
    pub fn render(&self, data: &Data<'_>) -> Result<String, TemplateError> {
        let mut out = String::new();
        for node in &self.nodes {
            match node {
                Node::Text(t) => out.push_str(t),
                Node::Action { line, pipe } => {
                    let v = eval_pipeline(pipe, data).map_err(|msg| TemplateError {
                        name: self.name.clone(),
                        line: *line,
                        msg,
                    })?;
                    out.push_str(&v.text());
                }
            }
        }
        Ok(out)
    }
}

/// Parses and renders `src` in one step.
pub fn expand(name: &str, src: &str, data: &Data<'_>) -> Result<String, TemplateError> {
    Template::parse(name, src)?.render(data)
}

#[derive(Debug, PartialEq)]
enum Tok {
    Pipe,
    Open,
    Close,
    Var(String),
    Field(String),
    Ident(String),
    Str(String),
    Num(f64),
}

fn tokenize(s: &str) -> Result<Vec<Tok>, String> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    let word_end = |mut j: usize| {
        while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_' || b[j] == b'.') {
            j += 1;
        }
        j
    };
    while i < b.len() {
        let c = b[i];
        match c {
            b' ' | b'\t' | b'\n' | b'\r' => i += 1,
            b'|' => {
                out.push(Tok::Pipe);
                i += 1;
            }
            b'(' => {
                out.push(Tok::Open);
                i += 1;
            }
            b')' => {
                out.push(Tok::Close);
                i += 1;
            }
            b'$' | b'.' => {
                let j = word_end(i + 1);
                let word = &s[i..j];
                out.push(if c == b'$' {
                    Tok::Var(word.to_string())
                } else {
                    Tok::Field(word.to_string())
                });
                i = j;
            }
            b'"' => {
                let mut j = i + 1;
                let mut val = String::new();
                loop {
                    let Some(&ch) = b.get(j) else {
                        return Err("unterminated quoted string".into());
                    };
                    match ch {
                        b'"' => break,
                        b'\\' => {
                            let esc = b.get(j + 1).copied().ok_or("unterminated quoted string")?;
                            val.push(match esc {
                                b'n' => '\n',
                                b't' => '\t',
                                b'\\' => '\\',
                                b'"' => '"',
                                other => {
                                    return Err(format!(
                                        "unknown escape sequence: \\{}",
                                        other as char
                                    ));
                                }
                            });
                            j += 2;
                        }
                        _ => {
                            let ch = s[j..].chars().next().ok_or("bad string")?;
                            val.push(ch);
                            j += ch.len_utf8();
                        }
                    }
                }
                out.push(Tok::Str(val));
                i = j + 1;
            }
            b'`' => {
                let end = s[i + 1..]
                    .find('`')
                    .ok_or("unterminated raw quoted string")?;
                out.push(Tok::Str(s[i + 1..i + 1 + end].to_string()));
                i += end + 2;
            }
            b'0'..=b'9' | b'-' | b'+' => {
                let j = word_end(i + 1);
                let num = s[i..j]
                    .parse::<f64>()
                    .map_err(|_| format!("bad number syntax: {:?}", &s[i..j]))?;
                out.push(Tok::Num(num));
                i = j;
            }
            c if c.is_ascii_alphabetic() => {
                let j = word_end(i);
                out.push(Tok::Ident(s[i..j].to_string()));
                i = j;
            }
            _ => return Err(format!("unexpected {:?} in command", c as char)),
        }
    }
    Ok(out)
}

fn parse_pipeline(s: &str) -> Result<Pipeline, String> {
    if s.is_empty() {
        return Err("missing value for command".into());
    }
    let toks = tokenize(s)?;
    let mut pos = 0;
    let pipe = pipeline(&toks, &mut pos)?;
    if pos != toks.len() {
        return Err(format!("unexpected {:?} in operand", toks[pos]));
    }
    Ok(pipe)
}

fn pipeline(toks: &[Tok], pos: &mut usize) -> Result<Pipeline, String> {
    let mut cmds = Vec::new();
    loop {
        cmds.push(command(toks, pos)?);
        if toks.get(*pos) == Some(&Tok::Pipe) {
            *pos += 1;
            continue;
        }
        return Ok(cmds);
    }
}

fn command(toks: &[Tok], pos: &mut usize) -> Result<Cmd, String> {
    if let Some(Tok::Ident(name)) = toks.get(*pos) {
        let Some(f) = Func::by_name(name) else {
            return Err(match name.as_str() {
                "if" | "range" | "with" | "define" | "template" | "block" | "end" | "else" => {
                    format!(
                        "{name:?} is not supported by this template engine (only pipelines of variables and functions)"
                    )
                }
                _ => format!("function {name:?} not defined"),
            });
        };
        *pos += 1;
        let mut args = Vec::new();
        while let Some(t) = toks.get(*pos) {
            if matches!(t, Tok::Pipe | Tok::Close) {
                break;
            }
            args.push(operand(toks, pos)?);
        }
        return Ok(Cmd::Call(f, args));
    }
    let op = operand(toks, pos)?;
    match toks.get(*pos) {
        None | Some(Tok::Pipe) | Some(Tok::Close) => Ok(Cmd::Operand(op)),
        Some(t) => Err(format!("can't give argument to non-function {t:?}")),
    }
}

fn operand(toks: &[Tok], pos: &mut usize) -> Result<Operand, String> {
    let t = toks.get(*pos).ok_or("missing value for command")?;
    *pos += 1;
    let split = |w: &str, prefix: &str| -> Result<Option<String>, String> {
        let rest = &w[prefix.len()..];
        if rest.is_empty() {
            return Ok(None);
        }
        let key = rest
            .strip_prefix('.')
            .ok_or_else(|| format!("bad field in {w:?}"))?;
        if key.contains('.') || key.is_empty() {
            return Err(format!("bad field in {w:?}"));
        }
        Ok(Some(key.to_string()))
    };
    Ok(match t {
        Tok::Var(w) if w == "$value" => Operand::Value,
        Tok::Var(w) if w == "$externalURL" => Operand::ExternalUrl,
        Tok::Var(w) if w.starts_with("$labels") && split(w, "$labels").is_ok() => {
            Operand::Labels(split(w, "$labels")?)
        }
        Tok::Var(w) if w.starts_with("$externalLabels") => {
            Operand::External(split(w, "$externalLabels")?)
        }
        Tok::Var(w) => return Err(format!("undefined variable {w:?}")),
        Tok::Field(w) if w == ".Value" => Operand::Value,
        Tok::Field(w) if w == ".ExternalURL" => Operand::ExternalUrl,
        Tok::Field(w) if w.starts_with(".Labels") => Operand::Labels(split(w, ".Labels")?),
        Tok::Field(w) if w.starts_with(".ExternalLabels") => {
            Operand::External(split(w, ".ExternalLabels")?)
        }
        Tok::Field(w) => {
            return Err(format!(
                "can't evaluate field {}",
                w.trim_start_matches('.')
            ));
        }
        Tok::Str(s) => Operand::Str(s.clone()),
        Tok::Num(n) => Operand::Num(*n),
        Tok::Open => {
            let p = pipeline(toks, pos)?;
            if toks.get(*pos) != Some(&Tok::Close) {
                return Err("unclosed left paren".into());
            }
            *pos += 1;
            Operand::Sub(p)
        }
        other => return Err(format!("unexpected {other:?} in operand")),
    })
}

fn eval_pipeline(p: &Pipeline, d: &Data<'_>) -> Result<Val, String> {
    let mut prev: Option<Val> = None;
    for cmd in p {
        prev = Some(match cmd {
            Cmd::Operand(op) => {
                if prev.is_some() {
                    return Err("can't give argument to non-function".into());
                }
                eval_operand(op, d)?
            }
            Cmd::Call(f, args) => {
                let mut vals = args
                    .iter()
                    .map(|a| eval_operand(a, d))
                    .collect::<Result<Vec<_>, _>>()?;
                vals.extend(prev.take());
                call(*f, vals)?
            }
        });
    }
    prev.ok_or_else(|| "empty pipeline".into())
}

fn eval_operand(op: &Operand, d: &Data<'_>) -> Result<Val, String> {
    let lookup = |m: &BTreeMap<String, String>, k: &Option<String>| match k {
        None => Val::Map(m.clone()),
        // Prometheus runs templates with `missingkey=zero`: a missing label is "".
        Some(k) => Val::Str(m.get(k).cloned().unwrap_or_default()),
    };
    Ok(match op {
        Operand::Value => Val::Num(d.value),
        Operand::Labels(k) => lookup(d.labels, k),
        Operand::External(k) => lookup(d.external_labels, k),
        Operand::ExternalUrl => Val::Str(d.external_url.to_string()),
        Operand::Str(s) => Val::Str(s.clone()),
        Operand::Num(n) => Val::Num(*n),
        Operand::Sub(p) => eval_pipeline(p, d)?,
    })
}

fn number(v: &Val) -> Result<f64, String> {
    match v {
        Val::Num(n) => Ok(*n),
        Val::Str(s) => s
            .trim()
            .parse::<f64>()
            .map_err(|_| format!("error calling humanize: can't convert {s:?} to float")),
        Val::Map(_) => Err("error calling humanize: can't convert a map to float".into()),
    }
}

fn call(f: Func, args: Vec<Val>) -> Result<Val, String> {
    let one = |args: &[Val]| -> Result<Val, String> {
        match args {
            [v] => Ok(v.clone()),
            _ => Err(format!(
                "wrong number of args for {f:?}: want 1 got {}",
                args.len()
            )),
        }
    };
    Ok(match f {
        Func::Humanize => Val::Str(humanize(number(&one(&args)?)?)),
        Func::Humanize1024 => Val::Str(humanize1024(number(&one(&args)?)?)),
        Func::HumanizeDuration => Val::Str(humanize_duration(number(&one(&args)?)?)),
        Func::HumanizePercentage => Val::Str(format!(
            "{}%",
            go_float(number(&one(&args)?)? * 100.0, 'g', Some(4))
        )),
        Func::ToUpper => Val::Str(one(&args)?.text().to_uppercase()),
        Func::ToLower => Val::Str(one(&args)?.text().to_lowercase()),
        Func::Title => Val::Str(title(&one(&args)?.text())),
        Func::Index => match args.as_slice() {
            [Val::Map(m), key] => Val::Str(m.get(&key.text()).cloned().unwrap_or_default()),
            _ => return Err("error calling index: index of a map and a key".into()),
        },
        Func::Printf => {
            let Some((fmt, rest)) = args.split_first() else {
                return Err("wrong number of args for printf: want at least 1 got 0".into());
            };
            Val::Str(printf(&fmt.text(), rest))
        }
    })
}

fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut start = true;
    for c in s.chars() {
        if start && c.is_alphabetic() {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        start = !c.is_alphanumeric();
    }
    out
}

/// Go's `fmt.Sprintf` for the verbs templates use: `%s %v %d %f %g %e %q %%`
/// with an optional precision (`%.2f`).
fn printf(fmt: &str, args: &[Val]) -> String {
    let mut out = String::new();
    let mut args = args.iter();
    let mut chars = fmt.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut prec = String::new();
        if chars.peek() == Some(&'.') {
            chars.next();
            while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                prec.push(*d);
                chars.next();
            }
        }
        let prec: Option<usize> = prec.parse().ok();
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.next() else {
            out.push_str(&format!("%!{verb}(MISSING)"));
            continue;
        };
        let num = number(arg).ok();
        match (verb, num) {
            ('f' | 'F', Some(n)) => out.push_str(&format!("{:.*}", prec.unwrap_or(6), n)),
            ('g' | 'e', Some(n)) => out.push_str(&go_float(n, verb, prec)),
            ('d', Some(n)) => out.push_str(&format!("{}", n.trunc() as i64)),
            ('q', _) => out.push_str(&format!("{:?}", arg.text())),
            ('v' | 's', _) => out.push_str(&arg.text()),
            _ => out.push_str(&format!("%!{verb}({})", arg.text())),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_prometheus_variables() {
        let labels: BTreeMap<String, String> = [("instance".to_string(), "a:1".to_string())].into();
        let ext = BTreeMap::new();
        let d = Data {
            labels: &labels,
            external_labels: &ext,
            external_url: "http://x",
            value: 0.25,
        };
        let t = "{{ $labels.instance }} at {{ $value }} = {{ $value | humanizePercentage }} {{- \" !\" }} {{/* c */}}{{ printf \"%.1f\" .Value }} {{ $labels.missing }}|{{ humanize 1500 }}";
        assert_eq!(expand("t", t, &d).unwrap(), "a:1 at 0.25 = 25% ! 0.2 |1.5k");
        let e = Template::parse("__alert_X", "ok\n{{ if $value }}x{{ end }}").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(
            Template::parse("t", "{{ query \"up\" }}")
                .unwrap_err()
                .msg
                .contains("not defined")
        );
        assert!(Template::parse("t", "{{ $nope }}").is_err());
        assert!(Template::parse("t", "{{ $labels.x ").is_err());
    }
}
