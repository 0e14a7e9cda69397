//! One simulated node: the cluster modules composed the way the server will
//! compose them, with an in-memory store for a disk and an outbox for a
//! network.
//!
//! Everything a node does is a reaction to one input (a tick, a client
//! request, a message) that returns outputs ([`Out`]); the simulation
//! delivers them. The node is also where the store-side halves live that
//! the pure modules leave to their caller: applying a state (join, then
//! record the digest change in the Merkle trees), listing a bucket's keys
//! for anti-entropy, answering reads from hints on a substitute.

use std::collections::BTreeMap;
use std::rc::Rc;

use bytes::Bytes;

use crate::cluster::NodeId;
use crate::cluster::anti_entropy::{self, AntiEntropy, Reply};
use crate::cluster::hinted_handoff::{Hints, Limits};
use crate::cluster::hlc::HlcClock;
use crate::cluster::membership::{self, Membership};
use crate::cluster::placement::{Placement, QuorumMode};
use crate::cluster::quorum::{Outcome, Quorum, ReadRound, WriteRound};
use crate::cluster::siblings::Siblings;
use crate::cluster::vector_clock::{Actor, Dot, PrunePolicy, VectorClock};

/// Timing of the background work and the requests.
#[derive(Debug, Clone, Copy)]
pub(super) struct Timing {
    pub request_timeout_ms: u64,
    pub handoff_interval_ms: u64,
    pub handoff_batch: usize,
    pub ae_interval_ms: u64,
    pub ae_entries_max: usize,
    pub tree_depth: u8,
}

/// A client request, as the entry node receives it.
#[derive(Debug, Clone)]
pub(super) enum Op {
    Put {
        key: Bytes,
        value: Bytes,
        context: VectorClock,
    },
    Get {
        key: Bytes,
    },
}

/// What a client is told.
#[derive(Debug, Clone)]
pub(super) enum Answer {
    /// The put was acknowledged by W replicas; its dot.
    Written(Dot),
    /// The merged state R replicas returned.
    Read(Siblings),
    /// Failed, timed out, or no replica reachable (outcome unknown).
    Failed,
}

/// A message between nodes.
#[derive(Debug, Clone)]
pub(super) enum Msg {
    Member(membership::Message),
    Forward {
        client: u64,
        op: Op,
    },
    Replicate {
        req: u64,
        key: Bytes,
        state: Siblings,
        hint_for: Option<NodeId>,
    },
    ReplicateAck {
        req: u64,
        ok: bool,
    },
    Read {
        req: u64,
        key: Bytes,
    },
    ReadReply {
        req: u64,
        state: Siblings,
    },
    Repair {
        key: Bytes,
        state: Siblings,
    },
    Handoff {
        key: Bytes,
        state: Siblings,
        seq: u64,
    },
    HandoffAck {
        key: Bytes,
        seq: u64,
    },
    Ae(anti_entropy::Message),
    AeEntries {
        entries: Vec<(Bytes, Siblings)>,
        buckets: Vec<u32>,
        reply: bool,
    },
}

/// An output of one step.
#[derive(Debug)]
pub(super) enum Out {
    Send(NodeId, Msg),
    Answer(u64, Answer),
}

struct PendingWrite {
    client: u64,
    dot: Dot,
    round: WriteRound,
}

struct PendingRead {
    client: u64,
    key: Bytes,
    round: ReadRound<Siblings>,
    answered: bool,
}

/// What survives a crash: the disk.
pub(super) struct Disk {
    pub actor: Actor,
    pub next_counter: u64,
    pub store: BTreeMap<Bytes, Siblings>,
    pub hints: Hints<Siblings>,
}

impl Disk {
    pub fn empty(actor: Actor, hint_limits: Limits) -> Disk {
        Disk {
            actor,
            next_counter: 0,
            store: BTreeMap::new(),
            hints: Hints::new(hint_limits, Siblings::size_bytes),
        }
    }
}

