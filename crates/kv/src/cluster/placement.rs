//! Where a key's replicas live: preference lists on the ring, spread over
//! datacenters, and the sloppy-quorum substitutes when replicas are down.
//!
//! Why it exists: the notes' partitioning and replication sections
//! ("데이터 파티션", "데이터 다중화") put a key on the first `N` distinct
//! physical servers clockwise from it on the consistent-hash ring, and the
//! datacenter section ("데이터 센터 장애 처리") wants those copies in
//! different datacenters; the temporary-failure section ("일시적 장애
//! 처리") sends a down replica's share to the next healthy server, with a
//! *hint* naming the intended owner. All three are functions of (ring,
//! key, who is up), kept here apart from any I/O.
//!
//! - [`Placement::preference_list`]: the `ring` crate's walk (virtual
//!   nodes, distinct physical nodes) plus a datacenter rule: while some
//!   datacenter has no replica yet, the walk skips nodes of datacenters
//!   that already have one, then fills the rest in ring order. Without
//!   datacenters it is exactly the ring's preference list. The first entry
//!   is always the key's owner on the ring, and the list is in ring order.
//! - [`Placement::targets`]: the nodes a request goes to. Under a strict
//!   quorum only the up members of the preference list; under a sloppy
//!   quorum each down member is replaced by the next up node further along
//!   the ring (preferring its datacenter), which holds the data as a hint
//!   for it ([`crate::cluster::hinted_handoff`]).
//! - [`Placement::coordinator`]: the first up node of the preference list.
//!   A coordinator must be a replica: it draws the write's dot from its own
//!   state of the key (see `siblings`), so when every replica is down a
//!   write is refused rather than coordinated by a substitute.
//!
//! The ring here is one version of the membership; a down node stays on
//! it (Dynamo's view: a temporary failure does not move data). Joining and
//! leaving, which do move ranges, build new placements ([`super::topology`]).

use std::collections::BTreeMap;

use ring::{Ring, RingError, key_position};

use super::NodeId;

/// Whether down replicas are replaced (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QuorumMode {
    /// Substitutes with hints stand in for down replicas.
    #[default]
    Sloppy,
    /// Only the preference list's own members count.
    Strict,
}

/// One node a request goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    /// Who gets the request.
    pub node: NodeId,
    /// The down replica it stands in for, if it is a substitute.
    pub hint_for: Option<NodeId>,
}

/// A refused placement.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlacementError {
    /// The ring refused a node.
    #[error(transparent)]
    Ring(#[from] RingError),
    /// The replica count is 0 or above the node count.
    #[error("{replicas} replicas need at least that many nodes, and there are {nodes}")]
    Replicas {
        /// N.
        replicas: usize,
        /// How many nodes there are.
        nodes: usize,
    },
}

/// One node as configured.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct NodeSpec {
    /// Its id.
    pub id: NodeId,
    /// Its virtual node count (its weight on the ring).
    pub vnodes: u32,
    /// Its datacenter, if datacenters are in use.
    pub datacenter: Option<String>,
}

/// The ring, the datacenters and `N`.
#[derive(Debug, Clone)]
pub struct Placement {
    specs: Vec<NodeSpec>,
    ring: Ring<NodeId>,
    datacenters: BTreeMap<NodeId, String>,
    replicas: usize,
}

impl Placement {
    /// A placement of `nodes` with `replicas` copies of every key.
    pub fn new(nodes: &[NodeSpec], replicas: usize) -> Result<Placement, PlacementError> {
        if replicas == 0 || replicas > nodes.len() {
            return Err(PlacementError::Replicas {
                replicas,
                nodes: nodes.len(),
            });
        }
        let mut ring = Ring::new();
        let mut datacenters = BTreeMap::new();
        for node in nodes {
            ring.add_server(node.id, node.vnodes)?;
            if let Some(dc) = &node.datacenter {
                datacenters.insert(node.id, dc.clone());
            }
        }
        Ok(Placement {
            specs: nodes.to_vec(),
            ring,
            datacenters,
            replicas,
        })
    }

    /// The nodes as configured.
    pub fn specs(&self) -> &[NodeSpec] {
        &self.specs
    }

    /// `N`: copies per key.
    pub fn replicas(&self) -> usize {
        self.replicas
    }

