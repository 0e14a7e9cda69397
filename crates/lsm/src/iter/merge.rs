//! The k-way merge under every scan and compaction: sorted sources (memtable chunks,
//! table cursors) in a binary heap, compared in place, yielding all versions of all keys
//! in internal order (key ascending, sequence descending).
//!
//! Why a module of its own: the merge knows nothing of snapshots, tombstones or TTLs —
//! [`super::DbIter`] adds those for users and compaction adds its own retention rules —
//! so the one piece both share lives apart from either.

use std::ops::Bound;
use std::sync::Arc;

use sketch::KeyHash;

use crate::codec::{Entry, EntryRef, cmp_internal};
use crate::error::Result;
use crate::memtable::{MemChunk, MemKey, Memtable};
use crate::sstable::{Table, TableIter};
use crate::version::Version;

/// Entries fetched from a memtable per refill.
const MEM_CHUNK: usize = 256;

/// One sorted input of a merge: a cursor on its current entry, which the merge
/// compares in place (borrowed from a memtable chunk or a table block, never copied).
pub(crate) enum Source {
    /// A memtable, read in chunks.
    Mem {
        /// The memtable.
        mem: Arc<Memtable>,
        /// Buffered entries; the front is the current one.
        buf: MemChunk,
        /// Where the next chunk starts.
        from: Bound<MemKey>,
        /// True once the memtable is exhausted.
        done: bool,
        /// Size of the next chunk: starts small so a short seek copies little, doubles
        /// up to `MEM_CHUNK` for long scans.
        chunk: usize,
    },
    /// One SSTable; the cursor is created by the first `seek_start`.
    Table {
        /// The table.
        table: Arc<Table>,
        /// Whether reads fill the block cache.
        fill_cache: bool,
        /// The cursor, once positioned.
        it: Option<TableIter>,
    },
    /// The disjoint, sorted tables of one level ≥ 1, opened one after the other.
    Level {
        /// The version holding the level (pinned, not copied).
        version: Arc<Version>,
        /// The level.
        level: usize,
        /// Index of the next table to open.
        next: usize,
        /// The table being read.
        current: Option<TableIter>,
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
            buf: MemChunk::default(),
            from,
            done: false,
            chunk: 1,
        }
    }

    /// A table source (the merge's start key says where it starts).
    pub(crate) fn table(table: Arc<Table>, fill_cache: bool) -> Source {
        Source::Table {
            table,
            fill_cache,
            it: None,
        }
    }

    /// A source over level `level` (≥ 1) of `version`, from its first table whose
    /// largest key is at or after `start`.
    pub(crate) fn level(
        version: Arc<Version>,
        level: usize,
        start: &[u8],
        fill_cache: bool,
    ) -> Source {
        let next = version.levels[level].partition_point(|t| t.meta.largest.as_slice() < start);
        Source::Level {
            version,
            level,
            next,
            current: None,
            fill_cache,
        }
    }

    /// Positions the source at `start` (called once, before `current`; a memtable
    /// source was given its start when made).
    fn seek_start(&mut self, start: &[u8]) -> Result<()> {
        match self {
            Source::Mem { .. } => self.refill(),
            Source::Table {
                table,
                fill_cache,
                it,
            } => {
                *it = Some(TableIter::seek(table.clone(), start, *fill_cache)?);
                Ok(())
            }
            Source::Level { .. } => self.next_table(start),
        }
    }

    /// Memtable: fetches the next chunk when the buffer ran dry.
    fn refill(&mut self) -> Result<()> {
        if let Source::Mem {
            mem,
            buf,
            from,
            done,
            chunk: chunk_len,
        } = self
            && buf.is_empty()
            && !*done
        {
            let bound = match from {
                Bound::Included(k) => Bound::Included(&*k),
                Bound::Excluded(k) => Bound::Excluded(&*k),
                Bound::Unbounded => Bound::Unbounded,
            };
            let n = mem.chunk_into(bound, *chunk_len, buf);
            *done = n < *chunk_len;
            *chunk_len = (*chunk_len * 2).min(MEM_CHUNK);
            if let Some((key, seq)) = buf.last() {
                // Reuse the bound's key buffer.
                let mut k = match std::mem::replace(from, Bound::Unbounded) {
                    Bound::Included(m) | Bound::Excluded(m) => m.key,
                    Bound::Unbounded => Vec::new(),
                };
                k.clear();
                k.extend_from_slice(key);
                *from = Bound::Excluded(MemKey { key: k, seq });
            }
        }
        Ok(())
    }

    /// Level: opens tables, from `start`, until one has an entry.
    fn next_table(&mut self, start: &[u8]) -> Result<()> {
        if let Source::Level {
            version,
            level,
            next,
            current,
            fill_cache,
        } = self
        {
            loop {
                if current.as_ref().is_some_and(|it| it.current().is_some()) {
                    return Ok(());
                }
                let Some(t) = version.levels[*level].get(*next) else {
                    *current = None;
                    return Ok(());
                };
                *next += 1;
                *current = Some(TableIter::seek(t.clone(), start, *fill_cache)?);
            }
        }
        Ok(())
    }

    /// For a source that may wait unpositioned in the merge: a sequence number `s` such
    /// that all its entries at or after `(key, newest)` are at or after `(key, s)` in
    /// internal order. 0 when it surely holds no version of `key` (its key range or
    /// bloom filter says so: then its entries there are after `key`), else the table's
    /// largest sequence number. `None`: position it now (a memtable whose key filter
    /// says it may hold `key`).
    fn lower_bound_seq(&self, key: &[u8], hash: KeyHash) -> Option<u64> {
        let bound = |t: &Table| {
            let lacks = key < t.meta.smallest.as_slice()
                || key > t.meta.largest.as_slice()
                || !t.may_contain(hash);
            if lacks { 0 } else { t.meta.seq_max }
        };
        match self {
            // Unfiltered, a memtable would be the newest pending source: positioned first.
            Source::Mem { mem, .. } => (!mem.may_contain(key)).then_some(0),
            Source::Table { table, .. } => Some(bound(table)),
            Source::Level {
                version,
                level,
                next,
                ..
            } => Some(version.levels[*level].get(*next).map_or(0, |t| bound(t))),
        }
    }

    /// The current entry; `None` when exhausted.
    fn current(&self) -> Option<EntryRef<'_>> {
        match self {
            Source::Mem { buf, .. } => buf.front(),
            Source::Table { it, .. } => it.as_ref().and_then(TableIter::current),
            Source::Level { current, .. } => current.as_ref().and_then(TableIter::current),
        }
    }

    /// Moves past the current entry.
    fn advance(&mut self) -> Result<()> {
        match self {
            Source::Mem { buf, .. } => {
                buf.pop_front();
                self.refill()
            }
            Source::Table { it, .. } => it.as_mut().map_or(Ok(()), TableIter::advance),
            Source::Level { current, .. } => {
                if let Some(it) = current {
                    it.advance()?;
                }
                // Later tables of the level start after the merge's start key.
                self.next_table(&[])
            }
        }
    }
}

