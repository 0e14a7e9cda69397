//! A bounded cache of chunk records fetched from cold storage.
//!
//! Why a module: a dashboard re-reads the same old range on every refresh;
//! without a cache each refresh would fetch every chunk again over the
//! network. Least-recently-used records leave once the cached bytes pass
//! `bytes_max`, so the cache's memory is bounded whatever is queried.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use parking_lot::Mutex;

/// (block id, offset in its chunks object).
type Key = (Arc<str>, u64);

#[derive(Default)]
struct State {
    /// Key → (bytes, last use).
    entries: HashMap<Key, (Arc<Vec<u8>>, u64)>,
    /// Last use → key, oldest first.
    order: BTreeMap<u64, Key>,
    bytes: u64,
    tick: u64,
    hits: u64,
    misses: u64,
}

/// Chunk records by (block, offset), least recently used out first.
pub struct ChunkCache {
    bytes_max: u64,
    state: Mutex<State>,
}

/// The cache's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Bytes held.
    pub bytes: u64,
    /// Records held.
    pub entries: usize,
    /// Reads answered from the cache.
    pub hits: u64,
    /// Reads that went to the store.
    pub misses: u64,
}

impl ChunkCache {
    /// A cache of at most `bytes_max` bytes (0: nothing is kept).
    pub fn new(bytes_max: u64) -> Self {
        Self {
            bytes_max,
            state: Mutex::default(),
        }
    }

    /// The record at `key`, if cached (it becomes the most recent).
    pub fn get(&self, block: &Arc<str>, offset: u64) -> Option<Arc<Vec<u8>>> {
        let mut s = self.state.lock();
        s.tick += 1;
        let tick = s.tick;
        let key = (block.clone(), offset);
        let Some((bytes, used)) = s.entries.get_mut(&key) else {
            s.misses += 1;
            return None;
        };
        let (bytes, old) = (bytes.clone(), std::mem::replace(used, tick));
        s.order.remove(&old);
        s.order.insert(tick, key);
        s.hits += 1;
        Some(bytes)
    }

    /// Keeps a record, evicting the least recently used ones past the bound.
    pub fn put(&self, block: &Arc<str>, offset: u64, bytes: Arc<Vec<u8>>) {
        let len = bytes.len() as u64;
        if len > self.bytes_max {
            return;
        }
        let mut s = self.state.lock();
        s.tick += 1;
        let tick = s.tick;
        let key = (block.clone(), offset);
        if let Some((old, used)) = s.entries.insert(key.clone(), (bytes, tick)) {
            s.order.remove(&used);
            s.bytes -= old.len() as u64;
        }
        s.order.insert(tick, key);
        s.bytes += len;
        while s.bytes > self.bytes_max {
            let Some((_, k)) = s.order.pop_first() else {
                break;
            };
            if let Some((b, _)) = s.entries.remove(&k) {
                s.bytes -= b.len() as u64;
            }
        }
        debug_assert_eq!(s.entries.len(), s.order.len());
    }

    /// Drops every record of `block` (it was deleted).
    pub fn forget(&self, block: &str) {
        let mut s = self.state.lock();
        let gone: Vec<Key> = s
            .entries
            .keys()
            .filter(|k| &*k.0 == block)
            .cloned()
            .collect();
        for k in gone {
            if let Some((b, used)) = s.entries.remove(&k) {
                s.bytes -= b.len() as u64;
                s.order.remove(&used);
            }
        }
    }

    /// Its counters.
    pub fn stats(&self) -> CacheStats {
        let s = self.state.lock();
        CacheStats {
            bytes: s.bytes,
            entries: s.entries.len(),
            hits: s.hits,
            misses: s.misses,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stays_within_its_bound_and_evicts_the_least_recent() {
        let c = ChunkCache::new(100);
        let b: Arc<str> = "blk".into();
        c.put(&b, 0, Arc::new(vec![0; 40]));
        c.put(&b, 1, Arc::new(vec![1; 40]));
        assert!(c.get(&b, 0).is_some()); // 0 is now the most recent
        c.put(&b, 2, Arc::new(vec![2; 40])); // 120 > 100: 1 goes
        assert!(c.get(&b, 1).is_none());
        assert!(c.get(&b, 0).is_some() && c.get(&b, 2).is_some());
        assert_eq!(c.stats().bytes, 80);
        c.put(&b, 3, Arc::new(vec![3; 101])); // larger than the bound: not kept
        assert!(c.get(&b, 3).is_none());
        c.forget("blk");
        assert_eq!(c.stats().entries, 0);
        assert_eq!(c.stats().bytes, 0);
    }
}
