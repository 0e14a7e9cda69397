//! A block's `meta.json`: its time range, resolution and counts.
//!
//! Why a module: the meta file is written last, so a block directory without
//! one is an interrupted write and is removed on open; and the planners
//! (compaction, downsampling, retention) decide from metas alone.

use serde::{Deserialize, Serialize};

/// What a block holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    /// Format version (1).
    pub version: u32,
    /// The block's directory name.
    pub id: String,
    /// First millisecond of its range (inclusive).
    pub min_t: i64,
    /// End of its range (exclusive), as Prometheus's `maxTime`.
    pub max_t: i64,
    /// 0 for raw samples, else the downsampling resolution in ms.
    pub resolution_ms: i64,
    /// 1 when cut from the head, +1 per compaction.
    pub level: u32,
    /// Series in the block.
    pub series: u64,
    /// Chunks in the block.
    pub chunks: u64,
    /// Samples (raw) or points (downsampled) in the block.
    pub samples: u64,
    /// Blocks of the same resolution this one replaces (compaction): if they
    /// are still on disk at open (a crash before their deletion), they go.
    #[serde(default)]
    pub sources: Vec<String>,
    /// Its chunks are in cold storage (known from the `cold.json` marker, not
    /// stored in the meta, which is uploaded as it was written).
    #[serde(skip)]
    pub cold: bool,
}

impl Meta {
    /// A meta for planner tests: one series, chunk and sample.
    #[cfg(test)]
    pub(crate) fn for_test(id: &str, min_t: i64, max_t: i64, resolution_ms: i64) -> Self {
        Self {
            version: 1,
            id: id.into(),
            min_t,
            max_t,
            resolution_ms,
            level: 1,
            series: 1,
            chunks: 1,
            samples: 1,
            sources: Vec::new(),
            cold: false,
        }
    }

    /// The range's length.
    pub fn range_ms(&self) -> i64 {
        self.max_t - self.min_t
    }
}
