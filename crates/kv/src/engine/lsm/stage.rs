//! Writes collected for one atomic commit: the LSM engine's write batch.
//!
//! Why it exists: the commit log's unit is a [`lsm::WriteBatch`] (one
//! checksummed record: after a crash all of it or none of it is there). A
//! command that writes several keys (`MSET`, `DEL a b c`, `EXEC`) must be one
//! such record to be atomic on disk as it is in memory, and a pipelined read
//! batch of 16 `SET`s is 16 times cheaper as one record (one `write(2)`, one
//! fsync under `always`) than as 16.
//!
//! While a batch is open every write lands here first: the *overlay* holds
//! each touched key's newest state (a value, or `None` for deleted), and reads
//! consult it before the LSM, so a command sees the writes of the commands
//! before it. The *undo log* holds, per write, what the overlay, the TTL index
//! and the key count were before it, so a failed command's partial writes
//! (and a failed commit: all of them) can be taken back exactly. The commit
//! turns the overlay into one `WriteBatch`; only each key's last state goes to
//! disk, which is all a reader could ever observe.

use std::collections::BTreeMap;
use std::ops::Bound;

use bytes::Bytes;

use crate::value::Entry;

/// What one staged write replaced (enough to undo it).
#[derive(Debug)]
pub(super) struct Undo {
    /// The key written.
    pub key: Bytes,
    /// The key's overlay slot before: `None` = not in the overlay.
    pub overlay_before: Option<Option<Entry>>,
    /// The key's TTL-index deadline before.
    pub ttl_before: Option<u64>,
    /// The engine's key count before.
    pub len_before: usize,
}

/// The open batch (see the module docs).
#[derive(Debug, Default)]
pub(super) struct Stage {
    /// Between `begin_batch` and `commit_batch`. When false, every write is
    /// committed on its own at once (background expiry, single writes).
    pub active: bool,
    /// Newest staged state per key. Ordered, so `SCAN` can merge it with the
    /// LSM's key order.
    pub overlay: BTreeMap<Bytes, Option<Entry>>,
    /// One record per staged write, oldest first.
    pub undo: Vec<Undo>,
}

impl Stage {
    /// Whether nothing is staged.
    pub fn is_empty(&self) -> bool {
        debug_assert_eq!(self.undo.is_empty(), self.overlay.is_empty());
        self.undo.is_empty()
    }

    /// Drops everything staged (after a commit, or when it no longer matters).
    pub fn clear(&mut self) {
        self.overlay.clear();
        self.undo.clear();
    }

    /// The staged writes as one LSM batch (each key's final state).
    pub fn to_write_batch(&self) -> lsm::WriteBatch {
        let mut batch = lsm::WriteBatch::new();
        for (key, state) in &self.overlay {
            match state {
                Some(entry) => {
                    let encoded = entry.encode();
                    match entry.expire_at_ms {
                        Some(at) => batch.put_with_expiry(key, &encoded, at),
                        None => batch.put(key, &encoded),
                    };
                }
                None => {
                    batch.delete(key);
                }
            }
        }
        batch
    }

    /// Staged keys after `lower`, in order, with their state.
    pub fn after<'a>(
        &'a self,
        lower: Option<&'a Bytes>,
    ) -> impl Iterator<Item = (&'a Bytes, &'a Option<Entry>)> + 'a {
        let lower = lower.map_or(Bound::Unbounded, Bound::Excluded);
        self.overlay.range::<Bytes, _>((lower, Bound::Unbounded))
    }

    /// The first staged key that is live (not deleted), if any.
    pub fn first_live(&self) -> Option<Bytes> {
        self.overlay
            .iter()
            .find(|(_, state)| state.is_some())
            .map(|(key, _)| key.clone())
    }
}
