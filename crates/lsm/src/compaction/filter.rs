//! A hook that lets the store's user drop entries it knows are garbage during
//! compaction (RocksDB's compaction filter).
//!
//! Why it exists: some data becomes garbage by a decision the engine cannot see. The
//! key-value server stores a collection as one metadata key plus one key per element,
//! all tagged with the collection's version; deleting the collection rewrites only the
//! metadata, and the element keys of the old version are garbage the server would
//! otherwise have to delete one by one (O(elements) for the client that sent `DEL`).
//! With a filter, compaction asks the server per entry and drops what it says is dead,
//! so that work happens in the background, once, while the data is rewritten anyway.
//!
//! Safety: the filter is asked only about the *newest* version of a key, only when
//! every reader (every live snapshot) sees that version, and only for live values. An
//! unwanted entry becomes a tombstone above the bottom level (so it keeps shadowing
//! older versions below, which would otherwise resurface) and disappears at the bottom.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::db::Inner;
use crate::error::Result;

/// Read access to the store for a filter (the newest visible state of a key), so it can
/// judge an entry by another key (an element by its collection's metadata).
pub struct Lookup<'a> {
    /// The store.
    inner: &'a Inner,
}

impl<'a> Lookup<'a> {
    pub(crate) fn new(inner: &'a Inner) -> Self {
        Self { inner }
    }

    /// The value of `key` now (absent, deleted and expired keys are `None`).
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self
            .inner
            .get_at(key, self.inner.visible_seq.load(Ordering::Acquire))?
            .map(|(v, _)| v))
    }
}

/// One compaction's judge: `keep(key, value, lookup)`; `false` drops the entry. It may
/// keep state (a cache) for the length of one compaction, which reads keys in order.
pub type FilterRun = Box<dyn FnMut(&[u8], &[u8], &Lookup<'_>) -> bool + Send>;

/// The filter installed in [`crate::Options::compaction_filter`]: makes a fresh
/// [`FilterRun`] for every compaction.
#[derive(Clone)]
pub struct CompactionFilter(Arc<dyn Fn() -> FilterRun + Send + Sync>);

impl CompactionFilter {
    /// A filter whose runs `new_run` makes.
    pub fn new(new_run: impl Fn() -> FilterRun + Send + Sync + 'static) -> Self {
        Self(Arc::new(new_run))
    }

    /// A judge for one compaction.
    pub(crate) fn start(&self) -> FilterRun {
        (self.0)()
    }
}

impl fmt::Debug for CompactionFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CompactionFilter(..)")
    }
}

#[cfg(test)]
mod tests {
    use crate::{CompactionFilter, Db, Options};

    /// Keys `dead:*` are garbage once key `alive` says "no"; the filter drops them at
    /// the next compaction, and what remains reads the same.
    #[test]
    fn a_filter_reclaims_what_it_rejects_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let filter = CompactionFilter::new(|| {
            Box::new(|key, _value, lookup| {
                !key.starts_with(b"dead:")
                    || lookup.get(b"alive").unwrap().as_deref() != Some(b"no")
            })
        });
        let opts = Options {
            compaction_filter: Some(filter),
            ..Options::default()
        };
        let db = Db::open(dir.path(), opts).unwrap();
        let value = vec![7u8; 1000];
        for i in 0..2000u32 {
            db.put(format!("dead:{i:05}").as_bytes(), &value).unwrap();
        }
        db.put(b"kept", b"1").unwrap();
        db.put(b"alive", b"yes").unwrap();
        db.compact().unwrap();
        let size = |db: &Db| db.stats().levels.iter().map(|l| l.size_bytes).sum::<u64>();
        let full = size(&db);
        assert!(full > 2_000_000, "{full}");
        assert_eq!(db.scan(..).unwrap().count(), 2002);
        db.put(b"alive", b"no").unwrap();
        db.compact().unwrap();
        let reclaimed = size(&db);
        assert!(reclaimed < 10_000, "{full} -> {reclaimed}");
        let keys: Vec<_> = db.scan(..).unwrap().map(|kv| kv.unwrap().key).collect();
        assert_eq!(keys, vec![b"alive".to_vec(), b"kept".to_vec()]);
    }
}
