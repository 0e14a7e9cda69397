//! A deterministic simulation of a Dynamo cluster: 3 to 5 nodes running
//! membership, placement, quorum rounds, hinted handoff and anti-entropy
//! together under message loss, delay, partitions and crashes, with
//! clients reading and writing, and the chapter's promises checked at the
//! end of every run.
//!
//! Why it exists: each module's unit and property tests prove its own
//! rules; the promises of the design (no acknowledged write lost, replicas
//! converge, concurrent writes become siblings, a dead node is noticed)
//! only hold for the modules *together*, under the faults they exist for.
//! Real clusters meet those faults rarely and never reproducibly; a
//! simulation with one seeded RNG meets them by the thousand, and a failing
//! seed replays exactly. (turmoil would simulate sockets; the modules have
//! none, so a plain event queue over their messages is smaller and faster.)
//!
//! # One run (one seed)
//!
//! 1. **Chaos** (20 s of simulated time): a random cluster shape (3-5 nodes,
//!    `N = 3`, `W` and `R` of 1 or 2, sloppy or strict quorum, sometimes
//!    two datacenters); clients doing reads, blind writes and
//!    read-modify-writes on six keys; every 0.3-2.5 s a fault: a crash, a
//!    restart (once per run, when `W ≥ 2`, with the disk lost: a new actor
//!    id and an empty store), a partition or its heal, a new loss rate (up
//!    to 20%); messages delayed 1-15 ms. Once, two clients write one key
//!    at the same moment through different nodes with no context.
//! 2. **Heal**: every node restarted, partitions healed, no loss, clients
//!    stopped. The run continues until every hint queue is empty and every
//!    pair of replicas has equal Merkle roots, failing if that takes more
//!    than 60 s.
//! 3. **Checks**: every replica of a key holds the same state; every
//!    acknowledged write is still a sibling of its key, or was replaced by
//!    a write whose client had seen it (a causal descendant), never just
//!    gone; both concurrent writes survive as siblings; the counter
//!    clients `INCRBY` (a PN-counter) holds at least every acknowledged
//!    increment and at most those plus the ones whose answer never came;
//!    every node sees every other up again after heal.
//! 4. **Detection**: one node stops; every other marks it down within the
//!    detector's bound; it restarts; every other marks it up.
//!
//! A second kind of run ([`strict_quorum`]) has no faults and a strict
//! quorum with `W + R > N`, and checks that every key's history of calls
//! and answers is linearizable ([`linearizability`], a Wing & Gong search
//! over a multi-value register model).
//!
//! A third ([`membership_change`]) has a node join and another leave
//! while clients run under a strict quorum: no acknowledged write lost,
//! histories linearizable, both changes complete.
//!
//! `KV_SIM_SEEDS=N` runs `N` seeds instead of the default; a failure names
//! its seed (`KV_SIM_SEED=s` replays one).

mod crdt;
mod linearizability;
mod membership_change;
mod strict_quorum;
mod tombstones;
mod world;

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;

use crate::cluster::NodeId;
use crate::cluster::crdt::Crdt;
use crate::cluster::membership::{self, Event as MemberEvent, Status};
use crate::cluster::placement::{NodeSpec, Placement, QuorumMode};
use crate::cluster::quorum::Quorum;
use crate::cluster::replica::{Setup, Timing};
use crate::cluster::siblings::Siblings;
use crate::cluster::vector_clock::PrunePolicy;
use world::World;

const CHAOS_MS: u64 = 20_000;
const CONVERGE_BOUND_MS: u64 = 60_000;
const UP_BOUND_MS: u64 = 3_000;

/// The detector's bound: stale for `down_after`, then a probe timeout, plus
/// two gossip rounds for the last heartbeat to spread and a tick.
fn down_bound_ms(config: &membership::Config) -> u64 {
    config.down_after_ms + config.probe_timeout_ms + 2 * config.gossip_interval_ms + 100
}

