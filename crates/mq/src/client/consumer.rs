//! Consuming one topic: alone (every partition) or as a member of a consumer
//! group (the partitions the group's leader assigns), committing after each
//! batch of records is handed over: at-least-once, as the notes describe.
//!
//! The group protocol from the client's side: JoinGroup (retried once with
//! the member id a v4+ coordinator asks for), the leader computes a range
//! assignment over the members' subscriptions, SyncGroup hands each member
//! its share, OffsetFetch gives where to resume, Heartbeat keeps the
//! membership (a rebalance answer makes it commit and rejoin), LeaveGroup on
//! the way out so the others rebalance at once.

mod records;

pub use records::{Message, decode_records};

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    ApiKey, BrokerId, ConsumerProtocolAssignment, ConsumerProtocolSubscription, FetchRequest,
    GroupId, HeartbeatRequest, JoinGroupRequest, LeaveGroupRequest, OffsetCommitRequest,
    SyncGroupRequest,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use super::admin::{decode_assignment, offset_fetch_request};
use super::{Client, PartitionInfo, check_code};
use crate::api::meta::{text, topic_name};

/// How long one Fetch may wait for data.
const FETCH_WAIT_MS: i32 = 500;
/// Bytes asked per partition per Fetch.
const PARTITION_FETCH_BYTES: i32 = 1 << 20;
/// Session timeout asked of the coordinator.
const SESSION_TIMEOUT_MS: i32 = 10_000;
/// How often a member heartbeats.
const HEARTBEAT_EVERY: Duration = Duration::from_secs(1);

/// What to consume and when to stop.
#[derive(Debug, Clone)]
pub struct ConsumeOptions {
    /// The topic.
    pub topic: String,
    /// Consume as a member of this group, committing offsets.
    pub group: Option<String>,
    /// Where to start without a committed offset: earliest (true) or latest.
    pub from_beginning: bool,
    /// Stop after this many records.
    pub max_messages: Option<u64>,
    /// Stop when nothing arrives for this long (None: never).
    pub idle_timeout: Option<Duration>,
}

/// The range assignor: each topic's partitions split in contiguous ranges
/// over the members subscribed to it, sorted by member id.
pub fn range_assign(
    subscriptions: &BTreeMap<String, Vec<String>>,
    partitions: &HashMap<String, usize>,
) -> BTreeMap<String, BTreeMap<String, Vec<i32>>> {
    let mut out: BTreeMap<String, BTreeMap<String, Vec<i32>>> = subscriptions
        .keys()
        .map(|m| (m.clone(), BTreeMap::new()))
        .collect();
    for (topic, &count) in partitions {
        let members: Vec<&String> = subscriptions
            .iter()
            .filter(|(_, topics)| topics.contains(topic))
            .map(|(m, _)| m)
            .collect();
        if members.is_empty() {
            continue;
        }
        let (each, extra) = (count / members.len(), count % members.len());
        let mut next = 0;
        for (i, member) in members.iter().enumerate() {
            let n = each + usize::from(i < extra);
            let share: Vec<i32> = (next..next + n).map(|p| p as i32).collect();
            next += n;
            if !share.is_empty() {
                out.entry((*member).clone())
                    .or_default()
                    .insert(topic.clone(), share);
            }
        }
    }
    out
}

fn with_version<T: Encodable>(version: i16, message: &T) -> anyhow::Result<Bytes> {
    let mut buf = BytesMut::new();
    buf.extend_from_slice(&version.to_be_bytes());
    message.encode(&mut buf, version)?;
    Ok(buf.freeze())
}

fn decode_subscription(bytes: &[u8]) -> Vec<String> {
    let mut buf = Bytes::copy_from_slice(bytes);
    if buf.len() < 2 {
        return Vec::new();
    }
    let version = buf.get_i16().clamp(0, 3);
    ConsumerProtocolSubscription::decode(&mut buf, version)
        .map(|s| s.topics.into_iter().map(|t| t.to_string()).collect())
        .unwrap_or_default()
}

struct Membership {
    group: String,
    coordinator: i32,
    member_id: String,
    generation: i32,
}

/// A consumer of one topic.
pub struct Consumer {
    options: ConsumeOptions,
    partitions: Vec<PartitionInfo>,
    positions: BTreeMap<i32, i64>,
    committed: BTreeMap<i32, i64>,
    membership: Option<Membership>,
    last_heartbeat: Instant,
}

