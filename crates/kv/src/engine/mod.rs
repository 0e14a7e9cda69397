//! The storage engine seam: one trait, two engines.
//!
//! Chapter 6 starts from a single-server store ("a hash table in memory")
//! and notes its limit: not everything fits in memory, so keep hot data in
//! memory and the rest on disk. The two engines are those two answers:
//! [`memory::MemoryEngine`] is the hash table, bounded by `maxmemory` and
//! evicting like the cache tier of chapter 1; [`lsm::LsmEngine`] keeps data
//! on disk in the `lsm` crate and survives restarts and `kill -9`.
//!
//! The trait is deliberately small and value-typed (`get` returns an owned
//! [`Entry`]) so a disk engine can implement it. Expiry *policy* (lazy checks,
//! the active cycle) and WATCH bookkeeping live above it in
//! [`crate::keyspace`], so both engines behave identically; engines only
//! store expiry times and offer a sample of keys that have one. All methods
//! take `&mut self`: the keyspace is used under one lock, which is what gives
//! every command (and every `MULTI`/`EXEC` block) Redis's atomicity.

pub mod lsm;
pub mod memory;

use std::ops::Bound;

use bytes::Bytes;

use crate::config::EvictionPolicy;
use crate::value::Entry;

/// A failure inside an engine.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EngineError {
    /// A write needs memory and nothing can be evicted.
    #[error("OOM command not allowed when used memory > 'maxmemory'.")]
    OutOfMemory,
    /// The disk engine failed; the message says what to check.
    #[error("storage error: {0}")]
    Storage(String),
    /// The engine does not support the operation.
    #[error("{0}")]
    Unsupported(&'static str),
    /// A key or value is larger than the engine stores; the message names
    /// the size and the limit.
    #[error("{0}")]
    TooLarge(String),
}

/// A commit whose writes are applied but not yet durable (`--fsync always`
/// on the lsm engine): resolves once the commit log is durable up to it. The
/// holder must not acknowledge any of the commit's writes before it resolves
/// `Ok`; it waits *after* releasing the keyspace lock, so other clients'
/// commits can share the fsync.
#[must_use = "a deferred commit is not durable until waited for"]
#[derive(Debug)]
pub struct PendingSync(tokio::sync::oneshot::Receiver<Result<(), EngineError>>);

impl PendingSync {
    /// Waits (without blocking the async worker) for the fsync's outcome.
    pub async fn wait(self) -> Result<(), EngineError> {
        self.0.await.unwrap_or_else(|_| Err(sync_stopped()))
    }
}

/// The error of a [`PendingSync`] nobody could answer (its fsync thread is
/// gone): the write's durability is unknown, so it is not acknowledged.
pub(crate) fn sync_stopped() -> EngineError {
    EngineError::Storage(
        "the fsync thread stopped before confirming the write; it may not be durable \
         (see the server log, then restart the server)"
            .into(),
    )
}

/// Which subkeys of one collection a [`Engine::sub_range`] reads: those
/// between `lower` and `upper` (in byte order), from the low end or (with
/// `reverse`) the high end, at most `limit` of them.
#[derive(Debug, Clone, Copy)]
pub struct SubRange<'a> {
    /// The low bound.
    pub lower: Bound<&'a [u8]>,
    /// The high bound.
    pub upper: Bound<&'a [u8]>,
    /// Start from the high end and go down.
    pub reverse: bool,
    /// Most subkeys returned.
    pub limit: usize,
}

impl<'a> SubRange<'a> {
    /// Every subkey, in order, up to `limit`.
    pub fn all(limit: usize) -> SubRange<'static> {
        SubRange {
            lower: Bound::Unbounded,
            upper: Bound::Unbounded,
            reverse: false,
            limit,
        }
    }

    /// Subkeys from `lower` (inclusive) up, at most `limit`.
    pub fn from(lower: &'a [u8], limit: usize) -> SubRange<'a> {
        SubRange {
            lower: Bound::Included(lower),
            upper: Bound::Unbounded,
            reverse: false,
            limit,
        }
    }

    /// Whether `sub` lies within the bounds.
    pub fn contains(&self, sub: &[u8]) -> bool {
        let above = match self.lower {
            Bound::Included(l) => sub >= l,
            Bound::Excluded(l) => sub > l,
            Bound::Unbounded => true,
        };
        let below = match self.upper {
            Bound::Included(u) => sub <= u,
            Bound::Excluded(u) => sub < u,
            Bound::Unbounded => true,
        };
        above && below
    }
}

/// The smallest byte string greater than every string starting with
/// `prefix` (for an exclusive upper bound), or `None` if there is none
/// (`prefix` is empty or all `0xff`).
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last != 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// Memory figures for `INFO memory` and metrics.
#[derive(Debug, Clone, Copy, Default)]
pub struct MemoryStats {
    /// Estimated bytes held by keys and values (see the engine for how).
    pub used_bytes: u64,
    /// The limit (`0` = none).
    pub maxmemory: u64,
    /// The eviction policy in force.
    pub policy: EvictionPolicy,
    /// Keys sampled per eviction.
    pub samples: usize,
}

