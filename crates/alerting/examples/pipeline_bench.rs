//! Queue-backed pipeline benchmark (the notes' collection path): samples
//! published through `mqclient` (the embedded broker: our message queue's
//! log, in process) to the `metrics` topic, consumed by one ingester that
//! writes them durably to `tsdb` and commits after the WAL's fsync.
//!
//! 1. Throughput: 1,000 series (10 metric names x 100 instances, so the
//!    records spread over the 4 partitions by metric name) x 100 scrapes =
//!    100,000 samples published as fast as the broker acknowledges, timed
//!    until the ingester has stored them all (samples/s end to end). The
//!    anchor: the same batches appended straight to a database (no queue,
//!    one WAL wait for all), so the ratio is what the queue costs. Three rounds; medians.
//! 2. Lag under a 2x burst: a steady load at half the measured throughput
//!    for 3 s, twice that for 3 s, then steady again for 3 s; lag (samples
//!    published, not yet stored) sampled every 50 ms: its maximum and how
//!    long after the burst it takes to return under one scrape.
//!
//! `cargo run --release -p alerting --example pipeline_bench`
// A benchmark may unwrap: a failure ends it with the reason.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use alerting::pipeline::codec::WireSeries;
use alerting::pipeline::ingest::{IngestOptions, IngestStats, run};
use alerting::pipeline::publish::{PublishOptions, Publisher};
use mqclient::{Embedded, MqClient};
use tsdb::{Db, Options};

const NAMES: usize = 10;
const INSTANCES: usize = 100;
const SERIES: usize = NAMES * INSTANCES;
const SCRAPES: i64 = 100;
const ROUNDS: usize = 3;

/// One scrape of every series at `t_ms`.
fn scrape(t_ms: i64) -> Vec<WireSeries> {
    (0..SERIES)
        .map(|i| WireSeries {
            labels: [
                (
                    "__name__".to_string(),
                    format!("bench_metric_{}", i % NAMES),
                ),
                ("instance".to_string(), format!("i{}", i / NAMES)),
            ]
            .into_iter()
            .collect(),
            samples: vec![(t_ms, (t_ms as f64 + i as f64).to_bits())],
        })
        .collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Waits until the ingester has stored `total` samples.
async fn stored(stats: &IngestStats, total: u64) {
    while stats.samples.load(Ordering::Relaxed) < total {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let client: Arc<dyn MqClient> = Arc::new(Embedded::open(&dir.path().join("mq")).await.unwrap());
    let db = Arc::new(Db::open(dir.path().join("db"), Options::default()).unwrap());
    let publisher = Arc::new(
        Publisher::new(client.clone(), PublishOptions::default())
            .await
            .unwrap(),
    );
    let stats = Arc::new(IngestStats::default());
    let stop = Arc::new(AtomicBool::new(false));
    let ingester = tokio::spawn(run(
        client.clone(),
        db.clone(),
        IngestOptions {
            poll_ms: 20,
            ..IngestOptions::default()
        },
        stop.clone(),
        stats.clone(),
    ));
    let base_ms = i64::try_from(clock::now_ms()).unwrap() - 3_600_000;
    let mut t_ms = base_ms;

    // 1. Throughput, and the same batches straight into a database.
    let direct_db = Db::open(dir.path().join("direct"), Options::default()).unwrap();
    let (mut piped, mut direct) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        let scrapes: Vec<Vec<WireSeries>> = (0..SCRAPES)
            .map(|_| {
                t_ms += 1000;
                scrape(t_ms)
            })
            .collect();
        let total = stats.samples.load(Ordering::Relaxed) + (SERIES as u64) * (SCRAPES as u64);
        let started = Instant::now();
        for s in scrapes.clone() {
            publisher.publish(s).await.unwrap();
        }
        stored(&stats, total).await;
        let rate = (SERIES as f64 * SCRAPES as f64) / started.elapsed().as_secs_f64();
        let started = Instant::now();
        let db = &direct_db;
        // Every scrape appended, then one wait for the WAL (the ingester
        // also shares one fsync among the records of a poll).
        let mut tickets = Vec::new();
        for s in scrapes {
            let batch = s
                .into_iter()
                .map(|w| {
                    let l = db.labels(w.labels).unwrap();
                    let samples = w
                        .samples
                        .iter()
                        .map(|(t, b)| (*t, f64::from_bits(*b)))
                        .collect();
                    (l, samples)
                })
                .collect();
            tickets.push(db.append(batch).unwrap());
        }
        for t in tickets {
            t.wait().unwrap();
        }
        let direct_rate = (SERIES as f64 * SCRAPES as f64) / started.elapsed().as_secs_f64();
        println!(
            "round {}: pipeline {rate:.0} samples/s, direct append {direct_rate:.0} samples/s",
            round + 1
        );
        piped.push(rate);
        direct.push(direct_rate);
    }
    let (piped, direct) = (median(piped), median(direct));
    println!(
        "\n| path | samples/s (median of {ROUNDS}) | ratio (pipeline / direct) |\n|---|---|---|\n\
         | mqclient (embedded broker) -> ingester -> tsdb, commit after fsync | {piped:.0} | {:.2} |\n\
         | tsdb append, one WAL wait for all, no queue | {direct:.0} | 1 |",
        piped / direct
    );

    // 2. Lag under a 2x burst.
    let steady = piped / 2.0;
    let published = Arc::new(AtomicU64::new(stats.samples.load(Ordering::Relaxed)));
    let scrapes_per_s = steady / SERIES as f64;
    let phases = [
        (scrapes_per_s, 3.0),
        (2.0 * scrapes_per_s, 3.0),
        (scrapes_per_s, 3.0),
    ];
    let p = published.clone();
    let producer = tokio::spawn({
        let publisher = publisher.clone();
        async move {
            for (rate, secs) in phases {
                let started = Instant::now();
                let mut sent = 0.0;
                while started.elapsed().as_secs_f64() < secs {
                    let due = started.elapsed().as_secs_f64() * rate;
                    while sent < due {
                        t_ms += 1000;
                        publisher.publish(scrape(t_ms)).await.unwrap();
                        p.fetch_add(SERIES as u64, Ordering::SeqCst);
                        sent += 1.0;
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        }
    });
    let started = Instant::now();
    let (mut max_lag, mut drained_at) = (0u64, None);
    let burst_end_s = 6.0;
    while !producer.is_finished()
        || stats.samples.load(Ordering::Relaxed) < published.load(Ordering::SeqCst)
    {
        let lag = published
            .load(Ordering::SeqCst)
            .saturating_sub(stats.samples.load(Ordering::Relaxed));
        max_lag = max_lag.max(lag);
        let now_s = started.elapsed().as_secs_f64();
        if now_s > burst_end_s && drained_at.is_none() && lag <= SERIES as u64 {
            drained_at = Some(now_s - burst_end_s);
        }
        if now_s > 60.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "\nburst: steady {steady:.0} samples/s, burst {:.0} samples/s for 3 s; max lag {max_lag} samples \
         ({:.2} s of steady load); back under one scrape ({SERIES} samples) {} after the burst ended",
        2.0 * steady,
        max_lag as f64 / steady,
        drained_at.map_or("never (within 60 s)".to_string(), |s| format!("{s:.2} s"))
    );
    stop.store(true, Ordering::SeqCst);
    ingester.await.unwrap().unwrap();
}
