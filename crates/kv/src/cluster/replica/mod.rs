//! One replica node: the cluster modules composed into the state machine
//! every node runs, the simulation and the server alike.
//!
//! Why it exists: placement, quorum rounds, versions, gossip, hints and
//! anti-entropy each decide one thing; a node has to run them together
//! (a put becomes a dot, a state, a round, messages, hints; a read becomes
//! a round and a repair). Doing that here, as a pure function of
//! (state, time, input) → outputs, means the deterministic simulation
//! (`sim`) tests exactly the code the server runs, and the server's job
//! shrinks to I/O: deliver [`Msg`]s, answer clients, and make every
//! [`Persist`] durable before the outputs after it leave.
//!
//! Everything a node does is a reaction to one input (a tick, a client
//! operation, a message) that appends [`Out`]puts. This is also where the
//! store-side halves live that the pure modules leave to their caller:
//! applying a state (join, then record the digest change in the Merkle
//! trees), listing a bucket's keys for anti-entropy, answering reads from
//! hints on a substitute, and routing a forwarded operation's answer back
//! to the node the client is connected to.

mod change;
mod entries;
mod read;
mod tombstones;
mod types;
mod unreachable;
mod write;

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;

use self::change::Source;
pub use self::change::{STREAM_BATCH_KEYS, STREAM_RETRY_MS, TOPOLOGY_GOSSIP_MS};
pub use self::types::TOMBSTONE_GC_GRACE_MS_DEFAULT;
pub use self::types::{
    AeProgress, Answer, Disk, MemberChange, Msg, Op, Out, Persist, Setup, StreamProgress, Timing,
};
use self::write::{Change, Write};
use crate::cluster::NodeId;
use crate::cluster::anti_entropy::AntiEntropy;
use crate::cluster::anti_entropy::repair::Repair;
use crate::cluster::hlc::HlcClock;
use crate::cluster::membership::{self, Membership};
use crate::cluster::placement::{Placement, QuorumMode};
use crate::cluster::quorum::{Consistency, Quorum, ReadRound, WriteRound};
use crate::cluster::siblings::Siblings;
use crate::cluster::topology::Topology;
use crate::cluster::vector_clock::{Dot, PrunePolicy};

/// The most siblings a write may leave on a key (Riak's `max_siblings`
/// refuses at 100 too): every write without a context adds one, so a key
/// written blindly and never resolved would otherwise grow until its state
/// no longer fits a message. Joins of states from several coordinators
/// may exceed it a little, never past the codec's `SIBLINGS_MAX`.
pub const SIBLINGS_PER_KEY_MAX: usize = 100;

/// The pace of a repair round: how soon after the peer answered one
/// entries message the next goes, and how soon a finished round is
/// verified by a new descent.
pub const AE_FOLLOW_UP_MS: u64 = 100;

/// About the most bytes of key states in one anti-entropy message.
pub const AE_BYTES_MAX: usize = 4 << 20;

/// Request numbers of forwarded operations live above this bit, apart from
/// the numbers the node's own clients use.
const FORWARDED: u64 = 1 << 63;
/// The most forwarded operations a coordinator tracks at once.
const FORWARDED_MAX: usize = 65_536;

struct PendingWrite {
    client: u64,
    dot: Dot,
    /// A CRDT update's reply, sent instead of the dot.
    reply: Option<i64>,
    /// All must succeed (one per ring during a membership change).
    rounds: Vec<WriteRound>,
    /// The topology version it started under (the seen barrier).
    version: u64,
}

struct PendingRead {
    client: u64,
    key: Bytes,
    /// All must succeed (one per ring during a membership change).
    rounds: Vec<ReadRound<Siblings>>,
    version: u64,
    answered: bool,
}

