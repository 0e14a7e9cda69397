//! Reading: series by matchers over a time range, raw or downsampled.
//!
//! Why a module: a query sees one store, not a head and blocks. It merges
//! every source overlapping its range per series (the head and the blocks
//! never hold the same timestamp twice, but a merge that dedups by timestamp
//! is cheap insurance), bounds the samples it returns, and for downsampled
//! reads fills each bucket from the best source that has it: a stored point
//! of the asked resolution, else finer stored points or raw samples
//! aggregated on the fly, so data not yet downsampled still answers.

use std::collections::{BTreeMap, BTreeSet};

use super::{Db, Inner};
use crate::block::SeriesPoints;
use crate::downsample::{AggrPoint, downsample_points, downsample_raw, resolution_for};
use crate::error::{Error, Result};
use crate::head::{Sample, SeriesSamples};
use crate::index::{Matcher, Postings};
use crate::labels::Labels;

/// What [`Db::query`] returns.
#[derive(Clone, Debug, PartialEq)]
pub enum QueryResult {
    /// Raw samples.
    Raw(Vec<SeriesSamples>),
    /// Downsampled points at a resolution.
    Downsampled {
        /// The resolution read.
        resolution_ms: i64,
        /// The series.
        series: Vec<SeriesPoints>,
    },
}

impl Inner {
    pub(super) fn newest_t(&self) -> i64 {
        let head = self.head.read().max_t;
        let blocks = self.blocks.read().iter().map(|b| b.meta().max_t - 1).max();
        blocks.map_or(head, |b| b.max(head))
    }

    fn check_limit(&self, n: usize) -> Result<()> {
        let limit = self.opts.limits.query_samples_max;
        if n > limit {
            return Err(Error::QueryTooLarge { limit });
        }
        Ok(())
    }

    fn select_raw(
        &self,
        matchers: &[Matcher],
        min_t: i64,
        max_t: i64,
    ) -> Result<Vec<SeriesSamples>> {
        // One consistent view: a cut swaps the block list and truncates the
        // head under both write locks, so reading the head while holding the
        // list's read lock never misses (or doubles) the samples being moved.
        let (blocks, head) = {
            let list = self.blocks.read();
            (
                list.clone(),
                self.head.read().select(matchers, min_t, max_t),
            )
        };
        let mut merged: BTreeMap<Labels, Vec<Sample>> = BTreeMap::new();
        let mut total = 0usize;
        for b in blocks
            .iter()
            .filter(|b| b.meta().resolution_ms == 0 && b.overlaps(min_t, max_t))
        {
            for (labels, samples) in b.select_raw(matchers, min_t, max_t)? {
                total += samples.len();
                self.check_limit(total)?;
                merged.entry(labels).or_default().extend(samples);
            }
        }
        for (labels, samples) in head {
            total += samples.len();
            self.check_limit(total)?;
            merged.entry(labels).or_default().extend(samples);
        }
        Ok(merged
            .into_iter()
            .map(|(l, mut s)| {
                s.sort_by_key(|x| x.0);
                s.dedup_by_key(|x| x.0);
                (l, s)
            })
            .collect())
    }

    fn select_downsampled(
        &self,
        matchers: &[Matcher],
        min_t: i64,
        max_t: i64,
        resolution_ms: i64,
    ) -> Result<Vec<SeriesPoints>> {
        // Per series: bucket → (rank of the source, point); lower rank wins.
        let mut merged: BTreeMap<Labels, BTreeMap<i64, (u8, AggrPoint)>> = BTreeMap::new();
        let mut total = 0usize;
        let mut add = |labels: Labels, points: Vec<AggrPoint>, rank: u8| -> Result<()> {
            total += points.len();
            self.check_limit(total)?;
            let e = merged.entry(labels).or_default();
            for p in points {
                let bucket = p.bucket(resolution_ms);
                match e.get(&bucket) {
                    Some((r, _)) if *r <= rank => {}
                    _ => drop(e.insert(bucket, (rank, p))),
                }
            }
            Ok(())
        };
        let blocks = self.blocks.read().clone();
        for b in blocks.iter().filter(|b| b.overlaps(min_t, max_t)) {
            let res = b.meta().resolution_ms;
            if res == 0 || res > resolution_ms {
                continue;
            }
            let rank = u8::from(res != resolution_ms);
            for (labels, points) in b.select_aggr(matchers, min_t, max_t)? {
                add(labels, downsample_points(&points, resolution_ms), rank)?;
            }
        }
        // Whole buckets of raw data, so an on-the-fly point equals a stored one.
        let lo = min_t
            .div_euclid(resolution_ms)
            .saturating_mul(resolution_ms);
        let hi = max_t
            .div_euclid(resolution_ms)
            .saturating_add(1)
            .saturating_mul(resolution_ms)
            .saturating_sub(1);
        for (labels, samples) in self.select_raw(matchers, lo, hi)? {
            let points = downsample_raw(&samples, resolution_ms)
                .into_iter()
                .filter(|p| p.t >= min_t && p.t <= max_t)
                .collect();
            add(labels, points, 2)?;
        }
        Ok(merged
            .into_iter()
            .map(|(l, m)| (l, m.into_values().map(|(_, p)| p).collect()))
            .filter(|(_, p): &SeriesPoints| !p.is_empty())
            .collect())
    }
}

