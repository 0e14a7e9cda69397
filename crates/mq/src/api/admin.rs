//! The operator's APIs: ListGroups, DescribeGroups and DescribeLogDirs.
//!
//! They answer what `hyperscale mq groups` and `topics describe` (and
//! Kafka's own `kafka-consumer-groups.sh`) ask: which groups exist, their
//! state, members and assignments, and how many bytes each partition holds
//! on disk. Groups known only by their committed offsets (no member since
//! this broker started) are listed as `Empty`, as Kafka does.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{
    DescribeGroupsRequest, DescribeGroupsResponse, DescribeLogDirsRequest, DescribeLogDirsResponse,
    GroupId, ListGroupsRequest, ListGroupsResponse,
};

use super::meta::{text, topic_name};
use crate::broker::Broker;
use crate::group::state::State;

/// Most groups one DescribeGroups may ask about (each answer copies a group).
pub const DESCRIBE_GROUPS_MAX: usize = 1000;

/// ListGroups: every group with members or committed offsets, filtered by
/// state (v4+) and type (v5+) when the client asks.
pub fn list_groups(broker: &Arc<Broker>, request: ListGroupsRequest) -> ListGroupsResponse {
    let mut groups: BTreeMap<String, (String, &'static str)> = broker
        .offsets
        .groups()
        .into_iter()
        .map(|id| (id, (String::new(), State::Empty.kafka_name())))
        .collect();
    for (id, protocol_type, state) in broker.groups.list() {
        groups.insert(id, (protocol_type.unwrap_or_default(), state.kafka_name()));
    }
    let wanted = |state: &str| {
        request.states_filter.is_empty()
            || request
                .states_filter
                .iter()
                .any(|s| s.eq_ignore_ascii_case(state))
    };
    let typed = |_: &str| {
        request.types_filter.is_empty()
            || request
                .types_filter
                .iter()
                .any(|t| t.eq_ignore_ascii_case("classic"))
    };
    let groups = groups
        .into_iter()
        .filter(|(_, (protocol_type, state))| wanted(state) && typed(protocol_type))
        .map(|(id, (protocol_type, state))| {
            ListedGroup::default()
                .with_group_id(GroupId(text(&id)))
                .with_protocol_type(text(&protocol_type))
                .with_group_state(text(state))
                .with_group_type(text("classic"))
        })
        .collect();
    ListGroupsResponse::default().with_groups(groups)
}

/// DescribeGroups: state, protocol and members (with their subscription and
/// assignment) of each group asked for; an unknown group is `Dead`, as in Kafka.
pub fn describe_groups(
    broker: &Arc<Broker>,
    version: i16,
    request: DescribeGroupsRequest,
) -> DescribeGroupsResponse {
    let groups = request
        .groups
        .into_iter()
        .enumerate()
        .map(|(i, id)| {
            let described = DescribedGroup::default().with_group_id(id.clone());
            if i >= DESCRIBE_GROUPS_MAX {
                return described
                    .with_error_code(ResponseError::PolicyViolation.code())
                    .with_group_state(text("Dead"));
            }
            let Some(group) = broker.groups.describe(&id.0) else {
                let state = if broker.offsets.all(&id.0).is_empty() {
                    "Dead"
                } else {
                    State::Empty.kafka_name()
                };
                return described.with_group_state(text(state));
            };
            let protocol = group.protocol.clone().unwrap_or_default();
            let members = group
                .members
                .values()
                .map(|m| {
                    let metadata = m.metadata_for(&protocol);
                    let mut member = DescribedGroupMember::default()
                        .with_member_id(text(&m.id))
                        .with_client_id(text(&m.client_id))
                        .with_client_host(text(""))
                        .with_member_metadata(metadata)
                        .with_member_assignment(m.assignment.clone());
                    if version >= 4 {
                        member.group_instance_id = m.instance_id.as_deref().map(text);
                    }
                    member
                })
                .collect();
            described
                .with_group_state(text(group.state.kafka_name()))
                .with_protocol_type(text(group.protocol_type.as_deref().unwrap_or_default()))
                .with_protocol_data(text(&protocol))
                .with_members(members)
                .with_authorized_operations(i32::MIN)
        })
        .collect();
    DescribeGroupsResponse::default().with_groups(groups)
}

/// DescribeLogDirs: the one data directory, with each partition's size on
/// disk (every partition, or those asked for).
pub async fn describe_log_dirs(
    broker: &Arc<Broker>,
    request: DescribeLogDirsRequest,
) -> DescribeLogDirsResponse {
    let result = broker
        .blocking(move |b| {
            let wanted: Option<BTreeMap<String, Vec<i32>>> = request.topics.map(|topics| {
                topics
                    .into_iter()
                    .map(|t| (t.topic.0.to_string(), t.partitions))
                    .collect()
            });
            let topics = b
                .topics
                .list()
                .into_iter()
                .filter_map(|topic| {
                    let only = match &wanted {
                        Some(wanted) => Some(wanted.get(&topic.name)?),
                        None => None,
                    };
                    let partitions = topic
                        .partitions
                        .iter()
                        .filter(|p| only.is_none_or(|only| only.contains(&p.index)))
                        .map(|p| {
                            DescribeLogDirsPartition::default()
                                .with_partition_index(p.index)
                                .with_partition_size(
                                    i64::try_from(p.size_bytes_blocking()).unwrap_or(i64::MAX),
                                )
                        })
                        .collect();
                    Some(
                        DescribeLogDirsTopic::default()
                            .with_name(topic_name(&topic.name))
                            .with_partitions(partitions),
                    )
                })
                .collect();
            DescribeLogDirsResult::default()
                .with_log_dir(text(&b.config.data_dir.join("logs").display().to_string()))
                .with_topics(topics)
                .with_total_bytes(-1)
                .with_usable_bytes(-1)
        })
        .await;
    DescribeLogDirsResponse::default().with_results(vec![result])
}
