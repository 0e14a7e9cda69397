//! Topic and group administration: create, list, describe and delete
//! topics; list groups and describe one with its lag per partition.
//!
//! Lag is the notes' measure of a consumer falling behind: for each
//! partition, the log end offset (the next offset to be written) minus the
//! group's committed offset (the next one it will read). A partition the
//! group never committed has no lag to report (`None`), since where it
//! starts depends on its `auto.offset.reset`.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::{
    ApiKey, BrokerId, ConsumerProtocolAssignment, CreateTopicsRequest, DeleteTopicsRequest,
    DescribeGroupsRequest, DescribeLogDirsRequest, FindCoordinatorRequest, GroupId,
    ListGroupsRequest, ListOffsetsRequest, OffsetFetchRequest,
};
use kafka_protocol::protocol::{Decodable, StrBytes};
use serde::Serialize;

use super::{Client, PartitionInfo, check_code, check_code_with};
use crate::api::meta::{text, topic_name};
pub use crate::group::offsets::lag;

/// How long the broker may take to create or delete a topic.
const ADMIN_TIMEOUT_MS: i32 = 30_000;
/// ListOffsets' "earliest" and "latest" timestamps.
const EARLIEST: i64 = -2;
const LATEST: i64 = -1;

/// A topic in `topics list`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct TopicSummary {
    /// Its name.
    pub name: String,
    /// How many partitions it has.
    pub partitions: usize,
}

/// One partition in `topics describe`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PartitionDescription {
    /// Its index.
    pub partition: i32,
    /// The broker that leads it.
    pub leader: i32,
    /// Brokers holding a copy.
    pub replicas: Vec<i32>,
    /// The in-sync replicas.
    pub isr: Vec<i32>,
    /// The first offset still in the log.
    pub start_offset: i64,
    /// The next offset to be written.
    pub end_offset: i64,
    /// Bytes on disk (None when the broker does not say: no DescribeLogDirs).
    pub size_bytes: Option<i64>,
}

/// `topics describe`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct TopicDescription {
    /// Its name.
    pub name: String,
    /// Its partitions by index.
    pub partitions: Vec<PartitionDescription>,
}

/// A group in `groups list`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct GroupSummary {
    /// The group id.
    pub group: String,
    /// Its state (Empty, Stable, ...).
    pub state: String,
    /// `consumer` for Kafka consumers (empty when only offsets are known).
    pub protocol_type: String,
}

/// A member in `groups describe`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct MemberDescription {
    /// Its member id.
    pub member_id: String,
    /// The client id it sent.
    pub client_id: String,
    /// Its partitions, by topic.
    pub assignment: BTreeMap<String, Vec<i32>>,
}

/// One partition's position in `groups describe`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PartitionLag {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The group's committed offset (None: never committed).
    pub committed_offset: Option<i64>,
    /// The partition's end offset.
    pub end_offset: i64,
    /// `end_offset - committed_offset` (None when nothing is committed).
    pub lag: Option<i64>,
    /// The member it is assigned to now, if any.
    pub member_id: Option<String>,
}

/// `groups describe`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct GroupDescription {
    /// The group id.
    pub group: String,
    /// Its state (Dead when the broker does not know it).
    pub state: String,
    /// The assignor the members agreed on.
    pub protocol: String,
    /// Its members.
    pub members: Vec<MemberDescription>,
    /// Every partition it committed or is assigned, by topic and partition.
    pub partitions: Vec<PartitionLag>,
}

/// Decodes a consumer's assignment as the consumer protocol encodes it
/// (a version, then the struct); empty bytes are no partitions.
pub fn decode_assignment(bytes: &[u8]) -> anyhow::Result<BTreeMap<String, Vec<i32>>> {
    if bytes.is_empty() {
        return Ok(BTreeMap::new());
    }
    let mut buf = bytes::Bytes::copy_from_slice(bytes);
    if buf.len() < 2 {
        bail!("assignment of {} bytes is too short", bytes.len());
    }
    let version = i16::from_be_bytes([buf[0], buf[1]]);
    let _ = bytes::Buf::get_i16(&mut buf);
    let assignment = ConsumerProtocolAssignment::decode(&mut buf, version.clamp(0, 3))
        .context("malformed consumer assignment")?;
    Ok(assignment
        .assigned_partitions
        .into_iter()
        .map(|tp| (tp.topic.0.to_string(), tp.partitions))
        .collect())
}

