//! Rebalance rules of `group::state`, driven with explicit times.

use super::*;

const LIMITS: Limits = Limits {
    session_timeout_min_ms: 1_000,
    session_timeout_max_ms: 60_000,
    members_max: 10,
};

fn request(member_id: &str, client: &str) -> JoinRequest {
    JoinRequest {
        member_id: member_id.into(),
        instance_id: None,
        client_id: client.into(),
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 30_000,
        protocol_type: "consumer".into(),
        protocols: vec![("range".into(), Bytes::from_static(b"sub"))],
    }
}

fn join_reply<'a>(replies: &'a [Reply], member: &str) -> Option<&'a JoinResponse> {
    replies.iter().find_map(|r| match r {
        Reply::Join(id, response) if id == member => Some(response),
        _ => None,
    })
}

fn sync_reply<'a>(replies: &'a [Reply], member: &str) -> Option<&'a SyncResponse> {
    replies.iter().find_map(|r| match r {
        Reply::Sync(id, response) if id == member => Some(response),
        _ => None,
    })
}

/// A stable group with one member `a` (the leader); returns its id.
fn stable_with_one(group: &mut Group) -> String {
    let (a, replies) = join(group, request("", "a"), 0, &LIMITS);
    let joined = join_reply(&replies, &a).expect("a lone member is answered at once");
    assert_eq!(
        (joined.error, joined.generation, joined.leader.as_str()),
        (0, 1, a.as_str())
    );
    assert_eq!(joined.members.len(), 1, "the leader sees every member");
    let replies = sync(
        group,
        &a,
        1,
        vec![(a.clone(), Bytes::from_static(b"p0"))],
        10,
    );
    assert_eq!(
        sync_reply(&replies, &a).unwrap().assignment,
        Bytes::from_static(b"p0")
    );
    assert_eq!(group.state, State::Stable);
    a
}

#[test]
fn one_member_joins_syncs_and_heartbeats() {
    let mut group = Group::new("g");
    let a = stable_with_one(&mut group);
    assert_eq!(heartbeat(&mut group, &a, 1, 20), 0);
    assert_eq!(group.protocol.as_deref(), Some("range"));
}

#[test]
fn a_new_member_triggers_a_rebalance_and_the_leader_relays_the_assignment() {
    let mut group = Group::new("g");
    let a = stable_with_one(&mut group);
    let (b, replies) = join(&mut group, request("", "b"), 100, &LIMITS);
    assert!(replies.is_empty(), "b waits for a to rejoin");
    assert_eq!(group.state, State::PreparingRebalance);
    assert_eq!(
        heartbeat(&mut group, &a, 1, 110),
        ResponseError::RebalanceInProgress.code()
    );
    let (_, replies) = join(&mut group, request(&a, "a"), 120, &LIMITS);
    let leader = join_reply(&replies, &a).unwrap();
    let follower = join_reply(&replies, &b).unwrap();
    assert_eq!((leader.generation, follower.generation), (2, 2));
    assert_eq!(leader.leader, a, "the old leader stays leader");
    assert_eq!(leader.members.len(), 2);
    assert!(
        follower.members.is_empty(),
        "only the leader gets the member list"
    );
    assert!(
        sync(&mut group, &b, 2, Vec::new(), 130).is_empty(),
        "follower waits for the leader"
    );
    let assignments = vec![
        (a.clone(), Bytes::from_static(b"A")),
        (b.clone(), Bytes::from_static(b"B")),
    ];
    let replies = sync(&mut group, &a, 2, assignments, 140);
    assert_eq!(
        sync_reply(&replies, &a).unwrap().assignment,
        Bytes::from_static(b"A")
    );
    assert_eq!(
        sync_reply(&replies, &b).unwrap().assignment,
        Bytes::from_static(b"B")
    );
    assert_eq!(group.state, State::Stable);
    assert_eq!(heartbeat(&mut group, &b, 2, 150), 0);
}

#[test]
fn a_leaving_member_triggers_a_rebalance_of_the_rest() {
    let mut group = Group::new("g");
    let a = stable_with_one(&mut group);
    let (b, _) = join(&mut group, request("", "b"), 100, &LIMITS);
    join(&mut group, request(&a, "a"), 110, &LIMITS);
    sync(&mut group, &a, 2, Vec::new(), 120);
    let (error, _) = leave(&mut group, &b, 130);
    assert_eq!(error, 0);
    assert_eq!(group.state, State::PreparingRebalance);
    assert_eq!(
        heartbeat(&mut group, &a, 2, 140),
        ResponseError::RebalanceInProgress.code()
    );
    let (_, replies) = join(&mut group, request(&a, "a"), 150, &LIMITS);
    assert_eq!(join_reply(&replies, &a).unwrap().generation, 3);
    assert_eq!(
        leave(&mut group, &b, 160).0,
        ResponseError::UnknownMemberId.code()
    );
}

