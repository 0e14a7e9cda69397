//! `hyperscale metrics collect` and `hyperscale metrics ingest`: the
//! queue-backed pipeline of the chapter. Collectors scrape the targets of a
//! `prometheus.yml` and publish the samples to the `metrics` topic of a
//! Kafka-protocol broker (`hyperscale mq serve`, or Kafka itself); ingesters
//! consume them into the time-series database and commit only once the
//! samples are durable, so a database outage loses nothing.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use alerting::pipeline::codec::WireSeries;
use alerting::pipeline::ingest::{IngestOptions, IngestStats};
use alerting::pipeline::publish::{PublishOptions, Publisher};
use anyhow::Context;
use mqclient::{ClientOptions, Kafka, MqClient};

use crate::output::emit;

/// Flags of `collect`.
#[derive(clap::Args)]
pub struct CollectArgs {
    /// The `prometheus.yml` whose `scrape_configs` are scraped.
    #[arg(long)]
    scrape_config: PathBuf,
    /// Bootstrap address of the broker (`hyperscale mq serve`, or Kafka).
    #[arg(long, default_value = "127.0.0.1:9092")]
    mq_bootstrap: String,
    /// Label names whose values key the partition [default: the metric name].
    #[arg(long, value_delimiter = ',')]
    partition_by: Vec<String>,
    /// Metric names (regex, anchored) published to the priority topic.
    #[arg(long)]
    important: Option<String>,
    /// Partitions of the topics when they are created.
    #[arg(long, default_value_t = 4)]
    partitions: i32,
    /// Scratch directory (label checks use the database's limits).
    #[arg(long, default_value = "./data/collect")]
    data_dir: PathBuf,
    /// This collector's number, `0..collectors` (consistent-hash ring).
    #[arg(long, default_value_t = 0)]
    collector_id: usize,
    /// How many collectors share the targets.
    #[arg(long, default_value_t = 1)]
    collectors: usize,
}

/// Flags of `ingest`.
#[derive(clap::Args)]
pub struct IngestArgs {
    /// Directory of the database written to (the one `metrics serve` reads,
    /// when it is not running; or its own).
    #[arg(long, default_value = "./data/metrics")]
    data_dir: PathBuf,
    /// Bootstrap address of the broker.
    #[arg(long, default_value = "127.0.0.1:9092")]
    mq_bootstrap: String,
    /// Consumer group of the ingesters (they share the partitions).
    #[arg(long, default_value = "ingest")]
    group: String,
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Runtime::new().context("cannot start the async runtime")
}

/// Runs `collect`.
pub fn collect(a: CollectArgs) -> anyhow::Result<()> {
    let config = tsdb::scrape::Config::load(&a.scrape_config)?;
    let sharding = tsdb::scrape::Sharding::new(a.collector_id, a.collectors)?;
    service::net::prepare_data_dir(&a.data_dir)?;
    let scratch = Arc::new(
        tsdb::Db::open(&a.data_dir, tsdb::Options::default())
            .context("cannot open the scratch directory")?,
    );
    let important = match &a.important {
        Some(re) => Some(
            regex::Regex::new(&format!("^(?:{re})$"))
                .context("--important is not a valid regex")?,
        ),
        None => None,
    };
    runtime()?.block_on(async move {
        let client: Arc<dyn MqClient> = Arc::new(
            Kafka::connect(&a.mq_bootstrap, ClientOptions::default())
                .await
                .with_context(|| format!("cannot reach the broker at {}", a.mq_bootstrap))?,
        );
        let opts = PublishOptions {
            partition_by: a.partition_by,
            important,
            partitions: a.partitions,
            ..Default::default()
        };
        let publisher = Arc::new(
            Publisher::new(client, opts)
                .await
                .context("cannot create the metrics topics")?,
        );
        let targets: Vec<_> = config
            .targets()?
            .into_iter()
            .filter(|t| sharding.owns(t))
            .collect();
        emit(&format!(
            "collecting {} targets into {} (topics {}, {})\n",
            targets.len(),
            a.mq_bootstrap,
            alerting::pipeline::TOPIC,
            alerting::pipeline::PRIORITY_TOPIC
        ))?;
        let http = reqwest::Client::new();
        let mut tasks = Vec::new();
        for t in targets {
            let job = config.jobs[t.job].clone();
            let (http, scratch, publisher) = (http.clone(), scratch.clone(), publisher.clone());
            tasks.push(tokio::spawn(async move {
                let mut state = tsdb::scrape::target::State::default();
                let mut tick = tokio::time::interval(job.interval);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
                loop {
                    tick.tick().await;
                    let t_ms = i64::try_from(clock::now_ms()).unwrap_or(i64::MAX);
                    let started = Instant::now();
                    let result = tsdb::scrape::target::scrape(&http, &job, &t).await;
                    let batch = state.batch(&scratch, &job, &t, t_ms, started.elapsed(), result);
                    let wire: Vec<WireSeries> = batch
                        .into_iter()
                        .map(|(l, s)| WireSeries {
                            labels: l
                                .iter()
                                .map(|x| (x.name.clone(), x.value.clone()))
                                .collect(),
                            samples: s.into_iter().map(|(t, v)| (t, v.to_bits())).collect(),
                        })
                        .collect();
                    // At-least-once: a failed publish is retried with the next scrape's batch lost
                    // only if the broker stays down a whole interval (logged).
                    if let Err(e) = publisher.publish(wire).await {
                        tracing::warn!(url = %t.url, error = %e, "cannot publish samples");
                    }
                }
            }));
        }
        tokio::signal::ctrl_c()
            .await
            .context("cannot wait for Ctrl-C")?;
        for t in tasks {
            t.abort();
        }
        Ok(())
    })
}

/// Runs `ingest`.
pub fn ingest(a: IngestArgs) -> anyhow::Result<()> {
    service::net::prepare_data_dir(&a.data_dir)?;
    let db = Arc::new(
        tsdb::Db::open(&a.data_dir, tsdb::Options::default())
            .with_context(|| format!("cannot open the database in {}", a.data_dir.display()))?,
    );
    runtime()?.block_on(async move {
        let client: Arc<dyn MqClient> = Arc::new(
            Kafka::connect(&a.mq_bootstrap, ClientOptions::default())
                .await
                .with_context(|| format!("cannot reach the broker at {}", a.mq_bootstrap))?,
        );
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(IngestStats::default());
        let s = stop.clone();
        tokio::spawn(async move {
            let _ = tokio::signal::ctrl_c().await;
            s.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        emit(&format!(
            "ingesting from {} into {}\n",
            a.mq_bootstrap,
            a.data_dir.display()
        ))?;
        let opts = IngestOptions {
            group: a.group,
            ..Default::default()
        };
        alerting::pipeline::ingest::run(client, db, opts, stop, stats.clone())
            .await
            .map_err(anyhow::Error::msg)?;
        tokio::time::sleep(Duration::from_millis(10)).await;
        emit(&format!(
            "ingested {} samples\n",
            stats.samples.load(std::sync::atomic::Ordering::SeqCst)
        ))
    })
}
