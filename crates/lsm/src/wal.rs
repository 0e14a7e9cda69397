//! The commit log (write-ahead log): step 1 of the book's write path.
//!
//! Why it exists: the memtable lives in memory; every write is first appended here so a
//! crash loses nothing that was acknowledged. One log segment backs one memtable; when the
//! memtable is flushed to an SSTable and the manifest records it, the segment is deleted.
//!
//! Record framing (also used by the manifest): `u32 len | u32 crc32c(payload) | payload`,
//! little-endian. Records are written with positioned writes (`pwrite`) at an offset we
//! track ourselves, so a failed write (disk full) is undone by truncating back to the last
//! good offset and the log never holds garbage in the middle.
//!
//! Recovery reads records until the first one that is torn (shorter than its header
//! says) or corrupt (checksum mismatch) and stops there: the classic point-in-time
//! recovery. Under `SyncPolicy::Always` such a tail can only be a write that was never
//! acknowledged.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Error, IoContext, Result};

/// Bytes of the record header (length + checksum).
pub(crate) const RECORD_HEADER_BYTES: usize = 8;
/// Largest accepted record; a larger length field is treated as corruption.
const RECORD_BYTES_MAX: usize = 1 << 30;

/// Frames `payload` as one record.
pub(crate) fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(RECORD_HEADER_BYTES + payload.len());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32c::crc32c(payload).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// The records of a log file, up to the first bad one.
pub(crate) struct Records<'a> {
    /// Payloads of the good records, in order.
    pub payloads: Vec<&'a [u8]>,
    /// Byte length of the good prefix.
    pub valid_bytes: usize,
    /// Why reading stopped early, if it did (torn or corrupt tail).
    pub tail_error: Option<String>,
}

/// Splits `bytes` into framed records, stopping cleanly at a torn or corrupt tail.
pub(crate) fn parse_records(bytes: &[u8]) -> Records<'_> {
    let mut payloads = Vec::new();
    let mut pos = 0usize;
    let mut tail_error = None;
    while pos < bytes.len() {
        let rest = &bytes[pos..];
        if rest.len() < RECORD_HEADER_BYTES {
            tail_error = Some(format!("torn record header at offset {pos}"));
            break;
        }
        let len = u32::from_le_bytes(rest[0..4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(rest[4..8].try_into().expect("4 bytes"));
        if len == 0 {
            // Segments are preallocated with zeros and no record is empty: all zeros
            // is the clean end of the log, anything else is damage.
            if rest.iter().any(|b| *b != 0) {
                tail_error = Some(format!("zero-length record at offset {pos}"));
            }
            break;
        }
        if len > RECORD_BYTES_MAX || rest.len() - RECORD_HEADER_BYTES < len {
            tail_error = Some(format!("torn record at offset {pos} (length {len})"));
            break;
        }
        let payload = &rest[RECORD_HEADER_BYTES..RECORD_HEADER_BYTES + len];
        if crc32c::crc32c(payload) != crc {
            tail_error = Some(format!("checksum mismatch in record at offset {pos}"));
            break;
        }
        payloads.push(payload);
        pos += RECORD_HEADER_BYTES + len;
    }
    Records {
        payloads,
        valid_bytes: pos,
        tail_error,
    }
}

/// File name of log segment `id`.
pub(crate) fn segment_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:06}.log"))
}

/// The active log segment, appended to under the writer lock.
pub(crate) struct WalWriter {
    /// Segment file path, for error messages.
    pub path: PathBuf,
    /// Shared so the group-commit leader can fsync without holding the writer lock.
    pub file: Arc<File>,
    /// Segment id (the file number).
    pub segment_id: u64,
    /// Bytes written so far: the offset of the next record.
    pub pos: u64,
    /// Set when a failed append could not be undone: the file may hold garbage after
    /// `pos`, so nothing more may be appended.
    broken: bool,
}

impl WalWriter {
    /// Creates segment `id` (fails if it exists), preallocated to `prealloc_bytes` (a
    /// sparse file: appends inside the file size avoid a metadata update each, which on
    /// ext4 makes small appends several times faster and steadier); with `durable_name`
    /// it fsyncs the directory so the new name survives power loss.
    pub(crate) fn create(
        dir: &Path,
        id: u64,
        prealloc_bytes: u64,
        durable_name: bool,
    ) -> Result<Self> {
        let path = segment_path(dir, id);
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .at(&path)?;
        let ready = file
            .set_len(prealloc_bytes)
            .at(&path)
            .and_then(|()| if durable_name { sync_dir(dir) } else { Ok(()) });
        if let Err(e) = ready {
            // No room for the preallocation (disk full, file size limit): leave no empty
            // segment behind; the caller fails or retries with a new number.
            drop(file);
            let _ = std::fs::remove_file(&path);
            return Err(e);
        }
        Ok(Self {
            path,
            file: Arc::new(file),
            segment_id: id,
            pos: 0,
            broken: false,
        })
    }

    /// Appends one framed record; on failure the file is truncated back so the log stays
    /// clean. Returns the new end offset.
    pub(crate) fn append(&mut self, payload: &[u8]) -> Result<u64> {
        assert!(!self.broken, "append to a broken log segment");
        let record = frame(payload);
        if let Err(err) = self.file.write_all_at(&record, self.pos) {
            // Undo a partial write (for example ENOSPC half way); if even that fails the
            // caller disables writes.
            if self.file.set_len(self.pos).is_err() {
                self.broken = true;
            }
            return Err(Error::io(&self.path, err));
        }
        self.pos += record.len() as u64;
        Ok(self.pos)
    }
}

impl WalWriter {
    /// True after an append failed and could not be undone.
    pub(crate) fn broken(&self) -> bool {
        self.broken
    }
}

/// fsyncs (fdatasync) a log segment. The store calls it through `Inner::sync_log`,
/// which counts fsyncs and lets unit tests make them fail (`Inner::fail_log_syncs`):
/// no file system fails an fsync on demand, and the failed-fsync path must be tested
/// all the same.
pub(crate) fn sync_log(file: &File) -> std::io::Result<()> {
    file.sync_data()
}

/// fsyncs a directory, making file creations, renames and deletions in it durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).at(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stops_cleanly_at_torn_and_corrupt_tails() {
        let mut log = frame(b"one");
        log.extend(frame(b"two"));
        let good = log.len();
        log.extend(frame(b"three"));
        // Every truncation inside the third record keeps exactly the first two.
        for cut in good..log.len() {
            let r = parse_records(&log[..cut]);
            assert_eq!(r.payloads, vec![&b"one"[..], &b"two"[..]]);
            assert_eq!(r.valid_bytes, good);
            assert_eq!(r.tail_error.is_some(), cut > good);
        }
        // A flipped bit anywhere in the third record is caught.
        for i in good..log.len() {
            let mut bad = log.clone();
            bad[i] ^= 0x10;
            let r = parse_records(&bad);
            assert_eq!(r.payloads.len(), 2, "flip at {i}");
            assert!(r.tail_error.is_some());
        }
    }
}
