//! The memory engine: a hash table of keys over a slab of slots.
//!
//! The index maps a key to a slot number; slots live in a `Vec` and freed
//! slots are reused. Two things fall out of that layout:
//! - **random sampling in O(1)** (pick a slot number), which approximate
//!   LRU/LFU eviction and active expiry need, as in Redis; a `HashMap` alone
//!   cannot pick a random element;
//! - **a stable `SCAN` cursor**: a key never moves while it lives, so a
//!   cursor that is a slot number returns every key present for the whole
//!   scan exactly once. (The slab never shrinks except on `FLUSHALL`; a key
//!   space that shrank a lot keeps its empty slots, which cost 8 bytes each.)
//!
//! The last slot found is remembered and checked first (by comparing its
//! key), so a command that reads a key, writes its subkeys and saves its
//! metadata hashes the key once, not three or four times.
//!
//! Keys with an expiry are also listed in a dense `volatile` vector (with
//! each slot remembering its position there) so `volatile-*` eviction and
//! active expiry sample only those keys.
//!
//! Memory accounting is an estimate: key and value bytes plus a fixed
//! per-key overhead ([`KEY_OVERHEAD_BYTES`]) for the index entry and slot.
//! Like Redis's `used_memory` it ignores allocator fragmentation; unlike it,
//! it ignores connection buffers. Keys and values are copied into their own
//! allocations on insert so a stored value never pins a larger read buffer.

mod access;
mod eviction;
mod slot;
mod subkey;
mod subs;
mod walk;

use std::cell::Cell;
use std::collections::HashMap;

use bytes::{Bytes, BytesMut};

use super::{Engine, EngineError, MemoryStats, SubRange};
use crate::config::EvictionPolicy;
use crate::value::{Entry, Value};
use access::AccessClock;
use eviction::{EvictionPool, Lfu};
use slot::Slot;
use subs::{Subs, sub_size};

/// Estimated bytes each key costs beyond its key and value bytes: the index
/// entry (key handle + slot number + control byte), the slot (key handle,
/// entry, bookkeeping) and two allocation headers.
pub const KEY_OVERHEAD_BYTES: u64 = 160;
/// Estimated bytes each subkey (field, member, element) costs beyond its
/// own bytes: the tree node's share and two allocation headers.
pub const SUBKEY_OVERHEAD_BYTES: u64 = 48;
/// Marker for "not in the volatile vector".
const NOT_VOLATILE: u32 = u32::MAX;

/// The in-memory engine (see the module docs).
#[derive(Debug)]
pub struct MemoryEngine {
    /// Key to slot number.
    index: HashMap<Bytes, u32>,
    /// The slab; `None` slots are free and listed in `free`.
    slots: Vec<Option<Slot>>,
    /// Free slot numbers, reused before the slab grows.
    free: Vec<u32>,
    /// Slot numbers of keys that have an expiry.
    volatile: Vec<u32>,
    /// Estimated memory in use.
    used_bytes: u64,
    /// Memory limit, policy and sample size.
    limit: MemoryStats,
    /// Logical clock for LRU/FIFO, bumped on every access.
    tick: u64,
    /// Candidates kept between eviction rounds (Redis's eviction pool).
    pool: EvictionPool,
    /// LFU counter knobs.
    lfu_log_factor: u32,
    lfu_decay_minutes: u32,
    /// Sampling randomness.
    rng: fastrand::Rng,
    /// Reference point for LFU minutes.
    started: std::time::Instant,
    /// The slot last found by key (see the module docs); checked by
    /// comparing its key, so a stale or freed number is harmless.
    last_slot: Cell<u32>,
    /// The command's clock, and shared integers' stamps (`OBJECT IDLETIME`).
    access: AccessClock,
}

impl MemoryEngine {
    /// An empty engine with a memory limit (`0` = none) and eviction policy.
    pub fn new(maxmemory: u64, policy: EvictionPolicy, samples: usize) -> Self {
        MemoryEngine {
            index: HashMap::new(),
            slots: Vec::new(),
            free: Vec::new(),
            volatile: Vec::new(),
            used_bytes: 0,
            limit: MemoryStats {
                used_bytes: 0,
                maxmemory,
                policy,
                samples: samples.max(1),
            },
            tick: 0,
            pool: EvictionPool::default(),
            lfu_log_factor: 10,
            lfu_decay_minutes: 1,
            rng: fastrand::Rng::new(),
            started: std::time::Instant::now(),
            last_slot: Cell::new(0),
            access: AccessClock::new(),
        }
    }

    /// Sets the LFU knobs (Redis's `lfu-log-factor`, `lfu-decay-time`).
    pub fn with_lfu(mut self, log_factor: u32, decay_minutes: u32) -> Self {
        self.lfu_log_factor = log_factor;
        self.lfu_decay_minutes = decay_minutes;
        self
    }

