//! The data of the group state machine: a [`Group`] and its [`Member`]s, the
//! decoded requests it handles and the answers it produces. Kept apart from
//! the transitions (`group::state`) so that file reads as the protocol.

use std::collections::BTreeMap;

use bytes::Bytes;

/// Where a group is in the rebalance protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// No members (offsets may still be committed for it).
    Empty,
    /// Waiting for members to (re)join.
    PreparingRebalance,
    /// Joined; waiting for the leader's assignment.
    CompletingRebalance,
    /// Assigned; members consume and heartbeat.
    Stable,
}

impl State {
    /// The name Kafka gives this state (ListGroups, DescribeGroups).
    pub fn kafka_name(self) -> &'static str {
        match self {
            State::Empty => "Empty",
            State::PreparingRebalance => "PreparingRebalance",
            State::CompletingRebalance => "CompletingRebalance",
            State::Stable => "Stable",
        }
    }
}

/// One member of a group.
#[derive(Debug, Clone)]
pub struct Member {
    /// Broker-assigned id.
    pub id: String,
    /// Static membership id (KIP-345), echoed back only.
    pub instance_id: Option<String>,
    /// The client's id (DescribeGroups shows it).
    pub client_id: String,
    /// Dropped when silent for this long.
    pub session_timeout_ms: u64,
    /// How long a rebalance waits for this member to rejoin.
    pub rebalance_timeout_ms: u64,
    /// Supported protocols (assignor name, subscription metadata), in preference order.
    pub protocols: Vec<(String, Bytes)>,
    /// This member's share of the leader's assignment.
    pub assignment: Bytes,
    /// Last request from this member (join, sync, heartbeat).
    pub last_seen_ms: u64,
    /// Its JoinGroup waits for the current rebalance to complete.
    pub awaiting_join: bool,
    /// Its SyncGroup waits for the leader's assignment.
    pub awaiting_sync: bool,
}

/// One consumer group.
#[derive(Debug, Clone)]
pub struct Group {
    /// The group id.
    pub id: String,
    /// Where it is in the protocol.
    pub state: State,
    /// Bumped by every completed join.
    pub generation: i32,
    /// `consumer` for Kafka consumers; every member must use the same.
    pub protocol_type: Option<String>,
    /// The protocol chosen at the last join.
    pub protocol: Option<String>,
    /// The member that computes assignments.
    pub leader: Option<String>,
    /// Members by id.
    pub members: BTreeMap<String, Member>,
    /// When `PreparingRebalance` gives up on members that have not rejoined.
    pub rebalance_deadline_ms: u64,
    /// Used to make member ids unique.
    pub(super) next_member: u64,
}

/// A JoinGroup request, decoded.
#[derive(Debug, Clone)]
pub struct JoinRequest {
    /// Empty for a new member.
    pub member_id: String,
    /// Static membership id.
    pub instance_id: Option<String>,
    /// The client's id (prefix of the member id, as Kafka does).
    pub client_id: String,
    /// Requested session timeout.
    pub session_timeout_ms: u64,
    /// Requested rebalance timeout.
    pub rebalance_timeout_ms: u64,
    /// `consumer` for consumers.
    pub protocol_type: String,
    /// (assignor, subscription) in preference order.
    pub protocols: Vec<(String, Bytes)>,
}

/// Broker-wide bounds on what members may ask.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Shortest session timeout.
    pub session_timeout_min_ms: u64,
    /// Longest session timeout.
    pub session_timeout_max_ms: u64,
    /// Most members per group.
    pub members_max: usize,
}

/// A JoinGroup answer.
#[derive(Debug, Clone, PartialEq)]
pub struct JoinResponse {
    /// Kafka error code (0 = none).
    pub error: i16,
    /// The new generation.
    pub generation: i32,
    /// The chosen protocol.
    pub protocol: Option<String>,
    /// The leader's member id.
    pub leader: String,
    /// The receiver's member id.
    pub member_id: String,
    /// For the leader only: every member with its subscription.
    pub members: Vec<(String, Option<String>, Bytes)>,
}

/// A SyncGroup answer.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncResponse {
    /// Kafka error code (0 = none).
    pub error: i16,
    /// The chosen protocol.
    pub protocol: Option<String>,
    /// The receiver's assignment.
    pub assignment: Bytes,
}

/// An answer for a member's waiting request.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// Answers the member's JoinGroup.
    Join(String, JoinResponse),
    /// Answers the member's SyncGroup.
    Sync(String, SyncResponse),
}
impl JoinResponse {
    /// An error answer.
    pub fn error(member_id: &str, error: i16) -> Self {
        JoinResponse {
            error,
            generation: -1,
            protocol: None,
            leader: String::new(),
            member_id: member_id.to_string(),
            members: Vec::new(),
        }
    }
}

impl SyncResponse {
    /// An error answer.
    pub fn error(error: i16) -> Self {
        SyncResponse {
            error,
            protocol: None,
            assignment: Bytes::new(),
        }
    }
}

impl Member {
    /// Its subscription metadata for `protocol` (empty if it has none).
    pub fn metadata_for(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(name, _)| name == protocol)
            .map(|(_, metadata)| metadata.clone())
            .unwrap_or_default()
    }
}

impl Group {
    /// A new, empty group.
    pub fn new(id: &str) -> Self {
        Group {
            id: id.to_string(),
            state: State::Empty,
            generation: 0,
            protocol_type: None,
            protocol: None,
            leader: None,
            members: BTreeMap::new(),
            rebalance_deadline_ms: 0,
            next_member: 0,
        }
    }
}
