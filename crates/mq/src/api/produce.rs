//! Produce: append the producers' record batches, exactly as sent, to the
//! partition logs (the notes: a message format that needs no change from
//! producer to consumer).
//!
//! A partition's records field may hold several v2 batches back to back;
//! [`split_batches`] cuts them by their length fields and the log checks
//! each one (magic, CRC-32C, size) and assigns its offsets. Appends run on a
//! blocking thread, under the fsync policy, before the answer: `acks=1` is
//! answered after the leader's append; `acks=-1` (all) after every in-sync
//! replica holds the batch (the high watermark passed it: on a single
//! broker, at once), and is refused with NOT_ENOUGH_REPLICAS when fewer
//! than `min.insync.replicas` are in sync; `acks=0` gets no answer at all,
//! as the protocol says. A replica that does not lead answers
//! NOT_LEADER_OR_FOLLOWER, so clients refresh their metadata. Batches of
//! idempotent producers go through the sequence checks of `idempotence`.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};

use crate::broker::Broker;
use crate::cluster::isr::enough_replicas;
use crate::log::LogError;
use crate::partition::{Appending, Partition};

/// The longest an `acks=all` produce waits for its replicas, whatever its timeout.
const MAX_ACK_WAIT_MS: u64 = 60_000;

/// Bytes of a batch before and including its length field.
const BATCH_LENGTH_END: usize = 12;

/// Cuts a records field into whole batches; `None` if a length field runs
/// past the end or is negative.
pub fn split_batches(records: &Bytes) -> Option<Vec<Bytes>> {
    let mut batches = Vec::new();
    let mut at = 0;
    while at < records.len() {
        let length_field = records.get(at + 8..at + BATCH_LENGTH_END)?;
        let length = i32::from_be_bytes(length_field.try_into().ok()?);
        let end = at
            .checked_add(BATCH_LENGTH_END)?
            .checked_add(usize::try_from(length).ok()?)?;
        if end > records.len() {
            return None;
        }
        batches.push(records.slice(at..end));
        at = end;
    }
    Some(batches)
}

/// The Kafka error code for a log error on a producer's batch.
pub fn produce_error_code(error: &LogError) -> i16 {
    match error {
        LogError::CrcMismatch | LogError::InvalidBatch(_) => ResponseError::CorruptMessage.code(),
        LogError::BatchTooLarge { .. } => ResponseError::MessageTooLarge.code(),
        _ => ResponseError::KafkaStorageError.code(),
    }
}

struct Outcome {
    error: i16,
    base_offset: i64,
    log_start_offset: i64,
    /// `acks=all` on a replicated partition: wait until the high watermark
    /// passes this last offset, in this leader epoch.
    replicate: Option<(Arc<Partition>, i64, i32)>,
}

impl Outcome {
    fn failed(error: i16, log_start_offset: i64) -> Outcome {
        Outcome {
            error,
            base_offset: -1,
            log_start_offset,
            replicate: None,
        }
    }
}

/// The `min.insync.replicas` of a topic (its config, else the broker's).
pub(crate) fn min_insync(broker: &Broker, topic: &str) -> usize {
    broker
        .topics
        .get(topic)
        .and_then(|t| {
            t.configs
                .get("min.insync.replicas")
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(broker.config.min_insync_replicas)
}

fn append_all(
    broker: &Broker,
    topic: &str,
    partition: i32,
    records: Option<Bytes>,
    acks: i16,
    now_ms: i64,
) -> Outcome {
    let fail = |error: ResponseError| Outcome::failed(error.code(), -1);
    let Some(log) = broker.topics.partition(topic, partition) else {
        return fail(broker.missing_partition(topic, partition));
    };
    let records = records.unwrap_or_default();
    if records.len() > broker.config.message_max_bytes {
        return fail(ResponseError::MessageTooLarge);
    }
    let Some(batches) = split_batches(&records) else {
        return fail(ResponseError::CorruptMessage);
    };
    let Some(epoch) = log.leader_epoch() else {
        return fail(ResponseError::NotLeaderOrFollower);
    };
    // The notes' acks=all with min.insync.replicas: refuse before writing
    // when too few replicas are in sync to make the write durable.
    if acks == -1
        && log.is_replicated()
        && !enough_replicas(log.isr_len(), min_insync(broker, topic))
    {
        return fail(ResponseError::NotEnoughReplicas);
    }
    let mut base_offset = -1;
    let mut last_offset = -1;
    for batch in batches {
        match log.append_blocking(&batch, now_ms) {
            Ok(Appending::Appended(appended)) => {
                if base_offset < 0 {
                    base_offset = appended.base_offset;
                }
                last_offset = appended.last_offset;
                broker.metrics.produce_bytes.inc_by(batch.len() as u64);
            }
            Ok(Appending::Duplicate(offset)) => {
                tracing::debug!(
                    topic,
                    partition,
                    offset,
                    "duplicate batch from an idempotent producer"
                );
                if base_offset < 0 {
                    base_offset = offset;
                }
                last_offset = last_offset.max(offset);
            }
            Ok(Appending::Refused(error)) => {
                return Outcome::failed(error, log.start_offset());
            }
            Err(err) => {
                tracing::debug!(topic, partition, error = %err, "produce refused");
                broker.metrics.requests_invalid.inc();
                return Outcome::failed(produce_error_code(&err), log.start_offset());
            }
        }
    }
    let replicate = (acks == -1 && log.is_replicated() && last_offset >= 0)
        .then(|| (log.clone(), last_offset, epoch));
    Outcome {
        error: 0,
        base_offset,
        log_start_offset: log.start_offset(),
        replicate,
    }
}

/// `acks=all` on a replicated partition: waits until every ISR member holds
/// `last_offset` (the high watermark passes it), the leadership moves
/// (NOT_LEADER_OR_FOLLOWER: the client retries on the new leader) or the
/// request's timeout passes (REQUEST_TIMED_OUT).
pub(crate) async fn wait_replicated(
    partition: &Partition,
    last_offset: i64,
    epoch: i32,
    deadline: tokio::time::Instant,
) -> i16 {
    let mut hw = partition.subscribe();
    loop {
        if *hw.borrow_and_update() > last_offset {
            return 0;
        }
        if partition.leader_epoch() != Some(epoch) {
            return ResponseError::NotLeaderOrFollower.code();
        }
        match tokio::time::timeout_at(deadline, hw.changed()).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) | Err(_) => return ResponseError::RequestTimedOut.code(),
        }
    }
}