impl Client {
    /// Creates `name` with `partitions` partitions and topic `configs`.
    pub async fn create_topic(
        &mut self,
        name: &str,
        partitions: i32,
        configs: &BTreeMap<String, String>,
    ) -> anyhow::Result<()> {
        let topic = CreatableTopic::default()
            .with_name(topic_name(name))
            .with_num_partitions(partitions)
            .with_replication_factor(-1)
            .with_configs(
                configs
                    .iter()
                    .map(|(k, v)| {
                        CreatableTopicConfig::default()
                            .with_name(text(k))
                            .with_value(Some(text(v)))
                    })
                    .collect(),
            );
        let request = CreateTopicsRequest::default()
            .with_topics(vec![topic])
            .with_timeout_ms(ADMIN_TIMEOUT_MS);
        let response = self
            .controller_connection()
            .await?
            .send(&request, Duration::ZERO)
            .await?;
        for result in response.topics {
            check_code_with(
                result.error_code,
                result.error_message.as_ref(),
                &format!("cannot create topic {name}"),
            )?;
        }
        Ok(())
    }

    /// Deletes topic `name` and its data.
    pub async fn delete_topic(&mut self, name: &str) -> anyhow::Result<()> {
        let request = DeleteTopicsRequest::default()
            .with_topic_names(vec![topic_name(name)])
            .with_timeout_ms(ADMIN_TIMEOUT_MS);
        let response = self
            .controller_connection()
            .await?
            .send(&request, Duration::ZERO)
            .await?;
        for result in response.responses {
            if result.error_code == ResponseError::UnknownTopicOrPartition.code() {
                bail!("topic {name} does not exist");
            }
            check_code(result.error_code, &format!("cannot delete topic {name}"))?;
        }
        Ok(())
    }

    async fn controller_connection(&mut self) -> anyhow::Result<&mut super::Connection> {
        match self.controller {
            Some(node) => self.broker(node).await,
            None => Ok(self.any()),
        }
    }

    /// Every topic, by name.
    pub async fn list_topics(&mut self) -> anyhow::Result<Vec<TopicSummary>> {
        let response = self.metadata(None).await?;
        let mut topics: Vec<TopicSummary> = response
            .topics
            .iter()
            .filter(|t| t.error_code == 0)
            .filter_map(|t| {
                Some(TopicSummary {
                    name: t.name.as_ref()?.0.to_string(),
                    partitions: t.partitions.len(),
                })
            })
            .collect();
        topics.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(topics)
    }

    /// Offsets at `timestamp` (EARLIEST or LATEST) of `partitions` of `topic`,
    /// each asked of its leader.
    pub async fn offsets(
        &mut self,
        topic: &str,
        partitions: &[PartitionInfo],
        timestamp: i64,
    ) -> anyhow::Result<HashMap<i32, i64>> {
        let mut by_leader: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
        for p in partitions {
            by_leader.entry(p.leader).or_default().push(p.index);
        }
        let mut offsets = HashMap::new();
        for (leader, indexes) in by_leader {
            let request = ListOffsetsRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_topics(vec![
                    ListOffsetsTopic::default()
                        .with_name(topic_name(topic))
                        .with_partitions(
                            indexes
                                .iter()
                                .map(|&i| {
                                    ListOffsetsPartition::default()
                                        .with_partition_index(i)
                                        .with_current_leader_epoch(-1)
                                        .with_timestamp(timestamp)
                                })
                                .collect(),
                        ),
                ]);
            let response = self.send_to(leader, &request).await?;
            for t in response.topics {
                for p in t.partitions {
                    check_code(
                        p.error_code,
                        &format!("offsets of {topic}-{}", p.partition_index),
                    )?;
                    offsets.insert(p.partition_index, p.offset);
                }
            }
        }
        Ok(offsets)
    }

