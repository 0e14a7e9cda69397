//! The in-process counter store: sharded, memory-bounded, idle keys expire.
//!
//! Why in-process first: the notes want the limiter not to slow requests
//! down; a local decision is a hash lookup under an uncontended lock (~100 ns,
//! see BENCHMARKS.md), no network hop. Its limit is the one the notes name —
//! synchronization: each process counts alone, so N gateways allow N × the
//! limit unless clients are pinned (sticky sessions, which the notes advise
//! against) or the [`super::redis`] store is used.
//!
//! Sharding: keys hash onto `shards` mutex-protected maps, so concurrent
//! requests for different keys rarely contend. The shard is picked by xxh3
//! with a per-store random seed (cheap, and clients cannot predict it to pile
//! keys onto one shard); each shard's map keeps SipHash, std's HashDoS-resistant
//! default, because its keys embed client-chosen values. Memory: each shard
//! holds at most `keys_max / shards` keys and `bytes_max / shards` bytes
//! (key + state, counting sliding-log timestamps). A full shard first drops
//! every idle key — one whose state equals a fresh one, the notes' EXPIRE —
//! then, if still full, the least recently used key: that client's count
//! restarts, which errs toward admitting one client rather than failing all.

use crate::algorithm::{Algorithm, Decision, Nanos, Quota, State};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};

/// Knobs of the in-process store.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MemoryConfig {
    /// Independent locks; more shards, less contention (rounded to ≥ 1).
    pub shards: usize,
    /// Most keys held at once across all shards.
    pub keys_max: usize,
    /// Most bytes of keys and states held at once across all shards.
    pub bytes_max: usize,
}

impl Default for MemoryConfig {
    fn default() -> MemoryConfig {
        MemoryConfig {
            shards: 64,
            keys_max: 1_000_000,
            bytes_max: 256 * 1024 * 1024,
        }
    }
}

#[derive(Debug)]
struct Entry {
    state: State,
    /// Why kept: lets a sweep drop the key without knowing its quota.
    idle_at: Nanos,
    /// For LRU eviction when the shard is full of live keys.
    last_used: Nanos,
    /// Bytes charged to the shard for this entry.
    size_bytes: usize,
}

#[derive(Debug, Default)]
struct Shard {
    map: HashMap<Box<str>, Entry>,
    bytes: usize,
}

/// Sharded in-process counters.
#[derive(Debug)]
pub struct MemoryStore {
    shards: Box<[Mutex<Shard>]>,
    /// Random per store: shard choice is unpredictable to clients.
    seed: u64,
    keys_per_shard_max: usize,
    bytes_per_shard_max: usize,
}

impl MemoryStore {
    /// An empty store.
    pub fn new(config: &MemoryConfig) -> MemoryStore {
        let shards = config.shards.max(1);
        MemoryStore {
            shards: (0..shards).map(|_| Mutex::new(Shard::default())).collect(),
            seed: RandomState::new().hash_one(0u64),
            keys_per_shard_max: (config.keys_max / shards).max(1),
            bytes_per_shard_max: (config.bytes_max / shards).max(1),
        }
    }

    /// Decides one request for `key` at `now_ns` (atomic per key).
    pub fn check(&self, key: &str, algorithm: Algorithm, quota: &Quota, now_ns: Nanos) -> Decision {
        let hash = xxhash_rust::xxh3::xxh3_64_with_seed(key.as_bytes(), self.seed);
        let index = (hash % self.shards.len() as u64) as usize;
        let mut shard = self.shards[index].lock();
        if let Some(entry) = shard.map.get_mut(key) {
            if entry.state.algorithm() != algorithm {
                // The rule changed algorithm on reload: old state means nothing.
                entry.state = State::new(algorithm, quota, now_ns);
            }
            let decision = entry.state.check(quota, now_ns);
            entry.idle_at = entry.state.idle_at(quota);
            entry.last_used = now_ns;
            let size = key.len() + entry.state.size_bytes();
            let old = std::mem::replace(&mut entry.size_bytes, size);
            shard.bytes = shard.bytes + size - old;
            if shard.bytes > self.bytes_per_shard_max {
                // A growing sliding log pushed the shard over: evict others.
                self.make_room(&mut shard, now_ns, 0, Some(key));
            }
            return decision;
        }
        let mut state = State::new(algorithm, quota, now_ns);
        let decision = state.check(quota, now_ns);
        let size_bytes = key.len() + state.size_bytes();
        self.make_room(&mut shard, now_ns, size_bytes, None);
        let entry = Entry {
            idle_at: state.idle_at(quota),
            state,
            last_used: now_ns,
            size_bytes,
        };
        shard.bytes += size_bytes;
        shard.map.insert(key.into(), entry);
        debug_assert!(shard.map.len() <= self.keys_per_shard_max);
        decision
    }

