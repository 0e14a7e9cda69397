//! The keyspace: an engine plus the rules every engine shares.
//!
//! Commands never talk to an engine directly. They go through [`Keyspace`],
//! which adds what must behave the same on every engine:
//! - **lazy expiry**: a key whose time has passed is deleted when touched
//!   and reported as absent (the active half lives in `state::expiry`);
//! - **WATCH**: every modification, expiry and eviction of a watched key
//!   flags the watching clients so their `EXEC` fails, as in Redis;
//! - **statistics** for `INFO` and metrics (hits, misses, expired, evicted).
//! - **blocked clients**: every modification of a key also wakes the first
//!   client blocked on it (`BLPOP`...; see [`blocking`]).
//!
//! - **write batches**: [`Keyspace::begin_batch`] / [`Keyspace::commit_batch`]
//!   make every write in between one atomic unit on the engine (one
//!   commit-log record on the LSM engine). They nest: only the outermost
//!   commit writes, so a command's batch inside a pipeline's batch is part of
//!   the pipeline's. [`Keyspace::savepoint`] / [`Keyspace::rollback_to`] undo a
//!   failed command's partial writes inside an open batch.
//!
//! The server keeps one `Keyspace` behind one mutex ([`Db`]): Redis's
//! single-threaded atomicity, without Redis's single thread for I/O. A batch
//! is opened and committed under one hold of that lock, so no other client
//! ever sees writes that are not yet committed.

pub mod blocking;
pub mod collection;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;

use crate::engine::{Engine, EngineError, PendingSync};
use crate::value::Entry;

/// Most keys one `SCAN` call looks at, whatever `COUNT` says: the call holds
/// the keyspace lock, so its work must stay small (`COUNT` is a hint in
/// Redis too; a client just continues from the cursor). Without it,
/// `SCAN 0 COUNT 1000000000` asked for a 32 GB buffer.
pub const SCAN_COUNT_MAX: usize = 10_000;

/// The shared keyspace: one lock around everything (see the module docs).
pub type Db = parking_lot::Mutex<Keyspace>;

/// Counters reported by `INFO stats` and `/metrics`.
#[derive(Debug, Clone, Copy, Default)]
pub struct KeyspaceStats {
    /// Keys deleted because their TTL passed (lazily or actively).
    pub expired_keys: u64,
    /// Keys evicted to stay under `maxmemory`.
    pub evicted_keys: u64,
    /// Reads that found their key.
    pub keyspace_hits: u64,
    /// Reads that did not.
    pub keyspace_misses: u64,
}

/// A keyspace event for notifications (see `state::notify`): what happened
/// to which key, and the event's class bit (`config::NotifyFlags`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyEvent {
    /// The class bit.
    pub class: u32,
    /// Redis's event name (`expired`, `del`, `hset`...).
    pub event: &'static str,
    /// The key.
    pub key: Bytes,
}

/// How the running command's notification events are named (see
/// `state::notify`): most commands' are derived from the keys they modified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EventNaming {
    /// Each modified key gets the command's own event (`command_event`).
    #[default]
    Derived,
    /// Each modified key gets this event instead (`LMPOP ... LEFT`: `lpop`).
    Renamed(&'static str),
    /// The command raised its events itself ([`Keyspace::raise`]), in
    /// Redis's order; the modified keys get none.
    Own,
}

/// A client's WATCH state: the flag its `EXEC` checks, and what it watches.
#[derive(Debug, Default)]
pub struct WatchSet {
    /// Set when any watched key is touched.
    dirty: Arc<AtomicBool>,
    /// The watched keys (to unregister them later).
    keys: Vec<Bytes>,
}

impl WatchSet {
    /// Whether a watched key changed since `WATCH`.
    pub fn is_dirty(&self) -> bool {
        self.dirty.load(Ordering::Acquire)
    }

