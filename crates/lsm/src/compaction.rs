//! Compaction: merging SSTables to bound read cost and reclaim space.
//!
//! Why it exists: every flush adds a level-0 table; without merging, reads would probe
//! ever more tables and overwritten or deleted data would never leave the disk.
//!
//! Strategy: leveled (LevelDB/RocksDB style), chosen as the default because the
//! key-value server is read-heavy and latency-sensitive: a point read touches at most
//! one table per level ≥ 1 (plus level-0 tables), and space amplification stays near
//! 1.1x with a size ratio of 10. The price is write amplification (~10 per level in the
//! worst case); size-tiered compaction would write less but read more tables and need up
//! to 2x space, and is not implemented as a knob.
//!
//! * When level 0 holds `l0_compaction_trigger` tables, all of them merge with the
//!   overlapping level-1 tables into level 1.
//! * Otherwise the level `n ≥ 1` whose size most exceeds its target
//!   (`level1_size_bytes · multiplier^(n-1)`) gives one table (round-robin over the key
//!   space) to merge with the overlapping tables of level `n+1`. A table with no overlap
//!   is moved down without rewriting it ("trivial move").
//!
//! While merging, a version is dropped when a newer version of the same key is visible
//! to every live snapshot; expired values become tombstones; tombstones are dropped once
//! no deeper level can hold an older version of the key. Output is split into tables of
//! about `table_size_bytes`, never splitting a key's versions. Writes are throttled to
//! `compaction_bytes_per_sec`.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::codec::{Kind, now_ms};
use crate::db::{Inner, View};
use crate::error::Result;
use crate::iter::{MergeIter, Source};
use crate::manifest::{LEVELS, VersionEdit};
use crate::sstable::{Table, TableBuilder, TableMeta, table_path};
use crate::version::Version;
use crate::wal::sync_dir;

/// One unit of compaction work.
pub(crate) struct Job {
    /// Input tables, newest data first, with their levels.
    pub inputs: Vec<(usize, Arc<Table>)>,
    /// Level the outputs go to.
    pub output_level: usize,
    /// Whether a single non-overlapping input may be moved instead of rewritten (off
    /// for `Db::compact`, whose point is to rewrite and drop garbage).
    pub allow_move: bool,
}

/// Picks and runs one background compaction; Ok(false) when nothing needs doing.
pub(crate) fn run_once(inner: &Inner) -> Result<bool> {
    let version = inner.view().version.clone();
    match pick(inner, &version) {
        Some(job) => run(inner, job).map(|()| true),
        None => Ok(false),
    }
}

fn level_target_bytes(inner: &Inner, level: usize) -> u64 {
    let o = &inner.opts;
    o.level1_size_bytes.saturating_mul(
        o.level_size_multiplier
            .saturating_pow(level.saturating_sub(1) as u32),
    )
}

fn key_range(tables: &[Arc<Table>]) -> (Vec<u8>, Vec<u8>) {
    let smallest = tables
        .iter()
        .map(|t| &t.meta.smallest)
        .min()
        .cloned()
        .unwrap_or_default();
    let largest = tables
        .iter()
        .map(|t| &t.meta.largest)
        .max()
        .cloned()
        .unwrap_or_default();
    (smallest, largest)
}

/// The leveled compaction picker.
fn pick(inner: &Inner, v: &Version) -> Option<Job> {
    if v.levels[0].len() >= inner.opts.l0_compaction_trigger {
        let l0 = v.levels[0].clone();
        let (lo, hi) = key_range(&l0);
        let mut inputs: Vec<_> = l0.into_iter().map(|t| (0, t)).collect();
        inputs.extend(v.overlapping(1, &lo, &hi).into_iter().map(|t| (1, t)));
        return Some(Job {
            inputs,
            output_level: 1,
            allow_move: true,
        });
    }
    let (level, score) = (1..LEVELS - 1)
        .map(|l| {
            (
                l,
                v.level_bytes(l) as f64 / level_target_bytes(inner, l) as f64,
            )
        })
        .max_by(|a, b| a.1.total_cmp(&b.1))?;
    if score < 1.0 {
        return None;
    }
    let mut pointers = inner.compact_pointer.lock();
    let table = v.levels[level]
        .iter()
        .find(|t| t.meta.smallest > pointers[level])
        .or_else(|| v.levels[level].first())?
        .clone();
    pointers[level] = table.meta.largest.clone();
    let mut inputs = vec![(level, table.clone())];
    inputs.extend(
        v.overlapping(level + 1, &table.meta.smallest, &table.meta.largest)
            .into_iter()
            .map(|t| (level + 1, t)),
    );
    Some(Job {
        inputs,
        output_level: level + 1,
        allow_move: true,
    })
}

