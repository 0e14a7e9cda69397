//! Downsampling: raw samples → 1-minute points → 1-hour points.
//!
//! Why a module: the notes cut storage for old data by lowering its
//! resolution (raw for 7 days, 1 minute for 30 days, 1 hour for a year). What
//! a point keeps is in [`aggr`]; when a block is downsampled is the pure
//! [`plan`]: a block of one resolution gets a summary at the next once it is
//! final (compacted to the largest range) or about to expire, whichever comes
//! first, and only if no summary covers it yet. A query chooses its resolution
//! from its step ([`resolution_for`]).

pub mod aggr;

pub use aggr::{AggrPoint, downsample_points, downsample_raw};

use crate::block::Meta;
use crate::options::{HOUR_MS, MINUTE_MS, Options};
use crate::retention::{covered, is_expired, next_resolution};

/// The next block to downsample: (its id, the target resolution).
pub fn plan(metas: &[Meta], newest_t: i64, opts: &Options) -> Option<(String, i64)> {
    if !opts.downsampling {
        return None;
    }
    let largest = opts
        .compaction_ranges_ms
        .last()
        .copied()
        .unwrap_or(opts.block_range_ms);
    let mut due: Vec<(&Meta, i64)> = metas
        .iter()
        .filter_map(|m| Some((m, next_resolution(m.resolution_ms)?)))
        .filter(|(m, next)| !covered(metas, *next, m.min_t, m.max_t))
        .filter(|(m, _)| m.range_ms() >= largest || is_expired(m, newest_t, opts))
        .collect();
    due.sort_by_key(|(m, _)| (m.resolution_ms, m.min_t));
    due.first().map(|(m, next)| (m.id.clone(), *next))
}

/// The resolution a query with `step_ms` over `[min_t, …]` reads: the
/// coarsest whose points are at most a fifth of the step (Thanos's rule: at
/// least five points per step), and coarser still where the finer data has
/// already expired at `min_t`.
pub fn resolution_for(step_ms: i64, min_t: i64, newest_t: i64, opts: &Options) -> i64 {
    let by_step = if step_ms >= 5 * HOUR_MS {
        HOUR_MS
    } else if step_ms >= 5 * MINUTE_MS {
        MINUTE_MS
    } else {
        0
    };
    if !opts.downsampling {
        return 0;
    }
    let age = newest_t.saturating_sub(min_t);
    let by_age = if age > opts.minute_retention_ms {
        HOUR_MS
    } else if age > opts.raw_retention_ms {
        MINUTE_MS
    } else {
        0
    };
    by_step.max(by_age)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::DAY_MS;

    fn meta(id: &str, min_t: i64, max_t: i64, res: i64) -> Meta {
        Meta::for_test(id, min_t, max_t, res)
    }

    #[test]
    fn final_or_expiring_blocks_are_summarised_once() {
        let opts = Options::default();
        let big = 3 * DAY_MS;
        let metas = vec![meta("r1", 0, big, 0), meta("r2", big, big + 2 * HOUR_MS, 0)];
        assert_eq!(
            plan(&metas, big + 2 * HOUR_MS, &opts),
            Some(("r1".into(), MINUTE_MS))
        );
        let mut done = metas.clone();
        done.push(meta("m1", 0, big, MINUTE_MS));
        assert_eq!(
            plan(&done, big + 2 * HOUR_MS, &opts),
            Some(("m1".into(), HOUR_MS))
        );
        done.push(meta("h1", 0, big, HOUR_MS));
        assert_eq!(
            plan(&done, big + 2 * HOUR_MS, &opts),
            None,
            "r2 is neither final nor expiring"
        );
        assert_eq!(
            plan(&done, 100 * DAY_MS, &opts),
            Some(("r2".into(), MINUTE_MS)),
            "r2 expires"
        );
    }

    #[test]
    fn resolution_follows_step_and_age() {
        let o = Options::default();
        let now = 100 * DAY_MS;
        assert_eq!(resolution_for(15_000, now - HOUR_MS, now, &o), 0);
        assert_eq!(
            resolution_for(5 * MINUTE_MS, now - HOUR_MS, now, &o),
            MINUTE_MS
        );
        assert_eq!(resolution_for(6 * HOUR_MS, now - HOUR_MS, now, &o), HOUR_MS);
        assert_eq!(resolution_for(15_000, now - 8 * DAY_MS, now, &o), MINUTE_MS);
        assert_eq!(resolution_for(15_000, now - 31 * DAY_MS, now, &o), HOUR_MS);
    }
}
