//! The optional disk tier: keys evicted from memory are written to one
//! file each in `cache.disk_dir` and read back (and promoted to memory) on
//! a later hit; the tier is bounded by `cache.disk_bytes_max`, least
//! recently used out first.
//!
//! The index (key → file, size, tags) lives in memory; files are written,
//! read and deleted on tokio's blocking pool, never on a worker thread. A
//! purge bumps an epoch, so a write that was in flight during the purge is
//! discarded instead of bringing the purged object back. Files are removed
//! at start: the tier extends the cache's capacity, it is not durable.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use lru::LruCache;
use parking_lot::Mutex;

use super::super::entry;
use super::super::key::Key;
use super::memory::Slot;

/// What the index knows of one file.
struct Item {
    file: PathBuf,
    bytes: u64,
    key: Key,
    tags: Vec<String>,
}

struct Inner {
    lru: LruCache<String, Item>,
    bytes: u64,
}

/// The disk tier.
pub struct Disk {
    dir: PathBuf,
    bytes_max: u64,
    inner: Mutex<Inner>,
    sequence: AtomicU64,
    epoch: AtomicU64,
}

/// The extension of the tier's files (the only files it removes).
const EXTENSION: &str = "hce";

impl Disk {
    /// Opens `dir` (created if missing) and removes old cache files.
    pub fn open(dir: &Path, bytes_max: u64) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        for file in std::fs::read_dir(dir)? {
            let path = file?.path();
            if path.extension().is_some_and(|ext| ext == EXTENSION) {
                std::fs::remove_file(&path)?;
            }
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            bytes_max,
            inner: Mutex::new(Inner {
                lru: LruCache::unbounded(),
                bytes: 0,
            }),
            sequence: AtomicU64::new(0),
            epoch: AtomicU64::new(0),
        })
    }

    /// Whether `full` has a file.
    pub fn contains(&self, full: &str) -> bool {
        self.inner.lock().lru.contains(full)
    }

    /// Writes `slot` to a file; returns how many keys were evicted.
    pub async fn put(self: Arc<Self>, slot: Slot) -> usize {
        let epoch = self.epoch.load(Ordering::SeqCst);
        let file = self.dir.join(format!(
            "{}.{EXTENSION}",
            self.sequence.fetch_add(1, Ordering::Relaxed)
        ));
        let data = entry::encode(&slot.key, &slot.variants);
        let bytes = data.len() as u64;
        if bytes > self.bytes_max {
            return 0;
        }
        let path = file.clone();
        let written = tokio::task::spawn_blocking(move || std::fs::write(&path, data)).await;
        if !matches!(written, Ok(Ok(()))) {
            tracing::warn!(file = %file.display(), "cannot write a disk cache file: {written:?}");
            remove_files(vec![file]);
            return 0;
        }
        let mut tags: Vec<String> = slot.variants.iter().flat_map(|e| e.tags.clone()).collect();
        tags.sort();
        tags.dedup();
        let mut doomed = Vec::new();
        let evicted;
        {
            let mut inner = self.inner.lock();
            if self.epoch.load(Ordering::SeqCst) != epoch {
                drop(inner);
                remove_files(vec![file]);
                return 0;
            }
            if let Some(old) = inner.lru.pop(&slot.key.full) {
                inner.bytes -= old.bytes;
                doomed.push(old.file);
            }
            let before = doomed.len();
            while inner.bytes + bytes > self.bytes_max {
                let Some((_, old)) = inner.lru.pop_lru() else {
                    break;
                };
                inner.bytes -= old.bytes;
                doomed.push(old.file);
            }
            evicted = doomed.len() - before;
            inner.bytes += bytes;
            let key = slot.key;
            inner.lru.put(
                key.full.clone(),
                Item {
                    file,
                    bytes,
                    key,
                    tags,
                },
            );
        }
        remove_files(doomed);
        evicted
    }

    /// Takes `full`'s slot out of the tier (for promotion to memory).
    pub async fn take(&self, full: &str) -> Option<Slot> {
        let item = {
            let mut inner = self.inner.lock();
            let item = inner.lru.pop(full)?;
            inner.bytes -= item.bytes;
            item
        };
        let path = item.file.clone();
        let read = tokio::task::spawn_blocking(move || {
            let data = std::fs::read(&path);
            let _ = std::fs::remove_file(&path);
            data
        })
        .await;
        let data = match read {
            Ok(Ok(data)) => data,
            other => {
                tracing::warn!(file = %item.file.display(), "cannot read a disk cache file: {other:?}");
                return None;
            }
        };
        match entry::decode(Bytes::from(data)) {
            Ok((key, variants)) if key == item.key => Some(Slot {
                key,
                variants: variants.into_iter().map(Arc::new).collect(),
            }),
            Ok(_) => None,
            Err(err) => {
                tracing::warn!(file = %item.file.display(), "corrupt disk cache file dropped: {err}");
                None
            }
        }
    }

    /// Removes every key `doomed` selects (by key and tags); returns how many.
    pub fn remove_if(&self, doomed: impl Fn(&Key, &[String]) -> bool) -> usize {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        let mut files = Vec::new();
        {
            let mut inner = self.inner.lock();
            let keys: Vec<String> = inner
                .lru
                .iter()
                .filter(|(_, item)| doomed(&item.key, &item.tags))
                .map(|(key, _)| key.clone())
                .collect();
            for key in keys {
                if let Some(item) = inner.lru.pop(&key) {
                    inner.bytes -= item.bytes;
                    files.push(item.file);
                }
            }
        }
        let count = files.len();
        remove_files(files);
        count
    }

    /// Bytes and keys held.
    pub fn usage(&self) -> (u64, usize) {
        let inner = self.inner.lock();
        (inner.bytes, inner.lru.len())
    }
}

/// Deletes `files` on the blocking pool.
fn remove_files(files: Vec<PathBuf>) {
    if files.is_empty() {
        return;
    }
    tokio::task::spawn_blocking(move || {
        for file in files {
            let _ = std::fs::remove_file(file);
        }
    });
}