    /// Earliest offsets of a topic's partitions.
    pub async fn start_offsets(
        &mut self,
        topic: &str,
        partitions: &[PartitionInfo],
    ) -> anyhow::Result<HashMap<i32, i64>> {
        self.offsets(topic, partitions, EARLIEST).await
    }

    /// End offsets (the next offset to be written) of a topic's partitions.
    pub async fn end_offsets(
        &mut self,
        topic: &str,
        partitions: &[PartitionInfo],
    ) -> anyhow::Result<HashMap<i32, i64>> {
        self.offsets(topic, partitions, LATEST).await
    }

    /// Partitions, offsets and sizes of topic `name`.
    pub async fn describe_topic(&mut self, name: &str) -> anyhow::Result<TopicDescription> {
        let partitions = self.partitions(name).await?;
        let starts = self.start_offsets(name, &partitions).await?;
        let ends = self.end_offsets(name, &partitions).await?;
        let mut sizes: HashMap<i32, i64> = HashMap::new();
        let leaders: std::collections::BTreeSet<i32> =
            partitions.iter().map(|p| p.leader).collect();
        for leader in leaders {
            let connection = self.broker(leader).await?;
            if connection.version(ApiKey::DescribeLogDirs).is_none() {
                continue;
            }
            let request = DescribeLogDirsRequest::default().with_topics(Some(vec![
                DescribableLogDirTopic::default()
                    .with_topic(topic_name(name))
                    .with_partitions(partitions.iter().map(|p| p.index).collect()),
            ]));
            let response = connection.send(&request, Duration::ZERO).await?;
            for dir in response.results {
                for t in dir.topics.iter().filter(|t| t.name.0.as_str() == name) {
                    for p in &t.partitions {
                        *sizes.entry(p.partition_index).or_default() += p.partition_size;
                    }
                }
            }
        }
        let partitions = partitions
            .iter()
            .map(|p| PartitionDescription {
                partition: p.index,
                leader: p.leader,
                replicas: p.replicas.clone(),
                isr: p.isr.clone(),
                start_offset: starts.get(&p.index).copied().unwrap_or(-1),
                end_offset: ends.get(&p.index).copied().unwrap_or(-1),
                size_bytes: sizes.get(&p.index).copied(),
            })
            .collect();
        Ok(TopicDescription {
            name: name.to_string(),
            partitions,
        })
    }

    /// The broker coordinating `group` (FindCoordinator).
    pub async fn coordinator(&mut self, group: &str) -> anyhow::Result<i32> {
        let request = FindCoordinatorRequest::default()
            .with_key(text(group))
            .with_key_type(0);
        let response = self.any().send(&request, Duration::ZERO).await?;
        check_code(
            response.error_code,
            &format!("coordinator of group {group}"),
        )?;
        let node = response.node_id.0;
        self.brokers
            .entry(node)
            .or_insert_with(|| format!("{}:{}", response.host.as_str(), response.port));
        Ok(node)
    }

    /// Every group of every broker.
    pub async fn list_groups(&mut self) -> anyhow::Result<Vec<GroupSummary>> {
        let mut groups = Vec::new();
        for node in self.broker_ids() {
            let response = self
                .broker(node)
                .await?
                .send(&ListGroupsRequest::default(), Duration::ZERO)
                .await?;
            check_code(response.error_code, "ListGroups")?;
            groups.extend(response.groups.into_iter().map(|g| GroupSummary {
                group: g.group_id.0.to_string(),
                state: g.group_state.to_string(),
                protocol_type: g.protocol_type.to_string(),
            }));
        }
        groups.sort_by(|a, b| a.group.cmp(&b.group));
        groups.dedup_by(|a, b| a.group == b.group);
        Ok(groups)
    }

