//! Series identity: a sorted set of label pairs.
//!
//! Why a module: the chapter's time-series database finds data by labels
//! ("tags"), so a series *is* its label set: the metric name is just the label
//! `__name__`, and `http_requests_total{method="GET",code="200"}` is the set
//! `{__name__=http_requests_total, code=200, method=GET}` sorted by name. Two
//! appends name the same series iff their sets are equal. As in Prometheus, a
//! label with an empty value is the same as no label, so empty values are
//! dropped. [`Labels::new`] is the one door: it sorts, drops empty values,
//! checks the names and every limit, and nothing unchecked reaches storage.

use std::fmt;

use crate::error::{Error, Result};
use crate::options::Limits;

/// The label holding the metric name.
pub const METRIC_NAME: &str = "__name__";

/// One label pair.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Label {
    /// Its name.
    pub name: String,
    /// Its value (never empty in a [`Labels`]).
    pub value: String,
}

/// A validated label set, sorted by name, names unique, values non-empty.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Labels(Vec<Label>);

impl Labels {
    /// Builds and checks a label set: sorts by name, drops empty values,
    /// refuses duplicate or invalid names, a missing or invalid metric name,
    /// and anything past `limits`.
    pub fn new<N, V>(pairs: impl IntoIterator<Item = (N, V)>, limits: &Limits) -> Result<Self>
    where
        N: Into<String>,
        V: Into<String>,
    {
        let mut v: Vec<Label> = Vec::new();
        for (name, value) in pairs {
            if v.len() >= limits.labels_per_series_max.saturating_mul(2).max(16) {
                // Stop allocating long before a hostile list ends.
                return Err(Error::TooManyLabels {
                    count: v.len() + 1,
                    limit: limits.labels_per_series_max,
                });
            }
            let (name, value) = (name.into(), value.into());
            if name.len() > limits.label_name_bytes_max {
                return Err(Error::LabelNameTooLong {
                    len: name.len(),
                    limit: limits.label_name_bytes_max,
                });
            }
            if value.len() > limits.label_value_bytes_max {
                return Err(Error::LabelValueTooLong {
                    name,
                    len: value.len(),
                    limit: limits.label_value_bytes_max,
                });
            }
            if !valid_label_name(&name) {
                return Err(Error::InvalidLabelName(name));
            }
            if !value.is_empty() {
                v.push(Label { name, value });
            }
        }
        v.sort_unstable();
        if let Some(w) = v.windows(2).find(|w| w[0].name == w[1].name) {
            return Err(Error::DuplicateLabelName(w[0].name.clone()));
        }
        if v.len() > limits.labels_per_series_max {
            return Err(Error::TooManyLabels {
                count: v.len(),
                limit: limits.labels_per_series_max,
            });
        }
        let labels = Labels(v);
        match labels.get(METRIC_NAME) {
            None => Err(Error::MissingMetricName),
            Some(n) if !valid_metric_name(n) => Err(Error::InvalidMetricName(n.to_string())),
            Some(_) => Ok(labels),
        }
    }

    /// A label set from pairs already checked (read back from our own files):
    /// sorted and deduplicated but not validated against limits.
    pub(crate) fn from_stored(mut v: Vec<Label>) -> Self {
        v.sort_unstable();
        v.dedup_by(|a, b| a.name == b.name);
        Labels(v)
    }

