//! Property test of the subkey encoding: random collection operations on the
//! lsm engine against an in-memory model, with batches, savepoint rollbacks,
//! expiry, compactions and close + reopen in between. After each compaction
//! no subkey of a dead collection may be left on disk.

use std::collections::BTreeMap;
use std::ops::Bound;

use bytes::Bytes;
use proptest::prelude::*;

use super::{LsmEngine, keys, test_meta};
use crate::config::FsyncPolicy;
use crate::engine::{Engine, SubRange};
use crate::value::{Entry, Value};

/// What a key holds in the model.
#[derive(Clone, Debug, PartialEq)]
enum Held {
    Str(Vec<u8>),
    Coll(u64, BTreeMap<Vec<u8>, Vec<u8>>),
}

/// The model: keys with their value and whether their TTL has passed (an
/// expired key still counts until it is looked up, as in the engines).
#[derive(Clone, Debug, Default)]
struct Model {
    keys: BTreeMap<Vec<u8>, (Held, bool)>,
}

#[derive(Clone, Debug)]
enum Op {
    SubPut(u8, u8, u8),
    SubRemove(u8, u8),
    SubGet(u8, u8),
    Range(u8, Option<(u8, bool)>, Option<(u8, bool)>, bool, usize),
    Del(u8),
    SetString(u8),
    Recreate(u8),
    Expire(u8),
    Begin,
    Savepoint,
    Rollback,
    Commit,
    Compact,
    Reopen,
}

const KEYS: u8 = 4;
const SUBS: u8 = 24;

fn key(k: u8) -> Vec<u8> {
    // Keys that prefix each other ("h", "h\0", "hh"), to test that one
    // collection's range never reaches another's.
    [&b"h"[..], b"h\0", b"hh", b""][k as usize % 4].to_vec()
}

fn sub(s: u8) -> Vec<u8> {
    // Varied lengths and bytes, so byte order differs from number order.
    match s % 4 {
        0 => vec![s],
        1 => vec![b'm', s],
        2 => vec![s, 0, s],
        _ => vec![0xff; (s % 5) as usize],
    }
}

fn value(v: u8) -> Vec<u8> {
    vec![v; (v % 9) as usize]
}

fn op() -> impl Strategy<Value = Op> {
    let k = 0..KEYS;
    let s = 0..SUBS;
    let bound = proptest::option::of((0..SUBS, any::<bool>()));
    prop_oneof![
        10 => (k.clone(), s.clone(), any::<u8>()).prop_map(|(k, s, v)| Op::SubPut(k, s, v)),
        3 => (k.clone(), s.clone()).prop_map(|(k, s)| Op::SubRemove(k, s)),
        3 => (k.clone(), s).prop_map(|(k, s)| Op::SubGet(k, s)),
        4 => (k.clone(), bound.clone(), bound, any::<bool>(), 0usize..8)
            .prop_map(|(k, l, u, r, n)| Op::Range(k, l, u, r, n)),
        1 => k.clone().prop_map(Op::Del),
        1 => k.clone().prop_map(Op::SetString),
        1 => k.clone().prop_map(Op::Recreate),
        1 => k.prop_map(Op::Expire),
        2 => Just(Op::Begin),
        1 => Just(Op::Savepoint),
        1 => Just(Op::Rollback),
        2 => Just(Op::Commit),
        1 => Just(Op::Compact),
        1 => Just(Op::Reopen),
    ]
}

fn bound(b: &Option<(Vec<u8>, bool)>) -> Bound<&[u8]> {
    match b {
        Some((s, true)) => Bound::Included(s),
        Some((s, false)) => Bound::Excluded(s),
        None => Bound::Unbounded,
    }
}

/// The test's state: the engine, the model, and what a reopen or a
/// rollback returns to.
struct Run {
    dir: tempfile::TempDir,
    /// `None` only while reopening.
    engine: Option<LsmEngine>,
    model: Model,
    /// The model as of the last commit (what survives a reopen mid-batch).
    committed: Model,
    in_batch: bool,
    savepoints: Vec<(usize, Model)>,
    next_version: u64,
}

impl Run {
    fn open(dir: &tempfile::TempDir) -> LsmEngine {
        LsmEngine::open_engine(dir.path(), FsyncPolicy::No).unwrap()
    }

    fn e(&mut self) -> &mut LsmEngine {
        self.engine.as_mut().expect("open")
    }

