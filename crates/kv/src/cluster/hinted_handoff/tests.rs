use super::*;
use crate::cluster::hlc::Hlc;
use crate::cluster::siblings::Siblings;
use crate::cluster::vector_clock::{Actor, Dot, VectorClock};

fn state(actor: u64, value: &str) -> Siblings {
    let mut s = Siblings::new();
    let dot = Dot {
        actor: Actor(actor),
        counter: 1,
    };
    let value = Some(Bytes::copy_from_slice(value.as_bytes()));
    s.write(value, &VectorClock::new(), dot, Hlc(1), 0).unwrap();
    s
}

fn hints(keys: usize, bytes: usize) -> Hints<Siblings> {
    let limits = Limits {
        keys_per_target_max: keys,
        bytes_per_target_max: bytes,
    };
    Hints::new(limits, Siblings::size_bytes)
}

#[test]
fn hints_for_one_key_join_and_deliver_once() {
    let mut store = hints(10, 10_000);
    let target = NodeId(3);
    store.add(target, "k".into(), &state(1, "a")).unwrap();
    store.add(target, "k".into(), &state(2, "b")).unwrap();
    assert_eq!(store.backlog().len(), 1);
    assert_eq!(store.backlog()[0].1, 1, "one entry per key");
    let batch = store.batch(target, 10);
    assert_eq!(batch.len(), 1);
    assert_eq!(batch[0].state.siblings().len(), 2, "both hinted writes");
    assert_eq!(store.get(b"k").as_ref(), Some(&batch[0].state));
    store.delivered(target, b"k", batch[0].seq);
    assert!(store.is_empty());
    assert_eq!(store.get(b"k"), None);
}

#[test]
fn a_hint_joined_during_delivery_is_kept_for_the_next_batch() {
    let mut store = hints(10, 10_000);
    let target = NodeId(3);
    store.add(target, "k".into(), &state(1, "a")).unwrap();
    let sent = store.batch(target, 10);
    store.add(target, "k".into(), &state(2, "b")).unwrap();
    store.delivered(target, b"k", sent[0].seq);
    let again = store.batch(target, 10);
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].state.siblings().len(), 2);
}

#[test]
fn a_full_queue_refuses_and_changes_nothing() {
    let mut store = hints(2, 10_000);
    let target = NodeId(1);
    store.add(target, "a".into(), &state(1, "x")).unwrap();
    store.add(target, "b".into(), &state(1, "x")).unwrap();
    let full = store.add(target, "c".into(), &state(1, "x")).unwrap_err();
    assert_eq!((full.target, full.keys), (target, 2));
    // Joining into a held key is still fine: it adds no key.
    store.add(target, "a".into(), &state(2, "y")).unwrap();
    // Other targets have their own bound.
    store.add(NodeId(2), "c".into(), &state(1, "x")).unwrap();
    let mut small = hints(10, 100);
    let big = "v".repeat(200);
    assert!(small.add(target, "k".into(), &state(1, &big)).is_err());
    assert!(small.is_empty());
}
