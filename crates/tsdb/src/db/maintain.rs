//! Maintenance: cut the head into blocks, downsample, expire, compact, move
//! old blocks to cold storage.
//!
//! Why a module: these are the storage layer's background jobs, each a pure
//! decision (`Head::due_range`, [`crate::downsample::plan`],
//! [`crate::retention::expired`], [`crate::compact::plan`],
//! [`crate::cold::plan`]) followed by I/O
//! ordered so that a crash at any point leaves a store that opens correctly:
//! a new block is whole on disk before anything it replaces goes, and the WAL
//! is checkpointed only after the block holding its old samples exists.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::Inner;
use crate::block::format::ChunkData;
use crate::block::{Block, BlockWriter};
use crate::downsample::{self, AggrPoint, downsample_points, downsample_raw};
use crate::error::Result;
use crate::head::Sample;
use crate::labels::Labels;
use crate::wal::Record;
use crate::{compact, retention};

/// What one maintenance pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MaintainReport {
    /// Blocks cut from the head.
    pub cut: usize,
    /// Blocks downsampled.
    pub downsampled: usize,
    /// Blocks deleted by retention.
    pub expired: usize,
    /// Compactions (each merging several blocks into one).
    pub compacted: usize,
    /// Blocks moved to cold storage.
    pub moved_cold: usize,
}

impl Inner {
    pub(super) fn maintain(&self) -> Result<MaintainReport> {
        let _one = self.maintaining.lock();
        let mut report = MaintainReport::default();
        let mut last = None;
        loop {
            let due = self.head.read().due_range(&self.opts);
            // A range that comes back after its cut (samples at the very end
            // of time, past a saturated range end) is left in the head.
            if due.is_none() || due == last {
                break;
            }
            let Some((start, end)) = due else { break };
            self.cut(start, end)?;
            report.cut += 1;
            last = due;
        }
        let newest = self.newest_t();
        while let Some((id, res)) = downsample::plan(&self.metas(), newest, &self.opts) {
            self.downsample(&id, res)?;
            report.downsampled += 1;
        }
        for id in retention::expired(&self.metas(), newest, &self.opts) {
            self.remove_blocks(&[id])?;
            report.expired += 1;
        }
        while let Some(ids) = compact::plan(&self.metas(), &self.opts.compaction_ranges_ms) {
            self.compact(&ids)?;
            report.compacted += 1;
        }
        if let Some(c) = &self.opts.cold {
            for id in crate::cold::plan(&self.metas(), newest, c.after_ms) {
                self.move_cold(&id)?;
                report.moved_cold += 1;
            }
        }
        Ok(report)
    }

    fn metas(&self) -> Vec<crate::block::Meta> {
        self.blocks
            .read()
            .iter()
            .map(|b| b.meta().clone())
            .collect()
    }

    pub(super) fn find(&self, ids: &[String]) -> Vec<Arc<Block>> {
        self.blocks
            .read()
            .iter()
            .filter(|b| ids.contains(&b.meta().id))
            .cloned()
            .collect()
    }

    /// Cuts `[start, end)` from the head into a block (see the module docs).
    fn cut(&self, start: i64, end: i64) -> Result<()> {
        // 1. From now on the head refuses samples before `end`, and the WAL
        //    segments up to `closed` hold only records from before this point.
        let closed = {
            let mut head = self.head.write();
            head.min_valid_t = head.min_valid_t.max(end);
            self.wal.cut_segment()?
        };
        // 2. Write the block one series at a time (memory: one series), under
        //    short read locks: appends go on, and none can touch `[.., end)`.
        let series = self.head.read().series_before(end);
        let mut writer: Option<BlockWriter> = None;
        for (labels, r) in series {
            let samples = self.head.read().samples_of(r, start, end);
            if samples.is_empty() {
                continue;
            }
            let w = match &mut writer {
                Some(w) => w,
                None => writer.insert(BlockWriter::new(
                    &self.blocks_dir,
                    start,
                    end,
                    0,
                    1,
                    self.opts.chunk_samples_max,
                )?),
            };
            w.add_raw(labels, &samples)?;
        }
        let block = writer.map(BlockWriter::finish).transpose()?;
        // 3. Swap: the block becomes visible as the head lets its samples go.
        let live = {
            let mut blocks = self.blocks.write();
            let mut head = self.head.write();
            if let Some(b) = block {
                blocks.push(Arc::new(b));
                blocks.sort_by_key(|b| (b.meta().resolution_ms, b.meta().min_t));
            }
            head.truncate(end, &self.opts)
        };
        // 4. The WAL keeps only what the head still holds.
        self.wal.checkpoint(closed, |r| match r {
            Record::Series { series_ref, .. } => live.contains(&series_ref).then_some(r),
            Record::Samples(s) => {
                let kept: Vec<_> = s
                    .into_iter()
                    .filter(|(r, t, _)| *t >= end && live.contains(r))
                    .collect();
                (!kept.is_empty()).then_some(Record::Samples(kept))
            }
        })
    }

