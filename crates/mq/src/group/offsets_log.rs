//! Committed offsets as records of the internal compacted topic
//! `__consumer_offsets`, as Kafka stores them (cluster mode): pure encoding
//! and decoding, and the offsets table a log's records amount to.
//!
//! Why a log and not the coordinator's files: a log is what the cluster
//! already replicates (ISR, `acks=all`, failover), so committed offsets
//! survive the coordinator's death for free; and a compacted log keeps only
//! the last value per key, which is exactly "the committed offset of
//! (group, topic, partition)".
//!
//! - A group lives in one partition, `partition_for(group)` (Kafka's
//!   `abs(groupId.hashCode) % partitions`), whose leader is the group's
//!   coordinator.
//! - A record's key is (group, topic, partition), its value the committed
//!   offset, leader epoch, metadata and commit time; a null value
//!   (tombstone) deletes the key. The layouts are Kafka's own
//!   (`OffsetCommitKey` v1, `OffsetCommitValue` v3), so Kafka's tools could
//!   read the topic; records of other kinds (group metadata, key version 2)
//!   are skipped.
//! - [`table_from_records`] replays records in log order into the table a
//!   new coordinator serves: last value per key, tombstones remove.

use std::collections::{BTreeMap, HashMap};

use super::offsets::Committed;
use crate::log::records::{NewRecord, encode_batch};
use crate::log::{Compression, LogError};

/// The internal topic's name.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// Longest commit metadata accepted (Kafka's `offset.metadata.max.bytes`).
pub const METADATA_MAX_BYTES: usize = 4096;

/// `OffsetCommitKey` version written (and 0, the same layout, read).
const KEY_VERSION: i16 = 1;
/// `OffsetCommitValue` version written and read.
const VALUE_VERSION: i16 = 3;

/// One group's committed offsets by (topic, partition).
pub type GroupOffsets = BTreeMap<(String, i32), Committed>;

/// Every group's committed offsets.
pub type Table = HashMap<String, GroupOffsets>;

/// Java's `String.hashCode` (over UTF-16 code units), as Kafka hashes group ids.
fn java_hash(text: &str) -> i32 {
    text.encode_utf16().fold(0i32, |h, unit| {
        h.wrapping_mul(31).wrapping_add(i32::from(unit))
    })
}

/// The partition of the offsets topic holding `group` (Kafka's
/// `Utils.abs(groupId.hashCode) % partitions`); 0 when `partitions < 1`.
pub fn partition_for(group: &str, partitions: i32) -> i32 {
    if partitions < 1 {
        return 0;
    }
    let hash = if java_hash(group) == i32::MIN {
        0
    } else {
        java_hash(group).abs()
    };
    hash % partitions
}

fn put_string(out: &mut Vec<u8>, text: &str) {
    // Group ids and topic names are bounded far below i16::MAX; metadata by
    // METADATA_MAX_BYTES (callers check). Clamp rather than wrap regardless.
    let bytes = text.as_bytes();
    let len = bytes.len().min(i16::MAX as usize);
    out.extend_from_slice(&(len as i16).to_be_bytes());
    out.extend_from_slice(&bytes[..len]);
}

fn take<'a>(buf: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    if buf.len() < n {
        return None;
    }
    let (head, rest) = buf.split_at(n);
    *buf = rest;
    Some(head)
}

fn get_i16(buf: &mut &[u8]) -> Option<i16> {
    Some(i16::from_be_bytes(take(buf, 2)?.try_into().ok()?))
}

fn get_i32(buf: &mut &[u8]) -> Option<i32> {
    Some(i32::from_be_bytes(take(buf, 4)?.try_into().ok()?))
}

fn get_i64(buf: &mut &[u8]) -> Option<i64> {
    Some(i64::from_be_bytes(take(buf, 8)?.try_into().ok()?))
}

fn get_string(buf: &mut &[u8]) -> Option<String> {
    let len = usize::try_from(get_i16(buf)?).ok()?;
    String::from_utf8(take(buf, len)?.to_vec()).ok()
}

