//! The object-mapping table: object id → (data file, offset, size, checksum).
//!
//! Why a module: with many objects packed into one file, nothing on disk says where an
//! object is except this table, and it must survive `kill -9` exactly as acknowledged.
//! The chapter stores it in a database on the data node (it names RocksDB and
//! SQLite); here it lives in the workspace's own LSM engine (`lsm::Db`, fsync before
//! acknowledging, its own group commit), one key per object:
//!
//! ```text
//! key   = 'o' | object id (16 bytes, big-endian: ids of one period are neighbours)
//! value = file id u64 | offset u64 | object bytes u64 | record crc u32   (28 bytes, LE)
//! ```
//!
//! Every change is an [`Op`], and what an op does is one pure function, [`next`]:
//! the mapping after the op, given the mapping before. A put maps the id to its new
//! record (an existing id is *overwritten*: its old record becomes garbage); a delete
//! removes the entry (its record becomes garbage: a delete only *marks*, the bytes
//! come back when garbage collection compacts the file); a move (garbage collection's
//! swap) applies only if the entry still points where the copy was taken from, so a
//! delete or overwrite that raced with the copy wins. What a change frees and adds in
//! each file (the live-byte accounting that drives garbage collection) is derived from
//! the before and after states, never decided separately.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use crate::ObjectId;
use crate::datafile::Location;
use crate::error::{Error, Result};

/// Prefix byte of the object keys.
const OBJECT_PREFIX: u8 = b'o';
/// Bytes of an encoded [`Location`].
const VALUE_BYTES: usize = 28;

/// One change to the mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Map `id` to its record at `to` (replacing any earlier record of `id`).
    Put {
        /// The object.
        id: ObjectId,
        /// Its new record.
        to: Location,
        /// The id was just generated, so nothing maps it yet (no lookup needed).
        fresh: bool,
    },
    /// Remove `id`'s entry (its record becomes garbage).
    Delete {
        /// The object.
        id: ObjectId,
    },
    /// Garbage collection's swap: map `id` to the copy at `to` if it still maps to `from`.
    Move {
        /// The object.
        id: ObjectId,
        /// Where the copy was read from.
        from: Location,
        /// The copy.
        to: Location,
    },
}

impl Op {
    /// The object the op changes.
    pub fn id(&self) -> ObjectId {
        match *self {
            Op::Put { id, .. } | Op::Delete { id } | Op::Move { id, .. } => id,
        }
    }
}

/// The mapping of an object after `op`, given `current` (the decision, pure).
pub fn next(current: Option<Location>, op: &Op) -> Option<Location> {
    match *op {
        Op::Put { to, .. } => Some(to),
        Op::Delete { .. } => None,
        Op::Move { from, to, .. } => {
            if current == Some(from) {
                Some(to)
            } else {
                current
            }
        }
    }
}

/// Live bytes and objects gained (positive) or lost (negative) by one data file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Delta {
    /// Change of the file's live record bytes.
    pub bytes: i64,
    /// Change of the file's live object count.
    pub objects: i64,
}

/// A group of ops turned into what to write: the mapping writes, the live-byte
/// changes per file, and for each op whether its object was mapped before it.
#[derive(Debug, Default)]
pub struct Staged {
    /// Final state per changed id (`None`: remove the entry), in op order.
    pub writes: Vec<(ObjectId, Option<Location>)>,
    /// Live-byte changes per data file.
    pub deltas: HashMap<u64, Delta>,
    /// Per op: was the id mapped before it (for a move: did the move apply).
    pub outcomes: Vec<bool>,
}

/// Applies `ops` in order to the states `lookup` gives (consulted once per id not
/// already changed by an earlier op of the group, and not at all for fresh puts).
pub fn stage(
    ops: &[Op],
    mut lookup: impl FnMut(ObjectId) -> Result<Option<Location>>,
) -> Result<Staged> {
    let mut state: HashMap<ObjectId, Option<Location>> = HashMap::new();
    let mut staged = Staged::default();
    for op in ops {
        let id = op.id();
        let before = match (state.get(&id), op) {
            (Some(s), _) => *s,
            (None, Op::Put { fresh: true, .. }) => None,
            (None, _) => lookup(id)?,
        };
        let after = next(before, op);
        staged.outcomes.push(match op {
            Op::Move { .. } => after != before,
            _ => before.is_some(),
        });
        if after == before {
            continue;
        }
        for (loc, sign) in [(before, -1i64), (after, 1)] {
            if let Some(loc) = loc {
                let d = staged.deltas.entry(loc.file_id).or_default();
                d.bytes += sign * loc.record_bytes() as i64;
                d.objects += sign;
            }
        }
        state.insert(id, after);
        staged.writes.push((id, after));
    }
    Ok(staged)
}

