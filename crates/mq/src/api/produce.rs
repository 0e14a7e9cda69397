//! Produce: append the producers' record batches, exactly as sent, to the
//! partition logs (the notes: a message format that needs no change from
//! producer to consumer).
//!
//! A partition's records field may hold several v2 batches back to back;
//! [`split_batches`] cuts them by their length fields and the log checks
//! each one (magic, CRC-32C, size) and assigns its offsets. Appends run on a
//! blocking thread, under the fsync policy, before the answer: `acks=1`
//! and `acks=-1` (all in-sync replicas: just us) are answered after the
//! append; `acks=0` gets no answer at all, as the protocol says. Batches of
//! idempotent producers go through the sequence checks of `idempotence`.

use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};

use crate::broker::Broker;
use crate::log::LogError;
use crate::partition::Appending;

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
}

fn append_all(
    broker: &Broker,
    topic: &str,
    partition: i32,
    records: Option<Bytes>,
    now_ms: i64,
) -> Outcome {
    let fail = |error: ResponseError| Outcome {
        error: error.code(),
        base_offset: -1,
        log_start_offset: -1,
    };
    let Some(log) = broker.topics.partition(topic, partition) else {
        return fail(ResponseError::UnknownTopicOrPartition);
    };
    let records = records.unwrap_or_default();
    if records.len() > broker.config.message_max_bytes {
        return fail(ResponseError::MessageTooLarge);
    }
    let Some(batches) = split_batches(&records) else {
        return fail(ResponseError::CorruptMessage);
    };
    let mut base_offset = -1;
    for batch in batches {
        match log.append_blocking(&batch, now_ms) {
            Ok(Appending::Appended(appended)) => {
                if base_offset < 0 {
                    base_offset = appended.base_offset;
                }
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
            }
            Ok(Appending::Refused(error)) => {
                return Outcome {
                    error,
                    base_offset: -1,
                    log_start_offset: log.start_offset(),
                };
            }
            Err(err) => {
                tracing::debug!(topic, partition, error = %err, "produce refused");
                broker.metrics.requests_invalid.inc();
                return Outcome {
                    error: produce_error_code(&err),
                    base_offset: -1,
                    log_start_offset: log.start_offset(),
                };
            }
        }
    }
    Outcome {
        error: 0,
        base_offset,
        log_start_offset: log.start_offset(),
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
    let now_ms = i64::try_from(crate::group::coordinator::now_ms()).unwrap_or(i64::MAX);
    let responses = broker
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
                                Some(error) => Outcome {
                                    error,
                                    base_offset: -1,
                                    log_start_offset: -1,
                                },
                                None => append_all(b, &name, data.index, data.records, now_ms),
                            };
                            let mut response = PartitionProduceResponse::default()
                                .with_index(data.index)
                                .with_error_code(outcome.error)
                                .with_base_offset(outcome.base_offset)
                                .with_log_append_time_ms(-1);
                            if version >= 5 {
                                response.log_start_offset = outcome.log_start_offset;
                            }
                            response
                        })
                        .collect();
                    TopicProduceResponse::default()
                        .with_name(topic.name)
                        .with_partition_responses(partitions)
                })
                .collect::<Vec<_>>()
        })
        .await;
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
