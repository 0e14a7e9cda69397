//! Blocks: immutable, time-partitioned slices of the database on disk.
//!
//! Why a module: the chapter's time-series database keeps recent data in
//! memory and the rest on disk; on disk, data is partitioned by time so that a
//! query reads only the blocks overlapping its range, retention deletes whole
//! directories, and compaction merges small blocks into bigger ones. A block
//! never changes once written: a directory with `chunks` (compressed samples),
//! `index` (series, chunk positions and postings; see [`format`]) and
//! `meta.json` (time range, resolution). It is written under `<id>.tmp`, each
//! file fsynced, then renamed, and deleted by a rename to `<id>.del` first: a
//! crash leaves whole blocks, and `.tmp` / `.del` directories that open
//! removes. A block moved to cold storage ([`crate::cold`]) keeps its index
//! here and reads its chunks from the object store.

pub mod format;
pub mod meta;

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use format::{CHUNK_BYTES_MAX, CHUNKS_MAGIC, ChunkData, ChunkMeta, IndexSeries};
pub use meta::Meta;

use crate::cold::{ColdTier, MARKER};
use crate::downsample::AggrPoint;
use crate::error::{IoContext, Result, corrupt};
use crate::head::{Sample, SeriesSamples};
use crate::index::{Matcher, Postings, select};
use crate::labels::Labels;
use crate::wal::sync_dir;

/// Series and their downsampled points.
pub type SeriesPoints = (Labels, Vec<AggrPoint>);

/// An open block: its index in memory, its chunks read on demand.
#[derive(Debug)]
pub struct Block {
    dir: PathBuf,
    meta: Meta,
    series: Vec<IndexSeries>,
    postings: Postings,
    chunks: Chunks,
}

/// Where a block's chunks are read from.
enum Chunks {
    /// The local `chunks` file.
    Local(File),
    /// The object store, by the block's id.
    Cold(Arc<ColdTier>, Arc<str>),
}

impl std::fmt::Debug for Chunks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Chunks::Local(file) => f.debug_tuple("Local").field(file).finish(),
            Chunks::Cold(_, id) => f.debug_tuple("Cold").field(id).finish(),
        }
    }
}

impl Block {
    /// Opens a local block directory, checking its index and the chunks file's magic.
    pub fn open(dir: &Path) -> Result<Self> {
        Self::open_in(dir, None)
    }