/// What the mapping says about one data file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FileSummary {
    /// Live record bytes.
    pub live_bytes: u64,
    /// Live objects.
    pub live_objects: u64,
    /// End of the last live record (0 when none): an unsealed file is cut here on open.
    pub max_end: u64,
}

/// The object-mapping table of one data node, on an `lsm::Db`.
pub struct Mapping {
    db: lsm::Db,
    dir: PathBuf,
}

impl Mapping {
    /// Opens (or creates) the table in `dir`, with every write fsynced before it returns.
    pub fn open(dir: &Path, memtable_bytes: usize) -> Result<Self> {
        let opts = lsm::Options {
            create_if_missing: true,
            sync: lsm::SyncPolicy::Always,
            memtable_size_bytes: memtable_bytes,
            ..lsm::Options::default()
        };
        Ok(Self {
            db: lsm::Db::open(dir, opts)?,
            dir: dir.to_path_buf(),
        })
    }

    /// Where `id`'s record is, if it is mapped.
    pub fn get(&self, id: ObjectId) -> Result<Option<Location>> {
        match self.db.get(&key(id))? {
            None => Ok(None),
            Some(v) => self.decode(&v).map(Some),
        }
    }

    /// Writes `writes` as one atomic, fsynced batch.
    pub fn commit(&self, writes: &[(ObjectId, Option<Location>)]) -> Result<()> {
        if writes.is_empty() {
            return Ok(());
        }
        let mut batch = lsm::WriteBatch::new();
        for (id, loc) in writes {
            match loc {
                Some(loc) => batch.put(&key(*id), &encode(loc)),
                None => batch.delete(&key(*id)),
            };
        }
        Ok(self.db.write(&batch)?)
    }

    /// Every mapped object in id order (for listings, scrubbing and repair).
    pub fn scan(&self) -> Result<impl Iterator<Item = Result<(ObjectId, Location)>> + '_> {
        let iter = self.db.scan_prefix(&[OBJECT_PREFIX])?;
        Ok(iter.map(move |kv| {
            let kv = kv?;
            let id: [u8; 16] = kv.key[1..]
                .try_into()
                .map_err(|_| self.bad("an object key is not 17 bytes"))?;
            Ok((ObjectId::from_bytes(id), self.decode(&kv.value)?))
        }))
    }

    /// The live bytes, objects and last live record end of every file the mapping
    /// names (one pass over the table: the node's open-time recovery).
    pub fn summarize(&self) -> Result<BTreeMap<u64, FileSummary>> {
        let mut files: BTreeMap<u64, FileSummary> = BTreeMap::new();
        for entry in self.scan()? {
            let (_, loc) = entry?;
            let s = files.entry(loc.file_id).or_default();
            s.live_bytes += loc.record_bytes();
            s.live_objects += 1;
            s.max_end = s.max_end.max(loc.end());
        }
        Ok(files)
    }

    /// The LSM store's own counters (its fsyncs, sizes).
    pub fn lsm_stats(&self) -> lsm::Stats {
        self.db.stats()
    }

    fn decode(&self, v: &[u8]) -> Result<Location> {
        decode(v).ok_or_else(|| self.bad("a mapping value is not 28 bytes"))
    }

    fn bad(&self, detail: &str) -> Error {
        Error::corrupt(&self.dir, 0, detail)
    }
}

fn key(id: ObjectId) -> [u8; 17] {
    let mut k = [OBJECT_PREFIX; 17];
    k[1..].copy_from_slice(&id.to_bytes());
    k
}

fn encode(loc: &Location) -> [u8; VALUE_BYTES] {
    let mut v = [0u8; VALUE_BYTES];
    v[..8].copy_from_slice(&loc.file_id.to_le_bytes());
    v[8..16].copy_from_slice(&loc.offset.to_le_bytes());
    v[16..24].copy_from_slice(&loc.len.to_le_bytes());
    v[24..].copy_from_slice(&loc.crc.to_le_bytes());
    v
}

