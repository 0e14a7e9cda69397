//! The requests a group consumer sends, built from plain values: Fetch
//! from positions, OffsetCommit of moved positions, JoinGroup with a
//! subscription. Kept apart from the consumer's state machine in `consumer`.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::{
    BrokerId, FetchRequest, GroupId, JoinGroupRequest, OffsetCommitRequest,
};
use kafka_protocol::protocol::StrBytes;

use super::TopicPartition;
use crate::api::meta::{text, topic_name};

/// Bytes asked per partition per Fetch.
const PARTITION_FETCH_BYTES: i32 = 1 << 20;
/// Bytes asked per Fetch over all partitions.
const FETCH_BYTES: i32 = 16 << 20;

/// A Fetch of `topics`' partitions, each from its position in `positions`
/// (0 if it has none), waiting up to `wait` for a first byte.
pub fn fetch(
    topics: &BTreeMap<String, Vec<i32>>,
    positions: &BTreeMap<TopicPartition, i64>,
    wait: Duration,
) -> FetchRequest {
    let fetch_topics = topics
        .iter()
        .map(|(topic, indexes)| {
            let partitions = indexes
                .iter()
                .map(|&i| {
                    let at = positions.get(&(topic.clone(), i)).copied().unwrap_or(0);
                    FetchPartition::default()
                        .with_partition(i)
                        .with_current_leader_epoch(-1)
                        .with_fetch_offset(at)
                        .with_log_start_offset(-1)
                        .with_partition_max_bytes(PARTITION_FETCH_BYTES)
                })
                .collect();
            FetchTopic::default()
                .with_topic(topic_name(topic))
                .with_partitions(partitions)
        })
        .collect();
    FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(i32::try_from(wait.as_millis()).unwrap_or(i32::MAX))
        .with_min_bytes(1)
        .with_max_bytes(FETCH_BYTES)
        .with_session_epoch(-1)
        .with_topics(fetch_topics)
}

/// An OffsetCommit of `moved` (partition, next offset to read) for a member.
pub fn commit(
    group: &str,
    generation: i32,
    member_id: &str,
    moved: &[(TopicPartition, i64)],
) -> OffsetCommitRequest {
    let mut topics: BTreeMap<&str, Vec<OffsetCommitRequestPartition>> = BTreeMap::new();
    for ((topic, partition), offset) in moved {
        topics.entry(topic).or_default().push(
            OffsetCommitRequestPartition::default()
                .with_partition_index(*partition)
                .with_committed_offset(*offset)
                .with_committed_leader_epoch(-1)
                .with_committed_metadata(Some(StrBytes::from_static_str(""))),
        );
    }
    OffsetCommitRequest::default()
        .with_group_id(GroupId(text(group)))
        .with_generation_id_or_member_epoch(generation)
        .with_member_id(text(member_id))
        .with_retention_time_ms(-1)
        .with_topics(
            topics
                .into_iter()
                .map(|(topic, partitions)| {
                    OffsetCommitRequestTopic::default()
                        .with_name(topic_name(topic))
                        .with_partitions(partitions)
                })
                .collect(),
        )
}

/// A JoinGroup of a consumer offering the range assignor with `subscription`.
pub fn join(
    group: &str,
    member_id: &str,
    session_timeout_ms: i32,
    subscription: Bytes,
) -> JoinGroupRequest {
    JoinGroupRequest::default()
        .with_group_id(GroupId(text(group)))
        .with_session_timeout_ms(session_timeout_ms)
        .with_rebalance_timeout_ms(session_timeout_ms)
        .with_member_id(text(member_id))
        .with_protocol_type(text("consumer"))
        .with_protocols(vec![
            JoinGroupRequestProtocol::default()
                .with_name(text("range"))
                .with_metadata(subscription),
        ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_commit_groups_partitions_by_topic() {
        let moved = [
            (("a".to_string(), 0), 5),
            (("b".to_string(), 1), 7),
            (("a".to_string(), 2), 9),
        ];
        let request = commit("g", 3, "m", &moved);
        assert_eq!(request.generation_id_or_member_epoch, 3);
        let shape: Vec<(String, Vec<(i32, i64)>)> = request
            .topics
            .iter()
            .map(|t| {
                let parts = t
                    .partitions
                    .iter()
                    .map(|p| (p.partition_index, p.committed_offset));
                (t.name.0.to_string(), parts.collect())
            })
            .collect();
        assert_eq!(
            shape,
            vec![
                ("a".into(), vec![(0, 5), (2, 9)]),
                ("b".into(), vec![(1, 7)])
            ]
        );
    }

    #[test]
    fn a_fetch_starts_each_partition_at_its_position() {
        let topics = BTreeMap::from([("t".to_string(), vec![0, 1])]);
        let positions = BTreeMap::from([(("t".to_string(), 1), 42)]);
        let request = fetch(&topics, &positions, Duration::from_millis(250));
        assert_eq!(request.max_wait_ms, 250);
        let offsets: Vec<i64> = request.topics[0]
            .partitions
            .iter()
            .map(|p| p.fetch_offset)
            .collect();
        assert_eq!(offsets, vec![0, 42]);
    }
}
