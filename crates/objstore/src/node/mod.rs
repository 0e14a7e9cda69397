//! The data node: the API the rest of the object store calls (put, get, delete, stats),
//! over the data files, the mapping table, the group commit and garbage collection.
//!
//! Why a module: it owns the shared state and the locking discipline between the parts.
//!
//! * `writer` (mutex): the read-write file, the queue of ops waiting for the group
//!   commit, the files to fsync and seal. Appends take it for the length of one write
//!   system call; a put of a large object holds it while its bytes are copied.
//! * The group commit (`commit`) runs on two threads of the node's own: the data stage
//!   takes the whole queue, fsyncs the data files and seals full ones; the mapping
//!   stage, the only writer of the mapping, writes the round's mapping changes as one
//!   fsynced `lsm` batch, then wakes every writer of the round. No fsync of a put or
//!   delete runs on a caller's thread.
//! * `files` (its own locks): the file table and descriptor cache; readers never take
//!   the writer lock.
//! * `gc_lock`: one garbage-collection run at a time.
//!
//! Every method blocks (disk I/O, or waiting for the group commit): from async code
//! call it inside `tokio::task::spawn_blocking`.

mod commit;
mod files;
mod open;
mod stats;
mod write;

use std::ops::{Bound, Range, RangeBounds};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::thread::JoinHandle;

use parking_lot::{Condvar, Mutex};

use crate::ObjectId;
use crate::datafile::{self, FileInfo};
use crate::error::{Error, Result};
use crate::gc::{self, GcReport};
use crate::mapping::{Mapping, Op};
use crate::options::Options;

pub(crate) use commit::sync_dir;
pub(crate) use files::Files;
pub(crate) use stats::Counters;
pub use stats::Stats;
pub(crate) use write::{Slot, Writer};

/// Shared state of an open node.
pub(crate) struct Inner {
    /// The node directory.
    pub dir: PathBuf,
    /// Options it was opened with.
    pub opts: Options,
    /// The object-mapping table.
    pub mapping: Mapping,
    /// The data files.
    pub files: Files,
    /// The read-write file and the group-commit queue.
    pub writer: Mutex<Writer>,
    /// Wakes the commit thread (with `writer`).
    pub work_cv: Condvar,
    /// Set once the commit thread has exited (also if it panicked): waiters stop waiting.
    pub committer_gone: AtomicBool,
    /// One garbage-collection run at a time.
    pub gc_lock: Mutex<()>,
    /// Set by `Node::drop`; the garbage-collection thread sleeps on `gc_cv` until then.
    pub closing: Mutex<bool>,
    /// Wakes the garbage-collection thread (with `closing`).
    pub gc_cv: Condvar,
    /// Counters for `stats()`.
    pub counters: Counters,
}

impl Inner {
    /// True once the node is being dropped.
    pub(crate) fn closing(&self) -> bool {
        *self.closing.lock()
    }
}

/// What a data node knows about one stored object (without reading it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Object bytes.
    pub size_bytes: u64,
    /// CRC-32C of the object's record (header and bytes), checked on every read.
    pub crc: u32,
    /// The data file holding it.
    pub file_id: u64,
}

/// An open data node: objects packed into data files, found through the mapping table.
/// `Send + Sync`: share it with `Arc<Node>`.
pub struct Node {
    inner: Arc<Inner>,
    threads: Vec<JoinHandle<()>>,
}

impl Node {
    /// Opens (or creates) the node stored in `dir`, recovering from any crash first
    /// (see the crate docs: torn tails cut, unfinished seals finished, files left over
    /// by an interrupted compaction removed). Fails if another process has it open.
    pub fn open(dir: impl AsRef<Path>, opts: Options) -> Result<Node> {
        let inner = Arc::new(open::open(dir.as_ref(), opts)?);
        // Built before the threads start, so a failed spawn drops it and `Drop` stops
        // the threads already running.
        let mut node = Node {
            inner: inner.clone(),
            threads: Vec::new(),
        };
        let spawn = |name: &str, f: fn(Arc<Inner>)| {
            let inner = inner.clone();
            std::thread::Builder::new()
                .name(name.into())
                .spawn(move || f(inner))
                .map_err(|e| Error::io(dir.as_ref(), e))
        };
        node.threads.push(spawn("objstore-commit", commit::run)?);
        if inner.opts.gc_interval_ms > 0 {
            node.threads.push(spawn("objstore-gc", gc::background)?);
        }
        Ok(node)
    }

    /// Stores `data` as a new object and returns its id, once its bytes and its mapping
    /// are on stable storage (fsynced; concurrent puts share the fsyncs).
    pub fn put(&self, data: &[u8]) -> Result<ObjectId> {
        let id = ObjectId::generate();
        self.store(id, data, true)?;
        Ok(id)
    }

    /// Stores `data` under a given id (a replica's copy of its primary's object),
    /// replacing any object stored under it; the replaced record becomes garbage.
    /// Durable when it returns, like [`Node::put`].
    pub fn put_with_id(&self, id: ObjectId, data: &[u8]) -> Result<()> {
        self.store(id, data, false)
    }

    /// Appends the record, waits for its group commit; `fresh`: `id` was just generated.
    fn store(&self, id: ObjectId, data: &[u8], fresh: bool) -> Result<()> {
        let slot = self
            .inner
            .append(id, data, false, |to| Op::Put { id, to, fresh })?;
        slot.wait(&self.inner)?;
        self.inner.counters.put(data.len());
        Ok(())
    }

