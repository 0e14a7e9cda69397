//! The partition log's basic contract: append assigns contiguous offsets and stores the
//! producer's bytes unchanged (but for baseOffset); read returns whole batches within a
//! byte budget; a reopened log has the same content; bad batches are refused.
#![allow(clippy::unwrap_used)]

use crate::log_support;

use log_support::{batch, with_base};
use mq::log::{BatchHeader, Compression, LogConfig, LogError, PartitionLog};

#[test]
fn append_assigns_offsets_and_read_returns_the_same_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = PartitionLog::open(dir.path(), LogConfig::default()).unwrap();
    assert_eq!((log.start_offset(), log.end_offset()), (0, 0));
    let b1 = batch(3, "a", 1000);
    let b2 = batch(2, "b", 2000);
    let a1 = log.append(&b1, 1000).unwrap();
    let a2 = log.append(&b2, 2000).unwrap();
    assert_eq!((a1.base_offset, a1.last_offset), (0, 2));
    assert_eq!((a2.base_offset, a2.last_offset), (3, 4));
    assert_eq!(log.end_offset(), 5);

    let all = log.read(0, 1 << 20).unwrap();
    assert_eq!(
        all,
        vec![with_base(b1.clone(), 0), with_base(b2.clone(), 3)]
    );
    // An offset inside the first batch returns that whole batch.
    assert_eq!(log.read(1, 1 << 20).unwrap().len(), 2);
    assert_eq!(
        log.read(3, 1 << 20).unwrap(),
        vec![with_base(b2.clone(), 3)]
    );
    // A budget of 1 byte still returns one whole batch; the end returns nothing.
    assert_eq!(log.read(0, 1).unwrap(), vec![with_base(b1.clone(), 0)]);
    assert!(log.read(5, 1 << 20).unwrap().is_empty());
    assert!(matches!(
        log.read(6, 10),
        Err(LogError::OffsetOutOfRange { offset: 6, .. })
    ));
    assert!(matches!(
        log.read(-1, 10),
        Err(LogError::OffsetOutOfRange { .. })
    ));

    log.flush().unwrap();
    drop(log);
    let log = PartitionLog::open(dir.path(), LogConfig::default()).unwrap();
    assert_eq!(log.end_offset(), 5);
    assert_eq!(log.read(0, 1 << 20).unwrap(), all);
    assert_eq!(log.recovery_report().truncated_bytes, 0);
}

#[test]
fn bad_batches_are_refused_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        batch_bytes_max: 200,
        ..LogConfig::default()
    };
    let mut log = PartitionLog::open(dir.path(), config).unwrap();
    let good = batch(1, "x", 1);
    let mut flipped = good.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    assert!(matches!(
        log.append(&flipped, 0),
        Err(LogError::CrcMismatch)
    ));
    let mut wrong_magic = good.clone();
    wrong_magic[16] = 1;
    assert!(matches!(
        log.append(&wrong_magic, 0),
        Err(LogError::InvalidBatch(_))
    ));
    assert!(matches!(
        log.append(&good[..good.len() - 1], 0),
        Err(LogError::InvalidBatch(_))
    ));
    assert!(matches!(
        log.append(&good[..10], 0),
        Err(LogError::InvalidBatch(_))
    ));
    let big = batch(40, "big", 1);
    assert!(matches!(
        log.append(&big, 0),
        Err(LogError::BatchTooLarge { max_bytes: 200, .. })
    ));
    // A header that lies about its length.
    let mut lying = good.clone();
    lying[8..12].copy_from_slice(&i32::MAX.to_be_bytes());
    assert!(log.append(&lying, 0).is_err());
    assert_eq!(log.end_offset(), 0);
    assert_eq!(log.size_bytes(), 0);
    log.append(&good, 0).unwrap();
    assert_eq!(log.end_offset(), 1);
}

#[test]
fn header_accessors_read_the_v2_fields() {
    let b = batch(4, "h", 77);
    let h = BatchHeader::parse(&b).unwrap();
    BatchHeader::verify_crc(&b).unwrap();
    assert_eq!(
        (
            h.magic,
            h.records_count,
            h.last_offset_delta,
            h.max_timestamp
        ),
        (2, 4, 3, 77)
    );
    assert_eq!(h.compression(), Compression::None);
    assert!(!h.is_transactional() && !h.is_control());
    assert_eq!(h.last_offset(), 3);
    assert_eq!(h.total_bytes(), b.len() as u64);
}