/// What a storage engine must do for the command layer.
pub trait Engine: Send {
    /// Reads a key, counting it as an access for LRU/LFU.
    fn get(&mut self, key: &[u8]) -> Result<Option<Entry>, EngineError>;

    /// Reads a key *without* counting an access (`SCAN`, `KEYS` and
    /// `RANDOMKEY` must not make every key look recently used).
    fn peek(&mut self, key: &[u8]) -> Result<Option<Entry>, EngineError> {
        self.get(key)
    }

    /// Inserts or replaces a key.
    fn put(&mut self, key: Bytes, entry: Entry) -> Result<(), EngineError>;

    /// Changes an existing entry in place; `false` if the key is absent.
    /// Engines that can avoid a copy (memory) override the default.
    fn modify(&mut self, key: &[u8], f: &mut dyn FnMut(&mut Entry)) -> Result<bool, EngineError> {
        let Some(mut entry) = self.get(key)? else {
            return Ok(false);
        };
        f(&mut entry);
        self.put(Bytes::copy_from_slice(key), entry)?;
        Ok(true)
    }

    /// Lets `f` change an existing entry where it lies; `f` returns whether
    /// it changed it. `None` if the key is absent, else what `f` returned.
    /// Unlike [`Engine::modify`], nothing is written when `f` changes
    /// nothing (a failed `INCR`). The read counts as an access (as
    /// [`Engine::get`]) if `access`; a change always does. Engines that can
    /// avoid a copy (memory) override the default.
    fn update(
        &mut self,
        key: &[u8],
        access: bool,
        f: &mut dyn FnMut(&mut Entry) -> bool,
    ) -> Result<Option<bool>, EngineError> {
        let found = if access {
            self.get(key)?
        } else {
            self.peek(key)?
        };
        let Some(mut entry) = found else {
            return Ok(None);
        };
        let changed = f(&mut entry);
        if changed {
            self.put(Bytes::copy_from_slice(key), entry)?;
        }
        Ok(Some(changed))
    }

    /// Deletes a key; `true` if it existed.
    fn remove(&mut self, key: &[u8]) -> Result<bool, EngineError>;

    /// Sets or clears a key's expiry; `false` if the key is absent.
    fn set_expiry(&mut self, key: &[u8], expire_at_ms: Option<u64>) -> Result<bool, EngineError>;

    /// Reads subkey `sub` of the collection stored at `key` with `version`
    /// (see [`crate::value`] for the model). A subkey of another version
    /// (a deleted predecessor of the key) is never returned.
    fn sub_get(
        &mut self,
        key: &[u8],
        version: u64,
        sub: &[u8],
    ) -> Result<Option<Bytes>, EngineError>;

    /// Inserts or replaces subkey `sub` of the collection at `key`. The
    /// key's metadata with this `version` must be stored already (the
    /// memory engine keeps the subkeys with it). Part of the open write
    /// batch, like every write.
    fn sub_put(
        &mut self,
        key: &[u8],
        version: u64,
        sub: &[u8],
        value: &[u8],
    ) -> Result<(), EngineError>;

    /// Deletes subkey `sub` (nothing if absent).
    fn sub_remove(&mut self, key: &[u8], version: u64, sub: &[u8]) -> Result<(), EngineError>;

    /// Deletes subkey `sub` and returns its value (`None` if absent): a
    /// pop in one step instead of a read and a delete.
    fn sub_take(
        &mut self,
        key: &[u8],
        version: u64,
        sub: &[u8],
    ) -> Result<Option<Bytes>, EngineError> {
        let found = self.sub_get(key, version, sub)?;
        if found.is_some() {
            self.sub_remove(key, version, sub)?;
        }
        Ok(found)
    }

    /// The highest collection version this store may already hold (a
    /// durable reserve; see `keyspace::collection`): new versions start
    /// above it. 0 for a store that keeps nothing across restarts.
    fn version_floor(&self) -> u64 {
        0
    }

    /// Records that collection version `version` is about to be used, so
    /// that it is never handed out again, even after a restart with the
    /// clock set back. Part of the open write batch, like every write (the
    /// lsm engine raises its durable reserve in the same commit).
    fn reserve_version(&mut self, _version: u64) -> Result<(), EngineError> {
        Ok(())
    }

    /// Appends the subkeys of the collection in `range`, in order (or in
    /// reverse), with their values, up to `range.limit`.
    fn sub_range(
        &mut self,
        key: &[u8],
        version: u64,
        range: &SubRange<'_>,
        out: &mut Vec<(Bytes, Bytes)>,
    ) -> Result<(), EngineError>;

