//! Sparse indexes of a segment, as Kafka lays them out on disk.
//!
//! A segment is found by its base offset; inside it, the batch holding an offset is found
//! by binary search in the *offset index* (one entry every `index_interval_bytes` of log:
//! relative offset → byte position of a batch start) and a short forward scan. Sparse,
//! because a dense index would cost as much as the data it indexes; one entry per 4 KiB
//! bounds the scan to a few KiB, which is one page-cache read.
//!
//! The *time index* maps "largest timestamp so far" → relative offset of the batch that
//! held it, added alongside offset-index entries whenever the largest timestamp grew, so
//! its entries never decrease and ListOffsets-by-time is a binary search too.
//!
//! Files: `.index` = entries of (u32 relative offset, u32 position), `.timeindex` = entries
//! of (i64 timestamp, u32 relative offset), all big-endian. This module is pure: decoding
//! validates every invariant, so a damaged index is rebuilt rather than trusted.

/// Bytes per offset-index entry.
pub const OFFSET_ENTRY_BYTES: usize = 8;
/// Bytes per time-index entry.
pub const TIME_ENTRY_BYTES: usize = 12;

/// One offset-index entry: the batch whose base offset is `base + rel_offset` starts at
/// byte `position` of the segment's log file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OffsetEntry {
    /// Batch base offset minus the segment's base offset.
    pub rel_offset: u32,
    /// Byte position of the batch in the `.log` file.
    pub position: u32,
}

/// One time-index entry: up to (and including) the batch at `rel_offset`, the largest
/// timestamp seen in the segment is `timestamp_ms`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeEntry {
    /// Largest record timestamp so far in the segment.
    pub timestamp_ms: i64,
    /// Relative base offset of the batch holding that timestamp.
    pub rel_offset: u32,
}

impl OffsetEntry {
    /// The on-disk bytes.
    pub fn encode(self) -> [u8; OFFSET_ENTRY_BYTES] {
        let mut b = [0u8; OFFSET_ENTRY_BYTES];
        b[..4].copy_from_slice(&self.rel_offset.to_be_bytes());
        b[4..].copy_from_slice(&self.position.to_be_bytes());
        b
    }
}

impl TimeEntry {
    /// The on-disk bytes.
    pub fn encode(self) -> [u8; TIME_ENTRY_BYTES] {
        let mut b = [0u8; TIME_ENTRY_BYTES];
        b[..8].copy_from_slice(&self.timestamp_ms.to_be_bytes());
        b[8..].copy_from_slice(&self.rel_offset.to_be_bytes());
        b
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Decodes an offset index, or `None` if it breaks an invariant (length not a multiple of
/// the entry size; relative offsets or positions not strictly increasing; a position at
/// or beyond `log_size_bytes`). The caller rebuilds the index from the log then.
pub fn decode_offset_index(bytes: &[u8], log_size_bytes: u64) -> Option<Vec<OffsetEntry>> {
    if !bytes.len().is_multiple_of(OFFSET_ENTRY_BYTES) {
        return None;
    }
    let mut out: Vec<OffsetEntry> = Vec::with_capacity(bytes.len() / OFFSET_ENTRY_BYTES);
    for chunk in bytes.chunks_exact(OFFSET_ENTRY_BYTES) {
        let e = OffsetEntry {
            rel_offset: u32_at(chunk, 0),
            position: u32_at(chunk, 4),
        };
        if u64::from(e.position) >= log_size_bytes {
            return None;
        }
        if let Some(prev) = out.last()
            && (e.rel_offset <= prev.rel_offset || e.position <= prev.position)
        {
            return None;
        }
        out.push(e);
    }
    Some(out)
}

/// Decodes a time index, or `None` if it breaks an invariant (length; timestamps or
/// offsets decreasing).
pub fn decode_time_index(bytes: &[u8]) -> Option<Vec<TimeEntry>> {
    if !bytes.len().is_multiple_of(TIME_ENTRY_BYTES) {
        return None;
    }
    let mut out: Vec<TimeEntry> = Vec::with_capacity(bytes.len() / TIME_ENTRY_BYTES);
    for chunk in bytes.chunks_exact(TIME_ENTRY_BYTES) {
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&chunk[..8]);
        let e = TimeEntry {
            timestamp_ms: i64::from_be_bytes(ts),
            rel_offset: u32_at(chunk, 8),
        };
        if let Some(prev) = out.last()
            && (e.timestamp_ms < prev.timestamp_ms || e.rel_offset < prev.rel_offset)
        {
            return None;
        }
        out.push(e);
    }
    Some(out)
}

/// The entry with the largest relative offset `<= rel_offset` (where to start scanning),
/// or `None` when the target precedes every entry (scan from position 0).
pub fn lookup_offset(entries: &[OffsetEntry], rel_offset: u32) -> Option<OffsetEntry> {
    let n = entries.partition_point(|e| e.rel_offset <= rel_offset);
    n.checked_sub(1).map(|i| entries[i])
}

/// The last entry whose timestamp is `< timestamp_ms`: every batch up to it has only
/// smaller timestamps, so the search for `>= timestamp_ms` can start at that batch.
pub fn lookup_time(entries: &[TimeEntry], timestamp_ms: i64) -> Option<TimeEntry> {
    let n = entries.partition_point(|e| e.timestamp_ms < timestamp_ms);
    n.checked_sub(1).map(|i| entries[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oe(rel_offset: u32, position: u32) -> OffsetEntry {
        OffsetEntry {
            rel_offset,
            position,
        }
    }

    #[test]
    fn offset_index_round_trips_and_looks_up() {
        let entries = vec![oe(0, 0), oe(10, 4096), oe(25, 8200)];
        let bytes: Vec<u8> = entries.iter().flat_map(|e| e.encode()).collect();
        assert_eq!(decode_offset_index(&bytes, 9000).unwrap(), entries);
        assert_eq!(lookup_offset(&entries, 0), Some(oe(0, 0)));
        assert_eq!(lookup_offset(&entries, 24), Some(oe(10, 4096)));
        assert_eq!(lookup_offset(&entries, 99), Some(oe(25, 8200)));
        assert_eq!(lookup_offset(&entries[1..], 3), None);
    }

    #[test]
    fn damaged_offset_index_is_rejected() {
        let good: Vec<u8> = [oe(0, 0), oe(10, 4096)]
            .iter()
            .flat_map(|e| e.encode())
            .collect();
        assert!(
            decode_offset_index(&good[..12], 9000).is_none(),
            "torn entry"
        );
        assert!(decode_offset_index(&good, 4096).is_none(), "past the log");
        let backwards: Vec<u8> = [oe(10, 0), oe(5, 4096)]
            .iter()
            .flat_map(|e| e.encode())
            .collect();
        assert!(decode_offset_index(&backwards, 9000).is_none());
    }

    #[test]
    fn time_index_round_trips_and_looks_up() {
        let entries = vec![
            TimeEntry {
                timestamp_ms: 100,
                rel_offset: 0,
            },
            TimeEntry {
                timestamp_ms: 200,
                rel_offset: 7,
            },
        ];
        let bytes: Vec<u8> = entries.iter().flat_map(|e| e.encode()).collect();
        assert_eq!(decode_time_index(&bytes).unwrap(), entries);
        assert_eq!(lookup_time(&entries, 100), None);
        assert_eq!(lookup_time(&entries, 150), Some(entries[0]));
        assert_eq!(lookup_time(&entries, 999), Some(entries[1]));
        let backwards: Vec<u8> = entries.iter().rev().flat_map(|e| e.encode()).collect();
        assert!(decode_time_index(&backwards).is_none());
    }
}
