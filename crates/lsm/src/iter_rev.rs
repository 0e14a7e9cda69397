//! Reverse iteration: a range scan from the high end down (`Db::scan_rev`).
//!
//! Why it exists: the key-value server reads the *last* elements of big sorted
//! collections (`ZREVRANGE key 0 9` on a million-member sorted set, `LRANGE key -10
//! -1`, `XREVRANGE`). Without a reverse scan the only way there is to read the whole
//! range forward; with it, the work is proportional to what is returned.
//!
//! The sources are the forward scan's (memtables, level-0 tables, levels ≥ 1), each
//! read backwards in small pieces: a memtable by chunks of its skip list walked in
//! reverse, a table one data block at a time (a block's entries are prefix-compressed
//! forward, so a block is decoded whole, at most `block_size_bytes`, and walked from its
//! end), a level one table after the other from its highest. Sources merge in reverse
//! internal order — key descending, and a key's versions oldest first — so the scan
//! sees all versions of a key together and keeps the newest one its snapshot may see.
//! Entries are copied (simpler than the forward scan's in-place comparisons); the
//! work per returned key stays bounded.

use std::ops::Bound;
use std::sync::Arc;

use crate::codec::{Entry, Kind, cmp_internal};
use crate::error::Result;
use crate::iter::KeyValue;
use crate::memtable::{MemKey, Memtable};
use crate::sstable::Table;

/// Most versions fetched from a memtable per refill. Chunks start at one version and
/// double up to this, so a short read (`RPOP`, `ZREVRANGE key 0 0`) copies and
/// searches for little (each step back in the skip list is a search from its top).
const MEM_CHUNK: usize = 64;

/// One input of the reverse merge. `buf` holds fetched entries in internal order; its
/// last element is the current one.
pub(crate) enum RevSource {
    /// A memtable.
    Mem {
        /// The memtable.
        mem: Arc<Memtable>,
        /// Fetched entries.
        buf: Vec<Entry>,
        /// Where the next chunk ends (exclusive after the first).
        upper: Bound<MemKey>,
        /// The scan's low end: no chunk reaches below it.
        lower: Bound<MemKey>,
        /// Size of the next chunk (see [`MEM_CHUNK`]).
        chunk: usize,
        /// True once the memtable is exhausted.
        done: bool,
    },
    /// Tables with disjoint key ranges, read from the last one down: one level-0
    /// table, or the tables of a level ≥ 1 that may hold keys at or below the end.
    Tables {
        /// The tables, ascending.
        tables: Vec<Arc<Table>>,
        /// The lowest table that may hold keys at or above the scan's low end.
        first: usize,
        /// The table being read (`None`: exhausted).
        table: Option<usize>,
        /// The next block of it to read, downwards (`None`: move to the table below).
        block: Option<usize>,
        /// Fetched entries of the current block, at or below the end.
        buf: Vec<Entry>,
        /// Whether reads fill the block cache.
        fill_cache: bool,
    },
}

/// The internal position of the last version of a key at or below `end`, as a
/// memtable bound.
fn mem_upper(end: &Bound<Vec<u8>>) -> Bound<MemKey> {
    match end {
        // A key's versions run newest (highest seq) first: seq 0 is its last.
        Bound::Included(k) => Bound::Included(MemKey {
            key: k.clone(),
            seq: 0,
        }),
        Bound::Excluded(k) => Bound::Excluded(MemKey {
            key: k.clone(),
            seq: u64::MAX,
        }),
        Bound::Unbounded => Bound::Unbounded,
    }
}

/// The internal position of the first version of a key at or above `start`, as a
/// memtable bound.
fn mem_lower(start: &Bound<Vec<u8>>) -> Bound<MemKey> {
    match start {
        // A key's versions run newest (highest seq) first.
        Bound::Included(k) => Bound::Included(MemKey {
            key: k.clone(),
            seq: u64::MAX,
        }),
        Bound::Excluded(k) => Bound::Excluded(MemKey {
            key: k.clone(),
            seq: 0,
        }),
        Bound::Unbounded => Bound::Unbounded,
    }
}

