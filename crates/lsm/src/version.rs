//! A version: the immutable set of live SSTables, level by level, and the lookups over it.
//!
//! Why it exists: readers take an `Arc<Version>` and work on it without locks while
//! flushes and compactions install new versions; an old version (and its open files)
//! lives until its last reader drops it.
//!
//! Level 0 holds flushed memtables, which may overlap, newest first. Levels 1.. each hold
//! tables with disjoint key ranges sorted by key, so a point lookup touches at most one
//! table per level, after that table's bloom filter says "maybe".

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sketch::KeyHash;

use crate::codec::Entry;
use crate::error::Result;
use crate::manifest::LEVELS;
use crate::sstable::Table;

/// Bloom-filter counters for `stats()`.
#[derive(Default)]
pub(crate) struct BloomCounters {
    /// The filter said "no": a disk read avoided (RocksDB's "bloom useful").
    pub negatives: AtomicU64,
    /// The filter said "maybe" and the key was there.
    pub true_positives: AtomicU64,
    /// The filter said "maybe" and the key was not there: a wasted read.
    pub false_positives: AtomicU64,
}

/// The live tables.
#[derive(Clone, Default)]
pub(crate) struct Version {
    /// `levels[0]` newest first; deeper levels sorted by smallest key, disjoint.
    pub levels: Vec<Vec<Arc<Table>>>,
}

impl Version {
    /// An empty version with all levels.
    pub(crate) fn empty() -> Self {
        Self {
            levels: vec![Vec::new(); LEVELS],
        }
    }

    /// Restores the ordering invariants after edits.
    pub(crate) fn sort(&mut self) {
        self.levels[0].sort_by_key(|t| std::cmp::Reverse(t.meta.seq_max));
        for level in &mut self.levels[1..] {
            level.sort_by(|a, b| a.meta.smallest.cmp(&b.meta.smallest));
            debug_assert!(
                level
                    .windows(2)
                    .all(|w| w[0].meta.largest < w[1].meta.smallest),
                "overlapping tables in a level"
            );
        }
    }

    /// Newest version of `key` at `snapshot` in the tables, checking blooms first.
    pub(crate) fn get(
        &self,
        key: &[u8],
        snapshot: u64,
        bloom: &BloomCounters,
    ) -> Result<Option<Entry>> {
        let hash = KeyHash::of(key);
        for table in &self.levels[0] {
            if covers(table, key)
                && let Some(e) = probe(table, key, hash, snapshot, bloom)?
            {
                return Ok(Some(e));
            }
        }
        for level in &self.levels[1..] {
            let i = level.partition_point(|t| t.meta.largest.as_slice() < key);
            if let Some(table) = level.get(i).filter(|t| covers(t, key))
                && let Some(e) = probe(table, key, hash, snapshot, bloom)?
            {
                return Ok(Some(e));
            }
        }
        Ok(None)
    }

    /// Tables of `level` whose key range intersects `[smallest, largest]`.
    pub(crate) fn overlapping(
        &self,
        level: usize,
        smallest: &[u8],
        largest: &[u8],
    ) -> Vec<Arc<Table>> {
        self.levels[level]
            .iter()
            .filter(|t| {
                t.meta.largest.as_slice() >= smallest && t.meta.smallest.as_slice() <= largest
            })
            .cloned()
            .collect()
    }

    /// Total bytes of `level`.
    pub(crate) fn level_bytes(&self, level: usize) -> u64 {
        self.levels[level].iter().map(|t| t.meta.size_bytes).sum()
    }
}

fn covers(t: &Table, key: &[u8]) -> bool {
    t.meta.smallest.as_slice() <= key && key <= t.meta.largest.as_slice()
}

fn probe(
    table: &Table,
    key: &[u8],
    hash: KeyHash,
    snapshot: u64,
    bloom: &BloomCounters,
) -> Result<Option<Entry>> {
    if !table.may_contain(hash) {
        bloom.negatives.fetch_add(1, Ordering::Relaxed);
        return Ok(None);
    }
    let found = table.get(key, snapshot)?;
    let counter = if found.is_some() {
        &bloom.true_positives
    } else {
        &bloom.false_positives
    };
    counter.fetch_add(1, Ordering::Relaxed);
    Ok(found)
}
