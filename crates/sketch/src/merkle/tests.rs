use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::*;

/// A tree built from scratch over `items`.
fn built(depth: u8, items: &BTreeMap<Vec<u8>, u64>) -> MerkleTree {
    let mut tree = MerkleTree::new(depth).unwrap();
    for (key, &digest) in items {
        tree.insert(key, digest);
    }
    tree
}

/// The buckets whose item sets differ, computed the slow way.
fn differing_buckets(
    depth: u8,
    a: &BTreeMap<Vec<u8>, u64>,
    b: &BTreeMap<Vec<u8>, u64>,
) -> Vec<u32> {
    let tree = MerkleTree::new(depth).unwrap();
    let mut buckets = BTreeSet::new();
    for key in a.keys().chain(b.keys()) {
        if a.get(key) != b.get(key) {
            buckets.insert(tree.bucket_of(key));
        }
    }
    buckets.into_iter().collect()
}

fn items() -> impl Strategy<Value = BTreeMap<Vec<u8>, u64>> {
    prop::collection::btree_map(prop::collection::vec(any::<u8>(), 0..6), 0u64..4, 0..60)
}

#[test]
fn an_empty_tree_has_root_zero_and_depth_limits_hold() {
    let tree = MerkleTree::new(4).unwrap();
    assert_eq!(tree.root(), 0);
    assert!(tree.is_empty());
    assert_eq!(tree.bucket_count(), 16);
    assert_eq!(
        MerkleTree::new(DEPTH_MAX + 1),
        Err(MerkleError::TooDeep(DEPTH_MAX + 1))
    );
    let zero = MerkleTree::new(0).unwrap();
    assert_eq!(zero.bucket_of(b"anything"), 0);
}

#[test]
fn buckets_are_contiguous_arcs_of_the_ring() {
    let tree = MerkleTree::new(3).unwrap();
    assert_eq!(tree.bucket_of_position(0), 0);
    assert_eq!(tree.bucket_of_position(u64::MAX), 7);
    assert_eq!(tree.bucket_of_position(1 << 61), 1);
    assert_eq!(tree.bucket_of_position((1 << 61) - 1), 0);
    assert_eq!(
        tree.bucket_of(b"key0"),
        tree.bucket_of_position(xxh3_64(b"key0"))
    );
}

#[test]
fn one_changed_version_is_found_in_its_bucket() {
    let mut a = MerkleTree::new(6).unwrap();
    let mut b = MerkleTree::new(6).unwrap();
    for i in 0..1000u32 {
        let key = format!("k{i}");
        a.insert(key.as_bytes(), 1);
        b.insert(key.as_bytes(), 1);
    }
    assert_eq!(a.root(), b.root());
    assert_eq!(a.diff(&b).unwrap().rounds, 1);
    b.replace(b"k500", Some(1), Some(2));
    assert_ne!(a.root(), b.root());
    let diff = a.diff(&b).unwrap();
    assert_eq!(diff.buckets, vec![a.bucket_of(b"k500")]);
    // One path down: 1 root + 2 labels per level below it.
    assert_eq!(diff.labels_compared, 1 + 2 * 6);
    assert_eq!(diff.rounds, 7);
}

#[test]
fn remote_input_is_checked() {
    let tree = MerkleTree::new(2).unwrap();
    assert!(matches!(
        tree.hashes(3, &[0]),
        Err(MerkleError::NoSuchLevel { level: 3, depth: 2 })
    ));
    assert!(matches!(
        tree.hashes(1, &[2]),
        Err(MerkleError::NoSuchNode { index: 2, .. })
    ));
    assert!(matches!(
        tree.hashes(0, &[0, 0]),
        Err(MerkleError::TooMany { count: 2, .. })
    ));
    assert!(matches!(
        tree.compare(2, &[(9, 1)]),
        Err(MerkleError::NoSuchNode { index: 9, .. })
    ));
    assert!(matches!(
        tree.diff(&MerkleTree::new(3).unwrap()),
        Err(MerkleError::DepthMismatch { ours: 2, theirs: 3 })
    ));
}

proptest! {
    /// Equal contents ⇔ equal roots, whatever order the items came in.
    #[test]
    fn equal_contents_iff_equal_roots(a in items(), b in items(), depth in 0u8..8) {
        let tree_a = built(depth, &a);
        let mut reversed = MerkleTree::new(depth).unwrap();
        for (key, &digest) in a.iter().rev() {
            reversed.insert(key, digest);
        }
        prop_assert_eq!(tree_a.root(), reversed.root());
        let tree_b = built(depth, &b);
        prop_assert_eq!(a == b, tree_a.root() == tree_b.root());
        prop_assert_eq!(tree_a.len(), a.len() as u64);
    }

    /// The descent finds exactly the buckets whose contents differ.
    #[test]
    fn diff_finds_exactly_the_differing_buckets(
        a in items(),
        edits in prop::collection::vec((prop::collection::vec(any::<u8>(), 0..6), prop::option::of(0u64..4)), 0..8),
        depth in 0u8..8,
    ) {
        let mut b = a.clone();
        for (key, digest) in edits {
            match digest {
                Some(d) => { b.insert(key, d); }
                None => { b.remove(&key); }
            }
        }
        let (tree_a, tree_b) = (built(depth, &a), built(depth, &b));
        let expected = differing_buckets(depth, &a, &b);
        let diff = tree_a.diff(&tree_b).unwrap();
        prop_assert_eq!(&diff.buckets, &expected);
        prop_assert_eq!(tree_b.diff(&tree_a).unwrap().buckets, expected);
    }

    /// Updating in place (insert, replace, remove in any order) gives the
    /// same tree as building it from the final contents.
    #[test]
    fn incremental_updates_equal_a_rebuild(
        ops in prop::collection::vec((prop::collection::vec(any::<u8>(), 0..4), prop::option::of(0u64..4)), 0..120),
        depth in 0u8..8,
    ) {
        let mut contents = BTreeMap::new();
        let mut tree = MerkleTree::new(depth).unwrap();
        for (key, digest) in ops {
            let old = contents.get(&key).copied();
            match digest {
                Some(d) => { contents.insert(key.clone(), d); }
                None => { contents.remove(&key); }
            }
            tree.replace(&key, old, digest);
        }
        prop_assert_eq!(&tree, &built(depth, &contents));
    }

    /// Random labels from a "remote" never panic the comparison.
    #[test]
    fn compare_survives_any_remote_labels(
        level in 0u8..10,
        remote in prop::collection::vec((any::<u32>(), any::<u64>()), 0..40),
    ) {
        let tree = built(5, &BTreeMap::from([(b"x".to_vec(), 1)]));
        let _ = tree.compare(level, &remote);
        let indices: Vec<u32> = remote.iter().map(|r| r.0).collect();
        let _ = tree.hashes(level, &indices);
    }
}
