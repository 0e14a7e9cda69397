//! Model-based property test: random sequences of put / delete / batch / scan /
//! reverse scan / snapshot / flush / compact / reopen, checked against a `BTreeMap` after every step.
// Test code: a failed unwrap is the failure report (clippy.toml's
// allow-unwrap-in-tests does not reach helper functions outside #[test]).
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use lsm::{Db, Options, SyncPolicy, WriteBatch};
use proptest::prelude::*;

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

#[derive(Clone, Debug)]
enum Op {
    Put(u8, u16),
    /// A put whose expiry is already in the past: behaves like a delete.
    PutExpired(u8, u16),
    /// A put with a far-away expiry: behaves like a put.
    PutTtl(u8, u16),
    Delete(u8),
    Batch(Vec<(u8, Option<u16>)>),
    Get(u8),
    Scan(u8, u8),
    /// From `.1` down to `.0`; the high end excluded when `.2`.
    ScanRev(u8, u8, bool),
    Snapshot,
    DropSnapshot,
    Flush,
    Compact,
    Reopen,
}

fn key(k: u8) -> Vec<u8> {
    format!("key-{k:03}").into_bytes()
}

fn value(v: u16) -> Vec<u8> {
    // Varying sizes so blocks and tables split at different places.
    format!("value-{v}-")
        .repeat(1 + (v as usize % 7))
        .into_bytes()
}

fn op() -> impl Strategy<Value = Op> {
    let k = 0u8..40;
    prop_oneof![
        8 => (k.clone(), any::<u16>()).prop_map(|(k, v)| Op::Put(k, v)),
        1 => (k.clone(), any::<u16>()).prop_map(|(k, v)| Op::PutExpired(k, v)),
        1 => (k.clone(), any::<u16>()).prop_map(|(k, v)| Op::PutTtl(k, v)),
        3 => k.clone().prop_map(Op::Delete),
        2 => proptest::collection::vec((k.clone(), proptest::option::of(any::<u16>())), 1..8).prop_map(Op::Batch),
        3 => k.clone().prop_map(Op::Get),
        2 => (k.clone(), k.clone()).prop_map(|(a, b)| Op::Scan(a.min(b), a.max(b))),
        2 => (k.clone(), k, any::<bool>()).prop_map(|(a, b, x)| Op::ScanRev(a.min(b), a.max(b), x)),
        1 => Just(Op::Snapshot),
        1 => Just(Op::DropSnapshot),
        1 => Just(Op::Flush),
        1 => Just(Op::Compact),
        1 => Just(Op::Reopen),
    ]
}

fn opts() -> Options {
    Options {
        memtable_size_bytes: 2048,
        block_size_bytes: 128,
        table_size_bytes: 2048,
        level1_size_bytes: 4096,
        level_size_multiplier: 2,
        l0_compaction_trigger: 2,
        sync: SyncPolicy::No,
        ..Options::default()
    }
}

fn check_scan(iter: lsm::DbIter, model: &Model, lo: &[u8], hi: &[u8]) -> Result<(), TestCaseError> {
    let got: Vec<_> = iter
        .map(|kv| kv.map(|kv| (kv.key, kv.value)))
        .collect::<Result<_, _>>()
        .unwrap();
    let want: Vec<_> = model
        .range(lo.to_vec()..=hi.to_vec())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    prop_assert_eq!(got, want);
    Ok(())
}

/// A reverse scan returns the forward scan's entries, reversed.
fn check_scan_rev(
    iter: lsm::DbIterRev,
    model: &Model,
    lo: &[u8],
    hi: std::ops::Bound<&[u8]>,
) -> Result<(), TestCaseError> {
    let got: Vec<_> = iter
        .map(|kv| kv.map(|kv| (kv.key, kv.value)))
        .collect::<Result<_, _>>()
        .unwrap();
    let hi = hi.map(<[u8]>::to_vec);
    let want: Vec<_> = model
        .range((std::ops::Bound::Included(lo.to_vec()), hi))
        .rev()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    prop_assert_eq!(got, want);
    Ok(())
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let mut db = Some(Db::open(dir.path(), opts()).unwrap());
    let mut model = Model::new();
    let mut snaps: Vec<(lsm::Snapshot, Model)> = Vec::new();
    let far = u64::MAX / 2;
    for op in ops {
        let d = db.as_ref().unwrap();
        match op {
            Op::Put(k, v) => {
                d.put(&key(k), &value(v)).unwrap();
                model.insert(key(k), value(v));
            }
            Op::PutExpired(k, v) => {
                d.put_with_expiry(&key(k), &value(v), 1).unwrap();
                model.remove(&key(k));
            }
            Op::PutTtl(k, v) => {
                d.put_with_expiry(&key(k), &value(v), far).unwrap();
                model.insert(key(k), value(v));
            }
            Op::Delete(k) => {
                d.delete(&key(k)).unwrap();
                model.remove(&key(k));
            }
            Op::Batch(writes) => {
                let mut b = WriteBatch::new();
                for (k, v) in writes {
                    match v {
                        Some(v) => {
                            b.put(&key(k), &value(v));
                            model.insert(key(k), value(v));
                        }
                        None => {
                            b.delete(&key(k));
                            model.remove(&key(k));
                        }
                    }
                }
                d.write(&b).unwrap();
            }
            Op::Get(k) => prop_assert_eq!(d.get(&key(k)).unwrap(), model.get(&key(k)).cloned()),
            Op::Scan(a, b) => check_scan(
                d.scan(&key(a)[..]..=&key(b)[..]).unwrap(),
                &model,
                &key(a),
                &key(b),
            )?,
            Op::ScanRev(a, b, exclusive) => {
                let (lo, hi) = (key(a), key(b));
                let hi = if exclusive {
                    std::ops::Bound::Excluded(&hi[..])
                } else {
                    std::ops::Bound::Included(&hi[..])
                };
                let iter = d
                    .scan_rev((std::ops::Bound::Included(&lo[..]), hi))
                    .unwrap();
                check_scan_rev(iter, &model, &lo, hi)?;
            }
            Op::Snapshot => snaps.push((d.snapshot(), model.clone())),
            Op::DropSnapshot => drop(snaps.pop()),
            Op::Flush => d.flush().unwrap(),
            Op::Compact => d.compact().unwrap(),
            Op::Reopen => {
                snaps.clear(); // snapshots keep the store open
                drop(db.take()); // close before reopening: the store is locked while open
                db = Some(Db::open(dir.path(), opts()).unwrap());
            }
        }
        for (snap, at) in &snaps {
            check_scan(snap.scan(..).unwrap(), at, b"", b"\xff")?;
            check_scan_rev(
                snap.scan_rev(..).unwrap(),
                at,
                b"",
                std::ops::Bound::Unbounded,
            )?;
        }
    }
    let d = db.as_ref().unwrap();
    check_scan(d.scan(..).unwrap(), &model, b"", b"\xff")?;
    check_scan_rev(
        d.scan_rev(..).unwrap(),
        &model,
        b"",
        std::ops::Bound::Unbounded,
    )?;
    for k in 0..40 {
        prop_assert_eq!(d.get(&key(k)).unwrap(), model.get(&key(k)).cloned());
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn behaves_like_a_btreemap(ops in proptest::collection::vec(op(), 1..120)) {
        run(ops)?;
    }
}