/// One node of the cluster (see the module docs).
pub struct Node {
    /// This node.
    pub id: NodeId,
    /// What survives a crash.
    pub disk: Disk,
    /// The failure detector.
    pub membership: Membership,
    /// The Merkle trees.
    pub ae: AntiEntropy,
    /// The old ring (the only one outside a change).
    placement: Arc<Placement>,
    /// The new ring during a change.
    pending: Option<Arc<Placement>>,
    topology: Topology,
    /// A member sent this node its topology (a joining node proposes
    /// only then, so it proposes from the cluster's current ring).
    heard_topology: bool,
    streams: BTreeMap<NodeId, Source>,
    streamed_keys: u64,
    next_topology_ms: u64,
    /// Tombstone-only keys and when their state was stored here.
    tombstones: BTreeMap<Bytes, u64>,
    /// When a Merkle comparison last proved this node in sync with a peer.
    in_sync_ms: BTreeMap<NodeId, u64>,
    /// The time of the input being handled.
    now_ms: u64,
    quorum: Quorum,
    mode: QuorumMode,
    timing: Timing,
    prune: PrunePolicy,
    hlc: HlcClock,
    writes: BTreeMap<u64, PendingWrite>,
    reads: BTreeMap<u64, PendingRead>,
    /// Forwarded operations: our number → (entry node, its number, deadline).
    forwarded: BTreeMap<u64, (NodeId, u64, u64)>,
    next_forwarded: u64,
    next_req: u64,
    next_handoff_ms: u64,
    next_ae_ms: u64,
    /// A peer whose last exchange was cut short by the per-message limit:
    /// the next exchange with it starts early (see [`AE_FOLLOW_UP_MS`]).
    ae_follow_up: Option<NodeId>,
    /// Repair rounds in progress: the buckets one descent found differing
    /// with a peer, streamed over paced messages.
    repairs: BTreeMap<NodeId, Repair>,
    progress: AeProgress,
    rng: fastrand::Rng,
}

impl Node {
    /// Boots `id` on `disk` at `now_ms` (generation = boot time).
    pub fn boot(id: NodeId, disk: Disk, setup: &Setup, now_ms: u64, seed: u64) -> Node {
        // The ring last adopted, if it still builds; else the configured one.
        let saved = disk.topology.clone().and_then(|t| {
            let rings = t.placements(setup.placement.replicas()).ok()?;
            Some((t, rings))
        });
        let (topology, (old, new)) = match saved {
            Some((t, (old, new))) => (t, (Arc::new(old), new.map(Arc::new))),
            None => {
                let t = Topology::initial(setup.placement.specs());
                (t, (setup.placement.clone(), None))
            }
        };
        let nodes = topology.ids();
        let membership = Membership::new(
            id,
            now_ms + 1,
            nodes.clone(),
            setup.membership,
            now_ms,
            seed,
        );
        let depth = setup.timing.tree_depth;
        let ae = AntiEntropy::new(id, nodes, depth).expect("tree depth checked by the config");
        let mut node = Node {
            id,
            disk,
            membership,
            ae,
            placement: old,
            pending: new,
            topology,
            heard_topology: false,
            streams: BTreeMap::new(),
            streamed_keys: 0,
            next_topology_ms: now_ms,
            tombstones: BTreeMap::new(),
            in_sync_ms: BTreeMap::new(),
            now_ms,
            quorum: setup.quorum,
            mode: setup.mode,
            timing: setup.timing,
            prune: setup.prune,
            hlc: HlcClock::new(60_000),
            writes: BTreeMap::new(),
            reads: BTreeMap::new(),
            forwarded: BTreeMap::new(),
            next_forwarded: 0,
            next_req: 0,
            next_handoff_ms: now_ms + setup.timing.handoff_interval_ms,
            next_ae_ms: now_ms + setup.timing.ae_interval_ms,
            ae_follow_up: None,
            repairs: BTreeMap::new(),
            progress: AeProgress::default(),
            rng: fastrand::Rng::with_seed(seed ^ 0x5eed),
        };
        // The trees are derived data: rebuilt from the store on boot.
        node.rebuild_trees();
        let keys: Vec<(Bytes, Siblings)> = node
            .disk
            .store
            .iter()
            .filter(|(_, s)| tombstones::tombstone_only(s))
            .map(|(k, s)| (k.clone(), s.clone()))
            .collect();
        for (key, state) in keys {
            node.track_tombstone(&key, &state);
        }
        node
    }

    /// The ring and replication factor this node uses.
    pub fn placement(&self) -> &Placement {
        &self.placement
    }

