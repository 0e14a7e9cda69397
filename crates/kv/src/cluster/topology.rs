//! Membership changes: who is on the ring, and the phases a join or a
//! leave goes through so the cluster stays available and no acknowledged
//! write is lost while ranges move.
//!
//! Why it exists: the failure detector ([`super::membership`]) decides
//! who is *up*; this decides who *owns* ranges. A temporary failure moves
//! nothing (Dynamo's view); a join or a leave moves ranges, and both old
//! and new owners must hold every acknowledged write by the time readers
//! rely on the new ones alone.
//!
//! # The phases
//!
//! A [`Topology`] is versioned and spread by push gossip (higher version
//! wins; an equal version unions the `seen`/`streamed` sets). A change
//! goes through three versions, each a pure function of the previous one,
//! so any node may take the next step and all arrive at the same value:
//!
//! ```text
//!  v   Streaming  old ring = Normal+Leaving, new ring = Normal+Joining
//!                 writes: W acks among old AND W among new AND both
//!                 coordinators; reads: R among old AND R among new;
//!                 coordinator: the old ring's
//!                 once every member has *seen* v (and finished its rounds
//!                 from before v), each node of the new ring pulls the keys
//!                 it gains from every other member, then marks *streamed*
//!  v+1 Switched   every node of the new ring streamed: same joint rounds,
//!                 coordinator: the new ring's
//!  v+2 Stable     every member has seen v+1: the new ring alone; nodes
//!                 drop the keys they no longer replicate
//! ```
//!
//! Why this is enough: a write acknowledged before `v` is on `W` old
//! replicas before anyone streams (the seen barrier waits for rounds
//! started under older versions), and a gaining node pulls from all of
//! them, so it has the write before the switch. A write acknowledged
//! during the change is on `W` old and `W` new replicas, so a reader on
//! either ring (nodes adopt versions at different times) meets it, and
//! on both coordinators, so whichever coordinator a node believes in has
//! every version a plain `SET` must replace (the single order the strict
//! quorum's linearizability argument rests on). The cost: during a change
//! a write needs more acknowledgements, and a down member stalls the
//! change (it cannot see or stream) until it is back; the cluster still
//! serves.
//!
//! One change at a time: a proposal while another is in flight is
//! refused. Two proposals made at once on different nodes get the same
//! version; the larger (by content) wins everywhere and the other
//! operator sees their change did not happen.

use std::collections::{BTreeMap, BTreeSet};

use super::NodeId;
use super::placement::{NodeSpec, Placement, PlacementError};

/// A member's part in the ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RingState {
    /// Owns its ranges.
    Normal,
    /// Gaining ranges.
    Joining,
    /// Handing its ranges over.
    Leaving,
}

impl RingState {
    /// Its name in `cluster status`.
    pub fn name(self) -> &'static str {
        match self {
            RingState::Normal => "normal",
            RingState::Joining => "joining",
            RingState::Leaving => "leaving",
        }
    }
}

/// Where a change stands (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// No change in flight.
    Stable,
    /// Gaining nodes pull their new ranges.
    Streaming,
    /// The new ring coordinates; still joint rounds.
    Switched,
}

impl Phase {
    /// Its name in `cluster status`.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Stable => "stable",
            Phase::Streaming => "streaming",
            Phase::Switched => "switched",
        }
    }
}

/// A refused proposal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChangeError {
    /// Another change is in flight.
    #[error("a membership change is in progress (version {0}); wait for it to finish")]
    Busy(u64),
    /// The node is already a member.
    #[error("node {0} is already a member")]
    Member(NodeId),
    /// The node is not a member.
    #[error("node {0} is not a member")]
    NotMember(NodeId),
    /// Leaving would leave fewer nodes than replicas.
    #[error("leaving would leave {left} nodes for {replicas} replicas per key")]
    TooFew {
        /// Nodes that would remain.
        left: usize,
        /// `N`.
        replicas: usize,
    },
    /// A node not on the ring has not heard the ring from a member yet.
    #[error("this node has not heard from the cluster yet; check --seeds and try again")]
    NotInContact,
    /// The new ring is invalid.
    #[error(transparent)]
    Placement(#[from] PlacementError),
}

/// The ring's members and the change in flight (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    /// Bumped by every step.
    pub version: u64,
    /// Where the change stands.
    pub phase: Phase,
    /// Every member, with its spec and part.
    pub members: BTreeMap<NodeId, (NodeSpec, RingState)>,
    /// Members that adopted this version with no older rounds in flight.
    pub seen: BTreeSet<NodeId>,
    /// Nodes of the new ring that pulled their ranges (Streaming only).
    pub streamed: BTreeSet<NodeId>,
}

