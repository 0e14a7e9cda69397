//! [`Embedded`]: the [`KvClient`] over the `lsm` engine in this process.
//!
//! `lsm::Db` is synchronous (its writes may wait for a group-commit fsync),
//! so every call runs on tokio's blocking pool and async callers never stall
//! the runtime. The two read-modify-write operations, set-if-absent and
//! increment, hold a lock striped by key hash across their read and write:
//! they are atomic against every other caller of this client, which in an
//! embedded store is every caller (one process owns the directory).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use crate::{BoxFuture, Error, KvClient, Pair, Result};

/// Lock stripes for read-modify-write operations: enough that unrelated keys
/// rarely share one, few enough to cost nothing.
const STRIPES: usize = 64;

/// An in-process LSM store. Cheap to clone; clones share the engine.
#[derive(Clone)]
pub struct Embedded {
    db: Arc<lsm::Db>,
    stripes: Arc<[Mutex<()>; STRIPES]>,
}

impl std::fmt::Debug for Embedded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedded")
            .field("path", &self.db.path())
            .finish()
    }
}

impl Embedded {
    /// Opens (creating if needed) a store in `dir` with durable defaults:
    /// every acknowledged write is fsynced (group commit batches them).
    pub fn open(dir: &Path) -> Result<Self> {
        Self::open_with(dir, lsm::Options::default())
    }

    /// Opens a store with explicit engine options.
    pub fn open_with(dir: &Path, options: lsm::Options) -> Result<Self> {
        let db = lsm::Db::open(dir, options).map_err(store_error)?;
        Ok(Self::from_db(Arc::new(db)))
    }

    /// Wraps an engine opened elsewhere.
    pub fn from_db(db: Arc<lsm::Db>) -> Self {
        Self {
            db,
            stripes: Arc::new(std::array::from_fn(|_| Mutex::new(()))),
        }
    }

    fn stripe(&self, key: &[u8]) -> &Mutex<()> {
        let hash = fnv1a(key);
        &self.stripes[(hash % STRIPES as u64) as usize]
    }

    /// Runs `work` on the blocking pool with a clone of this client.
    fn blocking<'a, T: Send + 'static>(
        &'a self,
        work: impl FnOnce(&Embedded) -> Result<T> + Send + 'static,
    ) -> BoxFuture<'a, Result<T>> {
        let this = self.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || work(&this))
                .await
                .map_err(|err| Error::Store(format!("store task failed: {err}")))?
        })
    }
}

fn fnv1a(key: &[u8]) -> u64 {
    // FNV-1a: tiny, and stripe choice needs no quality beyond spreading keys.
    key.iter().fold(0xcbf2_9ce4_8422_2325_u64, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x100_0000_01b3)
    })
}

fn store_error(err: lsm::Error) -> Error {
    Error::Store(err.to_string())
}

fn put(db: &lsm::Db, key: &[u8], value: &[u8], ttl: Option<Duration>) -> Result<()> {
    match ttl {
        Some(ttl) => db.put_with_ttl(key, value, ttl.max(Duration::from_millis(1))),
        None => db.put(key, value),
    }
    .map_err(store_error)
}

impl KvClient for Embedded {
    fn get<'a>(&'a self, key: &'a [u8]) -> BoxFuture<'a, Result<Option<Vec<u8>>>> {
        let key = key.to_vec();
        self.blocking(move |this| this.db.get(&key).map_err(store_error))
    }

    fn set<'a>(
        &'a self,
        key: &'a [u8],
        value: &'a [u8],
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<()>> {
        let (key, value) = (key.to_vec(), value.to_vec());
        self.blocking(move |this| put(&this.db, &key, &value, ttl))
    }

    fn set_nx<'a>(
        &'a self,
        key: &'a [u8],
        value: &'a [u8],
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<bool>> {
        let (key, value) = (key.to_vec(), value.to_vec());
        self.blocking(move |this| {
            let _guard = this.stripe(&key).lock();
            if this.db.get(&key).map_err(store_error)?.is_some() {
                return Ok(false);
            }
            put(&this.db, &key, &value, ttl)?;
            Ok(true)
        })
    }

