//! The hash ring with virtual nodes: placing servers and finding a key's owner.
//!
//! The chapter's ring is a circle of hash values `0..2^64` whose two ends
//! touch. Each server is placed on it many times, once per *virtual node*, and
//! a key belongs to the first virtual node at or after the key's position
//! going clockwise, wrapping from the top of the hash space back to 0. The
//! ring is stored as one `Vec` of virtual nodes sorted by position, so a
//! lookup is one binary search (`O(log V)` for `V` virtual nodes, ~11 steps for
//! 10 servers x 200 vnodes) over a cache-friendly array, and a membership
//! change re-sorts it (`O(V log V)`, rare next to lookups). A balanced tree
//! would make changes cheaper and every lookup slower; rings change seldom.

use std::fmt::Display;

use serde::Serialize;

use crate::error::RingError;
use crate::hash::{key_position, vnode_position};

/// Bounds that keep a ring's memory predictable. Each virtual node costs 16
/// bytes, so the default total of 4 million virtual nodes is at most 64 MB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Limits {
    /// Most servers the ring accepts (a real cluster has tens to thousands).
    pub servers_max: usize,
    /// Most virtual nodes one server may ask for. Past a few hundred the load
    /// spread barely improves (it shrinks like 1/sqrt(vnodes)).
    pub vnodes_per_server_max: u32,
    /// Most virtual nodes on the whole ring: the memory bound.
    pub vnodes_total_max: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            servers_max: 65_536,
            vnodes_per_server_max: 65_536,
            vnodes_total_max: 4 << 20,
        }
    }
}

/// One point of the ring. `slot` indexes [`Ring::servers`] instead of
/// holding the id, so a point is 16 bytes whatever the id type is.
#[derive(Debug, Clone, Copy)]
pub(crate) struct VirtualNode {
    /// Where on the ring it sits: `hash("{id}#{i}")`.
    pub(crate) position: u64,
    /// Which server it stands for (an index into `Ring::servers`).
    pub(crate) slot: u32,
}

/// A physical server and how many virtual nodes it has.
#[derive(Debug, Clone)]
pub(crate) struct Server<S> {
    /// The caller's id; its `Display` text is what gets hashed.
    pub(crate) id: S,
    /// Its virtual node count: its weight on the ring.
    pub(crate) vnodes: u32,
}

/// A consistent-hash ring of servers identified by `S`.
///
/// `S` is any id type that can be displayed (its text is what gets hashed,
/// see [`crate::hash`]) and ordered (the order breaks ties when two virtual
/// nodes hash to the same position, so the owner of every key depends only on
/// *which* servers are on the ring, never on the order they were added).
/// Strings, integers and `SocketAddr` all qualify; a richer type (an id plus
/// an address) qualifies by implementing `Display` as its stable name.
#[derive(Debug, Clone)]
pub struct Ring<S> {
    /// Every virtual node, sorted by `(position, server id)`.
    pub(crate) vnodes: Vec<VirtualNode>,
    /// Servers by slot; `None` marks a slot freed by a removal.
    pub(crate) servers: Vec<Option<Server<S>>>,
    /// Freed slots, reused first so `servers` does not grow with churn.
    free_slots: Vec<u32>,
    /// Number of `Some` entries in `servers`.
    server_count: usize,
    /// Checked on every addition, so memory stays bounded.
    limits: Limits,
}

impl<S: Ord + Display> Default for Ring<S> {
    fn default() -> Self {
        Ring::new()
    }
}

impl<S: Ord + Display> Ring<S> {
    /// An empty ring with the default [`Limits`].
    pub fn new() -> Self {
        Ring::with_limits(Limits::default())
    }

    /// An empty ring with the given limits.
    pub fn with_limits(limits: Limits) -> Self {
        assert!(
            limits.servers_max <= u32::MAX as usize,
            "servers_max must fit slots in u32"
        );
        Ring {
            vnodes: Vec::new(),
            servers: Vec::new(),
            free_slots: Vec::new(),
            server_count: 0,
            limits,
        }
    }

