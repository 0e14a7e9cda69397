//! Label sets derived once per series per query, not once per step.
//!
//! Why: in a range query, `rate(x[5m])` drops `__name__` from every series
//! at every step, and `sum by (instance) (...)` builds every element's
//! grouping labels at every step: new maps with new strings, 610,000 of
//! them for a 10,000-series hour at a 60 s step. The input label sets are
//! the same `Arc`s at every step (the selector cache hands out shared
//! [`Metric`]s), so the derived set is computed the first time and looked
//! up by the input's identity afterwards. Entries hold their input, so an
//! address is never reused while it is a key; the memo is bounded and
//! simply starts over when full.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};

use super::Metric;

/// Most derived label sets kept per query.
const ENTRIES_MAX: usize = 200_000;

/// A label set compared by identity (the `Arc`), kept alive by the key.
struct ByIdentity(Metric);

impl PartialEq for ByIdentity {
    fn eq(&self, other: &Self) -> bool {
        self.0.same_as(&other.0)
    }
}

impl Eq for ByIdentity {}

impl Hash for ByIdentity {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.identity().hash(state);
    }
}

/// Derived label sets of one query: by input set and derivation (`kind`:
/// 0 = without `__name__`, else the address of the grouping modifier in
/// the query's syntax tree, which lives as long as the query).
#[derive(Default)]
pub(crate) struct LabelMemo {
    derived: HashMap<(ByIdentity, usize), Metric>,
}

impl LabelMemo {
    /// `m` without `__name__` (itself when it has none).
    pub(crate) fn without_name(&mut self, m: Metric) -> Metric {
        if !m.contains_key(crate::labels::METRIC_NAME) {
            return m;
        }
        self.derive(m, 0, |m| {
            let mut out = m.clone();
            out.remove(crate::labels::METRIC_NAME);
            out
        })
    }

    /// `derive(m)` for the derivation identified by `kind` (non-zero),
    /// computed once per input set.
    pub(crate) fn derive(
        &mut self,
        m: Metric,
        kind: usize,
        derive: impl FnOnce(&Metric) -> Metric,
    ) -> Metric {
        let key = (ByIdentity(m), kind);
        if let Some(found) = self.derived.get(&key) {
            return found.clone();
        }
        if self.derived.len() >= ENTRIES_MAX {
            self.derived.clear();
        }
        let out = derive(&key.0.0);
        self.derived.insert(key, out.clone());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metric(pairs: &[(&str, &str)]) -> Metric {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn derived_once_per_identity_and_equal_to_a_fresh_derivation() {
        let mut memo = LabelMemo::default();
        let a = metric(&[("__name__", "x"), ("job", "j")]);
        let first = memo.without_name(a.clone());
        assert_eq!(first, metric(&[("job", "j")]));
        let again = memo.without_name(a.clone());
        assert!(again.same_as(&first), "the second one is the memo's");
        // An equal set with another identity is derived anew, equal.
        let b = metric(&[("__name__", "x"), ("job", "j")]);
        let other = memo.without_name(b);
        assert_eq!(other, first);
        assert!(!other.same_as(&first));
        // No name: the set itself.
        let plain = metric(&[("job", "j")]);
        assert!(memo.without_name(plain.clone()).same_as(&plain));
        let mut calls = 0;
        for _ in 0..3 {
            memo.derive(a.clone(), 7, |m| {
                calls += 1;
                m.clone()
            });
        }
        assert_eq!(calls, 1);
    }
}