impl Consumer {
    /// Subscribes (joining the group, if any) and finds where to start.
    pub async fn start(client: &mut Client, options: ConsumeOptions) -> anyhow::Result<Consumer> {
        let partitions = client.partitions(&options.topic).await?;
        let mut consumer = Consumer {
            options,
            partitions,
            positions: BTreeMap::new(),
            committed: BTreeMap::new(),
            membership: None,
            last_heartbeat: Instant::now(),
        };
        consumer.assign(client).await?;
        Ok(consumer)
    }

    /// The partitions this consumer reads now.
    pub fn assigned(&self) -> Vec<i32> {
        self.positions.keys().copied().collect()
    }

    async fn assign(&mut self, client: &mut Client) -> anyhow::Result<()> {
        let topic = self.options.topic.clone();
        let mine: Vec<i32> = match self.options.group.clone() {
            None => self.partitions.iter().map(|p| p.index).collect(),
            Some(group) => self.join(client, &group).await?,
        };
        let infos: Vec<PartitionInfo> = self
            .partitions
            .iter()
            .filter(|p| mine.contains(&p.index))
            .cloned()
            .collect();
        let defaults = if self.options.from_beginning {
            client.start_offsets(&topic, &infos).await?
        } else {
            client.end_offsets(&topic, &infos).await?
        };
        let mut committed = HashMap::new();
        if let Some(m) = &self.membership {
            let request = offset_fetch_request(&m.group, &topic, &mine);
            let response = client.send_to(m.coordinator, &request).await?;
            check_code(
                response.error_code,
                &format!("committed offsets of group {}", m.group),
            )?;
            for t in response.topics {
                for p in t.partitions {
                    check_code(
                        p.error_code,
                        &format!("committed offset of {topic}-{}", p.partition_index),
                    )?;
                    if p.committed_offset >= 0 {
                        committed.insert(p.partition_index, p.committed_offset);
                    }
                }
            }
        }
        self.positions = mine
            .iter()
            .map(|&p| {
                (
                    p,
                    committed.get(&p).or(defaults.get(&p)).copied().unwrap_or(0),
                )
            })
            .collect();
        self.committed = committed.into_iter().collect();
        Ok(())
    }

    async fn join(&mut self, client: &mut Client, group: &str) -> anyhow::Result<Vec<i32>> {
        let coordinator = client.coordinator(group).await?;
        let topic = self.options.topic.clone();
        let subscription = with_version(
            0,
            &ConsumerProtocolSubscription::default().with_topics(vec![text(&topic)]),
        )?;
        let mut member_id = self
            .membership
            .take()
            .map(|m| m.member_id)
            .unwrap_or_default();
        let connection = client.broker(coordinator).await?;
        let joined = loop {
            let request = JoinGroupRequest::default()
                .with_group_id(GroupId(text(group)))
                .with_session_timeout_ms(SESSION_TIMEOUT_MS)
                .with_rebalance_timeout_ms(SESSION_TIMEOUT_MS)
                .with_member_id(text(&member_id))
                .with_protocol_type(text("consumer"))
                .with_protocols(vec![
                    JoinGroupRequestProtocol::default()
                        .with_name(text("range"))
                        .with_metadata(subscription.clone()),
                ]);
            let wait = Duration::from_millis(SESSION_TIMEOUT_MS as u64);
            let response = connection.send(&request, wait).await?;
            if response.error_code == ResponseError::MemberIdRequired.code() && member_id.is_empty()
            {
                member_id = response.member_id.to_string();
                continue;
            }
            check_code(response.error_code, &format!("joining group {group}"))?;
            break response;
        };
        let member_id = joined.member_id.to_string();
        let mut assignments = Vec::new();
        if joined.leader == joined.member_id {
            let subscriptions: BTreeMap<String, Vec<String>> = joined
                .members
                .iter()
                .map(|m| (m.member_id.to_string(), decode_subscription(&m.metadata)))
                .collect();
            let counts = HashMap::from([(topic.clone(), self.partitions.len())]);
            for (member, topics) in range_assign(&subscriptions, &counts) {
                let assignment = ConsumerProtocolAssignment::default().with_assigned_partitions(
                    topics
                        .into_iter()
                        .map(|(t, partitions)| {
                            TopicPartition::default()
                                .with_topic(topic_name(&t))
                                .with_partitions(partitions)
                        })
                        .collect(),
                );
                assignments.push(
                    SyncGroupRequestAssignment::default()
                        .with_member_id(text(&member))
                        .with_assignment(with_version(0, &assignment)?),
                );
            }
        }
        let request = SyncGroupRequest::default()
            .with_group_id(GroupId(text(group)))
            .with_generation_id(joined.generation_id)
            .with_member_id(text(&member_id))
            .with_protocol_type(Some(text("consumer")))
            .with_protocol_name(joined.protocol_name.clone())
            .with_assignments(assignments);
        let synced = connection
            .send(&request, Duration::from_millis(SESSION_TIMEOUT_MS as u64))
            .await?;
        check_code(synced.error_code, &format!("syncing group {group}"))?;
        let mine = decode_assignment(&synced.assignment)?
            .remove(&topic)
            .unwrap_or_default();
        self.membership = Some(Membership {
            group: group.to_string(),
            coordinator,
            member_id,
            generation: joined.generation_id,
        });
        self.last_heartbeat = Instant::now();
        Ok(mine)
    }