/// A full compaction for `Db::compact`: every table merges into the deepest non-empty
/// level (at least 1), dropping all garbage.
pub(crate) fn full(inner: &Inner) -> Result<()> {
    let v = inner.view().version.clone();
    let inputs: Vec<_> = (0..LEVELS)
        .flat_map(|l| v.levels[l].iter().map(move |t| (l, t.clone())))
        .collect();
    if inputs.is_empty() {
        return Ok(());
    }
    let output_level = (1..LEVELS)
        .rev()
        .find(|l| !v.levels[*l].is_empty())
        .unwrap_or(1);
    run(
        inner,
        Job {
            inputs,
            output_level,
            allow_move: false,
        },
    )
}

/// True when no level deeper than `output_level` overlaps `[lo, hi]`: tombstones there
/// shadow nothing and can go.
fn is_bottom(v: &Version, output_level: usize, lo: &[u8], hi: &[u8]) -> bool {
    (output_level + 1..LEVELS).all(|l| v.overlapping(l, lo, hi).is_empty())
}

/// Runs a job and installs its result.
pub(crate) fn run(inner: &Inner, job: Job) -> Result<()> {
    debug_assert!(job.output_level >= 1 && job.output_level < LEVELS);
    let v = inner.view().version.clone();
    let tables: Vec<_> = job.inputs.iter().map(|(_, t)| t.clone()).collect();
    if let ([(level, table)], true) = (job.inputs.as_slice(), job.allow_move)
        && (*level > 0
            || v.overlapping(job.output_level, &table.meta.smallest, &table.meta.largest)
                .is_empty())
    {
        // Trivial move: the table has no overlap below; re-link it, do not rewrite.
        let edit = VersionEdit {
            removed: vec![(*level, table.meta.id)],
            added: vec![(job.output_level, table.meta.clone())],
            ..Default::default()
        };
        return install(inner, edit, &job, vec![table.clone()], false);
    }
    let (lo, hi) = key_range(&tables);
    let bottom = is_bottom(&v, job.output_level, &lo, &hi);
    let outputs = merge(inner, &tables, bottom)?;
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
fn install_outputs(inner: &Inner, job: &Job, outputs: &[TableMeta]) -> Result<()> {
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
        .map(|t| Source::table(t.clone(), &[], false))
        .collect();
    let mut merge = MergeIter::new(sources);
    // Versions newer than the oldest snapshot must stay; read it under the snapshot lock
    // so a snapshot taken concurrently is never older than this bound.
    let horizon = {
        let snaps = inner.snapshots.lock();
        snaps
            .keys()
            .next()
            .copied()
            .unwrap_or(inner.visible_seq.load(Ordering::Acquire))
    };
    let now = now_ms();
    let mut builder = None::<TableBuilder>;
    let (mut last_key, mut last_seq_for_key) = (None::<Vec<u8>>, u64::MAX);
    let (started, mut written) = (Instant::now(), 0u64);
    while let Some(mut e) = merge.next_entry()? {
        let new_key = last_key.as_deref() != Some(&e.key[..]);
        if new_key {
            last_key = Some(e.key.clone());
            last_seq_for_key = u64::MAX;
        }
        let shadowed = last_seq_for_key <= horizon;
        last_seq_for_key = e.seq;
        if shadowed || (e.is_deletion_at(now) && e.seq <= horizon && bottom) {
            continue;
        }
        if e.kind == Kind::PutExpiring && e.expire_at_ms <= now {
            (e.kind, e.expire_at_ms, e.value) = (Kind::Delete, 0, Vec::new());
        }
        if new_key
            && builder
                .as_ref()
                .is_some_and(|b| b.size_bytes() >= o.table_size_bytes)
        {
            let done = builder.take().expect("checked");
            written += done.size_bytes();
            outputs.push(done.finish()?);
            throttle(o.compaction_bytes_per_sec, started, written);
            if inner.shutting_down() {
                return Err(crate::error::Error::Background("shutting down".into()));
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

/// Commits the edit and swaps in the new version; deletes rewritten inputs.
fn install(
    inner: &Inner,
    edit: VersionEdit,
    job: &Job,
    added: Vec<Arc<Table>>,
    delete_inputs: bool,
) -> Result<()> {
    let mut m = inner.manifest.lock();
    m.manifest.append(&edit)?;
    m.state.apply(&edit);
    {
        let mut view = inner.view.write();
        let mut version = (*view.version).clone();
        for (level, t) in &job.inputs {
            version.levels[*level].retain(|x| x.meta.id != t.meta.id);
        }
        version.levels[job.output_level].extend(added);
        version.sort();
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