/// A record's key: (group, topic, partition).
pub fn encode_key(group: &str, topic: &str, partition: i32) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + group.len() + topic.len());
    out.extend_from_slice(&KEY_VERSION.to_be_bytes());
    put_string(&mut out, group);
    put_string(&mut out, topic);
    out.extend_from_slice(&partition.to_be_bytes());
    out
}

/// (group, topic, partition) of an offset-commit key; None for other kinds
/// of records (group metadata) or a damaged key.
pub fn decode_key(bytes: &[u8]) -> Option<(String, String, i32)> {
    let mut buf = bytes;
    if !matches!(get_i16(&mut buf)?, 0 | 1) {
        return None;
    }
    let group = get_string(&mut buf)?;
    let topic = get_string(&mut buf)?;
    let partition = get_i32(&mut buf)?;
    buf.is_empty().then_some((group, topic, partition))
}

/// A record's value: the committed position, committed at `timestamp_ms`.
pub fn encode_value(committed: &Committed, timestamp_ms: i64) -> Vec<u8> {
    let mut out = Vec::with_capacity(24 + committed.metadata.len());
    out.extend_from_slice(&VALUE_VERSION.to_be_bytes());
    out.extend_from_slice(&committed.offset.to_be_bytes());
    out.extend_from_slice(&committed.leader_epoch.to_be_bytes());
    put_string(&mut out, &committed.metadata);
    out.extend_from_slice(&timestamp_ms.to_be_bytes());
    out
}

/// The committed position of a value; None for a version this broker does
/// not write or a damaged value.
pub fn decode_value(bytes: &[u8]) -> Option<Committed> {
    let mut buf = bytes;
    if get_i16(&mut buf)? != VALUE_VERSION {
        return None;
    }
    let offset = get_i64(&mut buf)?;
    let leader_epoch = get_i32(&mut buf)?;
    let metadata = get_string(&mut buf)?;
    let _timestamp_ms = get_i64(&mut buf)?;
    Some(Committed {
        offset,
        leader_epoch,
        metadata,
    })
}

/// One record batch holding a commit of `group` (a tombstone for each
/// entry whose position is None), ready to append to its partition.
pub fn commit_batch(
    group: &str,
    entries: &[(String, i32, Option<Committed>)],
    now_ms: i64,
) -> Result<Vec<u8>, LogError> {
    let encoded: Vec<(Vec<u8>, Option<Vec<u8>>)> = entries
        .iter()
        .map(|(topic, partition, committed)| {
            (
                encode_key(group, topic, *partition),
                committed.as_ref().map(|c| encode_value(c, now_ms)),
            )
        })
        .collect();
    let records: Vec<NewRecord<'_>> = encoded
        .iter()
        .map(|(key, value)| NewRecord {
            key: Some(key),
            value: value.as_deref(),
            timestamp_ms: now_ms,
            headers: &[],
        })
        .collect();
    encode_batch(&records, Compression::None)
}

/// Applies one record (key, value) in log order to `table`: the last value
/// per key wins, a tombstone (null value) removes the key, and a group left
/// with no key is gone. Records that are not offset commits are skipped.
pub fn apply_record(table: &mut Table, key: Option<&[u8]>, value: Option<&[u8]>) {
    let Some((group, topic, partition)) = key.and_then(decode_key) else {
        return;
    };
    match value {
        Some(value) => {
            if let Some(committed) = decode_value(value) {
                table
                    .entry(group)
                    .or_default()
                    .insert((topic, partition), committed);
            }
        }
        None => {
            if let Some(offsets) = table.get_mut(&group) {
                offsets.remove(&(topic, partition));
                if offsets.is_empty() {
                    table.remove(&group);
                }
            }
        }
    }
}

