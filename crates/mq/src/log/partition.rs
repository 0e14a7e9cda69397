//! [`PartitionLog`]: one partition's directory of segments, and the operations the broker
//! calls (append, read, flush, truncate, retention, compaction).
//!
//! Not thread-safe by itself: the broker wraps it (a Mutex) and calls it from blocking
//! threads, since `FlushPolicy::Always` fsyncs inside `append`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::batch::{self, BatchHeader};
use super::recovery::{self, RecoveryReport};
use super::retention::{self, SegmentStat};
use super::segment::{self, Segment};
use super::{FlushPolicy, LogConfig, LogError};

/// The offsets an append got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Appended {
    /// Offset of the batch's first record.
    pub base_offset: i64,
    /// Offset of its last record.
    pub last_offset: i64,
    /// -1: timestamps are the producer's (CreateTime), as Kafka answers then.
    pub log_append_time_ms: i64,
}

/// What [`PartitionLog::enforce_retention`] deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RetentionReport {
    /// Whole segments deleted.
    pub segments_deleted: usize,
    /// Their bytes.
    pub bytes_deleted: u64,
    /// The log start offset afterwards.
    pub start_offset: i64,
}

/// One partition's log. See the [module docs](super) for the design and format.
pub struct PartitionLog {
    pub(crate) dir: PathBuf,
    pub(crate) config: LogConfig,
    /// By base offset; never empty; the last one is the active segment.
    pub(crate) segments: BTreeMap<i64, Segment>,
    last_flush_ms: i64,
    recovery: RecoveryReport,
    scratch: Vec<u8>,
}

/// The workspace clock as Kafka's signed milliseconds, where the caller gives no clock.
pub(crate) fn wall_clock_ms() -> i64 {
    i64::try_from(clock::now_ms()).unwrap_or(i64::MAX)
}

/// fsyncs a directory, so created, renamed and deleted files survive power loss.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), LogError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(LogError::io("fsync of directory", dir))
}

/// Base offsets of the `NNNNNNNNNNNNNNNNNNNN.log` files in `dir`; removes leftovers of an
/// interrupted compaction (`*.cleaned`), which were never renamed into place.
fn list_segments(dir: &Path) -> Result<Vec<i64>, LogError> {
    let mut bases = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(LogError::io("listing", dir))?;
    for entry in entries {
        let entry = entry.map_err(LogError::io("listing", dir))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.ends_with(".cleaned") {
            let path = entry.path();
            std::fs::remove_file(&path).map_err(LogError::io("removing", &path))?;
            continue;
        }
        if let Some(stem) = name.strip_suffix(".log")
            && stem.len() == 20
            && stem.bytes().all(|b| b.is_ascii_digit())
            && let Ok(base) = stem.parse::<i64>()
        {
            bases.push(base);
        }
    }
    bases.sort_unstable();
    Ok(bases)
}

impl PartitionLog {
    /// Opens the log in `dir` (created if missing): loads sealed segments, recovers the
    /// active one (cutting a torn tail to the last complete, CRC-valid batch).
    pub fn open(dir: &Path, config: LogConfig) -> Result<PartitionLog, LogError> {
        config.validate()?;
        std::fs::create_dir_all(dir).map_err(LogError::io("creating", dir))?;
        let interval = config.index_interval_bytes;
        let mut bases = list_segments(dir)?;
        if bases.is_empty() {
            Segment::create(dir, 0, interval)?;
            sync_dir(dir)?;
            bases.push(0);
        }
        let mut segments = BTreeMap::new();
        let last = bases.len() - 1;
        let mut report = RecoveryReport::default();
        for (i, base) in bases.into_iter().enumerate() {
            let mut seg = Segment::open_existing(dir, base, interval)?;
            if i == last {
                report = recovery::recover_active(&mut seg)?;
            } else {
                seg.load_sealed()?;
            }
            segments.insert(base, seg);
        }
        let log = PartitionLog {
            dir: dir.to_path_buf(),
            config,
            segments,
            last_flush_ms: wall_clock_ms(),
            recovery: report,
            scratch: Vec::new(),
        };
        log.check_segment_order()?;
        Ok(log)
    }