    /// Anti-entropy progress so far.
    pub fn ae_progress(&self) -> AeProgress {
        self.progress
    }

    /// Quorum rounds and forwarded operations in flight.
    pub fn in_flight(&self) -> usize {
        self.writes.len() + self.reads.len() + self.forwarded.len()
    }

    fn replicas(&self, key: &[u8]) -> Vec<NodeId> {
        self.placement.preference_list(key)
    }

    /// Whether this node stores `key`: a replica on the old ring or,
    /// during a change, on the new one.
    fn is_replica(&self, key: &[u8]) -> bool {
        self.replicas(key).contains(&self.id)
            || self
                .pending
                .as_ref()
                .is_some_and(|p| p.preference_list(key).contains(&self.id))
    }

    /// Joins `incoming` into the stored state of `key` (a key this node
    /// replicates), keeping the Merkle trees in step; true if it changed.
    fn apply(&mut self, key: &Bytes, incoming: &Siblings, out: &mut Vec<Out>) -> bool {
        if !self.is_replica(key) {
            return false; // e.g. a late read repair after a range moved away
        }
        let old = self.disk.store.get(key);
        if old.is_none() && self.expired_tombstone(incoming, self.now_ms) {
            return false; // a tombstone the others are purging: not again
        }
        let mut new = old.cloned().unwrap_or_default();
        new.join(incoming);
        if old == Some(&new) || new.is_empty() {
            return false;
        }
        let old_digest = old.map(Siblings::digest);
        let replicas = self.replicas(key);
        if replicas.contains(&self.id) {
            self.ae
                .record(key, old_digest, Some(new.digest()), &replicas);
        }
        out.push(Out::Persist(Persist::State(key.clone(), new.clone())));
        self.track_tombstone(key, &new);
        self.disk.store.insert(key.clone(), new);
        true
    }

    /// Answers `client`: a local client, or a forwarded operation whose
    /// answer goes back to its entry node.
    fn answer(&mut self, client: u64, answer: Answer, out: &mut Vec<Out>) {
        if client & FORWARDED == 0 {
            out.push(Out::Answer(client, answer));
        } else if let Some((origin, their, _)) = self.forwarded.remove(&client) {
            let msg = Msg::ForwardReply {
                client: their,
                answer,
            };
            out.push(Out::Send(origin, msg));
        }
    }

    /// A client operation arriving at this node, numbered `client` by the
    /// caller (below `2^63`).
    pub fn request(&mut self, now_ms: u64, client: u64, op: Op, out: &mut Vec<Out>) {
        self.request_with(now_ms, client, op, Consistency::default(), out);
    }

    /// [`Node::request`] with the client's `W`, `R` or mode override.
    pub fn request_with(
        &mut self,
        now_ms: u64,
        client: u64,
        op: Op,
        consistency: Consistency,
        out: &mut Vec<Out>,
    ) {
        self.now_ms = now_ms;
        let membership = &self.membership;
        let coordinator = self
            .coordinating()
            .coordinator(op.key(), |n| membership.is_up(n));
        let request = (client, op, consistency);
        self.route(now_ms, coordinator, request, out);
    }

    /// Coordinates a request here, forwards it to `coordinator`, or fails
    /// it when no replica is up.
    fn route(
        &mut self,
        now_ms: u64,
        coordinator: Option<NodeId>,
        (client, op, consistency): (u64, Op, Consistency),
        out: &mut Vec<Out>,
    ) {
        match coordinator {
            None => self.answer(client, Answer::Failed, out),
            Some(c) if c == self.id => self.coordinate(now_ms, client, op, consistency, out),
            Some(c) => {
                let msg = Msg::Forward {
                    client,
                    op,
                    consistency,
                };
                out.push(Out::Send(c, msg));
            }
        }
    }

