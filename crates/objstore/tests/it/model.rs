//! Property test: random sequences of put, overwrite, delete, ranged get, seal,
//! compaction and reopen, against an in-memory model (a map id → bytes). After every
//! step the node must answer as the model does; at the end (and after a reopen) every
//! object, the listing and the live-byte accounting must match it exactly.

use std::collections::BTreeMap;

use objstore::{Node, ObjectId, Options};
use proptest::prelude::*;

use crate::support::{bytes, small};

#[derive(Clone, Debug)]
enum Step {
    /// Store a new object of `len` bytes.
    Put { len: usize, seed: u64 },
    /// Overwrite the `pick`-th known id (or store under a fresh given id).
    PutWithId { pick: usize, len: usize, seed: u64 },
    /// Delete the `pick`-th known id.
    Delete { pick: usize },
    /// Read a range of the `pick`-th known id.
    Get { pick: usize, from: usize, to: usize },
    /// Seal the read-write file.
    Seal,
    /// Run garbage collection.
    Gc,
    /// Close and open the node again.
    Reopen,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (0usize..1500, any::<u64>()).prop_map(|(len, seed)| Step::Put { len, seed }),
        2 => (any::<usize>(), 0usize..1500, any::<u64>())
            .prop_map(|(pick, len, seed)| Step::PutWithId { pick, len, seed }),
        4 => any::<usize>().prop_map(|pick| Step::Delete { pick }),
        4 => (any::<usize>(), 0usize..1600, 0usize..1600)
            .prop_map(|(pick, from, to)| Step::Get { pick, from, to }),
        1 => Just(Step::Seal),
        2 => Just(Step::Gc),
        1 => Just(Step::Reopen),
    ]
}

/// Every model object reads back whole, nothing else is listed, and the node's
/// accounting (objects, live bytes) is the model's.
fn check_all(node: &Node, model: &BTreeMap<ObjectId, Vec<u8>>) -> Result<(), TestCaseError> {
    for (id, data) in model {
        let got = node.get(*id, ..).unwrap();
        prop_assert_eq!(got.as_ref(), Some(data), "object {}", id);
    }
    let listed: Vec<ObjectId> = node.objects().unwrap().map(|r| r.unwrap().0).collect();
    prop_assert_eq!(listed, model.keys().copied().collect::<Vec<_>>());
    let s = node.stats();
    prop_assert_eq!(s.objects, model.len() as u64);
    let live: u64 = model.values().map(|d| d.len() as u64 + 40).sum();
    prop_assert_eq!(s.live_bytes, live);
    let files = node.files();
    prop_assert_eq!(s.files as usize, crate::support::files_on_disk(node.path()));
    for f in &files {
        prop_assert!(f.live_bytes <= f.size_bytes, "{:?}", f);
    }
    Ok(())
}

fn run(steps: Vec<Step>, opts: Options) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Some(Node::open(dir.path(), opts.clone()).unwrap());
    let mut model: BTreeMap<ObjectId, Vec<u8>> = BTreeMap::new();
    // Every id ever used, deleted ones included, so deletes and gets also hit absent ids.
    let mut known: Vec<ObjectId> = Vec::new();
    for step in steps {
        let n = node.as_ref().unwrap();
        match step {
            Step::Put { len, seed } => {
                let data = bytes(seed, len);
                let id = n.put(&data).unwrap();
                prop_assert!(!model.contains_key(&id));
                model.insert(id, data);
                known.push(id);
            }
            Step::PutWithId { pick, len, seed } => {
                let id = if known.is_empty() || pick % 5 == 0 {
                    let id = ObjectId::generate();
                    known.push(id);
                    id
                } else {
                    known[pick % known.len()]
                };
                let data = bytes(seed, len);
                n.put_with_id(id, &data).unwrap();
                model.insert(id, data);
            }
            Step::Delete { pick } if !known.is_empty() => {
                let id = known[pick % known.len()];
                prop_assert_eq!(n.delete(id).unwrap(), model.remove(&id).is_some());
            }
            Step::Get { pick, from, to } if !known.is_empty() => {
                let id = known[pick % known.len()];
                let got = n.get(id, from as u64..to as u64);
                match model.get(&id) {
                    None => prop_assert_eq!(got.unwrap(), None),
                    Some(d) if from <= to && to <= d.len() => {
                        prop_assert_eq!(got.unwrap().unwrap(), &d[from..to]);
                    }
                    Some(_) => {
                        prop_assert!(matches!(got, Err(objstore::Error::InvalidArgument(_))))
                    }
                }
            }
            Step::Delete { .. } | Step::Get { .. } => {}
            Step::Seal => n.seal().unwrap(),
            Step::Gc => {
                let r = n.gc().unwrap();
                prop_assert!(r.errors.is_empty(), "{:?}", r.errors);
            }
            Step::Reopen => {
                drop(node.take());
                node = Some(Node::open(dir.path(), opts.clone()).unwrap());
            }
        }
    }
    let n = node.take().unwrap();
    check_all(&n, &model)?;
    // Compacting everything that qualifies keeps every object.
    n.gc().unwrap();
    check_all(&n, &model)?;
    drop(n);
    let n = Node::open(dir.path(), opts).unwrap();
    check_all(&n, &model)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn node_matches_the_model(
        steps in proptest::collection::vec(step(), 1..120),
        file_kib in 4u64..24,
        ratio in prop_oneof![Just(0.3), Just(0.7), Just(1.0)],
    ) {
        let opts = Options {
            gc_live_ratio_max: ratio,
            // Small budgets so runs stop part way and the next run goes on.
            gc_files_per_run_max: 2,
            gc_copy_bytes_per_run_max: 8 << 10,
            ..small(file_kib << 10)
        };
        run(steps, opts)?;
    }
}
