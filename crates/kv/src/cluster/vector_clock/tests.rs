use proptest::prelude::*;

use super::*;

fn clock(pairs: &[(u64, u64)]) -> VectorClock {
    let mut clock = VectorClock::new();
    for &(actor, counter) in pairs {
        clock.advance(
            Dot {
                actor: Actor(actor),
                counter,
            },
            0,
        );
    }
    clock
}

/// Small actor and counter ranges, so comparisons hit every case.
pub(crate) fn clocks() -> impl Strategy<Value = VectorClock> {
    prop::collection::btree_map(0u64..5, (1u64..4, 0u64..100), 0..5).prop_map(|map| {
        let mut clock = VectorClock::new();
        for (actor, (counter, at_ms)) in map {
            clock.advance(
                Dot {
                    actor: Actor(actor),
                    counter,
                },
                at_ms,
            );
        }
        clock
    })
}

#[test]
fn the_notes_example_orders_and_conflicts() {
    // D1 written at Sx, D2 at Sx again, then D3 at Sy and D4 at Sz from D2.
    let d1 = clock(&[(1, 1)]);
    let d2 = clock(&[(1, 2)]);
    let d3 = clock(&[(1, 2), (2, 1)]);
    let d4 = clock(&[(1, 2), (3, 1)]);
    assert_eq!(d1.compare(&d2), Causality::Before);
    assert_eq!(d3.compare(&d2), Causality::After);
    assert_eq!(d3.compare(&d4), Causality::Concurrent);
    // The resolution D5 merges both and counts one more event at Sx.
    let mut d5 = d3.clone();
    d5.merge(&d4);
    assert_eq!(
        d5.increment(Actor(1), 5),
        Some(Dot {
            actor: Actor(1),
            counter: 3
        })
    );
    assert_eq!(d5, clock(&[(1, 3), (2, 1), (3, 1)]).with_time(Actor(1), 5));
    assert_eq!(d3.compare(&d5), Causality::Before);
    assert_eq!(d4.compare(&d5), Causality::Before);
    assert!(d5.covers(Dot {
        actor: Actor(3),
        counter: 1
    }));
    assert!(!d5.covers(Dot {
        actor: Actor(3),
        counter: 2
    }));
}

impl VectorClock {
    fn with_time(mut self, actor: Actor, at_ms: u64) -> VectorClock {
        if let Ok(i) = self.find(actor) {
            self.entries[i].updated_ms = at_ms;
        }
        self
    }
}

#[test]
fn pruning_follows_riaks_rule() {
    let policy = PrunePolicy {
        small: 2,
        big: 3,
        young_ms: 100,
        old_ms: 1_000,
    };
    let mut c = VectorClock::new();
    for (actor, at_ms) in [(1, 10), (2, 20), (3, 30), (4, 40), (5, 950)] {
        c.advance(
            Dot {
                actor: Actor(actor),
                counter: 1,
            },
            at_ms,
        );
    }
    // At 1000: five entries > big, so the oldest go until three are left
    // (none is older than old_ms); actor 1 is kept on request.
    let mut pruned = c.clone();
    assert_eq!(pruned.prune(&policy, 1_000, |a| a == Actor(1)), 2);
    let actors: Vec<u64> = pruned.entries().iter().map(|e| e.actor.0).collect();
    assert_eq!(actors, [1, 4, 5]);
    assert!(c.descends(&pruned));
    // Young entries are never pruned: at 115 only actor 1 (age 105) may go.
    let mut young = c.clone();
    assert_eq!(young.prune(&policy, 115, |_| false), 1);
    assert_eq!(young.len(), 4);
    // Old entries go down to `small` even when the clock is not big.
    let mut old = clock(&[(1, 1), (2, 1), (3, 1)]);
    assert_eq!(old.prune(&policy, 5_000, |_| false), 1);
    assert_eq!(old.len(), 2);
    // Small clocks are left alone.
    let mut small = clock(&[(1, 1), (2, 1)]);
    assert_eq!(small.prune(&policy, 1 << 40, |_| false), 0);
}

#[test]
fn decoding_refuses_non_canonical_and_hostile_input() {
    let c = clock(&[(1, 2), (7, 1)]);
    let bytes = c.to_bytes();
    assert_eq!(VectorClock::from_bytes(&bytes), Ok(c));
    assert_eq!(VectorClock::from_bytes(&[0]), Ok(VectorClock::new()));
    // Unsorted actors, zero counter, trailing bytes, huge counts.
    assert!(VectorClock::from_bytes(&[2, 7, 1, 0, 1, 1, 0]).is_err());
    assert!(VectorClock::from_bytes(&[1, 7, 0, 0]).is_err());
    assert!(VectorClock::from_bytes(&[1, 7, 1, 0, 9]).is_err());
    assert!(VectorClock::from_bytes(&[0xff, 0x7f]).is_err());
    assert!(VectorClock::from_bytes(&[100, 1, 1, 1]).is_err());
    assert!(VectorClock::from_bytes(&[]).is_err());
}

