//! Log compaction (`cleanup.policy=compact`): keep the last value per key.
//!
//! For keyed topics that hold *state* (the latest value of each key, like committed
//! consumer offsets), deleting by age would lose live keys and keeping everything grows
//! forever. Compaction keeps, for every key, only the record with the highest offset.
//! A record with a null value is a *tombstone*: it deletes its key, and is itself kept for
//! `delete_retention_ms` (so consumers catching up see the delete), then dropped.
//!
//! How: pass 1 reads every record of the log (the active segment included, since its
//! records supersede older ones) into a map key → last offset. Pass 2 rewrites each
//! *sealed* segment (the active one is never touched): records that are not the last for
//! their key are dropped; a batch left with no records is dropped; a batch left with some
//! is rebuilt with its original header (base offset, last offset delta, timestamps,
//! producer fields, codec) so every surviving record keeps its original offset (gaps are
//! fine: readers skip them) and its bytes unchanged; only count, compression and CRC are
//! recomputed. Control and transactional batches and batches that cannot be parsed are
//! kept as they are. A batch failing its CRC stops compaction with [`LogError::Corrupt`]:
//! damaged data is never rewritten into a file with a valid CRC.
//!
//! Crash safety: the new segment is written as `<base>.log.cleaned` and fsynced, the old
//! indexes are removed, then it is renamed over `<base>.log` (atomic) and the directory
//! fsynced. A crash leaves either the old or the new file; `*.cleaned` leftovers are
//! deleted on open and missing indexes rebuilt.
//!
//! Memory: pass 1 holds every distinct key (Kafka bounds this with a fixed-size map of
//! key hashes and compacts in several rounds; not done here).

use std::collections::HashMap;
use std::io::Write;

use super::batch::BatchHeader;
use super::partition::{PartitionLog, sync_dir, wall_clock_ms};
use super::records::{self, RecordView};
use super::segment::{self, Segment};
use super::{CleanupPolicy, LogError};

/// What [`super::PartitionLog::compact`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CompactionReport {
    /// Sealed segments rewritten.
    pub segments_rewritten: usize,
    /// Segments deleted because nothing in them survived.
    pub segments_deleted: usize,
    /// Records removed (superseded values and expired tombstones).
    pub records_removed: u64,
    /// Log bytes before minus after.
    pub bytes_reclaimed: u64,
}

/// The last offset of every key in the log.
pub type OffsetMap = HashMap<Vec<u8>, i64>;

/// The decision for one record in a sealed segment: keep it if it has no key (nothing to
/// compact it against), or if it is the last record of its key, unless it is a tombstone
/// older than `delete_retention_ms`.
pub fn keep_record(
    key: Option<&[u8]>,
    is_tombstone: bool,
    offset: i64,
    timestamp_ms: i64,
    last_offsets: &OffsetMap,
    now_ms: i64,
    delete_retention_ms: u64,
) -> bool {
    let Some(key) = key else { return true };
    if last_offsets.get(key).is_some_and(|last| *last > offset) {
        return false;
    }
    if is_tombstone {
        let age_ms = now_ms.saturating_sub(timestamp_ms);
        return age_ms < i64::try_from(delete_retention_ms).unwrap_or(i64::MAX);
    }
    true
}

/// A batch that compaction reads inside: not control/transactional.
fn is_plain(h: &BatchHeader) -> bool {
    !h.is_control() && !h.is_transactional()
}

impl PartitionLog {
    /// `cleanup.policy=compact`: rewrites sealed segments keeping the last value per key
    /// (see [`super::compaction`]); tombstone age is measured against the wall clock.
    /// Does nothing under `cleanup.policy=delete`.
    pub fn compact(&mut self) -> Result<CompactionReport, LogError> {
        self.compact_at(wall_clock_ms())
    }

    /// [`PartitionLog::compact`] with the clock given (tests, simulations).
    pub fn compact_at(&mut self, now_ms: i64) -> Result<CompactionReport, LogError> {
        let mut report = CompactionReport::default();
        if self.config.cleanup != CleanupPolicy::Compact || self.segments.len() < 2 {
            return Ok(report);
        }
        let mut last_offsets = OffsetMap::new();
        for seg in self.segments.values() {
            for_each_batch(seg, |_, h, recs| {
                if let Some(recs) = recs {
                    for r in recs {
                        if let Some(k) = r.key {
                            let offset = h.base_offset + i64::from(r.offset_delta);
                            last_offsets.insert(k.to_vec(), offset);
                        }
                    }
                }
                Ok(())
            })?;
        }
        let sealed: Vec<i64> = self.segments.keys().rev().skip(1).copied().collect();
        for base in sealed.into_iter().rev() {
            let Some(seg) = self.segments.get(&base) else {
                continue;
            };
            let (rewritten, removed) =
                rewrite(seg, &last_offsets, now_ms, self.config.delete_retention_ms)?;
            if removed == 0 {
                continue;
            }
            report.records_removed += removed;
            let old_size = seg.size_bytes;
            let seg = self.segments.remove(&base).expect("present");
            let new_seg = self.install(seg, &rewritten)?;
            // Recompressing fewer records can, rarely, take more bytes: count no negative gain.
            report.bytes_reclaimed += old_size.saturating_sub(rewritten.len() as u64);
            match new_seg {
                Some(s) => {
                    report.segments_rewritten += 1;
                    self.segments.insert(base, s);
                }
                None => report.segments_deleted += 1,
            }
        }
        sync_dir(&self.dir)?;
        Ok(report)
    }

