//! Consuming topics: alone (every partition) or as a member of a consumer
//! group (the partitions the group's leader assigns), committing after
//! records are handed over: at-least-once, as the notes describe.
//!
//! The group protocol from the client's side: JoinGroup (retried once with
//! the member id a v4+ coordinator asks for), the leader computes a range
//! assignment over the members' subscriptions ([`assign`]), SyncGroup hands
//! each member its share, OffsetFetch gives where to resume, Heartbeat keeps
//! the membership (a rebalance answer makes it rejoin and resume from the
//! committed offsets), LeaveGroup on the way out so the others rebalance at
//! once.
//!
//! Positions are per (topic, partition): [`Consumer::poll_for`] moves them
//! past what it returns, [`Consumer::seek`] moves one anywhere, and
//! [`Consumer::commit`] records the moved ones for the group.

pub mod assign;
mod records;
pub mod requests;

pub use assign::range_assign;
pub use records::{Message, decode_records};

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use anyhow::bail;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition as AssignedPartitions;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    ApiKey, ConsumerProtocolAssignment, ConsumerProtocolSubscription, GroupId, HeartbeatRequest,
    LeaveGroupRequest, SyncGroupRequest,
};

use super::admin::{decode_assignment, offset_fetch_request};
use super::{Client, PartitionInfo, check_code};
use crate::api::meta::{text, topic_name};
use assign::{decode_subscription, with_version};

/// How long [`Consumer::poll`] waits for data.
const FETCH_WAIT: Duration = Duration::from_millis(500);
/// Session timeout asked of the coordinator by default.
pub const SESSION_TIMEOUT_MS: i32 = 10_000;
/// How often a member heartbeats (when it polls).
const HEARTBEAT_EVERY: Duration = Duration::from_secs(1);

/// A partition of a topic.
pub type TopicPartition = (String, i32);

/// What to consume and when to stop.
#[derive(Debug, Clone)]
pub struct ConsumeOptions {
    /// The topics (at least one).
    pub topics: Vec<String>,
    /// Consume as a member of this group, committing offsets.
    pub group: Option<String>,
    /// Where to start without a committed offset: earliest (true) or latest.
    pub from_beginning: bool,
    /// Stop after this many records ([`Consumer::run`]).
    pub max_messages: Option<u64>,
    /// Stop when nothing arrives for this long ([`Consumer::run`]; None: never).
    pub idle_timeout: Option<Duration>,
    /// The session timeout asked of the coordinator: a member silent this
    /// long (no poll) is dropped from the group.
    pub session_timeout_ms: i32,
}

impl Default for ConsumeOptions {
    fn default() -> Self {
        ConsumeOptions {
            topics: Vec::new(),
            group: None,
            from_beginning: false,
            max_messages: None,
            idle_timeout: None,
            session_timeout_ms: SESSION_TIMEOUT_MS,
        }
    }
}

struct Membership {
    group: String,
    coordinator: i32,
    member_id: String,
    generation: i32,
}

/// A consumer of one or more topics.
pub struct Consumer {
    options: ConsumeOptions,
    partitions: BTreeMap<String, Vec<PartitionInfo>>,
    positions: BTreeMap<TopicPartition, i64>,
    committed: BTreeMap<TopicPartition, i64>,
    membership: Option<Membership>,
    last_heartbeat: Instant,
}

/// Partitions grouped by topic.
fn by_topic<'a>(
    partitions: impl IntoIterator<Item = &'a TopicPartition>,
) -> BTreeMap<String, Vec<i32>> {
    let mut out: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    for (topic, index) in partitions {
        out.entry(topic.clone()).or_default().push(*index);
    }
    out
}

