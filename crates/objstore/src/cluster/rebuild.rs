//! Repair onto other nodes: a chunk whose place is on a node that is down past
//! `repair_after_ms` gets that copy or shard rebuilt on a **spare** (the next nodes of
//! its placement order, past its `width` places), and once every place holds its share
//! again the spares' copies are deleted.
//!
//! Why spares and not a new placement: placement stays a pure function of the id and
//! the members, so readers find a chunk's places without any stored location; a reader
//! that finds too few intact copies or shards on the places also asks the spares, and a
//! record's layout header says which shard it holds. Writes use spares the same way
//! when a place's node is down (`write_targets`), so a dead node does not leave new
//! chunks under-replicated either. With 6 nodes and 4+2 there are no spares: a lost
//! shard waits for its node (or a replacement at its address) to come back.

use std::sync::atomic::Ordering;

use super::layout::{self, Durability};
use super::route::Answer;
use super::{Cluster, NodeState};
use crate::{Error, ObjectId, Result};

impl Cluster {
    /// `id`'s spares: the members after its places, in placement order.
    pub fn spares(&self, id: ObjectId) -> Vec<usize> {
        let mut p = super::placement::place(id, &self.members);
        p.drain(..self.durability.width().min(p.len()));
        p
    }

    /// Where a new chunk's copies or shards go: its places, with each down one replaced
    /// by the next spare that is not down.
    pub(super) fn write_targets(&self, id: ObjectId) -> Vec<usize> {
        let mut spares = self
            .spares(id)
            .into_iter()
            .filter(|&i| self.state(i) != NodeState::Down);
        self.places(id)
            .into_iter()
            .map(|i| {
                if self.state(i) == NodeState::Down {
                    spares.next().unwrap_or(i)
                } else {
                    i
                }
            })
            .collect()
    }

    /// Whether node `i` has been down for `repair_after_ms`: its shares are rebuilt
    /// on spares.
    pub fn is_dead(&self, i: usize) -> bool {
        let h = &self.health.lock()[i];
        let since = h.last_ok_ms.unwrap_or(self.started_ms);
        h.failed_since && clock::now_ms().saturating_sub(since) >= self.heartbeat.repair_after_ms
    }

    /// The members down past `repair_after_ms`.
    pub fn dead_members(&self) -> Vec<usize> {
        (0..self.members.len())
            .filter(|&i| self.is_dead(i))
            .collect()
    }

    /// Every live spare's answer for `id`, read in parallel.
    pub(super) fn read_spares(&self, id: ObjectId) -> Vec<(usize, Answer)> {
        let spares: Vec<usize> = self
            .spares(id)
            .into_iter()
            .filter(|&i| self.state(i) != NodeState::Down)
            .collect();
        std::thread::scope(|s| {
            let hs: Vec<_> = spares
                .iter()
                .map(|&i| s.spawn(move || (i, self.read_place(i, id, None))))
                .collect();
            hs.into_iter().filter_map(|h| h.join().ok()).collect()
        })
    }

    /// Reads every copy or shard of chunk `id` (places and spares) and restores full
    /// redundancy: missing or corrupt shares on reachable places are rewritten; the
    /// share of a place whose node is dead is rebuilt on a spare; spares' copies are
    /// deleted once every place holds its share. How many copies or shards were
    /// written. `Ok(0)` also when the chunk is gone from every node.
    pub fn repair_chunk(&self, id: ObjectId) -> Result<usize> {
        let before = self.repaired.load(Ordering::Relaxed);
        let places = self.places(id);
        let width = places.len();
        let at_places = self.gather(id);
        let at_spares = self.read_spares(id);
        let data = match self.durability {
            Durability::Replicate { .. } => 1,
            Durability::Erasure { data, .. } => data as usize,
        };
        let fits = |h: &layout::Header, body: &[u8]| match self.durability {
            Durability::Replicate { .. } => body.len() as u64 == h.len,
            Durability::Erasure { .. } => body.len() == layout::shard_bytes(h.len, data),
        };
        // What each place holds: Some(true) intact, Some(false) reachable without it.
        let mut at: Vec<Option<bool>> = vec![None; width];
        let mut shards: Vec<Option<Vec<u8>>> = vec![None; width];
        let mut len = None;
        for (k, _, a) in &at_places {
            match a {
                Answer::Good(h, body) if fits(h, body) && len.is_none_or(|l| l == h.len) => {
                    len = Some(h.len);
                    at[*k] = Some(true);
                    shards[*k] = Some(body.clone());
                }
                Answer::Good(..) | Answer::Bad => at[*k] = Some(false),
                Answer::Unreachable => {}
            }
        }
        // Which spare holds which share (a copy counts as share 0).
        let mut held: Vec<(usize, usize)> = Vec::new();
        let mut free: Vec<usize> = Vec::new();
        for (i, a) in &at_spares {
            match a {
                Answer::Good(h, body)
                    if fits(h, body)
                        && len.is_none_or(|l| l == h.len)
                        && (h.index as usize) < width =>
                {
                    len = Some(h.len);
                    let k = h.index as usize;
                    held.push((*i, k));
                    if shards[k].is_none() {
                        shards[k] = Some(body.clone());
                    }
                }
                Answer::Good(..) | Answer::Bad => free.push(*i),
                Answer::Unreachable => {}
            }
        }
        let Some(len) = len else {
            return Ok(0); // gone everywhere (deleted) or nothing reachable holds it
        };
        let chunk = match self.durability {
            Durability::Replicate { .. } => shards.iter().flatten().next().cloned(),
            Durability::Erasure { data, parity } => {
                layout::decode(data as usize, parity as usize, len, &shards)?
            }
        }
        .ok_or_else(|| {
            Error::Unavailable(format!("chunk {id}: too few intact shards to repair"))
        })?;
        let recs = layout::encode(self.durability, &chunk)?;
        let rec = |k: usize| match self.durability {
            Durability::Replicate { .. } => &recs[0],
            Durability::Erasure { .. } => &recs[k],
        };
        let share = |k: usize| match self.durability {
            Durability::Replicate { .. } => 0,
            Durability::Erasure { .. } => k,
        };
        let mut covered = 0;
        for k in 0..width {
            let i = places[k];
            match at[k] {
                Some(true) => covered += 1,
                Some(false) => covered += usize::from(self.repair(i, id, rec(k))),
                None if self.is_dead(i) => {
                    // Rebuild on a spare unless one already holds this share (for
                    // copies: unless enough spares hold one).
                    let needed = match self.durability {
                        Durability::Replicate { .. } => {
                            let dead_places = (0..width)
                                .filter(|&j| at[j].is_none() && self.is_dead(places[j]))
                                .count();
                            held.len() < dead_places
                        }
                        Durability::Erasure { .. } => !held.iter().any(|&(_, s)| s == share(k)),
                    };
                    if needed
                        && let Some(spare) = free.pop()
                        && self.repair(spare, id, rec(k))
                    {
                        held.push((spare, share(k)));
                    }
                }
                None => {}
            }
        }
        if covered == width && !held.is_empty() {
            for (i, _) in held {
                if let Err(e) = self.nodes[i].delete(id) {
                    tracing::warn!(%id, node = %self.members[i].name, error = %e, "cannot drop a spare copy");
                }
            }
        }
        Ok((self.repaired.load(Ordering::Relaxed) - before) as usize)
    }
}
