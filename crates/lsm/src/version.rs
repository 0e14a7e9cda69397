//! A version: the immutable set of live SSTables, level by level, and the lookups over it.
//!
//! Why it exists: readers take an `Arc<Version>` and work on it without locks while
//! flushes and compactions install new versions; an old version (and its open files)
//! lives until its last reader drops it.
//!
//! Level 0 holds flushed memtables, which may overlap, newest first. Levels 1.. each hold
//! tables with disjoint key ranges sorted by key, so a point lookup touches at most one
//! table per level, after that table's bloom filter says "maybe".
//!
//! The level arithmetic (overlap, sizes, the "levels ≥ 1 are disjoint" invariant) is
//! written as plain functions over anything that carries a [`TableMeta`], so the
//! manifest check and the compaction picker's unit tests run it over bare summaries.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sketch::KeyHash;

use crate::codec::Entry;
use crate::error::Result;
use crate::manifest::LEVELS;
use crate::sstable::{Table, TableMeta, table_path};

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

    /// Restores the ordering invariants after edits. The tables come from a checked
    /// manifest and checked compaction results, so an overlap here is a logic error.
    pub(crate) fn sort(&mut self) {
        self.levels[0].sort_by_key(|t| std::cmp::Reverse(t.meta.seq_max));
        for level in &mut self.levels[1..] {
            level.sort_by(|a, b| a.meta.smallest.cmp(&b.meta.smallest));
        }
        debug_assert_eq!(
            find_overlap(&self.levels),
            None,
            "overlapping tables in a level"
        );
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

    /// Total bytes of `level`.
    pub(crate) fn level_bytes(&self, level: usize) -> u64 {
        level_bytes(&self.levels[level])
    }
}

/// Anything that carries a table's summary: an open table, or the summary alone (the
/// manifest's state, and the versions unit tests construct).
pub(crate) trait HasMeta {
    /// The table's summary.
    fn meta(&self) -> &TableMeta;
}

impl HasMeta for Arc<Table> {
    fn meta(&self) -> &TableMeta {
        &self.meta
    }
}

impl HasMeta for TableMeta {
    fn meta(&self) -> &TableMeta {
        self
    }
}

impl<T: HasMeta> HasMeta for &T {
    fn meta(&self) -> &TableMeta {
        (*self).meta()
    }
}

/// Tables of `tables` whose key range intersects `[smallest, largest]`, in their order.
pub(crate) fn overlapping<T: HasMeta + Clone>(
    tables: &[T],
    smallest: &[u8],
    largest: &[u8],
) -> Vec<T> {
    tables
        .iter()
        .filter(|t| {
            t.meta().largest.as_slice() >= smallest && t.meta().smallest.as_slice() <= largest
        })
        .cloned()
        .collect()
}

/// Total bytes of `tables`.
pub(crate) fn level_bytes<T: HasMeta>(tables: &[T]) -> u64 {
    tables.iter().map(|t| t.meta().size_bytes).sum()
}

/// Smallest and largest user key over `tables` (empty keys when there are none).
pub(crate) fn key_range<T: HasMeta>(tables: &[T]) -> (Vec<u8>, Vec<u8>) {
    let smallest = tables.iter().map(|t| &t.meta().smallest).min();
    let largest = tables.iter().map(|t| &t.meta().largest).max();
    (
        smallest.cloned().unwrap_or_default(),
        largest.cloned().unwrap_or_default(),
    )
}

/// A broken level invariant: two tables of a level ≥ 1 whose key ranges overlap, or
/// one table whose smallest key is after its largest (then `first == second`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Overlap {
    /// The level.
    pub level: usize,
    /// Id of the table that starts first.
    pub first: u64,
    /// Id of the table that starts inside it.
    pub second: u64,
}

impl std::fmt::Display for Overlap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = |id| {
            table_path(std::path::Path::new(""), id)
                .display()
                .to_string()
        };
        if self.first == self.second {
            write!(
                f,
                "table {} in level {} has its smallest key after its largest",
                name(self.first),
                self.level
            )
        } else {
            write!(
                f,
                "tables {} and {} in level {} overlap (levels >= 1 must hold disjoint key ranges)",
                name(self.first),
                name(self.second),
                self.level
            )
        }
    }
}

/// The first broken invariant of `levels`: levels ≥ 1 must hold tables with disjoint
/// key ranges (level 0 may overlap). The tables need not be sorted.
pub(crate) fn find_overlap<T: HasMeta>(levels: &[Vec<T>]) -> Option<Overlap> {
    levels
        .iter()
        .enumerate()
        .skip(1)
        .find_map(|(level, tables)| level_overlap(level, tables))
}

/// [`find_overlap`] for one level.
pub(crate) fn level_overlap<T: HasMeta>(level: usize, tables: &[T]) -> Option<Overlap> {
    let mut metas: Vec<&TableMeta> = tables.iter().map(HasMeta::meta).collect();
    if let Some(m) = metas.iter().find(|m| m.smallest > m.largest) {
        return Some(Overlap {
            level,
            first: m.id,
            second: m.id,
        });
    }
    metas.sort_by(|a, b| a.smallest.cmp(&b.smallest));
    metas
        .windows(2)
        .find(|w| w[0].largest >= w[1].smallest)
        .map(|w| Overlap {
            level,
            first: w[0].id,
            second: w[1].id,
        })
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
