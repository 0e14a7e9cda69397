//! Ordered iteration: the merging iterator behind range scans and compaction.
//!
//! Why it exists: a key's versions are spread over the memtable, the immutable memtables
//! and the SSTables of every level. A k-way merge (a binary heap of sources, each sorted
//! by (key, sequence descending)) yields all versions in one global order; the user-facing
//! [`DbIter`] then keeps, per key, the newest version visible at its snapshot and hides
//! tombstones and expired values. Compaction uses the same merge but keeps more versions.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, VecDeque};
use std::ops::Bound;
use std::sync::Arc;

use crate::codec::{Entry, cmp_internal};
use crate::error::Result;
use crate::memtable::{MemKey, Memtable};
use crate::sstable::{Table, TableIter};

/// Entries fetched from a memtable per refill.
const MEM_CHUNK: usize = 256;

/// One sorted input of a merge.
pub(crate) enum Source {
    /// A memtable, read in chunks.
    Mem {
        /// The memtable.
        mem: Arc<Memtable>,
        /// Buffered entries.
        buf: VecDeque<Entry>,
        /// Where the next chunk starts.
        from: Bound<MemKey>,
        /// True once the memtable is exhausted.
        done: bool,
        /// Size of the next chunk: starts small so a short seek copies little, doubles
        /// up to `MEM_CHUNK` for long scans.
        chunk: usize,
    },
    /// One SSTable.
    Table(TableIter),
    /// The disjoint, sorted tables of one level ≥ 1, opened one after the other.
    Level {
        /// Remaining tables, in key order.
        tables: VecDeque<Arc<Table>>,
        /// The table being read.
        current: Option<TableIter>,
        /// Seek key for the first table.
        start: Vec<u8>,
        /// Whether reads fill the block cache.
        fill_cache: bool,
    },
}

impl Source {
    /// A memtable source starting at the newest version of `start`.
    pub(crate) fn mem(mem: Arc<Memtable>, start: &[u8]) -> Source {
        let from = Bound::Included(MemKey {
            key: start.to_vec(),
            seq: u64::MAX,
        });
        Source::Mem {
            mem,
            buf: VecDeque::new(),
            from,
            done: false,
            chunk: 4,
        }
    }

    /// A table source starting at `start`.
    pub(crate) fn table(table: Arc<Table>, start: &[u8], fill_cache: bool) -> Source {
        Source::Table(TableIter::seek(table, start, fill_cache))
    }

    /// A level source over disjoint sorted tables.
    pub(crate) fn level(tables: Vec<Arc<Table>>, start: &[u8], fill_cache: bool) -> Source {
        Source::Level {
            tables: tables.into(),
            current: None,
            start: start.to_vec(),
            fill_cache,
        }
    }

    /// The next entry in internal order.
    pub(crate) fn next_entry(&mut self) -> Result<Option<Entry>> {
        match self {
            Source::Mem {
                mem,
                buf,
                from,
                done,
                chunk: chunk_len,
            } => {
                if buf.is_empty() && !*done {
                    let bound = match from {
                        Bound::Included(k) => Bound::Included(&*k),
                        Bound::Excluded(k) => Bound::Excluded(&*k),
                        Bound::Unbounded => Bound::Unbounded,
                    };
                    let chunk = mem.chunk(bound, *chunk_len);
                    *done = chunk.len() < *chunk_len;
                    *chunk_len = (*chunk_len * 2).min(MEM_CHUNK);
                    if let Some(last) = chunk.last() {
                        *from = Bound::Excluded(MemKey {
                            key: last.key.clone(),
                            seq: last.seq,
                        });
                    }
                    buf.extend(chunk);
                }
                Ok(buf.pop_front())
            }
            Source::Table(it) => it.next_entry(),
            Source::Level {
                tables,
                current,
                start,
                fill_cache,
            } => loop {
                if let Some(it) = current
                    && let Some(e) = it.next_entry()?
                {
                    return Ok(Some(e));
                }
                let Some(t) = tables.pop_front() else {
                    return Ok(None);
                };
                *current = Some(TableIter::seek(t, start, *fill_cache));
            },
        }
    }
}

/// Heap item: an entry and the index of the source it came from.
struct HeapItem {
    entry: Entry,
    source: usize,
}

