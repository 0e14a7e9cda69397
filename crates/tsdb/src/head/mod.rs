//! The head: the newest samples of every series, in memory, in front of the
//! blocks on disk.
//!
//! Why a module: this is the chapter's "memory cache" in front of disk
//! storage. Every append lands here (and in the WAL), queries of recent data
//! are answered from memory, and once the head spans 1.5 block ranges past the
//! out-of-order window the oldest range is cut to an immutable block.
//!
//! An append is checked in full before anything changes, so a request is
//! applied whole or refused whole with one clear error: each sample must be
//! at or after the oldest time still accepted (the newest sample in the head
//! minus the out-of-order window, and never inside a range already cut to a
//! block); identical duplicates are ignored, a different value for an existing
//! timestamp is refused, as Prometheus does; and new series must fit the
//! series limit.

mod series;

use std::collections::{HashMap, HashSet};

use rustc_hash::FxHashMap;

use series::MemSeries;

use crate::error::{Error, Result};
use crate::index::{Matcher, Postings, select};
use crate::labels::Labels;
use crate::options::Options;
use crate::wal::Record;

/// A sample: (timestamp in ms, value).
pub type Sample = (i64, f64);

/// A series and its samples, as appended and as returned by queries.
pub type SeriesSamples = (Labels, Vec<Sample>);

/// The in-memory head (see the module docs).
#[derive(Default)]
pub(crate) struct Head {
    series: FxHashMap<u64, MemSeries>,
    /// Label-set hash → the refs of the series with that hash (the hash is
    /// computed before the lock is taken; equal hashes compare labels).
    refs: FxHashMap<u64, Vec<u64>>,
    postings: Postings,
    next_ref: u64,
    /// Samples before this are refused (a block covers them).
    pub min_valid_t: i64,
    /// Newest timestamp in the head (`i64::MIN` while empty).
    pub max_t: i64,
    /// Oldest timestamp in the head (`i64::MAX` while empty).
    pub min_t: i64,
    /// Samples appended since open (replay included).
    pub samples_appended: u64,
    /// During replay: a WAL series ref whose labels an earlier ref already
    /// holds (a series dropped by a cut and created again before the
    /// checkpoint finished) → that earlier ref.
    replay_alias: HashMap<u64, u64>,
}

impl Head {
    pub fn new() -> Self {
        Self {
            min_valid_t: i64::MIN,
            max_t: i64::MIN,
            min_t: i64::MAX,
            next_ref: 1,
            ..Self::default()
        }
    }

    /// Series in the head.
    pub fn series_count(&self) -> usize {
        self.series.len()
    }

    /// Bytes of chunk data held.
    pub fn chunk_bytes(&self) -> usize {
        self.series.values().map(MemSeries::chunk_bytes).sum()
    }

    /// The oldest timestamps an append may carry now: `(in order, out of
    /// order)`. A sample newer than its series' newest is in order and, as in
    /// Prometheus (`appendableMinValidTime`), may lag the head's newest by
    /// half a block range (or the out-of-order window, if longer): a slow
    /// writer is not refused because another writer's series are ahead. A
    /// sample at or before its series' newest may lag by the out-of-order
    /// window only. Neither reaches into a range already cut to a block.
    pub fn oldest_accepted(&self, opts: &Options) -> (i64, i64) {
        if self.max_t == i64::MIN {
            return (self.min_valid_t, self.min_valid_t);
        }
        let ooo = opts.out_of_order_window_ms;
        let lag = (opts.block_range_ms / 2).max(ooo);
        (
            self.max_t.saturating_sub(lag).max(self.min_valid_t),
            self.max_t.saturating_sub(ooo).max(self.min_valid_t),
        )
    }

