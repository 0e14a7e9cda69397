//! One segment: a `.log` file of whole v2 batches plus its sparse `.index` and
//! `.timeindex`, all named by the segment's base offset (`00000000000000000000.log`).
//!
//! A partition's data is split into segments so that old data can be deleted a whole file
//! at a time (retention never rewrites a file) and so that recovery after a crash only
//! scans the last, active segment: every older segment was fsynced when it was sealed.
//! Only the active segment is appended to; sealed ones are read-only (or replaced whole by
//! compaction).
//!
//! Indexes are written as entries are added but never fsynced: they are a cache of the
//! log. On open, a sealed segment's indexes are validated ([`super::index`]) and rebuilt
//! from the log when damaged; the active segment's are always rebuilt by recovery.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::LogError;
use super::batch::BatchHeader;
use super::index::{self, OffsetEntry, TimeEntry};
pub(crate) use super::scan::{BatchInfo, ChunkReader, header_at};
use super::scan::{FULL_SCAN_WINDOW_BYTES, SEEK_WINDOW_BYTES};

/// The file names of a segment.
pub(crate) fn file_name(base_offset: i64, ext: &str) -> String {
    format!("{base_offset:020}.{ext}")
}

/// One open segment.
pub(crate) struct Segment {
    pub base_offset: i64,
    log_path: PathBuf,
    file: File,
    index_file: File,
    time_index_file: File,
    /// Bytes of whole batches in the log file.
    pub size_bytes: u64,
    /// Last offset + 1 of the segment's batches; `base_offset` while empty.
    pub next_offset: i64,
    index: Vec<OffsetEntry>,
    time_index: Vec<TimeEntry>,
    /// Largest batch max-timestamp in the segment (-1 while empty, as Kafka).
    pub max_timestamp_ms: i64,
    max_timestamp_rel: u32,
    /// When the segment got its first batch: the basis of time-based rolling.
    pub roll_base_ms: Option<i64>,
    bytes_since_index: u64,
    index_interval_bytes: u64,
}

fn open_rw(path: &Path, truncate: bool) -> Result<File, LogError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(truncate)
        .open(path)
        .map_err(LogError::io("opening", path))
}

impl Segment {
    /// Opens (or creates) the three files of the segment at `base_offset`, with empty
    /// in-memory indexes; callers fill them by [`Segment::load_indexes`] or by scanning.
    fn open_files(
        dir: &Path,
        base_offset: i64,
        index_interval_bytes: u64,
        truncate: bool,
    ) -> Result<Segment, LogError> {
        let log_path = dir.join(file_name(base_offset, "log"));
        let file = open_rw(&log_path, truncate)?;
        let index_file = open_rw(&dir.join(file_name(base_offset, "index")), truncate)?;
        let time_index_file = open_rw(&dir.join(file_name(base_offset, "timeindex")), truncate)?;
        let size_bytes = file
            .metadata()
            .map_err(LogError::io("reading the size of", &log_path))?
            .len();
        Ok(Segment {
            base_offset,
            log_path,
            file,
            index_file,
            time_index_file,
            size_bytes,
            next_offset: base_offset,
            index: Vec::new(),
            time_index: Vec::new(),
            max_timestamp_ms: -1,
            max_timestamp_rel: 0,
            roll_base_ms: None,
            bytes_since_index: 0,
            index_interval_bytes: index_interval_bytes.max(1),
        })
    }

    /// Creates a new, empty segment (truncating stray files of the same name).
    pub(crate) fn create(
        dir: &Path,
        base_offset: i64,
        index_interval_bytes: u64,
    ) -> Result<Segment, LogError> {
        Segment::open_files(dir, base_offset, index_interval_bytes, true)
    }

    /// Opens an existing segment's files without reading them.
    pub(crate) fn open_existing(
        dir: &Path,
        base_offset: i64,
        index_interval_bytes: u64,
    ) -> Result<Segment, LogError> {
        Segment::open_files(dir, base_offset, index_interval_bytes, false)
    }

    /// The `.log` file path (named in every error about this segment).
    pub(crate) fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The `.log` file.
    pub(crate) fn file(&self) -> &File {
        &self.file
    }

    /// Relative offset of `offset` in this segment (callers keep it in range: the log
    /// rolls before a relative offset would pass `u32::MAX`).
    fn rel(&self, offset: i64) -> u32 {
        let rel = offset - self.base_offset;
        assert!(
            (0..=i64::from(u32::MAX)).contains(&rel),
            "offset {offset} outside segment {}",
            self.base_offset
        );
        rel as u32
    }

