//! The database: head + WAL + blocks behind one embedded API.
//!
//! Why a module: it owns the locks and the order of operations that make the
//! parts one consistent store: appends go head-then-WAL under the head lock
//! (so the log's order is the head's), queries merge blocks and head under
//! read locks (blocks before head, always in that order), and maintenance
//! ([`maintain`]) cuts, downsamples, expires and compacts, one at a time.

mod cold;
mod maintain;
mod query;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::{Condvar, Mutex, RwLock};

pub use maintain::MaintainReport;
pub use query::QueryResult;

use crate::block::{Block, Meta};
use crate::cold::ColdTier;
use crate::error::{Error, IoContext, Result, corrupt};
use crate::head::{Head, SeriesSamples};
use crate::labels::Labels;
use crate::options::Options;
use crate::wal::{Ticket, Wal};

/// A time-series database in one directory: `wal/` and `blocks/`.
///
/// `Send + Sync`; methods block on disk I/O, except [`Db::append`], which
/// returns a [`Ticket`] to `.await` (or `wait`) for durability.
pub struct Db {
    inner: Arc<Inner>,
    stop: Arc<(Mutex<bool>, Condvar)>,
    maintenance: Option<std::thread::JoinHandle<()>>,
}

pub(crate) struct Inner {
    /// Held (flock) while open: one process per directory.
    _lock: std::fs::File,
    opts: Options,
    blocks_dir: PathBuf,
    blocks: RwLock<Vec<Arc<Block>>>,
    head: RwLock<Head>,
    wal: Wal,
    /// One maintenance pass at a time.
    maintaining: Mutex<()>,
    /// The object store old blocks move to, if configured.
    cold: Option<Arc<ColdTier>>,
}

/// Counters and sizes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Stats {
    /// Series in the head.
    pub head_series: usize,
    /// Bytes of compressed chunks in the head.
    pub head_chunk_bytes: usize,
    /// Samples appended since open (WAL replay included).
    pub samples_appended: u64,
    /// Blocks on disk.
    pub blocks: usize,
    /// Bytes of all blocks on local disk.
    pub block_bytes: u64,
    /// Blocks whose chunks are in cold storage.
    pub cold_blocks: usize,
    /// Samples (raw) and points (downsampled) in blocks.
    pub block_samples: u64,
    /// Bytes of the WAL.
    pub wal_bytes: u64,
    /// WAL fsyncs since open.
    pub wal_fsyncs: u64,
}

