//! The durable engine, on the `lsm` crate (chapter 6's storage node).
//!
//! Every key is one LSM entry whose value is [`Entry::encode`]'s bytes (a
//! type tag, so later data types fit, and the expiry). Keys with a TTL are
//! also written with the LSM's own expiry, so compaction drops them even if
//! nobody deletes them. What the LSM does not offer, this engine adds:
//! - **an exact key count** (`DBSIZE`): counted by one scan at open, then
//!   maintained on every write, which therefore reads the key first (a
//!   memtable hit or a bloom-filtered miss, usually no disk read);
//! - **a TTL index in memory** (key → deadline, plus a dense vector for
//!   random sampling), rebuilt by the same scan at open, so active expiry and
//!   `volatile-*` style sampling work as on the memory engine. It costs
//!   memory per key *with a TTL*; keys without one cost nothing in RAM;
//! - **SCAN cursors**: the LSM iterates in key order, so a cursor is a
//!   number naming the last key returned (kept in a bounded table); a key
//!   present for the whole scan is returned exactly once.
//!
//! Durability follows `--fsync`: `always` fsyncs the commit log before a
//! write is acknowledged; `everysec` lets the LSM fsync in the background
//! once a second; `no` leaves it to the OS. The keyspace lock is held across
//! a write, so under `always` writes are serialised behind each fsync (the
//! LSM's group commit cannot batch them): correct, and slow on purpose.
//! `maxmemory` does not apply: the data lives on disk and the LSM bounds its
//! own memory (memtables, block cache).

use std::collections::{HashMap, VecDeque};
use std::ops::Bound;
use std::path::Path;

use bytes::Bytes;

use super::{Engine, EngineError, MemoryStats};
use crate::config::{EvictionPolicy, FsyncPolicy};
use crate::value::{Entry, Value};

/// SCAN cursors remembered at once; older ones answer "invalid cursor".
const CURSORS_MAX: usize = 4096;

fn storage(err: impl std::fmt::Display) -> EngineError {
    EngineError::Storage(err.to_string())
}

/// Keys with a TTL: deadline by key, and a dense list for sampling.
#[derive(Debug, Default)]
struct TtlIndex {
    by_key: HashMap<Bytes, (u64, usize)>,
    keys: Vec<Bytes>,
}

impl TtlIndex {
    fn set(&mut self, key: &[u8], at: Option<u64>) {
        match (self.by_key.get_mut(key), at) {
            (Some(slot), Some(at)) => slot.0 = at,
            (None, Some(at)) => {
                let key = Bytes::copy_from_slice(key);
                self.by_key.insert(key.clone(), (at, self.keys.len()));
                self.keys.push(key);
            }
            (Some(_), None) => {
                let (_, pos) = self.by_key.remove(key).expect("present");
                self.keys.swap_remove(pos);
                if let Some(moved) = self.keys.get(pos) {
                    self.by_key.get_mut(moved).expect("indexed").1 = pos;
                }
            }
            (None, None) => {}
        }
    }
}

/// The LSM-backed engine (see the module docs).
pub struct LsmEngine {
    db: lsm::Db,
    /// Live keys (exact; see the module docs).
    len: usize,
    ttl: TtlIndex,
    /// SCAN cursor number → last key returned.
    cursors: VecDeque<(u64, Bytes)>,
    next_cursor: u64,
    /// Sampling randomness (xorshift; speed over quality).
    rng: u64,
    fsync: FsyncPolicy,
    /// Accepted by `CONFIG SET` and reported, not enforced (data is on disk).
    limit: MemoryStats,
}

impl LsmEngine {
    /// Opens (or creates) the store under `dir` and indexes it.
    pub fn open(dir: &Path, fsync: FsyncPolicy) -> Result<Box<dyn Engine>, EngineError> {
        let sync = match fsync {
            FsyncPolicy::Always => lsm::SyncPolicy::Always,
            FsyncPolicy::Everysec => lsm::SyncPolicy::EverySec,
            FsyncPolicy::No => lsm::SyncPolicy::No,
        };
        let options = lsm::Options {
            sync,
            ..lsm::Options::default()
        };
        let db = lsm::Db::open(dir, options).map_err(storage)?;
        let mut engine = LsmEngine {
            db,
            len: 0,
            ttl: TtlIndex::default(),
            cursors: VecDeque::new(),
            next_cursor: 0,
            rng: crate::expiry::now_ms() | 1,
            fsync,
            limit: MemoryStats::default(),
        };
        for item in engine.db.scan(..).map_err(storage)? {
            let item = item.map_err(storage)?;
            engine.len += 1;
            engine.ttl.set(&item.key, item.expires_at_ms);
        }
        Ok(Box::new(engine))
    }

    fn random(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    fn exists(&self, key: &[u8]) -> Result<bool, EngineError> {
        Ok(self.db.get(key).map_err(storage)?.is_some() || self.ttl.by_key.contains_key(key))
    }

    fn remember_cursor(&mut self, last: Bytes) -> u64 {
        self.next_cursor += 1;
        if self.cursors.len() >= CURSORS_MAX {
            self.cursors.pop_front();
        }
        self.cursors.push_back((self.next_cursor, last));
        self.next_cursor
    }
}

impl Engine for LsmEngine {
    fn get(&mut self, key: &[u8]) -> Result<Option<Entry>, EngineError> {
        match self.db.get(key).map_err(storage)? {
            Some(raw) => Entry::decode(Bytes::from(raw)).map(Some).map_err(storage),
            // The LSM hides a key the moment its TTL passes. Report it as
            // expired (deadline 0) so the keyspace deletes it, counts the
            // expiry and keeps our count exact.
            None if self.ttl.by_key.contains_key(key) => Ok(Some(Entry {
                value: Value::String(Bytes::new()),
                expire_at_ms: Some(0),
            })),
            None => Ok(None),
        }
    }