    /// Every node, in id order.
    pub fn nodes(&self) -> Vec<NodeId> {
        self.ring.servers().into_iter().map(|(&id, _)| id).collect()
    }

    /// Every node in ring order from `key`'s position (the owner first).
    fn walk(&self, key: &[u8]) -> Vec<NodeId> {
        self.ring
            .preference_list_of_position(key_position(key), self.ring.server_count())
            .into_iter()
            .copied()
            .collect()
    }

    fn datacenter(&self, node: NodeId) -> Option<&str> {
        self.datacenters.get(&node).map(String::as_str)
    }

    /// The `N` replicas of `key`, in ring order, spread over datacenters.
    /// Without datacenters the ring's walk stops after `N` nodes; with them
    /// it walks every node (a cost linear in the virtual nodes, fine for
    /// tens of nodes; a per-range cache is the fix for thousands).
    pub fn preference_list(&self, key: &[u8]) -> Vec<NodeId> {
        if self.datacenters.is_empty() {
            return self
                .ring
                .preference_list(key, self.replicas)
                .into_iter()
                .copied()
                .collect();
        }
        self.pick(&self.walk(key))
    }

    /// The datacenter rule over a whole walk (see the module docs).
    fn pick(&self, walk: &[NodeId]) -> Vec<NodeId> {
        let mut chosen = vec![false; walk.len()];
        let mut used: Vec<Option<&str>> = Vec::new();
        let mut count = 0;
        // First one per datacenter, in ring order.
        for (i, &node) in walk.iter().enumerate() {
            if count == self.replicas {
                break;
            }
            let dc = self.datacenter(node);
            if !used.contains(&dc) {
                used.push(dc);
                chosen[i] = true;
                count += 1;
            }
        }
        // Then the rest in ring order.
        for flag in chosen.iter_mut() {
            if count == self.replicas {
                break;
            }
            if !*flag {
                *flag = true;
                count += 1;
            }
        }
        walk.iter()
            .zip(chosen)
            .filter_map(|(&node, chosen)| chosen.then_some(node))
            .collect()
    }

    /// Each node's share of the ring (primary ranges, by its virtual
    /// nodes), summing to 1: what `cluster status` shows as ownership.
    pub fn ownership(&self) -> Vec<(NodeId, f64)> {
        self.ring
            .ownership()
            .into_iter()
            .map(|(&id, share)| (id, share))
            .collect()
    }

    /// The datacenter of `node`, if datacenters are configured.
    pub fn datacenter_of(&self, node: NodeId) -> Option<&str> {
        self.datacenter(node)
    }

    /// The node that coordinates requests for `key`: the first up replica.
    pub fn coordinator(&self, key: &[u8], is_up: impl Fn(NodeId) -> bool) -> Option<NodeId> {
        self.preference_list(key).into_iter().find(|&n| is_up(n))
    }

    /// Where a request for `key` goes (see the module docs). Under a sloppy
    /// quorum the result has one target per replica while enough nodes are
    /// up; a substitute's `hint_for` names the replica it stands in for.
    pub fn targets(
        &self,
        key: &[u8],
        mode: QuorumMode,
        is_up: impl Fn(NodeId) -> bool,
    ) -> Vec<Target> {
        let preferred = self.preference_list(key);
        let mut targets: Vec<Target> = preferred
            .iter()
            .filter(|&&n| is_up(n))
            .map(|&node| Target {
                node,
                hint_for: None,
            })
            .collect();
        if mode == QuorumMode::Strict || targets.len() == preferred.len() {
            return targets;
        }
        // Someone is down: walk the whole ring for substitutes (rare, and
        // the only case that pays for more than N nodes of the walk).
        let walk = self.walk(key);
        let mut spare: Vec<NodeId> = walk
            .iter()
            .filter(|&&n| !preferred.contains(&n) && is_up(n))
            .copied()
            .collect();
        for &down in preferred.iter().filter(|&&n| !is_up(n)) {
            let dc = self.datacenter(down);
            let at = spare
                .iter()
                .position(|&n| self.datacenter(n) == dc)
                .or((!spare.is_empty()).then_some(0));
            if let Some(at) = at {
                let node = spare.remove(at);
                targets.push(Target {
                    node,
                    hint_for: Some(down),
                });
            }
        }
        targets
    }
}

#[cfg(test)]
mod tests;
