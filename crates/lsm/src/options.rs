//! Every knob of the engine, with the default and what it trades.
//!
//! Why a module: the book's design is a set of trade-offs (durability vs. latency, memory
//! vs. read speed, write vs. space amplification); each knob here switches one of them.

use std::time::Duration;

use crate::compaction::filter::CompactionFilter;

/// When the commit log is forced to stable storage (the durability knob).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SyncPolicy {
    /// fsync before a write is acknowledged. Concurrent writers share one fsync (group
    /// commit). An acknowledged write survives power loss.
    #[default]
    Always,
    /// fsync once a second in the background: up to ~1 s of acknowledged writes can be
    /// lost on power loss, none on a process crash (the data is in the OS page cache).
    EverySec,
    /// Never fsync the log (only SSTables and the manifest): writes survive a process
    /// crash (`kill -9`) but not power loss.
    No,
}

impl std::str::FromStr for SyncPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "always" => Ok(Self::Always),
            "everysec" => Ok(Self::EverySec),
            "no" => Ok(Self::No),
            other => Err(format!(
                "unknown fsync policy {other:?}; use always, everysec or no"
            )),
        }
    }
}

/// Block compression in SSTables.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Compression {
    /// Store blocks as they are (fastest reads; the default, as values are often small
    /// and already compact).
    #[default]
    None,
    /// LZ4 per block: cheap to decompress, typically 2x on text-like values. Blocks that
    /// do not shrink are stored uncompressed.
    Lz4,
}

/// How the store is opened and tuned. `Options::default()` suits a server.
#[derive(Clone, Debug)]
pub struct Options {
    /// Create the store when the directory holds none (otherwise opening fails).
    pub create_if_missing: bool,
    /// Commit-log durability (see [`SyncPolicy`]).
    pub sync: SyncPolicy,
    /// Memtable size that triggers rotation to an immutable memtable and a flush to an
    /// SSTable; also the commit-log segment size (one segment per memtable). Larger:
    /// fewer, bigger L0 tables and less write amplification, more memory and longer
    /// recovery.
    pub memtable_size_bytes: usize,
    /// Immutable memtables allowed to wait for a flush before writers stall; writers are
    /// slowed (1 ms per write) one memtable earlier. Bounds memory to about
    /// `(immutable_memtables_max + 1) * memtable_size_bytes`.
    pub immutable_memtables_max: usize,
    /// Target uncompressed size of an SSTable data block (the unit of disk reads and of
    /// the block cache).
    pub block_size_bytes: usize,
    /// Target false-positive rate of each SSTable's bloom filter (1% ≈ 9.6 bits per key).
    pub bloom_fp_rate: f64,
    /// Block compression.
    pub compression: Compression,
    /// Capacity of the LRU cache of decoded data blocks, shared by all tables.
    pub block_cache_size_bytes: usize,
    /// Number of L0 tables that triggers an L0 → L1 compaction.
    pub l0_compaction_trigger: usize,
    /// Number of L0 tables at which writers are slowed by 1 ms per write.
    pub l0_slowdown_trigger: usize,
    /// Number of L0 tables at which writers stall until compaction catches up.
    pub l0_stop_trigger: usize,
    /// Target size of level 1; each deeper level is `level_size_multiplier` times larger.
    pub level1_size_bytes: u64,
    /// Size ratio between adjacent levels (the classic 10: ~1.11x space amplification).
    pub level_size_multiplier: u64,
    /// Target size of one SSTable written by compaction.
    pub table_size_bytes: u64,
    /// Cap on compaction write throughput, so background work does not starve
    /// foreground I/O; 0 means unlimited.
    pub compaction_bytes_per_sec: u64,
    /// Longest accepted key.
    pub key_size_bytes_max: usize,
    /// Longest accepted value.
    pub value_size_bytes_max: usize,
    /// How long a stalled writer waits for background work before failing.
    pub stall_timeout: Duration,
    /// Asked during compaction whether live entries are still wanted (see
    /// [`CompactionFilter`]); `None` keeps everything the engine's own rules keep.
    pub compaction_filter: Option<CompactionFilter>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            create_if_missing: true,
            sync: SyncPolicy::Always,
            memtable_size_bytes: 32 << 20,
            immutable_memtables_max: 2,
            block_size_bytes: 4096,
            bloom_fp_rate: 0.01,
            compression: Compression::None,
            block_cache_size_bytes: 64 << 20,
            l0_compaction_trigger: 4,
            l0_slowdown_trigger: 12,
            l0_stop_trigger: 20,
            level1_size_bytes: 128 << 20,
            level_size_multiplier: 10,
            table_size_bytes: 32 << 20,
            compaction_bytes_per_sec: 0,
            key_size_bytes_max: 64 << 10,
            value_size_bytes_max: 64 << 20,
            stall_timeout: Duration::from_secs(60),
            compaction_filter: None,
        }
    }
}

impl Options {
    /// Checks the options are usable; errors name the field.
    pub(crate) fn validate(&self) -> Result<(), String> {
        let checks = [
            (
                self.memtable_size_bytes >= 1024,
                "memtable_size_bytes must be >= 1024",
            ),
            (
                self.immutable_memtables_max >= 1,
                "immutable_memtables_max must be >= 1",
            ),
            (
                self.block_size_bytes >= 64,
                "block_size_bytes must be >= 64",
            ),
            (
                self.bloom_fp_rate > 0.0 && self.bloom_fp_rate < 1.0,
                "bloom_fp_rate must be in (0, 1)",
            ),
            (
                self.l0_compaction_trigger >= 1,
                "l0_compaction_trigger must be >= 1",
            ),
            (
                self.l0_slowdown_trigger >= self.l0_compaction_trigger
                    && self.l0_stop_trigger >= self.l0_slowdown_trigger,
                "need l0_compaction_trigger <= l0_slowdown_trigger <= l0_stop_trigger",
            ),
            (
                self.level_size_multiplier >= 2,
                "level_size_multiplier must be >= 2",
            ),
            (
                self.table_size_bytes >= 1024,
                "table_size_bytes must be >= 1024",
            ),
            (
                self.key_size_bytes_max >= 1,
                "key_size_bytes_max must be >= 1",
            ),
        ];
        match checks.iter().find(|(ok, _)| !ok) {
            Some((_, msg)) => Err((*msg).to_string()),
            None => Ok(()),
        }
    }
}
