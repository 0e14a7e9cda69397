//! The group commit: the node's one thread that makes writes durable.
//!
//! Why a module: an fsync costs about as much for one 4 KiB object as for a hundred,
//! so writers never fsync themselves. Each appends its record, queues its mapping op
//! and waits; this thread takes *everything* queued since its last round and, in order:
//!
//! 1. fsyncs the data directory if a data file was created (its entry must survive
//!    before any mapping names the file);
//! 2. fsyncs the read-write file if it was appended to;
//! 3. seals the files that filled up: fsync their data, then write the footer and
//!    fsync again (a footer never covers bytes that might not be on disk);
//! 4. stages the group's ops against the mapping (`mapping::stage`: lookups, the
//!    decision per op, the live-byte changes) and writes them as one `lsm` batch,
//!    which the LSM fsyncs in its commit log;
//! 5. only then updates the file table (live bytes; sealed files become eligible for
//!    compaction) and wakes every writer of the group with its outcome.
//!
//! So a mapping entry is durable only after the record it names, and an object is
//! visible (readers go through the mapping) only once both are: after `kill -9` an
//! object is there iff its record is complete *and* its mapping entry was committed.
//! If any step fails, the whole group fails, nothing in it is acknowledged, and writes
//! are refused until the node is reopened (after a failed fsync the kernel may have
//! dropped the dirty pages: the files' contents are no longer known).

use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::Inner;
use super::write::{Pending, SealJob, Writer};
use crate::datafile::{self, FileState, format::FOOTER_BYTES};
use crate::error::{IoContext, Result};
use crate::mapping::{self, Staged};

/// One round's work, taken from the writer state in one go.
struct Round {
    queue: Vec<Pending>,
    sync: Option<(Arc<File>, PathBuf)>,
    seals: Vec<SealJob>,
    dir_dirty: bool,
    /// The node had already failed when the round was taken.
    failed: Option<String>,
}

impl Round {
    fn take(w: &mut Writer) -> Self {
        let sync = match (&w.active, w.active_dirty) {
            (Some(a), true) => Some((a.file.clone(), a.path.clone())),
            _ => None,
        };
        w.active_dirty = false;
        Self {
            queue: std::mem::take(&mut w.queue),
            sync,
            seals: std::mem::take(&mut w.seals),
            dir_dirty: std::mem::take(&mut w.dir_dirty),
            failed: w.failed.clone(),
        }
    }
}

/// Marks the commit thread gone when it exits, normally or by a panic, so no waiter
/// waits forever.
struct Gone<'a>(&'a AtomicBool);

impl Drop for Gone<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

/// The commit thread's loop: one round per wake-up until the node closes and the
/// queue is drained.
pub(crate) fn run(inner: Arc<Inner>) {
    let _gone = Gone(&inner.committer_gone);
    loop {
        let round = {
            let mut w = inner.writer.lock();
            while w.queue.is_empty() && w.seals.is_empty() && !w.shutdown {
                inner.work_cv.wait(&mut w);
            }
            if w.queue.is_empty() && w.seals.is_empty() {
                return; // closing, and nothing left to commit
            }
            Round::take(&mut w)
        };
        inner.commit_round(round);
    }
}

impl Inner {
    fn commit_round(&self, round: Round) {
        let result = match &round.failed {
            Some(e) => Err(e.clone()),
            None => self.make_durable(&round).map_err(|e| e.to_string()),
        };
        match result {
            Ok(staged) => {
                self.files.apply(staged.deltas.iter());
                for s in &round.seals {
                    self.files
                        .set(s.file_id, FileState::Sealed, s.data_end + FOOTER_BYTES);
                }
                let ops = staged.outcomes.len() as u64;
                self.counters.commits.fetch_add(1, Ordering::Relaxed);
                self.counters.committed_ops.fetch_add(ops, Ordering::Relaxed);
                let mut outcomes = staged.outcomes.into_iter();
                for p in round.queue {
                    let outcome = match p.op {
                        Some(_) => outcomes.next().unwrap_or(false),
                        None => true,
                    };
                    p.slot.finish(Ok(outcome));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "group commit failed; writes disabled until reopen");
                {
                    let mut w = self.writer.lock();
                    w.failed.get_or_insert_with(|| e.clone());
                }
                for p in round.queue {
                    p.slot.finish(Err(e.clone()));
                }
            }
        }
    }

    /// Steps 1-4 of the module docs.
    fn make_durable(&self, round: &Round) -> Result<Staged> {
        let data_dir = self.files.dir();
        if round.dir_dirty {
            sync_dir(data_dir)?;
        }
        if let Some((file, path)) = &round.sync {
            self.counters.data_fsyncs.fetch_add(1, Ordering::Relaxed);
            file.sync_data().at(path)?;
        }
        for s in &round.seals {
            self.counters.data_fsyncs.fetch_add(2, Ordering::Relaxed);
            s.file.sync_data().at(&s.path)?;
            datafile::seal(&s.file, &s.path, s.data_end, s.crc)?;
        }
        let ops: Vec<_> = round.queue.iter().filter_map(|p| p.op).collect();
        let staged = mapping::stage(&ops, |id| self.mapping.get(id))?;
        self.mapping.commit(&staged.writes)?;
        Ok(staged)
    }
}

/// fsyncs a directory, making file creations and deletions in it durable.
pub(crate) fn sync_dir(dir: &std::path::Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).at(dir)
}