    /// Checks a whole request, then applies it; returns the WAL frames that
    /// record it. Nothing changes if any check fails. Each entry carries its
    /// labels' [`Labels::hash64`], computed before the caller took the lock.
    pub fn append(
        &mut self,
        batch: Vec<(u64, Labels, Vec<Sample>)>,
        opts: &Options,
        now_ms: i64,
    ) -> Result<Vec<u8>> {
        let (oldest_in_order, oldest_ooo) = self.oldest_accepted(opts);
        // Merge entries of the same series, keeping first-seen order.
        // (hash, labels, samples, ref if the series exists)
        let mut groups: Vec<(u64, Labels, Vec<Sample>, Option<u64>)> =
            Vec::with_capacity(batch.len());
        let mut at: FxHashMap<u64, Vec<usize>> = FxHashMap::default();
        for (hash, labels, samples) in batch {
            let same = at.entry(hash).or_default();
            match same.iter().copied().find(|&i| groups[i].1 == labels) {
                Some(i) => groups[i].2.extend(samples),
                None => {
                    same.push(groups.len());
                    groups.push((hash, labels, samples, None));
                }
            }
        }
        let mut new_series = 0usize;
        for (hash, labels, samples, found) in &mut groups {
            samples.sort_by_key(|s| s.0);
            let mut dup = None;
            samples.dedup_by(|b, a| {
                if a.0 != b.0 {
                    return false;
                }
                if a.1.to_bits() != b.1.to_bits() {
                    dup = Some(a.0);
                }
                true
            });
            if let Some(t_ms) = dup {
                return Err(Error::DuplicateSample { t_ms });
            }
            *found = self.find(*hash, labels);
            let series_max_t = found
                .and_then(|r| self.series.get(&r))
                .map_or(i64::MIN, |s| s.max_t);
            for &(t, _) in samples.iter() {
                let oldest = if t > series_max_t {
                    oldest_in_order
                } else {
                    oldest_ooo
                };
                if t < oldest {
                    return Err(Error::OutOfBounds {
                        t_ms: t,
                        min_ms: oldest,
                    });
                }
                if let Some(tol) = opts.limits.future_tolerance_ms
                    && t > now_ms.saturating_add(tol)
                {
                    return Err(Error::TooFarInFuture { t_ms: t, now_ms });
                }
            }
            match found.and_then(|r| self.series.get(&r)) {
                None => new_series += 1,
                Some(s) => {
                    let mut err = None;
                    samples.retain(|&(t, v)| match s.lookup(t) {
                        None => true,
                        Some(b) if b == v.to_bits() => false,
                        Some(_) => {
                            err.get_or_insert(Error::DuplicateSample { t_ms: t });
                            false
                        }
                    });
                    if let Some(e) = err {
                        return Err(e);
                    }
                }
            }
        }
        let limit = opts.limits.series_max;
        if self.series.len() + new_series > limit {
            return Err(Error::TooManySeries {
                active: self.series.len(),
                new: new_series,
                limit,
            });
        }
        // Apply.
        let mut frames = Vec::new();
        let mut logged = Vec::new();
        for (hash, labels, samples, found) in groups {
            if samples.is_empty() {
                continue;
            }
            let r = match found {
                Some(r) => r,
                None => {
                    let r = self.next_ref;
                    Record::Series {
                        series_ref: r,
                        labels: labels.clone(),
                    }
                    .encode(&mut frames);
                    self.create(r, labels, hash);
                    r
                }
            };
            for (t, v) in samples {
                self.insert(r, t, v, opts);
                logged.push((r, t, v));
            }
        }
        if !logged.is_empty() {
            Record::Samples(logged).encode(&mut frames);
        }
        Ok(frames)
    }

    /// The ref of the series with `labels` (whose hash is `hash`).
    fn find(&self, hash: u64, labels: &Labels) -> Option<u64> {
        self.refs
            .get(&hash)?
            .iter()
            .copied()
            .find(|r| self.series.get(r).is_some_and(|s| &s.labels == labels))
    }

    fn create(&mut self, r: u64, labels: Labels, hash: u64) {
        self.postings.add(r, &labels);
        self.refs.entry(hash).or_default().push(r);
        self.series.insert(r, MemSeries::new(labels, hash));
        self.next_ref = self.next_ref.max(r + 1);
    }

    fn insert(&mut self, r: u64, t: i64, v: f64, opts: &Options) {
        if let Some(s) = self.series.get_mut(&r) {
            s.insert(t, v, opts.chunk_samples_max);
            self.max_t = self.max_t.max(t);
            self.min_t = self.min_t.min(t);
            self.samples_appended += 1;
        }
    }

    /// Applies one record read back from the WAL: samples before
    /// `min_valid_t` are already in a block and skipped.
    pub fn replay(&mut self, record: Record, opts: &Options) {
        match record {
            Record::Series { series_ref, labels } => match self.find(labels.hash64(), &labels) {
                Some(r) if r != series_ref => {
                    self.replay_alias.insert(series_ref, r);
                    self.next_ref = self.next_ref.max(series_ref + 1);
                }
                Some(_) => {}
                None if self.series.contains_key(&series_ref) => {}
                None => {
                    let hash = labels.hash64();
                    self.create(series_ref, labels, hash);
                }
            },
            Record::Samples(samples) => {
                for (r, t, v) in samples {
                    let r = self.replay_alias.get(&r).copied().unwrap_or(r);
                    if t >= self.min_valid_t
                        && self.series.get(&r).is_some_and(|s| s.lookup(t).is_none())
                    {
                        self.insert(r, t, v, opts);
                    }
                }
            }
        }
    }

    /// Ends a replay: forgets the aliases and drops series left without
    /// samples (their samples were all in blocks already).
    pub fn finish_replay(&mut self, opts: &Options) {
        self.replay_alias.clear();
        let min_valid_t = self.min_valid_t;
        self.truncate(min_valid_t, opts);
    }

