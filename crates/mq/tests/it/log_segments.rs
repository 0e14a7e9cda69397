//! Segment lifecycle: roll by size and by age, retention by time (the active segment
//! included) and by size, ListOffsets by timestamp, replication's truncate and
//! append_replicated.
#![allow(clippy::unwrap_used)]

use crate::log_support;

use log_support::{batch, with_base};
use mq::log::records::{NewRecord, encode_batch};
use mq::log::{BatchHeader, Compression, LogConfig, LogError, PartitionLog};

const HOUR_MS: u64 = 3_600_000;

#[test]
fn segments_roll_by_size_and_by_age() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_bytes: 1000,
        segment_ms: HOUR_MS,
        ..LogConfig::default()
    };
    let mut log = PartitionLog::open(dir.path(), config.clone()).unwrap();
    let b = batch(3, "size", 0);
    let per_segment = 1000 / b.len();
    for _ in 0..per_segment {
        log.append(&b, 0).unwrap();
    }
    assert_eq!(
        log.segment_count(),
        1,
        "fills the first segment without rolling"
    );
    log.append(&b, 0).unwrap();
    assert_eq!(
        log.segment_count(),
        2,
        "the next batch would pass segment_bytes"
    );
    // The second segment is named by its first offset.
    let name = log.segment_paths()[1]
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(name, format!("{:020}.log", per_segment * 3));
    // Age: an hour after the segment's first append, the next append rolls.
    log.append(&b, HOUR_MS as i64 - 1).unwrap();
    assert_eq!(log.segment_count(), 2);
    log.append(&b, HOUR_MS as i64).unwrap();
    assert_eq!(log.segment_count(), 3);
    // A batch larger than a segment still goes in (alone).
    let big = batch(100, "big", 0);
    assert!(big.len() > 1000);
    log.append(&big, HOUR_MS as i64).unwrap();
    log.append(&b, HOUR_MS as i64).unwrap();
    assert_eq!(log.segment_count(), 5);
    drop(log);
    let log = PartitionLog::open(dir.path(), config).unwrap();
    assert_eq!(log.segment_count(), 5);
    assert_eq!(log.read(0, usize::MAX).unwrap().len(), per_segment + 5);
}

#[test]
fn retention_by_time_deletes_old_segments_and_can_empty_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_bytes: 500,
        retention_ms: Some(1000),
        ..LogConfig::default()
    };
    let mut log = PartitionLog::open(dir.path(), config).unwrap();
    for i in 0..20 {
        log.append(&batch(2, "t", 10_000 + i * 100), 0).unwrap();
    }
    let segments = log.segment_count();
    assert!(segments > 3);
    let none = log.enforce_retention(10_000).unwrap();
    assert_eq!(none.segments_deleted, 0);
    // At 11_700 everything with timestamps below 10_700 is expired.
    let some = log.enforce_retention(11_700).unwrap();
    assert!(some.segments_deleted > 0 && some.segments_deleted < segments);
    assert_eq!(some.start_offset, log.start_offset());
    let first = BatchHeader::parse(&log.read(log.start_offset(), 1).unwrap()[0]).unwrap();
    assert!(
        first.max_timestamp < 10_700,
        "only whole expired segments went: the rest of the segment stays"
    );
    // Far in the future the active segment goes too; the log continues at the same end.
    let end = log.end_offset();
    let all = log.enforce_retention(1_000_000).unwrap();
    assert_eq!(
        (all.start_offset, log.end_offset(), log.size_bytes()),
        (end, end, 0)
    );
    assert!(log.read(end, 100).unwrap().is_empty());
    assert!(
        matches!(log.read(0, 100), Err(LogError::OffsetOutOfRange { start_offset, .. }) if start_offset == end)
    );
    let a = log.append(&batch(1, "again", 0), 0).unwrap();
    assert_eq!(a.base_offset, end);
}

#[test]
fn retention_by_size_keeps_the_newest_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_bytes: 500,
        retention_bytes: Some(1200),
        retention_ms: None,
        ..LogConfig::default()
    };
    let mut log = PartitionLog::open(dir.path(), config).unwrap();
    for i in 0..40 {
        log.append(&batch(2, "s", i), 0).unwrap();
    }
    let before = log.size_bytes();
    let r = log.enforce_retention(0).unwrap();
    assert!(r.segments_deleted > 0);
    assert_eq!(log.size_bytes(), before - r.bytes_deleted);
    assert!(log.size_bytes() >= 1200, "never below the limit");
    assert!(log.size_bytes() < 1200 + 500, "within one segment of it");
}

