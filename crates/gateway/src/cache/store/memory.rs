//! The memory tier: keys in least-recently-used order, bounded in bytes.
//!
//! LRU is the eviction policy the notes name first ("가장 널리 쓰이는 것은
//! LRU"); bounding by bytes rather than by count makes it size-aware: one
//! large object pushes out as many small ones as its size needs, and an
//! object larger than the route's `object_bytes_max` (at most half the tier)
//! never enters. Each key holds its `Vary` variants (at most
//! [`VARIANTS_MAX`], oldest dropped first) and is evicted as a whole.
//!
//! One mutex guards the map: a hit holds it for a hash lookup and a list
//! splice, far shorter than the syscalls that answer the request.

use std::sync::Arc;

use http::HeaderMap;
use lru::LruCache;
use parking_lot::Mutex;

use super::super::entry::Entry;
use super::super::key::Key;
use super::super::vary;

/// Variants kept per key.
pub const VARIANTS_MAX: usize = 8;

/// A key and its variants, newest last.
#[derive(Debug, Clone)]
pub struct Slot {
    /// The key.
    pub key: Key,
    /// The stored variants.
    pub variants: Vec<Arc<Entry>>,
}

impl Slot {
    /// Bytes the slot costs.
    pub fn size_bytes(&self) -> u64 {
        self.variants.iter().map(|e| e.size_bytes()).sum::<u64>() + self.key.full.len() as u64 * 2
    }

    /// The newest variant `request` selects.
    pub fn pick(&self, request: &HeaderMap) -> Option<Arc<Entry>> {
        self.variants
            .iter()
            .rev()
            .find(|entry| vary::matches(&entry.vary, request))
            .cloned()
    }
}

struct Inner {
    lru: LruCache<String, (Slot, u64)>,
    bytes: u64,
}

/// The memory tier.
pub struct Memory {
    inner: Mutex<Inner>,
    bytes_max: u64,
}

impl Memory {
    /// An empty tier holding at most `bytes_max` bytes.
    pub fn new(bytes_max: u64) -> Self {
        Self {
            inner: Mutex::new(Inner {
                lru: LruCache::unbounded(),
                bytes: 0,
            }),
            bytes_max,
        }
    }

    /// The variant of `full` that `request` selects, made most recent.
    pub fn find(&self, full: &str, request: &HeaderMap) -> Option<Arc<Entry>> {
        let mut inner = self.inner.lock();
        inner.lru.get(full).and_then(|(slot, _)| slot.pick(request))
    }

    /// Whether `full` is here (without touching its recency).
    pub fn contains(&self, full: &str) -> bool {
        self.inner.lock().lru.contains(full)
    }

    /// Stores `entry` under `key`, replacing the variant with the same
    /// selection; returns the slots evicted to make room.
    pub fn insert(&self, key: &Key, entry: Arc<Entry>) -> Vec<Slot> {
        let mut inner = self.inner.lock();
        let mut slot = match inner.lru.pop(&key.full) {
            Some((slot, bytes)) => {
                inner.bytes -= bytes;
                slot
            }
            None => Slot {
                key: key.clone(),
                variants: Vec::new(),
            },
        };
        slot.variants.retain(|old| old.vary != entry.vary);
        slot.variants.push(entry);
        if slot.variants.len() > VARIANTS_MAX {
            slot.variants.remove(0);
        }
        Self::put(&mut inner, slot, self.bytes_max)
    }

    /// Puts a whole slot back (a promotion from disk); returns evictions.
    pub fn insert_slot(&self, slot: Slot) -> Vec<Slot> {
        let mut inner = self.inner.lock();
        if let Some((_, bytes)) = inner.lru.pop(&slot.key.full) {
            inner.bytes -= bytes;
        }
        Self::put(&mut inner, slot, self.bytes_max)
    }

    fn put(inner: &mut Inner, slot: Slot, bytes_max: u64) -> Vec<Slot> {
        let bytes = slot.size_bytes();
        if bytes > bytes_max {
            // Larger than the whole tier (many big variants): it alone goes.
            return vec![slot];
        }
        let mut evicted = Vec::new();
        while inner.bytes + bytes > bytes_max {
            let Some((_, (old, old_bytes))) = inner.lru.pop_lru() else {
                break;
            };
            inner.bytes -= old_bytes;
            evicted.push(old);
        }
        inner.bytes += bytes;
        inner.lru.put(slot.key.full.clone(), (slot, bytes));
        debug_assert!(inner.bytes <= bytes_max);
        evicted
    }

    /// Removes every slot `doomed` selects; returns how many.
    pub fn remove_if(&self, doomed: impl Fn(&Slot) -> bool) -> usize {
        let mut inner = self.inner.lock();
        let keys: Vec<String> = inner
            .lru
            .iter()
            .filter(|(_, (slot, _))| doomed(slot))
            .map(|(key, _)| key.clone())
            .collect();
        for key in &keys {
            if let Some((_, bytes)) = inner.lru.pop(key) {
                inner.bytes -= bytes;
            }
        }
        keys.len()
    }

    /// Bytes and keys held.
    pub fn usage(&self) -> (u64, usize) {
        let inner = self.inner.lock();
        (inner.bytes, inner.lru.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use http::StatusCode;

    fn entry(size: usize) -> Arc<Entry> {
        Arc::new(Entry {
            status: StatusCode::OK,
            headers: HeaderMap::new(),
            body: Bytes::from(vec![b'x'; size]),
            vary: Vec::new(),
            tags: Vec::new(),
            response_time_ms: 0,
            initial_age_ms: 0,
            lifetime_ms: 1,
            stale: Default::default(),
        })
    }

    fn key(name: &str) -> Key {
        Key {
            host: String::new(),
            path: name.into(),
            query: String::new(),
            full: name.into(),
        }
    }

    #[test]
    fn least_recently_used_leaves_first_within_the_byte_bound() {
        let memory = Memory::new(3_000);
        let none = HeaderMap::new();
        assert!(memory.insert(&key("/a"), entry(800)).is_empty());
        assert!(memory.insert(&key("/b"), entry(800)).is_empty());
        assert!(memory.insert(&key("/c"), entry(800)).is_empty());
        assert!(memory.find("/a", &none).is_some());
        let evicted = memory.insert(&key("/d"), entry(800));
        assert_eq!(evicted.len(), 1);
        assert_eq!(evicted[0].key.full, "/b", "the least recently used goes");
        let big = memory.insert(&key("/big"), entry(2_500));
        assert_eq!(big.len(), 3, "size-aware: a big object pushes out several");
        let (bytes, keys) = memory.usage();
        assert!(bytes <= 3_000);
        assert_eq!(keys, 1);
        let too_big = memory.insert(&key("/huge"), entry(5_000));
        assert_eq!(
            too_big.len(),
            1,
            "a slot over the whole tier is refused alone"
        );
        assert_eq!(memory.usage().1, 1, "and evicts nothing else");
        assert_eq!(memory.remove_if(|slot| slot.key.full == "/big"), 1);
        assert_eq!(memory.usage(), (0, 0));
    }
}
