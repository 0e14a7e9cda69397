use std::collections::BTreeSet;

use bytes::Bytes;
use proptest::prelude::*;

use super::*;
use crate::cluster::hlc::Hlc;
use crate::cluster::siblings::Siblings;
use crate::cluster::vector_clock::{Actor, Dot};

fn replicas(ids: &[u32]) -> Vec<Target> {
    ids.iter()
        .map(|&id| Target {
            node: NodeId(id),
            hint_for: None,
        })
        .collect()
}

/// `base` after a write that saw all of it.
fn written(base: &Siblings, actor: u64, counter: u64) -> Siblings {
    let mut state = base.clone();
    let context = base.context().clone();
    let dot = Dot {
        actor: Actor(actor),
        counter,
    };
    let value = Some(Bytes::from(format!("{actor}:{counter}")));
    state.write(value, &context, dot, Hlc(counter), 0).unwrap();
    state
}

#[test]
fn quorum_sizes_are_checked() {
    assert!(Quorum::new(3, 2, 2).unwrap().overlapping());
    assert!(!Quorum::new(3, 1, 2).unwrap().overlapping());
    assert_eq!(Quorum::new(3, 0, 1), Err(BadQuorum { n: 3, w: 0, r: 1 }));
    assert!(Quorum::new(3, 1, 4).is_err());
}

#[test]
fn a_write_succeeds_at_w_distinct_acks() {
    let mut round = WriteRound::new(&replicas(&[1, 2, 3]), 2, 100);
    assert_eq!(round.ack(NodeId(1)), Outcome::Pending);
    assert_eq!(
        round.ack(NodeId(1)),
        Outcome::Pending,
        "a duplicate counts once"
    );
    assert_eq!(round.ack(NodeId(9)), Outcome::Pending, "not a target");
    assert_eq!(round.ack(NodeId(3)), Outcome::Succeeded);
    assert_eq!(
        round.refuse(NodeId(2)),
        Outcome::Succeeded,
        "decided stays decided"
    );
    assert_eq!(round.tick(1_000), Outcome::Succeeded);
}

#[test]
fn a_write_fails_when_the_quorum_is_out_of_reach() {
    let mut round = WriteRound::new(&replicas(&[1, 2, 3]), 2, 100);
    round.ack(NodeId(1));
    round.refuse(NodeId(2));
    let refused = Failure::Refused {
        ok: 1,
        refused: 2,
        needed: 2,
    };
    assert_eq!(round.refuse(NodeId(3)), Outcome::Failed(refused));
    let mut slow = WriteRound::new(&replicas(&[1, 2, 3]), 3, 100);
    slow.ack(NodeId(2));
    assert_eq!(slow.tick(99), Outcome::Pending);
    let timed_out = Failure::TimedOut { ok: 1, needed: 3 };
    assert_eq!(slow.tick(100), Outcome::Failed(timed_out));
    let few = WriteRound::new(&replicas(&[1]), 2, 100);
    let unavailable = Failure::Unavailable {
        available: 1,
        needed: 2,
    };
    assert_eq!(few.outcome(), Outcome::Failed(unavailable));
}

#[test]
fn a_read_merges_replies_and_repairs_stale_replicas() {
    let old = written(&Siblings::new(), 1, 1);
    let new = written(&old, 2, 1);
    assert_eq!(new.siblings().len(), 1);
    let mut targets = replicas(&[1, 2]);
    targets.push(Target {
        node: NodeId(4),
        hint_for: Some(NodeId(3)),
    });
    let mut round: ReadRound<Siblings> = ReadRound::new(&targets, 2, 100);
    assert_eq!(round.reply(NodeId(1), old.clone()), Outcome::Pending);
    assert_eq!(round.reply(NodeId(4), Siblings::new()), Outcome::Succeeded);
    assert_eq!(round.merged(), &old);
    // A late reply still joins the merge, and makes the others stale.
    round.reply(NodeId(2), new.clone());
    assert!(round.all_answered());
    assert_eq!(round.merged(), &new);
    // Node 1 is behind; node 4 is a substitute (handoff's job, not repair's).
    assert_eq!(round.repair_targets(), vec![NodeId(1)]);
}

proptest! {
    /// Whatever the answers, the outcome is decided once and agrees with
    /// the count of distinct positive answers.
    #[test]
    fn outcomes_follow_the_count(
        w in 1usize..4,
        answers in prop::collection::vec((1u32..6, any::<bool>()), 0..12),
    ) {
        let mut round = WriteRound::new(&replicas(&[1, 2, 3]), w, 100);
        let mut oks = BTreeSet::new();
        let mut answered = BTreeSet::new();
        let mut decided = None;
        for (node, ok) in answers {
            let outcome = if ok { round.ack(NodeId(node)) } else { round.refuse(NodeId(node)) };
            if node <= 3 && answered.insert(node) && ok {
                oks.insert(node);
            }
            if let Some(decided) = decided {
                prop_assert_eq!(outcome, decided);
            } else if outcome != Outcome::Pending {
                decided = Some(outcome);
                prop_assert_eq!(outcome == Outcome::Succeeded, oks.len() >= w);
            }
        }
    }
}