/// K-way merge of sources (index 0 = newest), yielding every version in internal
/// order: a binary min-heap of source indices, ordered by each source's current
/// entry, compared in place (on equal internal keys the newer source comes first).
///
/// A scan that starts at a key positions table sources lazily: each enters the heap
/// unpositioned, standing for a lower bound of its first entry — `(start, 0)` when its
/// range or bloom filter says it lacks the start key, else `(start, its largest
/// sequence number)` — and reads a block only when that bound reaches the top. A seek
/// whose key exists reads the block of the newest table holding it and no other (older
/// versions of that key are skipped anyway, and a scan that stops early never needs
/// what comes after them).
pub(crate) struct MergeIter {
    /// The inputs.
    sources: Vec<Source>,
    /// Indices of the non-exhausted sources, a min-heap.
    heap: Vec<usize>,
    /// Per source: in the heap unpositioned, its first entry at or after
    /// `(start, this sequence number)`.
    pending: Vec<Option<u64>>,
    /// Where every source starts (empty: at the beginning).
    start: Vec<u8>,
    /// Whether table sources may wait unpositioned (scans; compaction reads all).
    lazy: bool,
    /// False until every source is positioned or pending.
    primed: bool,
}

impl MergeIter {
    /// Merges `sources`, newest first, from their beginnings.
    pub(crate) fn new(sources: Vec<Source>) -> Self {
        Self {
            heap: Vec::with_capacity(sources.len()),
            pending: vec![None; sources.len()],
            sources,
            start: Vec::new(),
            lazy: false,
            primed: false,
        }
    }