    /// Closes the engine and opens it again. Keys whose TTL passed are
    /// gone (the scan at open does not see them).
    fn reopen(&mut self) {
        drop(self.engine.take());
        self.engine = Some(Self::open(&self.dir));
        for model in [&mut self.model, &mut self.committed] {
            model.keys.retain(|_, (_, expired)| !*expired);
        }
    }

    /// The collection version at `k`, after lazily expiring it (as the
    /// keyspace does on every lookup).
    fn live(&mut self, k: &[u8]) -> Option<Held> {
        let found = self.e().get(k).unwrap();
        let (held, expired) = match self.model.keys.get(k) {
            Some((held, expired)) => (Some(held.clone()), *expired),
            None => (None, false),
        };
        assert_eq!(found.is_some(), held.is_some(), "presence of {k:?}");
        if expired {
            assert!(found.unwrap().is_expired(clock::now_ms()));
            assert!(self.e().remove(k).unwrap());
            self.model.keys.remove(k);
            return None;
        }
        if let (Some(found), Some(held)) = (&found, &held) {
            match (&found.value, held) {
                (Value::Collection(m), Held::Coll(v, _)) => assert_eq!(m.version, *v),
                (Value::String(s), Held::Str(v)) => assert_eq!(&s[..], &v[..]),
                other => panic!("{other:?}"),
            }
        }
        held
    }

    fn collection(&mut self, k: &[u8]) -> Option<u64> {
        match self.live(k) {
            Some(Held::Coll(v, _)) => Some(v),
            _ => None,
        }
    }

    fn create(&mut self, k: &[u8]) -> u64 {
        self.next_version += 1;
        let v = self.next_version;
        self.e()
            .put(Bytes::copy_from_slice(k), test_meta(v, 1))
            .unwrap();
        self.model
            .keys
            .insert(k.to_vec(), (Held::Coll(v, BTreeMap::new()), false));
        v
    }

    fn subs(&mut self, k: &[u8]) -> &mut BTreeMap<Vec<u8>, Vec<u8>> {
        match self.model.keys.get_mut(k) {
            Some((Held::Coll(_, subs), _)) => subs,
            _ => unreachable!("checked by the caller"),
        }
    }

    fn step(&mut self, op: Op) -> Result<(), TestCaseError> {
        match op {
            Op::SubPut(k, s, v) => {
                let (k, s, v) = (key(k), sub(s), value(v));
                let version = match self.collection(&k) {
                    Some(version) => version,
                    None => self.create(&k),
                };
                self.e().sub_put(&k, version, &s, &v).unwrap();
                self.subs(&k).insert(s, v);
            }
            Op::SubRemove(k, s) => {
                let (k, s) = (key(k), sub(s));
                if let Some(version) = self.collection(&k) {
                    self.e().sub_remove(&k, version, &s).unwrap();
                    self.subs(&k).remove(&s);
                }
            }
            Op::SubGet(k, s) => {
                let (k, s) = (key(k), sub(s));
                if let Some(version) = self.collection(&k) {
                    let got = self.e().sub_get(&k, version, &s).unwrap();
                    let want = self.subs(&k).get(&s).cloned();
                    prop_assert_eq!(got.map(|b| b.to_vec()), want);
                }
            }
            Op::Range(k, lower, upper, reverse, limit) => {
                let k = key(k);
                if let Some(version) = self.collection(&k) {
                    let lower = lower.map(|(s, inc)| (sub(s), inc));
                    let upper = upper.map(|(s, inc)| (sub(s), inc));
                    let range = SubRange {
                        lower: bound(&lower),
                        upper: bound(&upper),
                        reverse,
                        limit,
                    };
                    let mut got = Vec::new();
                    self.e().sub_range(&k, version, &range, &mut got).unwrap();
                    let got: Vec<_> = got
                        .into_iter()
                        .map(|(s, v)| (s.to_vec(), v.to_vec()))
                        .collect();
                    let subs = self.subs(&k);
                    let inside = subs.iter().filter(|(s, _)| range.contains(s));
                    let want: Vec<_> = if reverse {
                        inside
                            .rev()
                            .take(limit)
                            .map(|(s, v)| (s.clone(), v.clone()))
                            .collect()
                    } else {
                        inside
                            .take(limit)
                            .map(|(s, v)| (s.clone(), v.clone()))
                            .collect()
                    };
                    prop_assert_eq!(got, want);
                }
            }
            Op::Del(k) => {
                let k = key(k);
                if self.live(&k).is_some() {
                    prop_assert!(self.e().remove(&k).unwrap());
                    self.model.keys.remove(&k);
                }
            }
            Op::SetString(k) => {
                let k = key(k);
                self.live(&k);
                self.e()
                    .put(
                        Bytes::copy_from_slice(&k),
                        Entry::string(Bytes::from_static(b"s")),
                    )
                    .unwrap();
                self.model.keys.insert(k, (Held::Str(b"s".to_vec()), false));
            }
            Op::Recreate(k) => {
                let k = key(k);
                self.live(&k);
                self.create(&k);
            }
            Op::Expire(k) => {
                let k = key(k);
                if self.live(&k).is_some() {
                    prop_assert!(self.e().set_expiry(&k, Some(1)).unwrap());
                    self.model.keys.get_mut(&k).unwrap().1 = true;
                }
            }
            Op::Begin => {
                if !self.in_batch {
                    self.e().begin_batch();
                    self.in_batch = true;
                    self.committed = self.model.clone();
                }
            }
            Op::Savepoint => {
                if self.in_batch {
                    let len = self.e().batch_len();
                    self.savepoints.push((len, self.model.clone()));
                }
            }
            Op::Rollback => {
                if let Some((len, model)) = self.savepoints.pop() {
                    self.e().rollback_batch(len);
                    self.model = model;
                }
            }
            Op::Commit => self.commit(),
            Op::Compact => {
                self.e().db.compact().unwrap();
                if !self.in_batch {
                    self.check_no_garbage()?;
                }
            }
            Op::Reopen => {
                if self.in_batch {
                    // Never committed: gone, as after a crash.
                    self.model = self.committed.clone();
                    self.in_batch = false;
                    self.savepoints.clear();
                }
                self.reopen();
            }
        }
        prop_assert_eq!(self.e().len(), self.model.keys.len());
        Ok(())
    }

