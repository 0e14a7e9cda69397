//! What a data node reports about itself: sizes from the file table, counters kept as
//! it runs. The chapter's claims are read off these: files on disk per object (the
//! small-object claim), garbage bytes and what compaction gave back, objects per fsync
//! (the group commit).

use std::sync::atomic::{AtomicU64, Ordering};

use super::Inner;
use crate::datafile::FileState;

/// Counters updated as the node runs.
#[derive(Default)]
pub(crate) struct Counters {
    pub puts: AtomicU64,
    pub put_bytes: AtomicU64,
    pub gets: AtomicU64,
    pub get_bytes: AtomicU64,
    pub deletes: AtomicU64,
    pub corrupt_reads: AtomicU64,
    pub commits: AtomicU64,
    pub committed_ops: AtomicU64,
    pub data_fsyncs: AtomicU64,
    pub gc_runs: AtomicU64,
    pub gc_files_compacted: AtomicU64,
    pub gc_objects_moved: AtomicU64,
    pub gc_bytes_copied: AtomicU64,
    pub gc_bytes_reclaimed: AtomicU64,
    pub files_removed_on_open: AtomicU64,
}

impl Counters {
    pub(crate) fn put(&self, bytes: usize) {
        self.puts.fetch_add(1, Ordering::Relaxed);
        self.put_bytes.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    pub(crate) fn get(&self, bytes: usize) {
        self.gets.fetch_add(1, Ordering::Relaxed);
        self.get_bytes.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    pub(crate) fn delete(&self) {
        self.deletes.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn corrupt_read(&self) {
        self.corrupt_reads.fetch_add(1, Ordering::Relaxed);
    }
}

/// A data node's sizes and counters (counters since the node was opened).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Objects stored (mapped).
    pub objects: u64,
    /// Bytes of live records (objects plus 40 bytes of record overhead each).
    pub live_bytes: u64,
    /// Data files on disk.
    pub files: u64,
    /// Of those, sealed (read-only) files.
    pub sealed_files: u64,
    /// Bytes of all data files.
    pub disk_bytes: u64,
    /// Bytes of data files that hold no live record (deleted or overwritten objects,
    /// unacknowledged tails, headers and footers): what compaction can give back.
    pub garbage_bytes: u64,
    /// Successful puts (and `put_with_id`s).
    pub puts: u64,
    /// Object bytes put.
    pub put_bytes: u64,
    /// Successful reads.
    pub gets: u64,
    /// Bytes returned by reads.
    pub get_bytes: u64,
    /// Deletes.
    pub deletes: u64,
    /// Reads refused because a record failed its checks.
    pub corrupt_reads: u64,
    /// Group commits (rounds of the commit thread).
    pub commits: u64,
    /// Ops committed (puts, deletes, moves); `committed_ops / commits` is the mean group size.
    pub committed_ops: u64,
    /// fsyncs of data files.
    pub data_fsyncs: u64,
    /// fsyncs of the mapping table's commit log.
    pub mapping_fsyncs: u64,
    /// Garbage-collection runs.
    pub gc_runs: u64,
    /// Files compacted and deleted.
    pub gc_files_compacted: u64,
    /// Live objects copied by compaction.
    pub gc_objects_moved: u64,
    /// Bytes compaction copied.
    pub gc_bytes_copied: u64,
    /// File bytes compaction deleted.
    pub gc_bytes_reclaimed: u64,
    /// Files without live objects removed when the node was opened (left by an
    /// interrupted compaction, or emptied by deletes).
    pub files_removed_on_open: u64,
}

/// Reads the file table and the counters.
pub(crate) fn collect(inner: &Inner) -> Stats {
    let files = inner.files.snapshot();
    let c = &inner.counters;
    let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let mut s = Stats {
        puts: get(&c.puts),
        put_bytes: get(&c.put_bytes),
        gets: get(&c.gets),
        get_bytes: get(&c.get_bytes),
        deletes: get(&c.deletes),
        corrupt_reads: get(&c.corrupt_reads),
        commits: get(&c.commits),
        committed_ops: get(&c.committed_ops),
        data_fsyncs: get(&c.data_fsyncs),
        mapping_fsyncs: inner.mapping.lsm_stats().wal_syncs,
        gc_runs: get(&c.gc_runs),
        gc_files_compacted: get(&c.gc_files_compacted),
        gc_objects_moved: get(&c.gc_objects_moved),
        gc_bytes_copied: get(&c.gc_bytes_copied),
        gc_bytes_reclaimed: get(&c.gc_bytes_reclaimed),
        files_removed_on_open: get(&c.files_removed_on_open),
        ..Stats::default()
    };
    for f in &files {
        s.objects += f.live_objects;
        s.live_bytes += f.live_bytes;
        s.files += 1;
        s.sealed_files += u64::from(f.state == FileState::Sealed);
        s.disk_bytes += f.size_bytes;
        s.garbage_bytes += f.garbage_bytes();
    }
    s
}