    /// Merges `sources` from `start` (memtable sources made to start there),
    /// positioning table sources lazily.
    pub(crate) fn from_key(sources: Vec<Source>, start: &[u8]) -> Self {
        Self {
            start: start.to_vec(),
            lazy: true,
            ..Self::new(sources)
        }
    }

    /// True when source `a` comes before source `b`: by internal key (a pending
    /// source by its bound), a positioned source before a pending one at the same
    /// place (its real entry can only be later), then the newer source.
    fn before(&self, a: usize, b: usize) -> bool {
        let start = &self.start[..];
        let position = |i: usize| match self.pending[i] {
            Some(seq) => (start, seq),
            None => {
                let e = self.sources[i]
                    .current()
                    .expect("heap sources have entries");
                (e.key, e.seq)
            }
        };
        let ((ka, sa), (kb, sb)) = (position(a), position(b));
        cmp_internal(ka, sa, kb, sb)
            .then(self.pending[a].is_some().cmp(&self.pending[b].is_some()))
            .then(a.cmp(&b))
            .is_lt()
    }

    fn sift_down(&mut self, mut i: usize) {
        loop {
            let (l, r) = (2 * i + 1, 2 * i + 2);
            let mut min = i;
            if l < self.heap.len() && self.before(self.heap[l], self.heap[min]) {
                min = l;
            }
            if r < self.heap.len() && self.before(self.heap[r], self.heap[min]) {
                min = r;
            }
            if min == i {
                return;
            }
            self.heap.swap(i, min);
            i = min;
        }
    }

    fn prime(&mut self) -> Result<()> {
        if !self.primed {
            let hash = self.lazy.then(|| KeyHash::of(&self.start));
            for i in 0..self.sources.len() {
                if let Some(hash) = hash
                    && let Some(seq) = self.sources[i].lower_bound_seq(&self.start, hash)
                {
                    self.pending[i] = Some(seq);
                    self.heap.push(i);
                    continue;
                }
                self.sources[i].seek_start(&self.start)?;
                if self.sources[i].current().is_some() {
                    self.heap.push(i);
                }
            }
            for i in (0..self.heap.len() / 2).rev() {
                self.sift_down(i);
            }
            self.primed = true;
        }
        Ok(())
    }

    /// Removes the top of the heap.
    fn pop_top(&mut self) {
        let last = self.heap.pop().expect("non-empty");
        if !self.heap.is_empty() {
            self.heap[0] = last;
            self.sift_down(0);
        }
    }

    /// Positions pending sources that reached the top, until a positioned one is there.
    fn settle(&mut self) -> Result<()> {
        self.prime()?;
        while let Some(&top) = self.heap.first()
            && self.pending[top].take().is_some()
        {
            self.sources[top].seek_start(&self.start)?;
            if self.sources[top].current().is_none() {
                self.pop_top();
            } else {
                // Its entry is at or after its bound: it can only move down.
                self.sift_down(0);
            }
        }
        Ok(())
    }

    /// The smallest entry not yet consumed (positions sources as needed).
    pub(crate) fn current(&mut self) -> Result<Option<EntryRef<'_>>> {
        self.settle()?;
        Ok(self
            .heap
            .first()
            .and_then(|&top| self.sources[top].current()))
    }

    /// Consumes the current entry.
    pub(crate) fn advance(&mut self) -> Result<()> {
        self.settle()?;
        let Some(&top) = self.heap.first() else {
            return Ok(());
        };
        self.sources[top].advance()?;
        if self.sources[top].current().is_none() {
            self.pop_top();
        } else {
            self.sift_down(0);
        }
        Ok(())
    }

    /// The next version in internal order, copied (compaction owns what it writes).
    pub(crate) fn next_entry(&mut self) -> Result<Option<Entry>> {
        let Some(e) = self.current()?.map(|e| e.to_entry()) else {
            return Ok(None);
        };
        self.advance()?;
        Ok(Some(e))
    }
}
