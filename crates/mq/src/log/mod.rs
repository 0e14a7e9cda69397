//! The partition log: the data store of the message queue (the notes' WAL of segments).
//!
//! # Design
//!
//! The notes' traffic pattern (frequent sequential reads and writes, no updates, no
//! deletes of single messages) is exactly what an append-only log is good at, and what a
//! database is bad at: every write is a sequential append, every read a sequential scan
//! from an offset, and the OS page cache does the caching. So one partition is one
//! directory of *segments*, each an append-only file of record batches:
//!
//! - **Batches stored as received.** A producer's Kafka v2 record batch is checked
//!   (header, length, CRC-32C) and written to disk byte for byte; the only change is the
//!   8-byte `baseOffset` field, which the log assigns and which the CRC does not cover. A
//!   consumer's fetch returns those same bytes. The notes ask for "a message data structure
//!   that needs no change from producer to consumer": no re-encoding, no decompression,
//!   no copy into another format on the hot path, and the producer's batching (many
//!   records per write) becomes large sequential disk writes for free. Each record inside
//!   keeps the fields the notes list: key, value, offset (base + delta), timestamp, size
//!   (length prefix), with topic/partition given by the directory and CRC per batch.
//! - **Segments** (`segment`): the active segment takes appends; it rolls when it would
//!   exceed `segment_bytes` or is older than `segment_ms`. Old data leaves a whole segment
//!   at a time ([`retention`]), which is a file deletion instead of a rewrite; and a crash
//!   can only tear the active segment, so recovery scans one file, not the partition.
//! - **Sparse indexes** ([`index`]): per segment, a `.index` maps relative offset → file
//!   position every `index_interval_bytes` (4 KiB), and a `.timeindex` maps timestamp →
//!   offset. A read binary-searches the segment (by base offset), then its index, then
//!   scans at most ~4 KiB of headers. A dense index would be as large as the data.
//! - **Durability** ([`FlushPolicy`]): fsync before acknowledging (`Always`), every
//!   `IntervalMs`, or leave it to the OS (`Os`, Kafka's default, relying on replication).
//!   A process crash (`kill -9`) loses nothing written in any mode (the page cache
//!   survives); power loss loses the unsynced tail except with `Always`.
//! - **Recovery** ([`recovery`]): on open, the active segment is scanned, every CRC
//!   checked, and a torn tail cut back to the last complete valid batch.
//! - **Integrity on read**: every batch served is CRC-checked; a damaged one is an error
//!   naming the file and byte ([`LogError::Corrupt`]), never wrong data.
//! - **Compaction** ([`compaction`], `cleanup.policy=compact`): sealed segments are
//!   rewritten keeping the last record per key, original offsets preserved; tombstones
//!   (null values) are kept for `delete_retention_ms`, then dropped.
//!
//! # On-disk format (Kafka's, so its tools' mental model applies)
//!
//! ```text
//! <partition dir>/
//!   00000000000000000000.log        batches, concatenated, each exactly as on the wire
//!   00000000000000000000.index      (u32 offset - base, u32 byte position) per ~4 KiB
//!   00000000000000000000.timeindex  (i64 largest timestamp so far, u32 offset - base)
//!   00000000000000004096.log        next segment: named by its first offset
//!   ...
//! ```
//! A batch is the v2 record batch ([`batch`] gives the header layout): 61 header bytes
//! then the records (varint-encoded, possibly compressed). All integers big-endian.
//! Index files are never fsynced: they are rebuilt from the log when damaged.
//!
//! # Modules
//! [`batch`] (the v2 header), [`records`] and [`codec`] (inside a batch: only compaction
//! and ListOffsets-by-time look there), [`index`], `scan` (header walks), `segment`,
//! [`recovery`], [`retention`] (a pure plan), [`compaction`], `partition`
//! ([`PartitionLog`]).
//!
//! # Limits (known, deliberate for now)
//! - Every segment's sparse indexes live in memory (~0.5% of the log's size at the
//!   default 4 KiB interval); Kafka memory-maps them instead.
//! - Timestamps are the producer's (CreateTime); LogAppendTime is not implemented
//!   (`Appended::log_append_time_ms` is -1, as Kafka answers for CreateTime topics).
//! - `FlushPolicy::IntervalMs` is checked on append; an idle log is synced by the
//!   broker calling [`PartitionLog::flush`] on a timer.
//! - Compaction holds every distinct key in memory, compacts all sealed segments each
//!   time (no dirty ratio, no minimum lag), never merges small segments, and expires a
//!   tombstone by its own timestamp (Kafka 3 records a delete horizon in the batch).
//! - A broken *header* in the middle of the active segment cuts the log there on
//!   recovery (as Kafka does); damage to a batch's body is kept and reported on read.
//!
//! # Invariants (asserted)
//! Offsets strictly increase across batches; index entries strictly increase in offset
//! and position; every length read from disk or from a client is bounded (by the file
//! size or `batch_bytes_max`) before anything is allocated for it.

