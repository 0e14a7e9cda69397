//! Shared helpers of the log tests: batches with recognisable content.
#![allow(dead_code, clippy::unwrap_used)]

use mq::log::Compression;
use mq::log::records::{NewRecord, encode_batch};

/// A batch of `n` unkeyed records `tag-i`, all with timestamp `ts`.
pub fn batch(n: usize, tag: &str, ts: i64) -> Vec<u8> {
    let values: Vec<String> = (0..n).map(|i| format!("{tag}-{i}")).collect();
    let recs: Vec<NewRecord<'_>> = values
        .iter()
        .map(|v| NewRecord {
            key: None,
            value: Some(v.as_bytes()),
            timestamp_ms: ts,
            headers: &[],
        })
        .collect();
    encode_batch(&recs, Compression::None).unwrap()
}

/// The batch as the log stores it: the producer's bytes with baseOffset set.
pub fn with_base(mut b: Vec<u8>, base: i64) -> Vec<u8> {
    b[..8].copy_from_slice(&base.to_be_bytes());
    b
}
