//! The consumer-group state machine, as plain functions of a [`Group`] and
//! the current time: no sockets, no clocks, no locks, so every rebalance rule
//! is unit-tested directly.
//!
//! Kafka's protocol (KIP-62 and the classic group protocol):
//! - `Empty` → a member joins → `PreparingRebalance`: every known member must
//!   (re)join; the JoinGroup answers wait until all have, or until the
//!   rebalance deadline (the largest `rebalance_timeout_ms`), which drops the
//!   members that did not.
//! - Completing the join bumps the generation, picks the protocol (the
//!   assignor, e.g. `range`) every member supports, and answers every member;
//!   the leader's answer lists all members with their subscriptions →
//!   `CompletingRebalance`.
//! - The leader computes the assignment client-side and sends it in its
//!   SyncGroup; the broker only relays it: every waiting SyncGroup is
//!   answered with that member's share → `Stable`.
//! - Heartbeats keep a member alive; one silent beyond its
//!   `session_timeout_ms`, or one that leaves, triggers a new rebalance.
//!
//! Each function returns the [`Reply`]s it produced: answers to JoinGroup or
//! SyncGroup requests that may be waiting on other connections. The caller
//! (see `group::coordinator`) routes them.

mod model;

use std::collections::BTreeMap;

use bytes::Bytes;
use kafka_protocol::ResponseError;

pub use model::{Group, JoinRequest, JoinResponse, Limits, Member, Reply, State, SyncResponse};

fn code(error: ResponseError) -> i16 {
    error.code()
}

/// Handles a JoinGroup; returns the member's id and the replies produced
/// (the caller's own answer is among them unless it must wait).
pub fn join(
    group: &mut Group,
    request: JoinRequest,
    now_ms: u64,
    limits: &Limits,
) -> (String, Vec<Reply>) {
    let fail = |error: ResponseError| {
        let id = request.member_id.clone();
        (
            id.clone(),
            vec![Reply::Join(
                id.clone(),
                JoinResponse::error(&id, code(error)),
            )],
        )
    };
    if !(limits.session_timeout_min_ms..=limits.session_timeout_max_ms)
        .contains(&request.session_timeout_ms)
    {
        return fail(ResponseError::InvalidSessionTimeout);
    }
    if request.protocol_type.is_empty() || request.protocols.is_empty() {
        return fail(ResponseError::InconsistentGroupProtocol);
    }
    if !group.members.is_empty() {
        let same_type = group.protocol_type.as_deref() == Some(request.protocol_type.as_str());
        let shared = request.protocols.iter().any(|(name, _)| {
            group
                .members
                .values()
                .filter(|m| m.id != request.member_id)
                .all(|m| m.protocols.iter().any(|(n, _)| n == name))
        });
        if !same_type || !shared {
            return fail(ResponseError::InconsistentGroupProtocol);
        }
    }
    let known = group.members.get(&request.member_id).cloned();
    if !request.member_id.is_empty() && known.is_none() {
        return fail(ResponseError::UnknownMemberId);
    }
    if known.is_none() && group.members.len() >= limits.members_max {
        return fail(ResponseError::GroupMaxSizeReached);
    }
    let member_id = match &known {
        Some(member) => member.id.clone(),
        None => {
            group.next_member += 1;
            let client = if request.client_id.is_empty() {
                "member"
            } else {
                &request.client_id
            };
            format!("{client}-{now_ms}-{}", group.next_member)
        }
    };
    // A follower rejoining a stable group with unchanged subscriptions gets
    // the current generation back without disturbing everyone else.
    if let Some(member) = &known
        && group.state == State::Stable
        && group.leader.as_deref() != Some(member_id.as_str())
        && member.protocols == request.protocols
    {
        if let Some(member) = group.members.get_mut(&member_id) {
            member.last_seen_ms = now_ms;
        }
        let response = join_response(group, &member_id);
        return (member_id.clone(), vec![Reply::Join(member_id, response)]);
    }
    group.protocol_type = Some(request.protocol_type.clone());
    let member = group
        .members
        .entry(member_id.clone())
        .or_insert_with(|| Member {
            id: member_id.clone(),
            instance_id: None,
            client_id: String::new(),
            session_timeout_ms: 0,
            rebalance_timeout_ms: 0,
            protocols: Vec::new(),
            assignment: Bytes::new(),
            last_seen_ms: now_ms,
            awaiting_join: false,
            awaiting_sync: false,
        });
    member.instance_id = request.instance_id;
    member.client_id = request.client_id;
    member.session_timeout_ms = request.session_timeout_ms;
    member.rebalance_timeout_ms = request.rebalance_timeout_ms.max(1);
    member.protocols = request.protocols;
    member.last_seen_ms = now_ms;
    member.awaiting_join = true;
    let mut replies = Vec::new();
    if group.state != State::PreparingRebalance {
        replies.extend(start_rebalance(group, now_ms));
    }
    replies.extend(try_complete_join(group, now_ms, false));
    (member_id, replies)
}