    /// Whether anything is watched.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// The keyspace (see the module docs).
pub struct Keyspace {
    /// Where the data lives.
    engine: Box<dyn Engine>,
    /// Watched key → dirty flags of the clients watching it.
    watches: HashMap<Bytes, Vec<Arc<AtomicBool>>>,
    /// Counters.
    stats: KeyspaceStats,
    /// Reused buffer for keys evicted by one `make_room`.
    evicted: Vec<Bytes>,
    /// Open `begin_batch` calls; the engine's batch is open while > 0.
    batch_depth: usize,
    /// The last collection version handed out (see `collection`).
    last_version: u64,
    /// Reads do not count as accesses for eviction (`CLIENT NO-TOUCH`, set
    /// by the command layer for the command running now).
    no_touch: bool,
    /// The `notify-keyspace-events` bits (0 = record nothing: no cost).
    notify: u32,
    /// Keys modified since [`Keyspace::take_touched`] (only while `notify` is on).
    touched: Vec<Bytes>,
    /// Events the keyspace itself raised (expired, evicted, emptied collections).
    events: Vec<KeyEvent>,
    /// How the running command's events are named.
    naming: EventNaming,
    /// Clients blocked on keys (see `blocking`).
    blocked: blocking::Blocked,
}

impl Keyspace {
    /// A keyspace over `engine`.
    pub fn new(engine: Box<dyn Engine>) -> Self {
        Keyspace {
            last_version: engine.version_floor(),
            engine,
            watches: HashMap::new(),
            stats: KeyspaceStats::default(),
            evicted: Vec::new(),
            batch_depth: 0,
            no_touch: false,
            notify: 0,
            touched: Vec::new(),
            events: Vec::new(),
            naming: EventNaming::Derived,
            blocked: blocking::Blocked::default(),
        }
    }

    /// Opens a write batch (or joins the one open; see the module docs).
    pub fn begin_batch(&mut self) {
        if self.batch_depth == 0 {
            self.engine.begin_batch();
        }
        self.batch_depth += 1;
    }

    /// Closes a `begin_batch`; the outermost one writes the batch. On error
    /// nothing of the batch is applied.
    pub fn commit_batch(&mut self) -> Result<(), EngineError> {
        assert!(self.batch_depth > 0, "commit_batch without begin_batch");
        self.batch_depth -= 1;
        if self.batch_depth == 0 {
            self.engine.commit_batch()
        } else {
            Ok(())
        }
    }

    /// [`Keyspace::commit_batch`] for a caller that releases the lock before
    /// acknowledging the writes: the outermost commit applies them and
    /// returns what durability is still pending (`--fsync always` on the lsm
    /// engine), to be awaited *after* the lock is released and before any
    /// reply of the batch is sent. Other clients may read the writes
    /// meanwhile (see the crate docs on durability).
    pub fn commit_batch_deferred(&mut self) -> Result<Option<PendingSync>, EngineError> {
        assert!(self.batch_depth > 0, "commit_batch without begin_batch");
        self.batch_depth -= 1;
        if self.batch_depth == 0 {
            self.engine.commit_batch_deferred()
        } else {
            Ok(None)
        }
    }

    /// Called right after taking the lock at the top level (a connection's
    /// batch, a command's lazy lock): a batch still open here was left by a
    /// holder that panicked mid-command. None of its writes was acknowledged
    /// (replies go out only after the commit), so it is undone, never
    /// committed by the next holder.
    pub fn recover_abandoned_batch(&mut self) {
        if self.batch_depth == 0 {
            return;
        }
        tracing::error!(
            staged = self.engine.batch_len(),
            "undoing a write batch left open by a panicked command"
        );
        self.engine.rollback_batch(0);
        let committed = self.engine.commit_batch();
        debug_assert!(committed.is_ok(), "an empty batch commits");
        self.batch_depth = 0;
    }

    /// Writes staged in the open batch: a savepoint for [`Keyspace::rollback_to`].
    /// Always 0 on an engine that applies writes directly.
    pub fn savepoint(&self) -> usize {
        self.engine.batch_len()
    }

    /// Undoes the open batch's writes after `savepoint`.
    pub fn rollback_to(&mut self, savepoint: usize) {
        self.engine.rollback_batch(savepoint);
    }

    /// The engine, for read-only figures (memory, persistence, sizes).
    pub fn engine(&self) -> &dyn Engine {
        self.engine.as_ref()
    }

    /// The engine, for reconfiguration and sync.
    pub fn engine_mut(&mut self) -> &mut dyn Engine {
        self.engine.as_mut()
    }

