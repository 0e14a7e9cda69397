use proptest::prelude::*;

use super::*;

pub(crate) fn dot(actor: u64, counter: u64) -> Dot {
    Dot {
        actor: Actor(actor),
        counter,
    }
}

fn clock(pairs: &[(u64, u64)]) -> VectorClock {
    let mut clock = VectorClock::new();
    for &(actor, counter) in pairs {
        clock.advance(dot(actor, counter), 0);
    }
    clock
}

fn values(state: &Siblings) -> Vec<&[u8]> {
    state
        .siblings()
        .iter()
        .map(|s| s.value.as_deref().unwrap_or(b"<deleted>"))
        .collect()
}

fn put(state: &mut Siblings, value: &str, context: &VectorClock, d: Dot, at_ms: u64) {
    let value = Some(Bytes::copy_from_slice(value.as_bytes()));
    state
        .write(value, context, d, Hlc::from_ms(at_ms), at_ms)
        .unwrap();
}

/// Any well-formed state: a context, and a subset of the dots it covers as
/// siblings, each dot's content a function of the dot (as in a real
/// cluster, where one dot is one write).
pub(crate) fn states() -> impl Strategy<Value = Siblings> {
    (
        prop::collection::btree_map(0u64..4, 1u64..4, 0..4),
        any::<u16>(),
    )
        .prop_map(|(counters, pick)| {
            let mut state = Siblings::new();
            let mut bit = 0;
            for (&actor, &top) in &counters {
                for counter in 1..=top {
                    state.context.advance(dot(actor, counter), counter * 10);
                    if pick & (1 << (bit % 16)) != 0 {
                        let d = dot(actor, counter);
                        state.siblings.push(Sibling {
                            dot: d,
                            hlc: Hlc(counter * 7 + actor),
                            value: (counter != 2)
                                .then(|| Bytes::from(format!("{actor}:{counter}"))),
                        });
                    }
                    bit += 1;
                }
            }
            state.siblings.sort_by_key(|s| s.dot);
            state
        })
}

#[test]
fn causally_later_writes_replace_and_concurrent_ones_stay() {
    let mut key = Siblings::new();
    put(&mut key, "v1", &VectorClock::new(), dot(1, 1), 1);
    let seen_v1 = key.context().clone();
    // Two clients both read v1 and write through different nodes.
    let mut at_b = key.clone();
    put(&mut key, "from-a", &seen_v1, dot(1, 2), 2);
    put(&mut at_b, "from-b", &seen_v1, dot(2, 1), 2);
    assert_eq!(values(&key), [b"from-a"]);
    key.join(&at_b);
    assert_eq!(values(&key), [b"from-a".as_slice(), b"from-b"]);
    // A client that read both resolves them.
    let both = key.context().clone();
    put(&mut key, "merged", &both, dot(1, 3), 3);
    assert_eq!(values(&key), [b"merged"]);
    // A replica still holding the old siblings learns the resolution.
    at_b.join(&key);
    assert_eq!(at_b, key);
}

/// The lost-update bug of one clock per sibling: the coordinator holds its
/// own write A:3 that the client never saw.
#[test]
fn a_write_never_drops_a_version_its_client_did_not_see() {
    let mut key = Siblings::new();
    put(&mut key, "seen", &VectorClock::new(), dot(1, 1), 1);
    let old_context = key.context().clone();
    put(&mut key, "unseen", &old_context, dot(1, 3), 2);
    put(&mut key, "new", &old_context, dot(1, 4), 3);
    assert_eq!(values(&key), [b"unseen".as_slice(), b"new"]);
}

#[test]
fn a_forged_context_cannot_retire_future_writes() {
    let mut key = Siblings::new();
    put(&mut key, "v1", &VectorClock::new(), dot(1, 1), 1);
    let forged = clock(&[(1, 1), (2, 1_000_000), (3, 5)]);
    put(&mut key, "v2", &forged, dot(1, 2), 2);
    assert_eq!(key.context(), &clock(&[(1, 2)]).stamped(2));
    // Actor 2's later write is still new here, so it is kept.
    let mut other = Siblings::new();
    put(&mut other, "from-2", &VectorClock::new(), dot(2, 7), 3);
    key.join(&other);
    assert_eq!(values(&key), [b"v2".as_slice(), b"from-2"]);
    assert_eq!(
        key.write(None, &VectorClock::new(), dot(1, 2), Hlc(0), 0),
        Err(StaleDot(dot(1, 2)))
    );
}