#[test]
fn the_last_member_leaving_empties_the_group() {
    let mut group = Group::new("g");
    let a = stable_with_one(&mut group);
    assert_eq!(leave(&mut group, &a, 20).0, 0);
    assert_eq!(group.state, State::Empty);
    assert!(group.leader.is_none());
}

#[test]
fn a_silent_member_is_expired_after_its_session_timeout() {
    let mut group = Group::new("g");
    let a = stable_with_one(&mut group);
    let (b, _) = join(&mut group, request("", "b"), 100, &LIMITS);
    join(&mut group, request(&a, "a"), 110, &LIMITS);
    sync(&mut group, &a, 2, Vec::new(), 120);
    sync(&mut group, &b, 2, Vec::new(), 120);
    assert!(
        tick(&mut group, 5_000).is_empty(),
        "both are within their session"
    );
    assert_eq!(heartbeat(&mut group, &a, 2, 9_000), 0);
    tick(&mut group, 10_200);
    assert!(
        !group.members.contains_key(&b),
        "b was silent for more than 10 s"
    );
    assert_eq!(group.state, State::PreparingRebalance);
    let (_, replies) = join(&mut group, request(&a, "a"), 10_300, &LIMITS);
    assert_eq!(join_reply(&replies, &a).unwrap().members.len(), 1);
}

#[test]
fn the_rebalance_deadline_drops_members_that_did_not_rejoin() {
    let mut group = Group::new("g");
    let a = stable_with_one(&mut group);
    let (b, replies) = join(&mut group, request("", "b"), 100, &LIMITS);
    assert!(replies.is_empty());
    // a keeps heartbeating (so its session is fine) but never rejoins.
    assert_eq!(
        heartbeat(&mut group, &a, 1, 20_000),
        ResponseError::RebalanceInProgress.code()
    );
    assert!(
        tick(&mut group, 29_000).is_empty(),
        "before the 30 s rebalance timeout"
    );
    let replies = tick(&mut group, 30_200);
    let answer = join_reply(&replies, &b).expect("b is answered at the deadline");
    assert_eq!((answer.generation, answer.leader.as_str()), (2, b.as_str()));
    assert!(!group.members.contains_key(&a));
}

#[test]
fn a_member_waiting_for_sync_is_told_when_a_new_rebalance_starts() {
    let mut group = Group::new("g");
    let a = stable_with_one(&mut group);
    let (b, _) = join(&mut group, request("", "b"), 100, &LIMITS);
    join(&mut group, request(&a, "a"), 110, &LIMITS);
    assert!(sync(&mut group, &b, 2, Vec::new(), 120).is_empty());
    let (_, replies) = join(&mut group, request("", "c"), 130, &LIMITS);
    assert_eq!(
        sync_reply(&replies, &b).unwrap().error,
        ResponseError::RebalanceInProgress.code()
    );
}

#[test]
fn bad_requests_get_kafka_errors() {
    let mut group = Group::new("g");
    let a = stable_with_one(&mut group);
    assert_eq!(
        heartbeat(&mut group, "nobody", 1, 0),
        ResponseError::UnknownMemberId.code()
    );
    assert_eq!(
        heartbeat(&mut group, &a, 7, 0),
        ResponseError::IllegalGeneration.code()
    );
    assert_eq!(
        sync_reply(&sync(&mut group, &a, 7, Vec::new(), 0), &a)
            .unwrap()
            .error,
        ResponseError::IllegalGeneration.code()
    );
    let short = JoinRequest {
        session_timeout_ms: 10,
        ..request("", "x")
    };
    let (id, replies) = join(&mut group, short, 0, &LIMITS);
    assert_eq!(
        join_reply(&replies, &id).unwrap().error,
        ResponseError::InvalidSessionTimeout.code()
    );
    let other = JoinRequest {
        protocols: vec![("roundrobin".into(), Bytes::new())],
        ..request("", "x")
    };
    let (id, replies) = join(&mut group, other, 0, &LIMITS);
    assert_eq!(
        join_reply(&replies, &id).unwrap().error,
        ResponseError::InconsistentGroupProtocol.code()
    );
    let (id, replies) = join(&mut group, request("stale-id", "x"), 0, &LIMITS);
    assert_eq!(
        join_reply(&replies, &id).unwrap().error,
        ResponseError::UnknownMemberId.code()
    );
    assert_eq!(
        group.state,
        State::Stable,
        "refused joins do not disturb the group"
    );
}

#[test]
fn commits_are_checked_against_membership_and_generation() {
    assert_eq!(check_commit(None, "", -1), 0, "standalone consumer");
    let mut group = Group::new("g");
    let a = stable_with_one(&mut group);
    assert_eq!(check_commit(Some(&group), &a, 1), 0);
    assert_eq!(
        check_commit(Some(&group), &a, 0),
        ResponseError::IllegalGeneration.code()
    );
    assert_eq!(
        check_commit(Some(&group), "x", 1),
        ResponseError::UnknownMemberId.code()
    );
    assert_eq!(
        check_commit(Some(&group), "", -1),
        ResponseError::UnknownMemberId.code()
    );
}
