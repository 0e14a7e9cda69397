//! The anti-entropy half that needs the store: answering a tree step,
//! which key states go into an entries message when Merkle trees differ,
//! joining the ones received, and when the next exchange with the same
//! peer starts.
//!
//! Why it exists apart: `anti_entropy` compares trees and names buckets;
//! only a node knows its keys, their replicas and the per-message limits.

use std::collections::BTreeMap;

use bytes::Bytes;

use super::{AE_BYTES_MAX, AE_FOLLOW_UP_MS, Msg, Node, Out};
use crate::cluster::NodeId;
use crate::cluster::anti_entropy::Reply;
use crate::cluster::siblings::Siblings;

impl Node {
    /// Starts the next exchange with `peer` after [`AE_FOLLOW_UP_MS`]
    /// rather than at the next regular round.
    pub(super) fn follow_up(&mut self, now_ms: u64, peer: NodeId) {
        self.ae_follow_up = Some(peer);
        self.next_ae_ms = self.next_ae_ms.min(now_ms + AE_FOLLOW_UP_MS);
    }

    /// This node's key states in `buckets` that it shares with `peer`,
    /// whole buckets at a time, lowest first, as many as fit
    /// `ae_entries_max` keys (always at least one bucket) and about
    /// [`AE_BYTES_MAX`]. Whole buckets matter: both sides exchange them,
    /// so they are equal afterwards and the next exchange moves on to
    /// others. (Sending the first keys in key order instead repeats the
    /// same keys forever once every bucket holds some of them.)
    pub(super) fn entries_for(&self, peer: NodeId, buckets: &[u32]) -> Vec<(Bytes, Siblings)> {
        let mut wanted: Vec<u32> = buckets.to_vec();
        wanted.sort_unstable();
        wanted.dedup();
        let shared = |key: &[u8]| -> Option<u32> {
            let b = self.ae.bucket_of(key)?;
            (wanted.binary_search(&b).is_ok() && self.replicas(key).contains(&peer)).then_some(b)
        };
        let mut counts: BTreeMap<u32, usize> = BTreeMap::new();
        for key in self.disk.store.keys() {
            if let Some(b) = shared(key) {
                *counts.entry(b).or_default() += 1;
            }
        }
        let mut chosen = Vec::new();
        let mut total = 0;
        for (b, n) in counts {
            if !chosen.is_empty() && total + n > self.timing.ae_entries_max {
                break;
            }
            chosen.push(b);
            total += n;
        }
        let mut bytes = 0;
        self.disk
            .store
            .iter()
            .filter(|(key, _)| shared(key).is_some_and(|b| chosen.binary_search(&b).is_ok()))
            .take_while(|(k, s)| {
                let first = bytes == 0;
                bytes += k.len() + s.size_bytes();
                first || bytes <= AE_BYTES_MAX
            })
            .map(|(k, s)| (k.clone(), s.clone()))
            .collect()
    }

    /// An anti-entropy message: a tree-comparison step or key states.
    pub(super) fn on_ae(&mut self, now_ms: u64, from: NodeId, msg: Msg, out: &mut Vec<Out>) {
        match msg {
            Msg::Ae(m) => match self.ae.on_message(from, &m) {
                Ok(Reply::Send(next)) => out.push(Out::Send(from, Msg::Ae(next))),
                Ok(Reply::Differ(buckets)) => {
                    self.progress.rounds_differ += 1;
                    let entries = self.entries_for(from, &buckets);
                    let msg = Msg::AeEntries {
                        entries,
                        buckets,
                        reply: true,
                    };
                    out.push(Out::Send(from, msg));
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
                // Buckets differed: follow up soon (the rate limit: one
                // exchange per `AE_FOLLOW_UP_MS`) until the trees agree.
                if reply {
                    let entries = self.entries_for(from, &buckets);
                    // Buckets were left for later (or the peer has keys
                    // here that we lack): follow up soon.
                    if !entries.is_empty() || !buckets.is_empty() {
                        self.follow_up(now_ms, from);
                    }
                    let msg = Msg::AeEntries {
                        entries,
                        buckets,
                        reply: false,
                    };
                    out.push(Out::Send(from, msg));
                }
            }
            _ => {}
        }
    }
}
