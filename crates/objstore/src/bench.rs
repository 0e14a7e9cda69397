//! A load generator for a data node: durable puts from N concurrent writers.
//!
//! Why a module: the target (4 KiB puts ≥ 5,000 objects/s, durable) is a claim
//! about the group commit, and it is measured the same way by the example binary
//! (`cargo run --release -p objstore --example put_bench`) and, later, by
//! `hyperscale bench s3`. Speed is never asserted in tests; this reports it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::{Node, Result};

/// What to run.
#[derive(Clone, Copy, Debug)]
pub struct PutBench {
    /// Concurrent writer threads.
    pub writers: usize,
    /// Bytes per object.
    pub object_size_bytes: usize,
    /// How long to run.
    pub duration: Duration,
}

/// What it measured.
#[derive(Clone, Debug, PartialEq)]
pub struct PutReport {
    /// Concurrent writers.
    pub writers: usize,
    /// Bytes per object.
    pub object_size_bytes: usize,
    /// Puts acknowledged.
    pub puts: u64,
    /// Wall time.
    pub seconds: f64,
    /// Acknowledged puts per second.
    pub puts_per_sec: f64,
    /// Object MiB per second.
    pub mib_per_sec: f64,
    /// Median put latency.
    pub p50_us: u64,
    /// 99th percentile put latency.
    pub p99_us: u64,
    /// Group commits during the run.
    pub commits: u64,
    /// Data-file fsyncs during the run.
    pub data_fsyncs: u64,
    /// Mapping commit-log fsyncs during the run.
    pub mapping_fsyncs: u64,
    /// Data files on disk at the end (the small-object claim: objects per file).
    pub files: u64,
}

impl PutReport {
    /// Mean puts per group commit (how many writers one fsync pair served).
    pub fn puts_per_commit(&self) -> f64 {
        self.puts as f64 / self.commits.max(1) as f64
    }
}

/// Most latency samples kept per writer (memory bound).
const SAMPLES_MAX: usize = 1 << 20;

/// Runs `bench` against `node`: each writer puts objects of random bytes back to back
/// until the time is up.
pub fn run_puts(node: &Node, bench: PutBench) -> Result<PutReport> {
    let before = node.stats();
    let stop = AtomicBool::new(false);
    let puts = AtomicU64::new(0);
    let started = Instant::now();
    let samples: Vec<Result<Vec<u32>>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..bench.writers.max(1))
            .map(|w| {
                let (stop, puts) = (&stop, &puts);
                s.spawn(move || -> Result<Vec<u32>> {
                    let mut rng = fastrand::Rng::with_seed(w as u64);
                    let mut data = vec![0u8; bench.object_size_bytes];
                    rng.fill(&mut data);
                    let mut lat = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        let n = data.len().min(8);
                        rng.fill(&mut data[..n]); // every object differs
                        let t = Instant::now();
                        node.put(&data)?;
                        if lat.len() < SAMPLES_MAX {
                            lat.push(t.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
                        }
                        puts.fetch_add(1, Ordering::Relaxed);
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
    let mut lat: Vec<u32> = Vec::new();
    for s in samples {
        lat.extend(s?);
    }
    lat.sort_unstable();
    let pct = |p: f64| -> u64 {
        if lat.is_empty() {
            0
        } else {
            u64::from(lat[((lat.len() - 1) as f64 * p).round() as usize])
        }
    };
    let after = node.stats();
    let puts = puts.load(Ordering::Relaxed);
    Ok(PutReport {
        writers: bench.writers,
        object_size_bytes: bench.object_size_bytes,
        puts,
        seconds,
        puts_per_sec: puts as f64 / seconds,
        mib_per_sec: (puts as f64 * bench.object_size_bytes as f64) / seconds / (1 << 20) as f64,
        p50_us: pct(0.50),
        p99_us: pct(0.99),
        commits: after.commits - before.commits,
        data_fsyncs: after.data_fsyncs - before.data_fsyncs,
        mapping_fsyncs: after.mapping_fsyncs - before.mapping_fsyncs,
        files: after.files,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_run_reports_consistent_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let node = Node::open(dir.path(), crate::Options::default()).unwrap();
        let bench = PutBench {
            writers: 4,
            object_size_bytes: 4096,
            duration: Duration::from_millis(200),
        };
        let r = run_puts(&node, bench).unwrap();
        assert!(r.puts > 0);
        assert_eq!(node.stats().objects, r.puts, "every counted put is stored");
        assert!(r.commits >= 1 && r.commits <= r.puts);
        assert!(r.p50_us <= r.p99_us);
    }
}
