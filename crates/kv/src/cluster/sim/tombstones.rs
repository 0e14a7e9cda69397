//! Tombstone garbage collection under a partition: a replica that missed
//! a delete must not bring the value back, and the tombstone must leave
//! every store once the grace period is over and all replicas hold it.
//!
//! Why it exists: collecting a tombstone too early is exactly how a
//! deleted value resurrects (the replica that missed the delete offers
//! it to anti-entropy as new); `replica::tombstones` waits for Merkle
//! proof that every replica holds the tombstone, and this checks it with
//! the replica that missed the delete partitioned away past the grace.

use std::collections::BTreeMap;

use bytes::Bytes;

use super::world::World;
use super::{Scenario, TIMING, setup};
use crate::cluster::NodeId;
use crate::cluster::membership;
use crate::cluster::placement::QuorumMode;
use crate::cluster::quorum::Quorum;
use crate::cluster::siblings::Siblings;

fn state(world: &World, id: u32, key: &[u8]) -> Option<Siblings> {
    world
        .node(NodeId(id))
        .and_then(|n| n.disk.store.get(key).cloned())
}

fn live(state: &Option<Siblings>) -> bool {
    state
        .as_ref()
        .is_some_and(|s| s.siblings().iter().any(|x| x.value.is_some()))
}

/// One run; `Err` says what went wrong.
pub(super) fn run(seed: u64) -> Result<(), String> {
    let sc = Scenario {
        nodes: 3,
        quorum: Quorum::new(3, 2, 2).map_err(|e| e.to_string())?,
        mode: QuorumMode::Strict,
        datacenters: false,
    };
    let mut world = World::new(seed, setup(&sc, membership::Config::default()), 0, 1);
    let key = Bytes::from_static(b"doomed");
    let client = world.scripted_client();
    world.put_via(NodeId(1), client, key.clone(), Bytes::from_static(b"v"));
    world.run_until(2_000);
    if !(1..=3).all(|i| live(&state(&world, i, &key))) {
        return Err("the value did not reach every replica".into());
    }
    // Node 3 misses the delete.
    world.groups = Some(BTreeMap::from([
        (NodeId(1), 0),
        (NodeId(2), 0),
        (NodeId(3), 1),
    ]));
    world.delete_via(NodeId(1), client, key.clone());
    let grace = TIMING.tombstone_gc_grace_ms;
    world.run_until(2_000 + 2 * grace + 3_000);
    if world.history.acked.len() != 2 {
        return Err(format!("writes acknowledged: {:?}", world.history.acked));
    }
    for i in [1, 2] {
        let s = state(&world, i, &key);
        if s.is_none() || live(&s) {
            return Err(format!(
                "node {i} purged the tombstone (or lost it) while node 3 had not seen it: {s:?}"
            ));
        }
    }
    if !live(&state(&world, 3, &key)) {
        return Err("node 3 should still hold the value it missed the delete of".into());
    }
    // Heal: anti-entropy gives node 3 the tombstone; then all purge it.
    world.groups = None;
    let healed = world.now_ms;
    loop {
        let next = world.now_ms + 100;
        world.run_until(next);
        for i in 1..=3 {
            if i != 3 && live(&state(&world, i, &key)) {
                return Err(format!("the deleted value came back on node {i}"));
            }
        }
        if (1..=3).all(|i| state(&world, i, &key).is_none()) {
            break;
        }
        if world.now_ms - healed > 30_000 {
            let left: Vec<_> = (1..=3).map(|i| state(&world, i, &key)).collect();
            return Err(format!("the tombstone was never collected: {left:?}"));
        }
    }
    // And it stays gone (a late offer of the expired tombstone is refused).
    let next = world.now_ms + 5_000;
    world.run_until(next);
    if let Some(i) = (1..=3).find(|&i| state(&world, i, &key).is_some()) {
        return Err(format!(
            "node {i} stored the key again: {:?}",
            state(&world, i, &key)
        ));
    }
    let purged: u64 = (1..=3)
        .filter_map(|i| world.node(NodeId(i)))
        .map(|n| n.ae_progress().tombstones_purged)
        .sum();
    if purged != 3 {
        return Err(format!("{purged} purges, expected one per replica"));
    }
    Ok(())
}
