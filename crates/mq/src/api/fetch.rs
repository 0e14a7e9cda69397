//! Fetch (the consumers' pull, with long polling) and ListOffsets.
//!
//! Pull, as the notes argue, lets each consumer go at its own pace and batch
//! freely; long polling removes its cost of asking an empty broker again and
//! again: a Fetch that finds fewer than `min_bytes` parks until data is
//! appended to one of its partitions (each partition publishes its end
//! offset on a `watch` channel) or `max_wait_ms` passes. Whole batches are
//! returned, as stored; the client skips the records before its offset.
//!
//! Consumers see only what is below the high watermark (in a cluster: what
//! every in-sync replica holds, so a failover never takes back a record a
//! consumer saw), and only from the partition's leader; another replica
//! answers NOT_LEADER_OR_FOLLOWER.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::future::select_all;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{
    BrokerId, FetchRequest, FetchResponse, ListOffsetsRequest, ListOffsetsResponse, TopicName,
};
use tokio::time::Instant;

use crate::broker::Broker;
use crate::log::LogError;

/// ListOffsets timestamp meaning "the log end".
pub const LATEST: i64 = -1;
/// ListOffsets timestamp meaning "the log start".
pub const EARLIEST: i64 = -2;

struct Wanted {
    topic: TopicName,
    partitions: Vec<(i32, i64, i32)>,
}

/// Reads every wanted partition once; returns the answer and its record bytes.
fn read_once(
    broker: &Broker,
    version: i16,
    wanted: &[Wanted],
    max_bytes: usize,
) -> (Vec<FetchableTopicResponse>, usize, bool) {
    let mut budget = max_bytes;
    let mut total = 0;
    let mut failed = false;
    let topics = wanted
        .iter()
        .map(|want| {
            let partitions = want
                .partitions
                .iter()
                .map(|&(index, offset, partition_max_bytes)| {
                    let mut data = PartitionData::default().with_partition_index(index);
                    if version >= 11 {
                        data.preferred_read_replica = BrokerId(-1);
                    }
                    let Some(log) = broker.topics.partition(&want.topic.0, index) else {
                        failed = true;
                        return data
                            .with_error_code(broker.missing_partition(&want.topic.0, index).code())
                            .with_high_watermark(-1)
                            .with_last_stable_offset(-1);
                    };
                    if log.leader_epoch().is_none() {
                        failed = true;
                        return data
                            .with_error_code(ResponseError::NotLeaderOrFollower.code())
                            .with_high_watermark(-1)
                            .with_last_stable_offset(-1);
                    }
                    let high_watermark = log.high_watermark();
                    data = data
                        .with_high_watermark(high_watermark)
                        .with_last_stable_offset(high_watermark)
                        .with_aborted_transactions(Some(Vec::new()));
                    if version >= 5 {
                        data.log_start_offset = log.start_offset();
                    }
                    let limit = usize::try_from(partition_max_bytes).unwrap_or(0).min(budget);
                    if limit == 0 || offset == high_watermark {
                        return data.with_records(Some(Bytes::new()));
                    }
                    match log.read_committed_blocking(offset, limit) {
                        Ok(batches) => {
                            let mut records = BytesMut::new();
                            for batch in &batches {
                                records.extend_from_slice(batch);
                            }
                            budget = budget.saturating_sub(records.len());
                            total += records.len();
                            data.with_records(Some(records.freeze()))
                        }
                        Err(err) => {
                            failed = true;
                            let code = match err {
                                LogError::OffsetOutOfRange { .. } => ResponseError::OffsetOutOfRange.code(),
                                other => {
                                    tracing::warn!(topic = %want.topic.0.as_str(), partition = index, error = %other, "fetch failed");
                                    ResponseError::KafkaStorageError.code()
                                }
                            };
                            data.with_error_code(code).with_records(Some(Bytes::new()))
                        }
                    }
                })
                .collect();
            FetchableTopicResponse::default()
                .with_topic(want.topic.clone())
                .with_partitions(partitions)
        })
        .collect();
    (topics, total, failed)
}