#[test]
fn offset_for_timestamp_finds_the_first_record_at_or_after() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_bytes: 300,
        index_interval_bytes: 50,
        ..LogConfig::default()
    };
    let mut log = PartitionLog::open(dir.path(), config).unwrap();
    // Batches of 3 records with timestamps t, t+1, t+2 for t = 100, 200, ...
    for i in 0..20i64 {
        let recs: Vec<NewRecord<'_>> = (0..3)
            .map(|j| NewRecord {
                key: None,
                value: Some(b"v"),
                timestamp_ms: 100 * (i + 1) + j,
                headers: &[],
            })
            .collect();
        log.append(&encode_batch(&recs, Compression::Lz4).unwrap(), 0)
            .unwrap();
    }
    assert!(log.segment_count() > 2);
    assert_eq!(log.offset_for_timestamp(0), Some(0));
    assert_eq!(log.offset_for_timestamp(100), Some(0));
    assert_eq!(log.offset_for_timestamp(101), Some(1));
    assert_eq!(log.offset_for_timestamp(102), Some(2));
    assert_eq!(log.offset_for_timestamp(103), Some(3));
    assert_eq!(log.offset_for_timestamp(1501), Some(43));
    assert_eq!(log.offset_for_timestamp(2002), Some(59));
    assert_eq!(log.offset_for_timestamp(2003), None);
}

#[test]
fn truncate_and_replicated_appends_follow_a_leader() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_bytes: 400,
        ..LogConfig::default()
    };
    let mut leader = PartitionLog::open(&dir.path().join("leader"), config.clone()).unwrap();
    let mut follower = PartitionLog::open(&dir.path().join("follower"), config.clone()).unwrap();
    for i in 0..15 {
        leader.append(&batch(2, &format!("l{i}"), i), 0).unwrap();
    }
    for b in leader.read(0, usize::MAX).unwrap() {
        follower.append_replicated(&b).unwrap();
    }
    assert_eq!(
        follower.read(0, usize::MAX).unwrap(),
        leader.read(0, usize::MAX).unwrap()
    );
    // A batch that does not continue the log is refused.
    let stale = leader.read(4, 1).unwrap().remove(0);
    assert!(matches!(
        follower.append_replicated(&stale),
        Err(LogError::NonContiguous { .. })
    ));

    // Diverged: the follower drops everything from offset 11 (mid-batch: from 10).
    follower.truncate_to(11).unwrap();
    assert_eq!(follower.end_offset(), 10);
    assert_eq!(
        follower.read(0, usize::MAX).unwrap(),
        leader.read(0, usize::MAX).unwrap()[..5]
    );
    let b = with_base(batch(2, "new", 0), 10);
    follower.append_replicated(&b).unwrap();
    assert_eq!(follower.end_offset(), 12);
    drop(follower);
    let mut follower = PartitionLog::open(&dir.path().join("follower"), config).unwrap();
    assert_eq!(follower.end_offset(), 12);
    assert_eq!(follower.read(10, 1).unwrap()[0][..], b[..]);
    // Below the start: start over empty at that offset.
    follower.truncate_to(0).unwrap();
    assert_eq!(
        (
            follower.start_offset(),
            follower.end_offset(),
            follower.size_bytes()
        ),
        (0, 0, 0)
    );
    assert_eq!(follower.segment_count(), 1);
}

#[test]
fn reads_across_segments_respect_the_budget_and_never_skip() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = PartitionLog::open(
        dir.path(),
        LogConfig {
            segment_bytes: 300,
            ..LogConfig::default()
        },
    )
    .unwrap();
    let mut stored = Vec::new();
    for i in 0..12 {
        let b = batch(1 + i % 4, &format!("x{i}"), 0);
        let a = log.append(&b, 0).unwrap();
        stored.push(with_base(b, a.base_offset));
    }
    assert!(log.segment_count() > 3);
    let sizes: Vec<usize> = stored.iter().map(Vec::len).collect();
    let budget = sizes[0] + sizes[1] + sizes[2] + sizes[3] - 1;
    let got = log.read(0, budget).unwrap();
    assert_eq!(got.len(), 3, "stops before the batch that does not fit");
    assert!(got.iter().zip(&stored).all(|(g, s)| g[..] == s[..]));
    // Exactly at a segment boundary the next segment's batches follow.
    let all = log.read(0, usize::MAX).unwrap();
    assert!(all.iter().zip(&stored).all(|(g, s)| g[..] == s[..]) && all.len() == 12);
}