    fn put(&mut self, key: Bytes, entry: Entry) -> Result<(), EngineError> {
        let existed = self.exists(&key)?;
        let encoded = entry.encode();
        match entry.expire_at_ms {
            Some(at) => self.db.put_with_expiry(&key, &encoded, at),
            None => self.db.put(&key, &encoded),
        }
        .map_err(storage)?;
        self.len += usize::from(!existed);
        self.ttl.set(&key, entry.expire_at_ms);
        Ok(())
    }

    fn remove(&mut self, key: &[u8]) -> Result<bool, EngineError> {
        if !self.exists(key)? {
            return Ok(false);
        }
        self.db.delete(key).map_err(storage)?;
        self.len -= 1;
        self.ttl.set(key, None);
        Ok(true)
    }

    fn set_expiry(&mut self, key: &[u8], expire_at_ms: Option<u64>) -> Result<bool, EngineError> {
        let Some(raw) = self.db.get(key).map_err(storage)? else {
            return Ok(false);
        };
        let mut entry = Entry::decode(Bytes::from(raw)).map_err(storage)?;
        entry.expire_at_ms = expire_at_ms;
        self.put(Bytes::copy_from_slice(key), entry)?;
        Ok(true)
    }

    fn len(&self) -> usize {
        self.len
    }

    fn volatile_len(&self) -> usize {
        self.ttl.keys.len()
    }

    fn scan(
        &mut self,
        cursor: u64,
        count: usize,
        out: &mut Vec<Bytes>,
    ) -> Result<u64, EngineError> {
        let start = if cursor == 0 {
            None
        } else {
            let found = self
                .cursors
                .iter()
                .find(|(id, _)| *id == cursor)
                .map(|(_, key)| key.clone());
            Some(found.ok_or(EngineError::Unsupported("invalid cursor"))?)
        };
        let lower = start.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
        let mut last = None;
        for item in self
            .db
            .scan((lower, Bound::Unbounded))
            .map_err(storage)?
            .take(count)
        {
            let key = Bytes::from(item.map_err(storage)?.key);
            last = Some(key.clone());
            out.push(key);
        }
        match last {
            Some(last) if out.len() >= count => Ok(self.remember_cursor(last)),
            _ => Ok(0),
        }
    }

    fn random_key(&mut self) -> Result<Option<Bytes>, EngineError> {
        if self.len == 0 {
            return Ok(None);
        }
        // Seek to a random 8-byte point and take the next key (wrapping):
        // cheap, and uniform enough for RANDOMKEY's purposes.
        let probe = self.random().to_be_bytes();
        let after = self
            .db
            .scan((Bound::Included(&probe[..]), Bound::Unbounded))
            .map_err(storage)?
            .next();
        let item = match after {
            Some(item) => Some(item),
            None => self.db.scan(..).map_err(storage)?.next(),
        };
        item.transpose()
            .map(|kv| kv.map(|kv| Bytes::from(kv.key)))
            .map_err(storage)
    }

    fn sample_volatile(
        &mut self,
        count: usize,
        out: &mut Vec<(Bytes, u64)>,
    ) -> Result<(), EngineError> {
        for _ in 0..count.min(self.ttl.keys.len()) {
            let pos = (self.random() % self.ttl.keys.len() as u64) as usize;
            let key = self.ttl.keys[pos].clone();
            let at = self.ttl.by_key[&key].0;
            out.push((key, at));
        }
        Ok(())
    }

    fn clear(&mut self) -> Result<(), EngineError> {
        let mut batch = lsm::WriteBatch::new();
        for item in self.db.scan(..).map_err(storage)? {
            batch.delete(&item.map_err(storage)?.key);
            if batch.len() >= 1024 {
                self.db.write(&batch).map_err(storage)?;
                batch.clear();
            }
        }
        if !batch.is_empty() {
            self.db.write(&batch).map_err(storage)?;
        }
        self.len = 0;
        self.ttl = TtlIndex::default();
        self.cursors.clear();
        Ok(())
    }

    fn make_room(&mut self, _evicted: &mut Vec<Bytes>) -> Result<(), EngineError> {
        Ok(())
    }

    fn memory(&self) -> MemoryStats {
        self.limit
    }

    fn configure_memory(&mut self, maxmemory: u64, policy: EvictionPolicy, samples: usize) {
        self.limit = MemoryStats {
            used_bytes: 0,
            maxmemory,
            policy,
            samples,
        };
    }

    fn sync(&mut self) -> Result<(), EngineError> {
        // Writes the memtable out: everything acknowledged is on disk and the
        // next start has no log to replay.
        self.db.flush().map_err(storage)
    }

    fn persistence_info(&self) -> Vec<(&'static str, String)> {
        let fsync = format!("{:?}", self.fsync).to_lowercase();
        vec![
            ("engine", "lsm".into()),
            ("durable", "1".into()),
            ("aof_enabled", "1".into()),
            ("appendfsync", fsync),
            ("dir", self.db.path().display().to_string()),
        ]
    }
}
