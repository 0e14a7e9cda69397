//! Garbage collection of tombstones: a deleted key's tombstone leaves the
//! store once its grace period is over *and* every other replica is known
//! to hold it.
//!
//! Why it exists: a delete is a version (a tombstone sibling), kept so a
//! replica that missed the delete cannot bring the value back through
//! read repair, hints or anti-entropy. Kept forever, tombstones fill the
//! store with keys nobody has; dropped too early, the value resurrects.
//! Cassandra's answer is `gc_grace_seconds` (10 days) and an operator
//! promise to run repair within it; here the promise is checked: a
//! tombstone-only key is purged only when
//!
//! 1. its newest tombstone is older than `tombstone_gc_grace_ms`, and
//! 2. for every other replica of the key, a Merkle comparison found this
//!    node's tree for that replica *equal* to the replica's at a time
//!    after this node stored the tombstone (equal trees mean equal
//!    digests, so the replica holds the same tombstone).
//!
//! A replica that missed the delete keeps the trees different, so nobody
//! purges until anti-entropy has given it the tombstone. Both sides of a
//! comparison learn the result: the side that finds the roots equal
//! answers [`Msg::AeInSync`] with the root, and the other checks it
//! against its own tree. A tombstone past its grace that arrives for a
//! key this node does not store (a replica that has not purged yet) is
//! not stored again.
//!
//! Only whole-key tombstones are collected, and only while no membership
//! change is in flight; the markers inside CRDT maps and sets are not.

use bytes::Bytes;

use super::{Msg, Node, Out, Persist};
use crate::cluster::NodeId;
use crate::cluster::siblings::Siblings;
use crate::cluster::topology::Phase;

/// Whether `state` is deletes only (no live value).
pub(super) fn tombstone_only(state: &Siblings) -> bool {
    !state.siblings().is_empty() && state.siblings().iter().all(|s| s.value.is_none())
}

/// The wall-clock ms of the newest tombstone in `state`.
fn newest_ms(state: &Siblings) -> u64 {
    state
        .siblings()
        .iter()
        .map(|s| s.hlc.ms())
        .max()
        .unwrap_or(0)
}

impl Node {
    /// Whether `state` is a tombstone past its grace at `now_ms`.
    pub(super) fn expired_tombstone(&self, state: &Siblings, now_ms: u64) -> bool {
        tombstone_only(state)
            && now_ms.saturating_sub(newest_ms(state)) >= self.timing.tombstone_gc_grace_ms
    }

    /// Notes when `key`'s current state was stored, if it is tombstones.
    pub(super) fn track_tombstone(&mut self, key: &Bytes, state: &Siblings) {
        if tombstone_only(state) {
            self.tombstones.insert(key.clone(), self.now_ms);
        } else {
            self.tombstones.remove(key);
        }
    }

    /// An anti-entropy comparison found the trees shared with `peer`
    /// equal (here, or there: then `root` is the peer's root).
    pub(super) fn in_sync_with(&mut self, peer: NodeId, root: Option<u64>, out: &mut Vec<Out>) {
        let mine = self.ae.tree(peer).map(|t| t.root());
        match root {
            None => {
                self.in_sync_ms.insert(peer, self.now_ms);
                // Equal trees hold equal states: without tombstones here,
                // the peer has none among the keys shared with us either.
                if let Some(root) = mine.filter(|_| !self.tombstones.is_empty()) {
                    out.push(Out::Send(peer, Msg::AeInSync { root }));
                }
            }
            Some(root) if mine == Some(root) => {
                self.in_sync_ms.insert(peer, self.now_ms);
            }
            Some(_) => {} // changed since: no proof
        }
    }

    /// Purges the tombstones whose grace is over and that every other
    /// replica holds (see the module docs).
    pub(super) fn collect_tombstones(&mut self, now_ms: u64, out: &mut Vec<Out>) {
        if self.topology.phase != Phase::Stable || self.tombstones.is_empty() {
            return;
        }
        let mut purged = Vec::new();
        for (key, &stored_ms) in &self.tombstones {
            let Some(state) = self.disk.store.get(key) else {
                purged.push(key.clone());
                continue;
            };
            if !self.expired_tombstone(state, now_ms) {
                continue;
            }
            let everyone = self
                .replicas(key)
                .into_iter()
                .filter(|&p| p != self.id)
                .all(|p| self.in_sync_ms.get(&p).is_some_and(|&t| t > stored_ms));
            if everyone {
                purged.push(key.clone());
            }
        }
        for key in purged {
            self.tombstones.remove(&key);
            if let Some(state) = self.disk.store.remove(&key) {
                let replicas = self.replicas(&key);
                if replicas.contains(&self.id) {
                    self.ae.record(&key, Some(state.digest()), None, &replicas);
                }
                self.progress.tombstones_purged += 1;
                out.push(Out::Persist(Persist::Delete(key)));
            }
        }
    }
}