    /// The counters.
    pub fn stats(&self) -> KeyspaceStats {
        self.stats
    }

    /// A key was modified: flags its watchers, remembers it for notifications.
    fn touch(&mut self, key: &[u8]) {
        self.blocked.touched(key);
        self.flag_watchers(key);
        if self.notify != 0 {
            self.touched.push(Bytes::copy_from_slice(key));
        }
    }

    fn flag_watchers(&self, key: &[u8]) {
        if let Some(flags) = self.watches.get(key) {
            for flag in flags {
                flag.store(true, Ordering::Release);
            }
        }
    }

    /// Records an event the keyspace raised itself, if its class is on.
    pub(crate) fn raise(&mut self, class: u32, event: &'static str, key: &[u8]) {
        if self.notify & class != 0 {
            self.events.push(KeyEvent {
                class,
                event,
                key: Bytes::copy_from_slice(key),
            });
        }
    }

    /// Sets the `notify-keyspace-events` bits (0 turns recording off).
    pub fn set_notify(&mut self, flags: u32) {
        let channels = crate::config::NotifyFlags::KEYSPACE | crate::config::NotifyFlags::KEYEVENT;
        self.notify = if flags & channels == 0 { 0 } else { flags };
        self.touched.clear();
        self.events.clear();
        self.naming = EventNaming::Derived;
    }

    /// Names the running command's events (see [`EventNaming`]); a no-op
    /// while notifications are off.
    pub(crate) fn name_events(&mut self, naming: EventNaming) {
        if self.notify != 0 {
            self.naming = naming;
        }
    }

    /// How the command that just ran named its events (and back to derived).
    pub(crate) fn take_naming(&mut self) -> EventNaming {
        std::mem::take(&mut self.naming)
    }

    /// Whether notifications are recorded.
    pub fn notifying(&self) -> bool {
        self.notify != 0
    }

    /// The keys modified since the last call, each once, in first-touch order.
    pub fn take_touched(&mut self) -> Vec<Bytes> {
        let mut keys = std::mem::take(&mut self.touched);
        let mut seen = std::collections::HashSet::with_capacity(keys.len());
        keys.retain(|k| seen.insert(k.clone()));
        keys
    }

    /// The events raised since the last call.
    pub fn take_events(&mut self) -> Vec<KeyEvent> {
        std::mem::take(&mut self.events)
    }

    /// Reads a live key without counting a hit or miss (lazy expiry applies).
    pub fn lookup(&mut self, key: &[u8], now_ms: u64) -> Result<Option<Entry>, EngineError> {
        let found = if self.no_touch {
            self.engine.peek(key)?
        } else {
            self.engine.get(key)?
        };
        match found {
            Some(entry) if entry.is_expired(now_ms) => {
                self.expire(key)?;
                Ok(None)
            }
            found => Ok(found),
        }
    }

    /// Reads a live key without counting an access (Redis's
    /// `LOOKUP_NOTOUCH`: `EXISTS`, `TYPE`, `TTL`, `OBJECT`).
    pub fn lookup_untouched(
        &mut self,
        key: &[u8],
        now_ms: u64,
    ) -> Result<Option<Entry>, EngineError> {
        let no_touch = std::mem::replace(&mut self.no_touch, true);
        let found = self.lookup(key, now_ms);
        self.no_touch = no_touch;
        found
    }

    /// Reads a live key for a read command without counting an access
    /// (`EXISTS`, `TYPE`, `TTL`): a hit or a miss still counts, and a miss
    /// raises `keymiss`, as Redis's `LOOKUP_NOTOUCH` reads do.
    pub fn get_untouched(&mut self, key: &[u8], now_ms: u64) -> Result<Option<Entry>, EngineError> {
        let no_touch = std::mem::replace(&mut self.no_touch, true);
        let found = self.get(key, now_ms);
        self.no_touch = no_touch;
        found
    }

    /// Sets the running command's time on the engine (its access stamps).
    pub fn set_clock(&mut self, now_ms: u64) {
        self.engine.set_clock(now_ms);
    }

    /// Makes the following reads leave the keys' access time and frequency
    /// alone (`CLIENT NO-TOUCH`, `OBJECT`), or count again.
    pub fn set_no_touch(&mut self, on: bool) {
        self.no_touch = on;
    }