    /// [`Engine::sub_range`] without the subkeys: appends the values in
    /// `range`, in order (or in reverse), up to `range.limit` (`LRANGE`,
    /// whose subkeys are positions it knows already).
    fn sub_values(
        &mut self,
        key: &[u8],
        version: u64,
        range: &SubRange<'_>,
        out: &mut Vec<Bytes>,
    ) -> Result<(), EngineError> {
        let mut items = Vec::new();
        self.sub_range(key, version, range, &mut items)?;
        out.extend(items.into_iter().map(|(_, value)| value));
        Ok(())
    }

    /// Number of keys (including expired ones not yet collected).
    fn len(&self) -> usize;

    /// Whether the keyspace is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of keys with an expiry.
    fn volatile_len(&self) -> usize;

    /// Appends up to about `count` keys from position `cursor` to `out`
    /// and returns the next cursor (`0` = done). A key present for the whole
    /// iteration is returned at least once (the `SCAN` guarantee).
    fn scan(&mut self, cursor: u64, count: usize, out: &mut Vec<Bytes>)
    -> Result<u64, EngineError>;

    /// A random key, or `None` if empty.
    fn random_key(&mut self) -> Result<Option<Bytes>, EngineError>;

    /// Appends up to `count` random keys that have an expiry, with it.
    fn sample_volatile(
        &mut self,
        count: usize,
        out: &mut Vec<(Bytes, u64)>,
    ) -> Result<(), EngineError>;

    /// Deletes every key.
    fn clear(&mut self) -> Result<(), EngineError>;

    /// Evicts keys until memory is under the limit, appending what it
    /// evicted; [`EngineError::OutOfMemory`] if that is impossible.
    fn make_room(&mut self, evicted: &mut Vec<Bytes>) -> Result<(), EngineError>;

    /// Memory figures.
    fn memory(&self) -> MemoryStats;

    /// Changes the memory limit, policy and sample size (`CONFIG SET`).
    fn configure_memory(&mut self, maxmemory: u64, policy: EvictionPolicy, samples: usize);

    /// Makes every acknowledged write durable (the `everysec` tick and shutdown).
    fn sync(&mut self) -> Result<(), EngineError>;

    /// Starts collecting writes into one atomic unit, written by
    /// [`Engine::commit_batch`]. Reads see collected writes at once. An engine
    /// without a commit log (memory) applies writes directly and ignores it.
    fn begin_batch(&mut self) {}

    /// Writes collected since [`Engine::begin_batch`] and not yet committed: a
    /// savepoint for [`Engine::rollback_batch`].
    fn batch_len(&self) -> usize {
        0
    }

    /// Undoes the collected writes after the first `len` (a failed command's
    /// partial writes). Writes already committed stay.
    fn rollback_batch(&mut self, _len: usize) {}

    /// Writes the collected writes as one atomic unit (one commit-log record,
    /// one fsync under `always`) and stops collecting. On error none of them
    /// is applied: the engine is as it was at [`Engine::begin_batch`].
    fn commit_batch(&mut self) -> Result<(), EngineError> {
        Ok(())
    }

    /// [`Engine::commit_batch`] without waiting for durability: the writes
    /// are applied (visible to every client) and, if the engine still has to
    /// make them durable, the returned [`PendingSync`] says when it has. The
    /// default (memory engine, and any policy but `--fsync always`) commits
    /// as `commit_batch` does and returns `None`: nothing to wait for.
    fn commit_batch_deferred(&mut self) -> Result<Option<PendingSync>, EngineError> {
        self.commit_batch().map(|()| None)
    }

    /// The running command's time (Unix ms): the clock of the access stamps
    /// [`Engine::idle_seconds`] reads, set once per command.
    fn set_clock(&mut self, _now_ms: u64) {}

    /// Seconds since the key was last read or written (`OBJECT IDLETIME`),
    /// if the engine keeps access stamps (the memory engine does).
    fn idle_seconds(&mut self, _key: &[u8]) -> Option<u64> {
        None
    }

    /// The key's LFU access counter after decay (`OBJECT FREQ`), if the
    /// engine keeps one (the memory engine under `allkeys-lfu`).
    fn lfu_counter(&mut self, _key: &[u8]) -> Option<u8> {
        None
    }

    /// The largest value (payload bytes) the engine stores, if it has a
    /// limit: `proto-max-bulk-len` is capped to it, so a client learns the
    /// limit from `CONFIG GET` and gets Redis's own errors at it.
    fn value_bytes_max(&self) -> Option<u64> {
        None
    }

    /// Test hook: makes the engine's commit-log fsyncs fail (`true`) or work
    /// again; engines without a log ignore it.
    #[cfg(test)]
    fn fail_log_syncs(&self, _fail: bool) {}

    /// Lines for `INFO persistence`.
    fn persistence_info(&self) -> Vec<(&'static str, String)>;
}
