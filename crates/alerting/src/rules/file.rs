//! Rule files in Prometheus's format (`groups: [{name, interval, rules:
//! [{record|alert, expr, for, keep_firing_for, labels, annotations}]}]`),
//! checked as `promtool check rules` checks them.
//!
//! Why a module: the file is the contract with the user, and the same file
//! must load here and in Prometheus. YAML is read by `serde_norway` (the
//! workspace's YAML crate), strictly: an unknown field is an error, as in
//! Prometheus. Syntax and type errors carry the parser's line and column;
//! for the semantic checks (a PromQL expression that does not parse, a bad
//! name, a template that does not parse) a small scanner ([`locate_rules`])
//! finds each rule's position in the text, so every error names
//! `file:line:column`, group, rule number and rule name like promtool's.

use std::collections::BTreeMap;

use promql_parser::parser::Expr;
use serde::Deserialize;

use crate::template::Template;

/// Bytes a rule file may have.
pub const RULE_FILE_BYTES_MAX: usize = 16 << 20;
/// Rules a file may define.
pub const RULES_MAX: usize = 100_000;

/// Why a rule file was refused.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub struct RuleFileError {
    /// The file as given.
    pub file: String,
    /// Line, from 1 (0 when unknown).
    pub line: usize,
    /// Column, from 1 (0 when unknown).
    pub column: usize,
    /// What is wrong, with group, rule number and name when they apply.
    pub msg: String,
}

impl std::fmt::Display for RuleFileError {
    /// As promtool prints: `file: line:column: message`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.msg)
        } else {
            write!(
                f,
                "{}: {}:{}: {}",
                self.file, self.line, self.column, self.msg
            )
        }
    }
}

/// A loaded, checked rule file.
#[derive(Clone, Debug)]
pub struct RuleFile {
    /// The file as given.
    pub file: String,
    /// Its groups, in file order.
    pub groups: Vec<GroupSpec>,
}

/// One group: rules evaluated in order, at one interval.
#[derive(Clone, Debug)]
pub struct GroupSpec {
    /// Its name, unique in the file.
    pub name: String,
    /// The file it came from.
    pub file: String,
    /// Its `interval` (None: the global evaluation interval).
    pub interval_ms: Option<i64>,
    /// Its `limit` on alerts or series per rule (0: none).
    pub limit: usize,
    /// Its `query_offset`.
    pub query_offset_ms: i64,
    /// Labels added to every rule of the group (`labels:` on the group).
    pub labels: BTreeMap<String, String>,
    /// Its rules, in order.
    pub rules: Vec<RuleSpec>,
}

