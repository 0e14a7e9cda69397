//! Walking a segment's log file batch by batch, reading only headers, in windows.
//!
//! Every walk (reads, index rebuilds, recovery, compaction) needs the same two things:
//! positioned reads that do not cost one syscall per 61-byte header, and a check of the
//! structure around each header before its length is trusted (the whole batch lies inside
//! the file, offsets increase). Both live here.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::LogError;
use super::batch::{BatchHeader, HEADER_BYTES};

/// Window of a header walk that starts at an index entry: the index puts the target within
/// ~`index_interval_bytes` (4 KiB), so a small window is one syscall and little waste.
pub(crate) const SEEK_WINDOW_BYTES: usize = 16 << 10;
/// Window of a walk over a whole file (recovery, rebuilds): fewer, larger reads.
pub(crate) const FULL_SCAN_WINDOW_BYTES: usize = 1 << 20;

/// Where one batch is and what it holds, as found by scanning headers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BatchInfo {
    /// Byte position of the batch in the segment's log file.
    pub position: u64,
    /// The batch's base offset.
    pub base_offset: i64,
    /// The batch's last offset.
    pub last_offset: i64,
    /// The batch's max timestamp.
    pub max_timestamp_ms: i64,
    /// The batch's total size (`12 + batchLength`).
    pub size_bytes: u64,
}

/// Positioned reads through a window buffer, so scanning many small headers costs one
/// `pread` per window rather than one per header. Every read is bounded by the file size.
pub(crate) struct ChunkReader<'a> {
    file: &'a File,
    path: &'a Path,
    file_len: u64,
    window_bytes: usize,
    buf: Vec<u8>,
    buf_pos: u64,
}

impl<'a> ChunkReader<'a> {
    pub(crate) fn new(
        file: &'a File,
        path: &'a Path,
        file_len: u64,
        window_bytes: usize,
    ) -> ChunkReader<'a> {
        ChunkReader {
            file,
            path,
            file_len,
            window_bytes,
            buf: Vec::new(),
            buf_pos: 0,
        }
    }

    /// `len` bytes at `pos`; the caller has checked `pos + len <= file_len`.
    pub(crate) fn get(&mut self, pos: u64, len: usize) -> Result<&[u8], LogError> {
        debug_assert!(pos + len as u64 <= self.file_len);
        let end = self.buf_pos + self.buf.len() as u64;
        if pos < self.buf_pos || pos + len as u64 > end {
            let want = len
                .max(self.window_bytes)
                .min((self.file_len - pos) as usize);
            self.buf.resize(want, 0);
            self.file
                .read_exact_at(&mut self.buf, pos)
                .map_err(LogError::io("reading", self.path))?;
            self.buf_pos = pos;
        }
        let at = (pos - self.buf_pos) as usize;
        Ok(&self.buf[at..at + len])
    }
}

/// Parses the batch header at `pos` and checks the structure around it: the whole batch
/// fits in the file and its base offset is above `prev_last_offset`. The error says what
/// is wrong (the caller decides between "torn tail" and "corrupt").
pub(crate) fn header_at(
    reader: &mut ChunkReader<'_>,
    pos: u64,
    prev_last_offset: Option<i64>,
) -> Result<BatchHeader, String> {
    let remaining = reader.file_len - pos;
    if remaining < HEADER_BYTES as u64 {
        return Err(format!("{remaining} bytes left, less than a batch header"));
    }
    let bytes = reader.get(pos, HEADER_BYTES).map_err(|e| e.to_string())?;
    let h = BatchHeader::parse(bytes).map_err(|e| e.to_string())?;
    if h.total_bytes() > remaining {
        return Err(format!(
            "batch of {} bytes runs past the end of the file ({remaining} bytes left)",
            h.total_bytes()
        ));
    }
    if let Some(prev) = prev_last_offset
        && h.base_offset <= prev
    {
        return Err(format!(
            "base offset {} does not follow the previous batch's last offset {prev}",
            h.base_offset
        ));
    }
    if h.base_offset < 0 {
        return Err(format!("negative base offset {}", h.base_offset));
    }
    Ok(h)
}
