//! The anti-entropy half that needs the store: answering a tree step,
//! driving a repair round (the differing buckets one descent found, sent
//! as paced chunks of key states), answering chunks with this side's key
//! states, joining the ones received, and when the next exchange starts.
//!
//! Why it exists apart: `anti_entropy` compares trees, names buckets and
//! keeps the round's cursor; only a node knows its keys, their replicas
//! and the per-message limits.
//!
//! A round, driven by the side whose comparison found the difference:
//!
//! ```text
//!  B ── AeEntries{B's keys of chunk 1, buckets of chunk 1, reply} ──▶ A
//!  B ◀── AeEntries{A's keys of (a prefix of) chunk 1, that prefix} ── A   cursor moves
//!        ... AE_FOLLOW_UP_MS later, chunk 2, ... until the list ends,
//!  B ── Ae{root} ─────────────────────────────────────────────────────▶ A   verify
//! ```

use bytes::Bytes;

use super::{AE_BYTES_MAX, AE_FOLLOW_UP_MS, Msg, Node, Out};
use crate::cluster::NodeId;
use crate::cluster::anti_entropy::repair::{Poll, Repair};
use crate::cluster::anti_entropy::{Message, Reply};
use crate::cluster::membership;
use crate::cluster::siblings::Siblings;

impl Node {
    /// Starts the next exchange with `peer` after [`AE_FOLLOW_UP_MS`]
    /// rather than at the next regular round.
    pub(super) fn follow_up(&mut self, now_ms: u64, peer: NodeId) {
        self.ae_follow_up = Some(peer);
        self.next_ae_ms = self.next_ae_ms.min(now_ms + AE_FOLLOW_UP_MS);
    }

    /// This node's key states that it shares with `peer` in the first
    /// buckets of `buckets`, whole buckets at a time, as many as fit
    /// `ae_entries_max` keys and about [`AE_BYTES_MAX`] (always at least
    /// one bucket, cut at those limits if it alone exceeds them), and how
    /// many buckets that covers. Whole buckets matter: both sides exchange
    /// them, so they are equal afterwards. Each bucket is one range scan
    /// of the trees' index, so the cost is the listed buckets' keys.
    pub(super) fn chunk(
        &mut self,
        peer: NodeId,
        buckets: &[u32],
    ) -> (usize, Vec<(Bytes, Siblings)>) {
        let (keys_max, mut listed) = (self.timing.ae_entries_max.max(1), 0u64);
        let mut entries: Vec<(Bytes, Siblings)> = Vec::new();
        let mut bytes = 0;
        let mut covered = 0;
        for &bucket in buckets {
            let mut these = Vec::new();
            let mut these_bytes = 0;
            for key in self.ae.keys_in(bucket) {
                listed += 1;
                if !self.placement.preference_list(key).contains(&peer) {
                    continue;
                }
                if let Some(state) = self.disk.store.get(key) {
                    these_bytes += key.len() + state.size_bytes();
                    these.push((key.clone(), state.clone()));
                }
            }
            let fits =
                entries.len() + these.len() <= keys_max && bytes + these_bytes <= AE_BYTES_MAX;
            if covered > 0 && (!fits || covered >= keys_max) {
                break;
            }
            if !fits {
                // One bucket over the limits: send what fits (the rest
                // differs again at the next descent).
                let mut kept = Vec::new();
                these_bytes = 0;
                for (k, s) in these {
                    let size = k.len() + s.size_bytes();
                    if kept.len() >= keys_max
                        || (!kept.is_empty() && these_bytes + size > AE_BYTES_MAX)
                    {
                        break;
                    }
                    these_bytes += size;
                    kept.push((k, s));
                }
                these = kept;
            }
            bytes += these_bytes;
            entries.extend(these);
            covered += 1;
        }
        self.progress.keys_listed += listed;
        debug_assert!(entries.len() <= keys_max);
        (covered, entries)
    }

    /// Sends the next chunk of the repair round with `peer`, ends the
    /// round, or waits, as its cursor says.
    fn drive_repair(&mut self, now_ms: u64, peer: NodeId, out: &mut Vec<Out>) {
        let Some(repair) = self.repairs.get(&peer) else {
            return;
        };
        let alive = self.membership.status(peer) == membership::Status::Alive;
        match repair.poll(now_ms, self.timing.ae_interval_ms) {
            Poll::Wait if alive => {}
            Poll::Done => {
                self.repairs.remove(&peer);
                self.follow_up(now_ms, peer);
            }
            Poll::Wait | Poll::GiveUp => {
                self.repairs.remove(&peer);
            }
            Poll::Send if !alive => {
                self.repairs.remove(&peer);
            }
            Poll::Send => {
                let remaining = repair.remaining().to_vec();
                let (covered, entries) = self.chunk(peer, &remaining);
                if let Some(repair) = self.repairs.get_mut(&peer) {
                    repair.sent(covered, now_ms);
                }
                self.progress.chunks_sent += 1;
                let msg = Msg::AeEntries {
                    entries,
                    buckets: remaining[..covered].to_vec(),
                    reply: true,
                };
                out.push(Out::Send(peer, msg));
            }
        }
    }

    /// Drives every repair round in progress.
    pub(super) fn tick_repairs(&mut self, now_ms: u64, out: &mut Vec<Out>) {
        let peers: Vec<NodeId> = self.repairs.keys().copied().collect();
        for peer in peers {
            self.drive_repair(now_ms, peer, out);
        }
    }

    /// An anti-entropy message: a tree-comparison step or key states.
    pub(super) fn on_ae(&mut self, now_ms: u64, from: NodeId, msg: Msg, out: &mut Vec<Out>) {
        match msg {
            // A round with this peer is under way: its list is being
            // repaired, a new descent would only repeat it.
            Msg::Ae(Message::Labels { level: 0, .. }) if self.repairs.contains_key(&from) => {}
            Msg::Ae(m) => match self.ae.on_message(from, &m) {
                Ok(Reply::Send(next)) => out.push(Out::Send(from, Msg::Ae(next))),
                Ok(Reply::Differ(buckets)) => {
                    self.progress.rounds_differ += 1;
                    self.repairs.insert(from, Repair::new(buckets, now_ms));
                    self.drive_repair(now_ms, from, out);
                }
                Ok(Reply::InSync) => {
                    self.progress.rounds_in_sync += 1;
                    self.in_sync_with(from, None, out);
                }
                Err(_) => {}
            },
            Msg::AeEntries {
                entries,
                buckets,
                reply,
            } => {
                for (key, state) in &entries {
                    let replicas = self.replicas(key);
                    if replicas.contains(&self.id)
                        && replicas.contains(&from)
                        && self.apply(key, state, out)
                    {
                        self.progress.keys_repaired += 1;
                    }
                }
                if reply {
                    // Both sides found the same buckets at once (their
                    // descents crossed): the lower id's round goes on.
                    if self.id > from {
                        self.repairs.remove(&from);
                    }
                    // A chunk: answer with our states of (a prefix of) it.
                    let (covered, entries) = self.chunk(from, &buckets);
                    let msg = Msg::AeEntries {
                        entries,
                        buckets: buckets[..covered].to_vec(),
                        reply: false,
                    };
                    out.push(Out::Send(from, msg));
                } else if let Some(repair) = self.repairs.get_mut(&from) {
                    // An answer: the round's cursor moves past it.
                    repair.answered(&buckets, now_ms, AE_FOLLOW_UP_MS);
                }
            }
            _ => {}
        }
    }
}