const TIMING: Timing = Timing {
    request_timeout_ms: 1_000,
    handoff_interval_ms: 500,
    handoff_batch: 16,
    ae_interval_ms: 1_000,
    ae_entries_max: 32,
    tree_depth: 6,
    tombstone_gc_grace_ms: 5_000,
};

/// The cluster shape of one run.
#[derive(Debug, Clone)]
struct Scenario {
    nodes: u32,
    quorum: Quorum,
    mode: QuorumMode,
    datacenters: bool,
}

fn scenario(rng: &mut fastrand::Rng) -> Scenario {
    let nodes = rng.u32(3..=5);
    let w = rng.usize(1..=2);
    let r = rng.usize(1..=2);
    Scenario {
        nodes,
        quorum: Quorum::new(3, w, r).expect("1 ≤ W, R ≤ 3"),
        mode: if rng.u32(0..10) < 8 {
            QuorumMode::Sloppy
        } else {
            QuorumMode::Strict
        },
        datacenters: rng.u32(0..10) < 3,
    }
}

fn setup(scenario: &Scenario, membership: membership::Config) -> Setup {
    let specs: Vec<NodeSpec> = (1..=scenario.nodes)
        .map(|i| NodeSpec {
            id: NodeId(i),
            vnodes: 32,
            datacenter: scenario
                .datacenters
                .then(|| if i % 2 == 0 { "east" } else { "west" }.to_owned()),
        })
        .collect();
    let placement = Placement::new(&specs, scenario.quorum.n).expect("valid placement");
    Setup {
        placement: Arc::new(placement),
        quorum: scenario.quorum,
        mode: scenario.mode,
        timing: TIMING,
        membership,
        // Small enough to prune the clocks of nodes that lost their disk.
        prune: PrunePolicy {
            small: 4,
            big: 6,
            young_ms: 5_000,
            old_ms: 15_000,
        },
    }
}

/// What one run measured.
#[derive(Debug, Default, Clone)]
pub(super) struct Report {
    acked: usize,
    reads_ok: u64,
    failed: u64,
    superseded: usize,
    siblings_max: usize,
    conflicts_kept: bool,
    increments: i64,
    disk_lost: bool,
    convergence_ms: u64,
    all_up_ms: u64,
    detect_down_ms: u64,
    detect_up_ms: u64,
    messages: u64,
    lost: u64,
}

/// One random fault.
fn fault(world: &mut World, rng: &mut fastrand::Rng, sc: &Scenario, disk_lost: &mut bool) {
    let running = world.running();
    let stopped = world.stopped();
    match rng.u32(0..10) {
        0..3 if running.len() > 1 && stopped.len() < 2 => {
            world.crash(running[rng.usize(..running.len())]);
        }
        3..6 if !stopped.is_empty() => {
            let lose = !*disk_lost && sc.quorum.w >= 2 && rng.u32(0..3) == 0;
            *disk_lost |= lose;
            world.boot(stopped[rng.usize(..stopped.len())], lose);
        }
        6..8 => {
            world.groups = match world.groups {
                Some(_) => None,
                None => Some(
                    world
                        .nodes()
                        .into_iter()
                        .map(|n| (n, rng.u8(0..2)))
                        .collect(),
                ),
            };
        }
        _ => world.loss_percent = rng.u32(0..=20),
    }
}

/// Every pair of nodes agrees on its shared keys, and no hint is pending.
fn converged(world: &World) -> bool {
    let nodes = world.nodes();
    let Some(running) = nodes
        .iter()
        .map(|&id| world.node(id))
        .collect::<Option<Vec<_>>>()
    else {
        return false;
    };
    running.iter().all(|n| n.disk.hints.is_empty())
        && running.iter().all(|a| {
            running.iter().all(|b| {
                a.id == b.id
                    || a.ae.tree(b.id).map(|t| t.root()) == b.ae.tree(a.id).map(|t| t.root())
            })
        })
}