    fn coordinate(
        &mut self,
        now_ms: u64,
        client: u64,
        op: Op,
        consistency: Consistency,
        out: &mut Vec<Out>,
    ) {
        let key = op.key().clone();
        let (quorum, mode) = consistency.apply(self.quorum, self.mode);
        let deadline_ms = now_ms + self.timing.request_timeout_ms;
        self.next_req += 1;
        let req = self.next_req;
        match op {
            Op::Put { value, context, .. } => {
                let plan = self.plan(&key, mode, quorum.w, true);
                let write = Write {
                    client,
                    req,
                    key,
                    plan,
                    deadline_ms,
                };
                self.coordinate_write(now_ms, write, Change::Put(value, context), out);
            }
            Op::Update { update, .. } => {
                let plan = self.plan(&key, mode, quorum.w, true);
                let write = Write {
                    client,
                    req,
                    key,
                    plan,
                    deadline_ms,
                };
                self.coordinate_write(now_ms, write, Change::Update(update), out);
            }
            Op::Get { key } => {
                let plan = self.plan(&key, mode, quorum.r, false);
                let local = self.disk.store.get(&key).cloned().unwrap_or_default();
                let mut rounds = Vec::new();
                for (targets, r) in &plan.rounds {
                    let mut round = ReadRound::new(targets, *r, deadline_ms);
                    round.reply(self.id, local.clone());
                    rounds.push(round);
                }
                for t in plan.targets.iter().filter(|t| t.node != self.id) {
                    let msg = Msg::Read {
                        req,
                        key: key.clone(),
                    };
                    out.push(Out::Send(t.node, msg));
                }
                let read = PendingRead {
                    client,
                    key,
                    rounds,
                    version: self.topology.version,
                    answered: false,
                };
                self.reads.insert(req, read);
                self.settle_read(req, now_ms, out);
            }
        }
    }

    /// Background work: the detector, deadlines, hint delivery, anti-entropy.
    pub fn tick(&mut self, now_ms: u64, out: &mut Vec<Out>) {
        self.now_ms = now_ms;
        self.tick_topology(now_ms, out);
        for (to, m) in self.membership.tick(now_ms) {
            out.push(Out::Send(to, Msg::Member(m)));
        }
        let writes: Vec<u64> = self.writes.keys().copied().collect();
        for req in writes {
            if let Some(w) = self.writes.get_mut(&req) {
                for round in &mut w.rounds {
                    round.tick(now_ms);
                }
            }
            self.settle_write(req, out);
        }
        let reads: Vec<u64> = self.reads.keys().copied().collect();
        for req in reads {
            self.settle_read(req, now_ms, out);
        }
        // A forwarded operation whose round never settled (it always does
        // by its deadline) is not tracked forever.
        let grace_ms = 2 * self.timing.request_timeout_ms;
        self.forwarded
            .retain(|_, (_, _, deadline)| now_ms < *deadline + grace_ms);
        if now_ms >= self.next_handoff_ms {
            self.next_handoff_ms = now_ms + self.timing.handoff_interval_ms;
            for (target, _, _) in self.disk.hints.backlog() {
                if self.membership.status(target) != membership::Status::Alive {
                    continue;
                }
                for p in self.disk.hints.batch(target, self.timing.handoff_batch) {
                    let msg = Msg::Handoff {
                        key: p.key,
                        state: p.state,
                        seq: p.seq,
                    };
                    out.push(Out::Send(target, msg));
                }
            }
        }
        self.tick_repairs(now_ms, out);
        if now_ms >= self.next_ae_ms {
            self.next_ae_ms = now_ms + self.timing.ae_interval_ms;
            self.collect_tombstones(now_ms, out);
            // Every other follow-up goes to a random peer instead, so a
            // difference that cannot be repaired (a peer that purged an
            // expired tombstone) never starves the other peers' exchanges.
            if let Some(peer) = self.ae_follow_up.take()
                && self.rng.bool()
                && !self.repairs.contains_key(&peer)
                && self.membership.status(peer) == membership::Status::Alive
                && let Some(m) = self.ae.start(peer)
            {
                // A long repair (a node back with an empty disk) goes on
                // at the follow-up pace instead of one batch a second.
                self.progress.rounds_started += 1;
                out.push(Out::Send(peer, Msg::Ae(m)));
                return;
            }
            let alive: Vec<NodeId> = self
                .membership
                .members()
                .filter(|m| m.1 == membership::Status::Alive)
                .map(|m| m.0)
                .filter(|p| !self.repairs.contains_key(p))
                .collect();
            if !alive.is_empty() {
                let peer = alive[self.rng.usize(..alive.len())];
                if let Some(m) = self.ae.start(peer) {
                    self.progress.rounds_started += 1;
                    out.push(Out::Send(peer, Msg::Ae(m)));
                }
            }
        }
    }

