//! Retention: which whole segments to delete, by age and by total size.
//!
//! The notes: old data may be deleted, by time or by size; segments exist so that this is
//! a file deletion, never a rewrite. The decision is a plain function of the segments'
//! sizes and largest timestamps, the config and the clock ([`segments_to_delete`]); the
//! I/O that carries it out is [`super::PartitionLog::enforce_retention`].
//!
//! Rules (Kafka's): only a prefix is ever deleted, so the log stays contiguous. By time, a
//! segment goes when its largest timestamp is older than `retention_ms`, the active one
//! included (the log rolls a fresh empty segment first). By size, the oldest segments go
//! while the log stays at or above `retention_bytes` without them; the active segment is
//! never deleted for size. `cleanup.policy=compact` deletes nothing here.

use super::{CleanupPolicy, LogConfig};

/// What retention needs to know about one segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentStat {
    /// Bytes in the segment's log file.
    pub size_bytes: u64,
    /// Largest record timestamp in it (-1 when empty or unknown).
    pub max_timestamp_ms: i64,
}

/// How many leading segments to delete (the last element of `segments` is the active one;
/// an empty active segment is never deleted).
pub fn segments_to_delete(segments: &[SegmentStat], config: &LogConfig, now_ms: i64) -> usize {
    if config.cleanup == CleanupPolicy::Compact || segments.is_empty() {
        return 0;
    }
    let last = segments.len() - 1;
    let by_time = config.retention_ms.map_or(0, |retention_ms| {
        let cutoff_ms = now_ms.saturating_sub(i64::try_from(retention_ms).unwrap_or(i64::MAX));
        segments
            .iter()
            .enumerate()
            .take_while(|(i, s)| {
                let empty_active = *i == last && s.size_bytes == 0;
                !empty_active && s.max_timestamp_ms < cutoff_ms
            })
            .count()
    });
    let by_size = config.retention_bytes.map_or(0, |retention_bytes| {
        let mut total: u64 = segments.iter().map(|s| s.size_bytes).sum();
        segments[..last]
            .iter()
            .take_while(|s| {
                if total.saturating_sub(s.size_bytes) >= retention_bytes {
                    total -= s.size_bytes;
                    true
                } else {
                    false
                }
            })
            .count()
    });
    by_time.max(by_size)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(size_bytes: u64, max_timestamp_ms: i64) -> SegmentStat {
        SegmentStat {
            size_bytes,
            max_timestamp_ms,
        }
    }

    fn config(retention_ms: Option<u64>, retention_bytes: Option<u64>) -> LogConfig {
        LogConfig {
            retention_ms,
            retention_bytes,
            ..LogConfig::default()
        }
    }

    #[test]
    fn time_deletes_an_expired_prefix_only() {
        let segs = [seg(10, 100), seg(10, 500), seg(10, 150), seg(10, 900)];
        // Cutoff 1000 - 600 = 400: the first expired, the second not, so the third stays.
        assert_eq!(segments_to_delete(&segs, &config(Some(600), None), 1000), 1);
        assert_eq!(segments_to_delete(&segs, &config(Some(50), None), 1000), 4);
        assert_eq!(segments_to_delete(&segs, &config(None, None), 1000), 0);
    }

    #[test]
    fn an_empty_active_segment_is_kept() {
        let segs = [seg(10, 100), seg(0, -1)];
        assert_eq!(segments_to_delete(&segs, &config(Some(1), None), 1000), 1);
    }

    #[test]
    fn size_deletes_oldest_while_staying_above_the_limit_never_the_active() {
        let segs = [seg(100, 0), seg(100, 0), seg(100, 0), seg(50, 0)];
        // Total 350; limit 200: dropping one leaves 250, two leaves 150 < 200.
        assert_eq!(segments_to_delete(&segs, &config(None, Some(200)), 0), 1);
        assert_eq!(segments_to_delete(&segs, &config(None, Some(150)), 0), 2);
        assert_eq!(segments_to_delete(&segs, &config(None, Some(0)), 0), 3);
        assert_eq!(segments_to_delete(&segs, &config(None, Some(1000)), 0), 0);
    }

    #[test]
    fn compaction_deletes_nothing_and_the_larger_rule_wins() {
        let segs = [seg(100, 0), seg(100, 5000), seg(100, 0)];
        let mut c = config(Some(1000), Some(150));
        assert_eq!(segments_to_delete(&segs, &c, 2000), 1);
        c.retention_bytes = Some(0);
        assert_eq!(segments_to_delete(&segs, &c, 2000), 2);
        c.cleanup = CleanupPolicy::Compact;
        assert_eq!(segments_to_delete(&segs, &c, 2000), 0);
    }
}