    /// Whether a key is live, without counting an access (lazy expiry applies).
    fn is_live(&mut self, key: &[u8], now_ms: u64) -> Result<bool, EngineError> {
        match self.engine.peek(key)? {
            Some(entry) if entry.is_expired(now_ms) => {
                self.expire(key)?;
                Ok(false)
            }
            found => Ok(found.is_some()),
        }
    }

    /// Reads a live key for a read command, counting a hit or a miss.
    pub fn get(&mut self, key: &[u8], now_ms: u64) -> Result<Option<Entry>, EngineError> {
        let found = self.lookup(key, now_ms)?;
        match found {
            Some(_) => self.stats.keyspace_hits += 1,
            None => {
                self.stats.keyspace_misses += 1;
                self.raise(crate::config::NotifyFlags::KEY_MISS, "keymiss", key);
            }
        }
        Ok(found)
    }

    /// Deletes a key whose TTL passed; `false` if it was already gone.
    fn expire(&mut self, key: &[u8]) -> Result<bool, EngineError> {
        let removed = self.engine.remove(key)?;
        if removed {
            self.stats.expired_keys += 1;
            self.flag_watchers(key);
            self.raise(crate::config::NotifyFlags::EXPIRED, "expired", key);
        }
        Ok(removed)
    }

    /// Inserts or replaces a key.
    pub fn put(&mut self, key: Bytes, entry: Entry) -> Result<(), EngineError> {
        self.touch(&key);
        if self.notify & crate::config::NotifyFlags::NEW != 0 && self.engine.peek(&key)?.is_none() {
            self.raise(crate::config::NotifyFlags::NEW, "new", &key);
        }
        self.engine.put(key, entry)
    }

    /// Changes a live key in place; `false` if absent.
    pub fn modify(
        &mut self,
        key: &[u8],
        now_ms: u64,
        f: &mut dyn FnMut(&mut Entry),
    ) -> Result<bool, EngineError> {
        if self.lookup(key, now_ms)?.is_none() {
            return Ok(false);
        }
        self.touch(key);
        self.engine.modify(key, f)
    }

    /// Lets `f` change a live key where it lies (`INCR`): `None` if the key
    /// is absent (an expired one is deleted first), else whether `f`
    /// changed it (`f` returns that). Only a change counts as a
    /// modification (WATCH, blocked clients, notifications); on the memory
    /// engine nothing is copied either way.
    pub fn update(
        &mut self,
        key: &[u8],
        now_ms: u64,
        f: &mut dyn FnMut(&mut Entry) -> bool,
    ) -> Result<Option<bool>, EngineError> {
        let mut expired = false;
        let found = self.engine.update(key, !self.no_touch, &mut |entry| {
            if entry.is_expired(now_ms) {
                expired = true;
                return false;
            }
            f(entry)
        })?;
        if expired {
            self.expire(key)?;
            return Ok(None);
        }
        if found == Some(true) {
            self.touch(key);
        }
        Ok(found)
    }

    /// Deletes a live key; `false` if absent (or already expired).
    pub fn remove(&mut self, key: &[u8], now_ms: u64) -> Result<bool, EngineError> {
        if self.lookup(key, now_ms)?.is_none() {
            return Ok(false);
        }
        self.touch(key);
        self.engine.remove(key)
    }

    /// Sets or clears the expiry of a live key; `false` if absent.
    pub fn set_expiry(
        &mut self,
        key: &[u8],
        at_ms: Option<u64>,
        now_ms: u64,
    ) -> Result<bool, EngineError> {
        if self.lookup(key, now_ms)?.is_none() {
            return Ok(false);
        }
        self.touch(key);
        self.engine.set_expiry(key, at_ms)
    }

    /// Evicts keys until memory is under `maxmemory` (before every write
    /// command, as Redis does); `OutOfMemory` if it cannot.
    pub fn make_room(&mut self) -> Result<(), EngineError> {
        let result = self.engine.make_room(&mut self.evicted);
        if !self.evicted.is_empty() {
            let mut evicted = std::mem::take(&mut self.evicted);
            self.stats.evicted_keys += evicted.len() as u64;
            for key in evicted.drain(..) {
                self.flag_watchers(&key);
                self.raise(crate::config::NotifyFlags::EVICTED, "evicted", &key);
            }
            self.evicted = evicted;
        }
        result
    }

