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
use crate::key_filter::KeyFilter;

/// A position in a memtable (where a chunk starts): user key ascending, newest
/// version first.
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

/// Key bytes up to this length live in the skip-list node itself.
const INLINE_KEY_BYTES: usize = 30;

/// A key's bytes as a skip-list node stores them: inline when short (most keys), so a
/// search compares without following a second pointer, and an insert allocates once
/// less; on the heap otherwise.
#[derive(Debug)]
enum NodeBytes {
    /// Length and bytes.
    Inline(u8, [u8; INLINE_KEY_BYTES]),
    /// A long key.
    Heap(Box<[u8]>),
}

impl NodeBytes {
    fn new(key: &[u8]) -> NodeBytes {
        if key.len() <= INLINE_KEY_BYTES {
            let mut buf = [0u8; INLINE_KEY_BYTES];
            buf[..key.len()].copy_from_slice(key);
            NodeBytes::Inline(key.len() as u8, buf)
        } else {
            NodeBytes::Heap(key.into())
        }
    }

    fn as_slice(&self) -> &[u8] {
        match self {
            NodeBytes::Inline(len, buf) => &buf[..*len as usize],
            NodeBytes::Heap(b) => b,
        }
    }
}

/// The skip list's key: [`MemKey`]'s order, with the bytes inline when short.
#[derive(Debug)]
struct NodeKey {
    /// The user key.
    key: NodeBytes,
    /// Sequence number of this version.
    seq: u64,
}

impl NodeKey {
    fn new(key: &[u8], seq: u64) -> NodeKey {
        NodeKey {
            key: NodeBytes::new(key),
            seq,
        }
    }

    fn of(k: &MemKey) -> NodeKey {
        NodeKey::new(&k.key, k.seq)
    }
}

impl Ord for NodeKey {
    fn cmp(&self, other: &Self) -> Ordering {
        cmp_internal(
            self.key.as_slice(),
            self.seq,
            other.key.as_slice(),
            other.seq,
        )
    }
}

impl PartialOrd for NodeKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for NodeKey {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}

impl Eq for NodeKey {}

/// The bound `b` as a skip-list key.
fn node_bound(b: Bound<&MemKey>) -> Bound<NodeKey> {
    match b {
        Bound::Included(k) => Bound::Included(NodeKey::of(k)),
        Bound::Excluded(k) => Bound::Excluded(NodeKey::of(k)),
        Bound::Unbounded => Bound::Unbounded,
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
    map: SkipMap<NodeKey, MemValue>,
    /// Approximate bytes used (keys + values + per-entry overhead); drives rotation.
    size_bytes: AtomicUsize,
    /// Id of the log segment holding this memtable's writes; once the memtable is in an
    /// SSTable, segments below the next memtable's id can be deleted.
    pub wal_segment_id: u64,
    /// Highest sequence number inserted (0 if empty).
    max_seq: AtomicU64,
    /// Which user keys may be here: lets reads skip the skip list.
    filter: KeyFilter,
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
            filter: KeyFilter::new(),
        }
    }

    /// Inserts one version. Callers insert under the writer lock, in sequence order.
    pub(crate) fn insert(&self, key: &[u8], seq: u64, kind: Kind, expire_at_ms: u64, value: &[u8]) {
        let charge = key.len() + value.len() + ENTRY_OVERHEAD_BYTES;
        self.filter.insert(key);
        self.map.insert(
            NodeKey::new(key, seq),
            MemValue {
                kind,
                expire_at_ms,
                value: value.to_vec(),
            },
        );
        self.size_bytes.fetch_add(charge, AtomicOrdering::Relaxed);
        self.max_seq.fetch_max(seq, AtomicOrdering::Release);
    }

    /// False when `key` surely has no version here.
    pub(crate) fn may_contain(&self, key: &[u8]) -> bool {
        self.filter.may_contain(key)
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
        if !self.filter.may_contain(key) {
            return None;
        }
        // A short key's probe lives on the stack.
        let probe = NodeKey::new(key, snapshot);
        let found = self.map.lower_bound(Bound::Included(&probe))?;
        (found.key().key.as_slice() == key).then(|| to_entry(found.key(), found.value()))
    }

    /// Up to `limit` versions starting at `from` (inclusive or exclusive), in internal
    /// order. Iterators refill in chunks so they own no borrow of the skip list.
    pub(crate) fn chunk(&self, from: Bound<&MemKey>, limit: usize) -> Vec<Entry> {
        self.map
            .range((node_bound(from), Bound::Unbounded))
            .take(limit)
            .map(|e| to_entry(e.key(), e.value()))
            .collect()
    }
}

impl Memtable {
    /// Up to `limit` versions before `upper` (inclusive or exclusive), in reverse
    /// internal order (key descending, oldest version first), none below `lower`.
    pub(crate) fn chunk_rev(
        &self,
        lower: Bound<&MemKey>,
        upper: Bound<&MemKey>,
        limit: usize,
    ) -> Vec<Entry> {
        self.map
            .range((node_bound(lower), node_bound(upper)))
            .rev()
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
        for e in self
            .map
            .range((node_bound(from), Bound::Unbounded))
            .take(limit)
        {
            let (k, v) = (e.key(), e.value());
            let key = k.key.as_slice();
            if out.entries.is_empty() {
                out.bytes
                    .reserve(limit.min(64) * (key.len() + v.value.len()));
                out.entries.reserve(limit.min(64));
            }
            out.entries.push((
                out.bytes.len(),
                key.len(),
                v.value.len(),
                k.seq,
                v.kind,
                v.expire_at_ms,
            ));
            out.bytes.extend_from_slice(key);
            out.bytes.extend_from_slice(&v.value);
        }
        out.entries.len()
    }
}

fn to_entry(k: &NodeKey, v: &MemValue) -> Entry {
    Entry {
        key: k.key.as_slice().to_vec(),
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

    #[test]
    fn short_inline_and_long_heap_keys_order_and_read_alike() {
        let m = Memtable::new(1);
        let keys: Vec<Vec<u8>> = [0, 1, 29, 30, 31, 45, 200]
            .iter()
            .map(|&n| vec![b'k'; n])
            .collect();
        for (i, k) in keys.iter().enumerate().rev() {
            m.insert(k, i as u64 + 1, Kind::Put, 0, k);
        }
        for (i, k) in keys.iter().enumerate() {
            let e = m.get(k, 99).unwrap();
            assert_eq!((&e.key, e.seq, &e.value), (k, i as u64 + 1, k));
        }
        let all: Vec<Vec<u8>> = m
            .chunk(Bound::Unbounded, 100)
            .into_iter()
            .map(|e| e.key)
            .collect();
        assert_eq!(all, keys, "byte order across inline and heap keys");
        let mut chunk = MemChunk::default();
        let from = MemKey {
            key: vec![b'k'; 30],
            seq: 0, // after every version of that key
        };
        assert_eq!(m.chunk_into(Bound::Excluded(&from), 2, &mut chunk), 2);
        assert_eq!(chunk.front().unwrap().key, &keys[4][..]);
        chunk.pop_front();
        assert_eq!(chunk.last(), Some((&keys[5][..], 6)));
    }
}
