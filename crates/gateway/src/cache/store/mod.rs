//! Where objects live: a bounded memory tier ([`memory`]) and, when
//! configured, a bounded disk tier ([`disk`]) that catches what memory
//! evicts. A lookup tries memory, then disk (promoting the key back into
//! memory); a purge removes from both.

pub mod disk;
pub mod memory;

use std::sync::Arc;

use http::HeaderMap;

use super::config::CacheConfig;
use super::entry::Entry;
use super::key::Key;
use super::metrics::CacheMetrics;
pub use memory::Slot;

/// The two tiers.
pub struct Store {
    memory: memory::Memory,
    disk: Option<Arc<disk::Disk>>,
    metrics: CacheMetrics,
}

impl Store {
    /// Opens the tiers `config` describes (the disk tier's directory is
    /// cleared: blocking, call at start).
    pub fn open(config: &CacheConfig, metrics: CacheMetrics) -> std::io::Result<Self> {
        let disk = match &config.disk_dir {
            Some(dir) => Some(Arc::new(disk::Disk::open(dir, config.disk_bytes_max)?)),
            None => None,
        };
        Ok(Self {
            memory: memory::Memory::new(config.memory_bytes_max),
            disk,
            metrics,
        })
    }

    /// The variant of `key` that `request` selects, from memory or disk.
    pub async fn find(&self, key: &Key, request: &HeaderMap) -> Option<Arc<Entry>> {
        if let Some(found) = self.memory.find(&key.full, request) {
            return Some(found);
        }
        let disk = self.disk.as_ref()?;
        if !disk.contains(&key.full) || self.memory.contains(&key.full) {
            return None;
        }
        let slot = disk.take(&key.full).await?;
        let found = slot.pick(request);
        let evicted = self.memory.insert_slot(slot);
        self.demote(evicted);
        found
    }

    /// Stores `entry` under `key`.
    pub fn insert(&self, key: &Key, entry: Arc<Entry>) {
        let evicted = self.memory.insert(key, entry);
        self.demote(evicted);
    }

    /// Sends slots evicted from memory to disk (in the background).
    fn demote(&self, evicted: Vec<Slot>) {
        self.metrics.evicted("memory", evicted.len());
        let (bytes, keys) = self.memory.usage();
        self.metrics.set_tier("memory", bytes, keys);
        let Some(disk) = &self.disk else { return };
        for slot in evicted {
            let disk = disk.clone();
            let metrics = self.metrics.clone();
            tokio::spawn(async move {
                let evicted = disk.clone().put(slot).await;
                metrics.evicted("disk", evicted);
                let (bytes, keys) = disk.usage();
                metrics.set_tier("disk", bytes, keys);
            });
        }
    }

    /// Removes every key whose `Key` or tags `doomed` selects, in both
    /// tiers; returns how many.
    pub fn purge(&self, doomed: impl Fn(&Key, &[String]) -> bool) -> usize {
        let mut count = self.memory.remove_if(|slot| {
            let tags: Vec<String> = slot.variants.iter().flat_map(|e| e.tags.clone()).collect();
            doomed(&slot.key, &tags)
        });
        let (bytes, keys) = self.memory.usage();
        self.metrics.set_tier("memory", bytes, keys);
        if let Some(disk) = &self.disk {
            count += disk.remove_if(&doomed);
            let (bytes, keys) = disk.usage();
            self.metrics.set_tier("disk", bytes, keys);
        }
        count
    }
}
