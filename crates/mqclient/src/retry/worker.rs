//! The retry worker: consumes `<topic>.retry` in its own group, waits out
//! each record's not-before time and re-produces it to `<topic>` (or to
//! `<topic>.dlq` when its attempts are used up), committing only what it
//! moved. See the module doc of [`crate::retry`] for the pattern.
//!
//! Waiting never holds a record uncommitted past a crash or blocks the
//! group: a record not yet due is left in place (the worker seeks back to
//! it, so neither it nor anything after it in its partition is committed)
//! and the worker sleeps at most a second before polling again, which
//! keeps its membership alive. A partition of `<topic>.retry` is in
//! due-time order (one fixed delay), so its first record not due means no
//! later one is either.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::{
    ATTEMPT_HEADER, ERROR_HEADER, NOT_BEFORE_HEADER, Policy, attempts, carry, dlq_topic,
    retry_topic,
};
use crate::{ConsumerConfig, Error, Message, MqClient, Record, Result};

/// How long one poll waits for records.
const POLL_WAIT: Duration = Duration::from_millis(500);
/// Longest sleep between polls while a record is not yet due.
const NAP_MAX: Duration = Duration::from_secs(1);
/// Pause after the broker was unreachable, before trying again.
const BACKOFF: Duration = Duration::from_secs(1);

/// What a [`Worker`] serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerConfig {
    /// The topic whose retry topic is served (records go back to it).
    pub topic: String,
    /// The worker's consumer group (several workers share the partitions).
    pub group: String,
    /// The policy: attempts before the dead-letter topic, delay before a retry.
    pub policy: Policy,
    /// Partitions of `<topic>.retry` and `<topic>.dlq` if they must be created.
    pub partitions: i32,
    /// Stop after this long without any record (None: run until stopped).
    pub idle_timeout: Option<Duration>,
}

/// What a worker moved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Records re-delivered to the topic.
    pub redelivered: u64,
    /// Records sent to the dead-letter topic.
    pub dead: u64,
}

/// What to do with a record of the retry topic now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Due: re-produce it to the topic.
    Redeliver(Record),
    /// Out of attempts: produce it to the dead-letter topic.
    Dead(Record),
    /// Not due before this time (ms since 1970).
    Wait(u64),
}

/// The decision for a retry-topic record at `now_ms` (pure). A record
/// without retry headers counts as failed once; its due time is
/// `delay_ms` after its timestamp, and a not-before header is believed only
/// up to that (a wrong header cannot park a partition).
pub fn decide(message: &Message, policy: &Policy, now_ms: u64) -> Decision {
    let attempt = attempts(message).max(1);
    if attempt >= policy.max_attempts {
        let mut set = vec![(ATTEMPT_HEADER, attempt.to_string())];
        if message.header(ERROR_HEADER).is_none() {
            set.push((ERROR_HEADER, format!("gave up after {attempt} attempt(s)")));
        }
        return Decision::Dead(carry(message, &set, &[NOT_BEFORE_HEADER]));
    }
    let latest = u64::try_from(message.timestamp_ms)
        .unwrap_or(0)
        .saturating_add(policy.delay_ms);
    let not_before = message
        .header(NOT_BEFORE_HEADER)
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|v| v.parse::<u64>().ok())
        .map_or(latest, |at| at.min(latest));
    if now_ms < not_before {
        return Decision::Wait(not_before);
    }
    Decision::Redeliver(carry(
        message,
        &[(ATTEMPT_HEADER, attempt.to_string())],
        &[NOT_BEFORE_HEADER],
    ))
}

/// The retry worker (`hyperscale mq retry`).
pub struct Worker {
    client: Arc<dyn MqClient>,
    config: WorkerConfig,
}

impl Worker {
    /// A worker producing and consuming through `client`.
    pub fn new(client: Arc<dyn MqClient>, config: WorkerConfig) -> Worker {
        Worker { client, config }
    }

    /// Serves until `stop` is cancelled or the idle timeout passes; returns
    /// what it moved. An unreachable broker or a rebalance is waited out;
    /// bad input or a missing topic ends the run.
    pub async fn run(&self, stop: CancellationToken) -> Result<Stats> {
        let topic = &self.config.topic;
        crate::validate::topic(topic)?;
        let retry = retry_topic(topic);
        let partitions = self.config.partitions;
        self.client.ensure_topic(&retry, partitions).await?;
        self.client
            .ensure_topic(&dlq_topic(topic), partitions)
            .await?;
        let mut consumer = self
            .client
            .subscribe(ConsumerConfig::group(&self.config.group, &[&retry]))
            .await?;
        let mut stats = Stats::default();
        let mut active = Instant::now();
        let outcome = loop {
            if stop.is_cancelled() {
                break Ok(());
            }
            let nap = match self.step(consumer.as_mut(), &mut stats).await {
                Ok(Step { moved, nap }) => {
                    if moved || nap.is_some() {
                        active = Instant::now();
                    }
                    nap
                }
                // The broker is away, or the group moved on (a commit
                // refused mid-rebalance): the consumer rejoins on the next
                // poll and what was not committed comes again.
                Err(err @ (Error::Unavailable(_) | Error::Broker { .. })) => {
                    tracing::warn!(topic = %retry, error = %err, "retry worker: trying again");
                    Some(BACKOFF)
                }
                Err(err) => break Err(err),
            };
            if self
                .config
                .idle_timeout
                .is_some_and(|t| active.elapsed() >= t)
            {
                break Ok(());
            }
            if let Some(nap) = nap {
                tokio::select! {
                    () = stop.cancelled() => {}
                    () = tokio::time::sleep(nap) => {}
                }
            }
        };
        let left = consumer.close().await;
        outcome?;
        left?;
        Ok(stats)
    }

