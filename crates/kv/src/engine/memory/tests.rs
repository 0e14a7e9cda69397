use std::collections::{HashMap, HashSet};

use bytes::Bytes;
use proptest::prelude::*;

use super::*;
use crate::value::{Entry, Value};

fn entry(value: &[u8], expire_at_ms: Option<u64>) -> Entry {
    Entry {
        value: Value::String(Bytes::copy_from_slice(value)),
        expire_at_ms,
    }
}

fn key(i: u32) -> Bytes {
    Bytes::from(format!("key:{i}"))
}

#[derive(Debug, Clone)]
enum Op {
    Put(u8, u8, Option<u64>),
    Remove(u8),
    Expire(u8, Option<u64>),
    Append(u8, u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (any::<u8>(), any::<u8>(), any::<Option<u64>>()).prop_map(|(k, v, e)| Op::Put(
            k % 32,
            v,
            e
        )),
        any::<u8>().prop_map(|k| Op::Remove(k % 32)),
        (any::<u8>(), any::<Option<u64>>()).prop_map(|(k, e)| Op::Expire(k % 32, e)),
        (any::<u8>(), any::<u8>()).prop_map(|(k, v)| Op::Append(k % 32, v)),
    ]
}

proptest! {
    /// The engine behaves like a plain map, and its slab, index, volatile
    /// list and memory count stay consistent after every operation.
    #[test]
    fn engine_matches_a_map_model(ops in proptest::collection::vec(op(), 1..200)) {
        let mut engine = MemoryEngine::new(0, EvictionPolicy::NoEviction, 5);
        let mut model: HashMap<Bytes, Entry> = HashMap::new();
        for op in ops {
            match op {
                Op::Put(k, v, e) => {
                    let value = vec![v; usize::from(v % 7)];
                    engine.put(key(k.into()), entry(&value, e)).unwrap();
                    model.insert(key(k.into()), entry(&value, e));
                }
                Op::Remove(k) => {
                    prop_assert_eq!(engine.remove(&key(k.into())).unwrap(), model.remove(&key(k.into())).is_some());
                }
                Op::Expire(k, e) => {
                    let present = model.get_mut(&key(k.into())).map(|m| m.expire_at_ms = e).is_some();
                    prop_assert_eq!(engine.set_expiry(&key(k.into()), e).unwrap(), present);
                }
                Op::Append(k, v) => {
                    let modified = engine.modify(&key(k.into()), &mut |entry| {
                        if let Value::String(b) = &mut entry.value {
                            append_in_place(b, &[v]);
                        }
                    }).unwrap();
                    let Some(m) = model.get_mut(&key(k.into())) else { prop_assert!(!modified); continue };
                    if let Value::String(b) = &mut m.value {
                        let mut grown = b.to_vec();
                        grown.push(v);
                        *b = Bytes::from(grown);
                    }
                }
            }
            engine.check_invariants();
        }
        prop_assert_eq!(engine.len(), model.len());
        prop_assert_eq!(engine.volatile_len(), model.values().filter(|e| e.expire_at_ms.is_some()).count());
        for (k, v) in &model {
            let got = engine.get(k).unwrap();
            prop_assert_eq!(got.as_ref(), Some(v));
        }
    }
}

#[test]
fn scan_returns_every_stable_key_once_despite_churn() {
    let mut engine = MemoryEngine::new(0, EvictionPolicy::NoEviction, 5);
    for i in 0..1000 {
        engine.put(key(i), entry(b"v", None)).unwrap();
    }
    let mut seen = Vec::new();
    let mut cursor = 0;
    let mut round = 0;
    loop {
        cursor = engine.scan(cursor, 10, &mut seen).unwrap();
        // Churn: delete and add keys 1000.. while scanning; keys 0..500 stay.
        engine.remove(&key(500 + round)).unwrap();
        engine.put(key(2000 + round), entry(b"v", None)).unwrap();
        round += 1;
        if cursor == 0 {
            break;
        }
    }
    let stable: Vec<&Bytes> = seen
        .iter()
        .filter(|k| (0..500).any(|i| key(i) == **k))
        .collect();
    assert_eq!(stable.len(), 500, "every stable key exactly once");
    assert_eq!(stable.iter().collect::<HashSet<_>>().len(), 500);
}

fn fill_until_evicting(policy: EvictionPolicy, keys: u32) -> MemoryEngine {
    let per_key = KEY_OVERHEAD_BYTES + 7 + 100;
    let mut engine = MemoryEngine::new(per_key * 100, policy, 10);
    let mut evicted = Vec::new();
    for i in 0..keys {
        // Ten persistent keys (even, below 20); every other key has a TTL.
        let persistent = i < 20 && i % 2 == 0;
        let expiry = (!persistent).then_some(1_000_000 + u64::from(i));
        engine.put(key(i), entry(&[b'x'; 100], expiry)).unwrap();
        engine.make_room(&mut evicted).unwrap();
        assert!(engine.memory().used_bytes <= engine.memory().maxmemory);
        engine.check_invariants();
    }
    engine
}

