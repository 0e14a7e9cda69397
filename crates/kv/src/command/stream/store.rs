//! How a stream lies in a collection: its fields in `meta.extra`, its
//! entries and consumer groups as subkeys, so every change is a few small
//! engine writes (durable on the lsm engine like any write).
//!
//! ```text
//!  meta.extra   last id | first id | max deleted id | entries added | groups
//!               | tail node | entries in tail node            (80 bytes)
//!  e <id>                         → node, field/value pairs   (entries)
//!  g <group>                      → last delivered id, entries read,
//!                                   pending count, consumer count
//!  p <len><group> <id>            → owner, delivery time, delivery count
//!  c <len><group> <consumer>      → seen time, pending count
//!  q <len><group> <len><consumer> <id> → ()   (the consumer's own PEL)
//! ```
//!
//! Ids are 16 big-endian bytes and names are length-prefixed, so each
//! namespace comes back from the engine in Redis's order (ids ascending,
//! groups and consumers by name). Entries carry the number of the Redis
//! radix-tree *node* they would be in (a node holds 100 entries), so
//! approximate trimming (`MAXLEN ~`) removes whole nodes exactly as Redis
//! does.

use std::ops::Bound;

use bytes::{BufMut, Bytes, BytesMut};

use super::id::{ID_BYTES, Id};
use crate::command::{engine_error, key_error};
use crate::engine::SubRange;
use crate::keyspace::Keyspace;
use crate::keyspace::collection::Collection;
use crate::protocol::Frame;
use crate::value::Kind;

/// Entries per radix-tree node (Redis's `stream-node-max-entries` default).
pub(super) const NODE_ENTRIES: u64 = 100;

/// Subkeys read per engine call when paging through a namespace.
pub(super) const PAGE: usize = 512;

const ENTRY: u8 = b'e';

/// A stream's own fields (kept in `meta.extra`).
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct StreamMeta {
    /// The last id generated (entries may have been deleted since).
    pub last_id: Id,
    /// The first entry's id when last recorded (`0-0` when empty).
    pub first_id: Id,
    /// The largest id ever deleted by `XDEL`.
    pub max_deleted: Id,
    /// Entries ever added.
    pub entries_added: u64,
    /// Number of consumer groups.
    pub groups: u64,
    /// The node new entries go to.
    pub tail_node: u64,
    /// Entries ever added to the tail node.
    pub tail_count: u64,
}

impl StreamMeta {
    fn encode(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(80);
        for id in [self.last_id, self.first_id, self.max_deleted] {
            out.put_slice(&id.to_bytes());
        }
        for n in [
            self.entries_added,
            self.groups,
            self.tail_node,
            self.tail_count,
        ] {
            out.put_u64(n);
        }
        out.freeze()
    }

    fn decode(bytes: &[u8]) -> StreamMeta {
        let id =
            |at: usize| Id::from_bytes(bytes.get(at..).unwrap_or_default()).unwrap_or_default();
        let n = |at: usize| {
            bytes
                .get(at..at + 8)
                .and_then(|b| b.try_into().ok())
                .map_or(0, u64::from_be_bytes)
        };
        StreamMeta {
            last_id: id(0),
            first_id: id(16),
            max_deleted: id(32),
            entries_added: n(48),
            groups: n(56),
            tail_node: n(64),
            tail_count: n(72),
        }
    }
}

/// One entry.
#[derive(Debug, Clone)]
pub(super) struct Entry {
    /// Its id.
    pub id: Id,
    /// The node it belongs to (see the module docs).
    pub node: u64,
    /// Field, value, field, value...
    pub fields: Vec<Bytes>,
}

impl Entry {
    fn encode(node: u64, fields: &[Bytes]) -> Vec<u8> {
        let size: usize = fields.iter().map(|f| f.len() + 4).sum();
        let mut out = Vec::with_capacity(12 + size);
        out.put_u64(node);
        out.put_u32(fields.len() as u32);
        for field in fields {
            out.put_u32(field.len() as u32);
            out.put_slice(field);
        }
        out
    }

    fn decode(id: Id, value: &Bytes) -> Entry {
        let mut fields = Vec::new();
        let node = value
            .get(..8)
            .and_then(|b| b.try_into().ok())
            .map_or(0, u64::from_be_bytes);
        let mut at = 12;
        while let Some(len) = value.get(at..at + 4) {
            let len = u32::from_be_bytes(len.try_into().unwrap_or_default()) as usize;
            let end = (at + 4 + len).min(value.len());
            fields.push(value.slice(at + 4..end));
            at = end;
        }
        Entry { id, node, fields }
    }

