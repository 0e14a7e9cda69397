//! Label matchers (`name="value"`, `!=`, `=~`, `!~`) as Alertmanager writes
//! them in routes, inhibition rules, silences and `filter` parameters.
//!
//! Why a module: every decision of the alert manager (which route, which
//! silence, which inhibition) is a conjunction of matchers over an alert's
//! labels; regexes are anchored as Alertmanager anchors them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One matcher.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Matcher {
    /// Label name.
    pub name: String,
    /// Value or regex.
    pub value: String,
    /// `=~` / `!~`.
    #[serde(rename = "isRegex")]
    pub is_regex: bool,
    /// `=` / `=~` (true) or `!=` / `!~` (false).
    #[serde(rename = "isEqual", default = "yes")]
    pub is_equal: bool,
    #[serde(skip)]
    re: Option<regex::Regex>,
}

fn yes() -> bool {
    true
}

impl PartialEq for Matcher {
    fn eq(&self, o: &Self) -> bool {
        (&self.name, &self.value, self.is_regex, self.is_equal)
            == (&o.name, &o.value, o.is_regex, o.is_equal)
    }
}

/// Longest regex source accepted.
pub const REGEX_BYTES_MAX: usize = 4096;

impl Matcher {
    /// A checked matcher (compiles the regex).
    pub fn new(name: &str, value: &str, is_regex: bool, is_equal: bool) -> Result<Self, String> {
        if name.is_empty() {
            return Err("matcher has an empty label name".into());
        }
        let re = if is_regex {
            if value.len() > REGEX_BYTES_MAX {
                return Err(format!("regex longer than {REGEX_BYTES_MAX} bytes"));
            }
            Some(
                regex::Regex::new(&format!("^(?:{value})$"))
                    .map_err(|e| format!("invalid regex {value:?}: {e}"))?,
            )
        } else {
            None
        };
        Ok(Self {
            name: name.into(),
            value: value.into(),
            is_regex,
            is_equal,
            re,
        })
    }

    /// Compiles the regex of a deserialized matcher.
    pub fn checked(self) -> Result<Self, String> {
        Self::new(&self.name, &self.value, self.is_regex, self.is_equal)
    }

    /// Parses `name="value"`, `name=~"re"`, `name!=value` (quotes optional).
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let op_at = s
            .find(['=', '!'])
            .ok_or_else(|| format!("bad matcher {s:?}: no operator"))?;
        let name = s[..op_at].trim();
        let rest = &s[op_at..];
        let (is_equal, is_regex, len) = if rest.starts_with("=~") {
            (true, true, 2)
        } else if rest.starts_with("!~") {
            (false, true, 2)
        } else if rest.starts_with("!=") {
            (false, false, 2)
        } else if rest.starts_with('=') {
            (true, false, 1)
        } else {
            return Err(format!("bad matcher {s:?}: unknown operator"));
        };
        let mut value = rest[len..].trim().to_string();
        if value.len() >= 2 && value.starts_with('"') && value.ends_with('"') {
            value = serde_json::from_str::<String>(&value)
                .map_err(|e| format!("bad matcher {s:?}: {e}"))?;
        }
        Self::new(name, &value, is_regex, is_equal)
    }

    /// True if `labels` satisfy the matcher (a missing label is "").
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let v = labels.get(&self.name).map(String::as_str).unwrap_or("");
        let hit = match &self.re {
            Some(re) => re.is_match(v),
            None => v == self.value,
        };
        hit == self.is_equal
    }
}

impl std::fmt::Display for Matcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let op = match (self.is_equal, self.is_regex) {
            (true, false) => "=",
            (false, false) => "!=",
            (true, true) => "=~",
            (false, true) => "!~",
        };
        write!(f, "{}{op}{:?}", self.name, self.value)
    }
}

/// Parses a list like `{a="b", c=~"d"}` or `a=b` (one matcher per item).
pub fn parse_list(s: &str) -> Result<Vec<Matcher>, String> {
    let s = s.trim();
    let inner = s
        .strip_prefix('{')
        .and_then(|x| x.strip_suffix('}'))
        .unwrap_or(s);
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_quote = false;
    let mut escaped = false;
    for c in inner.chars() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == '"' {
            in_quote = !in_quote;
        } else if c == ',' && !in_quote {
            if !cur.trim().is_empty() {
                out.push(Matcher::parse(&cur)?);
            }
            cur.clear();
            continue;
        }
        cur.push(c);
    }
    if !cur.trim().is_empty() {
        out.push(Matcher::parse(&cur)?);
    }
    Ok(out)
}

/// True if every matcher holds.
pub fn all(ms: &[Matcher], labels: &BTreeMap<String, String>) -> bool {
    ms.iter().all(|m| m.matches(labels))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_matches_like_alertmanager() {
        let l: BTreeMap<String, String> = [
            ("alertname".to_string(), "Down".to_string()),
            ("sev".to_string(), "page".to_string()),
        ]
        .into();
        let ms =
            parse_list("{alertname=\"Down\", sev=~\"pa.*\", team!=\"x\", job!~\".+\"}").unwrap();
        assert_eq!(ms.len(), 4);
        assert!(all(&ms, &l));
        assert!(
            !Matcher::parse("sev=~pa").unwrap().matches(&l),
            "regexes are anchored"
        );
        assert!(Matcher::parse("nooperator").is_err());
        assert!(Matcher::parse("a=~(").is_err());
    }
}