    /// Number of keys (including expired ones not yet collected, as Redis's `DBSIZE`).
    pub fn len(&self) -> usize {
        self.engine.len()
    }

    /// Whether there are no keys.
    pub fn is_empty(&self) -> bool {
        self.engine.is_empty()
    }

    /// One `SCAN` step over live keys: appends keys, returns the next cursor.
    /// `count` is a hint capped at [`SCAN_COUNT_MAX`], so one call does
    /// bounded work and allocation whatever the client asked.
    pub fn scan(
        &mut self,
        cursor: u64,
        count: usize,
        now_ms: u64,
        out: &mut Vec<Bytes>,
    ) -> Result<u64, EngineError> {
        let count = count.clamp(1, SCAN_COUNT_MAX);
        let mut raw = Vec::with_capacity(count);
        let next = self.engine.scan(cursor, count, &mut raw)?;
        for key in raw {
            if self.is_live(&key, now_ms)? {
                out.push(key);
            }
        }
        Ok(next)
    }

    /// A random live key, trying a bounded number of times past expired ones.
    pub fn random_key(&mut self, now_ms: u64) -> Result<Option<Bytes>, EngineError> {
        for _ in 0..100 {
            let Some(key) = self.engine.random_key()? else {
                return Ok(None);
            };
            if self.lookup(&key, now_ms)?.is_some() {
                return Ok(Some(key));
            }
        }
        Ok(None)
    }

    /// Deletes everything and fails every pending `EXEC` that watches anything.
    pub fn clear(&mut self) -> Result<(), EngineError> {
        for flags in self.watches.values() {
            for flag in flags {
                flag.store(true, Ordering::Release);
            }
        }
        self.engine.clear()
    }

    /// One active-expiry probe: samples up to `count` keys with a TTL and
    /// deletes the expired ones. Returns `(sampled, expired)`.
    ///
    /// The deletions are committed without waiting for an fsync (under
    /// `--fsync always` they ride the next group fsync): nobody is told
    /// about them, and one lost in a crash changes nothing, since the key
    /// comes back already expired (the engine stores its deadline) and is
    /// deleted again. So the probe never holds the lock through an fsync.
    pub fn expire_sample(
        &mut self,
        count: usize,
        now_ms: u64,
    ) -> Result<(usize, usize), EngineError> {
        self.recover_abandoned_batch();
        let mut sample = Vec::with_capacity(count);
        self.engine.sample_volatile(count, &mut sample)?;
        // The probe's deletions are one write batch (one log record), not
        // one per key.
        self.begin_batch();
        let mut expired = 0;
        let mut result = Ok(());
        for (key, at_ms) in &sample {
            if *at_ms > now_ms {
                continue;
            }
            // A sample may repeat a key: count each deletion once.
            match self.expire(key) {
                Ok(removed) => expired += usize::from(removed),
                Err(err) => {
                    result = Err(err);
                    break;
                }
            }
        }
        // Not awaited on purpose (see above); the fsync thread still runs it.
        let _unawaited = self.commit_batch_deferred()?;
        result.map(|()| (sample.len(), expired))
    }

    /// Starts watching `key` for the client owning `set`.
    pub fn watch(&mut self, set: &mut WatchSet, key: Bytes) {
        if set.keys.contains(&key) {
            return;
        }
        self.watches
            .entry(key.clone())
            .or_default()
            .push(set.dirty.clone());
        set.keys.push(key);
    }

    /// Stops watching everything `set` watches and resets it.
    pub fn unwatch_all(&mut self, set: &mut WatchSet) {
        for key in set.keys.drain(..) {
            if let Some(flags) = self.watches.get_mut(&key) {
                flags.retain(|flag| !Arc::ptr_eq(flag, &set.dirty));
                if flags.is_empty() {
                    self.watches.remove(&key);
                }
            }
        }
        set.dirty = Arc::new(AtomicBool::new(false));
    }
}

#[cfg(test)]
mod tests;