    /// Whether a batch ending at `last_offset` still fits the 32-bit relative offsets.
    pub(crate) fn fits_offset(&self, last_offset: i64) -> bool {
        last_offset - self.base_offset <= i64::from(u32::MAX)
    }

    /// Records a batch that now sits at `info.position`: updates the end, the largest
    /// timestamp and the sparse indexes (writing new entries to the index files).
    pub(crate) fn note_batch(&mut self, info: BatchInfo) {
        assert!(
            info.base_offset >= self.next_offset && info.last_offset >= info.base_offset,
            "offsets must increase: batch [{}, {}] after next offset {} in {}",
            info.base_offset,
            info.last_offset,
            self.next_offset,
            self.log_path.display()
        );
        assert_eq!(info.position, self.size_bytes, "batches are contiguous");
        let rel = self.rel(info.base_offset);
        if info.max_timestamp_ms > self.max_timestamp_ms {
            self.max_timestamp_ms = info.max_timestamp_ms;
            self.max_timestamp_rel = rel;
        }
        if self.bytes_since_index >= self.index_interval_bytes {
            let entry = OffsetEntry {
                rel_offset: rel,
                position: u32::try_from(info.position).expect("segments stay below 4 GiB"),
            };
            self.push_offset_entry(entry);
            self.maybe_push_time_entry();
            self.bytes_since_index = 0;
        }
        self.bytes_since_index += info.size_bytes;
        self.size_bytes += info.size_bytes;
        self.next_offset = info.last_offset + 1;
    }

    fn push_offset_entry(&mut self, entry: OffsetEntry) {
        let at = (self.index.len() * index::OFFSET_ENTRY_BYTES) as u64;
        if let Err(e) = self.index_file.write_all_at(&entry.encode(), at) {
            // The index is a cache of the log: a failed write is rebuilt on the next open.
            tracing::warn!(segment = %self.log_path.display(), error = %e, "writing the offset index");
        }
        self.index.push(entry);
    }

    fn maybe_push_time_entry(&mut self) {
        if self
            .time_index
            .last()
            .is_some_and(|t| t.timestamp_ms >= self.max_timestamp_ms)
            || self.max_timestamp_ms < 0
        {
            return;
        }
        let entry = TimeEntry {
            timestamp_ms: self.max_timestamp_ms,
            rel_offset: self.max_timestamp_rel,
        };
        let at = (self.time_index.len() * index::TIME_ENTRY_BYTES) as u64;
        if let Err(e) = self.time_index_file.write_all_at(&entry.encode(), at) {
            tracing::warn!(segment = %self.log_path.display(), error = %e, "writing the time index");
        }
        self.time_index.push(entry);
    }

    /// Appends one whole batch (offsets already assigned) at the end of the log file.
    pub(crate) fn append(&mut self, batch: &[u8], header: &BatchHeader) -> Result<(), LogError> {
        let position = self.size_bytes;
        if let Err(e) = self.file.write_all_at(batch, position) {
            // Leave no partial batch behind; the next append writes at the same place anyway.
            let _ = self.file.set_len(position);
            return Err(LogError::io("appending to", &self.log_path)(e));
        }
        self.note_batch(BatchInfo {
            position,
            base_offset: header.base_offset,
            last_offset: header.last_offset(),
            max_timestamp_ms: header.max_timestamp,
            size_bytes: batch.len() as u64,
        });
        Ok(())
    }

    /// fsyncs the log file.
    pub(crate) fn sync(&self) -> Result<(), LogError> {
        self.file
            .sync_data()
            .map_err(LogError::io("fsync of", &self.log_path))
    }

    /// Seals the segment before a new one becomes active: a final time-index entry (so
    /// the largest timestamp survives a reopen) and an fsync of all three files.
    pub(crate) fn seal(&mut self) -> Result<(), LogError> {
        self.maybe_push_time_entry();
        self.sync()?;
        for f in [&self.index_file, &self.time_index_file] {
            f.sync_data()
                .map_err(LogError::io("fsync of the index of", &self.log_path))?;
        }
        Ok(())
    }

    /// Forgets the in-memory state and rebuilds it by scanning `batches`, rewriting the
    /// index files. Used by recovery and after truncation or compaction.
    pub(crate) fn rebuild_from(
        &mut self,
        batches: &[BatchInfo],
        roll_base_ms: Option<i64>,
    ) -> Result<(), LogError> {
        self.index.clear();
        self.time_index.clear();
        self.size_bytes = 0;
        self.next_offset = self.base_offset;
        self.max_timestamp_ms = -1;
        self.max_timestamp_rel = 0;
        self.bytes_since_index = 0;
        for f in [&self.index_file, &self.time_index_file] {
            f.set_len(0)
                .map_err(LogError::io("truncating the index of", &self.log_path))?;
        }
        for b in batches {
            self.note_batch(*b);
        }
        self.roll_base_ms = roll_base_ms;
        Ok(())
    }

