//! PromQL over downsampled data: range functions whose window reaches back
//! past the raw retention read the 1-minute and 1-hour points there.
//!
//! Why a module: the chapter keeps raw samples 7 days, 1-minute data 30 days
//! and 1-hour data a year, and a dashboard over last quarter must still
//! answer. Each downsampled point keeps count, sum, min, max and last (see
//! [`crate::downsample::aggr`]), from which the window functions are computed
//! exactly as over raw samples, not from an average:
//!
//! | function | from points |
//! |---|---|
//! | `count_over_time` / `sum_over_time` | Σcount / Σsum |
//! | `avg_over_time` | Σsum / Σcount |
//! | `min_over_time` / `max_over_time` | min of min / max of max |
//! | `last_over_time`, `present_over_time` | the last point's last |
//! | `rate` / `increase` / `delta` | Prometheus's extrapolation over (time of last sample, last) |
//!
//! A window is read in up to three parts, oldest first: 1-hour points where
//! only they are held, 1-minute points where raw samples are gone, and raw
//! samples (as points of one sample each) from where raw data starts; the
//! parts never overlap, so nothing counts twice. Where the window holds no
//! downsampled point at all the ordinary raw path runs, so results over raw
//! data are untouched.
//!
//! The bounds (stated, and measured by `tests/it/downsampling.rs`): a bucket
//! whose last sample lies inside the window counts whole, so the aggregates
//! can include up to one bucket's samples from before the window's start
//! (error ≤ resolution / range of the window's samples; nil when the window
//! is bucket-aligned); `rate` sees the counter at bucket ends only, so a reset
//! inside a bucket loses the increase between the bucket's last sample
//! before the reset and the reset (exact without resets up to the
//! extrapolation, which then uses bucket-end spacing). Other range functions
//! (`stddev_over_time`, `quantile_over_time`, `changes`, `irate`, `deriv`,
//! ...) need the raw samples and read raw data only.

use std::collections::BTreeMap;

use promql_parser::parser::{Call, Expr};

use super::eval::Evaluator;
use super::{Element, EvalError, Metric, Value};
use crate::downsample::{AggrPoint, downsample_raw};
use crate::labels::{Labels, METRIC_NAME};
use crate::options::{HOUR_MS, MINUTE_MS};

/// The functions this module answers.
const FUNCTIONS: [&str; 10] = [
    "rate",
    "increase",
    "delta",
    "avg_over_time",
    "sum_over_time",
    "min_over_time",
    "max_over_time",
    "count_over_time",
    "last_over_time",
    "present_over_time",
];

fn db_err(e: crate::Error) -> EvalError {
    match e {
        crate::Error::QueryTooLarge { .. } => EvalError::too_many_samples(),
        e => EvalError::Execution(e.to_string()),
    }
}

/// `c` at `t` from downsampled points, or `None` when it is not one of
/// [`FUNCTIONS`] over a plain range selector, or its window has no
/// downsampled point (the caller then evaluates it over raw samples).
pub(crate) fn call(ev: &mut Evaluator<'_>, c: &Call, t: i64) -> Result<Option<Value>, EvalError> {
    let name = c.func.name;
    if !FUNCTIONS.contains(&name) || !ev.db.options().downsampling {
        return Ok(None);
    }
    let Some(Expr::MatrixSelector(ms)) = c.args.args.first().map(|a| &**a) else {
        return Ok(None);
    };
    let range = i64::try_from(ms.range.as_millis()).unwrap_or(i64::MAX);
    let end = ev.ref_time(t, &ms.vs.at, &ms.vs.offset);
    let start = end.saturating_sub(range);
    let raw_from = ev.db.held_from(0);
    if start >= raw_from {
        return Ok(None);
    }
    let minute_from = ev.db.held_from(MINUTE_MS).min(raw_from);
    let matchers = Evaluator::matchers(&ms.vs)?;
    let mut by_series: BTreeMap<Labels, Vec<AggrPoint>> = BTreeMap::new();
    let mut any_downsampled = false;
    for (res, lo, hi) in [
        (HOUR_MS, start, end.min(minute_from - 1)),
        (MINUTE_MS, start.max(minute_from), end.min(raw_from - 1)),
    ] {
        if lo > hi {
            continue;
        }
        for (labels, points) in ev
            .db
            .select_downsampled(&matchers, lo, hi, res)
            .map_err(db_err)?
        {
            any_downsampled |= !points.is_empty();
            by_series.entry(labels).or_default().extend(points);
        }
    }
    if !any_downsampled {
        return Ok(None);
    }
    if raw_from <= end {
        for (labels, samples) in ev
            .db
            .select(&matchers, start.max(raw_from), end)
            .map_err(db_err)?
        {
            // One point per sample (stale markers dropped, as a range selector does).
            by_series
                .entry(labels)
                .or_default()
                .extend(downsample_raw(&samples, 1));
        }
    }
    ev.count_loaded(by_series.values().map(Vec::len).sum())?;
    let out = by_series
        .into_iter()
        .filter_map(|(labels, points)| {
            let value = apply(name, &points, start, end)?;
            let mut metric: Metric = labels
                .iter()
                .map(|l| (l.name.clone(), l.value.clone()))
                .collect();
            if name != "last_over_time" {
                metric.remove(METRIC_NAME);
            }
            Some(Element { metric, value })
        })
        .collect();
    Ok(Some(Value::Vector(out)))
}

/// One function over one series' points (sorted by time) in `[start, end]`.
fn apply(name: &str, p: &[AggrPoint], start: i64, end: i64) -> Option<f64> {
    let last = p.last()?;
    let count: f64 = p.iter().map(|x| x.count).sum();
    let sum: f64 = p.iter().map(|x| x.sum).sum();
    Some(match name {
        "rate" | "increase" | "delta" => {
            let s: Vec<(i64, f64)> = p.iter().map(|x| (x.t, x.last)).collect();
            super::functions::extrapolated_rate(&s, start, end, name != "delta", name == "rate")?
        }
        "avg_over_time" => sum / count,
        "sum_over_time" => sum,
        "count_over_time" => count,
        "min_over_time" => p.iter().map(|x| x.min).fold(f64::NAN, f64::min),
        "max_over_time" => p.iter().map(|x| x.max).fold(f64::NAN, f64::max),
        "last_over_time" => last.last,
        "present_over_time" => 1.0,
        _ => return None,
    })
}
