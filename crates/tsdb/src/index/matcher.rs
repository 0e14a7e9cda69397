//! Label matchers: `=`, `!=`, `=~`, `!~`, with Prometheus's semantics.
//!
//! Why a module: the semantics are subtle and shared by every reader. A
//! regular expression is anchored at both ends (`^(?s:re)$`: `=~"a.*"` does
//! not match `"ba"`, and `.` matches a newline, as in Prometheus), and a
//! matcher that matches the empty string also matches a series that lacks the
//! label (`{code=""}` selects series without `code`; `{code!="500"}` selects
//! series without `code` too).

use regex::Regex;

use crate::error::{Error, Result};

/// Longest regular expression accepted (bounds compile time and memory).
const PATTERN_BYTES_MAX: usize = 64 << 10;

/// The four comparisons.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MatchType {
    /// `=`
    Equal,
    /// `!=`
    NotEqual,
    /// `=~`
    Regex,
    /// `!~`
    NotRegex,
}

/// One matcher: a label name, a comparison and a value or pattern.
#[derive(Clone, Debug)]
pub struct Matcher {
    /// The label name.
    pub name: String,
    /// The comparison.
    pub kind: MatchType,
    /// The value or the pattern as written.
    pub value: String,
    re: Option<Regex>,
}

impl Matcher {
    /// A matcher; a pattern that does not compile is [`Error::BadRegex`].
    pub fn new(kind: MatchType, name: impl Into<String>, value: impl Into<String>) -> Result<Self> {
        let (name, value) = (name.into(), value.into());
        let re = match kind {
            MatchType::Regex | MatchType::NotRegex => {
                if value.len() > PATTERN_BYTES_MAX {
                    return Err(Error::BadRegex {
                        pattern: value.chars().take(64).collect(),
                        reason: format!("longer than {PATTERN_BYTES_MAX} bytes"),
                    });
                }
                let re = Regex::new(&format!("^(?s:{value})$")).map_err(|e| Error::BadRegex {
                    pattern: value.clone(),
                    reason: e.to_string(),
                })?;
                Some(re)
            }
            _ => None,
        };
        Ok(Self {
            name,
            kind,
            value,
            re,
        })
    }

    /// `name="value"`.
    pub fn eq(name: &str, value: &str) -> Self {
        Self {
            name: name.into(),
            kind: MatchType::Equal,
            value: value.into(),
            re: None,
        }
    }

    /// Does label value `v` (`""` for an absent label) match?
    pub fn matches(&self, v: &str) -> bool {
        match (self.kind, &self.re) {
            (MatchType::Equal, _) => v == self.value,
            (MatchType::NotEqual, _) => v != self.value,
            (MatchType::Regex, Some(re)) => re.is_match(v),
            (MatchType::NotRegex, Some(re)) => !re.is_match(v),
            (_, None) => false,
        }
    }

    /// The matcher selecting exactly the values this one rejects.
    pub fn inverse(&self) -> Self {
        let kind = match self.kind {
            MatchType::Equal => MatchType::NotEqual,
            MatchType::NotEqual => MatchType::Equal,
            MatchType::Regex => MatchType::NotRegex,
            MatchType::NotRegex => MatchType::Regex,
        };
        Self {
            kind,
            ..self.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regexes_are_anchored_like_prometheus() {
        let m = Matcher::new(MatchType::Regex, "a", "b.*").unwrap();
        assert!(m.matches("bcd") && !m.matches("abc") && m.matches("b\nx"));
        let alt = Matcher::new(MatchType::Regex, "a", "x|y").unwrap();
        assert!(alt.matches("x") && alt.matches("y") && !alt.matches("xy"));
        let not = Matcher::new(MatchType::NotRegex, "a", "5..").unwrap();
        assert!(not.matches("200") && !not.matches("500") && not.matches(""));
        assert!(matches!(
            Matcher::new(MatchType::Regex, "a", "("),
            Err(Error::BadRegex { .. })
        ));
        assert!(!not.inverse().matches("200"));
    }
}