pub(super) struct Node {
    pub id: NodeId,
    pub disk: Disk,
    pub membership: Membership,
    pub ae: AntiEntropy,
    placement: Rc<Placement>,
    quorum: Quorum,
    mode: QuorumMode,
    timing: Timing,
    prune: PrunePolicy,
    hlc: HlcClock,
    writes: BTreeMap<u64, PendingWrite>,
    reads: BTreeMap<u64, PendingRead>,
    next_req: u64,
    next_handoff_ms: u64,
    next_ae_ms: u64,
    rng: fastrand::Rng,
}

pub(super) struct Setup {
    pub placement: Rc<Placement>,
    pub quorum: Quorum,
    pub mode: QuorumMode,
    pub timing: Timing,
    pub membership: membership::Config,
    pub prune: PrunePolicy,
}

impl Node {
    /// Boots `id` on `disk` at `now_ms` (generation = boot time).
    pub fn boot(id: NodeId, disk: Disk, setup: &Setup, now_ms: u64, seed: u64) -> Node {
        let nodes = setup.placement.nodes();
        let membership = Membership::new(
            id,
            now_ms + 1,
            nodes.clone(),
            setup.membership,
            now_ms,
            seed,
        );
        let mut ae = AntiEntropy::new(id, nodes, setup.timing.tree_depth).expect("depth in range");
        // The trees are derived data: rebuilt from the store on boot.
        for (key, state) in &disk.store {
            let replicas = setup.placement.preference_list(key);
            ae.record(key, None, Some(state.digest()), &replicas);
        }
        Node {
            id,
            disk,
            membership,
            ae,
            placement: setup.placement.clone(),
            quorum: setup.quorum,
            mode: setup.mode,
            timing: setup.timing,
            prune: setup.prune,
            hlc: HlcClock::new(60_000),
            writes: BTreeMap::new(),
            reads: BTreeMap::new(),
            next_req: 0,
            next_handoff_ms: now_ms + setup.timing.handoff_interval_ms,
            next_ae_ms: now_ms + setup.timing.ae_interval_ms,
            rng: fastrand::Rng::with_seed(seed ^ 0x5eed),
        }
    }

    fn replicas(&self, key: &[u8]) -> Vec<NodeId> {
        self.placement.preference_list(key)
    }

    fn is_replica(&self, key: &[u8]) -> bool {
        self.replicas(key).contains(&self.id)
    }

    /// Joins `incoming` into the stored state of `key` (a key this node
    /// replicates), keeping the Merkle trees in step.
    fn apply(&mut self, key: &Bytes, incoming: &Siblings) {
        let old = self.disk.store.get(key);
        let mut new = old.cloned().unwrap_or_default();
        new.join(incoming);
        if old == Some(&new) || new.is_empty() {
            return;
        }
        let old_digest = old.map(Siblings::digest);
        let replicas = self.replicas(key);
        self.ae
            .record(key, old_digest, Some(new.digest()), &replicas);
        self.disk.store.insert(key.clone(), new);
    }

    /// A client request arriving at this node.
    pub fn request(&mut self, now_ms: u64, client: u64, op: Op, out: &mut Vec<Out>) {
        let key = match &op {
            Op::Put { key, .. } | Op::Get { key } => key.clone(),
        };
        let membership = &self.membership;
        match self.placement.coordinator(&key, |n| membership.is_up(n)) {
            None => out.push(Out::Answer(client, Answer::Failed)),
            Some(c) if c == self.id => self.coordinate(now_ms, client, op, out),
            Some(c) => out.push(Out::Send(c, Msg::Forward { client, op })),
        }
    }