impl VectorClock {
    fn stamped(mut self, at_ms: u64) -> VectorClock {
        let dots: Vec<Dot> = self
            .entries()
            .iter()
            .map(|e| dot(e.actor.0, e.counter))
            .collect();
        self = VectorClock::new();
        for d in dots {
            self.advance(d, at_ms);
        }
        self
    }
}

#[test]
fn resolution_policies() {
    let mut key = Siblings::new();
    assert_eq!(key.resolve(Resolution::ErrorOnConflict), Ok(None));
    put(&mut key, "older", &VectorClock::new(), dot(2, 1), 5);
    put(&mut key, "newer", &VectorClock::new(), dot(1, 1), 9);
    let winner = key.resolve(Resolution::LastWriterWins).unwrap().unwrap();
    assert_eq!(winner.value.as_deref(), Some(b"newer".as_slice()));
    assert_eq!(
        key.resolve(Resolution::ErrorOnConflict),
        Err(Conflict { siblings: 2 })
    );
    // A delete that covers both leaves one tombstone: no value.
    let all = key.context().clone();
    key.write(None, &all, dot(1, 2), Hlc::from_ms(10), 10)
        .unwrap();
    assert_eq!(key.siblings().len(), 1);
    assert_eq!(key.resolve(Resolution::ErrorOnConflict), Ok(None));
}

#[test]
fn pruning_keeps_the_actors_of_live_siblings() {
    let mut key = Siblings::new();
    for actor in 1..=5 {
        put(&mut key, "x", &VectorClock::new(), dot(actor, 1), actor);
    }
    let all = key.context().clone();
    put(&mut key, "last", &all, dot(9, 1), 100_000);
    let policy = PrunePolicy {
        small: 1,
        big: 1,
        young_ms: 0,
        old_ms: 0,
    };
    assert_eq!(key.prune(&policy, 200_000), 5);
    assert_eq!(key.context().len(), 1);
    assert_eq!(key.context().get(Actor(9)), 1);
}

#[test]
fn the_encoding_refuses_bad_input() {
    let mut key = Siblings::new();
    put(&mut key, "v", &VectorClock::new(), dot(1, 1), 1);
    let bytes = key.to_bytes();
    assert_eq!(Siblings::from_bytes(&bytes, 16), Ok(key.clone()));
    assert!(matches!(
        Siblings::from_bytes(&bytes, 0),
        Err(DecodeError::TooLarge { .. })
    ));
    let mut wrong_format = bytes.clone();
    wrong_format[0] = 9;
    assert!(Siblings::from_bytes(&wrong_format, 16).is_err());
    // A sibling whose dot its context does not cover.
    let orphan = Siblings {
        siblings: key.siblings.clone(),
        context: VectorClock::new(),
    };
    assert!(Siblings::from_bytes(&orphan.to_bytes(), 16).is_err());
    let context = encode_context(key.context());
    assert_eq!(decode_context(&context).as_ref(), Ok(key.context()));
    assert_eq!(decode_context(b""), Ok(VectorClock::new()));
    assert!(decode_context(b"\x02\x00").is_err());
}

proptest! {
    /// The join is a semilattice join: replicas converge whatever order
    /// states arrive in, and re-delivery changes nothing.
    #[test]
    fn join_is_commutative_associative_idempotent(a in states(), b in states(), c in states()) {
        crate::cluster::crdt::check_lattice_laws(&a, &b, &c, |x, y| x.join(y))?;
    }

    /// A join drops a sibling only if the other side has seen its dot.
    #[test]
    fn join_never_drops_an_unseen_version(a in states(), b in states()) {
        let mut joined = a.clone();
        joined.join(&b);
        for s in a.siblings().iter().chain(b.siblings()) {
            let seen_elsewhere = |x: &Siblings| x.context().covers(s.dot) && !x.contains(s.dot);
            prop_assert!(joined.contains(s.dot) || seen_elsewhere(&a) || seen_elsewhere(&b));
        }
        prop_assert!(joined.context().descends(a.context()) && joined.context().descends(b.context()));
    }

    /// Every state survives its encoding; junk never panics the decoder.
    #[test]
    fn the_encoding_round_trips(a in states(), junk in prop::collection::vec(any::<u8>(), 0..48)) {
        prop_assert_eq!(Siblings::from_bytes(&a.to_bytes(), 64), Ok(a.clone()));
        if let Ok(decoded) = Siblings::from_bytes(&junk, 64) {
            prop_assert_eq!(decoded.to_bytes(), junk);
        }
        let context = decode_context(&encode_context(a.context()));
        prop_assert_eq!(context.as_ref(), Ok(a.context()));
    }
}