    /// Opens a block directory; one marked cold reads its chunks through `cold`
    /// (an error that says so if there is none).
    pub fn open_in(dir: &Path, cold: Option<&Arc<ColdTier>>) -> Result<Self> {
        let meta_path = dir.join("meta.json");
        let meta_bytes = std::fs::read(&meta_path).at(&meta_path)?;
        let mut meta: Meta =
            serde_json::from_slice(&meta_bytes).map_err(|e| corrupt(&meta_path, e.to_string()))?;
        let index_path = dir.join("index");
        let index = std::fs::read(&index_path).at(&index_path)?;
        let (series, postings) =
            format::decode_index(&index).map_err(|e| corrupt(&index_path, e))?;
        let chunks = if dir.join(MARKER).exists() {
            let Some(tier) = cold else {
                return Err(crate::Error::InvalidArgument(format!(
                    "block {} is in cold storage (see its {MARKER}); start with --cold-storage",
                    dir.display()
                )));
            };
            tier.adopt(dir)?;
            meta.cold = true;
            Chunks::Cold(tier.clone(), meta.id.as_str().into())
        } else {
            let chunks_path = dir.join("chunks");
            let mut chunks = File::open(&chunks_path).at(&chunks_path)?;
            let mut magic = [0u8; 8];
            chunks.read_exact(&mut magic).at(&chunks_path)?;
            if &magic != CHUNKS_MAGIC {
                return Err(corrupt(&chunks_path, "not a chunks file (bad magic)"));
            }
            Chunks::Local(chunks)
        };
        // The meta has no checksum of its own: it must agree with the index.
        let name = dir.file_name().map(|n| n.to_string_lossy().into_owned());
        let outside = series
            .iter()
            .flat_map(|s| &s.chunks)
            .any(|c| c.min_t < meta.min_t || c.max_t >= meta.max_t);
        if name.as_deref() != Some(meta.id.as_str())
            || meta.series != series.len() as u64
            || outside
        {
            return Err(corrupt(
                &meta_path,
                "meta.json disagrees with the block's index or name",
            ));
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            meta,
            series,
            postings,
            chunks,
        })
    }

    /// Its meta.
    pub fn meta(&self) -> &Meta {
        &self.meta
    }

    /// Its directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Does it overlap `[min_t, max_t]`?
    pub fn overlaps(&self, min_t: i64, max_t: i64) -> bool {
        self.meta.min_t <= max_t && min_t < self.meta.max_t
    }

    fn read_chunk(&self, c: &ChunkMeta) -> Result<ChunkData> {
        let path = self.dir.join("chunks");
        if c.len > CHUNK_BYTES_MAX {
            return Err(corrupt(
                &path,
                format!("chunk of {} bytes at {}", c.len, c.offset),
            ));
        }
        let cold;
        let mut local = Vec::new();
        let buf: &[u8] = match &self.chunks {
            Chunks::Local(f) => {
                local.resize(c.len as usize, 0);
                f.read_exact_at(&mut local, c.offset).at(&path)?;
                &local
            }
            Chunks::Cold(tier, id) => {
                cold = tier.read(id, c.offset, c.len)?;
                &cold
            }
        };
        format::decode_chunk(buf).map_err(|e| corrupt(&path, format!("chunk at {}: {e}", c.offset)))
    }

    /// The label sets of the series matching `matchers`.
    pub fn series_labels(&self, matchers: &[Matcher]) -> Vec<Labels> {
        select(&self.postings, matchers)
            .into_iter()
            .filter_map(|id| Some(self.series.get(id as usize)?.labels.clone()))
            .collect()
    }

    /// Each matching series' chunk data within `[min_t, max_t]`.
    fn select_data(
        &self,
        matchers: &[Matcher],
        min_t: i64,
        max_t: i64,
    ) -> Result<Vec<(Labels, Vec<ChunkData>)>> {
        let mut out = Vec::new();
        for id in select(&self.postings, matchers) {
            let Some(s) = self.series.get(id as usize) else {
                continue;
            };
            let data = s
                .chunks
                .iter()
                .filter(|c| c.max_t >= min_t && c.min_t <= max_t)
                .map(|c| self.read_chunk(c))
                .collect::<Result<Vec<_>>>()?;
            if !data.is_empty() {
                out.push((s.labels.clone(), data));
            }
        }
        Ok(out)
    }

    /// The matching series' items of one kind (what `pick` takes from each
    /// chunk) with `min_t <= time(item) <= max_t`; series without any are left out.
    fn select_kind<T>(
        &self,
        matchers: &[Matcher],
        (min_t, max_t): (i64, i64),
        pick: impl Fn(ChunkData) -> Vec<T>,
        time: impl Fn(&T) -> i64,
    ) -> Result<Vec<(Labels, Vec<T>)>> {
        let mut out = Vec::new();
        for (labels, data) in self.select_data(matchers, min_t, max_t)? {
            let items: Vec<T> = data
                .into_iter()
                .flat_map(&pick)
                .filter(|x| (min_t..=max_t).contains(&time(x)))
                .collect();
            if !items.is_empty() {
                out.push((labels, items));
            }
        }
        Ok(out)
    }

    /// Raw samples of the matching series within `[min_t, max_t]` (nothing
    /// from a downsampled block).
    pub fn select_raw(
        &self,
        matchers: &[Matcher],
        min_t: i64,
        max_t: i64,
    ) -> Result<Vec<SeriesSamples>> {
        let pick = |d| match d {
            ChunkData::Raw(s) => s,
            ChunkData::Aggr(_) => Vec::new(),
        };
        self.select_kind(matchers, (min_t, max_t), pick, |s: &Sample| s.0)
    }

    /// Downsampled points of the matching series within `[min_t, max_t]`
    /// (nothing from a raw block).
    pub fn select_aggr(
        &self,
        matchers: &[Matcher],
        min_t: i64,
        max_t: i64,
    ) -> Result<Vec<SeriesPoints>> {
        let pick = |d| match d {
            ChunkData::Aggr(p) => p,
            ChunkData::Raw(_) => Vec::new(),
        };
        self.select_kind(matchers, (min_t, max_t), pick, |p: &AggrPoint| p.t)
    }

    /// The label index (names, values, postings).
    pub fn postings(&self) -> &Postings {
        &self.postings
    }

    /// The label sets of all series, sorted.
    pub fn labels(&self) -> impl Iterator<Item = &Labels> {
        self.series.iter().map(|s| &s.labels)
    }

    /// All data of the series with `labels` (series are sorted by labels, so
    /// a binary search finds it); empty if the block has no such series.
    pub fn series_data(&self, labels: &Labels) -> Result<Vec<ChunkData>> {
        match self.series.binary_search_by(|s| s.labels.cmp(labels)) {
            Ok(i) => self.series[i]
                .chunks
                .iter()
                .map(|c| self.read_chunk(c))
                .collect(),
            Err(_) => Ok(Vec::new()),
        }
    }

    /// Reads and checks every chunk (a scrubber's pass).
    pub fn verify(&self) -> Result<()> {
        for s in &self.series {
            for c in &s.chunks {
                self.read_chunk(c)?;
            }
        }
        Ok(())
    }

    /// Bytes of the block's local files.
    pub fn disk_bytes(&self) -> u64 {
        ["chunks", "index", "meta.json", MARKER]
            .iter()
            .filter_map(|f| std::fs::metadata(self.dir.join(f)).ok())
            .map(|m| m.len())
            .sum()
    }
}

