//! `hyperscale bench mq`: a message-queue load generator, for our broker or
//! any Kafka (and, built with `--features nats-bench`, NATS JetStream).
//!
//! `--producers` tasks send `--records` records of `--record-size` bytes in
//! batches of `--batch-size` records, each producer keeping up to
//! `--in-flight` batches unanswered on its connection (Kafka's
//! `max.in.flight.requests.per.connection`), with `--acks` and
//! `--compression`. `--consumers` tasks read the same records as they
//! arrive (Kafka: the topic's partitions split between them; JetStream:
//! one shared pull consumer). Every record's value starts with the
//! microsecond it was made (same machine, same clock), so each consumer
//! measures end-to-end latency, produce to receive. Without `--rate`
//! producers go as fast as the broker acknowledges; with `--rate R` they
//! make R records a second in all, sending what is due every `--linger-ms`
//! (Kafka's `linger.ms`), and a record's time is when it was due: the
//! latency at a fixed rate the issue asks for, batching wait included.
//!
//! Reports: records/s and MB/s (payload bytes, 10^6) of producing and of
//! consuming, batch acknowledgement latency and end-to-end latency
//! p50/p99/p99.9, as a table or `--json`; progress goes to stderr. Keep the
//! load generator on other cores than the broker (`taskset`), as
//! `bench/compare-mq.sh` does.

mod kafka;
#[cfg(feature = "nats-bench")]
mod nats;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;

use crate::output::{emit, emit_json, note};
use crate::table;

