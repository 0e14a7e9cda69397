//! Knobs and limits.
//!
//! Why a module: every number a client can push (series, labels, bytes, samples)
//! is bounded here before anything is allocated for it, and every storage
//! trade-off (block length, out-of-order window, retention per resolution) is
//! one field with its default and its reason.

use crate::cold::ColdOptions;
use crate::error::{Error, Result};

/// One minute in milliseconds.
pub const MINUTE_MS: i64 = 60_000;
/// One hour in milliseconds.
pub const HOUR_MS: i64 = 60 * MINUTE_MS;
/// One day in milliseconds.
pub const DAY_MS: i64 = 24 * HOUR_MS;

/// What a client may send; each breach is its own [`Error`].
#[derive(Clone, Debug, PartialEq)]
pub struct Limits {
    /// Series alive in the head (Prometheus counts the same).
    pub series_max: usize,
    /// Labels on one series, `__name__` included.
    pub labels_per_series_max: usize,
    /// Bytes of one label name.
    pub label_name_bytes_max: usize,
    /// Bytes of one label value.
    pub label_value_bytes_max: usize,
    /// Samples in one append (one remote-write request, one scrape).
    pub samples_per_request_max: usize,
    /// Samples one query may return (bounds a query's memory).
    pub query_samples_max: usize,
    /// How far past the wall clock a timestamp may be; `None` accepts any
    /// (tests and backfills with synthetic time).
    pub future_tolerance_ms: Option<i64>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            series_max: 1_000_000,
            labels_per_series_max: 64,
            label_name_bytes_max: 256,
            label_value_bytes_max: 4096,
            samples_per_request_max: 100_000,
            query_samples_max: 50_000_000,
            future_tolerance_ms: Some(10 * MINUTE_MS),
        }
    }
}

/// How the database stores, keeps and reduces data.
#[derive(Clone, Debug, PartialEq)]
pub struct Options {
    /// Limits on input.
    pub limits: Limits,
    /// Length of a block cut from the head (Prometheus: 2 h). The head holds
    /// up to 1.5 of these before the oldest is cut.
    pub block_range_ms: i64,
    /// Samples older than the newest one by at most this much are still
    /// accepted out of order (0: none, as Prometheus by default). Blocks are cut
    /// only behind this window, so the head grows by it.
    pub out_of_order_window_ms: i64,
    /// Compacted block lengths, each a multiple of the one before it
    /// (Prometheus: 2 h, 6 h, 24 h ... up to 10 % of retention).
    pub compaction_ranges_ms: Vec<i64>,
    /// Keep raw samples this long (the notes: 7 days).
    pub raw_retention_ms: i64,
    /// Keep 1-minute downsampled data this long (the notes: 30 days).
    pub minute_retention_ms: i64,
    /// Keep 1-hour downsampled data this long (the notes: a year).
    pub hour_retention_ms: i64,
    /// Downsample at all (off: raw data only, deleted after `raw_retention_ms`).
    pub downsampling: bool,
    /// Samples per chunk before a new chunk starts (Prometheus: 120).
    pub chunk_samples_max: usize,
    /// Bytes of a WAL segment before the next one starts.
    pub wal_segment_bytes_max: u64,
    /// Background maintenance (cut, compaction, downsampling, retention) every
    /// this many ms; 0 turns the thread off (call [`crate::Db::maintain`]).
    pub maintenance_interval_ms: u64,
    /// Move old blocks to an S3-compatible store (`None`: keep all local).
    pub cold: Option<ColdOptions>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            block_range_ms: 2 * HOUR_MS,
            out_of_order_window_ms: 10 * MINUTE_MS,
            compaction_ranges_ms: vec![2 * HOUR_MS, 6 * HOUR_MS, 24 * HOUR_MS, 3 * DAY_MS],
            raw_retention_ms: 7 * DAY_MS,
            minute_retention_ms: 30 * DAY_MS,
            hour_retention_ms: 365 * DAY_MS,
            downsampling: true,
            chunk_samples_max: 120,
            wal_segment_bytes_max: 128 << 20,
            maintenance_interval_ms: 60_000,
            cold: None,
        }
    }
}

impl Options {
    /// Checks that the knobs make sense together.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: &str| Err(Error::InvalidArgument(m.to_string()));
        if self.block_range_ms <= 0 {
            return bad("block_range_ms must be positive");
        }
        if self.out_of_order_window_ms < 0 {
            return bad("out_of_order_window_ms must not be negative");
        }
        if self.chunk_samples_max == 0 || self.chunk_samples_max > u16::MAX as usize {
            return bad("chunk_samples_max must be in 1..=65535");
        }
        let r = &self.compaction_ranges_ms;
        if r.first() != Some(&self.block_range_ms) {
            return bad("compaction_ranges_ms must start with block_range_ms");
        }
        if r.windows(2).any(|w| w[1] <= w[0] || w[1] % w[0] != 0) {
            return bad("each compaction range must be a larger multiple of the one before");
        }
        if self.downsampling && self.block_range_ms % HOUR_MS != 0 {
            return bad("with downsampling, block_range_ms must be whole hours");
        }
        if self.cold.as_ref().is_some_and(|c| c.after_ms <= 0) {
            return bad("cold storage's after_ms must be positive");
        }
        if self.wal_segment_bytes_max < 4096 {
            return bad("wal_segment_bytes_max must be at least 4096");
        }
        Ok(())
    }
}
