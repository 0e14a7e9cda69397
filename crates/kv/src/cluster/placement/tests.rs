use std::collections::BTreeSet;

use proptest::prelude::*;

use super::*;

fn spec(id: u32, dc: Option<&str>) -> NodeSpec {
    NodeSpec {
        id: NodeId(id),
        vnodes: 64,
        datacenter: dc.map(str::to_owned),
    }
}

fn plain(n: u32, replicas: usize) -> Placement {
    let nodes: Vec<NodeSpec> = (1..=n).map(|i| spec(i, None)).collect();
    Placement::new(&nodes, replicas).unwrap()
}

#[test]
fn without_datacenters_it_is_the_rings_preference_list() {
    let placement = plain(5, 3);
    let mut ring = Ring::new();
    for i in 1..=5 {
        ring.add_server(NodeId(i), 64).unwrap();
    }
    for k in 0..200 {
        let key = format!("key{k}");
        let expected: Vec<NodeId> = ring
            .preference_list(key.as_bytes(), 3)
            .into_iter()
            .copied()
            .collect();
        assert_eq!(placement.preference_list(key.as_bytes()), expected);
    }
}

#[test]
fn bad_replica_counts_are_refused() {
    let nodes = [spec(1, None), spec(2, None)];
    assert!(matches!(
        Placement::new(&nodes, 3),
        Err(PlacementError::Replicas {
            replicas: 3,
            nodes: 2
        })
    ));
    assert!(Placement::new(&nodes, 0).is_err());
    assert!(matches!(
        Placement::new(&[spec(1, None), spec(1, None)], 1),
        Err(PlacementError::Ring(_))
    ));
}

#[test]
fn replicas_spread_over_datacenters() {
    // Four nodes in "east", two in "west": every key still gets a copy in
    // each datacenter, and the owner stays first.
    let nodes = [
        spec(1, Some("east")),
        spec(2, Some("east")),
        spec(3, Some("east")),
        spec(4, Some("east")),
        spec(5, Some("west")),
        spec(6, Some("west")),
    ];
    let placement = Placement::new(&nodes, 3).unwrap();
    let east_only = plain(6, 3);
    let mut single_dc_lists = 0;
    for k in 0..500 {
        let key = format!("key{k}");
        let list = placement.preference_list(key.as_bytes());
        assert_eq!(list.len(), 3);
        assert_eq!(list[0], east_only.preference_list(key.as_bytes())[0]);
        assert!(list.iter().any(|n| n.0 >= 5), "{key}: {list:?}");
        assert!(list.iter().any(|n| n.0 <= 4), "{key}: {list:?}");
        let plain_list = east_only.preference_list(key.as_bytes());
        if plain_list.iter().all(|n| n.0 <= 4) {
            single_dc_lists += 1;
        }
    }
    // Without the rule, some keys would have lived in one datacenter only.
    assert!(single_dc_lists > 0);
}

#[test]
fn a_down_replica_is_replaced_by_the_next_node_with_a_hint() {
    let placement = plain(5, 3);
    let key = b"user:42";
    let list = placement.preference_list(key);
    let down = list[1];
    let targets = placement.targets(key, QuorumMode::Sloppy, |n| n != down);
    assert_eq!(targets.len(), 3);
    let substitute = targets.iter().find(|t| t.hint_for.is_some()).unwrap();
    assert_eq!(substitute.hint_for, Some(down));
    assert!(!list.contains(&substitute.node));
    // The substitute is the next node along the ring after the list.
    let walk = placement.walk(key);
    assert_eq!(substitute.node, walk[3]);
    // Strict: only the two up replicas.
    let strict = placement.targets(key, QuorumMode::Strict, |n| n != down);
    assert_eq!(strict.len(), 2);
    assert!(strict.iter().all(|t| t.hint_for.is_none()));
    // Coordinator: the first up replica.
    assert_eq!(placement.coordinator(key, |n| n != list[0]), Some(list[1]));
    assert_eq!(placement.coordinator(key, |n| !list.contains(&n)), None);
}

proptest! {
    /// Sloppy targets: distinct, all up, one per replica while enough
    /// nodes are up, hints naming exactly the down replicas.
    #[test]
    fn sloppy_targets_cover_every_replica(key in any::<Vec<u8>>(), down in prop::collection::btree_set(1u32..7, 0..4)) {
        let placement = plain(6, 3);
        let is_up = |n: NodeId| !down.contains(&n.0);
        let list = placement.preference_list(&key);
        let targets = placement.targets(&key, QuorumMode::Sloppy, is_up);
        let nodes: BTreeSet<NodeId> = targets.iter().map(|t| t.node).collect();
        prop_assert_eq!(nodes.len(), targets.len());
        prop_assert!(targets.iter().all(|t| is_up(t.node)));
        let up_count = 6 - down.len();
        prop_assert_eq!(targets.len(), 3.min(up_count));
        for t in &targets {
            match t.hint_for {
                None => prop_assert!(list.contains(&t.node)),
                Some(owner) => prop_assert!(list.contains(&owner) && !is_up(owner)),
            }
        }
    }
}
