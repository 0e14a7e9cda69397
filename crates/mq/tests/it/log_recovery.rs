//! Recovery: a torn tail (a cut anywhere in the last batch, garbage after it, a bit flip
//! in it) recovers to exactly the prefix of complete valid batches, and the log goes on
//! appending; a bit flip in the middle is never served: the read names the file.
#![allow(clippy::unwrap_used)]

use crate::log_support;

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};

use log_support::{batch, with_base};
use mq::log::{LogConfig, LogError, PartitionLog};

fn config() -> LogConfig {
    LogConfig {
        index_interval_bytes: 100,
        ..LogConfig::default()
    }
}

/// A log of `n` batches; returns the stored batches.
fn build(dir: &Path, n: usize) -> Vec<Vec<u8>> {
    let mut log = PartitionLog::open(dir, config()).unwrap();
    let mut stored = Vec::new();
    for i in 0..n {
        let b = batch(1 + i % 3, &format!("b{i}"), 1000 + i as i64);
        let a = log.append(&b, 1000).unwrap();
        stored.push(with_base(b, a.base_offset));
    }
    stored
}

fn only_segment(dir: &Path) -> PathBuf {
    let log = PartitionLog::open(dir, config()).unwrap();
    let paths = log.segment_paths();
    assert_eq!(paths.len(), 1);
    paths[0].clone()
}

fn read_all(log: &PartitionLog) -> Result<Vec<Vec<u8>>, LogError> {
    Ok(log
        .read(log.start_offset(), usize::MAX)?
        .into_iter()
        .map(|b| b.to_vec())
        .collect())
}

fn end_of(batches: &[Vec<u8>]) -> i64 {
    batches.last().map_or(0, |b| {
        mq::log::BatchHeader::parse(b).unwrap().last_offset() + 1
    })
}

#[test]
fn a_cut_anywhere_in_the_last_batch_recovers_the_prefix() {
    let stored = build(tempfile::tempdir().unwrap().path(), 0); // warm-up: empty is fine
    assert!(stored.is_empty());
    let template = tempfile::tempdir().unwrap();
    let stored = build(template.path(), 5);
    let full: u64 = stored.iter().map(|b| b.len() as u64).sum();
    let last_len = stored[4].len() as u64;
    for cut in (full - last_len)..full {
        let dir = tempfile::tempdir().unwrap();
        for entry in std::fs::read_dir(template.path()).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
        }
        let seg = only_segment(dir.path());
        OpenOptions::new()
            .write(true)
            .open(&seg)
            .unwrap()
            .set_len(cut)
            .unwrap();
        let mut log = PartitionLog::open(dir.path(), config()).unwrap();
        assert_eq!(read_all(&log).unwrap(), stored[..4], "cut at {cut}");
        assert_eq!(log.end_offset(), end_of(&stored[..4]));
        assert_eq!(
            log.recovery_report().truncated_bytes,
            cut - (full - last_len)
        );
        // The log continues right after the prefix.
        let next = log.append(&batch(2, "after", 5000), 5000).unwrap();
        assert_eq!(next.base_offset, end_of(&stored[..4]));
        drop(log);
        let log = PartitionLog::open(dir.path(), config()).unwrap();
        assert_eq!(read_all(&log).unwrap().len(), 5);
    }
}

#[test]
fn garbage_after_the_last_batch_is_cut() {
    let dir = tempfile::tempdir().unwrap();
    let stored = build(dir.path(), 4);
    let seg = only_segment(dir.path());
    let mut bytes = std::fs::read(&seg).unwrap();
    bytes.extend_from_slice(&[0u8; 4096]); // a power loss can leave zeros
    std::fs::write(&seg, &bytes).unwrap();
    let log = PartitionLog::open(dir.path(), config()).unwrap();
    assert_eq!(read_all(&log).unwrap(), stored);
    assert_eq!(log.recovery_report().truncated_bytes, 4096);
}

#[test]
fn a_bit_flip_in_the_last_batch_drops_just_that_batch() {
    let dir = tempfile::tempdir().unwrap();
    let stored = build(dir.path(), 6);
    let seg = only_segment(dir.path());
    let mut bytes = std::fs::read(&seg).unwrap();
    let n = bytes.len();
    bytes[n - 3] ^= 0x10;
    std::fs::write(&seg, &bytes).unwrap();
    let log = PartitionLog::open(dir.path(), config()).unwrap();
    assert_eq!(read_all(&log).unwrap(), stored[..5]);
    assert_eq!(log.end_offset(), end_of(&stored[..5]));
}

#[test]
fn a_bit_flip_in_the_middle_is_an_error_naming_the_file_never_data() {
    let dir = tempfile::tempdir().unwrap();
    let stored = build(dir.path(), 6);
    let seg = only_segment(dir.path());
    let mut bytes = std::fs::read(&seg).unwrap();
    let pos: usize = stored[..2].iter().map(Vec::len).sum();
    let victim = pos + stored[2].len() - 2; // inside batch 2's records
    bytes[victim] ^= 0x01;
    std::fs::write(&seg, &bytes).unwrap();
    let log = PartitionLog::open(dir.path(), config()).unwrap();
    // Acknowledged batches after the damage are not cut away.
    assert_eq!(log.end_offset(), end_of(&stored));
    assert_eq!(log.recovery_report().corrupt_positions, vec![pos as u64]);
    let err = read_all(&log).unwrap_err();
    match &err {
        LogError::Corrupt { file, position, .. } => {
            assert_eq!(file, &seg);
            assert_eq!(*position, pos as u64);
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert!(err.to_string().contains(&seg.display().to_string()));
    // Batches before and after it are still served.
    let first = end_of(&stored[..1]);
    assert_eq!(log.read(0, 1).unwrap()[0][..], stored[0][..]);
    assert_eq!(log.read(end_of(&stored[..3]), usize::MAX).unwrap().len(), 3);
    assert!(log.read(first + 1, usize::MAX).is_err());
}

#[test]
fn a_damaged_index_of_a_sealed_segment_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_bytes: 700,
        index_interval_bytes: 100,
        ..LogConfig::default()
    };
    let mut log = PartitionLog::open(dir.path(), config.clone()).unwrap();
    let mut stored = Vec::new();
    for i in 0..30 {
        let b = batch(2, &format!("s{i}"), 1000 + i);
        let a = log.append(&b, 1000).unwrap();
        stored.push(with_base(b, a.base_offset));
    }
    assert!(log.segment_count() > 3);
    let first_index = log.segment_paths()[0].with_extension("index");
    let second_time = log.segment_paths()[1].with_extension("timeindex");
    drop(log);
    // Entries that point nowhere, and a torn time index.
    std::fs::write(&first_index, [0xffu8; 24]).unwrap();
    std::fs::write(&second_time, [1u8; 7]).unwrap();
    let log = PartitionLog::open(dir.path(), config).unwrap();
    assert_eq!(read_all(&log).unwrap(), stored);
    for (i, b) in stored.iter().enumerate() {
        let h = mq::log::BatchHeader::parse(b).unwrap();
        assert_eq!(
            log.read(h.last_offset(), 1).unwrap()[0][..],
            b[..],
            "batch {i}"
        );
    }
    assert_eq!(log.offset_for_timestamp(1015), Some(30));
}