    /// Fetches once from every assigned partition (waiting up to half a
    /// second for data) and returns the new records in offset order per
    /// partition; positions move past them.
    pub async fn poll(&mut self, client: &mut Client) -> anyhow::Result<Vec<Message>> {
        self.heartbeat(client).await?;
        let mut by_leader: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
        for p in &self.partitions {
            if self.positions.contains_key(&p.index) {
                by_leader.entry(p.leader).or_default().push(p.index);
            }
        }
        if by_leader.is_empty() {
            // Nothing assigned (more members than partitions): wait like a fetch would.
            tokio::time::sleep(Duration::from_millis(FETCH_WAIT_MS as u64)).await;
            return Ok(Vec::new());
        }
        let mut messages = Vec::new();
        for (leader, indexes) in by_leader {
            let partitions = indexes
                .iter()
                .map(|&i| {
                    FetchPartition::default()
                        .with_partition(i)
                        .with_current_leader_epoch(-1)
                        .with_fetch_offset(self.positions[&i])
                        .with_log_start_offset(-1)
                        .with_partition_max_bytes(PARTITION_FETCH_BYTES)
                })
                .collect();
            let request = FetchRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_max_wait_ms(FETCH_WAIT_MS)
                .with_min_bytes(1)
                .with_max_bytes(16 << 20)
                .with_session_epoch(-1)
                .with_topics(vec![
                    FetchTopic::default()
                        .with_topic(topic_name(&self.options.topic))
                        .with_partitions(partitions),
                ]);
            let wait = Duration::from_millis(FETCH_WAIT_MS as u64);
            let response = client.broker(leader).await?.send(&request, wait).await?;
            check_code(response.error_code, "fetch")?;
            for t in response.responses {
                for p in t.partitions {
                    let index = p.partition_index;
                    let Some(&from) = self.positions.get(&index) else {
                        continue;
                    };
                    if p.error_code == ResponseError::OffsetOutOfRange.code() {
                        let info: Vec<PartitionInfo> = self
                            .partitions
                            .iter()
                            .filter(|q| q.index == index)
                            .cloned()
                            .collect();
                        let reset = if self.options.from_beginning {
                            client.start_offsets(&self.options.topic, &info).await?
                        } else {
                            client.end_offsets(&self.options.topic, &info).await?
                        };
                        self.positions
                            .insert(index, reset.get(&index).copied().unwrap_or(0));
                        continue;
                    }
                    check_code(
                        p.error_code,
                        &format!("fetch {}-{index}", self.options.topic),
                    )?;
                    let records = p.records.unwrap_or_default();
                    let got = decode_records(index, &records, from)?;
                    if let Some(last) = got.last() {
                        self.positions.insert(index, last.offset + 1);
                    }
                    messages.extend(got);
                }
            }
        }
        Ok(messages)
    }

    /// Marks everything up to (and including) `message` of its partition as
    /// consumed, so a commit records it.
    pub fn consumed(&mut self, message: &Message) {
        self.positions.insert(message.partition, message.offset + 1);
    }

    /// Commits the positions that moved (a no-op without a group).
    pub async fn commit(&mut self, client: &mut Client) -> anyhow::Result<()> {
        let Some(m) = &self.membership else {
            return Ok(());
        };
        let moved: Vec<(i32, i64)> = self
            .positions
            .iter()
            .filter(|(p, o)| self.committed.get(p) != Some(o))
            .map(|(&p, &o)| (p, o))
            .collect();
        if moved.is_empty() {
            return Ok(());
        }
        let request = OffsetCommitRequest::default()
            .with_group_id(GroupId(text(&m.group)))
            .with_generation_id_or_member_epoch(m.generation)
            .with_member_id(text(&m.member_id))
            .with_retention_time_ms(-1)
            .with_topics(vec![
                OffsetCommitRequestTopic::default()
                    .with_name(topic_name(&self.options.topic))
                    .with_partitions(
                        moved
                            .iter()
                            .map(|&(p, o)| {
                                OffsetCommitRequestPartition::default()
                                    .with_partition_index(p)
                                    .with_committed_offset(o)
                                    .with_committed_leader_epoch(-1)
                                    .with_committed_metadata(Some(StrBytes::from_static_str("")))
                            })
                            .collect(),
                    ),
            ]);
        let response = client.send_to(m.coordinator, &request).await?;
        for t in response.topics {
            for p in t.partitions {
                check_code(
                    p.error_code,
                    &format!(
                        "commit of {}-{} for group {}",
                        self.options.topic, p.partition_index, m.group
                    ),
                )?;
            }
        }
        self.committed.extend(moved);
        Ok(())
    }