    /// One poll: moves what is due, seeks back to what is not, commits.
    async fn step(&self, consumer: &mut dyn crate::Consumer, stats: &mut Stats) -> Result<Step> {
        let messages = consumer.poll(POLL_WAIT).await?;
        let now_ms = clock::now_ms();
        let mut waiting: BTreeSet<(String, i32)> = BTreeSet::new();
        let mut wake_ms = u64::MAX;
        let (mut onward, mut dead) = (Vec::new(), Vec::new());
        for m in &messages {
            let tp = (m.topic.clone(), m.partition);
            if waiting.contains(&tp) {
                continue;
            }
            match decide(m, &self.config.policy, now_ms) {
                Decision::Redeliver(record) => onward.push(record),
                Decision::Dead(record) => dead.push(record),
                Decision::Wait(at) => {
                    consumer.seek(&m.topic, m.partition, m.offset)?;
                    waiting.insert(tp);
                    wake_ms = wake_ms.min(at);
                }
            }
        }
        let moved = !onward.is_empty() || !dead.is_empty();
        // Produce first, commit after: a crash in between re-delivers
        // (at-least-once), never loses.
        if !onward.is_empty() {
            let n = onward.len() as u64;
            self.client
                .produce_batch(&self.config.topic, onward)
                .await?;
            stats.redelivered += n;
        }
        if !dead.is_empty() {
            let n = dead.len() as u64;
            self.client
                .produce_batch(&dlq_topic(&self.config.topic), dead)
                .await?;
            stats.dead += n;
        }
        if !messages.is_empty() {
            consumer.commit().await?;
        }
        let nap = (!waiting.is_empty())
            .then(|| Duration::from_millis(wake_ms.saturating_sub(now_ms)).min(NAP_MAX));
        Ok(Step { moved, nap })
    }
}

/// What one [`Worker::step`] did.
struct Step {
    /// Something went onward.
    moved: bool,
    /// Something is not due yet: sleep this long before the next poll.
    nap: Option<Duration>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn retried(headers: &[(&str, &str)], timestamp_ms: i64) -> Message {
        Message {
            topic: "t.retry".into(),
            partition: 0,
            offset: 3,
            timestamp_ms,
            key: Some(b"k".to_vec()),
            value: Some(b"v".to_vec()),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), Some(v.as_bytes().to_vec())))
                .collect(),
        }
    }

    const POLICY: Policy = Policy {
        max_attempts: 3,
        delay_ms: 100,
    };

    #[test]
    fn a_record_waits_for_its_due_time_then_goes_back_without_it() {
        let m = retried(&[(ATTEMPT_HEADER, "1"), (NOT_BEFORE_HEADER, "1050")], 1_000);
        assert_eq!(decide(&m, &POLICY, 1_049), Decision::Wait(1050));
        let Decision::Redeliver(record) = decide(&m, &POLICY, 1_050) else {
            panic!("due at 1050");
        };
        assert_eq!(record.key.as_deref(), Some(&b"k"[..]));
        assert!(record.headers.iter().all(|(k, _)| k != NOT_BEFORE_HEADER));
        assert!(
            record
                .headers
                .iter()
                .any(|(k, v)| k == ATTEMPT_HEADER && v.as_deref() == Some(&b"1"[..]))
        );
    }

    #[test]
    fn foreign_records_count_one_attempt_and_absurd_due_times_are_capped() {
        assert_eq!(
            decide(&retried(&[], 1_000), &POLICY, 1_000),
            Decision::Wait(1_100)
        );
        let far = retried(&[(NOT_BEFORE_HEADER, "99999999999999")], 1_000);
        assert_eq!(decide(&far, &POLICY, 1_000), Decision::Wait(1_100));
        assert!(matches!(
            decide(&far, &POLICY, 1_100),
            Decision::Redeliver(_)
        ));
    }

    #[test]
    fn records_out_of_attempts_are_dead_letters_with_a_reason() {
        let Decision::Dead(record) = decide(&retried(&[(ATTEMPT_HEADER, "3")], 0), &POLICY, 0)
        else {
            panic!("3 of 3 attempts used");
        };
        let error = record.headers.iter().find(|(k, _)| k == ERROR_HEADER);
        assert!(error.is_some(), "{:?}", record.headers);
    }
}
