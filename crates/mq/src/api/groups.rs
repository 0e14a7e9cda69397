//! The consumer-group APIs: JoinGroup, SyncGroup, Heartbeat, LeaveGroup
//! (the coordinator in `group`) and OffsetCommit, OffsetFetch (the
//! committed offsets store).
//!
//! Commit timing is what gives the notes' delivery semantics on the
//! consumer side: commit before processing is at-most-once, after
//! processing at-least-once; the broker stores whatever is committed,
//! durably, before it answers.

use std::sync::Arc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponsePartition, OffsetFetchResponseTopic,
};
use kafka_protocol::messages::{
    HeartbeatRequest, HeartbeatResponse, JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest,
    LeaveGroupResponse, OffsetCommitRequest, OffsetCommitResponse, OffsetFetchRequest,
    OffsetFetchResponse, RequestHeader, SyncGroupRequest, SyncGroupResponse,
};

use super::meta::{text, topic_name};
use crate::broker::Broker;
use crate::cluster::offsets_topic;
use crate::group::offsets::Committed;
use crate::group::offsets_log::METADATA_MAX_BYTES;
use crate::group::state::JoinRequest;

/// Longest group id accepted (Kafka has none; this bounds memory and file names).
pub const GROUP_ID_MAX_BYTES: usize = 255;

/// An invalid group id, or (in a cluster) a group another broker coordinates.
fn group_id_error(broker: &Broker, group_id: &str) -> Option<i16> {
    if group_id.is_empty() || group_id.len() > GROUP_ID_MAX_BYTES {
        return Some(ResponseError::InvalidGroupId.code());
    }
    broker.not_coordinator(group_id)
}

/// JoinGroup.
pub async fn join(
    broker: &Arc<Broker>,
    version: i16,
    header: &RequestHeader,
    request: JoinGroupRequest,
) -> JoinGroupResponse {
    let group_id = request.group_id.0.to_string();
    if let Some(error) = group_id_error(broker, &group_id) {
        return JoinGroupResponse::default()
            .with_error_code(error)
            .with_generation_id(-1)
            .with_member_id(request.member_id);
    }
    let session_timeout_ms = u64::try_from(request.session_timeout_ms).unwrap_or(0);
    // v0 has no rebalance timeout: Kafka uses the session timeout.
    let rebalance_timeout_ms = if version >= 1 {
        u64::try_from(request.rebalance_timeout_ms).unwrap_or(0)
    } else {
        session_timeout_ms
    };
    let join = JoinRequest {
        member_id: request.member_id.to_string(),
        instance_id: request.group_instance_id.map(|id| id.to_string()),
        client_id: header
            .client_id
            .as_ref()
            .map(|c| c.to_string())
            .unwrap_or_default(),
        session_timeout_ms,
        rebalance_timeout_ms: rebalance_timeout_ms
            .min(broker.config.group_max_session_timeout_ms.max(300_000)),
        protocol_type: request.protocol_type.to_string(),
        protocols: request
            .protocols
            .into_iter()
            .map(|p| (p.name.to_string(), p.metadata))
            .collect(),
    };
    let answer = broker.groups.join(&group_id, join).await;
    let members = answer
        .members
        .into_iter()
        .map(|(id, instance, metadata)| {
            let mut member = JoinGroupResponseMember::default()
                .with_member_id(text(&id))
                .with_metadata(metadata);
            if version >= 5 {
                member.group_instance_id = instance.map(|i| text(&i));
            }
            member
        })
        .collect();
    JoinGroupResponse::default()
        .with_error_code(answer.error)
        .with_generation_id(answer.generation)
        .with_protocol_name(Some(text(answer.protocol.as_deref().unwrap_or_default())))
        .with_leader(text(&answer.leader))
        .with_member_id(text(&answer.member_id))
        .with_members(members)
}

/// SyncGroup.
pub async fn sync(broker: &Arc<Broker>, request: SyncGroupRequest) -> SyncGroupResponse {
    let group_id = request.group_id.0.to_string();
    if let Some(error) = broker.not_coordinator(&group_id) {
        return SyncGroupResponse::default().with_error_code(error);
    }
    let assignments = request
        .assignments
        .into_iter()
        .map(|a| (a.member_id.to_string(), a.assignment))
        .collect();
    let answer = broker
        .groups
        .sync(
            &group_id,
            &request.member_id,
            request.generation_id,
            assignments,
        )
        .await;
    SyncGroupResponse::default()
        .with_error_code(answer.error)
        .with_assignment(answer.assignment)
}

/// Heartbeat.
pub fn heartbeat(broker: &Arc<Broker>, request: HeartbeatRequest) -> HeartbeatResponse {
    if let Some(error) = broker.not_coordinator(&request.group_id.0) {
        return HeartbeatResponse::default().with_error_code(error);
    }
    let error = broker.groups.heartbeat(
        &request.group_id.0,
        &request.member_id,
        request.generation_id,
    );
    HeartbeatResponse::default().with_error_code(error)
}

/// LeaveGroup: one member (v0–2) or a batch of members (v3+, KIP-345).
pub fn leave(broker: &Arc<Broker>, version: i16, request: LeaveGroupRequest) -> LeaveGroupResponse {
    let group_id = request.group_id.0.to_string();
    if let Some(error) = broker.not_coordinator(&group_id) {
        return LeaveGroupResponse::default().with_error_code(error);
    }
    if version < 3 {
        let error = broker.groups.leave(&group_id, &request.member_id);
        return LeaveGroupResponse::default().with_error_code(error);
    }
    let members = request
        .members
        .into_iter()
        .map(|m| {
            let error = broker.groups.leave(&group_id, &m.member_id);
            MemberResponse::default()
                .with_member_id(m.member_id)
                .with_group_instance_id(m.group_instance_id)
                .with_error_code(error)
        })
        .collect();
    LeaveGroupResponse::default().with_members(members)
}