/// Writes a new block: add series in label order, then [`BlockWriter::finish`].
pub struct BlockWriter {
    parent: PathBuf,
    tmp: PathBuf,
    chunks: BufWriter<File>,
    offset: u64,
    series: Vec<IndexSeries>,
    postings: Postings,
    meta: Meta,
    chunk_samples_max: usize,
    buf: Vec<u8>,
}

static BLOCK_SEQ: AtomicU64 = AtomicU64::new(0);

impl BlockWriter {
    /// Starts a block for `[min_t, max_t)` at `resolution_ms` under `parent`.
    pub fn new(
        parent: &Path,
        min_t: i64,
        max_t: i64,
        resolution_ms: i64,
        level: u32,
        chunk_samples_max: usize,
    ) -> Result<Self> {
        let id = format!(
            "{:016x}{:04x}",
            clock::now_us(),
            BLOCK_SEQ.fetch_add(1, Ordering::Relaxed) & 0xffff
        );
        let tmp = parent.join(format!("{id}.tmp"));
        std::fs::create_dir_all(&tmp).at(&tmp)?;
        let path = tmp.join("chunks");
        let mut chunks = BufWriter::new(File::create(&path).at(&path)?);
        chunks.write_all(CHUNKS_MAGIC).at(&path)?;
        Ok(Self {
            parent: parent.to_path_buf(),
            tmp,
            chunks,
            offset: CHUNKS_MAGIC.len() as u64,
            series: Vec::new(),
            postings: Postings::default(),
            meta: Meta {
                version: 1,
                id,
                min_t,
                max_t,
                resolution_ms,
                level,
                series: 0,
                chunks: 0,
                samples: 0,
                sources: Vec::new(),
                cold: false,
            },
            chunk_samples_max: chunk_samples_max.max(1),
            buf: Vec::new(),
        })
    }

