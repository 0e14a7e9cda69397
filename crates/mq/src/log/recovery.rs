//! Crash recovery of the active segment: keep the longest prefix of complete, CRC-valid
//! batches and cut the torn tail a crash left behind.
//!
//! Only the active (last) segment can have a torn tail: appends go to it alone, and every
//! older segment was fsynced when it was sealed. A process killed mid-`write` leaves a
//! partial last batch; a machine that lost power can leave a tail of zeros or stale bytes.
//! Both show up as the *last* thing in the file failing to parse or failing its CRC, and
//! are cut. A batch that fails its CRC but is followed by more data is not a torn write:
//! it is damage in the middle (bit rot). Truncating there would silently drop the valid
//! batches after it, which were acknowledged, so it is kept in place and reported on read
//! as [`LogError::Corrupt`] naming the file and byte (the operator decides; a replica can
//! restore it). A broken *header* in the middle cannot be skipped (its length is the only
//! way to find the next batch), so the log is cut there, as Kafka's recovery does.

use super::LogError;
use super::batch::BatchHeader;
use super::scan::FULL_SCAN_WINDOW_BYTES;
use super::segment::{BatchInfo, ChunkReader, Segment, header_at};

/// What recovery found and did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Complete, valid batches kept.
    pub batches: usize,
    /// Bytes cut from the end of the file.
    pub truncated_bytes: u64,
    /// Byte positions of batches kept in place although their CRC fails.
    pub corrupt_positions: Vec<u64>,
}

/// The decision for a batch whose CRC fails: a torn tail (it is the last thing in the
/// file) is cut; anything followed by more data is damage to keep and report.
pub fn is_torn_tail(position: u64, batch_bytes: u64, file_len: u64) -> bool {
    position + batch_bytes >= file_len
}

/// Scans `segment` from byte 0 checking every header and CRC, truncates the torn tail,
/// fsyncs, and rebuilds the segment's indexes.
pub(crate) fn recover_active(segment: &mut Segment) -> Result<RecoveryReport, LogError> {
    let file_len = segment.size_bytes;
    let mut report = RecoveryReport::default();
    let mut batches: Vec<BatchInfo> = Vec::new();
    let mut pos = 0u64;
    {
        let mut reader = ChunkReader::new(
            segment.file(),
            segment.log_path(),
            file_len,
            FULL_SCAN_WINDOW_BYTES,
        );
        let mut prev = None;
        while pos < file_len {
            let h = match header_at(&mut reader, pos, prev) {
                Ok(h) => h,
                Err(reason) => {
                    tracing::warn!(segment = %segment.log_path().display(), position = pos, %reason, "cutting the torn tail");
                    break;
                }
            };
            let total = h.total_bytes();
            // Bounded: header_at checked that the batch lies within the file.
            let bytes = reader.get(pos, total as usize)?;
            if BatchHeader::verify_crc(bytes).is_err() {
                if is_torn_tail(pos, total, file_len) {
                    tracing::warn!(segment = %segment.log_path().display(), position = pos, "last batch fails its CRC: cutting it");
                    break;
                }
                tracing::error!(segment = %segment.log_path().display(), position = pos, "a batch in the middle fails its CRC: kept, reads of it will fail");
                report.corrupt_positions.push(pos);
            }
            batches.push(BatchInfo {
                position: pos,
                base_offset: h.base_offset,
                last_offset: h.last_offset(),
                max_timestamp_ms: h.max_timestamp,
                size_bytes: total,
            });
            prev = Some(h.last_offset());
            pos += total;
        }
    }
    if pos < file_len {
        segment.file().set_len(pos).map_err(LogError::io(
            "truncating the torn tail of",
            segment.log_path(),
        ))?;
        segment.sync()?;
        report.truncated_bytes = file_len - pos;
    }
    report.batches = batches.len();
    let roll_base = batches.first().map(|b| b.max_timestamp_ms);
    segment.rebuild_from(&batches, roll_base)?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::is_torn_tail;

    #[test]
    fn only_the_last_batch_is_a_torn_tail() {
        assert!(is_torn_tail(100, 50, 150));
        assert!(!is_torn_tail(100, 50, 151));
        assert!(!is_torn_tail(0, 50, 200));
    }
}