impl Topology {
    /// The ring a cluster forms with: version 1, everyone normal.
    pub fn initial(specs: &[NodeSpec]) -> Topology {
        Topology {
            version: 1,
            phase: Phase::Stable,
            members: specs
                .iter()
                .map(|s| (s.id, (s.clone(), RingState::Normal)))
                .collect(),
            seen: BTreeSet::new(),
            streamed: BTreeSet::new(),
        }
    }

    fn specs(&self, skip: RingState) -> Vec<NodeSpec> {
        self.members
            .values()
            .filter(|(_, state)| *state != skip)
            .map(|(spec, _)| spec.clone())
            .collect()
    }

    /// The old ring (normal and leaving nodes) and, during a change, the
    /// new one (normal and joining nodes).
    pub fn placements(
        &self,
        replicas: usize,
    ) -> Result<(Placement, Option<Placement>), PlacementError> {
        let old = Placement::new(&self.specs(RingState::Joining), replicas)?;
        if self.phase == Phase::Stable {
            return Ok((old, None));
        }
        let new = Placement::new(&self.specs(RingState::Leaving), replicas)?;
        Ok((old, Some(new)))
    }

    /// Every member's id.
    pub fn ids(&self) -> Vec<NodeId> {
        self.members.keys().copied().collect()
    }

    /// `node`'s part, if it is a member.
    pub fn state_of(&self, node: NodeId) -> Option<RingState> {
        self.members.get(&node).map(|(_, s)| *s)
    }

    /// The nodes of the new ring: the ones that must stream.
    pub fn gainers(&self) -> Vec<NodeId> {
        self.members
            .iter()
            .filter(|(_, (_, s))| *s != RingState::Leaving)
            .map(|(&id, _)| id)
            .collect()
    }

    /// Whether every member has seen this version.
    pub fn everyone_seen(&self) -> bool {
        self.members.keys().all(|id| self.seen.contains(id))
    }

    fn proposal(&self) -> Result<Topology, ChangeError> {
        if self.phase != Phase::Stable {
            return Err(ChangeError::Busy(self.version));
        }
        Ok(Topology {
            version: self.version + 1,
            phase: Phase::Streaming,
            members: self.members.clone(),
            seen: BTreeSet::new(),
            streamed: BTreeSet::new(),
        })
    }

    /// The first step of adding `spec` to the ring.
    pub fn propose_join(&self, spec: NodeSpec, replicas: usize) -> Result<Topology, ChangeError> {
        if self.members.contains_key(&spec.id) {
            return Err(ChangeError::Member(spec.id));
        }
        let mut next = self.proposal()?;
        next.members.insert(spec.id, (spec, RingState::Joining));
        next.placements(replicas)?;
        Ok(next)
    }

    /// The first step of taking `node` off the ring.
    pub fn propose_leave(&self, node: NodeId, replicas: usize) -> Result<Topology, ChangeError> {
        if !self.members.contains_key(&node) {
            return Err(ChangeError::NotMember(node));
        }
        let mut next = self.proposal()?;
        let left = self.members.len() - 1;
        if left < replicas {
            return Err(ChangeError::TooFew { left, replicas });
        }
        if let Some((_, state)) = next.members.get_mut(&node) {
            *state = RingState::Leaving;
        }
        next.placements(replicas)?;
        Ok(next)
    }

    /// The next step, once its condition holds (see the module docs).
    pub fn next(&self) -> Option<Topology> {
        let mut next = Topology {
            version: self.version + 1,
            phase: self.phase,
            members: self.members.clone(),
            seen: BTreeSet::new(),
            streamed: BTreeSet::new(),
        };
        match self.phase {
            Phase::Stable => return None,
            Phase::Streaming => {
                let streamed = self.gainers().iter().all(|g| self.streamed.contains(g));
                if !self.everyone_seen() || !streamed {
                    return None;
                }
                next.phase = Phase::Switched;
            }
            Phase::Switched => {
                if !self.everyone_seen() {
                    return None;
                }
                next.phase = Phase::Stable;
                next.members.retain(|_, (_, s)| *s != RingState::Leaving);
                for (_, state) in next.members.values_mut() {
                    *state = RingState::Normal;
                }
            }
        }
        Some(next)
    }

    /// Joins what a peer knows into this; true if anything changed.
    /// Higher versions win; at an equal version the same change unions
    /// its sets, and of two different changes the larger wins.
    pub fn merge(&mut self, other: &Topology) -> bool {
        if other.version < self.version {
            return false;
        }
        let same = (self.phase, &self.members) == (other.phase, &other.members);
        if other.version > self.version
            || (!same && (other.phase, &other.members) > (self.phase, &self.members))
        {
            *self = other.clone();
            return true;
        }
        if !same {
            return false;
        }
        let before = (self.seen.len(), self.streamed.len());
        self.seen.extend(other.seen.iter().copied());
        self.streamed.extend(other.streamed.iter().copied());
        before != (self.seen.len(), self.streamed.len())
    }
}

#[cfg(test)]
mod tests;
