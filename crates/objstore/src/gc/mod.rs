//! Garbage collection by compaction: give back the bytes of deleted and overwritten
//! objects.
//!
//! Why a module: deletes and overwrites only *mark* (they change the mapping; the old
//! record stays in its file), because rewriting a large file for every delete would
//! cost far more than the object. Garbage accumulates in sealed files until a file is
//! worth compacting: [`plan::choose`] (pure) picks sealed files whose live ratio is
//! below `gc_live_ratio_max`, emptiest first; the runner here then, per file:
//!
//! 1. walks the file's record headers ([`crate::datafile::Scan`]); a record is live iff
//!    the mapping still points at exactly this file and offset;
//! 2. reads each live record (checksum verified: a damaged object is never copied into
//!    a record with a fresh, valid checksum; it stays where it is, reported, until the
//!    layer above repairs it from another copy) and appends it to the *current*
//!    read-write file, so survivors of many sparse files end up packed together
//!    instead of in new small files;
//! 3. swaps each mapping with a *move* op through the group commit: durable, atomic per
//!    object, and applied only if the mapping still points at the old record (a delete
//!    or overwrite that raced with the copy wins, and the copy becomes garbage);
//! 4. once the file has no live object left, removes it from the file table (readers
//!    that still hold its descriptor finish their read; others look the object up
//!    again) and deletes it.
//!
//! Copies are paced to `gc_bytes_per_sec` ([`plan::pause`]).
//!
//! **Crash safety.** A crash before a move commits leaves the old record mapped and the
//! copy an unmapped tail (cut on open) or garbage; a crash after some moves leaves
//! each object at exactly one mapped record, old or new; a crash after the last move
//! but before the delete leaves a sealed file with no live objects, which the next open
//! removes. Nothing is lost at any step, and at most one file is left behind.
//!
//! A damaged record *header* hides where the next record starts; the runner then finds
//! the file's remaining live objects through the mapping instead (a full pass over it).

pub mod plan;

use std::fs::File;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::ObjectId;
use crate::datafile::{self, FileState, Location, Scan, format::FOOTER_BYTES};
use crate::error::{Error, IoContext, Result};
use crate::mapping::Op;
use crate::node::{Inner, Slot};

/// What one garbage-collection run did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Files compacted and deleted.
    pub files_compacted: u64,
    /// Live objects copied whose mapping moved to the copy.
    pub objects_moved: u64,
    /// Copies whose move lost a race with a delete or overwrite (now garbage).
    pub copies_discarded: u64,
    /// Record bytes copied.
    pub bytes_copied: u64,
    /// File bytes deleted.
    pub bytes_reclaimed: u64,
    /// Files left in place, and why (damaged records, objects that could not be moved).
    pub errors: Vec<String>,
}

/// Waits to keep the copy rate at `gc_bytes_per_sec`; wakes early when the node closes.
struct Pacer {
    started: Instant,
    bytes: u64,
}

impl Pacer {
    fn pace(&mut self, inner: &Inner, bytes: u64) {
        self.bytes += bytes;
        let wait = plan::pause(
            self.bytes,
            inner.opts.gc_bytes_per_sec,
            self.started.elapsed(),
        );
        if !wait.is_zero() {
            let mut closing = inner.closing.lock();
            if !*closing {
                inner.gc_cv.wait_for(&mut closing, wait);
            }
        }
    }
}

/// One garbage-collection run (see the module docs). A damaged file is skipped and
/// reported; an I/O failure of the node ends the run with the error.
pub(crate) fn run(inner: &Inner) -> Result<GcReport> {
    let _one = inner.gc_lock.lock();
    inner.counters.gc_runs.fetch_add(1, Ordering::Relaxed);
    let policy = plan::Policy {
        live_ratio_max: inner.opts.gc_live_ratio_max,
        files_max: inner.opts.gc_files_per_run_max,
        copy_bytes_max: inner.opts.gc_copy_bytes_per_run_max,
    };
    let chosen = plan::choose(&inner.files.snapshot(), &policy);
    let mut pacer = Pacer {
        started: Instant::now(),
        bytes: 0,
    };
    let mut report = GcReport::default();
    for file_id in chosen {
        if inner.closing() {
            break;
        }
        compact(inner, file_id, &mut pacer, &mut report)?;
    }
    let c = &inner.counters;
    c.gc_files_compacted
        .fetch_add(report.files_compacted, Ordering::Relaxed);
    c.gc_objects_moved
        .fetch_add(report.objects_moved, Ordering::Relaxed);
    c.gc_bytes_copied
        .fetch_add(report.bytes_copied, Ordering::Relaxed);
    c.gc_bytes_reclaimed
        .fetch_add(report.bytes_reclaimed, Ordering::Relaxed);
    Ok(report)
}

