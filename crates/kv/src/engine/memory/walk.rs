//! Walks over the memory engine's slab: `SCAN` cursors (slot numbers, so
//! a key never moves under a cursor), uniformly random keys (`RANDOMKEY`,
//! eviction samples) and samples of the keys that have an expiry.

use bytes::Bytes;

use super::MemoryEngine;

impl MemoryEngine {
    /// A uniformly random slot number that is occupied (walks forward from a
    /// random start past free slots; `None` only if empty).
    pub(super) fn random_slot(&mut self) -> Option<u32> {
        if self.index.is_empty() {
            return None;
        }
        let len = self.slots.len();
        let start = self.rng.usize(..len);
        (0..len)
            .map(|i| (start + i) % len)
            .find(|&i| self.slots[i].is_some())
            .map(|i| i as u32)
    }

    /// `SCAN` from slot `cursor`: appends up to `count` keys and returns
    /// the next cursor (0 at the end).
    pub(super) fn scan_slots(&mut self, cursor: u64, count: usize, out: &mut Vec<Bytes>) -> u64 {
        let mut pos = usize::try_from(cursor).unwrap_or(usize::MAX);
        // Visit a bounded number of slots so a sparse slab cannot make one call slow.
        let mut budget = count.saturating_mul(10).max(10);
        let mut found = 0;
        while pos < self.slots.len() && found < count && budget > 0 {
            if let Some(slot) = &self.slots[pos] {
                out.push(slot.key.clone());
                found += 1;
            }
            pos += 1;
            budget -= 1;
        }
        if pos >= self.slots.len() {
            0
        } else {
            pos as u64
        }
    }

    /// Appends `count` random keys that have an expiry, with their expiry
    /// (repeats possible), for active expiry and `volatile-*` eviction.
    pub(super) fn sample_volatile_keys(&mut self, count: usize, out: &mut Vec<(Bytes, u64)>) {
        for _ in 0..count.min(self.volatile.len()) {
            let id = self.volatile[self.rng.usize(..self.volatile.len())];
            let slot = self.slots[id as usize]
                .as_ref()
                .expect("volatile slot occupied");
            out.push((
                slot.key.clone(),
                slot.entry.expire_at_ms.expect("volatile key has expiry"),
            ));
        }
    }
}