/// Whether `key` lies above `end`.
fn above(key: &[u8], end: &Bound<Vec<u8>>) -> bool {
    match end {
        Bound::Included(e) => key > e.as_slice(),
        Bound::Excluded(e) => key >= e.as_slice(),
        Bound::Unbounded => false,
    }
}

impl RevSource {
    /// A memtable source over `start..end`.
    pub(crate) fn mem(
        mem: Arc<Memtable>,
        start: &Bound<Vec<u8>>,
        end: &Bound<Vec<u8>>,
    ) -> RevSource {
        RevSource::Mem {
            mem,
            buf: Vec::new(),
            upper: mem_upper(end),
            lower: mem_lower(start),
            chunk: 1,
            done: false,
        }
    }

    /// A source over those of `tables` (ascending, disjoint) that overlap
    /// `start..end`.
    pub(crate) fn tables(
        tables: Vec<Arc<Table>>,
        start: &Bound<Vec<u8>>,
        end: &Bound<Vec<u8>>,
        fill_cache: bool,
    ) -> RevSource {
        // Tables that start above the end, or end below the start, hold nothing for
        // this scan: none of their blocks is read.
        let below = match end {
            Bound::Included(k) | Bound::Excluded(k) => {
                tables.partition_point(|t| t.meta.smallest.as_slice() <= k.as_slice())
            }
            Bound::Unbounded => tables.len(),
        };
        let first = match start {
            Bound::Included(k) | Bound::Excluded(k) => {
                tables.partition_point(|t| t.meta.largest.as_slice() < k.as_slice())
            }
            Bound::Unbounded => 0,
        };
        let table = below.checked_sub(1).filter(|&t| t >= first);
        let block = table.map(|t| {
            let last = tables[t].block_count().saturating_sub(1);
            match end {
                Bound::Included(k) | Bound::Excluded(k) => tables[t].seek_block(k, 0).min(last),
                Bound::Unbounded => last,
            }
        });
        RevSource::Tables {
            tables,
            first,
            table,
            block,
            buf: Vec::new(),
            fill_cache,
        }
    }

    /// Fetches more entries when the buffer ran dry (entries above `end` dropped).
    fn refill(&mut self, end: &Bound<Vec<u8>>) -> Result<()> {
        match self {
            RevSource::Mem {
                mem,
                buf,
                upper,
                lower,
                chunk: chunk_len,
                done,
            } => {
                if buf.is_empty() && !*done {
                    let bound = match &*upper {
                        Bound::Included(k) => Bound::Included(k),
                        Bound::Excluded(k) => Bound::Excluded(k),
                        Bound::Unbounded => Bound::Unbounded,
                    };
                    let low = match &*lower {
                        Bound::Included(k) => Bound::Included(k),
                        Bound::Excluded(k) => Bound::Excluded(k),
                        Bound::Unbounded => Bound::Unbounded,
                    };
                    let mut chunk = mem.chunk_rev(low, bound, *chunk_len);
                    *done = chunk.len() < *chunk_len;
                    *chunk_len = (*chunk_len * 2).min(MEM_CHUNK);
                    if let Some(last) = chunk.last() {
                        *upper = Bound::Excluded(MemKey {
                            key: last.key.clone(),
                            seq: last.seq,
                        });
                    }
                    chunk.reverse();
                    *buf = chunk;
                }
            }
            RevSource::Tables {
                tables,
                first,
                table,
                block,
                buf,
                fill_cache,
            } => {
                while buf.is_empty() {
                    let Some(t) = *table else { break };
                    match *block {
                        Some(b) if b < tables[t].block_count() => {
                            tables[t].block_entries(b, *fill_cache, buf)?;
                            buf.retain(|e| !above(&e.key, end));
                            *block = b.checked_sub(1);
                        }
                        _ => {
                            *table = t.checked_sub(1).filter(|t| *t >= *first);
                            *block = table.map(|t| tables[t].block_count().saturating_sub(1));
                        }
                    }
                }
            }
        }
        Ok(())
    }

