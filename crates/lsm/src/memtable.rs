//! The memtable: step 2 of the write path (the book's "memory cache").
//!
//! Why it exists: writes land in a sorted in-memory structure after the commit log, so
//! they cost no random disk I/O; when it reaches `memtable_size_bytes` it becomes
//! immutable and a background thread writes it out as one sorted SSTable.
//!
//! It is a lock-free skip list (crossbeam) keyed by (user key, sequence number
//! descending): readers never block writers, and a reader at snapshot `s` simply skips
//! versions newer than `s`.

use std::cmp::Ordering;
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering as AtomicOrdering};

use crossbeam_skiplist::SkipMap;

use crate::codec::{Entry, EntryRef, Kind, cmp_internal};

/// Skip-list key: user key ascending, newest version first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct MemKey {
    /// The user key.
    pub key: Vec<u8>,
    /// Sequence number of this version.
    pub seq: u64,
}

impl Ord for MemKey {
    fn cmp(&self, other: &Self) -> Ordering {
        cmp_internal(&self.key, self.seq, &other.key, other.seq)
    }
}

impl PartialOrd for MemKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Skip-list value.
#[derive(Debug)]
pub(crate) struct MemValue {
    /// Put / expiring put / tombstone.
    pub kind: Kind,
    /// Expiry (0 unless expiring).
    pub expire_at_ms: u64,
    /// The value bytes.
    pub value: Vec<u8>,
}

/// A sorted, concurrent, append-only table of versions.
pub(crate) struct Memtable {
    /// The versions.
    map: SkipMap<MemKey, MemValue>,
    /// Approximate bytes used (keys + values + per-entry overhead); drives rotation.
    size_bytes: AtomicUsize,
    /// Id of the log segment holding this memtable's writes; once the memtable is in an
    /// SSTable, segments below the next memtable's id can be deleted.
    pub wal_segment_id: u64,
    /// Highest sequence number inserted (0 if empty).
    max_seq: AtomicU64,
}

/// Per-entry bookkeeping charged to the size (skip-list node, vec headers).
const ENTRY_OVERHEAD_BYTES: usize = 64;

impl Memtable {
    /// An empty memtable backed by log segment `wal_segment_id`.
    pub(crate) fn new(wal_segment_id: u64) -> Self {
        Self {
            map: SkipMap::new(),
            size_bytes: AtomicUsize::new(0),
            wal_segment_id,
            max_seq: AtomicU64::new(0),
        }
    }

    /// Inserts one version. Callers insert under the writer lock, in sequence order.
    pub(crate) fn insert(&self, key: &[u8], seq: u64, kind: Kind, expire_at_ms: u64, value: &[u8]) {
        let charge = key.len() + value.len() + ENTRY_OVERHEAD_BYTES;
        self.map.insert(
            MemKey {
                key: key.to_vec(),
                seq,
            },
            MemValue {
                kind,
                expire_at_ms,
                value: value.to_vec(),
            },
        );
        self.size_bytes.fetch_add(charge, AtomicOrdering::Relaxed);
        self.max_seq.fetch_max(seq, AtomicOrdering::Release);
    }

    /// Approximate memory used.
    pub(crate) fn size_bytes(&self) -> usize {
        self.size_bytes.load(AtomicOrdering::Relaxed)
    }

    /// True when nothing was inserted.
    pub(crate) fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Number of versions.
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// The newest version of `key` with `seq <= snapshot`.
    pub(crate) fn get(&self, key: &[u8], snapshot: u64) -> Option<Entry> {
        // `MemKey` owns its key, so the probe allocates once; cheap next to a disk read.
        let probe = MemKey {
            key: key.to_vec(),
            seq: snapshot,
        };
        let found = self.map.lower_bound(Bound::Included(&probe))?;
        (found.key().key == key).then(|| to_entry(found.key(), found.value()))
    }

    /// Up to `limit` versions starting at `from` (inclusive or exclusive), in internal
    /// order. Iterators refill in chunks so they own no borrow of the skip list.
    pub(crate) fn chunk(&self, from: Bound<&MemKey>, limit: usize) -> Vec<Entry> {
        self.map
            .range((from, Bound::Unbounded))
            .take(limit)
            .map(|e| to_entry(e.key(), e.value()))
            .collect()
    }
}

/// Versions copied out of a memtable into one reused buffer: what a scan reads the
/// memtable through, with no allocation per entry (the buffers are kept across refills).
#[derive(Default)]
pub(crate) struct MemChunk {
    /// Keys and values back to back.
    bytes: Vec<u8>,
    /// Per entry: key start, key length, value length, sequence number, kind, expiry.
    entries: Vec<(usize, usize, usize, u64, Kind, u64)>,
    /// Index of the current entry.
    pos: usize,
}

impl MemChunk {
    /// The current entry.
    pub(crate) fn front(&self) -> Option<EntryRef<'_>> {
        let &(at, klen, vlen, seq, kind, expire_at_ms) = self.entries.get(self.pos)?;
        Some(EntryRef {
            key: &self.bytes[at..at + klen],
            seq,
            kind,
            expire_at_ms,
            value: &self.bytes[at + klen..at + klen + vlen],
        })
    }

    /// Moves past the current entry.
    pub(crate) fn pop_front(&mut self) {
        self.pos = (self.pos + 1).min(self.entries.len());
    }

    /// True when every entry was consumed.
    pub(crate) fn is_empty(&self) -> bool {
        self.pos == self.entries.len()
    }

    /// The last entry's key and sequence number.
    pub(crate) fn last(&self) -> Option<(&[u8], u64)> {
        let &(at, klen, _, seq, _, _) = self.entries.last()?;
        Some((&self.bytes[at..at + klen], seq))
    }
}

impl Memtable {
    /// Replaces `out` with up to `limit` versions starting at `from`, in internal
    /// order; returns how many.
    pub(crate) fn chunk_into(
        &self,
        from: Bound<&MemKey>,
        limit: usize,
        out: &mut MemChunk,
    ) -> usize {
        out.bytes.clear();
        out.entries.clear();
        out.pos = 0;
        for e in self.map.range((from, Bound::Unbounded)).take(limit) {
            let (k, v) = (e.key(), e.value());
            out.entries.push((
                out.bytes.len(),
                k.key.len(),
                v.value.len(),
                k.seq,
                v.kind,
                v.expire_at_ms,
            ));
            out.bytes.extend_from_slice(&k.key);
            out.bytes.extend_from_slice(&v.value);
        }
        out.entries.len()
    }
}

fn to_entry(k: &MemKey, v: &MemValue) -> Entry {
    Entry {
        key: k.key.clone(),
        seq: k.seq,
        kind: v.kind,
        expire_at_ms: v.expire_at_ms,
        value: v.value.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_respects_snapshots() {
        let m = Memtable::new(1);
        m.insert(b"a", 1, Kind::Put, 0, b"v1");
        m.insert(b"a", 3, Kind::Put, 0, b"v3");
        m.insert(b"b", 2, Kind::Delete, 0, b"");
        assert_eq!(m.get(b"a", 2).unwrap().value, b"v1");
        assert_eq!(m.get(b"a", 9).unwrap().value, b"v3");
        assert!(m.get(b"a", 0).is_none());
        assert_eq!(m.get(b"b", 9).unwrap().kind, Kind::Delete);
        assert!(m.get(b"c", 9).is_none());
    }
}
