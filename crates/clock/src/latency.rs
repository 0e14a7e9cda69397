//! Summaries of measured durations: the one percentile rule every
//! benchmark reports with (`hyperscale bench kv|mq|lsm`, the object store's
//! and the time-series database's ingest benches), so a p99 means the same
//! thing in every table of BENCHMARKS.md.

/// The `p` quantile (0.0..=1.0) of `sorted` (ascending): the element at
/// rank `floor(len * p)`, clamped to the last; `None` when empty.
///
/// With 100 samples p50 is the 51st smallest and p99 the largest but one
/// (the maximum only at `p = 1.0`).
pub fn percentile<T: Copy + PartialOrd>(sorted: &[T], p: f64) -> Option<T> {
    debug_assert!((0.0..=1.0).contains(&p), "a quantile is in 0..=1");
    debug_assert!(sorted.first() <= sorted.last(), "sorted ascending");
    let rank = (sorted.len() as f64 * p) as usize;
    sorted.get(rank.min(sorted.len().checked_sub(1)?)).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_are_floor_of_len_times_p_clamped() {
        let hundred: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&hundred, 0.5), Some(51));
        assert_eq!(percentile(&hundred, 0.99), Some(100));
        assert_eq!(percentile(&hundred, 0.0), Some(1));
        assert_eq!(percentile(&hundred, 1.0), Some(100));
        assert_eq!(percentile(&[7u64], 0.99), Some(7));
        assert_eq!(percentile::<u64>(&[], 0.5), None);
    }
}
