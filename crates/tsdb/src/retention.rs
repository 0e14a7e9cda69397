//! Retention: which blocks are old enough to delete.
//!
//! Why a module: the notes keep raw data for 7 days, 1-minute data for 30 days
//! and 1-hour data for a year. Age is measured from the newest sample in the
//! database (as Prometheus does), not the wall clock, so a backfill or a
//! stopped server does not delete what it just wrote. With downsampling on, a
//! block is deleted only once the next resolution covers its range, so no
//! data leaves before its summary exists. A pure function; the caller deletes.

use crate::block::Meta;
use crate::options::{HOUR_MS, MINUTE_MS, Options};

/// How long data of `resolution_ms` is kept.
pub fn retention_ms(resolution_ms: i64, opts: &Options) -> i64 {
    match resolution_ms {
        0 => opts.raw_retention_ms,
        MINUTE_MS => opts.minute_retention_ms,
        _ => opts.hour_retention_ms,
    }
}

/// The resolution data of `resolution_ms` is downsampled into, if any.
pub fn next_resolution(resolution_ms: i64) -> Option<i64> {
    match resolution_ms {
        0 => Some(MINUTE_MS),
        MINUTE_MS => Some(HOUR_MS),
        _ => None,
    }
}

/// Does a block of `resolution_ms` cover `[min_t, max_t)`?
pub fn covered(metas: &[Meta], resolution_ms: i64, min_t: i64, max_t: i64) -> bool {
    metas
        .iter()
        .any(|m| m.resolution_ms == resolution_ms && m.min_t <= min_t && max_t <= m.max_t)
}

/// Is `m` past its retention, given the newest sample time `newest_t`?
pub fn is_expired(m: &Meta, newest_t: i64, opts: &Options) -> bool {
    m.max_t <= newest_t.saturating_sub(retention_ms(m.resolution_ms, opts))
}

/// The ids of the blocks to delete now.
pub fn expired(metas: &[Meta], newest_t: i64, opts: &Options) -> Vec<String> {
    metas
        .iter()
        .filter(|m| is_expired(m, newest_t, opts))
        .filter(|m| {
            !opts.downsampling
                || next_resolution(m.resolution_ms)
                    .is_none_or(|next| covered(metas, next, m.min_t, m.max_t))
        })
        .map(|m| m.id.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::DAY_MS;

    fn meta(id: &str, min_t: i64, max_t: i64, res: i64) -> Meta {
        Meta::for_test(id, min_t, max_t, res)
    }

    #[test]
    fn old_blocks_go_only_once_summarised() {
        let opts = Options::default();
        let now = 400 * DAY_MS;
        let metas = [
            meta("raw-old", 0, DAY_MS, 0),
            meta("raw-new", now - DAY_MS, now, 0),
            meta("min-old", 0, DAY_MS, MINUTE_MS),
            meta("raw-unsummarised", DAY_MS, 2 * DAY_MS, 0),
            meta("hour-old", 0, DAY_MS, HOUR_MS),
        ];
        // raw-old is covered by min-old; min-old is not covered by hour (hour-old
        // covers it, so it goes); hour-old is past a year.
        let mut got = expired(&metas, now, &opts);
        got.sort();
        assert_eq!(got, vec!["hour-old", "min-old", "raw-old"]);
        let off = Options {
            downsampling: false,
            ..opts
        };
        assert_eq!(expired(&metas, now, &off).len(), 4);
    }
}