    fn commit(&mut self) {
        if self.in_batch {
            self.e().commit_batch().unwrap();
            self.in_batch = false;
            self.savepoints.clear();
            self.committed = self.model.clone();
        }
    }

    /// Every subkey on disk belongs to a live collection of its version
    /// (called outside a batch: the model is what is on disk).
    fn check_no_garbage(&self) -> Result<(), TestCaseError> {
        for item in self
            .engine
            .as_ref()
            .unwrap()
            .db
            .scan_prefix(&[keys::SUB])
            .unwrap()
        {
            let item = item.unwrap();
            let parsed = keys::parse_sub(&item.key).unwrap();
            let live = matches!(
                self.model.keys.get(parsed.key),
                Some((Held::Coll(v, subs), false)) if *v == parsed.version && subs.contains_key(parsed.sub)
            );
            prop_assert!(live, "garbage left after compaction: {:?}", parsed);
        }
        Ok(())
    }

    fn check_all(&mut self) -> Result<(), TestCaseError> {
        let mut scanned = Vec::new();
        let mut cursor = 0;
        loop {
            cursor = self.e().scan(cursor, 3, &mut scanned).unwrap();
            if cursor == 0 {
                break;
            }
        }
        let scanned: Vec<Vec<u8>> = scanned.into_iter().map(|k| k.to_vec()).collect();
        // Every live key once, in order; a key whose TTL passed may be
        // missing (the LSM hides it; the keyspace drops it from replies).
        prop_assert!(scanned.windows(2).all(|w| w[0] < w[1]), "{:?}", scanned);
        for k in &scanned {
            prop_assert!(self.model.keys.contains_key(k), "scanned {:?}", k);
        }
        for (k, (_, expired)) in &self.model.keys {
            prop_assert!(*expired || scanned.contains(k), "missing {:?}", k);
        }
        for k in 0..KEYS {
            let k = key(k);
            if let Some(version) = self.collection(&k) {
                let mut got = Vec::new();
                self.e()
                    .sub_range(&k, version, &SubRange::all(usize::MAX), &mut got)
                    .unwrap();
                let got: Vec<_> = got
                    .into_iter()
                    .map(|(s, v)| (s.to_vec(), v.to_vec()))
                    .collect();
                let want: Vec<_> = self.subs(&k).clone().into_iter().collect();
                prop_assert_eq!(got, want);
            }
        }
        Ok(())
    }
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let engine = Some(Run::open(&dir));
    let mut run = Run {
        dir,
        engine,
        model: Model::default(),
        committed: Model::default(),
        in_batch: false,
        savepoints: Vec::new(),
        next_version: 1_000,
    };
    for op in ops {
        run.step(op)?;
    }
    run.check_all()?;
    run.commit();
    run.reopen();
    run.check_all()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn subkeys_behave_like_the_model(ops in proptest::collection::vec(op(), 1..80)) {
        run(ops)?;
    }
}