    /// The reply form: `[id, [field, value, ...]]`.
    pub fn frame(&self) -> Frame {
        Frame::Array(vec![
            self.id.frame(),
            Frame::Array(self.fields.iter().cloned().map(Frame::Bulk).collect()),
        ])
    }
}

pub(super) fn u64_at(bytes: &[u8], at: usize) -> u64 {
    bytes
        .get(at..at + 8)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u64::from_be_bytes)
}

fn entry_key(id: Id) -> [u8; 1 + ID_BYTES] {
    let mut out = [ENTRY; 1 + ID_BYTES];
    out[1..].copy_from_slice(&id.to_bytes());
    out
}

/// The subkeys bounding ids `lo..=hi` under `prefix`.
fn id_bounds(prefix: &[u8], lo: Id, hi: Id) -> (Vec<u8>, Vec<u8>) {
    let mut lower = prefix.to_vec();
    lower.put_slice(&lo.to_bytes());
    let mut upper = prefix.to_vec();
    upper.put_slice(&hi.to_bytes());
    (lower, upper)
}

/// Bounds covering every subkey that starts with `prefix`.
pub(super) fn prefix_bounds(prefix: &[u8]) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    let upper = crate::engine::prefix_end(prefix).map_or(Bound::Unbounded, Bound::Excluded);
    (Bound::Included(prefix.to_vec()), upper)
}