/// Handles a SyncGroup.
pub fn sync(
    group: &mut Group,
    member_id: &str,
    generation: i32,
    assignments: Vec<(String, Bytes)>,
    now_ms: u64,
) -> Vec<Reply> {
    let reply = |error: ResponseError| {
        vec![Reply::Sync(
            member_id.to_string(),
            SyncResponse::error(code(error)),
        )]
    };
    let Some(member) = group.members.get_mut(member_id) else {
        return reply(ResponseError::UnknownMemberId);
    };
    member.last_seen_ms = now_ms;
    if generation != group.generation {
        return reply(ResponseError::IllegalGeneration);
    }
    match group.state {
        State::Empty | State::PreparingRebalance => reply(ResponseError::RebalanceInProgress),
        State::Stable => {
            let assignment = member.assignment.clone();
            vec![Reply::Sync(
                member_id.to_string(),
                SyncResponse {
                    error: 0,
                    protocol: group.protocol.clone(),
                    assignment,
                },
            )]
        }
        State::CompletingRebalance => {
            member.awaiting_sync = true;
            if group.leader.as_deref() != Some(member_id) {
                return Vec::new();
            }
            let mut assignments: BTreeMap<String, Bytes> = assignments.into_iter().collect();
            for member in group.members.values_mut() {
                member.assignment = assignments.remove(&member.id).unwrap_or_default();
            }
            group.state = State::Stable;
            let protocol = group.protocol.clone();
            group
                .members
                .values_mut()
                .filter(|m| m.awaiting_sync)
                .map(|m| {
                    m.awaiting_sync = false;
                    Reply::Sync(
                        m.id.clone(),
                        SyncResponse {
                            error: 0,
                            protocol: protocol.clone(),
                            assignment: m.assignment.clone(),
                        },
                    )
                })
                .collect()
        }
    }
}

/// Handles a Heartbeat; returns its error code.
pub fn heartbeat(group: &mut Group, member_id: &str, generation: i32, now_ms: u64) -> i16 {
    let Some(member) = group.members.get_mut(member_id) else {
        return code(ResponseError::UnknownMemberId);
    };
    member.last_seen_ms = now_ms;
    if generation != group.generation {
        return code(ResponseError::IllegalGeneration);
    }
    match group.state {
        State::PreparingRebalance => code(ResponseError::RebalanceInProgress),
        State::Empty => code(ResponseError::UnknownMemberId),
        State::CompletingRebalance | State::Stable => 0,
    }
}

/// Handles a LeaveGroup of one member; returns its error code and replies.
pub fn leave(group: &mut Group, member_id: &str, now_ms: u64) -> (i16, Vec<Reply>) {
    match group.members.remove(member_id) {
        None => (code(ResponseError::UnknownMemberId), Vec::new()),
        Some(member) => {
            let mut replies = abandoned(&member);
            replies.extend(members_removed(group, now_ms));
            (0, replies)
        }
    }
}

/// Expires silent members and overdue rebalances; call it periodically.
pub fn tick(group: &mut Group, now_ms: u64) -> Vec<Reply> {
    let expired: Vec<String> = group
        .members
        .values()
        .filter(|m| {
            !m.awaiting_join && now_ms.saturating_sub(m.last_seen_ms) > m.session_timeout_ms
        })
        .map(|m| m.id.clone())
        .collect();
    let mut replies = Vec::new();
    for id in &expired {
        if let Some(member) = group.members.remove(id) {
            replies.extend(abandoned(&member));
        }
    }
    if !expired.is_empty() {
        replies.extend(members_removed(group, now_ms));
    }
    if group.state == State::PreparingRebalance && now_ms >= group.rebalance_deadline_ms {
        replies.extend(try_complete_join(group, now_ms, true));
    }
    replies
}