/// Arguments of `hyperscale bench mq`.
#[derive(clap::Args, Clone)]
pub struct Args {
    /// What to drive: a Kafka-protocol broker (ours or Kafka) or NATS JetStream.
    #[arg(long, value_enum, default_value_t = System::Kafka)]
    system: System,
    /// Kafka bootstrap address.
    #[arg(long, default_value = "127.0.0.1:9092")]
    bootstrap: String,
    /// NATS server URL (with --system nats).
    #[arg(long, default_value = "nats://127.0.0.1:4222")]
    nats_url: String,
    /// Topic (JetStream: stream and subject) to use; created if absent
    /// [default: a fresh `bench-...` one, deleted at the end].
    #[arg(long)]
    topic: Option<String>,
    /// Partitions of a topic the bench creates.
    #[arg(long, default_value_t = 1)]
    partitions: i32,
    /// Concurrent producers (one connection each).
    #[arg(long, default_value_t = 1)]
    producers: usize,
    /// Concurrent consumers (0: produce only).
    #[arg(long, default_value_t = 1)]
    consumers: usize,
    /// Records to produce in all.
    #[arg(long, default_value_t = 1_000_000)]
    records: u64,
    /// Bytes per record value (the first 8 carry its timestamp).
    #[arg(long, default_value_t = 100)]
    record_size: usize,
    /// Records per batch (one Produce request; JetStream: publishes per ack wait).
    #[arg(long, default_value_t = 1000)]
    batch_size: usize,
    /// Batches a producer may have unacknowledged.
    #[arg(long, default_value_t = 5)]
    in_flight: usize,
    /// Acknowledgements: 0, 1 or all (Kafka only).
    #[arg(long, default_value = "1")]
    acks: String,
    /// Batch compression (Kafka only).
    #[arg(long, value_enum, default_value_t = Codec::None)]
    compression: Codec,
    /// Records per second over all producers (0: as fast as possible).
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// With --rate, how often a producer sends what is due.
    #[arg(long, default_value_t = 5)]
    linger_ms: u64,
    /// Give up waiting for consumers after this many seconds without progress.
    #[arg(long, default_value_t = 10)]
    idle_timeout_secs: u64,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

/// The system under test.
#[derive(clap::ValueEnum, Clone, Copy, PartialEq, Eq, Debug, serde::Serialize)]
#[serde(rename_all = "lowercase")]
enum System {
    /// Any Kafka-protocol broker: `hyperscale mq serve`, Kafka, Redpanda.
    Kafka,
    /// NATS JetStream (needs a binary built with `--features nats-bench`).
    Nats,
}

/// Record batch compression.
#[derive(clap::ValueEnum, Clone, Copy, PartialEq, Eq, Debug, serde::Serialize)]
#[serde(rename_all = "lowercase")]
enum Codec {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

/// What one run measured.
#[derive(serde::Serialize, Debug)]
struct Report {
    system: System,
    producers: usize,
    consumers: usize,
    record_size: usize,
    batch_size: usize,
    acks: String,
    compression: Codec,
    /// Records per second asked for (0: unlimited).
    rate: u64,
    produced: u64,
    produce_seconds: f64,
    produce_records_per_sec: f64,
    produce_mb_per_sec: f64,
    /// Send to acknowledgement of a batch (absent with acks=0).
    ack_p50_ms: f64,
    ack_p99_ms: f64,
    consumed: u64,
    consume_seconds: f64,
    consume_records_per_sec: f64,
    consume_mb_per_sec: f64,
    /// Record made to record received by a consumer.
    e2e_p50_ms: f64,
    e2e_p99_ms: f64,
    e2e_p999_ms: f64,
}

/// What producers and consumers share: counters for progress and the end.
pub(crate) struct Shared {
    /// Records acknowledged (or written, with acks=0).
    produced: AtomicU64,
    /// Records received by consumers.
    consumed: AtomicU64,
    /// Set when every producer finished.
    producers_done: AtomicBool,
    /// Records consumers wait for.
    expected: u64,
    /// Consumers stop after this long without a record once producers are done.
    idle_timeout: Duration,
}

impl Shared {
    /// Whether consumers may stop: all records seen, or the producers are
    /// done and the idle timeout passed since `last_record`.
    fn consumers_may_stop(&self, last_record: Instant) -> bool {
        self.consumed.load(Ordering::Relaxed) >= self.expected
            || (self.producers_done.load(Ordering::Relaxed)
                && last_record.elapsed() >= self.idle_timeout)
    }
}

/// What one producer does: how many records, at which pace, what they hold.
#[derive(Clone)]
pub(crate) struct Plan {
    records: u64,
    record_size: usize,
    batch_size: usize,
    /// Records per second of this producer (None: unlimited).
    rate: Option<f64>,
    linger: Duration,
    /// Filler bytes for a value (random letters, as Kafka's perf test).
    filler: Arc<Vec<u8>>,
}

/// A producer's position in its plan: hands out the next batch's record
/// count and timestamps, sleeping when `--rate` says nothing is due yet.
pub(crate) struct Pacer {
    plan: Plan,
    sent: u64,
    started: Instant,
    started_us: u64,
}

impl Pacer {
    pub(crate) fn new(plan: Plan) -> Pacer {
        Pacer {
            plan,
            sent: 0,
            started: Instant::now(),
            started_us: now_us(),
        }
    }