    /// The slot holding `key`: the last one found if it still holds it,
    /// else an index lookup.
    fn find(&self, key: &[u8]) -> Option<u32> {
        let last = self.last_slot.get();
        if let Some(Some(slot)) = self.slots.get(last as usize)
            && slot.key == key
        {
            return Some(last);
        }
        let id = *self.index.get(key)?;
        self.last_slot.set(id);
        Some(id)
    }

    fn minutes(&self) -> u32 {
        (self.started.elapsed().as_secs() / 60) as u32
    }

    fn touch(&mut self, slot_id: u32) {
        self.tick += 1;
        let tick = self.tick;
        // The LFU counter costs a clock read and a random number per access:
        // only pay for it under the policy that reads it.
        let lfu = (self.limit.policy == EvictionPolicy::AllKeysLfu).then(|| {
            (
                self.minutes(),
                self.lfu_decay_minutes,
                self.lfu_log_factor,
                self.rng.f64(),
            )
        });
        let slot = self.slots[slot_id as usize]
            .as_mut()
            .expect("indexed slot is occupied");
        slot.access_tick = tick;
        if let Some((minutes, decay, factor, random)) = lfu {
            slot.lfu.access(minutes, decay, factor, random);
        }
        self.stamp_access(slot_id);
    }

    fn track_volatile(&mut self, slot_id: u32) {
        let slot = self.slots[slot_id as usize].as_mut().expect("occupied");
        let wants = slot.entry.expire_at_ms.is_some();
        let has = slot.volatile_pos != NOT_VOLATILE;
        if wants && !has {
            slot.volatile_pos = self.volatile.len() as u32;
            self.volatile.push(slot_id);
        } else if !wants && has {
            let pos = slot.volatile_pos as usize;
            slot.volatile_pos = NOT_VOLATILE;
            self.volatile.swap_remove(pos);
            if let Some(&moved) = self.volatile.get(pos) {
                self.slots[moved as usize]
                    .as_mut()
                    .expect("occupied")
                    .volatile_pos = pos as u32;
            }
        }
    }

    fn remove_slot(&mut self, slot_id: u32) -> Slot {
        // Leave the volatile vector first, while the slot still exists.
        if let Some(slot) = self.slots[slot_id as usize].as_mut() {
            slot.entry.expire_at_ms = None;
        }
        self.track_volatile(slot_id);
        let slot = self.slots[slot_id as usize].take().expect("occupied");
        self.index.remove(&slot.key);
        self.free.push(slot_id);
        self.used_bytes -= slot.size_bytes();
        slot
    }

    /// Checks the structure's invariants (tests).
    #[cfg(test)]
    pub fn check_invariants(&self) {
        assert_eq!(self.index.len() + self.free.len(), self.slots.len());
        let mut used = 0;
        for (key, &id) in &self.index {
            let slot = self.slots[id as usize]
                .as_ref()
                .expect("indexed slot occupied");
            assert_eq!(&slot.key, key);
            used += slot.size_bytes();
            if slot.entry.expire_at_ms.is_some() {
                assert_eq!(self.volatile[slot.volatile_pos as usize], id);
            } else {
                assert_eq!(slot.volatile_pos, NOT_VOLATILE);
            }
        }
        assert_eq!(used, self.used_bytes);
        assert!(self.volatile.len() <= self.index.len());
    }
}

/// Copies `bytes` into an allocation of its own (see the module docs).
fn own(bytes: &[u8]) -> Bytes {
    Bytes::copy_from_slice(bytes)
}

impl Engine for MemoryEngine {
    fn set_clock(&mut self, now_ms: u64) {
        self.access.now = access::lru_clock(now_ms);
    }

    fn idle_seconds(&mut self, key: &[u8]) -> Option<u64> {
        let id = self.find(key)?;
        Some(self.idle_seconds_of(id))
    }

    fn lfu_counter(&mut self, key: &[u8]) -> Option<u8> {
        let id = self.find(key)?;
        let minutes = self.minutes();
        let slot = self.slots[id as usize].as_ref()?;
        Some(slot.lfu.decayed(minutes, self.lfu_decay_minutes))
    }

    fn get(&mut self, key: &[u8]) -> Result<Option<Entry>, EngineError> {
        let Some(id) = self.find(key) else {
            return Ok(None);
        };
        self.touch(id);
        Ok(self.slots[id as usize]
            .as_ref()
            .map(|slot| slot.entry.clone()))
    }

    fn peek(&mut self, key: &[u8]) -> Result<Option<Entry>, EngineError> {
        let Some(id) = self.find(key) else {
            return Ok(None);
        };
        Ok(self.slots[id as usize]
            .as_ref()
            .map(|slot| slot.entry.clone()))
    }