    /// A group's state, members and lag per partition.
    pub async fn describe_group(&mut self, group: &str) -> anyhow::Result<GroupDescription> {
        let node = self.coordinator(group).await?;
        let connection = self.broker(node).await?;
        let request = DescribeGroupsRequest::default().with_groups(vec![GroupId(text(group))]);
        let described = connection
            .send(&request, Duration::ZERO)
            .await?
            .groups
            .into_iter()
            .next()
            .ok_or_else(|| anyhow!("the coordinator did not describe group {group}"))?;
        check_code(described.error_code, &format!("group {group}"))?;
        let mut members = Vec::new();
        let mut owner: HashMap<(String, i32), String> = HashMap::new();
        for m in &described.members {
            let assignment = decode_assignment(&m.member_assignment).unwrap_or_default();
            for (topic, partitions) in &assignment {
                for &p in partitions {
                    owner.insert((topic.clone(), p), m.member_id.to_string());
                }
            }
            members.push(MemberDescription {
                member_id: m.member_id.to_string(),
                client_id: m.client_id.to_string(),
                assignment,
            });
        }
        let fetch = OffsetFetchRequest::default()
            .with_group_id(GroupId(text(group)))
            .with_topics(None);
        let fetched = connection.send(&fetch, Duration::ZERO).await?;
        check_code(
            fetched.error_code,
            &format!("committed offsets of group {group}"),
        )?;
        let mut committed: BTreeMap<(String, i32), Option<i64>> = BTreeMap::new();
        for t in fetched.topics {
            for p in t.partitions {
                let offset = (p.committed_offset >= 0).then_some(p.committed_offset);
                committed.insert((t.name.0.to_string(), p.partition_index), offset);
            }
        }
        for key in owner.keys() {
            committed.entry(key.clone()).or_insert(None);
        }
        let mut ends: HashMap<String, HashMap<i32, i64>> = HashMap::new();
        let topics: std::collections::BTreeSet<String> =
            committed.keys().map(|(t, _)| t.clone()).collect();
        for topic in topics {
            // A topic deleted since the commit has no end offset to compare with.
            let Ok(partitions) = self.partitions(&topic).await else {
                continue;
            };
            let offsets = self.end_offsets(&topic, &partitions).await?;
            ends.insert(topic, offsets);
        }
        let partitions = committed
            .into_iter()
            .filter_map(|((topic, partition), committed_offset)| {
                let end_offset = *ends.get(&topic)?.get(&partition)?;
                Some(PartitionLag {
                    member_id: owner.get(&(topic.clone(), partition)).cloned(),
                    lag: lag(committed_offset, end_offset),
                    topic,
                    partition,
                    committed_offset,
                    end_offset,
                })
            })
            .collect();
        Ok(GroupDescription {
            group: group.to_string(),
            state: described.group_state.to_string(),
            protocol: described.protocol_data.to_string(),
            members,
            partitions,
        })
    }
}

/// Asks for a group's committed offsets of some partitions of some topics
/// (used by the consumer to resume).
pub fn offset_fetch_request(
    group: &str,
    topics: &BTreeMap<String, Vec<i32>>,
) -> OffsetFetchRequest {
    OffsetFetchRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.to_string())))
        .with_topics(Some(
            topics
                .iter()
                .map(|(topic, partitions)| {
                    OffsetFetchRequestTopic::default()
                        .with_name(topic_name(topic))
                        .with_partition_indexes(partitions.clone())
                })
                .collect(),
        ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition;
    use kafka_protocol::protocol::Encodable;

    #[test]
    fn lag_is_end_minus_committed_and_unknown_without_a_commit() {
        assert_eq!(lag(Some(7), 10), Some(3));
        assert_eq!(lag(Some(10), 10), Some(0));
        assert_eq!(lag(None, 10), None);
        assert_eq!(lag(Some(-1), 10), None);
        // Retention can move the end below a stale commit only on a truncated log.
        assert_eq!(lag(Some(12), 10), Some(0));
    }

    #[test]
    fn assignments_decode_as_the_consumer_protocol_encodes_them() {
        let assignment = ConsumerProtocolAssignment::default().with_assigned_partitions(vec![
            TopicPartition::default()
                .with_topic(topic_name("t"))
                .with_partitions(vec![0, 2]),
        ]);
        let mut bytes = bytes::BytesMut::new();
        bytes.extend_from_slice(&0i16.to_be_bytes());
        assignment.encode(&mut bytes, 0).unwrap();
        let decoded = decode_assignment(&bytes).unwrap();
        assert_eq!(decoded.get("t"), Some(&vec![0, 2]));
        assert!(decode_assignment(&[]).unwrap().is_empty());
        assert!(decode_assignment(&[0]).is_err());
    }
}
