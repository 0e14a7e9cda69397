//! The `Db` handle: the public API over the write path, read path and background work.
//!
//! Why a module: it owns the shared state every part touches — the current view
//! (memtable, immutable memtables, version), the writer (log + sequence numbers), the
//! manifest, and the background threads — and the locking discipline between them:
//!
//! * `writer` (mutex): log append + memtable insert + memtable rotation, in sequence order.
//! * `view` (rwlock over an `Arc`): readers clone the `Arc` and read without locks.
//! * `manifest` (mutex): every change of the table set — edit, fsync, then view swap.
//! * `compaction_lock`: one compaction at a time (background or `compact()`).

mod background;
mod open;
mod read;
mod write;

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;

use parking_lot::{Condvar, Mutex, RwLock};

use crate::cache::BlockCache;
use crate::manifest::{Manifest, ManifestState};
use crate::memtable::Memtable;
use crate::options::Options;
use crate::stats::Counters;
use crate::version::{BloomCounters, Version};
use crate::wal::WalWriter;

pub use read::{Snapshot, Ttl};

/// What readers see: the memtables and the tables, swapped atomically as a whole.
pub(crate) struct View {
    /// The active memtable.
    pub mem: Arc<Memtable>,
    /// Immutable memtables waiting for a flush, newest first.
    pub imms: Vec<Arc<Memtable>>,
    /// The live tables.
    pub version: Arc<Version>,
}

/// State guarded by the writer lock.
pub(crate) struct Writer {
    /// The active log segment.
    pub wal: WalWriter,
    /// The memtable the log segment backs (same as `view.mem`).
    pub mem: Arc<Memtable>,
    /// Highest sequence number assigned.
    pub last_seq: u64,
    /// Set after an unrecoverable log error: writes are refused, reads go on.
    pub failed: Option<String>,
}

/// The manifest and the state it describes.
pub(crate) struct ManifestCtl {
    /// The open manifest file.
    pub manifest: Manifest,
    /// The state after all committed edits.
    pub state: ManifestState,
}

/// Coordination of background threads, guarded by `Inner::bg`.
#[derive(Default)]
pub(crate) struct BgState {
    /// Set by `Db::drop`: threads exit.
    pub shutdown: bool,
    /// The last flush failure, cleared by the next successful flush. Kept apart from
    /// compaction's so a working flush does not hide a failing compaction (or the
    /// reverse) from the writers that wait on it.
    pub flush_error: Option<String>,
    /// The last compaction failure, cleared by the next successful compaction.
    pub compaction_error: Option<String>,
    /// Work may be pending for the compaction thread.
    pub compaction_wanted: bool,
}

impl BgState {
    /// The error a writer stalled on background work should see, if any.
    pub(crate) fn error(&self) -> Option<&String> {
        self.flush_error.as_ref().or(self.compaction_error.as_ref())
    }
}

/// Shared state of an open store.
pub(crate) struct Inner {
    /// Store directory.
    pub dir: PathBuf,
    /// Options it was opened with.
    pub opts: Options,
    /// Held for the life of the store: an advisory lock against a second opener.
    pub _lock: File,
    /// Decoded-block cache shared by all tables.
    pub cache: Arc<BlockCache>,
    /// What readers see.
    pub view: RwLock<Arc<View>>,
    /// Log + memtable insertion.
    pub writer: Mutex<Writer>,
    /// Highest sequence number readers may see (durable under `SyncPolicy::Always`).
    pub visible_seq: AtomicU64,
    /// Serializes group-commit leaders.
    pub sync_leader: Mutex<()>,
    /// Highest sequence number known to be on stable storage (its log record fsynced).
    pub synced_seq: AtomicU64,
    /// Test hook: every log fsync of this store fails with EIO while set.
    #[cfg(any(test, feature = "fault-injection"))]
    pub fail_log_syncs: std::sync::atomic::AtomicBool,
    /// Manifest edits and version installs.
    pub manifest: Mutex<ManifestCtl>,
    /// Next file number (tables, log segments, manifests).
    pub next_file_id: AtomicU64,
    /// Live snapshots: sequence number → count.
    pub snapshots: Mutex<BTreeMap<u64, usize>>,
    /// Background coordination.
    pub bg: Mutex<BgState>,
    /// Wakes the flush thread.
    pub flush_cv: Condvar,
    /// Wakes the compaction thread.
    pub compaction_cv: Condvar,
    /// Wakes stalled writers and `flush()` callers.
    pub progress_cv: Condvar,
    /// One compaction at a time.
    pub compaction_lock: Mutex<()>,
    /// Round-robin position per level for picking the next table to compact.
    pub compact_pointer: Mutex<Vec<Vec<u8>>>,
    /// Counters for `stats()`.
    pub counters: Counters,
    /// Bloom counters for `stats()`.
    pub bloom: BloomCounters,
}

impl Inner {
    /// The current view.
    pub(crate) fn view(&self) -> Arc<View> {
        self.view.read().clone()
    }

    /// Allocates a file number.
    pub(crate) fn new_file_id(&self) -> u64 {
        self.next_file_id.fetch_add(1, Ordering::SeqCst)
    }

    /// True once `Db` is being dropped.
    pub(crate) fn shutting_down(&self) -> bool {
        self.bg.lock().shutdown
    }
}