proptest! {
    /// compare is antisymmetric, and Equal means equal counters.
    #[test]
    fn comparison_is_a_partial_order(a in clocks(), b in clocks(), c in clocks()) {
        let flipped = match a.compare(&b) {
            Causality::Before => Causality::After,
            Causality::After => Causality::Before,
            other => other,
        };
        prop_assert_eq!(b.compare(&a), flipped);
        prop_assert_eq!(a.compare(&a), Causality::Equal);
        let counters = |c: &VectorClock| c.entries().iter().map(|e| (e.actor, e.counter)).collect::<Vec<_>>();
        prop_assert_eq!(a.compare(&b) == Causality::Equal, counters(&a) == counters(&b));
        // Transitivity: a ≤ b ≤ c ⇒ a ≤ c.
        if b.descends(&a) && c.descends(&b) {
            prop_assert!(c.descends(&a));
        }
    }

    /// merge is the least upper bound, and a semilattice join.
    #[test]
    fn merge_is_the_least_upper_bound(a in clocks(), b in clocks(), c in clocks()) {
        let mut ab = a.clone();
        ab.merge(&b);
        prop_assert!(ab.descends(&a) && ab.descends(&b));
        // Least: any clock above both is above the merge.
        if c.descends(&a) && c.descends(&b) {
            prop_assert!(c.descends(&ab));
        }
        let mut ba = b.clone();
        ba.merge(&a);
        prop_assert_eq!(&ab, &ba);
        let mut ab_c = ab.clone();
        ab_c.merge(&c);
        let mut bc = b.clone();
        bc.merge(&c);
        let mut a_bc = a.clone();
        a_bc.merge(&bc);
        prop_assert_eq!(ab_c, a_bc);
        let mut aa = a.clone();
        aa.merge(&a);
        prop_assert_eq!(aa, a);
    }

    /// meet is the greatest lower bound.
    #[test]
    fn meet_is_the_greatest_lower_bound(a in clocks(), b in clocks(), c in clocks()) {
        let mut ab = a.clone();
        ab.meet(&b);
        prop_assert!(a.descends(&ab) && b.descends(&ab));
        if a.descends(&c) && b.descends(&c) {
            prop_assert!(ab.descends(&c));
        }
        let mut ba = b.clone();
        ba.meet(&a);
        prop_assert_eq!(ab.compare(&ba), Causality::Equal);
    }

    /// An increment makes a clock that comes after the old one, and is
    /// concurrent with anything that did not see it.
    #[test]
    fn increment_moves_forward(a in clocks(), b in clocks(), actor in 0u64..6) {
        let mut next = a.clone();
        let dot = next.increment(Actor(actor), 1_000).unwrap();
        prop_assert_eq!(next.compare(&a), Causality::After);
        prop_assert!(next.covers(dot) && !a.covers(dot));
        if !b.covers(dot) && b.compare(&a) == Causality::Concurrent {
            prop_assert_eq!(next.compare(&b), Causality::Concurrent);
        }
    }

    /// Every clock survives its encoding, and junk never panics the decoder.
    #[test]
    fn encoding_round_trips(a in clocks(), junk in prop::collection::vec(any::<u8>(), 0..40)) {
        prop_assert_eq!(VectorClock::from_bytes(&a.to_bytes()), Ok(a));
        if let Ok(decoded) = VectorClock::from_bytes(&junk) {
            prop_assert_eq!(decoded.to_bytes(), junk);
        }
    }

    /// Pruning only forgets: the original descends from the pruned clock,
    /// and kept actors stay.
    #[test]
    fn pruning_only_forgets(a in clocks(), now_ms in 0u64..300, keep in 0u64..5) {
        let policy = PrunePolicy { small: 1, big: 2, young_ms: 10, old_ms: 50 };
        let mut pruned = a.clone();
        let removed = pruned.prune(&policy, now_ms, |actor| actor == Actor(keep));
        prop_assert_eq!(pruned.len() + removed, a.len());
        prop_assert!(a.descends(&pruned));
        prop_assert_eq!(pruned.get(Actor(keep)), a.get(Actor(keep)));
    }
}