impl Consumer {
    /// Subscribes (joining the group, if any) and finds where to start.
    pub async fn start(client: &mut Client, options: ConsumeOptions) -> anyhow::Result<Consumer> {
        if options.topics.is_empty() {
            bail!("a consumer needs at least one topic");
        }
        let mut partitions = BTreeMap::new();
        for topic in &options.topics {
            partitions.insert(topic.clone(), client.partitions(topic).await?);
        }
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
    pub fn assigned(&self) -> Vec<TopicPartition> {
        self.positions.keys().cloned().collect()
    }

    /// The next offset this consumer reads from a partition it is assigned.
    pub fn position(&self, topic: &str, partition: i32) -> Option<i64> {
        self.positions.get(&(topic.to_string(), partition)).copied()
    }

    /// Moves the position of an assigned partition (the next
    /// [`Self::commit`] records it); an offset past the log end is reset
    /// on the next fetch like a missing committed offset.
    pub fn seek(&mut self, topic: &str, partition: i32, offset: i64) -> anyhow::Result<()> {
        match self.positions.get_mut(&(topic.to_string(), partition)) {
            Some(position) if offset >= 0 => {
                *position = offset;
                Ok(())
            }
            Some(_) => bail!("offset {offset} is negative"),
            None => bail!("{topic}-{partition} is not assigned to this consumer"),
        }
    }

    async fn assign(&mut self, client: &mut Client) -> anyhow::Result<()> {
        let mine: Vec<TopicPartition> = match self.options.group.clone() {
            None => self
                .partitions
                .iter()
                .flat_map(|(t, ps)| ps.iter().map(|p| (t.clone(), p.index)))
                .collect(),
            Some(group) => self.join(client, &group).await?,
        };
        let wanted = by_topic(&mine);
        let mut defaults: HashMap<TopicPartition, i64> = HashMap::new();
        for (topic, indexes) in &wanted {
            let infos: Vec<PartitionInfo> = self.partitions[topic]
                .iter()
                .filter(|p| indexes.contains(&p.index))
                .cloned()
                .collect();
            let offsets = if self.options.from_beginning {
                client.start_offsets(topic, &infos).await?
            } else {
                client.end_offsets(topic, &infos).await?
            };
            defaults.extend(offsets.into_iter().map(|(p, o)| ((topic.clone(), p), o)));
        }
        let mut committed = HashMap::new();
        if let Some(m) = &self.membership
            && !wanted.is_empty()
        {
            let request = offset_fetch_request(&m.group, &wanted);
            let response = client.send_to(m.coordinator, &request).await?;
            check_code(
                response.error_code,
                &format!("committed offsets of group {}", m.group),
            )?;
            for t in response.topics {
                let topic = t.name.0.to_string();
                for p in t.partitions {
                    check_code(
                        p.error_code,
                        &format!("committed offset of {topic}-{}", p.partition_index),
                    )?;
                    if p.committed_offset >= 0 {
                        committed.insert((topic.clone(), p.partition_index), p.committed_offset);
                    }
                }
            }
        }
        self.positions = mine
            .into_iter()
            .map(|tp| {
                let at = committed
                    .get(&tp)
                    .or(defaults.get(&tp))
                    .copied()
                    .unwrap_or(0);
                (tp, at)
            })
            .collect();
        self.committed = committed.into_iter().collect();
        Ok(())
    }

    async fn join(
        &mut self,
        client: &mut Client,
        group: &str,
    ) -> anyhow::Result<Vec<TopicPartition>> {
        let coordinator = client.coordinator(group).await?;
        let subscription = with_version(
            0,
            &ConsumerProtocolSubscription::default()
                .with_topics(self.options.topics.iter().map(|t| text(t)).collect()),
        )?;
        let mut member_id = self
            .membership
            .take()
            .map(|m| m.member_id)
            .unwrap_or_default();
        let session_timeout_ms = self.options.session_timeout_ms;
        let wait = Duration::from_millis(u64::try_from(session_timeout_ms).unwrap_or(0));
        let joined = loop {
            let request =
                requests::join(group, &member_id, session_timeout_ms, subscription.clone());
            let response = client
                .broker(coordinator)
                .await?
                .send(&request, wait)
                .await?;
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
            // The leader assigns every member's topics, not only its own.
            let topics: BTreeSet<&String> = subscriptions.values().flatten().collect();
            let mut counts = HashMap::new();
            for topic in topics {
                let count = match self.partitions.get(topic) {
                    Some(known) => known.len(),
                    None => client.partitions(topic).await.map_or(0, |p| p.len()),
                };
                counts.insert(topic.clone(), count);
            }
            for (member, topics) in range_assign(&subscriptions, &counts) {
                let assignment = ConsumerProtocolAssignment::default().with_assigned_partitions(
                    topics
                        .into_iter()
                        .map(|(t, partitions)| {
                            AssignedPartitions::default()
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
        let synced = client
            .broker(coordinator)
            .await?
            .send(&request, wait)
            .await?;
        check_code(synced.error_code, &format!("syncing group {group}"))?;
        let mut mine = Vec::new();
        for (topic, partitions) in decode_assignment(&synced.assignment)? {
            let Some(known) = self.partitions.get(&topic) else {
                continue; // not subscribed: a confused leader
            };
            mine.extend(
                partitions
                    .into_iter()
                    .filter(|p| known.iter().any(|k| k.index == *p))
                    .map(|p| (topic.clone(), p)),
            );
        }
        self.membership = Some(Membership {
            group: group.to_string(),
            coordinator,
            member_id,
            generation: joined.generation_id,
        });
        self.last_heartbeat = Instant::now();
        Ok(mine)
    }

    /// [`Self::poll_for`] with a wait of half a second.
    pub async fn poll(&mut self, client: &mut Client) -> anyhow::Result<Vec<Message>> {
        self.poll_for(client, FETCH_WAIT).await
    }

    /// Fetches once from every assigned partition, waiting up to `wait`
    /// for data (long polling), and returns the new records in offset order
    /// per partition; positions move past them. Nothing new within `wait`:
    /// an empty list.
    pub async fn poll_for(
        &mut self,
        client: &mut Client,
        wait: Duration,
    ) -> anyhow::Result<Vec<Message>> {
        self.heartbeat(client).await?;
        let mut by_leader: BTreeMap<i32, BTreeMap<String, Vec<i32>>> = BTreeMap::new();
        for (topic, partitions) in &self.partitions {
            for p in partitions {
                if self.positions.contains_key(&(topic.clone(), p.index)) {
                    by_leader
                        .entry(p.leader)
                        .or_default()
                        .entry(topic.clone())
                        .or_default()
                        .push(p.index);
                }
            }
        }
        if by_leader.is_empty() {
            // Nothing assigned (more members than partitions): wait like a fetch would.
            tokio::time::sleep(wait).await;
            return Ok(Vec::new());
        }
        let deadline = Instant::now() + wait;
        let mut messages = Vec::new();
        for (leader, topics) in by_leader {
            // Only the first leader with nothing to give makes us wait.
            let left = if messages.is_empty() {
                deadline.saturating_duration_since(Instant::now())
            } else {
                Duration::ZERO
            };
            let request = requests::fetch(&topics, &self.positions, left);
            let response = client.broker(leader).await?.send(&request, left).await?;
            check_code(response.error_code, "fetch")?;
            for t in response.responses {
                let topic = t.topic.0.to_string();
                for p in t.partitions {
                    let tp = (topic.clone(), p.partition_index);
                    let Some(&from) = self.positions.get(&tp) else {
                        continue;
                    };
                    if p.error_code == ResponseError::OffsetOutOfRange.code() {
                        self.reset(client, &tp).await?;
                        continue;
                    }
                    check_code(p.error_code, &format!("fetch {topic}-{}", tp.1))?;
                    let records = p.records.unwrap_or_default();
                    let got = decode_records(&topic, tp.1, &records, from)?;
                    if let Some(last) = got.last() {
                        self.positions.insert(tp, last.offset + 1);
                    }
                    messages.extend(got);
                }
            }
        }
        Ok(messages)
    }

    /// Moves a partition whose position left the log to its start or end.
    async fn reset(&mut self, client: &mut Client, tp: &TopicPartition) -> anyhow::Result<()> {
        let info: Vec<PartitionInfo> = self.partitions[&tp.0]
            .iter()
            .filter(|q| q.index == tp.1)
            .cloned()
            .collect();
        let reset = if self.options.from_beginning {
            client.start_offsets(&tp.0, &info).await?
        } else {
            client.end_offsets(&tp.0, &info).await?
        };
        self.positions
            .insert(tp.clone(), reset.get(&tp.1).copied().unwrap_or(0));
        Ok(())
    }

    /// Marks everything up to (and including) `message` of its partition as
    /// consumed, so a commit records it.
    pub fn consumed(&mut self, message: &Message) {
        self.positions.insert(
            (message.topic.clone(), message.partition),
            message.offset + 1,
        );
    }

    /// Commits the positions that moved (a no-op without a group).
    pub async fn commit(&mut self, client: &mut Client) -> anyhow::Result<()> {
        let Some(m) = &self.membership else {
            return Ok(());
        };
        let moved: Vec<(TopicPartition, i64)> = self
            .positions
            .iter()
            .filter(|(tp, o)| self.committed.get(*tp) != Some(*o))
            .map(|(tp, &o)| (tp.clone(), o))
            .collect();
        if moved.is_empty() {
            return Ok(());
        }
        let request = requests::commit(&m.group, m.generation, &m.member_id, &moved);
        let response = client.send_to(m.coordinator, &request).await?;
        for t in response.topics {
            for p in t.partitions {
                check_code(
                    p.error_code,
                    &format!(
                        "commit of {}-{} for group {}",
                        t.name.0, p.partition_index, m.group
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
        // A rebalance commits nothing by itself (only `commit` does): the
        // positions rewind to the committed offsets, so whatever was polled
        // and not committed comes again, to this member or the new owner.
        if response.error_code == ResponseError::RebalanceInProgress.code() {
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
        self.leave(client).await
    }

    /// Leaves the group without committing (what was not committed is read
    /// again by the partition's next owner).
    pub async fn leave(mut self, client: &mut Client) -> anyhow::Result<()> {
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
                        .entry((m.topic.clone(), m.partition))
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
