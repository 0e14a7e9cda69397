//! One stored key of the memory engine: its entry, its eviction
//! bookkeeping, and (for a collection) its subkeys, kept with it so deleting
//! the key frees them.

use bytes::Bytes;

use super::KEY_OVERHEAD_BYTES;
use super::eviction::Lfu;
use super::subs::Subs;
use crate::value::{Entry, Value};

/// One stored key.
#[derive(Debug)]
pub(super) struct Slot {
    /// The key (shared with the index; one allocation).
    pub(super) key: Bytes,
    /// Value and expiry.
    pub(super) entry: Entry,
    /// Position in `volatile`, or `NOT_VOLATILE`.
    pub(super) volatile_pos: u32,
    /// Logical time of the last access, for LRU (exact order, no clock calls).
    pub(super) access_tick: u64,
    /// Logical time of insertion, for FIFO.
    pub(super) insert_tick: u64,
    /// Frequency counter for LFU.
    pub(super) lfu: Lfu,
    /// Redis's LRU stamp: the clock at the last access (`OBJECT IDLETIME`),
    /// unless the value is a shared integer (see `access`).
    pub(super) access_stamp: u32,
    /// The shared integer the value is, or `access::NOT_SHARED`.
    pub(super) shared: u16,
    /// A collection's subkeys (see [`crate::value`]), kept with its key so
    /// deleting the key frees them.
    pub(super) subs: Option<Box<Subs>>,
}

impl Slot {
    pub(super) fn size_bytes(&self) -> u64 {
        (self.key.len() + self.entry.value.size_bytes()) as u64
            + KEY_OVERHEAD_BYTES
            + self.subs.as_ref().map_or(0, |s| s.bytes)
    }

    /// The slot's subkeys if it holds the collection `version`.
    pub(super) fn subs_of(&mut self, version: u64) -> Option<&mut Subs> {
        match (&self.entry.value, self.subs.as_deref_mut()) {
            (Value::Collection(meta), Some(subs)) if meta.version == version => {
                debug_assert_eq!(subs.version, version);
                Some(subs)
            }
            _ => None,
        }
    }

    /// Drops subkeys that no longer belong to the entry (after a put).
    pub(super) fn prune_subs(&mut self) {
        let keep = matches!(
            (&self.entry.value, &self.subs),
            (Value::Collection(meta), Some(subs)) if meta.version == subs.version
        );
        if !keep {
            self.subs = None;
        }
    }
}