    fn buf(&self) -> &Vec<Entry> {
        match self {
            RevSource::Mem { buf, .. } | RevSource::Tables { buf, .. } => buf,
        }
    }

    fn buf_mut(&mut self) -> &mut Vec<Entry> {
        match self {
            RevSource::Mem { buf, .. } | RevSource::Tables { buf, .. } => buf,
        }
    }
}

/// A scan over live keys from the high end down, at one snapshot; created by
/// `Db::scan_rev`. Like [`crate::DbIter`] it pins what it reads.
pub struct DbIterRev {
    /// The inputs, newest first.
    sources: Vec<RevSource>,
    /// Versions newer than this are invisible.
    snapshot: u64,
    /// The clock for TTLs, fixed at creation.
    now_ms: u64,
    /// Where the scan stops (the low end).
    start: Bound<Vec<u8>>,
    /// Where it starts (the high end).
    end: Bound<Vec<u8>>,
    /// Set once primed.
    primed: bool,
    /// Set after the low end or an error.
    done: bool,
}

impl DbIterRev {
    pub(crate) fn new(
        sources: Vec<RevSource>,
        snapshot: u64,
        now_ms: u64,
        start: Bound<Vec<u8>>,
        end: Bound<Vec<u8>>,
    ) -> Self {
        Self {
            sources,
            snapshot,
            now_ms,
            start,
            end,
            primed: false,
            done: false,
        }
    }

    /// The source holding the greatest current entry in internal order (the next in
    /// reverse order); ties go to the newer source.
    fn top(&self) -> Option<usize> {
        let mut best: Option<(usize, &Entry)> = None;
        for (i, s) in self.sources.iter().enumerate() {
            let Some(e) = s.buf().last() else { continue };
            if best.is_none_or(|(_, b)| cmp_internal(&e.key, e.seq, &b.key, b.seq).is_gt()) {
                best = Some((i, e));
            }
        }
        best.map(|(i, _)| i)
    }

    /// Takes the next entry in reverse internal order.
    fn pop(&mut self) -> Result<Option<Entry>> {
        if !self.primed {
            for s in &mut self.sources {
                s.refill(&self.end)?;
            }
            self.primed = true;
        }
        let Some(i) = self.top() else {
            return Ok(None);
        };
        let e = self.sources[i].buf_mut().pop().expect("top has an entry");
        self.sources[i].refill(&self.end)?;
        Ok(Some(e))
    }

    /// Whether the next entry has `key` (another version of the key being read).
    fn next_has_key(&self, key: &[u8]) -> bool {
        self.top()
            .and_then(|i| self.sources[i].buf().last())
            .is_some_and(|e| e.key == key)
    }

    fn step(&mut self) -> Result<Option<KeyValue>> {
        loop {
            let Some(first) = self.pop()? else {
                return Ok(None);
            };
            let below_start = match &self.start {
                Bound::Included(s) => first.key < *s,
                Bound::Excluded(s) => first.key <= *s,
                Bound::Unbounded => false,
            };
            if below_start {
                return Ok(None);
            }
            // A key's versions come oldest first: the last one the snapshot may see is
            // the one it reads.
            let key = first.key.clone();
            let mut seen = (first.seq <= self.snapshot).then_some(first);
            while self.next_has_key(&key) {
                let e = self.pop()?.expect("checked");
                if e.seq <= self.snapshot {
                    seen = Some(e);
                }
            }
            if let Some(e) = seen
                && !e.is_deletion_at(self.now_ms)
            {
                let expires_at_ms = (e.kind == Kind::PutExpiring).then_some(e.expire_at_ms);
                return Ok(Some(KeyValue {
                    key: e.key,
                    value: e.value,
                    expires_at_ms,
                }));
            }
        }
    }
}

impl Iterator for DbIterRev {
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

#[cfg(test)]
mod tests {
    use crate::{Db, Options};

