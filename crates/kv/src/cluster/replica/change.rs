//! A node's side of membership changes ([`crate::cluster::topology`]):
//! adopting ring versions, the joint quorum rounds during a change, the
//! seen barrier, and pulling the ranges this node gains.
//!
//! Why it exists apart: the topology module decides the phases; only a
//! node knows its rounds in flight (the seen barrier), its store (what it
//! streams to a gainer) and its peers.

use std::sync::Arc;

use bytes::Bytes;

use super::{MemberChange, Msg, Node, Out, Persist, StreamProgress};
use crate::cluster::NodeId;
use crate::cluster::anti_entropy::AntiEntropy;
use crate::cluster::placement::{Placement, QuorumMode, Target};
use crate::cluster::quorum::Outcome;
use crate::cluster::topology::{ChangeError, Phase, Topology};

/// How often a node pushes its topology to every member.
pub const TOPOLOGY_GOSSIP_MS: u64 = 1_000;
/// How long a stream request waits for its batch before it is re-sent.
pub const STREAM_RETRY_MS: u64 = 500;
/// Key states per stream batch.
pub const STREAM_BATCH_KEYS: usize = 512;
/// Keys a source scans for one batch (bounds the work per message).
const STREAM_SCAN_MAX: usize = 65_536;

/// One member a gaining node pulls from.
#[derive(Debug, Clone, Default)]
pub(super) struct Source {
    after: Option<Bytes>,
    done: bool,
    asked_ms: u64,
}

/// Where a request goes: every target, and the rounds that must all
/// succeed (targets, answers needed).
pub(super) struct Plan {
    pub targets: Vec<Target>,
    pub rounds: Vec<(Vec<Target>, usize)>,
}

/// All rounds succeeded, or one failed, or still pending.
pub(super) fn joint(outcomes: impl Iterator<Item = Outcome>) -> Outcome {
    let mut all = Outcome::Succeeded;
    for o in outcomes {
        match o {
            Outcome::Failed(f) => return Outcome::Failed(f),
            Outcome::Pending => all = Outcome::Pending,
            Outcome::Succeeded => {}
        }
    }
    all
}

impl Node {
    /// The ring and the change in flight, as this node knows them.
    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// This node's range streaming in the current change.
    pub fn stream_progress(&self) -> StreamProgress {
        StreamProgress {
            sources: self.streams.len(),
            sources_done: self.streams.values().filter(|s| s.done).count(),
            keys: self.streamed_keys,
        }
    }

    /// The ring whose first up replica coordinates a key.
    pub(super) fn coordinating(&self) -> &Placement {
        match (&self.pending, self.topology.phase) {
            (Some(new), Phase::Switched) => new,
            _ => &self.placement,
        }
    }

    /// The rings a round must satisfy: the old one, and the new one during
    /// a change.
    fn rings(&self) -> Vec<Arc<Placement>> {
        std::iter::once(self.placement.clone())
            .chain(self.pending.clone())
            .collect()
    }

    /// The targets and rounds of a request (see the topology docs): `need`
    /// answers on every ring, and for writes (`coordinators`) during a
    /// change an answer from each ring's coordinator too.
    pub(super) fn plan(
        &self,
        key: &[u8],
        mode: QuorumMode,
        need: usize,
        coordinators: bool,
    ) -> Plan {
        let up = |n: NodeId| self.membership.is_up(n);
        let mut plan = Plan {
            targets: Vec::new(),
            rounds: Vec::new(),
        };
        let rings = self.rings();
        for ring in &rings {
            let targets = ring.targets(key, mode, up);
            for t in &targets {
                match plan.targets.iter_mut().find(|p| p.node == t.node) {
                    // A replica on either ring stores it as one.
                    Some(p) if t.hint_for.is_none() => p.hint_for = None,
                    Some(_) => {}
                    None => plan.targets.push(*t),
                }
            }
            plan.rounds.push((targets, need));
        }
        if coordinators && rings.len() > 1 {
            for ring in &rings {
                if let Some(node) = ring.coordinator(key, up) {
                    let only = vec![Target {
                        node,
                        hint_for: None,
                    }];
                    plan.rounds.push((only, 1));
                }
            }
        }
        plan
    }