    /// Fills `values` with the next batch (each record `record_size` bytes,
    /// stamped) and returns how many records it holds; 0 when done.
    pub(crate) async fn next_batch(&mut self, values: &mut Vec<u8>) -> usize {
        let left = self.plan.records - self.sent;
        if left == 0 {
            return 0;
        }
        let count = match self.plan.rate {
            None => left.min(self.plan.batch_size as u64),
            Some(rate) => loop {
                let due = (self.started.elapsed().as_secs_f64() * rate) as u64;
                let due = due.min(self.plan.records) - self.sent;
                if due > 0 {
                    break due.min(self.plan.batch_size as u64);
                }
                tokio::time::sleep(self.plan.linger).await;
            },
        } as usize;
        let size = self.plan.record_size;
        values.clear();
        // As fast as possible, a batch's records are made at one instant: one clock read.
        let now = now_us();
        for i in 0..count as u64 {
            let stamp = match self.plan.rate {
                None => now,
                Some(rate) => self.started_us + ((self.sent + i) as f64 * 1e6 / rate) as u64,
            };
            let start = values.len();
            values.extend_from_slice(&self.plan.filler[..size]);
            if size >= 8 {
                values[start..start + 8].copy_from_slice(&stamp.to_be_bytes());
            }
        }
        self.sent += count as u64;
        count
    }
}

/// Microseconds since 1970 (the stamp in every record).
fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// The end-to-end latency of a received value in µs, if it carries a stamp.
pub(crate) fn latency_us(value: &[u8], now_us: u64) -> Option<u32> {
    let stamp = u64::from_be_bytes(value.get(..8)?.try_into().ok()?);
    Some(now_us.saturating_sub(stamp).min(u64::from(u32::MAX)) as u32)
}

/// What a producer hands back: its batch acknowledgement latencies (µs).
pub(crate) type AckLatencies = Vec<u32>;
/// What a consumer hands back: its end-to-end latencies (µs), one per record.
pub(crate) type E2eLatencies = Vec<u32>;

/// Runs the benchmark.
pub fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.producers >= 1 && args.batch_size >= 1 && args.in_flight >= 1,
        "--producers, --batch-size and --in-flight must be at least 1"
    );
    anyhow::ensure!(args.partitions >= 1, "--partitions must be at least 1");
    anyhow::ensure!(
        args.record_size <= 1 << 20,
        "--record-size is at most 1 MiB"
    );
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let report = runtime.block_on(bench(&args))?;
    if args.json {
        emit_json(&report)?;
    } else {
        emit(&table::render(&rows(&report)))?;
    }
    anyhow::ensure!(
        args.consumers == 0 || report.consumed >= report.produced,
        "consumers received {} of {} records",
        report.consumed,
        report.produced
    );
    Ok(())
}

fn rows(r: &Report) -> Vec<[String; 2]> {
    [
        ("system", format!("{:?}", r.system).to_lowercase()),
        ("produced", r.produced.to_string()),
        (
            "produce records/s",
            format!("{:.0}", r.produce_records_per_sec),
        ),
        ("produce MB/s", format!("{:.1}", r.produce_mb_per_sec)),
        ("ack p50", format!("{:.3} ms", r.ack_p50_ms)),
        ("ack p99", format!("{:.3} ms", r.ack_p99_ms)),
        ("consumed", r.consumed.to_string()),
        (
            "consume records/s",
            format!("{:.0}", r.consume_records_per_sec),
        ),
        ("consume MB/s", format!("{:.1}", r.consume_mb_per_sec)),
        ("end-to-end p50", format!("{:.3} ms", r.e2e_p50_ms)),
        ("end-to-end p99", format!("{:.3} ms", r.e2e_p99_ms)),
        ("end-to-end p99.9", format!("{:.3} ms", r.e2e_p999_ms)),
    ]
    .into_iter()
    .map(|(name, value)| [name.to_owned(), value])
    .collect()
}

/// The percentile `p` of sorted µs latencies, in ms.
fn percentile_ms(sorted_us: &[u32], p: f64) -> f64 {
    clock::latency::percentile(sorted_us, p).map_or(0.0, |us| f64::from(us) / 1000.0)
}

/// Splits `total` into `parts` counts that differ by at most one.
fn split(total: u64, parts: usize) -> Vec<u64> {
    let (each, extra) = (total / parts as u64, total % parts as u64);
    (0..parts as u64)
        .map(|i| each + u64::from(i < extra))
        .collect()
}

fn plans(args: &Args) -> Vec<Plan> {
    let mut rng = fastrand::Rng::with_seed(7);
    let filler: Arc<Vec<u8>> =
        Arc::new((0..args.record_size).map(|_| rng.u8(b'A'..=b'Z')).collect());
    split(args.records, args.producers)
        .into_iter()
        .map(|records| Plan {
            records,
            record_size: args.record_size,
            batch_size: args.batch_size,
            rate: (args.rate > 0).then(|| args.rate as f64 / args.producers as f64),
            linger: Duration::from_millis(args.linger_ms.max(1)),
            filler: filler.clone(),
        })
        .collect()
}