    fn incr_by<'a>(&'a self, key: &'a [u8], delta: i64) -> BoxFuture<'a, Result<i64>> {
        let key = key.to_vec();
        self.blocking(move |this| {
            let _guard = this.stripe(&key).lock();
            let current = match this.db.get_with_expiry(&key).map_err(store_error)? {
                None => (0, None),
                Some((bytes, expires_at_ms)) => {
                    let text = String::from_utf8_lossy(&bytes);
                    let value = text.parse::<i64>().map_err(|_| {
                        Error::Store("value is not an integer or out of range".into())
                    })?;
                    (value, expires_at_ms)
                }
            };
            let next = current
                .0
                .checked_add(delta)
                .ok_or_else(|| Error::Store("increment or decrement would overflow".into()))?;
            let text = next.to_string();
            // An increment keeps the key's expiry, as Redis's INCRBY does.
            match current.1 {
                Some(at_ms) => this
                    .db
                    .put_with_expiry(&key, text.as_bytes(), at_ms)
                    .map_err(store_error)?,
                None => this.db.put(&key, text.as_bytes()).map_err(store_error)?,
            }
            Ok(next)
        })
    }

    fn scan_prefix<'a>(
        &'a self,
        prefix: &'a [u8],
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<Pair>>> {
        let prefix = prefix.to_vec();
        self.blocking(move |this| {
            let iter = this.db.scan_prefix(&prefix).map_err(store_error)?;
            iter.take(limit)
                .map(|item| item.map(|kv| (kv.key, kv.value)).map_err(store_error))
                .collect()
        })
    }

    fn delete<'a>(&'a self, key: &'a [u8]) -> BoxFuture<'a, Result<bool>> {
        let key = key.to_vec();
        self.blocking(move |this| {
            let _guard = this.stripe(&key).lock();
            let existed = this.db.get(&key).map_err(store_error)?.is_some();
            if existed {
                this.db.delete(&key).map_err(store_error)?;
            }
            Ok(existed)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Embedded) {
        let dir = tempfile::tempdir().unwrap();
        let store = Embedded::open(dir.path()).unwrap();
        (dir, store)
    }

    #[tokio::test]
    async fn set_nx_claims_once() {
        let (_dir, store) = store();
        assert!(store.set_nx(b"k", b"1", None).await.unwrap());
        assert!(!store.set_nx(b"k", b"2", None).await.unwrap());
        assert_eq!(store.get(b"k").await.unwrap().as_deref(), Some(&b"1"[..]));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_increments_are_not_lost() {
        let (_dir, store) = store();
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                for _ in 0..25 {
                    store.incr_by(b"n", 1).await.unwrap();
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(store.incr_by(b"n", 0).await.unwrap(), 200);
    }

    #[tokio::test]
    async fn incr_refuses_non_integers_and_scan_respects_prefix() {
        let (_dir, store) = store();
        store.set(b"a:1", b"x", None).await.unwrap();
        assert!(store.incr_by(b"a:1", 1).await.is_err());
        store.set(b"a:2", b"y", None).await.unwrap();
        store.set(b"b:1", b"z", None).await.unwrap();
        let pairs = store.scan_prefix(b"a:", 10).await.unwrap();
        assert_eq!(
            pairs,
            vec![
                (b"a:1".to_vec(), b"x".to_vec()),
                (b"a:2".to_vec(), b"y".to_vec())
            ]
        );
        assert!(store.delete(b"a:1").await.unwrap());
        assert!(!store.delete(b"a:1").await.unwrap());
    }

    #[tokio::test]
    async fn ttl_expires_keys() {
        let (_dir, store) = store();
        store
            .set(b"t", b"v", Some(Duration::from_millis(30)))
            .await
            .unwrap();
        assert!(store.get(b"t").await.unwrap().is_some());
        tokio::time::sleep(Duration::from_millis(80)).await;
        assert!(store.get(b"t").await.unwrap().is_none());
        assert!(
            store.set_nx(b"t", b"again", None).await.unwrap(),
            "an expired key is absent"
        );
    }
}