/// Handles a Produce; `None` for `acks=0` (no response is sent).
pub async fn produce(
    broker: &Arc<Broker>,
    version: i16,
    request: ProduceRequest,
) -> Option<ProduceResponse> {
    let acks = request.acks;
    let refuse = if !matches!(acks, -1..=1) {
        Some(ResponseError::InvalidRequiredAcks.code())
    } else if request.transactional_id.is_some() {
        Some(ResponseError::TransactionalIdAuthorizationFailed.code())
    } else {
        None
    };
    let timeout_ms = u64::try_from(request.timeout_ms)
        .unwrap_or(0)
        .min(MAX_ACK_WAIT_MS);
    let deadline = tokio::time::Instant::now() + Duration::from_millis(timeout_ms);
    let now_ms = i64::try_from(crate::group::coordinator::now_ms()).unwrap_or(i64::MAX);
    let mut outcomes = broker
        .blocking(move |b| {
            request
                .topic_data
                .into_iter()
                .map(|topic| {
                    let name = topic.name.0.to_string();
                    let partitions = topic
                        .partition_data
                        .into_iter()
                        .map(|data| {
                            let outcome = match refuse {
                                Some(error) => Outcome::failed(error, -1),
                                None => {
                                    append_all(b, &name, data.index, data.records, acks, now_ms)
                                }
                            };
                            (data.index, outcome)
                        })
                        .collect::<Vec<_>>();
                    (topic.name, partitions)
                })
                .collect::<Vec<_>>()
        })
        .await;
    for (_, partitions) in &mut outcomes {
        for (_, outcome) in partitions.iter_mut() {
            if let Some((partition, last_offset, epoch)) = outcome.replicate.take() {
                outcome.error = wait_replicated(&partition, last_offset, epoch, deadline).await;
            }
        }
    }
    let responses = outcomes
        .into_iter()
        .map(|(name, partitions)| {
            let partitions = partitions
                .into_iter()
                .map(|(index, outcome)| {
                    let mut response = PartitionProduceResponse::default()
                        .with_index(index)
                        .with_error_code(outcome.error)
                        .with_base_offset(if outcome.error == 0 {
                            outcome.base_offset
                        } else {
                            -1
                        })
                        .with_log_append_time_ms(-1);
                    if version >= 5 {
                        response.log_start_offset = outcome.log_start_offset;
                    }
                    response
                })
                .collect();
            TopicProduceResponse::default()
                .with_name(name)
                .with_partition_responses(partitions)
        })
        .collect::<Vec<_>>();
    (acks != 0).then(|| ProduceResponse::default().with_responses(responses))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(body_len: usize) -> Vec<u8> {
        let mut bytes = vec![0u8; 8];
        bytes.extend_from_slice(&(body_len as i32).to_be_bytes());
        bytes.extend(std::iter::repeat_n(7u8, body_len));
        bytes
    }

    #[test]
    fn batches_are_cut_by_their_length_fields() {
        let mut records = batch(50);
        records.extend(batch(3));
        let batches = split_batches(&Bytes::from(records)).unwrap();
        assert_eq!(
            batches.iter().map(Bytes::len).collect::<Vec<_>>(),
            vec![62, 15]
        );
        assert_eq!(split_batches(&Bytes::new()).unwrap().len(), 0);
    }

    #[test]
    fn truncated_or_negative_lengths_are_refused() {
        let mut records = batch(50);
        records.truncate(40);
        assert!(split_batches(&Bytes::from(records)).is_none());
        let mut negative = batch(0);
        negative[8..12].copy_from_slice(&(-5i32).to_be_bytes());
        assert!(split_batches(&Bytes::from(negative)).is_none());
        assert!(split_batches(&Bytes::from_static(&[1, 2, 3])).is_none());
    }
}
