//! Eviction: which key to drop when memory is over `maxmemory`.
//!
//! The cache tier of chapter 1 names the policies: LRU (least recently
//! used), LFU (least frequently used) and FIFO. Exact LRU needs a linked list
//! touched on every read; like Redis we approximate instead: each round
//! samples `maxmemory-samples` keys, scores them ("idleness": higher = evict
//! first), merges them into a pool of the best [`POOL_SIZE`] candidates kept
//! across rounds, and evicts the pool's best. With 5 samples Redis measures
//! this as close to true LRU; with 10 nearly indistinguishable. The pool's
//! scores can go stale (a pooled key read since it was sampled); that costs
//! accuracy, not correctness.
//!
//! LFU uses Redis's 8-bit logarithmic counter: a hit increments it with
//! probability `1 / ((counter - 5) * lfu_log_factor + 1)`, so it saturates
//! only after about a million hits at factor 10, and it drops by one per
//! `lfu_decay_time` minutes idle, so a key that was hot yesterday can go.
//! New keys start at 5 so they are not evicted before they had a chance.

use bytes::Bytes;

use super::{MemoryEngine, Slot};
use crate::config::EvictionPolicy;
use crate::engine::EngineError;

/// Candidates kept between rounds (Redis's `EVPOOL_SIZE`).
const POOL_SIZE: usize = 16;
/// LFU counter of a new key (Redis's `LFU_INIT_VAL`).
const LFU_INIT: u8 = 5;

/// A key's LFU state: log counter and the minute it was last decayed.
#[derive(Debug, Clone, Copy)]
pub(super) struct Lfu {
    counter: u8,
    minute: u32,
}

impl Lfu {
    pub(super) fn new(minute: u32) -> Self {
        Lfu {
            counter: LFU_INIT,
            minute,
        }
    }

    /// The raw counter (tests and `OBJECT FREQ`-style introspection).
    #[cfg(test)]
    pub(super) fn counter(self) -> u8 {
        self.counter
    }

    /// The counter after applying decay for the minutes idle since `minute`.
    pub(super) fn decayed(self, now_minute: u32, decay_minutes: u32) -> u8 {
        if decay_minutes == 0 {
            return self.counter;
        }
        let periods = now_minute.saturating_sub(self.minute) / decay_minutes;
        self.counter
            .saturating_sub(u8::try_from(periods).unwrap_or(u8::MAX))
    }

    /// Records one access: decay, then a probabilistic log increment.
    pub(super) fn access(
        &mut self,
        now_minute: u32,
        decay_minutes: u32,
        log_factor: u32,
        random: f64,
    ) {
        self.counter = self.decayed(now_minute, decay_minutes);
        self.minute = now_minute;
        if self.counter < u8::MAX {
            let base = f64::from(self.counter.saturating_sub(LFU_INIT));
            let p = 1.0 / (base * f64::from(log_factor) + 1.0);
            if random < p {
                self.counter += 1;
            }
        }
    }
}

/// One eviction candidate.
#[derive(Debug, Clone)]
struct Candidate {
    /// Higher = better to evict.
    idle: u64,
    /// Where the key was; re-checked before evicting.
    slot_id: u32,
    key: Bytes,
}

/// The best candidates seen so far, sorted by ascending idleness.
#[derive(Debug, Default)]
pub(super) struct EvictionPool {
    candidates: Vec<Candidate>,
}

impl EvictionPool {
    fn offer(&mut self, candidate: Candidate) {
        if self
            .candidates
            .iter()
            .any(|c| c.slot_id == candidate.slot_id && c.key == candidate.key)
        {
            return;
        }
        let at = self.candidates.partition_point(|c| c.idle < candidate.idle);
        if self.candidates.len() >= POOL_SIZE {
            if at == 0 {
                return; // worse than everything pooled
            }
            self.candidates.remove(0);
            self.candidates.insert(at - 1, candidate);
        } else {
            self.candidates.insert(at, candidate);
        }
        debug_assert!(self.candidates.windows(2).all(|w| w[0].idle <= w[1].idle));
    }
}

/// How evictable a slot is under `policy` (higher = evict first).
fn idleness(engine: &MemoryEngine, slot: &Slot, policy: EvictionPolicy, now_minute: u32) -> u64 {
    match policy {
        EvictionPolicy::AllKeysLru | EvictionPolicy::VolatileLru => engine.tick - slot.access_tick,
        EvictionPolicy::AllKeysLfu => {
            u64::from(u8::MAX - slot.lfu.decayed(now_minute, engine.lfu_decay_minutes))
        }
        EvictionPolicy::AllKeysFifo => u64::MAX - slot.insert_tick,
        EvictionPolicy::VolatileTtl => u64::MAX - slot.entry.expire_at_ms.unwrap_or(u64::MAX),
        EvictionPolicy::NoEviction => 0,
    }
}

/// Samples keys into the pool; `false` if there was nothing to sample.
fn fill_pool(engine: &mut MemoryEngine, policy: EvictionPolicy) -> bool {
    let now_minute = engine.minutes();
    let samples = engine.limit.samples;
    let mut sampled = false;
    for _ in 0..samples {
        let id = if policy.volatile_only() {
            if engine.volatile.is_empty() {
                break;
            }
            engine.volatile[engine.rng.usize(..engine.volatile.len())]
        } else {
            match engine.random_slot() {
                Some(id) => id,
                None => break,
            }
        };
        let slot = engine.slots[id as usize]
            .as_ref()
            .expect("sampled slot occupied");
        let candidate = Candidate {
            idle: idleness(engine, slot, policy, now_minute),
            slot_id: id,
            key: slot.key.clone(),
        };
        engine.pool.offer(candidate);
        sampled = true;
    }
    sampled
}

/// Evicts until under the limit (see the module docs).
pub(super) fn make_room(
    engine: &mut MemoryEngine,
    evicted: &mut Vec<Bytes>,
) -> Result<(), EngineError> {
    let limit = engine.limit.maxmemory;
    if limit == 0 || engine.used_bytes <= limit {
        return Ok(());
    }
    let policy = engine.limit.policy;
    if policy == EvictionPolicy::NoEviction {
        return Err(EngineError::OutOfMemory);
    }
    while engine.used_bytes > limit {
        if !fill_pool(engine, policy) {
            return Err(EngineError::OutOfMemory);
        }
        // Take the best pooled candidate that still names a live key.
        while let Some(best) = engine.pool.candidates.pop() {
            let live = engine.slots[best.slot_id as usize]
                .as_ref()
                .is_some_and(|s| s.key == best.key);
            let eligible = live
                && (!policy.volatile_only()
                    || engine.index.contains_key(&best.key[..]) && {
                        let slot = engine.slots[best.slot_id as usize].as_ref().expect("live");
                        slot.entry.expire_at_ms.is_some()
                    });
            if eligible {
                let slot = engine.remove_slot(best.slot_id);
                evicted.push(slot.key);
                break;
            }
        }
    }
    Ok(())
}