/// The background collector: a run every `gc_interval_ms` until the node closes.
pub(crate) fn background(inner: Arc<Inner>) {
    let interval = Duration::from_millis(inner.opts.gc_interval_ms);
    loop {
        {
            let mut closing = inner.closing.lock();
            if !*closing {
                inner.gc_cv.wait_for(&mut closing, interval);
            }
            if *closing {
                return;
            }
        }
        match run(&inner) {
            Ok(r) if r.files_compacted > 0 || !r.errors.is_empty() => {
                tracing::info!(?r, "garbage collection");
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "garbage collection failed"),
        }
    }
}

/// Compacts sealed file `file_id`: moves its live objects, then deletes it.
fn compact(inner: &Inner, file_id: u64, pacer: &mut Pacer, report: &mut GcReport) -> Result<()> {
    let Some(info) = inner
        .files
        .get(file_id)
        .filter(|f| f.state == FileState::Sealed)
    else {
        return Ok(());
    };
    let path = inner.files.path(file_id);
    let Some(fd) = inner.files.reader(file_id)? else {
        return Ok(());
    };
    let mut copier = Copier {
        inner,
        fd: &fd,
        path: &path,
        pacer,
        report,
        pending: Vec::new(),
    };
    let copied = copier.copy_live(file_id, info.size_bytes.saturating_sub(FOOTER_BYTES));
    let waited = copier.wait_all();
    copied.and(waited)?;
    let Some(info) = inner.files.get(file_id) else {
        return Ok(());
    };
    if info.live_objects > 0 {
        report.errors.push(format!(
            "{}: {} live objects could not be moved; the file is kept",
            path.display(),
            info.live_objects
        ));
        return Ok(());
    }
    {
        let mut w = inner.writer.lock();
        inner.files.remove(file_id);
        w.disk_bytes = w.disk_bytes.saturating_sub(info.size_bytes);
    }
    std::fs::remove_file(&path).at(&path)?;
    crate::node::sync_dir(inner.files.dir())?;
    report.files_compacted += 1;
    report.bytes_reclaimed += info.size_bytes;
    Ok(())
}

/// Copies one file's live records and queues their moves.
struct Copier<'a> {
    inner: &'a Inner,
    fd: &'a File,
    path: &'a Path,
    pacer: &'a mut Pacer,
    report: &'a mut GcReport,
    /// Moves queued and not yet waited for (bounded: waited every 256).
    pending: Vec<Arc<Slot>>,
}

impl Copier<'_> {
    /// Copies every live record of the file (data ends at `data_end`).
    fn copy_live(&mut self, file_id: u64, data_end: u64) -> Result<()> {
        let mut damaged_at = None;
        for item in Scan::new(self.fd, self.path, data_end) {
            match item {
                Ok((offset, header)) => {
                    let loc = self.inner.mapping.get(header.id)?;
                    if let Some(loc) = loc.filter(|l| l.file_id == file_id && l.offset == offset) {
                        self.copy(header.id, loc)?;
                    }
                }
                Err(e @ Error::Corrupt { .. }) => {
                    tracing::warn!(error = %e, "damaged record header; finding the rest through the mapping");
                    damaged_at = Some(offset_of(&e));
                }
                Err(e) => return Err(e),
            }
        }
        if let Some(from) = damaged_at {
            let live: Vec<(ObjectId, Location)> = self
                .inner
                .mapping
                .scan()?
                .filter(|r| {
                    r.as_ref()
                        .map_or(true, |(_, l)| l.file_id == file_id && l.offset >= from)
                })
                .collect::<Result<_>>()?;
            for (id, loc) in live {
                self.copy(id, loc)?;
            }
        }
        Ok(())
    }

    /// Copies the live record of `id` at `loc` to the read-write file and queues its move.
    fn copy(&mut self, id: ObjectId, from: Location) -> Result<()> {
        let data = match datafile::read_object(self.fd, self.path, id, &from, 0..from.len) {
            Ok(data) => data,
            Err(e @ Error::Corrupt { .. }) => {
                tracing::error!(%id, error = %e, "a live object is damaged; it is not copied");
                self.inner.counters.corrupt_read();
                self.report.errors.push(e.to_string());
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let slot = self
            .inner
            .append(id, &data, true, |to| Op::Move { id, from, to })?;
        self.pending.push(slot);
        self.report.bytes_copied += from.record_bytes();
        self.pacer.pace(self.inner, from.record_bytes());
        if self.pending.len() >= 256 {
            self.wait_all()?;
        }
        Ok(())
    }

    /// Waits for every queued move and counts the outcomes.
    fn wait_all(&mut self) -> Result<()> {
        let mut result = Ok(());
        for slot in self.pending.drain(..) {
            match slot.wait(self.inner) {
                Ok(true) => self.report.objects_moved += 1,
                Ok(false) => self.report.copies_discarded += 1,
                Err(e) => result = Err(e),
            }
        }
        result
    }
}

/// The offset an [`Error::Corrupt`] names (0 for other errors).
fn offset_of(e: &Error) -> u64 {
    match e {
        Error::Corrupt { offset, .. } => *offset,
        _ => 0,
    }
}
