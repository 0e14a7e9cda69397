//! Running a compaction choice: the merge, the output tables, and the atomic install.
//!
//! Why a module: this is the I/O half of compaction. It decides nothing — the tables
//! come from `choose`, the fate of each entry from `keep` — and owns
//! what can fail: reading inputs, writing and fsyncing outputs (removed again on any
//! failure, so a full disk is not made fuller), committing the manifest edit, and
//! swapping the new version in. Before it commits, it checks the new version's output
//! level is still disjoint: a bug in the picker must fail the compaction, never install
//! a version whose lookups would miss data.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::choose::Choice;
use super::filter::Lookup;
use super::keep::{Retain, Rules};
use crate::codec::now_ms;
use crate::db::{Inner, View};
use crate::error::{Error, Result};
use crate::iter::{MergeIter, Source};
use crate::manifest::VersionEdit;
use crate::sstable::{Table, TableBuilder, TableMeta, table_path};
use crate::version::level_overlap;
use crate::wal::sync_dir;

/// Runs a choice and installs its result.
pub(crate) fn run(inner: &Inner, job: Choice<Arc<Table>>) -> Result<()> {
    debug_assert!(job.output_level >= 1 && job.output_level < crate::manifest::LEVELS);
    if job.trivial_move {
        // Re-link the table one level down, do not rewrite it.
        let [(level, table)] = job.inputs.as_slice() else {
            unreachable!("a trivial move has one input")
        };
        let edit = VersionEdit {
            removed: vec![(*level, table.meta.id)],
            added: vec![(job.output_level, table.meta.clone())],
            ..Default::default()
        };
        return install(inner, edit, &job, vec![table.clone()], false);
    }
    let tables: Vec<_> = job.inputs.iter().map(|(_, t)| t.clone()).collect();
    let outputs = merge(inner, &tables, job.bottom)?;
    if let Err(e) = install_outputs(inner, &job, &outputs) {
        remove_tables(inner, &outputs);
        return Err(e);
    }
    let read: u64 = tables.iter().map(|t| t.meta.size_bytes).sum();
    let written: u64 = outputs.iter().map(|m| m.size_bytes).sum();
    inner
        .counters
        .compaction_bytes_read
        .fetch_add(read, Ordering::Relaxed);
    inner
        .counters
        .compaction_bytes_written
        .fetch_add(written, Ordering::Relaxed);
    Ok(())
}

/// Makes the written outputs durable and commits them in place of the job's inputs.
fn install_outputs(inner: &Inner, job: &Choice<Arc<Table>>, outputs: &[TableMeta]) -> Result<()> {
    sync_dir(&inner.dir)?;
    let mut opened = Vec::with_capacity(outputs.len());
    for meta in outputs {
        opened.push(Arc::new(Table::open(
            table_path(&inner.dir, meta.id),
            meta.id,
            inner.cache.clone(),
        )?));
    }
    let edit = VersionEdit {
        next_file_id: Some(inner.next_file_id.load(Ordering::SeqCst)),
        removed: job.inputs.iter().map(|(l, t)| (*l, t.meta.id)).collect(),
        added: outputs
            .iter()
            .map(|m| (job.output_level, m.clone()))
            .collect(),
        ..Default::default()
    };
    install(inner, edit, job, opened, true)
}

/// Deletes the files of outputs that were not committed. A failed compaction must never
/// leave finished outputs behind: on a full disk their space is exactly what the retry
/// needs, and a leak would keep it failing until the store is reopened.
fn remove_tables(inner: &Inner, outputs: &[TableMeta]) {
    for m in outputs {
        let _ = std::fs::remove_file(table_path(&inner.dir, m.id));
    }
}

/// Merges `tables` into new tables, dropping garbage; returns the outputs' summaries.
/// On failure no output is left on disk.
fn merge(inner: &Inner, tables: &[Arc<Table>], bottom: bool) -> Result<Vec<TableMeta>> {
    let mut outputs = Vec::new();
    match merge_into(inner, tables, bottom, &mut outputs) {
        Ok(()) => Ok(outputs),
        Err(e) => {
            remove_tables(inner, &outputs);
            Err(e)
        }
    }
}