/// The topic's name: given, or fresh for this run.
fn topic(args: &Args) -> (String, bool) {
    match &args.topic {
        Some(topic) => (topic.clone(), false),
        None => (
            format!("bench-{}-{:08x}", std::process::id(), fastrand::u32(..)),
            true,
        ),
    }
}

async fn bench(args: &Args) -> anyhow::Result<Report> {
    let shared = Arc::new(Shared {
        produced: AtomicU64::new(0),
        consumed: AtomicU64::new(0),
        producers_done: AtomicBool::new(false),
        expected: if args.consumers == 0 { 0 } else { args.records },
        idle_timeout: Duration::from_secs(args.idle_timeout_secs.max(1)),
    });
    let started = Instant::now();
    let progress = tokio::spawn(show_progress(shared.clone(), args.records));
    let outcome = match args.system {
        System::Kafka => kafka::run(args, plans(args), shared.clone()).await,
        #[cfg(feature = "nats-bench")]
        System::Nats => nats::run(args, plans(args), shared.clone()).await,
        #[cfg(not(feature = "nats-bench"))]
        System::Nats => Err(anyhow::anyhow!(
            "this binary has no NATS client: build it with `cargo build --release -p hyperscale --features nats-bench`"
        )),
    };
    progress.abort();
    note_progress(&shared, args.records, started);
    note("\n");
    let mut outcome = outcome?;
    outcome.acks.sort_unstable();
    outcome.e2e.sort_unstable();
    let produced = shared.produced.load(Ordering::Relaxed);
    let consumed = shared.consumed.load(Ordering::Relaxed);
    let mb = |records: u64| (records * args.record_size as u64) as f64 / 1e6;
    let per_sec = |n: f64, seconds: f64| if seconds > 0.0 { n / seconds } else { 0.0 };
    Ok(Report {
        system: args.system,
        producers: args.producers,
        consumers: args.consumers,
        record_size: args.record_size,
        batch_size: args.batch_size,
        acks: args.acks.clone(),
        compression: args.compression,
        rate: args.rate,
        produced,
        produce_seconds: outcome.produce_seconds,
        produce_records_per_sec: per_sec(produced as f64, outcome.produce_seconds),
        produce_mb_per_sec: per_sec(mb(produced), outcome.produce_seconds),
        ack_p50_ms: percentile_ms(&outcome.acks, 0.50),
        ack_p99_ms: percentile_ms(&outcome.acks, 0.99),
        consumed,
        consume_seconds: outcome.consume_seconds,
        consume_records_per_sec: per_sec(consumed as f64, outcome.consume_seconds),
        consume_mb_per_sec: per_sec(mb(consumed), outcome.consume_seconds),
        e2e_p50_ms: percentile_ms(&outcome.e2e, 0.50),
        e2e_p99_ms: percentile_ms(&outcome.e2e, 0.99),
        e2e_p999_ms: percentile_ms(&outcome.e2e, 0.999),
    })
}

/// What a driver measured; counts are in [`Shared`].
pub(crate) struct Outcome {
    acks: AckLatencies,
    e2e: E2eLatencies,
    /// From the first send to the last acknowledgement.
    produce_seconds: f64,
    /// From the first send to the last record received.
    consume_seconds: f64,
}

