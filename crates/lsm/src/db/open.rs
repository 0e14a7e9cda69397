//! Opening a store: lock, manifest, tables, commit-log replay, and cleanup.
//!
//! Recovery order: load the last committed manifest (the live tables), replay every log
//! segment not yet in a table into a memtable (stopping at a torn or corrupt tail), write
//! that memtable as a level-0 table, start a fresh log segment and a fresh manifest, then
//! delete files no manifest references (tables of an interrupted flush or compaction,
//! old segments, old manifests).

use std::fs::{File, OpenOptions};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::{Condvar, Mutex, RwLock};

use super::{BgState, Db, Inner, ManifestCtl, View, Writer};
use crate::batch;
use crate::cache::BlockCache;
use crate::error::{Error, IoContext, Result};
use crate::manifest::{LEVELS, Manifest, ManifestState, manifest_name};
use crate::memtable::Memtable;
use crate::options::Options;
use crate::sstable::{Table, TableBuilder, TableMeta, table_path};
use crate::stats::Counters;
use crate::version::{BloomCounters, Version};
use crate::wal::{WalWriter, parse_records, segment_path, sync_dir};

impl Db {
    /// Opens (or, with `create_if_missing`, creates) the store in directory `path`.
    ///
    /// Fails with [`Error::NotFound`] when there is no store and `create_if_missing` is
    /// off, [`Error::FormatVersion`] for another format, [`Error::Locked`] when another
    /// process has it open, and [`Error::Corruption`] naming the file when a table or the
    /// manifest is damaged.
    pub fn open(path: impl AsRef<Path>, opts: Options) -> Result<Db> {
        opts.validate().map_err(Error::InvalidArgument)?;
        let dir = path.as_ref().to_path_buf();
        if !dir.join("CURRENT").exists() && !opts.create_if_missing {
            return Err(Error::NotFound(dir));
        }
        std::fs::create_dir_all(&dir).at(&dir)?;
        let lock = lock_dir(&dir)?;
        let mut state = match Manifest::load(&dir)? {
            Some((state, name)) => {
                // First free the space of files no committed state references (an
                // interrupted flush, compaction or open): on a full disk it may be what
                // lets this open succeed.
                remove_obsolete(&dir, &state, state.log_number, &name);
                state
            }
            None if opts.create_if_missing => ManifestState {
                next_file_id: 1,
                levels: vec![Vec::new(); LEVELS],
                ..Default::default()
            },
            None => return Err(Error::NotFound(dir)),
        };
        let cache = Arc::new(BlockCache::new(opts.block_cache_size_bytes));
        let mut version = Version::empty();
        for (level, metas) in state.levels.iter().enumerate() {
            for meta in metas {
                let table = Table::open(table_path(&dir, meta.id), meta.id, cache.clone())?;
                // The version is built from the tables' own summaries, and the manifest's
                // level checks were made on its copies: they must agree.
                if table.meta != *meta {
                    return Err(Error::corruption(
                        &table.path,
                        "the table's own summary (key range, sequence numbers, size or \
                         entry count) differs from the manifest's record of it",
                    ));
                }
                version.levels[level].push(Arc::new(table));
            }
        }
        let counters = Counters::default();
        let Recovered {
            wal,
            manifest,
            last_seq,
            next_id,
        } = recover(&dir, &opts, &cache, &counters, &mut state, &mut version)?;
        let wal_id = wal.segment_id;
        let mem = Arc::new(Memtable::new(wal_id));
        let inner = Arc::new(Inner {
            view: RwLock::new(Arc::new(View {
                mem: mem.clone(),
                imms: Vec::new(),
                version: Arc::new(version),
            })),
            writer: Mutex::new(Writer {
                wal,
                mem,
                last_seq,
                failed: None,
            }),
            visible_seq: AtomicU64::new(last_seq),
            sync_leader: Mutex::new(()),
            // Recovery wrote the replayed log into an fsynced table.
            synced_seq: AtomicU64::new(last_seq),
            #[cfg(any(test, feature = "fault-injection"))]
            fail_log_syncs: Default::default(),
            manifest: Mutex::new(ManifestCtl { manifest, state }),
            next_file_id: AtomicU64::new(next_id),
            snapshots: Mutex::new(Default::default()),
            bg: Mutex::new(BgState {
                compaction_wanted: true,
                ..Default::default()
            }),
            flush_cv: Condvar::new(),
            compaction_cv: Condvar::new(),
            progress_cv: Condvar::new(),
            compaction_lock: Mutex::new(()),
            compact_pointer: Mutex::new(vec![Vec::new(); LEVELS]),
            counters,
            bloom: BloomCounters::default(),
            dir,
            opts,
            _lock: lock,
            cache,
        });
        let threads = super::background::spawn(&inner)?;
        Ok(Db { inner, threads })
    }
}