pub(super) fn as_ref(bound: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    match bound {
        Bound::Included(b) => Bound::Included(b.as_slice()),
        Bound::Excluded(b) => Bound::Excluded(b.as_slice()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

/// A stream being read or changed (see the module docs).
pub(super) struct Stream {
    /// The collection (key, version, length).
    pub coll: Collection,
    /// The stream's fields.
    pub meta: StreamMeta,
}

impl Stream {
    fn of(coll: Collection) -> Stream {
        let meta = StreamMeta::decode(&coll.meta.extra);
        Stream { coll, meta }
    }

    /// The stream at `key` for a read command (counts a hit or miss).
    pub fn read(ks: &mut Keyspace, key: &[u8], now_ms: u64) -> Result<Option<Stream>, Frame> {
        let found = ks.read_collection(key, Kind::Stream, now_ms);
        Ok(found.map_err(key_error)?.map(Stream::of))
    }

    /// The stream at `key` for a write command that needs it to exist.
    pub fn existing(ks: &mut Keyspace, key: &[u8], now_ms: u64) -> Result<Option<Stream>, Frame> {
        let found = ks.existing_collection(key, Kind::Stream, now_ms);
        Ok(found.map_err(key_error)?.map(Stream::of))
    }

    /// The stream at `key`, created empty if absent.
    pub fn create(ks: &mut Keyspace, key: &Bytes, now_ms: u64) -> Result<Stream, Frame> {
        let coll = ks.write_collection(key, Kind::Stream, now_ms);
        Ok(Stream::of(coll.map_err(key_error)?))
    }

    /// Number of entries.
    pub fn len(&self) -> u64 {
        self.coll.meta.len
    }

    /// Writes the stream's fields back.
    pub fn save(&mut self, ks: &mut Keyspace) -> Result<(), Frame> {
        self.coll.meta.extra = self.meta.encode().into();
        ks.save_collection(&self.coll).map_err(engine_error)?;
        Ok(())
    }

    /// Subkeys within the bounds, in order (or reverse), at most `limit`.
    pub fn page(
        &self,
        ks: &mut Keyspace,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
        reverse: bool,
        limit: usize,
    ) -> Result<Vec<(Bytes, Bytes)>, Frame> {
        let mut out = Vec::new();
        let range = SubRange {
            lower,
            upper,
            reverse,
            limit,
        };
        ks.sub_range(&self.coll, &range, &mut out)
            .map_err(engine_error)?;
        Ok(out)
    }

    /// The subkeys `prefix + id` with ids in `lo..=hi` (a namespace keyed
    /// by id: entries, a pending list), at most `limit`.
    pub(super) fn by_id(
        &self,
        ks: &mut Keyspace,
        prefix: &[u8],
        (lo, hi): (Id, Id),
        reverse: bool,
        limit: usize,
    ) -> Result<Vec<(Id, Bytes)>, Frame> {
        if lo > hi || limit == 0 {
            return Ok(Vec::new());
        }
        let (lower, upper) = id_bounds(prefix, lo, hi);
        let range = (Bound::Included(&lower[..]), Bound::Included(&upper[..]));
        let page = self.page(ks, range.0, range.1, reverse, limit)?;
        Ok(page
            .into_iter()
            .filter_map(|(sub, value)| Some((Id::from_bytes(&sub[prefix.len()..])?, value)))
            .collect())
    }

    // ---- entries ----

    /// Entries with ids in `lo..=hi`, ascending (or descending), at most
    /// `limit` (which also bounds this read; callers page on).
    pub fn entries(
        &self,
        ks: &mut Keyspace,
        lo: Id,
        hi: Id,
        reverse: bool,
        limit: usize,
    ) -> Result<Vec<Entry>, Frame> {
        let page = self.by_id(ks, &[ENTRY], (lo, hi), reverse, limit)?;
        Ok(page
            .into_iter()
            .map(|(id, value)| Entry::decode(id, &value))
            .collect())
    }

    /// Calls `f` on each entry in `lo..=hi` (descending with `reverse`)
    /// until it returns `false` or `count` entries were seen (`0` = no
    /// limit), reading in pages so memory stays bounded by what `f` keeps.
    pub fn each_entry(
        &self,
        ks: &mut Keyspace,
        (mut lo, mut hi): (Id, Id),
        reverse: bool,
        count: usize,
        mut f: impl FnMut(&mut Keyspace, Entry) -> Result<bool, Frame>,
    ) -> Result<(), Frame> {
        let mut left = if count == 0 { usize::MAX } else { count };
        while left > 0 && lo <= hi {
            let page = self.entries(ks, lo, hi, reverse, left.min(PAGE))?;
            let full = page.len() == left.min(PAGE);
            let Some(last) = page.last().map(|e| e.id) else {
                return Ok(());
            };
            left -= page.len();
            for entry in page {
                if !f(ks, entry)? {
                    return Ok(());
                }
            }
            if !full {
                return Ok(());
            }
            if reverse {
                match last.prev() {
                    Some(prev) => hi = prev,
                    None => return Ok(()),
                }
            } else {
                match last.next() {
                    Some(next) => lo = next,
                    None => return Ok(()),
                }
            }
        }
        Ok(())
    }

    /// One entry.
    pub fn entry(&self, ks: &mut Keyspace, id: Id) -> Result<Option<Entry>, Frame> {
        let value = ks
            .sub_get(&self.coll, &entry_key(id))
            .map_err(engine_error)?;
        Ok(value.map(|v| Entry::decode(id, &v)))
    }

    /// The first (or, with `last`, the last) entry.
    pub fn edge(&self, ks: &mut Keyspace, last: bool) -> Result<Option<Entry>, Frame> {
        Ok(self.entries(ks, Id::MIN, Id::MAX, last, 1)?.pop())
    }

    /// Appends an entry with `id` (greater than every id so far).
    pub fn append(&mut self, ks: &mut Keyspace, id: Id, fields: &[Bytes]) -> Result<(), Frame> {
        let tail_alive = self.meta.tail_count < NODE_ENTRIES
            && self.len() > 0
            && self
                .edge(ks, true)?
                .is_some_and(|e| e.node == self.meta.tail_node);
        if !tail_alive {
            self.meta.tail_node += 1;
            self.meta.tail_count = 0;
        }
        self.meta.tail_count += 1;
        let value = Entry::encode(self.meta.tail_node, fields);
        ks.sub_put(&self.coll, &entry_key(id), &value)
            .map_err(engine_error)?;
        if self.len() == 0 {
            self.meta.first_id = id;
        }
        self.coll.meta.len += 1;
        self.meta.last_id = id;
        self.meta.entries_added += 1;
        Ok(())
    }

    /// Deletes an entry; whether it existed. Keeps the length (not the
    /// first id: callers fix it once with [`Stream::refresh_first_id`]).
    pub fn remove_entry(&mut self, ks: &mut Keyspace, id: Id) -> Result<bool, Frame> {
        let key = entry_key(id);
        if ks
            .sub_get(&self.coll, &key)
            .map_err(engine_error)?
            .is_none()
        {
            return Ok(false);
        }
        ks.sub_remove(&self.coll, &key).map_err(engine_error)?;
        self.coll.meta.len -= 1;
        Ok(true)
    }

    /// Records the first entry's id after deletions.
    pub fn refresh_first_id(&mut self, ks: &mut Keyspace) -> Result<(), Frame> {
        self.meta.first_id = match self.len() {
            0 => Id::MIN,
            _ => self.edge(ks, false)?.map_or(Id::MIN, |e| e.id),
        };
        Ok(())
    }
}
