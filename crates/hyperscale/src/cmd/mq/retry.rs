//! `hyperscale mq retry` and `hyperscale mq dlq`: the retry-topic pattern
//! of `mqclient::retry` from the shell.
//!
//! `retry` runs the retry worker of one topic until Ctrl-C (or
//! `--timeout-ms` without work): records of `<topic>.retry` go back to
//! `<topic>` once `--delay-ms` has passed, or to `<topic>.dlq` once they
//! have failed `--max-attempts` times, committed in group `--group` so
//! several workers share the partitions and a restart resumes.
//!
//! `dlq` lists `<topic>.dlq`. `consume <topic>.dlq --from-beginning` would
//! print the records, but what an operator needs about a dead letter is in
//! its headers (the last error, the attempt count, where it first failed):
//! `dlq` shows those as columns, reads to the end and stops, and joins no
//! group, so listing moves no offsets.

use std::sync::Arc;
use std::time::Duration;

use anyhow::anyhow;
use mqclient::retry::{self, Policy, Worker, WorkerConfig};
use mqclient::{ClientOptions, Kafka, MqClient};
use service::Shutdown;

use super::tools::{Connect, block_on, row};
use crate::output::{emit, emit_json, note};
use crate::table::render;

/// Longest value shown in `dlq`'s table (the JSON has it whole).
const VALUE_SHOWN_CHARS: usize = 60;

/// Arguments of `hyperscale mq retry`.
#[derive(clap::Args)]
pub struct RetryArgs {
    /// The topic whose `<topic>.retry` is served.
    #[arg(long)]
    topic: String,
    /// The worker's consumer group [default: <topic>.retry-worker].
    #[arg(long)]
    group: Option<String>,
    /// Deliveries a record gets in all; after that many failures it goes to <topic>.dlq.
    #[arg(long, default_value_t = 5)]
    max_attempts: u32,
    /// How long a failed record waits before it is delivered again.
    #[arg(long, default_value_t = 1000)]
    delay_ms: u64,
    /// Partitions of <topic>.retry and <topic>.dlq if they must be created.
    #[arg(long, default_value_t = 1)]
    partitions: i32,
    /// Stop after this long without work (default: run until Ctrl-C).
    #[arg(long)]
    timeout_ms: Option<u64>,
    #[command(flatten)]
    connect: Connect,
}

/// Arguments of `hyperscale mq dlq`.
#[derive(clap::Args)]
pub struct DlqArgs {
    /// The topic whose `<topic>.dlq` is listed.
    #[arg(long)]
    topic: String,
    /// List at most this many.
    #[arg(long, default_value_t = 1000)]
    limit: usize,
    #[command(flatten)]
    connect: Connect,
}

fn client(connect: &Connect) -> Arc<dyn MqClient> {
    Arc::new(Kafka::new(&connect.bootstrap, ClientOptions::default()))
}

/// Runs `hyperscale mq retry`.
pub fn retry(args: RetryArgs) -> anyhow::Result<()> {
    if args.max_attempts == 0 {
        anyhow::bail!("--max-attempts must be at least 1");
    }
    // Checked before the startup note, so a bad name is the only line.
    for name in [args.topic.clone(), retry::retry_topic(&args.topic)] {
        mq::topics::validate_name(&name).map_err(|err| anyhow!("--topic: {}", err.message))?;
    }
    let group = args
        .group
        .clone()
        .unwrap_or_else(|| format!("{}.retry-worker", args.topic));
    let config = WorkerConfig {
        topic: args.topic.clone(),
        group: group.clone(),
        policy: Policy {
            max_attempts: args.max_attempts,
            delay_ms: args.delay_ms,
        },
        partitions: args.partitions,
        idle_timeout: args.timeout_ms.map(Duration::from_millis),
    };
    let worker = Worker::new(client(&args.connect), config);
    note(&format!(
        "retry worker of {topic}: {retry} -> {topic} after {delay} ms, {dlq} after {max} attempt(s) (group {group})\n",
        topic = args.topic,
        retry = retry::retry_topic(&args.topic),
        dlq = retry::dlq_topic(&args.topic),
        delay = args.delay_ms,
        max = args.max_attempts,
    ));
    let stats = block_on(async move {
        let stop = Shutdown::new();
        let on_signal = stop.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                on_signal.cancel();
            }
        });
        worker.run(stop).await.map_err(|err| anyhow!("{err}"))
    })?;
    if args.connect.json {
        emit_json(&serde_json::json!({
            "topic": args.topic, "group": group,
            "redelivered": stats.redelivered, "dead": stats.dead,
        }))
    } else {
        emit(&format!(
            "re-delivered {} record(s) to {}, {} to {}\n",
            stats.redelivered,
            args.topic,
            stats.dead,
            retry::dlq_topic(&args.topic)
        ))
    }
}

fn lossy(bytes: Option<&[u8]>) -> String {
    bytes
        .map(String::from_utf8_lossy)
        .unwrap_or_default()
        .into_owned()
}

/// Runs `hyperscale mq dlq`.
pub fn dlq(args: DlqArgs) -> anyhow::Result<()> {
    let client = client(&args.connect);
    let letters = block_on(async {
        retry::dead_letters(client.as_ref(), &args.topic, args.limit)
            .await
            .map_err(|err| anyhow!("{err}"))
    })?;
    if args.connect.json {
        let listed: Vec<serde_json::Value> = letters
            .iter()
            .map(|l| {
                serde_json::json!({
                    "partition": l.message.partition, "offset": l.message.offset,
                    "timestamp_ms": l.message.timestamp_ms,
                    "key": l.message.key.as_deref().map(|k| lossy(Some(k))),
                    "value": lossy(l.message.value.as_deref()),
                    "attempts": l.attempts, "error": l.error, "origin": l.origin,
                })
            })
            .collect();
        return emit_json(&listed);
    }
    let mut rows = vec![row(&[
        &"PARTITION",
        &"OFFSET",
        &"KEY",
        &"ATTEMPTS",
        &"ORIGIN",
        &"ERROR",
        &"VALUE",
    ])];
    rows.extend(letters.iter().map(|l| {
        let value: String = lossy(l.message.value.as_deref())
            .chars()
            .take(VALUE_SHOWN_CHARS)
            .collect();
        let origin = l.origin.clone().unwrap_or_else(|| "-".into());
        row(&[
            &l.message.partition,
            &l.message.offset,
            &lossy(l.message.key.as_deref()),
            &l.attempts,
            &origin,
            &l.error,
            &value,
        ])
    }));
    emit(&format!(
        "{} dead letter(s) in {}\n{}",
        letters.len(),
        retry::dlq_topic(&args.topic),
        render(&rows)
    ))
}