/// The durable outcome of recovery.
struct Recovered {
    /// The fresh log segment new writes go to.
    wal: WalWriter,
    /// The fresh manifest, which CURRENT names.
    manifest: Manifest,
    /// Highest sequence number in the store.
    last_seq: u64,
    /// Next unused file number.
    next_id: u64,
}

/// Replays the log segments into a level-0 table (added to `state` and `version`), starts
/// a fresh log segment and commits a fresh manifest naming both, then deletes what it
/// superseded. If it fails before the manifest is committed, it removes what it wrote.
fn recover(
    dir: &Path,
    opts: &Options,
    cache: &Arc<BlockCache>,
    counters: &Counters,
    state: &mut ManifestState,
    version: &mut Version,
) -> Result<Recovered> {
    // Files of an interrupted flush or compaction may carry numbers the manifest
    // never recorded: start above every number in the directory.
    let next_id = AtomicU64::new(state.next_file_id.max(max_file_id(dir)? + 1));
    let (mem, replayed_seq) = replay_logs(dir, state.log_number, counters)?;
    let last_seq = state.last_seq.max(replayed_seq);
    let mut provisional = Provisional(Vec::new());
    if !mem.is_empty() {
        let id = next_id.fetch_add(1, Ordering::SeqCst);
        let meta = write_memtable(dir, id, &mem, opts)?;
        provisional.0.push(table_path(dir, id));
        sync_dir(dir)?;
        let table = Table::open(table_path(dir, id), id, cache.clone())?;
        version.levels[0].push(Arc::new(table));
        state.levels[0].push(meta);
    }
    version.sort();
    let wal_id = next_id.fetch_add(1, Ordering::SeqCst);
    let manifest_id = next_id.fetch_add(1, Ordering::SeqCst);
    let wal = WalWriter::create(dir, wal_id, wal_prealloc_bytes(opts), true)?;
    provisional.0.push(wal.path.clone());
    state.log_number = wal_id;
    state.last_seq = last_seq;
    state.next_file_id = next_id.load(Ordering::SeqCst);
    let manifest = match Manifest::create(dir, manifest_id, state) {
        Ok(m) => m,
        Err(e) => {
            if Manifest::may_be_current(dir, manifest_id) {
                provisional.0.clear(); // the new manifest may reference them
            }
            return Err(e);
        }
    };
    provisional.0.clear();
    remove_obsolete(dir, state, wal_id, &manifest_name(manifest_id));
    Ok(Recovered {
        wal,
        manifest,
        last_seq,
        next_id: next_id.load(Ordering::SeqCst),
    })
}

/// Files an open has written that no manifest references yet. If the open fails (a full
/// disk) they are removed, so failed attempts leave the directory as it was.
struct Provisional(Vec<PathBuf>);

