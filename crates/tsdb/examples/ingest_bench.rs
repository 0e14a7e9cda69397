//! Durable ingestion throughput: `cargo run --release -p tsdb --example
//! ingest_bench -- [writers] [series_per_writer] [seconds]`.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use tsdb::bench::{IngestBench, run_ingest};

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let arg = |i: usize, d: u64| args.get(i).copied().unwrap_or(d);
    let bench = IngestBench {
        writers: arg(0, 8) as usize,
        series_per_writer: arg(1, 1000) as usize,
        duration: Duration::from_secs(arg(2, 10)),
    };
    let dir = tempfile::tempdir_in(std::env::var("TSDB_BENCH_DIR").unwrap_or_else(|_| ".".into()))
        .unwrap();
    let opts = tsdb::Options {
        limits: tsdb::Limits {
            future_tolerance_ms: None,
            ..tsdb::Limits::default()
        },
        ..tsdb::Options::default()
    };
    let db = tsdb::Db::open(dir.path(), opts).unwrap();
    let r = run_ingest(&db, bench).unwrap();
    println!("{bench:?}");
    println!(
        "{:.0} samples/s durable ({} samples, {} requests in {:.1} s); request p50 {} us, p99 {} us; {} fsyncs ({:.1} requests/fsync); WAL {:.2} B/sample, head chunks {:.2} B/sample",
        r.samples_per_sec,
        r.samples,
        r.requests,
        r.seconds,
        r.p50_us,
        r.p99_us,
        r.fsyncs,
        r.requests as f64 / r.fsyncs.max(1) as f64,
        r.wal_bytes_per_sample,
        r.head_bytes_per_sample
    );
}