    /// Bytes `range` of object `id` (`..` for all of it), or `None` if no such object.
    /// The whole record is read and its checksum verified first: a damaged object is
    /// [`Error::Corrupt`], never served. A range past the object's end is
    /// [`Error::InvalidArgument`].
    pub fn get(&self, id: ObjectId, range: impl RangeBounds<u64>) -> Result<Option<Vec<u8>>> {
        let bounds = (range.start_bound().cloned(), range.end_bound().cloned());
        // A garbage-collection run may move the object and delete its old file between
        // the mapping lookup and the read: look again (twice is enough for one move).
        for _ in 0..3 {
            let Some(loc) = self.inner.mapping.get(id)? else {
                return Ok(None);
            };
            let range = resolve_range(bounds, loc.len).map_err(Error::InvalidArgument)?;
            let Some(fd) = self.inner.files.reader(loc.file_id)? else {
                continue;
            };
            let path = self.inner.files.path(loc.file_id);
            let data = datafile::read_object(&fd, &path, id, &loc, range).inspect_err(|e| {
                if matches!(e, Error::Corrupt { .. }) {
                    self.inner.counters.corrupt_read();
                    tracing::error!(%id, error = %e, "corrupt object not served");
                }
            })?;
            self.inner.counters.get(data.len());
            return Ok(Some(data));
        }
        let path = match self.inner.mapping.get(id)? {
            Some(loc) => self.inner.files.path(loc.file_id),
            None => return Ok(None),
        };
        Err(Error::MissingFile { id, path })
    }

    /// Size and checksum of object `id` without reading it, or `None`.
    pub fn head(&self, id: ObjectId) -> Result<Option<ObjectInfo>> {
        Ok(self.inner.mapping.get(id)?.map(|loc| ObjectInfo {
            size_bytes: loc.len,
            crc: loc.crc,
            file_id: loc.file_id,
        }))
    }

    /// Deletes object `id`; returns whether it existed. The delete is durable when this
    /// returns; the object's bytes stay in its file as garbage until compaction.
    pub fn delete(&self, id: ObjectId) -> Result<bool> {
        let slot = self.inner.submit(Some(Op::Delete { id }))?;
        let existed = slot.wait(&self.inner)?;
        self.inner.counters.delete();
        Ok(existed)
    }

    /// Seals the read-write file now (if it holds any record) and waits until the seal
    /// is committed; the next put starts a new file. Files otherwise seal when full.
    pub fn seal(&self) -> Result<()> {
        let slot = {
            let mut w = self.inner.writer.lock();
            self.inner.roll(&mut w)?;
            self.inner.enqueue(&mut w, None)
        };
        slot.wait(&self.inner).map(drop)
    }

    /// Runs one garbage-collection pass now (see [`crate::gc`]) and reports what it did.
    pub fn gc(&self) -> Result<GcReport> {
        gc::run(&self.inner)
    }

    /// Every stored object with what the mapping knows of it, in id order.
    pub fn objects(&self) -> Result<impl Iterator<Item = Result<(ObjectId, ObjectInfo)>> + '_> {
        Ok(self.inner.mapping.scan()?.map(|r| {
            r.map(|(id, loc)| {
                let info = ObjectInfo {
                    size_bytes: loc.len,
                    crc: loc.crc,
                    file_id: loc.file_id,
                };
                (id, info)
            })
        }))
    }

    /// The data files, by number.
    pub fn files(&self) -> Vec<FileInfo> {
        self.inner.files.snapshot()
    }

    /// Counters and sizes (see [`Stats`]).
    pub fn stats(&self) -> Stats {
        stats::collect(&self.inner)
    }

    /// The node directory.
    pub fn path(&self) -> &Path {
        &self.inner.dir
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        *self.inner.closing.lock() = true;
        self.inner.gc_cv.notify_all();
        self.inner.writer.lock().shutdown = true;
        self.inner.work_cv.notify_all();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// The byte range `bounds` selects in an object of `len` bytes, or why it is invalid.
pub fn resolve_range(
    bounds: (Bound<u64>, Bound<u64>),
    len: u64,
) -> std::result::Result<Range<u64>, String> {
    let start = match bounds.0 {
        Bound::Included(s) => Some(s),
        Bound::Excluded(s) => s.checked_add(1),
        Bound::Unbounded => Some(0),
    };
    let end = match bounds.1 {
        Bound::Included(e) => e.checked_add(1),
        Bound::Excluded(e) => Some(e),
        Bound::Unbounded => Some(len),
    };
    match (start, end) {
        (Some(s), Some(e)) if s <= e && e <= len => Ok(s..e),
        _ => Err(format!(
            "range {bounds:?} is outside the object's {len} bytes"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Node>();
    }

    #[test]
    fn ranges_resolve_within_the_object_only() {
        use Bound::*;
        assert_eq!(resolve_range((Unbounded, Unbounded), 10), Ok(0..10));
        assert_eq!(resolve_range((Included(2), Excluded(5)), 10), Ok(2..5));
        assert_eq!(resolve_range((Included(2), Included(9)), 10), Ok(2..10));
        assert_eq!(resolve_range((Included(10), Unbounded), 10), Ok(10..10));
        assert_eq!(resolve_range((Unbounded, Unbounded), 0), Ok(0..0));
        for bad in [
            (Included(11), Unbounded),
            (Included(5), Excluded(4)),
            (Unbounded, Included(10)),
            (Unbounded, Included(u64::MAX)),
            (Excluded(u64::MAX), Unbounded),
        ] {
            assert!(resolve_range(bad, 10).is_err(), "{bad:?}");
        }
    }
}