    /// Drops idle keys, then least-recently-used ones (never `keep`), until
    /// `incoming` more bytes and one more key fit.
    fn make_room(&self, shard: &mut Shard, now_ns: Nanos, incoming: usize, keep: Option<&str>) {
        let keys_max = self.keys_per_shard_max - usize::from(keep.is_none());
        let full =
            |s: &Shard| s.map.len() > keys_max || s.bytes + incoming > self.bytes_per_shard_max;
        if !full(shard) {
            return;
        }
        sweep_shard(shard, now_ns);
        while full(shard) {
            let oldest = shard
                .map
                .iter()
                .filter(|(k, _)| Some(&***k) != keep)
                .min_by_key(|(_, e)| e.last_used)
                .map(|(k, _)| k.clone());
            let Some(key) = oldest else { break };
            let removed = shard.map.remove(&key).map_or(0, |e| e.size_bytes);
            shard.bytes -= removed;
        }
    }

    /// Drops every key idle at `now_ns`; returns how many (run it
    /// periodically to return memory between bursts).
    pub fn sweep(&self, now_ns: Nanos) -> usize {
        self.shards
            .iter()
            .map(|shard| sweep_shard(&mut shard.lock(), now_ns))
            .sum()
    }

    /// Keys held now.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().map.len()).sum()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes charged now.
    pub fn size_bytes(&self) -> usize {
        self.shards.iter().map(|s| s.lock().bytes).sum()
    }
}

fn sweep_shard(shard: &mut Shard, now_ns: Nanos) -> usize {
    let before = shard.map.len();
    let mut freed = 0;
    shard.map.retain(|_, e| {
        let keep = e.idle_at > now_ns;
        if !keep {
            freed += e.size_bytes;
        }
        keep
    });
    shard.bytes -= freed;
    before - shard.map.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quota() -> Quota {
        Quota::new(2, 1_000).unwrap()
    }

    #[test]
    fn counts_per_key_and_expires_idle_keys() {
        let store = MemoryStore::new(&MemoryConfig::default());
        for alg in Algorithm::ALL {
            let key = alg.name();
            assert!(store.check(key, alg, &quota(), 0).allowed);
            assert!(store.check(key, alg, &quota(), 0).allowed || alg == Algorithm::LeakingBucket);
        }
        assert!(
            !store
                .check("fixed_window", Algorithm::FixedWindow, &quota(), 1)
                .allowed
        );
        assert!(
            store
                .check("other", Algorithm::FixedWindow, &quota(), 1)
                .allowed
        );
        assert_eq!(store.len(), 6);
        assert_eq!(store.sweep(10_000), 6);
        assert!(store.is_empty());
        assert_eq!(store.size_bytes(), 0);
    }

    #[test]
    fn a_full_store_evicts_and_stays_bounded() {
        let config = MemoryConfig {
            shards: 4,
            keys_max: 40,
            bytes_max: usize::MAX,
        };
        let store = MemoryStore::new(&config);
        for i in 0..1_000u64 {
            store.check(
                &format!("client-{i}"),
                Algorithm::SlidingWindowLog,
                &quota(),
                i,
            );
        }
        assert!(store.len() <= 40);
        let bytes = MemoryConfig {
            shards: 2,
            keys_max: usize::MAX,
            bytes_max: 4_096,
        };
        let store = MemoryStore::new(&bytes);
        let big = Quota::new(1_000, 1_000_000).unwrap();
        for i in 0..200u64 {
            for _ in 0..50 {
                store.check(&format!("k{i}"), Algorithm::SlidingWindowLog, &big, i);
            }
        }
        assert!(store.size_bytes() <= 4_096, "{}", store.size_bytes());
    }
}
