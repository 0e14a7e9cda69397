//! Opening a node: recovery after a crash, from the mapping table outwards.
//!
//! Why a module: after `kill -9` (or power loss) the files can be in any state the
//! group commit passes through, and open brings them back to one the rules hold for.
//! The mapping (an `lsm` store, itself recovered by its commit log) is the truth: a
//! record the mapping names is acknowledged data; nothing else is. One pass over the
//! mapping gives, per file, its live bytes and objects and the end of its last live
//! record; then each file is settled:
//!
//! | file found | what open does |
//! |---|---|
//! | sealed (valid footer) with live objects | kept as it is, not read |
//! | sealed, no live objects | removed: a compaction finished its moves but not the delete, or deletes emptied it |
//! | unsealed, the newest | the read-write file: cut after its last live record (a torn or unacknowledged tail goes), header rewritten, crc recomputed, fsynced |
//! | unsealed, older, live objects | a seal the crash interrupted: cut the same way, then sealed (footer, fsync) |
//! | unsealed, older, no live objects | removed |
//!
//! Cutting at the last *mapped* record rather than at the last *complete* one also
//! drops complete records whose mappings never committed: they were never
//! acknowledged, and nothing can refer to them. Nothing is ever appended before
//! that point, so no mapping can name a cut byte.

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::{Condvar, Mutex};

use super::commit::sync_dir;
use super::{Counters, Files, Inner, Writer};
use crate::datafile::format::{FILE_HEADER_BYTES, FOOTER_BYTES, file_header};
use crate::datafile::{self, ActiveFile, FileInfo, FileState, file_name, parse_file_name};
use crate::error::{Error, IoContext, Result};
use crate::mapping::{FileSummary, Mapping};
use crate::options::Options;

/// What recovery made of one file.
enum Settled {
    /// Sealed, `size` bytes.
    Sealed(u64),
    /// The read-write file.
    Active(ActiveFile),
    /// Nothing live in it: delete it.
    Remove,
}

/// Opens the node in `dir` (see the module docs).
pub(crate) fn open(dir: &Path, opts: Options) -> Result<Inner> {
    opts.validate().map_err(Error::InvalidArgument)?;
    let data_dir = dir.join("data");
    fs::create_dir_all(&data_dir).at(&data_dir)?;
    // The mapping's lock (lsm locks its directory) is the node's: a second opener fails here.
    let mapping = Mapping::open(&dir.join("mapping"), opts.mapping_memtable_bytes)?;
    let summary = mapping.summarize()?;
    let ids = list_data_files(&data_dir)?;
    let newest = ids.last().copied();
    let mut table = BTreeMap::new();
    let mut active = None;
    let mut dir_changed = false;
    let counters = Counters::default();
    for &file_id in &ids {
        let s = summary.get(&file_id).copied().unwrap_or_default();
        let path = data_dir.join(file_name(file_id));
        let info = |state, size_bytes| FileInfo {
            file_id,
            state,
            size_bytes,
            live_bytes: s.live_bytes,
            live_objects: s.live_objects,
        };
        match settle(&path, file_id, s, Some(file_id) == newest)? {
            Settled::Sealed(size) if s.live_objects > 0 => {
                table.insert(file_id, info(FileState::Sealed, size));
            }
            Settled::Sealed(_) | Settled::Remove => {
                tracing::info!(file = %path.display(), "removing a data file with no live objects");
                fs::remove_file(&path).at(&path)?;
                dir_changed = true;
                counters
                    .files_removed_on_open
                    .fetch_add(1, Ordering::Relaxed);
            }
            Settled::Active(a) => {
                table.insert(file_id, info(FileState::Active, a.end));
                active = Some(a);
            }
        }
    }
    if dir_changed {
        sync_dir(&data_dir)?;
    }
    for (file_id, s) in &summary {
        if !table.contains_key(file_id) {
            tracing::error!(
                file = %data_dir.join(file_name(*file_id)).display(),
                objects = s.live_objects,
                "the mapping names a data file that is missing: its objects are lost on this node"
            );
        }
    }
    let disk_bytes = table.values().map(|f: &FileInfo| f.size_bytes).sum();
    let writer = Writer {
        active,
        active_dirty: false,
        next_file_id: newest.map_or(1, |n| n + 1),
        dir_dirty: false,
        queue: Vec::new(),
        seals: Vec::new(),
        disk_bytes,
        failed: None,
        shutdown: false,
    };
    Ok(Inner {
        dir: dir.to_path_buf(),
        files: Files::new(data_dir, table, opts.open_files_max),
        opts,
        mapping,
        writer: Mutex::new(writer),
        work_cv: Condvar::new(),
        committer_gone: AtomicBool::new(false),
        gc_lock: Mutex::new(()),
        closing: Mutex::new(false),
        gc_cv: Condvar::new(),
        counters,
    })
}

/// The numbers of the data files in `dir`, ascending (other files are left alone).
fn list_data_files(dir: &Path) -> Result<Vec<u64>> {
    let mut ids = Vec::new();
    for entry in fs::read_dir(dir).at(dir)? {
        let entry = entry.at(dir)?;
        let name = entry.file_name();
        match name.to_str().and_then(parse_file_name) {
            Some(id) => ids.push(id),
            None => {
                tracing::warn!(file = ?name, dir = %dir.display(), "ignoring a file that is not a data file")
            }
        }
    }
    ids.sort_unstable();
    Ok(ids)
}

/// Brings one file to a state the rules hold for (the table in the module docs).
fn settle(path: &Path, file_id: u64, s: FileSummary, newest: bool) -> Result<Settled> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .at(path)?;
    let len = file.metadata().at(path)?.len();
    if let Some((data_end, _)) = datafile::read_footer(&file, path, len)?
        && s.max_end <= data_end
    {
        return Ok(Settled::Sealed(len));
    }
    if !newest && s.live_objects == 0 {
        return Ok(Settled::Remove);
    }
    if s.max_end > len {
        tracing::error!(
            file = %path.display(), len, mapped_end = s.max_end,
            "the file is shorter than its mapped records: the last objects are lost on this node"
        );
    }
    let end = s.max_end.min(len).max(FILE_HEADER_BYTES);
    if end != len {
        tracing::info!(file = %path.display(), from = len, to = end, "cutting the unacknowledged tail");
        file.set_len(end).at(path)?;
    }
    file.write_all_at(&file_header(file_id), 0).at(path)?;
    let crc = datafile::crc_of_prefix(&file, path, end)?;
    file.sync_data().at(path)?;
    if newest {
        return Ok(Settled::Active(ActiveFile {
            file: std::sync::Arc::new(file),
            path: path.to_path_buf(),
            file_id,
            end,
            crc,
        }));
    }
    tracing::info!(file = %path.display(), "finishing an interrupted seal");
    datafile::seal(&file, path, end, crc)?;
    Ok(Settled::Sealed(end + FOOTER_BYTES))
}
