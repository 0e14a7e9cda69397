//! Runs of a strict quorum without failures, their histories checked for
//! linearizability (the issue's "under strict quorum with no failures,
//! histories are linearizable").
//!
//! Why it holds, and why only here: with every node up, a key's
//! coordinator is always the first node of its preference list; it applies
//! each write to its own state before replicating it, and every read
//! round includes its own state, so the coordinator's state is one point
//! where reads and writes meet in a single order (replicas only ever hold
//! states the coordinator already had, and joins of them). `W + R > N` is
//! what keeps that true for reads when the coordinator changes; a failure
//! (a new coordinator, a sloppy substitute) breaks the single order, and
//! the chaos runs check only no-loss and convergence then.
//!
//! Clients read, write blindly (`KV.PUT` with an empty context: a new
//! sibling), read-modify-write (`KV.PUT` with the read's context) and
//! `SET` (replace all), on two keys, so calls overlap and keys carry
//! siblings; each key's history goes to [`super::linearizability`].

use std::collections::BTreeMap;

use bytes::Bytes;

use super::linearizability::{self, Call, Operation, Verdict};
use super::world::World;
use super::{Scenario, setup};
use crate::cluster::membership::{self, Event as MemberEvent};
use crate::cluster::placement::QuorumMode;
use crate::cluster::quorum::Quorum;

const RUN_MS: u64 = 10_000;
const CLIENTS: usize = 6;
const KEYS: usize = 2;
const DELAY_MAX_MS: u64 = 120;
/// Search steps per key before the checker gives up (a failure here).
const SEARCH_BUDGET: u64 = 2_000_000;

/// What one run checked.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Checked {
    /// Calls in the histories (answered or not).
    pub calls: usize,
    /// Reads that returned more than one sibling.
    pub sibling_reads: usize,
    /// Calls that overlapped the previous call on the same key.
    pub overlapping: usize,
}

/// One run: a random cluster shape with `W + R > N` under strict quorum,
/// no faults; every key's history must be linearizable.
pub(super) fn run(seed: u64) -> Result<Checked, String> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let nodes = rng.u32(3..=5);
    let (w, r) = [(2, 2), (3, 1), (1, 3), (2, 3), (3, 2), (3, 3)][rng.usize(..6)];
    let sc = Scenario {
        nodes,
        quorum: Quorum::new(3, w, r).map_err(|e| e.to_string())?,
        mode: QuorumMode::Strict,
        datacenters: rng.bool(),
    };
    let mut world = World::new(
        seed,
        setup(&sc, membership::Config::default()),
        CLIENTS,
        KEYS,
    );
    world.plain_sets = true;
    // Delays up to a client's think time, so a replica can still lag a
    // write when the next call reaches it (the window a violation needs).
    world.delay_max_ms = DELAY_MAX_MS;
    world.run_until(RUN_MS);
    world.stop_clients();
    world.run_until(RUN_MS + 5_000);
    if !world.clients_idle() {
        return Err(format!("{sc:?}: calls still open after the run"));
    }
    let downs = world.history.member_events.iter();
    if let Some(e) = downs.clone().find(|e| matches!(e.2, MemberEvent::Down(_))) {
        return Err(format!(
            "{sc:?}: a node was marked down without failures: {e:?}"
        ));
    }
    let mut by_key: BTreeMap<&Bytes, Vec<Operation>> = BTreeMap::new();
    for (key, op) in &world.history.calls {
        if let Some(op) = op {
            by_key.entry(key).or_default().push(op.clone());
        }
    }
    let mut checked = Checked::default();
    for (key, ops) in &by_key {
        checked.calls += ops.len();
        checked.sibling_reads += ops
            .iter()
            .filter(|o| matches!(&o.call, Call::Read(v) if v.len() > 1))
            .count();
        checked.overlapping += ops
            .windows(2)
            .filter(|p| p[0].return_ms.is_none_or(|r| r >= p[1].call_ms))
            .count();
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
    Ok(checked)
}
