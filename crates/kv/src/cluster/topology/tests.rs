use super::*;

fn spec(id: u32) -> NodeSpec {
    NodeSpec {
        id: NodeId(id),
        vnodes: 16,
        datacenter: None,
    }
}

fn initial() -> Topology {
    Topology::initial(&[spec(1), spec(2), spec(3)])
}

fn everyone(t: &mut Topology) {
    for id in t.ids() {
        t.seen.insert(id);
    }
}

#[test]
fn a_join_goes_streaming_switched_stable_only_when_its_barriers_hold() {
    let t = initial();
    let mut v = t.propose_join(spec(4), 3).expect("a valid join");
    assert_eq!((v.version, v.phase), (2, Phase::Streaming));
    assert_eq!(v.state_of(NodeId(4)), Some(RingState::Joining));
    let (old, new) = v.placements(3).expect("rings");
    assert_eq!(old.nodes().len(), 3);
    assert_eq!(new.expect("a new ring").nodes().len(), 4);
    assert_eq!(v.next(), None, "nobody has seen it yet");
    everyone(&mut v);
    assert_eq!(v.next(), None, "nobody has streamed yet");
    for g in v.gainers() {
        v.streamed.insert(g);
    }
    let mut s = v.next().expect("switched");
    assert_eq!((s.version, s.phase), (3, Phase::Switched));
    assert_eq!(s.next(), None, "the switch is not seen yet");
    everyone(&mut s);
    let stable = s.next().expect("stable");
    assert_eq!((stable.version, stable.phase), (4, Phase::Stable));
    assert_eq!(stable.state_of(NodeId(4)), Some(RingState::Normal));
    assert_eq!(stable.placements(3).expect("ring").1.map(|_| ()), None);
}

#[test]
fn a_leave_removes_the_node_at_the_end_and_needs_enough_nodes() {
    let t = initial();
    assert_eq!(
        t.propose_leave(NodeId(2), 3),
        Err(ChangeError::TooFew {
            left: 2,
            replicas: 3
        })
    );
    let mut v = t.propose_leave(NodeId(2), 2).expect("a valid leave");
    assert!(!v.gainers().contains(&NodeId(2)));
    assert_eq!(v.propose_join(spec(5), 2), Err(ChangeError::Busy(2)));
    everyone(&mut v);
    for g in v.gainers() {
        v.streamed.insert(g);
    }
    let mut s = v.next().expect("switched");
    everyone(&mut s);
    let stable = s.next().expect("stable");
    assert_eq!(stable.ids(), vec![NodeId(1), NodeId(3)]);
}

#[test]
fn merge_takes_newer_versions_unions_sets_and_breaks_ties_by_content() {
    let t = initial();
    let mut a = t.propose_join(spec(4), 3).expect("join");
    let mut b = a.clone();
    a.seen.insert(NodeId(1));
    b.seen.insert(NodeId(2));
    assert!(a.merge(&b));
    assert_eq!(a.seen.len(), 2);
    assert!(!a.merge(&b), "nothing new");
    assert!(!a.merge(&t), "older versions lose");
    // Two different changes at one version: both sides pick the same.
    let join = t.propose_join(spec(4), 3).expect("join");
    let leave = t.propose_leave(NodeId(1), 2).expect("leave");
    let (mut x, mut y) = (join.clone(), leave.clone());
    x.merge(&leave);
    y.merge(&join);
    assert_eq!(x, y);
}
