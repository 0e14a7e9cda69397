//! `SCAN`, `RANDOMKEY` and `FLUSHALL` over the top-level keys.
//!
//! Why a module: these read the top-level namespace only (see [`super::keys`]):
//! subkeys are a collection's insides, never keys a client can see. The LSM
//! iterates in key order, so a `SCAN` cursor is a number naming the last key
//! returned (kept in a bounded table); a key present for the whole scan is
//! returned exactly once.

use std::ops::Bound;

use bytes::Bytes;

use super::merge::{Cursor, Merged, Pair, merge};
use super::{LsmEngine, keys, storage};
use crate::engine::EngineError;

/// SCAN cursors remembered at once; older ones answer "invalid cursor".
pub(super) const CURSORS_MAX: usize = 4096;

/// A scan of the top-level namespace as a [`Cursor`] of user keys.
struct TopKeys<'s>(&'s mut lsm::DbIter);

impl Cursor for TopKeys<'_> {
    fn peek(&mut self) -> Result<Option<Pair<'_>>, EngineError> {
        match Cursor::peek(self.0)? {
            Some((raw, value)) => {
                let key = keys::user_key(raw)
                    .ok_or_else(|| storage("a subkey in the top-level key range"))?;
                Ok(Some((key, value)))
            }
            None => Ok(None),
        }
    }

    fn skip(&mut self) {
        Cursor::skip(self.0);
    }
}

impl LsmEngine {
    /// Appends up to `count` live keys after `start` (the LSM's, merged in
    /// key order with the open batch's) and returns the last one if the
    /// scan stopped at `count` (so there may be more).
    pub(super) fn scan_merged(
        &self,
        start: Option<&Bytes>,
        count: usize,
        out: &mut Vec<Bytes>,
    ) -> Result<Option<Bytes>, EngineError> {
        if count == 0 {
            return Ok(start.cloned());
        }
        let lower = start.map_or(Bound::Unbounded, |k| Bound::Excluded(k.as_ref()));
        let range = keys::top_range(lower);
        let mut disk = self.db.scan(keys::slices(&range)).map_err(storage)?;
        // The staged keys are user keys: compare the disk's without their tag.
        let mut disk = TopKeys(&mut disk);
        let staged = self
            .stage
            .after(start)
            .map(|(key, state)| (key.as_ref(), state));
        let mut taken = 0;
        merge(&mut disk, staged, false, |item| {
            out.push(match item {
                Merged::Disk(key, _) => Bytes::copy_from_slice(key),
                Merged::Staged(key, _) => Bytes::copy_from_slice(key),
            });
            taken += 1;
            taken < count
        })?;
        Ok((taken == count).then(|| out.last().cloned()).flatten())
    }

    /// Remembers `last` under a new cursor number.
    pub(super) fn remember_cursor(&mut self, last: Bytes) -> u64 {
        self.next_cursor += 1;
        if self.cursors.len() >= CURSORS_MAX {
            self.cursors.pop_front();
        }
        self.cursors.push_back((self.next_cursor, last));
        self.next_cursor
    }

    /// A random top-level key: seeks to a random point of the namespace and
    /// takes the next key (wrapping). Cheap, and uniform enough for
    /// `RANDOMKEY`; a key deleted in the open batch is skipped by the
    /// keyspace's retry (its lookup finds it absent).
    pub(super) fn random_top_key(&mut self) -> Result<Option<Bytes>, EngineError> {
        let probe = self.rng.u64(..).to_be_bytes();
        let first_at = |from: Bound<&[u8]>| -> Result<Option<Bytes>, EngineError> {
            let range = keys::top_range(from);
            let item = self.db.scan(keys::slices(&range)).map_err(storage)?.next();
            match item.transpose().map_err(storage)? {
                Some(kv) => Ok(keys::user_key(&kv.key).map(Bytes::copy_from_slice)),
                None => Ok(None),
            }
        };
        if let Some(key) = first_at(Bound::Included(&probe[..]))? {
            return Ok(Some(key));
        }
        match first_at(Bound::Unbounded)? {
            Some(key) => Ok(Some(key)),
            // Everything may still be staged (a new store in mid-batch).
            None => Ok(self.stage.first_live()),
        }
    }

    /// Deletes every top-level key, in batches. Subkeys are left to the
    /// garbage filter (their collections are gone): `FLUSHALL` costs one
    /// delete per key, not per element.
    pub(super) fn clear_top_keys(&mut self) -> Result<(), EngineError> {
        let mut batch = lsm::WriteBatch::new();
        let range = keys::top_range(Bound::Unbounded);
        for item in self.db.scan(keys::slices(&range)).map_err(storage)? {
            batch.delete(&item.map_err(storage)?.key);
            if batch.len() >= 1024 {
                self.db.write(&batch).map_err(storage)?;
                batch.clear();
            }
        }
        if !batch.is_empty() {
            self.db.write(&batch).map_err(storage)?;
        }
        Ok(())
    }
}