    /// The limits this ring enforces.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Puts server `id` on the ring with `vnodes` virtual nodes. Give a
    /// server twice the virtual nodes and it owns about twice the keys: that
    /// is how the notes' *heterogeneity* matches load to capacity.
    ///
    /// Only keys that now belong to `id` change owner. Refused (ring
    /// unchanged) if `id` is already present, `vnodes` is 0, or a limit
    /// would be crossed.
    pub fn add_server(&mut self, id: S, vnodes: u32) -> Result<(), RingError> {
        self.check_add(&id, vnodes)?;
        let slot = match self.free_slots.pop() {
            Some(slot) => slot,
            None => {
                self.servers.push(None);
                u32::try_from(self.servers.len() - 1).expect("servers_max fits u32")
            }
        };
        let mut label = String::new();
        self.vnodes.reserve(vnodes as usize);
        for i in 0..vnodes {
            let position = vnode_position(&id, i, &mut label);
            self.vnodes.push(VirtualNode { position, slot });
        }
        debug_assert!(self.servers[slot as usize].is_none());
        self.servers[slot as usize] = Some(Server { id, vnodes });
        self.server_count += 1;
        self.sort();
        Ok(())
    }

    fn check_add(&self, id: &S, vnodes: u32) -> Result<(), RingError> {
        let name = || id.to_string();
        if vnodes == 0 {
            return Err(RingError::ZeroVnodes { id: name() });
        }
        if vnodes > self.limits.vnodes_per_server_max {
            return Err(RingError::TooManyVnodes {
                id: name(),
                requested: vnodes,
                max: self.limits.vnodes_per_server_max,
            });
        }
        if self.slot_of(id).is_some() {
            return Err(RingError::DuplicateServer { id: name() });
        }
        if self.server_count >= self.limits.servers_max {
            return Err(RingError::TooManyServers {
                id: name(),
                max: self.limits.servers_max,
            });
        }
        let total = self.vnodes.len() + vnodes as usize;
        if total > self.limits.vnodes_total_max {
            return Err(RingError::RingFull {
                id: name(),
                total,
                max: self.limits.vnodes_total_max,
            });
        }
        Ok(())
    }

    /// Takes server `id` off the ring and returns it with its virtual node
    /// count. Only the keys it owned change owner: each goes to the next
    /// server clockwise from the removed virtual node that held it.
    pub fn remove_server(&mut self, id: &S) -> Result<(S, u32), RingError> {
        let slot = self
            .slot_of(id)
            .ok_or_else(|| RingError::UnknownServer { id: id.to_string() })?;
        let server = self.servers[slot as usize]
            .take()
            .expect("slot_of returns occupied slots");
        self.vnodes.retain(|v| v.slot != slot);
        self.free_slots.push(slot);
        self.server_count -= 1;
        debug_assert_eq!(
            self.vnodes.len(),
            self.servers
                .iter()
                .flatten()
                .map(|s| s.vnodes as usize)
                .sum::<usize>()
        );
        Ok((server.id, server.vnodes))
    }

    /// Whether `id` is on the ring.
    pub fn contains(&self, id: &S) -> bool {
        self.slot_of(id).is_some()
    }

    /// The virtual node count of `id`, if it is on the ring.
    pub fn vnodes_of(&self, id: &S) -> Option<u32> {
        self.slot_of(id)
            .and_then(|slot| self.servers[slot as usize].as_ref())
            .map(|s| s.vnodes)
    }

    /// Every server with its virtual node count, in id order.
    pub fn servers(&self) -> Vec<(&S, u32)> {
        let mut all: Vec<(&S, u32)> = self
            .servers
            .iter()
            .flatten()
            .map(|s| (&s.id, s.vnodes))
            .collect();
        all.sort_by(|a, b| a.0.cmp(b.0));
        all
    }

    /// Number of physical servers.
    pub fn server_count(&self) -> usize {
        self.server_count
    }