pub mod batch;
pub mod codec;
pub mod compaction;
mod error;
pub mod index;
mod partition;
pub mod records;
pub mod recovery;
pub mod retention;
mod scan;
mod segment;

pub use batch::{BatchHeader, Compression};
pub use compaction::CompactionReport;
pub use error::LogError;
pub use partition::{Appended, PartitionLog, RetentionReport};

/// One day in milliseconds.
const DAY_MS: u64 = 24 * 60 * 60 * 1000;

/// When appended data is fsynced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlushPolicy {
    /// fsync before `append` returns (per message/batch: no acknowledged loss on power
    /// failure; the slowest).
    Always,
    /// fsync on the first append at least this many ms after the previous fsync (the
    /// broker also calls [`PartitionLog::flush`] on a timer so an idle log gets synced).
    IntervalMs(u64),
    /// Never fsync on append; the OS writes back (Kafka's default, relying on replicas).
    Os,
}

/// What happens to old data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CleanupPolicy {
    /// Delete whole segments by time and size (`cleanup.policy=delete`).
    Delete,
    /// Keep the last value per key (`cleanup.policy=compact`).
    Compact,
}

/// The configuration of one partition log (Kafka's topic-level names in the docs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogConfig {
    /// Roll a segment before it would exceed this (`segment.bytes`, default 1 GiB; at most
    /// `i32::MAX`, as positions in the index are 32-bit).
    pub segment_bytes: u64,
    /// Roll a segment older than this (`segment.ms`, default 7 days).
    pub segment_ms: u64,
    /// Delete old segments beyond this total size (`retention.bytes`; None = unlimited).
    pub retention_bytes: Option<u64>,
    /// Delete segments whose newest record is older than this (`retention.ms`, 7 days).
    pub retention_ms: Option<u64>,
    /// When to fsync.
    pub flush: FlushPolicy,
    /// Delete or compact.
    pub cleanup: CleanupPolicy,
    /// Bytes of log between two sparse index entries (`index.interval.bytes`, 4096).
    pub index_interval_bytes: u64,
    /// Largest batch accepted (`message.max.bytes`, ~1 MiB).
    pub batch_bytes_max: usize,
    /// How long compaction keeps tombstones before dropping them
    /// (`delete.retention.ms`, default 1 day).
    pub delete_retention_ms: u64,
}

impl Default for LogConfig {
    fn default() -> LogConfig {
        LogConfig {
            segment_bytes: 1 << 30,
            segment_ms: 7 * DAY_MS,
            retention_bytes: None,
            retention_ms: Some(7 * DAY_MS),
            flush: FlushPolicy::Os,
            cleanup: CleanupPolicy::Delete,
            index_interval_bytes: 4096,
            batch_bytes_max: 1_048_588,
            delete_retention_ms: DAY_MS,
        }
    }
}

impl LogConfig {
    /// Checks the limits the on-disk format imposes.
    pub fn validate(&self) -> Result<(), LogError> {
        let max = i32::MAX as u64;
        if self.segment_bytes == 0 || self.segment_bytes > max {
            return Err(LogError::Config(format!(
                "segment_bytes {} must be in 1..={max}",
                self.segment_bytes
            )));
        }
        if self.batch_bytes_max < batch::HEADER_BYTES || self.batch_bytes_max as u64 > max {
            return Err(LogError::Config(format!(
                "batch_bytes_max {} must be in {}..={max}",
                self.batch_bytes_max,
                batch::HEADER_BYTES
            )));
        }
        if self.index_interval_bytes == 0 {
            return Err(LogError::Config(
                "index_interval_bytes must be at least 1".into(),
            ));
        }
        if self.segment_ms == 0 {
            return Err(LogError::Config("segment_ms must be at least 1".into()));
        }
        Ok(())
    }
}