/// Whether an OffsetCommit from `member_id` at `generation` is accepted
/// (error code). `generation < 0` with no member is a standalone consumer's
/// commit (`assign()` rather than `subscribe()`), allowed while no group
/// members exist.
pub fn check_commit(group: Option<&Group>, member_id: &str, generation: i32) -> i16 {
    if generation < 0 && member_id.is_empty() {
        return match group {
            Some(group) if !group.members.is_empty() => code(ResponseError::UnknownMemberId),
            _ => 0,
        };
    }
    let Some(group) = group else {
        return code(ResponseError::UnknownMemberId);
    };
    if !group.members.contains_key(member_id) {
        return code(ResponseError::UnknownMemberId);
    }
    if generation != group.generation {
        return code(ResponseError::IllegalGeneration);
    }
    if group.state == State::CompletingRebalance {
        return code(ResponseError::RebalanceInProgress);
    }
    0
}

/// Error replies to the requests a removed member left waiting.
fn abandoned(member: &Member) -> Vec<Reply> {
    let mut replies = Vec::new();
    let unknown = code(ResponseError::UnknownMemberId);
    if member.awaiting_join {
        replies.push(Reply::Join(
            member.id.clone(),
            JoinResponse::error(&member.id, unknown),
        ));
    }
    if member.awaiting_sync {
        replies.push(Reply::Sync(member.id.clone(), SyncResponse::error(unknown)));
    }
    replies
}

fn members_removed(group: &mut Group, now_ms: u64) -> Vec<Reply> {
    if group.members.is_empty() {
        group.state = State::Empty;
        group.leader = None;
        group.protocol = None;
        group.protocol_type = None;
        return Vec::new();
    }
    match group.state {
        State::Stable | State::CompletingRebalance => start_rebalance(group, now_ms),
        State::PreparingRebalance => try_complete_join(group, now_ms, false),
        State::Empty => Vec::new(),
    }
}

fn start_rebalance(group: &mut Group, now_ms: u64) -> Vec<Reply> {
    let in_progress = code(ResponseError::RebalanceInProgress);
    let mut replies = Vec::new();
    for member in group.members.values_mut() {
        if member.awaiting_sync {
            member.awaiting_sync = false;
            replies.push(Reply::Sync(
                member.id.clone(),
                SyncResponse::error(in_progress),
            ));
        }
    }
    let wait_ms = group
        .members
        .values()
        .map(|m| m.rebalance_timeout_ms)
        .max()
        .unwrap_or(0);
    group.state = State::PreparingRebalance;
    group.rebalance_deadline_ms = now_ms + wait_ms;
    replies
}

/// Completes the join when every member has rejoined, or (`deadline`) drops
/// those that have not and completes with the rest.
fn try_complete_join(group: &mut Group, now_ms: u64, deadline: bool) -> Vec<Reply> {
    assert_eq!(group.state, State::PreparingRebalance);
    let all_joined = group.members.values().all(|m| m.awaiting_join);
    if !all_joined && !deadline {
        return Vec::new();
    }
    group.members.retain(|_, m| m.awaiting_join);
    if group.members.is_empty() {
        return members_removed(group, now_ms);
    }
    group.generation += 1;
    if !group
        .leader
        .as_ref()
        .is_some_and(|l| group.members.contains_key(l))
    {
        group.leader = group.members.keys().next().cloned();
    }
    group.protocol = choose_protocol(group);
    group.state = State::CompletingRebalance;
    let ids: Vec<String> = group.members.keys().cloned().collect();
    let mut replies = Vec::new();
    for id in ids {
        if let Some(member) = group.members.get_mut(&id) {
            member.awaiting_join = false;
            member.last_seen_ms = now_ms;
        }
        let response = join_response(group, &id);
        replies.push(Reply::Join(id, response));
    }
    replies
}

/// The leader's most preferred protocol that every member supports.
fn choose_protocol(group: &Group) -> Option<String> {
    let leader = group.members.get(group.leader.as_deref()?)?;
    leader
        .protocols
        .iter()
        .map(|(name, _)| name)
        .find(|name| {
            group
                .members
                .values()
                .all(|m| m.protocols.iter().any(|(n, _)| n == *name))
        })
        .cloned()
}

fn join_response(group: &Group, member_id: &str) -> JoinResponse {
    let leader = group.leader.clone().unwrap_or_default();
    let members = if leader == member_id {
        let protocol = group.protocol.as_deref().unwrap_or_default();
        group
            .members
            .values()
            .map(|m| {
                (
                    m.id.clone(),
                    m.instance_id.clone(),
                    m.metadata_for(protocol),
                )
            })
            .collect()
    } else {
        Vec::new()
    };
    JoinResponse {
        error: 0,
        generation: group.generation,
        protocol: group.protocol.clone(),
        leader,
        member_id: member_id.to_string(),
        members,
    }
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
