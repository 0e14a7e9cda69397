//! The durable engine, on the `lsm` crate (chapter 6's storage node).
//!
//! Every top-level key (a string, or a collection's metadata) is one LSM
//! entry whose value is [`Entry::encode`]'s bytes (a type tag and the
//! expiry); keys with a TTL are also written with the LSM's own expiry, so
//! compaction drops them even if nobody deletes them. A collection's fields,
//! members and elements are one LSM entry each, a *subkey* (Kvrocks's layout
//! of Redis types on RocksDB). Both live in one LSM key space, apart by their
//! first byte ([`keys`]):
//!
//! ```text
//!  LSM key                                               LSM value
//!  'k' "user:1"                                          Meta{Hash, version 17, len 2}
//!  'k' "greeting"                                        String "hello"
//!  's' 00000006 "user:1" 0000000000000011 "born"         "1815"
//!  's' 00000006 "user:1" 0000000000000011 "name"         "ada"
//!       └ key length u32   └ version u64 (17)  └ subkey bytes
//!
//!  HSET user:1 name x      writes 2 entries: the subkey, the Meta (len)
//!  DEL user:1              writes 1 entry: a tombstone for 'k' "user:1"
//!  later, in compaction    the filter sees 's' .. version 17 without a Meta
//!                          of version 17 and drops it (garbage)
//! ```
//!
//! So `HSET` on a million-field hash writes a few small entries, a range read
//! (`HGETALL`, `ZRANGE`, `LRANGE`) is one LSM range scan, forward or backward
//! ([`subkeys`]), and deleting, replacing or expiring a collection of any size
//! costs its caller one write: the old subkeys carry a version no metadata
//! has any more, and the LSM's compaction drops them in the background
//! ([`garbage`]). `SCAN`, `RANDOMKEY`, `DBSIZE`, `FLUSHALL` and the scan at
//! open read the `'k'` range only ([`scan`]). The store lives in `<dir>/v2`;
//! a store written before namespaces (raw keys in `<dir>`) is migrated once
//! at open ([`layout`]).
//!
//! What the LSM does not offer, this engine adds:
//! - **an exact key count** (`DBSIZE`): counted by one scan at open, then
//!   maintained on every write, which therefore reads the key first (a
//!   memtable hit or a bloom-filtered miss, usually no disk read);
//! - **a TTL index in memory** ([`ttl`]), rebuilt by the same scan at open,
//!   so active expiry and `volatile-*` style sampling work as on the memory
//!   engine. It costs memory per key *with a TTL*; keys without one cost
//!   nothing in RAM;
//! - **SCAN cursors** ([`scan`]);
//! - **write batches** ([`stage`]): between `begin_batch` and `commit_batch`
//!   writes (of keys and subkeys) collect in an overlay that reads consult
//!   first, and the commit writes them as one `lsm::WriteBatch`. The
//!   connection opens one per pipelined read batch, so `MSET`, `DEL k1 k2`,
//!   an `HSET` (metadata and fields), `EXEC` and a whole pipeline are each one
//!   commit-log record: atomic across a crash, and one `write(2)` (one fsync
//!   under `always`) instead of one per key.
//!
//! The exact count costs a read per write, and we keep it: `DBSIZE` must be
//! exact, and the alternatives are worse. Keeping every key in RAM would
//! make this a memory engine; counting lazily (at `DBSIZE`) would cost a full
//! scan. The read is cheap where it matters: a key written earlier in the
//! same batch is answered by the overlay, a recent key by the memtable, and
//! a new key by the bloom filters (no disk read).
//!
//! Durability follows `--fsync`: `always` fsyncs the commit log before a
//! write is acknowledged; `everysec` lets the LSM fsync in the background
//! once a second; `no` leaves it to the OS. Under `always` a connection's
//! batch is committed in two steps ([`Engine::commit_batch_deferred`]):
//! under the keyspace lock `lsm::Db::write_nosync` appends and applies it
//! and numbers it; the lock is released, and the connection awaits the
//! fsync thread ([`syncer`]), which makes the log durable up to the highest
//! number queued with one `lsm::Db::sync_to` for every waiting client. So
//! concurrent clients share fsyncs, and one fsync still covers a client's
//! whole pipelined batch. Active expiry commits the same way but never waits
//! (a lost expiry delete is redone); `FLUSHALL` and the socket-less client
//! still wait inside `commit_batch`, under the lock.
//! `maxmemory` does not apply: the data lives on disk and the LSM bounds its
//! own memory (memtables, block cache).
//!
//! Sizes: keys, and subkeys, up to [`KEY_BYTES_MAX`] (64 KiB), values up to
//! [`VALUE_BYTES_MAX`] (64 MiB; a value is one LSM entry, written whole into
//! the log and a memtable). The server lowers `proto-max-bulk-len` to that
//! limit on this engine, so clients see it in `CONFIG GET` and get Redis's
//! own errors at it; the engine's own check is the backstop, made when a
//! write is staged, and its error names the client's size and the limit.