impl Drop for Provisional {
    fn drop(&mut self) {
        for path in &self.0 {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Log segment preallocation: one memtable's worth plus slack.
pub(crate) fn wal_prealloc_bytes(opts: &Options) -> u64 {
    let m = opts.memtable_size_bytes as u64;
    m + m / 8 + 4096
}

/// Takes the store's advisory lock (released when the file closes).
fn lock_dir(dir: &Path) -> Result<File> {
    let path = dir.join("LOCK");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .at(&path)?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::Locked(dir.to_path_buf())),
        Err(std::fs::TryLockError::Error(e)) => Err(Error::io(&path, e)),
    }
}

/// Ids of files named `{id:06}.{ext}` in `dir`, sorted.
fn numbered_files(dir: &Path, ext: &str) -> Result<Vec<u64>> {
    let mut ids = Vec::new();
    for entry in std::fs::read_dir(dir).at(dir)? {
        let name = entry.at(dir)?.file_name();
        let name = name.to_string_lossy();
        if let Some(id) = name
            .strip_suffix(ext)
            .and_then(|s| s.strip_suffix('.'))
            .and_then(|s| s.parse().ok())
        {
            ids.push(id);
        }
    }
    ids.sort_unstable();
    Ok(ids)
}

/// Highest file number of any table, log segment or manifest in `dir` (0 if none).
fn max_file_id(dir: &Path) -> Result<u64> {
    let mut max = 0;
    for entry in std::fs::read_dir(dir).at(dir)? {
        let name = entry.at(dir)?.file_name().to_string_lossy().into_owned();
        let digits = name
            .strip_prefix("MANIFEST-")
            .unwrap_or(&name)
            .split('.')
            .next()
            .unwrap_or("");
        if let Ok(id) = digits.parse::<u64>() {
            max = max.max(id);
        }
    }
    Ok(max)
}

/// Replays log segments `>= log_number` into a memtable; returns it and the highest
/// sequence number seen. Stops at the first torn or corrupt record.
fn replay_logs(dir: &Path, log_number: u64, counters: &Counters) -> Result<(Memtable, u64)> {
    let mem = Memtable::new(0);
    let mut last_seq = 0;
    for id in numbered_files(dir, "log")?
        .into_iter()
        .filter(|id| *id >= log_number)
    {
        let path = segment_path(dir, id);
        let bytes = std::fs::read(&path).at(&path)?;
        let records = parse_records(&bytes);
        let mut stop = records.tail_error.clone();
        let mut valid = records.valid_bytes;
        let mut offset = 0;
        for payload in &records.payloads {
            let Some((first_seq, ops)) = batch::decode(payload) else {
                stop = Some(format!("malformed batch at offset {offset}"));
                valid = offset;
                break;
            };
            for (i, op) in ops.iter().enumerate() {
                mem.insert(
                    op.key,
                    first_seq + i as u64,
                    op.kind,
                    op.expire_at_ms,
                    op.value,
                );
            }
            last_seq = last_seq.max(first_seq + ops.len() as u64 - u64::from(!ops.is_empty()));
            offset += payload.len() + crate::wal::RECORD_HEADER_BYTES;
        }
        if let Some(reason) = stop {
            let dropped = (bytes.len() - valid) as u64;
            counters
                .wal_tail_dropped_bytes
                .fetch_add(dropped, Ordering::Relaxed);
            tracing::warn!(path = %path.display(), dropped, "commit log ends in a torn or corrupt record ({reason}); recovered up to it");
            break;
        }
    }
    Ok((mem, last_seq))
}

/// Writes every version of `mem` as table `id` (fsynced; the caller fsyncs the dir).
pub(crate) fn write_memtable(
    dir: &Path,
    id: u64,
    mem: &Memtable,
    opts: &Options,
) -> Result<TableMeta> {
    let mut builder = TableBuilder::create(
        dir,
        id,
        opts.block_size_bytes,
        opts.compression,
        opts.bloom_fp_rate,
    )?;
    let mut from = Bound::Unbounded;
    loop {
        let chunk = mem.chunk(from.as_ref(), 4096);
        for e in &chunk {
            builder.add(e)?;
        }
        match chunk.last() {
            Some(last) if chunk.len() == 4096 => {
                from = Bound::Excluded(crate::memtable::MemKey {
                    key: last.key.clone(),
                    seq: last.seq,
                });
            }
            _ => break,
        }
    }
    debug_assert_eq!(builder.entries() as usize, mem.len());
    builder.finish()
}

/// Deletes files the new manifest does not reference. Failures are only logged: a
/// leftover file wastes space but never changes what the store holds.
fn remove_obsolete(dir: &Path, state: &ManifestState, wal_id: u64, manifest: &str) {
    let live: std::collections::HashSet<u64> =
        state.levels.iter().flatten().map(|t| t.id).collect();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let id = name.split('.').next().and_then(|s| s.parse::<u64>().ok());
        let obsolete = match (name.rsplit('.').next(), id) {
            (Some("sst"), Some(id)) => !live.contains(&id),
            (Some("log"), Some(id)) => id < wal_id,
            _ => (name.starts_with("MANIFEST-") && name != manifest) || name == "CURRENT.tmp",
        };
        if obsolete && let Err(e) = std::fs::remove_file(entry.path()) {
            tracing::warn!(file = %name, "could not delete obsolete file: {e}");
        }
    }
}
