//! `Db::stats()`: the numbers an operator needs to tune the knobs.
//!
//! Why a module: write amplification, bloom effectiveness and cache hit ratio are how the
//! LSM trade-offs show up in practice; counters are plain atomics bumped on the hot path.

use std::sync::atomic::AtomicU64;

/// Counters maintained by the engine (all monotonic since open).
#[derive(Default)]
pub(crate) struct Counters {
    /// Key + value bytes written by callers.
    pub user_bytes: AtomicU64,
    /// Bytes appended to the commit log.
    pub wal_bytes: AtomicU64,
    /// SSTable bytes written by memtable flushes.
    pub flush_bytes: AtomicU64,
    /// SSTable bytes written by compactions.
    pub compaction_bytes_written: AtomicU64,
    /// SSTable bytes read by compactions.
    pub compaction_bytes_read: AtomicU64,
    /// Memtable flushes completed.
    pub flushes: AtomicU64,
    /// Compactions completed (trivial moves included).
    pub compactions: AtomicU64,
    /// Writes delayed by 1 ms because background work is behind.
    pub slowdowns: AtomicU64,
    /// Writes that had to wait for a flush or compaction.
    pub stalls: AtomicU64,
    /// Commit-log bytes dropped at recovery (torn or corrupt tail).
    pub wal_tail_dropped_bytes: AtomicU64,
    /// Commit-log fsyncs (group commits and rotations).
    pub wal_syncs: AtomicU64,
}

/// One level of the tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LevelStats {
    /// Level number (0 = flushed memtables).
    pub level: usize,
    /// Number of SSTables.
    pub tables: usize,
    /// Bytes on disk.
    pub size_bytes: u64,
}

/// A point-in-time report of the engine (see the field docs for definitions).
#[derive(Clone, Debug)]
pub struct Stats {
    /// Per-level table counts and sizes.
    pub levels: Vec<LevelStats>,
    /// Bytes in the active memtable.
    pub memtable_bytes: usize,
    /// Immutable memtables waiting for a flush.
    pub immutable_memtables: usize,
    /// Highest sequence number written.
    pub last_sequence: u64,
    /// Key + value bytes written by callers since open.
    pub user_bytes_written: u64,
    /// Commit-log bytes written since open.
    pub wal_bytes_written: u64,
    /// SSTable bytes written by flushes since open.
    pub flush_bytes_written: u64,
    /// SSTable bytes written by compactions since open.
    pub compaction_bytes_written: u64,
    /// SSTable bytes read by compactions since open.
    pub compaction_bytes_read: u64,
    /// Write amplification: (log + flush + compaction bytes written) / user bytes.
    pub write_amplification: f64,
    /// Bloom checks that answered "not here" (disk reads avoided: "useful" probes).
    pub bloom_negatives: u64,
    /// Bloom "maybe" answers for keys that were there.
    pub bloom_true_positives: u64,
    /// Bloom "maybe" answers for keys that were not there ("useless" probes).
    pub bloom_false_positives: u64,
    /// Block cache hits.
    pub block_cache_hits: u64,
    /// Block cache misses (disk reads).
    pub block_cache_misses: u64,
    /// hits / (hits + misses), 0 when there were no lookups.
    pub block_cache_hit_ratio: f64,
    /// Bytes held by the block cache.
    pub block_cache_bytes: usize,
    /// Memtable flushes since open.
    pub flushes: u64,
    /// Compactions since open.
    pub compactions: u64,
    /// Writes slowed down since open.
    pub write_slowdowns: u64,
    /// Writes stalled since open.
    pub write_stalls: u64,
    /// Commit-log bytes dropped at the last recovery (torn or corrupt tail).
    pub wal_tail_dropped_bytes: u64,
    /// Commit-log fsyncs since open. With concurrent writers under
    /// `SyncPolicy::Always` it stays below the number of writes: that is group commit.
    pub wal_syncs: u64,
    /// Highest sequence number known durable (its log record fsynced, or recovered).
    pub durable_sequence: u64,
}