mod garbage;
mod keys;
mod layout;
mod merge;
mod scan;
mod stage;
mod subkeys;
mod syncer;
mod ttl;
mod versions;

use std::collections::VecDeque;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;

use self::stage::{Stage, Undo};
use self::syncer::Syncer;
use self::ttl::TtlIndex;
use super::{Engine, EngineError, MemoryStats, PendingSync, SubRange};
use crate::config::{EvictionPolicy, FsyncPolicy};
use crate::value::{ENCODED_HEADER_BYTES_MAX, Entry, Value};

/// The longest key this engine stores (as before namespaces: the LSM's
/// default key limit). Subkeys have the same limit.
pub const KEY_BYTES_MAX: usize = 64 << 10;

/// The largest value this engine stores, in payload bytes (64 MiB, the
/// LSM's default value limit, plus our header on top). The server caps
/// `proto-max-bulk-len` to it on this engine (Redis's default is 512 MB):
/// a value is one LSM entry, written whole into the commit log and the
/// memtable, so much larger values would cost a memtable each.
pub const VALUE_BYTES_MAX: u64 = 64 << 20;

fn storage(err: impl std::fmt::Display) -> EngineError {
    EngineError::Storage(err.to_string())
}

/// The LSM-backed engine (see the module docs).
pub struct LsmEngine {
    /// Shared with the fsync thread.
    db: Arc<lsm::Db>,
    /// The fsync thread (`--fsync always` only; see [`syncer`]).
    syncer: Option<Syncer>,
    /// Live keys (exact; see the module docs).
    len: usize,
    ttl: TtlIndex,
    /// SCAN cursor number → last key returned.
    cursors: VecDeque<(u64, Bytes)>,
    next_cursor: u64,
    /// Sampling randomness.
    rng: fastrand::Rng,
    fsync: FsyncPolicy,
    /// Accepted by `CONFIG SET` and reported, not enforced (data is on disk).
    limit: MemoryStats,
    /// The open write batch (see [`stage`]).
    stage: Stage,
    /// The durable collection-version reserve (see [`versions`]).
    version_reserve: u64,
    /// The last top-level key read from the LSM and what it held: a command
    /// reads its key, then writes it (and a write reads it again, to keep
    /// the count exact), so the second read is answered here instead of by
    /// another memtable search. Only commits change what the LSM holds for a
    /// key (staged writes are consulted first), so a commit forgets it.
    last_read: std::cell::RefCell<Option<(Bytes, Option<Entry>)>>,
}

impl LsmEngine {
    /// Opens (or creates) the store under `dir` and indexes it.
    pub fn open(dir: &Path, fsync: FsyncPolicy) -> Result<Box<dyn Engine>, EngineError> {
        Ok(Box::new(Self::open_engine(dir, fsync)?))
    }