    fn coordinate(&mut self, now_ms: u64, client: u64, op: Op, out: &mut Vec<Out>) {
        let membership = &self.membership;
        let key = match &op {
            Op::Put { key, .. } | Op::Get { key } => key.clone(),
        };
        let targets = self
            .placement
            .targets(&key, self.mode, |n| membership.is_up(n));
        let deadline_ms = now_ms + self.timing.request_timeout_ms;
        self.next_req += 1;
        let req = self.next_req;
        match op {
            Op::Put { value, context, .. } => {
                let mut state = self.disk.store.get(&key).cloned().unwrap_or_default();
                self.disk.next_counter += 1;
                let dot = Dot {
                    actor: self.disk.actor,
                    counter: self.disk.next_counter,
                };
                // Stamp later than every version this write replaces or
                // joins, so last-writer-wins respects what the node saw.
                for sibling in state.siblings() {
                    let _skewed = self.hlc.observe(sibling.hlc, now_ms);
                }
                let hlc = self.hlc.now(now_ms);
                if state
                    .write(Some(value), &context, dot, hlc, now_ms)
                    .is_err()
                {
                    out.push(Out::Answer(client, Answer::Failed));
                    return;
                }
                state.prune(&self.prune, now_ms);
                self.apply(&key, &state);
                let mut round = WriteRound::new(&targets, self.quorum.w, deadline_ms);
                round.ack(self.id);
                for t in targets.iter().filter(|t| t.node != self.id) {
                    let msg = Msg::Replicate {
                        req,
                        key: key.clone(),
                        state: state.clone(),
                        hint_for: t.hint_for,
                    };
                    out.push(Out::Send(t.node, msg));
                }
                self.writes.insert(req, PendingWrite { client, dot, round });
                self.settle_write(req, out);
            }
            Op::Get { key } => {
                let mut round = ReadRound::new(&targets, self.quorum.r, deadline_ms);
                let local = self.disk.store.get(&key).cloned().unwrap_or_default();
                round.reply(self.id, local);
                for t in targets.iter().filter(|t| t.node != self.id) {
                    let msg = Msg::Read {
                        req,
                        key: key.clone(),
                    };
                    out.push(Out::Send(t.node, msg));
                }
                let read = PendingRead {
                    client,
                    key,
                    round,
                    answered: false,
                };
                self.reads.insert(req, read);
                self.settle_read(req, now_ms, out);
            }
        }
    }

    fn settle_write(&mut self, req: u64, out: &mut Vec<Out>) {
        let Some(write) = self.writes.get(&req) else {
            return;
        };
        let answer = match write.round.outcome() {
            Outcome::Pending => return,
            Outcome::Succeeded => Answer::Written(write.dot),
            Outcome::Failed(_) => Answer::Failed,
        };
        out.push(Out::Answer(write.client, answer));
        self.writes.remove(&req);
    }

    fn settle_read(&mut self, req: u64, now_ms: u64, out: &mut Vec<Out>) {
        let Some(read) = self.reads.get_mut(&req) else {
            return;
        };
        let outcome = read.round.tick(now_ms);
        if !read.answered && outcome != Outcome::Pending {
            read.answered = true;
            let answer = match outcome {
                Outcome::Succeeded => Answer::Read(read.round.merged().clone()),
                _ => Answer::Failed,
            };
            out.push(Out::Answer(read.client, answer));
        }
        if read.round.all_answered() || now_ms >= read.round.deadline_ms() {
            let Some(read) = self.reads.remove(&req) else {
                return;
            };
            if read.round.outcome() != Outcome::Succeeded {
                return;
            }
            let merged = read.round.merged().clone();
            for node in read.round.repair_targets() {
                if node == self.id {
                    self.apply(&read.key, &merged);
                } else {
                    let msg = Msg::Repair {
                        key: read.key.clone(),
                        state: merged.clone(),
                    };
                    out.push(Out::Send(node, msg));
                }
            }
        }
    }