    async fn heartbeat(&mut self, client: &mut Client) -> anyhow::Result<()> {
        let Some(m) = &self.membership else {
            return Ok(());
        };
        if self.last_heartbeat.elapsed() < HEARTBEAT_EVERY {
            return Ok(());
        }
        let request = HeartbeatRequest::default()
            .with_group_id(GroupId(text(&m.group)))
            .with_generation_id(m.generation)
            .with_member_id(text(&m.member_id));
        let response = client.send_to(m.coordinator, &request).await?;
        self.last_heartbeat = Instant::now();
        let rebalance = ResponseError::RebalanceInProgress.code();
        if response.error_code == rebalance {
            self.commit(client).await?;
            return self.assign(client).await;
        }
        if response.error_code == ResponseError::UnknownMemberId.code()
            || response.error_code == ResponseError::IllegalGeneration.code()
        {
            // Expired while we were away: join again as a new member.
            self.membership = None;
            return self.assign(client).await;
        }
        check_code(
            response.error_code,
            &format!("heartbeat to group {}", m.group),
        )
    }

    /// Commits and leaves the group, so the others rebalance at once.
    pub async fn close(mut self, client: &mut Client) -> anyhow::Result<()> {
        self.commit(client).await?;
        let Some(m) = self.membership.take() else {
            return Ok(());
        };
        let connection = client.broker(m.coordinator).await?;
        // v0-2 name one member; v3+ (KIP-345) a list of them.
        let mut request = LeaveGroupRequest::default().with_group_id(GroupId(text(&m.group)));
        if connection
            .version(ApiKey::LeaveGroup)
            .is_some_and(|v| v >= 3)
        {
            request.members = vec![MemberIdentity::default().with_member_id(text(&m.member_id))];
        } else {
            request.member_id = text(&m.member_id);
        }
        let response = connection.send(&request, Duration::ZERO).await?;
        check_code(response.error_code, &format!("leaving group {}", m.group))
    }

    /// Runs the consumer until `max_messages` or the idle timeout, handing
    /// each record to `each` and committing after each batch; returns how
    /// many records were handed over.
    pub async fn run(
        mut self,
        client: &mut Client,
        mut each: impl FnMut(&Message) -> anyhow::Result<()>,
    ) -> anyhow::Result<u64> {
        let mut handed = 0u64;
        let mut last_record = Instant::now();
        let outcome: anyhow::Result<()> = async {
            loop {
                if self.options.max_messages.is_some_and(|max| handed >= max) {
                    return Ok(());
                }
                if self
                    .options
                    .idle_timeout
                    .is_some_and(|t| last_record.elapsed() >= t)
                {
                    return Ok(());
                }
                let messages = self.poll(client).await?;
                if messages.is_empty() {
                    continue;
                }
                last_record = Instant::now();
                // Positions moved past the whole fetch; rewind to what is handed over.
                for m in &messages {
                    self.positions
                        .entry(m.partition)
                        .and_modify(|p| *p = (*p).min(m.offset));
                }
                for m in &messages {
                    if self.options.max_messages.is_some_and(|max| handed >= max) {
                        break;
                    }
                    each(m)?;
                    self.consumed(m);
                    handed += 1;
                }
                self.commit(client).await?;
            }
        }
        .await;
        // Commit what was handed over and leave, even after an error.
        let closed = self.close(client).await;
        outcome?;
        closed?;
        Ok(handed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_assignment_splits_partitions_in_order() {
        let subs = BTreeMap::from([
            ("a".to_string(), vec!["t".to_string()]),
            ("b".to_string(), vec!["t".to_string()]),
        ]);
        let counts = HashMap::from([("t".to_string(), 3)]);
        let out = range_assign(&subs, &counts);
        assert_eq!(out["a"]["t"], vec![0, 1]);
        assert_eq!(out["b"]["t"], vec![2]);
        let more = HashMap::from([("t".to_string(), 1)]);
        let out = range_assign(&subs, &more);
        assert_eq!(out["a"]["t"], vec![0]);
        assert!(out["b"].is_empty(), "a member may get nothing");
    }
}
