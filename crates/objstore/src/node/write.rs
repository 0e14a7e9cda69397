//! The append path: a record goes to the end of the read-write file, its mapping op
//! joins the group-commit queue, and the caller waits for the commit thread.
//!
//! Why a module: appends decide when the read-write file is full (a pure rule,
//! `datafile::format::must_roll`), start the next file, and hand the full one to the
//! commit thread to seal; they enforce the size and capacity limits before touching
//! the disk; and they never fsync (the commit thread does, once per group).

use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use super::Inner;
use crate::ObjectId;
use crate::datafile::format::{FILE_HEADER_BYTES, FOOTER_BYTES, RECORD_OVERHEAD_BYTES, must_roll};
use crate::datafile::{ActiveFile, FileInfo, FileState, Location};
use crate::error::{Error, Result};
use crate::mapping::Op;

/// Where one queued op's caller waits for its group commit.
#[derive(Default)]
pub(crate) struct Slot {
    /// `Some` once committed: the op's outcome (was the id mapped before; for a move,
    /// did it apply) or why the commit failed.
    result: Mutex<Option<std::result::Result<bool, String>>>,
    cv: Condvar,
}

impl Slot {
    /// Records the outcome and wakes the waiter.
    pub(crate) fn finish(&self, result: std::result::Result<bool, String>) {
        *self.result.lock() = Some(result);
        self.cv.notify_all();
    }

    /// Waits until the op is committed. If the commit thread is gone (the node is
    /// closing, or it panicked) the wait ends with [`Error::Closed`] instead of hanging.
    pub(crate) fn wait(&self, inner: &Inner) -> Result<bool> {
        let mut result = self.result.lock();
        loop {
            if let Some(r) = result.take() {
                return r.map_err(Error::WritesDisabled);
            }
            if inner.committer_gone.load(Ordering::Acquire) {
                return Err(Error::Closed);
            }
            self.cv.wait_for(&mut result, Duration::from_millis(100));
        }
    }
}

/// An op waiting for the group commit (`None`: a barrier that only waits for it).
pub(crate) struct Pending {
    /// The mapping change.
    pub op: Option<Op>,
    /// Where its caller waits.
    pub slot: Arc<Slot>,
}

/// A full file handed to the commit thread: fsync its data, then write its footer.
pub(crate) struct SealJob {
    /// The file (its read-write descriptor).
    pub file: Arc<File>,
    /// Its path.
    pub path: PathBuf,
    /// Its number.
    pub file_id: u64,
    /// Where its records end (the footer goes here).
    pub data_end: u64,
    /// CRC-32C of every byte before `data_end`.
    pub crc: u32,
}

/// State guarded by the writer lock.
pub(crate) struct Writer {
    /// The read-write file (`None` until the next put creates one).
    pub active: Option<ActiveFile>,
    /// Appended since the last group fsync: the commit thread fsyncs it.
    pub active_dirty: bool,
    /// Number of the next data file.
    pub next_file_id: u64,
    /// A new file was created since the last group fsync: fsync the directory.
    pub dir_dirty: bool,
    /// Ops waiting for the group commit, in order.
    pub queue: Vec<Pending>,
    /// Full files waiting to be sealed.
    pub seals: Vec<SealJob>,
    /// Bytes of all data files (for `capacity_bytes_max`).
    pub disk_bytes: u64,
    /// Set after a failed fsync or an append that could not be cut back: the files'
    /// contents are unknown, so writes are refused until the node is reopened.
    pub failed: Option<String>,
    /// Set by `Node::drop`: the commit thread drains the queue and exits.
    pub shutdown: bool,
}