    /// [`LsmEngine::open`], unboxed (tests reach the LSM through it).
    fn open_engine(dir: &Path, fsync: FsyncPolicy) -> Result<LsmEngine, EngineError> {
        let sync = match fsync {
            FsyncPolicy::Always => lsm::SyncPolicy::Always,
            FsyncPolicy::Everysec => lsm::SyncPolicy::EverySec,
            FsyncPolicy::No => lsm::SyncPolicy::No,
        };
        let options = lsm::Options {
            sync,
            // Room for our header, so a value of exactly the advertised
            // maximum (VALUE_BYTES_MAX, proto-max-bulk-len here) fits.
            value_size_bytes_max: VALUE_BYTES_MAX as usize + ENCODED_HEADER_BYTES_MAX,
            // The longest subkey: tag, key length, key, version, subkey.
            key_size_bytes_max: keys::SUB_OVERHEAD_BYTES
                + KEY_BYTES_MAX
                + subkeys::SUBKEY_BYTES_MAX,
            compaction_filter: Some(garbage::filter()),
            ..lsm::Options::default()
        };
        let store = layout::prepare(dir, &options)?;
        let db = Arc::new(lsm::Db::open(&store, options).map_err(storage)?);
        let syncer = match fsync {
            FsyncPolicy::Always => Some(
                Syncer::start(db.clone())
                    .map_err(|e| storage(format!("cannot start the fsync thread: {e}")))?,
            ),
            FsyncPolicy::Everysec | FsyncPolicy::No => None,
        };
        let mut engine = LsmEngine {
            db,
            syncer,
            len: 0,
            ttl: TtlIndex::default(),
            cursors: VecDeque::new(),
            next_cursor: 0,
            rng: fastrand::Rng::new(),
            fsync,
            limit: MemoryStats::default(),
            stage: Stage::default(),
            version_reserve: 0,
            last_read: std::cell::RefCell::new(None),
        };
        engine.version_reserve = versions::read(&engine.db)?;
        let everything = keys::top_range(std::ops::Bound::Unbounded);
        for item in engine.db.scan(keys::slices(&everything)).map_err(storage)? {
            let item = item.map_err(storage)?;
            let key = keys::user_key(&item.key)
                .ok_or_else(|| storage("a subkey in the top-level key range"))?;
            engine.len += 1;
            engine.ttl.set(key, item.expires_at_ms);
        }
        Ok(engine)
    }

    /// Whether `key` counts in `len`: staged state first, then the LSM (or
    /// the TTL index, for a key the LSM already hides as expired).
    fn exists(&self, key: &[u8]) -> Result<bool, EngineError> {
        if let Some(state) = self.stage.overlay.get(key) {
            return Ok(state.is_some());
        }
        Ok(self.read_disk(key)?.is_some() || self.ttl.by_key.contains_key(key))
    }

    /// What the LSM holds for `key` (see `last_read`).
    fn read_disk(&self, key: &[u8]) -> Result<Option<Entry>, EngineError> {
        if let Some((last, state)) = &*self.last_read.borrow()
            && last.as_ref() == key
        {
            return Ok(state.clone());
        }
        let state = match self.db.get(&keys::top(key)).map_err(storage)? {
            Some(raw) => Some(Entry::decode(Bytes::from(raw)).map_err(storage)?),
            None => None,
        };
        *self.last_read.borrow_mut() = Some((Bytes::copy_from_slice(key), state.clone()));
        Ok(state)
    }

    /// The newest state of `key`: staged, else on disk. `None` means absent
    /// (or hidden as expired by the LSM).
    fn current(&self, key: &[u8]) -> Result<Option<Entry>, EngineError> {
        if let Some(state) = self.stage.overlay.get(key) {
            return Ok(state.clone());
        }
        self.read_disk(key)
    }

    /// Stages a put (`Some`) or delete (`None`) of `key`, keeping the count
    /// and the TTL index; outside a batch it is committed at once.
    fn write(
        &mut self,
        key: Bytes,
        entry: Option<Entry>,
        existed: bool,
    ) -> Result<(), EngineError> {
        if let Some(entry) = &entry {
            self.check_size(&key, entry)?;
        }
        self.stage.undo.push(Undo::Top {
            key: key.clone(),
            overlay_before: self.stage.overlay.get(&key).cloned(),
            ttl_before: self.ttl.get(&key),
            len_before: self.len,
        });
        match &entry {
            Some(entry) => {
                self.len += usize::from(!existed);
                self.ttl.set(&key, entry.expire_at_ms);
            }
            None => {
                debug_assert!(existed, "only existing keys are deleted");
                self.len -= usize::from(existed);
                self.ttl.set(&key, None);
            }
        }
        self.stage.overlay.insert(key, entry);
        if self.stage.active {
            Ok(())
        } else {
            self.commit_stage()
        }
    }

