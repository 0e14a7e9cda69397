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
//! What a filter reads through [`Lookup`] is the store's *durable* state only: a
//! compaction's output is durable, so a decision made on a write a crash may still
//! take back (a `write_nosync` awaiting its fsync) could outlive that write — the
//! elements of a collection dropped while the crash brings the collection back.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::codec::now_ms;
use crate::db::Inner;
use crate::error::Result;

/// Read access to the store for a filter (the newest state of a key), so it can
/// judge an entry by another key (an element by its collection's metadata).
pub struct Lookup<'a> {
    /// The store.
    inner: &'a Inner,
}

/// What [`Lookup::get`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Looked {
    /// The key's value.
    Found(Vec<u8>),
    /// The key is absent, deleted or expired.
    Absent,
    /// The key's newest version is visible but not yet durable (a
    /// `Db::write_nosync` whose fsync is pending, or a write of a store that does not
    /// fsync its log, still in memory): a crash may take it back, so nothing the
    /// compaction writes (which is durable) may be decided by it.
    NotDurable,
}

impl<'a> Lookup<'a> {
    pub(crate) fn new(inner: &'a Inner) -> Self {
        Self { inner }
    }

    /// The newest state of `key`, if it is durable.
    pub fn get(&self, key: &[u8]) -> Result<Looked> {
        let visible = self.inner.visible_seq.load(Ordering::Acquire);
        let synced = self.inner.synced_seq.load(Ordering::Acquire);
        let Some((entry, in_table)) = self.inner.newest_at(key, visible)? else {
            return Ok(Looked::Absent);
        };
        // A table is durable; a memtable's version is once the log is synced past it.
        if !in_table && entry.seq > synced {
            return Ok(Looked::NotDurable);
        }
        Ok(if entry.is_deletion_at(now_ms()) {
            Looked::Absent
        } else {
            Looked::Found(entry.value)
        })
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
    use crate::{CompactionFilter, Db, Looked, Options, SyncPolicy};

    /// Keys `dead:*` are garbage once key `alive` says "no"; the filter drops them at
    /// the next compaction, and what remains reads the same.
    #[test]
    fn a_filter_reclaims_what_it_rejects_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let filter = CompactionFilter::new(|| {
            Box::new(|key, _value, lookup| {
                !key.starts_with(b"dead:")
                    || lookup.get(b"alive").unwrap() != Looked::Found(b"no".to_vec())
            })
        });
        let opts = Options {
            // Under `No` a memtable's writes are durable once flushed (compact flushes).
            sync: SyncPolicy::No,
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

    /// A decision may rest only on durable state: a delete applied but not yet
    /// fsynced does not make its elements garbage (a crash would bring it back).
    #[test]
    fn a_filter_does_not_judge_by_writes_a_crash_may_take_back() {
        let dir = tempfile::tempdir().unwrap();
        let filter = CompactionFilter::new(|| {
            Box::new(|key, _value, lookup| {
                !key.starts_with(b"dead:") || lookup.get(b"alive").unwrap() != Looked::Absent
            })
        });
        let opts = Options {
            compaction_filter: Some(filter),
            ..Options::default()
        };
        let db = Db::open(dir.path(), opts).unwrap();
        db.put(b"alive", b"yes").unwrap();
        db.put(b"dead:1", b"v").unwrap();
        db.flush().unwrap();
        let mut batch = crate::WriteBatch::new();
        batch.delete(b"alive");
        let seq = db.write_nosync(&batch).unwrap();
        // `compact` flushes, which would make the delete durable: merge the tables only.
        let inner = db.inner();
        {
            let _one = inner.compaction_lock.lock();
            super::super::full(inner).unwrap();
        }
        assert_eq!(db.get(b"dead:1").unwrap(), Some(b"v".to_vec()));
        db.sync_to(seq).unwrap();
        db.compact().unwrap();
        assert_eq!(db.get(b"dead:1").unwrap(), None);
    }
}
