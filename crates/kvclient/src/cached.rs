//! [`Cached`]: the cache tier of chapter 1 in front of a store, cache-aside.
//!
//! The notes' cache tier ("캐시 계층") is a separate, fast store the web
//! servers read first: a read that misses goes to the database and fills the
//! cache with an expiry; a write goes to the database and then drops the
//! cached copy (so the next read fetches the new value rather than a stale
//! one). The notes' concerns map onto it as follows:
//!
//! - **expiry**: every cached value lives at most `ttl`; a value whose own
//!   TTL in the store is shorter can be served from the cache until `ttl`
//!   ends (keep `ttl` short, or do not cache expiring keys);
//! - **consistency**: write-then-invalidate leaves one window — a reader
//!   that missed, fetched the old value and fills the cache after the
//!   writer's delete caches the old value until `ttl`. Bounded by `ttl`;
//! - **single point of failure**: a cache that fails or times out is
//!   skipped (reads go to the store, counted as errors), never an outage;
//! - **eviction**: the cache server's own policy (`maxmemory-policy
//!   allkeys-lru` on our kv or Redis).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::{BoxFuture, KvClient, Pair, Result};

/// A store read through a cache (see the module docs).
pub struct Cached {
    cache: Arc<dyn KvClient>,
    store: Arc<dyn KvClient>,
    ttl: Duration,
    /// Reads answered by the cache.
    pub hits: AtomicU64,
    /// Reads that went to the store (absent from the cache).
    pub misses: AtomicU64,
    /// Cache operations that failed (the store answered instead).
    pub errors: AtomicU64,
}

impl Cached {
    /// `store` read through `cache`, cached values living at most `ttl`.
    pub fn new(cache: Arc<dyn KvClient>, store: Arc<dyn KvClient>, ttl: Duration) -> Self {
        assert!(!ttl.is_zero(), "a cache entry must live some time");
        Cached {
            cache,
            store,
            ttl,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            errors: AtomicU64::new(0),
        }
    }

    /// Drops the cached copy of `key` after a write (errors only counted).
    async fn invalidate(&self, key: &[u8]) {
        if self.cache.delete(key).await.is_err() {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl KvClient for Cached {
    fn get<'a>(&'a self, key: &'a [u8]) -> BoxFuture<'a, Result<Option<Vec<u8>>>> {
        Box::pin(async move {
            match self.cache.get(key).await {
                Ok(Some(value)) => {
                    self.hits.fetch_add(1, Ordering::Relaxed);
                    return Ok(Some(value));
                }
                Ok(None) => {
                    self.misses.fetch_add(1, Ordering::Relaxed);
                }
                Err(_) => {
                    self.errors.fetch_add(1, Ordering::Relaxed);
                    return self.store.get(key).await;
                }
            }
            let value = self.store.get(key).await?;
            if let Some(value) = &value
                && self.cache.set(key, value, Some(self.ttl)).await.is_err()
            {
                self.errors.fetch_add(1, Ordering::Relaxed);
            }
            Ok(value)
        })
    }

    fn set<'a>(
        &'a self,
        key: &'a [u8],
        value: &'a [u8],
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            self.store.set(key, value, ttl).await?;
            self.invalidate(key).await;
            Ok(())
        })
    }

    fn set_nx<'a>(
        &'a self,
        key: &'a [u8],
        value: &'a [u8],
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            let stored = self.store.set_nx(key, value, ttl).await?;
            if stored {
                self.invalidate(key).await;
            }
            Ok(stored)
        })
    }

    fn incr_by<'a>(&'a self, key: &'a [u8], delta: i64) -> BoxFuture<'a, Result<i64>> {
        Box::pin(async move {
            let value = self.store.incr_by(key, delta).await?;
            self.invalidate(key).await;
            Ok(value)
        })
    }

    fn scan_prefix<'a>(
        &'a self,
        prefix: &'a [u8],
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<Pair>>> {
        // Scans are not cached: the cache holds single keys, and a partial
        // cache cannot answer "every key with this prefix".
        self.store.scan_prefix(prefix, limit)
    }

    fn delete<'a>(&'a self, key: &'a [u8]) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            let existed = self.store.delete(key).await?;
            self.invalidate(key).await;
            Ok(existed)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embedded::Embedded;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reads_fill_the_cache_and_writes_invalidate_it() {
        let (c, s) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let cache: Arc<dyn KvClient> = Arc::new(Embedded::open(c.path()).unwrap());
        let store: Arc<dyn KvClient> = Arc::new(Embedded::open(s.path()).unwrap());
        let cached = Cached::new(cache.clone(), store.clone(), Duration::from_secs(60));
        cached.set(b"k", b"v1", None).await.unwrap();
        assert_eq!(cache.get(b"k").await.unwrap(), None, "writes do not fill");
        assert_eq!(cached.get(b"k").await.unwrap().as_deref(), Some(&b"v1"[..]));
        assert_eq!(cache.get(b"k").await.unwrap().as_deref(), Some(&b"v1"[..]));
        assert_eq!(cached.get(b"k").await.unwrap().as_deref(), Some(&b"v1"[..]));
        assert_eq!(cached.hits.load(Ordering::Relaxed), 1);
        assert_eq!(cached.misses.load(Ordering::Relaxed), 1);
        // The store changes behind the cache: the cache answers (stale)...
        store.set(b"k", b"v2", None).await.unwrap();
        assert_eq!(cached.get(b"k").await.unwrap().as_deref(), Some(&b"v1"[..]));
        // ...but a write through the tier invalidates it.
        cached.set(b"k", b"v3", None).await.unwrap();
        assert_eq!(cached.get(b"k").await.unwrap().as_deref(), Some(&b"v3"[..]));
        assert!(cached.delete(b"k").await.unwrap());
        assert_eq!(cached.get(b"k").await.unwrap(), None);
        assert_eq!(cached.incr_by(b"n", 2).await.unwrap(), 2);
        assert!(cached.set_nx(b"x", b"1", None).await.unwrap());
        assert_eq!(cached.scan_prefix(b"x", 10).await.unwrap().len(), 1);
    }
}