    /// Series matching `matchers` with their samples in `[min_t, max_t]`
    /// (series without samples there are left out).
    pub fn select(&self, matchers: &[Matcher], min_t: i64, max_t: i64) -> Vec<SeriesSamples> {
        select(&self.postings, matchers)
            .into_iter()
            .filter_map(|r| {
                let s = self.series.get(&r)?;
                let samples = s.samples(min_t, max_t);
                (!samples.is_empty()).then(|| (s.labels.clone(), samples))
            })
            .collect()
    }

    /// The label index (names, values, postings).
    pub fn postings(&self) -> &Postings {
        &self.postings
    }

    /// Does the head hold samples in `[min_t, max_t]` (by its time bounds)?
    pub fn overlaps(&self, min_t: i64, max_t: i64) -> bool {
        self.min_t <= max_t && min_t <= self.max_t
    }

    /// Label sets of the series matching `matchers` (no samples read).
    pub fn series_labels(&self, matchers: &[Matcher]) -> Vec<Labels> {
        select(&self.postings, matchers)
            .into_iter()
            .filter_map(|r| Some(self.series.get(&r)?.labels.clone()))
            .collect()
    }

    /// The next range to cut to a block, if one is due: the block-aligned
    /// range holding the oldest sample, once the newest sample is half a range
    /// past its end plus the out-of-order window.
    pub fn due_range(&self, opts: &Options) -> Option<(i64, i64)> {
        if self.min_t == i64::MAX {
            return None;
        }
        let range = opts.block_range_ms;
        let start = self.min_t.div_euclid(range).saturating_mul(range);
        let end = start.saturating_add(range);
        let settled = self.max_t.saturating_sub(opts.out_of_order_window_ms);
        (end.saturating_add(range / 2) <= settled).then_some((start, end))
    }

    /// The series holding samples before `end` (labels and ref), sorted by
    /// labels: what a cut of `[.., end)` writes, one series at a time.
    pub fn series_before(&self, end: i64) -> Vec<(Labels, u64)> {
        let mut out: Vec<(Labels, u64)> = self
            .series
            .iter()
            .filter(|(_, s)| s.min_t().is_some_and(|m| m < end))
            .map(|(&r, s)| (s.labels.clone(), r))
            .collect();
        out.sort_unstable();
        out
    }

    /// Series `r`'s samples in `[start, end)`.
    pub fn samples_of(&self, r: u64, start: i64, end: i64) -> Vec<Sample> {
        self.series
            .get(&r)
            .map(|s| s.samples(start, end - 1))
            .unwrap_or_default()
    }

    /// Drops every sample before `t` and the series left empty; returns the
    /// refs still alive.
    pub fn truncate(&mut self, t: i64, opts: &Options) -> HashSet<u64> {
        let mut empty = Vec::new();
        let mut min_t = i64::MAX;
        for (&r, s) in self.series.iter_mut() {
            if s.min_t().is_some_and(|m| m < t) {
                s.drop_before(t, opts.chunk_samples_max);
            }
            match s.min_t() {
                Some(m) => min_t = min_t.min(m),
                None => empty.push(r),
            }
        }
        for r in empty {
            if let Some(s) = self.series.remove(&r) {
                self.postings.remove(r, &s.labels);
                if let Some(list) = self.refs.get_mut(&s.hash) {
                    list.retain(|&x| x != r);
                    if list.is_empty() {
                        self.refs.remove(&s.hash);
                    }
                }
            }
        }
        self.min_t = min_t;
        self.series.keys().copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::Limits;

    /// A crash after a cut dropped a series but before the checkpoint: the WAL
    /// holds its old ref and a newer ref for the same labels; replay joins them.
    #[test]
    fn replay_joins_a_series_recreated_under_a_new_ref() {
        let opts = Options::default();
        let l = Labels::new([("__name__", "x")], &Limits::default()).unwrap();
        let mut h = Head::new();
        h.min_valid_t = 50;
        h.replay(
            Record::Series {
                series_ref: 1,
                labels: l.clone(),
            },
            &opts,
        );
        h.replay(Record::Samples(vec![(1, 5, 1.0)]), &opts);
        h.replay(
            Record::Series {
                series_ref: 2,
                labels: l.clone(),
            },
            &opts,
        );
        h.replay(Record::Samples(vec![(2, 100, 2.0)]), &opts);
        h.finish_replay(&opts);
        assert_eq!(
            h.select(&[Matcher::eq("__name__", "x")], 0, 1000),
            vec![(l, vec![(100, 2.0)])]
        );
        assert_eq!(h.next_ref, 3, "new series never reuse a logged ref");
    }
}