impl Ord for HeapItem {
    fn cmp(&self, other: &Self) -> Ordering {
        // BinaryHeap is a max-heap: reverse so the smallest internal key pops first;
        // on a tie the lower source index (the newer source) wins.
        cmp_internal(
            &other.entry.key,
            other.entry.seq,
            &self.entry.key,
            self.entry.seq,
        )
        .then(other.source.cmp(&self.source))
    }
}

impl PartialOrd for HeapItem {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for HeapItem {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for HeapItem {}

/// K-way merge of sources (index 0 = newest), yielding every version in internal order.
pub(crate) struct MergeIter {
    /// The inputs.
    sources: Vec<Source>,
    /// One pending entry per non-exhausted source.
    heap: BinaryHeap<HeapItem>,
    /// False until every source contributed its first entry.
    primed: bool,
}

impl MergeIter {
    /// Merges `sources`, newest first.
    pub(crate) fn new(sources: Vec<Source>) -> Self {
        Self {
            heap: BinaryHeap::with_capacity(sources.len()),
            sources,
            primed: false,
        }
    }

    /// The next version in internal order.
    pub(crate) fn next_entry(&mut self) -> Result<Option<Entry>> {
        if !self.primed {
            for i in 0..self.sources.len() {
                if let Some(entry) = self.sources[i].next_entry()? {
                    self.heap.push(HeapItem { entry, source: i });
                }
            }
            self.primed = true;
        }
        let Some(top) = self.heap.pop() else {
            return Ok(None);
        };
        if let Some(entry) = self.sources[top.source].next_entry()? {
            self.heap.push(HeapItem {
                entry,
                source: top.source,
            });
        }
        Ok(Some(top.entry))
    }
}

/// One live key-value pair returned by a scan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyValue {
    /// The key.
    pub key: Vec<u8>,
    /// The value.
    pub value: Vec<u8>,
    /// Expiry in unix milliseconds, if the key has a TTL.
    pub expires_at_ms: Option<u64>,
}

/// An ordered scan over live keys at one snapshot; created by `Db::scan`.
///
/// It pins the memtables and tables it reads, so it sees one consistent point in time
/// however long it lives (holding it for long keeps deleted files' disk space in use).
pub struct DbIter {
    /// The merge of all sources.
    merge: MergeIter,
    /// Versions newer than this are invisible.
    snapshot: u64,
    /// The clock for TTLs, fixed at creation so a scan is consistent.
    now_ms: u64,
    /// Start bound (for exclusive starts).
    start: Bound<Vec<u8>>,
    /// End bound.
    end: Bound<Vec<u8>>,
    /// Last user key emitted or skipped: older versions of it are skipped.
    last_key: Option<Vec<u8>>,
    /// Set after the end bound or an error.
    done: bool,
}

impl DbIter {
    pub(crate) fn new(
        merge: MergeIter,
        snapshot: u64,
        now_ms: u64,
        start: Bound<Vec<u8>>,
        end: Bound<Vec<u8>>,
    ) -> Self {
        Self {
            merge,
            snapshot,
            now_ms,
            start,
            end,
            last_key: None,
            done: false,
        }
    }

    fn step(&mut self) -> Result<Option<KeyValue>> {
        while let Some(e) = self.merge.next_entry()? {
            if e.seq > self.snapshot || self.last_key.as_deref() == Some(&e.key[..]) {
                continue;
            }
            let before_start = match &self.start {
                Bound::Included(s) => e.key < *s,
                Bound::Excluded(s) => e.key <= *s,
                Bound::Unbounded => false,
            };
            let past_end = match &self.end {
                Bound::Included(s) => e.key > *s,
                Bound::Excluded(s) => e.key >= *s,
                Bound::Unbounded => false,
            };
            if past_end {
                return Ok(None);
            }
            self.last_key = Some(e.key.clone());
            if before_start || e.is_deletion_at(self.now_ms) {
                continue;
            }
            let expires_at_ms =
                (e.kind == crate::codec::Kind::PutExpiring).then_some(e.expire_at_ms);
            return Ok(Some(KeyValue {
                key: e.key,
                value: e.value,
                expires_at_ms,
            }));
        }
        Ok(None)
    }
}

impl Iterator for DbIter {
    type Item = Result<KeyValue>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let item = self.step().transpose();
        if !matches!(item, Some(Ok(_))) {
            self.done = true;
        }
        item
    }
}