impl Db {
    /// Raw samples of the series matching every matcher, with
    /// `min_t <= t <= max_t`, sorted by labels then time. Refused with
    /// [`Error::QueryTooLarge`] past `query_samples_max`.
    pub fn select(
        &self,
        matchers: &[Matcher],
        min_t: i64,
        max_t: i64,
    ) -> Result<Vec<SeriesSamples>> {
        self.inner.select_raw(matchers, min_t, max_t)
    }

    /// Downsampled points at `resolution_ms` (60 000 or 3 600 000): stored
    /// points where they exist, finer data aggregated on the fly elsewhere.
    pub fn select_downsampled(
        &self,
        matchers: &[Matcher],
        min_t: i64,
        max_t: i64,
        resolution_ms: i64,
    ) -> Result<Vec<SeriesPoints>> {
        if resolution_ms <= 0 {
            return Err(Error::InvalidArgument(
                "resolution_ms must be positive".into(),
            ));
        }
        self.inner
            .select_downsampled(matchers, min_t, max_t, resolution_ms)
    }

    /// Reads what a query with `step_ms` needs: raw samples for fine steps
    /// over recent data, downsampled points otherwise (see
    /// [`crate::downsample::resolution_for`]).
    pub fn query(
        &self,
        matchers: &[Matcher],
        min_t: i64,
        max_t: i64,
        step_ms: i64,
    ) -> Result<QueryResult> {
        let res = resolution_for(step_ms, min_t, self.inner.newest_t(), &self.inner.opts);
        if res == 0 {
            return Ok(QueryResult::Raw(self.select(matchers, min_t, max_t)?));
        }
        Ok(QueryResult::Downsampled {
            resolution_ms: res,
            series: self.inner.select_downsampled(matchers, min_t, max_t, res)?,
        })
    }

    /// The oldest time data of `resolution_ms` is held from (0: raw, in
    /// blocks or the head); `i64::MAX` if there is none. Retention deletes
    /// the oldest blocks first, so each resolution holds a suffix of time.
    pub fn held_from(&self, resolution_ms: i64) -> i64 {
        let blocks = self
            .inner
            .blocks
            .read()
            .iter()
            .filter(|b| b.meta().resolution_ms == resolution_ms)
            .map(|b| b.meta().min_t)
            .min()
            .unwrap_or(i64::MAX);
        if resolution_ms == 0 {
            blocks.min(self.inner.head.read().min_t)
        } else {
            blocks
        }
    }

    /// Label sets of the series matching `matchers` in the head and blocks.
    pub fn series(&self, matchers: &[Matcher]) -> Vec<Labels> {
        let list = self.inner.blocks.read();
        let mut all: Vec<Labels> = list
            .iter()
            .flat_map(|b| b.series_labels(matchers))
            .collect();
        all.extend(self.inner.head.read().series_labels(matchers));
        drop(list);
        all.sort();
        all.dedup();
        all
    }

    /// Label names (sorted) of the series with data in `[min_t, max_t]`
    /// (by block and head time bounds, as Prometheus's `/api/v1/labels`),
    /// restricted to series matching `matchers` if any are given.
    pub fn label_names(&self, matchers: &[Matcher], min_t: i64, max_t: i64) -> Vec<String> {
        let mut out = BTreeSet::new();
        if matchers.is_empty() {
            self.each_index(min_t, max_t, |p| out.extend(p.names().map(str::to_string)));
        } else {
            for l in self.series_between(matchers, min_t, max_t) {
                out.extend(l.iter().map(|x| x.name.clone()));
            }
        }
        out.into_iter().collect()
    }

    /// Values (sorted) of label `name` over the series with data in
    /// `[min_t, max_t]`, restricted to series matching `matchers` if given
    /// (Prometheus's `/api/v1/label/<name>/values`).
    pub fn label_values(
        &self,
        name: &str,
        matchers: &[Matcher],
        min_t: i64,
        max_t: i64,
    ) -> Vec<String> {
        let mut out = BTreeSet::new();
        if matchers.is_empty() {
            self.each_index(min_t, max_t, |p| {
                out.extend(p.values(name).map(|(v, _)| v.to_string()))
            });
        } else {
            for l in self.series_between(matchers, min_t, max_t) {
                out.extend(l.get(name).map(str::to_string));
            }
        }
        out.into_iter().collect()
    }

    /// Calls `f` with the label index of each block overlapping `[min_t,
    /// max_t]` and of the head if it does.
    fn each_index(&self, min_t: i64, max_t: i64, mut f: impl FnMut(&Postings)) {
        let list = self.inner.blocks.read();
        for b in list.iter().filter(|b| b.overlaps(min_t, max_t)) {
            f(b.postings());
        }
        let head = self.inner.head.read();
        if head.overlaps(min_t, max_t) {
            f(head.postings());
        }
    }

    /// Label sets of the series matching `matchers` in the blocks and head
    /// overlapping `[min_t, max_t]`.
    fn series_between(&self, matchers: &[Matcher], min_t: i64, max_t: i64) -> Vec<Labels> {
        let list = self.inner.blocks.read();
        let mut all: Vec<Labels> = list
            .iter()
            .filter(|b| b.overlaps(min_t, max_t))
            .flat_map(|b| b.series_labels(matchers))
            .collect();
        let head = self.inner.head.read();
        if head.overlaps(min_t, max_t) {
            all.extend(head.series_labels(matchers));
        }
        all
    }

    /// Newest sample time in the database (`i64::MIN` when empty).
    pub fn newest_t(&self) -> i64 {
        self.inner.newest_t()
    }
}
