//! The group coordinator: [`state`]'s functions behind a lock,
//! plus what they cannot do themselves, which is waiting.
//!
//! A JoinGroup or SyncGroup may have to wait for other members; the
//! connection then parks on a oneshot channel keyed by member id, and the
//! replies the state machine returns (to this or any other call) are routed
//! to those channels. A ticker calls [`state::tick`] so silent members and
//! overdue rebalances are handled even when nobody sends anything.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use tokio::sync::oneshot;

use super::state::{self, Group, JoinRequest, JoinResponse, Limits, Reply, SyncResponse};
use kafka_protocol::ResponseError;

/// How often [`Coordinator::tick`] should run.
pub const TICK: Duration = Duration::from_millis(200);

#[derive(Default)]
struct Slot {
    group: Option<Group>,
    joins: HashMap<String, oneshot::Sender<JoinResponse>>,
    syncs: HashMap<String, oneshot::Sender<SyncResponse>>,
}

/// Every group of this broker.
pub struct Coordinator {
    slots: Mutex<HashMap<String, Slot>>,
    limits: Limits,
    groups_max: usize,
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Slot {
    /// Routes replies; returns the one for `me` (if any) instead of sending it.
    fn route(&mut self, replies: Vec<Reply>, me: Option<(&str, bool)>) -> Option<Reply> {
        let mut mine = None;
        for reply in replies {
            match reply {
                Reply::Join(id, response) => {
                    if me == Some((id.as_str(), true)) {
                        mine = Some(Reply::Join(id, response));
                    } else if let Some(waiter) = self.joins.remove(&id) {
                        let _ = waiter.send(response);
                    }
                }
                Reply::Sync(id, response) => {
                    if me == Some((id.as_str(), false)) {
                        mine = Some(Reply::Sync(id, response));
                    } else if let Some(waiter) = self.syncs.remove(&id) {
                        let _ = waiter.send(response);
                    }
                }
            }
        }
        mine
    }
}

impl Coordinator {
    /// A coordinator with these bounds.
    pub fn new(limits: Limits, groups_max: usize) -> Self {
        Coordinator {
            slots: Mutex::new(HashMap::new()),
            limits,
            groups_max,
        }
    }

    /// JoinGroup: answers at once or when the rebalance completes.
    pub async fn join(&self, group_id: &str, request: JoinRequest) -> JoinResponse {
        let wait =
            Duration::from_millis(request.rebalance_timeout_ms.max(request.session_timeout_ms))
                + Duration::from_secs(5);
        let receiver = {
            let mut slots = self.slots.lock();
            if !slots.contains_key(group_id) && slots.len() >= self.groups_max {
                return JoinResponse::error(
                    &request.member_id,
                    ResponseError::CoordinatorNotAvailable.code(),
                );
            }
            let slot = slots.entry(group_id.to_string()).or_default();
            let group = slot.group.get_or_insert_with(|| Group::new(group_id));
            let (member_id, replies) = state::join(group, request, now_ms(), &self.limits);
            if let Some(Reply::Join(_, response)) = slot.route(replies, Some((&member_id, true))) {
                return response;
            }
            let (sender, receiver) = oneshot::channel();
            slot.joins.insert(member_id.clone(), sender);
            (member_id, receiver)
        };
        let (member_id, receiver) = receiver;
        match tokio::time::timeout(wait, receiver).await {
            Ok(Ok(response)) => response,
            _ => JoinResponse::error(&member_id, ResponseError::RebalanceInProgress.code()),
        }
    }

    /// SyncGroup: followers wait for the leader's assignment.
    pub async fn sync(
        &self,
        group_id: &str,
        member_id: &str,
        generation: i32,
        assignments: Vec<(String, bytes::Bytes)>,
    ) -> SyncResponse {
        let receiver = {
            let mut slots = self.slots.lock();
            let Some(slot) = slots.get_mut(group_id) else {
                return SyncResponse::error(ResponseError::UnknownMemberId.code());
            };
            let Some(group) = slot.group.as_mut() else {
                return SyncResponse::error(ResponseError::UnknownMemberId.code());
            };
            let session_ms = group
                .members
                .get(member_id)
                .map_or(0, |m| m.session_timeout_ms);
            let replies = state::sync(group, member_id, generation, assignments, now_ms());
            if let Some(Reply::Sync(_, response)) = slot.route(replies, Some((member_id, false))) {
                return response;
            }
            let (sender, receiver) = oneshot::channel();
            slot.syncs.insert(member_id.to_string(), sender);
            (session_ms, receiver)
        };
        let (session_ms, receiver) = receiver;
        // The leader's session bounds the wait: if it dies, the tick expires
        // it and this member is answered REBALANCE_IN_PROGRESS.
        let wait = Duration::from_millis(session_ms) + Duration::from_secs(5);
        match tokio::time::timeout(wait, receiver).await {
            Ok(Ok(response)) => response,
            _ => SyncResponse::error(ResponseError::RebalanceInProgress.code()),
        }
    }

    /// Heartbeat: its error code.
    pub fn heartbeat(&self, group_id: &str, member_id: &str, generation: i32) -> i16 {
        let mut slots = self.slots.lock();
        match slots.get_mut(group_id).and_then(|slot| slot.group.as_mut()) {
            Some(group) => state::heartbeat(group, member_id, generation, now_ms()),
            None => ResponseError::UnknownMemberId.code(),
        }
    }

    /// LeaveGroup of one member: its error code.
    pub fn leave(&self, group_id: &str, member_id: &str) -> i16 {
        let mut slots = self.slots.lock();
        let Some(slot) = slots.get_mut(group_id) else {
            return ResponseError::UnknownMemberId.code();
        };
        let Some(group) = slot.group.as_mut() else {
            return ResponseError::UnknownMemberId.code();
        };
        let (error, replies) = state::leave(group, member_id, now_ms());
        slot.route(replies, None);
        error
    }

    /// Whether an OffsetCommit is accepted (error code).
    pub fn check_commit(&self, group_id: &str, member_id: &str, generation: i32) -> i16 {
        let slots = self.slots.lock();
        let group = slots.get(group_id).and_then(|slot| slot.group.as_ref());
        state::check_commit(group, member_id, generation)
    }

    /// Expires silent members and overdue rebalances in every group.
    pub fn tick(&self) {
        let now = now_ms();
        let mut slots = self.slots.lock();
        for slot in slots.values_mut() {
            if let Some(group) = slot.group.as_mut() {
                let replies = state::tick(group, now);
                slot.route(replies, None);
            }
        }
    }

    /// A copy of the group `group_id` as the coordinator holds it (None when
    /// it never had members since this broker started).
    pub fn describe(&self, group_id: &str) -> Option<Group> {
        let slots = self.slots.lock();
        slots.get(group_id).and_then(|slot| slot.group.clone())
    }

    /// Every group the coordinator holds: (id, protocol type, state).
    pub fn list(&self) -> Vec<(String, Option<String>, state::State)> {
        let slots = self.slots.lock();
        slots
            .values()
            .filter_map(|slot| slot.group.as_ref())
            .map(|g| (g.id.clone(), g.protocol_type.clone(), g.state))
            .collect()
    }

    /// Number of groups with members, and of members (for metrics).
    pub fn counts(&self) -> (usize, usize) {
        let slots = self.slots.lock();
        let groups = slots.values().filter_map(|s| s.group.as_ref());
        groups.fold((0, 0), |(g, m), group| {
            (
                g + usize::from(!group.members.is_empty()),
                m + group.members.len(),
            )
        })
    }
}