    /// A reverse read of one key range reads no block of a table that lies wholly
    /// below it, and a memtable walked backwards stops at the range's low end (a bounded
    /// read of the high end of one collection: `RPOP`, `ZREVRANGE key 0 0`).
    #[test]
    fn reverse_reads_skip_tables_below_the_range_and_respect_the_low_end() {
        let dir = tempfile::tempdir().unwrap();
        let opts = Options {
            l0_compaction_trigger: 100, // keep the tables apart, in level 0
            l0_slowdown_trigger: 100,
            l0_stop_trigger: 100,
            ..Options::default()
        };
        let db = Db::open(dir.path(), opts).unwrap();
        for prefix in ["a", "b"] {
            for i in 0..2000u32 {
                db.put(format!("{prefix}:{i:05}").as_bytes(), &[b'v'; 40])
                    .unwrap();
            }
            db.flush().unwrap();
        }
        assert_eq!(db.stats().levels[0].tables, 2);
        let blocks = |db: &Db| {
            let s = db.stats();
            s.block_cache_hits + s.block_cache_misses
        };
        let before = blocks(&db);
        let (lo, hi) = (b"b:".as_slice(), b"b;".as_slice());
        let last = db.scan_rev(lo..hi).unwrap().next().unwrap().unwrap();
        assert_eq!(last.key, b"b:01999");
        assert_eq!(blocks(&db) - before, 1, "only the b table's last block");
        // The memtable, walked backwards, from a bounded range in its middle, with
        // both kinds of low bound.
        for i in 0..100u32 {
            db.put(format!("m:{i:03}").as_bytes(), b"x").unwrap();
        }
        let keys = |lo: std::ops::Bound<&[u8]>| -> Vec<String> {
            db.scan_rev((lo, std::ops::Bound::Excluded(b"m:020".as_slice())))
                .unwrap()
                .map(|kv| String::from_utf8(kv.unwrap().key).unwrap())
                .collect()
        };
        let inclusive = keys(std::ops::Bound::Included(b"m:010"));
        assert_eq!(inclusive.len(), 10);
        assert_eq!((&inclusive[0][..], &inclusive[9][..]), ("m:019", "m:010"));
        let exclusive = keys(std::ops::Bound::Excluded(b"m:010"));
        assert_eq!(exclusive.len(), 9);
        assert_eq!(exclusive[8], "m:011");
    }

    /// The last ten keys of a big store cost a few block reads, not a pass over it.
    #[test]
    fn reading_the_high_end_reads_only_the_high_end() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path(), Options::default()).unwrap();
        let mut batch = crate::WriteBatch::new();
        for i in 0..100_000u32 {
            batch.put(format!("key:{i:08}").as_bytes(), &[b'v'; 40]);
            if batch.len() == 1000 {
                db.write(&batch).unwrap();
                batch.clear();
            }
        }
        db.compact().unwrap();
        db.put(b"key:00099999", b"newest").unwrap(); // a memtable version too
        let blocks = |db: &Db| {
            let s = db.stats();
            s.block_cache_hits + s.block_cache_misses
        };
        let before = blocks(&db);
        let got: Vec<_> = db
            .scan_rev(..)
            .unwrap()
            .take(10)
            .map(|kv| kv.unwrap())
            .collect();
        let read = blocks(&db) - before;
        assert_eq!(got[0].key, b"key:00099999");
        assert_eq!(got[0].value, b"newest");
        assert_eq!(got[9].key, b"key:00099990");
        assert!(read <= 4, "{read} blocks read for 10 keys");
        // A bounded range from the middle.
        let lo = b"key:00050000".as_slice();
        let hi = b"key:00050003".as_slice();
        let keys: Vec<_> = db
            .scan_rev(lo..hi)
            .unwrap()
            .map(|kv| String::from_utf8(kv.unwrap().key).unwrap())
            .collect();
        assert_eq!(keys, ["key:00050002", "key:00050001", "key:00050000"]);
    }
}
