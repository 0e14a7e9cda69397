//! The NATS JetStream side of `hyperscale bench mq` (built with
//! `--features nats-bench`), the same shape as the Kafka side so the two
//! compare: a file-storage stream (JetStream's durable kind) with one
//! subject; each producer publishes a batch's records without waiting, then
//! keeps up to `--in-flight` batches of acknowledgements outstanding (NATS
//! has no multi-record publish: its "batch" is pipelined publishes); the
//! consumers share one pull consumer (no acks, starting at new messages),
//! which hands each record to one of them, as partitions do in Kafka.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use async_nats::jetstream::{self, consumer, stream};
use bytes::Bytes;
use futures::StreamExt;
use tokio::task::JoinHandle;

use super::{AckLatencies, Args, E2eLatencies, Outcome, Pacer, Plan, Shared, join};

/// The pull consumer the bench's consumers share.
const CONSUMER: &str = "bench";

/// Creates the stream (file storage) and the shared consumer, runs
/// consumers then producers, deletes a stream it created.
pub(super) async fn run(
    args: &Args,
    plans: Vec<Plan>,
    shared: Arc<Shared>,
) -> anyhow::Result<Outcome> {
    let (topic, fresh) = super::topic(args);
    // Stream names cannot hold dots; the subject is the topic.
    let name = topic.replace(['.', ' ', '*', '>'], "_");
    let client = async_nats::connect(&args.nats_url)
        .await
        .with_context(|| format!("cannot connect to NATS at {}", args.nats_url))?;
    let js = jetstream::new(client);
    let stream = js
        .get_or_create_stream(stream::Config {
            name: name.clone(),
            subjects: vec![topic.clone()],
            storage: stream::StorageType::File,
            ..Default::default()
        })
        .await
        .map_err(|err| anyhow!("cannot create stream {name}: {err}"))?;
    let _ = stream.delete_consumer(CONSUMER).await;
    stream
        .create_consumer(consumer::pull::Config {
            durable_name: Some(CONSUMER.to_string()),
            deliver_policy: consumer::DeliverPolicy::New,
            ack_policy: consumer::AckPolicy::None,
            ..Default::default()
        })
        .await
        .map_err(|err| anyhow!("cannot create consumer {CONSUMER}: {err}"))?;
    let mut consumers = Vec::new();
    for _ in 0..args.consumers {
        let pull: consumer::PullConsumer = stream
            .get_consumer(CONSUMER)
            .await
            .map_err(|err| anyhow!("consumer {CONSUMER}: {err}"))?;
        consumers.push(tokio::spawn(consume(pull, shared.clone())));
    }
    let started = Instant::now();
    let mut producers: Vec<JoinHandle<anyhow::Result<AckLatencies>>> = Vec::new();
    for plan in plans {
        let client = async_nats::connect(&args.nats_url).await?;
        let producer = produce(
            jetstream::new(client),
            topic.clone(),
            plan,
            args.in_flight,
            shared.clone(),
        );
        producers.push(tokio::spawn(producer));
    }
    let outcome = join(&shared, started, producers, consumers).await;
    if fresh {
        let _ = js.delete_stream(&name).await;
    }
    outcome
}

/// Acknowledgements of one batch, and when it was sent.
type Batch = (Instant, Vec<jetstream::context::PublishAckFuture>);

async fn produce(
    js: jetstream::Context,
    subject: String,
    plan: Plan,
    in_flight: usize,
    shared: Arc<Shared>,
) -> anyhow::Result<AckLatencies> {
    let record_size = plan.record_size;
    let mut pacer = Pacer::new(plan);
    let mut values = Vec::new();
    let mut waiting: VecDeque<Batch> = VecDeque::new();
    let mut latencies = Vec::new();
    loop {
        let count = pacer.next_batch(&mut values).await;
        if count == 0 {
            break;
        }
        while waiting.len() >= in_flight {
            if let Some(batch) = waiting.pop_front() {
                latencies.push(settle(batch, &shared).await?);
            }
        }
        let sent = Instant::now();
        let mut acks = Vec::with_capacity(count);
        for value in values.chunks(record_size) {
            let ack = js
                .publish(subject.clone(), Bytes::copy_from_slice(value))
                .await
                .map_err(|err| anyhow!("publish: {err}"))?;
            acks.push(ack);
        }
        waiting.push_back((sent, acks));
    }
    while let Some(batch) = waiting.pop_front() {
        latencies.push(settle(batch, &shared).await?);
    }
    Ok(latencies)
}

/// Waits for a batch's acknowledgements; returns its latency in µs.
async fn settle((sent, acks): Batch, shared: &Shared) -> anyhow::Result<u32> {
    let count = acks.len() as u64;
    for ack in acks {
        ack.await
            .map_err(|err| anyhow!("publish acknowledgement: {err}"))?;
    }
    shared.produced.fetch_add(count, Ordering::Relaxed);
    Ok(sent.elapsed().as_micros().min(u128::from(u32::MAX)) as u32)
}

async fn consume(
    pull: consumer::PullConsumer,
    shared: Arc<Shared>,
) -> anyhow::Result<(E2eLatencies, Instant)> {
    let mut messages = pull
        .stream()
        .max_messages_per_batch(1000)
        .heartbeat(Duration::from_secs(1))
        .expires(Duration::from_secs(2))
        .messages()
        .await
        .map_err(|err| anyhow!("pull: {err}"))?;
    let mut latencies = Vec::new();
    let mut last = Instant::now();
    while !shared.consumers_may_stop(last) {
        match tokio::time::timeout(Duration::from_millis(100), messages.next()).await {
            Err(_) => continue,
            Ok(None) => break,
            Ok(Some(message)) => {
                let message = message.map_err(|err| anyhow!("pull: {err}"))?;
                if let Some(latency) = super::latency_us(&message.payload, super::now_us()) {
                    latencies.push(latency);
                }
                shared.consumed.fetch_add(1, Ordering::Relaxed);
                last = Instant::now();
            }
        }
    }
    Ok((latencies, last))
}