impl Inner {
    /// Appends the record of `id` holding `data` and queues the op `make_op` builds
    /// from its location; returns the slot to wait on. Garbage collection's copies
    /// pass `gc_copy` and are not held to `capacity_bytes_max` (they are what frees
    /// space).
    pub(crate) fn append(
        &self,
        id: ObjectId,
        data: &[u8],
        gc_copy: bool,
        make_op: impl FnOnce(Location) -> Op,
    ) -> Result<Arc<Slot>> {
        let len = data.len() as u64;
        if len > self.opts.object_size_bytes_max {
            return Err(Error::InvalidArgument(format!(
                "object of {len} bytes exceeds object_size_bytes_max ({})",
                self.opts.object_size_bytes_max
            )));
        }
        let record_bytes = len + RECORD_OVERHEAD_BYTES;
        let mut w = self.writer.lock();
        self.check_writable(&w)?;
        let roll = match &w.active {
            None => true,
            Some(a) => must_roll(a.end, record_bytes, self.opts.file_size_bytes_max),
        };
        let needed = record_bytes
            + if roll {
                FILE_HEADER_BYTES + FOOTER_BYTES
            } else {
                0
            };
        if !gc_copy && w.disk_bytes.saturating_add(needed) > self.opts.capacity_bytes_max {
            return Err(Error::Full(format!(
                "{} bytes of data files, {needed} more would pass capacity_bytes_max ({})",
                w.disk_bytes, self.opts.capacity_bytes_max
            )));
        }
        if roll {
            self.roll(&mut w)?;
        }
        if w.active.is_none() {
            let file_id = w.next_file_id;
            let active = ActiveFile::create(self.files.dir(), file_id)?;
            w.next_file_id += 1;
            w.dir_dirty = true;
            w.disk_bytes += active.end;
            self.files.insert(FileInfo {
                file_id,
                state: FileState::Active,
                size_bytes: active.end,
                live_bytes: 0,
                live_objects: 0,
            });
            w.active = Some(active);
        }
        let active = w.active.as_mut().expect("an active file was just ensured");
        let loc = match active.append(id, data) {
            Ok(loc) => loc,
            Err((e, cut_failed)) => {
                if cut_failed {
                    w.failed = Some(format!("a failed append could not be cut back: {e}"));
                }
                return Err(e);
            }
        };
        let (file_id, end) = (active.file_id, active.end);
        w.active_dirty = true;
        w.disk_bytes += record_bytes;
        self.files.set(file_id, FileState::Active, end);
        Ok(self.enqueue(&mut w, Some(make_op(loc))))
    }

    /// Queues `op` (or a barrier) for the group commit; returns the slot to wait on.
    pub(crate) fn submit(&self, op: Option<Op>) -> Result<Arc<Slot>> {
        let mut w = self.writer.lock();
        self.check_writable(&w)?;
        Ok(self.enqueue(&mut w, op))
    }

    /// Queues `op` under the held writer lock and wakes the commit thread.
    pub(crate) fn enqueue(&self, w: &mut Writer, op: Option<Op>) -> Arc<Slot> {
        let slot = Arc::new(Slot::default());
        w.queue.push(Pending {
            op,
            slot: slot.clone(),
        });
        self.work_cv.notify_one();
        slot
    }

    /// Hands the read-write file, if it holds any record, to the commit thread to seal;
    /// the next append starts a new file.
    pub(crate) fn roll(&self, w: &mut Writer) -> Result<()> {
        self.check_writable(w)?;
        if w.active.as_ref().is_some_and(ActiveFile::is_empty) {
            return Ok(()); // keep using an empty file rather than sealing it
        }
        if let Some(a) = w.active.take() {
            self.files.set(a.file_id, FileState::Sealing, a.end);
            // Its sealing fsync covers its appends: no separate group fsync for it.
            w.active_dirty = false;
            w.disk_bytes += FOOTER_BYTES;
            w.seals.push(SealJob {
                file: a.file,
                path: a.path,
                file_id: a.file_id,
                data_end: a.end,
                crc: a.crc,
            });
            self.work_cv.notify_one();
        }
        Ok(())
    }

    fn check_writable(&self, w: &Writer) -> Result<()> {
        if let Some(e) = &w.failed {
            return Err(Error::WritesDisabled(e.clone()));
        }
        if w.shutdown {
            return Err(Error::Closed);
        }
        Ok(())
    }
}
