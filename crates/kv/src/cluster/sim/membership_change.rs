//! Runs in which a node joins and another leaves while clients read and
//! write under a strict quorum: no acknowledged write is lost, every key's
//! history stays linearizable, and the change completes (issue 12's
//! "join and leave stream the affected ranges, the cluster stays available
//! throughout, and no acknowledged write is lost").
//!
//! Why it exists: the phases of [`crate::cluster::topology`] are only
//! safe together with the node's joint rounds, seen barrier and streaming
//! (`replica::change`); this runs them all, with message delays long
//! enough for writes to race the change.

use std::collections::BTreeMap;

use bytes::Bytes;

use super::linearizability::{self, Operation, Verdict};
use super::world::World;
use super::{Scenario, setup};
use crate::cluster::NodeId;
use crate::cluster::membership::{self, Event as MemberEvent};
use crate::cluster::placement::{NodeSpec, QuorumMode};
use crate::cluster::quorum::Quorum;
use crate::cluster::replica::MemberChange;
use crate::cluster::topology::Phase;

const CLIENTS: usize = 6;
const KEYS: usize = 4;
const DELAY_MAX_MS: u64 = 60;
const SEARCH_BUDGET: u64 = 2_000_000;
/// Keys written once before the join and never again: only streaming
/// moves them to the new node.
const COLD_KEYS: u32 = 40;
/// How long one change may take to complete.
const CHANGE_BOUND_MS: u64 = 20_000;

/// What one run saw.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Seen {
    /// Acknowledged writes checked.
    pub acked: usize,
    /// Simulated time the join and the leave took.
    pub join_ms: u64,
    pub leave_ms: u64,
    /// Key states the new node streamed.
    pub streamed: u64,
}

/// Whether every running node has adopted one stable ring in which `id`
/// is (`member`) or is not a member.
fn settled(world: &World, id: NodeId, member: bool) -> bool {
    let nodes = world.running();
    let Some(first) = nodes.first().and_then(|&n| world.node(n)) else {
        return false;
    };
    let t = first.topology();
    t.phase == Phase::Stable
        && t.members.contains_key(&id) == member
        && nodes
            .iter()
            .all(|&n| world.node(n).is_some_and(|x| x.topology() == t))
}

/// Every acknowledged write is on at least `w` replicas of the ring now
/// in force (what a strict quorum read relies on).
fn on_quorum(world: &World, w: usize, at: NodeId) -> Result<(), String> {
    let node = world.node(at).ok_or("the node stopped")?;
    let (ring, _) = node.topology().placements(3).map_err(|e| e.to_string())?;
    for (key, dot) in &world.history.acked {
        let holders = ring
            .preference_list(key)
            .into_iter()
            .filter(|&id| {
                world
                    .node(id)
                    .and_then(|n| n.disk.store.get(key))
                    .is_some_and(|s| s.context().covers(*dot))
            })
            .count();
        if holders < w {
            return Err(format!(
                "the acknowledged write {dot:?} to {key:?} is on {holders} replicas of the ring, fewer than W = {w}"
            ));
        }
    }
    Ok(())
}

fn until(world: &mut World, what: impl Fn(&World) -> bool) -> Result<u64, String> {
    let start = world.now_ms;
    while !what(world) {
        if world.now_ms - start > CHANGE_BOUND_MS {
            return Err(format!("not done within {CHANGE_BOUND_MS} ms"));
        }
        let next = world.now_ms + 50;
        world.run_until(next);
    }
    Ok(world.now_ms - start)
}

/// One run: 3 or 4 nodes, strict quorum with `W + R > N`; a fifth node
/// joins, then a random original node leaves, with clients running.
pub(super) fn run(seed: u64) -> Result<Seen, String> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let nodes = rng.u32(3..=4);
    let (w, r) = [(2, 2), (3, 1), (1, 3), (2, 3)][rng.usize(..4)];
    let sc = Scenario {
        nodes,
        quorum: Quorum::new(3, w, r).map_err(|e| e.to_string())?,
        mode: QuorumMode::Strict,
        datacenters: false,
    };
    let setup = setup(&sc, membership::Config::default());
    let mut world = World::new(seed, setup, CLIENTS, KEYS);
    world.plain_sets = true;
    world.delay_max_ms = DELAY_MAX_MS;
    world.run_until(rng.u64(500..2_000));
    let cold = world.scripted_client();
    for i in 0..COLD_KEYS {
        let key = Bytes::from(format!("cold{i}"));
        world.put_via(
            NodeId(1 + i % nodes),
            cold,
            key,
            Bytes::from(format!("c{i}")),
        );
        let next = world.now_ms + 200;
        world.run_until(next);
    }
    let joiner = NodeId(nodes + 1);
    world.add_node(joiner);
    let spec = NodeSpec {
        id: joiner,
        vnodes: 32,
        datacenter: None,
    };
    // It proposes once it has heard the ring from a member.
    let start = world.now_ms;
    while world
        .change(joiner, MemberChange::Join(spec.clone()))
        .is_err()
    {
        if world.now_ms - start > 5_000 {
            return Err(format!("{sc:?}: the new node never heard the ring"));
        }
        let next = world.now_ms + 50;
        world.run_until(next);
    }
    let join_ms =
        until(&mut world, |w| settled(w, joiner, true)).map_err(|e| format!("{sc:?}: join {e}"))?;
    on_quorum(&world, w, joiner).map_err(|e| format!("{sc:?}: after the join: {e}"))?;
    let streamed = world.node(joiner).map_or(0, |n| n.stream_progress().keys);
    let next = world.now_ms + rng.u64(200..1_500);
    world.run_until(next);
    let leaver = NodeId(rng.u32(1..=nodes));
    world
        .change(leaver, MemberChange::Leave(leaver))
        .map_err(|e| format!("{sc:?}: leave refused: {e}"))?;
    let leave_ms = until(&mut world, |w| settled(w, leaver, false))
        .map_err(|e| format!("{sc:?}: leave {e}"))?;
    on_quorum(&world, w, joiner).map_err(|e| format!("{sc:?}: after the leave: {e}"))?;
    let next = world.now_ms + 1_000;
    world.run_until(next);
    world.stop_clients();
    let next = world.now_ms + 5_000;
    world.run_until(next);
    if !world.clients_idle() {
        return Err(format!("{sc:?}: calls still open after the run"));
    }
    if let Some(e) = world
        .history
        .member_events
        .iter()
        .find(|e| matches!(e.2, MemberEvent::Down(_)))
    {
        return Err(format!("{sc:?}: a node was marked down: {e:?}"));
    }
    if world.node(leaver).is_some_and(|n| !n.disk.store.is_empty()) {
        return Err(format!("{sc:?}: the node that left still stores keys"));
    }
    // No acknowledged write lost, still on a quorum of the final ring.
    on_quorum(&world, w, joiner).map_err(|e| format!("{sc:?}: at the end: {e}"))?;
    let mut by_key: BTreeMap<&Bytes, Vec<Operation>> = BTreeMap::new();
    for (key, op) in &world.history.calls {
        if let Some(op) = op {
            by_key.entry(key).or_default().push(op.clone());
        }
    }
    for (key, ops) in &by_key {
        match linearizability::check(ops, SEARCH_BUDGET) {
            Verdict::Linearizable => {}
            verdict => {
                return Err(format!(
                    "{sc:?}: history of {key:?} ({} calls) not linearizable: {verdict:?}",
                    ops.len()
                ));
            }
        }
    }
    Ok(Seen {
        acked: world.history.acked.len(),
        join_ms,
        leave_ms,
        streamed,
    })
}