/// The merge loop: appends each finished output's summary to `outputs`.
fn merge_into(
    inner: &Inner,
    tables: &[Arc<Table>],
    bottom: bool,
    outputs: &mut Vec<TableMeta>,
) -> Result<()> {
    let o = &inner.opts;
    let sources = tables
        .iter()
        .map(|t| Source::table(t.clone(), false))
        .collect();
    let mut merge = MergeIter::new(sources);
    // Versions newer than the oldest snapshot must stay; read it under the snapshot lock
    // so a snapshot taken concurrently is never older than this bound.
    let horizon_seq = {
        let snaps = inner.snapshots.lock();
        snaps
            .keys()
            .next()
            .copied()
            .unwrap_or(inner.visible_seq.load(Ordering::Acquire))
    };
    let mut retain = Retain::new(Rules {
        now_ms: now_ms(),
        horizon_seq,
        bottom,
    });
    let mut filter = o.compaction_filter.as_ref().map(|f| f.start());
    let lookup = Lookup::new(inner);
    let mut builder = None::<TableBuilder>;
    let (started, mut written) = (Instant::now(), 0u64);
    while let Some(mut e) = merge.next_entry()? {
        let unwanted = |e: &crate::codec::Entry| {
            filter
                .as_mut()
                .is_some_and(|keep| !keep(&e.key, &e.value, &lookup))
        };
        let Some(first_of_key) = retain.judge(&mut e, unwanted) else {
            continue;
        };
        if first_of_key
            && builder
                .as_ref()
                .is_some_and(|b| b.size_bytes() >= o.table_size_bytes)
        {
            let done = builder.take().expect("checked");
            written += done.size_bytes();
            outputs.push(done.finish()?);
            throttle(o.compaction_bytes_per_sec, started, written);
            if inner.shutting_down() {
                return Err(Error::Background("shutting down".into()));
            }
        }
        if builder.is_none() {
            let id = inner.new_file_id();
            builder = Some(TableBuilder::create(
                &inner.dir,
                id,
                o.block_size_bytes,
                o.compression,
                o.bloom_fp_rate,
            )?);
        }
        let b = builder.as_mut().expect("just created");
        let before = b.size_bytes();
        b.add(&e)?;
        if b.size_bytes() / (1 << 20) != before / (1 << 20) {
            throttle(
                o.compaction_bytes_per_sec,
                started,
                written + b.size_bytes(),
            );
        }
    }
    if let Some(b) = builder.filter(|b| b.entries() > 0) {
        outputs.push(b.finish()?);
    }
    Ok(())
}

/// Sleeps so that `written` bytes since `started` stay under `bytes_per_sec`.
fn throttle(bytes_per_sec: u64, started: Instant, written: u64) {
    if bytes_per_sec == 0 {
        return;
    }
    let due = Duration::from_secs_f64(written as f64 / bytes_per_sec as f64);
    if let Some(wait) = due.checked_sub(started.elapsed()) {
        std::thread::sleep(wait.min(Duration::from_secs(5)));
    }
}

/// Checks the new version, commits the edit and swaps the version in; deletes rewritten
/// inputs. Nothing is committed when the check fails.
fn install(
    inner: &Inner,
    edit: VersionEdit,
    job: &Choice<Arc<Table>>,
    added: Vec<Arc<Table>>,
    delete_inputs: bool,
) -> Result<()> {
    let mut m = inner.manifest.lock();
    // The version changes only under the manifest lock: this is the one to replace.
    let mut version = (*inner.view().version).clone();
    for (level, t) in &job.inputs {
        version.levels[*level].retain(|x| x.meta.id != t.meta.id);
    }
    version.levels[job.output_level].extend(added);
    if let Some(overlap) = level_overlap(job.output_level, &version.levels[job.output_level]) {
        // A picker bug, caught before it reaches the disk: lookups in this level would
        // miss data. Fail the compaction (it is logged and retried, and writers that
        // wait on it see the error) rather than install it or kill the thread.
        return Err(Error::Background(format!(
            "compaction refused to install an invalid version: {overlap}"
        )));
    }
    version.sort();
    m.manifest.append(&edit)?;
    m.state.apply(&edit);
    {
        let mut view = inner.view.write();
        *view = Arc::new(View {
            mem: view.mem.clone(),
            imms: view.imms.clone(),
            version: Arc::new(version),
        });
    }
    drop(m);
    if delete_inputs {
        // Readers holding the old version keep the files open; the space returns when
        // they finish.
        for (_, t) in &job.inputs {
            let _ = std::fs::remove_file(&t.path);
        }
    }
    inner.counters.compactions.fetch_add(1, Ordering::Relaxed);
    Ok(())
}