    fn put(&mut self, key: Bytes, entry: Entry) -> Result<(), EngineError> {
        let entry = match entry.value {
            Value::String(b) => Entry {
                value: Value::String(own(&b)),
                ..entry
            },
            collection @ Value::Collection(_) => Entry {
                value: collection,
                ..entry
            },
        };
        if let Some(id) = self.find(&key) {
            // Redis reads the old value first (its stamp), then stores a
            // new object (stamped now, or a shared integer).
            self.touch(id);
            let slot = self.slots[id as usize].as_mut().expect("occupied");
            let old = slot.size_bytes();
            slot.entry = entry;
            slot.prune_subs();
            let new = slot.size_bytes();
            self.used_bytes = self.used_bytes - old + new;
            self.track_volatile(id);
            self.restamp(id);
            return Ok(());
        }
        self.tick += 1;
        let shared = self.shared_integer(&entry.value);
        let slot = Slot {
            key: own(&key),
            entry,
            volatile_pos: NOT_VOLATILE,
            access_tick: self.tick,
            insert_tick: self.tick,
            lfu: Lfu::new(self.minutes()),
            access_stamp: self.access.now,
            shared,
            subs: None,
        };
        self.used_bytes += slot.size_bytes();
        let id = match self.free.pop() {
            Some(id) => id,
            None => {
                assert!(self.slots.len() < u32::MAX as usize - 1, "slab full");
                self.slots.push(None);
                (self.slots.len() - 1) as u32
            }
        };
        self.index.insert(slot.key.clone(), id);
        self.slots[id as usize] = Some(slot);
        self.track_volatile(id);
        Ok(())
    }

    fn modify(&mut self, key: &[u8], f: &mut dyn FnMut(&mut Entry)) -> Result<bool, EngineError> {
        let Some(id) = self.find(key) else {
            return Ok(false);
        };
        self.touch(id);
        let slot = self.slots[id as usize].as_mut().expect("occupied");
        let old = slot.size_bytes();
        f(&mut slot.entry);
        slot.prune_subs();
        let new = slot.size_bytes();
        self.used_bytes = self.used_bytes - old + new;
        self.track_volatile(id);
        self.restamp(id);
        Ok(true)
    }

    fn update(
        &mut self,
        key: &[u8],
        access: bool,
        f: &mut dyn FnMut(&mut Entry) -> bool,
    ) -> Result<Option<bool>, EngineError> {
        let Some(id) = self.find(key) else {
            return Ok(None);
        };
        let slot = self.slots[id as usize].as_mut().expect("occupied");
        let old = slot.size_bytes();
        let changed = f(&mut slot.entry);
        if changed {
            slot.prune_subs();
            let new = slot.size_bytes();
            self.used_bytes = self.used_bytes - old + new;
            self.track_volatile(id);
        }
        if changed || access {
            self.touch(id);
        }
        if changed {
            // A changed value is a new object (stamped now, or shared).
            self.restamp(id);
        }
        Ok(Some(changed))
    }

    fn sub_get(
        &mut self,
        key: &[u8],
        version: u64,
        sub: &[u8],
    ) -> Result<Option<Bytes>, EngineError> {
        let Some(id) = self.find(key) else {
            return Ok(None);
        };
        let slot = self.slots[id as usize].as_mut().expect("occupied");
        Ok(slot
            .subs_of(version)
            .and_then(|subs| subs.get(sub).cloned()))
    }

    fn sub_put(
        &mut self,
        key: &[u8],
        version: u64,
        sub: &[u8],
        value: &[u8],
    ) -> Result<(), EngineError> {
        let Some(id) = self.find(key) else {
            debug_assert!(false, "sub_put before the collection's metadata");
            return Err(EngineError::Storage(
                "subkey written without its key".into(),
            ));
        };
        let slot = self.slots[id as usize].as_mut().expect("occupied");
        let Value::Collection(meta) = &slot.entry.value else {
            debug_assert!(false, "sub_put on a string");
            return Err(EngineError::Storage("subkey written under a string".into()));
        };
        assert_eq!(meta.version, version, "sub_put for another version");
        let subs = slot
            .subs
            .get_or_insert_with(|| Box::new(Subs::new(version)));
        let before = subs.bytes;
        subs.insert(sub, own(value));
        self.used_bytes = self.used_bytes - before + subs.bytes;
        Ok(())
    }

    fn sub_remove(&mut self, key: &[u8], version: u64, sub: &[u8]) -> Result<(), EngineError> {
        let Some(id) = self.find(key) else {
            return Ok(());
        };
        let slot = self.slots[id as usize].as_mut().expect("occupied");
        if let Some(subs) = slot.subs_of(version)
            && let Some(old) = subs.remove(sub)
        {
            self.used_bytes -= sub_size(sub, &old);
        }
        Ok(())
    }