    /// The size limits, checked before staging; the errors name the sizes
    /// a client sent (the value without our header) and the limit.
    fn check_size(&self, key: &[u8], entry: &Entry) -> Result<(), EngineError> {
        self.check_key_size(key)?;
        let value_len = entry.value.size_bytes();
        subkeys::check_value_size(value_len)?;
        debug_assert!(
            value_len + entry.encoded_header_bytes()
                <= VALUE_BYTES_MAX as usize + ENCODED_HEADER_BYTES_MAX
        );
        Ok(())
    }

    /// The key limit, with an error naming the key's size and the limit.
    fn check_key_size(&self, key: &[u8]) -> Result<(), EngineError> {
        if key.len() > KEY_BYTES_MAX {
            return Err(EngineError::TooLarge(format!(
                "key of {} bytes exceeds the lsm engine's key limit of {KEY_BYTES_MAX} bytes",
                key.len(),
            )));
        }
        Ok(())
    }

    /// Writes everything staged as one LSM batch (durably, as `--fsync`
    /// says); on failure undoes it all.
    fn commit_stage(&mut self) -> Result<(), EngineError> {
        self.commit_stage_with(|db, batch| db.write(batch))
            .map(|_| ())
    }

    /// Writes everything staged with `write` (unless nothing is staged:
    /// `None`); on failure undoes it all.
    fn commit_stage_with<T>(
        &mut self,
        write: impl FnOnce(&lsm::Db, &lsm::WriteBatch) -> lsm::Result<T>,
    ) -> Result<Option<T>, EngineError> {
        if self.stage.is_empty() {
            return Ok(None);
        }
        // Whatever happens, what the LSM holds may change.
        self.last_read.get_mut().take();
        match write(&self.db, &self.stage.to_write_batch()) {
            Ok(done) => {
                self.note_committed_reserve();
                self.stage.clear();
                Ok(Some(done))
            }
            Err(err) => {
                self.rollback_batch(0);
                Err(storage(err))
            }
        }
    }
}

impl Engine for LsmEngine {
    fn get(&mut self, key: &[u8]) -> Result<Option<Entry>, EngineError> {
        match self.current(key)? {
            Some(entry) => Ok(Some(entry)),
            // The LSM hides a key the moment its TTL passes. Report it as
            // expired (deadline 0) so the keyspace deletes it, counts the
            // expiry and keeps our count exact.
            None if !self.stage.overlay.contains_key(key) && self.ttl.by_key.contains_key(key) => {
                Ok(Some(Entry {
                    value: Value::String(Bytes::new()),
                    expire_at_ms: Some(0),
                }))
            }
            None => Ok(None),
        }
    }

    fn put(&mut self, key: Bytes, entry: Entry) -> Result<(), EngineError> {
        let existed = self.exists(&key)?;
        self.write(key, Some(entry), existed)
    }

    fn remove(&mut self, key: &[u8]) -> Result<bool, EngineError> {
        if !self.exists(key)? {
            return Ok(false);
        }
        self.write(Bytes::copy_from_slice(key), None, true)?;
        Ok(true)
    }

    fn set_expiry(&mut self, key: &[u8], expire_at_ms: Option<u64>) -> Result<bool, EngineError> {
        let Some(mut entry) = self.current(key)? else {
            return Ok(false);
        };
        entry.expire_at_ms = expire_at_ms;
        self.write(Bytes::copy_from_slice(key), Some(entry), true)?;
        Ok(true)
    }

    fn sub_get(
        &mut self,
        key: &[u8],
        version: u64,
        sub: &[u8],
    ) -> Result<Option<Bytes>, EngineError> {
        self.sub_read(key, version, sub)
    }

    fn sub_put(
        &mut self,
        key: &[u8],
        version: u64,
        sub: &[u8],
        value: &[u8],
    ) -> Result<(), EngineError> {
        self.sub_write(key, version, sub, Some(value))
    }

    fn sub_remove(&mut self, key: &[u8], version: u64, sub: &[u8]) -> Result<(), EngineError> {
        self.sub_write(key, version, sub, None)
    }

    fn sub_range(
        &mut self,
        key: &[u8],
        version: u64,
        range: &SubRange<'_>,
        out: &mut Vec<(Bytes, Bytes)>,
    ) -> Result<(), EngineError> {
        self.sub_scan(key, version, range, out)
    }

    fn version_floor(&self) -> u64 {
        self.version_reserve
    }