#[test]
fn noeviction_refuses_once_full() {
    let mut engine = MemoryEngine::new(1000, EvictionPolicy::NoEviction, 5);
    for i in 0..10 {
        engine.put(key(i), entry(&[0; 100], None)).unwrap();
    }
    assert!(matches!(
        engine.make_room(&mut Vec::new()),
        Err(EngineError::OutOfMemory)
    ));
}

#[test]
fn every_policy_stays_under_maxmemory() {
    for (policy, _) in EvictionPolicy::ALL {
        if policy == EvictionPolicy::NoEviction {
            continue;
        }
        let engine = fill_until_evicting(policy, 1000);
        assert!(engine.len() <= 100, "{policy}");
        if policy.volatile_only() {
            // Only keys with a TTL may go: the persistent ones all stay.
            for i in (0..20).step_by(2) {
                assert!(
                    engine.index.contains_key(&key(i)[..]),
                    "{policy} evicted persistent key {i}"
                );
            }
        }
    }
}

#[test]
fn lru_keeps_recently_read_keys() {
    let per_key = KEY_OVERHEAD_BYTES + 7 + 100;
    let mut engine = MemoryEngine::new(per_key * 100, EvictionPolicy::AllKeysLru, 10);
    let mut evicted = Vec::new();
    for i in 0..100 {
        engine.put(key(i), entry(&[b'x'; 100], None)).unwrap();
    }
    // Keys 0..10 are hot: read them between every insert of new keys.
    for i in 100..400 {
        for hot in 0..10 {
            engine.get(&key(hot)).unwrap();
        }
        engine.put(key(i), entry(&[b'x'; 100], None)).unwrap();
        engine.make_room(&mut evicted).unwrap();
    }
    let hot_kept = (0..10)
        .filter(|&i| engine.index.contains_key(&key(i)[..]))
        .count();
    assert!(hot_kept >= 9, "only {hot_kept} of 10 hot keys survived LRU");
}

#[test]
fn fifo_evicts_oldest_first() {
    let engine = fill_until_evicting(EvictionPolicy::AllKeysFifo, 1000);
    let survivors = (0..1000)
        .filter(|&i| engine.index.contains_key(&key(i)[..]))
        .collect::<Vec<_>>();
    // Sampling is approximate, but survivors are overwhelmingly recent.
    let recent = survivors.iter().filter(|&&i| i >= 700).count();
    assert!(
        recent * 10 >= survivors.len() * 9,
        "survivors {survivors:?}"
    );
}

#[test]
fn lfu_counter_grows_logarithmically_and_decays() {
    let mut rng = fastrand::Rng::with_seed(42);
    let mut lfu = eviction::Lfu::new(0);
    for _ in 0..1000 {
        lfu.access(0, 1, 10, rng.f64());
    }
    let after_1000 = lfu.counter();
    for _ in 0..100_000 {
        lfu.access(0, 1, 10, rng.f64());
    }
    // Redis's table for factor 10: ~18 after 1K hits, ~142 after 100K.
    assert!((12..=30).contains(&after_1000), "{after_1000}");
    let after_101k = lfu.counter();
    assert!((100..=200).contains(&after_101k), "{after_101k}");
    lfu.access(30, 1, 10, 1.0); // 30 idle minutes at 1 per minute, no increment
    assert_eq!(lfu.counter(), after_101k - 30);
}

/// `OBJECT IDLETIME`'s stamps: set by reads and writes at the command's
/// clock, left alone by peeks; small integers share one stamp per number.
#[test]
fn access_stamps_follow_reads_writes_and_shared_integers() {
    let mut e = MemoryEngine::new(0, EvictionPolicy::NoEviction, 5);
    let second = |s: u64| s * 1000 + 400;
    e.set_clock(second(100));
    e.put(key(1), entry(b"hello", None)).unwrap();
    e.put(key(2), entry(b"hello", None)).unwrap();
    e.put(key(3), entry(b"7", None)).unwrap();
    e.set_clock(second(103));
    assert_eq!(e.idle_seconds(&key(1)), Some(3));
    e.get(&key(1)).unwrap();
    e.peek(&key(2)).unwrap();
    assert_eq!(e.idle_seconds(&key(1)), Some(0));
    assert_eq!(e.idle_seconds(&key(2)), Some(3));
    // Reading one 7 stamps the shared 7: a new key holding 7 has its age.
    e.get(&key(3)).unwrap();
    e.set_clock(second(105));
    e.put(key(4), entry(b"7", None)).unwrap();
    assert_eq!(e.idle_seconds(&key(4)), Some(2));
    // An in-place edit makes a private value, stamped now.
    e.modify(&key(3), &mut |entry| {
        entry.value = Value::String(Bytes::from("7x"))
    })
    .unwrap();
    assert_eq!(e.idle_seconds(&key(3)), Some(0));
    assert_eq!(e.idle_seconds(&key(9)), None);
    // With a limit under an LRU policy nothing is shared.
    let mut lru = MemoryEngine::new(1 << 30, EvictionPolicy::AllKeysLru, 5);
    lru.set_clock(second(100));
    lru.put(key(1), entry(b"7", None)).unwrap();
    lru.set_clock(second(101));
    lru.put(key(2), entry(b"7", None)).unwrap();
    assert_eq!(lru.idle_seconds(&key(1)), Some(1));
    assert_eq!(lru.idle_seconds(&key(2)), Some(0));
}