    /// The value of label `name`, if the set has it.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .binary_search_by(|l| l.name.as_str().cmp(name))
            .ok()
            .map(|i| self.0[i].value.as_str())
    }

    /// The pairs, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = &Label> {
        self.0.iter()
    }

    /// Number of labels.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True for the empty set (only [`Default`] makes one).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// A 64-bit hash of the set (xxh3), seeded once per process so a client
    /// cannot aim label sets at one hash bucket.
    pub fn hash64(&self) -> u64 {
        static SEED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
        let seed = *SEED.get_or_init(|| fastrand::u64(..));
        let mut buf = Vec::with_capacity(self.bytes() + 2 * self.0.len());
        for l in &self.0 {
            buf.extend_from_slice(l.name.as_bytes());
            buf.push(0xff); // never in UTF-8: separates name from value
            buf.extend_from_slice(l.value.as_bytes());
            buf.push(0xff);
        }
        xxhash_rust::xxh3::xxh3_64_with_seed(&buf, seed)
    }

    /// Bytes of names and values (for memory accounting).
    pub fn bytes(&self) -> usize {
        self.0.iter().map(|l| l.name.len() + l.value.len()).sum()
    }
}

impl fmt::Display for Labels {
    /// Prometheus's notation: `name{a="1", b="2"}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{{", self.get(METRIC_NAME).unwrap_or(""))?;
        let mut first = true;
        for l in self.0.iter().filter(|l| l.name != METRIC_NAME) {
            if !first {
                write!(f, ", ")?;
            }
            first = false;
            write!(f, "{}={:?}", l.name, l.value)?;
        }
        write!(f, "}}")
    }
}

/// Prometheus's label-name rule: `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn valid_label_name(s: &str) -> bool {
    let mut b = s.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// Prometheus's metric-name rule: `[a-zA-Z_:][a-zA-Z0-9_:]*`.
pub fn valid_metric_name(s: &str) -> bool {
    let mut b = s.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphabetic() || c == b'_' || c == b':')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b':')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(pairs: &[(&str, &str)]) -> Result<Labels> {
        Labels::new(pairs.iter().copied(), &Limits::default())
    }

    #[test]
    fn sets_are_sorted_and_empty_values_dropped() {
        let a = l(&[("method", "GET"), ("__name__", "up"), ("zone", "")]).unwrap();
        let b = l(&[("__name__", "up"), ("method", "GET")]).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.to_string(), r#"up{method="GET"}"#);
        assert_eq!(a.get("method"), Some("GET"));
        assert_eq!(a.get("zone"), None);
    }

    #[test]
    fn each_rule_has_its_error() {
        let lim = Limits {
            labels_per_series_max: 3,
            label_name_bytes_max: 8,
            label_value_bytes_max: 4,
            ..Limits::default()
        };
        let new = |p: &[(&str, &str)]| Labels::new(p.iter().copied(), &lim).unwrap_err();
        assert!(matches!(new(&[("a", "1")]), Error::MissingMetricName));
        assert!(matches!(
            new(&[("__name__", "9x")]),
            Error::InvalidMetricName(_)
        ));
        assert!(matches!(
            new(&[("__name__", "u"), ("a-b", "1")]),
            Error::InvalidLabelName(_)
        ));
        assert!(matches!(
            new(&[("__name__", "u"), ("a", "1"), ("a", "2")]),
            Error::DuplicateLabelName(_)
        ));
        assert!(matches!(
            new(&[("__name__", "u"), ("a", "1"), ("b", "1"), ("c", "1")]),
            Error::TooManyLabels { count: 4, limit: 3 }
        ));
        assert!(matches!(
            new(&[("__name__", "u"), ("abcdefghi", "1")]),
            Error::LabelNameTooLong { len: 9, .. }
        ));
        assert!(matches!(
            new(&[("__name__", "u"), ("a", "12345")]),
            Error::LabelValueTooLong { len: 5, .. }
        ));
        // A hostile list stops early instead of being collected in full.
        let many = (0..1_000_000).map(|i| (format!("l{i}"), "v".to_string()));
        assert!(matches!(
            Labels::new(many, &lim),
            Err(Error::TooManyLabels { .. })
        ));
    }

    #[test]
    fn name_rules_follow_prometheus() {
        assert!(valid_label_name("_a1") && !valid_label_name("1a") && !valid_label_name(""));
        assert!(!valid_label_name("a:b") && valid_metric_name("a:b") && valid_metric_name(":x"));
    }
}