/// An open LSM store. `Send + Sync`: share it with `Arc<Db>`.
///
/// Every method blocks the calling thread (disk I/O, or a group-commit fsync under
/// `SyncPolicy::Always`); from async code call it through
/// `tokio::task::spawn_blocking` (or `block_in_place`). Flushes and compactions run on
/// the store's own threads and never block a caller except through write stalls.
pub struct Db {
    /// Shared state.
    inner: Arc<Inner>,
    /// Background threads, joined on drop.
    threads: Vec<JoinHandle<()>>,
}

impl Db {
    /// The store directory.
    pub fn path(&self) -> &Path {
        &self.inner.dir
    }

    /// Makes every commit-log fsync of this store fail with EIO (`true`) or work
    /// again (`false`): a dying disk on demand, for callers' tests of what they
    /// do when durability fails (the `fault-injection` feature; not for production).
    #[cfg(feature = "fault-injection")]
    #[doc(hidden)]
    pub fn fail_log_syncs(&self, fail: bool) {
        self.inner.fail_log_syncs.store(fail, Ordering::Relaxed);
    }

    /// The shared state, for unit tests that drive internals (compaction) directly.
    #[cfg(test)]
    pub(crate) fn inner(&self) -> &Inner {
        &self.inner
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        self.inner.bg.lock().shutdown = true;
        self.inner.flush_cv.notify_all();
        self.inner.compaction_cv.notify_all();
        self.inner.progress_cv.notify_all();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        // A clean close makes everything acknowledged durable, whatever the policy.
        let w = self.inner.writer.lock();
        if w.failed.is_none() {
            let _ = w.wal.file.sync_data();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn db_is_send_and_sync() {
        assert_send_sync::<Db>();
        assert_send_sync::<Snapshot>();
    }

    /// After a failed fsync the log's state on disk is unknown (fsyncgate), so writes are
    /// latched off until the store is reopened; reads go on meanwhile.
    #[test]
    fn failed_log_fsync_disables_writes_until_reopen() {
        use crate::error::Error;
        let dir = tempfile::tempdir().unwrap();
        let opts = Options::default(); // SyncPolicy::Always
        let db = Db::open(dir.path(), opts.clone()).unwrap();
        db.put(b"acked", b"1").unwrap();

        db.inner().fail_log_syncs.store(true, Ordering::Relaxed);
        let err = db.put(b"unknown", b"2").unwrap_err();
        db.inner().fail_log_syncs.store(false, Ordering::Relaxed);
        assert!(
            matches!(&err, Error::Io { path, .. } if path.extension().is_some_and(|e| e == "log")),
            "the error names the log segment: {err}"
        );
        // Latched: refused although fsync works again, and the error says what to do.
        let err = db.put(b"refused", b"3").unwrap_err();
        assert!(matches!(err, Error::WritesDisabled(_)), "{err}");
        assert!(err.to_string().contains("reopen the store"), "{err}");
        assert!(matches!(db.flush(), Err(Error::WritesDisabled(_))));
        // Reads work and show only acknowledged writes.
        assert_eq!(db.get(b"acked").unwrap(), Some(b"1".to_vec()));
        assert_eq!(db.get(b"unknown").unwrap(), None);
        assert_eq!(db.scan(..).unwrap().count(), 1);
        drop(db);

        // The operator's way out: fix the disk and reopen. Acknowledged writes are there,
        // refused ones are not; the one whose fsync failed has an unknown outcome (here
        // its record reached the file, so the replay brings it back).
        let db = Db::open(dir.path(), opts).unwrap();
        assert_eq!(db.get(b"acked").unwrap(), Some(b"1".to_vec()));
        assert_eq!(db.get(b"refused").unwrap(), None);
        assert_eq!(db.get(b"unknown").unwrap(), Some(b"2".to_vec()));
        db.put(b"after", b"4").unwrap();
        db.flush().unwrap();
        assert_eq!(db.get(b"after").unwrap(), Some(b"4".to_vec()));
    }

    /// A failed group fsync fails every waiter, not only the thread that ran it: the
    /// leader gets the I/O error, the others (and later callers) `WritesDisabled`, and
    /// none of them is told its write is durable.
    #[test]
    fn failed_group_fsync_fails_every_waiter() {
        use crate::batch::WriteBatch;
        use crate::error::Error;
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path(), Options::default()).unwrap();
        let seqs: Vec<u64> = (0..8)
            .map(|i| {
                let key = format!("k{i}");
                db.write_nosync(WriteBatch::new().put(key.as_bytes(), b"v"))
                    .unwrap()
            })
            .collect();
        db.inner().fail_log_syncs.store(true, Ordering::Relaxed);
        let results: Vec<_> = std::thread::scope(|s| {
            let handles: Vec<_> = seqs
                .iter()
                .map(|&seq| {
                    let db = &db;
                    s.spawn(move || db.sync_to(seq))
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        db.inner().fail_log_syncs.store(false, Ordering::Relaxed);
        let io = results
            .iter()
            .filter(|r| matches!(r, Err(Error::Io { .. })))
            .count();
        let disabled = results
            .iter()
            .filter(|r| matches!(r, Err(Error::WritesDisabled(_))))
            .count();
        assert_eq!((io, disabled), (1, seqs.len() - 1), "{results:?}");
        assert!(db.stats().durable_sequence < seqs[0]);
        // Latched: a waiter arriving after the failure fails too, with fsync working.
        assert!(matches!(db.sync_to(seqs[0]), Err(Error::WritesDisabled(_))));
    }
}
