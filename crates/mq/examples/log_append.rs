//! Append throughput of the partition log alone (no network): 100-byte records in batches
//! of 100, under each flush policy, then a full sequential read with CRC checks.
//!
//! `cargo run --release -p mq --example log_append [-- SECONDS]` (default 3 s per policy).
//! The log directory is a temporary directory on the default temp filesystem.

use std::time::{Duration, Instant};

use mq::log::records::{NewRecord, encode_batch};
use mq::log::{Compression, FlushPolicy, LogConfig, PartitionLog};

const RECORD_BYTES: usize = 100;
const BATCH_RECORDS: usize = 100;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let seconds: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let value = vec![b'x'; RECORD_BYTES];
    let recs: Vec<NewRecord<'_>> = (0..BATCH_RECORDS)
        .map(|_| NewRecord {
            key: None,
            value: Some(&value),
            timestamp_ms: 0,
            headers: &[],
        })
        .collect();
    let batch = encode_batch(&recs, Compression::None)?;
    println!(
        "batch: {} records of {RECORD_BYTES} B = {} B on disk",
        BATCH_RECORDS,
        batch.len()
    );
    println!(
        "{:<14} {:>12} {:>14} {:>10}",
        "flush", "batches/s", "records/s", "MB/s"
    );
    for (name, flush) in [
        ("os", FlushPolicy::Os),
        ("interval 10ms", FlushPolicy::IntervalMs(10)),
        ("always", FlushPolicy::Always),
    ] {
        let dir = tempfile::tempdir()?;
        let mut log = PartitionLog::open(
            dir.path(),
            LogConfig {
                flush,
                ..LogConfig::default()
            },
        )?;
        let start = Instant::now();
        let mut batches = 0u64;
        while start.elapsed() < Duration::from_secs(seconds) {
            for _ in 0..64 {
                let now_ms = start.elapsed().as_millis() as i64;
                log.append(&batch, now_ms)?;
                batches += 1;
            }
        }
        let secs = start.elapsed().as_secs_f64();
        let records = batches * BATCH_RECORDS as u64;
        let mb = (batches * batch.len() as u64) as f64 / 1e6;
        println!(
            "{name:<14} {:>12.0} {:>14.0} {:>10.1}",
            batches as f64 / secs,
            records as f64 / secs,
            mb / secs
        );
        if flush == FlushPolicy::Os {
            let start = Instant::now();
            let mut offset = 0;
            let mut bytes = 0usize;
            while offset < log.end_offset() {
                let got = log.read(offset, 1 << 20)?;
                bytes += got.iter().map(|b| b.len()).sum::<usize>();
                offset += (got.len() * BATCH_RECORDS) as i64;
            }
            let secs = start.elapsed().as_secs_f64();
            println!(
                "{:<14} {:>12} {:>14.0} {:>10.1}",
                "read (1 MiB)",
                "",
                records as f64 / secs,
                bytes as f64 / 1e6 / secs
            );
        }
    }
    Ok(())
}