impl Db {
    /// Opens (or creates) the database in `dir`: loads the blocks, removes
    /// leftovers of interrupted writes, replays the WAL into the head, and
    /// starts the maintenance thread if `maintenance_interval_ms` is set.
    pub fn open(dir: impl AsRef<Path>, opts: Options) -> Result<Self> {
        opts.validate()?;
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).at(dir)?;
        let lock_path = dir.join("lock");
        let lock = std::fs::File::create(&lock_path).at(&lock_path)?;
        if lock.try_lock().is_err() {
            return Err(Error::InvalidArgument(format!(
                "{} is in use by another process",
                dir.display()
            )));
        }
        let blocks_dir = dir.join("blocks");
        std::fs::create_dir_all(&blocks_dir).at(&blocks_dir)?;
        let cold = opts
            .cold
            .as_ref()
            .map(|c| ColdTier::new(c).map(Arc::new))
            .transpose()?;
        let blocks = load_blocks(&blocks_dir, cold.as_ref())?;
        let mut head = Head::new();
        head.min_valid_t = blocks
            .iter()
            .map(|b| b.meta().max_t)
            .max()
            .unwrap_or(i64::MIN);
        let wal = Wal::open(&dir.join("wal"), opts.wal_segment_bytes_max, |r| {
            head.replay(r, &opts)
        })?;
        head.finish_replay(&opts);
        let interval_ms = opts.maintenance_interval_ms;
        let inner = Arc::new(Inner {
            _lock: lock,
            opts,
            blocks_dir,
            blocks: RwLock::new(blocks),
            head: RwLock::new(head),
            wal,
            maintaining: Mutex::new(()),
            cold,
        });
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let maintenance = if interval_ms > 0 {
            let (inner, stop) = (inner.clone(), stop.clone());
            let t = std::thread::Builder::new()
                .name("tsdb-maintain".into())
                .spawn(move || maintenance_loop(&inner, &stop, interval_ms))
                .at(dir)?;
            Some(t)
        } else {
            None
        };
        Ok(Self {
            inner,
            stop,
            maintenance,
        })
    }

    /// The options in force.
    pub fn options(&self) -> &Options {
        &self.inner.opts
    }

    /// Builds a label set checked against this database's limits.
    pub fn labels<N: Into<String>, V: Into<String>>(
        &self,
        pairs: impl IntoIterator<Item = (N, V)>,
    ) -> Result<Labels> {
        Labels::new(pairs, &self.inner.opts.limits)
    }

    /// Appends a request: applied whole or refused whole (see [`crate::head`]
    /// for the rules). The samples are visible to queries at once and durable
    /// when the returned ticket resolves; acknowledge only then.
    pub fn append(&self, mut batch: Vec<SeriesSamples>) -> Result<Ticket> {
        batch.retain(|(_, s)| !s.is_empty()); // a series without samples changes nothing
        let limit = self.inner.opts.limits.samples_per_request_max;
        let count: usize = batch.iter().map(|(_, s)| s.len()).sum();
        if count > limit {
            return Err(Error::TooManySamples { count, limit });
        }
        self.inner.wal.check_writable()?;
        let batch: Vec<_> = batch.into_iter().map(|(l, s)| (l.hash64(), l, s)).collect();
        let now_ms = i64::try_from(clock::now_ms()).unwrap_or(i64::MAX);
        let mut head = self.inner.head.write();
        let frames = head.append(batch, &self.inner.opts, now_ms)?;
        Ok(self.inner.wal.append(&frames))
    }

    /// [`Db::append`] and wait until durable.
    pub fn append_wait(&self, batch: Vec<SeriesSamples>) -> Result<()> {
        self.append(batch)?.wait()
    }

    /// Metas of the blocks on disk, oldest first.
    pub fn blocks(&self) -> Vec<Meta> {
        self.inner
            .blocks
            .read()
            .iter()
            .map(|b| b.meta().clone())
            .collect()
    }

    /// Reads and checks every chunk of every block.
    pub fn verify(&self) -> Result<()> {
        let blocks = self.inner.blocks.read().clone();
        blocks.iter().try_for_each(|b| b.verify())
    }

    /// Counters and sizes.
    pub fn stats(&self) -> Stats {
        let blocks = self.inner.blocks.read();
        let head = self.inner.head.read();
        Stats {
            head_series: head.series_count(),
            head_chunk_bytes: head.chunk_bytes(),
            samples_appended: head.samples_appended,
            blocks: blocks.len(),
            block_bytes: blocks.iter().map(|b| b.disk_bytes()).sum(),
            cold_blocks: blocks.iter().filter(|b| b.meta().cold).count(),
            block_samples: blocks.iter().map(|b| b.meta().samples).sum(),
            wal_bytes: self.inner.wal.disk_bytes(),
            wal_fsyncs: self.inner.wal.fsyncs(),
        }
    }

    /// Runs one maintenance pass now (cut, downsample, retention, compaction).
    pub fn maintain(&self) -> Result<MaintainReport> {
        self.inner.maintain()
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        *self.stop.0.lock() = true;
        self.stop.1.notify_all();
        if let Some(t) = self.maintenance.take() {
            let _ = t.join();
        }
        self.inner.wal.close();
    }
}

fn maintenance_loop(inner: &Inner, stop: &(Mutex<bool>, Condvar), interval_ms: u64) {
    let interval = std::time::Duration::from_millis(interval_ms);
    loop {
        {
            let mut stopped = stop.0.lock();
            if !*stopped {
                stop.1.wait_for(&mut stopped, interval);
            }
            if *stopped {
                return;
            }
        }
        if let Err(e) = inner.maintain() {
            tracing::error!(error = %e, "tsdb maintenance failed");
        }
    }
}

/// Opens every block under `dir`, removing `.tmp` leftovers and blocks a
/// compaction replaced; sorted by (resolution, time).
fn load_blocks(dir: &Path, cold: Option<&Arc<ColdTier>>) -> Result<Vec<Arc<Block>>> {
    let mut blocks = Vec::new();
    for e in std::fs::read_dir(dir).at(dir)? {
        let path = e.at(dir)?.path();
        if path.extension().is_some_and(|x| x == "tmp" || x == "del") {
            std::fs::remove_dir_all(&path).at(&path)?;
            continue;
        }
        if path.is_dir() {
            blocks.push(Block::open_in(&path, cold)?);
        }
    }
    let replaced: std::collections::HashSet<(String, i64)> = blocks
        .iter()
        .flat_map(|b| {
            b.meta()
                .sources
                .iter()
                .map(|s| (s.clone(), b.meta().resolution_ms))
        })
        .collect();
    let mut kept = Vec::new();
    for b in blocks {
        if replaced.contains(&(b.meta().id.clone(), b.meta().resolution_ms)) {
            cold::delete_block(&b, cold)?;
        } else {
            kept.push(Arc::new(b));
        }
    }
    kept.sort_by_key(|b| (b.meta().resolution_ms, b.meta().min_t));
    for w in kept.windows(2) {
        let (a, b) = (w[0].meta(), w[1].meta());
        if a.resolution_ms == b.resolution_ms && b.min_t < a.max_t {
            return Err(corrupt(
                dir,
                format!("blocks {} and {} overlap", a.id, b.id),
            ));
        }
    }
    Ok(kept)
}