/// The state of every key, checked equal on all of its replicas.
fn final_states(world: &World, placement: &Placement) -> Result<BTreeMap<Bytes, Siblings>, String> {
    let mut keys: Vec<Bytes> = Vec::new();
    for id in world.nodes() {
        let node = world.node(id).ok_or("a node is down after heal")?;
        keys.extend(node.disk.store.keys().cloned());
    }
    keys.sort();
    keys.dedup();
    let mut states = BTreeMap::new();
    for key in keys {
        let replicas = placement.preference_list(&key);
        let copies: Vec<Option<&Siblings>> = replicas
            .iter()
            .map(|&id| world.node(id).and_then(|n| n.disk.store.get(&key)))
            .collect();
        if copies.iter().any(|c| *c != copies[0]) {
            return Err(format!("replicas of {key:?} differ: {copies:?}"));
        }
        if let Some(state) = copies[0] {
            states.insert(key, state.clone());
        }
    }
    Ok(states)
}

fn run(seed: u64) -> Result<Report, String> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let sc = scenario(&mut rng);
    let config = membership::Config::default();
    let setup = setup(&sc, config);
    let placement = setup.placement.clone();
    let mut world = World::new(seed, setup, 3, 6);
    let mut report = Report::default();

    // 1. Chaos, with one pair of concurrent writes in the middle.
    let conflict_at = rng.u64(2_000..CHAOS_MS - 2_000);
    let writers = [world.scripted_client(), world.scripted_client()];
    let conflict_key = Bytes::from_static(b"conflict");
    let mut conflict_dots = Vec::new();
    let mut t = 0;
    while t < CHAOS_MS {
        let next = (t + rng.u64(300..2_500)).min(CHAOS_MS);
        if (t..next).contains(&conflict_at) {
            world.run_until(conflict_at);
            let mut running = world.running();
            rng.shuffle(&mut running);
            for (&writer, &via) in writers.iter().zip(&running) {
                let value = Bytes::from(format!("concurrent-{writer}"));
                world.put_via(via, writer, conflict_key.clone(), value);
            }
            let first_ack = world.history.acked.len();
            world.run_until(conflict_at + 3_500);
            conflict_dots = world.history.acked[first_ack..]
                .iter()
                .filter(|(k, _)| *k == conflict_key)
                .map(|(_, d)| *d)
                .collect();
            t = world.now_ms;
            continue;
        }
        world.run_until(next);
        t = next;
        fault(&mut world, &mut rng, &sc, &mut report.disk_lost);
    }

    // 2. Heal, and wait for convergence.
    world.stop_clients();
    world.groups = None;
    world.loss_percent = 0;
    for id in world.stopped() {
        world.boot(id, false);
    }
    let healed = world.now_ms;
    let mut all_up_at = None;
    loop {
        world.run_until(world.now_ms + 250);
        if all_up_at.is_none() && world.all_up_everywhere() {
            all_up_at = Some(world.now_ms);
        }
        if all_up_at.is_some() && world.clients_idle() && converged(&world) {
            break;
        }
        if world.now_ms > healed + CONVERGE_BOUND_MS {
            return Err(format!(
                "{sc:?}: not converged {CONVERGE_BOUND_MS} ms after heal"
            ));
        }
    }
    report.convergence_ms = world.now_ms - healed;
    report.all_up_ms = all_up_at.map_or(0, |at| at - healed);
    if report.all_up_ms > UP_BOUND_MS {
        return Err(format!(
            "{sc:?}: all nodes up only {} ms after heal",
            report.all_up_ms
        ));
    }

    // 3. No acknowledged write lost; concurrent writes kept as siblings.
    let states = final_states(&world, &placement).map_err(|e| format!("{sc:?}: {e}"))?;
    let history = &world.history;
    for (key, dot) in &history.acked {
        let state = states
            .get(key)
            .ok_or_else(|| format!("{sc:?}: acked write {dot:?} to {key:?}, key gone"))?;
        if state.contains(*dot) {
            continue;
        }
        // Gone: only a write whose client had seen it may have replaced it.
        let seen = history
            .contexts
            .get(key)
            .is_some_and(|cs| cs.iter().any(|c| c.covers(*dot)));
        if !seen || !state.context().covers(*dot) {
            return Err(format!(
                "{sc:?}: acked write {dot:?} to {key:?} lost: {state:?}"
            ));
        }
        report.superseded += 1;
    }
    if conflict_dots.len() == 2 {
        let state = &states[&conflict_key];
        if !conflict_dots.iter().all(|d| state.contains(*d)) {
            return Err(format!(
                "{sc:?}: concurrent writes {conflict_dots:?} not both kept: {state:?}"
            ));
        }
        report.conflicts_kept = true;
    }
    // 3b. No increment lost, none counted twice.
    let counter = states
        .get(world::COUNTER_KEY)
        .map(Crdt::of_siblings)
        .transpose()
        .map_err(|e| format!("{sc:?}: counter: {e}"))?
        .flatten();
    let value = match counter {
        None => 0,
        Some(Crdt::Counter(c)) => c.value(),
        Some(other) => return Err(format!("{sc:?}: counter became {other:?}")),
    };
    let (acked, unknown) = (history.incr_acked, history.incr_unknown);
    if value < i128::from(acked) || value > i128::from(acked + unknown) {
        return Err(format!(
            "{sc:?}: counter {value}, acknowledged increments {acked}, unknown {unknown}"
        ));
    }
    report.increments = acked;
    report.acked = history.acked.len();
    report.reads_ok = history.reads_ok;
    report.failed = history.requests_failed;
    report.siblings_max = states
        .values()
        .map(|s| s.siblings().len())
        .max()
        .unwrap_or(0);
    report.messages = history.messages_sent;
    report.lost = history.messages_lost;

    // 4. A stopped node is marked down everywhere, and up after restart.
    let nodes = world.nodes();
    let victim = nodes[rng.usize(..nodes.len())];
    let peers: Vec<NodeId> = nodes.iter().copied().filter(|&n| n != victim).collect();
    world.crash(victim);
    let stopped_at = world.now_ms;
    world.run_until(stopped_at + down_bound_ms(&config));
    report.detect_down_ms = detection_ms(&world, &peers, stopped_at, MemberEvent::Down(victim))
        .ok_or_else(|| format!("{sc:?}: node {victim} not marked down everywhere in time"))?;
    if peers.iter().any(|&p| {
        world
            .node(p)
            .is_some_and(|n| n.membership.status(victim) != Status::Down)
    }) {
        return Err(format!("{sc:?}: node {victim} not down everywhere"));
    }
    world.boot(victim, false);
    let restarted_at = world.now_ms;
    world.run_until(restarted_at + UP_BOUND_MS);
    report.detect_up_ms = detection_ms(&world, &peers, restarted_at, MemberEvent::Up(victim))
        .ok_or_else(|| format!("{sc:?}: node {victim} not marked up everywhere after restart"))?;
    Ok(report)
}

/// The slowest peer's delay from `since` to `event`, if all saw it.
fn detection_ms(world: &World, peers: &[NodeId], since: u64, event: MemberEvent) -> Option<u64> {
    peers
        .iter()
        .map(|&p| {
            world
                .history
                .member_events
                .iter()
                .find(|e| e.0 >= since && e.1 == p && e.2 == event)
                .map(|e| e.0 - since)
        })
        .collect::<Option<Vec<u64>>>()
        .map(|delays| delays.into_iter().max().unwrap_or(0))
}

/// False-down events among five healthy nodes under `loss_percent` loss.
fn false_downs(
    seed: u64,
    config: membership::Config,
    loss_percent: u32,
    duration_ms: u64,
) -> usize {
    let sc = Scenario {
        nodes: 5,
        quorum: Quorum::new(3, 2, 2).expect("valid"),
        mode: QuorumMode::Sloppy,
        datacenters: false,
    };
    let mut world = World::new(seed, setup(&sc, config), 0, 1);
    world.loss_percent = loss_percent;
    world.run_until(duration_ms);
    world
        .history
        .member_events
        .iter()
        .filter(|e| matches!(e.2, MemberEvent::Down(_)))
        .count()
}

#[cfg(test)]
mod tests;
