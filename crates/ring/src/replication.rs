//! Preference lists: the N servers that hold a key's replicas.
//!
//! The key-value chapter stores each key on N servers for availability: the
//! first N servers met walking clockwise from the key's position (Dynamo's
//! *preference list*). With virtual nodes, consecutive points often belong
//! to the same physical server, and two replicas on one machine protect
//! nothing, so the walk skips points of servers already chosen and keeps
//! going until it has N *distinct physical* servers (as the notes say: "노드
//! 선택할 때 중복된 물리 서버를 선택하지 않도록"). The first entry is always
//! the key's owner, so the list doubles as the coordinator choice, and the
//! list for N is a prefix of the list for N+1, so raising the replication
//! factor only adds replicas.

use std::fmt::Display;

use crate::hash::key_position;
use crate::ring::Ring;

/// Up to this many replicas, "already chosen?" is a scan of the short list;
/// beyond it a per-slot bitmap keeps the walk linear.
const LINEAR_SCAN_MAX: usize = 8;

impl<S: Ord + Display> Ring<S> {
    /// The first `n` distinct physical servers clockwise from `key`: the
    /// owner first, then the servers that take over if it fails.
    ///
    /// Returns fewer than `n` servers only when the ring has fewer than `n`
    /// (all of them then), and nothing for `n == 0` or an empty ring.
    pub fn preference_list(&self, key: &[u8], n: usize) -> Vec<&S> {
        self.preference_list_of_position(key_position(key), n)
    }

    /// [`Ring::preference_list`] for an already hashed position.
    pub fn preference_list_of_position(&self, position: u64, n: usize) -> Vec<&S> {
        let wanted = n.min(self.server_count());
        let mut slots: Vec<u32> = Vec::with_capacity(wanted);
        if wanted == 0 {
            return Vec::new();
        }
        let mut chosen = if wanted > LINEAR_SCAN_MAX {
            vec![false; self.servers.len()]
        } else {
            Vec::new()
        };
        let start = self.first_at_or_after(position);
        let len = self.vnodes.len();
        for step in 0..len {
            let slot = self.vnodes[(start + step) % len].slot;
            let seen = if chosen.is_empty() {
                slots.contains(&slot)
            } else {
                std::mem::replace(&mut chosen[slot as usize], true)
            };
            if !seen {
                slots.push(slot);
                if slots.len() == wanted {
                    break;
                }
            }
        }
        // Every server has at least one virtual node, so one lap finds them all.
        debug_assert_eq!(slots.len(), wanted);
        slots
            .into_iter()
            .map(|slot| self.id_of_slot(slot))
            .collect()
    }
}