    fn push_chunk(&mut self, min_t: i64, max_t: i64, metas: &mut Vec<ChunkMeta>) -> Result<()> {
        let path = self.tmp.join("chunks");
        self.chunks.write_all(&self.buf).at(&path)?;
        metas.push(ChunkMeta {
            min_t,
            max_t,
            offset: self.offset,
            len: self.buf.len() as u32,
        });
        self.offset += self.buf.len() as u64;
        self.meta.chunks += 1;
        self.buf.clear();
        Ok(())
    }

    fn push_series(&mut self, labels: Labels, chunks: Vec<ChunkMeta>) {
        let id = self.series.len() as u64;
        self.postings.add(id, &labels);
        self.series.push(IndexSeries { labels, chunks });
        self.meta.series += 1;
    }

    /// Records the blocks this one replaces.
    pub fn set_sources(&mut self, sources: Vec<String>) {
        self.meta.sources = sources;
    }

    /// Adds a series of items (strictly increasing `time`; labels after the
    /// previous series'), `chunk_samples_max` to a chunk.
    fn add_kind<T>(
        &mut self,
        labels: Labels,
        items: &[T],
        time: impl Fn(&T) -> i64,
        encode: impl Fn(&[T], &mut Vec<u8>) -> Option<()>,
    ) -> Result<()> {
        let mut metas = Vec::new();
        for part in items.chunks(self.chunk_samples_max) {
            let (Some(first), Some(last)) = (part.first(), part.last()) else {
                continue;
            };
            if encode(part, &mut self.buf).is_none() {
                return Err(crate::Error::InvalidArgument(
                    "block samples must strictly increase in time".into(),
                ));
            }
            self.push_chunk(time(first), time(last), &mut metas)?;
            self.meta.samples += part.len() as u64;
        }
        self.push_series(labels, metas);
        Ok(())
    }

    /// Adds a series of raw samples.
    pub fn add_raw(&mut self, labels: Labels, samples: &[Sample]) -> Result<()> {
        self.add_kind(labels, samples, |s| s.0, format::encode_raw)
    }

    /// Adds a series of downsampled points.
    pub fn add_aggr(&mut self, labels: Labels, points: &[AggrPoint]) -> Result<()> {
        self.add_kind(labels, points, |p| p.t, format::encode_aggr)
    }

    /// Writes the index and meta, fsyncs, renames the directory into place and
    /// opens the block.
    pub fn finish(self) -> Result<Block> {
        let path = self.tmp.join("chunks");
        let chunks = self
            .chunks
            .into_inner()
            .map_err(|e| e.into_error())
            .at(&path)?;
        chunks.sync_all().at(&path)?;
        let write = |name: &str, bytes: &[u8]| -> Result<()> {
            let p = self.tmp.join(name);
            let mut f = File::create(&p).at(&p)?;
            f.write_all(bytes).at(&p)?;
            f.sync_all().at(&p)
        };
        write("index", &format::encode_index(&self.series, &self.postings))?;
        let meta = serde_json::to_vec_pretty(&self.meta)
            .map_err(|e| crate::Error::InvalidArgument(e.to_string()))?;
        write("meta.json", &meta)?;
        sync_dir(&self.tmp)?;
        let dir = self.parent.join(&self.meta.id);
        std::fs::rename(&self.tmp, &dir).at(&dir)?;
        sync_dir(&self.parent)?;
        Block::open(&dir)
    }
}

/// Deletes a block directory crash-safely: renamed to `<id>.del` first (one
/// atomic step, made durable), then removed file by file; open removes any
/// `.del` left by a crash, so a half-deleted block is never opened.
pub fn delete_dir(dir: &Path) -> Result<()> {
    let del = dir.with_extension("del");
    std::fs::rename(dir, &del).at(dir)?;
    if let Some(parent) = dir.parent() {
        sync_dir(parent)?;
    }
    std::fs::remove_dir_all(&del).at(&del)
}
