//! Writes collected for one atomic commit: the LSM engine's write batch.
//!
//! Why it exists: the commit log's unit is a [`lsm::WriteBatch`] (one
//! checksummed record: after a crash all of it or none of it is there). A
//! command that writes several keys (`MSET`, `DEL a b c`, `EXEC`, an `HSET`
//! that writes a collection's metadata and its fields) must be one such record
//! to be atomic on disk as it is in memory, and a pipelined read batch of 16
//! `SET`s is 16 times cheaper as one record (one `write(2)`, one fsync under
//! `always`) than as 16.
//!
//! While a batch is open every write lands here first: the *overlays* hold
//! each touched key's newest state (a value, or `None` for deleted), one for
//! top-level keys (by user key, with the decoded entry) and one for subkeys
//! (by their LSM key, see [`super::keys`]), and reads consult them before the
//! LSM, so a command sees the writes of the commands before it. The *undo log*
//! holds, per write, what the overlay, the TTL index and the key count were
//! before it, so a failed command's partial writes (and a failed commit: all
//! of them) can be taken back exactly. The commit turns the overlays into one
//! `WriteBatch`; only each key's last state goes to disk, which is all a
//! reader could ever observe.

use std::collections::BTreeMap;
use std::ops::Bound;

use bytes::Bytes;

use super::keys;
use crate::value::Entry;

/// What one staged write replaced (enough to undo it).
#[derive(Debug)]
pub(super) enum Undo {
    /// A top-level key's write.
    Top {
        /// The key written.
        key: Bytes,
        /// The key's overlay slot before: `None` = not in the overlay.
        overlay_before: Option<Option<Entry>>,
        /// The key's TTL-index deadline before.
        ttl_before: Option<u64>,
        /// The engine's key count before.
        len_before: usize,
    },
    /// A subkey's write.
    Sub {
        /// The subkey's LSM key.
        raw: Vec<u8>,
        /// Its overlay slot before.
        overlay_before: Option<Option<Bytes>>,
    },
}

/// The open batch (see the module docs).
#[derive(Debug, Default)]
pub(super) struct Stage {
    /// Between `begin_batch` and `commit_batch`. When false, every write is
    /// committed on its own at once (background expiry, single writes).
    pub active: bool,
    /// Newest staged state per top-level key. Ordered, so `SCAN` can merge
    /// it with the LSM's key order.
    pub overlay: BTreeMap<Bytes, Option<Entry>>,
    /// Newest staged state per subkey, by LSM key (ordered for range reads).
    pub subs: BTreeMap<Vec<u8>, Option<Bytes>>,
    /// One record per staged write, oldest first.
    pub undo: Vec<Undo>,
}

impl Stage {
    /// Whether nothing is staged.
    pub fn is_empty(&self) -> bool {
        debug_assert_eq!(
            self.undo.is_empty(),
            self.overlay.is_empty() && self.subs.is_empty()
        );
        self.undo.is_empty()
    }

    /// Drops everything staged (after a commit, or when it no longer matters).
    pub fn clear(&mut self) {
        self.overlay.clear();
        self.subs.clear();
        self.undo.clear();
    }

    /// Stages a subkey's new state, remembering the old one.
    pub fn stage_sub(&mut self, raw: Vec<u8>, state: Option<Bytes>) {
        let overlay_before = self.subs.insert(raw.clone(), state);
        self.undo.push(Undo::Sub {
            raw,
            overlay_before,
        });
    }

    /// The staged writes as one LSM batch (each key's final state).
    pub fn to_write_batch(&self) -> lsm::WriteBatch {
        let mut batch = lsm::WriteBatch::new();
        for (key, state) in &self.overlay {
            let raw = keys::top(key);
            match state {
                Some(entry) => {
                    let encoded = entry.encode();
                    match entry.expire_at_ms {
                        Some(at) => batch.put_with_expiry(&raw, &encoded, at),
                        None => batch.put(&raw, &encoded),
                    };
                }
                None => {
                    batch.delete(&raw);
                }
            }
        }
        for (raw, state) in &self.subs {
            match state {
                Some(value) => batch.put(raw, value),
                None => batch.delete(raw),
            };
        }
        batch
    }

    /// Staged top-level keys after `lower`, in order, with their state.
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