/// OffsetCommit: checked against the group's membership, stored durably
/// before the answer.
pub async fn offset_commit(
    broker: &Arc<Broker>,
    _version: i16,
    request: OffsetCommitRequest,
) -> OffsetCommitResponse {
    let group_id = request.group_id.0.to_string();
    let check = group_id_error(broker, &group_id).unwrap_or_else(|| {
        broker.groups.check_commit(
            &group_id,
            &request.member_id,
            request.generation_id_or_member_epoch,
        )
    });
    let mut entries = Vec::new();
    let mut codes = Vec::new();
    for topic in &request.topics {
        for p in &topic.partitions {
            let code = if check != 0 {
                check
            } else if broker
                .topics
                .partition(&topic.name.0, p.partition_index)
                .is_none()
            {
                ResponseError::UnknownTopicOrPartition.code()
            } else if p
                .committed_metadata
                .as_ref()
                .is_some_and(|m| m.len() > METADATA_MAX_BYTES)
            {
                ResponseError::OffsetMetadataTooLarge.code()
            } else {
                entries.push((
                    topic.name.0.to_string(),
                    p.partition_index,
                    Committed {
                        offset: p.committed_offset,
                        leader_epoch: p.committed_leader_epoch,
                        metadata: p
                            .committed_metadata
                            .as_ref()
                            .map(|m| m.to_string())
                            .unwrap_or_default(),
                    },
                ));
                0
            };
            codes.push(code);
        }
    }
    if !entries.is_empty()
        && let Err(code) = store_commit(broker, &group_id, entries).await
    {
        codes
            .iter_mut()
            .filter(|c| **c == 0)
            .for_each(|c| *c = code);
    }
    let mut codes = codes.into_iter();
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            let partitions = topic
                .partitions
                .iter()
                .map(|p| {
                    OffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(codes.next().unwrap_or_default())
                })
                .collect();
            OffsetCommitResponseTopic::default()
                .with_name(topic.name)
                .with_partitions(partitions)
        })
        .collect();
    OffsetCommitResponse::default().with_topics(topics)
}

/// Stores a commit: in a cluster, appended to the group's
/// `__consumer_offsets` partition and replicated to every in-sync replica
/// first; alone, in the group's file. Err is the Kafka error code.
async fn store_commit(
    broker: &Arc<Broker>,
    group_id: &str,
    entries: Vec<(String, i32, Committed)>,
) -> Result<(), i16> {
    let storage = ResponseError::KafkaStorageError.code();
    if broker.cluster.is_some() {
        let records = entries
            .iter()
            .map(|(topic, partition, committed)| {
                (topic.clone(), *partition, Some(committed.clone()))
            })
            .collect();
        offsets_topic::append(broker, group_id, records).await?;
        // Memory only in a cluster: no I/O.
        return broker
            .offsets
            .commit(group_id, entries)
            .map_err(|_| storage);
    }
    let group = group_id.to_string();
    let stored = broker
        .blocking(move |b| b.offsets.commit(&group, entries))
        .await;
    stored.map_err(|err| {
        tracing::error!(group = %group_id, error = %err, "cannot store committed offsets");
        storage
    })
}

/// OffsetFetch: the group's committed offsets (-1 where none), for the
/// partitions asked or (null topics, v2+) all of them.
pub fn offset_fetch(
    broker: &Arc<Broker>,
    version: i16,
    request: OffsetFetchRequest,
) -> OffsetFetchResponse {
    let group_id = request.group_id.0.to_string();
    // Not the coordinator, or still loading: every partition carries the
    // error too (v0-1 have no top-level error code).
    let error = group_id_error(broker, &group_id);
    let partition = |index: i32, committed: Option<Committed>| {
        let mut answer = OffsetFetchResponsePartition::default()
            .with_partition_index(index)
            .with_error_code(error.unwrap_or(0));
        match committed {
            Some(c) => {
                answer.committed_offset = c.offset;
                answer.metadata = Some(text(&c.metadata));
                if version >= 5 {
                    answer.committed_leader_epoch = c.leader_epoch;
                }
            }
            None => {
                answer.committed_offset = -1;
                answer.metadata = Some(text(""));
            }
        }
        answer
    };
    let topics: Vec<OffsetFetchResponseTopic> = match request.topics {
        Some(topics) => topics
            .into_iter()
            .map(|topic| {
                let partitions = topic
                    .partition_indexes
                    .iter()
                    .map(|&i| {
                        let committed = match error {
                            Some(_) => None,
                            None => broker.offsets.get(&group_id, &topic.name.0, i),
                        };
                        partition(i, committed)
                    })
                    .collect();
                OffsetFetchResponseTopic::default()
                    .with_name(topic.name)
                    .with_partitions(partitions)
            })
            .collect(),
        None if error.is_some() => Vec::new(),
        None => {
            let mut by_topic: Vec<OffsetFetchResponseTopic> = Vec::new();
            for (name, index, committed) in broker.offsets.all(&group_id) {
                if by_topic.last().is_none_or(|t| t.name.0.as_str() != name) {
                    by_topic.push(OffsetFetchResponseTopic::default().with_name(topic_name(&name)));
                }
                if let Some(topic) = by_topic.last_mut() {
                    topic.partitions.push(partition(index, Some(committed)));
                }
            }
            by_topic
        }
    };
    let mut response = OffsetFetchResponse::default().with_topics(topics);
    if version >= 2 {
        response.error_code = error.unwrap_or(0);
    }
    response
}
