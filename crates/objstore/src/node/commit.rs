//! The group commit: the node's two threads that make writes durable.
//!
//! Why a module: an fsync costs about as much for one 4 KiB object as for a hundred,
//! so writers never fsync themselves. Each appends its record, queues its mapping op
//! and waits; the *data stage* thread takes everything queued since its last round and:
//!
//! 1. fsyncs the data directory if a data file was created (its entry must survive
//!    before any mapping names the file);
//! 2. fsyncs the read-write file if it was appended to;
//! 3. seals the files that filled up: fsync their data, then write the footer and
//!    fsync again (a footer never covers bytes that might not be on disk);
//!
//! then hands the round to the *mapping stage* thread, which
//!
//! 4. stages the round's ops against the mapping (`mapping::stage`: lookups, the
//!    decision per op, the live-byte changes) and writes them as one `lsm` batch,
//!    which the LSM fsyncs in its commit log;
//! 5. only then updates the file table (live bytes; sealed files become eligible for
//!    compaction) and wakes every writer of the round with its outcome.
//!
//! The two stages form a pipeline: while round *n*'s mapping is being fsynced, round
//! *n + 1*'s data is (the data stage runs at most one round ahead), so two fsyncs per
//! round cost about one round-trip of latency in throughput. Rounds reach the mapping
//! in the order they were taken, so ops apply in queue order.
//!
//! So a mapping entry is durable only after the record it names, and an object is
//! visible (readers go through the mapping) only once both are: after `kill -9` an
//! object is there iff its record is complete *and* its mapping entry was committed.
//! If any step fails, the whole round fails, nothing in it is acknowledged, and writes
//! (and every later round) are refused until the node is reopened (after a failed
//! fsync the kernel may have dropped the dirty pages: the files' contents are no
//! longer known).

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

/// The data stage's loop (the node's commit thread): one round per wake-up until the
/// node closes and the queue is drained. It starts the mapping stage's thread and
/// hands it each round once the round's data is durable, then takes the next round
/// while the mapping stage commits the last one.
pub(crate) fn run(inner: Arc<Inner>) {
    let _gone = Gone(&inner.committer_gone);
    // One round in the hand-over: the data stage runs at most one round ahead.
    let (tx, rx) = std::sync::mpsc::sync_channel::<(Round, std::result::Result<(), String>)>(1);
    let mapper = {
        let inner = inner.clone();
        std::thread::Builder::new()
            .name("objstore-map".into())
            .spawn(move || inner.mapping_stage(rx))
    };
    let mapper = match mapper {
        Ok(m) => m,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the mapping-stage thread");
            return;
        }
    };
    loop {
        let round = {
            let mut w = inner.writer.lock();
            while w.queue.is_empty() && w.seals.is_empty() && !w.shutdown {
                inner.work_cv.wait(&mut w);
            }
            if w.queue.is_empty() && w.seals.is_empty() {
                break; // closing, and nothing left to commit
            }
            Round::take(&mut w)
        };
        let durable = match &round.failed {
            Some(e) => Err(e.clone()),
            None => inner.make_data_durable(&round).map_err(|e| e.to_string()),
        };
        if let Err(e) = &durable {
            inner.writer.lock().failed.get_or_insert_with(|| e.clone());
        }
        if tx.send((round, durable)).is_err() {
            break; // the mapping stage is gone (it panicked): waiters see `Closed`
        }
    }
    drop(tx);
    let _ = mapper.join();
}

impl Inner {
    /// The mapping stage: commits each round's mapping changes in the order the data
    /// stage made them durable, then wakes the round's writers.
    fn mapping_stage(
        &self,
        rx: std::sync::mpsc::Receiver<(Round, std::result::Result<(), String>)>,
    ) {
        let mut failed: Option<String> = None;
        for (round, durable) in rx {
            let result = match (&failed, &durable) {
                (Some(e), _) | (None, Err(e)) => Err(e.clone()),
                (None, Ok(())) => self.commit_mapping(&round).map_err(|e| e.to_string()),
            };
            if let Err(e) = &result {
                failed.get_or_insert_with(|| e.clone());
            }
            self.finish_round(round, result);
        }
    }