    /// Scans the headers of every batch from byte 0 (structure only, no CRC).
    pub(crate) fn scan_all(&self) -> Result<Vec<BatchInfo>, LogError> {
        let mut out = Vec::new();
        self.scan_from(0, None, FULL_SCAN_WINDOW_BYTES, |b| {
            out.push(b);
            true
        })?;
        Ok(out)
    }

    /// Visits batch headers from `position` while `visit` returns true. A broken structure
    /// is a [`LogError::Corrupt`] naming this file and the byte.
    pub(crate) fn scan_from(
        &self,
        position: u64,
        prev_last_offset: Option<i64>,
        window: usize,
        mut visit: impl FnMut(BatchInfo) -> bool,
    ) -> Result<(), LogError> {
        let mut reader = ChunkReader::new(&self.file, &self.log_path, self.size_bytes, window);
        let mut pos = position;
        let mut prev = prev_last_offset;
        while pos < self.size_bytes {
            let h =
                header_at(&mut reader, pos, prev).map_err(|reason| self.corrupt(pos, reason))?;
            let info = BatchInfo {
                position: pos,
                base_offset: h.base_offset,
                last_offset: h.last_offset(),
                max_timestamp_ms: h.max_timestamp,
                size_bytes: h.total_bytes(),
            };
            if !visit(info) {
                break;
            }
            prev = Some(info.last_offset);
            pos += info.size_bytes;
        }
        Ok(())
    }

    pub(crate) fn corrupt(&self, position: u64, reason: String) -> LogError {
        LogError::Corrupt {
            file: self.log_path.clone(),
            position,
            reason,
        }
    }

    /// The first batch whose last offset is `>= offset`, or `None` if none is.
    pub(crate) fn find_batch(&self, offset: i64) -> Result<Option<BatchInfo>, LogError> {
        let start = if offset <= self.base_offset {
            0
        } else {
            let rel = (offset - self.base_offset).min(i64::from(u32::MAX)) as u32;
            index::lookup_offset(&self.index, rel).map_or(0, |e| u64::from(e.position))
        };
        self.first_from(start, |b| b.last_offset >= offset)
    }

    /// The first batch at or after byte `start` that satisfies `want`.
    fn first_from(
        &self,
        start: u64,
        want: impl Fn(&BatchInfo) -> bool,
    ) -> Result<Option<BatchInfo>, LogError> {
        let mut found = None;
        self.scan_from(start, None, SEEK_WINDOW_BYTES, |b| {
            if want(&b) {
                found = Some(b);
            }
            found.is_none()
        })?;
        Ok(found)
    }

    /// Reads whole batches starting with `first`, while their total stays within
    /// `budget_bytes` (the first one always, when `at_least_one`), verifying each CRC.
    /// Returns the bytes taken from the budget, and whether the read reached the end of
    /// the segment (false: the budget ran out before the next batch).
    pub(crate) fn read_from(
        &self,
        first: BatchInfo,
        budget_bytes: usize,
        at_least_one: bool,
        out: &mut Vec<Bytes>,
    ) -> Result<(usize, bool), LogError> {
        let mut batches = Vec::new();
        let mut total = 0u64;
        let mut reached_end = true;
        self.scan_from(
            first.position,
            None,
            budget_bytes.clamp(SEEK_WINDOW_BYTES, FULL_SCAN_WINDOW_BYTES),
            |b| {
                if total + b.size_bytes > budget_bytes as u64
                    && !(at_least_one && batches.is_empty())
                {
                    reached_end = false;
                    return false;
                }
                total += b.size_bytes;
                batches.push(b);
                true
            },
        )?;
        if batches.is_empty() {
            return Ok((0, reached_end));
        }
        // One read for the whole run; total is bounded by the segment's size.
        let mut buf = vec![0u8; total as usize];
        self.file
            .read_exact_at(&mut buf, first.position)
            .map_err(LogError::io("reading", &self.log_path))?;
        let buf = Bytes::from(buf);
        let mut at = 0usize;
        for b in &batches {
            let bytes = buf.slice(at..at + b.size_bytes as usize);
            BatchHeader::verify_crc(&bytes).map_err(|e| {
                let reason = match e {
                    LogError::CrcMismatch => "CRC-32C mismatch".to_string(),
                    other => other.to_string(),
                };
                self.corrupt(b.position, reason)
            })?;
            out.push(bytes);
            at += b.size_bytes as usize;
        }
        Ok((total as usize, reached_end))
    }

