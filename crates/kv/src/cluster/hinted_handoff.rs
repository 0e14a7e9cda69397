//! Hinted handoff: what a substitute holds for a down replica, bounded,
//! until the replica is back.
//!
//! Why it exists: under a sloppy quorum a write meant for a down replica
//! goes to a healthy substitute with a *hint* naming the replica ("단서 후
//! 임시 위탁"). The substitute keeps the state apart from its own data
//! (it does not own the key, so its anti-entropy must not see it), answers
//! reads for the key from it meanwhile, and sends it on when the gossip
//! detector reports the replica up again; an entry is deleted only after
//! the replica acknowledged it.
//!
//! # Design
//!
//! - One queue per target replica, keyed by key: a second hint for the
//!   same key *joins* into the first (states are semilattices), so a hot
//!   key costs one entry however often it is written, and delivery sends
//!   its latest merged state.
//! - Bounded per target, in keys and in bytes ([`Limits`]): a full queue
//!   refuses the hint, and the substitute then refuses the write, which
//!   the coordinator counts as a failed replica (the request may still
//!   reach `W` elsewhere). Memory never grows with the length of an
//!   outage; the cost is that a long outage ends in refused writes rather
//!   than in an out-of-memory crash.
//! - Delivery is at-least-once: [`Hints::batch`] hands out entries with a
//!   sequence number, [`Hints::delivered`] deletes an entry only if it was
//!   not joined with a newer hint since (that one goes in the next batch).
//!   Re-delivery is harmless because the replica joins.
//!
//! Pure structure for now: durability (hints written to disk before the
//! write is acknowledged) comes with the server wiring.

use std::collections::BTreeMap;

use bytes::Bytes;

use super::NodeId;
use super::quorum::Mergeable;

/// Bounds on what one target's queue may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The most keys held for one target.
    pub keys_per_target_max: usize,
    /// The most bytes (as measured by the size function) for one target.
    pub bytes_per_target_max: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            keys_per_target_max: 100_000,
            bytes_per_target_max: 64 << 20,
        }
    }
}

/// A hint refused because the target's queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the hint queue for node {target} is full ({keys} keys, {bytes} bytes)")]
pub struct QueueFull {
    /// The replica the hint was for.
    pub target: NodeId,
    /// Keys queued for it.
    pub keys: usize,
    /// Bytes queued for it.
    pub bytes: usize,
}

#[derive(Debug, Clone)]
struct Entry<T> {
    seq: u64,
    state: T,
    bytes: usize,
}

#[derive(Debug, Clone)]
struct Queue<T> {
    entries: BTreeMap<Bytes, Entry<T>>,
    bytes: usize,
}

/// One entry handed out for delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending<T> {
    /// The key.
    pub key: Bytes,
    /// Its merged hinted state.
    pub state: T,
    /// Pass back to [`Hints::delivered`].
    pub seq: u64,
}

/// The hints a node holds, per target replica.
#[derive(Debug, Clone)]
pub struct Hints<T> {
    queues: BTreeMap<NodeId, Queue<T>>,
    limits: Limits,
    size_of: fn(&T) -> usize,
    next_seq: u64,
}

impl<T: Mergeable> Hints<T> {
    /// An empty store with `limits`, measuring states with `size_of`.
    pub fn new(limits: Limits, size_of: fn(&T) -> usize) -> Hints<T> {
        Hints {
            queues: BTreeMap::new(),
            limits,
            size_of,
            next_seq: 0,
        }
    }

    /// Holds `state` of `key` for `target`, joined with any hint already
    /// held for it; refused (nothing changes) if the queue would exceed its
    /// limits.
    pub fn add(&mut self, target: NodeId, key: Bytes, state: &T) -> Result<(), QueueFull> {
        let limits = self.limits;
        let queue = self.queues.entry(target).or_insert_with(|| Queue {
            entries: BTreeMap::new(),
            bytes: 0,
        });
        let (merged, old_bytes) = match queue.entries.get(&key) {
            Some(entry) => {
                let mut merged = entry.state.clone();
                merged.join(state);
                (merged, entry.bytes)
            }
            None => (state.clone(), 0),
        };
        let bytes = (self.size_of)(&merged);
        let is_new = !queue.entries.contains_key(&key);
        let keys = queue.entries.len() + usize::from(is_new);
        let total = queue.bytes - old_bytes + bytes;
        if keys > limits.keys_per_target_max || total > limits.bytes_per_target_max {
            let full = QueueFull {
                target,
                keys: queue.entries.len(),
                bytes: queue.bytes,
            };
            if queue.entries.is_empty() {
                self.queues.remove(&target);
            }
            return Err(full);
        }
        self.next_seq += 1;
        let entry = Entry {
            seq: self.next_seq,
            state: merged,
            bytes,
        };
        queue.entries.insert(key, entry);
        queue.bytes = total;
        Ok(())
    }

    /// The hinted state of `key` across every target (for a read that
    /// reaches this substitute), if any.
    pub fn get(&self, key: &[u8]) -> Option<T> {
        let mut found: Option<T> = None;
        for queue in self.queues.values() {
            if let Some(entry) = queue.entries.get(key) {
                match &mut found {
                    Some(state) => state.join(&entry.state),
                    None => found = Some(entry.state.clone()),
                }
            }
        }
        found
    }

    /// Up to `max_keys` entries to send to `target`, in key order.
    pub fn batch(&self, target: NodeId, max_keys: usize) -> Vec<Pending<T>> {
        let Some(queue) = self.queues.get(&target) else {
            return Vec::new();
        };
        queue
            .entries
            .iter()
            .take(max_keys)
            .map(|(key, entry)| Pending {
                key: key.clone(),
                state: entry.state.clone(),
                seq: entry.seq,
            })
            .collect()
    }

    /// `target` stored `key` as handed out with `seq`: the entry goes,
    /// unless a newer hint was joined into it since.
    pub fn delivered(&mut self, target: NodeId, key: &[u8], seq: u64) {
        let Some(queue) = self.queues.get_mut(&target) else {
            return;
        };
        if queue.entries.get(key).is_some_and(|e| e.seq == seq)
            && let Some(entry) = queue.entries.remove(key)
        {
            queue.bytes -= entry.bytes;
        }
        if queue.entries.is_empty() {
            self.queues.remove(&target);
        }
    }

    /// Targets with something queued: (target, keys, bytes).
    pub fn backlog(&self) -> Vec<(NodeId, usize, usize)> {
        self.queues
            .iter()
            .map(|(&id, q)| (id, q.entries.len(), q.bytes))
            .collect()
    }

    /// Whether nothing is queued for anyone.
    pub fn is_empty(&self) -> bool {
        self.queues.is_empty()
    }
}

#[cfg(test)]
mod tests;
