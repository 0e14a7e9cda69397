//! Background threads: memtable flushes, compactions and the `everysec` log fsync.
//!
//! Why plain threads: the engine is synchronous and must not depend on an async runtime;
//! callers on tokio use `spawn_blocking`, and background I/O never runs on their threads.
//! A failing flush or compaction (disk full) is recorded, logged and retried after a
//! pause; writers that would need it fail with `Error::Background` instead of hanging.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::Duration;

use super::{Inner, View};
use crate::error::{IoContext, Result};
use crate::manifest::VersionEdit;
use crate::memtable::Memtable;
use crate::options::SyncPolicy;
use crate::sstable::{Table, table_path};
use crate::wal::{segment_path, sync_dir};

/// Pause after a failed background job before retrying.
const RETRY_PAUSE: Duration = Duration::from_secs(1);

/// Starts the background threads.
pub(crate) fn spawn(inner: &Arc<Inner>) -> Result<Vec<JoinHandle<()>>> {
    let mut threads = Vec::new();
    let mut start = |name: &str, f: fn(&Inner)| -> Result<()> {
        let inner = inner.clone();
        let t = std::thread::Builder::new()
            .name(format!("lsm-{name}"))
            .spawn(move || f(&inner))
            .at(&inner_dir(name))?;
        threads.push(t);
        Ok(())
    };
    start("flush", flush_loop)?;
    start("compact", compaction_loop)?;
    if inner.opts.sync == SyncPolicy::EverySec {
        start("fsync", everysec_loop)?;
    }
    Ok(threads)
}

fn inner_dir(name: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(format!("<thread lsm-{name}>"))
}

/// Records the outcome of a background job (`"flush"` or `"compaction"`) and wakes
/// whoever waits on progress.
fn report(inner: &Inner, what: &str, result: Result<bool>) -> bool {
    let mut bg = inner.bg.lock();
    let slot = if what == "flush" {
        &mut bg.flush_error
    } else {
        &mut bg.compaction_error
    };
    let did_work = match result {
        Ok(did) => {
            *slot = None;
            did
        }
        Err(e) => {
            tracing::error!("background {what} failed, retrying: {e}");
            *slot = Some(format!("{what}: {e}"));
            inner.progress_cv.notify_all();
            inner.flush_cv.wait_for(&mut bg, RETRY_PAUSE);
            false
        }
    };
    inner.progress_cv.notify_all();
    did_work
}

fn flush_loop(inner: &Inner) {
    loop {
        {
            let mut bg = inner.bg.lock();
            while !bg.shutdown && inner.view().imms.is_empty() {
                inner.flush_cv.wait_for(&mut bg, Duration::from_millis(200));
            }
            if bg.shutdown {
                return;
            }
        }
        let oldest = inner.view().imms.last().cloned();
        if let Some(imm) = oldest
            && report(inner, "flush", flush_memtable(inner, &imm).map(|()| true))
        {
            inner.bg.lock().compaction_wanted = true;
            inner.compaction_cv.notify_all();
        }
    }
}

/// Writes the oldest immutable memtable to a level-0 table and commits it.
fn flush_memtable(inner: &Inner, imm: &Arc<Memtable>) -> Result<()> {
    let id = inner.new_file_id();
    let meta = super::open::write_memtable(&inner.dir, id, imm, &inner.opts)?;
    let path = table_path(&inner.dir, id);
    let opened =
        sync_dir(&inner.dir).and_then(|()| Table::open(path.clone(), id, inner.cache.clone()));
    let table = match opened {
        Ok(table) => Arc::new(table),
        Err(e) => {
            // Not committed: free its space for the retry (the disk may be full).
            let _ = std::fs::remove_file(&path);
            return Err(e);
        }
    };
    let mut m = inner.manifest.lock();
    // The log segment after this memtable's is the oldest one still needed.
    let view = inner.view();
    let pos = view
        .imms
        .iter()
        .position(|x| Arc::ptr_eq(x, imm))
        .expect("flushing a memtable not in the view");
    let successor = if pos == 0 {
        view.mem.wal_segment_id
    } else {
        view.imms[pos - 1].wal_segment_id
    };
    let edit = VersionEdit {
        log_number: Some(successor),
        next_file_id: Some(inner.next_file_id.load(Ordering::SeqCst)),
        last_seq: Some(meta.seq_max),
        added: vec![(0, meta.clone())],
        removed: Vec::new(),
    };
    if let Err(e) = m.manifest.append(&edit) {
        drop(table);
        let _ = std::fs::remove_file(&path);
        return Err(e);
    }
    m.state.apply(&edit);
    {
        let mut view = inner.view.write();
        let mut version = (*view.version).clone();
        version.levels[0].push(table);
        version.sort();
        let imms = view
            .imms
            .iter()
            .filter(|x| !Arc::ptr_eq(x, imm))
            .cloned()
            .collect();
        *view = Arc::new(View {
            mem: view.mem.clone(),
            imms,
            version: Arc::new(version),
        });
    }
    drop(m);
    for seg in imm.wal_segment_id..successor {
        let _ = std::fs::remove_file(segment_path(&inner.dir, seg));
    }
    inner
        .counters
        .flush_bytes
        .fetch_add(meta.size_bytes, Ordering::Relaxed);
    inner.counters.flushes.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

fn compaction_loop(inner: &Inner) {
    loop {
        {
            let mut bg = inner.bg.lock();
            if !bg.compaction_wanted && !bg.shutdown {
                inner
                    .compaction_cv
                    .wait_for(&mut bg, Duration::from_secs(1));
            }
            if bg.shutdown {
                return;
            }
            bg.compaction_wanted = false;
        }
        // Run compactions until nothing is over its size target.
        loop {
            let result = {
                let _one = inner.compaction_lock.lock();
                crate::compaction::run_once(inner)
            };
            if !report(inner, "compaction", result) || inner.shutting_down() {
                break;
            }
        }
    }
}

fn everysec_loop(inner: &Inner) {
    loop {
        for _ in 0..10 {
            if inner.shutting_down() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let target = inner.writer.lock().last_seq;
        if let Err(e) = inner.sync_to(target) {
            tracing::error!("everysec log fsync failed: {e}");
        }
    }
}