    /// The first batch whose max timestamp is `>= timestamp_ms`, or `None`.
    pub(crate) fn find_timestamp(&self, timestamp_ms: i64) -> Result<Option<BatchInfo>, LogError> {
        if self.max_timestamp_ms < timestamp_ms {
            return Ok(None);
        }
        let start = index::lookup_time(&self.time_index, timestamp_ms)
            .and_then(|t| index::lookup_offset(&self.index, t.rel_offset))
            .map_or(0, |e| u64::from(e.position));
        self.first_from(start, |b| b.max_timestamp_ms >= timestamp_ms)
    }

    /// Loads a sealed segment's state: validated indexes (rebuilt from the log when
    /// damaged), then a header scan of the tail after the last index entry to learn the
    /// end offset and the largest timestamp. A structural break there is logged, not
    /// fatal: reads reaching it report [`LogError::Corrupt`].
    pub(crate) fn load_sealed(&mut self) -> Result<(), LogError> {
        let read_all = |f: &File| -> Result<Vec<u8>, LogError> {
            let len = f
                .metadata()
                .map_err(LogError::io("reading the index of", &self.log_path))?
                .len();
            // An index is 8 bytes per 4 KiB of log by default; one far larger than its
            // log is damaged: rebuild rather than allocate.
            if len > self.size_bytes {
                return Ok(vec![1]);
            }
            let mut buf = vec![0u8; len as usize];
            f.read_exact_at(&mut buf, 0)
                .map_err(LogError::io("reading the index of", &self.log_path))?;
            Ok(buf)
        };
        let offsets = index::decode_offset_index(&read_all(&self.index_file)?, self.size_bytes);
        let times = index::decode_time_index(&read_all(&self.time_index_file)?);
        let (Some(offsets), Some(times)) = (offsets, times) else {
            tracing::warn!(segment = %self.log_path.display(), "index damaged: rebuilding it");
            return self.rebuild_by_scan();
        };
        let tail_start = offsets.last().map_or(0, |e| u64::from(e.position));
        let mut tail = Vec::new();
        let scanned = self.scan_from(tail_start, None, SEEK_WINDOW_BYTES, |b| {
            tail.push(b);
            true
        });
        if let Err(e) = scanned {
            tracing::warn!(error = %e, "sealed segment is damaged; reads reaching it will fail");
        }
        // The last index entry must point at a batch with the offset it claims.
        if let Some(e) = offsets.last()
            && tail.first().map(|b| b.base_offset)
                != Some(self.base_offset + i64::from(e.rel_offset))
        {
            tracing::warn!(segment = %self.log_path.display(), "index does not match the log: rebuilding it");
            return self.rebuild_by_scan();
        }
        self.next_offset = tail.last().map_or(self.base_offset, |b| b.last_offset + 1);
        let (ts, rel) = tail
            .iter()
            .map(|b| (b.max_timestamp_ms, self.rel(b.base_offset)))
            .chain(times.last().map(|t| (t.timestamp_ms, t.rel_offset)))
            .fold((-1, 0), |acc, x| if x.0 > acc.0 { x } else { acc });
        self.max_timestamp_ms = ts;
        self.max_timestamp_rel = rel;
        self.index = offsets;
        self.time_index = times;
        Ok(())
    }

    pub(crate) fn rebuild_by_scan(&mut self) -> Result<(), LogError> {
        let batches = match self.scan_all() {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, "sealed segment is damaged; indexing the part before it");
                let mut ok = Vec::new();
                let _ = self.scan_from(0, None, FULL_SCAN_WINDOW_BYTES, |b| {
                    ok.push(b);
                    true
                });
                ok
            }
        };
        let size = self.size_bytes;
        let first_ts = batches.first().map(|b| b.max_timestamp_ms);
        self.rebuild_from(&batches, first_ts)?;
        // Keep the damaged remainder in place (it is reported on read, never served).
        self.size_bytes = size;
        Ok(())
    }

    /// Truncates the log file to `position` (a batch boundary) and rebuilds the indexes.
    pub(crate) fn truncate_at(&mut self, position: u64) -> Result<(), LogError> {
        self.file
            .set_len(position)
            .map_err(LogError::io("truncating", &self.log_path))?;
        self.size_bytes = position;
        let batches = self.scan_all()?;
        let roll_base = self.roll_base_ms;
        self.rebuild_from(&batches, roll_base)?;
        self.sync()
    }

    /// Deletes the segment's three files.
    pub(crate) fn delete_files(self) -> Result<(), LogError> {
        let dir = self
            .log_path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        for ext in ["log", "index", "timeindex"] {
            let path = dir.join(file_name(self.base_offset, ext));
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(LogError::io("deleting", &path)(e)),
            }
        }
        Ok(())
    }
}
