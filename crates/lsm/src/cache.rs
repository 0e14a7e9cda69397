//! A bounded CLOCK cache of decoded SSTable data blocks.
//!
//! Why it exists: hot blocks (the book's "keep frequently used data in memory") are
//! served without a disk read or a checksum and decompression pass. The cache is charged
//! by block bytes and never exceeds its capacity. It is split into shards so concurrent
//! readers rarely contend.
//!
//! Why CLOCK and not LRU: every seek and scan step that enters a block asks the cache,
//! and an LRU hit has to move the block to the front of a shared order (a write under
//! the shard's lock; a `BTreeMap` update here before). A CLOCK hit only sets the block's
//! "referenced" bit, under a shared read lock. Eviction sweeps blocks in insertion
//! order, giving a referenced block a second chance (clearing its bit) and dropping the
//! first unreferenced one: close to LRU's hit ratio, as in RocksDB's clock cache.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use parking_lot::RwLock;
// FxHash: one multiply per word. The keys are (table id, offset) pairs of our
// own, not attacker-chosen, and SipHash, the default, showed in seek profiles.
use rustc_hash::FxBuildHasher;

/// A decoded (checksummed, decompressed) data block.
pub(crate) type Block = Arc<Vec<u8>>;

/// Cache key: (table id, block offset in the file).
type BlockKey = (u64, u64);

/// Number of independently locked shards.
const SHARDS: usize = 16;

/// A cached block and its CLOCK bit.
struct Slot {
    /// The block.
    block: Block,
    /// Used since the sweep last passed it.
    referenced: AtomicBool,
}

/// One shard: the blocks, and the order the clock hand sweeps them in.
#[derive(Default)]
struct Shard {
    /// Cached blocks.
    map: HashMap<BlockKey, Slot, FxBuildHasher>,
    /// Every key of `map` once, the hand at the front.
    ring: VecDeque<BlockKey>,
    /// Bytes charged.
    used_bytes: usize,
}

/// The sharded CLOCK block cache.
pub(crate) struct BlockCache {
    /// The shards.
    shards: Vec<RwLock<Shard>>,
    /// Capacity of each shard.
    shard_capacity_bytes: usize,
    /// Lookups that found the block.
    pub hits: AtomicU64,
    /// Lookups that had to read the disk.
    pub misses: AtomicU64,
}

impl BlockCache {
    /// A cache holding at most `capacity_bytes` of blocks (0 disables caching).
    pub(crate) fn new(capacity_bytes: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| RwLock::new(Shard::default())).collect(),
            shard_capacity_bytes: capacity_bytes / SHARDS,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    fn shard(&self, key: BlockKey) -> &RwLock<Shard> {
        let h = key.0.wrapping_mul(0x9E37_79B9_7F4A_7C15)
            ^ (key.1 >> 12).wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
        &self.shards[(h >> 32) as usize % SHARDS]
    }

    /// The cached block, marking it referenced.
    pub(crate) fn get(&self, table_id: u64, offset: u64) -> Option<Block> {
        let key = (table_id, offset);
        let shard = self.shard(key).read();
        let Some(slot) = shard.map.get(&key) else {
            self.misses.fetch_add(1, Ordering::Relaxed);
            return None;
        };
        if !slot.referenced.load(Ordering::Relaxed) {
            slot.referenced.store(true, Ordering::Relaxed);
        }
        self.hits.fetch_add(1, Ordering::Relaxed);
        Some(slot.block.clone())
    }

    /// Caches a block, evicting unreferenced ones to stay within capacity.
    pub(crate) fn insert(&self, table_id: u64, offset: u64, block: Block) {
        let charge = block.len();
        if charge > self.shard_capacity_bytes {
            return;
        }
        let key = (table_id, offset);
        let mut guard = self.shard(key).write();
        let shard = &mut *guard;
        let slot = Slot {
            block,
            referenced: AtomicBool::new(false),
        };
        match shard.map.insert(key, slot) {
            Some(old) => shard.used_bytes -= old.block.len(),
            None => shard.ring.push_back(key),
        }
        shard.used_bytes += charge;
        // Each slot is passed at most twice (its bit cleared, then evicted), so the
        // sweep ends; the block just inserted is last in the ring.
        while shard.used_bytes > self.shard_capacity_bytes {
            let Some(victim) = shard.ring.pop_front() else {
                break;
            };
            let slot = shard
                .map
                .get(&victim)
                .expect("ring and map hold the same keys");
            if victim != key && slot.referenced.swap(false, Ordering::Relaxed) {
                shard.ring.push_back(victim);
                continue;
            }
            let old = shard.map.remove(&victim).expect("present");
            shard.used_bytes -= old.block.len();
        }
        debug_assert_eq!(shard.map.len(), shard.ring.len());
    }

    /// Bytes currently cached.
    pub(crate) fn used_bytes(&self) -> usize {
        self.shards.iter().map(|s| s.read().used_bytes).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stays_within_capacity_and_evicts_unreferenced_blocks_first() {
        let cache = BlockCache::new(SHARDS * 100);
        for i in 0..1000u64 {
            cache.insert(1, i << 12, Arc::new(vec![0; 40]));
            assert!(cache.used_bytes() <= SHARDS * 100);
        }
        cache.insert(7, 0, Arc::new(vec![1; 40]));
        assert!(cache.get(7, 0).is_some());
        assert!(cache.get(1, 0).is_none(), "oldest block evicted");
        // In one shard (capacity 100: two blocks of 40), a referenced block survives
        // an insert that evicts, the unreferenced one goes.
        let shard_of = |k: BlockKey| cache.shard(k) as *const _;
        let keys: Vec<BlockKey> = (0..10_000u64)
            .map(|i| (9, i << 12))
            .filter(|k| shard_of(*k) == shard_of((9, 0)))
            .take(3)
            .collect();
        let cache = BlockCache::new(SHARDS * 100);
        cache.insert(keys[0].0, keys[0].1, Arc::new(vec![0; 40]));
        cache.insert(keys[1].0, keys[1].1, Arc::new(vec![0; 40]));
        assert!(cache.get(keys[0].0, keys[0].1).is_some());
        cache.insert(keys[2].0, keys[2].1, Arc::new(vec![0; 40]));
        assert!(cache.get(keys[0].0, keys[0].1).is_some(), "second chance");
        assert!(
            cache.get(keys[1].0, keys[1].1).is_none(),
            "unreferenced: evicted"
        );
        assert!(cache.get(keys[2].0, keys[2].1).is_some(), "just inserted");
    }
}