fn decode(v: &[u8]) -> Option<Location> {
    let v: &[u8; VALUE_BYTES] = v.try_into().ok()?;
    let u64_at = |i: usize| u64::from_le_bytes(v[i..i + 8].try_into().expect("8 bytes"));
    let loc = Location {
        file_id: u64_at(0),
        offset: u64_at(8),
        len: u64_at(16),
        crc: u32::from_le_bytes(v[24..].try_into().expect("4 bytes")),
    };
    // Offsets and lengths near u64::MAX would overflow `end()`: not a record of ours.
    loc.offset.checked_add(loc.len)?.checked_add(1 << 32)?;
    Some(loc)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loc(file_id: u64, offset: u64, len: u64) -> Location {
        Location {
            file_id,
            offset,
            len,
            crc: 7,
        }
    }

    fn id(n: u128) -> ObjectId {
        ObjectId::from_parts(1, n)
    }

    #[test]
    fn next_state_of_each_op() {
        let (a, b, c) = (loc(1, 16, 10), loc(2, 16, 10), loc(3, 16, 10));
        let put = Op::Put {
            id: id(1),
            to: b,
            fresh: false,
        };
        assert_eq!(next(None, &put), Some(b));
        assert_eq!(next(Some(a), &put), Some(b), "an overwrite");
        assert_eq!(next(Some(a), &Op::Delete { id: id(1) }), None);
        let mv = Op::Move {
            id: id(1),
            from: a,
            to: c,
        };
        assert_eq!(next(Some(a), &mv), Some(c));
        assert_eq!(
            next(Some(b), &mv),
            Some(b),
            "overwritten during the copy: stays"
        );
        assert_eq!(
            next(None, &mv),
            None,
            "deleted during the copy: stays deleted"
        );
    }

    #[test]
    fn staging_derives_the_accounting_and_sees_earlier_ops_of_the_group() {
        let (a, b, c) = (loc(1, 16, 10), loc(2, 16, 20), loc(2, 66, 30));
        let mut disk = HashMap::from([(id(1), a)]);
        let ops = [
            Op::Move {
                id: id(1),
                from: a,
                to: b,
            },
            Op::Put {
                id: id(2),
                to: c,
                fresh: true,
            },
            Op::Delete { id: id(2) },
            Op::Delete { id: id(9) },
        ];
        let mut lookups = Vec::new();
        let s = stage(&ops, |i| {
            lookups.push(i);
            Ok(disk.remove(&i))
        })
        .unwrap();
        assert_eq!(
            lookups,
            vec![id(1), id(9)],
            "no lookup for a fresh put or a staged id"
        );
        assert_eq!(s.outcomes, vec![true, false, true, false]);
        assert_eq!(
            s.writes,
            vec![(id(1), Some(b)), (id(2), Some(c)), (id(2), None)]
        );
        assert_eq!(
            s.deltas[&1],
            Delta {
                bytes: -50,
                objects: -1
            }
        );
        assert_eq!(
            s.deltas[&2],
            Delta {
                bytes: 60,
                objects: 1
            }
        );
    }

    #[test]
    fn commits_are_durable_and_summaries_add_up() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (loc(1, 16, 10), loc(1, 66, 5));
        {
            let m = Mapping::open(dir.path(), 1 << 20).unwrap();
            m.commit(&[(id(1), Some(a)), (id(2), Some(b)), (id(3), Some(b))])
                .unwrap();
            m.commit(&[(id(3), None)]).unwrap();
        }
        let m = Mapping::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(m.get(id(1)).unwrap(), Some(a));
        assert_eq!(m.get(id(3)).unwrap(), None);
        let s = m.summarize().unwrap();
        assert_eq!(s.len(), 1);
        assert_eq!(
            s[&1],
            FileSummary {
                live_bytes: 50 + 45,
                live_objects: 2,
                max_end: b.end()
            }
        );
    }

    #[test]
    fn malformed_values_are_corruption_not_panics() {
        assert_eq!(decode(&[0; 27]), None);
        let mut v = encode(&loc(1, u64::MAX - 5, 10));
        assert_eq!(decode(&v), None);
        v = encode(&loc(1, 16, 10));
        assert_eq!(decode(&v), Some(loc(1, 16, 10)));
    }
}