    /// Number of virtual nodes on the ring.
    pub fn vnode_count(&self) -> usize {
        self.vnodes.len()
    }

    /// Whether the ring has no server (every lookup answers `None`).
    pub fn is_empty(&self) -> bool {
        self.server_count == 0
    }

    /// The server that owns `key`: the first virtual node clockwise from the
    /// key's position. `None` only when the ring is empty.
    pub fn owner(&self, key: &[u8]) -> Option<&S> {
        self.owner_of_position(key_position(key))
    }

    /// The owner of an already hashed position (see [`crate::key_position`]).
    pub fn owner_of_position(&self, position: u64) -> Option<&S> {
        if self.vnodes.is_empty() {
            return None;
        }
        let index = self.first_at_or_after(position);
        Some(self.id_at(index))
    }

    /// Every virtual node as `(position, server)`, clockwise from 0.
    pub fn vnodes(&self) -> impl Iterator<Item = (u64, &S)> + '_ {
        self.vnodes
            .iter()
            .map(|v| (v.position, self.id_of_slot(v.slot)))
    }

    /// Each server's share of the hash space (summing to 1.0), in id order.
    ///
    /// This is the load a server would get from uniformly hashed keys, with
    /// no sampling noise: the exact quantity virtual nodes even out.
    pub fn ownership(&self) -> Vec<(&S, f64)> {
        let mut arc_by_slot = vec![0u128; self.servers.len()];
        let len = self.vnodes.len();
        for (i, v) in self.vnodes.iter().enumerate() {
            let previous = self.vnodes[(i + len - 1) % len].position;
            // The arc (previous, position], wrapping past 2^64 - 1. The first
            // node's arc is empty only if every node sits at one position
            // (always so with one node): then it owns the whole circle.
            let arc = match u128::from(v.position.wrapping_sub(previous)) {
                0 if i == 0 => 1u128 << 64,
                arc => arc,
            };
            arc_by_slot[v.slot as usize] += arc;
        }
        let mut shares: Vec<(&S, f64)> = self
            .servers
            .iter()
            .zip(arc_by_slot)
            .filter_map(|(s, arc)| s.as_ref().map(|s| (&s.id, arc as f64 / 2f64.powi(64))))
            .collect();
        shares.sort_by(|a, b| a.0.cmp(b.0));
        shares
    }

    /// Index of the first virtual node at or after `position`, wrapping to 0
    /// past the last one. The ring must not be empty.
    pub(crate) fn first_at_or_after(&self, position: u64) -> usize {
        debug_assert!(!self.vnodes.is_empty());
        let index = self.vnodes.partition_point(|v| v.position < position);
        if index == self.vnodes.len() { 0 } else { index }
    }

    pub(crate) fn id_at(&self, index: usize) -> &S {
        self.id_of_slot(self.vnodes[index].slot)
    }

    pub(crate) fn id_of_slot(&self, slot: u32) -> &S {
        &self.servers[slot as usize]
            .as_ref()
            .expect("virtual nodes point at live servers")
            .id
    }

    fn slot_of(&self, id: &S) -> Option<u32> {
        // A linear scan: membership changes are rare and servers few, and it
        // spares a second copy of every id (and a `Clone` bound) in an index.
        self.servers
            .iter()
            .position(|s| s.as_ref().is_some_and(|s| &s.id == id))
            .map(|slot| slot as u32)
    }

    /// Restores the `(position, server id)` order after an addition. Ties on
    /// position (two virtual nodes hashing alike, ~V^2/2^65 odds) go to the
    /// smaller id, so ownership never depends on insertion order.
    fn sort(&mut self) {
        let servers = &self.servers;
        let id = |slot: u32| &servers[slot as usize].as_ref().expect("live slot").id;
        self.vnodes.sort_unstable_by(|a, b| {
            a.position
                .cmp(&b.position)
                .then_with(|| id(a.slot).cmp(id(b.slot)))
        });
    }
}