    /// Each segment ends at or before the next one's base offset.
    fn check_segment_order(&self) -> Result<(), LogError> {
        let mut prev: Option<&Segment> = None;
        for seg in self.segments.values() {
            if let Some(p) = prev
                && p.next_offset > seg.base_offset
            {
                return Err(p.corrupt(
                    p.size_bytes,
                    format!(
                        "the segment ends at offset {} but the next one starts at {}",
                        p.next_offset, seg.base_offset
                    ),
                ));
            }
            prev = Some(seg);
        }
        Ok(())
    }

    /// What recovery did when this log was opened.
    pub fn recovery_report(&self) -> &RecoveryReport {
        &self.recovery
    }

    /// The configuration in use.
    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    /// The partition directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub(crate) fn active(&self) -> &Segment {
        self.segments
            .values()
            .next_back()
            .expect("a log always has an active segment")
    }

    fn active_mut(&mut self) -> &mut Segment {
        self.segments
            .values_mut()
            .next_back()
            .expect("a log always has an active segment")
    }

    /// Checks a batch from a client: size, header, exact length, CRC.
    fn check_batch(&self, batch: &[u8]) -> Result<BatchHeader, LogError> {
        if batch.len() > self.config.batch_bytes_max {
            return Err(LogError::BatchTooLarge {
                size_bytes: batch.len(),
                max_bytes: self.config.batch_bytes_max,
            });
        }
        let header = BatchHeader::parse(batch)?;
        BatchHeader::verify_crc(batch)?;
        // Each record takes at least one byte, so the count is bounded by the size.
        let room = (batch.len() - batch::HEADER_BYTES) as i64;
        if i64::from(header.records_count) > room {
            return Err(LogError::InvalidBatch(format!(
                "{} records cannot fit in {room} bytes",
                header.records_count
            )));
        }
        Ok(header)
    }

    /// Appends ONE v2 record batch exactly as the producer sent it, after checking its
    /// CRC; assigns offsets by rewriting the baseOffset field (the CRC does not cover it).
    pub fn append(&mut self, batch: &[u8], now_ms: i64) -> Result<Appended, LogError> {
        self.append_in_epoch(batch, now_ms, None)
    }

    /// [`PartitionLog::append`] by a replicated partition's leader, which also stamps its
    /// `leader_epoch` into the batch's `partitionLeaderEpoch` (not covered by the CRC).
    pub fn append_in_epoch(
        &mut self,
        batch: &[u8],
        now_ms: i64,
        leader_epoch: Option<i32>,
    ) -> Result<Appended, LogError> {
        let mut header = self.check_batch(batch)?;
        if header.records_count == 0 || header.last_offset_delta != header.records_count - 1 {
            return Err(LogError::InvalidBatch(format!(
                "a producer batch needs lastOffsetDelta = recordsCount - 1 > -1, got {} and {}",
                header.last_offset_delta, header.records_count
            )));
        }
        header.base_offset = self.end_offset();
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        scratch.extend_from_slice(batch);
        batch::set_base_offset(&mut scratch, header.base_offset);
        if let Some(epoch) = leader_epoch {
            batch::set_partition_leader_epoch(&mut scratch, epoch);
            header.partition_leader_epoch = epoch;
        }
        let result = self.write_batch(&scratch, &header, now_ms);
        self.scratch = scratch;
        result
    }

    /// Appends a batch whose offsets are already assigned (replication followers). Its
    /// base offset must be at or above `end_offset()` (above only where the leader's log
    /// has gaps from compaction).
    pub fn append_replicated(&mut self, batch: &[u8]) -> Result<Appended, LogError> {
        let header = self.check_batch(batch)?;
        let end = self.end_offset();
        if header.base_offset < end {
            return Err(LogError::NonContiguous {
                base_offset: header.base_offset,
                end_offset: end,
            });
        }
        self.write_batch(batch, &header, wall_clock_ms())
    }

    fn write_batch(
        &mut self,
        bytes: &[u8],
        header: &BatchHeader,
        now_ms: i64,
    ) -> Result<Appended, LogError> {
        if self.should_roll(bytes.len() as u64, header.last_offset(), now_ms) {
            self.roll(header.base_offset)?;
        }
        let active = self.active_mut();
        active.append(bytes, header)?;
        if active.roll_base_ms.is_none() {
            active.roll_base_ms = Some(now_ms);
        }
        match self.config.flush {
            FlushPolicy::Always => self.flush_at(now_ms)?,
            FlushPolicy::IntervalMs(ms) => {
                if now_ms.saturating_sub(self.last_flush_ms)
                    >= i64::try_from(ms).unwrap_or(i64::MAX)
                {
                    self.flush_at(now_ms)?;
                }
            }
            FlushPolicy::Os => {}
        }
        Ok(Appended {
            base_offset: header.base_offset,
            last_offset: header.last_offset(),
            log_append_time_ms: -1,
        })
    }

    /// The roll decision: the active segment is not empty and the batch would push it past
    /// `segment_bytes`, or it is older than `segment_ms`, or the batch's offsets would not
    /// fit its 32-bit relative offsets.
    fn should_roll(&self, batch_bytes: u64, last_offset: i64, now_ms: i64) -> bool {
        let a = self.active();
        if !a.fits_offset(last_offset) {
            return true;
        }
        let segment_ms = i64::try_from(self.config.segment_ms).unwrap_or(i64::MAX);
        a.size_bytes > 0
            && (a.size_bytes + batch_bytes > self.config.segment_bytes
                || a.roll_base_ms
                    .is_some_and(|t| now_ms.saturating_sub(t) >= segment_ms))
    }

    /// Seals the active segment and starts a new one at `base_offset`.
    pub(crate) fn roll(&mut self, base_offset: i64) -> Result<(), LogError> {
        assert!(
            base_offset >= self.end_offset(),
            "a new segment starts at or after the log end"
        );
        self.active_mut().seal()?;
        let seg = Segment::create(&self.dir, base_offset, self.config.index_interval_bytes)?;
        sync_dir(&self.dir)?;
        self.segments.insert(base_offset, seg);
        Ok(())
    }

    /// Whole batches starting at the batch that contains `offset`, up to `max_bytes` (at
    /// least one whole batch even if it is bigger, as Kafka does, so consumers progress).
    /// `offset == end_offset()` gives nothing; outside `[start_offset, end_offset]` is
    /// [`LogError::OffsetOutOfRange`]. Every batch's CRC is checked.
    pub fn read(&self, offset: i64, max_bytes: usize) -> Result<Vec<Bytes>, LogError> {
        let (start, end) = (self.start_offset(), self.end_offset());
        if offset < start || offset > end {
            return Err(LogError::OffsetOutOfRange {
                offset,
                start_offset: start,
                end_offset: end,
            });
        }
        let mut out = Vec::new();
        if offset == end {
            return Ok(out);
        }
        let first_base = self
            .segments
            .range(..=offset)
            .next_back()
            .map_or(start, |(b, _)| *b);
        let mut taken = 0usize;
        for seg in self.segments.range(first_base..).map(|(_, s)| s) {
            let Some(first) = seg.find_batch(offset)? else {
                continue; // in a gap at the end of this segment: the next one follows
            };
            let (bytes, reached_end) = seg.read_from(
                first,
                max_bytes.saturating_sub(taken),
                out.is_empty(),
                &mut out,
            )?;
            taken += bytes;
            if !reached_end {
                break; // the budget ran out mid-segment: never skip a batch
            }
        }
        Ok(out)
    }

    /// The log start offset (the first segment's base offset, after retention).
    pub fn start_offset(&self) -> i64 {
        self.segments
            .keys()
            .next()
            .copied()
            .expect("a log always has an active segment")
    }

    /// The log end offset: the next offset to assign.
    pub fn end_offset(&self) -> i64 {
        self.active().next_offset
    }

    /// The first offset whose batch has a timestamp `>= ts_ms` (ListOffsets by time), or
    /// `None` if none has. An I/O error or damage is logged and answers `None`; use
    /// [`PartitionLog::try_offset_for_timestamp`] to see it.
    pub fn offset_for_timestamp(&self, ts_ms: i64) -> Option<i64> {
        self.try_offset_for_timestamp(ts_ms).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "offset for timestamp");
            None
        })
    }

    /// [`PartitionLog::offset_for_timestamp`] with errors.
    pub fn try_offset_for_timestamp(&self, ts_ms: i64) -> Result<Option<i64>, LogError> {
        for seg in self.segments.values() {
            if let Some(b) = seg.find_timestamp(ts_ms)? {
                let mut batch = Vec::new();
                seg.read_from(b, 0, true, &mut batch)?;
                let found = batch
                    .first()
                    .and_then(|bytes| super::records::first_offset_at_or_after(bytes, ts_ms))
                    .unwrap_or(b.base_offset);
                return Ok(Some(found.max(self.start_offset())));
            }
        }
        Ok(None)
    }

    /// fsyncs everything appended so far.
    pub fn flush(&mut self) -> Result<(), LogError> {
        self.flush_at(wall_clock_ms())
    }

    fn flush_at(&mut self, now_ms: i64) -> Result<(), LogError> {
        self.active().sync()?;
        self.last_flush_ms = now_ms;
        Ok(())
    }

    /// Replication: drops everything from `offset` on (from the start of the batch that
    /// holds it), so that `end_offset() <= offset` afterwards. At or below the start
    /// offset, the whole log is dropped and restarts empty at `offset`.
    pub fn truncate_to(&mut self, offset: i64) -> Result<(), LogError> {
        if offset >= self.end_offset() {
            return Ok(());
        }
        if offset <= self.start_offset() {
            let all: Vec<i64> = self.segments.keys().copied().collect();
            let seg = Segment::create(&self.dir, offset.max(0), self.config.index_interval_bytes)?;
            for base in all {
                if base != seg.base_offset
                    && let Some(old) = self.segments.remove(&base)
                {
                    old.delete_files()?;
                }
            }
            self.segments.insert(seg.base_offset, seg);
            return sync_dir(&self.dir);
        }
        let doomed: Vec<i64> = self.segments.range(offset..).map(|(b, _)| *b).collect();
        for base in doomed {
            if let Some(old) = self.segments.remove(&base) {
                old.delete_files()?;
            }
        }
        let active = self.active_mut();
        if let Some(b) = active.find_batch(offset)? {
            active.truncate_at(b.position)?;
        }
        assert!(
            active.next_offset <= offset,
            "truncation leaves the end at or below the target"
        );
        sync_dir(&self.dir)
    }

    /// Deletes whole old segments by time and size (see [`retention`]).
    pub fn enforce_retention(&mut self, now_ms: i64) -> Result<RetentionReport, LogError> {
        let stats: Vec<SegmentStat> = self
            .segments
            .values()
            .map(|s| SegmentStat {
                size_bytes: s.size_bytes,
                max_timestamp_ms: s.max_timestamp_ms,
            })
            .collect();
        let n = retention::segments_to_delete(&stats, &self.config, now_ms);
        let mut report = RetentionReport::default();
        if n > 0 {
            if n == self.segments.len() {
                // The active segment expired too: continue in a fresh, empty one.
                self.roll(self.end_offset())?;
            }
            let doomed: Vec<i64> = self.segments.keys().take(n).copied().collect();
            for base in doomed {
                if let Some(seg) = self.segments.remove(&base) {
                    report.segments_deleted += 1;
                    report.bytes_deleted += seg.size_bytes;
                    seg.delete_files()?;
                }
            }
            sync_dir(&self.dir)?;
        }
        report.start_offset = self.start_offset();
        Ok(report)
    }

    /// Bytes of all segments' log files.
    pub fn size_bytes(&self) -> u64 {
        self.segments.values().map(|s| s.size_bytes).sum()
    }

    /// Number of segments (the active one included).
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// Paths of the segments' `.log` files, oldest first.
    pub fn segment_paths(&self) -> Vec<PathBuf> {
        self.segments
            .keys()
            .map(|b| self.dir.join(segment::file_name(*b, "log")))
            .collect()
    }
}