    /// Background work: the detector, deadlines, hint delivery, anti-entropy.
    pub fn tick(&mut self, now_ms: u64, out: &mut Vec<Out>) {
        for (to, m) in self.membership.tick(now_ms) {
            out.push(Out::Send(to, Msg::Member(m)));
        }
        let writes: Vec<u64> = self.writes.keys().copied().collect();
        for req in writes {
            if let Some(w) = self.writes.get_mut(&req) {
                w.round.tick(now_ms);
            }
            self.settle_write(req, out);
        }
        let reads: Vec<u64> = self.reads.keys().copied().collect();
        for req in reads {
            self.settle_read(req, now_ms, out);
        }
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
        if now_ms >= self.next_ae_ms {
            self.next_ae_ms = now_ms + self.timing.ae_interval_ms;
            let alive: Vec<NodeId> = self
                .membership
                .members()
                .filter(|m| m.1 == membership::Status::Alive)
                .map(|m| m.0)
                .collect();
            if !alive.is_empty() {
                let peer = alive[self.rng.usize(..alive.len())];
                if let Some(m) = self.ae.start(peer) {
                    out.push(Out::Send(peer, Msg::Ae(m)));
                }
            }
        }
    }

    /// This node's key states in `buckets` that it shares with `peer`.
    fn entries_for(&self, peer: NodeId, buckets: &[u32]) -> Vec<(Bytes, Siblings)> {
        self.disk
            .store
            .iter()
            .filter(|(key, _)| {
                self.ae.bucket_of(key).is_some_and(|b| buckets.contains(&b))
                    && self.replicas(key).contains(&peer)
            })
            .take(self.timing.ae_entries_max)
            .map(|(k, s)| (k.clone(), s.clone()))
            .collect()
    }

    /// A message from another node.
    pub fn receive(&mut self, now_ms: u64, from: NodeId, msg: Msg, out: &mut Vec<Out>) {
        match msg {
            Msg::Member(m) => {
                for (to, reply) in self.membership.receive(now_ms, from, m) {
                    out.push(Out::Send(to, Msg::Member(reply)));
                }
            }
            Msg::Forward { client, op } => self.coordinate(now_ms, client, op, out),
            Msg::Replicate {
                req,
                key,
                state,
                hint_for,
            } => {
                let ok = match hint_for {
                    Some(owner) => self.disk.hints.add(owner, key, &state).is_ok(),
                    None if self.is_replica(&key) => {
                        self.apply(&key, &state);
                        true
                    }
                    None => false,
                };
                out.push(Out::Send(from, Msg::ReplicateAck { req, ok }));
            }
            Msg::ReplicateAck { req, ok } => {
                if let Some(w) = self.writes.get_mut(&req) {
                    if ok {
                        w.round.ack(from)
                    } else {
                        w.round.refuse(from)
                    };
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
                    r.round.reply(from, state);
                }
                self.settle_read(req, now_ms, out);
            }
            Msg::Repair { key, state } => {
                if self.is_replica(&key) {
                    self.apply(&key, &state);
                }
            }
            Msg::Handoff { key, state, seq } => {
                if self.is_replica(&key) {
                    self.apply(&key, &state);
                    out.push(Out::Send(from, Msg::HandoffAck { key, seq }));
                }
            }
            Msg::HandoffAck { key, seq } => self.disk.hints.delivered(from, &key, seq),
            Msg::Ae(m) => match self.ae.on_message(from, &m) {
                Ok(Reply::Send(next)) => out.push(Out::Send(from, Msg::Ae(next))),
                Ok(Reply::Differ(buckets)) => {
                    let entries = self.entries_for(from, &buckets);
                    let msg = Msg::AeEntries {
                        entries,
                        buckets,
                        reply: true,
                    };
                    out.push(Out::Send(from, msg));
                }
                Ok(Reply::InSync) | Err(_) => {}
            },
            Msg::AeEntries {
                entries,
                buckets,
                reply,
            } => {
                for (key, state) in &entries {
                    let replicas = self.replicas(key);
                    if replicas.contains(&self.id) && replicas.contains(&from) {
                        self.apply(key, state);
                    }
                }
                if reply {
                    let entries = self.entries_for(from, &buckets);
                    let msg = Msg::AeEntries {
                        entries,
                        buckets,
                        reply: false,
                    };
                    out.push(Out::Send(from, msg));
                }
            }
        }
    }
}