    /// Writes the summary of block `id` at `resolution_ms`.
    fn downsample(&self, id: &str, resolution_ms: i64) -> Result<()> {
        let Some(src) = self.find(&[id.to_string()]).pop() else {
            return Ok(());
        };
        let m = src.meta();
        let mut w = BlockWriter::new(
            &self.blocks_dir,
            m.min_t,
            m.max_t,
            resolution_ms,
            1,
            self.opts.chunk_samples_max,
        )?;
        for labels in src.labels() {
            let mut raw: Vec<Sample> = Vec::new();
            let mut points: Vec<AggrPoint> = Vec::new();
            for d in src.series_data(labels)? {
                match d {
                    ChunkData::Raw(s) => raw.extend(s),
                    ChunkData::Aggr(p) => points.extend(p),
                }
            }
            points.extend(downsample_raw(&raw, resolution_ms));
            points.sort_by_key(|p| p.t);
            let out = downsample_points(&points, resolution_ms);
            if !out.is_empty() {
                w.add_aggr(labels.clone(), &out)?;
            }
        }
        let block = w.finish()?;
        let mut blocks = self.blocks.write();
        blocks.push(Arc::new(block));
        blocks.sort_by_key(|b| (b.meta().resolution_ms, b.meta().min_t));
        Ok(())
    }

    /// Merges blocks `ids` (one resolution) into one.
    fn compact(&self, ids: &[String]) -> Result<()> {
        let srcs = self.find(ids);
        let (Some(first), Some(last)) = (srcs.first(), srcs.last()) else {
            return Ok(());
        };
        let (min_t, max_t) = (first.meta().min_t, last.meta().max_t);
        let res = first.meta().resolution_ms;
        let level = srcs.iter().map(|b| b.meta().level).max().unwrap_or(1) + 1;
        // One series at a time, in label order across all sources (memory:
        // the label sets and one series' data).
        let all: BTreeSet<&Labels> = srcs.iter().flat_map(|b| b.labels()).collect();
        let mut w = BlockWriter::new(
            &self.blocks_dir,
            min_t,
            max_t,
            res,
            level,
            self.opts.chunk_samples_max,
        )?;
        w.set_sources(ids.to_vec());
        for labels in all {
            let (mut raw, mut aggr): (Vec<Sample>, Vec<AggrPoint>) = (Vec::new(), Vec::new());
            for b in &srcs {
                for d in b.series_data(labels)? {
                    match d {
                        ChunkData::Raw(s) => raw.extend(s),
                        ChunkData::Aggr(p) => aggr.extend(p),
                    }
                }
            }
            if res == 0 {
                raw.sort_by_key(|x| x.0);
                raw.dedup_by_key(|x| x.0);
                w.add_raw(labels.clone(), &raw)?;
            } else {
                aggr.sort_by_key(|x| x.t);
                aggr.dedup_by_key(|x| x.t);
                w.add_aggr(labels.clone(), &aggr)?;
            }
        }
        let block = w.finish()?;
        {
            let mut blocks = self.blocks.write();
            blocks.retain(|b| !ids.contains(&b.meta().id));
            blocks.push(Arc::new(block));
            blocks.sort_by_key(|b| (b.meta().resolution_ms, b.meta().min_t));
        }
        for b in srcs {
            super::cold::delete_block(&b, self.cold.as_ref())?;
        }
        Ok(())
    }

    /// Drops blocks from the list, then deletes their directories.
    fn remove_blocks(&self, ids: &[String]) -> Result<()> {
        let gone = self.find(ids);
        self.blocks.write().retain(|b| !ids.contains(&b.meta().id));
        for b in gone {
            super::cold::delete_block(&b, self.cold.as_ref())?;
        }
        Ok(())
    }
}
