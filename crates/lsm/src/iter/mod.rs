//! Ordered iteration: the merging iterator behind range scans and compaction.
//!
//! Why it exists: a key's versions are spread over the memtable, the immutable memtables
//! and the SSTables of every level. A k-way merge (a binary heap of sources, each sorted
//! by (key, sequence descending)) yields all versions in one global order; the user-facing
//! [`DbIter`] then keeps, per key, the newest version visible at its snapshot and hides
//! tombstones and expired values. Compaction uses the same merge but keeps more versions.

mod merge;

use std::ops::Bound;

use crate::error::Result;

pub(crate) use merge::{MergeIter, Source};

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
    /// Last user key emitted or skipped (valid when `has_last`): older versions of it
    /// are skipped. A reused buffer.
    last_key: Vec<u8>,
    /// Whether `last_key` holds a key.
    has_last: bool,
    /// The merge's current entry was consumed; advance before the next look (lazily,
    /// so a scan that takes one entry does not pay for positioning on a second).
    consumed: bool,
    /// The merge's current entry is the live pair [`DbIter::peek`] returns.
    ready: bool,
    /// Set after the end bound or an error.
    done: bool,
}

/// A live key-value pair borrowed from a scan ([`DbIter::peek`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyValueRef<'a> {
    /// The key.
    pub key: &'a [u8],
    /// The value.
    pub value: &'a [u8],
    /// Expiry in unix milliseconds, if the key has a TTL.
    pub expires_at_ms: Option<u64>,
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
            last_key: Vec::new(),
            has_last: false,
            consumed: false,
            ready: false,
            done: false,
        }
    }

    /// Moves to the next live entry in range, leaving it current in the merge;
    /// `false` at the end.
    fn position(&mut self) -> Result<bool> {
        loop {
            if self.consumed {
                self.merge.advance()?;
            }
            let Some(e) = self.merge.current()? else {
                return Ok(false);
            };
            self.consumed = true;
            if e.seq > self.snapshot || (self.has_last && self.last_key == e.key) {
                continue;
            }
            let before_start = match &self.start {
                Bound::Included(s) => e.key < s.as_slice(),
                Bound::Excluded(s) => e.key <= s.as_slice(),
                Bound::Unbounded => false,
            };
            let past_end = match &self.end {
                Bound::Included(s) => e.key > s.as_slice(),
                Bound::Excluded(s) => e.key >= s.as_slice(),
                Bound::Unbounded => false,
            };
            if past_end {
                return Ok(false);
            }
            self.last_key.clear();
            self.last_key.extend_from_slice(e.key);
            self.has_last = true;
            if before_start || e.is_deletion_at(self.now_ms) {
                continue;
            }
            return Ok(true);
        }
    }

    /// The next live key-value pair, borrowed from the scan's buffers (no copy), without
    /// moving past it: [`DbIter::skip`] does. The same pair until then; `None` at the end
    /// (or after an error, which is returned once).
    pub fn peek(&mut self) -> Result<Option<KeyValueRef<'_>>> {
        if self.done {
            return Ok(None);
        }
        if !self.ready {
            match self.position() {
                Ok(true) => self.ready = true,
                Ok(false) => {
                    self.done = true;
                    return Ok(None);
                }
                Err(err) => {
                    self.done = true;
                    return Err(err);
                }
            }
        }
        let e = self.merge.current()?.expect("positioned on a live entry");
        let expires_at_ms = (e.kind == crate::codec::Kind::PutExpiring).then_some(e.expire_at_ms);
        Ok(Some(KeyValueRef {
            key: e.key,
            value: e.value,
            expires_at_ms,
        }))
    }

    /// Moves past the pair [`DbIter::peek`] returned.
    pub fn skip(&mut self) {
        self.ready = false;
    }

    fn step(&mut self) -> Result<Option<KeyValue>> {
        let Some(kv) = self.peek()? else {
            return Ok(None);
        };
        let kv = KeyValue {
            key: kv.key.to_vec(),
            value: kv.value.to_vec(),
            expires_at_ms: kv.expires_at_ms,
        };
        self.skip();
        Ok(Some(kv))
    }
}

impl Iterator for DbIter {
    type Item = Result<KeyValue>;

    fn next(&mut self) -> Option<Self::Item> {
        self.step().transpose()
    }
}

#[cfg(test)]
mod tests {
    use crate::{Db, Options};

    fn keys(iter: crate::DbIter) -> Vec<String> {
        iter.map(|kv| String::from_utf8(kv.unwrap().key).unwrap())
            .collect()
    }

    /// Level-0 tables with interleaved keys, each lacking the others' keys, and a newest
    /// one with a second version of one key: a seek to that key reads one block (the
    /// tables that lack it, and the one with its older version, stay unpositioned), and
    /// scans from present and absent keys still merge every table.
    #[test]
    fn a_seek_reads_only_the_newest_table_holding_its_key_and_scans_merge_them_all() {
        let dir = tempfile::tempdir().unwrap();
        let opts = Options {
            l0_compaction_trigger: 100, // keep the three tables apart
            l0_slowdown_trigger: 100,
            l0_stop_trigger: 100,
            ..Options::default()
        };
        let db = Db::open(dir.path(), opts.clone()).unwrap();
        for first in 1..=3 {
            for k in (first..=9).step_by(3) {
                db.put(format!("k{k}").as_bytes(), b"v").unwrap();
            }
            db.flush().unwrap();
        }
        // A fourth table with a newer version of k5 (the second holds the older one).
        db.put(b"k5", b"new").unwrap();
        db.flush().unwrap();
        drop(db);
        let db = Db::open(dir.path(), opts).unwrap(); // a cold cache
        assert_eq!(db.stats().levels[0].tables, 4);
        let misses = || db.stats().block_cache_misses;
        let before = misses();
        let first = db.scan(&b"k5"[..]..).unwrap().next().unwrap().unwrap();
        assert_eq!(
            (&first.key[..], &first.value[..]),
            (&b"k5"[..], &b"new"[..])
        );
        assert_eq!(
            misses() - before,
            1,
            "only the newest table holding k5 was read"
        );
        assert_eq!(
            keys(db.scan(&b"k5"[..]..).unwrap()),
            ["k5", "k6", "k7", "k8", "k9"]
        );
        assert_eq!(
            keys(db.scan(&b"k55"[..]..).unwrap()),
            ["k6", "k7", "k8", "k9"]
        );
        assert_eq!(keys(db.scan(&b"k0"[..]..&b"k3"[..]).unwrap()), ["k1", "k2"]);
        assert_eq!(keys(db.scan(..).unwrap()).len(), 9);
        let from_k4: Vec<_> = db
            .scan(&b"k4"[..]..)
            .unwrap()
            .map(|kv| kv.unwrap())
            .collect();
        assert_eq!(from_k4[1].value, b"new", "the newest version, once");
        assert_eq!(from_k4.len(), 6);
    }
}
