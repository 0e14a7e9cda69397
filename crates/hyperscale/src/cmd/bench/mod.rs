//! `hyperscale bench <system>`: the built-in load generators, one module each.

pub mod crawler;
pub mod hotel;
pub mod kv;
pub mod lsm;
pub mod metrics;
pub mod mq;
pub mod s3;

/// Arguments of `hyperscale bench`.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    target: Target,
}

#[derive(clap::Subcommand)]
enum Target {
    /// The LSM storage engine, in process (db_bench's classic workloads).
    Lsm(lsm::Args),
    /// A RESP server: ours or any Redis.
    Kv(kv::Args),
    /// A message queue: our broker or any Kafka (NATS JetStream with `--features nats-bench`).
    Mq(mq::Args),
    /// An S3 endpoint: ours, Garage, MinIO or AWS (SigV4, path-style).
    S3(s3::Args),
    /// A metrics server: ours or any Prometheus (remote write, PromQL).
    Metrics(metrics::Args),
    /// Hotel bookings per concurrency mode, at low and high contention.
    Hotel(hotel::Args),
    /// The web crawler against Scrapy on the synthetic test web, and its flat RSS.
    Crawler(crawler::Args),
}

/// Runs the chosen benchmark.
pub fn run(args: Args) -> anyhow::Result<()> {
    match args.target {
        Target::Lsm(args) => lsm::run(args),
        Target::Kv(args) => kv::run(args),
        Target::Mq(args) => mq::run(args),
        Target::S3(args) => s3::run(args),
        Target::Metrics(args) => metrics::run(args),
        Target::Hotel(args) => hotel::run(args),
        Target::Crawler(args) => crawler::run(args),
    }
}
