//! Compaction (`cleanup.policy=compact`): the last value per key wins, original offsets
//! are kept (with gaps), tombstones live for `delete_retention_ms` and then go, batches in
//! every codec are rewritten with valid CRCs, and all of it survives a reopen.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use mq::log::records::{NewRecord, batch_payload, encode_batch, parse_records};
use mq::log::{BatchHeader, CleanupPolicy, Compression, LogConfig, PartitionLog};

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 400,
        cleanup: CleanupPolicy::Compact,
        delete_retention_ms: 1000,
        index_interval_bytes: 64,
        ..LogConfig::default()
    }
}

/// One record as (offset, key, value).
type Rec = (i64, Option<Vec<u8>>, Option<Vec<u8>>);

/// Every record of the log.
fn records(log: &PartitionLog) -> Vec<Rec> {
    let mut out = Vec::new();
    let mut prev = -1;
    for b in log.read(log.start_offset(), usize::MAX).unwrap() {
        BatchHeader::verify_crc(&b).unwrap();
        let (h, payload) = batch_payload(&b).unwrap();
        assert!(h.base_offset > prev, "offsets increase across batches");
        prev = h.last_offset();
        for r in parse_records(&payload, h.records_count).unwrap() {
            out.push((
                h.base_offset + i64::from(r.offset_delta),
                r.key.map(<[u8]>::to_vec),
                r.value.map(<[u8]>::to_vec),
            ));
        }
    }
    out
}

/// Writes `ops` (key, value or None for a tombstone) in batches of 3, in `codec`.
fn write(log: &mut PartitionLog, ops: &[(String, Option<String>)], codec: Compression, ts: i64) {
    for chunk in ops.chunks(3) {
        let recs: Vec<NewRecord<'_>> = chunk
            .iter()
            .map(|(k, v)| NewRecord {
                key: Some(k.as_bytes()),
                value: v.as_ref().map(String::as_bytes),
                timestamp_ms: ts,
                headers: &[],
            })
            .collect();
        log.append(&encode_batch(&recs, codec).unwrap(), ts)
            .unwrap();
    }
}

#[test]
fn the_last_value_per_key_wins_in_every_codec() {
    for codec in [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut log = PartitionLog::open(dir.path(), config()).unwrap();
        let mut ops = Vec::new();
        for round in 0..8 {
            for k in 0..5 {
                ops.push((format!("key{k}"), Some(format!("v{round}-{k}"))));
            }
        }
        write(&mut log, &ops, codec, 10_000);
        let before = records(&log);
        let end = log.end_offset();
        assert!(log.segment_count() > 3, "{codec:?}");
        let report = log.compact_at(10_000).unwrap();
        assert!(
            report.records_removed > 0 && report.bytes_reclaimed > 0,
            "{codec:?}: {report:?}"
        );
        assert_eq!(log.end_offset(), end, "the end does not move");
        let after = records(&log);
        // Each survivor is a record of the original log, at its original offset.
        for r in &after {
            assert!(before.contains(r), "{codec:?}: {r:?} was not in the log");
        }
        // The latest value of every key is there; the active segment is untouched.
        let mut latest = BTreeMap::new();
        for (o, k, v) in &before {
            latest.insert(k.clone(), (*o, v.clone()));
        }
        for (k, (o, v)) in &latest {
            assert!(
                after.contains(&(*o, k.clone(), v.clone())),
                "{codec:?}: lost the latest {k:?}"
            );
        }
        // In sealed segments (below the active one's base offset), no key appears twice.
        let active = log
            .segment_paths()
            .last()
            .unwrap()
            .file_stem()
            .unwrap()
            .to_str()
            .unwrap()
            .parse::<i64>()
            .unwrap();
        let mut seen = std::collections::BTreeSet::new();
        for (o, k, _) in after.iter().filter(|r| r.0 < active) {
            assert!(
                seen.insert(k.clone()),
                "{codec:?}: {k:?} twice in sealed segments (offset {o})"
            );
        }
        assert!(after.len() < before.len());
        // Reads from any original offset work (gaps skip forward); reopen keeps it all.
        for o in log.start_offset()..end {
            assert!(!log.read(o, 1).unwrap().is_empty());
        }
        drop(log);
        let log = PartitionLog::open(dir.path(), config()).unwrap();
        assert_eq!(records(&log), after, "{codec:?}");
    }
}

#[test]
fn tombstones_delete_their_key_and_expire_after_delete_retention() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = PartitionLog::open(dir.path(), config()).unwrap();
    let mut ops: Vec<(String, Option<String>)> = Vec::new();
    for k in 0..6 {
        ops.push((
            format!("k{k}"),
            Some(format!("first-{k}-{}", "p".repeat(30))),
        ));
    }
    ops.push(("k1".into(), None)); // delete k1
    ops.push(("k2".into(), None)); // delete k2
    ops.push(("k3".into(), Some("second".into())));
    write(&mut log, &ops, Compression::None, 1_000);
    // Filler for other keys, so the tombstones end up in sealed segments.
    let filler: Vec<(String, Option<String>)> = (0..30)
        .map(|i| (format!("f{}", i % 4), Some(format!("{i:0>40}"))))
        .collect();
    write(&mut log, &filler, Compression::None, 1_500);

    // Young tombstones are kept (consumers catching up must see the delete).
    log.compact_at(1_500).unwrap();
    let recs = records(&log);
    let values = |key: &str| -> Vec<Option<Vec<u8>>> {
        recs.iter()
            .filter(|r| r.1.as_deref() == Some(key.as_bytes()))
            .map(|r| r.2.clone())
            .collect()
    };
    assert_eq!(values("k1"), vec![None]);
    assert_eq!(values("k2"), vec![None]);
    assert_eq!(values("k3"), vec![Some(b"second".to_vec())]);
    assert_eq!(values("k0").len(), 1);

    // Past delete_retention_ms they go, and the key is gone entirely.
    log.compact_at(2_500).unwrap();
    let recs = records(&log);
    assert!(!recs.iter().any(|r| r.1.as_deref() == Some(&b"k1"[..])));
    assert!(!recs.iter().any(|r| r.1.as_deref() == Some(&b"k2"[..])));
    assert!(recs.iter().any(|r| r.1.as_deref() == Some(&b"k3"[..])));
    // Compacting again changes nothing.
    let again = log.compact_at(2_500).unwrap();
    assert_eq!(again.records_removed, 0);
}

#[test]
fn the_delete_policy_does_not_compact() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = PartitionLog::open(
        dir.path(),
        LogConfig {
            cleanup: CleanupPolicy::Delete,
            ..config()
        },
    )
    .unwrap();
    let ops: Vec<(String, Option<String>)> = (0..40)
        .map(|i| ("same".to_string(), Some(format!("{i:0>30}"))))
        .collect();
    write(&mut log, &ops, Compression::None, 0);
    let before = records(&log);
    assert_eq!(log.compact_at(0).unwrap().records_removed, 0);
    assert_eq!(records(&log), before);
}