/// Awaits producer and consumer tasks started at `started`, the same way
/// for every driver: producers first (then consumers are told), timing both.
pub(crate) async fn join(
    shared: &Shared,
    started: Instant,
    producers: Vec<tokio::task::JoinHandle<anyhow::Result<AckLatencies>>>,
    consumers: Vec<tokio::task::JoinHandle<anyhow::Result<(E2eLatencies, Instant)>>>,
) -> anyhow::Result<Outcome> {
    let mut acks = Vec::new();
    let mut failure = None;
    for task in producers {
        match task.await.context("a producer task failed") {
            Ok(Ok(lat)) => acks.extend(lat),
            Ok(Err(err)) | Err(err) => failure = failure.or(Some(err)),
        }
    }
    let produce_seconds = started.elapsed().as_secs_f64();
    shared.producers_done.store(true, Ordering::Relaxed);
    let mut e2e = Vec::new();
    let mut last = started;
    for task in consumers {
        match task.await.context("a consumer task failed") {
            Ok(Ok((lat, at))) => {
                e2e.extend(lat);
                last = last.max(at);
            }
            Ok(Err(err)) | Err(err) => failure = failure.or(Some(err)),
        }
    }
    if let Some(err) = failure {
        return Err(err);
    }
    Ok(Outcome {
        acks,
        e2e,
        produce_seconds,
        consume_seconds: last.duration_since(started).as_secs_f64(),
    })
}

async fn show_progress(shared: Arc<Shared>, total: u64) {
    let started = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        note_progress(&shared, total, started);
    }
}

/// One progress line (over the last one) on stderr.
fn note_progress(shared: &Shared, total: u64, started: Instant) {
    let produced = shared.produced.load(Ordering::Relaxed);
    let consumed = shared.consumed.load(Ordering::Relaxed);
    let rate = produced as f64 / started.elapsed().as_secs_f64().max(1e-9);
    note(&format!(
        "\rproduced {produced}/{total} ({:.0}%, {rate:.0} records/s), consumed {consumed}   ",
        100.0 * produced as f64 / total.max(1) as f64
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_split_evenly() {
        assert_eq!(split(10, 3), vec![4, 3, 3]);
        assert_eq!(split(2, 3), vec![1, 1, 0]);
        assert_eq!(split(0, 1), vec![0]);
    }

    #[test]
    fn percentiles_pick_from_sorted_latencies() {
        let us: Vec<u32> = (1..=1000).map(|i| i * 1000).collect();
        assert_eq!(percentile_ms(&us, 0.5), 501.0);
        assert_eq!(percentile_ms(&us, 0.99), 991.0);
        assert_eq!(percentile_ms(&[], 0.99), 0.0);
    }

    #[tokio::test]
    async fn batches_carry_stamps_and_respect_the_plan() {
        let plan = Plan {
            records: 25,
            record_size: 16,
            batch_size: 10,
            rate: None,
            linger: Duration::from_millis(1),
            filler: Arc::new(vec![b'x'; 16]),
        };
        let mut pacer = Pacer::new(plan);
        let mut values = Vec::new();
        let mut counts = Vec::new();
        loop {
            let n = pacer.next_batch(&mut values).await;
            if n == 0 {
                break;
            }
            assert_eq!(values.len(), n * 16);
            let lat = latency_us(&values[..16], now_us()).unwrap();
            assert!(lat < 1_000_000, "{lat}");
            assert_eq!(&values[8..16], b"xxxxxxxx");
            counts.push(n);
        }
        assert_eq!(counts, vec![10, 10, 5]);
    }

    #[tokio::test]
    async fn a_rate_spreads_stamps_over_time() {
        let plan = Plan {
            records: 4,
            record_size: 8,
            batch_size: 100,
            rate: Some(1000.0),
            linger: Duration::from_millis(1),
            filler: Arc::new(vec![0; 8]),
        };
        let mut pacer = Pacer::new(plan);
        let mut values = Vec::new();
        let mut stamps = Vec::new();
        while pacer.next_batch(&mut values).await > 0 {
            for v in values.chunks(8) {
                stamps.push(u64::from_be_bytes(v.try_into().unwrap()));
            }
        }
        assert_eq!(stamps.len(), 4);
        // One record per millisecond: stamps 1000 µs apart.
        assert!(stamps.windows(2).all(|w| w[1] - w[0] == 1000), "{stamps:?}");
    }
}
