//! A bounded LRU cache of decoded SSTable data blocks.
//!
//! Why it exists: hot blocks (the book's "keep frequently used data in memory") are
//! served without a disk read or a checksum and decompression pass. The cache is charged
//! by block bytes and never exceeds its capacity. It is split into shards, each behind its
//! own mutex, so concurrent readers rarely contend.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

/// A decoded (checksummed, decompressed) data block.
pub(crate) type Block = Arc<Vec<u8>>;

/// Cache key: (table id, block offset in the file).
type BlockKey = (u64, u64);

/// Number of independently locked shards.
const SHARDS: usize = 16;

/// One shard: a map plus a recency order (tick → key; smallest tick = least recent).
#[derive(Default)]
struct Shard {
    /// Cached blocks with the tick of their last use.
    map: HashMap<BlockKey, (Block, u64)>,
    /// Recency order for eviction.
    order: BTreeMap<u64, BlockKey>,
    /// Bytes charged.
    used_bytes: usize,
    /// Monotonic use counter.
    tick: u64,
}

/// The sharded LRU block cache.
pub(crate) struct BlockCache {
    /// The shards.
    shards: Vec<Mutex<Shard>>,
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
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            shard_capacity_bytes: capacity_bytes / SHARDS,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    fn shard(&self, key: BlockKey) -> &Mutex<Shard> {
        let h = key.0.wrapping_mul(0x9E37_79B9_7F4A_7C15)
            ^ (key.1 >> 12).wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
        &self.shards[(h >> 32) as usize % SHARDS]
    }

    /// The cached block, marking it most recently used.
    pub(crate) fn get(&self, table_id: u64, offset: u64) -> Option<Block> {
        let key = (table_id, offset);
        let mut shard = self.shard(key).lock();
        shard.tick += 1;
        let tick = shard.tick;
        let Some((block, old_tick)) = shard.map.get_mut(&key) else {
            self.misses.fetch_add(1, Ordering::Relaxed);
            return None;
        };
        let (block, old) = (block.clone(), std::mem::replace(old_tick, tick));
        shard.order.remove(&old);
        shard.order.insert(tick, key);
        self.hits.fetch_add(1, Ordering::Relaxed);
        Some(block)
    }

    /// Caches a block, evicting least recently used ones to stay within capacity.
    pub(crate) fn insert(&self, table_id: u64, offset: u64, block: Block) {
        let charge = block.len();
        if charge > self.shard_capacity_bytes {
            return;
        }
        let key = (table_id, offset);
        let mut shard = self.shard(key).lock();
        shard.tick += 1;
        let tick = shard.tick;
        if let Some((old, old_tick)) = shard.map.insert(key, (block, tick)) {
            shard.used_bytes -= old.len();
            shard.order.remove(&old_tick);
        }
        shard.order.insert(tick, key);
        shard.used_bytes += charge;
        while shard.used_bytes > self.shard_capacity_bytes {
            let Some((_, victim)) = shard.order.pop_first() else {
                break;
            };
            if let Some((old, _)) = shard.map.remove(&victim) {
                shard.used_bytes -= old.len();
            }
        }
        debug_assert_eq!(shard.map.len(), shard.order.len());
    }

    /// Bytes currently cached.
    pub(crate) fn used_bytes(&self) -> usize {
        self.shards.iter().map(|s| s.lock().used_bytes).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stays_within_capacity_and_evicts_lru() {
        let cache = BlockCache::new(SHARDS * 100);
        for i in 0..1000u64 {
            cache.insert(1, i << 12, Arc::new(vec![0; 40]));
            assert!(cache.used_bytes() <= SHARDS * 100);
        }
        cache.insert(7, 0, Arc::new(vec![1; 40]));
        assert!(cache.get(7, 0).is_some());
        assert!(cache.get(1, 0).is_none(), "oldest block evicted");
    }
}
