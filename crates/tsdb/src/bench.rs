//! An ingestion benchmark: durable appends (WAL fsynced before each ticket
//! resolves) from N concurrent writers.
//!
//! Why a module: the target (ingest ≥ Prometheus) is a claim about the
//! head and the group commit, measured the same way by the example binary
//! (`cargo run --release -p tsdb --example ingest_bench`) and, later, by
//! `hyperscale bench metrics`. Tests never assert speed; this reports it.
//! Each writer plays a scrape target: `series_per_writer` series
//! (node-exporter-like names and labels) sampled together at one timestamp
//! per request, the timestamp advancing 15 s per request. A writer that falls
//! more than 5 minutes behind the fastest one skips ahead (a real scraper
//! stamps samples with the wall clock, so targets never drift apart; without
//! this a slow writer would leave the out-of-order window).

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::{Db, Labels, Result};

/// What to run.
#[derive(Clone, Copy, Debug)]
pub struct IngestBench {
    /// Concurrent writers (scrape targets).
    pub writers: usize,
    /// Series per writer; each request carries one sample of each.
    pub series_per_writer: usize,
    /// How long to run.
    pub duration: Duration,
}

/// What it measured.
#[derive(Clone, Debug, PartialEq)]
pub struct IngestReport {
    /// Samples acknowledged (durable).
    pub samples: u64,
    /// Requests acknowledged.
    pub requests: u64,
    /// Wall time.
    pub seconds: f64,
    /// Durable samples per second.
    pub samples_per_sec: f64,
    /// Median request latency.
    pub p50_us: u64,
    /// 99th percentile request latency.
    pub p99_us: u64,
    /// WAL fsyncs during the run.
    pub fsyncs: u64,
    /// Bytes of WAL written per sample.
    pub wal_bytes_per_sample: f64,
    /// Bytes of compressed chunk data in the head per sample.
    pub head_bytes_per_sample: f64,
}

/// Most latency samples kept per writer (memory bound).
const LATENCIES_MAX: usize = 1 << 20;

/// The label sets of writer `w`.
fn writer_series(db: &Db, w: usize, n: usize) -> Result<Vec<Labels>> {
    (0..n)
        .map(|i| {
            let name = [
                "node_cpu_seconds_total",
                "node_memory_bytes",
                "node_network_bytes_total",
                "node_disk_io_total",
            ][i % 4];
            db.labels([
                ("__name__", name.to_string()),
                ("instance", format!("host-{w}:9100")),
                ("job", "node".to_string()),
                ("id", (i / 4).to_string()),
            ])
        })
        .collect()
}

/// Runs `bench` against `db`: every writer appends and waits for durability
/// back to back until the time is up.
pub fn run_ingest(db: &Db, bench: IngestBench) -> Result<IngestReport> {
    let before = db.stats();
    let stop = AtomicBool::new(false);
    let samples = AtomicU64::new(0);
    let requests = AtomicU64::new(0);
    let started = Instant::now();
    let series: Vec<Vec<Labels>> = (0..bench.writers.max(1))
        .map(|w| writer_series(db, w, bench.series_per_writer.max(1)))
        .collect::<Result<_>>()?;
    let t0 = db.newest_t().max(0) + 15_000;
    let newest = AtomicI64::new(t0);
    let lat: Vec<Result<Vec<u32>>> = std::thread::scope(|s| {
        let handles: Vec<_> = series
            .iter()
            .enumerate()
            .map(|(w, labels)| {
                let (stop, samples, requests, newest) = (&stop, &samples, &requests, &newest);
                s.spawn(move || -> Result<Vec<u32>> {
                    let mut rng = fastrand::Rng::with_seed(w as u64);
                    let mut values: Vec<f64> =
                        labels.iter().map(|_| rng.u32(0..1000) as f64).collect();
                    let mut lat = Vec::new();
                    let mut t = t0;
                    while !stop.load(Ordering::Relaxed) {
                        for (i, v) in values.iter_mut().enumerate() {
                            *v += if i % 2 == 0 {
                                rng.u32(0..100) as f64
                            } else {
                                0.0
                            };
                        }
                        let batch = labels
                            .iter()
                            .cloned()
                            .zip(values.iter().map(|&v| vec![(t, v)]))
                            .collect();
                        let start = Instant::now();
                        db.append(batch)?.wait()?;
                        if lat.len() < LATENCIES_MAX {
                            lat.push(start.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
                        }
                        samples.fetch_add(labels.len() as u64, Ordering::Relaxed);
                        requests.fetch_add(1, Ordering::Relaxed);
                        newest.fetch_max(t, Ordering::Relaxed);
                        t = (t + 15_000).max(newest.load(Ordering::Relaxed) - 5 * crate::MINUTE_MS);
                    }
                    Ok(lat)
                })
            })
            .collect();
        std::thread::sleep(bench.duration);
        stop.store(true, Ordering::Relaxed);
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Ok(Vec::new())))
            .collect()
    });
    let seconds = started.elapsed().as_secs_f64();
    let mut all: Vec<u32> = Vec::new();
    for l in lat {
        all.extend(l?);
    }
    all.sort_unstable();
    let pct = |p: f64| {
        all.get(((all.len().max(1) - 1) as f64 * p).round() as usize)
            .map_or(0, |&v| u64::from(v))
    };
    let after = db.stats();
    let samples = samples.load(Ordering::Relaxed);
    let per = |bytes: f64| bytes / samples.max(1) as f64;
    Ok(IngestReport {
        samples,
        requests: requests.load(Ordering::Relaxed),
        seconds,
        samples_per_sec: samples as f64 / seconds,
        p50_us: pct(0.50),
        p99_us: pct(0.99),
        fsyncs: after.wal_fsyncs - before.wal_fsyncs,
        wal_bytes_per_sample: per(after.wal_bytes.saturating_sub(before.wal_bytes) as f64),
        head_bytes_per_sample: per(after
            .head_chunk_bytes
            .saturating_sub(before.head_chunk_bytes) as f64),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_run_reports_consistent_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let opts = crate::Options {
            maintenance_interval_ms: 0,
            limits: crate::Limits {
                future_tolerance_ms: None,
                ..crate::Limits::default()
            },
            ..crate::Options::default()
        };
        let db = Db::open(dir.path(), opts).unwrap();
        let bench = IngestBench {
            writers: 2,
            series_per_writer: 50,
            duration: Duration::from_millis(200),
        };
        let r = run_ingest(&db, bench).unwrap();
        assert!(r.requests > 0);
        assert_eq!(r.samples, r.requests * 50);
        assert_eq!(
            db.stats().samples_appended,
            r.samples,
            "every acknowledged sample is in the head"
        );
        assert!(r.fsyncs >= 1 && r.fsyncs <= r.requests);
        assert!(r.p50_us <= r.p99_us);
    }
}