/// The offsets table that records (key, value), in log order, amount to.
pub fn table_from_records<'a>(
    records: impl IntoIterator<Item = (Option<&'a [u8]>, Option<&'a [u8]>)>,
) -> Table {
    let mut table = Table::new();
    for (key, value) in records {
        apply_record(&mut table, key, value);
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::records::{batch_payload, parse_records};

    fn at(offset: i64, metadata: &str) -> Committed {
        Committed {
            offset,
            leader_epoch: 4,
            metadata: metadata.into(),
        }
    }

    #[test]
    fn groups_hash_as_kafka_does() {
        // Java's String.hashCode: h = 31*h + c over UTF-16 units; this
        // string's hash is i32::MIN, which Kafka's Utils.abs maps to 0.
        assert_eq!(java_hash(""), 0);
        assert_eq!(java_hash("g"), 103);
        assert_eq!(java_hash("ab"), 97 * 31 + 98);
        assert_eq!(java_hash("polygenelubricants"), i32::MIN);
        assert_eq!(partition_for("polygenelubricants", 50), 0);
        assert_eq!(partition_for("g", 50), 3);
        for group in ["a", "orders-consumers", "é", "x".repeat(255).as_str()] {
            let p = partition_for(group, 7);
            assert!((0..7).contains(&p), "{group}: {p}");
        }
        assert_eq!(partition_for("g", 0), 0);
    }

    #[test]
    fn keys_and_values_round_trip_and_junk_is_refused() {
        let key = encode_key("g/1", "orders", 7);
        assert_eq!(decode_key(&key), Some(("g/1".into(), "orders".into(), 7)));
        let value = encode_value(&at(42, "meta"), 1_000);
        assert_eq!(decode_value(&value), Some(at(42, "meta")));
        assert_eq!(decode_key(&key[..key.len() - 1]), None, "truncated");
        let mut longer = key.clone();
        longer.push(0);
        assert_eq!(decode_key(&longer), None, "trailing bytes");
        let mut group_metadata = key.clone();
        group_metadata[..2].copy_from_slice(&2i16.to_be_bytes());
        assert_eq!(decode_key(&group_metadata), None, "a group-metadata key");
        assert_eq!(decode_value(&value[..5]), None);
        assert_eq!(decode_value(&[]), None);
        // A length field running past the end is refused, not trusted.
        assert_eq!(decode_key(&[0, 1, 0x7f, 0xff, b'a']), None);
    }

    #[test]
    fn the_last_value_per_key_wins_and_tombstones_delete() {
        let k = |g: &str, p| encode_key(g, "t", p);
        let v = |o| encode_value(&at(o, ""), 0);
        let records = [
            (k("a", 0), Some(v(1))),
            (k("a", 1), Some(v(10))),
            (k("b", 0), Some(v(5))),
            (k("a", 0), Some(v(2))),
            (k("b", 0), None),
            (k("a", 1), None),
            (k("a", 1), Some(v(11))),
        ];
        let table = table_from_records(
            records
                .iter()
                .map(|(key, value)| (Some(key.as_slice()), value.as_deref())),
        );
        assert_eq!(table.len(), 1, "b's only key was deleted: {table:?}");
        let a = &table["a"];
        assert_eq!(a[&("t".to_string(), 0)].offset, 2);
        assert_eq!(a[&("t".to_string(), 1)].offset, 11);
        // Records that are not offset commits (or have no key) are skipped.
        let junk = table_from_records([(None, Some(&b"x"[..])), (Some(&b"zz"[..]), None)]);
        assert!(junk.is_empty());
    }

    #[test]
    fn a_commit_batch_replays_to_its_entries() {
        let entries = vec![
            ("t".to_string(), 0, Some(at(3, "m"))),
            ("u".to_string(), 2, Some(at(9, ""))),
            ("t".to_string(), 0, None),
        ];
        let batch = commit_batch("grp", &entries, 77).unwrap();
        let (header, payload) = batch_payload(&batch).unwrap();
        let records = parse_records(&payload, header.records_count).unwrap();
        assert_eq!(records.len(), 3);
        let table = table_from_records(records.iter().map(|r| (r.key, r.value)));
        assert_eq!(
            table["grp"].iter().collect::<Vec<_>>(),
            vec![(&("u".to_string(), 2), &at(9, ""))],
            "the tombstone after t-0 deleted it"
        );
    }
}