/// Handles a Fetch (see the module doc).
pub async fn fetch(broker: &Arc<Broker>, version: i16, request: FetchRequest) -> FetchResponse {
    let max_wait = Duration::from_millis(
        u64::try_from(request.max_wait_ms)
            .unwrap_or(0)
            .min(broker.config.fetch_max_wait_ms),
    );
    let deadline = Instant::now() + max_wait;
    let min_bytes = usize::try_from(request.min_bytes).unwrap_or(0);
    let max_bytes = usize::try_from(request.max_bytes)
        .unwrap_or(0)
        .min(broker.config.fetch_max_bytes);
    let wanted: Arc<Vec<Wanted>> = Arc::new(
        request
            .topics
            .into_iter()
            .map(|topic| Wanted {
                topic: topic.topic,
                partitions: topic
                    .partitions
                    .into_iter()
                    .map(|p| (p.partition, p.fetch_offset, p.partition_max_bytes))
                    .collect(),
            })
            .collect(),
    );
    loop {
        // Subscribe before reading, so an append in between still wakes us.
        let mut receivers: Vec<_> = wanted
            .iter()
            .flat_map(|want| {
                want.partitions
                    .iter()
                    .filter_map(|&(index, _, _)| broker.topics.partition(&want.topic.0, index))
            })
            .map(|partition| partition.subscribe())
            .collect();
        let reading = wanted.clone();
        let (topics, total, failed) = broker
            .blocking(move |b| read_once(b, version, &reading, max_bytes))
            .await;
        if total >= min_bytes || failed || receivers.is_empty() || Instant::now() >= deadline {
            broker.metrics.fetch_bytes.inc_by(total as u64);
            return FetchResponse::default().with_responses(topics);
        }
        let changed = select_all(receivers.iter_mut().map(|rx| Box::pin(rx.changed())));
        if tokio::time::timeout_at(deadline, changed).await.is_err() {
            // Nothing new in time: answer with what there is (usually nothing).
            let reading = wanted.clone();
            let (topics, total, _) = broker
                .blocking(move |b| read_once(b, version, &reading, max_bytes))
                .await;
            broker.metrics.fetch_bytes.inc_by(total as u64);
            return FetchResponse::default().with_responses(topics);
        }
    }
}

/// Handles a ListOffsets: earliest (-2), latest (-1) or the first offset at
/// or after a timestamp.
pub async fn list_offsets(
    broker: &Arc<Broker>,
    version: i16,
    request: ListOffsetsRequest,
) -> ListOffsetsResponse {
    let topics = broker
        .blocking(move |b| {
            request
                .topics
                .into_iter()
                .map(|topic| {
                    let partitions = topic
                        .partitions
                        .iter()
                        .map(|p| {
                            let mut answer = ListOffsetsPartitionResponse::default()
                                .with_partition_index(p.partition_index)
                                .with_timestamp(-1)
                                .with_offset(-1);
                            let Some(log) = b.topics.partition(&topic.name.0, p.partition_index)
                            else {
                                return answer.with_error_code(
                                    b.missing_partition(&topic.name.0, p.partition_index).code(),
                                );
                            };
                            let Some(epoch) = log.leader_epoch() else {
                                return answer
                                    .with_error_code(ResponseError::NotLeaderOrFollower.code());
                            };
                            if version >= 4 {
                                answer.leader_epoch = epoch;
                            }
                            match p.timestamp {
                                LATEST => answer.with_offset(log.high_watermark()),
                                EARLIEST => answer.with_offset(log.start_offset()),
                                ts if ts >= 0 => match log.offset_for_timestamp_blocking(ts) {
                                    Some(offset) => answer.with_offset(offset).with_timestamp(ts),
                                    None => answer,
                                },
                                _ => {
                                    answer.with_error_code(ResponseError::UnsupportedVersion.code())
                                }
                            }
                        })
                        .collect();
                    ListOffsetsTopicResponse::default()
                        .with_name(topic.name)
                        .with_partitions(partitions)
                })
                .collect::<Vec<_>>()
        })
        .await;
    ListOffsetsResponse::default().with_topics(topics)
}
