//! The data routing service: a chunk's put, get and delete over its placed nodes.
//!
//! Why here and not in the data node: a data node knows nothing of its peers; the API
//! node encodes the chunk, writes every copy or shard in parallel and waits for the
//! write quorum; reads try the nearest healthy copy (or gather shards and decode), and
//! anything missing or corrupt met on the way is rewritten from the good bytes before
//! the read returns, so a corrupt copy is never served and never stays.

use std::ops::RangeBounds;
use std::sync::atomic::Ordering;

use super::layout::{self, Durability};
use super::{Cluster, NodeState};
use crate::{Error, ObjectId, Result};

/// What one place answered to a read.
pub(super) enum Answer {
    /// An intact body with its header.
    Good(layout::Header, Vec<u8>),
    /// Reached, but the copy is missing or corrupt: rewrite it.
    Bad,
    /// Not reached (down or failing): leave it.
    Unreachable,
}

impl Cluster {
    /// Stores `data` as a new chunk; returns once `write_quorum` copies or shards are
    /// fsynced. On failure the copies that were written are deleted again.
    pub fn put(&self, data: &[u8]) -> Result<ObjectId> {
        let id = ObjectId::generate();
        let records = layout::encode(self.durability, data)?;
        let places = self.write_targets(id);
        let results: Vec<Result<()>> = std::thread::scope(|s| {
            let hs: Vec<_> = places
                .iter()
                .zip(&records)
                .map(|(&i, rec)| {
                    let down = self.state(i) == NodeState::Down;
                    s.spawn(move || {
                        if down {
                            return Err(Error::Unavailable(format!(
                                "{} is down",
                                self.members[i].name
                            )));
                        }
                        let r = self.nodes[i].put(id, rec);
                        self.mark(i, !matches!(r, Err(Error::Unavailable(_))));
                        r
                    })
                })
                .collect();
            hs.into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(Error::Unavailable("a put panicked".into())))
                })
                .collect()
        });
        let ok = results.iter().filter(|r| r.is_ok()).count();
        if ok >= self.durability.write_quorum() {
            if ok < places.len() {
                self.partial_writes.fetch_add(1, Ordering::Relaxed);
            }
            return Ok(id);
        }
        for (&i, r) in places.iter().zip(&results) {
            if r.is_ok() {
                let _ = self.nodes[i].delete(id);
            }
        }
        let first = results.into_iter().find_map(Result::err);
        Err(match first {
            Some(Error::Full(m)) => Error::Full(m),
            e => Error::Unavailable(format!(
                "chunk durable on {ok} of {} nodes, {} needed{}",
                places.len(),
                self.durability.write_quorum(),
                e.map(|e| format!(": {e}")).unwrap_or_default()
            )),
        })
    }

    /// Bytes `range` of chunk `id`, or `None` if no reachable node has it.
    pub fn get(&self, id: ObjectId, range: impl RangeBounds<u64>) -> Result<Option<Vec<u8>>> {
        let bounds = (range.start_bound().cloned(), range.end_bound().cloned());
        let chunk = match self.durability {
            Durability::Replicate { .. } => self.get_replicated(id)?,
            Durability::Erasure { data, parity } => {
                self.get_erasure(id, data as usize, parity as usize)?
            }
        };
        let Some(chunk) = chunk else { return Ok(None) };
        let r = crate::node::resolve_range(bounds, chunk.len() as u64)
            .map_err(Error::InvalidArgument)?;
        if r.start == 0 && r.end == chunk.len() as u64 {
            return Ok(Some(chunk));
        }
        Ok(Some(chunk[r.start as usize..r.end as usize].to_vec()))
    }

    /// Deletes chunk `id` from every reachable place; whether any held it. Copies on
    /// down nodes stay as garbage.
    pub fn delete(&self, id: ObjectId) -> Result<bool> {
        let mut any = false;
        let mut err = None;
        let mut all = self.places(id);
        all.extend(self.spares(id));
        for i in all {
            if self.state(i) == NodeState::Down {
                continue;
            }
            match self.nodes[i].delete(id) {
                Ok(was) => any |= was,
                Err(e) => {
                    self.mark(i, false);
                    err = Some(e);
                }
            }
        }
        match (any, err) {
            (false, Some(e)) => Err(e),
            _ => Ok(any),
        }
    }

    /// Reads node `i`'s record and checks it is of this scheme and, if `index` is
    /// given, shard `index` (a spare may hold any shard).
    pub(super) fn read_place(&self, i: usize, id: ObjectId, index: Option<usize>) -> Answer {
        match self.nodes[i].get(id) {
            Ok(Some(rec)) => match layout::parse(&rec) {
                Ok((h, body))
                    if same_scheme(h.durability, self.durability)
                        && index.is_none_or(|k| h.index as usize == k) =>
                {
                    Answer::Good(h, body.to_vec())
                }
                _ => {
                    tracing::error!(%id, node = %self.members[i].name, "stored record has a wrong layout header");
                    Answer::Bad
                }
            },
            Ok(None) => Answer::Bad,
            Err(Error::Corrupt { .. }) => {
                self.corrupt_reads.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(%id, node = %self.members[i].name, "corrupt copy; reading another");
                Answer::Bad
            }
            Err(e) => {
                tracing::debug!(%id, node = %self.members[i].name, error = %e, "read failed");
                self.mark(i, false);
                Answer::Unreachable
            }
        }
    }

    /// Candidate places in read order: up before suspect (nearest healthy first), down
    /// ones left out.
    pub(super) fn read_order(&self, places: &[usize]) -> Vec<(usize, usize)> {
        let mut order: Vec<(NodeState, usize, usize)> = places
            .iter()
            .enumerate()
            .map(|(k, &i)| (self.state(i), k, i))
            .filter(|(s, ..)| *s != NodeState::Down)
            .collect();
        order.sort_by_key(|(s, k, _)| (*s, *k));
        order.into_iter().map(|(_, k, i)| (k, i)).collect()
    }

    fn get_replicated(&self, id: ObjectId) -> Result<Option<Vec<u8>>> {
        let places = self.places(id);
        let mut bad = Vec::new();
        let mut unreachable = places.len();
        for (_, i) in self.read_order(&places) {
            match self.read_place(i, id, Some(0)) {
                Answer::Good(h, body) if body.len() as u64 == h.len => {
                    if !bad.is_empty() {
                        self.degraded_reads.fetch_add(1, Ordering::Relaxed);
                        let rec = layout::encode(self.durability, &body)?;
                        for &b in &bad {
                            self.repair(b, id, &rec[0]);
                        }
                    }
                    return Ok(Some(body));
                }
                Answer::Good(..) | Answer::Bad => {
                    unreachable -= 1;
                    bad.push(i);
                }
                Answer::Unreachable => {}
            }
        }
        // Copies written or rebuilt on spares while a place's node was down.
        for (_, i) in self.read_order(&self.spares(id)) {
            if let Answer::Good(h, body) = self.read_place(i, id, Some(0))
                && body.len() as u64 == h.len
            {
                self.degraded_reads.fetch_add(1, Ordering::Relaxed);
                return Ok(Some(body));
            }
        }
        if unreachable > 0 {
            return Err(Error::Unavailable(format!(
                "chunk {id}: no intact copy on the {} reachable of {} nodes",
                places.len() - unreachable,
                places.len()
            )));
        }
        Ok(None)
    }

    /// Every reachable place's answer, read in parallel: (shard index, member, answer).
    pub(super) fn gather(&self, id: ObjectId) -> Vec<(usize, usize, Answer)> {
        let places = self.places(id);
        let order = self.read_order(&places);
        std::thread::scope(|s| {
            let hs: Vec<_> = order
                .iter()
                .map(|&(k, i)| {
                    let index = if matches!(self.durability, Durability::Replicate { .. }) {
                        Some(0)
                    } else {
                        Some(k)
                    };
                    s.spawn(move || (k, i, self.read_place(i, id, index)))
                })
                .collect();
            hs.into_iter().filter_map(|h| h.join().ok()).collect()
        })
    }

    fn get_erasure(&self, id: ObjectId, data: usize, parity: usize) -> Result<Option<Vec<u8>>> {
        let width = self.durability.width();
        let answers = self.gather(id);
        let mut shards: Vec<Option<Vec<u8>>> = vec![None; width];
        let mut bad = Vec::new();
        let mut len = None;
        for (k, i, a) in answers {
            match a {
                Answer::Good(h, body)
                    if len.is_none_or(|l| l == h.len)
                        && body.len() == layout::shard_bytes(h.len, data) =>
                {
                    len = Some(h.len);
                    shards[k] = Some(body);
                }
                Answer::Good(..) | Answer::Bad => bad.push((k, i)),
                Answer::Unreachable => {}
            }
        }
        if shards.iter().flatten().count() < data {
            // Shards written or rebuilt on spares while their places' nodes were down.
            for (_, a) in self.read_spares(id) {
                if let Answer::Good(h, body) = a
                    && (h.index as usize) < width
                    && shards[h.index as usize].is_none()
                    && len.is_none_or(|l| l == h.len)
                    && body.len() == layout::shard_bytes(h.len, data)
                {
                    len = Some(h.len);
                    shards[h.index as usize] = Some(body);
                }
            }
        }
        let have = shards.iter().flatten().count();
        let Some(len) = len.filter(|_| have >= data) else {
            if have == 0 && bad.len() == width {
                return Ok(None);
            }
            return Err(Error::Unavailable(format!(
                "chunk {id}: {have} intact shards reachable, {data} needed"
            )));
        };
        let chunk = layout::decode(data, parity, len, &shards)?
            .ok_or_else(|| Error::Unavailable(format!("chunk {id}: too few shards")))?;
        if have < width {
            self.degraded_reads.fetch_add(1, Ordering::Relaxed);
        }
        if !bad.is_empty() {
            let recs = layout::encode(self.durability, &chunk)?;
            for (k, i) in bad {
                self.repair(i, id, &recs[k]);
            }
        }
        Ok(Some(chunk))
    }

    /// Rewrites place `i`'s copy or shard (best effort: a failure is logged).
    pub(super) fn repair(&self, i: usize, id: ObjectId, record: &[u8]) -> bool {
        match self.nodes[i].put(id, record) {
            Ok(()) => {
                self.repaired.fetch_add(1, Ordering::Relaxed);
                tracing::info!(%id, node = %self.members[i].name, "repaired a copy");
                true
            }
            Err(e) => {
                tracing::warn!(%id, node = %self.members[i].name, error = %e, "repair failed");
                false
            }
        }
    }
}

/// Whether a stored header's scheme is this cluster's (replicas do not store their
/// write quorum).
fn same_scheme(stored: Durability, ours: Durability) -> bool {
    match (stored, ours) {
        (Durability::Replicate { copies: a, .. }, Durability::Replicate { copies: b, .. }) => {
            a == b
        }
        (a, b) => a == b,
    }
}