    fn reserve_version(&mut self, version: u64) -> Result<(), EngineError> {
        self.stage_reserve(version)
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
        let last = self.scan_merged(start.as_ref(), count, out)?;
        match last {
            Some(last) => Ok(self.remember_cursor(last)),
            None => Ok(0),
        }
    }

    fn random_key(&mut self) -> Result<Option<Bytes>, EngineError> {
        if self.len == 0 {
            return Ok(None);
        }
        self.random_top_key()
    }

    fn sample_volatile(
        &mut self,
        count: usize,
        out: &mut Vec<(Bytes, u64)>,
    ) -> Result<(), EngineError> {
        for _ in 0..count.min(self.ttl.keys.len()) {
            let pos = self.rng.usize(..self.ttl.keys.len());
            let key = self.ttl.keys[pos].clone();
            let at = self.ttl.by_key[&key].0;
            out.push((key, at));
        }
        Ok(())
    }

    fn clear(&mut self) -> Result<(), EngineError> {
        // Staged writes would be deleted by the clear: never writing them is
        // the same outcome (and no reply was sent for them yet).
        self.stage.clear();
        self.last_read.get_mut().take();
        self.clear_top_keys()?;
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
        self.commit_stage()?;
        self.db.flush().map_err(storage)
    }

    fn begin_batch(&mut self) {
        debug_assert!(self.stage.is_empty(), "a batch is open already");
        self.stage.active = true;
    }

    fn batch_len(&self) -> usize {
        self.stage.undo.len()
    }

    fn rollback_batch(&mut self, len: usize) {
        while self.stage.undo.len() > len {
            match self.stage.undo.pop().expect("longer than len") {
                Undo::Top {
                    key,
                    overlay_before,
                    ttl_before,
                    len_before,
                } => {
                    match overlay_before {
                        Some(state) => self.stage.overlay.insert(key.clone(), state),
                        None => self.stage.overlay.remove(&key),
                    };
                    self.ttl.set(&key, ttl_before);
                    self.len = len_before;
                }
                Undo::Sub {
                    raw,
                    overlay_before,
                } => {
                    match overlay_before {
                        Some(state) => self.stage.subs.insert(raw, state),
                        None => self.stage.subs.remove(&raw),
                    };
                }
            }
        }
    }

    fn commit_batch(&mut self) -> Result<(), EngineError> {
        self.stage.active = false;
        self.commit_stage()
    }

    fn commit_batch_deferred(&mut self) -> Result<Option<PendingSync>, EngineError> {
        if self.syncer.is_none() {
            return self.commit_batch().map(|()| None);
        }
        self.stage.active = false;
        let seq = self.commit_stage_with(|db, batch| db.write_nosync(batch))?;
        Ok(seq.map(|seq| self.syncer.as_ref().expect("checked above").submit(seq)))
    }

    fn value_bytes_max(&self) -> Option<u64> {
        Some(VALUE_BYTES_MAX)
    }

    #[cfg(test)]
    fn fail_log_syncs(&self, fail: bool) {
        self.db.fail_log_syncs(fail);
    }

    fn persistence_info(&self) -> Vec<(&'static str, String)> {
        let fsync = format!("{:?}", self.fsync).to_lowercase();
        vec![
            ("engine", "lsm".into()),
            ("durable", "1".into()),
            ("aof_enabled", "1".into()),
            ("appendfsync", fsync),
            // Commit-log fsyncs since start: under `always`, fewer than the
            // writes when clients share group fsyncs.
            ("wal_fsyncs", self.db.stats().wal_syncs.to_string()),
            ("dir", self.db.path().display().to_string()),
        ]
    }
}

/// A collection's metadata entry (a hash of `len` fields, version
/// `version`), for the tests.
#[cfg(test)]
fn test_meta(version: u64, len: u64) -> Entry {
    Entry {
        value: Value::Collection(crate::value::Meta {
            kind: crate::value::Kind::Hash,
            version,
            len,
            extra: crate::value::Extra::new(),
        }),
        expire_at_ms: None,
    }
}

#[cfg(test)]
mod collection_tests;
#[cfg(test)]
mod crash_tests;
#[cfg(test)]
mod model_tests;
#[cfg(test)]
mod tests;