    fn sub_take(
        &mut self,
        key: &[u8],
        version: u64,
        sub: &[u8],
    ) -> Result<Option<Bytes>, EngineError> {
        let Some(id) = self.find(key) else {
            return Ok(None);
        };
        let slot = self.slots[id as usize].as_mut().expect("occupied");
        let taken = slot.subs_of(version).and_then(|subs| subs.remove(sub));
        if let Some(old) = &taken {
            self.used_bytes -= sub_size(sub, old);
        }
        Ok(taken)
    }

    fn sub_range(
        &mut self,
        key: &[u8],
        version: u64,
        range: &SubRange<'_>,
        out: &mut Vec<(Bytes, Bytes)>,
    ) -> Result<(), EngineError> {
        let Some(id) = self.find(key) else {
            return Ok(());
        };
        let slot = self.slots[id as usize].as_mut().expect("occupied");
        let Some(subs) = slot.subs_of(version) else {
            return Ok(());
        };
        subs.range(range, out);
        Ok(())
    }

    fn sub_values(
        &mut self,
        key: &[u8],
        version: u64,
        range: &SubRange<'_>,
        out: &mut Vec<Bytes>,
    ) -> Result<(), EngineError> {
        let Some(id) = self.find(key) else {
            return Ok(());
        };
        let slot = self.slots[id as usize].as_mut().expect("occupied");
        if let Some(subs) = slot.subs_of(version) {
            subs.each(range, |_, value| out.push(value.clone()));
        }
        Ok(())
    }

    fn remove(&mut self, key: &[u8]) -> Result<bool, EngineError> {
        let Some(id) = self.find(key) else {
            return Ok(false);
        };
        self.remove_slot(id);
        Ok(true)
    }

    fn set_expiry(&mut self, key: &[u8], expire_at_ms: Option<u64>) -> Result<bool, EngineError> {
        let Some(id) = self.find(key) else {
            return Ok(false);
        };
        self.slots[id as usize]
            .as_mut()
            .expect("occupied")
            .entry
            .expire_at_ms = expire_at_ms;
        self.track_volatile(id);
        Ok(true)
    }

    fn len(&self) -> usize {
        self.index.len()
    }

    fn volatile_len(&self) -> usize {
        self.volatile.len()
    }

    fn scan(
        &mut self,
        cursor: u64,
        count: usize,
        out: &mut Vec<Bytes>,
    ) -> Result<u64, EngineError> {
        Ok(self.scan_slots(cursor, count, out))
    }

    fn random_key(&mut self) -> Result<Option<Bytes>, EngineError> {
        Ok(self.random_slot().map(|id| {
            self.slots[id as usize]
                .as_ref()
                .expect("occupied")
                .key
                .clone()
        }))
    }

    fn sample_volatile(
        &mut self,
        count: usize,
        out: &mut Vec<(Bytes, u64)>,
    ) -> Result<(), EngineError> {
        self.sample_volatile_keys(count, out);
        Ok(())
    }

    fn clear(&mut self) -> Result<(), EngineError> {
        self.index = HashMap::new();
        self.slots = Vec::new();
        self.free = Vec::new();
        self.volatile = Vec::new();
        self.used_bytes = 0;
        self.pool = EvictionPool::default();
        Ok(())
    }

    fn make_room(&mut self, evicted: &mut Vec<Bytes>) -> Result<(), EngineError> {
        eviction::make_room(self, evicted)
    }

    fn memory(&self) -> MemoryStats {
        MemoryStats {
            used_bytes: self.used_bytes,
            ..self.limit
        }
    }

    fn configure_memory(&mut self, maxmemory: u64, policy: EvictionPolicy, samples: usize) {
        self.limit = MemoryStats {
            used_bytes: 0,
            maxmemory,
            policy,
            samples: samples.max(1),
        };
        self.pool = EvictionPool::default();
    }

    fn sync(&mut self) -> Result<(), EngineError> {
        Ok(())
    }

    fn persistence_info(&self) -> Vec<(&'static str, String)> {
        vec![("engine", "memory".into()), ("durable", "0".into())]
    }
}

/// Appends `suffix` to a string value without copying it when it is uniquely
/// owned (amortised O(suffix), like Redis's sds growth).
pub fn append_in_place(value: &mut Bytes, suffix: &[u8]) {
    let taken = std::mem::take(value);
    let mut grown = taken
        .try_into_mut()
        .unwrap_or_else(|shared| BytesMut::from(&shared[..]));
    grown.extend_from_slice(suffix);
    *value = grown.freeze();
}

#[cfg(test)]
mod tests;
