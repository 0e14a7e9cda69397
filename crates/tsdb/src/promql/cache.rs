//! Each selector's series loaded once per query, not once per step.
//!
//! Why a module: a range query evaluates its expression at every step, and
//! each evaluation used to read storage again for every selector: decode the
//! same chunks, rebuild the same label maps, 361 times for 6 hours at a 60 s
//! step. The cache loads a selector's series once over the rest of the
//! query's window (the requested window stretched forward by the query's
//! span, which covers every later step, offsets and the lookback included)
//! and answers each step by slicing that in memory. Identical selectors in
//! one expression (`max_over_time(x[1h]) - min_over_time(x[1h])`) share an
//! entry. The cache holds at most `samples_max` samples in all; a selector
//! that does not fit is read per step, as before, so memory stays bounded.

use std::collections::HashMap;

use super::{Element, Series};

/// One selector's series over `[min_t, max_t]`.
struct Entry {
    min_t: i64,
    max_t: i64,
    series: Vec<Series>,
    samples: usize,
}

/// The loaded selectors of one query, by their matchers.
#[derive(Default)]
pub(crate) struct SelectorCache {
    entries: HashMap<String, Entry>,
    samples: usize,
}

impl SelectorCache {
    /// The series of `key` within `[min_t, max_t]` (only each one's newest
    /// sample if `last_only`), if a loaded window covers it.
    pub(crate) fn get(
        &self,
        key: &str,
        min_t: i64,
        max_t: i64,
        last_only: bool,
    ) -> Option<Vec<Series>> {
        let e = self.entries.get(key)?;
        (e.min_t <= min_t && max_t <= e.max_t).then(|| slice(&e.series, min_t, max_t, last_only))
    }

    /// Each series' newest sample in `[min_t, max_t]` for which `keep`
    /// holds, with its labels (shared, not copied): an instant selector's
    /// answer at one step, without building a series per step.
    pub(crate) fn last(
        &self,
        key: &str,
        min_t: i64,
        max_t: i64,
        keep: impl Fn(f64) -> bool,
    ) -> Option<Vec<Element>> {
        let e = self.entries.get(key)?;
        if !(e.min_t <= min_t && max_t <= e.max_t) {
            return None;
        }
        let elements = e.series.iter().filter_map(|s| {
            let hi = s.samples.partition_point(|&(t, _)| t <= max_t);
            let &(t, value) = s.samples[..hi].last()?;
            (t >= min_t && keep(value)).then(|| Element {
                metric: s.metric.clone(),
                value,
            })
        });
        Some(elements.collect())
    }

    /// Keeps `series` (loaded over `[min_t, max_t]`) if it fits in the
    /// budget, replacing the key's previous window.
    pub(crate) fn put(
        &mut self,
        key: String,
        min_t: i64,
        max_t: i64,
        series: Vec<Series>,
        samples_max: usize,
    ) -> bool {
        let samples: usize = series.iter().map(|s| s.samples.len()).sum();
        if let Some(old) = self.entries.remove(&key) {
            self.samples -= old.samples;
        }
        if self.samples.saturating_add(samples) > samples_max {
            return false;
        }
        self.samples += samples;
        self.entries.insert(
            key,
            Entry {
                min_t,
                max_t,
                series,
                samples,
            },
        );
        true
    }
}

/// The samples with `min_t <= t <= max_t` (as `Db::select` bounds them),
/// or just the newest of them if `last_only` (an instant selector needs no
/// more); series with none are left out, as storage leaves them out.
pub(crate) fn slice(series: &[Series], min_t: i64, max_t: i64, last_only: bool) -> Vec<Series> {
    series
        .iter()
        .filter_map(|s| {
            let hi = s.samples.partition_point(|&(t, _)| t <= max_t);
            let first = s.samples.partition_point(|&(t, _)| t < min_t);
            let lo = if last_only {
                first.max(hi.saturating_sub(1))
            } else {
                first
            };
            (lo < hi).then(|| Series {
                metric: s.metric.clone(),
                samples: s.samples[lo..hi].to_vec(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(ts: &[i64]) -> Series {
        Series {
            metric: Default::default(),
            samples: ts.iter().map(|&t| (t, t as f64)).collect(),
        }
    }

    #[test]
    fn slices_are_inclusive_and_drop_empty_series() {
        let all = vec![series(&[1, 2, 3, 4]), series(&[10])];
        assert_eq!(slice(&all, 2, 3, false), vec![series(&[2, 3])]);
        assert_eq!(slice(&all, 2, 3, true), vec![series(&[3])]);
        assert_eq!(slice(&all, 0, 0, true), vec![]);
        let mut cache = SelectorCache::default();
        assert!(cache.put("a".into(), 0, 10, all.clone(), 100));
        assert_eq!(cache.get("a", 0, 10, false), Some(all.clone()));
        assert_eq!(
            cache.get("a", 0, 11, false),
            None,
            "outside the loaded window"
        );
        assert!(!cache.put("b".into(), 0, 10, all, 6), "over the budget");
        assert_eq!(cache.get("b", 0, 1, false), None);
    }
}