    /// Puts the rewritten bytes in place of `old` (crash-safe, see the module doc); an
    /// empty result deletes the segment.
    fn install(&self, old: Segment, bytes: &[u8]) -> Result<Option<Segment>, LogError> {
        let base = old.base_offset;
        if bytes.is_empty() {
            old.delete_files()?;
            return Ok(None);
        }
        let log_path = self.dir.join(segment::file_name(base, "log"));
        let cleaned = self
            .dir
            .join(format!("{}.cleaned", segment::file_name(base, "log")));
        let mut f = std::fs::File::create(&cleaned).map_err(LogError::io("creating", &cleaned))?;
        f.write_all(bytes)
            .map_err(LogError::io("writing", &cleaned))?;
        f.sync_all().map_err(LogError::io("fsync of", &cleaned))?;
        drop(old);
        for ext in ["index", "timeindex"] {
            let p = self.dir.join(segment::file_name(base, ext));
            std::fs::remove_file(&p).map_err(LogError::io("removing", &p))?;
        }
        std::fs::rename(&cleaned, &log_path)
            .map_err(LogError::io("renaming into place", &log_path))?;
        sync_dir(&self.dir)?;
        let mut seg = Segment::open_existing(&self.dir, base, self.config.index_interval_bytes)?;
        seg.rebuild_by_scan()?;
        seg.seal()?;
        Ok(Some(seg))
    }
}

/// Visits every batch of `seg` with its header and, for plain batches that parse, its
/// records (`None` for control/transactional batches and unparseable ones).
fn for_each_batch(
    seg: &Segment,
    mut visit: impl FnMut(&[u8], &BatchHeader, Option<&[RecordView<'_>]>) -> Result<(), LogError>,
) -> Result<(), LogError> {
    for info in seg.scan_all()? {
        let mut out = Vec::new();
        seg.read_from(info, 0, true, &mut out)?;
        let Some(bytes) = out.first() else { continue };
        let header = BatchHeader::parse(bytes)?;
        if !is_plain(&header) {
            visit(bytes, &header, None)?;
            continue;
        }
        match records::batch_payload(bytes) {
            Ok((_, payload)) => match records::parse_records(&payload, header.records_count) {
                Ok(recs) => visit(bytes, &header, Some(&recs))?,
                Err(e) => {
                    tracing::warn!(segment = %seg.log_path().display(), position = info.position, error = %e, "compaction keeps a batch it cannot parse");
                    visit(bytes, &header, None)?;
                }
            },
            Err(e) => {
                tracing::warn!(segment = %seg.log_path().display(), position = info.position, error = %e, "compaction keeps a batch it cannot parse");
                visit(bytes, &header, None)?;
            }
        }
    }
    Ok(())
}

/// The compacted content of `seg` and the number of records removed.
fn rewrite(
    seg: &Segment,
    last_offsets: &OffsetMap,
    now_ms: i64,
    delete_retention_ms: u64,
) -> Result<(Vec<u8>, u64), LogError> {
    let mut out = Vec::new();
    let mut removed = 0u64;
    for_each_batch(seg, |bytes, h, recs| {
        let Some(recs) = recs else {
            out.extend_from_slice(bytes);
            return Ok(());
        };
        let kept: Vec<&RecordView<'_>> = recs
            .iter()
            .filter(|r| {
                keep_record(
                    r.key,
                    r.value.is_none(),
                    h.base_offset + i64::from(r.offset_delta),
                    h.base_timestamp.saturating_add(r.timestamp_delta),
                    last_offsets,
                    now_ms,
                    delete_retention_ms,
                )
            })
            .collect();
        removed += (recs.len() - kept.len()) as u64;
        if kept.len() == recs.len() {
            out.extend_from_slice(bytes);
        } else if !kept.is_empty() {
            let raw: Vec<u8> = kept.iter().flat_map(|r| r.raw.iter().copied()).collect();
            let count = i32::try_from(kept.len()).expect("fewer than the original count");
            out.extend_from_slice(&records::build_batch(h, &raw, count)?);
        }
        Ok(())
    })?;
    Ok((out, removed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_value_per_key_is_kept_and_old_tombstones_go() {
        let mut last = OffsetMap::new();
        last.insert(b"a".to_vec(), 10);
        last.insert(b"t".to_vec(), 5);
        // Superseded, latest, unkeyed.
        assert!(!keep_record(Some(b"a"), false, 3, 0, &last, 0, 100));
        assert!(keep_record(Some(b"a"), false, 10, 0, &last, 0, 100));
        assert!(keep_record(None, false, 1, 0, &last, 0, 100));
        // The latest record of "t" is a tombstone: kept while young, dropped when old.
        assert!(keep_record(Some(b"t"), true, 5, 1000, &last, 1050, 100));
        assert!(!keep_record(Some(b"t"), true, 5, 1000, &last, 1100, 100));
    }
}