    /// An operator's change, proposed from this node's topology.
    pub fn change(
        &mut self,
        now_ms: u64,
        change: MemberChange,
        out: &mut Vec<Out>,
    ) -> Result<(), ChangeError> {
        self.now_ms = now_ms;
        if !self.topology.members.contains_key(&self.id) && !self.heard_topology {
            return Err(ChangeError::NotInContact);
        }
        let n = self.placement.replicas();
        let next = match change {
            MemberChange::Join(spec) => self.topology.propose_join(spec, n)?,
            MemberChange::Leave(node) => self.topology.propose_leave(node, n)?,
        };
        self.adopt(now_ms, &next, out);
        self.broadcast(out);
        Ok(())
    }

    fn broadcast(&self, out: &mut Vec<Out>) {
        for id in self.topology.ids().into_iter().filter(|&id| id != self.id) {
            out.push(Out::Send(id, Msg::Topology(self.topology.clone())));
        }
    }

    /// Joins `incoming` into this node's topology, installing a new
    /// version (rings, detector, trees, streams); true if anything changed.
    fn adopt(&mut self, now_ms: u64, incoming: &Topology, out: &mut Vec<Out>) -> bool {
        let mut next = self.topology.clone();
        if !next.merge(incoming) {
            return false;
        }
        if next.version != self.topology.version {
            let Ok((old, new)) = next.placements(self.placement.replicas()) else {
                return false; // a ring this node cannot build: ignore it
            };
            self.placement = Arc::new(old);
            self.pending = new.map(Arc::new);
            self.streams.clear();
            for id in next.ids() {
                self.membership.add(id, now_ms);
            }
            let gone: Vec<NodeId> = self
                .membership
                .members()
                .map(|m| m.0)
                .filter(|id| !next.members.contains_key(id))
                .collect();
            for id in gone {
                self.membership.remove(id);
            }
            self.topology = next;
            if self.topology.phase == Phase::Stable {
                self.drop_moved_keys(out);
            }
            self.rebuild_trees();
        } else {
            self.topology = next;
        }
        let t = self.topology.clone();
        self.disk.topology = Some(t.clone());
        out.push(Out::Persist(Persist::Topology(t)));
        true
    }

    /// Keys this node no longer replicates leave its store (the new
    /// owners streamed them before the change completed).
    fn drop_moved_keys(&mut self, out: &mut Vec<Out>) {
        let moved: Vec<Bytes> = self
            .disk
            .store
            .keys()
            .filter(|k| !self.placement.preference_list(k).contains(&self.id))
            .cloned()
            .collect();
        for key in moved {
            self.disk.store.remove(&key);
            self.tombstones.remove(&key);
            out.push(Out::Persist(Persist::Delete(key)));
        }
    }

    /// The Merkle trees follow the ring: one per member, over the keys
    /// shared on the old ring.
    pub(super) fn rebuild_trees(&mut self) {
        let depth = self.timing.tree_depth;
        let Ok(mut ae) = AntiEntropy::new(self.id, self.topology.ids(), depth) else {
            return;
        };
        for (key, state) in &self.disk.store {
            let replicas = self.placement.preference_list(key);
            if replicas.contains(&self.id) {
                ae.record(key, None, Some(state.digest()), &replicas);
            }
        }
        self.ae = ae;
        // The bucket lists were found against the old trees.
        self.repairs.clear();
    }

    pub(super) fn on_topology(
        &mut self,
        now_ms: u64,
        from: NodeId,
        t: Topology,
        out: &mut Vec<Out>,
    ) {
        if self.topology.members.contains_key(&from) {
            self.heard_topology = true;
        }
        if self.adopt(now_ms, &t, out) {
            self.broadcast(out);
        }
        // The sender lacks something this node knows (or is not a member
        // yet and learns the ring this way): answer it.
        if t != self.topology || !self.topology.members.contains_key(&from) {
            out.push(Out::Send(from, Msg::Topology(self.topology.clone())));
        }
    }