    /// Wakes a round's writers with their outcomes (or the failure), and on success
    /// updates the file table.
    fn finish_round(&self, round: Round, result: std::result::Result<Staged, String>) {
        match result {
            Ok(staged) => {
                self.files.apply(staged.deltas.iter());
                for s in &round.seals {
                    self.files
                        .set(s.file_id, FileState::Sealed, s.data_end + FOOTER_BYTES);
                }
                let ops = staged.outcomes.len() as u64;
                self.counters.commits.fetch_add(1, Ordering::Relaxed);
                self.counters
                    .committed_ops
                    .fetch_add(ops, Ordering::Relaxed);
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
                self.writer.lock().failed.get_or_insert_with(|| e.clone());
                for p in round.queue {
                    p.slot.finish(Err(e.clone()));
                }
            }
        }
    }

    /// Steps 1-3 of the module docs (the data stage).
    fn make_data_durable(&self, round: &Round) -> Result<()> {
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
        Ok(())
    }

    /// Step 4 (the mapping stage): stage the round's ops and commit them as one batch.
    fn commit_mapping(&self, round: &Round) -> Result<Staged> {
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::ObjectId;
    use crate::mapping::Op;
    use crate::options::Options;

    /// A node's state with no commit thread yet: the test starts it when it wants.
    fn open_without_threads(dir: &std::path::Path) -> Arc<Inner> {
        let opts = Options {
            gc_interval_ms: 0,
            ..Options::default()
        };
        Arc::new(crate::node::open::open(dir, opts).unwrap())
    }

    /// Stops the commit thread started by a test.
    fn stop(inner: &Inner, committer: std::thread::JoinHandle<()>) {
        inner.writer.lock().shutdown = true;
        inner.work_cv.notify_all();
        committer.join().unwrap();
    }

    /// Everything queued while the commit thread is busy is one group: one data fsync
    /// and one mapping batch for a hundred puts and deletes. (The thread is started
    /// after the ops are queued, so the count is exact, not a timing.)
    #[test]
    fn ops_queued_before_a_round_share_one_commit() {
        let dir = tempfile::tempdir().unwrap();
        let inner = open_without_threads(dir.path());
        let mut slots = Vec::new();
        let mut ids = Vec::new();
        for i in 0..100u8 {
            let id = ObjectId::generate();
            ids.push(id);
            let slot = inner
                .append(id, &[i; 100], false, |to| Op::Put {
                    id,
                    to,
                    fresh: true,
                })
                .unwrap();
            slots.push(slot);
        }
        slots.push(inner.submit(Some(Op::Delete { id: ids[0] })).unwrap());
        assert_eq!(
            inner.mapping.get(ids[1]).unwrap(),
            None,
            "not visible before the commit"
        );
        let syncs_before = inner.mapping.lsm_stats().wal_syncs;
        let committer = {
            let inner = inner.clone();
            std::thread::spawn(move || run(inner))
        };
        let outcomes: Vec<bool> = slots.iter().map(|s| s.wait(&inner).unwrap()).collect();
        assert_eq!(
            outcomes.iter().filter(|&&o| o).count(),
            1,
            "only the delete found its id"
        );
        assert_eq!(inner.counters.commits.load(Ordering::Relaxed), 1);
        assert_eq!(inner.counters.committed_ops.load(Ordering::Relaxed), 101);
        assert_eq!(inner.counters.data_fsyncs.load(Ordering::Relaxed), 1);
        assert_eq!(inner.mapping.lsm_stats().wal_syncs, syncs_before + 1);
        assert_eq!(inner.mapping.get(ids[0]).unwrap(), None);
        assert!(inner.mapping.get(ids[1]).unwrap().is_some());
        let live = inner.files.snapshot()[0].live_objects;
        assert_eq!(live, 99);
        stop(&inner, committer);
    }

    /// A failed commit fails every waiter of its group, and every later write, until
    /// the node is reopened: nothing is acknowledged that might not be on disk.
    #[test]
    fn a_failed_round_fails_its_group_and_latches_writes_off() {
        let dir = tempfile::tempdir().unwrap();
        let inner = open_without_threads(dir.path());
        let id = ObjectId::generate();
        let slot = inner
            .append(id, b"doomed", false, |to| Op::Put {
                id,
                to,
                fresh: true,
            })
            .unwrap();
        // The data directory vanishes: the round's directory fsync fails.
        std::fs::remove_dir_all(inner.files.dir()).unwrap();
        let committer = {
            let inner = inner.clone();
            std::thread::spawn(move || run(inner))
        };
        let err = slot.wait(&inner).unwrap_err();
        assert!(matches!(err, crate::Error::WritesDisabled(_)), "{err}");
        assert_eq!(inner.mapping.get(id).unwrap(), None, "nothing committed");
        let again = inner.submit(None).err().unwrap();
        assert!(matches!(again, crate::Error::WritesDisabled(_)), "{again}");
        stop(&inner, committer);
    }
}