/// A recording or alerting rule.
#[derive(Clone, Debug)]
pub struct RuleSpec {
    /// `record` or `alert`.
    pub name: String,
    /// True for an alerting rule.
    pub alerting: bool,
    /// The PromQL text.
    pub query: String,
    /// The parsed expression.
    pub expr: Expr,
    /// `for` in ms.
    pub for_ms: i64,
    /// `keep_firing_for` in ms.
    pub keep_firing_for_ms: i64,
    /// Labels as written (templates for alerts).
    pub labels: BTreeMap<String, String>,
    /// Annotations as written (templates).
    pub annotations: BTreeMap<String, String>,
    /// Parsed label templates (alerting rules).
    pub label_templates: Vec<(String, Template)>,
    /// Parsed annotation templates (alerting rules).
    pub annotation_templates: Vec<(String, Template)>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    groups: Vec<RawGroup>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroup {
    #[serde(default)]
    name: String,
    #[serde(default)]
    interval: Option<String>,
    #[serde(default)]
    query_offset: Option<String>,
    #[serde(default)]
    limit: Option<u64>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    rules: Vec<RawRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    #[serde(default)]
    record: Option<String>,
    #[serde(default)]
    alert: Option<String>,
    #[serde(default)]
    expr: Option<serde_norway::Value>,
    #[serde(default, rename = "for")]
    for_: Option<String>,
    #[serde(default)]
    keep_firing_for: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

/// A duration as Prometheus writes them (`1h30m`, `5m`, `90s`), in ms.
pub fn parse_duration_ms(s: &str) -> Result<i64, String> {
    let s = s.trim();
    if s == "0" {
        return Ok(0);
    }
    promql_parser::util::parse_duration(s)
        .ok()
        .and_then(|d| i64::try_from(d.as_millis()).ok())
        .ok_or_else(|| format!("not a valid duration string: {s:?}"))
}

/// Where a rule sits in the text: its first key and its `expr` value.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RulePos {
    /// (line, column) of the rule's first key.
    pub item: (usize, usize),
    /// (line, column) of the `expr` value, if the rule has one on its own line.
    pub expr: Option<(usize, usize)>,
    /// (line, column) of the `record` or `alert` value.
    pub name: Option<(usize, usize)>,
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

fn is_blank(line: &str) -> bool {
    let t = line.trim();
    t.is_empty() || t.starts_with('#')
}

/// Positions of the rules of each `rules:` list, in file order (block
/// style YAML; flow style yields no positions and errors fall back to the
/// group's).
pub fn locate_rules(src: &str) -> Vec<Vec<RulePos>> {
    let lines: Vec<&str> = src.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let key_col = indent(line) + usize::from(line.trim_start().starts_with("- ")) * 2;
        let key = line[key_col.min(line.len())..].trim_end();
        i += 1;
        if key != "rules:" {
            continue;
        }
        let mut rules = Vec::new();
        let mut item_indent = None;
        let mut current: Option<RulePos> = None;
        while i < lines.len() {
            let l = lines[i];
            if is_blank(l) {
                i += 1;
                continue;
            }
            let ind = indent(l);
            let dash = l.trim_start().starts_with("- ");
            let item_ind = *item_indent.get_or_insert(ind);
            if ind < item_ind || (ind == item_ind && !dash) {
                break;
            }
            if ind == item_ind && dash {
                rules.extend(current.take());
                let col = ind + 3;
                current = Some(RulePos {
                    item: (i + 1, col),
                    expr: None,
                    name: None,
                });
            }
            let kc = if dash && ind == item_ind {
                ind + 2
            } else {
                ind
            };
            if kc == item_ind + 2
                && let Some(pos) = current.as_mut()
            {
                for key in ["expr:", "record:", "alert:"] {
                    if let Some(rest) = l.get(kc..).and_then(|r| r.strip_prefix(key)) {
                        let value_off = rest.len() - rest.trim_start().len();
                        let at = Some((i + 1, kc + key.len() + value_off + 1));
                        if key == "expr:" {
                            pos.expr = at;
                        } else {
                            pos.name = at;
                        }
                    }
                }
            }
            i += 1;
        }
        rules.extend(current.take());
        out.push(rules);
    }
    out
}

fn expr_text(v: &serde_norway::Value) -> Option<String> {
    match v {
        serde_norway::Value::String(s) => Some(s.clone()),
        serde_norway::Value::Number(n) => Some(n.to_string()),
        serde_norway::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Parses and checks a rule file's text; `file` names it in errors.
pub fn parse_rule_file(file: &str, src: &str) -> Result<RuleFile, Vec<RuleFileError>> {
    let at = |line: usize, column: usize, msg: String| RuleFileError {
        file: file.to_string(),
        line,
        column,
        msg,
    };
    if src.len() > RULE_FILE_BYTES_MAX {
        return Err(vec![at(
            0,
            0,
            format!("file is larger than {RULE_FILE_BYTES_MAX} bytes"),
        )]);
    }
    let raw: RawFile = if src.trim().is_empty() {
        RawFile { groups: Vec::new() }
    } else {
        serde_norway::from_str(src).map_err(|e| {
            let (line, column) = e
                .location()
                .map(|l| (l.line(), l.column()))
                .unwrap_or((0, 0));
            vec![at(line, column, format!("yaml: {e}"))]
        })?
    };
    let positions = locate_rules(src);
    let mut errors = Vec::new();
    let mut groups = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut total = 0usize;
    for (gi, g) in raw.groups.into_iter().enumerate() {
        let gpos = positions.get(gi).cloned().unwrap_or_default();
        let group_at = gpos.first().map(|p| p.item).unwrap_or((0, 0));
        if g.name.is_empty() {
            errors.push(at(
                group_at.0,
                group_at.1,
                "Groupname must not be empty".into(),
            ));
        } else if !seen.insert(g.name.clone()) {
            errors.push(at(
                group_at.0,
                group_at.1,
                format!("groupname: \"{}\" is repeated in the same file", g.name),
            ));
        }
        let dur = |s: &Option<String>, what: &str, errors: &mut Vec<RuleFileError>| -> i64 {
            match s.as_deref().map(parse_duration_ms) {
                None => 0,
                Some(Ok(ms)) => ms,
                Some(Err(e)) => {
                    errors.push(at(
                        group_at.0,
                        group_at.1,
                        format!("group {:?}: {what}: {e}", g.name),
                    ));
                    0
                }
            }
        };
        let interval_ms = g
            .interval
            .as_ref()
            .map(|_| dur(&g.interval, "interval", &mut errors));
        if interval_ms == Some(0) {
            errors.push(at(
                group_at.0,
                group_at.1,
                format!("group {:?}: interval must be positive", g.name),
            ));
        }
        let query_offset_ms = dur(&g.query_offset, "query_offset", &mut errors);
        let mut spec = GroupSpec {
            name: g.name.clone(),
            file: file.to_string(),
            interval_ms,
            limit: usize::try_from(g.limit.unwrap_or(0)).unwrap_or(usize::MAX),
            query_offset_ms,
            labels: g.labels.clone(),
            rules: Vec::new(),
        };
        for (ri, r) in g.rules.into_iter().enumerate() {
            total += 1;
            if total > RULES_MAX {
                errors.push(at(0, 0, format!("more than {RULES_MAX} rules in one file")));
                return Err(errors);
            }
            let pos = gpos.get(ri).copied().unwrap_or_default();
            match check_rule(&g.name, ri + 1, r, pos) {
                Ok(rule) => spec.rules.push(rule),
                Err(errs) => errors.extend(errs.into_iter().map(|(p, m)| at(p.0, p.1, m))),
            }
        }
        groups.push(spec);
    }
    if errors.is_empty() {
        Ok(RuleFile {
            file: file.to_string(),
            groups,
        })
    } else {
        Err(errors)
    }
}

type Located = ((usize, usize), String);

fn check_rule(group: &str, n: usize, r: RawRule, pos: RulePos) -> Result<RuleSpec, Vec<Located>> {
    let name = r
        .alert
        .clone()
        .or_else(|| r.record.clone())
        .unwrap_or_default();
    let mut errs: Vec<Located> = Vec::new();
    let item = pos.item;
    let mut fail = |p: (usize, usize), msg: String| {
        errs.push((p, format!("group \"{group}\", rule {n}, \"{name}\": {msg}")));
    };
    match (&r.record, &r.alert) {
        (Some(_), Some(_)) => fail(item, "only one of 'record' and 'alert' must be set".into()),
        (None, None) => fail(item, "one of 'record' or 'alert' must be set".into()),
        _ => {}
    }
    let query = r.expr.as_ref().and_then(expr_text).unwrap_or_default();
    let expr_pos = pos.expr.unwrap_or(item);
    let expr = if query.trim().is_empty() {
        fail(item, "field 'expr' must be set in rule".into());
        None
    } else {
        match promql_parser::parser::parse(&query) {
            Ok(e) => Some(e),
            Err(e) => {
                fail(expr_pos, format!("could not parse expression: {e}"));
                None
            }
        }
    };
    let mut dur = |s: &Option<String>, field: &str| match s.as_deref().map(parse_duration_ms) {
        None => 0,
        Some(Ok(ms)) => ms,
        Some(Err(e)) => {
            fail(item, format!("{field}: {e}"));
            0
        }
    };
    let for_ms = dur(&r.for_, "for");
    let keep_firing_for_ms = dur(&r.keep_firing_for, "keep_firing_for");
    let alerting = r.alert.is_some();
    let mut label_templates = Vec::new();
    let mut annotation_templates = Vec::new();
    if let Some(record) = &r.record {
        if !r.annotations.is_empty() {
            fail(item, "invalid field 'annotations' in recording rule".into());
        }
        if for_ms != 0 {
            fail(item, "invalid field 'for' in recording rule".into());
        }
        if keep_firing_for_ms != 0 {
            fail(
                item,
                "invalid field 'keep_firing_for' in recording rule".into(),
            );
        }
        if !tsdb::labels::valid_metric_name(record) {
            fail(
                pos.name.unwrap_or(item),
                format!("invalid recording rule name: {record}"),
            );
        }
    }
    for (k, v) in &r.labels {
        if !tsdb::labels::valid_label_name(k) || k == "__name__" {
            fail(item, format!("invalid label name: {k}"));
        }
        if alerting {
            match Template::parse(&format!("__alert_{name}"), v) {
                Ok(t) => label_templates.push((k.clone(), t)),
                Err(e) => fail(item, format!("label {k:?}: {e}")),
            }
        }
    }
    for (k, v) in &r.annotations {
        if !tsdb::labels::valid_label_name(k) {
            fail(item, format!("invalid annotation name: {k}"));
        }
        match Template::parse(&format!("__alert_{name}"), v) {
            Ok(t) => annotation_templates.push((k.clone(), t)),
            Err(e) => fail(item, format!("annotation {k:?}: {e}")),
        }
    }
    match expr {
        Some(expr) if errs.is_empty() => Ok(RuleSpec {
            name,
            alerting,
            query,
            expr,
            for_ms,
            keep_firing_for_ms,
            labels: r.labels,
            annotations: r.annotations,
            label_templates,
            annotation_templates,
        }),
        _ => Err(errs),
    }
}

/// Reads and checks a rule file from disk.
pub fn load_rule_file(path: &std::path::Path) -> Result<RuleFile, Vec<RuleFileError>> {
    let name = path.display().to_string();
    let refuse = |msg: String| {
        vec![RuleFileError {
            file: name.clone(),
            line: 0,
            column: 0,
            msg,
        }]
    };
    let meta = std::fs::metadata(path).map_err(|e| refuse(e.to_string()))?;
    if meta.len() > RULE_FILE_BYTES_MAX as u64 {
        return Err(refuse(format!(
            "file is larger than {RULE_FILE_BYTES_MAX} bytes"
        )));
    }
    let src = std::fs::read_to_string(path).map_err(|e| refuse(e.to_string()))?;
    parse_rule_file(&name, &src)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locates_rules_in_block_yaml() {
        let src = "groups:\n- name: a\n  rules:\n  - alert: X\n    expr: up == 0\n  - record: y\n    expr: |\n      sum(up)\n- name: b\n  rules:\n    - expr: 1\n      record: z\n";
        let pos = locate_rules(src);
        assert_eq!(pos.len(), 2);
        assert_eq!(
            pos[0][0],
            RulePos {
                item: (4, 5),
                expr: Some((5, 11)),
                name: Some((4, 12))
            }
        );
        assert_eq!(pos[0][1].item, (6, 5));
        assert_eq!(
            pos[1][0],
            RulePos {
                item: (11, 7),
                expr: Some((11, 13)),
                name: Some((12, 15))
            }
        );
    }

    #[test]
    fn errors_carry_line_and_column() {
        let src = "groups:\n- name: a\n  rules:\n  - alert: X\n    expr: up ==\n";
        let e = parse_rule_file("r.yml", src).unwrap_err();
        assert_eq!((e[0].line, e[0].column), (5, 11), "{e:?}");
        assert!(
            e[0].to_string()
                .starts_with("r.yml: 5:11: group \"a\", rule 1, \"X\": could not parse expression")
        );
        let e = parse_rule_file("r.yml", "groups:\n- name: a\n  rulez: []\n").unwrap_err();
        assert_eq!(e[0].line, 3, "{e:?}");
        let e = parse_rule_file(
            "r.yml",
            "groups:\n- name: a\n  rules:\n  - record: 'bad name'\n    expr: up\n",
        )
        .unwrap_err();
        assert!(e[0].msg.contains("invalid recording rule name"), "{e:?}");
    }
}
