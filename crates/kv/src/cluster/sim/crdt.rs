//! CRDT commands across a partition: both sides of a split cluster take
//! `INCRBY`, `SADD`/`SREM` and `HSET` on the same keys, and after the heal
//! the merge is the one each type promises.
//!
//! Why it exists: the chaos runs check that no increment is lost among
//! random faults; this scripted run makes the two conflicts the types
//! exist for happen for certain: increments on both sides (both count) and
//! an add on one side concurrent with a remove on the other that did not
//! observe it (the add survives), while a remove of a member nobody
//! re-added takes effect.

use bytes::Bytes;

use super::world::World;
use super::{Scenario, converged, down_bound_ms, final_states, setup};
use crate::cluster::NodeId;
use crate::cluster::crdt::{Crdt, Update};
use crate::cluster::membership;
use crate::cluster::placement::QuorumMode;
use crate::cluster::quorum::Quorum;

fn b(s: &str) -> Bytes {
    Bytes::from(s.to_owned())
}

/// One run; `Err` says which promise broke.
pub(super) fn partitioned_updates(seed: u64) -> Result<(), String> {
    let sc = Scenario {
        nodes: 3,
        quorum: Quorum::new(3, 1, 1).map_err(|e| e.to_string())?,
        mode: QuorumMode::Sloppy,
        datacenters: false,
    };
    let config = membership::Config::default();
    let mut world = World::new(seed, setup(&sc, config), 0, 1);
    let (counter, set, map) = (b("visits"), b("tags"), b("profile"));
    let step = |world: &mut World, node: u32, key: &Bytes, update: Update| {
        let client = world.scripted_client();
        world.update_via(NodeId(node), client, key.clone(), update);
    };
    // Before the split: everyone sees count 3 and members m, n.
    step(&mut world, 1, &counter, Update::Add(3));
    step(&mut world, 2, &set, Update::SetAdd(vec![b("m"), b("n")]));
    world.run_until(2_000);
    // Split {1} | {2, 3}, long enough for each side to mark the other down.
    world.groups = Some([(NodeId(1), 0), (NodeId(2), 1), (NodeId(3), 1)].into());
    world.run_until(world.now_ms + down_bound_ms(&config) + 1_000);
    let at = world.now_ms;
    step(&mut world, 1, &counter, Update::Add(5));
    step(&mut world, 2, &counter, Update::Add(7));
    // Side {2, 3} removes m and n as it knows them; side {1} re-adds m.
    step(&mut world, 2, &set, Update::SetRemove(vec![b("m"), b("n")]));
    step(&mut world, 1, &set, Update::SetAdd(vec![b("m")]));
    step(
        &mut world,
        1,
        &map,
        Update::MapSet(vec![(b("f"), b("a")), (b("g"), b("x"))]),
    );
    world.run_until(at + 500);
    step(&mut world, 3, &map, Update::MapSet(vec![(b("f"), b("b"))]));
    world.run_until(at + 3_000);
    if world.history.incr_acked != 15 {
        return Err(format!(
            "increments acknowledged: {}",
            world.history.incr_acked
        ));
    }
    world.groups = None;
    let healed = world.now_ms;
    while !(world.clients_idle() && world.all_up_everywhere() && converged(&world)) {
        if world.now_ms > healed + 60_000 {
            return Err("not converged 60 s after heal".into());
        }
        world.run_until(world.now_ms + 250);
    }
    let placement = world
        .node(NodeId(1))
        .ok_or("node 1 down")?
        .placement()
        .clone();
    let states = final_states(&world, &placement)?;
    let merged = |key: &Bytes| -> Result<Crdt, String> {
        let state = states.get(key).ok_or(format!("{key:?} gone"))?;
        Crdt::of_siblings(state)
            .map_err(|e| e.to_string())?
            .ok_or(format!("{key:?} empty"))
    };
    match merged(&counter)? {
        Crdt::Counter(c) if c.value() == 15 => {}
        other => return Err(format!("counter: {other:?}, want 15")),
    }
    match merged(&set)? {
        Crdt::Set(s) if s.contains(b"m") && !s.contains(b"n") => {}
        other => return Err(format!("set: {other:?}, want m (re-added) without n")),
    }
    match merged(&map)? {
        Crdt::Map(m) if m.get(b"f") == Some(&b("b")) && m.get(b"g") == Some(&b("x")) => Ok(()),
        other => Err(format!("map: {other:?}, want f=b (the later write), g=x")),
    }
}