    /// A message from another node.
    pub fn receive(&mut self, now_ms: u64, from: NodeId, msg: Msg, out: &mut Vec<Out>) {
        self.now_ms = now_ms;
        match msg {
            Msg::Member(m) => {
                for (to, reply) in self.membership.receive(now_ms, from, m) {
                    out.push(Out::Send(to, Msg::Member(reply)));
                }
            }
            Msg::Forward {
                client,
                op,
                consistency,
            } => {
                if self.forwarded.len() >= FORWARDED_MAX {
                    let answer = Answer::Failed;
                    out.push(Out::Send(from, Msg::ForwardReply { client, answer }));
                    return;
                }
                self.next_forwarded += 1;
                let ours = FORWARDED | self.next_forwarded;
                let deadline_ms = now_ms + self.timing.request_timeout_ms;
                self.forwarded.insert(ours, (from, client, deadline_ms));
                if self.is_replica(op.key()) {
                    self.coordinate(now_ms, ours, op, consistency, out);
                } else {
                    // The sender's ring is older or newer than ours (a
                    // membership change): pass it on to our coordinator.
                    self.request_with(now_ms, ours, op, consistency, out);
                }
            }
            Msg::ForwardReply { client, answer } => self.answer(client, answer, out),
            Msg::Replicate {
                req,
                key,
                state,
                hint_for,
            } => {
                let ok = match hint_for {
                    Some(owner) => {
                        let added = self.disk.hints.add(owner, key.clone(), &state).is_ok();
                        if let Some(held) = self.disk.hints.state(owner, &key) {
                            out.push(Out::Persist(Persist::Hint(owner, key, held.clone())));
                        }
                        added
                    }
                    None if self.is_replica(&key) => {
                        self.apply(&key, &state, out);
                        true
                    }
                    None => false,
                };
                out.push(Out::Send(from, Msg::ReplicateAck { req, ok }));
            }
            Msg::ReplicateAck { req, ok } => {
                if let Some(w) = self.writes.get_mut(&req) {
                    for round in &mut w.rounds {
                        if ok {
                            round.ack(from)
                        } else {
                            round.refuse(from)
                        };
                    }
                }
                self.settle_write(req, out);
            }
            Msg::Read { req, key } => {
                let state = if self.is_replica(&key) {
                    self.disk.store.get(&key).cloned()
                } else {
                    self.disk.hints.get(&key)
                };
                let state = state.unwrap_or_default();
                out.push(Out::Send(from, Msg::ReadReply { req, state }));
            }
            Msg::ReadReply { req, state } => {
                if let Some(r) = self.reads.get_mut(&req) {
                    for round in &mut r.rounds {
                        round.reply(from, state.clone());
                    }
                }
                self.settle_read(req, now_ms, out);
            }
            Msg::Repair { key, state } => {
                if self.is_replica(&key) {
                    self.apply(&key, &state, out);
                }
            }
            Msg::Handoff { key, state, seq } => {
                if self.is_replica(&key) {
                    self.apply(&key, &state, out);
                    out.push(Out::Send(from, Msg::HandoffAck { key, seq }));
                }
            }
            Msg::HandoffAck { key, seq } => {
                self.disk.hints.delivered(from, &key, seq);
                if self.disk.hints.state(from, &key).is_none() {
                    out.push(Out::Persist(Persist::HintDone(from, key)));
                }
            }
            m @ (Msg::Ae(_) | Msg::AeEntries { .. }) => self.on_ae(now_ms, from, m, out),
            Msg::Topology(t) => self.on_topology(now_ms, from, t, out),
            Msg::AeInSync { root } => self.in_sync_with(from, Some(root), out),
            Msg::StreamReq { version, after } => self.on_stream_req(from, version, after, out),
            batch @ Msg::StreamBatch { .. } => self.on_stream_batch(now_ms, from, batch, out),
        }
    }
}

#[cfg(test)]
mod tests;