    /// The topology's share of a tick: push gossip, the seen barrier,
    /// streaming, and the next step once its condition holds.
    pub(super) fn tick_topology(&mut self, now_ms: u64, out: &mut Vec<Out>) {
        let me = self.id;
        // Pushed while a change is in flight (or by a node not on the
        // ring yet); a node that missed a step is behind, so it is in a
        // change itself, pushes, and is answered with the newer version.
        let quiet = self.topology.phase == Phase::Stable && self.topology.members.contains_key(&me);
        if now_ms >= self.next_topology_ms && !quiet {
            self.next_topology_ms = now_ms + TOPOLOGY_GOSSIP_MS;
            self.broadcast(out);
        }
        let version = self.topology.version;
        if !self.topology.members.contains_key(&me) || self.topology.phase == Phase::Stable {
            return;
        }
        let mut changed = false;
        let older = self.writes.values().any(|w| w.version < version)
            || self.reads.values().any(|r| r.version < version);
        if !older && self.topology.seen.insert(me) {
            changed = true;
        }
        let gaining = self.topology.phase == Phase::Streaming
            && self.topology.everyone_seen()
            && self
                .pending
                .as_ref()
                .is_some_and(|p| p.nodes().contains(&me))
            && !self.topology.streamed.contains(&me);
        if gaining {
            if self.streams.is_empty() {
                for id in self.topology.ids().into_iter().filter(|&id| id != me) {
                    self.streams.insert(id, Source::default());
                }
            }
            if self.streams.values().all(|s| s.done) {
                self.topology.streamed.insert(me);
                changed = true;
            }
            for (&id, source) in self.streams.iter_mut() {
                if !source.done && now_ms >= source.asked_ms + STREAM_RETRY_MS {
                    source.asked_ms = now_ms;
                    let after = source.after.clone();
                    out.push(Out::Send(id, Msg::StreamReq { version, after }));
                }
            }
        }
        if changed {
            let t = self.topology.clone();
            self.disk.topology = Some(t.clone());
            out.push(Out::Persist(Persist::Topology(t)));
        }
        if let Some(next) = self.topology.next() {
            self.adopt(now_ms, &next, out);
            changed = true;
        }
        if changed {
            self.broadcast(out);
        }
    }

    /// A gaining node asks for its keys: the ones this node stores whose
    /// new replicas include it and whose old ones do not.
    pub(super) fn on_stream_req(
        &mut self,
        from: NodeId,
        version: u64,
        after: Option<Bytes>,
        out: &mut Vec<Out>,
    ) {
        let Some(new) = &self.pending else {
            return;
        };
        if version != self.topology.version || self.topology.phase != Phase::Streaming {
            return; // the requester retries once both agree
        }
        let start = match &after {
            Some(k) => std::ops::Bound::Excluded(k.clone()),
            None => std::ops::Bound::Unbounded,
        };
        let mut entries = Vec::new();
        let mut next = None;
        let mut bytes = 0;
        for (scanned, (key, state)) in self
            .disk
            .store
            .range::<Bytes, _>((start, std::ops::Bound::Unbounded))
            .enumerate()
        {
            let full = entries.len() >= STREAM_BATCH_KEYS || bytes >= super::AE_BYTES_MAX;
            if full || scanned >= STREAM_SCAN_MAX {
                break;
            }
            next = Some(key.clone());
            if new.preference_list(key).contains(&from)
                && !self.placement.preference_list(key).contains(&from)
            {
                bytes += key.len() + state.size_bytes();
                entries.push((key.clone(), state.clone()));
            }
        }
        // Done when the scan reached the end of the store.
        let done = match &next {
            None => true,
            Some(last) => self
                .disk
                .store
                .range::<Bytes, _>((
                    std::ops::Bound::Excluded(last.clone()),
                    std::ops::Bound::Unbounded,
                ))
                .next()
                .is_none(),
        };
        let next = if done { None } else { next };
        let msg = Msg::StreamBatch {
            version,
            after,
            entries,
            next,
        };
        out.push(Out::Send(from, msg));
    }

    pub(super) fn on_stream_batch(
        &mut self,
        now_ms: u64,
        from: NodeId,
        batch: Msg,
        out: &mut Vec<Out>,
    ) {
        let Msg::StreamBatch {
            version,
            after,
            entries,
            next,
        } = batch
        else {
            return;
        };
        if version != self.topology.version {
            return;
        }
        let Some(source) = self.streams.get(&from) else {
            return;
        };
        if source.done || source.after != after {
            return; // a duplicate or a stale batch
        }
        for (key, state) in &entries {
            if self.is_replica(key) && self.apply(key, state, out) {
                self.streamed_keys += 1;
            }
        }
        let Some(source) = self.streams.get_mut(&from) else {
            return;
        };
        source.done = next.is_none();
        source.after = next.clone();
        source.asked_ms = now_ms;
        if let Some(after) = next {
            let msg = Msg::StreamReq {
                version,
                after: Some(after),
            };
            out.push(Out::Send(from, msg));
        }
    }
}
